//! Which request gets what: path and method to handler. The only place URL paths are named;
//! no path ever names a file, so nothing outside the one PATH can be served.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::events;
use crate::frame::Latest;
use crate::http::request::{self, HeadError, Request};
use crate::http::response::{Response, http_date};
use crate::json;
use crate::keeper::Keeper;
use crate::push::{self, Framing, StreamOptions};
use crate::report::{self, Level};
use crate::status::{Endpoint, Stats};

/// A client that has not sent a whole request head by then is dropped.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

const PATHS: [&str; 6] = ["/", "/stream", "/snapshot", "/events", "/poll", "/status"];

/// What every connection thread shares.
pub struct App {
    pub latest: Arc<Latest>,
    pub stats: Arc<Stats>,
    pub keeper: Arc<Keeper>,
    pub keepalive: Duration,
    /// `--repeat` for reader streams; None for 0.
    pub repeat: Option<Duration>,
    pub write_timeout: Duration,
    pub cors: bool,
    pub source_path: PathBuf,
    pub source_is_folder: bool,
    /// The viewer page, rendered once with this run's settings.
    pub viewer: String,
}

impl App {
    /// The CORS header line (with its CRLF) when `--cors` is on, else nothing.
    pub fn cors_header(&self) -> &'static str {
        if self.cors {
            "Access-Control-Allow-Origin: *\r\nAccess-Control-Expose-Headers: ETag\r\n"
        } else {
            ""
        }
    }

    /// Sends a complete response (plus the CORS header for the endpoints that take it).
    pub fn send(&self, conn: &mut TcpStream, response: &Response, head_only: bool) -> u64 {
        let _ = conn.set_write_timeout(Some(self.write_timeout));
        response.send(conn, head_only).unwrap_or(0)
    }

    pub fn send_cors(&self, conn: &mut TcpStream, response: Response, head_only: bool) -> u64 {
        let response = if self.cors {
            response
                .header("Access-Control-Allow-Origin", "*")
                .header("Access-Control-Expose-Headers", "ETag")
        } else {
            response
        };
        self.send(conn, &response, head_only)
    }
}

/// Serves one connection: reads its request and answers it. Errors end the connection only.
pub fn handle(app: &App, mut conn: TcpStream) {
    let started = Instant::now();
    let peer = conn.peer_addr().ok();
    let _ = conn.set_nodelay(true);
    let req = match request::read_head(&mut conn, HEAD_TIMEOUT) {
        Ok(req) => req,
        Err(HeadError::Gone) => return,
        Err(HeadError::TooLarge) => {
            let bytes = app.send(&mut conn, &Response::error(431), false);
            return log_access(peer, "-", 431, started, bytes);
        }
        Err(HeadError::Malformed) => {
            let bytes = app.send(&mut conn, &Response::error(400), false);
            return log_access(peer, "-", 400, started, bytes);
        }
    };
    let (status, bytes) = route(app, &req, conn);
    log_access(peer, &req.path, status, started, bytes);
}

/// Answers `req`; returns the status and the bytes sent.
fn route(app: &App, req: &Request, mut conn: TcpStream) -> (u16, u64) {
    let head_only = req.is_head();
    if !PATHS.contains(&req.path.as_str()) {
        return (404, app.send(&mut conn, &Response::error(404), head_only));
    }
    if req.method == "OPTIONS" && app.cors {
        // A preflight, sent by browsers before a cross-origin request with If-None-Match.
        let response = Response::new(204, "text/plain", &[])
            .header("Access-Control-Allow-Methods", "GET, HEAD")
            .header(
                "Access-Control-Allow-Headers",
                "If-None-Match, Last-Event-ID",
            )
            .header("Access-Control-Max-Age", "86400");
        return (204, app.send_cors(&mut conn, response, false));
    }
    if req.method != "GET" && req.method != "HEAD" {
        let allow = if app.cors {
            "GET, HEAD, OPTIONS"
        } else {
            "GET, HEAD"
        };
        return (
            405,
            app.send(
                &mut conn,
                &Response::error(405).header("Allow", allow),
                false,
            ),
        );
    }
    match req.path.as_str() {
        "/stream" => {
            let _client = app.stats.connect(Endpoint::Stream);
            let opts = StreamOptions {
                framing: Framing::for_request(req),
                keepalive: app.keepalive,
                repeat: app.repeat,
                write_timeout: app.write_timeout,
            };
            (
                200,
                push::stream(conn, &app.latest, &app.stats, &app.keeper, &opts, head_only),
            )
        }
        "/events" => {
            let _client = app.stats.connect(Endpoint::Events);
            (200, events::event_stream(&mut conn, req, app))
        }
        "/poll" => {
            let _client = app.stats.connect(Endpoint::Poll);
            events::long_poll(&mut conn, req, app)
        }
        "/snapshot" => snapshot(app, req, &mut conn),
        "/status" => {
            let body = status_json(app);
            let response = Response::new(200, "application/json", body.as_bytes())
                .header("Cache-Control", "no-cache");
            (200, app.send_cors(&mut conn, response, head_only))
        }
        _ => {
            let page = Response::new(200, "text/html; charset=utf-8", app.viewer.as_bytes())
                .header("Cache-Control", "no-cache");
            (200, app.send(&mut conn, &page, head_only))
        }
    }
}

/// The current frame as a plain response, validated by its ETag.
fn snapshot(app: &App, req: &Request, conn: &mut TcpStream) -> (u16, u64) {
    let Some(frame) = app.latest.current() else {
        let response = Response::error(503).header("Retry-After", "1");
        return (503, app.send_cors(conn, response, req.is_head()));
    };
    let unchanged = req
        .header("if-none-match")
        .is_some_and(|tags| etag_matches(tags, &frame.etag));
    let (status, body) = if unchanged {
        (304, &[][..])
    } else {
        (200, &frame.bytes[..])
    };
    let response = Response::new(status, &frame.content_type, body)
        .header("ETag", frame.etag.clone())
        .header("Last-Modified", http_date(frame.modified))
        .header("Cache-Control", "no-cache")
        // So that "Save as" offers the file's own name.
        .header(
            "Content-Disposition",
            format!(
                "inline; filename=\"{}\"",
                frame.name.replace(['"', '\\'], "_")
            ),
        );
    let bytes = app.send_cors(conn, response, req.is_head());
    if status == 200 && !req.is_head() {
        app.stats.sent_frame(frame.bytes.len());
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
    let stats = &app.stats;
    let clients: Vec<String> = Endpoint::ALL
        .iter()
        .map(|e| format!(r#""{}":{}"#, e.name(), stats.connected(*e)))
        .collect();
    format!(
        r#"{{"version":"{}","source":{{"path":{},"kind":"{}"}},"frame":{},"clients":{{{}}},"frames_sent":{},"bytes_sent":{},"uptime_secs":{:.3}}}"#,
        env!("CARGO_PKG_VERSION"),
        json::string(&app.source_path.display().to_string()),
        if app.source_is_folder {
            "folder"
        } else {
            "file"
        },
        app.latest
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
