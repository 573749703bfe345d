//! Sources other than a file or a folder, and several sources in one server: the real binary,
//! real HTTP, what a client gets.

mod common;

use std::io::Write;
use std::process::Command;

use common::{TempDir, TestServer, fixture};

#[test]
fn a_command_s_output_is_served_and_each_change_streamed() {
    let dir = TempDir::new("command-output");
    dir.rewrite("now.txt", b"one\n");
    let command = format!("cat '{}'", dir.path("now.txt").display());
    let server = TestServer::start(&["--exec", &command, "--poll", "50"]);
    let mut parts = server.stream("", "test");
    let first = parts.wait_for(b"one\n");
    assert_eq!(
        first.header("content-type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    dir.rewrite("now.txt", b"two\n");
    parts.wait_for(b"two\n");
    let status = server.status();
    assert_eq!(status["sources"][0]["kind"], "command");
    assert_eq!(status["sources"][0]["name"], "cat");
    assert_eq!(status["sources"][0]["source"], command.as_str());
}

#[test]
fn a_command_printing_an_image_serves_it_as_one() {
    let dir = TempDir::new("command-image");
    dir.rewrite("cam.png", &fixture("red.png"));
    let command = format!("cat '{}'", dir.path("cam.png").display());
    let server = TestServer::start(&["--exec", &command]);
    let snapshot = server.get("/snapshot", "");
    assert_eq!(
        snapshot.header("content-type").as_deref(),
        Some("image/png")
    );
    assert_eq!(snapshot.body, fixture("red.png"));
}

#[test]
fn a_failing_command_keeps_its_last_frame_and_says_why_once() {
    let dir = TempDir::new("command-fails");
    dir.rewrite("now.txt", b"kept\n");
    // Each run leaves a line in runs.log, so the test can wait for runs rather than for time.
    let command = format!(
        "echo run >> '{}'; cat '{}'",
        dir.path("runs.log").display(),
        dir.path("now.txt").display()
    );
    let runs =
        || std::fs::read_to_string(dir.path("runs.log")).map_or(0, |log| log.lines().count());
    let server = TestServer::start(&["--exec", &command, "--poll", "20"]);
    assert_eq!(server.get("/snapshot", "").body, b"kept\n");
    std::fs::remove_file(dir.path("now.txt")).unwrap();
    let status = server.wait_status("a failure in the state", |s| {
        s["sources"][0]["state"]
            .as_str()
            .is_some_and(|s| s.contains("exited with status 1"))
    });
    assert!(
        status["sources"][0]["state"]
            .as_str()
            .unwrap()
            .contains("No such file"),
        "the last line of its stderr: {status}"
    );
    server.wait_stderr("exited with status 1");
    // Ten more failed runs: still one warning, and the last frame.
    let failed_from = runs();
    common::wait_until("ten more failed runs", || runs() >= failed_from + 10);
    assert_eq!(server.stderr().matches("exited with status").count(), 1);
    assert_eq!(server.get("/snapshot", "").body, b"kept\n");
    dir.rewrite("now.txt", b"back\n");
    server.wait_stderr("works again");
    assert_eq!(server.get("/snapshot", "").body, b"back\n");
}

#[test]
fn a_command_that_hangs_or_floods_never_stops_the_other_sources() {
    let server = TestServer::serving(
        "cam.jpg",
        &fixture("red.jpg"),
        &[
            "--exec",
            "hang=sleep 30",
            "--exec",
            "flood=yes",
            "--poll",
            "20",
            "--max-frame",
            "64K",
        ],
    );
    let _ = server.stdout_lines(4);
    let mut parts = stream_of(&server, "cam");
    parts.wait_for(&fixture("red.jpg"));
    server.dir().replace("cam.jpg", &fixture("green.jpg"));
    parts.wait_for(&fixture("green.jpg"));
    server.wait_stderr("flood: 'yes' printed more than --max-frame");
    // The flood is cut at --max-frame, and served cut.
    let flood = server.get("/flood/snapshot", "");
    assert_eq!(flood.body.len(), 64 << 10);
    assert!(flood.body.starts_with(b"y\ny\n"));
}

/// `GET /NAME/stream` from a stream reader.
fn stream_of(server: &TestServer, name: &str) -> common::PartReader {
    let mut s = server.connect();
    write!(
        s,
        "GET /{name}/stream HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n"
    )
    .unwrap();
    common::PartReader::new(s)
}

#[test]
fn several_sources_are_each_served_under_their_name_and_listed() {
    let dir = TempDir::new("several");
    dir.rewrite("cam.jpg", &fixture("red.jpg"));
    dir.rewrite("other.jpg", &fixture("blue.jpg"));
    dir.rewrite("notes.txt", b"hello\n");
    let path = |name: &str| dir.path(name).display().to_string();
    let server = TestServer::start(&[
        &path("cam.jpg"),
        &format!("back={}", path("other.jpg")),
        &path("notes.txt"),
        "--exec",
        "echo hi",
    ]);
    let url = &server.url;
    assert_eq!(
        server.stdout_lines(5),
        [
            url.clone(),
            format!("{url}cam/"),
            format!("{url}back/"),
            format!("{url}notes/"),
            format!("{url}echo/"),
        ]
    );
    assert_eq!(server.get("/cam/snapshot", "").body, fixture("red.jpg"));
    assert_eq!(server.get("/back/snapshot", "").body, fixture("blue.jpg"));
    assert_eq!(server.get("/notes/snapshot", "").body, b"hello\n");
    assert_eq!(server.get("/echo/snapshot", "").body, b"hi\n");
    // The root endpoints serve the first source; / is the index.
    assert_eq!(server.get("/snapshot", "").body, fixture("red.jpg"));
    let index = server.get("/", "");
    assert_eq!(index.status, 200);
    assert!(String::from_utf8_lossy(&index.body).contains("fetch(\"status\""));
    let viewer = server.get("/back/", "");
    assert!(String::from_utf8_lossy(&viewer.body).contains("new EventSource(\"events\")"));
    let moved = server.get("/back", "");
    assert_eq!(moved.status, 301);
    assert_eq!(moved.header("location").as_deref(), Some("/back/"));
    assert_eq!(server.get("/nobody/stream", "").status, 404);
    assert_eq!(server.get("/back/status", "").status, 404);

    let status = server.status();
    let listed: Vec<(&str, &str)> = status["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        listed,
        [
            ("cam", "file"),
            ("back", "file"),
            ("notes", "file"),
            ("echo", "command")
        ]
    );
    assert_eq!(status["sources"][1]["frame"]["name"], "other.jpg");

    let mut events = server.connect();
    write!(
        events,
        "GET /notes/events HTTP/1.1\r\nHost: localhost\r\n\r\n"
    )
    .unwrap();
    let mut got = Vec::new();
    let mut buf = [0; 4096];
    while !String::from_utf8_lossy(&got).contains(r#""text":"hello\n""#) {
        let n = common::read_some(&mut events, &mut buf).unwrap();
        assert!(n > 0, "events ended: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    server.wait_status("the event client counted on its source", |s| {
        s["sources"][2]["clients"]["events"] == 1 && s["clients"]["events"] == 1
    });
}

#[test]
fn names_are_url_safe_and_a_clash_gets_a_number() {
    let dir = TempDir::new("names");
    dir.rewrite("my cam <1>.jpg", &fixture("red.jpg"));
    std::fs::create_dir_all(dir.path("a")).unwrap();
    std::fs::create_dir_all(dir.path("b")).unwrap();
    std::fs::write(dir.path("a").join("cam.jpg"), fixture("red.jpg")).unwrap();
    std::fs::write(dir.path("b").join("cam.jpg"), fixture("blue.jpg")).unwrap();
    let path = |name: &str| dir.path(name).display().to_string();
    let server = TestServer::start(&[
        &path("my cam <1>.jpg"),
        &path("a/cam.jpg"),
        &path("b/cam.jpg"),
    ]);
    let url = &server.url;
    assert_eq!(
        server.stdout_lines(4)[1..],
        [
            format!("{url}my-cam-1/"),
            format!("{url}cam/"),
            format!("{url}cam-2/")
        ]
    );
    assert_eq!(server.get("/cam-2/snapshot", "").body, fixture("blue.jpg"));
}

/// A name keeps its letters beyond ASCII: percent-encoded in URLs (printed, redirected to,
/// routed), as they are in JSON, escaped there.
#[test]
fn names_keep_letters_beyond_ascii_percent_encoded_in_urls() {
    let dir = TempDir::new("names-unicode");
    dir.rewrite("ünï cödé.jpg", &fixture("red.jpg"));
    dir.rewrite("\"q\" \u{202e}x.txt", b"quoted\n");
    let path = |name: &str| dir.path(name).display().to_string();
    let server = TestServer::start(&[&path("ünï cödé.jpg"), &path("\"q\" \u{202e}x.txt")]);
    let encoded = "%C3%BCn%C3%AF-c%C3%B6d%C3%A9";
    assert_eq!(
        server.stdout_lines(3)[1..],
        [
            format!("{}{encoded}/", server.url),
            format!("{}q-x/", server.url)
        ]
    );
    let snapshot = server.get(&format!("/{encoded}/snapshot"), "");
    assert_eq!((snapshot.status, snapshot.body), (200, fixture("red.jpg")));
    // Lower-case escapes, and the raw UTF-8 some tools send, name it too.
    assert_eq!(
        server
            .get("/%c3%bcn%c3%af-c%c3%b6d%c3%a9/snapshot", "")
            .status,
        200
    );
    assert_eq!(server.get("/ünï-cödé/snapshot", "").status, 200);
    assert_eq!(server.get("/%C3/snapshot", "").status, 404);
    let moved = server.get(&format!("/{encoded}"), "");
    assert_eq!(moved.status, 301);
    assert_eq!(moved.header("location"), Some(format!("/{encoded}/")));
    let status = server.status();
    assert_eq!(status["sources"][0]["name"], "ünï-cödé");
    assert_eq!(status["sources"][1]["name"], "q-x");
    assert_eq!(status["sources"][1]["frame"]["name"], "\"q\" \u{202e}x.txt");
}

/// A command's versions are named by its source, as its viewer's title and caption show them.
#[test]
fn a_command_s_versions_are_named_by_its_source() {
    let server = TestServer::start(&["--exec", "load=cat /proc/loadavg", "--exec", "uptime"]);
    let load: serde_json::Value =
        serde_json::from_slice(&server.get("/load/poll", "").body).unwrap();
    assert_eq!(load["name"], "load");
    let uptime: serde_json::Value =
        serde_json::from_slice(&server.get("/uptime/poll", "").body).unwrap();
    assert_eq!(uptime["name"], "uptime");
}

#[test]
fn a_name_given_twice_or_stdin_twice_or_a_bad_name_is_a_usage_error() {
    let dir = TempDir::new("name-clash");
    dir.rewrite("a.jpg", &fixture("red.jpg"));
    let a = dir.path("a.jpg").display().to_string();
    for (args, says) in [
        (
            vec![format!("cam={a}"), "--exec".into(), "cam=date".into()],
            "the name 'cam' is given to two sources",
        ),
        (
            vec!["-".into(), "-".into()],
            "'-' (stdin) can be given only once",
        ),
        (
            vec![format!(".hidden={a}")],
            "'.hidden' cannot name a source",
        ),
        (
            vec!["cam=http://".into()],
            "cannot relay: 'http:///' names no host",
        ),
    ] {
        let out = Command::new(common::bin())
            .args(&args)
            .args(["--port", "0"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn with_once_a_command_runs_once_and_the_server_exits_0() {
    let mut server = TestServer::start(&["--exec", "echo once", "--once"]);
    let status = common::wait_exit(&mut server.child, "pushserve --once to exit");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn messages_of_several_sources_name_their_source() {
    let dir = TempDir::new("labels");
    dir.rewrite("cam.jpg", &fixture("red.jpg"));
    let server = TestServer::start(&[
        &dir.path("cam.jpg").display().to_string(),
        "--exec",
        "broken=exit 3",
    ]);
    server.wait_stderr("pushserve: broken: 'exit 3' exited with status 3");
}
