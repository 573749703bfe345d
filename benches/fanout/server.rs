//! The servers under test: pushserve (a private copy of the release binary, watching a file in
//! a temp folder that each change is renamed over, or rewritten in place for figure 13, or for
//! figures 9, 10 and 13 with other arguments: a relay, `-`, many files; over HTTPS for figure
//! 11), the baseline (this binary re-executed as `--baseline-server`, fed frames on its stdin)
//! and for figure 13 mjpg-streamer watching such a file, all started on 127.0.0.1 with a free
//! port and killed on drop; and the baseline server itself.
//!
//! Baseline shape: one thread per connection (128 KiB stack, like `src/http/listener.rs`), each
//! waiting on a Mutex and Condvar for a newer frame and writing the pre-rendered part (head,
//! body and CRLF, built once per frame) with one `write_all`. No HTTP parsing, no file watching,
//! no keep-alives, no write timeout.

use std::env;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{self, Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{Launched, TempDir, collect_stderr, host_of};
use crate::measure::{Proc, listening, now_ns};

/// The stack pushserve gives a connection thread (src/http/listener.rs).
const CONN_STACK: usize = 128 * 1024;
const BASELINE_BOUNDARY: &str = "BaselineBoundary0123456789abcdefghijklmn";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Pushserve,
    Baseline,
    /// mjpg-streamer's input_file watching the folder of the file, output_http serving it
    /// (figure 13, when `FANOUT_MJPG_STREAMER` names its binary).
    MjpgStreamer,
}

impl Kind {
    pub const BOTH: [Kind; 2] = [Kind::Pushserve, Kind::Baseline];
}

/// PIDs of every child alive, for the watchdog.
pub fn children() -> &'static Mutex<Vec<u32>> {
    static CHILDREN: OnceLock<Mutex<Vec<u32>>> = OnceLock::new();
    CHILDREN.get_or_init(|| Mutex::new(Vec::new()))
}

/// A running server process (pushserve or the baseline), killed on drop.
pub struct Server {
    kind: Kind,
    child: Child,
    pub addr: SocketAddr,
    /// Baseline: frames go in here, length-prefixed.
    stdin: Option<ChildStdin>,
    /// Pushserve: the watched file, in its own temp dir.
    dir: Option<TempDir>,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    pub fn start(kind: Kind, first: &[u8], args: &[&str]) -> Server {
        let (cmd, dir) = match kind {
            Kind::Pushserve => {
                let dir = TempDir::new("src");
                fs::write(dir.path("frame.jpg"), first).expect("write frame");
                let mut cmd = Command::new(pushserve_bin());
                cmd.arg(dir.path("frame.jpg"))
                    .args(args)
                    .stdin(Stdio::null());
                (cmd, Some(dir))
            }
            Kind::Baseline => {
                let mut cmd = Command::new(env::current_exe().expect("own path"));
                cmd.arg("--baseline-server").stdin(Stdio::piped());
                (cmd, None)
            }
            Kind::MjpgStreamer => unreachable!("mjpg-streamer starts with Server::mjpg_streamer"),
        };
        let mut server = Server::spawn(kind, cmd, dir);
        if kind == Kind::Baseline {
            server.stdin = server.child.stdin.take();
            server.publish(first);
        }
        server
    }

