//! `pushserve -`: what is piped in, through the real binary: multipart, concatenated images or
//! a live tail of text.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{DEADLINE, Killed, PartReader, TempDir, TestServer, fixture, parts_of, wait_exit};
use serde_json::Value;

/// Whether ffmpeg is here; else the test is skipped, and says so.
fn has_ffmpeg() -> bool {
    common::tool("ffmpeg", "apt-get install ffmpeg").is_some()
}

/// What `ffmpeg -f lavfi -i testsrc … OUTPUT_ARGS -` writes: ten distinct JPEG frames, the
/// same bytes on every run.
fn testsrc(output: &[&str]) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i"])
        .args(["testsrc=size=320x240:rate=10", "-frames:v", "10"])
        .args(output)
        .arg("-")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The ten frames of [`testsrc`] as `ffmpeg -f mpjpeg -` writes them, and each JPEG.
fn testsrc_mpjpeg() -> (Vec<u8>, Vec<Vec<u8>>) {
    let stream = testsrc(&["-f", "mpjpeg"]);
    let frames: Vec<Vec<u8>> = parts_of(&stream, "ffmpeg")
        .into_iter()
        .map(|p| p.body)
        .collect();
    assert_eq!(frames.len(), 10);
    (stream, frames)
}

fn seq(status: &Value) -> u64 {
    status["sources"][0]["frame"]["seq"].as_u64().unwrap_or(0)
}

