//! The multipart/x-mixed-replace stream: the response head, then one part per new frame,
//! framed per client so that every kind of client shows each frame as soon as it exists.
//!
//! Browsers show part N only once the boundary and header block of part N+1 have arrived, so
//! [`Framing::Browser`] sends them right after each body, before the next frame exists.
//! Stream readers (ffmpeg, OpenCV, curl, GStreamer) emit a part once its Content-Length bytes
//! are in, so [`Framing::Reader`] sends whole parts with Content-Length, each followed by the
//! next delimiter line, left open for `keeper.rs` to keep alive while nothing changes; a reader
//! stream is written through the keeper's `ReaderStream`, the one record of what it was sent.
//! What each client needs is `client.rs`'s [`Profile`], which this module applies field by
//! field, knowing no client by name: framing, the types sent (a client keeps the last part it
//! was sent on screen through the others), padding, empty parts and warm-up resends.
//! Frame bytes are never copied: each write is one vectored syscall over the shared frame.

use std::io::{self, IoSlice};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::channel::Channel;
use crate::client::{Framing, Padding, Profile};
use crate::frame::{Frame, Latest, Subscription, Wait};
use crate::http::conn::Conn;
use crate::http::head::{Head, HeaderValue};
use crate::http::request::Request;
use crate::http::response::Response;
use crate::keeper::{Keeper, ReaderStream, Writer};
use crate::site::Ctx;
use crate::stats::{Endpoint, Stats};

