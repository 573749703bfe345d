//! Which request gets what: path and method to handler. The only place URL paths are named;
//! no path ever names a file, so nothing outside the one PATH can be served.

use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::frame::Latest;
use crate::http::request::{self, HeadError, Request};
use crate::http::response::{Response, http_date};
use crate::push::{self, Framing, StreamOptions};

/// A client that has not sent a whole request head by then is dropped.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

const VIEWER: &str = include_str!("viewer.html");

/// What every connection thread shares.
pub struct App {
    pub latest: Arc<Latest>,
    pub keepalive: Duration,
    pub write_timeout: Duration,
    /// Streams still writing, so that shutdown can wait for their final boundary.
    pub open_streams: Arc<AtomicUsize>,
}

/// Serves one connection: reads its request and answers it. Errors end the connection only.
pub fn handle(app: &App, mut conn: TcpStream) {
    let _ = conn.set_nodelay(true);
    let req = match request::read_head(&mut conn, HEAD_TIMEOUT) {
        Ok(req) => req,
        Err(HeadError::Gone) => return,
        Err(HeadError::TooLarge) => return send(&mut conn, &Response::error(431), false),
        Err(HeadError::Malformed) => return send(&mut conn, &Response::error(400), false),
    };
    let known = matches!(req.path.as_str(), "/" | "/stream" | "/snapshot");
    if !known {
        return send(&mut conn, &Response::error(404), req.is_head());
    }
    if req.method != "GET" && req.method != "HEAD" {
        return send(
            &mut conn,
            &Response::error(405).header("Allow", "GET, HEAD"),
            false,
        );
    }
    match req.path.as_str() {
        "/stream" => {
            let opts = StreamOptions {
                framing: Framing::for_request(&req),
                keepalive: app.keepalive,
                write_timeout: app.write_timeout,
            };
            app.open_streams.fetch_add(1, Ordering::SeqCst);
            let _ = push::stream(&mut conn, &app.latest, &opts, req.is_head());
            app.open_streams.fetch_sub(1, Ordering::SeqCst);
        }
        "/snapshot" => snapshot(app, &req, &mut conn),
        _ => send(
            &mut conn,
            &Response::new(200, "text/html; charset=utf-8", VIEWER.as_bytes())
                .header("Cache-Control", "no-cache"),
            req.is_head(),
        ),
    }
}

/// The current frame as a plain response, validated by its ETag.
fn snapshot(app: &App, req: &Request, conn: &mut TcpStream) {
    let Some(frame) = app.latest.current() else {
        return send(
            conn,
            &Response::error(503).header("Retry-After", "1"),
            req.is_head(),
        );
    };
    let unchanged = req
        .header("if-none-match")
        .is_some_and(|tags| etag_matches(tags, &frame.etag));
    let response = if unchanged {
        Response::new(304, &frame.content_type, &[])
    } else {
        Response::new(200, &frame.content_type, &frame.bytes)
    };
    let response = response
        .header("ETag", frame.etag.clone())
        .header("Last-Modified", http_date(frame.modified))
        .header("Cache-Control", "no-cache")
        // So that "Save image as" offers the file's own name.
        .header(
            "Content-Disposition",
            format!(
                "inline; filename=\"{}\"",
                frame.name.replace(['"', '\\'], "_")
            ),
        );
    send(conn, &response, req.is_head());
}

/// `If-None-Match: "a", W/"b"` or `*` against our strong tag (weak comparison, RFC 9110 13.1.2).
fn etag_matches(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}

fn send(conn: &mut TcpStream, response: &Response, head_only: bool) {
    let _ = conn.set_write_timeout(Some(Duration::from_secs(10)));
    let _ = response.send(conn, head_only);
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
