//! Sources: the producers that turn a PATH into frames published to [`crate::frame::Latest`].
//!
//! A source owns all filesystem access; connections only ever see published frames.

pub mod complete;
pub mod file;
pub mod slideshow;

use std::path::Path;
use std::sync::Arc;

use crate::frame::Latest;
use crate::http::head::HeaderValue;

/// What PATH turned out to be.
pub enum Source {
    File(file::FileSource),
    /// A folder, with the slide to show first.
    Slideshow(slideshow::Slideshow, slideshow::FirstSlide),
}

impl Source {
    /// Publishes frames until the server closes (or a `--once` slideshow ends).
    pub fn run(self, latest: Arc<Latest>) {
        match self {
            Source::File(file) => file.run(latest),
            Source::Slideshow(show, first) => show.run(latest, first),
        }
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
