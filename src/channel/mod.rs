//! A channel: one source's name, what the source is ([`SourceKind`]), its latest frame, its
//! counters and what it last said of its health ([`SourceState`], rendered here for `/status`).
//! A source publishes into its channel and waits on it ([`Channel::wait`]: the one wait of every
//! source, which the server's closing ends at once); every handler is given the channel it
//! serves, and knows nothing of the kind of source behind it.

use std::fmt::{self, Display};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::frame::{Frame, Latest, NewFrame};
use crate::stats::Stats;
use crate::wake::Waiter;

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

/// The kinds of source, as `/status` and messages name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    File,
    Folder,
    Stdin,
    Relay,
    Command,
}

impl SourceKind {
    /// The name `/status` gives the kind: `file`, `folder`, `stdin`, `relay`, `command`.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::File => "file",
            SourceKind::Folder => "folder",
            SourceKind::Stdin => "stdin",
            SourceKind::Relay => "relay",
            SourceKind::Command => "command",
        }
    }
}

impl Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a source can say of its health, shown by `/status` in the words of [`Display`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceState {
    /// A relay opening its upstream.
    Connecting,
    /// A relay whose upstream answers; `framing` when its parts are delimited by another
    /// boundary than the one named.
    Connected { framing: Option<OtherBoundary> },
    /// A relay whose upstream ended or failed: it tries again `after` that.
    Retrying { after: Duration, why: Lost },
    /// Stdin's parts are delimited by another boundary than the one its first line named.
    Delimited(OtherBoundary),
    /// A command's last run failed: the warning that said how.
    Failing(String),
    /// A file's or folder's change events cannot be relied on, so it is polled: the warning
    /// that said why.
    Polled(String),
}

/// A multipart stream whose parts are delimited by `--found`, not by `--given` as named (by
/// the stream's header when `named_by_header`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtherBoundary {
    pub found: String,
    pub given: String,
    pub named_by_header: bool,
}

/// Why a relay lost its upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lost {
    /// The upstream ended its answer: no failure, a stream that ends (a relay reconnects).
    Ended,
    /// What went wrong, in the words said on stderr.
    Failed(String),
}

impl Display for SourceState {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            SourceState::Connecting => f.write_str("connecting"),
            SourceState::Connected { framing: None } => f.write_str("connected"),
            SourceState::Connected {
                framing: Some(framing),
            } => write!(f, "connected; {framing}"),
            SourceState::Retrying { after, why } => {
                write!(f, "retrying in {}: {why}", seconds(*after))
            }
            SourceState::Delimited(framing) => write!(f, "{framing}"),
            SourceState::Failing(message) | SourceState::Polled(message) => f.write_str(message),
        }
    }
}

impl OtherBoundary {
    /// The boundary named, as a message says it.
    pub fn named(&self) -> String {
        let given = &self.given;
        if self.named_by_header {
            format!("the boundary its header names (--{given})")
        } else {
            format!("--{given}")
        }
    }
}

impl Display for OtherBoundary {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "parts delimited by --{}, not by {}",
            self.found,
            self.named()
        )
    }
}

impl Display for Lost {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Lost::Ended => f.write_str("upstream ended"),
            Lost::Failed(why) => f.write_str(why),
        }
    }
}

/// A wait of a few ms to minutes as people read it: `20 ms`, `1.5 s`, `30 s`.
pub fn seconds(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() == 0 || d >= Duration::from_secs(10) {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
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

/// The one way a source's unit tests see what it does: run it on [`Channel::for_test`], then
/// read [`Channel::recorded`] (or the channel itself: its `state()`, `latest`), and close it
/// with `channel.latest.close()` as the server's shutdown does.
#[cfg(test)]
#[derive(Clone, Default)]
pub struct Recorded {
    /// Every frame published, in order.
    pub frames: Vec<Arc<Frame>>,
    /// Every note and warning, in order, without the channel's label.
    pub said: Vec<Said>,
    /// Every state set, in order (None: cleared).
    pub states: Vec<Option<SourceState>>,
}

/// A line a source said on stderr.
#[cfg(test)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Said {
    Note(String),
    Warning(String),
}

#[cfg(test)]
impl Recorded {
    /// The bodies of the frames published.
    pub fn bodies(&self) -> Vec<Vec<u8>> {
        self.frames.iter().map(|f| f.bytes.to_vec()).collect()
    }

    /// Every line said, notes and warnings alike.
    pub fn lines(&self) -> Vec<String> {
        self.said
            .iter()
            .map(|said| match said {
                Said::Note(line) | Said::Warning(line) => line.clone(),
            })
            .collect()
    }

    pub fn warnings(&self) -> Vec<String> {
        let warning = |said: &Said| match said {
            Said::Warning(line) => Some(line.clone()),
            Said::Note(_) => None,
        };
        self.said.iter().filter_map(warning).collect()
    }
}

#[cfg(test)]
impl Channel {
    /// A channel alone (no label on what it says) for a unit test of a `kind` of source.
    pub fn for_test(kind: SourceKind) -> Arc<Channel> {
        Channel::new("t".into(), kind, "-".into(), "B".into(), false)
    }

    /// What the source has done with this channel so far.
    pub fn recorded(&self) -> Recorded {
        self.recorded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until what was recorded is `done`, failing the test after 5 s; what it was then.
    pub fn wait_recorded(&self, what: &str, done: impl Fn(&Recorded) -> bool) -> Recorded {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let recorded = self.recorded();
            if done(&recorded) {
                return recorded;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Closes the channel when dropped, as the server's shutdown does, even when an assertion
    /// fails first: a source run in a `thread::scope` then always returns.
    pub fn closing(&self) -> Closing<'_> {
        Closing(self)
    }

    fn record(&self, add: impl FnOnce(&mut Recorded)) {
        add(&mut self.recorded.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

/// See [`Channel::closing`].
#[cfg(test)]
pub struct Closing<'a>(&'a Channel);

#[cfg(test)]
impl Drop for Closing<'_> {
    fn drop(&mut self) {
        self.0.latest.close();
    }
}
