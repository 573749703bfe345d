//! Which request gets what: the route table (path, handler, CORS or not, one-line summary),
//! which the router, the man page's ENDPOINTS and docs/GUIDE.md's endpoint table are all made from;
//! and the router. The only place URL paths are named; no path ever names a file, so nothing
//! but the given sources can be served.
//!
//! Every source's endpoints are under `/NAME/`; the root ones serve the first source, except
//! `/` itself, which with several sources is an index of them all. Before any route, a request
//! passes the Host check and, with `--auth`, the credentials (`http/auth.rs`), which refuse it
//! the same way whatever its path.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::config::{decoded_segment, url_segment};
use crate::events;
use crate::http::auth;
use crate::http::conn::Conn;
use crate::http::head::HeaderValue;
use crate::http::host::HostCheck;
use crate::http::request::{HeadError, Request};
use crate::http::response::Response;
use crate::pages;
use crate::push;
use crate::report::{self, Level};
use crate::site::{self, Ctx, Site};
use crate::status;

/// A client that has not sent a whole request head by then is dropped.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Answers a request; returns the status and the bytes sent.
pub type Handler = fn(&Ctx, &Request, Conn) -> (u16, u64);

pub struct Route {
    pub path: &'static str,
    pub handler: Handler,
    /// With `--cors`, answers other origins (and their preflight requests).
    pub cors: bool,
    /// Served for each source under `/NAME/` too, not only at the root.
    pub per_source: bool,
    pub summary: &'static str,
}

pub const ROUTES: [Route; 6] = [
    Route {
        path: "/",
        handler: pages::viewer,
        cors: false,
        per_source: true,
        summary: "The viewer page: images through the stream, text (escaped) and HTML (in a \
                  sandboxed iframe) through /events, with a caption of the name, the time of \
                  the last update and whether it is live; when those fail it polls /snapshot \
                  once a second, and goes live again when it can. With several sources, / is \
                  an index showing them all live, and each one's viewer is at /NAME/.",
    },
    Route {
        path: "/stream",
        handler: push::serve,
        cors: false,
        per_source: true,
        summary: "The endless multipart/x-mixed-replace stream: the current version at once, \
                  then each new one, framed for the client and only the types it can show, by \
                  its User-Agent (?client=browser, vlc, mpv, ffmpeg, opencv, gstreamer, reader \
                  or curl names it instead; ?framing=browser or ?framing=reader forces the \
                  framing, ?type=image/* the types).",
    },
    Route {
        path: "/snapshot",
        handler: pages::snapshot,
        cors: true,
        per_source: true,
        summary: "The current version alone, with ETag and Last-Modified; If-None-Match gives \
                  304; ?seq=N asks for version N, 404 once a newer one has replaced it.",
    },
    Route {
        path: "/events",
        handler: events::event_stream,
        cors: true,
        per_source: true,
        summary: "Server-Sent Events: one event per new version, id: its sequence number, \
                  data: its JSON description; Last-Event-ID resumes.",
    },
    Route {
        path: "/poll",
        handler: events::long_poll,
        cors: true,
        per_source: true,
        summary: "Long poll, ?since=N: the JSON description of the current version at once if \
                  it is not N, else when the next one comes, else 204 after 30 s \
                  (?timeout=SECS changes it).",
    },
    Route {
        path: "/status",
        handler: status::serve,
        cors: true,
        per_source: false,
        summary: "JSON: version, uptime, totals, and for every source its name, kind, what it \
                  is, its state (a relay's upstream), current version, clients by endpoint, \
                  frames and bytes sent.",
    },
];

/// Serves one connection: reads its request and answers it if it names the server as `hosts`
/// allows (which depends on the socket it came in on). Errors end the connection only.
pub fn handle(site: &Site, hosts: &HostCheck, conn: Conn) {
    let started = Instant::now();
    let peer = conn.peer_addr();
    let req = match conn.read_head(HEAD_TIMEOUT) {
        Ok(req) => req,
        Err(HeadError::Gone) => return,
        Err(HeadError::TooLarge) => {
            let bytes = send(conn, Response::error(431), false);
            return log_access(peer, "-", 431, started, bytes, None);
        }
        Err(HeadError::Malformed) => {
            let bytes = send(conn, Response::error(400), false);
            return log_access(peer, "-", 400, started, bytes, None);
        }
    };
    let (status, bytes, note) = answer(site, hosts, &req, conn);
    log_access(peer, &req.path, status, started, bytes, note);
}

/// Answers `req` once it has passed the checks every request must pass, whatever its path: the
/// Host, then the credentials; returns the status, the bytes sent and what the access log adds.
fn answer(site: &Site, hosts: &HostCheck, req: &Request, conn: Conn) -> (u16, u64, Option<String>) {
    let head_only = req.is_head();
    if !hosts.allows(req.host.as_deref()) {
        let body = b"Forbidden: this server does not answer to that Host name \
            (start pushserve with --allow-host NAME to add it)\n";
        let response = Response::new(403, HeaderValue::from_static("text/plain"), body);
        return (403, send(conn, response, head_only), None);
    }
    if let Some(accounts) = &site.serving.auth {
        if req.method == "OPTIONS" && site.serving.cors {
            // Browsers send a preflight without credentials, whatever the page says, so it
            // must pass, or no page elsewhere could ask at all; the same answer on every path
            // tells nothing of which exist, and the request that follows is checked.
            let mut response = preflight(true);
            site::add_cors(&mut response.head);
            return (204, send(conn, response, false), None);
        }
        if let Err(refusal) = accounts.check(req.header("authorization")) {
            let mut response = auth::challenge();
            if site.serving.cors {
                // So that a page elsewhere reads a 401, not a network error, and can ask again.
                site::add_cors(&mut response.head);
            }
            let bytes = send(conn, response, head_only);
            return (401, bytes, Some(format!("({refusal})")));
        }
    }
    let (status, bytes, channel) = route(site, req, conn);
    (status, bytes, channel.map(|name| format!("({name})")))
}

