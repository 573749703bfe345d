//! One thread that notices clients leaving, for every connection at once.
//!
//! A connection waiting for a frame (a long-poll, an idle stream, an event stream) writes
//! nothing, so without help it would learn that its client has gone only at its next write,
//! minutes later for a `/poll?timeout=300`, holding a thread and a socket all the while. Each
//! connection is registered here with one `mio::Poll` (epoll on Linux, kqueue on macOS, AFD
//! polling on Windows) for reading: the watcher wakes only when a client sends something after
//! its request, which is rare, or closes its side; then it marks that connection's waiter gone
//! and wakes its thread alone, which ends the response at once.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread;

use mio::{Events, Interest, Poll, Registry, Token};

use crate::http::socket::Socket;
use crate::wake::Waiter;

pub struct Watcher {
    registry: Registry,
    /// Connections by the token they were registered with; tokens are never reused.
    watched: Mutex<HashMap<usize, Weak<Waiter>>>,
    next_token: AtomicUsize,
}

/// A connection's registration; ends when dropped. On Unix the kernel forgets the socket when
/// it is closed; on Windows the registration holds a handle of its own to the socket.
pub struct Watched {
    watcher: Arc<Watcher>,
    token: usize,
    #[cfg(windows)]
    source: mio::net::TcpStream,
}

impl Watcher {
    /// Starts the watcher thread.
    pub fn start() -> io::Result<Arc<Watcher>> {
        let poll = Poll::new()?;
        let watcher = Arc::new(Watcher {
            registry: poll.registry().try_clone()?,
            watched: Mutex::new(HashMap::new()),
            next_token: AtomicUsize::new(0),
        });
        let watching = Arc::clone(&watcher);
        thread::Builder::new()
            .name("watcher".into())
            .spawn(move || watching.run(poll))?;
        Ok(watcher)
    }

    /// Marks `waiter` gone and wakes it once the client of `socket` closes its side.
    pub fn watch(self: &Arc<Self>, socket: &Socket, waiter: &Arc<Waiter>) -> io::Result<Watched> {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(token, Arc::downgrade(waiter));
        #[cfg(unix)]
        let watched = {
            use std::os::fd::{AsFd, AsRawFd};
            let fd = socket.as_fd().as_raw_fd();
            let watched = Watched {
                watcher: Arc::clone(self),
                token,
            };
            self.registry.register(
                &mut mio::unix::SourceFd(&fd),
                Token(token),
                Interest::READABLE,
            )?;
            watched
        };
        #[cfg(windows)]
        let watched = {
            let Socket::Tcp(stream) = socket;
            let mut watched = Watched {
                watcher: Arc::clone(self),
                token,
                source: mio::net::TcpStream::from_std(stream.try_clone()?),
            };
            self.registry
                .register(&mut watched.source, Token(token), Interest::READABLE)?;
            watched
        };
        Ok(watched)
    }

    fn run(&self, mut poll: Poll) {
        let mut events = Events::with_capacity(256);
        loop {
            match poll.poll(&mut events, None) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    error!(
                        "cannot watch for clients leaving: {e}; they are noticed at their next write"
                    );
                    return;
                }
            }
            let watched = self.lock();
            for event in &events {
                // Bytes after the request are no sign of leaving; a closed side or an error is.
                if !(event.is_read_closed() || event.is_error()) {
                    continue;
                }
                if let Some(waiter) = watched.get(&event.token().0).and_then(Weak::upgrade) {
                    waiter.set_gone();
                }
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<usize, Weak<Waiter>>> {
        self.watched.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.watcher.lock().remove(&self.token);
        #[cfg(windows)]
        let _ = self.watcher.registry.deregister(&mut self.source);
    }
}