    /// mjpg-streamer (`bin`, its plugins beside it) serving a file that `first` is written
    /// to, on 127.0.0.1 and a port that was free a moment before; returns once it listens
    /// there (its threads then are all but those of its clients). It prints no URL, and sends
    /// a reader nothing before the file's next change.
    pub fn mjpg_streamer(bin: &Path, first: &[u8]) -> Server {
        let dir = TempDir::new("mjpg");
        fs::write(dir.path("frame.jpg"), first).expect("write frame");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut cmd = Command::new(bin);
        cmd.env("LD_LIBRARY_PATH", bin.parent().unwrap_or(Path::new(".")))
            .arg("-i")
            .arg(format!(
                "input_file.so -f {} -n frame.jpg -d 0",
                dir.0.display()
            ))
            .arg("-o")
            .arg(format!("output_http.so -p {port} -l 127.0.0.1"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start mjpg-streamer");
        children().lock().unwrap().push(child.id());
        let stderr = collect_stderr(child.stderr.take().unwrap());
        let mut server = Server {
            kind: Kind::MjpgStreamer,
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            stdin: None,
            dir: Some(dir),
            stderr,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !listening(port) {
            assert!(
                server.alive() && Instant::now() < deadline,
                "mjpg-streamer did not listen on {}: {}",
                server.addr,
                server.stderr()
            );
            thread::sleep(Duration::from_millis(10));
        }
        server
    }

    /// pushserve with `args` and `--port 0` and no watched file (a relay, or `-` with `stdin`
    /// piped: see [`Server::take_stdin`]); [`Server::publish`] is not for it.
    pub fn command(args: &[&str], stdin: Stdio) -> Server {
        let mut cmd = Command::new(pushserve_bin());
        cmd.args(args).stdin(stdin);
        Server::spawn(Kind::Pushserve, cmd, None)
    }

    /// The server's stdin, if it was piped and not taken yet.
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.child.stdin.take()
    }

    /// Starts `cmd` with `--port 0` and waits for the URL it prints first, as the tests do.
    fn spawn(kind: Kind, cmd: Command, dir: Option<TempDir>) -> Server {
        let Launched {
            child, url, stderr, ..
        } = Launched::start(cmd);
        children().lock().unwrap().push(child.id());
        let addr = host_of(&url)
            .parse()
            .unwrap_or_else(|_| panic!("{kind:?} printed no address: {url:?}"));
        Server {
            kind,
            child,
            addr,
            stdin: None,
            dir,
            stderr,
        }
    }

    /// Publishes a new version; returns the time it was published.
    pub fn publish(&mut self, frame: &[u8]) -> u64 {
        match self.kind {
            Kind::Pushserve | Kind::MjpgStreamer => {
                // As `TempDir::replace`, but timed between the write and the rename.
                let dir = self.dir.as_ref().unwrap();
                let tmp = dir.path(".frame.jpg.tmp");
                fs::write(&tmp, frame).expect("write frame");
                let t0 = now_ns();
                fs::rename(&tmp, dir.path("frame.jpg")).expect("rename frame");
                t0
            }
            Kind::Baseline => {
                let stdin = self.stdin.as_mut().unwrap();
                let t0 = now_ns();
                let len = u32::try_from(frame.len()).unwrap().to_le_bytes();
                stdin.write_all(&len).expect("baseline stdin");
                stdin.write_all(frame).expect("baseline stdin");
                stdin.flush().expect("baseline stdin");
                t0
            }
        }
    }

    /// Publishes a new version by rewriting the watched file in place (open it truncated, write
    /// the whole frame, close it), as a program that does not save atomically does; returns the
    /// time just before the close.
    pub fn rewrite(&mut self, frame: &[u8]) -> u64 {
        let dir = self.dir.as_ref().expect("a watched file");
        let mut file = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(dir.path("frame.jpg"))
            .expect("open frame");
        file.write_all(frame).expect("write frame");
        let t0 = now_ns();
        drop(file);
        t0
    }

    /// The server process's `/proc` entries.
    pub fn proc(&self) -> Proc {
        Proc(self.child.id())
    }

    /// A `/proc/PID/status` line's number (kB for memory lines).
    pub fn status(&self, key: &str) -> u64 {
        self.proc().status(key)
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        children().lock().unwrap().retain(|&p| p != self.child.id());
    }
}

/// A private copy of the release binary, taken once, so that a rebuild during the run (by
/// someone else working in the tree) cannot change what is measured half-way.
pub fn pushserve_bin() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = env::temp_dir().join(format!("pushserve-bench-{}-bin", process::id()));
        fs::create_dir_all(&dir).expect("create bin dir");
        let bin = dir.join("pushserve");
        let from = env::var_os("FANOUT_PUSHSERVE").map_or_else(
            || PathBuf::from(env!("CARGO_BIN_EXE_pushserve")),
            PathBuf::from,
        );
        fs::copy(&from, &bin).expect("copy pushserve");
        bin
    })
}

/// Removes the copy of the binary when the run ends, also by a panic.
pub struct BinCopy;

impl Drop for BinCopy {
    fn drop(&mut self) {
        if let Some(dir) = pushserve_bin().parent() {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

struct Shared {
    /// (sequence number, the whole part: head, body, CRLF)
    part: Mutex<(u64, Arc<Vec<u8>>)>,
    changed: Condvar,
}

/// The baseline: accepts connections; each gets the response head, then every new part from
/// stdin. Exits when stdin ends.
pub fn baseline_server() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    println!("http://{}/", listener.local_addr().unwrap());
    io::stdout().flush().unwrap();
    let shared = Arc::new(Shared {
        part: Mutex::new((0, Arc::new(Vec::new()))),
        changed: Condvar::new(),
    });
    let feed = Arc::clone(&shared);
    thread::spawn(move || {
        let mut stdin = io::stdin().lock();
        let mut len = [0u8; 4];
        while stdin.read_exact(&mut len).is_ok() {
            let mut body = vec![0u8; u32::from_le_bytes(len) as usize];
            if stdin.read_exact(&mut body).is_err() {
                break;
            }
            let mut part = format!(
                "--{BASELINE_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            part.extend_from_slice(&body);
            part.extend_from_slice(b"\r\n");
            let mut state = feed.part.lock().unwrap();
            *state = (state.0 + 1, Arc::new(part));
            drop(state);
            feed.changed.notify_all();
        }
        process::exit(0);
    });
    let head = format!(
        "HTTP/1.1 200 OK\r\n\
         Content-Type: multipart/x-mixed-replace; boundary={BASELINE_BOUNDARY}\r\n\
         Cache-Control: no-cache, no-store, must-revalidate\r\n\
         Pragma: no-cache\r\n\
         Expires: 0\r\n\
         Connection: close\r\n\
         X-Accel-Buffering: no\r\n\r\n"
    );
    let head: &'static [u8] = head.leak().as_bytes();
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let shared = Arc::clone(&shared);
        let _ = thread::Builder::new()
            .stack_size(CONN_STACK)
            .spawn(move || {
                // The request is read and ignored: no HTTP.
                let mut scratch = [0u8; 1024];
                let _ = conn.read(&mut scratch);
                if conn.write_all(head).is_err() {
                    return;
                }
                let mut seen = 0;
                loop {
                    let part = {
                        let mut state = shared.part.lock().unwrap();
                        while state.0 == seen {
                            state = shared.changed.wait(state).unwrap();
                        }
                        seen = state.0;
                        Arc::clone(&state.1)
                    };
                    if conn.write_all(&part).is_err() {
                        return;
                    }
                }
            });
    }
}
