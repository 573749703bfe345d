//! One client connection: the socket, and everything the layers above may do with it. They
//! write through it, ask it whether the client is still there, and close it; none of them
//! touches a socket option.
//!
//! The write rule (`--write-timeout`): a client must accept at least [`MIN_PROGRESS`] bytes, or
//! everything left to send, within every `--write-timeout`. So a slow but steady client is
//! never cut, whatever the size of a frame; one that stops reading is dropped within
//! `--write-timeout` of its last progress; one that trickles a few bytes now and then is
//! dropped too, instead of holding a thread for ever. A dropped client is reset (`SO_LINGER`
//! 0), so the kernel frees what was queued for it at once instead of trying to deliver it.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rustix::net::{SendFlags, send, sockopt};

use crate::http::request::{self, HeadError, Request};
use crate::http::watch::{Watched, Watcher};
use crate::wake::Waiter;

/// What a client must accept in every `--write-timeout` to be kept: 64 KiB is 6.4 KB/s at the
/// default 10 s, far below any real viewer, far above a trickle.
pub const MIN_PROGRESS: u64 = 64 * 1024;

/// How long a finished connection waits for the client to close before dropping it, so that
/// unread request bytes do not turn our close into a reset that destroys the response.
const LINGER: Duration = Duration::from_millis(500);

pub struct Conn {
    stream: TcpStream,
    waiter: Arc<Waiter>,
    write_timeout: Duration,
    /// The client stopped accepting data: reset the connection when it is dropped.
    stalled: AtomicBool,
    _watched: Option<Watched>,
}

impl Conn {
    /// Takes over an accepted connection on the thread that will serve it.
    pub fn new(stream: TcpStream, watcher: &Arc<Watcher>, write_timeout: Duration) -> Conn {
        let _ = stream.set_nodelay(true);
        // Each write syscall waits at most this long for room in the send buffer.
        let _ = stream.set_write_timeout(Some(write_timeout));
        let waiter = Waiter::for_current_thread();
        let watched = watcher.watch(&stream, &waiter).ok();
        Conn {
            stream,
            waiter,
            write_timeout,
            stalled: AtomicBool::new(false),
            _watched: watched,
        }
    }

    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.stream.peer_addr().ok()
    }

    /// The waiter of the thread serving this connection: set gone when the client leaves.
    pub fn waiter(&self) -> &Arc<Waiter> {
        &self.waiter
    }

    /// Reads the request head, within `timeout` in all.
    pub fn read_head(&self, timeout: Duration) -> Result<Request, HeadError> {
        request::read_head(&self.stream, timeout)
    }

    /// Writes every byte of `bufs` with as few syscalls as the socket allows (no copying), under
    /// the write rule of this module; returns how many bytes that was.
    pub fn send(&self, mut bufs: &mut [IoSlice<'_>]) -> io::Result<u64> {
        let total = bufs.iter().map(|b| b.len() as u64).sum();
        let mut window = Instant::now();
        let mut taken = 0;
        IoSlice::advance_slices(&mut bufs, 0);
        while !bufs.is_empty() {
            match (&self.stream).write_vectored(bufs) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    IoSlice::advance_slices(&mut bufs, n);
                    taken += n as u64;
                    if taken >= MIN_PROGRESS {
                        (window, taken) = (Instant::now(), 0);
                    } else if !bufs.is_empty() && window.elapsed() >= self.write_timeout {
                        return Err(self.stall());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The write timeout of one syscall passed with no room at all.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(self.stall()),
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }

    /// Writes `bytes` if the send buffer has room for all of them now, without waiting:
    /// Ok(true) if written, Ok(false) if there was no room (nothing written).
    pub fn try_send(&self, bytes: &[u8]) -> io::Result<bool> {
        loop {
            return match send(
                &self.stream,
                bytes,
                SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
            ) {
                Ok(n) if n == bytes.len() => Ok(true),
                Ok(_) => Err(io::ErrorKind::WriteZero.into()),
                Err(rustix::io::Errno::AGAIN) => Ok(false),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => Err(e.into()),
            };
        }
    }

    /// Records that the client stopped accepting data: the connection is reset when dropped.
    pub fn stall(&self) -> io::Error {
        self.stalled.store(true, Ordering::Relaxed);
        io::ErrorKind::TimedOut.into()
    }

    /// Half-closes, then reads and discards what the client still sends until it closes too
    /// (or [`LINGER`] passes), so that the response is not lost to a reset.
    pub fn close(self) {
        let mut stream = &self.stream;
        if stream.shutdown(Shutdown::Write).is_err()
            || stream.set_read_timeout(Some(LINGER)).is_err()
        {
            return;
        }
        let mut scratch = [0u8; 4096];
        for _ in 0..64 {
            match stream.read(&mut scratch) {
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
            let _ = sockopt::set_socket_linger(&self.stream, Some(Duration::ZERO));
        }
    }
}
