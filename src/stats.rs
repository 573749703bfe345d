//! Counters of what a channel is doing (clients by endpoint, frames and bytes sent), read by
//! `/status`, the live status line and shutdown.
//!
//! Counting is a relaxed atomic add per event: nothing here may slow a connection down.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

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
    connected: [AtomicUsize; 3],
    frames_sent: AtomicU64,
    bytes_sent: AtomicU64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
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
