//! Reading a multipart stream (`multipart/x-mixed-replace`, RFC 2046) part by part from a
//! [`BufRead`]: another server's `/stream`, ffmpeg's `-f mpjpeg`, a camera, stdin; and, in
//! strict mode, our own streams in the integration tests (as `pushserve::decode::multipart`).
//! It owns the framing only: boundaries, part header blocks, bodies, their bounds. It must
//! not know what a part holds or where the bytes come from, so it uses std alone, no `crate::`.
//!
//! Latency is the point: a part with Content-Length is returned as soon as its body is in,
//! never after waiting for what follows it (the CRLF and the next boundary may come only with
//! the next frame, minutes later); they are read at the start of the next call. A part
//! without Content-Length ends where the delimiter (`CRLF--B`) begins, so it is returned once
//! that has arrived. Header lines it does not know (`X-Keepalive: 1`, `X-Padding: ..`) are
//! kept like any other.
//!
//! Everything read is hostile until checked: a header block is bounded to [`MAX_HEAD`] bytes,
//! a body to `max_part` (over it, the body is skipped, not stored), and no Content-Length,
//! however large, reserves more than `max_part` + 1 bytes (nor [`MAX_RESERVE`]) before the
//! bytes arrive. A part torn by the end of the stream is never returned: it is an
//! [`io::ErrorKind::UnexpectedEof`] error, then `Ok(None)`.
//!
//! Lenient, it also gets round two faults of real senders, and says so through
//! [`Parts::take_notices`]: a Content-Length that does not match its body (a body is never
//! returned with the delimiter inside it; after the first mismatch every part is found by its
//! boundary alone), and parts delimited by another boundary than the one given (a Content-Type
//! that names one and a body that uses another, or a boundary that changes mid-stream): a line
//! `--X` followed by a part's header, where the given boundary has not been seen for
//! [`WINDOW`] bytes (or at once where a boundary line is due), and X is followed from there on.
//!
//! Every error from the reader leaves the parse where it was: after a read timeout
//! (`WouldBlock` or `TimedOut`), calling [`Parts::next_part`] again goes on from the same byte,
//! so a caller can wake every second to check whether it should stop.

use std::fmt;
use std::io::{self, BufRead, Read};

/// Longest header block of a part, from the end of its boundary to its blank line, included.
pub const MAX_HEAD: usize = 8 * 1024;
/// Most bytes reserved for a body before they arrive; a larger body grows as it comes.
pub const MAX_RESERVE: usize = 16 << 20;
/// How much a search for a boundary holds at once, in bytes, when not storing a body; and how
/// far a search goes before it looks for another boundary.
pub(crate) const WINDOW: usize = 64 * 1024;
/// Where a boundary line is due (at the start, after a body read by its Content-Length), how
/// much is read before looking for another boundary: room for a boundary line and a header name.
const LOOK: usize = 256;
/// A line `--X` (X of at most 70 characters) with its padding and line end, and the start of
/// the header line after it, at most.
const CANDIDATE_MAX: usize = 2 + 70 + 16 + 2 + 80;

/// One part: its header lines in order (names as written, values trimmed), and its body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Part {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Part {
    /// The value of the first header line called `name` (in any case), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim_matches([' ', '\t']))
    }

    /// The file name its `Content-Disposition` gives (`attachment; filename="a.jpg"`), without
    /// any folder.
    pub fn file_name(&self) -> Option<String> {
        let disposition = self.header("Content-Disposition")?;
        let at = disposition.to_ascii_lowercase().find("filename=")?;
        let value = disposition[at + "filename=".len()..].trim_start();
        let value = match value.strip_prefix('"') {
            Some(quoted) => quoted.split('"').next()?,
            None => value.split(';').next()?.trim(),
        };
        let name = value.rsplit(['/', '\\']).next()?;
        (!name.is_empty() && !name.chars().any(char::is_control)).then(|| name.to_string())
    }
}

