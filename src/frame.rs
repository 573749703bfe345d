//! The one shared latest frame: what a source publishes and every connection reads.
//!
//! A [`Frame`] is immutable and shared through an `Arc`; everything a connection writes about it
//! (part headers, ETag) is rendered once here, when it is published, never per client; what
//! costs time (hashing the bytes, escaping text) before [`Latest::publish`] takes its lock, so
//! that readers of the current frame never wait behind it.
//! [`Latest`] holds the newest frame behind a mutex and wakes each subscribed connection once
//! per new frame (`wake.rs`): latest wins, nothing queues per client, so memory does not grow
//! with slow clients, and a client coming or going wakes nobody else.

use std::io::{self, Read};
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use memmap2::MmapMut;

use crate::http::head::HeaderValue;
use crate::json;
use crate::wake::Waiter;

/// One version of the source: bytes plus everything said about them on the wire.
pub struct Frame {
    /// 1 for the first frame published, +1 for each later one.
    pub seq: u64,
    pub bytes: FrameBytes,
    pub content_type: HeaderValue,
    /// File name (not a path) the frame was read from, for captions and logs.
    pub name: String,
    pub modified: SystemTime,
    /// When it was published (the status line's "changed 2s ago").
    pub published: Instant,
    /// Strong validator: a SHA-256 of the content (see [`etag`]), so it survives a restart and
    /// an upgrade.
    pub etag: HeaderValue,
    /// `--B`, Content-Type and Content-Length, then the blank line: a complete part head
    /// (documents also say `Content-Security-Policy: sandbox`, see [`is_document`]).
    pub part_head: Vec<u8>,
    /// `\r\n--B`, Content-Type, blank line: closes the previous part and opens the next one
    /// before its body exists (see `push.rs`, browser framing).
    pub next_part_head: Vec<u8>,
    /// The frame described as JSON (see [`describe`]), as /poll answers and /events sends it.
    pub json: String,
    /// The whole Server-Sent Event for this frame: `id:`, `data:`, blank line.
    pub event: Vec<u8>,
}

/// A frame's bytes. Large ones live in an anonymous mapping of their own, so that their memory
/// goes back to the system as soon as the last client is done with them. From the heap it may
/// not: the allocator keeps freed blocks of that size (glibc raises its mmap threshold after
/// the first one is freed), and after slow clients had each held another 20 MiB version, the
/// process stayed hundreds of MB large once they had all gone.
pub struct FrameBytes(Storage);

enum Storage {
    Heap(Vec<u8>),
    Mapped { map: MmapMut, len: usize },
}

impl FrameBytes {
    /// Frames from this size on get a mapping of their own.
    const MAPPED_FROM: usize = 1 << 20;

    /// Reads `reader` to its end, but no more than `limit` bytes, into memory sized for
    /// `expected` bytes; more than `expected` (a file that grew) ends the read at
    /// `expected` + 1 bytes, which the caller sees as a length that does not match.
    pub fn read(reader: impl Read, expected: usize, limit: u64) -> io::Result<FrameBytes> {
        let mut reader = reader.take(limit);
        if expected < Self::MAPPED_FROM {
            let mut bytes = Vec::with_capacity(expected + 1);
            reader.read_to_end(&mut bytes)?;
            return Ok(FrameBytes(Storage::Heap(bytes)));
        }
        let mut map = MmapMut::map_anon(expected + 1)?;
        let mut len = 0;
        while len < map.len() {
            match reader.read(&mut map[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(FrameBytes(Storage::Mapped { map, len }))
    }
}

impl Deref for FrameBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Storage::Heap(bytes) => bytes,
            Storage::Mapped { map, len } => &map[..*len],
        }
    }
}

impl From<Vec<u8>> for FrameBytes {
    fn from(bytes: Vec<u8>) -> FrameBytes {
        FrameBytes(Storage::Heap(bytes))
    }
}

/// Text frames up to this size carry their text in their JSON, so a page needs no second request.
pub const TEXT_IN_JSON_LIMIT: usize = 64 * 1024;

