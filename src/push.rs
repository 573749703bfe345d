//! The multipart/x-mixed-replace stream: the response head, then one part per new frame,
//! framed per client so that every kind of client shows each frame as soon as it exists.
//!
//! Browsers show part N only once the boundary and header block of part N+1 have arrived, so
//! [`Framing::Browser`] sends them right after each body, before the next frame exists.
//! Stream readers (ffmpeg, OpenCV, curl, GStreamer) emit a part once its Content-Length bytes
//! are in, so [`Framing::Reader`] sends whole parts with Content-Length, each followed by the
//! next delimiter line, left open for `keeper.rs` to keep alive while nothing changes.
//! A client is sent only the frames it can show (`client.rs` says which), and keeps the last
//! of them on screen through the others.
//! Frame bytes are never copied: each write is one vectored syscall over the shared frame.

use std::io::{self, IoSlice};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::channel::Channel;
use crate::client::{self, Framing, PartTypes};
use crate::frame::{Frame, Latest, Subscription, Wait};
use crate::http::conn::Conn;
use crate::http::head::{Head, HeaderValue};
use crate::http::request::Request;
use crate::http::response::Response;
use crate::keeper::{Keeper, Line, MAX_KEEPALIVES};
use crate::site::Ctx;
use crate::stats::{Endpoint, Stats};

pub struct StreamOptions {
    pub framing: Framing,
    pub types: PartTypes,
    /// Empty parts after each part of a reader stream (see `client.rs`).
    pub empty_parts: usize,
    /// Pad each part of a reader stream for VLC (see [`VlcPadding`]).
    pub vlc: bool,
    /// `--keepalive`: a browser gets the current frame again (see `Args::keepalive`).
    pub keepalive: Duration,
    /// With nothing new for this long, a reader gets the current frame again: OpenCV gives up
    /// on a stream after 30 s without a frame, whatever else arrives. None: never.
    pub repeat: Option<Duration>,
}

/// `/stream`: the parts this client can show, framed for it (see `client.rs`), until it goes
/// away or the server closes.
pub fn serve(ctx: &Ctx, req: &Request, conn: Conn) -> (u16, u64) {
    let head_only = req.is_head();
    let Ok(types) = PartTypes::for_request(req) else {
        let body = b"Bad Request: ?type= takes media types, e.g. image/jpeg or image/*\n";
        let response = Response::new(400, HeaderValue::from_static("text/plain"), body);
        return (400, ctx.send(conn, response, head_only));
    };
    let _client = ctx.channel.stats.connect(Endpoint::Stream);
    let opts = StreamOptions {
        framing: Framing::for_request(req),
        types,
        empty_parts: client::empty_parts_after(req),
        vlc: client::is_vlc(req),
        keepalive: ctx.site.serving.keepalive,
        repeat: ctx.site.serving.repeat,
    };
    (
        200,
        stream(conn, ctx.channel, &ctx.site.keeper, &opts, head_only),
    )
}

/// Serves a stream until the client goes away or the server closes; returns the bytes sent.
fn stream(
    conn: Conn,
    channel: &Channel,
    keeper: &Keeper,
    opts: &StreamOptions,
    head_only: bool,
) -> u64 {
    let (boundary, latest, stats) = (&channel.boundary[..], &channel.latest, &channel.stats);
    let delimiter = format!("\r\n--{boundary}");
    // Built in place: a temporary freed here would stay in this thread's allocator cache.
    let mut after_part = delimiter.clone();
    for _ in 0..opts.empty_parts {
        after_part += "\r\nContent-Type: image/jpeg\r\nContent-Length: 0\r\n\r\n";
        after_part += &delimiter;
    }
    let mut parts = PartWriter {
        boundary,
        stream_head: channel.stream_head.get_or_init(|| stream_head(boundary)),
        latest,
        types: &opts.types,
        seen: 0,
        after_part: after_part.into_bytes(),
        vlc: opts.vlc.then(VlcPadding::default),
        first_at: None,
        delimiter: delimiter.into_bytes(),
        shown: None,
        shown_at: Instant::now(),
        stats,
        sent: 0,
    };
    let _ = parts.serve(conn, latest, keeper, opts, head_only);
    parts.sent
}

