//! /stream on the real binary: every version, once, complete, to every client, at once.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use common::{DEADLINE, TestServer, fixture};

/// A stream reader that takes parts of every type (ffmpeg's `Lavf/` is sent JPEG only).
const READER: &str = "curl/8.0.1";
const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0";

#[test]
fn parts_are_the_files_bytes_for_each_version_saved_by_rename_or_in_place() {
    let server = TestServer::serving("now.txt", b"version 1\n", &["--poll", "20"]);
    let dir = server.dir();
    for (ua, query) in [
        (READER, ""),
        (BROWSER, ""),
        (READER, "?framing=browser"),
        (BROWSER, "?framing=reader"),
    ] {
        let mut stream = server.stream(query, ua);
        assert!(
            stream.head.starts_with("HTTP/1.1 200 OK\r\n"),
            "{}",
            stream.head
        );
        assert!(
            stream
                .head
                .contains("Content-Type: multipart/x-mixed-replace; boundary=")
        );
        assert!(stream.head.contains("X-Accel-Buffering: no"));
        let first = stream.next_part().unwrap();
        assert_eq!(
            first.header("content-type").as_deref(),
            Some("text/plain; charset=utf-8")
        );
        let current = first.body;
        // Each connection sees the version current when it connects, then each new one.
        let n: u32 = String::from_utf8_lossy(&current)
            .trim()
            .trim_start_matches("version ")
            .parse()
            .unwrap();
        dir.replace("now.txt", format!("version {}\n", n + 1).as_bytes());
        assert_eq!(
            stream.next_part().unwrap().body,
            format!("version {}\n", n + 1).as_bytes()
        );
        dir.rewrite("now.txt", format!("version {}\n", n + 2).as_bytes());
        assert_eq!(
            stream.next_part().unwrap().body,
            format!("version {}\n", n + 2).as_bytes()
        );
    }
}

#[test]
fn reader_parts_carry_content_length_and_browser_parts_are_opened_ahead() {
    let server = TestServer::serving("cam.jpg", &fixture("red.jpg"), &["--poll", "20"]);

    let mut reader = server.stream("", READER);
    let part = reader.next_part().unwrap();
    assert_eq!(
        part.header("content-length"),
        Some(fixture("red.jpg").len().to_string())
    );
    assert_eq!(part.header("content-type").as_deref(), Some("image/jpeg"));

    // A browser's first part must be followed at once by the next boundary and header block.
    let mut browser = server.stream("", BROWSER);
    let part = browser.next_part().unwrap();
    assert_eq!(part.body, fixture("red.jpg"));
    assert_eq!(part.header("content-length"), None);
}

#[test]
fn two_changes_100_ms_apart_are_both_delivered() {
    let server = TestServer::serving("a.txt", b"0", &["--poll", "20"]);
    let mut stream = server.stream("", READER);
    assert_eq!(stream.next_part().unwrap().body, b"0");
    server.dir().rewrite("a.txt", b"1");
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(100) {
        thread::sleep(Duration::from_millis(5));
    }
    server.dir().rewrite("a.txt", b"2");
    assert_eq!(stream.next_part().unwrap().body, b"1");
    assert_eq!(stream.next_part().unwrap().body, b"2");
}

