//! The plain responses of a source: the viewer page and the snapshot; and the index page of
//! several sources.

use crate::http::conn::Conn;
use crate::http::head::{HeaderValue, http_date, inline_disposition};
use crate::http::request::Request;
use crate::http::response::Response;
use crate::site::Ctx;

/// The viewer page, the same for every source and run: it uses relative URLs, so it works at
/// `/` and at `/NAME/` alike.
const VIEWER: &str = include_str!("viewer.html");

/// The index page of several sources: it builds its tiles from `/status`, so no name from the
/// command line is ever written into HTML here.
const INDEX: &str = include_str!("index.html");

pub fn viewer(ctx: &Ctx, req: &Request, conn: Conn) -> (u16, u64) {
    (200, ctx.send(conn, page(VIEWER), req.is_head()))
}

pub fn index(conn: Conn, head_only: bool) -> u64 {
    page(INDEX).send(conn, head_only).unwrap_or(0)
}

fn page(html: &'static str) -> Response<'static> {
    Response::new(
        200,
        HeaderValue::from_static("text/html; charset=utf-8"),
        html.as_bytes(),
    )
    .header("Cache-Control", HeaderValue::from_static("no-cache"))
}

/// The current frame as a plain response, validated by its ETag; `?seq=N` asks for that
/// version, which is 404 once a newer one has replaced it.
pub fn snapshot(ctx: &Ctx, req: &Request, conn: Conn) -> (u16, u64) {
    let Some(frame) = ctx.channel.latest.current() else {
        let response = Response::error(503).header("Retry-After", HeaderValue::from_static("1"));
        return (503, ctx.send(conn, response, req.is_head()));
    };
    if let Some(seq) = req.query_param("seq")
        && seq.parse() != Ok(frame.seq)
    {
        return (404, ctx.send(conn, Response::error(404), req.is_head()));
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
    let bytes = ctx.send(conn, response, req.is_head());
    if status == 200 && !req.is_head() {
        ctx.channel.stats.sent_frame(frame.bytes.len());
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
