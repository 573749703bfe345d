//! The clients: reader threads that parse a multipart stream part by part and record when the
//! whole body of each new change arrived ([`Fleet`]; the newest, or for figure 13 every one),
//! in the clear or each in a TLS session of its own (figure 11), of pushserve or of
//! mjpg-streamer (figure 13, [`Wire`]), clients that read the response head and then stall,
//! and single timed HTTP requests ([`http_get`]).
//!
//! One blocking thread per reader (64 KiB stack, 64 KiB read buffer), parsing `--B`, headers,
//! Content-Length, body, and keeping only the first bytes of each body (where the change id
//! is); idle readers cost no CPU. Readers connect in batches of 50, each batch served its first
//! part before the next connects, so the listen backlog (128) never fills. The part reader here
//! is not the shared parser (`src/decode/multipart.rs`, the tests' `PartReader`): that one stores each
//! whole body in a Vec of its own, an allocation and a copy per part per reader, which would be
//! measured along with the server, 10,000 times over. A TLS reader (rustls, ring provider)
//! does its handshake on its own thread, with a 128 KiB stack, and its session reads the
//! socket 4 KiB at a time (rustls's own read size), so it costs its client more syscalls.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use crate::common::{find, read_some};
use crate::frames::frame_id;
use crate::measure::now_ns;

const CONNECT_BATCH: usize = 50;
pub const CLIENT_STACK: usize = 64 * 1024;
/// A TLS reader's stack: the handshake (ring's key exchange and signature check) runs on it.
/// Readers ran with 32 KiB; four times that leaves room for another provider or version.
const TLS_CLIENT_STACK: usize = 128 * 1024;
const CLIENT_BUF: usize = 64 * 1024;
pub const REQUEST: &[u8] =
    b"GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: fanout-bench/1.0\r\n\r\n";

/// [`REQUEST`] for another path.
fn request(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: fanout-bench/1.0\r\n\r\n")
        .into_bytes()
}

/// Longest wait for one change to reach every client.
pub const CHANGE_DEADLINE: Duration = Duration::from_secs(15);
const CONNECT_DEADLINE: Duration = Duration::from_secs(20);

/// What one client has seen, written by its thread and read by the driver.
#[derive(Default)]
pub struct ClientStat {
    /// Change id of the newest complete part.
    pub last_id: AtomicU32,
    /// When that part's body was complete (ns since the start of the run).
    pub done_ns: AtomicU64,
    pub bytes: AtomicU64,
    pub parts: AtomicU64,
    pub ended: AtomicBool,
    pub error: Mutex<Option<String>>,
    /// Over TLS: the protocol version and cipher suite negotiated, once the handshake is done.
    pub session: OnceLock<String>,
    /// Set at the connect: whose stream this is.
    pub wire: Wire,
    /// Set at the connect: keep every new change's (id, completion) in `history`, not only
    /// the newest.
    pub record: bool,
    pub history: Mutex<Vec<(u32, u64)>>,
}

/// Whose multipart stream a reader parses. Only the status line differs: mjpg-streamer answers
/// `HTTP/1.0 200`, where pushserve and the baseline must answer `HTTP/1.1 200`. Its parts need
/// nothing else: each carries a Content-Length, and the delimiter it writes after a body, not
/// before the next head, reads as the next head starting with a CRLF, which the parser allows.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub enum Wire {
    #[default]
    Pushserve,
    MjpgStreamer,
}

struct PartReader<'a, S> {
    s: S,
    buf: Vec<u8>,
    lo: usize,
    hi: usize,
    stat: &'a ClientStat,
}

impl<S: Read> PartReader<'_, S> {
    /// Reads more bytes after those buffered.
    fn fill(&mut self) -> Result<(), String> {
        if self.lo == self.hi {
            (self.lo, self.hi) = (0, 0);
        } else if self.hi == self.buf.len() {
            if self.lo == 0 {
                return Err("header block over 64 KiB".into());
            }
            self.buf.copy_within(self.lo..self.hi, 0);
            (self.lo, self.hi) = (0, self.hi - self.lo);
        }
        match read_retry(&mut self.s, &mut self.buf[self.hi..]) {
            Ok(0) => Err("closed by server".into()),
            Ok(n) => {
                self.hi += n;
                self.stat.bytes.fetch_add(n as u64, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// A header block up to its blank line, without the blank line.
    fn head(&mut self) -> Result<String, String> {
        loop {
            if let Some(at) = find(&self.buf[self.lo..self.hi], b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[self.lo..self.lo + at]).into_owned();
                self.lo += at + 4;
                return Ok(head);
            }
            self.fill()?;
        }
    }

    /// Consumes a body of `len` bytes, keeping its first 32.
    fn body(&mut self, len: usize) -> Result<[u8; 32], String> {
        let mut start = [0u8; 32];
        let mut got = 0;
        while got < len {
            if self.lo == self.hi {
                self.fill()?;
            }
            let n = (self.hi - self.lo).min(len - got);
            if got < start.len() {
                let k = n.min(start.len() - got);
                start[got..got + k].copy_from_slice(&self.buf[self.lo..self.lo + k]);
            }
            got += n;
            self.lo += n;
        }
        Ok(start)
    }
}

/// A read, retried when a signal interrupts it.
fn read_retry(s: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match s.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            result => return result,
        }
    }
}