/// The JSON description of a frame (sequence, name, type, size, modified in ms since 1970,
/// snapshot URL, and for small UTF-8 text frames the text itself) but for its sequence number:
/// the part before it and the part after it.
fn describe(new: &NewFrame) -> (String, String) {
    let modified = new
        .modified
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let text = if new.content_type.as_str().starts_with("text/")
        && new.bytes.len() <= TEXT_IN_JSON_LIMIT
    {
        std::str::from_utf8(&new.bytes).ok()
    } else {
        None
    };
    let before = format!(
        r#""name":{},"type":{},"size":{},"modified":{modified},"snapshot":"snapshot?seq="#,
        json::string(&new.name),
        json::string(new.content_type.as_str()),
        new.bytes.len(),
    );
    let after = text.map_or(String::new(), |t| format!(r#","text":{}"#, json::string(t)));
    (before, after)
}

/// The strong validator of `bytes`: the first 128 bits of their SHA-256, and their length. A
/// hash defined by a standard, so that the same bytes have the same tag in every build.
fn etag(bytes: &[u8]) -> HeaderValue {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut tag = String::from("\"");
    for byte in &digest.as_ref()[..16] {
        tag.push_str(&format!("{byte:02x}"));
    }
    tag.push_str(&format!("-{:x}\"", bytes.len()));
    HeaderValue::new(tag).expect("hex digits and quotes")
}

/// Whether a browser shown a part of this type (outside the viewer's sandboxed iframe) would
/// render a document that can run scripts on this origin: HTML, XHTML, SVG and XML.
pub fn is_document(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    [
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
    ]
    .iter()
    .any(|t| essence.eq_ignore_ascii_case(t))
}

/// What a source hands to [`Latest::publish`]; the rest of a [`Frame`] is derived from it.
pub struct NewFrame {
    pub bytes: FrameBytes,
    pub content_type: HeaderValue,
    pub name: String,
    pub modified: SystemTime,
}

/// A frame rendered but not yet numbered: everything but its sequence number, made by
/// [`Frame::render`] before [`Latest::publish`] takes its lock.
pub struct Rendered {
    bytes: FrameBytes,
    content_type: HeaderValue,
    name: String,
    modified: SystemTime,
    etag: HeaderValue,
    part_head: Vec<u8>,
    next_part_head: Vec<u8>,
    /// The JSON description before and after its sequence number (see [`describe`]).
    json: (String, String),
}

impl Frame {
    /// Everything said about `new` on the wire, rendered once: part heads with `boundary`,
    /// ETag and JSON; the sequence number is added when it is published.
    pub fn render(new: NewFrame, boundary: &str) -> Rendered {
        let json = describe(&new);
        let NewFrame {
            bytes,
            content_type,
            name,
            modified,
        } = new;
        let sandbox = if is_document(content_type.as_str()) {
            "Content-Security-Policy: sandbox\r\n"
        } else {
            ""
        };
        let part_head = format!(
            "--{boundary}\r\nContent-Type: {content_type}\r\n{sandbox}Content-Length: {}\r\n\r\n",
            bytes.len()
        )
        .into_bytes();
        let next_part_head =
            format!("\r\n--{boundary}\r\nContent-Type: {content_type}\r\n{sandbox}\r\n")
                .into_bytes();
        Rendered {
            etag: etag(&bytes),
            bytes,
            content_type,
            name,
            modified,
            part_head,
            next_part_head,
            json,
        }
    }
}

impl Rendered {
    /// The frame as version `seq`: only copies, cheap enough to make under the lock.
    fn numbered(self, seq: u64) -> Frame {
        let (before, after) = &self.json;
        let json = format!(r#"{{"seq":{seq},{before}{seq}"{after}}}"#);
        let event = format!("id: {seq}\ndata: {json}\n\n").into_bytes();
        Frame {
            seq,
            bytes: self.bytes,
            content_type: self.content_type,
            name: self.name,
            modified: self.modified,
            published: Instant::now(),
            etag: self.etag,
            part_head: self.part_head,
            next_part_head: self.next_part_head,
            json,
            event,
        }
    }
}

/// What a connection learns when it waits for a frame newer than the one it has.
pub enum Wait {
    Newer(Arc<Frame>),
    /// Nothing new by the deadline: time for a keep-alive or a repeat.
    TimedOut,
    /// The server is shutting down: end the response cleanly.
    Closed,
    /// The client has closed its side: end the response, nobody reads it.
    Gone,
    /// The keeper asked the connection to act (see `keeper.rs`).
    Kicked,
}

/// Frames of this many types are kept for clients that cannot show the current one.
const RECENT_TYPES: usize = 8;

struct State {
    frame: Option<Arc<Frame>>,
    /// The newest frame of each of the last [`RECENT_TYPES`] content types, newest first: a
    /// client that shows only some types (an `<img>` during a text slide) starts with the newest
    /// it can show.
    recent: Vec<Arc<Frame>>,
    closed: bool,
}

/// The newest frame of the source, shared by the source thread and every connection.
pub struct Latest {
    state: Mutex<State>,
    /// The connections waiting for frames, each woken once per new frame.
    subscribers: Mutex<Slots>,
}

/// Waiters by slot; a slot is reused once its subscription ends.
#[derive(Default)]
struct Slots {
    waiters: Vec<Option<Arc<Waiter>>>,
    free: Vec<usize>,
}

impl Latest {
    pub fn new() -> Latest {
        Latest {
            state: Mutex::new(State {
                frame: None,
                recent: Vec::new(),
                closed: false,
            }),
            subscribers: Mutex::new(Slots::default()),
        }
    }

    /// Makes `rendered` the current frame, numbered next, and wakes every subscriber once.
    pub fn publish(&self, rendered: Rendered) -> Arc<Frame> {
        let mut state = lock(&self.state);
        let seq = state.frame.as_ref().map_or(1, |f| f.seq + 1);
        let frame = Arc::new(rendered.numbered(seq));
        state.frame = Some(Arc::clone(&frame));
        state
            .recent
            .retain(|f| f.content_type.as_str() != frame.content_type.as_str());
        state.recent.insert(0, Arc::clone(&frame));
        state.recent.truncate(RECENT_TYPES);
        drop(state);
        self.wake_all();
        frame
    }

    pub fn current(&self) -> Option<Arc<Frame>> {
        lock(&self.state).frame.clone()
    }

    /// The newest frame for which `shows` is true, among the newest of each recent type.
    pub fn newest_where(&self, shows: impl Fn(&Frame) -> bool) -> Option<Arc<Frame>> {
        lock(&self.state).recent.iter().find(|f| shows(f)).cloned()
    }

    /// Registers `waiter` to be woken by every new frame (and by [`Latest::close`]) until the
    /// returned subscription is dropped.
    pub fn subscribe(&self, waiter: &Arc<Waiter>) -> Subscription<'_> {
        let mut slots = lock(&self.subscribers);
        let waiter = Arc::clone(waiter);
        let slot = match slots.free.pop() {
            Some(slot) => {
                slots.waiters[slot] = Some(Arc::clone(&waiter));
                slot
            }
            None => {
                slots.waiters.push(Some(Arc::clone(&waiter)));
                slots.waiters.len() - 1
            }
        };
        Subscription {
            latest: self,
            waiter,
            slot,
        }
    }

    /// Wakes every subscriber with [`Wait::Closed`], now and from then on.
    pub fn close(&self) {
        lock(&self.state).closed = true;
        self.wake_all();
    }

    pub fn is_closed(&self) -> bool {
        lock(&self.state).closed
    }

    fn wake_all(&self) {
        for waiter in lock(&self.subscribers).waiters.iter().flatten() {
            waiter.wake();
        }
    }
}

/// A connection's place among the subscribers of a [`Latest`].
pub struct Subscription<'a> {
    latest: &'a Latest,
    waiter: Arc<Waiter>,
    slot: usize,
}

impl Subscription<'_> {
    /// Waits until a frame with a sequence number above `seen` exists (0 = any frame), the
    /// server closes, the client goes, the keeper kicks, or `timeout` passes (one beyond the
    /// clock's range, `--keepalive 99999999999`, is none). A client that is behind gets the
    /// newest frame only.
    pub fn wait_newer(&self, seen: u64, timeout: Duration) -> Wait {
        self.wait_until(seen, Instant::now().checked_add(timeout))
    }

    /// [`Subscription::wait_newer`] until `deadline`; None: no deadline.
    pub fn wait_until(&self, seen: u64, deadline: Option<Instant>) -> Wait {
        let waiter = &self.waiter;
        loop {
            if waiter.is_gone() {
                return Wait::Gone;
            }
            {
                let state = lock(&self.latest.state);
                // A newer frame first: the last slide of a `--once` show still reaches everyone.
                if let Some(frame) = state.frame.as_ref().filter(|f| f.seq > seen) {
                    return Wait::Newer(Arc::clone(frame));
                }
                if state.closed {
                    return Wait::Closed;
                }
            }
            if waiter.take_kick() {
                return Wait::Kicked;
            }
            if deadline.is_some_and(|d| d <= Instant::now()) {
                return Wait::TimedOut;
            }
            waiter.sleep(deadline);
        }
    }
}

