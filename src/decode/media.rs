//! Content types: the media type of a Content-Type, the type of a frame that may declare one,
//! and the type a file's name suggests.

use std::path::Path;

use crate::decode::image::sniff_image;
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

/// The type of a frame whose sender may declare one (a part's or a response's Content-Type):
/// the declared type if a header can carry it, else what the bytes are (an image), else
/// `application/octet-stream`.
pub fn frame_type(declared: Option<&str>, bytes: &[u8]) -> HeaderValue {
    declared
        .filter(|t| !t.trim().is_empty())
        .and_then(|t| HeaderValue::new(t.to_string()).ok())
        .or_else(|| sniff_image(bytes).map(HeaderValue::from_static))
        .unwrap_or_else(|| HeaderValue::from_static("application/octet-stream"))
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

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = include_bytes!("../../tests/fixtures/red.png");

    #[test]
    fn a_frame_is_of_its_declared_type_else_of_what_its_bytes_are() {
        let typed = |declared, bytes| frame_type(declared, bytes).to_string();
        assert_eq!(typed(Some("text/plain"), PNG), "text/plain");
        for unusable in [None, Some(""), Some("  "), Some("image/\x01png")] {
            assert_eq!(typed(unusable, PNG), "image/png", "{unusable:?}");
            assert_eq!(typed(unusable, b"%PDF"), "application/octet-stream");
        }
        assert_eq!(media_type(" Image/JPEG; q=1"), "image/jpeg");
    }
}