fn header_value<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Reads the response head, then parts until the stream ends.
fn read_stream(s: impl Read, stat: &ClientStat) -> Result<(), String> {
    let mut r = PartReader {
        s,
        buf: vec![0; CLIENT_BUF],
        lo: 0,
        hi: 0,
        stat,
    };
    let head = r.head()?;
    let http10 = stat.wire == Wire::MjpgStreamer && head.starts_with("HTTP/1.0 200");
    if !head.starts_with("HTTP/1.1 200") && !http10 {
        return Err(format!("bad response head {head:?}"));
    }
    let boundary = head
        .split_once("boundary=")
        .map(|(_, b)| b.lines().next().unwrap_or("").trim().to_string())
        .ok_or("no boundary")?;
    let delimiter = format!("--{boundary}");
    loop {
        let part = r.head()?;
        // Blank lines before a boundary are allowed (a keep-alive may be just CRLF).
        let part = part.trim_start_matches("\r\n");
        if part.is_empty() {
            continue;
        }
        if part.starts_with(&format!("{delimiter}--")) {
            return Err("stream ended".into());
        }
        if !part.starts_with(&delimiter) {
            return Err(format!("bad part head {part:?}"));
        }
        let len: usize = header_value(part, "content-length")
            .and_then(|v| v.parse().ok())
            .ok_or("part without Content-Length")?;
        let start = r.body(len)?;
        let done = now_ns();
        let id = frame_id(&start);
        stat.parts.fetch_add(1, Ordering::Relaxed);
        if id != stat.last_id.load(Ordering::Relaxed) {
            if stat.record {
                stat.history.lock().unwrap().push((id, done));
            }
            stat.done_ns.store(done, Ordering::Relaxed);
            stat.last_id.store(id, Ordering::Release);
        }
    }
}

/// A thread that reads `s` as a stream until it ends, into `stat`.
pub fn spawn_reader(s: TcpStream, stat: &Arc<ClientStat>) -> io::Result<JoinHandle<()>> {
    let mine = Arc::clone(stat);
    thread::Builder::new()
        .name("client".into())
        .stack_size(CLIENT_STACK)
        .spawn(move || {
            let e = read_stream(s, &mine).err();
            *mine.error.lock().unwrap() = e;
            mine.ended.store(true, Ordering::Release);
        })
}

/// A thread that does the TLS handshake on `s`, sends the request in the session and reads
/// the stream until it ends, into `stat`.
fn spawn_tls_reader(
    s: TcpStream,
    config: &Arc<ClientConfig>,
    request: Vec<u8>,
    stat: &Arc<ClientStat>,
) -> io::Result<JoinHandle<()>> {
    let name = ServerName::from(s.peer_addr()?.ip());
    let session = ClientConnection::new(Arc::clone(config), name).map_err(io::Error::other)?;
    let mine = Arc::clone(stat);
    thread::Builder::new()
        .name("tls client".into())
        .stack_size(TLS_CLIENT_STACK)
        .spawn(move || {
            let mut tls = StreamOwned::new(session, s);
            let e = match tls.write_all(&request).and_then(|()| tls.flush()) {
                Ok(()) => {
                    let version = tls.conn.protocol_version();
                    let suite = tls.conn.negotiated_cipher_suite().map(|s| s.suite());
                    let _ = mine.session.set(match (version, suite) {
                        (Some(version), Some(suite)) => format!("{version:?} {suite:?}"),
                        _ => "handshake unfinished".into(),
                    });
                    read_stream(tls, &mine).err()
                }
                Err(e) => Some(format!("TLS handshake or request: {e}")),
            };
            *mine.error.lock().unwrap() = e;
            mine.ended.store(true, Ordering::Release);
        })
}

