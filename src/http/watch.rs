//! One thread that notices clients leaving, for every connection at once.
//!
//! A connection waiting for a frame (a long-poll, an idle stream, an event stream) writes
//! nothing, so without help it would learn that its client has gone only at its next write,
//! minutes later for a `/poll?timeout=300`, holding a thread and a socket all the while. Each
//! connection is registered here, with one epoll instance, for `EPOLLRDHUP` (the client closed
//! its side; one shot): the watcher then marks that connection's waiter gone and wakes its
//! thread alone, which ends the response at once.

use std::collections::HashMap;
use std::io;
use std::os::fd::AsFd;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread;

use rustix::buffer::spare_capacity;
use rustix::event::epoll::{self, CreateFlags, EventData, EventFlags};

use crate::wake::Waiter;

pub struct Watcher {
    epoll: OwnedFd,
    /// Connections by the token they were registered with; tokens are never reused.
    watched: Mutex<HashMap<u64, Weak<Waiter>>>,
    next_token: AtomicU64,
}

/// A connection's registration; ends when dropped (the kernel forgets the socket when it is
/// closed).
pub struct Watched {
    watcher: Arc<Watcher>,
    token: u64,
}

impl Watcher {
    /// Starts the watcher thread.
    pub fn start() -> io::Result<Arc<Watcher>> {
        let watcher = Arc::new(Watcher {
            epoll: epoll::create(CreateFlags::CLOEXEC)?,
            watched: Mutex::new(HashMap::new()),
            next_token: AtomicU64::new(0),
        });
        let watching = Arc::clone(&watcher);
        thread::Builder::new()
            .name("watcher".into())
            .spawn(move || watching.run())?;
        Ok(watcher)
    }

    /// Marks `waiter` gone and wakes it once the client of `conn` closes its side.
    pub fn watch(self: &Arc<Self>, conn: impl AsFd, waiter: &Arc<Waiter>) -> io::Result<Watched> {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(token, Arc::downgrade(waiter));
        let watched = Watched {
            watcher: Arc::clone(self),
            token,
        };
        epoll::add(
            &self.epoll,
            conn,
            EventData::new_u64(token),
            EventFlags::RDHUP | EventFlags::ONESHOT,
        )?;
        Ok(watched)
    }

    fn run(&self) {
        let mut events = Vec::with_capacity(256);
        loop {
            events.clear();
            match epoll::wait(&self.epoll, spare_capacity(&mut events), None) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    error!(
                        "cannot watch for clients leaving: {e}; they are noticed at their next write"
                    );
                    return;
                }
            }
            let watched = self.lock();
            for event in &events {
                // RDHUP, or HUP or ERR, which epoll always reports: the client is gone.
                if let Some(waiter) = watched.get(&event.data.u64()).and_then(Weak::upgrade) {
                    waiter.set_gone();
                }
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Weak<Waiter>>> {
        self.watched.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.watcher.lock().remove(&self.token);
    }
}
