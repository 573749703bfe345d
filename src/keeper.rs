//! Keep-alive for idle reader streams, done by one thread for all of them.
//!
//! A reader stream always ends what it writes with the next part's delimiter line, `--B`, left
//! open (see `push.rs`). When a stream has sent nothing for `--keepalive`, this thread adds one
//! space to its open line: transport padding, which RFC 2046 (5.1.1) says receivers must
//! ignore. So proxies see traffic and clients that stopped reading are noticed (clients that
//! leave are noticed by the connection layer's watcher), while the idle streams' own
//! threads sleep until the next frame (or `--repeat`, for OpenCV, which padding does not
//! satisfy): the idle cost is one small send per client, not a thread wake-up and a frame
//! copy, and none for a stream that a repeat kept busy. The keeper sleeps until the next
//! stream falls due, and streams that went quiet together are padded in one pass. It never
//! blocks on a client and never writes inside a part.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread;
use std::time::{Duration, Instant};

use crate::frame::Latest;
use crate::http::conn::Conn;

/// Spaces on one line before the stream's own thread ends it with a repeat of the current
/// frame instead: some readers cap line length (ffmpeg reads 127 bytes of it, aiohttp 64 KiB).
pub const MAX_PADDING: u32 = 64;

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
    /// A delimiter line is open at the end of what was written, and may be padded.
    pub open: bool,
    /// Spaces written on it so far.
    pub padding: u32,
    /// When anything was last written to the connection, or padding last tried; None before
    /// the first part.
    last_write: Option<Instant>,
    /// The client is gone or stopped reading: the stream must end.
    pub dead: bool,
    /// The last padding found the send buffer full.
    full_once: bool,
}

impl Line {
    /// Records a whole part written, ending with a fresh open line.
    pub fn part_written(&mut self) {
        self.open = true;
        self.padding = 0;
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
    /// Starts the keeper thread, padding each stream that has been quiet for `every`, until the
    /// server closes.
    pub fn start(latest: Arc<Latest>, every: Duration) -> io::Result<Arc<Keeper>> {
        let keeper = Arc::new(Keeper {
            parked: Mutex::new(Vec::new()),
        });
        let keeping = Arc::clone(&keeper);
        thread::Builder::new()
            .name("keeper".into())
            .spawn(move || {
                // A stream is padded once quiet for `every`, at most `batch` later, so that
                // streams that went quiet together are padded in one pass. Not earlier: with
                // `--repeat` at twice `--keepalive` (the defaults), one space then falls between
                // two repeats, not two.
                let batch = every / 100;
                let mut next = Instant::now().checked_add(every);
                while !latest.is_closed() {
                    let wait = next.map_or(every, |t| t.saturating_duration_since(Instant::now()));
                    thread::sleep(wait.saturating_add(batch));
                    let due = keeping.pad_quiet(every);
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

    /// Pads every open line quiet for `idle` once, kicking the streams that must act. Returns
    /// when the next line falls due.
    fn pad_quiet(&self, idle: Duration) -> Option<Instant> {
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
            match stream.conn.try_send(b" ") {
                Ok(true) => {
                    line.padding += 1;
                    line.full_once = false;
                }
                // No room for one byte two keep-alives running: the client stopped reading.
                Ok(false) if !line.full_once => line.full_once = true,
                Ok(false) => {
                    stream.conn.stall();
                    line.dead = true;
                }
                Err(_) => line.dead = true,
            }
            if line.dead || line.padding >= MAX_PADDING {
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
    use crate::http::watch::Watcher;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};

    /// A connected pair on loopback: (server side, client side).
    fn pair() -> (Conn, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let server = listener.accept().unwrap().0;
        let watcher = Watcher::start().unwrap();
        (Conn::new(server, &watcher, Duration::from_secs(10)), client)
    }

    fn keeper() -> Keeper {
        Keeper {
            parked: Mutex::new(Vec::new()),
        }
    }

    #[test]
    fn pads_only_open_lines_and_kicks_when_one_is_full() {
        let keeper = keeper();
        let (server, mut client) = pair();
        let stream = keeper.park(server);
        keeper.pad_quiet(Duration::ZERO);
        assert_eq!(stream.line().padding, 0, "no line open yet");
        stream.line().open = true;
        for _ in 0..MAX_PADDING - 1 {
            keeper.pad_quiet(Duration::ZERO);
            assert!(!stream.conn.waiter().take_kick());
        }
        keeper.pad_quiet(Duration::ZERO);
        assert!(
            stream.conn.waiter().take_kick(),
            "the 64th space fills the line"
        );
        let mut spaces = vec![0u8; MAX_PADDING as usize];
        client.read_exact(&mut spaces).unwrap();
        assert!(spaces.iter().all(|&c| c == b' '));
    }

    #[test]
    fn only_lines_quiet_for_the_keepalive_are_padded() {
        let keeper = keeper();
        let (server, _client) = pair();
        let stream = keeper.park(server);
        stream.line().part_written();
        let minute = Duration::from_secs(60);
        let next = keeper.pad_quiet(minute);
        assert_eq!(stream.line().padding, 0, "a part just went out");
        let due = next
            .expect("the stream falls due")
            .duration_since(Instant::now());
        assert!(due > Duration::from_secs(59) && due <= minute, "{due:?}");
        keeper.pad_quiet(Duration::ZERO);
        assert_eq!(stream.line().padding, 1);
        keeper.pad_quiet(minute);
        assert_eq!(stream.line().padding, 1, "a space just went out");
        keeper.pad_quiet(Duration::MAX);
        assert_eq!(stream.line().padding, 1, "never due");
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
        keeper.pad_quiet(Duration::ZERO);
        assert!(!stream.line().dead, "one full round may be a burst");
        keeper.pad_quiet(Duration::ZERO);
        assert!(stream.line().dead);
        assert!(stream.conn.waiter().take_kick());
        drop(client);
    }

    #[test]
    fn a_stream_whose_thread_ended_is_forgotten() {
        let keeper = keeper();
        drop(keeper.park(pair().0));
        keeper.pad_quiet(Duration::ZERO);
        assert!(keeper.lock().is_empty());
    }
}
