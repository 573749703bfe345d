//! Who is asking for `/stream`, and so what its stream must look like: one [`Profile`] per
//! request, a plain value that `push.rs` applies without knowing whose it is.
//!
//! No one framing serves every client at zero lag, and no client shows every type: an `<img>`
//! cannot show a text part (Chromium's goes blank for good at the first one), and ffmpeg,
//! OpenCV, mpv, VLC and GStreamer end their stream at the first part that is not JPEG; mpv and
//! VLC each need more still (see [`CLIENTS`]). So each request is recognised here, by what it
//! says of itself (`Sec-Fetch-Dest`, `Accept`, `User-Agent`), as a row of [`CLIENTS`], the one
//! table of what each kind of client needs. `?client=NAME` names the row instead, for a player
//! behind another User-Agent, and `?framing=` and `?type=` override one field each. This
//! module only decides; `push.rs` writes.

use std::time::Duration;

use crate::frame::Frame;
use crate::http::request::Request;

/// What one client's stream must look like.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Profile {
    pub framing: Framing,
    pub types: PartTypes,
    /// A first part shorter than this gets a header line of padding that makes it this long.
    pub first_part_min: usize,
    /// Padding after each part of a reader stream.
    pub padding: Padding,
    /// Empty parts after each part of a reader stream, which the client counts and skips.
    pub empty_parts: usize,
    /// After the first part of a reader stream, when the client gets its last part again.
    pub warm_up: &'static [Duration],
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Framing {
    /// Part N+1's boundary and headers go out right after part N's body.
    Browser,
    /// Whole parts with Content-Length, each followed by `\r\n--B`.
    Reader,
}

/// Padding after each part of a reader stream, for a client that passes a part on only once
/// a count of bytes has arrived.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Padding {
    None,
    /// After each part's delimiter, a header line of the next part that makes the bytes from
    /// the part's first body byte reach a count exactly: `first` at first, `step` more
    /// whenever a part would not leave room, and never less on a connection.
    Blocks {
        first: usize,
        step: usize,
    },
}

/// One kind of client: the names `?client=` knows it by, the User-Agents it sends, and what its
/// stream needs.
struct Client {
    names: &'static [&'static str],
    /// User-Agent prefixes.
    agents: &'static [&'static str],
    framing: Framing,
    /// The media ranges it is sent parts of, unless the request is for an image.
    types: &'static str,
    first_part_min: usize,
    padding: Padding,
    empty_parts: usize,
    warm_up: &'static [Duration],
}

/// A first part smaller than this waits for later ones in two kinds of client: ffmpeg, and
/// OpenCV through it, unless told `-f mpjpeg`, read 2048 bytes to guess the format before they
/// emit anything; Chromium holds back a response to an `<img>` on another origin until it has
/// 1024 bytes to sniff (same-origin pages and Firefox do not).
const FIRST_PART_MIN: usize = 2048;

/// mpv shows a part only once it has a second of video queued behind it, and counts each part
/// of a multipart stream (which has no timestamps) as 1/25 s: so each part sent to mpv is
/// followed by this many empty ones, which it counts and does not show. Fewer than 24 leave
/// it a change behind, or more (measured with mpv 0.35).
const MPV_EMPTY_PARTS: usize = 29;

/// VLC's MJPEG demuxer passes a part on only once a fixed number of bytes, counted from the
/// part's first JPEG byte, has arrived: 15360 at first, 5120 more whenever a JPEG (with the
/// boundary) would not leave room, and never less on a connection (VLC 3.0). A byte short and
/// the part waits for the next, while that many bytes after the last boundary make VLC raise
/// the count: so the padding reaches it exactly.
const VLC_PADDING: Padding = Padding::Blocks {
    first: 15360,
    step: 5120,
};

/// VLC shows nothing live until it has handled a part more than its network caching (1 s by
/// default) after the first, and everything that late from then on: so it gets the current
/// frame again a few times in the first two seconds.
const VLC_WARM_UP: [Duration; 8] = [
    Duration::from_millis(150),
    Duration::from_millis(300),
    Duration::from_millis(500),
    Duration::from_millis(750),
    Duration::from_millis(1100),
    Duration::from_millis(1250),
    Duration::from_millis(1500),
    Duration::from_millis(2000),
];

/// A stream reader with nothing special about it: whole parts of every type.
const READER: Client = Client {
    names: &["reader", "curl"],
    agents: &[],
    framing: Framing::Reader,
    types: "*/*",
    first_part_min: FIRST_PART_MIN,
    padding: Padding::None,
    empty_parts: 0,
    warm_up: &[],
};

/// Readers that stop at the first part that is not JPEG.
const JPEG_READER: Client = Client {
    types: "image/jpeg",
    ..READER
};

/// Every kind of client with a stream of its own, found by its User-Agent in this order; any
/// other is a [`READER`].
const CLIENTS: [Client; 6] = [
    // Browsers show a part only once the next part's head has arrived.
    Client {
        names: &["browser"],
        agents: &["Mozilla/"],
        framing: Framing::Browser,
        ..READER
    },
    Client {
        names: &["vlc"],
        agents: &["VLC/"],
        padding: VLC_PADDING,
        warm_up: &VLC_WARM_UP,
        ..JPEG_READER
    },
    // `libmpv`, or ffmpeg's when mpv is built without it.
    Client {
        names: &["mpv"],
        agents: &["libmpv", "mpv"],
        empty_parts: MPV_EMPTY_PARTS,
        ..JPEG_READER
    },
    // OpenCV reads through ffmpeg, and says so.
    Client {
        names: &["ffmpeg", "opencv"],
        agents: &["Lavf/"],
        ..JPEG_READER
    },
    Client {
        names: &["gstreamer"],
        agents: &["GStreamer"],
        ..JPEG_READER
    },
    READER,
];

