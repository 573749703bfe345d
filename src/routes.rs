//! Which request gets what: path and method to handler. The only place URL paths are named;
//! no path ever names a file, so nothing outside the one PATH can be served.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::channel::Channel;
use crate::client::{self, Framing, PartTypes};
use crate::events;
use crate::http::conn::Conn;
use crate::http::head::{Head, HeaderValue, http_date, inline_disposition};
use crate::http::host::HostCheck;
use crate::http::request::{HeadError, Request};
use crate::http::response::Response;
use crate::json;
use crate::keeper::Keeper;
use crate::push::{self, StreamOptions};
use crate::report::{self, Level};
use crate::status::Endpoint;

/// A client that has not sent a whole request head by then is dropped.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

const PATHS: [&str; 6] = ["/", "/stream", "/snapshot", "/events", "/poll", "/status"];

/// The viewer page, the same for every run.
const VIEWER: &str = include_str!("viewer.html");

/// What every connection thread shares.
pub struct App {
    pub channel: Arc<Channel>,
    pub keeper: Arc<Keeper>,
    pub keepalive: Duration,
    /// `--repeat` for reader streams; None for 0.
    pub repeat: Option<Duration>,
    pub cors: bool,
    pub hosts: HostCheck,
}

impl App {
    /// Adds the CORS headers when `--cors` is on.
    pub fn add_cors(&self, head: &mut Head) {
        if self.cors {
            head.push("Access-Control-Allow-Origin", HeaderValue::from_static("*"));
            head.push(
                "Access-Control-Expose-Headers",
                HeaderValue::from_static("ETag"),
            );
        }
    }

    /// Sends a complete response; returns the bytes sent.
    pub fn send(&self, conn: Conn, response: Response, head_only: bool) -> u64 {
        response.send(conn, head_only).unwrap_or(0)
    }

    /// [`App::send`], plus the CORS headers for the endpoints that take them.
    pub fn send_cors(&self, conn: Conn, mut response: Response, head_only: bool) -> u64 {
        self.add_cors(&mut response.head);
        self.send(conn, response, head_only)
    }
}

/// Serves one connection: reads its request and answers it. Errors end the connection only.
pub fn handle(app: &App, conn: Conn) {
    let started = Instant::now();
    let peer = conn.peer_addr();
    let req = match conn.read_head(HEAD_TIMEOUT) {
        Ok(req) => req,
        Err(HeadError::Gone) => return,
        Err(HeadError::TooLarge) => {
            let bytes = app.send(conn, Response::error(431), false);
            return log_access(peer, "-", 431, started, bytes);
        }
        Err(HeadError::Malformed) => {
            let bytes = app.send(conn, Response::error(400), false);
            return log_access(peer, "-", 400, started, bytes);
        }
    };
    let (status, bytes) = route(app, &req, conn);
    log_access(peer, &req.path, status, started, bytes);
}

/// Answers `req`; returns the status and the bytes sent.
fn route(app: &App, req: &Request, conn: Conn) -> (u16, u64) {
    let head_only = req.is_head();
    if !app.hosts.allows(req.host.as_deref()) {
        let body = b"Forbidden: this server does not answer to that Host name \
            (start pushserve with --allow-host NAME to add it)\n";
        let response = Response::new(403, HeaderValue::from_static("text/plain"), body);
        return (403, app.send(conn, response, head_only));
    }
    if !PATHS.contains(&req.path.as_str()) {
        return (404, app.send(conn, Response::error(404), head_only));
    }
    if req.method == "OPTIONS" && app.cors {
        // A preflight, sent by browsers before a cross-origin request with If-None-Match.
        let response = Response::new(204, HeaderValue::from_static("text/plain"), &[])
            .header(
                "Access-Control-Allow-Methods",
                HeaderValue::from_static("GET, HEAD"),
            )
            .header(
                "Access-Control-Allow-Headers",
                HeaderValue::from_static("If-None-Match, Last-Event-ID"),
            )
            .header("Access-Control-Max-Age", HeaderValue::from_static("86400"));
        return (204, app.send_cors(conn, response, false));
    }
    if req.method != "GET" && req.method != "HEAD" {
        let allow = if app.cors {
            "GET, HEAD, OPTIONS"
        } else {
            "GET, HEAD"
        };
        let response = Response::error(405).header("Allow", HeaderValue::from_static(allow));
        return (405, app.send(conn, response, false));
    }
    match req.path.as_str() {
        "/stream" => {
            let Ok(types) = PartTypes::for_request(req) else {
                let body = b"Bad Request: ?type= takes media types, e.g. image/jpeg or image/*\n";
                let response = Response::new(400, HeaderValue::from_static("text/plain"), body);
                return (400, app.send(conn, response, head_only));
            };
            let _client = app.channel.stats.connect(Endpoint::Stream);
            let opts = StreamOptions {
                framing: Framing::for_request(req),
                types,
                empty_parts: client::empty_parts_after(req),
                vlc: client::is_vlc(req),
                keepalive: app.keepalive,
                repeat: app.repeat,
            };
            (
                200,
                push::stream(conn, &app.channel, &app.keeper, &opts, head_only),
            )
        }
        "/events" => {
            let _client = app.channel.stats.connect(Endpoint::Events);
            (200, events::event_stream(conn, req, app))
        }
        "/poll" => {
            let _client = app.channel.stats.connect(Endpoint::Poll);
            events::long_poll(conn, req, app)
        }
        "/snapshot" => snapshot(app, req, conn),
        "/status" => {
            let body = status_json(app);
            let response = Response::new(
                200,
                HeaderValue::from_static("application/json"),
                body.as_bytes(),
            )
            .header("Cache-Control", HeaderValue::from_static("no-cache"));
            (200, app.send_cors(conn, response, head_only))
        }
        _ => {
            let page = Response::new(
                200,
                HeaderValue::from_static("text/html; charset=utf-8"),
                VIEWER.as_bytes(),
            )
            .header("Cache-Control", HeaderValue::from_static("no-cache"));
            (200, app.send(conn, page, head_only))
        }
    }
}

