//! What a source is opened with, as the command line gives it: what it is ([`What`]) and the
//! options each kind takes ([`SourceOptions`]). `config.rs` makes them from the command line;
//! the sources read them, and nothing of clap but the derive that names [`Order`]'s values.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::http::head::HeaderValue;

/// One source, as given.
pub enum What {
    /// A file or a folder.
    Path(PathBuf),
    Stdin,
    /// An `http://` or `https://` URL.
    Url(String),
    /// `--exec`
    Command(String),
}

/// What every source is opened with; each kind takes what applies to it.
pub struct SourceOptions {
    pub poll: Duration,
    /// `--poll-only`: files and folders are looked at every `poll`, never woken by events.
    pub poll_only: bool,
    pub content_type: Option<HeaderValue>,
    pub max_frame: u64,
    /// `--keepalive`, for a relay's idle limit (see `Args::keepalive`).
    pub keepalive: Duration,
    pub lines: usize,
    pub once: bool,
    /// `--netrc-file`, read by each relay that needs it.
    pub netrc: Option<PathBuf>,
    pub slideshow: SlideshowOptions,
}

pub struct SlideshowOptions {
    pub interval: Duration,
    /// Lower case, without the dot.
    pub extensions: Vec<String>,
    pub recursive: bool,
    pub follow_links: bool,
    pub order: Order,
}

/// `--order`: the order of the slides in each cycle (the comments are its values' help).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// By path, numbers in natural order (img2 before img10)
    Name,
    /// Oldest modification first
    Mtime,
    /// Shuffled anew every cycle
    Random,
}

/// A mistake on the command line found after clap (a source that cannot be what it is named
/// as): exits 2 with clap's usage line.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}
