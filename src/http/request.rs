//! Reads one request head from a connection, with a size limit and an overall deadline, and
//! refuses heads that HTTP/1.1 says to refuse (RFC 9112): no Host, two Hosts, conflicting
//! Content-Lengths.

use std::io;
use std::time::{Duration, Instant};

/// Larger heads get 431: no browser or tool sends anything near it.
pub const MAX_HEAD: usize = 8 * 1024;
const MAX_HEADERS: usize = 64;
/// The most one read takes. The head's buffer is zeroed only this far ahead of what has
/// arrived: zeroing all [`MAX_HEAD`] for every connection dirtied two pages of heap each, which
/// the small allocations of idle streams then held on to.
const READ_SIZE: usize = 1024;

pub struct Request {
    pub method: String,
    /// The path without the query string, repeated slashes merged (as nginx does), so that
    /// `$URL/stream` with the printed URL's trailing slash, `//stream`, is `/stream`.
    pub path: String,
    pub query: String,
    /// The host the client asked for: from an absolute-form target (`GET http://host/stream`,
    /// RFC 9112 3.2.2), else the Host header; None from an HTTP/1.0 client that sent none.
    pub host: Option<String>,
    /// The header fields, a `name:value` line each: one allocation for them all, which a
    /// stream keeps for as long as it lasts (a String per name and per value took twice the
    /// memory for a browser's head).
    fields: String,
}

impl Request {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        values(&self.fields, name).next()
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

/// Reads until a complete request head has arrived or `timeout` has passed in all; `read`
/// reads what is there, waiting at most the time it is given (0 at the end of the stream).
pub fn read_head(
    mut read: impl FnMut(&mut [u8], Duration) -> io::Result<usize>,
    timeout: Duration,
) -> Result<Request, HeadError> {
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::with_capacity(MAX_HEAD);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HeadError::Gone);
        }
        let filled = buf.len();
        buf.resize((filled + READ_SIZE).min(MAX_HEAD), 0);
        match read(&mut buf[filled..], left) {
            Ok(0) => {
                return Err(if filled == 0 {
                    HeadError::Gone
                } else {
                    HeadError::Malformed
                });
            }
            Ok(n) => buf.truncate(filled + n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                buf.truncate(filled);
                continue;
            }
            Err(_) => return Err(HeadError::Gone),
        }
        if let Some(request) = parse(&buf)? {
            return Ok(request);
        }
        if buf.len() == MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
    }
}

/// A request from a complete head, None if more bytes are needed.
fn parse(bytes: &[u8]) -> Result<Option<Request>, HeadError> {
    // On the heap: 2 KiB more on the stack made every connection thread touch a third page,
    // 4 KiB more per viewer (40 MB for 10,000).
    let mut headers = vec![httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(bytes) {
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(_)) => {
            // httparse lets no CR or LF into a name or value, nor a colon into a name.
            let len = req.headers.iter().map(|h| h.name.len() + h.value.len() + 2);
            let mut fields = String::with_capacity(len.sum());
            for h in req.headers.iter() {
                fields += h.name;
                fields += ":";
                fields += &String::from_utf8_lossy(h.value);
                fields += "\n";
            }
            let host = checked_host(&fields, req.version)?;
            let (authority, target) = split_absolute_form(req.path.unwrap_or("/"));
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            let host = authority.map(str::to_string).or(host);
            Ok(Some(Request {
                method: req.method.unwrap_or("").to_string(),
                path: merge_slashes(path),
                query: query.to_string(),
                host,
                fields,
            }))
        }
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooLarge),
        Err(_) => Err(HeadError::Malformed),
    }
}

/// A complete head as a request, for other modules' tests.
#[cfg(test)]
pub fn parse_for_test(head: &str) -> Request {
    parse(head.as_bytes())
        .ok()
        .flatten()
        .expect("a complete, valid head")
}

/// `//a///b` → `/a/b`.
fn merge_slashes(path: &str) -> String {
    let mut merged = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && merged.ends_with('/')) {
            merged.push(c);
        }
    }
    merged
}

/// The Host header's value, if any, from a head's header fields that HTTP/1.1 (`version` 1)
/// allows: at most one Host, and one in HTTP/1.1; no conflicting Content-Lengths.
fn checked_host(fields: &str, version: Option<u8>) -> Result<Option<String>, HeadError> {
    let mut hosts = values(fields, "host").map(str::trim);
    let host = hosts.next();
    let mut lengths = values(fields, "content-length").map(str::trim);
    let conflicting_lengths = lengths
        .next()
        .is_some_and(|first| lengths.any(|l| l != first));
    if hosts.next().is_some() || (host.is_none() && version == Some(1)) || conflicting_lengths {
        return Err(HeadError::Malformed);
    }
    Ok(host.map(str::to_string))
}

