//! The connection layer: std::net, one thread per connection, request heads parsed with
//! httparse under size and time limits, responses written straight to the socket through
//! [`conn::Conn`], which also owns the write rule and notices clients leaving (`watch.rs`).
//!
//! It knows nothing of frames or push; `routes.rs` decides what each request gets. It is ours,
//! not tiny_http's, because tiny_http strands connections that arrive together and cannot
//! stream an endless response.

pub mod auth;
pub mod conn;
pub mod head;
pub mod host;
pub mod listener;
pub mod request;
pub mod response;
pub mod socket;
pub mod tls;
pub mod watch;
