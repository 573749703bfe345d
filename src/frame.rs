//! The one shared latest frame: what a source publishes and every connection reads.
//!
//! A [`Frame`] is immutable and shared through an `Arc`; everything a connection writes about it
//! (part headers, ETag) is rendered once here, when it is published, never per client.
//! [`Latest`] holds the newest frame behind a mutex and wakes waiting connections with a condvar:
//! latest wins, nothing queues per client, so memory does not grow with slow clients.

use std::hash::{DefaultHasher, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::json;

/// One version of the source: bytes plus everything said about them on the wire.
pub struct Frame {
    /// 1 for the first frame published, +1 for each later one.
    pub seq: u64,
    pub bytes: Vec<u8>,
    pub content_type: String,
    /// File name (not a path) the frame was read from, for captions and logs.
    pub name: String,
    pub modified: SystemTime,
    /// When it was published (the status line's "changed 2s ago").
    pub published: Instant,
    /// Strong validator derived from the content, so it survives a restart.
    pub etag: String,
    /// `--B`, Content-Type and Content-Length, then the blank line: a complete part head.
    pub part_head: Vec<u8>,
    /// `\r\n--B`, Content-Type, blank line: closes the previous part and opens the next one
    /// before its body exists (see `push.rs`, browser framing).
    pub next_part_head: Vec<u8>,
    /// The frame described as JSON (see [`describe`]), as /poll answers and /events sends it.
    pub json: String,
    /// The whole Server-Sent Event for this frame: `id:`, `data:`, blank line.
    pub event: Vec<u8>,
}

/// Text frames up to this size carry their text in their JSON, so a page needs no second request.
pub const TEXT_IN_JSON_LIMIT: usize = 64 * 1024;

/// sequence, name, type, size, modified (ms since 1970), snapshot URL, and for small UTF-8 text
/// frames the text itself.
fn describe(seq: u64, new: &NewFrame) -> String {
    let modified = new
        .modified
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let text = if new.content_type.starts_with("text/") && new.bytes.len() <= TEXT_IN_JSON_LIMIT {
        std::str::from_utf8(&new.bytes).ok()
    } else {
        None
    };
    format!(
        r#"{{"seq":{seq},"name":{},"type":{},"size":{},"modified":{modified},"snapshot":"snapshot?seq={seq}"{}}}"#,
        json::string(&new.name),
        json::string(&new.content_type),
        new.bytes.len(),
        text.map_or(String::new(), |t| format!(r#","text":{}"#, json::string(t))),
    )
}

/// What a source hands to [`Latest::publish`]; the rest of a [`Frame`] is derived from it.
pub struct NewFrame {
    pub bytes: Vec<u8>,
    pub content_type: String,
    pub name: String,
    pub modified: SystemTime,
}

impl Frame {
    fn render(new: NewFrame, seq: u64, boundary: &str) -> Frame {
        let json = describe(seq, &new);
        let event = format!("id: {seq}\ndata: {json}\n\n").into_bytes();
        let NewFrame {
            bytes,
            content_type,
            name,
            modified,
        } = new;
        let mut hasher = DefaultHasher::new();
        hasher.write(&bytes);
        let etag = format!("\"{:016x}-{:x}\"", hasher.finish(), bytes.len());
        let part_head = format!(
            "--{boundary}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            bytes.len()
        )
        .into_bytes();
        let next_part_head =
            format!("\r\n--{boundary}\r\nContent-Type: {content_type}\r\n\r\n").into_bytes();
        Frame {
            seq,
            bytes,
            content_type,
            name,
            modified,
            published: Instant::now(),
            etag,
            part_head,
            next_part_head,
            json,
            event,
        }
    }
}

/// What a connection learns when it waits for a frame newer than the one it has.
pub enum Wait {
    Newer(Arc<Frame>),
    /// Nothing new within the timeout: time for a keep-alive or a repeat.
    TimedOut,
    /// The server is shutting down: end the response cleanly.
    Closed,
}

struct State {
    frame: Option<Arc<Frame>>,
    closed: bool,
}

/// The newest frame of the source, shared by the source thread and every connection.
pub struct Latest {
    boundary: String,
    state: Mutex<State>,
    changed: Condvar,
}

impl Latest {
    pub fn new(boundary: String) -> Latest {
        Latest {
            boundary,
            state: Mutex::new(State {
                frame: None,
                closed: false,
            }),
            changed: Condvar::new(),
        }
    }

    pub fn boundary(&self) -> &str {
        &self.boundary
    }

    /// Makes `new` the current frame and wakes every waiting connection.
    pub fn publish(&self, new: NewFrame) -> Arc<Frame> {
        let mut state = self.lock();
        let seq = state.frame.as_ref().map_or(1, |f| f.seq + 1);
        let frame = Arc::new(Frame::render(new, seq, &self.boundary));
        state.frame = Some(Arc::clone(&frame));
        drop(state);
        self.changed.notify_all();
        frame
    }

    pub fn current(&self) -> Option<Arc<Frame>> {
        self.lock().frame.clone()
    }

    /// Waits until a frame with a sequence number above `seen` exists (0 = any frame), the
    /// timeout passes, or the server closes. A client that is behind gets the newest frame only.
    pub fn wait_newer(&self, seen: u64, timeout: Duration) -> Wait {
        let never_kicked = AtomicBool::new(false);
        // A timeout too long for the clock (`--keepalive 99999999999`) is none.
        self.wait(seen, Instant::now().checked_add(timeout), &never_kicked)
            .unwrap_or(Wait::TimedOut)
    }

    /// [`Latest::wait_newer`] until `deadline` (None: no timeout), returning None once `kicked`
    /// is set (and [`Latest::kick`] called): how an idle reader stream waits while `keeper.rs`
    /// keeps its connection alive.
    pub fn wait_newer_or_kicked(
        &self,
        seen: u64,
        kicked: &AtomicBool,
        deadline: Option<Instant>,
    ) -> Option<Wait> {
        self.wait(seen, deadline, kicked)
    }

    fn wait(&self, seen: u64, deadline: Option<Instant>, kicked: &AtomicBool) -> Option<Wait> {
        let mut state = self.lock();
        loop {
            // A newer frame first: the last slide of a `--once` show still reaches everyone.
            if let Some(frame) = state.frame.as_ref().filter(|f| f.seq > seen) {
                return Some(Wait::Newer(Arc::clone(frame)));
            }
            if state.closed {
                return Some(Wait::Closed);
            }
            if kicked.swap(false, Ordering::SeqCst) {
                return None;
            }
            state = match deadline {
                None => self.changed.wait(state).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Some(Wait::TimedOut);
                    }
                    self.changed
                        .wait_timeout(state, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }

    /// Wakes every waiting connection so that those whose `kicked` flag is set return. The
    /// flag must be set before: taking the lock here means no waiter can miss it.
    pub fn kick(&self) {
        drop(self.lock());
        self.changed.notify_all();
    }

    /// Wakes every waiting connection with [`Wait::Closed`], now and from then on.
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking holder cannot leave State half-updated (each update is one assignment).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_frame(bytes: &[u8]) -> NewFrame {
        NewFrame {
            bytes: bytes.to_vec(),
            content_type: "text/plain".into(),
            name: "a.txt".into(),
            modified: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_client_that_is_behind_gets_only_the_newest_frame() {
        let latest = Latest::new("B".into());
        latest.publish(new_frame(b"one"));
        latest.publish(new_frame(b"two"));
        match latest.wait_newer(0, Duration::ZERO) {
            Wait::Newer(f) => assert_eq!((f.seq, f.bytes.as_slice()), (2, &b"two"[..])),
            _ => panic!("expected the newest frame"),
        }
        assert!(matches!(
            latest.wait_newer(2, Duration::from_millis(1)),
            Wait::TimedOut
        ));
    }

    #[test]
    fn part_heads_are_rendered_once_with_the_frame() {
        let latest = Latest::new("B".into());
        let f = latest.publish(new_frame(b"hello"));
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
    fn close_wakes_waiters() {
        let latest = Arc::new(Latest::new("B".into()));
        let waiter = {
            let latest = Arc::clone(&latest);
            std::thread::spawn(move || {
                matches!(latest.wait_newer(0, Duration::from_secs(30)), Wait::Closed)
            })
        };
        latest.close();
        assert!(waiter.join().unwrap());
    }
}
