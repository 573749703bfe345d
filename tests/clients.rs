//! Real third-party stream readers against the real binary: ffmpeg (the demuxer OpenCV uses)
//! and curl. `.ci/run` installs both when absent.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{DEADLINE, TempDir, TestServer, fixture};

/// Kills the child on drop, so a failed assertion leaves nothing running.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tool(name: &str) -> Command {
    assert!(
        Command::new(name).arg("-version").output().is_ok(),
        "{name} is not installed; .ci/run installs it (apt-get install {name})"
    );
    Command::new(name)
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
    let dir = TempDir::new("ffmpeg");
    dir.rewrite("cam.jpg", &fixture("red.jpg"));
    let server = TestServer::start(&[dir.path("cam.jpg").to_str().unwrap(), "--poll", "20"]);
    let out = TempDir::new("ffmpeg-out");
    let ffmpeg = tool("ffmpeg")
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
    dir.replace("cam.jpg", &fixture("green.jpg"));
    wait_for_file(&out.path("2.jpg"));
    dir.replace("cam.jpg", &fixture("blue.jpg"));
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

#[test]
fn curl_receives_well_formed_parts() {
    let dir = TempDir::new("curl");
    dir.rewrite("now.txt", b"first\n");
    let server = TestServer::start(&[
        dir.path("now.txt").to_str().unwrap(),
        "--poll",
        "20",
        "--keepalive",
        "1",
    ]);
    // Two seconds of stream: the first part at once, then keep-alives.
    let out = tool("curl")
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
    // ... and ends with the next delimiter line left open, padded with a space per keep-alive
    // (RFC 2046 transport padding, which readers ignore).
    let after = body.split_once("\r\n\r\nfirst\n").unwrap().1;
    let delimiter = format!("\r\n--{boundary}");
    assert!(
        after.starts_with(&format!("{delimiter} ")),
        "no keep-alive padding within 2 s: {after:?}"
    );
    assert!(
        after[delimiter.len()..].bytes().all(|b| b == b' '),
        "{after:?}"
    );
}