/// The response head of a stream; the boundary is ours (letters and digits).
fn stream_head(boundary: &str) -> Vec<u8> {
    let content_type = format!("multipart/x-mixed-replace; boundary={boundary}");
    Head::new(200)
        .field(
            "Content-Type",
            HeaderValue::new(content_type).expect("an alphanumeric boundary"),
        )
        .field(
            "Cache-Control",
            HeaderValue::from_static("no-cache, no-store, must-revalidate"),
        )
        .field("Pragma", HeaderValue::from_static("no-cache"))
        .field("Expires", HeaderValue::from_static("0"))
        // Tells nginx and other proxies not to buffer.
        .field("X-Accel-Buffering", HeaderValue::from_static("no"))
        // Opened on its own, an HTML or SVG part must not run scripts on this origin.
        .field(
            "Content-Security-Policy",
            HeaderValue::from_static("sandbox"),
        )
        .render()
}

/// Writes the parts of one client's stream; remembers what that client has been sent.
struct PartWriter<'a> {
    boundary: &'a str,
    /// The response head, the channel's.
    stream_head: &'a [u8],
    latest: &'a Latest,
    types: &'a PartTypes,
    /// The newest frame this client has seen, sent or left out.
    seen: u64,
    /// `\r\n--B`: ends a part and opens the next one's delimiter line.
    delimiter: Vec<u8>,
    /// What follows each part of a reader stream: the delimiter, after as many empty parts
    /// as the client needs.
    after_part: Vec<u8>,
    /// VLC's padding state, for a VLC client.
    vlc: Option<VlcPadding>,
    /// When the first part went out.
    first_at: Option<Instant>,
    shown: Option<Arc<Frame>>,
    /// When the last part went out.
    shown_at: Instant,
    stats: &'a Stats,
    sent: u64,
}

