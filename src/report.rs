//! Everything pushserve says on stderr goes through here, so that `--quiet`, `--verbose`, the
//! live status line (which must not be torn by a message) and the escaping of what comes from
//! outside (file names, request paths) are decided in one place. Nothing here can fail: with
//! stderr closed, a message is lost, and serving goes on.

use std::borrow::Cow;
use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

use indicatif::ProgressBar;

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
        print_line(&format!(
            "pushserve: {}",
            escape_controls(&message.to_string())
        ));
    }
}

/// The live status line (`status.rs`), when stderr is a terminal and `--quiet` is off.
static STATUS_LINE: OnceLock<ProgressBar> = OnceLock::new();

/// Keeps `bar` below every line printed from now on; false if one is already kept.
pub fn keep_below(bar: ProgressBar) -> bool {
    STATUS_LINE.set(bar).is_ok()
}

/// Removes the status line (before exiting, so the terminal is left clean).
pub fn clear_status_line() {
    if let Some(bar) = STATUS_LINE.get() {
        bar.finish_and_clear();
    }
}

/// Writes one line to stderr, above the status line if there is one.
fn print_line(line: &str) {
    match STATUS_LINE.get() {
        Some(bar) => bar.suspend(|| write_stderr(line)),
        None => write_stderr(line),
    }
}

/// Writes `line` and a newline to stderr, dropping it if stderr is gone (never a panic, unlike
/// `eprintln!`).
fn write_stderr(line: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr
        .write_all(line.as_bytes())
        .and_then(|()| stderr.write_all(b"\n"));
}

/// `text` with every control character (C0, DEL, C1) and bidirectional override shown as an
/// escape like `\u{1b}`: a file named with an ESC sequence or a newline must neither drive the
/// terminal nor forge a line of its own.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    let unsafe_char =
        |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// An I/O error as one short phrase: "No such file or directory", without Rust's "(os error 2)"
/// or the full stop of Windows' sentences ("Access is denied.").
pub fn describe_io_error(e: &std::io::Error) -> String {
    let text = e.to_string();
    let phrase = match text.find(" (os error ") {
        Some(at) => &text[..at],
        None => &text,
    };
    phrase.trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::{describe_io_error, escape_controls};

    #[test]
    fn an_io_error_is_a_phrase_without_its_code_or_full_stop() {
        let unix = std::io::Error::from_raw_os_error(2);
        assert!(!describe_io_error(&unix).contains("os error"), "{unix}");
        let windows = std::io::Error::other("Access is denied. (os error 5)");
        assert_eq!(describe_io_error(&windows), "Access is denied");
    }

    #[test]
    fn control_characters_are_shown_escaped() {
        assert_eq!(escape_controls("cam.jpg"), "cam.jpg");
        assert_eq!(
            escape_controls("\u{1b}[31mred\r\nfake line\u{7f}\u{9b}\u{202e}.jpg"),
            "\\u{1b}[31mred\\u{d}\\u{a}fake line\\u{7f}\\u{9b}\\u{202e}.jpg"
        );
    }
}
