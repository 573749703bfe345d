//! Ctrl-C and SIGTERM on the real binary: every stream ends with its final boundary, exit 0.

mod common;

use std::io::Read;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{DEADLINE, TempDir, TestServer};

#[test]
fn sigterm_ends_every_stream_with_the_final_boundary_and_exits_0() {
    let dir = TempDir::new("shutdown");
    dir.rewrite("a.txt", b"x");
    let mut server = TestServer::start(&[dir.path("a.txt").to_str().unwrap()]);
    let mut reader = server.stream("", "curl/8");
    let mut browser = server.stream("", "Mozilla/5.0");
    reader.next_part().unwrap();
    browser.next_part().unwrap();

    let start = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    for stream in [&mut reader, &mut browser] {
        // The browser's open part is filled with the current frame, then the stream closes.
        while let Some(part) = stream.next_part() {
            assert_eq!(part.body, b"x");
        }
        assert!(stream.closed_cleanly, "no final boundary");
        let mut rest = Vec::new();
        stream.conn.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "bytes after the final boundary");
    }
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < DEADLINE, "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(0));
}