/// Every value of the header `name` in `fields` (a `name:value` line each), in order.
fn values<'a>(fields: &'a str, name: &str) -> impl Iterator<Item = &'a str> {
    fields.lines().filter_map(move |line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then_some(v)
    })
}

/// `http://host:8080/stream?x` → (Some("host:8080"), "/stream?x"); an origin-form target
/// (`/stream?x`) is returned as it is.
fn split_absolute_form(target: &str) -> (Option<&str>, &str) {
    let scheme_end = ["http://", "https://"]
        .iter()
        .find(|scheme| {
            target
                .get(..scheme.len())
                .is_some_and(|t| t.eq_ignore_ascii_case(scheme))
        })
        .map(|scheme| scheme.len());
    let Some(start) = scheme_end else {
        return (None, target);
    };
    let rest = &target[start..];
    match rest.find(['/', '?']) {
        Some(at) if rest.as_bytes()[at] == b'/' => (Some(&rest[..at]), &rest[at..]),
        Some(at) => (Some(&rest[..at]), "/"),
        None => (Some(rest), "/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_path_query_and_headers() {
        let req =
            parse(b"GET /stream?framing=reader HTTP/1.1\r\nHost: a\r\nUser-Agent: Lavf/59\r\n\r\n")
                .unwrap()
                .unwrap();
        assert_eq!((req.method.as_str(), req.path.as_str()), ("GET", "/stream"));
        assert_eq!(req.query_param("framing"), Some("reader"));
        assert_eq!(req.header("user-agent"), Some("Lavf/59"));
        let req = parse(
            b"GET / HTTP/1.1\r\nHost: a\r\nReferer: http://a:80/x\r\nX-A: 1\r\nx-a: 2\r\nX-Bin: \xff\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(req.header("REFERER"), Some("http://a:80/x"));
        assert_eq!(req.header("x-a"), Some("1"), "the first of two");
        assert_eq!(req.header("x-bin"), Some("\u{fffd}"));
        assert_eq!(
            (req.header("host"), req.header("accept")),
            (Some("a"), None)
        );
    }

    #[test]
    fn absolute_form_targets_name_the_host() {
        let req = parse(b"GET http://127.0.0.1:8080/stream?x=1 HTTP/1.1\r\nHost: other\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((req.path.as_str(), req.query.as_str()), ("/stream", "x=1"));
        assert_eq!(req.host.as_deref(), Some("127.0.0.1:8080"));
        let bare = parse(b"GET HTTP://cam HTTP/1.1\r\nHost: cam\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            (bare.path.as_str(), bare.host.as_deref()),
            ("/", Some("cam"))
        );
    }

    #[test]
    fn heads_http_1_1_forbids_are_malformed() {
        let malformed = |head: &[u8]| matches!(parse(head), Err(HeadError::Malformed));
        assert!(malformed(b"GET / HTTP/1.1\r\n\r\n"), "no Host");
        assert!(malformed(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"));
        assert!(malformed(
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n"
        ));
        assert!(
            !malformed(b"GET / HTTP/1.0\r\n\r\n"),
            "HTTP/1.0 needs no Host"
        );
        assert!(!malformed(
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n"
        ));
    }

    #[test]
    fn heads_longer_than_one_read_and_up_to_the_limit() {
        // A head of `len` bytes in all.
        let head_of = |len: usize| {
            let start = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ";
            format!("{start}{}\r\n\r\n", "x".repeat(len - start.len() - 4))
        };
        let read_all = |head: String| {
            let mut rest = head.into_bytes();
            read_head(
                move |buf, _| {
                    let n = buf.len().min(rest.len());
                    buf[..n].copy_from_slice(&rest[..n]);
                    rest.drain(..n);
                    Ok(n)
                },
                Duration::from_secs(1),
            )
        };
        let req = read_all(head_of(3 * READ_SIZE + 7)).unwrap();
        assert_eq!(
            req.header("x-pad").map(str::len),
            Some(3 * READ_SIZE + 7 - 36)
        );
        assert!(read_all(head_of(MAX_HEAD)).is_ok());
        assert!(matches!(
            read_all(head_of(MAX_HEAD + 1)),
            Err(HeadError::TooLarge)
        ));
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
