//! The listening socket and the accept loop: one small-stack thread per connection, and accept
//! errors (out of file descriptors, out of memory) survived with a back-off instead of ending
//! the server.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rustix::net::{AddressFamily, SocketType, sockopt};

use crate::http::conn::Conn;
use crate::http::head::{Head, HeaderValue};
use crate::http::watch::Watcher;
use crate::report::describe_io_error;

/// Connection threads need little stack (no recursion, buffers on the heap); a small one lets
/// thousands of viewers fit in a few dozen MB.
const STACK_SIZE: usize = 128 * 1024;
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Connections the kernel queues before we accept them: a burst of thousands of viewers (a
/// page with the stream going live) must not overflow it. The kernel caps it at
/// `net.core.somaxconn` (4096 by default since Linux 5.4); std's `TcpListener::bind` asks 128.
const BACKLOG: i32 = 4096;

/// The listening socket, and the watcher that notices clients leaving (started with it, so that
/// every thread is up once the server says it listens).
pub struct Listener {
    socket: TcpListener,
    watcher: Arc<Watcher>,
}

/// Listens on `addr`, as `TcpListener::bind` does but with a deeper backlog.
pub fn bind(addr: SocketAddr) -> io::Result<Listener> {
    Ok(Listener {
        socket: listen(addr)?,
        watcher: Watcher::start()?,
    })
}

fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    };
    let socket = rustix::net::socket_with(
        family,
        SocketType::STREAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )?;
    sockopt::set_socket_reuseaddr(&socket, true)?;
    rustix::net::bind(&socket, &addr)?;
    rustix::net::listen(&socket, BACKLOG)?;
    Ok(TcpListener::from(socket))
}

impl Listener {
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Accepts connections for ever, handing each to `handle` on its own thread (the process
    /// ends through `shutdown.rs`).
    pub fn serve<H>(&self, write_timeout: Duration, handle: Arc<H>) -> !
    where
        H: Fn(Conn) + Send + Sync + 'static,
    {
        let mut backoff = Duration::ZERO;
        loop {
            match self.socket.accept() {
                Ok((stream, _)) => {
                    backoff = Duration::ZERO;
                    spawn(stream, &self.watcher, write_timeout, Arc::clone(&handle));
                }
                Err(e) if is_transient(&e) => {}
                Err(e) => {
                    if backoff.is_zero() {
                        error!(
                            "cannot accept connections: {}; retrying",
                            describe_io_error(&e)
                        );
                    }
                    backoff = (backoff * 2).clamp(Duration::from_millis(10), MAX_BACKOFF);
                    thread::sleep(backoff);
                }
            }
        }
    }
}

fn spawn<H>(stream: TcpStream, watcher: &Arc<Watcher>, write_timeout: Duration, handle: Arc<H>)
where
    H: Fn(Conn) + Send + Sync + 'static,
{
    // Keep a handle so that a refused spawn can still answer.
    let spare = stream.try_clone();
    let watcher = Arc::clone(watcher);
    let spawned = thread::Builder::new()
        .name("connection".into())
        .stack_size(STACK_SIZE)
        .spawn(move || handle(Conn::new(stream, &watcher, write_timeout)));
    if spawned.is_err()
        && let Ok(mut stream) = spare
    {
        // Written from the accept thread, so no lingering close: the kernel sends it as is.
        let overloaded = Head::new(503)
            .field("Retry-After", HeaderValue::from_static("1"))
            .field("Content-Length", HeaderValue::number(0u64))
            .render();
        let _ = stream.set_nonblocking(true);
        let _ = stream.write_all(&overloaded);
    }
}

/// Errors about one connection that went away before we took it: just take the next one.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}
