//! Hostile and careless input on the real binary: file names that try to write headers or drive
//! the terminal, requests that name another host, sources that are not regular files, folders
//! with nothing to show or links out of them, half-written images, closed stdio.

mod common;

use std::os::unix::fs::symlink;
use std::os::unix::net::UnixStream;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{DEADLINE, Killed, Response, TempDir, TestServer, fixture, wait_exit};

const READER: &str = "curl/8";

/// A child killed on drop, so that a test failing half-way leaves nothing running.
/// Runs `pushserve ARGS --port 0` until it exits (failing after [`DEADLINE`]): its status and
/// stderr.
fn run_to_exit(args: &[&str]) -> (ExitStatus, String) {
    let mut child = Killed(
        Command::new(common::bin())
            .args(args)
            .args(["--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (status, _, stderr) = child.finish(&format!("pushserve {args:?} never exited"));
    (status, stderr)
}

/// A descriptor for a child's stdout or stderr whose reading end is already closed: every
/// write to it fails with EPIPE.
fn broken_pipe() -> Stdio {
    let (ours, theirs) = UnixStream::pair().unwrap();
    drop(ours);
    Stdio::from(std::os::fd::OwnedFd::from(theirs))
}

fn mkfifo(path: &std::path::Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Utime + stime of a process, in clock ticks (1/100 s).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Waits until `/snapshot` answers with `want`.
fn wait_for_snapshot(server: &TestServer, want: &[u8]) {
    let start = Instant::now();
    loop {
        let r = server.get("/snapshot", "");
        if r.status == 200 && r.body == want {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the snapshot never became {:?}; stderr: {}",
            String::from_utf8_lossy(want),
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// Security: headers, the terminal, the Host.

#[test]
fn a_file_name_can_neither_add_a_header_nor_end_the_head() {
    for name in ["cam\r\nSet-Cookie: pwned=1\r\n.jpg", "a\r\n\r\nbody.jpg"] {
        let server = TestServer::showing(&[(name, &fixture("red.jpg"))], &[]);
        let r = server.get("/snapshot", "");
        assert_eq!(r.status, 200);
        assert!(
            !r.head
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with("set-cookie")),
            "a header from the file name: {:?}",
            r.head
        );
        assert_eq!(
            r.body,
            fixture("red.jpg"),
            "the head ended early: {:?}",
            r.head
        );
        let disposition = r.header("content-disposition").unwrap();
        let encoded = name
            .replace('\r', "%0D")
            .replace('\n', "%0A")
            .replace(' ', "%20");
        let encoded = encoded.replace(':', "%3A").replace('=', "%3D");
        assert_eq!(
            disposition,
            format!(
                "inline; filename=\"{}\"; filename*=UTF-8''{encoded}",
                name.replace(['\r', '\n'], "_")
            )
        );
    }
}

#[test]
fn names_printed_on_stderr_have_control_characters_escaped() {
    let server = TestServer::showing(&[("\x1b[31mred\x1b]0;title\x07.txt", b"x")], &[]);
    server.wait_stderr("slide 1/1: \\u{1b}[31mred\\u{1b}]0;title\\u{7}.txt");
    assert!(
        !server.stderr().contains(['\x1b', '\x07']),
        "{:?}",
        server.stderr()
    );
}

#[test]
fn every_response_says_nosniff_and_snapshots_and_streams_are_sandboxed() {
    let server = TestServer::serving("page.html", b"<script>alert(1)</script>", &[]);
    for path in [
        "/",
        "/snapshot",
        "/status",
        "/poll?since=0",
        "/nothing-here",
    ] {
        let r = server.get(path, "");
        assert_eq!(
            r.header("x-content-type-options").as_deref(),
            Some("nosniff"),
            "{path}: {}",
            r.head
        );
    }
    let snapshot = server.get("/snapshot", "");
    assert_eq!(
        snapshot.header("content-security-policy").as_deref(),
        Some("sandbox")
    );
    let mut stream = server.stream("", READER);
    assert!(stream.head.contains("X-Content-Type-Options: nosniff"));
    assert!(stream.head.contains("Content-Security-Policy: sandbox"));
    let part = stream.next_part().unwrap();
    assert_eq!(
        part.header("content-security-policy").as_deref(),
        Some("sandbox")
    );
    let events = Response::parse(&server.raw(b"HEAD /events HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    assert_eq!(
        events.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
}

#[test]
fn bound_to_loopback_a_request_for_another_host_is_refused() {
    let server = TestServer::serving("a.txt", b"a", &[]);
    let port = server.addr.rsplit(':').next().unwrap();
    let with_host = |host: &str| status_of(&server, "/snapshot", host);
    assert_eq!(with_host("attacker.example"), 403);
    assert_eq!(with_host(&format!("attacker.example:{port}")), 403);
    assert_eq!(with_host("10.0.0.1"), 403);
    for ok in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        "cam.localhost".to_string(),
    ] {
        assert_eq!(with_host(&ok), 200, "{ok}");
    }
    // The absolute form names the host in the target, which wins over Host.
    let absolute = |target: &str| status_of(&server, target, "localhost");
    assert_eq!(absolute("http://attacker.example/snapshot"), 403);
    assert_eq!(absolute(&format!("http://127.0.0.1:{port}/snapshot")), 200);

    let allowed = TestServer::serving(
        "a.txt",
        b"a",
        &["--allow-host", "cam.example,other.example"],
    );
    assert_eq!(status_of(&allowed, "/snapshot", "cam.example:8080"), 200);
    assert_eq!(status_of(&allowed, "/snapshot", "other.example"), 200);
    assert_eq!(status_of(&allowed, "/snapshot", "attacker.example"), 403);

    let mut from_env = Command::new(common::bin());
    from_env
        .arg(server.dir().path("a.txt"))
        .env("PUSHSERVE_ALLOW_HOST", "cam.example");
    let from_env = TestServer::start_command(from_env);
    assert_eq!(status_of(&from_env, "/snapshot", "cam.example"), 200);
}

/// The status of `GET target` sent with `Host: host`.
fn status_of(server: &TestServer, target: &str, host: &str) -> u16 {
    let request = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n");
    Response::parse(&server.raw(request.as_bytes())).status
}

#[test]
fn requests_http_1_1_forbids_get_400_and_the_absolute_form_is_served() {
    let server = TestServer::serving("a.txt", b"a", &[]);
    let status = |request: &str| Response::parse(&server.raw(request.as_bytes())).status;
    assert_eq!(status("GET /snapshot HTTP/1.1\r\n\r\n"), 400, "no Host");
    assert_eq!(
        status("GET /snapshot HTTP/1.1\r\nHost: localhost\r\nHost: localhost\r\n\r\n"),
        400
    );
    assert_eq!(
        status(
            "GET /snapshot HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\
             Content-Length: 5\r\n\r\n"
        ),
        400
    );
    assert_eq!(status("GET /snapshot HTTP/1.0\r\n\r\n"), 200);
    let mut stream = server.connect();
    std::io::Write::write_all(
        &mut stream,
        format!(
            "GET http://{}/stream HTTP/1.1\r\nHost: {}\r\n\r\n",
            server.addr, server.addr
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(
        common::PartReader::new(stream).next_part().unwrap().body,
        b"a"
    );
}

#[test]
fn a_snapshot_of_a_version_that_is_gone_is_404() {
    let server = TestServer::serving("a.txt", b"one", &["--poll", "20"]);
    assert_eq!(server.get("/snapshot?seq=1", "").body, b"one");
    server.dir().replace("a.txt", b"two");
    wait_for_snapshot(&server, b"two");
    assert_eq!(server.get("/snapshot?seq=1", "").status, 404);
    assert_eq!(server.get("/snapshot?seq=2", "").body, b"two");
    assert_eq!(server.get("/snapshot?seq=two", "").status, 404);
}

// Sources that are not regular files.

#[test]
fn a_fifo_a_device_or_a_kernel_file_as_path_exits_1_with_one_line() {
    let dir = TempDir::new("fifo");
    mkfifo(&dir.path("f.jpg"));
    for (path, what) in [
        (dir.path("f.jpg"), "a FIFO"),
        ("/dev/zero".into(), "a character device"),
        ("/proc/uptime".into(), "a kernel file (/proc, /sys)"),
    ] {
        let (status, stderr) = run_to_exit(&[path.to_str().unwrap()]);
        assert_eq!(status.code(), Some(1), "{}: {stderr}", path.display());
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(&format!("it is {what}")) && stderr.contains(path.to_str().unwrap()),
            "{stderr}"
        );
    }
}

#[test]
fn a_watched_file_replaced_by_a_fifo_or_a_device_keeps_its_frame_until_it_is_back() {
    let server = TestServer::serving("w.txt", b"one", &["--poll", "20"]);
    let dir = server.dir();
    let mut stream = server.stream("", READER);
    assert_eq!(stream.next_part().unwrap().body, b"one");

    mkfifo(&dir.path("fifo"));
    std::fs::rename(dir.path("fifo"), dir.path("w.txt")).unwrap();
    server.wait_stderr("w.txt' is not a regular file but a FIFO; keeping the last frame");
    assert_eq!(server.get("/snapshot", "").body, b"one");

    symlink("/dev/zero", dir.path("zero")).unwrap();
    std::fs::rename(dir.path("zero"), dir.path("w.txt")).unwrap();
    server.wait_stderr("but a character device");
    assert_eq!(server.get("/snapshot", "").body, b"one");
    assert!(rss_kb(server.child.id()) < 100_000, "it read /dev/zero");

    dir.replace("w.txt", b"two");
    assert_eq!(stream.next_part().unwrap().body, b"two");
    server.wait_stderr("w.txt' is back");
    let warnings = server.stderr().matches("keeping the last frame").count();
    assert_eq!(warnings, 2, "one warning each: {}", server.stderr());
}

#[test]
fn a_version_over_max_frame_is_reported_once_not_every_poll() {
    let server = TestServer::serving("a.txt", b"small", &["--poll", "10", "--max-frame", "10"]);
    server.dir().replace("a.txt", &[b'x'; 100]);
    server.wait_stderr("100 bytes, over --max-frame 10");
    // Fifty polls later, still one line.
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(500) {
        assert_eq!(server.get("/snapshot", "").body, b"small");
    }
    assert_eq!(server.stderr().matches("over --max-frame").count(), 1);
    server.dir().replace("a.txt", &[b'y'; 200]);
    server.wait_stderr("200 bytes, over --max-frame 10");
    assert_eq!(server.stderr().matches("over --max-frame").count(), 2);
}

// Folders.

#[test]
fn a_folder_with_nothing_that_can_be_shown_exits_1_with_one_line() {
    let dir = TempDir::new("nothing");
    dir.rewrite("a.txt", &[b'a'; 100]);
    dir.rewrite("b.txt", &[b'b'; 100]);
    let (status, stderr) = run_to_exit(&[dir.0.to_str().unwrap(), "--max-frame", "10"]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("has no file that can be shown: 'a.txt' is 100 bytes, over --max-frame 10"),
        "{stderr}"
    );
}

#[test]
fn a_folder_whose_slides_all_become_unservable_keeps_the_last_one_without_spinning() {
    let server = TestServer::showing(
        &[("a.txt", b"a")],
        &["--interval", "50", "--max-frame", "10"],
    );
    server.dir().replace("a.txt", &[b'a'; 100]);
    server.wait_stderr("no file in");
    let pid = server.child.id();
    let (ticks, start) = (cpu_ticks(pid), Instant::now());
    while start.elapsed() < Duration::from_secs(2) {
        assert_eq!(server.get("/snapshot", "").body, b"a");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A busy loop would use the whole 2 s (200 ticks); one try per 50 ms uses next to none.
    let used = cpu_ticks(pid) - ticks;
    assert!(used < 50, "{used} ticks of CPU in 2 s");
    assert_eq!(
        server.stderr().matches("no file in").count(),
        1,
        "{}",
        server.stderr()
    );
    server.dir().replace("a.txt", b"b");
    wait_for_snapshot(&server, b"b");
}

#[test]
fn symlinked_folders_that_lead_outside_are_walked_only_with_follow_links() {
    let outside = TempDir::new("outside");
    outside.rewrite("secret.txt", b"secret");
    let dir = TempDir::new("links");
    dir.rewrite("a.txt", b"a");
    symlink(&outside.0, dir.path("out")).unwrap();
    symlink("/", dir.path("root")).unwrap();
    // Symlinked files are served, wherever they lead.
    symlink(outside.path("secret.txt"), dir.path("linked.txt")).unwrap();

    // Walking / would take minutes: serving starts at once.
    let server = TestServer::start(&[dir.0.to_str().unwrap(), "-r", "--interval", "20"]);
    let mut stream = server.stream("", READER);
    let seen: std::collections::BTreeSet<Vec<u8>> =
        (0..8).map(|_| stream.next_part().unwrap().body).collect();
    assert_eq!(seen, [b"a".to_vec(), b"secret".to_vec()].into());
    server.wait_stderr("/2: ");
    assert!(
        !server.stderr().contains("out/secret.txt"),
        "{}",
        server.stderr()
    );

    std::fs::remove_file(dir.path("root")).unwrap();
    let followed = TestServer::start(&[
        dir.0.to_str().unwrap(),
        "-r",
        "--interval",
        "20",
        "--follow-links",
    ]);
    followed.wait_stderr("out/secret.txt");
}

#[test]
fn a_folder_linking_to_the_root_with_follow_links_starts_serving_at_once() {
    let dir = TempDir::new("root-link");
    dir.rewrite("a.txt", b"a");
    symlink("/", dir.path("root")).unwrap();
    // The first slide is shown while the listing goes on.
    let server = TestServer::start(&[dir.0.to_str().unwrap(), "-r", "--follow-links"]);
    assert_eq!(server.get("/snapshot", "").body, b"a");
}

#[test]
fn half_written_bmp_svg_and_webp_images_are_never_published() {
    let mut bmp = b"BM".to_vec();
    bmp.extend_from_slice(&12_342u32.to_le_bytes());
    bmp.extend_from_slice(&[0, 0, 0, 0, 54, 0, 0, 0, 40, 0, 0, 0]);
    bmp.resize(12_342, 0x80);
    let svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"8\" height=\"8\">{}</svg>\n",
        "<rect width=\"8\" height=\"8\" fill=\"red\"/>".repeat(50)
    )
    .into_bytes();
    // A RIFF header stating the length of the rest, then a VP8L chunk.
    let mut webp = b"RIFF".to_vec();
    webp.extend_from_slice(&(8192u32 - 8).to_le_bytes());
    webp.extend_from_slice(b"WEBPVP8L");
    webp.extend_from_slice(&(8192u32 - 20).to_le_bytes());
    webp.resize(8192, 0x2a);
    for (name, image) in [("img.bmp", bmp), ("img.svg", svg), ("img.webp", webp)] {
        let server = TestServer::serving(name, &image[..image.len() / 2], &["--poll", "20"]);
        // The URL is printed after the first frame, or after a second without one.
        assert_eq!(
            server.get("/snapshot", "").status,
            503,
            "{name} published half"
        );
        server.dir().rewrite(name, &image);
        wait_for_snapshot(&server, &image);
    }
}

// Faults in the process itself.

#[test]
fn with_stderr_a_broken_pipe_the_show_goes_on() {
    let dir = TempDir::new("closed-stderr");
    for name in ["a", "b", "c"] {
        dir.rewrite(&format!("{name}.txt"), name.as_bytes());
    }
    let mut command = Command::new(common::bin());
    command
        .args([dir.0.to_str().unwrap(), "--interval", "30", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(broken_pipe());
    let mut child = Killed(command.spawn().unwrap());
    let mut url = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.0.stdout.take().unwrap()),
        &mut url,
    )
    .unwrap();
    let addr = url
        .trim()
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(DEADLINE)).unwrap();
    std::io::Write::write_all(
        &mut conn,
        b"GET /stream HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/8\r\n\r\n",
    )
    .unwrap();
    let mut stream = common::PartReader::new(conn);
    let seen: std::collections::BTreeSet<Vec<u8>> =
        (0..7).map(|_| stream.next_part().unwrap().body).collect();
    assert_eq!(seen.len(), 3, "the slideshow stuck: {seen:?}");
}

#[test]
fn with_stdout_and_stderr_broken_pipes_a_once_show_still_exits_0() {
    let dir = TempDir::new("closed-stdout");
    dir.rewrite("a.txt", b"a");
    dir.rewrite("b.txt", b"b");
    let mut command = Command::new(common::bin());
    command
        .args([
            dir.0.to_str().unwrap(),
            "--once",
            "--interval",
            "50",
            "--port",
            "0",
        ])
        .stdout(broken_pipe())
        .stderr(broken_pipe());
    let mut child = Killed(command.spawn().unwrap());
    let status = wait_exit(&mut child.0, "a --once show with closed stdio never exited");
    assert_eq!(status.code(), Some(0));
}
