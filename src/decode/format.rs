//! What a stream of frames is (stdin's): told by `--type`, or else by its first bytes. A
//! multipart stream (`ffmpeg -f mpjpeg -`) is a frame per part; concatenated JPEG or PNG images
//! (`ffmpeg -f image2pipe -`) are split; anything else is text, tailed. Whoever reads the stream
//! waits for the bytes; this only looks at them.

use crate::decode::image::{Kind, Starts, signature_at};
use crate::decode::media::media_type;
use crate::decode::multipart;
use crate::http::head::HeaderValue;

/// A multipart stream's first line: `--`, a boundary of up to 70 characters, CRLF.
const FIRST_LINE_MAX: usize = 2 + 70 + 2;

/// How a stream is cut into frames.
#[derive(Debug, PartialEq, Eq)]
pub enum Format {
    /// A frame per part.
    Multipart { boundary: String },
    /// Concatenated images of these kinds; with `--type`, published as that type.
    Images {
        kinds: &'static [Kind],
        content_type: Option<HeaderValue>,
    },
    /// The last lines as one text frame of this type.
    Text(HeaderValue),
    /// All of the stream, to its end, as one frame of this type.
    Whole(HeaderValue),
}

/// The format `--type` names: JPEG and PNG are split, text is tailed, a multipart type with a
/// boundary is parsed, anything else is one frame.
pub fn format_for(content_type: &HeaderValue) -> Format {
    let essence = media_type(content_type.as_str());
    match essence.as_str() {
        "image/jpeg" => Format::Images {
            kinds: &[Kind::Jpeg],
            content_type: Some(content_type.clone()),
        },
        "image/png" => Format::Images {
            kinds: &[Kind::Png],
            content_type: Some(content_type.clone()),
        },
        e if e.starts_with("text/") => {
            // The tail is UTF-8 whatever came in (invalid bytes are replaced): say so.
            let t = content_type.as_str();
            Format::Text(if t.to_ascii_lowercase().contains("charset=") {
                content_type.clone()
            } else {
                HeaderValue::new(format!("{t}; charset=utf-8")).unwrap_or_else(|_| text_plain())
            })
        }
        e if e.starts_with("multipart/") => {
            match multipart::boundary_from_content_type(content_type.as_str()) {
                Some(boundary) => Format::Multipart { boundary },
                None => Format::Whole(content_type.clone()),
            }
        }
        _ => Format::Whole(content_type.clone()),
    }
}

pub fn text_plain() -> HeaderValue {
    HeaderValue::from_static("text/plain; charset=utf-8")
}

/// The format the first bytes of a stream tell, or None while they are too few to tell.
pub fn sniff_format(head: &[u8]) -> Option<Format> {
    if head.is_empty() {
        return None;
    }
    if head.starts_with(b"--") || head == b"-" {
        let Some(end) = head.iter().take(FIRST_LINE_MAX).position(|&b| b == b'\n') else {
            return (head.len() >= FIRST_LINE_MAX).then(|| Format::Text(text_plain()));
        };
        // A line of dashes heading a log is not a boundary: a part's header must follow.
        return match multipart::boundary_from_first_line(head) {
            Some(boundary) => match multipart::header_starts(&head[end + 1..])? {
                true => Some(Format::Multipart { boundary }),
                false => Some(Format::Text(text_plain())),
            },
            None => Some(Format::Text(text_plain())),
        };
    }
    match signature_at(head, Kind::ALL) {
        Starts::Of(_) => Some(Format::Images {
            kinds: Kind::ALL,
            content_type: None,
        }),
        Starts::TooShort => None,
        Starts::None => Some(Format::Text(text_plain())),
    }
}

/// Whether `head` is a multipart stream's first boundary line and nothing more: ffmpeg writes
/// it on its own, before its first frame is encoded, so it may wait as long as that takes.
pub fn is_first_boundary_line(head: &[u8]) -> bool {
    head.ends_with(b"\r\n")
        && head.len() <= FIRST_LINE_MAX
        && multipart::boundary_from_first_line(head).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RED_PNG: &[u8] = include_bytes!("../../tests/fixtures/red.png");

    #[test]
    fn first_bytes_tell_the_format() {
        let text = || Some(Format::Text(text_plain()));
        let multipart = || {
            Some(Format::Multipart {
                boundary: "ffmpeg".into(),
            })
        };
        assert_eq!(
            sniff_format(b"--ffmpeg\r\nContent-type: image/jpeg"),
            multipart()
        );
        assert_eq!(sniff_format(b"--ffmpeg\r\n\r\n"), multipart());
        assert_eq!(sniff_format(b"--ffmpeg\r\nContent-ty"), None);
        assert_eq!(sniff_format(b"--ffmpeg\r"), None);
        assert_eq!(sniff_format(b"--ffmpeg\r\nnot a header: x"), text());
        assert_eq!(sniff_format(b"---\nhello"), None, "hello: could follow");
        assert_eq!(sniff_format(b"---\nhello world"), text());
        assert_eq!(sniff_format(b"-"), None);
        assert_eq!(sniff_format(b"-x"), text());
        assert_eq!(sniff_format(b"\x89PNG"), None);
        assert_eq!(sniff_format(b"hello"), text());
        assert!(matches!(sniff_format(RED_PNG), Some(Format::Images { .. })));
    }

    #[test]
    fn a_first_boundary_line_is_one_line_with_crlf() {
        assert!(is_first_boundary_line(b"--ffmpeg\r\n"));
        assert!(!is_first_boundary_line(b"--ffmpeg\n"));
        let long = format!("--{}\r\n", "b".repeat(71));
        assert!(!is_first_boundary_line(long.as_bytes()));
        assert!(!is_first_boundary_line(b"hello\r\n"));
    }

    #[test]
    fn a_forced_type_names_the_format() {
        let forced = |t: &'static str| format_for(&HeaderValue::from_static(t));
        assert_eq!(
            forced("image/PNG"),
            Format::Images {
                kinds: &[Kind::Png],
                content_type: Some(HeaderValue::from_static("image/PNG")),
            }
        );
        assert_eq!(
            forced("text/html"),
            Format::Text(HeaderValue::from_static("text/html; charset=utf-8"))
        );
        assert_eq!(
            forced("text/csv; charset=latin1"),
            Format::Text(HeaderValue::from_static("text/csv; charset=latin1"))
        );
        assert_eq!(
            forced("multipart/x-mixed-replace; boundary=B"),
            Format::Multipart {
                boundary: "B".into()
            }
        );
        assert_eq!(
            forced("multipart/mixed"),
            Format::Whole(HeaderValue::from_static("multipart/mixed"))
        );
    }
}
