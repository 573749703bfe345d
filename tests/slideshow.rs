//! `pushserve DIR` on the real binary: a slideshow of the folder's files, read anew every cycle.

mod common;

use std::io::Write;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::{PartReader, TempDir, TestServer, fixture};

const READER: &str = "curl/8";

fn show(dir: &TempDir, extra: &[&str]) -> TestServer {
    let mut args = vec![dir.0.to_str().unwrap()];
    args.extend_from_slice(extra);
    TestServer::start(&args)
}

/// The next `n` part bodies as text.
fn texts(stream: &mut PartReader, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| String::from_utf8(stream.next_part().unwrap().body).unwrap())
        .collect()
}

#[test]
fn slides_come_in_natural_name_order_cycle_after_cycle() {
    let dir = TempDir::new("order");
    for name in ["img10", "img2", "img1", "Img3"] {
        dir.rewrite(&format!("{name}.txt"), name.as_bytes());
    }
    let server = show(&dir, &["--interval", "100"]);
    let mut stream = server.stream("", READER);
    let seen = texts(&mut stream, 9);
    let order = ["img1", "img2", "Img3", "img10"];
    let start = order.iter().position(|n| *n == seen[0]).unwrap();
    let expected: Vec<_> = (0..9).map(|i| order[(start + i) % 4]).collect();
    assert_eq!(seen, expected);
}

/// The slide names stderr announces, in the order they are shown.
fn announced_slides(server: &TestServer) -> Vec<String> {
    server
        .stderr()
        .lines()
        .filter_map(|line| line.split_once(": slide ")?.1.split_once(": "))
        .map(|(_, name)| name.to_string())
        .collect()
}

#[test]
fn random_order_shows_every_slide_once_a_cycle_in_a_new_order() {
    let names: Vec<String> = (1..=8).map(|i| format!("slide{i}.txt")).collect();
    let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), n.as_bytes())).collect();
    let server = TestServer::showing(&files, &["--order", "random", "--interval", "30"]);
    // Told by stderr, which names every slide as it is shown: a stream reader could miss one
    // at this pace.
    let start = Instant::now();
    while announced_slides(&server).len() < 3 * 8 {
        assert!(
            start.elapsed() < common::DEADLINE,
            "three cycles never shown: {}",
            server.stderr()
        );
        thread::sleep(Duration::from_millis(20));
    }
    let shown = announced_slides(&server);
    let cycles: Vec<&[String]> = shown.chunks(8).take(3).collect();
    for cycle in &cycles {
        let mut sorted = cycle.to_vec();
        sorted.sort();
        assert_eq!(sorted, names, "a cycle shows each slide once: {shown:?}");
    }
    // In name order by chance three times running: once in 5040 * 40320 * 40320 (the first
    // cycle starts with the first slide by name, then goes on in its shuffled order).
    assert!(
        cycles.iter().any(|cycle| *cycle != names.as_slice()),
        "three cycles in name order: {shown:?}"
    );
}

#[test]
fn each_part_carries_its_own_content_type() {
    let dir = TempDir::new("types");
    dir.rewrite("1.jpg", &fixture("red.jpg"));
    dir.rewrite("2.png", &fixture("red.png"));
    dir.rewrite("3.txt", b"text");
    dir.rewrite("4.html", b"<p>html</p>");
    let server = show(&dir, &["--interval", "100"]);
    let mut stream = server.stream("", READER);
    let mut types = std::collections::BTreeMap::new();
    while types.len() < 4 {
        let part = stream.next_part().unwrap();
        types.insert(part.header("content-type").unwrap(), part.body);
    }
    assert_eq!(types["image/jpeg"], fixture("red.jpg"));
    assert_eq!(types["image/png"], fixture("red.png"));
    assert_eq!(types["text/plain; charset=utf-8"], b"text");
    assert_eq!(types["text/html; charset=utf-8"], b"<p>html</p>");
}

