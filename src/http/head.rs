//! Response heads: the one writer of status lines and header fields.
//!
//! A [`HeaderValue`] cannot hold CR, LF or any other control byte (as hyper's cannot): building
//! one from outside text can fail, so no caller can end a head early or add a header by
//! accident, whatever a file name holds. Every head also carries what every response must:
//! `X-Content-Type-Options: nosniff` (no browser runs a served text file as a script or a
//! style) and `Connection: close`.

use std::borrow::Cow;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// A header field value: visible ASCII, spaces, tabs and non-ASCII text, nothing else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderValue(Cow<'static, str>);

/// Why a text cannot be a header value.
#[derive(Debug, PartialEq, Eq)]
pub struct InvalidHeaderValue;

impl fmt::Display for InvalidHeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a header value cannot hold CR, LF or other control characters")
    }
}

impl std::error::Error for InvalidHeaderValue {}

impl HeaderValue {
    pub fn new(value: impl Into<Cow<'static, str>>) -> Result<HeaderValue, InvalidHeaderValue> {
        let value = value.into();
        if value
            .bytes()
            .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7F))
        {
            Ok(HeaderValue(value))
        } else {
            Err(InvalidHeaderValue)
        }
    }

    /// A value known when the program is written; a control byte in it is a bug, caught by
    /// the first test that sends it.
    pub fn from_static(value: &'static str) -> HeaderValue {
        HeaderValue::new(value).expect("a static header value has no control bytes")
    }

    /// A number, which is always a valid value.
    pub fn number(n: impl Into<u64>) -> HeaderValue {
        HeaderValue(Cow::Owned(n.into().to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// A status line and header fields, rendered as bytes once complete.
pub struct Head {
    status: u16,
    fields: Vec<(&'static str, HeaderValue)>,
}

impl Head {
    pub fn new(status: u16) -> Head {
        Head {
            status,
            fields: Vec::new(),
        }
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    pub fn field(mut self, name: &'static str, value: HeaderValue) -> Head {
        self.push(name, value);
        self
    }

    pub fn push(&mut self, name: &'static str, value: HeaderValue) {
        self.fields.push((name, value));
    }

    /// The head with the fields every response carries, and the blank line that ends it.
    pub fn render(&self) -> Vec<u8> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (name, value) in &self.fields {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value.as_str());
            head.push_str("\r\n");
        }
        head.push_str("X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n");
        head.into_bytes()
    }
}

/// An IMF-fixdate (RFC 9110 5.6.7), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(time: SystemTime) -> HeaderValue {
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
    HeaderValue(Cow::Owned(format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )))
}

/// `Content-Disposition: inline` naming `name` as RFC 6266 says: an ASCII fallback in
/// `filename`, the exact name percent-encoded as UTF-8 in `filename*` (RFC 8187).
pub fn inline_disposition(name: &str) -> HeaderValue {
    let fallback: String = name
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' && c != '%' => c,
            _ => '_',
        })
        .collect();
    let mut encoded = String::with_capacity(name.len() * 3);
    for &b in name.as_bytes() {
        // attr-char (RFC 8187 3.2.1) as is, everything else as %XX.
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::new(format!(
        "inline; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
    ))
    .expect("an ASCII fallback and percent-encoding hold no control bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_bytes_are_refused_in_header_values() {
        assert!(HeaderValue::new("inline; filename=\"a b\"\t").is_ok());
        assert!(HeaderValue::new("caf\u{e9}").is_ok());
        for bad in [
            "a\r\nSet-Cookie: x=1",
            "a\nb",
            "a\rb",
            "a\0b",
            "a\x1b[31m",
            "a\x7f",
        ] {
            assert_eq!(HeaderValue::new(bad), Err(InvalidHeaderValue), "{bad:?}");
        }
    }

    #[test]
    fn every_head_says_nosniff_and_close() {
        let head = Head::new(404)
            .field("Content-Length", HeaderValue::number(0u64))
            .render();
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\
             X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn http_dates() {
        let date = |secs| http_date(UNIX_EPOCH + std::time::Duration::from_secs(secs));
        assert_eq!(date(0).as_str(), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(date(784_111_777).as_str(), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(
            date(1_709_210_096).as_str(),
            "Thu, 29 Feb 2024 12:34:56 GMT"
        );
    }

    #[test]
    fn file_names_go_out_per_rfc_6266() {
        assert_eq!(
            inline_disposition("cam.jpg").as_str(),
            "inline; filename=\"cam.jpg\"; filename*=UTF-8''cam.jpg"
        );
        assert_eq!(
            inline_disposition("cam\r\nSet-Cookie: pwned=1\r\n.jpg").as_str(),
            "inline; filename=\"cam__Set-Cookie: pwned=1__.jpg\"; \
             filename*=UTF-8''cam%0D%0ASet-Cookie%3A%20pwned%3D1%0D%0A.jpg"
        );
        assert_eq!(
            inline_disposition("\"été\" 100%.txt").as_str(),
            "inline; filename=\"__t__ 100_.txt\"; filename*=UTF-8''%22%C3%A9t%C3%A9%22%20100%25.txt"
        );
    }
}
