//! Ctrl-C and SIGTERM: stop serving, let every stream end with its final boundary and every
//! source stop (a command's run and all its process group), then exit 0. Both waits run side by
//! side and are bounded, so exit comes within [`SOURCE_GRACE`] at worst. A second signal exits
//! at once, killing whatever the sources still run.

use std::process;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::report;
use crate::site::Site;
use crate::source;

/// How long open streams get to write their final boundary.
const STREAM_GRACE: Duration = Duration::from_millis(800);
/// How long the sources get to return: a command's run gets SIGTERM, then SIGKILL if it has not
/// ended after a grace of its own, well within this.
const SOURCE_GRACE: Duration = Duration::from_secs(2);

/// Installs the handler.
pub fn on_signal_close(site: Arc<Site>) -> Result<()> {
    let signalled = AtomicBool::new(false);
    ctrlc::set_handler(move || {
        if signalled.swap(true, Ordering::SeqCst) {
            source::kill_children();
            process::exit(0);
        }
        let site = Arc::clone(&site);
        // Waiting on another thread keeps this handler free for a second signal.
        thread::spawn(move || close_and_exit(&site));
    })
    .context("cannot install the Ctrl-C handler")
}

/// Ends every stream with its final boundary (waiting at most [`STREAM_GRACE`]) and waits for
/// every source to return (at most [`SOURCE_GRACE`], counted from the same start), then exits 0.
pub fn close_and_exit(site: &Site) -> ! {
    let start = Instant::now();
    for channel in &site.channels {
        channel.latest.close();
    }
    report::clear_status_line();
    crate::http::listener::remove_socket_file();
    let streams_deadline = start + STREAM_GRACE;
    while site.open_responses() > 0 && Instant::now() < streams_deadline {
        thread::sleep(Duration::from_millis(5));
    }
    site.running.wait_all(Some(start + SOURCE_GRACE));
    process::exit(0);
}
