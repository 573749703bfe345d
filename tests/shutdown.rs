//! Ctrl-C and SIGTERM on the real binary: every stream ends with its final boundary, every
//! `--exec` run is stopped with its whole process group, exit 0.

mod common;

use std::io::{Read, Write};
use std::process::Command;
use std::thread;
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

#[test]
fn sigterm_stops_the_exec_run_with_its_whole_process_group() {
    let seconds = format!("1001.{}", std::process::id());
    // `; true`: `sh` waits for `sleep` instead of becoming it, so the group holds both.
    let took = signal_during_run("-TERM", &format!("sleep {seconds}; true"), &seconds);
    eprintln!("exit 0 after {took:?}");
}

#[test]
fn sigint_stops_an_exec_run_that_ignores_sigterm_with_sigkill() {
    let seconds = format!("1002.{}", std::process::id());
    let took = signal_during_run("-INT", &format!("trap '' TERM; sleep {seconds}"), &seconds);
    eprintln!("exit 0 after {took:?}");
    assert!(took < Duration::from_secs(3), "exit took {took:?}");
}

#[test]
fn a_second_sigint_exits_at_once_and_kills_the_exec_run() {
    let seconds = format!("1003.{}", std::process::id());
    let command = format!("trap '' TERM; sleep {seconds}");
    let mut server = TestServer::serving("a.txt", b"x", &["--exec", &command]);
    let mut stream = server.stream("", "curl/8");
    stream.next_part().unwrap();
    let group = wait_running(&["sleep", &seconds]);
    signal(&server, "-INT");
    // The stream's end tells that the first signal was taken: the second is one more, not
    // merged with it while pending.
    while stream.next_part().is_some() {}
    assert!(stream.closed_cleanly, "no final boundary");

    let start = Instant::now();
    signal(&server, "-INT");
    let status = common::wait_exit(&mut server.child, "still running after two SIGINTs");
    let took = start.elapsed();
    assert_eq!(status.code(), Some(0));
    // SIGKILL is sent without a wait, so the run may end just after pushserve.
    let until = Instant::now() + DEADLINE;
    while !left_of(group, &seconds).is_empty() && Instant::now() < until {
        thread::sleep(Duration::from_millis(5));
    }
    assert_nothing_left(group, &seconds);
    eprintln!("exit 0 {took:?} after the second signal");
    // Without it, the run's SIGTERM grace (half a second) would be waited out.
    assert!(took < Duration::from_millis(400), "exit took {took:?}");
}

#[test]
fn sigterm_does_not_wait_for_the_next_byte_of_a_silent_upstream() {
    let origin = TestServer::serving("a.txt", b"x", &[]);
    // The origin sends the frame, then nothing until the file changes.
    let mut relay = TestServer::start(&[&format!("{}stream", origin.url)]);
    relay.stream("", "curl/8").next_part().unwrap();
    // The wait for the sources ends at 2 s: well before, the relay has returned on its own.
    exits_at_once(&mut relay);
}

/// Starts `pushserve --exec COMMAND`, waits until its run is in `sleep SECONDS`, sends `signal`
/// and checks that pushserve exits 0 leaving no live process of the run's group behind; how long
/// the exit took.
fn signal_during_run(signal_name: &str, command: &str, seconds: &str) -> Duration {
    let mut server = TestServer::start(&["--exec", command]);
    let group = wait_running(&["sleep", seconds]);
    let took = exit_on(&mut server, signal_name);
    assert_nothing_left(group, seconds);
    took
}

/// Sends `signal` and waits for the server's exit, which must be a clean one (0); how long it
/// took.
fn exit_on(server: &mut TestServer, signal_name: &str) -> Duration {
    let start = Instant::now();
    signal(server, signal_name);
    let status = common::wait_exit(&mut server.child, "still running after the signal");
    let took = start.elapsed();
    assert_eq!(status.code(), Some(0));
    eprintln!("exit 0 after {took:?}");
    took
}

