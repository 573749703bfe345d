//! `pushserve http://…`: another server's stream or image relayed, through the real binary:
//! our own server as the origin, or a fake upstream that answers what a test needs.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use common::{DEADLINE, Killed, TestServer, fixture, wait_exit};
use serde_json::Value;

/// An upstream on 127.0.0.1 that answers each connection with what the test says, on a thread
/// of its own that ends on drop (closing every connection it kept open).
struct FakeUpstream {
    port: u16,
    /// The request head of every connection so far, in order.
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl FakeUpstream {
    /// Reads each request head, then calls `answer(n, connection)` for the n-th connection
    /// (from 0): it writes the answer, and returns whether to keep the connection open (silent)
    /// rather than close it.
    fn start(
        mut answer: impl FnMut(usize, &mut TcpStream) -> bool + Send + 'static,
    ) -> FakeUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (heads, stopped) = (Arc::clone(&requests), Arc::clone(&stop));
        thread::spawn(move || {
            let mut kept = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                let mut conn = match listener.accept() {
                    Ok((conn, _)) => conn,
                    Err(_) => {
                        thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                conn.set_nonblocking(false).unwrap();
                conn.set_read_timeout(Some(DEADLINE)).unwrap();
                let head = read_head(&mut conn);
                let n = {
                    let mut heads = heads.lock().unwrap();
                    heads.push(head);
                    heads.len() - 1
                };
                if answer(n, &mut conn) {
                    kept.push(conn);
                }
            }
        });
        FakeUpstream {
            port,
            requests,
            stop,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits until `n` requests have arrived, within `deadline`.
    fn wait_requests(&self, n: usize, deadline: Duration) -> Vec<String> {
        let start = Instant::now();
        loop {
            let requests = self.requests();
            if requests.len() >= n {
                return requests;
            }
            assert!(
                start.elapsed() < deadline,
                "{} requests, not {n}, within {deadline:?}",
                requests.len()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn read_head(conn: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0];
    while !head.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// The value of header `name` in a request or response head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

const MULTIPART_HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=B\r\n\r\n";

/// A part of a `boundary=B` stream, with Content-Length.
fn part(content_type: &str, body: &[u8]) -> Vec<u8> {
    [
        format!(
            "--B\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
        body,
        b"\r\n",
    ]
    .concat()
}

fn state(status: &Value) -> &str {
    status["sources"][0]["state"].as_str().unwrap_or("")
}

/// Waits until the relay's `/status` state satisfies `ok`, and returns it.
fn wait_state(server: &TestServer, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let status = server.wait_status(&format!("a state that {what}"), |s| ok(state(s)));
    state(&status).to_string()
}

/// Waits until `GET /snapshot` answers `want`, and returns that response.
fn wait_snapshot(server: &TestServer, want: &[u8]) -> common::Response {
    let start = Instant::now();
    loop {
        let response = server.get("/snapshot", "");
        if response.status == 200 && response.body == want {
            return response;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "/snapshot never answered the expected bytes; last {} of {} bytes",
            response.status,
            response.body.len()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the relay's stderr has said `needle`, and returns how many lines say it.
fn said(server: &TestServer, needle: &str) -> usize {
    server.wait_stderr(needle);
    server
        .stderr()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

#[test]
fn our_own_stream_relayed_follows_each_change_of_the_origin() {
    let (red, green, blue) = (
        fixture("red.jpg"),
        fixture("green.jpg"),
        fixture("blue.jpg"),
    );
    let origin = TestServer::serving("cam.jpg", &red, &["--poll", "20"]);
    let upstream = format!("{}stream", origin.url);
    let relay = TestServer::start(&[&upstream]);
    let mut parts = relay.stream("", "test");
    let first = parts.wait_for(&red);
    assert_eq!(first.header("content-type").as_deref(), Some("image/jpeg"));
    // One second is promised for the whole chain (the origin's --poll, its stream, the relay's
    // stream); the deadline is generous, the latency printed.
    for (name, bytes) in [("green", &green), ("blue", &blue)] {
        let changed = Instant::now();
        origin.dir().replace("cam.jpg", bytes);
        parts.wait_for(bytes);
        eprintln!(
            "{name} through the relay in {} ms",
            changed.elapsed().as_millis()
        );
    }
    let status = relay.status();
    let source = &status["sources"][0];
    assert_eq!(source["kind"], "relay");
    assert_eq!(source["state"], "connected");
    assert_eq!(source["source"], upstream.as_str());
    assert_eq!(source["frame"]["name"], "stream");
}

#[test]
fn a_text_source_relayed_keeps_its_type_and_follows_its_changes() {
    let origin = TestServer::serving("now.txt", b"one\n", &["--poll", "20"]);
    let relay = TestServer::start(&[&format!("{}stream", origin.url)]);
    let snapshot = wait_snapshot(&relay, b"one\n");
    assert_eq!(
        snapshot.header("content-type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    origin.dir().replace("now.txt", b"two\n");
    let snapshot = wait_snapshot(&relay, b"two\n");
    assert_eq!(
        snapshot.header("content-type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
}

#[test]
fn an_image_url_is_fetched_again_every_poll_with_its_etag() {
    let (red, green) = (fixture("red.jpg"), fixture("green.jpg"));
    let origin = TestServer::serving("cam.jpg", &red, &["--poll", "20", "-v"]);
    let relay = TestServer::start(&[&format!("{}snapshot", origin.url), "--poll", "50"]);
    let snapshot = wait_snapshot(&relay, &red);
    assert_eq!(
        snapshot.header("content-type").as_deref(),
        Some("image/jpeg")
    );
    // Unchanged, it costs a 304: asked with If-None-Match, the origin's ETag.
    origin.wait_stderr(" /snapshot 304 ");
    origin.dir().replace("cam.jpg", &green);
    wait_snapshot(&relay, &green);
    let before = origin.stderr().matches(" /snapshot 304 ").count();
    let start = Instant::now();
    while origin.stderr().matches(" /snapshot 304 ").count() < before + 2 {
        assert!(start.elapsed() < DEADLINE, "no 304 for the new version");
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(relay.status()["sources"][0]["frame"]["seq"], 2);
    assert_eq!(state(&relay.status()), "connected");
}

#[test]
fn credentials_in_the_url_go_upstream_as_basic_auth_and_nowhere_else() {
    let upstream = FakeUpstream::start(|_, conn| {
        let red = fixture("red.jpg");
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
            red.len()
        );
        let _ = conn.write_all(&[head.as_bytes(), &red].concat());
        false
    });
    let url = upstream
        .url("/cam.jpg")
        .replace("http://", "http://user:pass@");
    let relay = TestServer::start(&[&url, "--poll", "100000"]);
    wait_snapshot(&relay, &fixture("red.jpg"));
    let request = &upstream.requests()[0];
    assert!(
        request.starts_with("GET /cam.jpg HTTP/1.1\r\n"),
        "{request}"
    );
    assert_eq!(
        header(request, "authorization"),
        Some("Basic dXNlcjpwYXNz"),
        "{request}"
    );
    let status = relay.get("/status", "");
    let shown = [
        relay.stdout_lines(1).join("\n"),
        relay.stderr(),
        String::from_utf8_lossy(&status.body).into_owned(),
    ];
    for text in shown {
        assert!(!text.contains("pass"), "{text}");
    }
    let status: Value = serde_json::from_slice(&status.body).unwrap();
    assert_eq!(status["sources"][0]["source"], upstream.url("/cam.jpg"));
    assert_eq!(status["sources"][0]["frame"]["name"], "cam.jpg");
}

#[test]
fn an_upstream_answering_404_is_said_once_and_retried() {
    let upstream = FakeUpstream::start(|_, conn| {
        let _ = conn.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        false
    });
    let mut relay = TestServer::start(&[&upstream.url("/cam.jpg")]);
    assert_eq!(said(&relay, "404"), 1);
    wait_state(&relay, "mentioned the 404", |s| s.contains("404"));
    // The first retry comes after 1 s, the next after 2 s.
    upstream.wait_requests(2, Duration::from_secs(5));
    wait_state(&relay, "said the second wait", |s| {
        s == "retrying in 2 s: upstream answered 404 Not Found"
    });
    assert_eq!(said(&relay, "404"), 1, "{}", relay.stderr());
    assert!(relay.child.try_wait().unwrap().is_none(), "it exited");
    assert_eq!(relay.get("/snapshot", "").status, 503);
}

#[test]
fn an_origin_that_goes_away_leaves_its_last_frame_on_show() {
    let origin = TestServer::serving("cam.jpg", &fixture("red.jpg"), &["--poll", "20"]);
    let relay = TestServer::start(&[&format!("{}stream", origin.url)]);
    relay.stream("", "test").wait_for(&fixture("red.jpg"));
    assert_eq!(state(&relay.status()), "connected");
    drop(origin);
    relay.wait_stderr("upstream ended; keeping the last frame, retrying in 1 s");
    wait_state(&relay, "said the origin is gone", |s| {
        s.starts_with("retrying in ") && s.ends_with("cannot reach upstream: connection refused")
    });
    relay.wait_stderr("cannot reach upstream: connection refused; keeping the last frame");
    let snapshot = relay.get("/snapshot", "");
    assert_eq!(snapshot.status, 200);
    assert!(snapshot.body == fixture("red.jpg"));
    relay.stream("", "test").wait_for(&fixture("red.jpg"));
}

#[test]
fn an_upstream_that_ends_is_reconnected_and_its_frames_flow_again() {
    let upstream = FakeUpstream::start(|n, conn| {
        let image = if n == 0 { "red.jpg" } else { "green.jpg" };
        let _ = conn.write_all(&[MULTIPART_HEAD, &part("image/jpeg", &fixture(image))].concat());
        // The first stream ends; the next one stays open.
        n > 0
    });
    let relay = TestServer::start(&[&upstream.url("/video.mjpg")]);
    let mut parts = relay.stream("", "test");
    parts.wait_for(&fixture("red.jpg"));
    relay.wait_stderr("upstream ended; keeping the last frame, retrying in 1 s");
    parts.wait_for(&fixture("green.jpg"));
    relay.wait_stderr("upstream is back");
    assert_eq!(upstream.requests().len(), 2);
    assert_eq!(state(&relay.status()), "connected");
    assert_eq!(relay.status()["sources"][0]["frame"]["name"], "video.mjpg");
}

#[test]
fn an_upstream_silent_for_three_keepalives_is_reconnected() {
    let upstream = FakeUpstream::start(|n, conn| {
        let image = if n == 0 { "red.jpg" } else { "blue.jpg" };
        let _ = conn.write_all(&[MULTIPART_HEAD, &part("image/jpeg", &fixture(image))].concat());
        true
    });
    let relay = TestServer::start(&[&upstream.url("/"), "--keepalive", "1"]);
    let mut parts = relay.stream("", "test");
    parts.wait_for(&fixture("red.jpg"));
    let silent = Instant::now();
    // Three seconds of silence, then the first wait of back-off, 1 s.
    upstream.wait_requests(2, Duration::from_secs(8));
    let reconnected = silent.elapsed();
    assert!(
        reconnected >= Duration::from_millis(2900),
        "{reconnected:?}"
    );
    parts.wait_for(&fixture("blue.jpg"));
    assert_eq!(
        said(
            &relay,
            "upstream sent nothing for 3 s; keeping the last frame"
        ),
        1
    );
    relay.wait_stderr("upstream is back");
}

#[test]
fn a_hostile_upstream_never_gets_into_the_relay_s_heads_nor_stops_it() {
    let (go, gate) = mpsc::channel::<()>();
    let steps: Vec<Vec<u8>> = vec![
        [
            MULTIPART_HEAD,
            b"--B\r\nContent-Type: text/plain\rX-Injected: cr\r\nContent-Length: 3\r\n\r\ncr\n\r\n",
        ]
        .concat(),
        b"--B\r\nContent-Type: text/plain\nX-Injected: lf\r\nContent-Length: 3\r\n\r\nlf\n\r\n"
            .to_vec(),
        part("image/jpeg\x1b[31m\x07", &fixture("red.jpg")),
        [
            part("text/plain", &[b'x'; 4000]),
            part("image/jpeg", &fixture("green.jpg")),
        ]
        .concat(),
        format!("--B\r\nX-Padding: {}\r\n\r\n", "x".repeat(9000)).into_bytes(),
    ];
    let upstream = FakeUpstream::start(move |n, conn| {
        match n {
            0 => {
                for (i, step) in steps.iter().enumerate() {
                    if i > 0 && gate.recv_timeout(DEADLINE).is_err() {
                        return false;
                    }
                    let _ = conn.write_all(step);
                }
            }
            1 => {
                let long = format!("HTTP/1.1 200 OK\r\nX-Long: {}\r\n\r\n", "x".repeat(9000));
                let _ = conn.write_all(long.as_bytes());
            }
            _ => {
                let blue = part("image/jpeg", &fixture("blue.jpg"));
                let _ = conn.write_all(&[MULTIPART_HEAD, &blue].concat());
                return true;
            }
        }
        false
    });
    let mut relay = TestServer::start(&[&upstream.url("/"), "--max-frame", "1K"]);
    let mut parts = relay.stream("", "test");
    let clean = |head: &str| {
        let lines = head.replace("\r\n", "\n");
        assert!(
            !lines.contains(['\r', '\x1b', '\x07']),
            "a control byte in {head:?}"
        );
        assert!(
            !lines.to_ascii_lowercase().contains("x-injected"),
            "an upstream header in {head:?}"
        );
    };
    clean(&parts.head);
    for body in [&b"cr\n"[..], b"lf\n", &fixture("red.jpg")] {
        let got = parts.wait_for(body);
        clean(&got.headers);
        clean(&relay.get("/snapshot", "").head);
        go.send(()).unwrap();
    }
    let red = relay.get("/snapshot", "");
    assert_eq!(red.header("content-type").as_deref(), Some("image/jpeg"));
    // The part over --max-frame is skipped, the next one published.
    parts.wait_for(&fixture("green.jpg"));
    relay.wait_stderr("upstream sent a part over --max-frame 1024 bytes; skipped it");
    go.send(()).unwrap();
    relay.wait_stderr("upstream sent a malformed stream");
    relay.wait_stderr("upstream sent a response head over 8 KiB");
    parts.wait_for(&fixture("blue.jpg"));
    assert!(relay.child.try_wait().unwrap().is_none(), "it exited");
    assert_eq!(upstream.requests().len(), 3);
}

#[test]
fn once_exits_0_when_the_upstream_stream_ends() {
    let (go, gate) = mpsc::channel::<()>();
    let upstream = FakeUpstream::start(move |_, conn| {
        let _ = conn.write_all(&[MULTIPART_HEAD, &part("text/plain", b"one\n")].concat());
        if gate.recv_timeout(DEADLINE).is_ok() {
            let _ = conn.write_all(&[&part("text/plain", b"two\n")[..], b"--B--\r\n"].concat());
        }
        false
    });
    let mut relay = TestServer::start(&[&upstream.url("/"), "--once"]);
    let mut parts = relay.stream("", "test");
    parts.wait_for(b"one\n");
    go.send(()).unwrap();
    parts.wait_for(b"two\n");
    assert!(
        parts.next_part().is_none(),
        "a part after the upstream's end"
    );
    assert!(parts.closed_cleanly, "no final boundary");
    let status = wait_exit(&mut relay.child, "the relay never exited");
    assert_eq!(status.code(), Some(0));
    assert_eq!(upstream.requests().len(), 1);
}

#[test]
fn a_url_that_cannot_be_relayed_is_refused_without_its_credentials() {
    for url in [
        "http://user:secret@cam:99999/x",
        "http://user:secret@cam/a b",
    ] {
        let mut refused = Command::new(common::bin());
        refused
            .args([url, "--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let (status, _, stderr) =
            Killed(refused.spawn().unwrap()).finish("a bad URL was not refused");
        assert_eq!(status.code(), Some(2), "a usage error");
        assert!(stderr.contains("cannot relay: "), "{stderr}");
        assert!(!stderr.contains("secret"), "{stderr}");
    }
}

#[test]
fn parts_delimited_by_another_boundary_than_the_header_names_are_relayed_and_said() {
    let upstream = FakeUpstream::start(|_, conn| {
        // The header names B; the body's parts are delimited by --X.
        let red = part("image/jpeg", &fixture("red.jpg"));
        let _ = conn.write_all(&[MULTIPART_HEAD, b"--X", &red[3..]].concat());
        true
    });
    let relay = TestServer::start(&[&upstream.url("/")]);
    let said = "upstream's parts are delimited by --X, not by the boundary its header names (--B)";
    relay.wait_stderr(said);
    wait_state(&relay, "names --X", |s| {
        s.contains("parts delimited by --X")
    });
    wait_snapshot(&relay, &fixture("red.jpg"));
}

/// An upstream that answers every request with `head` (status line and headers, without the
/// blank line) and `body`, then closes.
fn answering(head: &str, body: Vec<u8>) -> FakeUpstream {
    let answer = [format!("{head}\r\n\r\n").into_bytes(), body].concat();
    FakeUpstream::start(move |_, conn| {
        let _ = conn.write_all(&answer);
        false
    })
}

#[test]
fn credentials_follow_a_redirect_to_their_own_origin_only() {
    let red = fixture("red.jpg");
    let elsewhere = answering(
        &format!(
            "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {}",
            red.len()
        ),
        red.clone(),
    );
    // Another port on the same host is another origin.
    let moved = elsewhere.url("/x.jpg");
    let upstream = FakeUpstream::start(move |n, conn| {
        let location = if n == 0 { "/same.jpg" } else { moved.as_str() };
        // Closing, it says so: else the relay may send the next request on this connection.
        let answer = format!(
            "HTTP/1.1 302 Found\r\nLocation: {location}\r\nConnection: close\r\n\
             Content-Length: 0\r\n\r\n"
        );
        let _ = conn.write_all(answer.as_bytes());
        false
    });
    let url = upstream
        .url("/cam.jpg")
        .replace("http://", "http://user:SECRET@");
    let relay = TestServer::start(&[&url, "--poll", "100000"]);
    wait_snapshot(&relay, &red);
    let (first, second) = (&upstream.requests()[0], &upstream.requests()[1]);
    assert!(first.starts_with("GET /cam.jpg "), "{first}");
    assert!(second.starts_with("GET /same.jpg "), "{second}");
    for request in [first, second] {
        assert_eq!(
            header(request, "authorization"),
            Some("Basic dXNlcjpTRUNSRVQ="),
            "{request}"
        );
    }
    let last = &elsewhere.requests()[0];
    assert!(last.starts_with("GET /x.jpg "), "{last}");
    assert_eq!(header(last, "authorization"), None, "{last}");
}

#[test]
fn a_netrc_file_gives_the_password_that_ps_then_does_not_show() {
    let upstream = answering(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3",
        b"ok\n".to_vec(),
    );
    let dir = common::TempDir::new("netrc");
    dir.rewrite(
        "netrc",
        b"machine elsewhere login a password b\n\
          machine 127.0.0.1\n  login user\n  password \"SEC RET\"\n",
    );
    let netrc = dir.path("netrc").display().to_string();
    let relay = TestServer::start(&[&upstream.url("/cam.txt"), "--netrc-file", &netrc]);
    wait_snapshot(&relay, b"ok\n");
    let request = &upstream.requests()[0];
    // base64 of "user:SEC RET"
    assert_eq!(
        header(request, "authorization"),
        Some("Basic dXNlcjpTRUMgUkVU"),
        "{request}"
    );
    let command_line = std::fs::read(format!("/proc/{}/cmdline", relay.child.id())).unwrap();
    let shown = [
        String::from_utf8_lossy(&command_line).into_owned(),
        relay.stdout_lines(1).join("\n"),
        relay.stderr(),
        String::from_utf8_lossy(&relay.get("/status", "").body).into_owned(),
    ];
    for text in shown {
        assert!(!text.contains("SEC RET"), "{text}");
    }
}

#[test]
fn a_mistyped_url_is_refused_without_its_password() {
    for (url, code) in [
        ("htp://user:SECRET@cam/x", 2),
        ("rtsp://user:SECRET@cam/x", 2),
        ("http:/user:SECRET@cam/x", 1),
        ("user:SECRET@cam/x", 1),
    ] {
        let out = Command::new(common::bin())
            .args([url, "--port", "0"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{url}: {stderr}");
        assert!(!stderr.contains("SECRET"), "{stderr}");
    }
}

#[test]
fn a_response_over_max_frame_without_a_length_is_retried_with_back_off() {
    let upstream = FakeUpstream::start(|_, conn| {
        let page = [
            &b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n"[..],
            &[b'x'; 4096],
        ]
        .concat();
        let _ = conn.write_all(&page);
        false
    });
    let relay = TestServer::start(&[&upstream.url("/"), "--max-frame", "1K", "--poll", "50"]);
    let why = "upstream sent text/html over --max-frame 1024 bytes";
    // Attempts at 0 and 1 s, then a wait of 2 s: not one every --poll.
    wait_state(&relay, "said the second wait", |s| {
        s == format!("retrying in 2 s: {why}")
    });
    assert_eq!(upstream.requests().len(), 2);
    assert_eq!(said(&relay, why), 1, "{}", relay.stderr());
    assert_eq!(relay.get("/snapshot", "").status, 503);
}

#[test]
fn an_expired_upstream_certificate_is_said_once_however_often_it_is_retried() {
    let dir = common::TempDir::new("expired");
    // Expired in 2001.
    let year = std::time::Duration::from_secs(365 * 24 * 3600);
    let (cert, key, _) = common::tls::certificate_valid(
        &dir,
        std::time::UNIX_EPOCH + 30 * year,
        std::time::UNIX_EPOCH + 31 * year,
    );
    let origin = TestServer::serving(
        "cam.jpg",
        &fixture("red.jpg"),
        &["--tls-cert", &cert, "--tls-key", &key],
    );
    let relay = TestServer::start(&[&format!("{}snapshot", origin.url)]);
    // Three attempts, at 0, 1 and 3 s, each at another time that the error's words give.
    wait_state(&relay, "said the third wait", |s| {
        s.starts_with("retrying in 4 s: cannot reach upstream: TLS: ")
    });
    assert_eq!(said(&relay, "certificate expired"), 1, "{}", relay.stderr());
}

#[test]
fn an_encoding_that_was_not_asked_for_is_refused_not_served() {
    let upstream = answering(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\nContent-Length: 4",
        b"\x1f\x8b\x08\x00".to_vec(),
    );
    let relay = TestServer::start(&[&upstream.url("/log.txt")]);
    relay.wait_stderr(
        "upstream sent Content-Encoding: gzip, which pushserve does not decode; keeping the last \
         frame, retrying in 1 s",
    );
    assert_eq!(relay.get("/snapshot", "").status, 503);
}

#[test]
fn a_netrc_file_that_is_a_fifo_a_device_or_huge_is_refused_at_once() {
    let dir = common::TempDir::new("netrc-hostile");
    let fifo = dir.path("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    dir.rewrite("huge", &vec![b'#'; (1 << 20) + 1]);
    for (netrc, why) in [
        (fifo.display().to_string(), "not a regular file but a FIFO"),
        (
            "/dev/zero".to_string(),
            "not a regular file but a character device",
        ),
        (
            dir.path("huge").display().to_string(),
            "it is over 1048576 bytes",
        ),
    ] {
        // Nothing would ever write to the FIFO, and /dev/zero never ends: read, they would hang.
        let mut server = Killed(
            Command::new(common::bin())
                .args([
                    "http://cam.invalid/x.jpg",
                    "--netrc-file",
                    &netrc,
                    "--port",
                    "0",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let (status, _, stderr) = server.finish("pushserve refuses the netrc file at once");
        assert_eq!(status.code(), Some(1), "{netrc}: {stderr}");
        assert_eq!(
            stderr.trim(),
            format!("pushserve: cannot read netrc file '{netrc}': {why}")
        );
    }
}