#[derive(Debug)]
pub enum Error {
    /// The reader failed. A timeout is `WouldBlock` or `TimedOut`: call `next_part` again to
    /// go on. `UnexpectedEof`: the stream ended inside a part, which was dropped.
    Io(io::Error),
    /// A part's body was over `max_part`: it was skipped, and the next call reads the next part.
    TooLarge { limit: u64 },
    /// The stream cannot be parsed further (why, in one line); every later call says so again.
    Malformed(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "{e}"),
            Error::TooLarge { limit } => write!(f, "a part is over {limit} bytes"),
            Error::Malformed(why) => write!(f, "not a valid multipart stream: {why}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// A fault of the stream that the lenient parser got round; the caller may say it once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Part `part` (1 for the first) has a Content-Length that does not match its body; from
    /// then on, every part is found by its boundary alone.
    LengthMismatch { part: u64 },
    /// The parts are delimited by `--{found}`, not by `--{given}` (the boundary given, or the
    /// one followed until then), which is followed from here on; `at_start`: before any part.
    OtherBoundary {
        given: String,
        found: String,
        at_start: bool,
    },
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

/// Where the parse is; what it has gathered so far is in [`Parts`]' fields.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Looking for the next boundary: at the start of the stream (`first`), or after a body
    /// read by its Content-Length.
    Seek {
        first: bool,
    },
    /// After `--B`: the rest of its line.
    BoundaryLine,
    /// Strict only, after `--B--`: the end of that line.
    CloseLine,
    /// The header lines, up to the blank line.
    Headers,
    /// A body of this Content-Length.
    Sized {
        len: usize,
    },
    /// A body without Content-Length: it ends where the delimiter begins.
    Delimited,
    /// A body over `max_part`, skipped up to the delimiter.
    Skipping,
    /// The final boundary or the end of the stream.
    Done,
    Failed(String),
}

/// The parts of one multipart stream, read from `R`; see the module's doc.
pub struct Parts<R: BufRead> {
    reader: Replay<R>,
    /// `--B`.
    dash_boundary: Vec<u8>,
    /// What ends a body without Content-Length: `\r\n--B`, or `\n--B` when lenient.
    delimiter: Vec<u8>,
    max_part: u64,
    strict: bool,
    state: State,
    /// The bytes of the current step: a boundary being matched or searched for, a line, a body.
    /// (Crate-visible for the unit tests, which check how much it holds.)
    pub(crate) buf: Vec<u8>,
    /// Where a search in `buf` goes on from: no match starts before it.
    scanned: usize,
    /// Whether `buf` starts a line that has not yet been checked for `--B` (lenient): a
    /// boundary right after a body with no CRLF before it, or right after a blank line.
    line_start: bool,
    /// Bytes skipped looking for a boundary (lenient); bounded like a part.
    skipped: u64,
    /// Bytes of the current header block so far, its boundary line included.
    head_len: usize,
    headers: Vec<(String, String)>,
    ended_cleanly: bool,
    /// Parts whose header block has been read.
    parts: u64,
    /// Lenient, after a Content-Length shorter than its body: every body ends at the delimiter
    /// (one that is too long is caught part by part, and lengths stay trusted).
    by_boundary: bool,
    /// Lenient: a Content-Length that did not match its body has been said.
    length_said: bool,
    /// The seek follows a body read by its Content-Length: only blank space may come before the
    /// boundary.
    after_length: bool,
    /// Lenient: positions in `buf` before this are not the start of another boundary's line.
    looked: usize,
    notices: Vec<Notice>,
}

impl<R: BufRead> Parts<R> {
    /// The parts of the stream `reader`, whose boundary is `boundary` (as in the Content-Type,
    /// without the leading `--`); bodies over `max_part` bytes are skipped. Lenient: see
    /// [`Parts::strict`].
    pub fn new(reader: R, boundary: &str, max_part: u64) -> Parts<R> {
        let dash_boundary = format!("--{boundary}").into_bytes();
        let mut parts = Parts {
            reader: Replay {
                reader,
                again: Vec::new(),
                at: 0,
            },
            delimiter: Vec::new(),
            dash_boundary,
            max_part,
            strict: false,
            state: State::Seek { first: true },
            buf: Vec::new(),
            scanned: 0,
            line_start: true,
            skipped: 0,
            head_len: 0,
            headers: Vec::new(),
            ended_cleanly: false,
            parts: 0,
            by_boundary: false,
            length_said: false,
            after_length: false,
            looked: 0,
            notices: Vec::new(),
        };
        parts.set_delimiter();
        parts
    }

    /// Strict mode, for testing a sender (call it before the first part). Lenient, the
    /// default, takes what RFC 2046 and real cameras send: a preamble before the first
    /// boundary and anything between a body and the next boundary, transport padding (spaces,
    /// tabs) after a boundary, bare LF line ends, a body with Content-Length followed by the
    /// boundary without CRLF, header lines without a colon (ignored) or folded, an invalid
    /// Content-Length (ignored: the body ends at the delimiter), an epilogue. Strict refuses all
    /// of these as [`Error::Malformed`]: the stream starts with `--B` (or CRLF `--B`), every
    /// line ends in CRLF, nothing follows a boundary on its line, and a body with
    /// Content-Length is followed by exactly CRLF `--B`, the final boundary by CRLF or the end.
    pub fn strict(mut self) -> Parts<R> {
        self.strict = true;
        self.set_delimiter();
        self
    }

    fn set_delimiter(&mut self) {
        let crlf: &[u8] = if self.strict { b"\r\n" } else { b"\n" };
        self.delimiter = [crlf, &self.dash_boundary].concat();
    }

