//! Waking one connection's thread, and only that one.
//!
//! A connection that waits (for a frame, a timeout, its client leaving) parks its own thread.
//! Whoever has news for it unparks that thread alone: [`crate::frame::Latest`] each subscriber
//! once per new frame, the connection layer's watcher a connection whose client has closed, the
//! keeper a reader stream it needs. A shared condvar would wake every waiting connection for
//! each of those (a thundering herd: thousands of idle viewers woken because one left).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, Thread};
use std::time::Instant;

/// The thread of one connection, and what others may tell it.
pub struct Waiter {
    thread: Thread,
    gone: AtomicBool,
    kicked: AtomicBool,
}

impl Waiter {
    /// A waiter for the calling thread, which must be the one that later sleeps on it.
    pub fn for_current_thread() -> Arc<Waiter> {
        Arc::new(Waiter {
            thread: thread::current(),
            gone: AtomicBool::new(false),
            kicked: AtomicBool::new(false),
        })
    }

    /// Wakes the thread: it looks again at what it waits for.
    pub fn wake(&self) {
        self.thread.unpark();
    }

    /// The client has closed its side: the connection's thread wakes and ends.
    pub fn set_gone(&self) {
        self.gone.store(true, Ordering::SeqCst);
        self.wake();
    }

    pub fn is_gone(&self) -> bool {
        self.gone.load(Ordering::SeqCst)
    }

    /// Asks the thread to act now (the keeper: its stream's line is full, or its client stopped
    /// reading); it learns so from [`Waiter::take_kick`].
    pub fn kick(&self) {
        self.kicked.store(true, Ordering::SeqCst);
        self.wake();
    }

    pub fn take_kick(&self) -> bool {
        self.kicked.swap(false, Ordering::SeqCst)
    }

    /// Sleeps until woken or `deadline` (None: until woken). May return early for no reason:
    /// callers look again at what they wait for, in a loop.
    pub fn sleep(&self, deadline: Option<Instant>) {
        debug_assert_eq!(thread::current().id(), self.thread.id());
        match deadline {
            None => thread::park(),
            Some(deadline) => {
                thread::park_timeout(deadline.saturating_duration_since(Instant::now()))
            }
        }
    }
}
