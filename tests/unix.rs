//! Serving on a Unix socket (`--bind unix:PATH`) and on a socket systemd hands over (socket
//! activation): what is served there, with curl, our own client and nginx in front; what is
//! found at PATH before (a stale socket is replaced, anything else left alone); the socket
//! file gone at exit; the Host check there.
//!
//! Without curl, nginx or systemd-socket-activate the tests that use them are skipped (see
//! `common::client_present`).

mod common;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use common::nginx::Nginx;
use common::{
    DEADLINE, Killed, PartReader, Response, TempDir, TestServer, bin, fixture, sbin_tool, tool,
    wait_exit,
};

/// `--bind unix:PATH`.
fn bind_to(path: &Path) -> String {
    format!("unix:{}", path.display())
}

/// A folder for sockets: short, as a socket's path must fit in 108 bytes.
fn socket_dir() -> TempDir {
    TempDir::new("unix")
}

fn is_socket(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// Sends `GET path` naming `host` on `conn` and reads the whole response.
fn get_on(mut conn: impl Read + Write, path: &str, host: &str) -> Response {
    write!(conn, "GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    let _ = conn.read_to_end(&mut raw);
    Response::parse(&raw)
}

#[test]
fn curl_reads_the_snapshot_the_status_and_the_stream_on_the_socket() {
    if tool("curl", "apt-get install curl").is_none() {
        return;
    }
    let red = fixture("red.jpg");
    let sockets = socket_dir();
    let path = sockets.path("cam.sock");
    let server = TestServer::serving("cam.jpg", &red, &["--bind", &bind_to(&path)]);
    assert_eq!(server.url, format!("http://unix:{}:/", path.display()));
    assert!(is_socket(&path));

    let curl = |url_path: &str| {
        let out = Command::new("curl")
            .args(["-sS", "--fail", "--max-time", "10", "--unix-socket"])
            .arg(&path)
            .arg(format!("http://localhost{url_path}"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "curl {url_path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    assert_eq!(curl("/snapshot"), red);
    let status: serde_json::Value = serde_json::from_slice(&curl("/status")).unwrap();
    assert_eq!(status["frame"]["size"], red.len(), "{status}");

    // `-i` puts the response head before the body, as the part reader wants it; curl gives
    // up after --max-time, so a stream that never comes ends the read.
    let stream = Command::new("curl")
        .args(["-sS", "-N", "-i", "--max-time", "10", "--unix-socket"])
        .arg(&path)
        .arg("http://localhost/stream")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut streaming = Killed(stream);
    let mut parts = PartReader::new(streaming.0.stdout.take().unwrap());
    assert!(parts.head.starts_with("HTTP/1.1 200 "), "{}", parts.head);
    assert_eq!(parts.next_part().expect("a first part").body, red);
}

#[test]
fn our_client_gets_every_version_on_the_socket() {
    let (red, green) = (fixture("red.jpg"), fixture("green.jpg"));
    let sockets = socket_dir();
    let server = TestServer::serving(
        "cam.jpg",
        &red,
        &[
            "--bind",
            &bind_to(&sockets.path("cam.sock")),
            "--poll",
            "20",
        ],
    );
    let snapshot = server.unix_get("/snapshot", "");
    assert_eq!(snapshot.status, 200, "{}", snapshot.head);
    assert_eq!(
        snapshot.header("content-type").as_deref(),
        Some("image/jpeg")
    );
    assert_eq!(snapshot.body, red);

    let mut reader = server.unix_stream("", "test");
    let mut browser = server.unix_stream("", "Mozilla/5.0");
    assert_eq!(reader.next_part().unwrap().body, red);
    assert_eq!(browser.next_part().unwrap().body, red);
    let status: serde_json::Value =
        serde_json::from_slice(&server.unix_get("/status", "").body).unwrap();
    assert_eq!(status["clients"]["stream"], 2, "{status}");

    server.dir().replace("cam.jpg", &green);
    reader.wait_for(&green);
    browser.wait_for(&green);
}

#[test]
fn several_sources_on_the_socket_print_one_url_each() {
    let (red, green) = (fixture("red.jpg"), fixture("green.jpg"));
    let files = TempDir::new("unix-sources");
    files.rewrite("a.jpg", &red);
    files.rewrite("b.jpg", &green);
    let sockets = socket_dir();
    let path = sockets.path("cam.sock");
    let a = format!("front={}", files.path("a.jpg").display());
    let b = format!("back={}", files.path("b.jpg").display());
    let server = TestServer::start(&[&a, &b, "--bind", &bind_to(&path)]);
    let root = format!("http://unix:{}:/", path.display());
    assert_eq!(
        server.stdout_lines(3),
        [
            root.clone(),
            format!("{root}front/"),
            format!("{root}back/")
        ]
    );
    assert_eq!(server.unix_get("/front/snapshot", "").body, red);
    assert_eq!(server.unix_get("/back/snapshot", "").body, green);
}

#[test]
fn a_stale_socket_is_replaced() {
    let red = fixture("red.jpg");
    let sockets = socket_dir();
    let path = sockets.path("cam.sock");
    // What a crash leaves: the file, and nobody answering on it. Made by a server killed with
    // SIGKILL, not by a listener of this process: a child that another test forks holds every
    // descriptor of ours until it execs, and the listener answers until then.
    drop(TestServer::serving(
        "cam.jpg",
        &red,
        &["--bind", &bind_to(&path)],
    ));
    assert!(is_socket(&path));
    let refused = UnixStream::connect(&path).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);

    let server = TestServer::serving("cam.jpg", &red, &["--bind", &bind_to(&path)]);
    assert_eq!(server.unix_get("/snapshot", "").body, red);
}

/// Runs pushserve with `args` (`--port 0` added), which must exit 1 at once saying one thing on
/// stderr; returns that line.
fn refused(args: &[&OsStr]) -> String {
    let child = Command::new(bin())
        .args(args)
        .args(["--port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (status, stdout, stderr) = Killed(child).finish("pushserve did not exit");
    assert_eq!(status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stdout, "", "it printed a URL");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

#[test]
fn a_socket_another_server_answers_on_is_left_to_it() {
    let red = fixture("red.jpg");
    let sockets = socket_dir();
    let path = sockets.path("cam.sock");
    let first = TestServer::serving("cam.jpg", &red, &["--bind", &bind_to(&path)]);
    let source = first.dir().path("cam.jpg");
    let said = refused(&[
        source.as_os_str(),
        "--bind".as_ref(),
        bind_to(&path).as_ref(),
    ]);
    assert!(said.contains("another server answers on it"), "{said}");
    assert!(said.contains(&bind_to(&path)), "{said}");
    // The first one still has its socket.
    assert!(is_socket(&path));
    assert_eq!(first.unix_get("/snapshot", "").body, red);
}

#[test]
fn anything_but_a_socket_at_the_path_is_left_alone() {
    let source = TempDir::new("unix-source");
    source.rewrite("cam.jpg", &fixture("red.jpg"));
    let source = source.path("cam.jpg");
    let sockets = socket_dir();

    let file = sockets.path("notes.txt");
    let notes = b"not a socket: keep me\n";
    std::fs::write(&file, notes).unwrap();
    let said = refused(&[
        source.as_os_str(),
        "--bind".as_ref(),
        bind_to(&file).as_ref(),
    ]);
    assert!(said.contains("is not a socket"), "{said}");
    assert_eq!(std::fs::read(&file).unwrap(), notes);

    let folder = sockets.path("folder");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("inside"), b"x").unwrap();
    let said = refused(&[
        source.as_os_str(),
        "--bind".as_ref(),
        bind_to(&folder).as_ref(),
    ]);
    assert!(said.contains("is not a socket"), "{said}");
    assert_eq!(std::fs::read(folder.join("inside")).unwrap(), b"x");
}

/// Whether this process runs as root, whom no file permission stops.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

#[test]
fn a_socket_we_may_not_connect_to_is_left_alone() {
    use std::os::unix::fs::PermissionsExt;
    let red = fixture("red.jpg");
    let sockets = socket_dir();
    // Anyone may remove what is in the folder: only the check can keep the socket.
    std::fs::set_permissions(&sockets.0, std::fs::Permissions::from_mode(0o777)).unwrap();
    let path = sockets.path("cam.sock");
    let first = TestServer::serving("cam.jpg", &red, &["--bind", &bind_to(&path)]);
    let source = first.dir().path("cam.jpg");
    let said = if is_root() {
        // Root may connect to anything: try as nobody, whom the socket (mode 755) refuses.
        let Some(mut setpriv) = tool("setpriv", "apt-get install util-linux") else {
            return;
        };
        let nobody = setpriv
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(bin());
        let runs = Command::new(nobody.get_program())
            .args(nobody.get_args())
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let why = "a build that others may read and run";
        if !common::client_present("pushserve runnable as nobody", why, runs) {
            return;
        }
        let child = nobody
            .arg(&source)
            .args(["--bind", &bind_to(&path), "--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (status, _, stderr) = Killed(child).finish(
            "pushserve, as nobody, did not exit: it serves on the socket in the first one's place",
        );
        assert_eq!(status.code(), Some(1), "stderr: {stderr}");
        stderr
    } else {
        // Connecting needs write permission on the socket.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
        let said = refused(&[
            source.as_os_str(),
            "--bind".as_ref(),
            bind_to(&path).as_ref(),
        ]);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        said
    };
    assert!(said.contains("left alone"), "{said}");
    assert_eq!(
        first.unix_get("/snapshot", "").body,
        red,
        "the first server lost its socket"
    );
}

/// Sends `signal` to the process `pid` with kill(1): std has no signal API.
fn kill(signal: &str, pid: &str) {
    let sent = Command::new("kill")
        .args(["-s", signal, "--", pid])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -s {signal} {pid}");
}

#[test]
fn the_socket_file_is_removed_at_sigterm() {
    let sockets = socket_dir();
    let path = sockets.path("cam.sock");
    let mut server =
        TestServer::serving("cam.jpg", &fixture("red.jpg"), &["--bind", &bind_to(&path)]);
    assert!(is_socket(&path));
    kill("TERM", &server.child.id().to_string());
    let status = wait_exit(&mut server.child, "pushserve ignored SIGTERM");
    assert!(status.success(), "{status}");
    assert!(!path.exists(), "the socket file is still there");
}

#[test]
fn the_socket_file_is_removed_when_once_ends() {
    let sockets = socket_dir();
    let path = sockets.path("cam.sock");
    let mut server = TestServer::serving(
        "cam.jpg",
        &fixture("red.jpg"),
        &["--once", "--bind", &bind_to(&path)],
    );
    let status = wait_exit(&mut server.child, "pushserve --once did not end");
    assert!(status.success(), "{status}");
    assert!(!path.exists(), "the socket file is still there");
}

#[test]
fn on_a_socket_any_host_is_answered_unless_allow_host_names_some() {
    let red = fixture("red.jpg");
    let sockets = socket_dir();
    let open = TestServer::serving(
        "cam.jpg",
        &red,
        &["--bind", &bind_to(&sockets.path("a.sock"))],
    );
    // No web page can reach a Unix socket: whatever a proxy passes on is answered.
    for host in ["cam.example.com", "localhost", "192.168.1.5:8080"] {
        let answer = get_on(open.connect_unix(), "/snapshot", host);
        assert_eq!(answer.status, 200, "Host: {host}: {}", answer.head);
        assert_eq!(answer.body, red);
    }

    let named = TestServer::serving(
        "cam.jpg",
        &red,
        &[
            "--bind",
            &bind_to(&sockets.path("b.sock")),
            "--allow-host",
            "other.example",
        ],
    );
    for (host, status) in [
        ("cam.example.com", 403),
        ("other.example", 200),
        ("localhost", 200),
    ] {
        let answer = get_on(named.connect_unix(), "/snapshot", host);
        assert_eq!(answer.status, status, "Host: {host}: {}", answer.head);
    }
}

/// docs/GUIDE.md's nginx block for a Unix socket (section "Share it", "Behind nginx on a Unix
/// socket"), passing to `socket` instead of the example's path, in a server on `port`.
fn guide_unix_site(port: u16, socket: &Path) -> String {
    let section = include_str!("../docs/GUIDE.md")
        .split("\n### Behind nginx on a Unix socket\n")
        .nth(1)
        .and_then(|rest| rest.split("\n#").next())
        .expect("docs/GUIDE.md's section \"Behind nginx on a Unix socket\"");
    let block = section
        .split("```nginx\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("an nginx block in docs/GUIDE.md's section \"Behind nginx on a Unix socket\"");
    let example = "proxy_pass http://unix:/run/pushserve/cam.sock:/;";
    assert!(
        block.contains(example),
        "docs/GUIDE.md's nginx block no longer says {example:?}:\n{block}"
    );
    let block = block.replace(
        example,
        &format!("proxy_pass http://unix:{}:/;", socket.display()),
    );
    format!("server {{\n    listen 127.0.0.1:{port};\n\n{block}}}\n")
}

#[test]
fn nginx_passes_viewers_to_the_socket_with_the_guide_block() {
    let Some(nginx) = sbin_tool("nginx", "-v", "apt-get install nginx") else {
        return;
    };
    let (red, green) = (fixture("red.jpg"), fixture("green.jpg"));
    let sockets = socket_dir();
    let path = sockets.path("cam.sock");
    let server = TestServer::serving(
        "cam.jpg",
        &red,
        &["--bind", &bind_to(&path), "--poll", "20"],
    );
    let nginx = Nginx::start(nginx.get_program(), |port| guide_unix_site(port, &path));

    let page = nginx.get("/cam/", "cam.example.com");
    assert_eq!(page.status, 200, "{}; nginx: {}", page.head, nginx.log());
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html"),
        "{}",
        page.head
    );
    let snapshot = nginx.get("/cam/snapshot", "cam.example.com");
    assert_eq!(snapshot.status, 200, "{}", snapshot.head);
    assert_eq!(snapshot.body, red);

    let mut parts = PartReader::new(nginx.request("/cam/stream", "cam.example.com", "test"));
    assert_eq!(parts.next_part().expect("a first part").body, red);
    server.dir().replace("cam.jpg", &green);
    parts.wait_for(&green);
}

/// `systemd-socket-activate OPTIONS pushserve ARGS`, in a process group of its own: it listens
/// where each `-l ADDRESS` of OPTIONS says and, at the first connection, execs pushserve in its
/// place with the sockets from fd 3 on (`LISTEN_FDS`, `LISTEN_PID`); with `-a`, it forks a
/// pushserve per connection instead, with the connection as fd 3. The whole group is killed on
/// drop.
struct Activated {
    child: Child,
    /// pushserve's stdout, line by line.
    stdout: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Activated {
    /// Started and listening on every socket of `options`; Err with what it said if it exited
    /// first.
    fn start(options: &[&str], args: &[&OsStr]) -> Result<Activated, String> {
        let mut child = Command::new("systemd-socket-activate")
            .args(options)
            .arg(bin())
            .args(args)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start systemd-socket-activate");
        let (tx, stdout) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let (err, sink) = (child.stderr.take().unwrap(), Arc::clone(&stderr));
        thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let mut activated = Activated {
            child,
            stdout,
            stderr,
        };
        let sockets = options.iter().filter(|o| **o == "-l").count();
        let start = Instant::now();
        loop {
            if activated.stderr().matches("Listening on").count() == sockets {
                return Ok(activated);
            }
            if activated.child.try_wait().unwrap().is_some() {
                // Whatever it said is read once its pipe has closed.
                thread::sleep(Duration::from_millis(50));
                return Err(activated.stderr());
            }
            assert!(
                start.elapsed() < DEADLINE,
                "systemd-socket-activate never listened: {}",
                activated.stderr()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// On `ports` free loopback ports (picked, then handed over: once more if something took
    /// one in between), then on the sockets `more` options give; the ports too.
    fn on_loopback(ports: usize, more: &[&str], args: &[&OsStr]) -> (Activated, Vec<u16>) {
        for attempt in 1..=2 {
            let picked: Vec<TcpListener> = (0..ports)
                .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
                .collect();
            let ports: Vec<u16> = picked
                .iter()
                .map(|l| l.local_addr().unwrap().port())
                .collect();
            drop(picked);
            let addresses: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
            let mut options: Vec<&str> = addresses.iter().flat_map(|a| ["-l", a]).collect();
            options.extend(more);
            match Activated::start(&options, args) {
                Ok(activated) => return (activated, ports),
                Err(said) if attempt == 1 && said.contains("in use") => {}
                Err(said) => panic!("systemd-socket-activate stopped: {said}"),
            }
        }
        unreachable!()
    }

    /// Waits until systemd-socket-activate or pushserve has said `needle` on stderr.
    fn wait_stderr(&self, needle: &str) {
        common::wait_said(|| self.stderr(), needle);
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The URL pushserve printed.
    fn url(&self) -> String {
        self.stdout
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("pushserve printed no URL; stderr: {}", self.stderr()))
    }

    /// pushserve, once it is there: systemd-socket-activate became it.
    fn exit_status(&mut self) -> ExitStatus {
        wait_exit(&mut self.child, "pushserve did not exit")
    }
}

impl Drop for Activated {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Connects with `connect` until it succeeds or [`DEADLINE`] passes.
fn connect_until<S>(mut connect: impl FnMut() -> std::io::Result<S>) -> S {
    let start = Instant::now();
    loop {
        match connect() {
            Ok(conn) => return conn,
            Err(e) => assert!(start.elapsed() < DEADLINE, "cannot connect: {e}"),
        }
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn systemd_socket_activation_on_tcp() {
    if tool("systemd-socket-activate", "apt-get install systemd").is_none() {
        return;
    }
    let red = fixture("red.jpg");
    let files = TempDir::new("activated-tcp");
    files.rewrite("cam.jpg", &red);
    let (activated, ports) = Activated::on_loopback(1, &[], &[files.path("cam.jpg").as_os_str()]);
    let port = ports[0];
    let addr = format!("127.0.0.1:{port}");
    // The first connection starts pushserve, which answers it.
    let conn = connect_until(|| TcpStream::connect(&addr));
    conn.set_read_timeout(Some(DEADLINE)).unwrap();
    let snapshot = get_on(conn, "/snapshot", "localhost");
    assert_eq!(snapshot.status, 200, "{}", snapshot.head);
    assert_eq!(snapshot.body, red);
    assert_eq!(activated.url(), format!("http://127.0.0.1:{port}/"));

    let conn = TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(DEADLINE)).unwrap();
    let status = get_on(conn, "/status", "localhost");
    assert_eq!(status.status, 200, "{}", status.head);
    let status: serde_json::Value = serde_json::from_slice(&status.body).unwrap();
    assert_eq!(status["sources"][0]["kind"], "file", "{status}");
}

#[test]
fn systemd_socket_activation_on_a_unix_socket() {
    if tool("systemd-socket-activate", "apt-get install systemd").is_none() {
        return;
    }
    let red = fixture("red.jpg");
    let files = TempDir::new("activated-unix");
    files.rewrite("cam.jpg", &red);
    let path: PathBuf = files.path("cam.sock");
    let mut activated = Activated::start(
        &["-l", path.to_str().unwrap()],
        &[files.path("cam.jpg").as_os_str()],
    )
    .unwrap_or_else(|said| panic!("systemd-socket-activate stopped: {said}"));
    let conn = connect_until(|| UnixStream::connect(&path));
    conn.set_read_timeout(Some(DEADLINE)).unwrap();
    let snapshot = get_on(conn, "/snapshot", "localhost");
    assert_eq!(snapshot.status, 200, "{}", snapshot.head);
    assert_eq!(snapshot.body, red);
    assert_eq!(activated.url(), format!("http://unix:{}:/", path.display()));

    // The socket is systemd's, which goes on listening on it after the service stops: pushserve
    // leaves its file alone.
    kill("TERM", &activated.child.id().to_string());
    let status = activated.exit_status();
    assert!(status.success(), "{status}");
    assert!(
        is_socket(&path),
        "pushserve removed the socket systemd handed over"
    );
}

#[test]
fn systemd_socket_activation_serves_on_every_socket_and_prints_each_url() {
    if tool("systemd-socket-activate", "apt-get install systemd").is_none() {
        return;
    }
    let red = fixture("red.jpg");
    let files = TempDir::new("activated-several");
    files.rewrite("cam.jpg", &red);
    let path = files.path("cam.sock");
    // As a unit with an IPv4 and an IPv6 ListenStream=, and a Unix one.
    let (activated, ports) = Activated::on_loopback(
        2,
        &["-l", path.to_str().unwrap()],
        &[files.path("cam.jpg").as_os_str()],
    );
    // The second socket's first connection starts pushserve; each socket is answered.
    for port in [ports[1], ports[0]] {
        let conn = connect_until(|| TcpStream::connect(("127.0.0.1", port)));
        conn.set_read_timeout(Some(DEADLINE)).unwrap();
        let answer = get_on(conn, "/snapshot", "localhost");
        assert_eq!(answer.status, 200, "port {port}: {}", answer.head);
        assert_eq!(answer.body, red, "port {port}");
    }
    // Each socket has its own Host check: names on the loopback ports, anything on the Unix one.
    let conn = UnixStream::connect(&path).unwrap();
    conn.set_read_timeout(Some(DEADLINE)).unwrap();
    let answer = get_on(conn, "/snapshot", "cam.example.com");
    assert_eq!(answer.status, 200, "{}", answer.head);
    assert_eq!(answer.body, red);
    let conn = TcpStream::connect(("127.0.0.1", ports[0])).unwrap();
    conn.set_read_timeout(Some(DEADLINE)).unwrap();
    let answer = get_on(conn, "/snapshot", "cam.example.com");
    assert_eq!(answer.status, 403, "{}", answer.head);

    let urls: Vec<String> = (0..3).map(|_| activated.url()).collect();
    assert_eq!(
        urls,
        [
            format!("http://127.0.0.1:{}/", ports[0]),
            format!("http://127.0.0.1:{}/", ports[1]),
            format!("http://unix:{}:/", path.display()),
        ]
    );
}

#[test]
fn systemd_socket_activation_with_accept_yes_is_refused_at_once() {
    if tool("systemd-socket-activate", "apt-get install systemd").is_none() {
        return;
    }
    let files = TempDir::new("activated-accept");
    files.rewrite("cam.jpg", &fixture("red.jpg"));
    // Accept=yes: each connection is handed to a pushserve of its own, which cannot accept on it.
    let (activated, ports) =
        Activated::on_loopback(1, &["-a"], &[files.path("cam.jpg").as_os_str()]);
    let mut conn = connect_until(|| TcpStream::connect(("127.0.0.1", ports[0])));
    conn.set_read_timeout(Some(DEADLINE)).unwrap();
    activated.wait_stderr("died with code 1");
    // Its pushserve is gone, and the connection with it.
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest);
    assert_eq!(rest, b"");
    let said: Vec<String> = activated
        .stderr()
        .lines()
        .filter(|l| l.starts_with("pushserve:"))
        .map(str::to_string)
        .collect();
    assert_eq!(said.len(), 1, "{}", activated.stderr());
    assert!(said[0].contains("fd 3 is not listening"), "{}", said[0]);
    assert!(said[0].contains("needs Accept=no"), "{}", said[0]);
    assert!(
        activated.stdout.try_recv().is_err(),
        "it printed a URL; stderr: {}",
        activated.stderr()
    );
}

#[test]
fn systemd_socket_activation_of_a_udp_socket_says_so() {
    if tool("systemd-socket-activate", "apt-get install systemd").is_none() {
        return;
    }
    let files = TempDir::new("activated-udp");
    files.rewrite("cam.jpg", &fixture("red.jpg"));
    // -d: ListenDatagram=, which systemd activates at the first datagram.
    let (mut activated, ports) =
        Activated::on_loopback(1, &["-d"], &[files.path("cam.jpg").as_os_str()]);
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(b"hello", ("127.0.0.1", ports[0])).unwrap();
    let status = activated.exit_status();
    assert_eq!(status.code(), Some(1), "stderr: {}", activated.stderr());
    activated.wait_stderr("pushserve: ");
    let stderr = activated.stderr();
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("pushserve:"))
        .collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(said[0].contains("fd 3 is a UDP socket"), "{stderr}");
    assert!(said[0].contains("ListenStream="), "{stderr}");
}

/// `pushserve ARGS` with fd 3 open on /dev/null, `LISTEN_FDS=1`, and `LISTEN_PID` set to what
/// `pid` says (`$$`: pushserve's own) or unset.
fn with_listen_fds(pid: Option<&str>, args: &[&OsStr]) -> Command {
    let mut command = Command::new("sh");
    let script = match pid {
        Some(pid) => format!("LISTEN_PID={pid} exec \"$0\" \"$@\" 3</dev/null"),
        None => "exec \"$0\" \"$@\" 3</dev/null".to_string(),
    };
    command
        .args(["-c", &script, &bin()])
        .args(args)
        .env("LISTEN_FDS", "1")
        .env_remove("LISTEN_PID");
    command
}

#[test]
fn listen_fds_for_another_process_are_ignored() {
    let red = fixture("red.jpg");
    let files = TempDir::new("listen-pid");
    files.rewrite("cam.jpg", &red);
    let source = files.path("cam.jpg");
    // As sd_listen_fds: without LISTEN_PID naming this process, fd 3 is not ours to take.
    for pid in [None, Some("1"), Some("''"), Some("not-a-pid")] {
        let server = TestServer::start_command(with_listen_fds(pid, &[source.as_os_str()]));
        assert!(
            server.url.starts_with("http://127.0.0.1:"),
            "LISTEN_PID {pid:?}: {}",
            server.url
        );
        assert_eq!(server.get("/snapshot", "").body, red, "LISTEN_PID {pid:?}");
    }
    // Named, it is taken, and what it is said.
    let child = with_listen_fds(Some("$$"), &[source.as_os_str()])
        .args(["--port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (status, stdout, stderr) = Killed(child).finish("pushserve did not exit");
    assert_eq!(status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("fd 3 is not a TCP or Unix stream socket"),
        "{stderr}"
    );
}
