//! One client connection, over TCP or a Unix socket, in the clear or under TLS: everything the
//! layers above may do with it. They read the request head through it, write through it, ask
//! it whether the client is still there, and close it; none of them touches a socket, a socket
//! option or a TLS session.
//!
//! The write rule (`--write-timeout`): a client must accept at least [`MIN_PROGRESS`] bytes, or
//! everything left to send, within every `--write-timeout`. So a slow but steady client is
//! never cut, whatever the size of a frame; one that stops reading is dropped within
//! `--write-timeout` of its last progress; one that trickles a few bytes now and then is
//! dropped too, instead of holding a thread for ever. A dropped client is reset (`SO_LINGER`
//! 0), so the kernel frees what was queued for it at once instead of trying to deliver it.
//!
//! Under TLS the same rule counts the encrypted bytes the socket takes, and the keeper's
//! keep-alive (sent whole or not at all, see [`Conn::try_send`]) is whole once the session has
//! it: an encrypted record the socket could not take at once stays in the session and goes
//! out before anything else.

use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection};

use crate::http::head::{Head, HeaderValue};
use crate::http::request::{self, HeadError, Request};
use crate::http::socket::Socket;
use crate::http::watch::{Watched, Watcher};
use crate::wake::Waiter;

/// What a client must accept in every `--write-timeout` to be kept: 64 KiB is 6.4 KB/s at the
/// default 10 s, far below any real viewer, far above a trickle.
pub const MIN_PROGRESS: u64 = 64 * 1024;

/// How long a finished connection waits for the client to close before dropping it, so that
/// unread request bytes do not turn our close into a reset that destroys the response.
const LINGER: Duration = Duration::from_millis(500);

/// The first byte of every TLS connection (a handshake record); anything else sent to a TLS
/// port is plain HTTP, or garbage.
const TLS_HANDSHAKE: u8 = 0x16;

/// What a plain-HTTP request to a TLS port gets, in the clear, before the connection closes.
const SPEAKS_HTTPS: &[u8] = b"This port speaks HTTPS: use https:// instead.\r\n";

/// Writes that never wait: what the socket cannot take now is `WouldBlock`.
struct NoWait<'a>(&'a Socket);

