//! The multipart parser's unit tests: streams that arrive in pieces, stall, lie about their
//! lengths or change their boundary.

use std::io::{self, BufRead, Read};

use super::*;
use std::collections::VecDeque;

/// A stream that arrives in `chunks`: WouldBlock when none is left (the next bytes have not
/// arrived) until `ended`; with `stall`, that error once before each chunk.
#[derive(Default)]
struct Script {
    chunks: VecDeque<Vec<u8>>,
    at: usize,
    ended: bool,
    stall: Option<io::ErrorKind>,
    stall_due: bool,
}

impl Script {
    fn new(chunks: impl IntoIterator<Item = Vec<u8>>, ended: bool) -> Script {
        Script {
            chunks: chunks.into_iter().collect(),
            ended,
            stall_due: true,
            ..Script::default()
        }
    }

    fn arrive(&mut self, bytes: &[u8]) {
        self.chunks.push_back(bytes.to_vec());
    }
}

impl Read for Script {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = {
            let have = self.fill_buf()?;
            let n = have.len().min(out.len());
            out[..n].copy_from_slice(&have[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Script {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.chunks.front().is_some_and(|c| self.at >= c.len()) {
            self.chunks.pop_front();
            (self.at, self.stall_due) = (0, true);
        }
        if let Some(kind) = self.stall.filter(|_| self.stall_due) {
            self.stall_due = false;
            return Err(kind.into());
        }
        match self.chunks.front() {
            Some(chunk) => Ok(&chunk[self.at..]),
            None if self.ended => Ok(&[]),
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn consume(&mut self, n: usize) {
        self.at += n;
    }
}

/// What a stream gives, call after call.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Got {
    Part(Part),
    TooLarge,
    Torn,
    Malformed(String),
    /// Ok(None), and whether the final boundary was read.
    End {
        clean: bool,
    },
    /// Said by the parser after the call before.
    Notice(Notice),
}

fn part(headers: &[(&str, &str)], body: &[u8]) -> Got {
    Got::Part(Part {
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        body: body.to_vec(),
    })
}

/// Every result up to the end or a Malformed, retrying after a timeout.
fn read_all(parts: &mut Parts<Script>) -> Vec<Got> {
    let mut got = Vec::new();
    loop {
        let next = parts.next_part();
        got.extend(parts.take_notices().into_iter().map(Got::Notice));
        match next {
            Ok(Some(p)) => got.push(Got::Part(p)),
            Ok(None) => {
                got.push(Got::End {
                    clean: parts.ended_cleanly(),
                });
                assert!(matches!(parts.next_part(), Ok(None)), "{got:?}");
                return got;
            }
            Err(Error::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => got.push(Got::Torn),
            Err(Error::TooLarge { .. }) => got.push(Got::TooLarge),
            Err(Error::Malformed(why)) => {
                got.push(Got::Malformed(why.clone()));
                match parts.next_part() {
                    Err(Error::Malformed(again)) => assert_eq!(again, why),
                    other => panic!("after Malformed: {other:?}"),
                }
                return got;
            }
            Err(e) => panic!("{e}"),
        }
    }
}

fn open(script: Script, max_part: u64, strict: bool) -> Parts<Script> {
    let parts = Parts::new(script, "B", max_part);
    if strict { parts.strict() } else { parts }
}

/// Parses the whole `stream` in one read, a byte a read with a timeout before each, and 7
/// bytes a read with a signal before each: the results must agree.
fn parse_with(stream: &[u8], max_part: u64, strict: bool) -> Vec<Got> {
    let whole = read_all(&mut open(
        Script::new([stream.to_vec()], true),
        max_part,
        strict,
    ));
    let mut bytes = Script::new(stream.iter().map(|&b| vec![b]), true);
    bytes.stall = Some(io::ErrorKind::WouldBlock);
    assert_eq!(
        read_all(&mut open(bytes, max_part, strict)),
        whole,
        "byte by byte"
    );
    let mut sevens = Script::new(stream.chunks(7).map(<[u8]>::to_vec), true);
    sevens.stall = Some(io::ErrorKind::Interrupted);
    assert_eq!(
        read_all(&mut open(sevens, max_part, strict)),
        whole,
        "7 at a time"
    );
    whole
}

fn parse(stream: &[u8], strict: bool) -> Vec<Got> {
    parse_with(stream, 1 << 20, strict)
}

fn malformed(why: &str) -> Got {
    Got::Malformed(why.into())
}

const END: Got = Got::End { clean: true };

#[test]
fn parts_with_and_without_content_length_are_read() {
    let stream = b"--B\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello\
          \r\n--B\r\nContent-Type: text/plain\r\n\r\nworld\
          \r\n--B\r\nContent-Length: 0\r\n\r\n\
          \r\n--B\r\n\r\n\r\n--B--\r\n";
    for strict in [false, true] {
        assert_eq!(
            parse(stream, strict),
            [
                part(
                    &[("Content-Type", "text/plain"), ("Content-Length", "5")],
                    b"hello"
                ),
                part(&[("Content-Type", "text/plain")], b"world"),
                part(&[("Content-Length", "0")], b""),
                part(&[], b""),
                END
            ]
        );
    }
}

#[test]
fn a_part_with_content_length_is_returned_before_anything_after_it_arrives() {
    for strict in [false, true] {
        let script = Script::new([b"--B\r\nContent-Length: 3\r\n\r\nabc".to_vec()], false);
        let mut parts = open(script, 100, strict);
        assert_eq!(parts.next_part().unwrap().unwrap().body, b"abc");
        let e = parts.next_part().unwrap_err();
        assert!(matches!(&e, Error::Io(e) if e.kind() == io::ErrorKind::WouldBlock));
        // The delimiter and the next part come later, in pieces.
        parts.get_mut().arrive(b"\r\n-");
        assert!(parts.next_part().is_err());
        parts.get_mut().arrive(b"-B\r\nContent-Length: 2\r\n\r\nde");
        assert_eq!(parts.next_part().unwrap().unwrap().body, b"de");
        assert!(parts.next_part().is_err());
    }
}

#[test]
fn a_part_without_content_length_is_returned_once_the_delimiter_is_in() {
    for strict in [false, true] {
        let script = Script::new([b"--B\r\n\r\nabc\r\n-".to_vec()], false);
        let mut parts = open(script, 100, strict);
        assert!(parts.next_part().is_err());
        parts.get_mut().arrive(b"-B");
        assert_eq!(parts.next_part().unwrap().unwrap().body, b"abc");
    }
}

/// `src/push.rs`: reader framing, as sent to curl, mpv (empty parts after each) and a
/// first part padded; `keeper.rs`: keep-alives as header lines of the open part.
#[test]
fn our_servers_reader_framing_with_keepalives_in_the_next_part_head() {
    let text = "text/plain; charset=utf-8";
    let padding = ".".repeat(2000);
    let first = format!(
        "--B\r\nContent-Type: {text}\r\nContent-Length: 3\r\nX-Padding: {padding}\r\n\r\none\r\n--B"
    );
    let keepalive = "\r\nX-Keepalive: 1";
    let second = format!("\r\nContent-Type: {text}\r\nContent-Length: 3\r\n\r\ntwo\r\n--B");
    let empty = "\r\nContent-Type: image/jpeg\r\nContent-Length: 0\r\n\r\n\r\n--B";
    for strict in [false, true] {
        let mut parts = open(
            Script::new([first.clone().into_bytes()], false),
            100,
            strict,
        );
        let one = parts.next_part().unwrap().unwrap();
        assert_eq!(
            (one.body.as_slice(), one.header("x-padding")),
            (&b"one"[..], Some(&padding[..]))
        );
        for _ in 0..3 {
            parts.get_mut().arrive(keepalive.as_bytes());
            assert!(parts.next_part().is_err());
        }
        parts.get_mut().arrive(second.as_bytes());
        let two = parts.next_part().unwrap().unwrap();
        assert_eq!(two.body, b"two");
        assert_eq!(two.headers.len(), 5);
        assert_eq!(two.header("X-KEEPALIVE"), Some("1"));
        assert_eq!(two.header("content-type"), Some(text));
        parts
            .get_mut()
            .arrive(format!("{empty}{empty}--\r\n").as_bytes());
        parts.get_mut().ended = true;
        let rest = read_all(&mut parts);
        let empty_part = part(
            &[("Content-Type", "image/jpeg"), ("Content-Length", "0")],
            b"",
        );
        assert_eq!(rest, [empty_part.clone(), empty_part, END]);
    }
    // The same bytes in every kind of read.
    let stream = format!("{first}{keepalive}{second}{empty}--\r\n");
    assert_eq!(parse(stream.as_bytes(), true).len(), 4);
}

/// Browser framing: each part's head goes out before its body exists; the last part is
/// filled with the current frame when the server closes.
#[test]
fn our_servers_browser_framing() {
    let stream = b"--B\r\nContent-Type: text/plain\r\n\r\none\
          \r\n--B\r\nContent-Type: text/plain\r\n\r\ntwo\
          \r\n--B\r\nContent-Type: text/plain\r\n\r\ntwo\r\n--B--\r\n";
    for strict in [false, true] {
        let got = parse(stream, strict);
        let bodies: Vec<_> = got
            .iter()
            .filter_map(|g| match g {
                Got::Part(p) => Some(p.body.as_slice()),
                _ => None,
            })
            .collect();
        assert_eq!(bodies, [&b"one"[..], b"two", b"two"]);
        assert_eq!(got.last(), Some(&END));
    }
}

#[test]
fn ffmpeg_mpjpeg_output_is_read() {
    let jpeg = b"\xFF\xD8\xFF\xE0\r\n--ffmpe\xFF\xD9";
    let mut stream = Vec::new();
    for _ in 0..2 {
        stream.extend_from_slice(b"--ffmpeg\r\nContent-type: image/jpeg\r\nContent-length: ");
        stream.extend_from_slice(format!("{}\r\n\r\n", jpeg.len()).as_bytes());
        stream.extend_from_slice(jpeg);
        stream.extend_from_slice(b"\r\n");
    }
    stream.extend_from_slice(b"--ffmpeg--\r\n");
    for strict in [false, true] {
        let parts = Parts::new(Script::new([stream.clone()], true), "ffmpeg", 1000);
        let mut parts = if strict { parts.strict() } else { parts };
        let got = read_all(&mut parts);
        let one = part(
            &[("Content-type", "image/jpeg"), ("Content-length", "15")],
            jpeg,
        );
        assert_eq!(got, [one.clone(), one, END]);
        assert_eq!(
            match &got[0] {
                Got::Part(p) => p.header("content-length"),
                _ => None,
            },
            Some("15")
        );
    }
}

#[test]
fn a_preamble_padding_and_an_epilogue_pass_when_lenient_and_are_malformed_when_strict() {
    let stream = b"This is a preamble.\r\n-- B\r\n--B \t\r\nX: 1\r\n\r\nx\r\n--B--\r\nepilogue";
    assert_eq!(parse(stream, false), [part(&[("X", "1")], b"x"), END]);
    assert_eq!(
        parse(stream, true),
        [malformed("garbage before the first boundary")]
    );
    let padded = b"--B \t\r\nX: 1\r\n\r\nx\r\n--B--\r\n";
    assert_eq!(parse(padded, false), [part(&[("X", "1")], b"x"), END]);
    assert_eq!(parse(padded, true), [malformed("garbage after a boundary")]);
    // A CRLF before the first boundary is allowed even when strict.
    assert_eq!(
        parse(b"\r\n--B\r\n\r\nx\r\n--B--", true),
        [part(&[], b"x"), END]
    );
    // The epilogue: lenient leaves it unread; strict reads the CRLF, and takes nothing else.
    for strict in [false, true] {
        let script = Script::new([b"--B\r\n\r\nx\r\n--B--\r\nepilogue".to_vec()], true);
        let mut parts = open(script, 100, strict);
        assert_eq!(read_all(&mut parts), [part(&[], b"x"), END]);
        let mut rest = Vec::new();
        parts.get_mut().read_to_end(&mut rest).unwrap();
        assert_eq!(
            rest,
            if strict {
                &b"epilogue"[..]
            } else {
                b"\r\nepilogue"
            }
        );
    }
    assert_eq!(
        parse(b"--B\r\n\r\nx\r\n--B--epilogue", true),
        [
            part(&[], b"x"),
            malformed("garbage after the final boundary")
        ]
    );
    // Garbage between parts: after a body read by its length, that length was wrong.
    let between = b"--B\r\nContent-Length: 1\r\n\r\nx\r\nnoise\r\n--B\r\n\r\ny\r\n--B--";
    assert_eq!(
        parse(between, false),
        [
            part(&[("Content-Length", "1")], b"x"),
            Got::Notice(Notice::LengthMismatch { part: 1 }),
            part(&[], b"y"),
            END
        ]
    );
    assert_eq!(
        parse(between, true),
        [
            part(&[("Content-Length", "1")], b"x"),
            malformed("garbage before a boundary")
        ]
    );
}

#[test]
fn bare_lf_line_ends_and_a_missing_crlf_pass_when_lenient_only() {
    let stream = b"--B\nContent-Length: 3\n\nabc--B\nX: y\n\ndef\n--B\r\n\n--B\n\n\n--B--\n";
    assert_eq!(
        parse(stream, false),
        [
            part(&[("Content-Length", "3")], b"abc"),
            part(&[("X", "y")], b"def"),
            // A body that starts with the boundary is empty: the blank line was its CRLF.
            part(&[], b""),
            part(&[], b""),
            END
        ]
    );
    assert_eq!(
        parse(stream, true),
        [malformed("a boundary line ends in a bare LF")]
    );
    let no_crlf = b"--B\r\nContent-Length: 3\r\n\r\nabc--B\r\n\r\nd\r\n--B--\r\n";
    assert_eq!(
        parse(no_crlf, false),
        [
            part(&[("Content-Length", "3")], b"abc"),
            part(&[], b"d"),
            END
        ]
    );
    assert_eq!(
        parse(no_crlf, true),
        [
            part(&[("Content-Length", "3")], b"abc"),
            malformed("a part with Content-Length is not followed by CRLF")
        ]
    );
    assert_eq!(
        parse(b"--B\r\nX: 1\n\r\n", true),
        [malformed("a header line ends in a bare LF")]
    );
}

#[test]
fn the_final_boundary_ends_the_stream_cleanly_and_the_end_of_the_stream_does_not() {
    for strict in [false, true] {
        assert_eq!(parse(b"--B--\r\n", strict), [END]);
        assert_eq!(parse(b"--B--", strict), [END]);
        assert_eq!(parse(b"", strict), [Got::End { clean: false }]);
        assert_eq!(
            parse(b"--B\r\nContent-Length: 1\r\n\r\nx", strict),
            [
                part(&[("Content-Length", "1")], b"x"),
                Got::End { clean: false }
            ]
        );
        assert_eq!(
            parse(b"--B\r\nContent-Length: 1\r\n\r\nx\r\n--B--\r\n", strict),
            [part(&[("Content-Length", "1")], b"x"), END]
        );
    }
}

/// Cut anywhere, a stream gives only whole parts: the first few of the uncut stream.
#[test]
fn a_part_torn_by_the_end_of_the_stream_is_never_returned() {
    let stream = b"--B\r\nContent-Type: a/b\r\nContent-Length: 5\r\n\r\nhello\
          \r\n--B\r\nX-Keepalive: 1\r\nContent-Type: a/b\r\n\r\nworld\
          \r\n--B\r\nContent-Length: 5\r\n\r\n\r\n--A\r\n--B--\r\n";
    for strict in [false, true] {
        let whole = parse(stream, strict);
        assert_eq!(whole.len(), 4);
        for cut in 0..stream.len() {
            let got = parse(&stream[..cut], strict);
            let n = got.iter().take_while(|g| matches!(g, Got::Part(_))).count();
            assert_eq!(got[..n], whole[..n], "cut at {cut}");
            match &got[n..] {
                [Got::End { clean: false }] | [Got::Torn, Got::End { clean: false }] => {}
                // `--B--` is whole: the CRLF after it is optional.
                [END] if cut >= stream.len() - 2 => {}
                [Got::Malformed(why)] if strict && cut == stream.len() - 1 => {
                    assert_eq!(why, "the stream ended inside the final boundary's line")
                }
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }
    let mut parts = open(
        Script::new([b"--B\r\nContent-Length: 9\r\n\r\nabc".to_vec()], true),
        100,
        false,
    );
    match parts.next_part() {
        Err(Error::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof),
        other => panic!("{other:?}"),
    }
    assert!(matches!(parts.next_part(), Ok(None)));
    assert!(!parts.ended_cleanly());
}

#[test]
fn a_part_over_max_part_is_skipped_and_the_next_still_read() {
    let stream = b"--B\r\nContent-Length: 5\r\n\r\n12345\
          \r\n--B\r\n\r\nabcdefgh\
          \r\n--B\r\nContent-Length: 4\r\n\r\n1234\
          \r\n--B\r\n\r\nabcd\
          \r\n--B\r\n\r\nok\r\n--B--\r\n";
    for strict in [false, true] {
        assert_eq!(
            parse_with(stream, 4, strict),
            [
                Got::TooLarge,
                Got::TooLarge,
                part(&[("Content-Length", "4")], b"1234"),
                part(&[], b"abcd"),
                part(&[], b"ok"),
                END
            ]
        );
    }
    // Stored, a body without Content-Length never holds more than the bound.
    let limit = 100_000;
    let mut at_limit = b"--B\r\n\r\n".to_vec();
    at_limit.resize(at_limit.len() + limit, b'y');
    let script = Script::new(at_limit.chunks(999).map(<[u8]>::to_vec), false);
    let mut parts = open(script, limit as u64, true);
    assert!(parts.next_part().is_err());
    assert_eq!(parts.buf.len(), limit);
    assert!(
        parts.buf.capacity() <= limit + 6,
        "{}",
        parts.buf.capacity()
    );
    parts.get_mut().arrive(b"\r\n--B--");
    assert_eq!(parts.next_part().unwrap().unwrap().body.len(), limit);
    // Skipped bodies are not kept: a long one passes through a bounded window.
    let mut long = b"--B\r\n\r\n".to_vec();
    long.resize(long.len() + 300_000, b'x');
    long.extend_from_slice(b"\r\n--B\r\n\r\nok\r\n--B--");
    let mut parts = open(
        Script::new(long.chunks(1000).map(<[u8]>::to_vec), true),
        10,
        false,
    );
    assert!(matches!(
        parts.next_part(),
        Err(Error::TooLarge { limit: 10 })
    ));
    assert!(parts.buf.capacity() <= 2 * WINDOW);
    assert_eq!(parts.next_part().unwrap().unwrap().body, b"ok");
}

#[test]
fn a_header_block_over_8_kib_is_malformed() {
    // From the end of `--B` to the blank line: CRLF, `X: `, the value, CRLF, CRLF.
    let block = |value_len: usize| {
        let mut s = format!("--B\r\nX: {}\r\n\r\nbody\r\n--B--", "v".repeat(value_len));
        s.truncate(s.len());
        s
    };
    for strict in [false, true] {
        let fits = parse(block(MAX_HEAD - 9).as_bytes(), strict);
        assert!(
            matches!(&fits[0], Got::Part(p) if p.body == b"body"),
            "{fits:?}"
        );
        assert_eq!(
            parse(block(MAX_HEAD - 8).as_bytes(), strict),
            [malformed("a part's header block is over 8192 bytes")]
        );
        // Garbage with no line end after a boundary is bounded too.
        let garbage = format!("--B{}", " ".repeat(20_000));
        assert_eq!(
            parse(garbage.as_bytes(), strict),
            [malformed("garbage after a boundary")]
        );
        // So are keep-alives without end.
        let keepalives = format!("--B{}", "\r\nX-Keepalive: 1".repeat(600));
        assert_eq!(
            parse(keepalives.as_bytes(), strict),
            [malformed("a part's header block is over 8192 bytes")]
        );
    }
}

#[test]
fn a_huge_content_length_reserves_nothing_before_the_bytes_arrive() {
    let huge = b"--B\r\nContent-Length: 1000000000000000000\r\n\r\nabc";
    for strict in [false, true] {
        // Over max_part: skipped to the next boundary, nothing stored.
        let mut stream = huge.to_vec();
        stream.extend_from_slice(b"\r\n--B\r\n\r\nok\r\n--B--\r\n");
        assert_eq!(
            parse_with(&stream, 1 << 20, strict),
            [Got::TooLarge, part(&[], b"ok"), END]
        );
        let overflow = b"--B\r\nContent-Length: 99999999999999999999999\r\n\r\nabc\r\n--B--";
        assert_eq!(parse(overflow, strict), [Got::TooLarge, END]);
        // With no limit at all, what is reserved is still bounded; it grows as bytes come.
        let mut parts = open(Script::new([huge.to_vec()], false), u64::MAX, strict);
        assert!(parts.next_part().is_err());
        assert_eq!(parts.buf, b"abc");
        assert!(parts.buf.capacity() <= MAX_RESERVE);
        // Within max_part: reserved to the Content-Length, never more than max_part + 1.
        let script = Script::new([b"--B\r\nContent-Length: 1000\r\n\r\nabc".to_vec()], false);
        let mut parts = open(script, 1000, strict);
        assert!(parts.next_part().is_err());
        assert_eq!(parts.buf.capacity(), 1000);
        parts.get_mut().arrive(&[b'x'; 997]);
        let body = parts.next_part().unwrap().unwrap().body;
        assert_eq!((body.len(), body.capacity()), (1000, 1000));
    }
}

/// A body larger than MAX_RESERVE arrives whole, its buffer growing as it comes.
#[test]
fn a_body_over_the_reservation_grows_to_its_length() {
    let len = MAX_RESERVE + 12345;
    let mut stream = format!("--B\r\nContent-Length: {len}\r\n\r\n").into_bytes();
    stream.resize(stream.len() + len, b'j');
    let mut parts = open(
        Script::new(stream.chunks(1 << 20).map(<[u8]>::to_vec), true),
        u64::MAX,
        true,
    );
    let body = parts.next_part().unwrap().unwrap().body;
    assert_eq!(body.len(), len);
    assert!(body.capacity() <= len);
}

#[test]
fn an_invalid_or_twice_given_content_length_is_ignored_when_lenient_or_malformed() {
    for bad in ["12x", "+3", "-3", "", "0x3"] {
        let stream = format!("--B\r\nContent-Length: {bad}\r\n\r\nabc\r\n--B--");
        assert_eq!(
            parse(stream.as_bytes(), false),
            [part(&[("Content-Length", bad)], b"abc"), END],
            "{bad}"
        );
        assert_eq!(
            parse(stream.as_bytes(), true),
            [malformed("an invalid Content-Length")]
        );
    }
    let twice = b"--B\r\nContent-Length: 3\r\ncontent-length: 4\r\n\r\nabc\r\n--B--";
    for strict in [false, true] {
        assert_eq!(
            parse(twice, strict),
            [malformed("Content-Length given twice, differently")]
        );
    }
    let same = b"--B\r\nContent-Length: 3\r\ncontent-length:3\r\n\r\nabc\r\n--B--";
    assert!(matches!(&parse(same, true)[0], Got::Part(p) if p.body == b"abc"));
}

#[test]
fn header_lines_without_a_colon_or_folded_are_lenient_only() {
    let stream = b"--B\r\nnonsense\r\nX-A:  1 \r\n\t more\r\nX-B:\r\n\r\nbody\r\n--B--";
    assert_eq!(
        parse(stream, false),
        [part(&[("X-A", "1 more"), ("X-B", "")], b"body"), END]
    );
    assert_eq!(
        parse(stream, true),
        [malformed("a header line without a colon")]
    );
    assert_eq!(
        parse(b"--B\r\nX-A: 1\r\n more\r\n\r\n", true),
        [malformed("a folded header line")]
    );
    assert_eq!(
        parse(b"--B\r\nX A: 1\r\n\r\n", true),
        [malformed("a header line without a valid name")]
    );
    // Not UTF-8: kept, replaced.
    let got = parse(b"--B\r\nX-A: \xFF\r\n\r\nb\r\n--B--", true);
    assert_eq!(got[0], part(&[("X-A", "\u{FFFD}")], b"b"));
}

#[test]
fn a_header_is_found_in_any_case_first_match_trimmed() {
    let p = Part {
        headers: vec![
            ("content-TYPE".into(), " a/b\t".into()),
            ("Content-Type".into(), "c/d".into()),
        ],
        body: Vec::new(),
    };
    assert_eq!(p.header("Content-Type"), Some("a/b"));
    assert_eq!(p.header("content-length"), None);
}

/// Each byte is looked at about once, however the bytes arrive: 256 KiB a byte at a time,
/// full of near-delimiters, takes a fraction of a second (rescans would take many minutes).
#[test]
fn the_delimiter_search_is_linear_however_the_bytes_arrive() {
    let mut stream = b"--B\r\n\r\n".to_vec();
    while stream.len() < 256 << 10 {
        stream.extend_from_slice(b"\r\n--A\r\n-");
    }
    stream.extend_from_slice(b"\r\n--B--");
    let body_len = stream.len() - 7 - 7;
    for strict in [false, true] {
        let script = Script::new(stream.iter().map(|&b| vec![b]), true);
        let t = std::time::Instant::now();
        let got = read_all(&mut open(script, 1 << 20, strict));
        assert!(matches!(&got[0], Got::Part(p) if p.body.len() == body_len));
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            t.elapsed()
        );
    }
    // A preamble too, and it is bounded (by max_part, to within a window) when lenient.
    let mut preamble = vec![b'-'; 100_000];
    preamble.extend_from_slice(b"\r\n--B\r\n\r\nx\r\n--B--");
    let got = read_all(&mut open(
        Script::new(preamble.chunks(1).map(<[u8]>::to_vec), true),
        1 << 20,
        false,
    ));
    assert_eq!(got, [part(&[], b"x"), END]);
    let got = read_all(&mut open(
        Script::new([preamble.clone()], true),
        1000,
        false,
    ));
    assert!(
        matches!(&got[..], [Got::Malformed(why)] if why.starts_with("no boundary in ")),
        "{got:?}"
    );
}

#[test]
fn a_read_error_other_than_a_timeout_is_returned_and_the_parse_goes_on_after_it() {
    let mut script = Script::new([b"--B\r\n\r\nab".to_vec(), b"c\r\n--B--".to_vec()], true);
    script.stall = Some(io::ErrorKind::ConnectionReset);
    let mut parts = open(script, 100, true);
    let mut errors = 0;
    let part = loop {
        match parts.next_part() {
            Ok(part) => break part,
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::ConnectionReset => errors += 1,
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!((part.unwrap().body, errors), (b"abc".to_vec(), 2));
}

#[test]
fn errors_say_what_went_wrong_in_one_line() {
    assert_eq!(
        Error::TooLarge { limit: 10 }.to_string(),
        "a part is over 10 bytes"
    );
    assert_eq!(
        Error::Malformed("garbage before a boundary".into()).to_string(),
        "not a valid multipart stream: garbage before a boundary"
    );
    let torn = open(
        Script::new([b"--B\r\nContent-Ty".to_vec()], true),
        10,
        false,
    )
    .next_part();
    match torn {
        Err(e @ Error::Io(_)) => {
            assert_eq!(e.to_string(), "the stream ended inside a part");
            assert!(std::error::Error::source(&e).is_some());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_stream_that_ends_right_after_a_boundary_line_ends_between_parts() {
    // How ffmpeg's mpjpeg muxer ends every stream.
    let stream =
        b"--ffmpeg\r\nContent-type: image/jpeg\r\nContent-length: 3\r\n\r\nabc\r\n--ffmpeg\r\n";
    for strict in [false, true] {
        let mut parts = Parts::new(&stream[..], "ffmpeg", 100);
        if strict {
            parts = parts.strict();
        }
        assert_eq!(parts.next_part().unwrap().unwrap().body, b"abc");
        assert!(matches!(parts.next_part(), Ok(None)), "strict: {strict}");
        assert!(!parts.ended_cleanly());
    }
}

#[test]
fn boundary_from_content_type_takes_quoted_or_bare_in_any_case() {
    let b = |ct: &str| boundary_from_content_type(ct);
    assert_eq!(
        b("multipart/x-mixed-replace; boundary=ffmpeg").as_deref(),
        Some("ffmpeg")
    );
    assert_eq!(
        b("multipart/x-mixed-replace;boundary=\"x y\"").as_deref(),
        Some("x y")
    );
    assert_eq!(
        b("Multipart/X-Mixed-Replace; charset=utf-8; BOUNDARY=abc ; x=y").as_deref(),
        Some("abc")
    );
    assert_eq!(
        b("multipart/mixed; name=\"a;boundary=no\"; flag; boundary=\"a\\\"b\"").as_deref(),
        Some("a\"b")
    );
    assert_eq!(
        b(&format!("multipart/mixed; boundary={}", "7".repeat(70))).map(|s| s.len()),
        Some(70)
    );
    for none in [
        "multipart/x-mixed-replace",
        "multipart/x-mixed-replace; charset=utf-8",
        "image/jpeg; boundary=abc",
        "multipart/mixed; boundary=",
        "multipart/mixed; boundary=\"\"",
        "multipart/mixed; boundary=\"unterminated",
        "multipart/mixed; boundary=\"ends in a space \"",
        "multipart/mixed; boundary=a\u{1}b",
        "multipart/mixed; boundary=caf\u{e9}",
        &format!("multipart/mixed; boundary={}", "7".repeat(71)),
    ] {
        assert_eq!(b(none), None, "{none}");
    }
}

#[test]
fn boundary_from_first_line_takes_a_boundary_line_and_nothing_else() {
    let b = |bytes: &[u8]| boundary_from_first_line(bytes);
    assert_eq!(b(b"--B\r\nContent-Type: image/jpeg").as_deref(), Some("B"));
    assert_eq!(
        b(b"--ffmpeg\nContent-type: image/jpeg").as_deref(),
        Some("ffmpeg")
    );
    assert_eq!(
        b(b"--my-boundary_1.2  \r\n").as_deref(),
        Some("my-boundary_1.2")
    );
    for none in [
        &b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00"[..],
        b"\x89PNG\r\n\x1a\n",
        b"--B",
        b"--\r\n",
        b"-- a comment\n",
        b"--a b\r\n",
        b"hello\r\n--B\r\n",
        b"--caf\xC3\xA9\r\n",
        b"",
    ] {
        assert_eq!(b(none), None, "{none:?}");
    }
    assert_eq!(b(format!("--{}\r\n", "x".repeat(71)).as_bytes()), None);
    let longest = format!("--{}\r\n", "x".repeat(70));
    assert_eq!(b(longest.as_bytes()).map(|s| s.len()), Some(70));
}

fn length_mismatch(part: u64) -> Got {
    Got::Notice(Notice::LengthMismatch { part })
}

fn other_boundary(given: &str, found: &str, at_start: bool) -> Got {
    Got::Notice(Notice::OtherBoundary {
        given: given.into(),
        found: found.into(),
        at_start,
    })
}

#[test]
fn a_content_length_longer_than_its_body_never_takes_the_delimiter_in() {
    let text = [("Content-Type", "text/plain")];
    // 100 bytes too long: the body would hold the next part's boundary and head.
    for extra in [100, 1, 2, 3, 5, 7] {
        let len = (5 + extra).to_string();
        let stream = format!(
            "--B\r\nContent-Length: {len}\r\n\r\nhello\r\n--B\r\nContent-Type: text/plain\r\n\r\n\
             world, and more than a hundred bytes after it: .................................\
             ...............................\r\n--B\r\nContent-Length: 3\r\n\r\nabc\r\n--B--"
        );
        let got = parse(stream.as_bytes(), false);
        let world = &stream
            [stream.find("world").unwrap()..stream.find("\r\n--B\r\nContent-Length: 3").unwrap()];
        // Said with the part it is about, before it.
        let mut want = vec![
            length_mismatch(1),
            part(&[("Content-Length", &len)], b"hello"),
        ];
        // Over by a CR or a CRLF, the boundary follows the body at once: only the line end is in.
        if extra <= 2 {
            want = vec![part(
                &[("Content-Length", &len)],
                &b"hello\r\n"[..5 + extra],
            )];
        }
        want.extend([
            part(&text, world.as_bytes()),
            part(&[("Content-Length", "3")], b"abc"),
            END,
        ]);
        assert_eq!(got, want, "{extra} bytes too long");
    }
    // Strict reads a body by its length, whatever it holds.
    let stream = b"--B\r\nContent-Length: 5\r\n\r\n\r\n--B\r\n--B--";
    assert_eq!(
        parse(stream, true),
        [part(&[("Content-Length", "5")], b"\r\n--B"), END]
    );
}

#[test]
fn after_a_content_length_too_long_the_next_part_is_still_read_by_its_length() {
    // The part after it comes as soon as its body is in, not when a boundary follows it: a
    // live stream with one wrong length is not left a frame behind from then on.
    let stream =
        b"--B\r\nContent-Length: 105\r\n\r\nhello\r\n--B\r\nContent-Length: 5\r\n\r\nworld";
    let mut parts = open(Script::new([stream.to_vec()], false), 1000, false);
    let body = |parts: &mut Parts<Script>| parts.next_part().unwrap().map(|part| part.body);
    assert_eq!(body(&mut parts).as_deref(), Some(&b"hello"[..]));
    assert_eq!(body(&mut parts).as_deref(), Some(&b"world"[..]));
    assert_eq!(parts.take_notices(), [Notice::LengthMismatch { part: 1 }]);
}

#[test]
fn a_content_length_shorter_than_its_body_is_said_and_parts_found_by_boundary() {
    let stream =
        b"--B\r\nContent-Length: 3\r\n\r\nhello\r\n--B\r\nContent-Length: 9\r\n\r\nworld\r\n--B--";
    assert_eq!(
        parse(stream, false),
        [
            part(&[("Content-Length", "3")], b"hel"),
            length_mismatch(1),
            // Found by its boundary: its Content-Length is no longer trusted.
            part(&[("Content-Length", "9")], b"world"),
            END
        ]
    );
}

#[test]
fn a_body_ending_like_a_delimiter_is_read_by_its_length() {
    // LF and a dash end this body, as they may: the part waits for one byte more to tell.
    let stream =
        b"--B\r\nContent-Length: 4\r\n\r\nab\n-\r\n--B\r\nContent-Length: 2\r\n\r\n\r\n\r\n--B--";
    assert_eq!(
        parse(stream, false),
        [
            part(&[("Content-Length", "4")], b"ab\n-"),
            part(&[("Content-Length", "2")], b"\r\n"),
            END
        ]
    );
    let mut parts = open(
        Script::new([b"--B\r\nContent-Length: 4\r\n\r\nab\n-".to_vec()], false),
        100,
        false,
    );
    assert!(
        matches!(parts.next_part(), Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock)
    );
    parts.get_mut().arrive(b"\r\n--B");
    assert_eq!(
        parts.next_part().unwrap(),
        Some(Part {
            headers: vec![("Content-Length".into(), "4".into())],
            body: b"ab\n-".to_vec()
        })
    );
}

#[test]
fn a_body_delimited_by_another_boundary_than_its_header_names_is_followed_at_once() {
    let stream = b"--X\r\nContent-Type: text/plain\r\n\r\nhello, a part of more than a few bytes, \
        as the first look at the stream takes a couple of hundred of them before it tells\r\n\
        --X\r\nContent-Length: 5\r\n\r\nworld\r\n--X--";
    let hello = &stream[33..stream.len() - 40];
    assert_eq!(
        parse(stream, false),
        [
            other_boundary("B", "X", true),
            part(&[("Content-Type", "text/plain")], hello),
            part(&[("Content-Length", "5")], b"world"),
            END
        ]
    );
    // A short stream is looked at when it ends.
    assert_eq!(
        parse(b"--X\r\n\r\nx\r\n--X--", false),
        [other_boundary("B", "X", true), part(&[], b"x"), END]
    );
}

#[test]
fn a_boundary_that_changes_after_a_sized_part_is_followed_from_its_first_line() {
    let stream = b"--B\r\nContent-Length: 5\r\n\r\nhello\r\n--C\r\nContent-Length: 5\r\n\r\nworld\
        \r\n--C\r\nContent-Length: 3\r\n\r\nabc\r\n--C--";
    let mut want = vec![part(&[("Content-Length", "5")], b"hello")];
    want.extend([
        other_boundary("B", "C", false),
        part(&[("Content-Length", "5")], b"world"),
        part(&[("Content-Length", "3")], b"abc"),
        END,
    ]);
    // Said with the first part after the change, before it; the length is not blamed.
    assert_eq!(parse(stream, false), want);
}

#[test]
fn a_boundary_that_changes_between_delimited_parts_is_found_within_a_window() {
    let mut stream = b"--B\r\nContent-Type: a/b\r\n\r\nfirst".to_vec();
    let filler = vec![b'.'; 10_000];
    for _ in 0..20 {
        stream.extend_from_slice(b"\r\n--C\r\nContent-Type: a/b\r\n\r\n");
        stream.extend_from_slice(&filler);
    }
    stream.extend_from_slice(b"\r\n--C--");
    let a_b = [("Content-Type", "a/b")];
    // Read as it arrives: the change is said before 64 KiB past it have come.
    let mut script = Script::new([], false);
    let mut parts = open(Script::default(), 1 << 20, false);
    std::mem::swap(parts.get_mut(), &mut script);
    let mut said_at = None;
    let mut got = Vec::new();
    for (i, chunk) in stream.chunks(1000).enumerate() {
        parts.get_mut().arrive(chunk);
        loop {
            match parts.next_part() {
                Ok(Some(p)) => got.push(p.body.len()),
                Ok(None) => break,
                Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                other => panic!("{other:?} after {got:?}, {} bytes", i * 1000),
            }
        }
        if !parts.take_notices().is_empty() {
            said_at.get_or_insert((i + 1) * 1000);
        }
    }
    let said_at = said_at.expect("the change was said");
    assert!(said_at <= 64 * 1024 + 2000, "said after {said_at} bytes");
    // The first part ends where the other boundary begins; none is lost.
    assert_eq!(got[0], 5);
    assert_eq!(got.len(), 21, "{got:?}");
    assert!(got[1..].iter().all(|&n| n == 10_000));
    // And read whole, the same parts and the notice.
    let whole = parse(&stream, false);
    assert_eq!(whole[0], other_boundary("B", "C", false));
    assert_eq!(whole[1], part(&a_b, b"first"));
    assert_eq!(whole.len(), 1 + 21 + 1);
}

#[test]
fn a_part_is_named_by_its_file_name_without_folders() {
    let named = |disposition: &str| {
        Part {
            headers: vec![("content-disposition".into(), disposition.into())],
            body: Vec::new(),
        }
        .file_name()
    };
    assert_eq!(
        named("inline; filename=\"logs/notes.txt\""),
        Some("notes.txt".into())
    );
    assert_eq!(
        named("attachment; FileName=a.jpg; size=3"),
        Some("a.jpg".into())
    );
    assert_eq!(
        named("inline; filename=\"..\\\\x\\\\b.png\""),
        Some("b.png".into())
    );
    assert_eq!(named("inline; filename=\"a\u{7}b\""), None);
    assert_eq!(named("inline; filename=\"dir/\""), None);
    assert_eq!(named("inline"), None);
}
