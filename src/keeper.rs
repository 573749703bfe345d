//! Keep-alive for idle reader streams, done by one thread for all of them.
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

use std::io;
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
pub const MAX_KEEPALIVES: u32 = 64;

/// One reader stream, shared by its connection thread and the keeper. The keeper kicks the
/// connection's waiter when the thread must act: its client stopped reading, or its line is
/// full.
pub struct Parked {
    pub conn: Conn,
    /// Locked by whoever writes to the connection.
    pub line: Mutex<Line>,
}

/// The state of the stream's open delimiter line; locked by whoever writes to the connection.
#[derive(Default)]
pub struct Line {
    /// A delimiter line is open at the end of what was written, and keep-alives may follow.
    pub open: bool,
    /// Header lines written after it so far: keep-alives, and VLC's padding (see `push.rs`).
    /// With none, the delimiter is bare and can still become the final one.
    pub keepalives: u32,
    /// When anything was last written to the connection, or a keep-alive last tried; None
    /// before the first part.
    last_write: Option<Instant>,
    /// The client is gone or stopped reading: the stream must end.
    pub dead: bool,
    /// The last keep-alive found the send buffer full.
    full_once: bool,
}

impl Line {
    /// Records a whole part written, ending with a fresh delimiter line and `header_lines`
    /// header lines of the next part after it.
    pub fn part_written(&mut self, header_lines: u32) {
        self.open = true;
        self.keepalives = header_lines;
        self.last_write = Some(Instant::now());
    }
}

impl Parked {
    #[cfg(test)]
    fn line(&self) -> MutexGuard<'_, Line> {
        self.line.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct Keeper {
    parked: Mutex<Vec<Weak<Parked>>>,
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
    pub fn park(&self, conn: Conn) -> Arc<Parked> {
        let parked = Arc::new(Parked {
            conn,
            line: Mutex::new(Line::default()),
        });
        self.lock().push(Arc::downgrade(&parked));
        parked
    }

    /// Sends a keep-alive on every open stream quiet for `idle`, kicking the streams that must
    /// act. Returns when the next stream falls due.
    fn keep_quiet_alive(&self, idle: Duration) -> Option<Instant> {
        let streams: Vec<Arc<Parked>> = {
            let mut parked = self.lock();
            parked.retain(|p| p.strong_count() > 0);
            parked.iter().filter_map(Weak::upgrade).collect()
        };
        let mut next = None::<Instant>;
        // One clock read a pass, not one a stream: a pass takes well under a millisecond.
        let now = Instant::now();
        for stream in streams {
            // A stream being written to is not idle.
            let Ok(mut line) = stream.line.try_lock() else {
                continue;
            };
            if !line.open || line.dead {
                continue;
            }
            match line.last_write.map(|t| t.checked_add(idle)) {
                // Beyond the clock's range: never.
                Some(None) => continue,
                Some(Some(due)) if due > now => {
                    next = Some(next.map_or(due, |n| n.min(due)));
                    continue;
                }
                _ => {}
            }
            line.last_write = Some(now);
            match stream.conn.try_send(KEEPALIVE) {
                Ok(true) => {
                    line.keepalives += 1;
                    line.full_once = false;
                }
                // No room for a keep-alive two keep-alives running: the client stopped reading.
                Ok(false) if !line.full_once => line.full_once = true,
                Ok(false) => {
                    stream.conn.stall();
                    line.dead = true;
                }
                Err(_) => line.dead = true,
            }
            if line.dead || line.keepalives >= MAX_KEEPALIVES {
                stream.conn.waiter().kick();
            }
        }
        next
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Weak<Parked>>> {
        self.parked.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::conn::Socket;
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
        assert_eq!(stream.line().keepalives, 0, "no line open yet");
        stream.line().open = true;
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
        stream.line().part_written(0);
        let minute = Duration::from_secs(60);
        let next = keeper.keep_quiet_alive(minute);
        assert_eq!(stream.line().keepalives, 0, "a part just went out");
        let due = next
            .expect("the stream falls due")
            .duration_since(Instant::now());
        assert!(due > Duration::from_secs(59) && due <= minute, "{due:?}");
        keeper.keep_quiet_alive(Duration::ZERO);
        assert_eq!(stream.line().keepalives, 1);
        keeper.keep_quiet_alive(minute);
        assert_eq!(stream.line().keepalives, 1, "a keep-alive just went out");
        keeper.keep_quiet_alive(Duration::MAX);
        assert_eq!(stream.line().keepalives, 1, "never due");
    }

    #[test]
    fn a_client_that_stopped_reading_is_kicked_at_the_second_full_round() {
        let keeper = keeper();
        let (server, client) = pair();
        let stream = keeper.park(server);
        // Fill the send buffer (and the client's receive buffer) without reading.
        while let Ok(true) = stream.conn.try_send(&[b'x'; 1024]) {}
        while stream.conn.try_send(b"x").unwrap() {}
        stream.line().open = true;
        keeper.keep_quiet_alive(Duration::ZERO);
        assert!(!stream.line().dead, "one full round may be a burst");
        keeper.keep_quiet_alive(Duration::ZERO);
        assert!(stream.line().dead);
        assert!(stream.conn.waiter().take_kick());
        drop(client);
    }

    #[test]
    fn a_stream_whose_thread_ended_is_forgotten() {
        let keeper = keeper();
        drop(keeper.park(pair().0));
        keeper.keep_quiet_alive(Duration::ZERO);
        assert!(keeper.lock().is_empty());
    }
}
