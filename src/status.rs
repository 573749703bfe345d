//! What the server says of itself: `/status` (JSON) and the live status line on stderr (which
//! `report.rs` keeps below every message), both made from the channels' counters and frames.

use std::io::IsTerminal;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use indicatif::{HumanBytes, HumanDuration, ProgressBar, ProgressStyle};

use crate::channel::Channel;
use crate::http::conn::Conn;
use crate::http::head::HeaderValue;
use crate::http::request::Request;
use crate::http::response::Response;
use crate::json;
use crate::report::{self, Level};
use crate::site::{Ctx, Site};
use crate::stats::Endpoint;

/// `/status`: every source, what it shows, who is connected, what was sent. The first source
/// is also described at the top level, as it was when there could be only one.
pub fn serve(ctx: &Ctx, req: &Request, conn: Conn) -> (u16, u64) {
    let body = status_json(ctx.site);
    let response = Response::new(
        200,
        HeaderValue::from_static("application/json"),
        body.as_bytes(),
    )
    .header("Cache-Control", HeaderValue::from_static("no-cache"));
    (200, ctx.send(conn, response, req.is_head()))
}

fn status_json(site: &Site) -> String {
    let first = &site.channels[0];
    let total = |count: &dyn Fn(&Channel) -> u64| site.channels.iter().map(|c| count(c)).sum();
    let clients = clients_json(&|e| total(&|c| c.stats.connected(e) as u64));
    let sources: Vec<String> = site.channels.iter().map(|c| source_json(c)).collect();
    format!(
        r#"{{"version":"{}","source":{{"path":{},"kind":"{}"}},"frame":{},"clients":{clients},"frames_sent":{},"bytes_sent":{},"uptime_secs":{:.3},"sources":[{}]}}"#,
        env!("CARGO_PKG_VERSION"),
        json::string(&first.source),
        first.kind,
        frame_json(first),
        total(&|c| c.stats.frames_sent()),
        total(&|c| c.stats.bytes_sent()),
        site.started.elapsed().as_secs_f64(),
        sources.join(","),
    )
}

/// One source: `{"name":…,"kind":…,"source":…,"state":…,"frame":…,"clients":…,…}`.
fn source_json(channel: &Channel) -> String {
    let stats = &channel.stats;
    format!(
        r#"{{"name":{},"kind":"{}","source":{},"state":{},"frame":{},"clients":{},"frames_sent":{},"bytes_sent":{}}}"#,
        json::string(&channel.name),
        channel.kind,
        json::string(&channel.source),
        channel
            .state()
            .map_or("null".to_string(), |s| json::string(&s.to_string())),
        frame_json(channel),
        clients_json(&|e| stats.connected(e) as u64),
        stats.frames_sent(),
        stats.bytes_sent(),
    )
}

fn frame_json(channel: &Channel) -> String {
    channel
        .latest
        .current()
        .map_or("null".to_string(), |f| f.json.clone())
}

/// `{"stream":2,"events":1,"poll":0}`
fn clients_json(count: &dyn Fn(Endpoint) -> u64) -> String {
    let clients: Vec<String> = Endpoint::ALL
        .iter()
        .map(|e| format!(r#""{}":{}"#, e.name(), count(*e)))
        .collect();
    format!("{{{}}}", clients.join(","))
}

const REDRAW: Duration = Duration::from_millis(250);

/// Draws the status line on stderr from now on, if stderr is a terminal.
pub fn start_line(site: Arc<Site>) {
    if !std::io::stderr().is_terminal() || !report::enabled(Level::Normal) {
        return;
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner:.green} {msg}")
            .unwrap_or(ProgressStyle::default_spinner()),
    );
    if !report::keep_below(bar.clone()) {
        return;
    }
    let _ = thread::Builder::new().name("status".into()).spawn(move || {
        while !site.is_closed() {
            bar.set_message(report::escape_controls(&describe(&site)).into_owned());
            bar.tick();
            thread::sleep(REDRAW);
        }
    });
}

/// `3 clients (2 stream, 1 events) · 120 frames · 4.1 MiB sent · cam.jpg, changed 2s ago`;
/// with several sources, each one's current frame after its name (`cam: cam.jpg, …`).
fn describe(site: &Site) -> String {
    let connected =
        |e: Endpoint| -> usize { site.channels.iter().map(|c| c.stats.connected(e)).sum() };
    let by_endpoint: Vec<String> = Endpoint::ALL
        .iter()
        .filter(|e| connected(**e) > 0)
        .map(|e| format!("{} {}", connected(*e), e.name()))
        .collect();
    let frames: u64 = site.channels.iter().map(|c| c.stats.frames_sent()).sum();
    let bytes: u64 = site.channels.iter().map(|c| c.stats.bytes_sent()).sum();
    let current: Vec<String> = site
        .channels
        .iter()
        .map(|c| {
            let shown = c.latest.current().map_or(
                "waiting for a first complete version".to_string(),
                |f| {
                    format!(
                        "{}, changed {} ago",
                        f.name,
                        HumanDuration(f.published.elapsed())
                    )
                },
            );
            if site.is_multi() {
                format!("{}: {shown}", c.name)
            } else {
                shown
            }
        })
        .collect();
    format!(
        "{} clients{} · {frames} frames · {} sent · {}",
        site.open_responses(),
        if by_endpoint.is_empty() {
            String::new()
        } else {
            format!(" ({})", by_endpoint.join(", "))
        },
        HumanBytes(bytes),
        current.join(" · "),
    )
}