    /// Whether the final boundary (`--B--`) has been read.
    pub fn ended_cleanly(&self) -> bool {
        self.ended_cleanly
    }

    /// What the lenient parser got round since this was last called, in order.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    pub fn get_ref(&self) -> &R {
        &self.reader.reader
    }

    /// The reader, e.g. to set a timeout, or to read what follows the final boundary.
    /// Reading from it in the middle of the stream loses the parse.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.reader.reader
    }

    pub fn into_inner(self) -> R {
        self.reader.reader
    }

    /// The next whole part; `Ok(None)` once the final boundary has been read, or at the end
    /// of the stream between parts (see [`Parts::ended_cleanly`]). The end of the stream
    /// inside a part is an `UnexpectedEof` error: a torn part is never returned.
    pub fn next_part(&mut self) -> Result<Option<Part>, Error> {
        loop {
            match self.state.clone() {
                State::Seek { first } => {
                    let found = if self.strict {
                        self.seek_strict(first)?
                    } else {
                        self.seek_lenient(first)?
                    };
                    if !found {
                        self.finish();
                        return Ok(None);
                    }
                    self.buf.clear();
                    self.head_len = 0;
                    self.state = State::BoundaryLine;
                }
                State::BoundaryLine => self.boundary_line()?,
                State::CloseLine => self.close_line()?,
                State::Headers => self.header_lines()?,
                State::Sized { len } => return self.sized_body(len).map(Some),
                State::Delimited => {
                    if let Some(part) = self.delimited_body()? {
                        return Ok(Some(part));
                    }
                }
                State::Skipping => return Err(self.skip_body()),
                State::Done => return Ok(None),
                State::Failed(why) => return Err(Error::Malformed(why)),
            }
        }
    }

    /// Strict: the bytes up to the end of the next `--B`, which must be exactly CRLF `--B`
    /// (or `--B` at the start); false at the end of the stream.
    fn seek_strict(&mut self, first: bool) -> Result<bool, Error> {
        loop {
            let chunk = fill(&mut self.reader)?;
            let Some(&lead) = self.buf.first().or(chunk.first()) else {
                return Ok(false);
            };
            let expected: &[u8] = if first && lead == b'-' {
                &self.dash_boundary
            } else {
                &self.delimiter
            };
            let take = chunk.len().min(expected.len() - self.buf.len());
            self.buf.extend_from_slice(&chunk[..take]);
            self.reader.consume(take);
            if !expected.starts_with(&self.buf) {
                let why = if first {
                    "garbage before the first boundary"
                } else if !b"\r\n".starts_with(&self.buf[..self.buf.len().min(2)]) {
                    "a part with Content-Length is not followed by CRLF"
                } else {
                    "garbage before a boundary"
                };
                return Err(self.fail(why));
            }
            if self.buf.len() == expected.len() {
                return Ok(true);
            }
            if take == 0 {
                // The end of the stream inside a boundary: between parts, nothing torn.
                return Ok(false);
            }
        }
    }

    /// Lenient: skips to the next `--B` at the start of a line, or to another boundary's line;
    /// false at the end of the stream.
    fn seek_lenient(&mut self, first: bool) -> Result<bool, Error> {
        loop {
            // A boundary line is due at once at the start and after a sized body: looking at
            // each read there tells another boundary without waiting for a window of bytes.
            let due = (first || self.after_length) && self.skipped == 0;
            let cap = if due && self.buf.len() < LOOK {
                // What has come so far: a part that is all there is for now is not held back.
                let ready = fill(&mut self.reader)?.len().max(1);
                LOOK.min(self.buf.len() + ready)
            } else {
                WINDOW
            };
            match self.scan_for_delimiter(cap)? {
                Scan::Found(at) => {
                    let blank = self.buf[..at].iter().all(|b| b" \t\r\n".contains(b));
                    if self.after_length && (self.skipped > 0 || !blank) {
                        // The body went on past its length: lengths are no longer trusted.
                        self.mismatched_length();
                        self.by_boundary = true;
                    }
                    self.after_length = false;
                    return Ok(true);
                }
                Scan::Eof if !self.follow_other_boundary(self.skipped == 0) => return Ok(false),
                Scan::Eof => self.after_length = false,
                Scan::Full => {
                    if self.follow_other_boundary(self.skipped == 0) {
                        self.after_length = false;
                        continue;
                    }
                    if cap == WINDOW {
                        self.skipped += self.keep_window() as u64;
                    }
                    if self.skipped > self.max_part {
                        let why = format!("no boundary in {} bytes", self.skipped);
                        return Err(self.fail(why));
                    }
                }
            }
        }
    }

    /// Looks in `buf` for the line of another boundary, followed by a part's header; if there
    /// is one, follows that boundary from there: `buf` ends before the line, which is to be
    /// read again. `line_at_start`: `buf` starts a line.
    fn follow_other_boundary(&mut self, line_at_start: bool) -> bool {
        match other_boundary(&self.buf, self.looked, line_at_start, &self.dash_boundary) {
            Look::Found { line, boundary } => {
                let rest = self.buf.split_off(line);
                self.reader.unread(rest);
                let given = String::from_utf8_lossy(&self.dash_boundary[2..]).into_owned();
                self.notices.push(Notice::OtherBoundary {
                    given,
                    found: boundary.clone(),
                    at_start: self.parts == 0,
                });
                self.dash_boundary = format!("--{boundary}").into_bytes();
                self.set_delimiter();
                // The search goes on from the line end before the line, now in `buf`'s last byte.
                (self.scanned, self.line_start) = (line.saturating_sub(1), line == 0);
                self.looked = line;
                true
            }
            Look::NotBefore(at) => {
                self.looked = at;
                false
            }
        }
    }

    /// A Content-Length did not match its body: said once.
    fn mismatched_length(&mut self) {
        if !self.length_said {
            self.length_said = true;
            self.notices
                .push(Notice::LengthMismatch { part: self.parts });
        }
    }

    /// After `--B`: `--` (the final boundary), or the end of the line.
    fn boundary_line(&mut self) -> Result<(), Error> {
        loop {
            let chunk = fill(&mut self.reader)?;
            if chunk.is_empty() {
                return Err(self.torn());
            }
            let mut used = 0;
            let mut done = false;
            for &b in chunk {
                used += 1;
                self.buf.push(b);
                if b == b'\n' || self.buf == b"--" {
                    done = true;
                    break;
                }
            }
            self.reader.consume(used);
            self.head_len += used;
            if self.buf == b"--" {
                self.buf.clear();
                if self.strict {
                    self.state = State::CloseLine;
                } else {
                    // What follows is the epilogue: left unread, as nothing needs it.
                    self.ended_cleanly = true;
                    self.finish();
                }
                return Ok(());
            }
            if done {
                let line = &self.buf[..self.buf.len() - 1];
                let why = if self.strict {
                    match line {
                        b"\r" => None,
                        b"" => Some("a boundary line ends in a bare LF"),
                        _ => Some("garbage after a boundary"),
                    }
                } else {
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    let padding = line.iter().all(|&b| b == b' ' || b == b'\t');
                    (!padding).then_some("garbage after a boundary")
                };
                if let Some(why) = why {
                    return Err(self.fail(why));
                }
                self.buf.clear();
                self.headers.clear();
                self.state = State::Headers;
                return Ok(());
            }
            if self.head_len > MAX_HEAD {
                return Err(self.fail("garbage after a boundary"));
            }
        }
    }

    /// Strict, after `--B--`: CRLF, or the end of the stream.
    fn close_line(&mut self) -> Result<(), Error> {
        loop {
            let chunk = fill(&mut self.reader)?;
            if chunk.is_empty() {
                break;
            }
            let take = chunk.len().min(2 - self.buf.len());
            self.buf.extend_from_slice(&chunk[..take]);
            self.reader.consume(take);
            if !b"\r\n".starts_with(&self.buf) {
                return Err(self.fail("garbage after the final boundary"));
            }
            if self.buf.len() == 2 {
                break;
            }
        }
        if !self.buf.is_empty() && self.buf != b"\r\n" {
            return Err(self.fail("the stream ended inside the final boundary's line"));
        }
        self.ended_cleanly = true;
        self.finish();
        Ok(())
    }

    /// Reads header lines into `headers` up to the blank line, then picks how to read the body.
    fn header_lines(&mut self) -> Result<(), Error> {
        loop {
            let chunk = fill(&mut self.reader)?;
            if chunk.is_empty() && self.headers.is_empty() && self.buf.is_empty() {
                // Right after a boundary line (ffmpeg ends its streams so): between parts,
                // nothing torn.
                self.finish();
                return Ok(());
            }
            if chunk.is_empty() {
                return Err(self.torn());
            }
            let (take, whole) = match chunk.iter().position(|&b| b == b'\n') {
                Some(at) => (at + 1, true),
                None => (chunk.len(), false),
            };
            if self.head_len + take > MAX_HEAD {
                let why = format!("a part's header block is over {MAX_HEAD} bytes");
                return Err(self.fail(why));
            }
            self.buf.extend_from_slice(&chunk[..take]);
            self.reader.consume(take);
            self.head_len += take;
            if !whole {
                continue;
            }
            let mut line = std::mem::take(&mut self.buf);
            line.pop();
            match line.pop() {
                Some(b'\r') => {}
                Some(b) if !self.strict => line.push(b),
                None if !self.strict => {}
                _ => return Err(self.fail("a header line ends in a bare LF")),
            }
            if line.is_empty() {
                return self.start_body();
            }
            self.header_line(&line)?;
            line.clear();
            self.buf = line;
        }
    }

    /// One header line, without its line end.
    fn header_line(&mut self, line: &[u8]) -> Result<(), Error> {
        let trim = |s: &[u8]| String::from_utf8_lossy(s.trim_ascii()).into_owned();
        if line[0] == b' ' || line[0] == b'\t' {
            if self.strict {
                return Err(self.fail("a folded header line"));
            }
            if let Some((_, value)) = self.headers.last_mut() {
                value.push(' ');
                value.push_str(&trim(line));
            }
            return Ok(());
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            if self.strict {
                return Err(self.fail("a header line without a colon"));
            }
            return Ok(());
        };
        let name = &line[..colon];
        let token = |b: &u8| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(b);
        if self.strict && (name.is_empty() || !name.iter().all(token)) {
            return Err(self.fail("a header line without a valid name"));
        }
        let name = trim(name);
        if !name.is_empty() {
            self.headers.push((name, trim(&line[colon + 1..])));
        }
        Ok(())
    }

    /// After the blank line: by Content-Length, up to the delimiter, or skipped.
    fn start_body(&mut self) -> Result<(), Error> {
        let (mut length, mut invalid, mut twice) = (None, false, false);
        for (_, value) in self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        {
            match parse_length(value) {
                None => invalid = true,
                Some(n) => {
                    twice |= length.is_some_and(|m| m != n);
                    length = Some(n);
                }
            }
        }
        if invalid && self.strict {
            return Err(self.fail("an invalid Content-Length"));
        }
        if twice {
            return Err(self.fail("Content-Length given twice, differently"));
        }
        self.buf = Vec::new();
        (self.scanned, self.line_start, self.looked) = (0, !self.strict, 0);
        self.parts += 1;
        if self.by_boundary {
            length = None;
        }
        self.state = match length {
            Some(len) if len > self.max_part => State::Skipping,
            // Not over max_part, so it fits a usize wherever max_part does.
            Some(len) => {
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                self.buf.reserve_exact(len.min(MAX_RESERVE));
                State::Sized { len }
            }
            None => State::Delimited,
        };
        Ok(())
    }

    /// Reads the rest of a body of `len` bytes straight into `buf`, which grows only as they
    /// arrive; then the part, without waiting for anything after it.
    fn sized_body(&mut self, len: usize) -> Result<Part, Error> {
        if !self.strict {
            return self.checked_sized_body(len);
        }
        while self.buf.len() < len {
            let spare = self.buf.capacity() - self.buf.len();
            if spare == 0 {
                let more = (len - self.buf.len()).min(self.buf.len().max(WINDOW));
                self.buf.reserve_exact(more);
            }
            let want = (len - self.buf.len()).min(self.buf.capacity() - self.buf.len());
            let before = self.buf.len();
            // Bytes read before an error stay in `buf`; Take keeps it within its capacity.
            (&mut self.reader)
                .take(want as u64)
                .read_to_end(&mut self.buf)?;
            if self.buf.len() < before + want {
                return Err(self.torn());
            }
        }
        self.state = State::Seek { first: false };
        (self.scanned, self.line_start, self.skipped) = (0, true, 0);
        Ok(self.take_part())
    }

    /// Reads on until the buffer holds this stream's delimiter, or `cap` bytes ([`scan`]).
    fn scan_for_delimiter(&mut self, cap: usize) -> io::Result<Scan> {
        scan(
            &mut self.reader,
            &mut self.buf,
            &mut self.scanned,
            &mut self.line_start,
            &self.delimiter,
            cap,
        )
    }

    /// Lenient: a body of `len` bytes that must not hold the delimiter. If it does, or if it
    /// ends with the delimiter's start and the rest of it follows, the Content-Length is wrong:
    /// the body ends where the delimiter begins. Only then does the part wait for bytes after
    /// it, as many as the delimiter has left (a body of its own ending in LF `-` waits for one).
    fn checked_sized_body(&mut self, len: usize) -> Result<Part, Error> {
        let found = self.scan_for_delimiter(len)?;
        let cut = match found {
            Scan::Found(at) => Some(at),
            Scan::Eof => return Err(self.torn()),
            Scan::Full => self.delimiter_after(len)?,
        };
        if let Some(at) = cut {
            self.mismatched_length();
            self.buf.truncate(at);
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
            self.buf.shrink_to_fit();
            self.state = State::BoundaryLine;
            self.head_len = 0;
            return Ok(self.take_part());
        }
        self.state = State::Seek { first: false };
        (self.scanned, self.line_start, self.skipped) = (0, true, 0);
        self.after_length = true;
        Ok(self.take_part())
    }

    /// Whether the body of `len` bytes in `buf` ends with the start of the delimiter (LF `-` at
    /// least) whose rest comes next: Some(where it begins), the reader past it. Otherwise what
    /// was read past the body is left to be read again.
    fn delimiter_after(&mut self, len: usize) -> Result<Option<usize>, Error> {
        let d = &self.delimiter;
        let Some(started) = (2..d.len()).rev().find(|&k| self.buf.ends_with(&d[..k])) else {
            return Ok(None);
        };
        let mut matched = started;
        let mut past = Vec::new();
        let outcome = loop {
            if matched == self.delimiter.len() {
                break Ok(Some(len - started));
            }
            let chunk = match fill(&mut self.reader) {
                Ok(chunk) => chunk,
                Err(e) => break Err(e.into()),
            };
            let Some(&next) = chunk.first() else {
                break Ok(None);
            };
            if next != self.delimiter[matched] {
                break Ok(None);
            }
            self.reader.consume(1);
            past.push(next);
            matched += 1;
        };
        if !matches!(outcome, Ok(Some(_))) {
            self.reader.unread(past);
        }
        outcome
    }

    /// Reads a body up to the delimiter; the part once it is there (None: go on, the body was
    /// over `max_part` and is now being skipped).
    fn delimited_body(&mut self) -> Result<Option<Part>, Error> {
        let max = usize::try_from(self.max_part).unwrap_or(usize::MAX);
        // Room for the delimiter, and for the CR before it when lenient.
        let cap = max.saturating_add(self.delimiter.len() + 1);
        // Lenient, each window of the body is looked at for another boundary's line.
        let checkpoint = if self.strict {
            cap
        } else {
            cap.min((self.buf.len() / WINDOW + 1) * WINDOW)
        };
        match self.scan_for_delimiter(checkpoint)? {
            Scan::Full if checkpoint < cap => {
                if self.follow_other_boundary(false) {
                    let end = self.buf.len().saturating_sub(1);
                    return Ok(Some(self.end_body(end)));
                }
                Ok(None)
            }
            Scan::Found(at) => {
                self.buf.truncate(at);
                if !self.strict && self.buf.last() == Some(&b'\r') {
                    self.buf.pop();
                }
                self.state = State::BoundaryLine;
                self.head_len = 0;
                if self.buf.len() as u64 > self.max_part {
                    self.buf = Vec::new();
                    self.headers.clear();
                    return Err(Error::TooLarge {
                        limit: self.max_part,
                    });
                }
                self.buf.shrink_to_fit();
                Ok(Some(self.take_part()))
            }
            Scan::Eof if !self.strict && self.follow_other_boundary(false) => {
                let end = self.buf.len().saturating_sub(1);
                Ok(Some(self.end_body(end)))
            }
            Scan::Eof => Err(self.torn()),
            Scan::Full => {
                self.keep_window();
                self.buf.shrink_to(WINDOW);
                self.state = State::Skipping;
                Ok(None)
            }
        }
    }

    /// The part whose body is `buf` up to `end`, where another boundary's line begins (after
    /// its line end): the seek finds that line next.
    fn end_body(&mut self, end: usize) -> Part {
        self.buf.truncate(end);
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        self.buf.shrink_to_fit();
        self.state = State::Seek { first: false };
        (self.scanned, self.line_start, self.skipped) = (0, true, 0);
        self.take_part()
    }

    /// Skips a body over `max_part` up to the delimiter: TooLarge then, or the end of the stream.
    fn skip_body(&mut self) -> Error {
        loop {
            let scanned = self.scan_for_delimiter(WINDOW);
            match scanned {
                Ok(Scan::Found(_)) => {
                    self.buf.clear();
                    self.head_len = 0;
                    self.headers.clear();
                    self.state = State::BoundaryLine;
                    return Error::TooLarge {
                        limit: self.max_part,
                    };
                }
                Ok(Scan::Full) => {
                    if !self.strict && self.follow_other_boundary(false) {
                        self.buf.clear();
                        self.headers.clear();
                        self.state = State::Seek { first: false };
                        (self.scanned, self.line_start, self.skipped) = (0, true, 0);
                        return Error::TooLarge {
                            limit: self.max_part,
                        };
                    }
                    self.keep_window();
                }
                Ok(Scan::Eof) => return self.torn(),
                Err(e) => return e.into(),
            }
        }
    }

    /// Drops all of `buf` but what could begin a delimiter, or (lenient) another boundary's line
    /// not yet whole; returns how many bytes went.
    fn keep_window(&mut self) -> usize {
        let mut gone = self.buf.len().saturating_sub(self.delimiter.len() - 1);
        if !self.strict {
            gone = gone.min(self.looked);
        }
        self.buf.drain(..gone);
        self.scanned = self.scanned.saturating_sub(gone);
        self.looked = self.looked.saturating_sub(gone);
        gone
    }

    fn take_part(&mut self) -> Part {
        Part {
            headers: std::mem::take(&mut self.headers),
            body: std::mem::take(&mut self.buf),
        }
    }

    fn finish(&mut self) {
        self.state = State::Done;
        self.buf = Vec::new();
        self.headers = Vec::new();
    }

    fn fail(&mut self, why: impl Into<String>) -> Error {
        let why = why.into();
        self.finish();
        self.state = State::Failed(why.clone());
        Error::Malformed(why)
    }

    /// The stream ended inside a part: the part is dropped, and the stream is over.
    fn torn(&mut self) -> Error {
        self.finish();
        Error::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the stream ended inside a part",
        ))
    }
}