#[test]
fn a_jpeg_rewritten_in_place_200_times_never_reaches_a_client_torn() {
    let versions = [
        fixture("noise1.jpg"),
        fixture("noise2.jpg"),
        fixture("noise3.jpg"),
    ];
    let server = TestServer::serving("cam.jpg", &versions[0], &["--poll", "1"]);
    let mut stream = server.stream("", READER);
    let path = server.dir().path("cam.jpg");
    // Every part the client reads, so that the writer can hold a version until it is sent.
    let (sent, received) = mpsc::channel::<Vec<u8>>();
    let last_coming = Arc::new(AtomicBool::new(false));
    let writer = {
        let (versions, last_coming) = (versions.clone(), Arc::clone(&last_coming));
        thread::spawn(move || {
            for i in 0..200 {
                // Before the last version is written: the client stops at the next part that
                // is the last version, so it cannot be left waiting for one more.
                last_coming.store(i == 199, Ordering::SeqCst);
                // Truncate, then write in small pieces, so the poller often finds it half-written.
                let bytes = &versions[(i + 1) % 3];
                let mut file = std::fs::File::create(&path).unwrap();
                for chunk in bytes.chunks(4096) {
                    file.write_all(chunk).unwrap();
                    thread::sleep(Duration::from_micros(200));
                }
                // Every tenth version stays until the client has it: however loaded the machine,
                // at least 20 whole versions are sent among the torn ones never published.
                if i % 10 == 9 {
                    let until = Instant::now() + DEADLINE;
                    loop {
                        let left = until.saturating_duration_since(Instant::now());
                        match received.recv_timeout(left) {
                            Ok(part) if part == *bytes => break,
                            Ok(_) => {}
                            Err(_) => panic!("version {i} never reached the client"),
                        }
                    }
                }
            }
        })
    };
    let mut parts = 0;
    loop {
        let part = stream.next_part().unwrap();
        assert!(
            versions.contains(&part.body),
            "part {parts} of {} bytes is not a version written",
            part.body.len()
        );
        parts += 1;
        let last = last_coming.load(Ordering::SeqCst) && part.body == versions[200 % 3];
        let _ = sent.send(part.body);
        if last {
            break;
        }
    }
    writer.join().unwrap();
    assert!(parts >= 20, "only {parts} parts received");
}

#[test]
fn a_hundred_clients_connecting_at_once_all_get_the_current_frame_within_2_s() {
    let server = TestServer::serving("cam.jpg", &fixture("red.jpg"), &[]);
    let start = Instant::now();
    let clients: Vec<_> = (0..100)
        .map(|_| {
            let addr = server.addr.clone();
            thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(DEADLINE)).unwrap();
                s.write_all(b"GET /stream HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    .unwrap();
                let part = common::PartReader::new(s).next_part().unwrap();
                (part.body, start.elapsed())
            })
        })
        .collect();
    for client in clients {
        let (body, took) = client.join().unwrap();
        assert_eq!(body, fixture("red.jpg"));
        assert!(took < Duration::from_secs(2), "a client waited {took:?}");
    }
}

#[test]
fn a_file_missing_for_a_moment_keeps_the_last_frame_and_resumes() {
    let server = TestServer::serving("a.txt", b"before", &["--poll", "20"]);
    let mut stream = server.stream("", READER);
    assert_eq!(stream.next_part().unwrap().body, b"before");
    std::fs::remove_file(server.dir().path("a.txt")).unwrap();
    server.wait_stderr("keeping the last frame");
    assert_eq!(server.get("/snapshot", "").body, b"before");
    server.dir().rewrite("a.txt", b"after");
    assert_eq!(stream.next_part().unwrap().body, b"after");
    server.wait_stderr("is back");
}

#[test]
fn a_client_that_stops_reading_neither_delays_others_nor_stays() {
    let size = 4 << 20;
    let server = TestServer::serving(
        "big.bin",
        &vec![b'a'; size],
        &["--poll", "20", "--write-timeout", "3"],
    );
    let idle_threads = server.threads();
    // Connects, sends its request, never reads: once the socket buffers are full, the
    // server's writes to it block.
    let mut stalled = server.connect();
    stalled
        .write_all(b"GET /stream HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    server.wait_threads(
        "rose for the stalled client",
        |n| n > idle_threads,
        DEADLINE,
    );

    let mut healthy = server.stream("", READER);
    healthy.next_part().unwrap();
    // New versions until the stalled client is dropped (a few MB fill the loopback buffers).
    let start = Instant::now();
    for i in 1u64.. {
        let version = vec![b'a' + (i % 26) as u8; size];
        server.dir().replace("big.bin", &version);
        let t = Instant::now();
        assert_eq!(healthy.next_part().unwrap().body, version);
        // Waiting on the stalled client would take the whole --write-timeout.
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "healthy client waited {:?}",
            t.elapsed()
        );
        if server.threads() == idle_threads + 1 {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the stalled client was never dropped"
        );
    }
    drop(stalled);
}

