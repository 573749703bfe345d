//! A channel: one source's name, what the source is ([`SourceKind`]), its latest frame, its
//! counters and what it last said of its health ([`SourceState`]; both in `state.rs`).
//! A source publishes into its channel and waits on it ([`Channel::wait`]: the one wait of every
//! source, which the server's closing ends at once); every handler is given the channel it
//! serves, and knows nothing of the kind of source behind it. Sources' unit tests read what
//! was done with a channel from `recording.rs`.

use std::fmt::Display;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::frame::{Frame, Latest, NewFrame};
use crate::stats::Stats;
use crate::wake::Waiter;

mod state;
pub use state::{Lost, OtherBoundary, SourceKind, SourceState, seconds};

#[cfg(test)]
mod recording;
#[cfg(test)]
pub use recording::{Recorded, Said};

pub struct Channel {
    /// URL-safe: the channel's endpoints are under `/NAME/`.
    pub name: String,
    /// What feeds it, for `/status` and messages: a kind and the path, URL (without
    /// credentials) or command.
    pub kind: SourceKind,
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
    /// What the source last said of its health, for `/status` (None: nothing to say).
    state: Mutex<Option<SourceState>>,
    /// Everything the source did with its channel, for its unit tests.
    #[cfg(test)]
    recorded: Mutex<Recorded>,
}

/// What a source's [`Channel::wait`] came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Waited<T> {
    /// The server is closing: the source returns.
    Closed,
    /// The deadline came.
    Due,
    /// What the source waited for.
    Found(T),
}

/// What a look during [`Channel::wait`] saw.
pub enum Look<T> {
    Found(T),
    /// Nothing yet: look again when woken, or at the time given, if sooner than the deadline.
    Again(Option<Instant>),
}

impl Channel {
    pub fn new(
        name: String,
        kind: SourceKind,
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
            #[cfg(test)]
            recorded: Mutex::default(),
        })
    }

    /// Makes `new` the current frame of this channel and wakes its clients.
    pub fn publish(&self, new: NewFrame) -> Arc<Frame> {
        let frame = self.latest.publish(Frame::render(new, &self.boundary));
        #[cfg(test)]
        self.record(|r| r.frames.push(Arc::clone(&frame)));
        frame
    }

    /// The server is shutting down: sources stop publishing and return.
    pub fn is_closed(&self) -> bool {
        self.latest.is_closed()
    }

    /// The one wait of every source: until `until` (None: until the server closes), until
    /// `look` finds what the source waits for, or until the server closes, whichever comes
    /// first. `look` runs first and at each wake-up of `waiter` (the thread of the caller: the
    /// close wakes it at once, and so may whoever hands the source something), so no source
    /// sleeps through a shutdown.
    pub fn wait<T>(
        &self,
        waiter: &Arc<Waiter>,
        until: Option<Instant>,
        mut look: impl FnMut(Instant) -> Look<T>,
    ) -> Waited<T> {
        // Subscribed before looking, so a close in between still wakes the sleep below.
        let _woken_by_close = self.latest.subscribe(waiter);
        loop {
            if self.is_closed() {
                return Waited::Closed;
            }
            let now = Instant::now();
            let again = match look(now) {
                Look::Found(found) => return Waited::Found(found),
                Look::Again(again) => again,
            };
            if until.is_some_and(|until| now >= until) {
                return Waited::Due;
            }
            let wake_at = match (until, again) {
                (Some(until), Some(again)) => Some(until.min(again)),
                (until, again) => until.or(again),
            };
            waiter.sleep(wake_at);
        }
    }

    /// A source's wait between polls, retries or slides: `time`, or less if the server closes
    /// first; false if it has.
    pub fn pause(&self, time: Duration) -> bool {
        // None: beyond the clock's range, which is until the server closes.
        let until = Instant::now().checked_add(time);
        let waited = self.wait(&Waiter::for_current_thread(), until, |_| {
            Look::<()>::Again(None)
        });
        waited != Waited::Closed
    }

    /// Says what the source is doing (a note on stderr, hidden by `--quiet`).
    pub fn note(&self, message: impl Display) {
        note!("{}{message}", self.label);
        #[cfg(test)]
        self.record(|r| r.said.push(Said::Note(message.to_string())));
    }

    /// Says that something went wrong while serving goes on (hidden by `--quiet`).
    pub fn warn(&self, message: impl Display) {
        warning!("{}{message}", self.label);
        #[cfg(test)]
        self.record(|r| r.said.push(Said::Warning(message.to_string())));
    }

    /// Sets the state `/status` shows for the source (None: nothing to say).
    pub fn set_state(&self, state: Option<SourceState>) {
        #[cfg(test)]
        self.record(|r| r.states.push(state.clone()));
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }

    pub fn state(&self) -> Option<SourceState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
