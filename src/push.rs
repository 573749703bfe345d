//! The multipart/x-mixed-replace stream: the response head, then one part per new frame,
//! framed per client so that every kind of client shows each frame as soon as it exists.
//!
//! Browsers show part N only once the boundary and header block of part N+1 have arrived, so
//! [`Framing::Browser`] sends them right after each body, before the next frame exists.
//! Stream readers (ffmpeg, OpenCV, curl, GStreamer) emit a part once its Content-Length bytes
//! are in, so [`Framing::Reader`] sends whole parts with Content-Length.
//! Frame bytes are never copied: each write is one vectored syscall over the shared frame.

use std::io::{self, IoSlice, Read};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use crate::frame::{Frame, Latest, Wait};
use crate::http::request::Request;
use crate::http::response::write_all_vectored;

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

/// Serves `/stream` until the client goes away or the server closes.
pub fn stream(
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
        latest.boundary()
    );
    write_all_vectored(conn, &mut [IoSlice::new(head.as_bytes())])?;
    if head_only {
        return Ok(());
    }
    let mut parts = PartWriter {
        framing: opts.framing,
        boundary: latest.boundary(),
        shown: None,
    };
    loop {
        let seen = parts.shown.as_ref().map_or(0, |f| f.seq);
        match latest.wait_newer(seen, opts.keepalive) {
            Wait::Newer(frame) => parts.write(conn, frame)?,
            Wait::TimedOut => {
                if peer_has_closed(conn) {
                    return Ok(());
                }
                if let Some(frame) = parts.shown.clone() {
                    parts.write(conn, frame)?;
                }
            }
            Wait::Closed => return parts.finish(conn),
        }
    }
}

/// Writes the parts of one client's stream; remembers what that client has been sent.
struct PartWriter<'a> {
    framing: Framing,
    boundary: &'a str,
    shown: Option<Arc<Frame>>,
}

impl PartWriter<'_> {
    fn write(&mut self, conn: &mut TcpStream, frame: Arc<Frame>) -> io::Result<()> {
        match self.framing {
            Framing::Reader => write_all_vectored(
                conn,
                &mut [
                    IoSlice::new(&frame.part_head),
                    IoSlice::new(&frame.bytes),
                    IoSlice::new(b"\r\n"),
                ],
            )?,
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
        }
        self.shown = Some(frame);
        Ok(())
    }

    /// Ends the stream with the final boundary; a browser's open part gets the current frame.
    fn finish(&mut self, conn: &mut TcpStream) -> io::Result<()> {
        let close = format!("--{}--\r\n", self.boundary);
        let body = match (&self.shown, self.framing) {
            (Some(frame), Framing::Browser) => &frame.bytes[..],
            _ => &[][..],
        };
        let crlf = if body.is_empty() { &b""[..] } else { b"\r\n" };
        write_all_vectored(
            conn,
            &mut [
                IoSlice::new(body),
                IoSlice::new(crlf),
                IoSlice::new(close.as_bytes()),
            ],
        )
    }
}

/// Whether the client has closed its side: checked before a keep-alive, so a vanished client's
/// thread ends within one keep-alive instead of two (the first write after a close succeeds).
fn peer_has_closed(conn: &mut TcpStream) -> bool {
    if conn.set_nonblocking(true).is_err() {
        return true;
    }
    let mut scratch = [0u8; 512];
    let closed = loop {
        match conn.read(&mut scratch) {
            Ok(0) => break true,
            Ok(_) => continue, // bytes a client sent after its request: ignored
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break true,
        }
    };
    conn.set_nonblocking(false).is_err() || closed
}