/// The reader's buffered bytes, read again when a signal interrupted the read.
fn fill<R: BufRead>(reader: &mut R) -> io::Result<&[u8]> {
    loop {
        match reader.fill_buf() {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    // Again, as the borrow checker cannot return the first borrow from a loop: a buffered
    // reader answers from its buffer (or, at the end, with another read of 0 bytes).
    reader.fill_buf()
}

/// The reader, and bytes read from it that are to be read again before what it holds.
struct Replay<R> {
    reader: R,
    again: Vec<u8>,
    at: usize,
}

impl<R: BufRead> Replay<R> {
    /// Puts `bytes`, the last read, back in front of what is still to be read.
    fn unread(&mut self, mut bytes: Vec<u8>) {
        bytes.extend_from_slice(&self.again[self.at..]);
        (self.again, self.at) = (bytes, 0);
    }
}

impl<R: BufRead> Read for Replay<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        read_buffered(self, out)
    }
}

/// `Read::read` for a reader whose buffer is its own ([`BufRead`]): what is buffered, as much
/// as fits, without a copy into another buffer first.
pub fn read_buffered(reader: &mut impl BufRead, out: &mut [u8]) -> io::Result<usize> {
    let have = reader.fill_buf()?;
    let n = have.len().min(out.len());
    out[..n].copy_from_slice(&have[..n]);
    reader.consume(n);
    Ok(n)
}