#[test]
fn slides_change_every_interval() {
    let server = TestServer::showing(&[("a.txt", b"a"), ("b.txt", b"b")], &["--interval", "300"]);
    let mut stream = server.stream("", READER);
    stream.next_part().unwrap();
    let mut last = Instant::now();
    let mut gaps = Vec::new();
    for _ in 0..5 {
        stream.next_part().unwrap();
        gaps.push(last.elapsed());
        last = Instant::now();
    }
    // The first gap may be part of a slide; the rest are whole intervals.
    for gap in &gaps[1..] {
        assert!(
            *gap > Duration::from_millis(250) && *gap < Duration::from_millis(1000),
            "{gaps:?}"
        );
    }
}

#[test]
fn files_added_join_and_files_deleted_leave_without_a_gap() {
    let server = TestServer::showing(&[("1.txt", b"1"), ("3.txt", b"3")], &["--interval", "100"]);
    let mut stream = server.stream("", READER);
    stream.wait_for(b"3");
    server.dir().rewrite("2.txt", b"2");
    std::fs::remove_file(server.dir().path("3.txt")).unwrap();
    // From the next cycle on: 1, 2, 1, 2 ... and never 3.
    stream.wait_for(b"2");
    assert_eq!(texts(&mut stream, 4), ["1", "2", "1", "2"]);
    assert!(
        !server.stderr().contains("skipping"),
        "a deleted slide is no error: {}",
        server.stderr()
    );
}

#[test]
fn a_changed_slide_is_sent_as_it_is_now() {
    let server = TestServer::showing(
        &[("a.txt", b"a"), ("b.txt", b"old")],
        &["--interval", "100"],
    );
    let mut stream = server.stream("", READER);
    stream.wait_for(b"old");
    server.dir().replace("b.txt", b"new");
    stream.wait_for(b"new");
}

