//! Complete responses with a body: one head (`head.rs`), the body, then a graceful close. Every
//! response says `Connection: close`: one request per connection keeps the layer small.

use std::io::{self, IoSlice};

use crate::http::conn::Conn;
use crate::http::head::{Head, HeaderValue, reason};

/// A complete response with a body (omitted for HEAD, but its length still stated).
pub struct Response<'a> {
    pub head: Head,
    pub body: &'a [u8],
}

impl<'a> Response<'a> {
    pub fn new(status: u16, content_type: HeaderValue, body: &'a [u8]) -> Response<'a> {
        Response {
            head: Head::new(status).field("Content-Type", content_type),
            body,
        }
    }

    /// A short plain-text response for errors: the reason phrase as the body.
    pub fn error(status: u16) -> Response<'static> {
        Response::new(
            status,
            HeaderValue::from_static("text/plain; charset=utf-8"),
            reason(status).as_bytes(),
        )
    }

    pub fn header(mut self, name: &'static str, value: HeaderValue) -> Self {
        self.head.push(name, value);
        self
    }

    /// Writes the response, then closes the connection gracefully; returns the bytes written.
    pub fn send(mut self, conn: Conn, head_only: bool) -> io::Result<u64> {
        // 204 and 304 have no body, and say nothing of its length (RFC 9110 8.6).
        let bodiless = matches!(self.head.status(), 204 | 304);
        if !bodiless {
            self.head.push(
                "Content-Length",
                HeaderValue::number(self.body.len() as u64),
            );
        }
        let head = self.head.render();
        let body = if head_only || bodiless {
            &[][..]
        } else {
            self.body
        };
        let sent = conn.send(&mut [IoSlice::new(&head), IoSlice::new(body)])?;
        conn.close();
        Ok(sent)
    }
}