impl PartWriter<'_> {
    fn serve(
        &mut self,
        conn: Conn,
        latest: &Latest,
        keeper: &Keeper,
        opts: &StreamOptions,
        head_only: bool,
    ) -> io::Result<()> {
        self.sent += conn.send(&mut [IoSlice::new(self.stream_head)])?;
        if head_only {
            return Ok(());
        }
        let subscription = latest.subscribe(conn.waiter());
        match opts.framing {
            Framing::Browser => self.serve_browser(&conn, &subscription, opts.keepalive),
            Framing::Reader => {
                let stream = keeper.park(conn);
                self.serve_reader(&stream.conn, &stream.line, &subscription, opts.repeat)
            }
        }
    }

    /// Each part followed at once by the next part's head; the current frame again after
    /// `keepalive` without a change (the open part needs a body: nothing shorter will do).
    fn serve_browser(
        &mut self,
        conn: &Conn,
        frames: &Subscription,
        keepalive: Duration,
    ) -> io::Result<()> {
        loop {
            match frames.wait_newer(self.seen, keepalive) {
                Wait::Newer(frame) => {
                    if let Some(frame) = self.pick(frame) {
                        self.write_browser(conn, frame)?;
                    }
                }
                Wait::TimedOut => {
                    if let Some(frame) = self.shown.clone() {
                        self.write_browser(conn, frame)?;
                    }
                }
                Wait::Closed => return self.finish_browser(conn),
                Wait::Gone | Wait::Kicked => return Ok(()),
            }
        }
    }

    fn write_browser(&mut self, conn: &Conn, frame: Arc<Frame>) -> io::Result<()> {
        // The first part opens with its own head (no leading CRLF), padded to
        // [`FIRST_PART_MIN`]; every later one was opened by the previous write.
        let (fields, padding, blank) = if self.shown.is_none() {
            let head = &frame.next_part_head[2..];
            let (fields, blank) = head.split_at(head.len() - 2);
            let len = head.len() + frame.bytes.len() + frame.next_part_head.len();
            (fields, first_part_padding(len), blank)
        } else {
            (&[][..], String::new(), &[][..])
        };
        self.sent += conn.send(&mut [
            IoSlice::new(fields),
            IoSlice::new(padding.as_bytes()),
            IoSlice::new(blank),
            IoSlice::new(&frame.bytes),
            IoSlice::new(&frame.next_part_head),
        ])?;
        self.shown_now(frame);
        Ok(())
    }

    /// Fills a browser's open part with the current frame, then the final boundary.
    fn finish_browser(&mut self, conn: &Conn) -> io::Result<()> {
        let close = format!("--{}--\r\n", self.boundary);
        let (body, crlf) = match &self.shown {
            Some(frame) => (&frame.bytes[..], &b"\r\n"[..]),
            None => (&[][..], &[][..]),
        };
        self.sent += conn.send(&mut [
            IoSlice::new(body),
            IoSlice::new(crlf),
            IoSlice::new(close.as_bytes()),
        ])?;
        Ok(())
    }

    /// Whole parts with Content-Length, each followed by the next delimiter line `--B` left
    /// open, which `keeper.rs` keeps alive while nothing changes; this thread sleeps until a new
    /// frame, the server closing, `repeat` since the last part, the client leaving, or a kick
    /// from the keeper (the client stopped reading, or the part head is full of keep-alives).
    fn serve_reader(
        &mut self,
        conn: &Conn,
        line: &std::sync::Mutex<Line>,
        frames: &Subscription,
        repeat: Option<Duration>,
    ) -> io::Result<()> {
        loop {
            let repeat_due = repeat
                .zip(self.shown.as_ref())
                .and_then(|(every, frame)| next_repeat(frame.published, self.shown_at, every));
            let warm_up_due = self
                .vlc
                .as_ref()
                .zip(self.first_at)
                .and_then(|(_, first)| VlcPadding::next_warm_up(first, self.shown_at));
            let due = match (repeat_due, warm_up_due) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let next = frames.wait_until(self.seen, due);
            let mut line = line.lock().unwrap_or_else(|e| e.into_inner());
            if line.dead {
                return Ok(());
            }
            let part = match next {
                Wait::Newer(frame) => self.pick(frame),
                Wait::Closed => return self.finish_reader(conn, &line),
                Wait::Gone => return Ok(()),
                // Nothing new for `repeat`: the current frame again.
                Wait::TimedOut => self.shown.clone(),
                // Kicked with a part head full of keep-alives: end it with the current frame.
                Wait::Kicked => self
                    .shown
                    .clone()
                    .filter(|_| line.keepalives >= MAX_KEEPALIVES),
            };
            if let Some(frame) = part {
                self.write_reader(conn, &mut line, frame)?;
            }
        }
    }

    fn write_reader(&mut self, conn: &Conn, line: &mut Line, frame: Arc<Frame>) -> io::Result<()> {
        // part_head is `--B` + `\r\nContent-Type: ..\r\nContent-Length: ..\r\n` + `\r\n`; after the
        // first part, `--B` is already on the wire, and perhaps keep-alive lines after it.
        let (dash_boundary, rest) = frame.part_head.split_at(self.boundary.len() + 2);
        let (fields, blank) = rest.split_at(rest.len() - 2);
        let (open, padding) = if line.open {
            (&[][..], String::new())
        } else {
            (
                dash_boundary,
                first_part_padding(
                    frame.part_head.len() + frame.bytes.len() + self.after_part.len(),
                ),
            )
        };
        let vlc_padding = self.vlc.as_mut().map_or_else(String::new, |vlc| {
            vlc.after(frame.bytes.len(), self.boundary.len())
        });
        self.sent += conn.send(&mut [
            IoSlice::new(open),
            IoSlice::new(fields),
            IoSlice::new(padding.as_bytes()),
            IoSlice::new(blank),
            IoSlice::new(&frame.bytes),
            IoSlice::new(&self.after_part),
            IoSlice::new(vlc_padding.as_bytes()),
        ])?;
        // VLC's padding is a header line of the next part, as a keep-alive is.
        line.part_written(u32::from(!vlc_padding.is_empty()));
        self.first_at.get_or_insert_with(Instant::now);
        self.shown_now(frame);
        Ok(())
    }

    /// Turns the open delimiter line into the final one, `--B--`. After a keep-alive it cannot
    /// be: the part it began is finished with the current frame, and the stream closed after it.
    fn finish_reader(&mut self, conn: &Conn, line: &Line) -> io::Result<()> {
        let close_line = format!("--{}--\r\n", self.boundary);
        let bufs: &mut [IoSlice] = match &self.shown {
            None => &mut [IoSlice::new(close_line.as_bytes())],
            Some(_) if line.keepalives == 0 => &mut [IoSlice::new(b"--\r\n")],
            Some(frame) => &mut [
                IoSlice::new(&frame.part_head[self.boundary.len() + 2..]),
                IoSlice::new(&frame.bytes),
                IoSlice::new(&self.delimiter),
                IoSlice::new(b"--\r\n"),
            ],
        };
        self.sent += conn.send(bufs)?;
        Ok(())
    }

    /// What to send for `newest`, a frame this client has not seen: itself if the client can
    /// show it; else, to a client shown nothing yet, the newest earlier frame it can show (an
    /// `<img>` opened during a text slide starts with the last image); else nothing.
    fn pick(&mut self, newest: Arc<Frame>) -> Option<Arc<Frame>> {
        self.seen = newest.seq;
        if self.types.shows(&newest) {
            Some(newest)
        } else if self.shown.is_none() {
            self.latest.newest_where(|f| self.types.shows(f))
        } else {
            None
        }
    }

    fn shown_now(&mut self, frame: Arc<Frame>) {
        self.stats.sent_frame(frame.bytes.len());
        self.shown = Some(frame);
        self.shown_at = Instant::now();
    }
}

