//! A channel: one source's name, what the source is, its latest frame and its counters. A
//! source publishes into its channel; every handler is given the channel it serves, and knows
//! nothing of the kind of source behind it.

use std::fmt::Display;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::frame::{Frame, Latest, NewFrame};
use crate::stats::Stats;
use crate::wake::Waiter;

pub struct Channel {
    /// URL-safe: the channel's endpoints are under `/NAME/`.
    pub name: String,
    /// What feeds it, for `/status` and messages: a kind (`file`, `folder`, `stdin`, `relay`,
    /// `command`) and the path, URL (without credentials) or command.
    pub kind: &'static str,
    pub source: String,
    /// `--B` of every part sent on this channel's streams.
    pub boundary: String,
    /// The response head of every stream of this channel, rendered for the first one
    /// (`push.rs`). Rendered per stream, its pieces, freed by the connection's thread, stayed
    /// in that thread's cache of the allocator (glibc's tcache) as long as the stream lasted.
    pub stream_head: OnceLock<Vec<u8>>,
    pub latest: Latest,
    pub stats: Stats,
    /// Prefixed to what the source says on stderr, so that with several sources each line names
    /// its own: empty with one source, `NAME: ` with several.
    label: String,
    /// What the source last said of its health, for `/status` (a relay's upstream state).
    state: Mutex<Option<String>>,
}

impl Channel {
    pub fn new(
        name: String,
        kind: &'static str,
        source: String,
        boundary: String,
        labelled: bool,
    ) -> Arc<Channel> {
        Arc::new(Channel {
            label: if labelled {
                format!("{name}: ")
            } else {
                String::new()
            },
            name,
            kind,
            source,
            boundary,
            stream_head: OnceLock::new(),
            latest: Latest::new(),
            stats: Stats::default(),
            state: Mutex::new(None),
        })
    }

    /// Makes `new` the current frame of this channel and wakes its clients.
    pub fn publish(&self, new: NewFrame) -> Arc<Frame> {
        self.latest.publish(Frame::render(new, &self.boundary))
    }

    /// The server is shutting down: sources stop publishing and return.
    pub fn is_closed(&self) -> bool {
        self.latest.is_closed()
    }

    /// A source's wait between polls: `time`, or less if the server closes first; false if it
    /// has. Closing wakes it at once, so shutdown never waits out a poll or a slide.
    pub fn pause(&self, time: Duration) -> bool {
        let waiter = Waiter::for_current_thread();
        // Subscribed before looking, so a close in between still wakes the sleep below.
        let _woken_by_close = self.latest.subscribe(&waiter);
        // None: beyond the clock's range, which is until the server closes.
        let until = Instant::now().checked_add(time);
        loop {
            if self.is_closed() {
                return false;
            }
            if until.is_some_and(|until| Instant::now() >= until) {
                return true;
            }
            waiter.sleep(until);
        }
    }

    /// Says what the source is doing (a note on stderr, hidden by `--quiet`).
    pub fn note(&self, message: impl Display) {
        note!("{}{message}", self.label);
    }

    /// Says that something went wrong while serving goes on (hidden by `--quiet`).
    pub fn warn(&self, message: impl Display) {
        warning!("{}{message}", self.label);
    }

    /// Sets the state `/status` shows for the source (None: nothing to say).
    pub fn set_state(&self, state: Option<String>) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }

    pub fn state(&self) -> Option<String> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
