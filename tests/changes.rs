//! Change events on the real binary: a change to a file or a folder is seen when it happens,
//! not at the next `--poll`; `--poll-only`, or a system without events, polls as before and
//! says why. `--poll 60000` in a test means that only an event can explain what it sees within
//! the deadline.

mod common;

use std::fs::{self, File};
use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{DEADLINE, PartReader, TempDir, TestServer, fixture};

const READER: &str = "curl/8";
/// Far longer than any test waits: a change seen is a change an event announced.
const NO_POLL: [&str; 2] = ["--poll", "60000"];

/// The next part, which must come within 2 s (a poll would take 60).
fn next_within_2s(stream: &mut PartReader) -> Vec<u8> {
    let start = Instant::now();
    let body = stream.next_part().expect("stream ended").body;
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "the change took {:?}",
        start.elapsed()
    );
    body
}

#[test]
fn saves_renames_rewrites_copies_and_appends_are_each_seen_at_once() {
    let server = TestServer::serving("now.txt", b"1", &NO_POLL);
    let dir = server.dir();
    let mut stream = server.stream("", READER);
    assert_eq!(stream.next_part().unwrap().body, b"1");

    dir.replace("now.txt", b"2 saved atomically");
    assert_eq!(next_within_2s(&mut stream), b"2 saved atomically");
    dir.rewrite("now.txt", b"3 written in place");
    assert_eq!(next_within_2s(&mut stream), b"3 written in place");
    let other = dir.path("elsewhere.txt");
    fs::write(&other, b"4 copied over").unwrap();
    assert!(
        Command::new("cp")
            .arg(&other)
            .arg(dir.path("now.txt"))
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(next_within_2s(&mut stream), b"4 copied over");
    // A writer that keeps the file open: seen once its writes pause, without a close.
    let mut log = File::options()
        .append(true)
        .open(dir.path("now.txt"))
        .unwrap();
    log.write_all(b", then appended").unwrap();
    assert_eq!(next_within_2s(&mut stream), b"4 copied over, then appended");
    drop(log);
}

#[test]
fn a_rewrite_that_stalls_half_way_is_sent_only_once_closed() {
    let server = TestServer::serving("page.html", b"<p>old</p>", &NO_POLL);
    let mut stream = server.stream("", READER);
    stream.wait_for(b"<p>old</p>");
    // Truncated, half written, then nothing for far longer than a burst of writes takes.
    let mut file = File::create(server.dir().path("page.html")).unwrap();
    file.write_all(b"<p>new, ").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    file.write_all(b"written in two goes</p>").unwrap();
    drop(file);
    assert_eq!(
        next_within_2s(&mut stream),
        b"<p>new, written in two goes</p>",
        "an empty or half-written version was sent"
    );
}

#[test]
fn a_rewrite_that_stalls_is_not_sent_by_the_poll_either() {
    // The poll is the safety net for events that never come; it must not take a file that the
    // events say is being written for a version.
    let server = TestServer::serving("page.html", b"<p>old</p>", &["--poll", "20"]);
    let mut stream = server.stream("", READER);
    stream.wait_for(b"<p>old</p>");
    let mut file = File::create(server.dir().path("page.html")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    file.write_all(b"<p>new, ").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    file.write_all(b"written in two goes</p>").unwrap();
    drop(file);
    assert_eq!(
        next_within_2s(&mut stream),
        b"<p>new, written in two goes</p>",
        "an empty or half-written version was sent"
    );
}

#[test]
fn two_rewrites_of_the_same_size_in_quick_succession_are_both_seen() {
    let server = TestServer::serving("n.txt", b"0", &NO_POLL);
    let mut stream = server.stream("", READER);
    stream.wait_for(b"0");
    // Same size, same inode, and maybe the same mtime (the clock ticks in milliseconds):
    // only the event tells the second write from the first.
    for digit in b'1'..=b'9' {
        server.dir().rewrite("n.txt", &[digit]);
        stream.wait_for(&[digit]);
    }
}

#[test]
fn a_file_reached_through_a_symlink_is_followed_to_the_folder_that_changes() {
    let real = TempDir::new("symlink-target");
    real.rewrite("cam.jpg", &fixture("noise1.jpg"));
    let links = TempDir::new("symlink-link");
    std::os::unix::fs::symlink(real.path("cam.jpg"), links.path("cam.jpg")).unwrap();
    let link = links.path("cam.jpg");
    let server = TestServer::start(&[link.to_str().unwrap(), NO_POLL[0], NO_POLL[1]]);
    let mut stream = server.stream("", READER);
    assert_eq!(stream.next_part().unwrap().body, fixture("noise1.jpg"));
    // The save happens in the target's folder; the link's folder sees nothing.
    real.replace("cam.jpg", &fixture("noise2.jpg"));
    assert_eq!(next_within_2s(&mut stream), fixture("noise2.jpg"));
}

#[test]
fn a_burst_of_saves_ends_on_the_last_version_for_every_reader() {
    let server = TestServer::serving("v.txt", b"0", &NO_POLL);
    let mut readers: Vec<PartReader> = (0..20).map(|_| server.stream("", READER)).collect();
    for reader in &mut readers {
        reader.wait_for(b"0");
    }
    let saves = 100;
    for i in 1..=saves {
        server.dir().replace("v.txt", i.to_string().as_bytes());
        std::thread::sleep(Duration::from_millis(10));
    }
    for reader in &mut readers {
        let mut got = Vec::new();
        while got.last() != Some(&saves) {
            let body = reader.next_part().expect("stream ended").body;
            got.push(String::from_utf8(body).unwrap().parse::<u32>().unwrap());
        }
        // Latest wins for a reader that is behind, so some may be skipped, but never one
        // sent out of order or twice; and on an idle machine none is skipped (the benchmark
        // counts them).
        assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
        assert!(
            got.len() * 2 > saves as usize,
            "only {} of {saves}",
            got.len()
        );
    }
}

#[test]
fn poll_only_turns_events_off_and_polling_still_sees_the_change() {
    let server = TestServer::serving("p.txt", b"before", &["--poll-only", "--poll", "60000"]);
    let mut stream = server.stream("", READER);
    stream.wait_for(b"before");
    server.dir().replace("p.txt", b"after");
    // Nothing in a second: no event woke the source.
    let mut conn = stream.conn().get_ref().try_clone().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut byte = [0u8; 1];
    let quiet = std::io::Read::read(&mut conn, &mut byte);
    assert!(
        quiet.is_err(),
        "a part came within 1 s with --poll-only --poll 60000"
    );
    drop(server);

    let server = TestServer::serving("p.txt", b"before", &["--poll-only", "--poll", "100"]);
    let mut stream = server.stream("", READER);
    stream.wait_for(b"before");
    server.dir().replace("p.txt", b"after");
    stream.wait_for(b"after");
}

#[test]
fn three_hundred_file_sources_in_one_server_each_follow_their_changes() {
    let dir = TempDir::new("three-hundred");
    let mut args: Vec<String> = NO_POLL.iter().map(|s| s.to_string()).collect();
    // 30 folders of 10 files: 30 watched folders, 300 sources on one watcher.
    for i in 0..300 {
        let folder = dir.path(&format!("d{}", i % 30));
        fs::create_dir_all(&folder).unwrap();
        let file = folder.join(format!("f{i}.txt"));
        fs::write(&file, format!("{i} old")).unwrap();
        args.push(format!("f{i}={}", file.display()));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = TestServer::start(&args);
    let started = Instant::now();
    for i in 0..300 {
        let folder = dir.path(&format!("d{}", i % 30));
        let tmp = folder.join(format!(".f{i}.tmp"));
        fs::write(&tmp, format!("{i} new")).unwrap();
        fs::rename(&tmp, folder.join(format!("f{i}.txt"))).unwrap();
    }
    for i in 0..300 {
        let want = format!("{i} new");
        loop {
            let body = server.get(&format!("/f{i}/snapshot"), "").body;
            if body == want.as_bytes() {
                break;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "f{i} still shows {:?}",
                String::from_utf8_lossy(&body)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    assert!(!server.stderr().contains("warning"), "{}", server.stderr());
    // One watcher for them all: the system allows a user 128 by default.
    let inotify_fds = fs::read_dir(format!("/proc/{}/fd", server.child.id()))
        .unwrap()
        .filter_map(|fd| fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().contains("inotify"))
        .count();
    assert_eq!(inotify_fds, 1);
}

/// Runs `pushserve ARGS` in a user namespace of its own whose inotify limit `limit` (a file of
/// /proc/sys/user) is 0; None when this system cannot make one (the test is skipped, saying so).
fn start_without_inotify(limit: &str, args: &[&str]) -> Option<TestServer> {
    let probe = Command::new("unshare")
        .args(["--user", "--map-root-user", "sh", "-c"])
        .arg(format!("echo 0 > /proc/sys/user/{limit}"))
        .output();
    if !probe.is_ok_and(|out| out.status.success()) {
        // Past the harness, which hides what a passing test prints.
        let _ = writeln!(
            std::io::stderr(),
            "skipped {}: cannot set /proc/sys/user/{limit} in a user namespace here (unshare)",
            std::thread::current().name().unwrap_or("a test")
        );
        return None;
    }
    let mut command = Command::new("unshare");
    command
        .args(["--user", "--map-root-user", "sh", "-c"])
        .arg(format!(
            "echo 0 > /proc/sys/user/{limit} && exec \"$0\" \"$@\""
        ))
        .arg(common::bin())
        .args(args);
    Some(TestServer::start_command(command))
}

#[test]
fn without_inotify_a_file_is_polled_and_the_reason_said_once() {
    for (limit, said) in [
        ("max_inotify_instances", "too many watchers"),
        ("max_inotify_watches", "the limit of watches is reached"),
    ] {
        let dir = TempDir::new("no-inotify");
        dir.rewrite("cam.txt", b"one");
        let path = dir.path("cam.txt");
        let Some(server) = start_without_inotify(limit, &[path.to_str().unwrap(), "--poll", "100"])
        else {
            return;
        };
        server.wait_stderr(said);
        let mut stream = server.stream("", READER);
        stream.wait_for(b"one");
        dir.replace("cam.txt", b"two");
        stream.wait_for(b"two");
        let status = server.status();
        let state = status["sources"][0]["state"].as_str().unwrap_or_default();
        assert!(state.contains(said), "{status}");
        assert!(state.contains("every 100 ms"), "{status}");
        assert_eq!(
            server.stderr().matches(said).count(),
            1,
            "{}",
            server.stderr()
        );
    }
}

#[test]
fn a_file_added_to_a_slideshow_folder_is_the_next_slide() {
    let server = TestServer::showing(
        &[("a.txt", b"a"), ("b.txt", b"b"), ("c.txt", b"c")],
        &["--interval", "1500", "--poll", "60000"],
    );
    let mut stream = server.stream("", READER);
    stream.wait_for(b"a");
    // Early in a's turn: by its end the event has long come.
    server.dir().replace("new.txt", b"new");
    assert_eq!(stream.next_part().unwrap().body, b"new");
    // Then the cycle goes on where it was.
    assert_eq!(stream.next_part().unwrap().body, b"b");
}

#[test]
fn the_slide_on_screen_is_sent_again_when_its_file_changes() {
    let server = TestServer::showing(
        &[("a.txt", b"a"), ("b.txt", b"b")],
        &["--interval", "60000", "--poll", "60000"],
    );
    let mut stream = server.stream("", READER);
    let first = stream.next_part().unwrap().body;
    let name = format!("{}.txt", String::from_utf8(first.clone()).unwrap());
    server.dir().rewrite(&name, b"changed mid-slide");
    assert_eq!(next_within_2s(&mut stream), b"changed mid-slide");
}

#[test]
fn with_recursive_a_file_added_in_a_subfolder_even_a_new_one_is_the_next_slide() {
    let server = TestServer::showing(
        &[("a.txt", b"a"), ("b.txt", b"b")],
        &["--recursive", "--interval", "1500", "--poll", "60000"],
    );
    let dir = server.dir();
    let mut stream = server.stream("", READER);
    stream.wait_for(b"a");
    fs::create_dir(dir.path("sub")).unwrap();
    let save = |name: &str, bytes: &[u8]| {
        fs::write(dir.path("sub/.saving"), bytes).unwrap();
        fs::rename(dir.path("sub/.saving"), dir.path(name)).unwrap();
    };
    save("sub/deep.txt", b"in a new subfolder");
    assert_eq!(stream.next_part().unwrap().body, b"in a new subfolder");
    // The new subfolder is followed from then on.
    stream.wait_for(b"b");
    save("sub/deeper.txt", b"and another");
    assert_eq!(stream.next_part().unwrap().body, b"and another");
}

#[test]
fn a_folder_deleted_and_made_again_is_watched_again() {
    let top = TempDir::new("folder-again");
    let folder = top.path("cam");
    fs::create_dir(&folder).unwrap();
    fs::write(folder.join("cam.txt"), b"1").unwrap();
    let path = folder.join("cam.txt");
    let server = TestServer::start(&[path.to_str().unwrap(), "--poll", "2000"]);
    let mut stream = server.stream("", READER);
    stream.wait_for(b"1");
    fs::remove_dir_all(&folder).unwrap();
    fs::create_dir(&folder).unwrap();
    fs::write(folder.join("cam.txt"), b"2").unwrap();
    // Seen by a poll, which also watches the new folder...
    stream.wait_for(b"2");
    // ...so that the next change is seen by its event, well before the next poll.
    let start = Instant::now();
    fs::write(folder.join("cam.txt"), b"3").unwrap();
    stream.wait_for(b"3");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "took {:?}: the new folder is not watched",
        start.elapsed()
    );
}

#[test]
fn a_slide_saved_again_keeps_its_place_in_the_cycle() {
    let server = TestServer::showing(
        &[("a.txt", b"a"), ("b.txt", b"b"), ("c.txt", b"c")],
        &["--interval", "1000", "--poll", "60000"],
    );
    let mut stream = server.stream("", READER);
    stream.wait_for(b"b");
    // A save by rename makes a.txt appear anew in the folder's events; it is a change of a
    // slide that was there, not a file added, so it waits for its turn.
    server.dir().replace("a.txt", b"a, saved again");
    assert_eq!(stream.next_part().unwrap().body, b"c");
    assert_eq!(stream.next_part().unwrap().body, b"a, saved again");
}