/// Answers `req`; returns the status, the bytes sent and, with several sources, the name of
/// the one that answered.
fn route<'s>(site: &'s Site, req: &Request, conn: Conn) -> (u16, u64, Option<&'s str>) {
    let head_only = req.is_head();
    let (channel, route) = match target(site, &req.path) {
        Some(Found::Route(channel, route)) => (channel, route),
        Some(Found::Index) if is_read(req) => {
            return (200, pages::index(conn, head_only), None);
        }
        Some(Found::Redirect(to)) if is_read(req) => {
            let location = HeaderValue::new(to).expect("a URL segment is ASCII");
            let response = Response::new(301, HeaderValue::from_static("text/plain"), &[])
                .header("Location", location);
            return (301, send(conn, response, head_only), None);
        }
        Some(_) => return (405, send(conn, not_allowed(false), false), None),
        None => return (404, send(conn, Response::error(404), head_only), None),
    };
    let label = site.is_multi().then_some(channel.name.as_str());
    let cors = route.cors && site.serving.cors;
    if req.method == "OPTIONS" && cors {
        let response = preflight(false);
        let ctx = Ctx {
            site,
            channel,
            cors,
        };
        return (204, ctx.send(conn, response, false), label);
    }
    if !is_read(req) {
        return (405, send(conn, not_allowed(cors), false), label);
    }
    let ctx = Ctx {
        site,
        channel,
        cors,
    };
    let (status, bytes) = (route.handler)(&ctx, req, conn);
    (status, bytes, label)
}

enum Found<'a> {
    Route(&'a crate::channel::Channel, &'static Route),
    Index,
    Redirect(String),
}

/// The channel and route a path names: a root route (the first source's), or `/NAME/…`.
fn target<'s>(site: &'s Site, path: &str) -> Option<Found<'s>> {
    if let Some(route) = ROUTES.iter().find(|r| r.path == path) {
        if path == "/" && site.is_multi() {
            return Some(Found::Index);
        }
        return Some(Found::Route(&site.channels[0], route));
    }
    let rest = path.strip_prefix('/')?;
    let Some((name, sub)) = rest.split_once('/') else {
        return site
            .channel(&decoded_segment(rest)?)
            .map(|c| Found::Redirect(format!("/{}/", url_segment(&c.name))));
    };
    // Browsers percent-encode a name's letters beyond ASCII; other clients may not.
    let channel = site.channel(&decoded_segment(name)?)?;
    let route = ROUTES
        .iter()
        .find(|r| r.per_source && r.path.strip_prefix('/') == Some(sub))?;
    Some(Found::Route(channel, route))
}

/// The answer to a preflight, sent by browsers before a cross-origin request with
/// If-None-Match (or, with `--auth`, Authorization); without its CORS headers.
fn preflight(auth: bool) -> Response<'static> {
    let headers = if auth {
        "If-None-Match, Last-Event-ID, Authorization"
    } else {
        "If-None-Match, Last-Event-ID"
    };
    Response::new(204, HeaderValue::from_static("text/plain"), &[])
        .header(
            "Access-Control-Allow-Methods",
            HeaderValue::from_static("GET, HEAD"),
        )
        .header(
            "Access-Control-Allow-Headers",
            HeaderValue::from_static(headers),
        )
        .header("Access-Control-Max-Age", HeaderValue::from_static("86400"))
}

fn is_read(req: &Request) -> bool {
    req.method == "GET" || req.method == "HEAD"
}

fn not_allowed(cors: bool) -> Response<'static> {
    let allow = if cors {
        "GET, HEAD, OPTIONS"
    } else {
        "GET, HEAD"
    };
    Response::error(405).header("Allow", HeaderValue::from_static(allow))
}

/// Sends a response that belongs to no endpoint; returns the bytes sent.
fn send(conn: Conn, response: Response, head_only: bool) -> u64 {
    response.send(conn, head_only).unwrap_or(0)
}

/// With `--verbose`: one line per finished connection, with `note` after it: the source with
/// several, or why a request was refused (the one place a user name tried is printed).
fn log_access(
    peer: Option<SocketAddr>,
    path: &str,
    status: u16,
    started: Instant,
    bytes: u64,
    note: Option<String>,
) {
    if report::enabled(Level::Verbose) {
        let peer = peer.map_or("-".to_string(), |p| p.to_string());
        let ms = started.elapsed().as_millis();
        let note = note.map_or(String::new(), |note| format!(" {note}"));
        report::line(
            Level::Verbose,
            format_args!("{peer} {path} {status} {ms}ms {bytes}B{note}"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::ROUTES;

    /// docs/GUIDE.md's endpoint table, made from [`ROUTES`] (a test keeps the guide in step).
    pub fn markdown_table() -> String {
        let mut table = String::from("| path | what |\n|---|---|\n");
        for route in &ROUTES {
            let summary = route
                .summary
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            table.push_str(&format!("| `{}` | {summary} |\n", route.path));
        }
        table
    }

    #[test]
    fn guide_lists_the_endpoints_of_the_route_table() {
        let guide = include_str!("../docs/GUIDE.md");
        let table = markdown_table();
        assert!(
            guide.contains(&table),
            "docs/GUIDE.md's endpoint table is not the route table's; put this in its place:\n\n{table}"
        );
    }
}
