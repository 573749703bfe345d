//! The multipart/x-mixed-replace stream: the response head, then one part per new frame,
//! framed per client so that every kind of client shows each frame as soon as it exists.
//!
//! Browsers show part N only once the boundary and header block of part N+1 have arrived, so
//! [`Framing::Browser`] sends them right after each body, before the next frame exists.
//! Stream readers (ffmpeg, OpenCV, curl, GStreamer) emit a part once its Content-Length bytes
//! are in, so [`Framing::Reader`] sends whole parts with Content-Length, each followed by the
//! next delimiter line, left open for `keeper.rs` to pad while nothing changes.
//! Frame bytes are never copied: each write is one vectored syscall over the shared frame.

use std::io::{self, IoSlice};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::frame::{Frame, Latest, Wait};
use crate::http::request::Request;
use crate::http::response::{peer_has_closed, write_all_vectored};
use crate::keeper::{Keeper, Line, MAX_PADDING, Parked};
use crate::status::Stats;

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

pub struct StreamOptions {
    pub framing: Framing,
    /// With nothing new for this long, a browser gets the current frame again (readers are
    /// kept alive by `keeper.rs`).
    pub keepalive: Duration,
    /// With nothing new for this long, a reader gets the current frame again: OpenCV gives up
    /// on a stream after 30 s without a frame, whatever else arrives. None: never.
    pub repeat: Option<Duration>,
    /// A client that accepts no byte for this long is dropped.
    pub write_timeout: Duration,
}

/// Serves `/stream` until the client goes away or the server closes; returns the bytes sent.
pub fn stream(
    conn: TcpStream,
    latest: &Latest,
    stats: &Stats,
    keeper: &Keeper,
    opts: &StreamOptions,
    head_only: bool,
) -> u64 {
    let boundary = latest.boundary();
    let mut parts = PartWriter {
        boundary,
        delimiter: format!("\r\n--{boundary}").into_bytes(),
        shown: None,
        shown_at: Instant::now(),
        stats,
        sent: 0,
    };
    let _ = parts.serve(conn, latest, keeper, opts, head_only);
    parts.sent
}

/// Writes the parts of one client's stream; remembers what that client has been sent.
struct PartWriter<'a> {
    boundary: &'a str,
    /// `\r\n--B`: ends a part and opens the next one's delimiter line.
    delimiter: Vec<u8>,
    shown: Option<Arc<Frame>>,
    /// When the last part went out.
    shown_at: Instant,
    stats: &'a Stats,
    sent: u64,
}

