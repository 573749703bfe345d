//! Clients that leave, stall, crawl or crowd in, on the real binary: each costs the server only
//! its own thread and socket, for no longer than it must, and never the clients that stay.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::{DEADLINE, PartReader, Response, TestServer, read_some};

const READER: &str = "curl/8";

fn request(server: &TestServer, target: &str, user_agent: &str) -> TcpStream {
    let mut conn = server.connect();
    write!(
        conn,
        "GET {target} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: {user_agent}\r\n\r\n"
    )
    .unwrap();
    conn
}

/// Reads at least `n` bytes (whatever the response is) from `conn`.
fn read_at_least(conn: &mut TcpStream, n: usize) {
    let mut buf = [0u8; 4096];
    let mut got = 0;
    while got < n {
        match read_some(conn, &mut buf) {
            Ok(0) => panic!("closed after {got} bytes"),
            Ok(k) => got += k,
            Err(e) => panic!("read failed after {got} bytes: {e}"),
        }
    }
}

#[test]
fn clients_that_leave_while_waiting_are_freed_at_once() {
    // No keep-alive or repeated frame would reveal a departure during the test: only the
    // client closing its side can.
    let server = TestServer::serving("a.txt", b"a", &["--keepalive", "3600", "--repeat", "0"]);
    let idle_threads = server.threads();
    // One kind at a time, so that each is seen to leave on its own: browsers and readers are
    // served by different code but counted under the same endpoint.
    let kinds = [
        ("poll", "/poll?since=1&timeout=300", READER, 100),
        ("events", "/events", "Mozilla/5.0", 50),
        ("stream", "/stream", "Mozilla/5.0", 50),
        ("stream", "/stream", "curl/8.0.1", 50),
    ];
    for (endpoint, target, user_agent, n) in kinds {
        let clients: Vec<TcpStream> = (0..n)
            .map(|_| {
                let mut conn = request(&server, target, user_agent);
                // A long-poll for a version yet to come answers nothing until then.
                if endpoint != "poll" {
                    read_at_least(&mut conn, 1);
                }
                conn
            })
            .collect();
        server.wait_until_connected(endpoint, n);
        drop(clients);
        let start = Instant::now();
        server.wait_until_connected(endpoint, 0);
        server.wait_threads("fell back", |k| k == idle_threads, DEADLINE);
        eprintln!(
            "{n} departures of {target} ({user_agent}) noticed within {:?}",
            start.elapsed()
        );
    }
}

#[test]
fn clients_coming_and_going_wake_no_idle_connection() {
    // Departures are noticed within a second at worst, by the watcher or a keep-alive.
    let server = TestServer::serving("a.txt", b"a", &["--keepalive", "1", "--repeat", "0"]);
    let idle: Vec<PartReader> = (0..20)
        .map(|_| {
            let mut stream = server.stream("", READER);
            stream.next_part().unwrap();
            stream
        })
        .collect();
    let before = common::settled_thread_wakes(server.child.id(), "connection", 20);
    for _ in 0..30 {
        let mut passing = server.stream("", READER);
        passing.next_part().unwrap();
    }
    // Once the passing readers' threads have ended (their departures noticed).
    let after = common::settled_thread_wakes(server.child.id(), "connection", 20);
    for (thread, wakes) in &before {
        assert_eq!(
            after.get(thread),
            Some(wakes),
            "an idle connection's thread was woken by others coming and going"
        );
    }
    drop(idle);
}

#[test]
fn a_slow_but_steady_client_gets_the_whole_frame() {
    // More than the loopback buffers hold, so the server must wait for the client.
    let size = 12 << 20;
    let frame: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let server = TestServer::serving("big.bin", &frame, &["--write-timeout", "1"]);
    let mut conn = request(&server, "/snapshot", READER);
    rustix::net::sockopt::set_socket_recv_buffer_size(&conn, 64 << 10).unwrap();
    // About 4 MB/s: a few seconds for the frame, several times --write-timeout.
    let mut received = Vec::with_capacity(size + 1024);
    let mut chunk = vec![0u8; 64 << 10];
    let start = Instant::now();
    loop {
        match read_some(&mut conn, &mut chunk) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("cut after {} bytes: {e}", received.len()),
        }
        thread::sleep(Duration::from_millis(16));
    }
    let response = Response::parse(&received);
    assert!(
        response.body == frame,
        "{} of {size} bytes in {:?}",
        response.body.len(),
        start.elapsed()
    );
    assert!(
        start.elapsed() > Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_client_that_stops_reading_is_dropped_with_a_reset() {
    let server = TestServer::serving("big.bin", &vec![b'x'; 16 << 20], &["--write-timeout", "1"]);
    let mut stalled = request(&server, "/stream", READER);
    rustix::net::sockopt::set_socket_recv_buffer_size(&stalled, 64 << 10).unwrap();
    server.wait_until_connected("stream", 1);
    server.wait_until_connected("stream", 0);
    // What the kernel still held for it was thrown away: the client sees a reset, not the
    // rest of the frame and a clean end.
    let mut buf = vec![0u8; 1 << 20];
    let mut received = 0;
    let outcome = loop {
        match stalled.read(&mut buf) {
            Ok(0) => break format!("a clean end after {received} bytes"),
            Ok(n) => received += n,
            Err(e) => break e.kind().to_string(),
        }
    };
    assert_eq!(outcome, std::io::ErrorKind::ConnectionReset.to_string());
}

#[test]
fn a_burst_of_connections_is_queued_by_the_kernel_not_dropped() {
    let server = TestServer::serving("a.txt", b"a", &[]);
    let pid = server.child.id().to_string();
    let signal = |sig: &str| {
        let status = Command::new("kill").args([sig, &pid]).status().unwrap();
        assert!(status.success());
    };
    // While the server accepts nothing, every connection waits in the listen backlog.
    signal("-STOP");
    let mut queued = Vec::new();
    let mut refused = None;
    for _ in 0..600 {
        match TcpStream::connect_timeout(&server.addr.parse().unwrap(), Duration::from_millis(500))
        {
            Ok(conn) => queued.push(conn),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    signal("-CONT");
    assert_eq!(
        queued.len(),
        600,
        "the backlog overflowed after {} connections: {refused:?} (the kernel caps the \
         backlog at net.core.somaxconn, which is 4096 since Linux 5.4)",
        queued.len()
    );
    for mut conn in queued {
        conn.set_read_timeout(Some(DEADLINE)).unwrap();
        conn.write_all(b"GET /snapshot HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut response = Vec::new();
        conn.read_to_end(&mut response).unwrap();
        assert_eq!(Response::parse(&response).body, b"a");
    }
}
