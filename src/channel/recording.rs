//! The one way a source's unit tests see what it does (compiled for tests only): every frame
//! published, line said and state set on a channel, recorded as it happens.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::channel::{Channel, SourceKind, SourceState};
use crate::frame::Frame;

/// The one way a source's unit tests see what it does: run it on [`Channel::for_test`], then
/// read [`Channel::recorded`] (or the channel itself: its `state()`, `latest`), and close it
/// with `channel.latest.close()` as the server's shutdown does.
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Said {
    Note(String),
    Warning(String),
}

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

    pub(super) fn record(&self, add: impl FnOnce(&mut Recorded)) {
        add(&mut self.recorded.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

/// See [`Channel::closing`].
pub struct Closing<'a>(&'a Channel);

impl Drop for Closing<'_> {
    fn drop(&mut self) {
        self.0.latest.close();
    }
}