impl<R: BufRead> BufRead for Replay<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.at < self.again.len() {
            return Ok(&self.again[self.at..]);
        }
        self.reader.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        if self.at < self.again.len() {
            self.at += n;
            if self.at >= self.again.len() {
                (self.again, self.at) = (Vec::new(), 0);
            }
        } else {
            self.reader.consume(n);
        }
    }
}

/// What [`other_boundary`] saw.
enum Look {
    /// The line of another boundary begins at `line`.
    Found { line: usize, boundary: String },
    /// No such line begins before this position; one may begin there, not yet whole.
    NotBefore(usize),
}

/// The first line from `from` on in `buf` that is `--X` (X a boundary other than `own`'s,
/// after `--`, with transport padding and CRLF or LF) followed by a header line's name and
/// colon, or by the blank line ending a header block. Lines begin after LF, and at 0 when
/// `line_at_start`.
fn other_boundary(buf: &[u8], from: usize, line_at_start: bool, own: &[u8]) -> Look {
    let starts = (from..buf.len()).filter(|&i| {
        if i == 0 {
            line_at_start
        } else {
            buf[i - 1] == b'\n'
        }
    });
    for line in starts.filter(|&i| buf[i..].starts_with(b"--") || buf.len() - i < 2) {
        let rest = &buf[line..];
        let Some(end) = rest.iter().take(CANDIDATE_MAX).position(|&b| b == b'\n') else {
            if rest.len() < CANDIDATE_MAX {
                return Look::NotBefore(line);
            }
            continue;
        };
        let Some(boundary) = boundary_from_first_line(&rest[..=end]) else {
            continue;
        };
        if own[2..] == *boundary.as_bytes() {
            continue;
        }
        match header_starts(&rest[end + 1..]) {
            Some(true) => return Look::Found { line, boundary },
            Some(false) => {}
            None => return Look::NotBefore(line),
        }
    }
    Look::NotBefore(buf.len())
}

