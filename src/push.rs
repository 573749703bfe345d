//! The multipart/x-mixed-replace stream: the response head, then one part per new frame,
//! framed per client so that every kind of client shows each frame as soon as it exists.
//!
//! Browsers show part N only once the boundary and header block of part N+1 have arrived, so
//! [`Framing::Browser`] sends them right after each body, before the next frame exists.
//! Stream readers (ffmpeg, OpenCV, curl, GStreamer) emit a part once its Content-Length bytes
//! are in, so [`Framing::Reader`] sends whole parts with Content-Length.
//! Frame bytes are never copied: each write is one vectored syscall over the shared frame.

use std::io::{self, IoSlice};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use crate::frame::{Frame, Latest, Wait};
use crate::http::request::Request;
use crate::http::response::{peer_has_closed, write_all_vectored};
use crate::status::Stats;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Framing {
    /// Part N+1's boundary and headers go out right after part N's body.
    Browser,
    /// Whole parts with Content-Length, each ended by CRLF.
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
    /// With nothing new for this long, the current frame is sent again.
    pub keepalive: Duration,
    /// A client that accepts no byte for this long is dropped.
    pub write_timeout: Duration,
}

/// Serves `/stream` until the client goes away or the server closes; returns the bytes sent.
pub fn stream(
    conn: &mut TcpStream,
    latest: &Latest,
    stats: &Stats,
    opts: &StreamOptions,
    head_only: bool,
) -> u64 {
    let mut parts = PartWriter {
        framing: opts.framing,
        boundary: latest.boundary(),
        shown: None,
        stats,
        sent: 0,
    };
    let _ = parts.serve(conn, latest, opts, head_only);
    parts.sent
}

/// Writes the parts of one client's stream; remembers what that client has been sent.
struct PartWriter<'a> {
    framing: Framing,
    boundary: &'a str,
    shown: Option<Arc<Frame>>,
    stats: &'a Stats,
    sent: u64,
}

impl PartWriter<'_> {
    fn serve(
        &mut self,
        conn: &mut TcpStream,
        latest: &Latest,
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
        self.sent += write_all_vectored(conn, &mut [IoSlice::new(head.as_bytes())])?;
        if head_only {
            return Ok(());
        }
        loop {
            let seen = self.shown.as_ref().map_or(0, |f| f.seq);
            match latest.wait_newer(seen, opts.keepalive) {
                Wait::Newer(frame) => self.write(conn, frame)?,
                Wait::TimedOut if peer_has_closed(conn) => return Ok(()),
                Wait::TimedOut => {
                    if let Some(frame) = self.shown.clone() {
                        self.write(conn, frame)?;
                    }
                }
                Wait::Closed => return self.finish(conn),
            }
        }
    }

    fn write(&mut self, conn: &mut TcpStream, frame: Arc<Frame>) -> io::Result<()> {
        self.sent += match self.framing {
            Framing::Reader => {
                // The part head without its closing blank line, so a padding header can go in.
                let (head, blank) = frame.part_head.split_at(frame.part_head.len() - 2);
                let padding = match self.shown {
                    None => probe_padding(frame.part_head.len() + frame.bytes.len() + 2),
                    Some(_) => String::new(),
                };
                write_all_vectored(
                    conn,
                    &mut [
                        IoSlice::new(head),
                        IoSlice::new(padding.as_bytes()),
                        IoSlice::new(blank),
                        IoSlice::new(&frame.bytes),
                        IoSlice::new(b"\r\n"),
                    ],
                )?
            }
            Framing::Browser => {
                // The first part opens with its own head (no leading CRLF); every later one was
                // opened by the previous write.
                let open = if self.shown.is_none() {
                    &frame.next_part_head[2..]
                } else {
                    &[][..]
                };
                write_all_vectored(
                    conn,
                    &mut [
                        IoSlice::new(open),
                        IoSlice::new(&frame.bytes),
                        IoSlice::new(&frame.next_part_head),
                    ],
                )?
            }
        };
        self.stats.sent_frame(frame.bytes.len());
        self.shown = Some(frame);
        Ok(())
    }

    /// Ends the stream with the final boundary; a browser's open part gets the current frame.
    fn finish(&mut self, conn: &mut TcpStream) -> io::Result<()> {
        let close = format!("--{}--\r\n", self.boundary);
        let (body, crlf) = match (&self.shown, self.framing) {
            (Some(frame), Framing::Browser) => (&frame.bytes[..], &b"\r\n"[..]),
            _ => (&[][..], &[][..]),
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
    fn a_small_first_part_is_padded_to_the_probe_size() {
        assert_eq!(probe_padding(300).len() + 300, FFMPEG_PROBE_SIZE);
        assert!(probe_padding(300).starts_with("X-Padding: ..."));
        assert!(probe_padding(300).ends_with(".\r\n"));
        assert_eq!(probe_padding(FFMPEG_PROBE_SIZE), "");
    }
}
