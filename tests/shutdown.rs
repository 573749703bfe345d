//! Ctrl-C and SIGTERM on the real binary: every stream ends with its final boundary, exit 0.

mod common;

use std::io::Read;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{DEADLINE, TestServer};

#[test]
fn sigterm_ends_every_stream_with_the_final_boundary_and_exits_0() {
    let mut server = TestServer::serving("a.txt", b"x", &[]);
    let mut reader = server.stream("", "curl/8");
    let mut browser = server.stream("", "Mozilla/5.0");
    reader.next_part().unwrap();
    browser.next_part().unwrap();

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
        stream.conn().read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "bytes after the final boundary");
    }
    let status = common::wait_exit(&mut server.child, "still running after SIGTERM");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn sigint_with_200_clients_closes_every_stream_and_exits_0_within_a_second() {
    let mut server = TestServer::serving("cam.jpg", &common::fixture("red.jpg"), &[]);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let clients: Vec<_> = (0..200)
        .map(|i| {
            let mut stream = server.stream("", if i % 2 == 0 { "curl/8" } else { "Mozilla/5.0" });
            let ready = ready_tx.clone();
            std::thread::spawn(move || {
                stream.next_part().unwrap();
                ready.send(()).unwrap();
                while stream.next_part().is_some() {}
                stream.closed_cleanly
            })
        })
        .collect();
    for _ in 0..200 {
        ready_rx
            .recv_timeout(DEADLINE)
            .expect("every client got its first part");
    }
    server.wait_until_connected("stream", 200);

    let start = Instant::now();
    let kill = Command::new("kill")
        .args(["-INT", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = common::wait_exit(&mut server.child, "still running after SIGINT");
    let took = start.elapsed();
    assert_eq!(status.code(), Some(0));
    let clean = clients
        .into_iter()
        .map(|c| c.join().unwrap())
        .filter(|&c| c)
        .count();
    eprintln!("exit 0 after {took:?} with 200 clients");
    assert_eq!(clean, 200, "clients that saw the final boundary");
    assert!(took < Duration::from_secs(1), "exit took {took:?}");
}
