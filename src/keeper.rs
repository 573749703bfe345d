//! A reader stream's wire state, and keep-alive for idle reader streams, done by one thread for
//! all of them.
//!
//! A reader stream always ends what it writes with the next part's delimiter line, `--B`, left
//! open (see `push.rs`). When a stream has sent nothing for `--keepalive` (why, and what the
//! other streams get: `Args::keepalive`), this thread ends that line and adds a header line of
//! the next part, [`KEEPALIVE`] (`X-Keepalive: 1`), itself left open for the next part's own
//! headers or the next keep-alive. Every reader ignores a header it does not know; nothing else
//! is accepted by all of them: GStreamer refuses the transport padding RFC 2046 allows after a
//! boundary (`--B  `), aiohttp a blank line before one, ffmpeg an empty part. Clients that
//! leave are noticed by the connection layer's watcher, those that stopped reading here; the
//! idle streams' own threads sleep until the next frame (or `--repeat`, for OpenCV, which only
//! a frame satisfies): the idle cost is one small send per client, not a thread wake-up and a
//! frame copy, and none for a stream that a repeat kept busy. The keeper sleeps until the next stream falls due, and streams
//! that went quiet together are kept alive in one pass. It never blocks on a client and never
//! writes inside a part's body.
//!
//! Two threads write to a reader stream, its own (parts) and the keeper (keep-alives), and each
//! write depends on what was written before it; so [`ReaderStream`] owns the connection and
//! that record together, behind one lock, and is the only code that reads or changes the
//! record: its own thread writes through [`ReaderStream::lock`], the keeper through
//! [`ReaderStream::write_keepalive`].

use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread;
use std::time::{Duration, Instant};

use crate::http::conn::Conn;

/// A keep-alive: ends the open line (the delimiter, or the last keep-alive) and opens a header
/// line of the next part that every reader ignores. Sent whole or not at all (see
/// `Conn::try_send`), so a line is never torn.
const KEEPALIVE: &[u8] = b"\r\nX-Keepalive: 1";

/// Keep-alives in one part head before the stream's own thread ends it with a repeat of the
/// current frame instead: readers cap the header lines of a part (aiohttp at 128).
const MAX_KEEPALIVES: u32 = 64;

/// One reader stream's connection and what has been written to it, shared by the stream's
/// thread and the keeper. The keeper kicks the connection's waiter when the thread must act:
/// its client stopped reading, or its part head is full.
pub struct ReaderStream {
    conn: Conn,
    /// Held by whichever thread writes, for the write and its record together.
    wire: Mutex<Wire>,
}

/// What has been written to a reader stream: the state of its open delimiter line.
#[derive(Default)]
struct Wire {
    /// A delimiter line is open at the end of what was written, and keep-alives may follow.
    open: bool,
    /// Header lines written after it so far: keep-alives, and a profile's padding (see
    /// `push.rs`). With none, the delimiter is bare and can still become the final one.
    header_lines: u32,
    /// When anything was last written to the connection, or a keep-alive last tried; None
    /// before the first part.
    last_write: Option<Instant>,
    /// The client is gone or stopped reading: the stream must end.
    dead: bool,
    /// The last keep-alive found the send buffer full.
    full_once: bool,
}

/// A reader stream held by its own thread: it writes parts and the end, and nothing else
/// writes meanwhile.
pub struct Writer<'a> {
    conn: &'a Conn,
    wire: MutexGuard<'a, Wire>,
}

impl ReaderStream {
    /// Holds the stream for its own thread's writes.
    pub fn lock(&self) -> Writer<'_> {
        Writer {
            conn: &self.conn,
            wire: self.wire(),
        }
    }

    fn wire(&self) -> MutexGuard<'_, Wire> {
        self.wire.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes a keep-alive if the open line has been quiet for `idle` at `now`, and kicks the
    /// stream's thread if it must act; never waits, neither for the lock (a stream being
    /// written to is not idle) nor for the client. Returns when the stream falls due, if later.
    fn write_keepalive(&self, now: Instant, idle: Duration) -> Option<Instant> {
        let Ok(mut wire) = self.wire.try_lock() else {
            return None;
        };
        if !wire.open || wire.dead {
            return None;
        }
        match wire.last_write.map(|t| t.checked_add(idle)) {
            // Beyond the clock's range: never.
            Some(None) => return None,
            Some(Some(due)) if due > now => return Some(due),
            _ => {}
        }
        wire.last_write = Some(now);
        match self.conn.try_send(KEEPALIVE) {
            Ok(true) => {
                wire.header_lines += 1;
                wire.full_once = false;
            }
            // No room for a keep-alive two keep-alives running: the client stopped reading.
            Ok(false) if !wire.full_once => wire.full_once = true,
            Ok(false) => {
                self.conn.stall();
                wire.dead = true;
            }
            Err(_) => wire.dead = true,
        }
        if wire.dead || wire.header_lines >= MAX_KEEPALIVES {
            self.conn.waiter().kick();
        }
        None
    }
}

