//! What only Unix has: listening on a Unix socket, and the sockets systemd hands over
//! (socket activation).

use std::fs;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;

#[cfg(target_os = "linux")]
use rustix::net::sockopt;

use super::{Accepting, BACKLOG, Listener};
use crate::http::watch::Watcher;
use crate::report::describe_io_error;

/// The listening sockets systemd handed over (`LISTEN_FDS`), in the order the socket unit lists
/// them; none if it handed over none to this process. One that cannot be served on (not
/// listening, not a stream socket) is an error: serving on the others would leave its clients
/// waiting for ever.
pub fn inherited() -> io::Result<Vec<Listener>> {
    // As `sd_listen_fds`: the sockets are this process's only if LISTEN_PID names it (listenfd
    // also takes them without LISTEN_PID; those may have been meant for a parent).
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|pid| pid.parse::<u32>().ok())
        == Some(std::process::id());
    // Read in any case: it clears LISTEN_PID and LISTEN_FDS, which no child must inherit.
    let mut fds = listenfd::ListenFd::from_env();
    if !ours || fds.len() == 0 {
        return Ok(Vec::new());
    }
    let watcher = Watcher::start()?;
    (0..fds.len())
        .map(|index| {
            Ok(Listener {
                socket: take_inherited(&mut fds, index)?,
                tls: None,
                watcher: Arc::clone(&watcher),
            })
        })
        .collect()
}

/// The `index`th socket systemd handed over, if it is a listening stream socket, TCP or Unix.
fn take_inherited(fds: &mut listenfd::ListenFd, index: usize) -> io::Result<Accepting> {
    let fd = 3 + index;
    let socket = if let Ok(Some(socket)) = fds.take_tcp_listener(index) {
        Accepting::Tcp(socket)
    } else if let Ok(Some(socket)) = fds.take_unix_listener(index) {
        Accepting::Unix(socket)
    } else {
        let what = if matches!(fds.take_udp_socket(index), Ok(Some(_))) {
            "a UDP socket"
        } else if matches!(fds.take_unix_datagram(index), Ok(Some(_))) {
            "a Unix datagram socket"
        } else {
            "not a TCP or Unix stream socket"
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("fd {fd} is {what}; pushserve serves on stream sockets (ListenStream=)"),
        ));
    };
    if !is_listening(&socket)? {
        // Accept=yes hands over one connection per process, which accept() refuses.
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "fd {fd} is not listening (with Accept=yes, systemd passes a connection): \
                 pushserve accepts its own connections, so the socket unit needs Accept=no"
            ),
        ));
    }
    Ok(socket)
}

/// Whether the socket listens (`SO_ACCEPTCONN`).
#[cfg(target_os = "linux")]
fn is_listening(socket: &Accepting) -> io::Result<bool> {
    Ok(match socket {
        Accepting::Tcp(s) => sockopt::socket_acceptconn(s)?,
        Accepting::Unix(s) => sockopt::socket_acceptconn(s)?,
    })
}

/// Elsewhere than on Linux (systemd's home) the option cannot be read: a socket that does not
/// listen is found at the first `accept`.
#[cfg(not(target_os = "linux"))]
fn is_listening(_: &Accepting) -> io::Result<bool> {
    Ok(true)
}

/// Listens on a Unix socket at `path`, in place of a stale one a crash left, but never in
/// place of anything else.
pub fn listen_unix(path: &Path) -> io::Result<UnixListener> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => match UnixStream::connect(path) {
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "another server answers on it",
                ));
            }
            // Nobody answers: left by a server that crashed.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => fs::remove_file(path)?,
            // We may not even try (another user's socket): it may well be live.
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "a socket is there that cannot be tried ({}), so it is left alone",
                        describe_io_error(&e)
                    ),
                ));
            }
        },
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "it exists and is not a socket, so it is left alone",
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let socket = UnixListener::bind(path)?;
    rustix::net::listen(&socket, BACKLOG)?;
    Ok(socket)
}
