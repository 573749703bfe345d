//! Writes plain responses and whole buffers to a connection. Every response says
//! `Connection: close`: one request per connection keeps the layer small.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a finished connection waits for the client to close before dropping it, so that
/// unread request bytes do not turn our close into a reset that destroys the response.
const LINGER: Duration = Duration::from_millis(500);

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// A complete response with a body (omitted for HEAD, but its length still stated).
pub struct Response<'a> {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: &'a [u8],
}

impl<'a> Response<'a> {
    pub fn new(status: u16, content_type: &str, body: &'a [u8]) -> Response<'a> {
        Response {
            status,
            headers: vec![("Content-Type", content_type.to_string())],
            body,
        }
    }

    /// A short plain-text response for errors: the reason phrase as the body.
    pub fn error(status: u16) -> Response<'static> {
        Response::new(
            status,
            "text/plain; charset=utf-8",
            reason(status).as_bytes(),
        )
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Writes the response, then closes the connection gracefully; returns the bytes written.
    pub fn send(&self, stream: &mut TcpStream, head_only: bool) -> io::Result<u64> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        // 204 and 304 have no body, and say nothing of its length (RFC 9110 8.6).
        let bodiless = matches!(self.status, 204 | 304);
        if !bodiless {
            head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        head.push_str("Connection: close\r\n\r\n");
        let body = if head_only || bodiless {
            &[][..]
        } else {
            self.body
        };
        write_all_vectored(
            stream,
            &mut [IoSlice::new(head.as_bytes()), IoSlice::new(body)],
        )?;
        close_gracefully(stream);
        Ok((head.len() + body.len()) as u64)
    }
}

/// Writes every byte of `bufs` with as few syscalls as the socket allows (no copying);
/// returns how many that was. The socket's write timeout bounds the whole write, not just each
/// syscall: a client that takes a few bytes now and then would otherwise restart it every time.
pub fn write_all_vectored(mut conn: &TcpStream, mut bufs: &mut [IoSlice<'_>]) -> io::Result<u64> {
    let total = bufs.iter().map(|b| b.len() as u64).sum();
    let start = Instant::now();
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match conn.write_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                IoSlice::advance_slices(&mut bufs, n);
                // Only a partial write pays for the timeout lookup.
                if !bufs.is_empty()
                    && conn
                        .write_timeout()?
                        .is_some_and(|limit| start.elapsed() >= limit)
                {
                    return Err(io::ErrorKind::TimedOut.into());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(total)
}

/// Half-closes, then reads and discards what the client still sends until it closes too
/// (or [`LINGER`] passes), so that the response is not lost to a reset.
pub fn close_gracefully(stream: &mut TcpStream) {
    if stream.shutdown(Shutdown::Write).is_err() || stream.set_read_timeout(Some(LINGER)).is_err() {
        return;
    }
    let mut scratch = [0u8; 4096];
    for _ in 0..64 {
        match stream.read(&mut scratch) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Whether the client has closed its side: checked before a keep-alive, so a vanished client's
/// thread ends within one keep-alive instead of two (the first write after a close succeeds).
pub fn peer_has_closed(conn: &TcpStream) -> bool {
    if conn.set_nonblocking(true).is_err() {
        return true;
    }
    let closed = !matches!(read_pending(conn), Ok(false));
    conn.set_nonblocking(false).is_err() || closed
}

/// On a non-blocking socket: discards what the client sent after its request, and says
/// whether it has closed its side (Ok(true)) or is still there (Ok(false)).
pub fn read_pending(mut conn: &TcpStream) -> io::Result<bool> {
    let mut scratch = [0u8; 512];
    loop {
        match conn.read(&mut scratch) {
            Ok(0) => return Ok(true),
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// An IMF-fixdate (RFC 9110 5.6.7), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's days_from_civil, inverted).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn http_dates() {
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            http_date(UNIX_EPOCH + Duration::from_secs(784_111_777)),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(
            http_date(UNIX_EPOCH + Duration::from_secs(1_709_210_096)),
            "Thu, 29 Feb 2024 12:34:56 GMT"
        );
    }
}
