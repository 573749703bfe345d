//! The listening socket and the accept loop: one small-stack thread per connection, and accept
//! errors (out of file descriptors, out of memory) survived with a back-off instead of ending
//! the server. A socket is TCP or a Unix socket, bound here or handed over by systemd (socket
//! activation, which may hand over several: each is served by an accept loop of its own); with
//! a TLS configuration, every connection speaks TLS.

use std::fs;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
#[cfg(unix)]
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::Duration;

use rustls::ServerConfig;

use crate::http::conn::Conn;
use crate::http::head::{Head, HeaderValue};
use crate::http::socket::Socket;
use crate::http::watch::Watcher;
use crate::report::describe_io_error;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::inherited;

/// Connection threads need little stack (no recursion, buffers on the heap); a small one lets
/// thousands of viewers fit in a few dozen MB.
const STACK_SIZE: usize = 128 * 1024;
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Connections the kernel queues before we accept them: a burst of thousands of viewers (a
/// page with the stream going live) must not overflow it. The kernel caps it at
/// `net.core.somaxconn` (4096 by default since Linux 5.4); std's `TcpListener::bind` asks 128.
const BACKLOG: i32 = 4096;

/// Where to listen.
#[derive(Clone, Debug)]
pub enum Bind {
    Tcp(SocketAddr),
    /// A Unix socket at this path (`--bind unix:PATH`).
    Unix(PathBuf),
}

/// A listening socket, its TLS configuration if any, and the watcher that notices clients
/// leaving (started with it, so that every thread is up once the server says it listens; the
/// sockets systemd handed over share one).
pub struct Listener {
    socket: Accepting,
    tls: Option<Arc<ServerConfig>>,
    watcher: Arc<Watcher>,
}

enum Accepting {
    Tcp(TcpListener),
    #[cfg(unix)]
    Unix(UnixListener),
}

/// The Unix socket this process made, removed at exit.
static SOCKET_FILE: OnceLock<PathBuf> = OnceLock::new();

/// Listens on `bind`: TCP as `TcpListener::bind` does but with a deeper backlog; a Unix socket
/// in place of a stale one a crash left, but never in place of anything else.
pub fn bind(bind: &Bind) -> io::Result<Listener> {
    let socket = match bind {
        Bind::Tcp(addr) => Accepting::Tcp(listen_tcp(*addr)?),
        #[cfg(unix)]
        Bind::Unix(path) => {
            let socket = unix::listen_unix(path)?;
            let _ = SOCKET_FILE.set(path.clone());
            Accepting::Unix(socket)
        }
        #[cfg(not(unix))]
        Bind::Unix(_) => return Err(io::ErrorKind::Unsupported.into()),
    };
    Ok(Listener {
        socket,
        tls: None,
        watcher: Watcher::start()?,
    })
}

/// Removes the Unix socket this process bound, if any (before exiting).
pub fn remove_socket_file() {
    if let Some(path) = SOCKET_FILE.get() {
        let _ = fs::remove_file(path);
    }
}

fn listen_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = TcpListener::bind(addr)?;
    // Listening again on a listening socket sets its backlog (Windows keeps its own).
    rustix::net::listen(&socket, BACKLOG)?;
    Ok(socket)
}

/// Where a listener listens, for the URL it prints and the Host check.
pub enum Local {
    Tcp(SocketAddr),
    #[cfg(unix)]
    Unix(Option<PathBuf>),
}

impl Listener {
    /// Every connection speaks TLS with `config`.
    pub fn with_tls(mut self, config: Arc<ServerConfig>) -> Listener {
        self.tls = Some(config);
        self
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    pub fn local(&self) -> io::Result<Local> {
        Ok(match &self.socket {
            Accepting::Tcp(s) => Local::Tcp(s.local_addr()?),
            #[cfg(unix)]
            Accepting::Unix(s) => {
                Local::Unix(s.local_addr()?.as_pathname().map(|p| p.to_path_buf()))
            }
        })
    }

    fn spawn<H>(&self, socket: Socket, write_timeout: Duration, handle: Arc<H>)
    where
        H: Fn(Conn) + Send + Sync + 'static,
    {
        // Keep a handle so that a refused spawn can still answer (in the clear only).
        let spare = match (&socket, &self.tls) {
            (Socket::Tcp(s), None) => s.try_clone().ok(),
            _ => None,
        };
        let (watcher, tls) = (Arc::clone(&self.watcher), self.tls.clone());
        let spawned = thread::Builder::new()
            .name("connection".into())
            .stack_size(STACK_SIZE)
            .spawn(move || {
                if let Ok(conn) = Conn::new(socket, tls.as_ref(), &watcher, write_timeout) {
                    handle(conn);
                }
            });
        if spawned.is_err()
            && let Some(mut stream) = spare
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

    /// Accepts connections for ever, handing each to `handle` on its own thread (the process
    /// ends through `shutdown.rs`).
    pub fn serve<H>(&self, write_timeout: Duration, handle: Arc<H>) -> !
    where
        H: Fn(Conn) + Send + Sync + 'static,
    {
        let mut backoff = Duration::ZERO;
        loop {
            let accepted = match &self.socket {
                Accepting::Tcp(s) => s.accept().map(|(s, _)| Socket::Tcp(s)),
                #[cfg(unix)]
                Accepting::Unix(s) => s.accept().map(|(s, _)| Socket::Unix(s)),
            };
            match accepted {
                Ok(socket) => {
                    backoff = Duration::ZERO;
                    self.spawn(socket, write_timeout, Arc::clone(&handle));
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

/// Errors about one connection that went away before we took it: just take the next one.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}
