//! Everything pushserve says on stderr goes through here, so that `--quiet`, `--verbose` and
//! the live status line (which must not be torn by a message) are decided in one place.

use std::sync::atomic::{AtomicU8, Ordering};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
#[repr(u8)]
pub enum Level {
    /// Errors only.
    Quiet = 0,
    /// Errors, warnings and notes (what the source is doing).
    Normal = 1,
    /// Also one access line per finished connection.
    Verbose = 2,
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Normal as u8);

pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    LEVEL.load(Ordering::Relaxed) >= level as u8
}

/// Prints one line, prefixed with the program name, if `level` is enabled.
pub fn line(level: Level, message: std::fmt::Arguments) {
    if enabled(level) {
        crate::status::print_line(&format!("pushserve: {message}"));
    }
}

/// An I/O error as one short phrase: "No such file or directory", without Rust's "(os error 2)".
pub fn describe_io_error(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}