/// Whether `rest` begins with a header line's name and colon (within 80 bytes), or a blank
/// line; None while too short to tell.
pub fn header_starts(rest: &[u8]) -> Option<bool> {
    match rest {
        [] | [b'\r'] => return None,
        [b'\n', ..] | [b'\r', b'\n', ..] => return Some(true),
        _ => {}
    }
    let token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    let name = rest.iter().take(80).take_while(|b| token(b)).count();
    match rest.get(name) {
        None if name < 80 => None,
        Some(b':') => Some(name > 0),
        _ => Some(false),
    }
}

enum Scan {
    /// Where the needle begins in the buffer; the reader is past its end.
    Found(usize),
    Eof,
    /// The buffer holds `cap` bytes without the needle.
    Full,
}

/// Reads into `buf` until it holds `needle` (or, when `line_start`, `needle` without its first
/// byte at its start), consuming from the reader only up to the needle's end. Positions before
/// `scanned` are not searched again, so each byte is looked at about once however it arrives.
fn scan<R: BufRead>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    scanned: &mut usize,
    line_start: &mut bool,
    needle: &[u8],
    cap: usize,
) -> io::Result<Scan> {
    loop {
        if buf.len() >= cap {
            return Ok(Scan::Full);
        }
        let chunk = fill(reader)?;
        if chunk.is_empty() {
            return Ok(Scan::Eof);
        }
        let take = chunk.len().min(cap - buf.len());
        let old = buf.len();
        if buf.capacity() - old < take {
            // Doubling, but never past `cap`: a body's buffer stays within its bound.
            let want = (old * 2).max(old + take).min(cap);
            buf.reserve_exact(want - old);
        }
        buf.extend_from_slice(&chunk[..take]);
        let mut found = None;
        if *line_start {
            let bare = &needle[1..];
            let n = buf.len().min(bare.len());
            if buf[..n] != bare[..n] {
                *line_start = false;
            } else if n == bare.len() {
                found = Some((0, n));
            }
        }
        if found.is_none() {
            found = find(&buf[*scanned..], needle)
                .map(|at| (*scanned + at, *scanned + at + needle.len()));
        }
        if let Some((start, end)) = found {
            reader.consume(end.saturating_sub(old));
            return Ok(Scan::Found(start));
        }
        reader.consume(take);
        *scanned = (*scanned).max(buf.len().saturating_sub(needle.len() - 1));
    }
}