/// N reading clients, plus clients that read the response head and then nothing.
#[derive(Default)]
pub struct Fleet {
    pub stats: Vec<Arc<ClientStat>>,
    socks: Vec<TcpStream>,
    threads: Vec<JoinHandle<()>>,
    slow: Vec<TcpStream>,
    /// Keep no second descriptor per reader (10,000 readers would need 20,000): the readers
    /// then end only when the server does, so such a fleet must be dropped after its server.
    pub lean: bool,
    /// Readers speak TLS with this configuration, each in a session of its own (the slow
    /// clients stay in the clear).
    pub tls: Option<Arc<ClientConfig>>,
    /// What readers connected from now on ask for (`/stream` when None).
    pub path: Option<String>,
    /// Readers connected from now on keep every change they see (see [`ClientStat::history`]).
    pub record: bool,
    /// Whose stream readers connected from now on parse.
    pub wire: Wire,
}

impl Fleet {
    /// Connects `n` reading clients in batches; returns once each has its first part.
    pub fn connect(&mut self, addr: SocketAddr, n: usize) {
        // 20 s, or 4 ms a client for many more than figures 1-5 have.
        let allowed = CONNECT_DEADLINE.max(Duration::from_millis(4 * n as u64));
        let deadline = Instant::now() + allowed;
        let mut left = n;
        while left > 0 {
            let batch = left.min(CONNECT_BATCH);
            let from = self.stats.len();
            self.open(addr, batch);
            while self.stats[from..]
                .iter()
                .any(|c| c.parts.load(Ordering::Relaxed) == 0 && !c.ended.load(Ordering::Acquire))
            {
                assert!(
                    Instant::now() < deadline,
                    "clients not served within {allowed:?}"
                );
                thread::sleep(Duration::from_millis(1));
            }
            left -= batch;
        }
    }

    /// Connects `n` reading clients at once and returns without waiting for a part: for a
    /// server that has no frame yet (`pushserve -` before anything is piped in).
    pub fn open(&mut self, addr: SocketAddr, n: usize) {
        let request = self
            .path
            .as_deref()
            .map_or_else(|| REQUEST.to_vec(), request);
        for _ in 0..n {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
            let stat = Arc::new(ClientStat {
                wire: self.wire,
                record: self.record,
                ..ClientStat::default()
            });
            if !self.lean {
                self.socks.push(s.try_clone().expect("clone socket"));
            }
            let thread = match &self.tls {
                Some(config) => spawn_tls_reader(s, config, request.clone(), &stat),
                None => {
                    s.write_all(&request).expect("send request");
                    spawn_reader(s, &stat)
                }
            };
            self.threads.push(thread.expect("spawn client"));
            self.stats.push(stat);
        }
    }