/// SIGTERM ends the server cleanly well before the 2 s the exit waits for its sources: they
/// have returned on their own.
fn exits_at_once(server: &mut TestServer) {
    let took = exit_on(server, "-TERM");
    assert!(took < Duration::from_secs(1), "exit took {took:?}");
}

fn signal(server: &TestServer, signal: &str) {
    let kill = Command::new("kill")
        .args([signal, &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
}

/// One live process, as `/proc` shows it.
struct Process {
    pid: u32,
    group: i32,
    cmdline: Vec<u8>,
}

/// Every live process. Zombies are left out: they have ended, and only wait to be reaped.
fn live_processes() -> Vec<Process> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // The fields after the name follow its last `)`: state, parent, process group.
            let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
            let state = fields.next()?;
            let group = fields.nth(1)?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            (state != "Z" && state != "X").then_some(Process {
                pid,
                group,
                cmdline,
            })
        })
        .collect()
}

fn cmdline(args: &[&str]) -> Vec<u8> {
    args.iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect()
}

/// Waits until a live process runs with exactly `args`: its process group.
fn wait_running(args: &[&str]) -> i32 {
    let wanted = cmdline(args);
    let start = Instant::now();
    loop {
        if let Some(p) = live_processes().iter().find(|p| p.cmdline == wanted) {
            return p.group;
        }
        assert!(start.elapsed() < DEADLINE, "{args:?} never ran");
        thread::sleep(Duration::from_millis(10));
    }
}

/// The live processes of `group`, or running `sleep SECONDS`.
fn left_of(group: i32, seconds: &str) -> Vec<Process> {
    let sleep = cmdline(&["sleep", seconds]);
    live_processes()
        .into_iter()
        .filter(|p| p.group == group || p.cmdline == sleep)
        .collect()
}

/// Fails if a live process of `group` (or running `sleep SECONDS`) is left, after killing it.
fn assert_nothing_left(group: i32, seconds: &str) {
    let left = left_of(group, seconds);
    let described: Vec<String> = left
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p.pid,
                String::from_utf8_lossy(&p.cmdline).replace('\0', " ")
            )
        })
        .collect();
    if !left.is_empty() {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{group}")])
            .status();
        for p in &left {
            let _ = Command::new("kill")
                .args(["-KILL", &p.pid.to_string()])
                .status();
        }
    }
    assert!(left.is_empty(), "left running: {described:?}");
}

#[test]
fn sigterm_does_not_wait_out_a_slide_still_being_written() {
    let red = common::fixture("red.jpg");
    // b.jpg never gets its end: at its turn the show retries it until the next turn is due.
    let mut server = TestServer::showing(
        &[("a.jpg", &red), ("b.jpg", &red[..red.len() / 2])],
        &["--interval", "2000"],
    );
    server.wait_stderr("slide 1/2: a.jpg");
    // a.jpg's turn ends 2 s after it was said; b.jpg is retried for the 2 s after that.
    thread::sleep(Duration::from_millis(2500));
    // The wait for the sources ends at 2 s: well before, the slideshow has returned on its own.
    exits_at_once(&mut server);
}

#[test]
fn sigterm_ends_a_relay_s_back_off_at_once() {
    // Nothing listens on port 1: the relay is refused and backs off, 1 s then longer.
    let mut relay = TestServer::start(&["http://127.0.0.1:1/"]);
    relay.wait_stderr("retrying in 1 s");
    exits_at_once(&mut relay);
}

#[test]
fn sigterm_does_not_wait_for_the_next_byte_of_a_silent_stdin() {
    let (mut server, mut stdin) = TestServer::fed(&["-"]);
    stdin.write_all(b"hello\n").unwrap();
    common::wait_until("the first frame", || {
        server.get("/snapshot", "").status == 200
    });
    // The wait for the sources ends at 2 s: well before, stdin's has returned on its own.
    exits_at_once(&mut server);
    drop(stdin);
}