/// Waits until `GET path` answers `want`, and returns that response.
fn wait_snapshot(server: &TestServer, path: &str, want: &[u8]) -> common::Response {
    let start = Instant::now();
    loop {
        let response = server.get(path, "");
        if response.status == 200 && response.body == want {
            return response;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{path} never answered {:?}; last {} {:?}",
            String::from_utf8_lossy(&want[..want.len().min(200)]),
            response.status,
            String::from_utf8_lossy(&response.body[..response.body.len().min(200)]),
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Reads the parts of `stream` until the last of `frames`, checking that each is one of them,
/// later than the one before: a reader of a fast source gets some of its frames, in order.
fn read_in_order_until_last(stream: &mut PartReader, frames: &[Vec<u8>]) -> usize {
    let (mut at, mut seen) = (None, 0);
    let start = Instant::now();
    while at != Some(frames.len() - 1) {
        assert!(start.elapsed() < DEADLINE, "the last frame never came");
        let part = stream.next_part().expect("stream ended");
        assert_eq!(part.header("content-type").as_deref(), Some("image/jpeg"));
        let index = frames.iter().position(|f| *f == part.body);
        assert!(index.is_some(), "a part that is none of the frames");
        assert!(index > at, "frame {index:?} after frame {at:?}");
        (at, seen) = (index, seen + 1);
    }
    seen
}

/// Writes `bytes` to pushserve's stdin as one write.
fn feed(stdin: &mut ChildStdin, bytes: &[u8]) {
    stdin.write_all(bytes).unwrap();
    stdin.flush().unwrap();
}

#[test]
fn ffmpeg_multipart_on_stdin_is_served_frame_by_frame_with_the_exact_bytes() {
    if !has_ffmpeg() {
        return;
    }
    let (stream, frames) = testsrc_mpjpeg();
    let (server, mut stdin) = TestServer::fed(&["-"]);
    let mut parts = server.stream("", "test");
    // As ffmpeg writes it: the first boundary line alone, then each part with the boundary
    // line after it.
    let line = b"--ffmpeg\r\n";
    let ends: Vec<usize> = (0..stream.len())
        .filter(|&at| stream[at..].starts_with(line))
        .map(|at| at + line.len())
        .collect();
    assert_eq!((ends.len(), ends[10]), (11, stream.len()));
    feed(&mut stdin, &stream[..ends[0]]);
    for (i, frame) in frames.iter().enumerate() {
        feed(&mut stdin, &stream[ends[i]..ends[i + 1]]);
        let part = parts.next_part().expect("stream ended");
        assert!(part.body == *frame, "frame {} is not ffmpeg's", i + 1);
        assert_eq!(part.header("content-type").as_deref(), Some("image/jpeg"));
    }
    assert_eq!(seq(&server.status()), 10);
}

#[test]
fn ffmpeg_piped_into_stdin_live_is_published_frame_by_frame_in_order() {
    if !has_ffmpeg() {
        return;
    }
    let (_, frames) = testsrc_mpjpeg();
    let (server, mut stdin) = TestServer::fed(&["-"]);
    let mut parts = server.stream("", "test");
    let mut live = Command::new("ffmpeg");
    live.args(["-v", "error", "-re", "-f", "lavfi", "-i"])
        .args(["testsrc=size=320x240:rate=10", "-frames:v", "10"])
        .args(["-f", "mpjpeg", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let mut live = Killed(live.spawn().unwrap());
    let mut out = live.0.stdout.take().unwrap();
    let copying = thread::spawn(move || std::io::copy(&mut out, &mut stdin).map(|_| stdin));
    let seen = read_in_order_until_last(&mut parts, &frames);
    eprintln!("a reader of ffmpeg at 10 frames/s saw {seen} of its 10 frames");
    assert_eq!(wait_exit(&mut live.0, "ffmpeg never ended").code(), Some(0));
    drop(copying.join().unwrap().unwrap());
    server.wait_stderr("stdin ended; keeping the last frame");
    assert_eq!(seq(&server.status()), 10, "one frame per part");
}

#[test]
fn concatenated_jpegs_are_each_their_own_part_with_the_exact_bytes() {
    let (server, mut stdin) = TestServer::fed(&["-"]);
    let mut parts = server.stream("", "test");
    for name in ["red.jpg", "green.jpg", "blue.jpg"] {
        feed(&mut stdin, &fixture(name));
        let part = parts.next_part().expect("stream ended");
        assert!(part.body == fixture(name), "{name} is not served as it is");
        assert_eq!(part.header("content-type").as_deref(), Some("image/jpeg"));
    }
    assert_eq!(seq(&server.status()), 3);
}

#[test]
fn ffmpeg_image2pipe_output_is_split_into_every_frame() {
    if !has_ffmpeg() {
        return;
    }
    let (_, frames) = testsrc_mpjpeg();
    let images = testsrc(&["-f", "image2pipe", "-c:v", "mjpeg"]);
    assert!(
        images == frames.concat(),
        "ffmpeg's two muxers carry the same JPEGs"
    );
    let (server, mut stdin) = TestServer::fed(&["-"]);
    let mut parts = server.stream("", "test");
    // All at once, as ffmpeg writes them when it encodes faster than the pipe is read.
    feed(&mut stdin, &images);
    read_in_order_until_last(&mut parts, &frames);
    drop(stdin);
    server.wait_stderr("stdin ended; keeping the last frame");
    assert_eq!(seq(&server.status()), 10, "one frame per image");
    assert_eq!(server.get("/snapshot", "").body, frames[9]);
    assert_eq!(
        server.stderr(),
        "pushserve: stdin ended; keeping the last frame\n",
        "nothing skipped"
    );
}

/// `red.jpg` with an Exif APP1 segment after its SOI that holds `green.jpg` as a thumbnail,
/// whose own end of image (FF D9) is not the end of this one.
fn red_with_green_thumbnail() -> Vec<u8> {
    let (red, green) = (fixture("red.jpg"), fixture("green.jpg"));
    let length = u16::try_from(2 + 6 + green.len()).unwrap();
    [
        &red[..2],
        &[0xFF, 0xE1],
        &length.to_be_bytes(),
        b"Exif\0\0",
        &green,
        &red[2..],
    ]
    .concat()
}

#[test]
fn a_jpeg_with_a_thumbnail_in_its_exif_is_served_whole() {
    let whole = red_with_green_thumbnail();
    let (server, mut stdin) = TestServer::fed(&["-"]);
    let mut parts = server.stream("", "test");
    feed(&mut stdin, &whole);
    let first = parts.next_part().expect("stream ended");
    assert!(
        first.body == whole,
        "cut at {} of {} bytes",
        first.body.len(),
        whole.len()
    );
    // What follows is the next image.
    feed(&mut stdin, &fixture("blue.jpg"));
    let next = parts.next_part().expect("stream ended");
    assert!(next.body == fixture("blue.jpg"));
    assert_eq!(seq(&server.status()), 2);
}

fn lines(numbers: std::ops::RangeInclusive<u32>) -> String {
    numbers.map(|n| format!("line {n}\n")).collect()
}

/// Reads Server-Sent Events from `/events` until one's JSON `text` is `want`.
fn wait_event_text(events: &mut BufReader<std::net::TcpStream>, want: &str) {
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < DEADLINE,
            "no event with the text {want:?}"
        );
        let mut line = String::new();
        assert!(events.read_line(&mut line).unwrap() > 0, "events ended");
        if let Some(data) = line.trim_end().strip_prefix("data: ") {
            let frame: Value = serde_json::from_str(data).unwrap();
            if frame["text"] == want {
                assert_eq!(frame["type"], "text/plain; charset=utf-8");
                return;
            }
        }
    }
}

#[test]
fn text_on_stdin_is_a_live_tail_of_its_last_50_lines() {
    let (server, mut stdin) = TestServer::fed(&["-"]);
    feed(&mut stdin, lines(1..=80).as_bytes());
    let snapshot = wait_snapshot(&server, "/snapshot", lines(31..=80).as_bytes());
    assert_eq!(
        snapshot.header("content-type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    let mut parts = server.stream("", "test");
    let mut events = server.connect();
    write!(events, "GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut events = BufReader::new(events);
    wait_event_text(&mut events, &lines(31..=80));
    feed(&mut stdin, lines(81..=85).as_bytes());
    let part = parts.wait_for(lines(36..=85).as_bytes());
    assert_eq!(
        part.header("content-type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    wait_event_text(&mut events, &lines(36..=85));
}

#[test]
fn lines_sets_how_many_lines_the_tail_shows() {
    let (server, mut stdin) = TestServer::fed(&["-", "--lines", "3"]);
    feed(&mut stdin, lines(1..=80).as_bytes());
    wait_snapshot(&server, "/snapshot", lines(78..=80).as_bytes());
    feed(&mut stdin, lines(81..=81).as_bytes());
    wait_snapshot(&server, "/snapshot", lines(79..=81).as_bytes());
}

#[test]
fn bytes_of_no_format_are_served_as_text() {
    let (server, mut stdin) = TestServer::fed(&["-"]);
    feed(&mut stdin, b"\x00\x01garbage \xFF\xFE of no format\n");
    let snapshot = wait_snapshot(
        &server,
        "/snapshot",
        "\0\u{1}garbage \u{FFFD}\u{FFFD} of no format\n".as_bytes(),
    );
    assert_eq!(
        snapshot.header("content-type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
}

#[test]
fn at_the_end_of_stdin_the_last_frame_stays_and_the_server_goes_on() {
    let (mut server, mut stdin) = TestServer::fed(&["-"]);
    let mut parts = server.stream("", "test");
    feed(&mut stdin, &fixture("red.jpg"));
    feed(&mut stdin, &fixture("blue.jpg"));
    parts.wait_for(&fixture("blue.jpg"));
    drop(stdin);
    server.wait_stderr("stdin ended; keeping the last frame");
    let snapshot = server.get("/snapshot", "");
    assert_eq!(snapshot.status, 200);
    assert!(snapshot.body == fixture("blue.jpg"));
    assert!(server.child.try_wait().unwrap().is_none(), "it exited");
    // Its streams stay open, and new ones get the last frame.
    let mut late = server.stream("", "test");
    late.wait_for(&fixture("blue.jpg"));
    assert_eq!(server.status()["clients"]["stream"], 2);
}

#[test]
fn a_truncated_jpeg_at_the_end_of_stdin_is_never_published() {
    let (server, mut stdin) = TestServer::fed(&["-"]);
    let mut parts = server.stream("", "test");
    feed(&mut stdin, &fixture("red.jpg"));
    parts.wait_for(&fixture("red.jpg"));
    let green = fixture("green.jpg");
    feed(&mut stdin, &green[..green.len() / 2]);
    drop(stdin);
    server.wait_stderr("stdin ended in the middle of an image");
    server.wait_stderr("it was not published");
    server.wait_stderr("stdin ended; keeping the last frame");
    assert!(server.get("/snapshot", "").body == fixture("red.jpg"));
    assert_eq!(seq(&server.status()), 1);
}

#[test]
fn once_exits_0_after_stdin_ends_and_streams_get_the_final_boundary() {
    let (mut server, mut stdin) = TestServer::fed(&["-", "--once"]);
    let mut parts = server.stream("", "test");
    feed(&mut stdin, &fixture("red.jpg"));
    parts.wait_for(&fixture("red.jpg"));
    feed(&mut stdin, &fixture("green.jpg"));
    parts.wait_for(&fixture("green.jpg"));
    drop(stdin);
    assert!(parts.next_part().is_none(), "a part after the end of stdin");
    assert!(parts.closed_cleanly, "no final boundary");
    let status = wait_exit(&mut server.child, "pushserve - --once never exited");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn stdin_is_served_under_its_name_among_several_sources() {
    let dir = TempDir::new("stdin-among-several");
    dir.rewrite("other.jpg", &fixture("blue.jpg"));
    let other = dir.path("other.jpg").display().to_string();
    let (server, mut stdin) = TestServer::fed(&["-", &other]);
    let url = &server.url;
    assert_eq!(
        server.stdout_lines(3),
        [url.clone(), format!("{url}stdin/"), format!("{url}other/")]
    );
    feed(&mut stdin, b"from stdin\n");
    let snapshot = wait_snapshot(&server, "/stdin/snapshot", b"from stdin\n");
    assert_eq!(
        snapshot.header("content-type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert!(server.get("/other/snapshot", "").body == fixture("blue.jpg"));
    let status = server.status();
    assert_eq!(status["sources"][0]["kind"], "stdin");
    assert_eq!(status["sources"][0]["source"], "-");
}

#[test]
fn a_part_whose_content_length_is_too_long_is_cut_at_the_boundary_and_the_next_kept() {
    let (server, mut stdin) = TestServer::fed(&["-"]);
    let mut parts = server.stream("", "test");
    let first = b"the first part".to_vec();
    let second = [&b"the second part, "[..], &[b'.'; 150]].concat();
    // The first part's Content-Length is 100 bytes more than its body: what follows it, the
    // next boundary, is all it gets until the second part comes.
    let head = format!(
        "--b\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        first.len() + 100
    );
    feed(
        &mut stdin,
        &[head.as_bytes(), &first, b"\r\n--b\r\n"].concat(),
    );
    parts.wait_for(&first);
    server.wait_stderr(
        "part 1 on stdin has a Content-Length that does not match its body; finding parts by \
         boundary",
    );
    feed(
        &mut stdin,
        &[
            &b"Content-Type: text/plain\r\n\r\n"[..],
            &second,
            b"\r\n--b\r\n",
        ]
        .concat(),
    );
    parts.wait_for(&second);
    assert_eq!(seq(&server.status()), 2, "one frame per part");
}

#[test]
fn parts_delimited_by_another_boundary_mid_stream_are_followed_and_said() {
    let (server, mut stdin) = TestServer::fed(&["-"]);
    let mut parts = server.stream("", "test");
    let part = |boundary: &str, body: &[u8]| {
        let head = format!(
            "--{boundary}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        [head.as_bytes(), body, b"\r\n"].concat()
    };
    feed(&mut stdin, &part("b", b"one"));
    parts.wait_for(b"one");
    // From here on the parts are delimited by --c.
    feed(
        &mut stdin,
        &[part("c", b"two"), part("c", b"three")].concat(),
    );
    parts.wait_for(b"three");
    server.wait_stderr("stdin's parts are delimited by --c, not by --b; following --c");
    let status = server.status();
    assert_eq!(
        status["sources"][0]["state"], "parts delimited by --c, not by --b",
        "{status}"
    );
    assert_eq!(seq(&status), 3, "one frame per part");
}

#[test]
fn a_silent_stdin_leaves_its_source_asleep_until_bytes_come() {
    // A pipe held open that sends nothing: the source is woken by what comes and by the
    // server's close, and by nothing else (no look every so often).
    let (server, mut stdin) = TestServer::fed(&["-"]);
    let pid = server.child.id();
    let before = common::settled_thread_wakes(pid, "source stdin", 1);
    thread::sleep(Duration::from_secs(1));
    let after = common::thread_wakes(pid, "source stdin");
    let woken: u64 = after.values().sum::<u64>() - before.values().sum::<u64>();
    assert!(woken <= 1, "the silent source woke {woken} times in 1 s");
    feed(&mut stdin, b"hello\n");
    wait_snapshot(&server, "/snapshot", b"hello\n");
}