#[test]
fn a_vanished_clients_thread_ends_within_one_keepalive() {
    let server = TestServer::serving("a.txt", b"x", &["--keepalive", "2"]);
    let idle_threads = server.threads();
    let mut stream = server.stream("", READER);
    stream.next_part().unwrap();
    assert_eq!(server.threads(), idle_threads + 1);
    drop(stream);
    let t = Instant::now();
    server.wait_threads(
        "fell back after the client vanished",
        |n| n == idle_threads,
        Duration::from_secs(5),
    );
    // One keep-alive is 2 s; noticing only at the second write would take up to 4 s.
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "thread lived {:?} after its client left",
        t.elapsed()
    );
}

#[test]
fn an_idle_browser_stream_gets_the_current_frame_again_every_keepalive() {
    let server = TestServer::serving("a.txt", b"same", &["--keepalive", "1"]);
    let mut stream = server.stream("", BROWSER);
    let t = Instant::now();
    assert_eq!(stream.next_part().unwrap().body, b"same");
    assert_eq!(stream.next_part().unwrap().body, b"same");
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "keep-alive came after {:?}",
        t.elapsed()
    );
}

/// Readers get a header line of the next part instead, which they ignore: a few bytes instead
/// of a frame per client; with `--repeat 0`, no duplicate frame for ffmpeg to record, ever.
#[test]
fn an_idle_reader_stream_gets_a_keepalive_line_every_keepalive_and_no_duplicate() {
    let server = TestServer::serving("a.txt", b"same", &["--keepalive", "1", "--repeat", "0"]);
    let mut conn = server.connect();
    conn.write_all(b"GET /stream HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/8\r\n\r\n")
        .unwrap();
    let mut received = Vec::new();
    let start = Instant::now();
    // Everything up to the first part's body, its delimiter, then three keep-alive lines.
    let keepalives = b"\r\nX-Keepalive: 1".repeat(3);
    while !received.ends_with(&keepalives) {
        let mut chunk = [0u8; 4096];
        let n = common::read_some(&mut conn, &mut chunk).unwrap();
        assert!(
            n > 0 && start.elapsed() < DEADLINE,
            "{}",
            String::from_utf8_lossy(&received)
        );
        received.extend_from_slice(&chunk[..n]);
    }
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "keep-alive came after {:?}",
        start.elapsed()
    );
    let text = String::from_utf8_lossy(&received);
    let boundary = common::boundary_in(&text);
    assert!(
        text.ends_with(&format!(
            "same\r\n--{boundary}{}",
            String::from_utf8_lossy(&keepalives)
        )),
        "{text}"
    );
    assert_eq!(text.matches("same").count(), 1, "no repeated frame: {text}");
}

/// OpenCV gives up on a stream after 30 s without a frame, however many keep-alives arrive
/// (see tests/clients.rs): every `--repeat` a reader gets the current frame again, after them.
#[test]
fn an_idle_reader_stream_gets_the_current_frame_again_every_repeat() {
    let server = TestServer::serving("a.txt", b"same", &["--keepalive", "1", "--repeat", "2"]);
    let mut stream = server.stream("", READER);
    stream
        .conn()
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let t = Instant::now();
    assert_eq!(stream.next_part().unwrap().body, b"same");
    assert_eq!(stream.next_part().unwrap().body, b"same");
    let after = t.elapsed();
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(5)).contains(&after),
        "repeat came after {after:?}"
    );
    assert!(stream.keepalives_seen >= 1, "no keep-alive before it");
    assert_eq!(stream.next_part().unwrap().body, b"same");
}

