//! `/stream?client=NAME` on the real binary: a client named in the query gets that client's
//! stream whatever its User-Agent says, as a player behind another User-Agent needs.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{DEADLINE, TestServer, find, fixture};

/// A User-Agent that names none of the clients with a profile of their own.
const OTHER: &str = "curl/8.0.1";

/// VLC passes a part on once this many bytes from its first JPEG byte are in (see `client.rs`).
const VLC_FIRST_COUNT: usize = 15360;

#[test]
fn client_vlc_gets_parts_padded_to_vlcs_count_and_the_first_frame_again_at_once() {
    let jpeg = fixture("red.jpg");
    // No repeat: a second part can only be VLC's warm-up.
    let server = TestServer::serving("cam.jpg", &jpeg, &["--repeat", "0"]);
    let mut conn = server.connect();
    write!(
        conn,
        "GET /stream?client=vlc HTTP/1.1\r\nHost: localhost\r\nUser-Agent: {OTHER}\r\n\r\n"
    )
    .unwrap();
    conn.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut got = Vec::new();
    let start = Instant::now();
    let twice = |got: &[u8]| {
        find(got, &jpeg).is_some_and(|first| find(&got[first + jpeg.len()..], &jpeg).is_some())
    };
    while !twice(&got) {
        assert!(
            start.elapsed() < DEADLINE,
            "the frame came once, not again ({} bytes)",
            got.len()
        );
        let mut buf = [0; 65536];
        match conn.read(&mut buf) {
            Ok(0) => panic!("the stream ended"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    let head_end = find(&got, b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&got[..head_end]).into_owned();
    let boundary = common::boundary_in(&head);
    let body_at = find(&got, &jpeg).unwrap();
    let after = &got[body_at + jpeg.len()..];
    let padding = format!("\r\n--{boundary}\r\nX-Padding: ");
    assert!(
        after.starts_with(padding.as_bytes()),
        "{:?}",
        String::from_utf8_lossy(&after[..80.min(after.len())])
    );
    let fill = after[padding.len()..]
        .iter()
        .take_while(|b| **b == b'x')
        .count();
    assert_eq!(
        jpeg.len() + padding.len() + fill,
        VLC_FIRST_COUNT,
        "the padding ends where VLC's count does"
    );
}

#[test]
fn client_mpv_gets_empty_parts_after_each_part() {
    let server = TestServer::serving("cam.jpg", &fixture("red.jpg"), &[]);
    let mut stream = server.stream("?client=mpv", OTHER);
    stream
        .conn()
        .get_ref()
        .set_read_timeout(Some(DEADLINE))
        .unwrap();
    assert_eq!(stream.next_part().unwrap().body, fixture("red.jpg"));
    for n in 0..29 {
        let empty = stream.next_part().expect("an empty part");
        assert!(
            empty.body.is_empty(),
            "part {n} after the frame is not empty"
        );
        assert_eq!(empty.header("content-length").as_deref(), Some("0"));
    }
}

#[test]
fn the_client_named_in_the_query_decides_the_framing_and_framing_still_overrides_it() {
    let server = TestServer::serving("cam.jpg", &fixture("red.jpg"), &[]);
    let browser = "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0";
    for (query, agent, reader_framing) in [
        ("?client=browser", OTHER, false),
        ("?client=reader", browser, true),
        ("?client=curl", browser, true),
        ("?client=browser&framing=reader", OTHER, true),
        ("?framing=browser&client=reader", OTHER, false),
    ] {
        let mut stream = server.stream(query, agent);
        let part = stream.next_part().unwrap();
        assert_eq!(part.body, fixture("red.jpg"), "{query}");
        assert_eq!(
            part.header("content-length").is_some(),
            reader_framing,
            "{query} with {agent}"
        );
    }
}

#[test]
fn a_client_named_in_the_query_is_sent_only_the_types_it_can_show() {
    let server = TestServer::showing(
        &[
            ("1.jpg", &fixture("red.jpg")),
            ("2.png", &fixture("red.png")),
        ],
        &["--interval", "100"],
    );
    for name in ["ffmpeg", "opencv", "gstreamer"] {
        let mut stream = server.stream(&format!("?client={name}"), OTHER);
        for _ in 0..4 {
            let body = stream.next_part().expect("the stream goes on").body;
            assert_eq!(body, fixture("red.jpg"), "{name} was sent the PNG");
        }
    }
}

#[test]
fn an_unknown_client_is_a_bad_request_that_names_the_known_ones() {
    let server = TestServer::serving("cam.jpg", &fixture("red.jpg"), &[]);
    for query in ["?client=winamp", "?client=", "?client=VLC%00"] {
        // HEAD, so that a build that streams anyway ends the response too.
        let head = format!("HEAD /stream{query} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        let response = common::Response::parse(&server.raw(head.as_bytes()));
        assert_eq!(response.status, 400, "{query}");
        let get = server.get(&format!("/stream{query}"), "");
        assert_eq!(get.status, 400, "{query}");
        let reason = String::from_utf8_lossy(&get.body);
        assert_eq!(reason.lines().count(), 1, "{reason}");
        for known in ["browser", "vlc", "mpv", "ffmpeg", "reader"] {
            assert!(reason.contains(known), "{reason}");
        }
    }
}