/// VLC's MJPEG demuxer passes a part on only once a fixed number of bytes, counted from the
/// part's first JPEG byte, has arrived: 15360 at first, 5120 more whenever a JPEG (with the
/// boundary) would not leave room, and never less on a connection (VLC 3.0). So each part is
/// followed by `\r\n--B\r\n` and a header line of padding that reaches that count exactly:
/// a byte short and the part waits for the next, while that many bytes after the last
/// boundary make VLC raise the count. And VLC shows nothing live until it has handled a part
/// more than its network caching (1 s by default) after the first, and everything that late
/// from then on: so the current frame is sent again a few times in the first two seconds.
#[derive(Default)]
struct VlcPadding {
    /// The count for this connection; 0 before the first part.
    expected: usize,
}

impl VlcPadding {
    const FIRST: usize = 15360;
    const STEP: usize = 5120;
    /// After the first part, when VLC gets it again.
    const WARM_UP: [Duration; 8] = [
        Duration::from_millis(150),
        Duration::from_millis(300),
        Duration::from_millis(500),
        Duration::from_millis(750),
        Duration::from_millis(1100),
        Duration::from_millis(1250),
        Duration::from_millis(1500),
        Duration::from_millis(2000),
    ];

    /// The padding after a JPEG of `jpeg_len` bytes and the delimiter `\r\n--B`: `\r\n` to end
    /// the delimiter line, then a header line left open (ended by whatever comes next).
    fn after(&mut self, jpeg_len: usize, boundary_len: usize) -> String {
        const NAME: &str = "\r\nX-Padding: ";
        self.expected = self.expected.max(Self::FIRST);
        while jpeg_len + 4 + boundary_len >= self.expected {
            self.expected += Self::STEP;
        }
        let used = jpeg_len + 4 + boundary_len + NAME.len();
        let fill = self.expected.saturating_sub(used).max(1);
        format!("{NAME}{}", "x".repeat(fill))
    }