pub struct StreamOptions {
    pub profile: Profile,
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
    let profile = match Profile::for_request(req) {
        Ok(profile) => profile,
        Err(bad) => {
            let body = bad.reason();
            let response =
                Response::new(400, HeaderValue::from_static("text/plain"), body.as_bytes());
            return (400, ctx.send(conn, response, head_only));
        }
    };
    let _client = ctx.channel.stats.connect(Endpoint::Stream);
    let opts = StreamOptions {
        profile,
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
    for _ in 0..opts.profile.empty_parts {
        after_part += "\r\nContent-Type: image/jpeg\r\nContent-Length: 0\r\n\r\n";
        after_part += &delimiter;
    }
    let mut parts = PartWriter {
        boundary,
        stream_head: channel.stream_head.get_or_init(|| stream_head(boundary)),
        latest,
        profile: &opts.profile,
        seen: 0,
        after_part: after_part.into_bytes(),
        padding: PaddingCount::default(),
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
    profile: &'a Profile,
    /// The newest frame this client has seen, sent or left out.
    seen: u64,
    /// `\r\n--B`: ends a part and opens the next one's delimiter line.
    delimiter: Vec<u8>,
    /// What follows each part of a reader stream: the delimiter, after as many empty parts
    /// as the client needs.
    after_part: Vec<u8>,
    /// The count the padding after each reader part reaches, if the profile pads.
    padding: PaddingCount,
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
        match opts.profile.framing {
            Framing::Browser => self.serve_browser(&conn, &subscription, opts.keepalive),
            Framing::Reader => {
                let stream = keeper.park(conn);
                self.serve_reader(&stream, &subscription, opts.repeat)
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
            (
                fields,
                first_part_padding(len, self.profile.first_part_min),
                blank,
            )
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
        stream: &ReaderStream,
        frames: &Subscription,
        repeat: Option<Duration>,
    ) -> io::Result<()> {
        loop {
            let repeat_due = repeat
                .zip(self.shown.as_ref())
                .and_then(|(every, frame)| next_repeat(frame.published, self.shown_at, every));
            let warm_up_due = self
                .first_at
                .and_then(|first| next_warm_up(self.profile.warm_up, first, self.shown_at));
            let due = match (repeat_due, warm_up_due) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let next = frames.wait_until(self.seen, due);
            let mut writer = stream.lock();
            if writer.is_dead() {
                return Ok(());
            }
            let part = match next {
                Wait::Newer(frame) => self.pick(frame),
                Wait::Closed => return self.finish_reader(&mut writer),
                Wait::Gone => return Ok(()),
                // Nothing new for `repeat`: the current frame again.
                Wait::TimedOut => self.shown.clone(),
                // Kicked with a part head full of keep-alives: end it with the current frame.
                Wait::Kicked => self.shown.clone().filter(|_| writer.is_head_full()),
            };
            if let Some(frame) = part {
                self.write_reader(&mut writer, frame)?;
            }
        }
    }

    fn write_reader(&mut self, writer: &mut Writer, frame: Arc<Frame>) -> io::Result<()> {
        // part_head is `--B` + `\r\nContent-Type: ..\r\nContent-Length: ..\r\n` + `\r\n`; after the
        // first part, `--B` is already on the wire, and perhaps keep-alive lines after it.
        let (dash_boundary, rest) = frame.part_head.split_at(self.boundary.len() + 2);
        let (fields, blank) = rest.split_at(rest.len() - 2);
        let (open, padding) = if writer.is_open() {
            (&[][..], String::new())
        } else {
            (
                dash_boundary,
                first_part_padding(
                    frame.part_head.len() + frame.bytes.len() + self.after_part.len(),
                    self.profile.first_part_min,
                ),
            )
        };
        let count_padding = self.padding.after(
            self.profile.padding,
            frame.bytes.len(),
            self.after_part.len(),
        );
        // The padding is a header line of the next part, as a keep-alive is.
        let header_lines = u32::from(!count_padding.is_empty());
        self.sent += writer.write_part(
            &mut [
                IoSlice::new(open),
                IoSlice::new(fields),
                IoSlice::new(padding.as_bytes()),
                IoSlice::new(blank),
                IoSlice::new(&frame.bytes),
                IoSlice::new(&self.after_part),
                IoSlice::new(count_padding.as_bytes()),
            ],
            header_lines,
        )?;
        self.first_at.get_or_insert_with(Instant::now);
        self.shown_now(frame);
        Ok(())
    }

    /// Turns the open delimiter line into the final one, `--B--`. After a keep-alive it cannot
    /// be: the part it began is finished with the current frame, and the stream closed after it.
    fn finish_reader(&mut self, writer: &mut Writer) -> io::Result<()> {
        let close_line = format!("--{}--\r\n", self.boundary);
        let bufs: &mut [IoSlice] = match &self.shown {
            None => &mut [IoSlice::new(close_line.as_bytes())],
            Some(_) if writer.is_bare() => &mut [IoSlice::new(b"--\r\n")],
            Some(frame) => &mut [
                IoSlice::new(&frame.part_head[self.boundary.len() + 2..]),
                IoSlice::new(&frame.bytes),
                IoSlice::new(&self.delimiter),
                IoSlice::new(b"--\r\n"),
            ],
        };
        self.sent += writer.write_end(bufs)?;
        Ok(())
    }

    /// What to send for `newest`, a frame this client has not seen: itself if the client can
    /// show it; else, to a client shown nothing yet, the newest earlier frame it can show (an
    /// `<img>` opened during a text slide starts with the last image); else nothing.
    fn pick(&mut self, newest: Arc<Frame>) -> Option<Arc<Frame>> {
        self.seen = newest.seq;
        if self.profile.types.shows(&newest) {
            Some(newest)
        } else if self.shown.is_none() {
            self.latest.newest_where(|f| self.profile.types.shows(f))
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

/// What [`Padding::Blocks`] has reached on one connection: the count from a part's first body
/// byte that the padding after it makes up, never less than the last.
#[derive(Default)]
struct PaddingCount {
    /// 0 before the first part.
    reached: usize,
}

impl PaddingCount {
    /// The padding after a body of `body_len` bytes and what follows every part, `after_len`
    /// bytes ending with the delimiter `\r\n--B`: `\r\n` to end the delimiter line, then a
    /// header line left open (ended by whatever comes next). Empty for [`Padding::None`].
    fn after(&mut self, rule: Padding, body_len: usize, after_len: usize) -> String {
        const NAME: &str = "\r\nX-Padding: ";
        let Padding::Blocks { first, step } = rule else {
            return String::new();
        };
        self.reached = self.reached.max(first);
        while body_len + after_len >= self.reached {
            self.reached += step;
        }
        let used = body_len + after_len + NAME.len();
        let fill = self.reached.saturating_sub(used).max(1);
        format!("{NAME}{}", "x".repeat(fill))
    }
}

/// When the next warm-up resend of `schedule` is due, for a stream whose first part went out
/// at `first` and its last at `last`; None once they are over.
fn next_warm_up(schedule: &[Duration], first: Instant, last: Instant) -> Option<Instant> {
    schedule
        .iter()
        .map(|after| first + *after)
        .find(|due| *due > last)
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

/// A header line that every multipart reader ignores, making a first part of `part_len` bytes
/// at least `min` long; empty when it already is.
fn first_part_padding(part_len: usize, min: usize) -> String {
    const NAME: &str = "X-Padding: ";
    let missing = min.saturating_sub(part_len);
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
    fn block_padding_reaches_the_count_exactly_and_never_less_on_a_connection() {
        let rule = Padding::Blocks {
            first: 15360,
            step: 5120,
        };
        let delimiter = 4 + 40;
        let mut padding = PaddingCount::default();
        // From the body's first byte: the body, `\r\n--B`, then the padding.
        let total = |padding: &mut PaddingCount, body: usize| {
            body + delimiter + padding.after(rule, body, delimiter).len()
        };
        assert_eq!(total(&mut padding, 248), 15360);
        assert_eq!(total(&mut padding, 40_000), 15360 + 5 * 5120);
        // Never less on a connection.
        assert_eq!(total(&mut padding, 248), 15360 + 5 * 5120);
        assert_eq!(padding.after(Padding::None, 248, delimiter), "");
    }

    #[test]
    fn warm_up_resends_follow_the_schedule_then_stop() {
        let schedule = [Duration::from_millis(150), Duration::from_secs(2)];
        let first = Instant::now();
        assert_eq!(
            next_warm_up(&schedule, first, first),
            Some(first + Duration::from_millis(150))
        );
        assert_eq!(
            next_warm_up(&schedule, first, first + Duration::from_secs(2)),
            None
        );
        assert_eq!(next_warm_up(&[], first, first), None);
    }

    #[test]
    fn a_small_first_part_is_padded_to_the_minimum() {
        assert_eq!(first_part_padding(300, 2048).len() + 300, 2048);
        assert!(first_part_padding(300, 2048).starts_with("X-Padding: ..."));
        assert!(first_part_padding(300, 2048).ends_with(".\r\n"));
        assert_eq!(first_part_padding(2048, 2048), "");
    }
}