    /// Connects `n` reading clients to a server that sends nothing before its next change
    /// (mjpg-streamer), `batch` at a time, each batch once `held()` (how many clients the
    /// server holds) counts every reader before it, so that a short listen backlog never
    /// overflows.
    pub fn connect_unserved(
        &mut self,
        addr: SocketAddr,
        n: usize,
        batch: usize,
        held: impl Fn() -> usize,
    ) {
        let deadline = Instant::now() + CONNECT_DEADLINE;
        let (start, mut left) = (self.stats.len(), n);
        while left > 0 {
            let batch = left.min(batch);
            self.open(addr, batch);
            left -= batch;
            while held() < self.stats.len() - start {
                assert!(
                    Instant::now() < deadline,
                    "clients not accepted within {CONNECT_DEADLINE:?}"
                );
                thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// Connects `n` clients that read the response head and then stop reading.
    pub fn connect_slow(&mut self, addr: SocketAddr, n: usize) {
        for _ in 0..n {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(REQUEST).expect("send request");
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                s.read_exact(&mut byte).expect("slow client head");
                head.push(byte[0]);
            }
            self.slow.push(s);
        }
    }

    /// Waits until every reading client has change `id`; false at the deadline.
    pub fn wait_id(&self, id: u32, deadline: Duration) -> bool {
        let end = Instant::now() + deadline;
        loop {
            let all = self.stats.iter().all(|c| {
                c.last_id.load(Ordering::Acquire) >= id || c.ended.load(Ordering::Relaxed)
            });
            if all {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            thread::sleep(Duration::from_micros(500));
        }
    }

    /// (first, last) completion of change `id` after `t0`, in ns, and how many lack it.
    pub fn latency(&self, id: u32, t0: u64) -> (u64, u64, usize) {
        let (mut first, mut last, mut missing) = (u64::MAX, 0, 0);
        for c in &self.stats {
            if c.last_id.load(Ordering::Acquire) == id {
                let d = c.done_ns.load(Ordering::Relaxed).saturating_sub(t0);
                first = first.min(d);
                last = last.max(d);
            } else {
                missing += 1;
            }
        }
        (first, last, missing)
    }

    /// Each client's completion of change `id` after `t0`, in ns, for those that have it.
    pub fn each_latency(&self, id: u32, t0: u64) -> Vec<u64> {
        self.stats
            .iter()
            .filter(|c| c.last_id.load(Ordering::Acquire) == id)
            .map(|c| c.done_ns.load(Ordering::Relaxed).saturating_sub(t0))
            .collect()
    }

    /// The TLS sessions' protocol and cipher suite, each with how many readers have it.
    pub fn sessions(&self) -> Vec<(String, usize)> {
        let mut out: Vec<(String, usize)> = Vec::new();
        for session in self.stats.iter().filter_map(|c| c.session.get()) {
            match out.iter_mut().find(|(s, _)| s == session) {
                Some((_, n)) => *n += 1,
                None => out.push((session.clone(), 1)),
            }
        }
        out
    }

    /// Bytes the readers have read (over TLS, the plaintext: what the session gave them).
    pub fn bytes(&self) -> u64 {
        self.stats
            .iter()
            .map(|c| c.bytes.load(Ordering::Relaxed))
            .sum()
    }

    /// Parts the reading clients have had in all.
    pub fn parts(&self) -> u64 {
        self.stats
            .iter()
            .map(|c| c.parts.load(Ordering::Relaxed))
            .sum()
    }

    /// Reading clients whose stream ended, with the first reason.
    pub fn dropped(&self) -> (usize, Option<String>) {
        let ended: Vec<_> = self
            .stats
            .iter()
            .filter(|c| c.ended.load(Ordering::Acquire))
            .collect();
        let why = ended.first().and_then(|c| c.error.lock().unwrap().clone());
        (ended.len(), why)
    }

    /// Waits for the lull after a round of keep-alive padding: the first padding after a quiet
    /// spell of an eighth of `every`, then as long a quiet spell. The keeper pads each idle
    /// reader once per `every` (a round can take a while when the readers came over a few
    /// seconds), so two windows that open so and last the same hold the same rounds, whole;
    /// opened at any moment, a window of 10 s may hold 4 rounds of `--keepalive 2` and the next
    /// 5, or half a round. False if no such lull came in time.
    pub fn await_lull(&self, every: Duration) -> bool {
        let quiet = every / 8;
        let deadline = Instant::now() + 3 * every + Duration::from_secs(1);
        let (mut bytes, mut since) = (self.bytes(), Instant::now());
        let mut in_round = false;
        while Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
            let now = self.bytes();
            if now != bytes {
                in_round |= since.elapsed() >= quiet;
                (bytes, since) = (now, Instant::now());
            } else if in_round && since.elapsed() >= quiet {
                return true;
            }
        }
        false
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for s in self.socks.iter().chain(&self.slow) {
            let _ = s.shutdown(Shutdown::Both);
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A response read whole, timed from just before the connect.
pub struct Got {
    pub first_byte: Duration,
    pub whole: Duration,
    pub head: String,
    pub body: Vec<u8>,
}

/// `GET path` on a fresh connection, read to the end of its body (by Content-Length); the
/// connect and each read wait at most `timeout`.
pub fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<Got, String> {
    let t0 = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut first_byte = None;
    loop {
        let got = match read_some(&mut s, &mut chunk) {
            Ok(0) => return Err(format!("closed after {} bytes", buf.len())),
            Ok(got) => got,
            Err(e) => return Err(format!("read after {} bytes: {e}", buf.len())),
        };
        let first_byte = *first_byte.get_or_insert_with(|| t0.elapsed());
        buf.extend_from_slice(&chunk[..got]);
        let Some(at) = find(&buf, b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..at]).into_owned();
        let len: usize = header_value(&head, "content-length")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no Content-Length in {head:?}"))?;
        if buf.len() >= at + 4 + len {
            return Ok(Got {
                first_byte,
                whole: t0.elapsed(),
                body: buf[at + 4..at + 4 + len].to_vec(),
                head,
            });
        }
    }
}