impl PartWriter<'_> {
    fn serve(
        &mut self,
        conn: TcpStream,
        latest: &Latest,
        keeper: &Keeper,
        opts: &StreamOptions,
        head_only: bool,
    ) -> io::Result<()> {
        conn.set_write_timeout(Some(opts.write_timeout))?;
        let head = format!(
            "HTTP/1.1 200 OK\r\n\
             Content-Type: multipart/x-mixed-replace; boundary={}\r\n\
             Cache-Control: no-cache, no-store, must-revalidate\r\n\
             Pragma: no-cache\r\n\
             Expires: 0\r\n\
             Connection: close\r\n\
             X-Accel-Buffering: no\r\n\r\n",
            self.boundary
        );
        self.sent += write_all_vectored(&conn, &mut [IoSlice::new(head.as_bytes())])?;
        if head_only {
            return Ok(());
        }
        match opts.framing {
            Framing::Browser => self.serve_browser(&conn, latest, opts.keepalive),
            Framing::Reader => self.serve_reader(&keeper.park(conn), latest, opts.repeat),
        }
    }

    /// Each part followed at once by the next part's head; the current frame again after
    /// `keepalive` without a change (the open part needs a body: nothing shorter will do).
    fn serve_browser(
        &mut self,
        conn: &TcpStream,
        latest: &Latest,
        keepalive: Duration,
    ) -> io::Result<()> {
        loop {
            let seen = self.shown.as_ref().map_or(0, |f| f.seq);
            match latest.wait_newer(seen, keepalive) {
                Wait::Newer(frame) => self.write_browser(conn, frame)?,
                Wait::TimedOut if peer_has_closed(conn) => return Ok(()),
                Wait::TimedOut => {
                    if let Some(frame) = self.shown.clone() {
                        self.write_browser(conn, frame)?;
                    }
                }
                Wait::Closed => return self.finish_browser(conn),
            }
        }
    }

    fn write_browser(&mut self, conn: &TcpStream, frame: Arc<Frame>) -> io::Result<()> {
        // The first part opens with its own head (no leading CRLF); every later one was
        // opened by the previous write.
        let open = if self.shown.is_none() {
            &frame.next_part_head[2..]
        } else {
            &[][..]
        };
        self.sent += write_all_vectored(
            conn,
            &mut [
                IoSlice::new(open),
                IoSlice::new(&frame.bytes),
                IoSlice::new(&frame.next_part_head),
            ],
        )?;
        self.shown_now(frame);
        Ok(())
    }

    /// Fills a browser's open part with the current frame, then the final boundary.
    fn finish_browser(&mut self, conn: &TcpStream) -> io::Result<()> {
        let close = format!("--{}--\r\n", self.boundary);
        let (body, crlf) = match &self.shown {
            Some(frame) => (&frame.bytes[..], &b"\r\n"[..]),
            None => (&[][..], &[][..]),
        };
        self.sent += write_all_vectored(
            conn,
            &mut [
                IoSlice::new(body),
                IoSlice::new(crlf),
                IoSlice::new(close.as_bytes()),
            ],
        )?;
        Ok(())
    }

    /// Whole parts with Content-Length, each followed by the next delimiter line `--B` left
    /// open, which `keeper.rs` pads while nothing changes; this thread sleeps until a new frame,
    /// the server closing, `repeat` since the last part, or a kick from the keeper (client
    /// gone, line full).
    fn serve_reader(
        &mut self,
        stream: &Parked,
        latest: &Latest,
        repeat: Option<Duration>,
    ) -> io::Result<()> {
        loop {
            let seen = self.shown.as_ref().map_or(0, |f| f.seq);
            let due = repeat
                .zip(self.shown.as_ref())
                .and_then(|(every, frame)| next_repeat(frame.published, self.shown_at, every));
            let next = latest.wait_newer_or_kicked(seen, &stream.kicked, due);
            let mut line = stream.line();
            if line.dead {
                return Ok(());
            }
            let part = match next {
                Some(Wait::Newer(frame)) => Some(frame),
                Some(Wait::Closed) => return self.finish_reader(&stream.conn, &line),
                // Nothing new for `repeat`: the current frame again.
                Some(Wait::TimedOut) => self.shown.clone(),
                // Kicked with a full line: end it with the current frame, so it can be padded anew.
                None => self.shown.clone().filter(|_| line.padding >= MAX_PADDING),
            };
            if let Some(frame) = part {
                self.write_reader(&stream.conn, &mut line, frame)?;
            }
        }
    }

    fn write_reader(
        &mut self,
        conn: &TcpStream,
        line: &mut Line,
        frame: Arc<Frame>,
    ) -> io::Result<()> {
        // part_head is `--B` + `\r\nContent-Type: ..\r\nContent-Length: ..\r\n` + `\r\n`; after the
        // first part, `--B` is already on the wire, padded or not.
        let (dash_boundary, rest) = frame.part_head.split_at(self.boundary.len() + 2);
        let (fields, blank) = rest.split_at(rest.len() - 2);
        let (open, padding) = if line.open {
            (&[][..], String::new())
        } else {
            (
                dash_boundary,
                probe_padding(frame.part_head.len() + frame.bytes.len() + self.delimiter.len()),
            )
        };
        self.sent += write_all_vectored(
            conn,
            &mut [
                IoSlice::new(open),
                IoSlice::new(fields),
                IoSlice::new(padding.as_bytes()),
                IoSlice::new(blank),
                IoSlice::new(&frame.bytes),
                IoSlice::new(&self.delimiter),
            ],
        )?;
        line.part_written();
        self.shown_now(frame);
        Ok(())
    }

    /// Turns the open delimiter line into the final one, `--B--`. A padded line cannot be:
    /// it is ended as a delimiter, the current frame repeated, and the stream closed after it.
    fn finish_reader(&mut self, conn: &TcpStream, line: &Line) -> io::Result<()> {
        let close_line = format!("--{}--\r\n", self.boundary);
        let bufs: &mut [IoSlice] = match &self.shown {
            None => &mut [IoSlice::new(close_line.as_bytes())],
            Some(_) if line.padding == 0 => &mut [IoSlice::new(b"--\r\n")],
            Some(frame) => &mut [
                IoSlice::new(&frame.part_head[self.boundary.len() + 2..]),
                IoSlice::new(&frame.bytes),
                IoSlice::new(&self.delimiter),
                IoSlice::new(b"--\r\n"),
            ],
        };
        self.sent += write_all_vectored(conn, bufs)?;
        Ok(())
    }

    fn shown_now(&mut self, frame: Arc<Frame>) {
        self.stats.sent_frame(frame.bytes.len());
        self.shown = Some(frame);
        self.shown_at = Instant::now();
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

/// ffmpeg, and OpenCV through it, unless told `-f mpjpeg`, read 2048 bytes to guess the
/// format before they emit anything: a first part smaller than that would wait for later ones.
const FFMPEG_PROBE_SIZE: usize = 2048;

/// A header line that every multipart reader ignores, making a first part of `part_len` bytes
/// at least [`FFMPEG_PROBE_SIZE`] long; empty when it already is.
fn probe_padding(part_len: usize) -> String {
    const NAME: &str = "X-Padding: ";
    let missing = FFMPEG_PROBE_SIZE.saturating_sub(part_len);
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
    fn a_small_first_part_is_padded_to_the_probe_size() {
        assert_eq!(probe_padding(300).len() + 300, FFMPEG_PROBE_SIZE);
        assert!(probe_padding(300).starts_with("X-Padding: ..."));
        assert!(probe_padding(300).ends_with(".\r\n"));
        assert_eq!(probe_padding(FFMPEG_PROBE_SIZE), "");
    }
}
