//! Shared test fixtures: start the real binary on port 0, read the URL it prints, talk HTTP.
//! Every wait has a deadline; every process started is killed on drop.

#![allow(dead_code)] // each test binary uses a different part of this module

pub mod browser;
pub mod nginx;
pub mod tls;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub const DEADLINE: Duration = Duration::from_secs(10);

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

/// A fresh empty folder under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("pushserve-test-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes a new version the way editors do: a temp file renamed over the old one.
    pub fn replace(&self, name: &str, bytes: &[u8]) {
        let tmp = self.path(&format!(".{name}.tmp"));
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, self.path(name)).unwrap();
    }

    /// Writes a new version in place: truncate, then write.
    pub fn rewrite(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.path(name), bytes).unwrap();
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The real binary, running until dropped.
pub struct TestServer {
    pub child: Child,
    /// The viewer URL it printed, e.g. `http://127.0.0.1:41234/`.
    pub url: String,
    pub addr: String,
    stderr: Arc<Mutex<String>>,
    /// Every line it printed on stdout: the URL, then one per source with several.
    stdout: Arc<Mutex<Vec<String>>>,
    /// The folder of [`TestServer::serving`] and [`TestServer::showing`]: removed only after
    /// the server is stopped, so that it never finds its source gone.
    dir: Option<TempDir>,
}

/// A server process started with `--port 0` appended, once it has printed its URL (the
/// first line on stdout): how both the tests ([`TestServer`]) and the benchmark start the
/// servers they measure. Its stdout and stderr are read to the end by threads of their own, so
/// the pipes never fill.
pub struct Launched {
    pub child: Child,
    /// The first line it printed, e.g. `http://127.0.0.1:41234/`.
    pub url: String,
    /// Everything it said on stderr so far.
    pub stderr: Arc<Mutex<String>>,
    /// Every line it printed on stdout, the URL first.
    pub stdout: Arc<Mutex<Vec<String>>>,
}

impl Launched {
    /// Starts `command` with `--port 0` and waits [`DEADLINE`] for the URL; kills it and
    /// fails with what it said on stderr if none comes.
    pub fn start(mut command: Command) -> Launched {
        let mut child = command
            .args(["--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {:?}: {e}", command.get_program()));
        let stderr = collect_stderr(child.stderr.take().unwrap());
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let (first, url) = mpsc::channel();
        let (out, lines) = (child.stdout.take().unwrap(), Arc::clone(&stdout));
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = first.send(line.clone());
                lines.lock().unwrap().push(line);
            }
        });
        match url.recv_timeout(DEADLINE) {
            Ok(line) => Launched {
                child,
                url: line.trim().to_string(),
                stderr,
                stdout,
            },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{:?} printed no URL; stderr: {}",
                    command.get_program(),
                    stderr.lock().unwrap()
                );
            }
        }
    }
}

/// `127.0.0.1:41234` of `http://127.0.0.1:41234/` (or `https://`).
pub fn host_of(url: &str) -> &str {
    url.trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/')
}

/// What a child writes on stderr, gathered line by line by a thread of its own.
pub fn collect_stderr(pipe: ChildStderr) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&text);
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    text
}

/// Waits for `child` to exit, failing with `what` after [`DEADLINE`].
pub fn wait_exit(child: &mut Child, what: &str) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(start.elapsed() < DEADLINE, "{what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// Context switches so far of each of the threads of process `pid` named `name`, by thread id:
/// a thread that is woken and goes back to sleep adds one.
pub fn thread_wakes(pid: u32, name: &str) -> HashMap<String, u64> {
    let mut wakes = HashMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let task = task.unwrap().path();
        let comm = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        let Ok(status) = std::fs::read_to_string(task.join("status")) else {
            continue; // the thread just ended
        };
        if comm.trim() != name {
            continue;
        }
        let switches: u64 = status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .map(|l| l.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap())
            .sum();
        wakes.insert(
            task.file_name().unwrap().to_string_lossy().into_owned(),
            switches,
        );
    }
    wakes
}