/// Timeouts too long for the clock mean "never": no thread panics on its first wait.
#[test]
fn a_keepalive_or_repeat_beyond_the_clock_means_never() {
    let huge = u64::MAX.to_string();
    let server = TestServer::serving(
        "a.txt",
        b"one",
        &["--poll", "20", "--keepalive", &huge, "--repeat", &huge],
    );
    let mut browser = server.stream("", BROWSER);
    let mut reader = server.stream("", READER);
    let mut events = server.connect();
    events
        .write_all(b"GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    events.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut received = Vec::new();
    while !String::from_utf8_lossy(&received).contains("\"seq\":1") {
        let mut chunk = [0u8; 4096];
        let n = common::read_some(&mut events, &mut chunk).unwrap();
        assert!(n > 0, "/events ended: {}", server.stderr());
        received.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(browser.next_part().unwrap().body, b"one");
    assert_eq!(reader.next_part().unwrap().body, b"one");
    server.dir().replace("a.txt", b"two");
    assert_eq!(browser.next_part().unwrap().body, b"two");
    assert_eq!(reader.next_part().unwrap().body, b"two");
    assert!(!server.stderr().contains("panicked"), "{}", server.stderr());
}

/// Opens `/stream{query}` with extra request header lines.
fn stream_with(server: &TestServer, query: &str, headers: &str) -> common::PartReader {
    let mut s = server.connect();
    write!(
        s,
        "GET /stream{query} HTTP/1.1\r\nHost: localhost\r\n{headers}\r\n"
    )
    .unwrap();
    common::PartReader::new(s)
}

/// A mixed slideshow: red JPEG, red PNG, a text file.
fn mixed_show(interval_ms: &str) -> TestServer {
    TestServer::showing(
        &[
            ("1.jpg", &fixture("red.jpg")),
            ("2.png", &fixture("red.png")),
            ("3.txt", b"a caption\n"),
        ],
        &["--interval", interval_ms],
    )
}

/// An `<img>` cannot show a text part, and ffmpeg, OpenCV, mpv, VLC and GStreamer end their
/// stream at the first part that is not JPEG: each client gets only the parts it can show.
#[test]
fn each_client_is_sent_only_the_parts_it_can_show() {
    let server = mixed_show("100");
    let img_headers = "User-Agent: Mozilla/5.0 Chrome/156.0\r\nSec-Fetch-Dest: image\r\n\
                       Accept: image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8\r\n";
    let clients = [
        (
            "ffmpeg",
            "",
            "User-Agent: Lavf/59.27.100\r\n",
            vec!["red.jpg"],
        ),
        ("<img>", "", img_headers, vec!["red.jpg", "red.png"]),
        (
            "?type=image/png",
            "?type=image/png",
            "User-Agent: Lavf/59.27.100\r\n",
            vec!["red.png"],
        ),
        (
            "?type=image/*,text/plain",
            "?type=image%2F*,text/plain",
            "User-Agent: Lavf/59.27.100\r\n",
            vec!["red.jpg", "red.png", "text"],
        ),
        (
            "curl",
            "",
            "User-Agent: curl/8.0.1\r\n",
            vec!["red.jpg", "red.png", "text"],
        ),
    ];
    for (who, query, headers, shows) in clients {
        let mut stream = stream_with(&server, query, headers);
        let mut got = Vec::new();
        // Two rounds of the show, and more while a slide this client shows is missing.
        while got.len() < 6 || shows.iter().any(|s| !got.contains(s)) {
            let body = stream.next_part().expect("the stream goes on").body;
            let name = ["red.jpg", "red.png"]
                .into_iter()
                .find(|n| body == fixture(n))
                .unwrap_or("text");
            assert!(shows.contains(&name), "{who} was sent {name}");
            got.push(name);
        }
    }
}

/// A client that can show only images, opened while a text slide is up, starts with the last
/// image at once rather than with nothing until the next one.
#[test]
fn a_client_opened_during_a_slide_it_cannot_show_starts_with_the_last_it_can() {
    let server = mixed_show("1500");
    let current =
        || common::Response::parse(&server.raw(b"GET /status HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    let start = Instant::now();
    while !String::from_utf8_lossy(&current().body).contains(r#""name":"3.txt""#) {
        assert!(start.elapsed() < DEADLINE, "the text slide never came");
        thread::sleep(Duration::from_millis(20));
    }
    let mut stream = stream_with(&server, "", "User-Agent: Lavf/59.27.100\r\n");
    assert_eq!(stream.next_part().unwrap().body, fixture("red.jpg"));
    assert!(
        String::from_utf8_lossy(&current().body).contains(r#""name":"3.txt""#),
        "the image came only with the next slide"
    );
}

#[test]
fn a_type_that_is_no_media_type_is_a_bad_request() {
    let server = mixed_show("100");
    for query in ["?type=jpeg", "?type=", "?type=*/jpeg"] {
        // HEAD, so that a build that streams anyway ends the response too.
        let head = format!("HEAD /stream{query} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        let response = common::Response::parse(&server.raw(head.as_bytes()));
        assert_eq!(response.status, 400, "{query}");
    }
}
