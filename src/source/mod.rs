//! Sources: the producers that turn a file, a folder, stdin, a command or another server's
//! stream into frames published to their [`Channel`].
//!
//! A source owns all access to what feeds it (the filesystem, a pipe, a child process, an
//! upstream connection), each on a thread of its own; connections only ever see published
//! frames. Nothing outside this folder and the command line knows the kinds of source.

pub mod complete;
pub mod file;
pub mod slideshow;

use std::path::Path;

use crate::channel::Channel;
use crate::http::head::HeaderValue;

/// What a source does on its thread: publish into `channel` until the server closes, or, with
/// `--once`, until it has played once (a folder's cycle, stdin or an upstream to its end, one
/// run of a command, a file's current version). Returning ends nothing else.
pub trait Producer: Send {
    fn run(self: Box<Self>, channel: &Channel);
}

/// A source as the command line names it, checked and ready to run.
pub struct Source {
    /// The name it is served under, `/NAME/`.
    pub name: String,
    /// `file`, `folder`, `stdin`, `relay` or `command`: for `/status` only.
    pub kind: &'static str,
    /// The path, URL (without credentials) or command, for `/status` and messages.
    pub description: String,
    pub producer: Box<dyn Producer>,
}

/// The content type of a frame by its first bytes, for sources that have no file name: JPEG,
/// PNG, GIF, WebP, BMP; None for anything else.
pub fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0xFF, 0xD8, 0xFF, ..] => Some("image/jpeg"),
        [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1A, b'\n', ..] => Some("image/png"),
        [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => Some("image/gif"),
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => Some("image/webp"),
        [b'B', b'M', ..] if bytes.len() >= 26 => Some("image/bmp"),
        _ => None,
    }
}

/// The content type for a file: `--type` if given, else guessed from the extension, with a
/// UTF-8 charset for text so browsers do not guess one.
pub fn content_type_for(path: &Path, forced: Option<&HeaderValue>) -> HeaderValue {
    if let Some(forced) = forced {
        return forced.clone();
    }
    let guessed = mime_guess::from_path(path).first_or_octet_stream();
    let text =
        if guessed.type_() == mime_guess::mime::TEXT && guessed.get_param("charset").is_none() {
            format!("{guessed}; charset=utf-8")
        } else {
            guessed.to_string()
        };
    HeaderValue::new(text).unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
}
