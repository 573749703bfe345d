//! /events, /poll, /status and --cors on the real binary, over plain HTTP.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{DEADLINE, TestServer};
use serde_json::Value;

fn serve(extra: &[&str]) -> TestServer {
    TestServer::serving("now.txt", b"one", &[&["--poll", "20"], extra].concat())
}

/// Reads Server-Sent Events (id and data of each) from an open /events response.
struct EventReader {
    lines: BufReader<TcpStream>,
    pub head: String,
}

impl EventReader {
    fn open(server: &TestServer, headers: &str) -> EventReader {
        let mut conn = server.connect();
        write!(
            conn,
            "GET /events HTTP/1.1\r\nHost: localhost\r\n{headers}\r\n"
        )
        .unwrap();
        let mut lines = BufReader::new(conn);
        let mut head = String::new();
        while !head.ends_with("\r\n\r\n") {
            assert!(
                lines.read_line(&mut head).unwrap() > 0,
                "head cut short: {head}"
            );
        }
        EventReader { lines, head }
    }

    /// The next event's (id, data as JSON), skipping comments and `retry:`.
    fn next(&mut self) -> (u64, Value) {
        let (mut id, mut data) = (None, None);
        let start = Instant::now();
        loop {
            // Keep-alive comments arrive within the read timeout: bound the wait as a whole.
            assert!(start.elapsed() < DEADLINE, "no event within {DEADLINE:?}");
            let mut line = String::new();
            assert!(
                self.lines.read_line(&mut line).unwrap() > 0,
                "event stream ended"
            );
            let line = line.trim_end_matches('\n');
            if line.is_empty() {
                if let (Some(id), Some(data)) = (id, data.take()) {
                    return (id, data);
                }
            } else if let Some(v) = line.strip_prefix("id: ") {
                id = Some(v.parse().unwrap());
            } else if let Some(v) = line.strip_prefix("data: ") {
                data = Some(serde_json::from_str(v).unwrap());
            }
        }
    }
}

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

#[test]
fn events_send_the_current_frame_then_one_event_per_new_frame() {
    let server = serve(&[]);
    let mut events = EventReader::open(&server, "");
    assert!(
        events.head.contains("Content-Type: text/event-stream\r\n"),
        "{}",
        events.head
    );
    let (id, data) = events.next();
    assert_eq!(id, 1);
    assert_eq!(data["seq"], 1);
    assert_eq!(data["name"], "now.txt");
    assert_eq!(data["type"], "text/plain; charset=utf-8");
    assert_eq!(data["size"], 3);
    assert_eq!(data["text"], "one");
    assert_eq!(data["snapshot"], "snapshot?seq=1");
    assert!(
        data["modified"].as_u64().unwrap() > 1_600_000_000_000,
        "ms since 1970"
    );

    server.dir().replace("now.txt", b"two");
    let (id, data) = events.next();
    assert_eq!((id, data["text"].as_str()), (2, Some("two")));
}

#[test]
fn last_event_id_resumes_after_the_current_frame_or_gets_it_at_once() {
    let server = serve(&[]);
    assert_eq!(
        server.get("/snapshot", "").body,
        b"one",
        "the first frame is published before the URL"
    );
    server.dir().replace("now.txt", b"two");
    let start = Instant::now();
    while server.get("/snapshot", "").body != b"two" {
        assert!(start.elapsed() < DEADLINE);
        std::thread::sleep(Duration::from_millis(10));
    }
    // Behind: the current frame at once.
    let (id, _) = EventReader::open(&server, "Last-Event-ID: 1\r\n").next();
    assert_eq!(id, 2);
    // Up to date: nothing until the next change, then that one.
    let mut current = EventReader::open(&server, "Last-Event-ID: 2\r\n");
    server.dir().replace("now.txt", b"three");
    let (id, data) = current.next();
    assert_eq!((id, data["text"].as_str()), (3, Some("three")));
}

#[test]
fn long_poll_answers_at_once_on_change_or_204_after_the_timeout() {
    let server = serve(&[]);
    let now = server.get("/poll?since=0", "");
    assert_eq!(now.status, 200);
    assert_eq!(json(&now.body)["seq"], 1);

    let waiting = {
        let server_addr = server.addr.clone();
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(server_addr).unwrap();
            s.set_read_timeout(Some(DEADLINE)).unwrap();
            s.write_all(b"GET /poll?since=1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .unwrap();
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut s, &mut out).unwrap();
            common::Response::parse(&out)
        })
    };
    server.wait_until_connected("poll", 1);
    server.dir().replace("now.txt", b"two");
    let changed = waiting.join().unwrap();
    assert_eq!(changed.status, 200);
    assert_eq!(json(&changed.body)["text"], "two");

    let start = Instant::now();
    let timed_out = server.get("/poll?since=2&timeout=1", "");
    assert_eq!((timed_out.status, timed_out.body.len()), (204, 0));
    assert!(start.elapsed() >= Duration::from_millis(900));
    assert_eq!(server.get("/poll?since=soon", "").status, 400);
}

#[test]
fn status_reports_source_frame_clients_and_traffic() {
    let server = serve(&[]);
    let mut stream = server.stream("", "curl/8");
    stream.next_part().unwrap();
    let mut events = EventReader::open(&server, "");
    events.next();
    // Each thread counts its frame once its write has returned, which may be after the client
    // has read it.
    let start = Instant::now();
    let status = loop {
        let status = json(&server.get("/status", "").body);
        if status["frames_sent"].as_u64().unwrap() >= 2 {
            break status;
        }
        assert!(start.elapsed() < DEADLINE, "frames never counted: {status}");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["source"]["kind"], "file");
    assert!(
        status["source"]["path"]
            .as_str()
            .unwrap()
            .ends_with("now.txt")
    );
    assert_eq!(status["frame"]["seq"], 1);
    assert_eq!(status["frame"]["name"], "now.txt");
    assert_eq!(status["frame"]["size"], 3);
    assert_eq!(status["clients"]["stream"], 1);
    assert_eq!(status["clients"]["events"], 1);
    assert!(status["bytes_sent"].as_u64().unwrap() >= 6);
    assert!(status["uptime_secs"].as_f64().unwrap() > 0.0);
}

#[test]
fn cors_headers_are_sent_only_when_asked() {
    let plain = serve(&[]);
    let cors = serve(&["--cors"]);
    for path in ["/snapshot", "/status", "/poll?since=0"] {
        assert_eq!(
            plain.get(path, "").header("access-control-allow-origin"),
            None,
            "{path}"
        );
        assert_eq!(
            cors.get(path, "")
                .header("access-control-allow-origin")
                .as_deref(),
            Some("*"),
            "{path}"
        );
    }
    assert!(
        !EventReader::open(&plain, "")
            .head
            .contains("Access-Control-Allow-Origin")
    );
    assert!(
        EventReader::open(&cors, "")
            .head
            .contains("Access-Control-Allow-Origin: *\r\n")
    );
    let preflight = common::Response::parse(
        &cors.raw(b"OPTIONS /snapshot HTTP/1.1\r\nHost: localhost\r\nOrigin: http://a\r\n\r\n"),
    );
    assert_eq!(preflight.status, 204);
    assert!(
        preflight
            .header("access-control-allow-headers")
            .unwrap()
            .contains("If-None-Match")
    );
}