#[test]
fn once_plays_each_file_then_ends_streams_and_exits_0() {
    let mut server = TestServer::showing(
        &[("1.txt", b"1"), ("2.txt", b"2"), ("3.txt", b"3")],
        &["--interval", "200", "--once"],
    );
    let mut stream = server.stream("", READER);
    let mut seen = Vec::new();
    while let Some(part) = stream.next_part() {
        seen.push(String::from_utf8(part.body).unwrap());
    }
    assert!(stream.closed_cleanly, "no final boundary");
    assert_eq!(seen.last().map(String::as_str), Some("3"));
    let status = common::wait_exit(&mut server.child, "still running after the show");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn recursive_and_ext_choose_the_slides_and_hidden_files_are_skipped() {
    let dir = TempDir::new("recursive");
    dir.rewrite("a.txt", b"a");
    dir.rewrite("b.md", b"b");
    dir.rewrite(".hidden.txt", b"hidden");
    std::fs::create_dir(dir.path("sub")).unwrap();
    dir.rewrite("sub/c.txt", b"c");
    std::fs::create_dir(dir.path(".git")).unwrap();
    dir.rewrite(".git/d.txt", b"d");

    let flat = show(&dir, &["--interval", "50"]);
    let seen: std::collections::BTreeSet<_> =
        texts(&mut flat.stream("", READER), 6).into_iter().collect();
    assert_eq!(seen, ["a"].map(String::from).into());

    let deep = show(&dir, &["--interval", "50", "-r", "--ext", "TXT,.md"]);
    let seen: std::collections::BTreeSet<_> =
        texts(&mut deep.stream("", READER), 9).into_iter().collect();
    assert_eq!(seen, ["a", "b", "c"].map(String::from).into());
}

#[test]
fn a_symlink_loop_neither_hangs_nor_repeats() {
    let dir = TempDir::new("loop");
    dir.rewrite("a.txt", b"a");
    std::fs::create_dir(dir.path("sub")).unwrap();
    dir.rewrite("sub/b.txt", b"b");
    std::os::unix::fs::symlink(&dir.0, dir.path("sub/back")).unwrap();
    let server = show(&dir, &["--interval", "50", "-r"]);
    assert_eq!(
        texts(&mut server.stream("", READER), 4)
            .iter()
            .filter(|t| *t == "a")
            .count(),
        2
    );
}

#[test]
fn a_folder_of_one_file_shows_it_again_and_again() {
    let server = TestServer::showing(&[("only.txt", b"only")], &["--interval", "50"]);
    assert_eq!(
        texts(&mut server.stream("", READER), 3),
        ["only", "only", "only"]
    );
}

#[test]
fn an_empty_folder_or_one_with_no_match_is_an_error_naming_both() {
    let dir = TempDir::new("empty");
    let out = Command::new(common::bin())
        .arg(&dir.0)
        .args(["--port", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(dir.0.to_str().unwrap()) && err.contains("jpg, jpeg, png"),
        "{err}"
    );

    dir.rewrite("notes.md", b"x");
    let out = Command::new(common::bin())
        .arg(&dir.0)
        .args(["--port", "0", "--ext", "png"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("png"));
}

#[test]
fn a_folder_emptied_while_running_keeps_the_last_slide_and_says_so() {
    let server = TestServer::showing(&[("a.txt", b"a")], &["--interval", "50"]);
    let mut stream = server.stream("", READER);
    stream.wait_for(b"a");
    std::fs::remove_file(server.dir().path("a.txt")).unwrap();
    server.wait_stderr("no slides left");
    assert_eq!(server.get("/snapshot", "").body, b"a");
    server.dir().rewrite("b.txt", b"b");
    stream.wait_for(b"b");
}

#[test]
fn a_client_connecting_mid_slide_gets_the_current_slide_at_once_and_stderr_names_it() {
    let server = TestServer::showing(&[("a.txt", b"a"), ("b.txt", b"b")], &["--interval", "5000"]);
    let start = Instant::now();
    let first = server.stream("", READER).next_part().unwrap();
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(server.get("/snapshot", "").body, first.body);
    server.wait_stderr(&format!(
        "slide 1/2: {}.txt",
        String::from_utf8(first.body).unwrap()
    ));
}

#[test]
fn a_slide_being_rewritten_is_never_sent_half_written() {
    let versions = [
        fixture("noise1.jpg"),
        fixture("noise2.jpg"),
        fixture("noise3.jpg"),
    ];
    let server = TestServer::showing(&[("cam.jpg", &versions[0])], &["--interval", "5"]);
    let mut stream = server.stream("", READER);
    let path = server.dir().path("cam.jpg");
    let writer = thread::spawn(move || {
        let versions = [
            fixture("noise1.jpg"),
            fixture("noise2.jpg"),
            fixture("noise3.jpg"),
        ];
        for i in 0..100 {
            let mut file = std::fs::File::create(&path).unwrap();
            for chunk in versions[(i + 1) % 3].chunks(4096) {
                file.write_all(chunk).unwrap();
                thread::sleep(Duration::from_micros(200));
            }
        }
    });
    let mut received = 0;
    while !writer.is_finished() {
        let part = stream.next_part().unwrap();
        assert!(
            versions.contains(&part.body),
            "a torn slide of {} bytes",
            part.body.len()
        );
        received += 1;
    }
    writer.join().unwrap();
    assert!(received > 10, "only {received} slides");
}

#[test]
fn a_slide_that_cannot_be_sent_is_skipped_with_one_warning() {
    let server = TestServer::showing(
        &[("a.txt", b"a"), ("b.txt", b"far too big for --max-frame")],
        &["--interval", "20", "--max-frame", "10"],
    );
    let seen = texts(&mut server.stream("", READER), 5);
    assert_eq!(seen, ["a"; 5]);
    let warnings = server.stderr().matches("skipping").count();
    assert_eq!(warnings, 1, "{}", server.stderr());
    assert!(
        server
            .stderr()
            .contains("b.txt': 27 bytes, over --max-frame 10"),
        "{}",
        server.stderr()
    );
}
