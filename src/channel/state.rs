//! What a channel says of its source: the kind of source ([`SourceKind`]) and what the source
//! last said of its health ([`SourceState`]), each rendered here in the words `/status` and
//! messages use.

use std::fmt::{self, Display};
use std::time::Duration;

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