/// Where `needle` first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut from = 0;
    while let Some(at) = hay[from..].iter().position(|&b| b == first) {
        let at = from + at;
        if hay.len() - at < needle.len() {
            return None;
        }
        if &hay[at + 1..at + needle.len()] == rest {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// A Content-Length: ASCII digits only (no sign), saturating at u64::MAX, which is over any limit.
fn parse_length(value: &str) -> Option<u64> {
    let value = value.trim_matches([' ', '\t']);
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(value.bytes().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// The boundary of a `multipart/...` Content-Type: its `boundary` parameter (the name in any
/// case), quoted or not, 1 to 70 printable ASCII characters; None for any other type.
pub fn boundary_from_content_type(content_type: &str) -> Option<String> {
    let (media, mut params) = content_type.split_once(';')?;
    let media = media.trim().as_bytes();
    if media.len() < 10 || !media[..10].eq_ignore_ascii_case(b"multipart/") {
        return None;
    }
    loop {
        params = params.trim_start_matches([' ', '\t', ';']);
        if params.is_empty() {
            return None;
        }
        // A parameter without a value is skipped.
        let Some(eq) = params.find('=').filter(|&eq| !params[..eq].contains(';')) else {
            params = &params[params.find(';')?..];
            continue;
        };
        let (name, rest) = (&params[..eq], &params[eq + 1..]);
        let (value, rest) = match rest.strip_prefix('"') {
            Some(quoted) => unquote(quoted)?,
            None => {
                let end = rest.find([';', ' ', '\t']).unwrap_or(rest.len());
                (rest[..end].to_string(), &rest[end..])
            }
        };
        if name.trim().eq_ignore_ascii_case("boundary") {
            let ok = (1..=70).contains(&value.len())
                && value.bytes().all(|b| (b' '..=b'~').contains(&b))
                && !value.ends_with(' ');
            return ok.then_some(value);
        }
        params = rest;
    }
}

/// A quoted string's value (after its opening quote) and what follows its closing quote.
fn unquote(quoted: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Some((value, &quoted[at + 1..])),
            '\\' => value.push(chars.next()?.1),
            c => value.push(c),
        }
    }
    None
}

/// The boundary B of a stream whose first line is `--B` (CRLF or LF), as on stdin where no
/// Content-Type says it: Some if that whole line is in `bytes` and B looks like a boundary
/// (1 to 70 of RFC 2046's characters, without spaces, which text seldom starts with).
pub fn boundary_from_first_line(bytes: &[u8]) -> Option<String> {
    let rest = bytes.strip_prefix(b"--")?;
    let end = rest.iter().position(|&b| b == b'\n')?;
    let line = &rest[..end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let boundary = line.trim_ascii_end();
    let bchar = |b: &u8| b.is_ascii_alphanumeric() || b"'()+_,-./:=?".contains(b);
    let ok = (1..=70).contains(&boundary.len()) && boundary.iter().all(bchar);
    ok.then(|| String::from_utf8_lossy(boundary).into_owned())
}

#[cfg(test)]
mod tests;
