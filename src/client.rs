//! Who is asking for `/stream`, and so what its stream must look like: the framing that makes
//! that client show each part at once, and the content types it can show at all.
//!
//! No one framing serves every client at zero lag, and no client shows every type: an `<img>`
//! cannot show a text part (Chromium's goes blank for good at the first one), and ffmpeg,
//! OpenCV, mpv, VLC and GStreamer end their stream at the first part that is not JPEG. So each
//! request is recognised here, by what it says of itself (`Sec-Fetch-Dest`, `Accept`,
//! `User-Agent`), and a query parameter overrides each guess. This module only decides;
//! `push.rs` writes.

use crate::frame::Frame;
use crate::http::request::Request;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Framing {
    /// Part N+1's boundary and headers go out right after part N's body.
    Browser,
    /// Whole parts with Content-Length, each followed by `\r\n--B`.
    Reader,
}

impl Framing {
    /// `?framing=browser|reader` if given, else browsers by their `Mozilla/` User-Agent.
    pub fn for_request(req: &Request) -> Framing {
        match req.query_param("framing") {
            Some("browser") => Framing::Browser,
            Some("reader") => Framing::Reader,
            _ if req
                .header("user-agent")
                .is_some_and(|ua| ua.starts_with("Mozilla/")) =>
            {
                Framing::Browser
            }
            _ => Framing::Reader,
        }
    }
}

/// mpv shows a part only once it has a second of video queued behind it, and counts each part
/// of a multipart stream (which has no timestamps) as 1/25 s: so each part sent to mpv is
/// followed by this many empty ones, which it counts and does not show. Fewer than 24 leave
/// it a change behind, or more (measured with mpv 0.35).
const MPV_EMPTY_PARTS: usize = 29;

/// How many empty parts to send after each part: [`MPV_EMPTY_PARTS`] for mpv (`libmpv`), else
/// none.
pub fn empty_parts_after(req: &Request) -> usize {
    let agent = req.header("user-agent").unwrap_or("");
    if agent.starts_with("libmpv") || agent.starts_with("mpv") {
        MPV_EMPTY_PARTS
    } else {
        0
    }
}

/// Whether the client is VLC, whose MJPEG demuxer needs each part padded (see `push.rs`).
pub fn is_vlc(req: &Request) -> bool {
    req.header("user-agent")
        .is_some_and(|agent| agent.starts_with("VLC/"))
}

/// User-Agents of readers that stop at the first part that is not JPEG: ffmpeg and OpenCV
/// (`Lavf/`), mpv (`libmpv`, or ffmpeg's when built without it), VLC and GStreamer.
const JPEG_ONLY_AGENTS: [&str; 5] = ["Lavf/", "libmpv", "mpv", "VLC/", "GStreamer"];

/// The content types a client is sent parts of; frames of other types are left out of its
/// stream, and it keeps showing the last part it got.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PartTypes(Vec<MediaRange>);

/// `type/subtype`, `type/*` or `*/*`, lowercase.
#[derive(Clone, PartialEq, Eq, Debug)]
struct MediaRange {
    kind: String,
    subtype: String,
}

/// `?type=` that is not a list of media ranges.
#[derive(Debug)]
pub struct BadTypes;

impl PartTypes {
    /// `?type=image/jpeg,image/png` (or `image/*`) if given; else images for an image
    /// request (`<img>`: `Sec-Fetch-Dest: image`, or an `Accept` that starts with an image
    /// type), JPEG for the readers that take nothing else, and everything for the rest.
    pub fn for_request(req: &Request) -> Result<PartTypes, BadTypes> {
        if let Some(list) = req.query_param("type") {
            return PartTypes::parse(&percent_decode(list));
        }
        let image_request = req
            .header("sec-fetch-dest")
            .is_some_and(|d| d.trim().eq_ignore_ascii_case("image"))
            || req
                .header("accept")
                .is_some_and(|a| a.trim_start().to_ascii_lowercase().starts_with("image/"));
        let agent = req.header("user-agent").unwrap_or("");
        Ok(if image_request {
            PartTypes::parse("image/*")
        } else if JPEG_ONLY_AGENTS.iter().any(|a| agent.starts_with(a)) {
            PartTypes::parse("image/jpeg")
        } else {
            PartTypes::parse("*/*")
        }
        .expect("a valid media range"))
    }

    /// A comma-separated list of media ranges; parameters (`;q=0.8`) are ignored.
    pub fn parse(list: &str) -> Result<PartTypes, BadTypes> {
        // Exactly as many as there are: a stream keeps them as long as it lasts. A loop: an
        // iterator collected into `Option<Vec<_>>` took 1 KB of stack, at the deepest point of
        // a stream's start, a page past what an idle connection's thread may touch.
        let mut ranges = Vec::with_capacity(list.split(',').count());
        for item in list.split(',') {
            let range = item.split(';').next().unwrap_or("");
            ranges.push(MediaRange::parse(range).ok_or(BadTypes)?);
        }
        Ok(PartTypes(ranges))
    }

    /// Whether the client is sent parts of this frame.
    pub fn shows(&self, frame: &Frame) -> bool {
        self.shows_type(frame.content_type.as_str())
    }

