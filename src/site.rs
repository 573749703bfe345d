//! What every connection thread shares once the server runs: the channels, the keeper, the
//! serving settings and the count of sources still running; and [`Ctx`], what each handler is
//! given with the request and the connection.
//!
//! Nothing here knows which kind of source feeds a channel, nor which paths exist
//! (`routes.rs` says that).

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::channel::Channel;
use crate::http::auth::Accounts;
use crate::http::conn::Conn;
use crate::http::head::{Head, HeaderValue};
use crate::http::response::Response;
use crate::keeper::Keeper;

/// The settings of the serving side, fixed for the run.
pub struct Serving {
    /// `--keepalive` (what each stream gets then: see `Args::keepalive`).
    pub keepalive: Duration,
    /// `--repeat` for reader streams; None for 0.
    pub repeat: Option<Duration>,
    /// `--cors`: the endpoints the route table marks get `Access-Control-Allow-Origin: *` (and,
    /// with `--auth`, every preflight and every 401).
    pub cors: bool,
    /// `--auth`: every request must name one of these accounts; None asks nothing.
    pub auth: Option<Accounts>,
}

pub struct Site {
    /// In command-line order: the first is served at the root.
    pub channels: Vec<Arc<Channel>>,
    pub keeper: Arc<Keeper>,
    pub serving: Serving,
    pub started: Instant,
    /// The sources whose producer has not returned yet: shutdown waits for them (a command's
    /// run must be stopped), `--once` too.
    pub running: Running,
}

/// A count of the sources still running, and a wait for it to reach zero.
pub struct Running {
    left: Mutex<usize>,
    changed: Condvar,
}

impl Running {
    pub fn new(sources: usize) -> Running {
        Running {
            left: Mutex::new(sources),
            changed: Condvar::new(),
        }
    }

    /// One source's producer has returned.
    pub fn returned(&self) {
        let mut left = self.left.lock().unwrap_or_else(|e| e.into_inner());
        *left = left.saturating_sub(1);
        self.changed.notify_all();
    }

    /// Waits until every source's producer has returned, or `deadline` (None: no deadline);
    /// whether they all have.
    pub fn wait_all(&self, deadline: Option<Instant>) -> bool {
        let mut left = self.left.lock().unwrap_or_else(|e| e.into_inner());
        while *left > 0 {
            let Some(deadline) = deadline else {
                left = self.changed.wait(left).unwrap_or_else(|e| e.into_inner());
                continue;
            };
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            left = self
                .changed
                .wait_timeout(left, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}

impl Site {
    pub fn channel(&self, name: &str) -> Option<&Arc<Channel>> {
        self.channels.iter().find(|c| c.name == name)
    }

    /// Several sources: `/` is an index of them, and messages name their source.
    pub fn is_multi(&self) -> bool {
        self.channels.len() > 1
    }

    /// The server is shutting down (every channel is closed at once).
    pub fn is_closed(&self) -> bool {
        self.channels.iter().all(|c| c.is_closed())
    }

    /// Clients that hold a response open, on every channel: what shutdown waits for.
    pub fn open_responses(&self) -> usize {
        self.channels.iter().map(|c| c.stats.open_responses()).sum()
    }
}

/// What a handler is given besides the request and the connection.
pub struct Ctx<'a> {
    pub site: &'a Site,
    pub channel: &'a Channel,
    /// This endpoint answers other origins (`--cors`, and the route allows it).
    pub cors: bool,
}

impl Ctx<'_> {
    /// Adds the CORS headers when this endpoint takes them.
    pub fn add_cors(&self, head: &mut Head) {
        if self.cors {
            add_cors(head);
        }
    }

    /// Sends a complete response, with the CORS headers when this endpoint takes them;
    /// returns the bytes sent.
    pub fn send(&self, conn: Conn, mut response: Response, head_only: bool) -> u64 {
        self.add_cors(&mut response.head);
        response.send(conn, head_only).unwrap_or(0)
    }
}

/// The CORS headers of an endpoint that answers other origins.
pub fn add_cors(head: &mut Head) {
    head.push("Access-Control-Allow-Origin", HeaderValue::from_static("*"));
    head.push(
        "Access-Control-Expose-Headers",
        HeaderValue::from_static("ETag"),
    );
}