impl Writer<'_> {
    /// The client is gone or stopped reading: the stream must end.
    pub fn is_dead(&self) -> bool {
        self.wire.dead
    }

    /// A delimiter line is open at the end of what was written: the next part begins with its
    /// header fields, not with `--B`.
    pub fn is_open(&self) -> bool {
        self.wire.open
    }

    /// The open delimiter line has no header line after it, so it can still become the final
    /// one.
    pub fn is_bare(&self) -> bool {
        self.wire.header_lines == 0
    }

    /// The part head after the open delimiter holds as many keep-alives as readers take: it
    /// must be ended with a part.
    pub fn is_head_full(&self) -> bool {
        self.wire.header_lines >= MAX_KEEPALIVES
    }

    /// Writes a whole part that ends with a fresh delimiter line and `header_lines` header
    /// lines of the next part after it; returns the bytes written.
    pub fn write_part(&mut self, bufs: &mut [IoSlice<'_>], header_lines: u32) -> io::Result<u64> {
        let sent = self.conn.send(bufs)?;
        self.wire.open = true;
        self.wire.header_lines = header_lines;
        self.wire.last_write = Some(Instant::now());
        Ok(sent)
    }

    /// Writes the end of the stream; nothing is kept alive after it.
    pub fn write_end(&mut self, bufs: &mut [IoSlice<'_>]) -> io::Result<u64> {
        self.wire.open = false;
        self.conn.send(bufs)
    }
}

pub struct Keeper {
    parked: Mutex<Vec<Weak<ReaderStream>>>,
}

impl Keeper {
    /// Starts the keeper thread, keeping alive each stream that has been quiet for `every`,
    /// until the server closes.
    pub fn start(
        closed: impl Fn() -> bool + Send + 'static,
        every: Duration,
    ) -> io::Result<Arc<Keeper>> {
        let keeper = Arc::new(Keeper {
            parked: Mutex::new(Vec::new()),
        });
        let keeping = Arc::clone(&keeper);
        thread::Builder::new()
            .name("keeper".into())
            .spawn(move || {
                // A stream is kept alive once quiet for `every`, at most `batch` later, so that
                // streams that went quiet together are done in one pass. Not earlier: with
                // `--repeat` at twice `--keepalive` (the defaults), one keep-alive then falls
                // between two repeats, not two.
                let batch = every / 100;
                let mut next = Instant::now().checked_add(every);
                while !closed() {
                    let wait = next.map_or(every, |t| t.saturating_duration_since(Instant::now()));
                    thread::sleep(wait.saturating_add(batch));
                    let due = keeping.keep_quiet_alive(every);
                    // A stream that goes quiet from now on is due `every` from now at the earliest.
                    next = due
                        .into_iter()
                        .chain(Instant::now().checked_add(every))
                        .min();
                }
            })?;
        Ok(keeper)
    }

    /// Registers a reader stream; it stays registered while its `Arc` lives.
    pub fn park(&self, conn: Conn) -> Arc<ReaderStream> {
        let stream = Arc::new(ReaderStream {
            conn,
            wire: Mutex::new(Wire::default()),
        });
        self.lock().push(Arc::downgrade(&stream));
        stream
    }

    /// Sends a keep-alive on every open stream quiet for `idle`, kicking the streams that must
    /// act. Returns when the next stream falls due.
    fn keep_quiet_alive(&self, idle: Duration) -> Option<Instant> {
        let streams: Vec<Arc<ReaderStream>> = {
            let mut parked = self.lock();
            parked.retain(|p| p.strong_count() > 0);
            parked.iter().filter_map(Weak::upgrade).collect()
        };
        // One clock read a pass, not one a stream: a pass takes well under a millisecond.
        let now = Instant::now();
        streams
            .iter()
            .filter_map(|stream| stream.write_keepalive(now, idle))
            .min()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Weak<ReaderStream>>> {
        self.parked.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::socket::Socket;
    use crate::http::watch::Watcher;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};

    /// A connected pair on loopback: (server side, client side).
    fn pair() -> (Conn, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let server = listener.accept().unwrap().0;
        let watcher = Watcher::start().unwrap();
        (
            Conn::new(Socket::Tcp(server), None, &watcher, Duration::from_secs(10)).unwrap(),
            client,
        )
    }

    fn keeper() -> Keeper {
        Keeper {
            parked: Mutex::new(Vec::new()),
        }
    }

    #[test]
    fn keeps_only_open_streams_alive_and_kicks_when_a_head_is_full() {
        let keeper = keeper();
        let (server, mut client) = pair();
        let stream = keeper.park(server);
        keeper.keep_quiet_alive(Duration::ZERO);
        assert_eq!(stream.wire().header_lines, 0, "no line open yet");
        stream.wire().open = true;
        for _ in 0..MAX_KEEPALIVES - 1 {
            keeper.keep_quiet_alive(Duration::ZERO);
            assert!(!stream.conn.waiter().take_kick());
        }
        keeper.keep_quiet_alive(Duration::ZERO);
        assert!(
            stream.conn.waiter().take_kick(),
            "the 64th keep-alive fills the part head"
        );
        let mut sent = vec![0u8; KEEPALIVE.len() * MAX_KEEPALIVES as usize];
        client.read_exact(&mut sent).unwrap();
        assert!(sent.chunks(KEEPALIVE.len()).all(|k| k == KEEPALIVE));
    }

    #[test]
    fn only_streams_quiet_for_the_keepalive_are_kept_alive() {
        let keeper = keeper();
        let (server, _client) = pair();
        let stream = keeper.park(server);
        stream.lock().write_part(&mut [], 0).unwrap();
        let minute = Duration::from_secs(60);
        let next = keeper.keep_quiet_alive(minute);
        assert_eq!(stream.wire().header_lines, 0, "a part just went out");
        let due = next
            .expect("the stream falls due")
            .duration_since(Instant::now());
        assert!(due > Duration::from_secs(59) && due <= minute, "{due:?}");
        keeper.keep_quiet_alive(Duration::ZERO);
        assert_eq!(stream.wire().header_lines, 1);
        keeper.keep_quiet_alive(minute);
        assert_eq!(stream.wire().header_lines, 1, "a keep-alive just went out");
        keeper.keep_quiet_alive(Duration::MAX);
        assert_eq!(stream.wire().header_lines, 1, "never due");
    }

    #[test]
    fn a_client_that_stopped_reading_is_kicked_at_the_second_full_round() {
        let keeper = keeper();
        let (server, client) = pair();
        let stream = keeper.park(server);
        // Fill the send buffer (and the client's receive buffer) without reading.
        while let Ok(true) = stream.conn.try_send(&[b'x'; 1024]) {}
        while stream.conn.try_send(b"x").unwrap() {}
        stream.wire().open = true;
        keeper.keep_quiet_alive(Duration::ZERO);
        assert!(!stream.wire().dead, "one full round may be a burst");
        keeper.keep_quiet_alive(Duration::ZERO);
        assert!(stream.wire().dead);
        assert!(stream.conn.waiter().take_kick());
        drop(client);
    }

    #[test]
    fn a_stream_that_ended_is_not_kept_alive() {
        let keeper = keeper();
        let (server, mut client) = pair();
        let stream = keeper.park(server);
        let mut writer = stream.lock();
        writer.write_part(&mut [IoSlice::new(b"--B")], 0).unwrap();
        assert!(writer.is_open() && writer.is_bare());
        writer.write_end(&mut [IoSlice::new(b"--\r\n")]).unwrap();
        drop(writer);
        keeper.keep_quiet_alive(Duration::ZERO);
        drop(stream);
        let mut sent = Vec::new();
        client
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let _ = client.read_to_end(&mut sent);
        assert_eq!(sent, b"--B--\r\n");
    }

    #[test]
    fn a_stream_whose_thread_ended_is_forgotten() {
        let keeper = keeper();
        drop(keeper.park(pair().0));
        keeper.keep_quiet_alive(Duration::ZERO);
        assert!(keeper.lock().is_empty());
    }
}