    fn shows_type(&self, content_type: &str) -> bool {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        let (kind, subtype) = essence.split_once('/').unwrap_or((essence, ""));
        self.0.iter().any(|r| r.matches(kind, subtype))
    }
}

impl MediaRange {
    fn parse(range: &str) -> Option<MediaRange> {
        let (kind, subtype) = range.trim().split_once('/')?;
        let token = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+*".contains(&b))
        };
        let range = MediaRange {
            kind: kind.to_ascii_lowercase(),
            subtype: subtype.to_ascii_lowercase(),
        };
        // `*/jpeg` names nothing.
        let wild_kind_only = range.kind == "*" && range.subtype != "*";
        (token(kind) && token(subtype) && !wild_kind_only).then_some(range)
    }

    fn matches(&self, kind: &str, subtype: &str) -> bool {
        (self.kind == "*" || self.kind.eq_ignore_ascii_case(kind))
            && (self.subtype == "*" || self.subtype.eq_ignore_ascii_case(subtype))
    }
}

/// `image%2Fjpeg` → `image/jpeg`: browsers and scripts may encode the query value. Bytes that
/// do not decode are kept as they are, and so is `+` (`image/svg+xml`).
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::parse_for_test as parse;

    fn types(head: &str) -> PartTypes {
        PartTypes::for_request(&parse(head)).unwrap()
    }

    const JPEG: &str = "image/jpeg";
    const PNG: &str = "image/png";
    const TEXT: &str = "text/plain; charset=utf-8";

    #[test]
    fn an_img_request_gets_images() {
        let chromium = types(
            "GET /stream HTTP/1.1\r\nHost: a\r\nUser-Agent: Mozilla/5.0\r\nSec-Fetch-Dest: image\r\n\
             Accept: image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8\r\n\r\n",
        );
        assert!(chromium.shows_type(JPEG) && chromium.shows_type(PNG));
        assert!(!chromium.shows_type(TEXT));
        // Without Sec-Fetch-Dest (older browsers, or not a secure context), by Accept.
        let firefox = types("GET /stream HTTP/1.1\r\nHost: a\r\nAccept: image/avif,*/*\r\n\r\n");
        assert_eq!(firefox, chromium);
        let tab = types(
            "GET /stream HTTP/1.1\r\nHost: a\r\nUser-Agent: Mozilla/5.0\r\nSec-Fetch-Dest: document\r\n\
             Accept: text/html,*/*\r\n\r\n",
        );
        assert!(
            tab.shows_type(TEXT),
            "a page opened on the stream shows every part"
        );
    }

    #[test]
    fn readers_that_stop_at_other_types_get_jpeg() {
        for agent in [
            "Lavf/59.27.100",
            "libmpv",
            "VLC/3.0.18 LibVLC/3.0.18",
            "GStreamer souphttpsrc 1.22.0 libsoup/3.2.2",
        ] {
            let t = types(&format!(
                "GET /stream HTTP/1.1\r\nHost: a\r\nUser-Agent: {agent}\r\n\r\n"
            ));
            assert!(t.shows_type(JPEG) && !t.shows_type(PNG), "{agent}");
        }
        let curl = types("GET /stream HTTP/1.1\r\nHost: a\r\nUser-Agent: curl/7.88.1\r\n\r\n");
        assert!(curl.shows_type(PNG) && curl.shows_type(TEXT));
    }

    #[test]
    fn the_query_chooses() {
        let t = types(
            "GET /stream?type=image/png,text/* HTTP/1.1\r\nHost: a\r\nUser-Agent: Lavf/59\r\n\r\n",
        );
        assert!(t.shows_type(PNG) && t.shows_type(TEXT) && !t.shows_type(JPEG));
        let t = types(
            "GET /stream?type=image%2F%2A HTTP/1.1\r\nHost: a\r\nSec-Fetch-Dest: image\r\n\r\n",
        );
        assert!(t.shows_type(PNG) && !t.shows_type(TEXT));
        let all =
            types("GET /stream?type=*/* HTTP/1.1\r\nHost: a\r\nSec-Fetch-Dest: image\r\n\r\n");
        assert!(all.shows_type(TEXT));
        let svg = types("GET /stream?type=image/svg+xml HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(svg.shows_type("image/svg+xml") && !svg.shows_type(PNG));
        // Any case of hex digits; `+` is kept; a `%` without two hex digits is not decoded.
        let query = |q: &str| {
            PartTypes::for_request(&parse(&format!(
                "GET /stream?type={q} HTTP/1.1\r\nHost: a\r\n\r\n"
            )))
        };
        let t = query("%69mage%2fpng,image%2Fsvg%2bxml").unwrap();
        assert!(t.shows_type(PNG) && t.shows_type("image/svg+xml") && !t.shows_type(JPEG));
        for bad in [
            "image%2",
            "image%zzpng",
            "image%2F",
            "image/png%",
            "image%2Fpng%2C",
        ] {
            assert!(query(bad).is_err(), "{bad:?}");
        }
        for bad in ["", "jpeg", "image/", "*/jpeg", "image/jp eg", "image/jpeg,"] {
            assert!(PartTypes::parse(bad).is_err(), "{bad:?}");
        }
    }
}
