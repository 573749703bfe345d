//! The accept loop: one small-stack thread per connection, and accept errors (out of file
//! descriptors, out of memory) survived with a back-off instead of ending the server.

use std::io::{self, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::report::describe_io_error;

/// Connection threads need little stack (no recursion, buffers on the heap); a small one lets
/// thousands of viewers fit in a few dozen MB.
const STACK_SIZE: usize = 128 * 1024;
const OVERLOADED: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Accepts connections for ever, handing each to `handle` on its own thread (the process ends
/// through `shutdown.rs`).
pub fn serve<H>(listener: &TcpListener, handle: Arc<H>) -> !
where
    H: Fn(TcpStream) + Send + Sync + 'static,
{
    let mut backoff = Duration::ZERO;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                backoff = Duration::ZERO;
                spawn(stream, Arc::clone(&handle));
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

fn spawn<H>(stream: TcpStream, handle: Arc<H>)
where
    H: Fn(TcpStream) + Send + Sync + 'static,
{
    // Keep a handle so that a refused spawn can still answer.
    let spare = stream.try_clone();
    let spawned = thread::Builder::new()
        .name("connection".into())
        .stack_size(STACK_SIZE)
        .spawn(move || handle(stream));
    if spawned.is_err()
        && let Ok(mut stream) = spare
    {
        // Written from the accept thread, so no lingering close: the kernel sends it as is.
        let _ = stream.set_nonblocking(true);
        let _ = stream.write_all(OVERLOADED);
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
