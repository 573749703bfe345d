//! Real third-party stream readers against the real binary: ffmpeg, OpenCV (through Python),
//! curl, and Python's `email` parser as an outside judge of the stream's bytes. `.ci/run`
//! installs them when absent.

mod common;

use std::io::{self, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{DEADLINE, Killed, TempDir, TestServer, fixture};

/// `name` as a command, if it is installed (else the test is skipped, see `client_present`).
fn tool(name: &str) -> Option<Command> {
    common::tool(name, &format!("apt-get install {name}"))
}

fn wait_for_file(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < DEADLINE,
            "{} never appeared",
            path.display()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Runs ffmpeg on /stream with `input` options (e.g. `-f mpjpeg`) in lockstep with three
/// versions: each is written only once ffmpeg has emitted the one before, so each frame must
/// come out on its own, not pushed out by the next one.
fn ffmpeg_gets_three_versions_in_lockstep(input: &[&str]) {
    let Some(mut ffmpeg) = tool("ffmpeg") else {
        return;
    };
    let server = TestServer::serving("cam.jpg", &fixture("red.jpg"), &["--poll", "20"]);
    let out = TempDir::new("ffmpeg-out");
    let ffmpeg = ffmpeg
        .args(["-nostdin", "-v", "error"])
        .args(input)
        .args(["-i", &format!("{}stream", server.url)])
        .args(["-frames:v", "3", "-c", "copy", "-f", "image2"])
        .arg(out.path("%d.jpg"))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut ffmpeg = Killed(ffmpeg);
    wait_for_file(&out.path("1.jpg"));
    server.dir().replace("cam.jpg", &fixture("green.jpg"));
    wait_for_file(&out.path("2.jpg"));
    server.dir().replace("cam.jpg", &fixture("blue.jpg"));
    wait_for_file(&out.path("3.jpg"));
    let status = common::wait_exit(&mut ffmpeg.0, "ffmpeg did not stop after 3 frames");
    assert!(status.success());
    for (i, name) in ["red.jpg", "green.jpg", "blue.jpg"].iter().enumerate() {
        let frame = std::fs::read(out.path(&format!("{}.jpg", i + 1))).unwrap();
        assert_eq!(frame, fixture(name), "frame {}", i + 1);
    }
}

#[test]
fn ffmpeg_mpjpeg_gets_each_version_as_soon_as_it_is_written() {
    ffmpeg_gets_three_versions_in_lockstep(&["-f", "mpjpeg"]);
}

/// OpenCV's VideoCapture opens URLs this way: ffmpeg guesses the format from the first 2 KB,
/// which a small first part must not keep it waiting for.
#[test]
fn ffmpeg_guessing_the_format_as_opencv_does_gets_each_version_at_once() {
    ffmpeg_gets_three_versions_in_lockstep(&[]);
}

/// Reads frames from `url` with OpenCV for 3.5 s, each read given 2 s (OpenCV's own default
/// is 30 s): prints the BGR pixel at (10, 10) of each, and exits 1 at the first failed read.
const OPENCV_READS: &str = r#"
import sys, time, cv2
cap = cv2.VideoCapture(sys.argv[1], cv2.CAP_FFMPEG,
    [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 5000, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 2000])
if not cap.isOpened():
    sys.exit("cannot open " + sys.argv[1])
start = time.monotonic()
while time.monotonic() - start < 3.5:
    ok, image = cap.read()
    if not ok:
        sys.exit("read failed after %.1f s" % (time.monotonic() - start))
    print(*image[10, 10], flush=True)
"#;

/// OpenCV gives up when a read brings no frame within its timeout, whatever else arrives, so
/// an unchanged file must still give it one every `--repeat` (here 1 s against its 2 s).
#[test]
fn opencv_keeps_reading_a_file_that_does_not_change() {
    let Some(mut python) = common::python_with_opencv() else {
        return;
    };
    let server = TestServer::serving(
        "cam.jpg",
        &fixture("red.jpg"),
        &["--keepalive", "1", "--repeat", "1"],
    );
    let python = python
        .args(["-c", OPENCV_READS, &format!("{}stream", server.url)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut python = Killed(python);
    let status = common::wait_exit(&mut python.0, "OpenCV did not stop after 3.5 s");
    let out = io::read_to_string(python.0.stdout.take().unwrap()).unwrap();
    let err = io::read_to_string(python.0.stderr.take().unwrap()).unwrap();
    assert!(status.success(), "{err}");
    let frames: Vec<&str> = out.lines().collect();
    // The first frame at once, then one a second.
    assert!(frames.len() >= 3, "{out}");
    assert!(frames.iter().all(|bgr| *bgr == "0 0 254"), "{out}");
}

#[test]
fn curl_receives_well_formed_parts() {
    let Some(mut curl) = tool("curl") else {
        return;
    };
    let server = TestServer::serving("now.txt", b"first\n", &["--poll", "20", "--keepalive", "1"]);
    // Two seconds of stream: the first part at once, then keep-alives.
    let out = curl
        .args([
            "-sS",
            "-N",
            "--max-time",
            "2",
            "-D",
            "-",
            &format!("{}stream", server.url),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(28), "curl stops at --max-time");
    let response = common::Response::parse(&out.stdout);
    assert_eq!(response.status, 200);
    let boundary = response
        .header("content-type")
        .unwrap()
        .split("boundary=")
        .nth(1)
        .unwrap()
        .to_string();
    assert!(
        boundary.len() >= 32 && boundary.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{boundary}"
    );
    let head =
        format!("--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 6\r\n");
    let body = String::from_utf8_lossy(&response.body).into_owned();
    // The first part is padded to 2 KB with a header line readers ignore (see push.rs) ...
    let first = body
        .split_once("\r\n\r\nfirst\n\r\n")
        .expect("a first part")
        .0;
    assert!(
        first.starts_with(&format!("{head}X-Padding: ...")),
        "{body}"
    );
    let first_part = &body[..body.find("first\n").unwrap() + "first\n".len()];
    assert!(first_part.len() + 2 + boundary.len() + 2 >= 2048, "{body}");
    // ... and ends with the next delimiter line, then a keep-alive header line of the next part
    // each keep-alive (readers ignore headers they do not know).
    let after = body.split_once("\r\n\r\nfirst\n").unwrap().1;
    let delimiter = format!("\r\n--{boundary}");
    let keepalives = after
        .strip_prefix(&delimiter)
        .unwrap_or_else(|| panic!("no delimiter after the first part: {after:?}"));
    assert!(
        !keepalives.is_empty() && keepalives.split("\r\nX-Keepalive: 1").all(str::is_empty),
        "not only keep-alive lines within 2 s: {after:?}"
    );
}

/// curl ends a `--max-time` transfer by closing its socket, with nothing more to say: that close
/// alone must free the stream, not the next keep-alive or repeated frame seconds later.
#[test]
fn curl_readers_that_exit_are_no_longer_counted_within_a_second() {
    if tool("curl").is_none() {
        return;
    }
    let server = TestServer::serving("now.txt", b"now\n", &[]);
    let readers: Vec<Killed> = (0..3)
        .map(|_| {
            let curl = Command::new("curl")
                .args(["-s", "--max-time", "1", "-o", "/dev/null"])
                .args(["-w", "%{http_code} %{size_download}"])
                .arg(format!("{}stream", server.url))
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            Killed(curl)
        })
        .collect();
    for mut reader in readers {
        let status = common::wait_exit(&mut reader.0, "curl outlived its --max-time");
        let written = io::read_to_string(reader.0.stdout.take().unwrap()).unwrap();
        // 28: still streaming when --max-time ended it, after the first part had come.
        assert_eq!(status.code(), Some(28), "{written}");
        let (code, size) = written.split_once(' ').unwrap();
        assert_eq!(code, "200");
        assert!(size.parse::<u64>().unwrap() > 0, "{written}");
    }
    let exited = Instant::now();
    loop {
        let status: serde_json::Value =
            serde_json::from_slice(&server.get("/status", "").body).unwrap();
        if status["clients"]["stream"] == 0 {
            break;
        }
        assert!(
            exited.elapsed() < Duration::from_secs(1),
            "curl exited {:?} ago and its streams are still counted: {status}",
            exited.elapsed()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Parses a captured stream (the response head without its status line, then the body) from
/// stdin with Python's standard `email` parser, which finds parts by their boundary lines
/// (RFC 2046) and knows nothing of Content-Length; prints what it found as JSON, bodies in hex.
const EMAIL_PARSES: &str = r#"
import sys, json, email
msg = email.message_from_bytes(sys.stdin.buffer.read())
parts = msg.get_payload() if msg.is_multipart() else []
print(json.dumps({
    "type": msg.get_content_type(),
    "defects": [repr(d) for d in msg.defects],
    "preamble": msg.preamble or "",
    "epilogue": msg.epilogue or "",
    "parts": [{
        "type": p.get("Content-Type"),
        "length": p.get("Content-Length"),
        "defects": [repr(d) for d in p.defects],
        "body": (p.get_payload(decode=True) or b"").hex(),
    } for p in parts],
}))
"#;

/// A stream's bytes as they arrive, gathered by a thread until the server closes it.
struct Capture(Arc<Mutex<Vec<u8>>>, thread::JoinHandle<()>);

impl Capture {
    fn start(mut conn: TcpStream) -> Capture {
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&bytes);
        let reader = thread::spawn(move || {
            let mut chunk = [0u8; 65536];
            while let Ok(n @ 1..) = common::read_some(&mut conn, &mut chunk) {
                sink.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        Capture(bytes, reader)
    }

    /// Waits until `want` has arrived at or after `from`; returns where it ends.
    fn wait_for(&self, want: &[u8], from: usize) -> usize {
        let start = Instant::now();
        loop {
            if let Some(at) = common::find(&self.0.lock().unwrap()[from..], want) {
                return from + at + want.len();
            }
            assert!(
                start.elapsed() < DEADLINE,
                "never received {:?}",
                String::from_utf8_lossy(want)
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Everything, once the server has closed the stream.
    fn finish(self) -> Vec<u8> {
        self.1.join().unwrap();
        Arc::try_unwrap(self.0).unwrap().into_inner().unwrap()
    }
}

/// Streams versions of a text file to a stream reader (`curl/8`, with keep-alive lines between
/// the versions) or a browser (`Mozilla/5.0`), lets SIGTERM end the stream with its final
/// boundary, and has Python's `email` parser read what was sent: each part must be a version,
/// byte for byte, with its Content-Type. Among the versions are lines like the stream's
/// delimiters (the boundary with its last letter changed, the boundary in mid-line), a header
/// block, binary bytes, and a body that ends in a lone CR, so that a delimiter's CRLF that went
/// missing or lost its CR shows.
fn python_email_reads(reader: bool) -> Option<EmailParts> {
    let mut python = tool("python3")?;
    let (user_agent, args): (&str, &[&str]) = if reader {
        (
            "curl/8",
            &["--poll", "20", "--keepalive", "1", "--repeat", "0"],
        )
    } else {
        // No keep-alive (for a browser, the current frame again) within the test.
        ("Mozilla/5.0", &["--poll", "20", "--keepalive", "60"])
    };
    let mut server = TestServer::serving("now.txt", b"first\n", args);
    let mut conn = server.connect();
    write!(
        conn,
        "GET /stream HTTP/1.1\r\nHost: localhost\r\nUser-Agent: {user_agent}\r\n\r\n"
    )
    .unwrap();
    let capture = Capture::start(conn);
    let head_end = capture.wait_for(b"\r\n\r\n", 0);
    let head = String::from_utf8_lossy(&capture.0.lock().unwrap()[..head_end]).into_owned();
    let boundary = common::boundary_in(&head).to_string();
    let mut near = boundary.clone();
    let last = near.pop().unwrap();
    near.push(if last == 'x' { 'y' } else { 'x' });
    let versions: Vec<Vec<u8>> = vec![
        b"first\n".to_vec(),
        format!(
            "--{near}\r\n\r\n--{near}--\r\nContent-Type: image/jpeg\r\n\r\nx--{boundary}--\r\n--\r\n\r\n"
        )
        .into_bytes(),
        fixture("red.jpg"),
        b"last line\r\n\r".to_vec(),
    ];
    let mut at = capture.wait_for(&versions[0], head_end);
    for version in &versions[1..] {
        if reader {
            // A keep-alive line in the head of the part to come, which the parser must take.
            at = capture.wait_for(b"X-Keepalive", at);
        }
        server.dir().replace("now.txt", version);
        at = capture.wait_for(version, at);
    }
    let term = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let stream = capture.finish();
    let status = common::wait_exit(&mut server.child, "still running after SIGTERM");
    assert_eq!(status.code(), Some(0));

    let after_status_line = &stream[common::find(&stream, b"\r\n").unwrap() + 2..];
    let mut python = Killed(
        python
            .args(["-c", EMAIL_PARSES])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Closed once written: Python reads to the end before it parses.
    let mut stdin = python.0.stdin.take().unwrap();
    stdin.write_all(after_status_line).unwrap();
    drop(stdin);
    let (status, out, err) = python.finish("Python did not parse the stream");
    assert!(status.success(), "{err}");
    let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
    let shown = stream.escape_ascii().to_string();
    assert_eq!(parsed["type"], "multipart/x-mixed-replace", "{shown}");
    assert_eq!(parsed["defects"], serde_json::json!([]), "{shown}");
    assert_eq!(parsed["preamble"], "", "{shown}");
    assert_eq!(parsed["epilogue"], "", "{shown}");
    let parts = parsed["parts"].as_array().unwrap();
    let mut bodies = Vec::new();
    for part in parts {
        assert_eq!(part["defects"], serde_json::json!([]), "{part}");
        assert_eq!(part["type"], "text/plain; charset=utf-8", "{part}");
        let body = unhex(part["body"].as_str().unwrap());
        if let Some(length) = part["length"].as_str() {
            assert_eq!(length.parse::<usize>().unwrap(), body.len(), "{part}");
        }
        bodies.push(body);
    }
    Some(EmailParts { versions, bodies })
}

/// The versions written, and the bodies of the parts Python's parser found.
struct EmailParts {
    versions: Vec<Vec<u8>>,
    bodies: Vec<Vec<u8>>,
}

/// Bodies as text a failure can show, every byte visible.
fn escaped(bodies: &[Vec<u8>]) -> Vec<String> {
    bodies
        .iter()
        .map(|b| b.escape_ascii().to_string())
        .collect()
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// Whole parts with Content-Length, keep-alive lines in the open part's head, and the open
/// delimiter line turned into the final boundary.
#[test]
fn python_email_reads_a_reader_stream_byte_for_byte() {
    let Some(read) = python_email_reads(true) else {
        return;
    };
    assert_eq!(escaped(&read.bodies), escaped(&read.versions));
}

/// Each part's body followed at once by the next part's head; at the end, the open part filled
/// with the current version, then the final boundary.
#[test]
fn python_email_reads_a_browser_stream_byte_for_byte() {
    let Some(mut read) = python_email_reads(false) else {
        return;
    };
    read.versions.push(read.versions.last().unwrap().clone());
    assert_eq!(escaped(&read.bodies), escaped(&read.versions));
}
