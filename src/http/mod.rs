//! The connection layer: std::net, one thread per connection, request heads parsed with
//! httparse under size and time limits, responses written straight to the socket.
//!
//! It knows nothing of frames or push; `routes.rs` decides what each request gets.
//! (Why not tiny_http: DESIGN.md section 3.)

pub mod listener;
pub mod request;
pub mod response;
