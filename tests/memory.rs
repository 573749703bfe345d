//! What an idle stream costs in memory, on the real binary: the server's resident memory grown
//! by N idle `/stream` clients, over N. Memory, not timing: an idle connection holds the pages
//! its thread's stack has touched and what it keeps on the heap, however fast the machine.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

use common::{DEADLINE, TestServer, fixture, read_some};

/// Idle streams measured, at most: the server holds a descriptor for each, and so does this
/// test, for both kinds of client at once.
const STREAMS: usize = 500;
/// Streams opened first and not counted: what the first ones cost once (the stream's response
/// head, the allocator's arenas) is no cost per connection.
const WARM_UP: usize = 20;
/// The most an idle stream may cost, in KiB. 11 for a release build, which used 25 when each
/// connection's thread touched 20 KiB of stack. A debug build's frames are larger: it uses
/// 18-19, and 48-50 with that fault; 22 still catches one page of stack more per thread.
const BOUND_KIB: f64 = if cfg!(debug_assertions) { 22.0 } else { 11.0 };

/// An idle stream reader, as ffmpeg asks.
const READER: &str = "GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: Lavf/61.7.100\r\n\
    Accept: */*\r\nRange: bytes=0-\r\nConnection: close\r\nIcy-MetaData: 1\r\n\r\n";

/// An idle stream in a browser, as Chromium asks for an `<img>`: a longer head, kept by the
/// connection for as long as the stream lasts.
const BROWSER: &str = "GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\
    sec-ch-ua-platform: \"Linux\"\r\n\
    User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
    Chrome/120.0.0.0 Safari/537.36\r\n\
    sec-ch-ua: \"Chromium\";v=\"120\", \"Not?A_Brand\";v=\"8\"\r\nsec-ch-ua-mobile: ?0\r\n\
    Accept: image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8\r\n\
    Sec-Fetch-Site: same-origin\r\nSec-Fetch-Mode: no-cors\r\nSec-Fetch-Dest: image\r\n\
    Referer: http://127.0.0.1/\r\nAccept-Encoding: gzip, deflate, br\r\n\
    Accept-Language: en-US,en;q=0.9\r\n\r\n";

#[test]
fn an_idle_stream_reader_costs_at_most_the_bound() {
    assert_idle_streams_within_bound("reader", READER);
}

#[test]
fn an_idle_browser_stream_costs_at_most_the_bound() {
    assert_idle_streams_within_bound("browser", BROWSER);
}

fn assert_idle_streams_within_bound(kind: &str, request: &str) {
    let n = streams_within_file_limit();
    let server = TestServer::serving("a.jpg", &fixture("noise1.jpg"), &[]);
    let pid = server.child.id();
    let mut streams = open_streams(&server, request, WARM_UP);
    let before = settled_rss_kib(pid);
    streams.extend(open_streams(&server, request, n));
    let after = settled_rss_kib(pid);
    let per_stream = after.saturating_sub(before) as f64 / n as f64;
    assert!(
        per_stream <= BOUND_KIB,
        "{per_stream:.2} KiB per idle {kind} stream, above {BOUND_KIB} KiB: the server's \
         VmRSS went from {before} to {after} kB for {n} streams"
    );
    drop(streams);
}

/// [`STREAMS`], or fewer if even the hard limit on open files is too low for them: this test
/// holds both kinds of stream at once, and the server, which inherits the limit, one kind.
fn streams_within_file_limit() -> usize {
    let limit = getrlimit(Resource::Nofile);
    if let Some(hard) = limit.maximum {
        // Raising the soft limit is allowed to anyone, and is idempotent across the tests.
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(hard),
                maximum: Some(hard),
            },
        );
    }
    let soft = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    let fits = (soft.saturating_sub(64) / 2) as usize;
    let n = STREAMS.min(fits.saturating_sub(WARM_UP));
    assert!(
        n >= 100,
        "too few open files allowed ({soft}) to measure idle streams: raise it, e.g. ulimit -n 2048"
    );
    n
}

/// Opens `n` streams with `request`, each once its first bytes have come.
fn open_streams(server: &TestServer, request: &str, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut stream = server.connect();
            stream.write_all(request.as_bytes()).unwrap();
            let got = read_some(&mut stream, &mut [0u8; 1]).unwrap();
            assert_eq!(got, 1, "a stream ended before its first byte");
            stream
        })
        .collect()
}

/// The server's VmRSS in KiB once it has stopped changing (the last streams may still be
/// writing their first part, or be on their way to waiting for the next).
fn settled_rss_kib(pid: u32) -> u64 {
    let start = Instant::now();
    let (mut last, mut same) = (rss_kib(pid), 0);
    while same < 5 {
        assert!(
            start.elapsed() < DEADLINE,
            "the server's VmRSS never settled"
        );
        std::thread::sleep(Duration::from_millis(20));
        let now = rss_kib(pid);
        same = if now == last { same + 1 } else { 0 };
        last = now;
    }
    last
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}
