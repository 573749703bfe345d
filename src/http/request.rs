//! Reads one request head from a connection, with a size limit and an overall deadline.

use std::io::{self, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Larger heads get 431: no browser or tool sends anything near it.
pub const MAX_HEAD: usize = 8 * 1024;
const MAX_HEADERS: usize = 64;

pub struct Request {
    pub method: String,
    /// The path without the query string, e.g. `/stream`.
    pub path: String,
    pub query: String,
    headers: Vec<(String, String)>,
}

impl Request {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key` in the query string (`a=1&key=value`), undecoded.
    pub fn query_param(&self, key: &str) -> Option<&str> {
        self.query
            .split('&')
            .find_map(|pair| match pair.split_once('=') {
                Some((k, v)) if k == key => Some(v),
                None if pair == key => Some(""),
                _ => None,
            })
    }

    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }
}

#[derive(Debug)]
pub enum HeadError {
    /// The client closed, stalled past the deadline or the socket failed: nothing to answer.
    Gone,
    /// Over [`MAX_HEAD`] bytes or [`MAX_HEADERS`] headers: 431.
    TooLarge,
    /// Not HTTP: 400.
    Malformed,
}

/// Reads until a complete request head has arrived or `timeout` has passed in all.
pub fn read_head(stream: &mut TcpStream, timeout: Duration) -> Result<Request, HeadError> {
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; MAX_HEAD];
    let mut filled = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Err(HeadError::Gone);
        }
        match stream.read(&mut buf[filled..]) {
            Ok(0) => {
                return Err(if filled == 0 {
                    HeadError::Gone
                } else {
                    HeadError::Malformed
                });
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(HeadError::Gone),
        }
        if let Some(request) = parse(&buf[..filled])? {
            return Ok(request);
        }
        if filled == buf.len() {
            return Err(HeadError::TooLarge);
        }
    }
}

/// A request from a complete head, None if more bytes are needed.
fn parse(bytes: &[u8]) -> Result<Option<Request>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(bytes) {
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(_)) => {
            let target = req.path.unwrap_or("/");
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            Ok(Some(Request {
                method: req.method.unwrap_or("").to_string(),
                path: path.to_string(),
                query: query.to_string(),
                headers: req
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect(),
            }))
        }
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooLarge),
        Err(_) => Err(HeadError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_path_query_and_headers() {
        let req = parse(b"GET /stream?framing=reader HTTP/1.1\r\nUser-Agent: Lavf/59\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((req.method.as_str(), req.path.as_str()), ("GET", "/stream"));
        assert_eq!(req.query_param("framing"), Some("reader"));
        assert_eq!(req.header("user-agent"), Some("Lavf/59"));
    }

    #[test]
    fn partial_and_malformed_heads() {
        assert!(matches!(parse(b"GET / HTTP/1.1\r\nHost: x\r\n"), Ok(None)));
        assert!(matches!(
            parse(b"\x00\x01garbage\r\n\r\n"),
            Err(HeadError::Malformed)
        ));
    }
}
