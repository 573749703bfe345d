//! The connection layer and /snapshot on the real binary: statuses, validators, limits.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{DEADLINE, TempDir, TestServer, fixture};

fn serve(name: &str, bytes: &[u8]) -> TestServer {
    TestServer::serving(name, bytes, &["--poll", "20"])
}

#[test]
fn snapshot_is_the_current_frame_with_type_length_and_etag() {
    let server = serve("cam.jpg", &fixture("red.jpg"));
    let r = server.get("/snapshot", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, fixture("red.jpg"));
    assert_eq!(r.header("content-type").as_deref(), Some("image/jpeg"));
    assert_eq!(
        r.header("content-length"),
        Some(fixture("red.jpg").len().to_string())
    );
    assert!(r.header("last-modified").unwrap().ends_with(" GMT"));
    let etag = r.header("etag").expect("an ETag");

    let again = server.get("/snapshot", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!((again.status, again.body.len()), (304, 0));
    assert_eq!(again.header("etag"), Some(etag.clone()));

    server.dir().replace("cam.jpg", &fixture("green.jpg"));
    let start = Instant::now();
    let changed = loop {
        let r = server.get("/snapshot", &format!("If-None-Match: {etag}\r\n"));
        if r.status == 200 {
            break r;
        }
        assert!(start.elapsed() < DEADLINE, "snapshot never changed");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(changed.body, fixture("green.jpg"));
    assert_ne!(changed.header("etag"), Some(etag));
}

#[test]
fn the_first_frame_is_there_as_soon_as_the_url_is_printed() {
    // Large enough that reading it takes longer than a client's first request.
    let big = vec![7u8; 32 << 20];
    let server = serve("big.bin", &big);
    let r = server.get("/snapshot", "");
    assert_eq!(r.status, 200);
    assert!(r.body == big, "a snapshot of {} bytes", r.body.len());
}

#[test]
fn head_gives_the_headers_without_a_body() {
    let server = serve("a.txt", b"hello");
    let snap =
        common::Response::parse(&server.raw(b"HEAD /snapshot HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    assert_eq!((snap.status, snap.body.len()), (200, 0));
    assert_eq!(snap.header("content-length").as_deref(), Some("5"));
    let stream =
        common::Response::parse(&server.raw(b"HEAD /stream HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    assert_eq!((stream.status, stream.body.len()), (200, 0));
    assert!(
        stream
            .header("content-type")
            .unwrap()
            .starts_with("multipart/x-mixed-replace; boundary=")
    );
}

#[test]
fn unknown_paths_are_404_and_other_methods_405() {
    let server = serve("a.txt", b"hello");
    assert_eq!(server.get("/a.txt", "").status, 404);
    assert_eq!(server.get("/../a.txt", "").status, 404);
    let post = common::Response::parse(
        &server.raw(b"POST /stream HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\nhi"),
    );
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow").as_deref(), Some("GET, HEAD"));
}

#[test]
fn bad_requests_get_400_and_431_while_a_stream_keeps_flowing() {
    let server = serve("a.txt", b"one");
    let mut stream = server.stream("", "curl/8");
    assert_eq!(stream.next_part().unwrap().body, b"one");

    let garbage = common::Response::parse(&server.raw(b"\x16\x03\x01 not http at all\r\n\r\n"));
    assert_eq!(garbage.status, 400);
    let mut huge = b"GET /stream HTTP/1.1\r\nX-Filler: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 16 * 1024));
    huge.extend_from_slice(b"\r\n\r\n");
    assert_eq!(common::Response::parse(&server.raw(&huge)).status, 431);

    server.dir().replace("a.txt", b"two");
    assert_eq!(stream.next_part().unwrap().body, b"two");
}

/// Sends `request` whole, then reads the response to its end, which must be a clean close: a
/// server that closes with request bytes still unread makes its kernel reset the connection.
fn response_without_reset(server: &TestServer, request: &[u8]) -> common::Response {
    let mut conn = server.connect();
    conn.write_all(request)
        .unwrap_or_else(|e| panic!("the request was cut off: {e}"));
    let mut response = Vec::new();
    if let Err(e) = conn.read_to_end(&mut response) {
        panic!(
            "reset after {} bytes of the response: {e}: {:?}",
            response.len(),
            String::from_utf8_lossy(&response)
        );
    }
    common::Response::parse(&response)
}

#[test]
fn a_request_refused_before_its_body_or_head_is_read_still_gets_its_whole_response() {
    let server = serve("a.txt", b"hello");
    // Far more than the server reads with the head, well within what it takes in after
    // answering so that the client can finish sending.
    let body = vec![b'x'; 64 << 10];
    for path in ["/snapshot", "/stream"] {
        let mut post = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        post.extend_from_slice(&body);
        let response = response_without_reset(&server, &post);
        assert_eq!(response.status, 405, "{path}");
        assert_eq!(response.body, b"Method Not Allowed", "{path}");
    }
    let mut huge = b"GET /snapshot HTTP/1.1\r\nHost: localhost\r\nX-Filler: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 32 << 10));
    huge.extend_from_slice(b"\r\n\r\n");
    let response = response_without_reset(&server, &huge);
    assert_eq!(response.status, 431);
    assert_eq!(response.body, b"Request Header Fields Too Large");
}

#[test]
fn a_half_sent_request_is_dropped_after_the_head_timeout_without_blocking_others() {
    let server = serve("a.txt", b"one");
    let mut slow = server.connect();
    slow.write_all(b"GET /stream HTTP/1.1\r\nHost:").unwrap();
    // Meanwhile other clients are served at once.
    assert_eq!(server.get("/snapshot", "").body, b"one");
    slow.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut rest = Vec::new();
    let start = Instant::now();
    let _ = slow.read_to_end(&mut rest);
    assert!(
        rest.is_empty(),
        "no response to a request that never finished"
    );
    assert!(
        start.elapsed() < Duration::from_secs(14),
        "the half-sent request was never dropped"
    );
}

#[test]
fn running_out_of_file_descriptors_is_survived_with_a_back_off() {
    let dir = TempDir::new("emfile");
    dir.rewrite("a.txt", b"still here");
    // 40 descriptors: a few dozen clients exhaust them.
    let mut command = std::process::Command::new("sh");
    let script = "ulimit -n 40 && exec \"$0\" \"$@\"";
    command.args([
        "-c",
        script,
        &common::bin(),
        dir.path("a.txt").to_str().unwrap(),
        "--keepalive",
        "1",
    ]);
    let server = TestServer::start_command(command);
    let streams: Vec<_> = (0..60)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(&server.addr).unwrap();
            s.write_all(b"GET /stream HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .unwrap();
            s
        })
        .collect();
    server.wait_stderr("cannot accept connections: Too many open files; retrying");
    drop(streams);
    // Once the vanished clients' threads end (within a keep-alive), new clients are served.
    let start = Instant::now();
    loop {
        let mut s = server.connect();
        let mut out = Vec::new();
        if s.write_all(b"GET /snapshot HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .is_ok()
            && s.read_to_end(&mut out).is_ok()
            && !out.is_empty()
        {
            assert_eq!(common::Response::parse(&out).body, b"still here");
            break;
        }
        assert!(start.elapsed() < DEADLINE, "never served again");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_printed_url_with_a_path_appended_is_served_despite_the_double_slash() {
    let server = serve("cam.jpg", &fixture("red.jpg"));
    // The printed URL ends with `/`, so `$URL/snapshot` asks for `//snapshot`.
    let path_of = |url: &str| url.trim_start_matches("http://")[server.addr.len()..].to_string();
    let snapshot = server.get(&path_of(&format!("{}/snapshot", server.url)), "");
    assert_eq!((snapshot.status, snapshot.body), (200, fixture("red.jpg")));
    assert_eq!(server.get("///status", "").status, 200);
    let head = server.raw(b"HEAD //stream HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let stream = common::Response::parse(&head);
    assert_eq!(stream.status, 200);
    assert!(
        stream
            .header("content-type")
            .unwrap()
            .starts_with("multipart/x-mixed-replace")
    );
    assert_eq!(server.get("/snap//shot", "").status, 404);
}

/// The paths of docs/GUIDE.md's endpoint table, which a unit test keeps equal to the route table.
fn endpoint_paths() -> Vec<&'static str> {
    include_str!("../docs/GUIDE.md")
        .lines()
        .filter_map(|line| line.strip_prefix("| `/")?.split_once('`'))
        .map(|(path, _)| path)
        .collect()
}

#[test]
fn head_is_answered_at_once_with_no_body_on_every_route() {
    let paths = endpoint_paths();
    assert!(
        paths.contains(&"events") && paths.contains(&"poll"),
        "{paths:?}"
    );
    let single = serve("a.txt", b"hello");
    let dir = TempDir::new("head-two-sources");
    dir.rewrite("a.txt", b"one");
    dir.rewrite("b.txt", b"two");
    let two = TestServer::start(&[
        dir.path("a.txt").to_str().unwrap(),
        dir.path("b.txt").to_str().unwrap(),
    ]);
    let mut asked = Vec::new();
    for path in &paths {
        asked.push((&single, format!("/{path}")));
        asked.push((&two, format!("/{path}")));
        asked.push((&two, format!("/b/{path}")));
    }
    for (server, path) in asked {
        // Version 1 is the current one, so a GET of /poll would wait for the next.
        let request = format!("HEAD {path}?since=1 HTTP/1.1\r\nHost: localhost\r\n\r\n");
        let start = Instant::now();
        let response = response_without_reset(server, request.as_bytes());
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "HEAD {path} took {:?}",
            start.elapsed()
        );
        assert!(
            response.body.is_empty(),
            "HEAD {path} sent a body: {:?}",
            String::from_utf8_lossy(&response.body)
        );
        // Only /status is not served per source; /poll has nothing newer than version 1.
        let expected = match &path[..] {
            "/b/status" => 404,
            "/poll" | "/b/poll" => 204,
            _ => 200,
        };
        assert_eq!(response.status, expected, "HEAD {path}");
    }
}