impl Drop for Subscription<'_> {
    fn drop(&mut self) {
        let mut slots = lock(&self.latest.subscribers);
        slots.waiters[self.slot] = None;
        slots.free.push(self.slot);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking holder cannot leave either state half-updated (each update is one assignment).
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(latest: &Latest, new: NewFrame) -> Arc<Frame> {
        latest.publish(Frame::render(new, "B"))
    }

    fn new_frame(bytes: &[u8]) -> NewFrame {
        NewFrame {
            bytes: bytes.to_vec().into(),
            content_type: HeaderValue::from_static("text/plain"),
            name: "a.txt".into(),
            modified: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_client_that_is_behind_gets_only_the_newest_frame() {
        let latest = Latest::new();
        let sub = latest.subscribe(&Waiter::for_current_thread());
        publish(&latest, new_frame(b"one"));
        publish(&latest, new_frame(b"two"));
        match sub.wait_newer(0, Duration::ZERO) {
            Wait::Newer(f) => assert_eq!((f.seq, &f.bytes[..]), (2, &b"two"[..])),
            _ => panic!("expected the newest frame"),
        }
        assert!(matches!(
            sub.wait_newer(2, Duration::from_millis(1)),
            Wait::TimedOut
        ));
    }

    #[test]
    fn large_frames_are_read_into_a_mapping_of_their_own() {
        let big: Vec<u8> = (0..3 << 20).map(|i| (i % 251) as u8).collect();
        let read =
            |expected: usize, limit: u64| FrameBytes::read(&big[..], expected, limit).unwrap();
        let whole = read(big.len(), u64::MAX);
        assert!(matches!(whole.0, Storage::Mapped { .. }));
        assert!(whole[..] == big[..]);
        // A file that grew while read: one byte more than expected says so.
        assert_eq!(read(2 << 20, u64::MAX).len(), (2 << 20) + 1);
        assert_eq!(read(big.len(), 100).len(), 100);
        assert!(matches!(read(1000, u64::MAX).0, Storage::Heap(_)));
    }

    #[test]
    fn document_parts_say_sandbox() {
        let latest = Latest::new();
        let mut svg = new_frame(b"<svg/>");
        svg.content_type = HeaderValue::from_static("image/svg+xml");
        let f = publish(&latest, svg);
        assert_eq!(
            f.part_head,
            b"--B\r\nContent-Type: image/svg+xml\r\nContent-Security-Policy: sandbox\r\n\
              Content-Length: 6\r\n\r\n"
        );
        assert!(is_document("text/html; charset=utf-8"));
        assert!(!is_document("image/jpeg"));
    }

    #[test]
    fn the_etag_is_made_before_publishing_and_the_same_in_every_build() {
        // `render` needs no `Latest`: publish, which locks, is handed the tag already made.
        let rendered = Frame::render(new_frame(b"hello"), "B");
        assert_eq!(
            rendered.etag.as_str(),
            "\"2cf24dba5fb0a30e26e83b2ac5b9e29e-5\"",
            "SHA-256 of \"hello\", first 128 bits, and the length"
        );
        let latest = Latest::new();
        let f = latest.publish(rendered);
        assert_eq!(f.etag.as_str(), "\"2cf24dba5fb0a30e26e83b2ac5b9e29e-5\"");
    }

    #[test]
    fn the_description_is_numbered_when_published() {
        let latest = Latest::new();
        publish(&latest, new_frame(b"one"));
        let f = publish(&latest, new_frame(b"a \"b\"\n"));
        assert_eq!(
            f.json,
            r#"{"seq":2,"name":"a.txt","type":"text/plain","size":6,"modified":0,"snapshot":"snapshot?seq=2","text":"a \"b\"\n"}"#
        );
        assert_eq!(f.event, format!("id: 2\ndata: {}\n\n", f.json).into_bytes());
    }

    #[test]
    fn part_heads_are_rendered_once_with_the_frame() {
        let latest = Latest::new();
        let f = publish(&latest, new_frame(b"hello"));
        assert_eq!(
            f.part_head,
            b"--B\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n"
        );
        assert_eq!(
            f.next_part_head,
            b"\r\n--B\r\nContent-Type: text/plain\r\n\r\n"
        );
    }

    #[test]
    fn the_newest_frame_of_each_recent_type_is_kept() {
        let latest = Latest::new();
        let typed = |bytes: &[u8], t: &'static str| {
            let mut f = new_frame(bytes);
            f.content_type = HeaderValue::from_static(t);
            f
        };
        publish(&latest, typed(b"a", "image/jpeg"));
        publish(&latest, typed(b"b", "image/png"));
        publish(&latest, typed(b"c", "image/jpeg"));
        publish(&latest, typed(b"d", "text/plain"));
        let jpeg = latest.newest_where(|f| f.content_type.as_str() == "image/jpeg");
        assert_eq!(jpeg.map(|f| f.seq), Some(3));
        let image = latest.newest_where(|f| f.content_type.as_str().starts_with("image/"));
        assert_eq!(image.map(|f| f.seq), Some(3));
        assert!(
            latest
                .newest_where(|f| f.content_type.as_str() == "x/y")
                .is_none()
        );
        for i in 0..RECENT_TYPES {
            let t = format!("x/t{i}");
            let mut f = new_frame(b"x");
            f.content_type = HeaderValue::new(t).unwrap();
            publish(&latest, f);
        }
        assert!(latest.newest_where(|_| true).is_some());
        assert!(
            latest
                .newest_where(|f| f.content_type.as_str() == "image/jpeg")
                .is_none(),
            "only the last {RECENT_TYPES} types are kept"
        );
    }

    /// Starts a thread that subscribes, then waits for a frame newer than the current one; what
    /// it learns.
    fn waiting(latest: &Arc<Latest>) -> (Arc<Waiter>, std::thread::JoinHandle<&'static str>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let latest = Arc::clone(latest);
        let thread = std::thread::spawn(move || {
            let waiter = Waiter::for_current_thread();
            let sub = latest.subscribe(&waiter);
            let seen = latest.current().map_or(0, |f| f.seq);
            tx.send(Arc::clone(&waiter)).unwrap();
            match sub.wait_newer(seen, Duration::from_secs(30)) {
                Wait::Newer(_) => "newer",
                Wait::Closed => "closed",
                Wait::Gone => "gone",
                Wait::Kicked => "kicked",
                Wait::TimedOut => "timed out",
            }
        });
        (rx.recv().unwrap(), thread)
    }

    #[test]
    fn each_waiter_learns_what_concerns_it() {
        let latest = Arc::new(Latest::new());
        publish(&latest, new_frame(b"one"));
        let (waiter, thread) = waiting(&latest);
        waiter.set_gone();
        assert_eq!(thread.join().unwrap(), "gone");
        let (waiter, thread) = waiting(&latest);
        waiter.kick();
        assert_eq!(thread.join().unwrap(), "kicked");
        let (_, thread) = waiting(&latest);
        publish(&latest, new_frame(b"two"));
        assert_eq!(thread.join().unwrap(), "newer");
        let (_, thread) = waiting(&latest);
        latest.close();
        assert_eq!(thread.join().unwrap(), "closed");
        assert!(
            lock(&latest.subscribers)
                .waiters
                .iter()
                .all(Option::is_none)
        );
    }
}
