//! Counters of what the server is doing (clients by endpoint, frames and bytes sent), shared by
//! `/status`, the live status line and shutdown; and the drawing of that line (which
//! `report.rs` keeps below every message).
//!
//! Counting is a relaxed atomic add per event: nothing here may slow a connection down.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, HumanDuration, ProgressBar, ProgressStyle};

use crate::channel::Channel;
use crate::frame::Frame;
use crate::report::{self, Level};

/// Endpoints that hold a response open, whose connected clients are counted.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Endpoint {
    Stream,
    Events,
    Poll,
}

impl Endpoint {
    pub const ALL: [Endpoint; 3] = [Endpoint::Stream, Endpoint::Events, Endpoint::Poll];

    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Stream => "stream",
            Endpoint::Events => "events",
            Endpoint::Poll => "poll",
        }
    }
}

pub struct Stats {
    pub started: Instant,
    connected: [AtomicUsize; 3],
    frames_sent: AtomicU64,
    bytes_sent: AtomicU64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            started: Instant::now(),
            connected: Default::default(),
            frames_sent: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
        }
    }
}

impl Stats {
    /// Counts a client of `endpoint` until the returned guard is dropped.
    pub fn connect(&self, endpoint: Endpoint) -> Connected<'_> {
        self.connected[endpoint as usize].fetch_add(1, Ordering::Relaxed);
        Connected {
            stats: self,
            endpoint,
        }
    }

    pub fn connected(&self, endpoint: Endpoint) -> usize {
        self.connected[endpoint as usize].load(Ordering::Relaxed)
    }

    /// Clients that hold a response open: what shutdown waits for.
    pub fn open_responses(&self) -> usize {
        Endpoint::ALL.iter().map(|e| self.connected(*e)).sum()
    }

    /// One frame (a part, an event, a snapshot or poll answer) of `bytes` went to one client.
    pub fn sent_frame(&self, bytes: usize) {
        self.frames_sent.fetch_add(1, Ordering::Relaxed);
        self.bytes_sent.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn frames_sent(&self) -> u64 {
        self.frames_sent.load(Ordering::Relaxed)
    }

    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent.load(Ordering::Relaxed)
    }
}

/// Decrements its endpoint's count when the connection ends.
pub struct Connected<'a> {
    stats: &'a Stats,
    endpoint: Endpoint,
}

impl Drop for Connected<'_> {
    fn drop(&mut self) {
        self.stats.connected[self.endpoint as usize].fetch_sub(1, Ordering::Relaxed);
    }
}

const REDRAW: Duration = Duration::from_millis(250);

/// Draws the status line on stderr from now on, if stderr is a terminal.
pub fn start_line(channel: Arc<Channel>) {
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
        while !channel.is_closed() {
            let status = describe(&channel.stats, channel.latest.current().as_deref());
            bar.set_message(report::escape_controls(&status).into_owned());
            bar.tick();
            thread::sleep(REDRAW);
        }
    });
}

/// `3 clients (2 stream, 1 events) · 120 frames · 4.1 MiB sent · cam.jpg, changed 2s ago`
fn describe(stats: &Stats, frame: Option<&Frame>) -> String {
    let by_endpoint: Vec<String> = Endpoint::ALL
        .iter()
        .filter(|e| stats.connected(**e) > 0)
        .map(|e| format!("{} {}", stats.connected(*e), e.name()))
        .collect();
    let clients = stats.open_responses();
    let current = frame.map_or("waiting for a first complete version".to_string(), |f| {
        format!(
            "{}, changed {} ago",
            f.name,
            HumanDuration(f.published.elapsed())
        )
    });
    format!(
        "{clients} clients{} · {} frames · {} sent · {current}",
        if by_endpoint.is_empty() {
            String::new()
        } else {
            format!(" ({})", by_endpoint.join(", "))
        },
        stats.frames_sent(),
        HumanBytes(stats.bytes_sent()),
    )
}