/// A query value this module does not take; the answer is a 400 with [`BadQuery::reason`].
#[derive(Debug, PartialEq, Eq)]
pub enum BadQuery {
    /// `?type=` that is not a list of media ranges.
    Types,
    /// `?client=` that names no client.
    Client,
}

impl BadQuery {
    /// One line for the client that asked.
    pub fn reason(&self) -> String {
        match self {
            BadQuery::Types => {
                "Bad Request: ?type= takes media types, e.g. image/jpeg or image/*\n".into()
            }
            BadQuery::Client => {
                let mut names = String::new();
                for name in CLIENTS.iter().flat_map(|c| c.names) {
                    if !names.is_empty() {
                        names += ", ";
                    }
                    names += name;
                }
                format!("Bad Request: ?client= takes one of {names}\n")
            }
        }
    }
}

impl Profile {
    /// The profile of the client `?client=` names, else of the one the User-Agent says; then
    /// `?framing=browser|reader` and `?type=` (else images for a request for an image) each
    /// override their field.
    pub fn for_request(req: &Request) -> Result<Profile, BadQuery> {
        let client = match req.query_param("client") {
            Some(name) => CLIENTS
                .iter()
                .find(|c| c.names.iter().any(|n| n.eq_ignore_ascii_case(name)))
                .ok_or(BadQuery::Client)?,
            None => {
                let agent = req.header("user-agent").unwrap_or("");
                CLIENTS
                    .iter()
                    .find(|c| c.agents.iter().any(|a| agent.starts_with(a)))
                    .unwrap_or(&READER)
            }
        };
        let framing = match req.query_param("framing") {
            Some("browser") => Framing::Browser,
            Some("reader") => Framing::Reader,
            _ => client.framing,
        };
        Ok(Profile {
            framing,
            types: PartTypes::for_request(req, client.types).map_err(|BadTypes| BadQuery::Types)?,
            first_part_min: client.first_part_min,
            padding: client.padding,
            empty_parts: client.empty_parts,
            warm_up: client.warm_up,
        })
    }
}

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
    /// type), else `client_types`, the client's own.
    fn for_request(req: &Request, client_types: &str) -> Result<PartTypes, BadTypes> {
        if let Some(list) = req.query_param("type") {
            return PartTypes::parse(&percent_decode(list));
        }
        let image_request = req
            .header("sec-fetch-dest")
            .is_some_and(|d| d.trim().eq_ignore_ascii_case("image"))
            || req
                .header("accept")
                .is_some_and(|a| a.trim_start().to_ascii_lowercase().starts_with("image/"));
        PartTypes::parse(if image_request {
            "image/*"
        } else {
            client_types
        })
    }

    /// A comma-separated list of media ranges; parameters (`;q=0.8`) are ignored.
    fn parse(list: &str) -> Result<PartTypes, BadTypes> {
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
        Profile::for_request(&parse(head)).unwrap().types
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
            Profile::for_request(&parse(&format!(
                "GET /stream?type={q} HTTP/1.1\r\nHost: a\r\n\r\n"
            )))
            .map(|p| p.types)
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

    fn profile(head: &str) -> Result<Profile, BadQuery> {
        Profile::for_request(&parse(head))
    }

    #[test]
    fn the_user_agent_finds_the_client() {
        let of = |agent: &str| {
            profile(&format!(
                "GET /stream HTTP/1.1\r\nHost: a\r\nUser-Agent: {agent}\r\n\r\n"
            ))
            .unwrap()
        };
        assert_eq!(of("Mozilla/5.0").framing, Framing::Browser);
        let vlc = of("VLC/3.0.18 LibVLC/3.0.18");
        assert_eq!(vlc.framing, Framing::Reader);
        assert_eq!(vlc.padding, VLC_PADDING);
        assert_eq!(vlc.warm_up.first(), Some(&Duration::from_millis(150)));
        assert_eq!(vlc.warm_up.last(), Some(&Duration::from_secs(2)));
        assert_eq!(of("libmpv").empty_parts, MPV_EMPTY_PARTS);
        assert_eq!(of("mpv 0.35").empty_parts, MPV_EMPTY_PARTS);
        for plain in [of("Lavf/59"), of("curl/8"), of("")] {
            assert_eq!(plain.framing, Framing::Reader);
            assert_eq!(
                (plain.padding, plain.empty_parts, plain.warm_up.len()),
                (Padding::None, 0, 0)
            );
            assert_eq!(plain.first_part_min, FIRST_PART_MIN);
        }
    }

    #[test]
    fn the_query_names_the_client_and_overrides_its_fields() {
        let vlc =
            profile("GET /stream?client=VLC HTTP/1.1\r\nHost: a\r\nUser-Agent: curl/8\r\n\r\n")
                .unwrap();
        assert_eq!(vlc.padding, VLC_PADDING);
        assert!(vlc.types.shows_type(JPEG) && !vlc.types.shows_type(PNG));
        let forced = profile(
            "GET /stream?client=browser&framing=reader&type=image/png HTTP/1.1\r\nHost: a\r\n\r\n",
        )
        .unwrap();
        assert_eq!(forced.framing, Framing::Reader);
        assert!(forced.types.shows_type(PNG) && !forced.types.shows_type(JPEG));
        for bad in ["?client=winamp", "?client=", "?client=vlc%00"] {
            let head = format!("GET /stream{bad} HTTP/1.1\r\nHost: a\r\n\r\n");
            assert_eq!(profile(&head), Err(BadQuery::Client), "{bad}");
        }
        assert_eq!(
            BadQuery::Client.reason(),
            "Bad Request: ?client= takes one of browser, vlc, mpv, ffmpeg, opencv, gstreamer, \
             reader, curl\n"
        );
    }
}
