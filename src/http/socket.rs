//! An accepted socket: TCP, or a Unix socket on Unix. Blocking reads and writes (bounded by the
//! socket's timeouts) for `&Socket` as for `&TcpStream`, and the three things std does not
//! offer the same way everywhere: a write that never waits ([`Socket::send_now`]), a look at the
//! client's first byte without taking it ([`Socket::peek`]), and a reset instead of a graceful
//! close ([`Socket::reset_on_close`]). What differs between Unix and Windows is here, and only
//! here, for the connection layer.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::time::Duration;

use rustix::net::{RecvFlags, sockopt};

/// An accepted socket.
pub enum Socket {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
}

/// `$body` with `$s` bound to the stream, whichever kind of socket it is.
macro_rules! each {
    ($socket:expr, $s:ident => $body:expr) => {
        match $socket {
            Socket::Tcp($s) => $body,
            #[cfg(unix)]
            Socket::Unix($s) => $body,
        }
    };
}

impl Socket {
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        each!(self, s => s.set_write_timeout(timeout))
    }

    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        each!(self, s => s.set_read_timeout(timeout))
    }

    pub fn shutdown_write(&self) -> io::Result<()> {
        each!(self, s => s.shutdown(Shutdown::Write))
    }

    /// The client's address; None on a Unix socket.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        match self {
            Socket::Tcp(s) => s.peer_addr().ok(),
            #[cfg(unix)]
            Socket::Unix(_) => None,
        }
    }

    /// Sends each write at once instead of waiting to fill a packet (`TCP_NODELAY`).
    pub fn send_at_once(&self) {
        match self {
            Socket::Tcp(s) => {
                let _ = s.set_nodelay(true);
            }
            #[cfg(unix)]
            Socket::Unix(_) => {}
        }
    }

    /// The first byte the client sent, left for the next read; waits as the read timeout says.
    /// None if the client closed, or sent nothing in time.
    pub fn peek(&self) -> Option<u8> {
        let mut first = [0u8; 1];
        loop {
            return match each!(self, s => rustix::net::recv(s, &mut first, RecvFlags::PEEK)) {
                Ok((1, _)) => Some(first[0]),
                Err(rustix::io::Errno::INTR) => continue,
                _ => None,
            };
        }
    }

    /// Makes the close a reset (`SO_LINGER` 0): the kernel drops what is still queued for the
    /// client at once instead of trying to deliver it.
    pub fn reset_on_close(&self) {
        let _ = each!(self, s => sockopt::set_socket_linger(s, Some(Duration::ZERO)));
    }

    /// Writes what the send buffer has room for now, without waiting: nothing at all is
    /// `WouldBlock`.
    #[cfg(unix)]
    pub fn send_now(&self, buf: &[u8]) -> io::Result<usize> {
        use rustix::net::SendFlags;
        // Linux can be told per call not to raise SIGPIPE; macOS cannot (std ignores SIGPIPE
        // in every Rust program, so a write to a closed socket is an error either way).
        #[cfg(not(target_vendor = "apple"))]
        let flags = SendFlags::DONTWAIT | SendFlags::NOSIGNAL;
        #[cfg(target_vendor = "apple")]
        let flags = SendFlags::DONTWAIT;
        loop {
            return match each!(self, s => rustix::net::send(s, buf, flags)) {
                Ok(n) => Ok(n),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => Err(e.into()),
            };
        }
    }

    /// Writes what the send buffer has room for now, without waiting: nothing at all is
    /// `WouldBlock`. Windows has no per-call flag for it, so the socket is non-blocking for the
    /// one call; writes to a connection are never concurrent (the connection's owner holds it).
    #[cfg(windows)]
    pub fn send_now(&self, buf: &[u8]) -> io::Result<usize> {
        let Socket::Tcp(s) = self;
        s.set_nonblocking(true)?;
        let sent = (&*s).write(buf);
        s.set_nonblocking(false)?;
        sent
    }
}

#[cfg(unix)]
impl std::os::fd::AsFd for Socket {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        each!(self, s => s.as_fd())
    }
}

impl Read for &Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        each!(self, s => (&*s).read(buf))
    }
}

impl Write for &Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        each!(self, s => (&*s).write(buf))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        each!(self, s => (&*s).write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