/// [`thread_wakes`] once there are `n` threads named `name` and all are asleep: two readings
/// 100 ms apart agree.
pub fn settled_thread_wakes(pid: u32, name: &str, n: usize) -> HashMap<String, u64> {
    let start = Instant::now();
    let mut last = thread_wakes(pid, name);
    loop {
        thread::sleep(Duration::from_millis(100));
        let now = thread_wakes(pid, name);
        if now.len() == n && now == last {
            return now;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "never {n} {name} threads asleep: {now:?}"
        );
        last = now;
    }
}

/// Waits until what a process has said on stderr (`stderr()`) contains `needle`, failing with
/// all it said after [`DEADLINE`].
pub fn wait_said(stderr: impl Fn() -> String, needle: &str) {
    let start = Instant::now();
    while !stderr().contains(needle) {
        assert!(
            start.elapsed() < DEADLINE,
            "stderr never said {needle:?}: {}",
            stderr()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until `check` is true, failing saying it never was `what` after [`DEADLINE`].
pub fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < DEADLINE, "never {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// Whether a client tool that a test drives (Chromium, ffmpeg, Python with OpenCV, curl) is
/// here. Without it the test is skipped, and says so on the terminal: the line is written to
/// stderr directly, past the test harness, which swallows what a passing test prints. With
/// `PUSHSERVE_REQUIRE_CLIENTS=1` (as `.ci/run` sets it) a missing tool fails the test instead.
pub fn client_present(what: &str, install: &str, present: bool) -> bool {
    if present {
        return true;
    }
    let required = std::env::var("PUSHSERVE_REQUIRE_CLIENTS")
        .is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false" | "no" | "off"));
    assert!(
        !required,
        "{what} not found, and PUSHSERVE_REQUIRE_CLIENTS is set: {install}"
    );
    let test = thread::current().name().unwrap_or("a test").to_string();
    let _ = writeln!(
        std::io::stderr(),
        "skipped {test}: {what} not found ({install})"
    );
    false
}

/// A client process, killed on drop, so a failed assertion leaves nothing running.
pub struct Killed(pub Child);

impl Killed {
    /// Waits for the process to exit, failing with `what` after [`DEADLINE`]; its status and
    /// what it wrote on stdout and stderr (empty for one that was not piped).
    pub fn finish(&mut self, what: &str) -> (std::process::ExitStatus, String, String) {
        let status = wait_exit(&mut self.0, what);
        let read = |pipe: Option<&mut dyn Read>| {
            let mut text = String::new();
            if let Some(pipe) = pipe {
                pipe.read_to_string(&mut text).unwrap();
            }
            text
        };
        let stdout = read(self.0.stdout.as_mut().map(|p| p as &mut dyn Read));
        let stderr = read(self.0.stderr.as_mut().map(|p| p as &mut dyn Read));
        (status, stdout, stderr)
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `name` as a command if it is installed, else None and the test is skipped (see
/// [`client_present`]); `install` says how to get it.
pub fn tool(name: &str, install: &str) -> Option<Command> {
    let present = Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    client_present(name, install, present).then(|| Command::new(name))
}

/// `python3`, if it is installed with OpenCV (`cv2`), else None and the test is skipped.
pub fn python_with_opencv() -> Option<Command> {
    let has_cv2 = Command::new("python3")
        .args(["-c", "import cv2"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    client_present(
        "python3 with OpenCV (cv2)",
        "pip install opencv-python-headless",
        has_cv2,
    )
    .then(|| Command::new("python3"))
}

/// The binary under test: this build's, or `$PUSHSERVE_TEST_BIN` (to check that a test fails
/// on another build, e.g. one without the fix it covers).
pub fn bin() -> String {
    std::env::var("PUSHSERVE_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_pushserve").into())
}

/// A name for a test's temp folder: the test's own, so that a folder left behind by a killed
/// run says whose it is.
fn test_tag() -> String {
    thread::current()
        .name()
        .unwrap_or("test")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

impl TestServer {
    /// Starts `pushserve DIR/NAME ARGS --port 0` on a fresh folder DIR that holds only `name`,
    /// with `bytes` in it. [`TestServer::dir`] writes the next versions.
    pub fn serving(name: &str, bytes: &[u8], args: &[&str]) -> TestServer {
        let dir = TempDir::new(&test_tag());
        dir.rewrite(name, bytes);
        TestServer::start_on(dir.path(name), dir, args)
    }

    /// Starts `pushserve DIR ARGS --port 0`, a slideshow of a fresh folder DIR that holds
    /// `files` (name, bytes). [`TestServer::dir`] adds, changes or removes slides.
    pub fn showing(files: &[(&str, &[u8])], args: &[&str]) -> TestServer {
        let dir = TempDir::new(&test_tag());
        for (name, bytes) in files {
            dir.rewrite(name, bytes);
        }
        TestServer::start_on(dir.0.clone(), dir, args)
    }

    fn start_on(source: PathBuf, dir: TempDir, args: &[&str]) -> TestServer {
        let mut command = Command::new(bin());
        command.arg(source).args(args);
        let mut server = TestServer::start_command(command);
        server.dir = Some(dir);
        server
    }

    /// The folder the server was started on by [`TestServer::serving`] or
    /// [`TestServer::showing`].
    pub fn dir(&self) -> &TempDir {
        self.dir
            .as_ref()
            .expect("a server started by TestServer::serving or TestServer::showing")
    }

    /// Starts `pushserve ARGS --port 0` and waits for the URL on stdout.
    pub fn start(args: &[&str]) -> TestServer {
        let mut command = Command::new(bin());
        command.args(args);
        TestServer::start_command(command)
    }

    /// Starts `pushserve ARGS --port 0` with a pipe to its stdin, for `-`.
    pub fn fed(args: &[&str]) -> (TestServer, ChildStdin) {
        let mut command = Command::new(bin());
        command.args(args);
        TestServer::fed_command(command)
    }

    /// Starts `command` (pushserve, or a wrapper that execs it) with `--port 0` appended and a
    /// pipe to its stdin.
    pub fn fed_command(mut command: Command) -> (TestServer, ChildStdin) {
        command.stdin(Stdio::piped());
        let mut server = TestServer::spawn(command);
        let stdin = server.child.stdin.take().expect("a piped stdin");
        (server, stdin)
    }

    /// Starts `command` (pushserve, or a wrapper that execs it) with `--port 0` appended.
    pub fn start_command(mut command: Command) -> TestServer {
        command.stdin(Stdio::null());
        TestServer::spawn(command)
    }

    fn spawn(command: Command) -> TestServer {
        let Launched {
            child,
            url,
            stderr,
            stdout,
        } = Launched::start(command);
        let addr = host_of(&url).to_string();
        TestServer {
            child,
            url,
            addr,
            stderr,
            stdout,
            dir: None,
        }
    }

    /// The lines printed on stdout, once there are `n`.
    pub fn stdout_lines(&self, n: usize) -> Vec<String> {
        let start = Instant::now();
        loop {
            let lines = self.stdout.lock().unwrap().clone();
            if lines.len() >= n {
                return lines;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "stdout never had {n} lines: {lines:?}"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stderr contains `needle`.
    pub fn wait_stderr(&self, needle: &str) {
        wait_said(|| self.stderr(), needle);
    }

    /// `/status`, parsed.
    pub fn status(&self) -> serde_json::Value {
        serde_json::from_slice(&self.get("/status", "").body).unwrap()
    }

    /// Waits until `/status` satisfies `ok`, and returns it; fails saying it never did `what`.
    pub fn wait_status(
        &self,
        what: &str,
        ok: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let start = Instant::now();
        loop {
            let status = self.status();
            if ok(&status) {
                return status;
            }
            assert!(start.elapsed() < DEADLINE, "never {what}: {status}");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until /status counts `n` clients of `endpoint` (stream, events, poll).
    pub fn wait_until_connected(&self, endpoint: &str, n: u64) {
        let start = Instant::now();
        loop {
            let body = self.get("/status", "").body;
            let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
            if status["clients"][endpoint] == n {
                return;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "never {n} {endpoint} clients: {status}"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        s
    }

    /// Number of threads of the server process (Linux).
    pub fn threads(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/task", self.child.id()))
            .unwrap()
            .count()
    }

    /// Waits until the server's thread count satisfies `ok`.
    pub fn wait_threads(&self, what: &str, ok: impl Fn(usize) -> bool, deadline: Duration) {
        let start = Instant::now();
        while !ok(self.threads()) {
            assert!(
                start.elapsed() < deadline,
                "threads never {what}: {}",
                self.threads()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a raw request and reads the whole response (the server always closes).
    pub fn raw(&self, request: &[u8]) -> Vec<u8> {
        let mut s = self.connect();
        s.write_all(request).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    }

    /// `GET path` with extra header lines; returns (status, head, body).
    pub fn get(&self, path: &str, headers: &str) -> Response {
        Response::parse(
            &self
                .raw(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{headers}\r\n").as_bytes()),
        )
    }

    /// Opens `/stream` (with `query`, e.g. `?framing=reader`) as a part reader.
    pub fn stream(&self, query: &str, user_agent: &str) -> PartReader {
        let mut s = self.connect();
        write!(
            s,
            "GET /stream{query} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: {user_agent}\r\n\r\n"
        )
        .unwrap();
        PartReader::new(s)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    pub fn parse(raw: &[u8]) -> Response {
        let end = find(raw, b"\r\n\r\n").expect("a complete response head");
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status");
        Response {
            status,
            head,
            body: raw[end + 4..].to_vec(),
        }
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// One `read` that is retried when a signal interrupts it (EINTR), as `read_exact` would be.
pub fn read_some(conn: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match conn.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            result => return result,
        }
    }
}

/// The boundary a response head (or a stream's text from its head on) names in its
/// Content-Type, up to the end of that line.
pub fn boundary_in(head: &str) -> &str {
    head.split("boundary=")
        .nth(1)
        .and_then(|b| b.lines().next())
        .unwrap_or_else(|| panic!("no boundary in {head}"))
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// The library's parser, strict here: the tests check our framing with it.
use pushserve::decode::multipart;

/// One part of a multipart stream.
#[derive(Debug, Clone)]
pub struct Part {
    /// The part's header lines, `Name: value`, CRLF between them.
    pub headers: String,
    pub body: Vec<u8>,
}

impl Part {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// Reads the parts of a multipart/x-mixed-replace response with the shared parser in strict
/// mode: it panics on garbage before or after a boundary, a part with Content-Length not
/// followed by CRLF, a bare LF, a header block over 8 KiB, a read error or timeout. A part
/// with Content-Length is returned once that many bytes are in (as ffmpeg reads it), what
/// follows it checked at the next call; one without, once the next delimiter has arrived (as
/// a browser reads it). It reads a TCP connection unless told otherwise (a TLS session, a Unix
/// socket, curl's output).
pub struct PartReader<S: Read = TcpStream> {
    parts: multipart::Parts<BufReader<S>>,
    pub head: String,
    /// `--B`.
    pub boundary: Vec<u8>,
    /// Set once the final boundary (`--B--`) has been read.
    pub closed_cleanly: bool,
    /// Keep-alive header lines (`X-Keepalive`) seen in part heads so far.
    pub keepalives_seen: usize,
}

impl<S: Read> PartReader<S> {
    /// Reads the response head from `conn`; panics if it is not a multipart one.
    pub fn new(conn: S) -> PartReader<S> {
        let mut reader = BufReader::with_capacity(65536, conn);
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let n = reader
                .read_until(b'\n', &mut head)
                .unwrap_or_else(|e| panic!("response head: {e}"));
            assert!(n > 0, "the stream ended in its response head");
            assert!(head.len() < 65536, "a response head over 64 KiB");
        }
        head.truncate(head.len() - 4);
        let head = String::from_utf8_lossy(&head).into_owned();
        let boundary = head
            .lines()
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case("content-type").then_some(v)
            })
            .and_then(multipart::boundary_from_content_type)
            .unwrap_or_else(|| panic!("a boundary in {head}"));
        PartReader {
            parts: multipart::Parts::new(reader, &boundary, u64::MAX).strict(),
            head,
            boundary: format!("--{boundary}").into_bytes(),
            closed_cleanly: false,
            keepalives_seen: 0,
        }
    }

    /// The connection, through the parser's buffer: to set a timeout, or to read what
    /// follows the final boundary.
    pub fn conn(&mut self) -> &mut BufReader<S> {
        self.parts.get_mut()
    }

    /// The next complete part, or None at the final boundary or the end of the stream (a
    /// part the end cuts short is not returned).
    pub fn next_part(&mut self) -> Option<Part> {
        let next = self.parts.next_part();
        self.closed_cleanly = self.parts.ended_cleanly();
        match next {
            Ok(Some(part)) => {
                self.keepalives_seen += part
                    .headers
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case("x-keepalive"))
                    .count();
                let headers: Vec<String> = part
                    .headers
                    .iter()
                    .map(|(n, v)| format!("{n}: {v}"))
                    .collect();
                Some(Part {
                    headers: headers.join("\r\n"),
                    body: part.body,
                })
            }
            Ok(None) => None,
            Err(multipart::Error::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => None,
            Err(multipart::Error::Io(e)) => panic!("stream read failed: {e}"),
            Err(e) => panic!("{e}"),
        }
    }

    /// Reads parts until one's body equals `want`, failing after `deadline`.
    pub fn wait_for(&mut self, want: &[u8]) -> Part {
        let start = Instant::now();
        loop {
            let part = self.next_part().expect("stream ended");
            if part.body == want {
                return part;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "never received the expected version"
            );
        }
    }
}

/// Like [`tool`], for a server that packages install in an `sbin` folder, which is on root's
/// PATH but not on other users' (nginx on Debian): looked for on PATH, then there. `probe` is
/// what makes it print its version and exit (nginx: `-v`; it has no `--version`).
pub fn sbin_tool(name: &str, probe: &str, install: &str) -> Option<Command> {
    let found = std::iter::once(PathBuf::from(name))
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(|dir| Path::new(dir).join(name)))
        .find(|program| {
            Command::new(program)
                .arg(probe)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
    let present = client_present(name, install, found.is_some());
    found.filter(|_| present).map(Command::new)
}

/// The parts of a whole multipart body, as the shared parser reads them leniently (as pushserve
/// reads stdin or an upstream): what a tool such as `ffmpeg -f mpjpeg` wrote, part by part.
pub fn parts_of(bytes: &[u8], boundary: &str) -> Vec<Part> {
    let mut reader = multipart::Parts::new(bytes, boundary, u64::MAX);
    let mut parts = Vec::new();
    loop {
        match reader.next_part() {
            Ok(Some(part)) => {
                let headers: Vec<String> = part
                    .headers
                    .iter()
                    .map(|(n, v)| format!("{n}: {v}"))
                    .collect();
                parts.push(Part {
                    headers: headers.join("\r\n"),
                    body: part.body,
                });
            }
            Ok(None) => return parts,
            Err(e) => panic!("not a multipart body: {e}"),
        }
    }
}

use std::os::unix::net::UnixStream;

/// A server on a Unix socket (`--bind unix:PATH`, or one systemd handed over) prints nginx's
/// form of URL, `http://unix:PATH:/`: these talk to it there ([`TestServer::addr`] is then no
/// `host:port`, and the TCP helpers above do not apply).
impl TestServer {
    /// The socket's path, from the URL printed; panics if it is not on a Unix socket.
    pub fn socket_path(&self) -> PathBuf {
        socket_path_of(&self.url).unwrap_or_else(|| panic!("not a Unix socket's URL: {}", self.url))
    }

    pub fn connect_unix(&self) -> UnixStream {
        let s = UnixStream::connect(self.socket_path()).unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        s
    }

    /// [`TestServer::raw`] over the Unix socket.
    pub fn unix_raw(&self, request: &[u8]) -> Vec<u8> {
        let mut s = self.connect_unix();
        s.write_all(request).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    }

    /// [`TestServer::get`] over the Unix socket.
    pub fn unix_get(&self, path: &str, headers: &str) -> Response {
        Response::parse(&self.unix_raw(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{headers}\r\n").as_bytes(),
        ))
    }

    /// [`TestServer::stream`] over the Unix socket.
    pub fn unix_stream(&self, query: &str, user_agent: &str) -> PartReader<UnixStream> {
        let mut s = self.connect_unix();
        write!(
            s,
            "GET /stream{query} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: {user_agent}\r\n\r\n"
        )
        .unwrap();
        PartReader::new(s)
    }
}

/// The path in a Unix socket's URL, `http://unix:PATH:/` (or `…:/NAME/`), if it is one.
pub fn socket_path_of(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("http://unix:")?;
    let end = rest.rfind(":/")?;
    Some(PathBuf::from(&rest[..end]))
}