    /// When the next warm-up resend is due, for a stream whose first part went out at
    /// `first` and its last at `last`; None once they are over.
    fn next_warm_up(first: Instant, last: Instant) -> Option<Instant> {
        Self::WARM_UP
            .iter()
            .map(|after| first + *after)
            .find(|due| *due > last)
    }
}

/// When a reader that was last sent a frame at `shown_at` gets it again: the first multiple of
/// `every` after its publication that is later than `shown_at`, so at most `every` later. The
/// readers idle on one frame then all wake at the same instant (one timer interrupt, not one
/// each), which makes a round of repeats about a fifth cheaper. None when that is beyond the
/// clock's range (`--repeat 99999999999`): never.
fn next_repeat(published: Instant, shown_at: Instant, every: Duration) -> Option<Instant> {
    let since = shown_at.saturating_duration_since(published);
    let rounds = u32::try_from(since.as_nanos() / every.as_nanos().max(1) + 1).ok()?;
    published.checked_add(every.checked_mul(rounds)?)
}

/// A first part smaller than this waits for later ones in two kinds of client: ffmpeg, and
/// OpenCV through it, unless told `-f mpjpeg`, read 2048 bytes to guess the format before they
/// emit anything; Chromium holds back a response to an `<img>` on another origin until it has
/// 1024 bytes to sniff (same-origin pages and Firefox do not).
const FIRST_PART_MIN: usize = 2048;

/// A header line that every multipart reader ignores, making a first part of `part_len` bytes
/// at least [`FIRST_PART_MIN`] long; empty when it already is.
fn first_part_padding(part_len: usize) -> String {
    const NAME: &str = "X-Padding: ";
    let missing = FIRST_PART_MIN.saturating_sub(part_len);
    if missing == 0 {
        return String::new();
    }
    let fill = missing.saturating_sub(NAME.len() + 2).max(1);
    format!("{NAME}{}\r\n", ".".repeat(fill))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_fall_on_one_grid_per_frame_and_at_most_every_apart() {
        let published = Instant::now();
        let every = Duration::from_secs(20);
        let at = |ms| published + Duration::from_millis(ms);
        // Readers fed in the fan-out, and one that joined later, repeat together.
        assert_eq!(next_repeat(published, at(3), every), Some(at(20_000)));
        assert_eq!(next_repeat(published, at(41), every), Some(at(20_000)));
        assert_eq!(next_repeat(published, at(19_990), every), Some(at(20_000)));
        // After a repeat, the next one.
        assert_eq!(next_repeat(published, at(20_004), every), Some(at(40_000)));
        // Beyond the clock: never.
        assert_eq!(
            next_repeat(published, at(3), Duration::from_secs(u64::MAX)),
            None
        );
    }

    #[test]
    fn vlc_gets_each_part_padded_to_the_count_it_waits_for() {
        let boundary = 40;
        let mut vlc = VlcPadding::default();
        // From the JPEG's first byte: the JPEG, `\r\n--B`, then the padding.
        let total = |vlc: &mut VlcPadding, jpeg: usize| {
            jpeg + 4 + boundary + vlc.after(jpeg, boundary).len()
        };
        assert_eq!(total(&mut vlc, 248), 15360);
        assert_eq!(total(&mut vlc, 40_000), 15360 + 5 * 5120);
        // Never less on a connection.
        assert_eq!(total(&mut vlc, 248), 15360 + 5 * 5120);
        let first = Instant::now();
        assert_eq!(
            VlcPadding::next_warm_up(first, first),
            Some(first + Duration::from_millis(150))
        );
        assert_eq!(
            VlcPadding::next_warm_up(first, first + Duration::from_secs(2)),
            None
        );
    }

    #[test]
    fn a_small_first_part_is_padded_to_the_minimum() {
        assert_eq!(first_part_padding(300).len() + 300, FIRST_PART_MIN);
        assert!(first_part_padding(300).starts_with("X-Padding: ..."));
        assert!(first_part_padding(300).ends_with(".\r\n"));
        assert_eq!(first_part_padding(FIRST_PART_MIN), "");
    }
}
