//! Command-line behaviour of the real binary: errors and exit codes.

mod common;

use std::process::Command;

#[test]
fn a_missing_path_exits_1_with_one_line_naming_it() {
    let out = Command::new(common::bin())
        .args(["no-such-file.jpg", "--port", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "pushserve: cannot read 'no-such-file.jpg': No such file or directory\n"
    );
}

#[test]
fn a_bad_flag_is_a_usage_error_exiting_2() {
    let out = Command::new(common::bin())
        .args(["x.jpg", "--poll", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--poll"));
}

#[test]
fn a_port_in_use_exits_1_naming_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let file = std::env::current_exe().unwrap();
    let out = Command::new(common::bin())
        .args([file.to_str().unwrap(), "--port", &port])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!("pushserve: cannot listen on 127.0.0.1:{port}: ")),
        "{err}"
    );
}

#[test]
fn verbose_prints_one_access_line_per_finished_connection() {
    let server = common::TestServer::serving("a.txt", b"hello", &["-v"]);
    assert_eq!(server.get("/snapshot", "").status, 200);
    assert_eq!(server.get("/nope", "").status, 404);
    // Each line is written as its connection ends, not necessarily in the order they began.
    server.wait_stderr(" /nope 404 ");
    server.wait_stderr(" /snapshot 200 ");
    let line = server
        .stderr()
        .lines()
        .find(|l| l.contains(" /snapshot "))
        .unwrap()
        .to_string();
    // pushserve: 127.0.0.1:PORT /snapshot 200 0ms 321B
    let fields: Vec<_> = line.split(' ').collect();
    assert!(fields[1].starts_with("127.0.0.1:"), "{line}");
    assert_eq!(&fields[2..4], ["/snapshot", "200"], "{line}");
    assert!(
        fields[4].ends_with("ms") && fields[5].ends_with('B'),
        "{line}"
    );
}

#[test]
fn quiet_prints_nothing_but_errors() {
    let dir = common::TempDir::new("quiet");
    dir.rewrite("a.txt", b"a");
    dir.rewrite("b.txt", b"b");
    let loud = common::TestServer::start(&[dir.0.to_str().unwrap(), "--interval", "20"]);
    loud.wait_stderr("slide 2/2");
    let quiet = common::TestServer::start(&[dir.0.to_str().unwrap(), "--interval", "20", "-q"]);
    let mut stream = quiet.stream("", "curl/8");
    for _ in 0..4 {
        stream.next_part().unwrap();
    }
    assert_eq!(quiet.stderr(), "");
}

#[test]
fn no_status_line_is_drawn_when_stderr_is_not_a_terminal() {
    let server = common::TestServer::serving("a.txt", b"a", &[]);
    let mut stream = server.stream("", "curl/8");
    stream.next_part().unwrap();
    // Long enough for several redraws of a status line (every 250 ms), by the server's clock.
    let start = std::time::Instant::now();
    loop {
        let status: serde_json::Value =
            serde_json::from_slice(&server.get("/status", "").body).unwrap();
        if status["uptime_secs"].as_f64().unwrap() > 1.0 {
            break;
        }
        assert!(start.elapsed() < common::DEADLINE);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(server.stderr(), "");
}