/// The current frame as a plain response, validated by its ETag; `?seq=N` asks for that
/// version, which is 404 once a newer one has replaced it.
fn snapshot(app: &App, req: &Request, conn: Conn) -> (u16, u64) {
    let Some(frame) = app.channel.latest.current() else {
        let response = Response::error(503).header("Retry-After", HeaderValue::from_static("1"));
        return (503, app.send_cors(conn, response, req.is_head()));
    };
    if let Some(seq) = req.query_param("seq")
        && seq.parse() != Ok(frame.seq)
    {
        return (
            404,
            app.send_cors(conn, Response::error(404), req.is_head()),
        );
    }
    let unchanged = req
        .header("if-none-match")
        .is_some_and(|tags| etag_matches(tags, frame.etag.as_str()));
    let (status, body) = if unchanged {
        (304, &[][..])
    } else {
        (200, &frame.bytes[..])
    };
    let response = Response::new(status, frame.content_type.clone(), body)
        .header("ETag", frame.etag.clone())
        .header("Last-Modified", http_date(frame.modified))
        .header("Cache-Control", HeaderValue::from_static("no-cache"))
        // Opened on its own, an HTML or SVG frame must not run its scripts on this origin (the
        // viewer shows HTML in a sandboxed iframe); nothing else is hurt by the sandbox.
        .header(
            "Content-Security-Policy",
            HeaderValue::from_static("sandbox"),
        )
        // So that "Save as" offers the file's own name.
        .header("Content-Disposition", inline_disposition(&frame.name));
    let bytes = app.send_cors(conn, response, req.is_head());
    if status == 200 && !req.is_head() {
        app.channel.stats.sent_frame(frame.bytes.len());
    }
    (status, bytes)
}

/// `If-None-Match: "a", W/"b"` or `*` against our strong tag (weak comparison, RFC 9110 13.1.2).
fn etag_matches(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}

/// `/status`: what is served, the current frame, who is connected, what was sent.
fn status_json(app: &App) -> String {
    let stats = &app.channel.stats;
    let clients: Vec<String> = Endpoint::ALL
        .iter()
        .map(|e| format!(r#""{}":{}"#, e.name(), stats.connected(*e)))
        .collect();
    format!(
        r#"{{"version":"{}","source":{{"path":{},"kind":"{}"}},"frame":{},"clients":{{{}}},"frames_sent":{},"bytes_sent":{},"uptime_secs":{:.3}}}"#,
        env!("CARGO_PKG_VERSION"),
        json::string(&app.channel.source),
        app.channel.kind,
        app.channel
            .latest
            .current()
            .map_or("null".to_string(), |f| f.json.clone()),
        clients.join(","),
        stats.frames_sent(),
        stats.bytes_sent(),
        stats.started.elapsed().as_secs_f64(),
    )
}

/// With `--verbose`: one line per finished connection.
fn log_access(peer: Option<SocketAddr>, path: &str, status: u16, started: Instant, bytes: u64) {
    if report::enabled(Level::Verbose) {
        let peer = peer.map_or("-".to_string(), |p| p.to_string());
        let ms = started.elapsed().as_millis();
        report::line(
            Level::Verbose,
            format_args!("{peer} {path} {status} {ms}ms {bytes}B"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::etag_matches;

    #[test]
    fn if_none_match_lists_and_wildcards() {
        assert!(etag_matches("\"x\"", "\"x\""));
        assert!(etag_matches("\"a\", W/\"x\"", "\"x\""));
        assert!(etag_matches("*", "\"x\""));
        assert!(!etag_matches("\"y\"", "\"x\""));
    }
}
