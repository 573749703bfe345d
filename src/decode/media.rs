//! Content types: the media type of a Content-Type, and the type a file's name suggests.

use std::path::Path;

use crate::http::head::HeaderValue;

/// The media type of a Content-Type, lower-case, without parameters: `image/jpeg` of
/// `Image/JPEG; q=1`.
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
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
