//! /events (Server-Sent Events) and /poll (long-poll): the same frame descriptions, for pages
//! that script their own updates. COMET, done the standard way.
//!
//! Both send [`Frame::json`], rendered once per frame; neither ever reads frame bytes.

use std::io::{self, IoSlice};
use std::time::Duration;

use crate::frame::{Frame, Wait};
use crate::http::conn::Conn;
use crate::http::head::{Head, HeaderValue};
use crate::http::request::Request;
use crate::http::response::Response;
use crate::site::Ctx;
use crate::stats::Endpoint;

/// How long /poll holds a request when `?timeout=` does not say.
pub const POLL_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_POLL_TIMEOUT: Duration = Duration::from_secs(300);

/// The sequence number a client already has, if it is the current frame's: a client that has
/// anything else (an older frame, or one from before a restart) gets the current frame at once.
fn seen(ctx: &Ctx, claimed: Option<u64>) -> u64 {
    match (claimed, ctx.channel.latest.current()) {
        (Some(n), Some(current)) if n == current.seq => n,
        _ => 0,
    }
}

/// `/events`: one event per new frame, the current one first (or after `Last-Event-ID` if
/// that is the current frame), a comment line as keep-alive.
pub fn event_stream(ctx: &Ctx, req: &Request, conn: Conn) -> (u16, u64) {
    let _client = ctx.channel.stats.connect(Endpoint::Events);
    let mut sent = 0;
    let _ = send_events(&conn, req, ctx, &mut sent);
    (200, sent)
}

fn send_events(conn: &Conn, req: &Request, ctx: &Ctx, sent: &mut u64) -> io::Result<()> {
    let mut head = Head::new(200)
        .field(
            "Content-Type",
            HeaderValue::from_static("text/event-stream"),
        )
        .field("Cache-Control", HeaderValue::from_static("no-cache"))
        .field("X-Accel-Buffering", HeaderValue::from_static("no"));
    ctx.add_cors(&mut head);
    if req.is_head() {
        *sent += conn.send(&mut [IoSlice::new(&head.render())])?;
        return Ok(());
    }
    *sent += conn.send(&mut [
        IoSlice::new(&head.render()),
        IoSlice::new(b"retry: 2000\n\n"),
    ])?;
    let last_id = req
        .header("last-event-id")
        .and_then(|id| id.trim().parse().ok());
    let mut seen = seen(ctx, last_id);
    let frames = ctx.channel.latest.subscribe(conn.waiter());
    loop {
        match frames.wait_newer(seen, ctx.site.serving.keepalive) {
            Wait::Newer(frame) => {
                *sent += conn.send(&mut [IoSlice::new(&frame.event)])?;
                ctx.channel.stats.sent_frame(frame.event.len());
                seen = frame.seq;
            }
            // `--keepalive` (see `Args::keepalive`).
            Wait::TimedOut => *sent += conn.send(&mut [IoSlice::new(b": keep-alive\n\n")])?,
            Wait::Closed | Wait::Gone | Wait::Kicked => return Ok(()),
        }
    }
}

/// `/poll?since=N[&timeout=SECS]`: the frame description at once if the current frame is not
/// N, else when the next one is published, else `204` after the timeout.
pub fn long_poll(ctx: &Ctx, req: &Request, conn: Conn) -> (u16, u64) {
    let _client = ctx.channel.stats.connect(Endpoint::Poll);
    let since = req.query_param("since").map(str::parse::<u64>);
    let timeout = req.query_param("timeout").map(str::parse::<u64>);
    let (Ok(since), Ok(timeout)) = (since.transpose(), timeout.transpose()) else {
        return (400, ctx.send(conn, Response::error(400), req.is_head()));
    };
    let timeout = match timeout {
        // HEAD asks what a GET would get now: it has no body to wait for.
        _ if req.is_head() => Duration::ZERO,
        None => POLL_TIMEOUT,
        Some(s) => Duration::from_secs(s).min(MAX_POLL_TIMEOUT),
    };
    let next = ctx
        .channel
        .latest
        .subscribe(conn.waiter())
        .wait_newer(seen(ctx, since), timeout);
    match next {
        Wait::Newer(frame) => answer(conn, req, ctx, &frame),
        // Nobody to answer.
        Wait::Gone => (499, 0),
        Wait::TimedOut | Wait::Closed | Wait::Kicked => (
            204,
            ctx.send(
                conn,
                Response::new(204, HeaderValue::from_static("text/plain"), &[]),
                req.is_head(),
            ),
        ),
    }
}

fn answer(conn: Conn, req: &Request, ctx: &Ctx, frame: &Frame) -> (u16, u64) {
    ctx.channel.stats.sent_frame(frame.json.len());
    let response = Response::new(
        200,
        HeaderValue::from_static("application/json"),
        frame.json.as_bytes(),
    )
    .header("Cache-Control", HeaderValue::from_static("no-cache"));
    (200, ctx.send(conn, response, req.is_head()))
}
