//! Ctrl-C and SIGTERM: stop serving, let every stream end with its final boundary, exit 0.
//! A second signal exits at once.

use std::process;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::report;
use crate::site::Site;

/// How long open streams get to write their final boundary.
const GRACE: Duration = Duration::from_millis(800);

/// Installs the handler.
pub fn on_signal_close(site: Arc<Site>) -> Result<()> {
    let signalled = AtomicBool::new(false);
    ctrlc::set_handler(move || {
        if signalled.swap(true, Ordering::SeqCst) {
            process::exit(0);
        }
        let site = Arc::clone(&site);
        // Waiting on another thread keeps this handler free for a second signal.
        thread::spawn(move || close_and_exit(&site));
    })
    .context("cannot install the Ctrl-C handler")
}

/// Ends every stream with its final boundary (waiting at most [`GRACE`]), then exits 0.
pub fn close_and_exit(site: &Site) -> ! {
    for channel in &site.channels {
        channel.latest.close();
    }
    report::clear_status_line();
    crate::http::listener::remove_socket_file();
    let deadline = Instant::now() + GRACE;
    while site.open_responses() > 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    process::exit(0);
}