impl Write for NoWait<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.send_now(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub struct Conn {
    socket: Socket,
    /// The TLS session, on a TLS port; locked by whoever reads or writes. Boxed: inline, it
    /// made every `Conn` 1.2 KB, and the frames that hold one on the way to a stream's wait
    /// 10 KB deeper, so that each idle connection's thread touched 20 KiB of stack, not 8.
    tls: Option<Box<Mutex<ServerConnection>>>,
    waiter: Arc<Waiter>,
    write_timeout: Duration,
    /// The client stopped accepting data: reset the connection when it is dropped.
    stalled: AtomicBool,
    _watched: Option<Watched>,
}

impl Conn {
    /// Takes over an accepted connection on the thread that will serve it; with `tls`, the
    /// handshake is done by [`Conn::read_head`], within its deadline.
    pub fn new(
        socket: Socket,
        tls: Option<&Arc<ServerConfig>>,
        watcher: &Arc<Watcher>,
        write_timeout: Duration,
    ) -> io::Result<Conn> {
        socket.send_at_once();
        // Each write syscall waits at most this long for room in the send buffer.
        let _ = socket.set_write_timeout(Some(write_timeout));
        let tls = tls.map(start_session).transpose()?;
        let waiter = Waiter::for_current_thread();
        let watched = watcher.watch(&socket, &waiter).ok();
        Ok(Conn {
            socket,
            tls,
            waiter,
            write_timeout,
            stalled: AtomicBool::new(false),
            _watched: watched,
        })
    }

    /// The client's address; None on a Unix socket.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.socket.peer_addr()
    }

    /// The waiter of the thread serving this connection: set gone when the client leaves.
    pub fn waiter(&self) -> &Arc<Waiter> {
        &self.waiter
    }

    /// Reads the request head (after the TLS handshake, on a TLS port), within `timeout` in
    /// all. Plain HTTP sent to a TLS port is answered, in the clear, that the port speaks HTTPS.
    pub fn read_head(&self, timeout: Duration) -> Result<Request, HeadError> {
        let Some(tls) = &self.tls else {
            return request::read_head(
                |buf, left| {
                    self.socket.set_read_timeout(Some(left))?;
                    (&self.socket).read(buf)
                },
                timeout,
            );
        };
        let deadline = Instant::now() + timeout;
        if !self.starts_with_tls(deadline) {
            let head = Head::new(400)
                .field("Content-Type", HeaderValue::from_static("text/plain"))
                .field(
                    "Content-Length",
                    HeaderValue::number(SPEAKS_HTTPS.len() as u64),
                )
                .render();
            let _ = (&self.socket).write_all(&[&head[..], SPEAKS_HTTPS].concat());
            return Err(HeadError::Gone);
        }
        let mut tls = lock(tls);
        request::read_head(
            |buf, left| read_tls(&mut tls, &self.socket, buf, Instant::now() + left),
            timeout,
        )
    }

    /// Whether the first byte the client sends (by `deadline`) opens a TLS handshake.
    fn starts_with_tls(&self, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || self.socket.set_read_timeout(Some(left)).is_err() {
            return false;
        }
        self.socket.peek() == Some(TLS_HANDSHAKE)
    }

    /// Writes every byte of `bufs` with as few syscalls as the socket allows (no copying in
    /// the clear), under the write rule of this module; returns how many bytes that was.
    pub fn send(&self, bufs: &mut [IoSlice<'_>]) -> io::Result<u64> {
        let total = bufs.iter().map(|b| b.len() as u64).sum();
        let mut progress = Progress::new(self.write_timeout);
        match &self.tls {
            None => {
                let mut bufs = bufs;
                IoSlice::advance_slices(&mut bufs, 0);
                while !bufs.is_empty() {
                    match (&self.socket).write_vectored(bufs) {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) => {
                            IoSlice::advance_slices(&mut bufs, n);
                            progress
                                .made(n, !bufs.is_empty())
                                .map_err(|()| self.stall())?;
                        }
                        Err(e) => self.write_failed(e)?,
                    }
                }
            }
            Some(tls) => {
                let mut tls = lock(tls);
                let mut bufs = bufs;
                IoSlice::advance_slices(&mut bufs, 0);
                while !bufs.is_empty() || tls.wants_write() {
                    // The session takes plaintext up to its buffer limit; then the socket drains it.
                    if !bufs.is_empty() {
                        let n = tls.writer().write_vectored(bufs)?;
                        IoSlice::advance_slices(&mut bufs, n);
                    }
                    match tls.write_tls(&mut &self.socket) {
                        Ok(0) if tls.wants_write() => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) => {
                            let more = !bufs.is_empty() || tls.wants_write();
                            progress.made(n, more).map_err(|()| self.stall())?;
                        }
                        Err(e) => self.write_failed(e)?,
                    }
                }
            }
        }
        Ok(total)
    }

    /// What a failed write means: a signal is retried, a full send buffer past the write
    /// timeout of one syscall is a stall, anything else ends the connection.
    fn write_failed(&self, e: io::Error) -> io::Result<()> {
        match e.kind() {
            io::ErrorKind::Interrupted => Ok(()),
            io::ErrorKind::WouldBlock => Err(self.stall()),
            _ => Err(e),
        }
    }

    /// Writes `bytes` if the send buffer has room for all of them now, without waiting:
    /// Ok(true) if written, Ok(false) if there was no room (nothing written). Under TLS the
    /// session takes them whole, and what the socket cannot take now goes out before anything
    /// else; no room means the session still holds bytes from before.
    pub fn try_send(&self, bytes: &[u8]) -> io::Result<bool> {
        let Some(tls) = &self.tls else {
            return match NoWait(&self.socket).write(bytes) {
                Ok(n) if n == bytes.len() => Ok(true),
                Ok(_) => Err(io::ErrorKind::WriteZero.into()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
                Err(e) => Err(e),
            };
        };
        let mut tls = lock(tls);
        if !flush_now(&mut tls, &self.socket)? {
            return Ok(false);
        }
        tls.writer().write_all(bytes)?;
        flush_now(&mut tls, &self.socket)?;
        Ok(true)
    }

    /// Records that the client stopped accepting data: the connection is reset when dropped.
    pub fn stall(&self) -> io::Error {
        self.stalled.store(true, Ordering::Relaxed);
        io::ErrorKind::TimedOut.into()
    }

    /// Ends the TLS session, half-closes, then reads and discards what the client still sends
    /// until it closes too (or [`LINGER`] passes), so that the response is not lost to a reset.
    pub fn close(self) {
        if let Some(tls) = &self.tls {
            let mut tls = lock(tls);
            tls.send_close_notify();
            while tls.wants_write() {
                if tls.write_tls(&mut &self.socket).is_err() {
                    return;
                }
            }
        }
        let mut socket = &self.socket;
        if socket.shutdown_write().is_err() || socket.set_read_timeout(Some(LINGER)).is_err() {
            return;
        }
        let mut scratch = [0u8; 4096];
        for _ in 0..64 {
            match socket.read(&mut scratch) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if self.stalled.load(Ordering::Relaxed) {
            // As nginx's `reset_timedout_connection`: a reset frees the bytes queued for the
            // client now; a normal close would keep them (megabytes) until the client reads.
            self.socket.reset_on_close();
        }
    }
}

/// The write rule's clock for one `send`.
struct Progress {
    window: Instant,
    taken: u64,
    timeout: Duration,
}

impl Progress {
    fn new(timeout: Duration) -> Progress {
        Progress {
            window: Instant::now(),
            taken: 0,
            timeout,
        }
    }

    /// `n` more bytes were taken; Err if, with `more` to send, the client has taken less than
    /// [`MIN_PROGRESS`] in a whole `--write-timeout`.
    fn made(&mut self, n: usize, more: bool) -> Result<(), ()> {
        self.taken += n as u64;
        if self.taken >= MIN_PROGRESS {
            (self.window, self.taken) = (Instant::now(), 0);
        } else if more && self.window.elapsed() >= self.timeout {
            return Err(());
        }
        Ok(())
    }
}

/// A TLS session for a new connection, on the heap. Never inlined: the session is built on
/// the stack before it is moved, and in [`Conn::new`]'s frame those 2.4 KB would lie under
/// everything it calls, for a plain connection too, near the end of the stack an idle
/// connection may touch.
#[inline(never)]
fn start_session(config: &Arc<ServerConfig>) -> io::Result<Box<Mutex<ServerConnection>>> {
    let session = ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?;
    Ok(Box::new(Mutex::new(session)))
}

/// Plaintext from the session: the handshake first, then application data as it arrives, by
/// `deadline` however slowly the bytes come; 0 at the end of the stream. A TLS error ends the
/// connection (the alert is sent if it can be).
fn read_tls(
    tls: &mut ServerConnection,
    socket: &Socket,
    buf: &mut [u8],
    deadline: Instant,
) -> io::Result<usize> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        socket.set_read_timeout(Some(left))?;
        match tls.reader().read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        while tls.wants_write() {
            tls.write_tls(&mut &*socket)?;
        }
        if tls.read_tls(&mut &*socket)? == 0 {
            return Ok(0);
        }
        if let Err(e) = tls.process_new_packets() {
            let _ = tls.write_tls(&mut &*socket);
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
    }
}

/// Sends what the session holds, as far as the socket takes it now; whether all of it went.
fn flush_now(tls: &mut ServerConnection, socket: &Socket) -> io::Result<bool> {
    while tls.wants_write() {
        match tls.write_tls(&mut NoWait(socket)) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn lock(tls: &Mutex<ServerConnection>) -> MutexGuard<'_, ServerConnection> {
    // A panicking holder leaves the session unusable anyway: the connection ends with it.
    tls.lock().unwrap_or_else(|e| e.into_inner())
}
