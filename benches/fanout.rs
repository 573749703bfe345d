//! Fan-out benchmark: `cargo bench --bench fanout`.
//!
//! Starts the release `pushserve` on 127.0.0.1 and N raw-socket clients that parse parts, and,
//! in the same run and with the same clients, a *baseline*: this binary re-executed as
//! `--baseline-server`, a minimal process that writes the same bytes to the same N sockets with
//! no HTTP parsing and no file watching (frames come in on its stdin). Every figure is measured
//! the same way for both, so each can be read as a ratio to the physical limit of the machine.
//!
//! * Server CPU: utime + stime of the server process from `/proc/PID/stat` (CLK_TCK ticks);
//!   for the idle figure, where 1 % of a core is 10 ticks, the nanosecond run time of its
//!   threads from `/proc/PID/task/*/schedstat` (the ticks are shown too, as a cross-check).
//! * Memory: VmRSS and VmHWM from `/proc/PID/status`; for stalled clients also the kernel's
//!   TCP memory from `/proc/net/sockstat` (machine-wide, both ends), which RSS does not show.
//! * Cost per byte (figure 2) is measured twice for the baseline: as fast as it can go, and
//!   paced to the change rate pushserve reached (whose `--poll` bounds it), same bytes per second.
//! * Interference: the CPU time the rest of the machine used during the run is printed, so a
//!   run disturbed by other work (a build, say) can be recognised and repeated.
//! * Latency: from just before the atomic rename (pushserve) or the write of the frame to the
//!   baseline's stdin, to the moment the whole body of that part was read by the last client.
//! * Clients: one blocking thread per client (64 KiB stack), parsing `--B`, headers,
//!   Content-Length, body; idle clients cost no CPU. Connected in batches of 50, each batch
//!   served its first part before the next connects, so the listen backlog (128) never fills.
//! * Baseline shape: one thread per connection (128 KiB stack, like `src/http/listener.rs`),
//!   each waiting on a Mutex + Condvar for a newer frame and writing the pre-rendered part
//!   (head + body + CRLF, built once per frame) with one `write_all`.
//!
//! * Figures 6-8 measure pushserve alone (no baseline), and run only when selected:
//!   - 6, churn: N idle readers, then the server's CPU over one window with nothing happening
//!     and over another while [`CHURN_RATE`] readers a second come and go (each reads its first
//!     part, stays [`CHURN_STAY`], closes). Threads end in that window, and schedstat has no
//!     entry for an ended thread, so the threads that were not there before the churn are read
//!     every [`TALLY_EVERY`] and each is counted to its last reading. Both windows open in a
//!     lull between keep-alive rounds; the log splits them by thread and notes a window that
//!     other processes or steal disturbed.
//!   - 7, [`VIEWERS`] idle readers: RSS, threads, and `/status` timed on fresh connections.
//!     They hold 10,000 sockets, so the bench raises its soft limit on open files (which the
//!     servers inherit) if it must, or says what to raise.
//!   - 8, a burst of [`BURST`] `/snapshot` requests released at once by a barrier: time from
//!     just before each connect to the first response byte, and the kernel's
//!     `TcpExt: ListenOverflows` (machine-wide) across the burst.
//!
//! Loopback only; every wait has a deadline; children are killed on drop, and a watchdog kills
//! them and exits if the whole run takes longer than [`run_deadline`] allows for the figures.
//! Environment: `FANOUT_FIGURES=1,2,3,4,5` selects figures (the default; figures 6, 7 and 8
//! take about 4 more minutes and 10,000 threads, so they run only when named, e.g.
//! `FANOUT_FIGURES=6,7,8`), `FANOUT_IDLE_SECS` (default 10; also figure 6's windows),
//! `FANOUT_PUSHSERVE=/path/to/pushserve` measures another build (to compare before and after).

use std::collections::{HashMap, HashSet, VecDeque};
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{self, Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex, OnceLock, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// A real 40 KB JPEG; frames are this with COM padding inserted to the wanted size.
const SEED_JPEG: &[u8] = include_bytes!("../tests/fixtures/noise1.jpg");
const FRAME_100K: usize = 100_000;
const FRAME_1M: usize = 1 << 20;
const CHANGES: u32 = 20;
const CONNECT_BATCH: usize = 50;
const CLIENT_STACK: usize = 64 * 1024;
const CLIENT_BUF: usize = 64 * 1024;
/// The stack pushserve gives a connection thread (src/http/listener.rs).
const CONN_STACK: usize = 128 * 1024;
const BASELINE_BOUNDARY: &str = "BaselineBoundary0123456789abcdefghijklmn";
const REQUEST: &[u8] =
    b"GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: fanout-bench/1.0\r\n\r\n";
/// Longest wait for one change to reach every client.
const CHANGE_DEADLINE: Duration = Duration::from_secs(15);
const CONNECT_DEADLINE: Duration = Duration::from_secs(20);
/// The watchdog's limit for figures 1-5; figures 6-8 add their own (see [`run_deadline`]).
const RUN_DEADLINE: Duration = Duration::from_secs(420);
/// Figure 6: readers that come and go per second beside the idle ones, how long each stays,
/// and how often the threads that come and go are read.
const CHURN_RATE: f64 = 20.0;
const CHURN_STAY: Duration = Duration::from_secs(1);
const TALLY_EVERY: Duration = Duration::from_millis(10);
/// Figure 7: idle readers, and the `/status` requests timed while they are connected.
const VIEWERS: usize = 10_000;
const STATUS_REQUESTS: usize = 20;
/// Figure 8: connections opened at once, and the longest wait for each one's connect and for
/// each read of its response (SYNs dropped by a full backlog are sent again after 1, 3, 7 s).
const BURST: usize = 2_000;
const BURST_DEADLINE: Duration = Duration::from_secs(15);
/// Open files the bench holds at most, with room to spare: figure 6 has 5000 readers with two
/// descriptors each, figure 7 10,000 with one.
const FDS_NEEDED: u64 = 10_500;
/// SOI and EOI: the smallest frame pushserve's completeness check takes as a JPEG (figure 8).
const TINY_JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xD9];

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// Nanoseconds since the start of the run: comparable across threads.
fn now_ns() -> u64 {
    base().elapsed().as_nanos() as u64
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

// ---------------------------------------------------------------------------------------------
// Frames

/// A valid JPEG of exactly `size` bytes: SOI, COM segments of padding (the first one starting
/// with `PSBENCH:` and `id`, so clients know which change a part is), then the seed after SOI.
fn jpeg(size: usize, id: u32) -> Vec<u8> {
    let rest = &SEED_JPEG[2..];
    assert!(size >= 2 + 4 + 12 + rest.len(), "frame too small");
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&[0xFF, 0xD8]);
    let mut pad = size - 2 - rest.len();
    let mut rng = u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut first = true;
    while pad > 0 {
        let mut seg = pad.min(65_533 + 4);
        if (1..4).contains(&(pad - seg)) {
            seg -= 4;
        }
        let payload = seg - 4;
        out.extend_from_slice(&[0xFF, 0xFE]);
        out.extend_from_slice(&u16::try_from(payload + 2).unwrap().to_be_bytes());
        let end = out.len() + payload;
        if first {
            out.extend_from_slice(b"PSBENCH:");
            out.extend_from_slice(&id.to_le_bytes());
            first = false;
        }
        while out.len() < end {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            out.push(b'a' + (rng % 26) as u8);
        }
        pad -= seg;
    }
    out.extend_from_slice(rest);
    assert_eq!(out.len(), size);
    out
}

/// The change id a part's body carries (0 if none).
fn frame_id(body_start: &[u8]) -> u32 {
    match body_start.get(6..18) {
        Some(b) if &b[..8] == b"PSBENCH:" => u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
        _ => 0,
    }
}

// ---------------------------------------------------------------------------------------------
// Servers under test

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Pushserve,
    Baseline,
}

impl Kind {
    const BOTH: [Kind; 2] = [Kind::Pushserve, Kind::Baseline];
}

/// PIDs of every child alive, for the watchdog.
fn children() -> &'static Mutex<Vec<u32>> {
    static CHILDREN: OnceLock<Mutex<Vec<u32>>> = OnceLock::new();
    CHILDREN.get_or_init(|| Mutex::new(Vec::new()))
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = env::temp_dir().join(format!("pushserve-bench-{}-{tag}-{n}", process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A running server process (pushserve or the baseline), killed on drop.
struct Server {
    kind: Kind,
    child: Child,
    addr: SocketAddr,
    /// Baseline: frames go in here, length-prefixed.
    stdin: Option<ChildStdin>,
    /// Pushserve: the watched file, in its own temp dir.
    dir: Option<TempDir>,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    fn start(kind: Kind, first: &[u8], args: &[&str]) -> Server {
        let (mut cmd, dir) = match kind {
            Kind::Pushserve => {
                let dir = TempDir::new("src");
                fs::write(dir.0.join("frame.jpg"), first).expect("write frame");
                let mut cmd = Command::new(pushserve_bin());
                cmd.arg(dir.0.join("frame.jpg"))
                    .args(["--port", "0"])
                    .args(args)
                    .stdin(Stdio::null());
                (cmd, Some(dir))
            }
            Kind::Baseline => {
                let mut cmd = Command::new(env::current_exe().expect("own path"));
                cmd.arg("--baseline-server").stdin(Stdio::piped());
                (cmd, None)
            }
        };
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start server");
        children().lock().unwrap().push(child.id());
        let stderr = Arc::new(Mutex::new(String::new()));
        let err_pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut out = BufReader::new(stdout);
            let mut line = String::new();
            let _ = out.read_line(&mut line);
            let _ = tx.send(line);
            let _ = io::copy(&mut out, &mut io::sink());
        });
        let mut server = Server {
            kind,
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stdin: None,
            dir,
            stderr,
        };
        let line = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
        server.addr = line
            .trim()
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap_or_else(|_| {
                panic!(
                    "{kind:?} printed no URL ({line:?}); stderr: {}",
                    server.stderr.lock().unwrap()
                )
            });
        if kind == Kind::Baseline {
            server.stdin = server.child.stdin.take();
            server.publish(first);
        }
        server
    }

    /// Publishes a new version; returns the time it was published.
    fn publish(&mut self, frame: &[u8]) -> u64 {
        match self.kind {
            Kind::Pushserve => {
                let dir = &self.dir.as_ref().unwrap().0;
                let tmp = dir.join(".frame.jpg.tmp");
                fs::write(&tmp, frame).expect("write frame");
                let t0 = now_ns();
                fs::rename(&tmp, dir.join("frame.jpg")).expect("rename frame");
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

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// utime + stime of the whole process (all threads, live and exited), in ticks.
    fn cpu_ticks(&self) -> u64 {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        let after_comm = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        // Fields after the comm: state is field 3, utime 14, stime 15.
        let fields: Vec<&str> = after_comm.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
        field(14).unwrap_or(0) + field(15).unwrap_or(0)
    }

    /// Nanoseconds on CPU of the live threads (`/proc/PID/task/*/schedstat`): finer than ticks,
    /// used where no thread starts or ends in the interval (figure 3).
    fn cpu_ns_live(&self) -> u64 {
        self.thread_ns().values().sum()
    }

    /// The live threads' ids.
    fn tids(&self) -> Vec<u32> {
        let Ok(tasks) = fs::read_dir(format!("/proc/{}/task", self.pid())) else {
            return Vec::new();
        };
        tasks
            .filter_map(|t| t.ok()?.file_name().to_str()?.parse().ok())
            .collect()
    }

    /// Nanoseconds on CPU of one thread, if it is still there.
    fn task_ns(&self, tid: u32) -> Option<u64> {
        fs::read_to_string(format!("/proc/{}/task/{tid}/schedstat", self.pid()))
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// Nanoseconds on CPU of each live thread.
    fn thread_ns(&self) -> HashMap<u32, u64> {
        self.tids()
            .into_iter()
            .filter_map(|tid| Some((tid, self.task_ns(tid)?)))
            .collect()
    }

    /// Nanoseconds on CPU of all the threads over `secs`, those that start or end in it
    /// included (figure 6), and the wall time that covered. The threads in `steady` are read
    /// at both ends; the others every [`TALLY_EVERY`], each counted to its last reading, so
    /// what a thread does in its last few ms before it ends is missed.
    fn cpu_ns_tally(&self, steady: &HashSet<u32>, secs: f64) -> (HashMap<u32, u64>, f64) {
        let start = self.thread_ns();
        let t0 = Instant::now();
        let window = Duration::from_secs_f64(secs);
        let mut last: HashMap<u32, u64> = HashMap::new();
        while t0.elapsed() < window {
            thread::sleep(TALLY_EVERY.min(window.saturating_sub(t0.elapsed())));
            for tid in self.tids() {
                if !steady.contains(&tid)
                    && let Some(ns) = self.task_ns(tid)
                {
                    last.insert(tid, ns);
                }
            }
        }
        let end = self.thread_ns();
        let wall = t0.elapsed().as_secs_f64();
        last.extend(end);
        (since(&start, &last), wall)
    }

    /// Each live thread's name (`/proc/PID/task/TID/comm`).
    fn thread_names(&self) -> HashMap<u32, String> {
        self.tids()
            .into_iter()
            .filter_map(|tid| {
                let comm = fs::read_to_string(format!("/proc/{}/task/{tid}/comm", self.pid()));
                Some((tid, comm.ok()?.trim().to_string()))
            })
            .collect()
    }

    /// A `/proc/PID/status` line's number (kB for memory lines).
    fn status(&self, key: &str) -> u64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn alive(&mut self) -> bool {
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
fn pushserve_bin() -> &'static PathBuf {
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
struct BinCopy;

impl Drop for BinCopy {
    fn drop(&mut self) {
        if let Some(dir) = pushserve_bin().parent() {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

/// Kernel memory held by all TCP sockets of the machine (`/proc/net/sockstat`), in kB:
/// where the bytes queued for stalled clients live (RSS does not show them).
fn tcp_mem_kb() -> u64 {
    let sockstat = fs::read_to_string("/proc/net/sockstat").unwrap_or_default();
    let pages: u64 = sockstat
        .lines()
        .find_map(|l| l.strip_prefix("TCP:"))
        .and_then(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "mem")?;
            words.get(at + 1)?.parse().ok()
        })
        .unwrap_or(0);
    pages * 4
}

/// A `TcpExt:` counter of the whole machine from `/proc/net/netstat`.
fn tcp_ext(key: &str) -> u64 {
    let netstat = fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let mut rows = netstat.lines().filter_map(|l| l.strip_prefix("TcpExt:"));
    let (Some(names), Some(values)) = (rows.next(), rows.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == key)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// This process's limits on open files, (soft, hard), from `/proc/self/limits`.
fn fd_limits() -> (u64, u64) {
    let limits = fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let row = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .unwrap_or("");
    let mut values = row.split_whitespace().map(|w| {
        if w == "unlimited" {
            Some(u64::MAX)
        } else {
            w.parse().ok()
        }
    });
    (
        values.next().flatten().unwrap_or(0),
        values.next().flatten().unwrap_or(0),
    )
}

/// Raises this process's soft limit on open files to `need` if it is lower; the servers,
/// started later, inherit it. The package's rustix is built without the `process` feature that
/// has `setrlimit` (and `unsafe` is forbidden), so `prlimit(1)` of util-linux does it.
fn ensure_fds(need: u64) {
    let (soft, hard) = fd_limits();
    if soft >= need {
        return;
    }
    if hard >= need {
        let _ = Command::new("prlimit")
            .arg(format!("--pid={}", process::id()))
            .arg(format!("--nofile={need}:"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status();
    }
    let (soft, hard) = fd_limits();
    assert!(
        soft >= need,
        "figures 6 and 7 need {need} open files, and the limit is {soft} (hard {hard}): raise \
         it first, e.g. with `ulimit -n {need}`"
    );
    log(&format!("raised the soft limit on open files to {soft}"));
}

/// How long the figures selected may take in all, for the watchdog.
fn run_deadline(figures: &[u32], idle_secs: f64) -> Duration {
    let mut secs = RUN_DEADLINE.as_secs_f64();
    if figures.contains(&6) {
        // Six cases of two windows, each with up to 5000 readers to connect.
        secs += 6.0 * (2.0 * idle_secs + 40.0);
    }
    if figures.contains(&7) {
        secs += 180.0;
    }
    if figures.contains(&8) {
        secs += 60.0;
    }
    Duration::from_secs_f64(secs)
}

/// Busy and steal time of the whole machine from `/proc/stat`, in ticks.
fn machine_ticks() -> (u64, u64) {
    let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let at = |i: usize| cpu.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal
    (at(0) + at(1) + at(2) + at(5) + at(6), at(7))
}

/// This process's CPU plus that of its waited-for children, in ticks.
fn own_ticks() -> u64 {
    let stat = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_comm = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after_comm
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // utime, stime, cutime, cstime are fields 14-17; `fields` starts at field 3.
    (14..=17)
        .map(|n| fields.get(n - 3).copied().unwrap_or(0))
        .sum()
}

fn clk_tck() -> f64 {
    static TCK: OnceLock<f64> = OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Each thread's nanoseconds on CPU in `to` since `from` (0 there for a thread born since).
fn since(from: &HashMap<u32, u64>, to: &HashMap<u32, u64>) -> HashMap<u32, u64> {
    to.iter()
        .map(|(tid, ns)| (*tid, ns.saturating_sub(from.get(tid).copied().unwrap_or(0))))
        .collect()
}

/// CPU time in two windows by kind of thread, as `keeper 1.2 -> 3.4 ms, ...`, largest last
/// first: the threads in `names` by name (its connection threads are the idle readers'), the
/// others as the threads of the readers that came and went.
fn by_thread(names: &HashMap<u32, String>, a: &HashMap<u32, u64>, b: &HashMap<u32, u64>) -> String {
    let mut groups: Vec<(&str, [u64; 2])> = Vec::new();
    for (i, window) in [a, b].into_iter().enumerate() {
        for (tid, ns) in window {
            let name = match names.get(tid).map(String::as_str) {
                Some("connection") => "idle readers' threads",
                Some(name) => name,
                None => "threads that came and went",
            };
            match groups.iter_mut().find(|(n, _)| *n == name) {
                Some((_, sums)) => sums[i] += ns,
                None => {
                    let mut sums = [0; 2];
                    sums[i] = *ns;
                    groups.push((name, sums));
                }
            }
        }
    }
    groups.sort_by_key(|(_, sums)| std::cmp::Reverse(sums[1]));
    groups
        .iter()
        .map(|(name, [x, y])| format!("{name} {:.1} -> {:.1} ms", ms(*x), ms(*y)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the rest of the machine did while a window of figure 6 was measured: a window with a
/// large share of either reads the server's CPU high (a disturbed reference spoils a ratio).
struct Disturbance {
    busy: u64,
    steal: u64,
    own: u64,
    server: u64,
    since: Instant,
}

impl Disturbance {
    fn start(server: &Server) -> Disturbance {
        let (busy, steal) = machine_ticks();
        Disturbance {
            busy,
            steal,
            own: own_ticks(),
            server: server.cpu_ticks(),
            since: Instant::now(),
        }
    }

    /// (CPU of other processes, steal), each in % of the machine, since `start`.
    fn end(&self, server: &Server) -> (f64, f64) {
        let ((busy, steal), own) = (machine_ticks(), own_ticks());
        let ours = (own - self.own) + server.cpu_ticks().saturating_sub(self.server);
        let machine = self.since.elapsed().as_secs_f64()
            * clk_tck()
            * thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
        let pct = |ticks: u64| 100.0 * ticks as f64 / machine;
        (
            pct((busy - self.busy).saturating_sub(ours)),
            pct(steal - self.steal),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Clients

/// What one client has seen, written by its thread and read by the driver.
#[derive(Default)]
struct ClientStat {
    /// Change id of the newest complete part.
    last_id: AtomicU32,
    /// When that part's body was complete (ns since the start of the run).
    done_ns: AtomicU64,
    bytes: AtomicU64,
    parts: AtomicU64,
    ended: AtomicBool,
    error: Mutex<Option<String>>,
}

struct PartReader<'a> {
    s: TcpStream,
    buf: Vec<u8>,
    lo: usize,
    hi: usize,
    stat: &'a ClientStat,
}

impl PartReader<'_> {
    /// Reads more bytes after those buffered.
    fn fill(&mut self) -> Result<(), String> {
        if self.lo == self.hi {
            (self.lo, self.hi) = (0, 0);
        } else if self.hi == self.buf.len() {
            if self.lo == 0 {
                return Err("header block over 64 KiB".into());
            }
            self.buf.copy_within(self.lo..self.hi, 0);
            (self.lo, self.hi) = (0, self.hi - self.lo);
        }
        loop {
            match self.s.read(&mut self.buf[self.hi..]) {
                Ok(0) => return Err("closed by server".into()),
                Ok(n) => {
                    self.hi += n;
                    self.stat.bytes.fetch_add(n as u64, Ordering::Relaxed);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// A header block up to its blank line, without the blank line.
    fn head(&mut self) -> Result<String, String> {
        loop {
            if let Some(at) = find(&self.buf[self.lo..self.hi], b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[self.lo..self.lo + at]).into_owned();
                self.lo += at + 4;
                return Ok(head);
            }
            self.fill()?;
        }
    }

    /// Consumes a body of `len` bytes, keeping its first 32.
    fn body(&mut self, len: usize) -> Result<[u8; 32], String> {
        let mut start = [0u8; 32];
        let mut got = 0;
        while got < len {
            if self.lo == self.hi {
                self.fill()?;
            }
            let n = (self.hi - self.lo).min(len - got);
            if got < start.len() {
                let k = n.min(start.len() - got);
                start[got..got + k].copy_from_slice(&self.buf[self.lo..self.lo + k]);
            }
            got += n;
            self.lo += n;
        }
        Ok(start)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn header_value<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Reads the response head, then parts until the stream ends.
fn read_stream(s: TcpStream, stat: &ClientStat) -> Result<(), String> {
    let mut r = PartReader {
        s,
        buf: vec![0; CLIENT_BUF],
        lo: 0,
        hi: 0,
        stat,
    };
    let head = r.head()?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("bad response head {head:?}"));
    }
    let boundary = head
        .split_once("boundary=")
        .map(|(_, b)| b.lines().next().unwrap_or("").trim().to_string())
        .ok_or("no boundary")?;
    let delimiter = format!("--{boundary}");
    loop {
        let part = r.head()?;
        // Blank lines before a boundary are allowed (a keep-alive may be just CRLF).
        let part = part.trim_start_matches("\r\n");
        if part.is_empty() {
            continue;
        }
        if part.starts_with(&format!("{delimiter}--")) {
            return Err("stream ended".into());
        }
        if !part.starts_with(&delimiter) {
            return Err(format!("bad part head {part:?}"));
        }
        let len: usize = header_value(part, "content-length")
            .and_then(|v| v.parse().ok())
            .ok_or("part without Content-Length")?;
        let start = r.body(len)?;
        let done = now_ns();
        let id = frame_id(&start);
        stat.parts.fetch_add(1, Ordering::Relaxed);
        if id != stat.last_id.load(Ordering::Relaxed) {
            stat.done_ns.store(done, Ordering::Relaxed);
            stat.last_id.store(id, Ordering::Release);
        }
    }
}

/// A thread that reads `s` as a stream until it ends, into `stat`.
fn spawn_reader(s: TcpStream, stat: &Arc<ClientStat>) -> io::Result<JoinHandle<()>> {
    let mine = Arc::clone(stat);
    thread::Builder::new()
        .name("client".into())
        .stack_size(CLIENT_STACK)
        .spawn(move || {
            let e = read_stream(s, &mine).err();
            *mine.error.lock().unwrap() = e;
            mine.ended.store(true, Ordering::Release);
        })
}

/// N reading clients, plus clients that read the response head and then nothing.
#[derive(Default)]
struct Fleet {
    stats: Vec<Arc<ClientStat>>,
    socks: Vec<TcpStream>,
    threads: Vec<JoinHandle<()>>,
    slow: Vec<TcpStream>,
    /// Keep no second descriptor per reader (10,000 readers would need 20,000): the readers
    /// then end only when the server does, so such a fleet must be dropped after its server.
    lean: bool,
}

impl Fleet {
    /// Connects `n` reading clients in batches; returns once each has its first part.
    fn connect(&mut self, addr: SocketAddr, n: usize) {
        // 20 s, or 4 ms a client for many more than figures 1-5 have.
        let allowed = CONNECT_DEADLINE.max(Duration::from_millis(4 * n as u64));
        let deadline = Instant::now() + allowed;
        let mut left = n;
        while left > 0 {
            let batch = left.min(CONNECT_BATCH);
            let from = self.stats.len();
            for _ in 0..batch {
                let mut s =
                    TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
                s.write_all(REQUEST).expect("send request");
                let stat = Arc::new(ClientStat::default());
                if !self.lean {
                    self.socks.push(s.try_clone().expect("clone socket"));
                }
                let t = spawn_reader(s, &stat).expect("spawn client");
                self.stats.push(stat);
                self.threads.push(t);
            }
            while self.stats[from..]
                .iter()
                .any(|c| c.parts.load(Ordering::Relaxed) == 0 && !c.ended.load(Ordering::Acquire))
            {
                assert!(
                    Instant::now() < deadline,
                    "clients not served within {allowed:?}"
                );
                thread::sleep(Duration::from_millis(1));
            }
            left -= batch;
        }
    }

    /// Connects `n` clients that read the response head and then stop reading.
    fn connect_slow(&mut self, addr: SocketAddr, n: usize) {
        for _ in 0..n {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(REQUEST).expect("send request");
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                s.read_exact(&mut byte).expect("slow client head");
                head.push(byte[0]);
            }
            self.slow.push(s);
        }
    }

    /// Waits until every reading client has change `id`; false at the deadline.
    fn wait_id(&self, id: u32, deadline: Duration) -> bool {
        let end = Instant::now() + deadline;
        loop {
            let all = self.stats.iter().all(|c| {
                c.last_id.load(Ordering::Acquire) >= id || c.ended.load(Ordering::Relaxed)
            });
            if all {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            thread::sleep(Duration::from_micros(500));
        }
    }

    /// (first, last) completion of change `id` after `t0`, in ns, and how many lack it.
    fn latency(&self, id: u32, t0: u64) -> (u64, u64, usize) {
        let (mut first, mut last, mut missing) = (u64::MAX, 0, 0);
        for c in &self.stats {
            if c.last_id.load(Ordering::Acquire) == id {
                let d = c.done_ns.load(Ordering::Relaxed).saturating_sub(t0);
                first = first.min(d);
                last = last.max(d);
            } else {
                missing += 1;
            }
        }
        (first, last, missing)
    }

    fn bytes(&self) -> u64 {
        self.stats
            .iter()
            .map(|c| c.bytes.load(Ordering::Relaxed))
            .sum()
    }

    /// Reading clients whose stream ended, with the first reason.
    fn dropped(&self) -> (usize, Option<String>) {
        let ended: Vec<_> = self
            .stats
            .iter()
            .filter(|c| c.ended.load(Ordering::Acquire))
            .collect();
        let why = ended.first().and_then(|c| c.error.lock().unwrap().clone());
        (ended.len(), why)
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for s in self.socks.iter().chain(&self.slow) {
            let _ = s.shutdown(Shutdown::Both);
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The baseline server (this binary, re-executed)

struct Shared {
    /// (sequence number, the whole part: head, body, CRLF)
    part: Mutex<(u64, Arc<Vec<u8>>)>,
    changed: Condvar,
}

/// Accepts connections; each gets the response head, then every new part from stdin.
fn baseline_server() {
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

// ---------------------------------------------------------------------------------------------
// Measurements

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

/// A small xorshift for the pause between changes, so changes do not lock to the poll phase.
struct Jitter(u64);

impl Jitter {
    fn pause(&mut self, from_ms: u64, to_ms: u64) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_millis(from_ms + self.0 % (to_ms - from_ms + 1))
    }
}

#[derive(Default)]
struct Fanout {
    /// Per change, in ms: the last client's completion, the first client's.
    last: Vec<f64>,
    first: Vec<f64>,
    /// Changes that did not reach every client before the deadline.
    timeouts: usize,
    /// Server RSS (kB), server threads, kernel TCP memory (kB), sampled after each change.
    rss: Vec<u64>,
    threads: Vec<u64>,
    tcp_kb: Vec<u64>,
    hwm_kb: u64,
    /// Seconds from the stalled clients' connect until pushserve had dropped them all.
    stalled_dropped_after: Option<f64>,
    tcp_kb_after_drop: u64,
    threads_start: u64,
    threads_end: u64,
    dropped: usize,
    drop_reason: Option<String>,
    stderr: String,
}

/// Starts `kind`, connects `n` readers (and `slow` non-readers), makes `changes` changes of a
/// `size`-byte frame with a pause between them, and times each one to the last reader.
fn fanout(kind: Kind, n: usize, slow: usize, size: usize, changes: u32, args: &[&str]) -> Fanout {
    let mut server = Server::start(kind, &jpeg(size, 1), args);
    let mut fleet = Fleet::default();
    fleet.connect(server.addr, n / 2);
    fleet.connect_slow(server.addr, slow);
    let stalled_since = Instant::now();
    fleet.connect(server.addr, n - n / 2);
    let mut out = Fanout {
        threads_start: server.status("Threads"),
        ..Fanout::default()
    };
    let mut jitter = Jitter(0x2545_F491_4F6C_DD1D ^ n as u64);
    for id in 2..2 + changes {
        let frame = jpeg(size, id);
        thread::sleep(jitter.pause(30, 80));
        let t0 = server.publish(&frame);
        if !fleet.wait_id(id, CHANGE_DEADLINE) {
            out.timeouts += 1;
        }
        let (first, last, missing) = fleet.latency(id, t0);
        if missing == 0 {
            out.first.push(ms(first));
            out.last.push(ms(last));
        }
        out.rss.push(server.status("VmRSS"));
        out.threads.push(server.status("Threads"));
        out.tcp_kb.push(tcp_mem_kb());
    }
    if slow > 0 && kind == Kind::Pushserve {
        // Not timed: keep changing until the stalled clients are dropped (or 20 s pass).
        let gone = out.threads_start - slow as u64;
        let mut id = 2 + changes;
        while server.status("Threads") > gone && stalled_since.elapsed() < Duration::from_secs(20) {
            server.publish(&jpeg(size, id));
            fleet.wait_id(id, CHANGE_DEADLINE);
            id += 1;
            thread::sleep(jitter.pause(30, 80));
        }
        if server.status("Threads") <= gone {
            out.stalled_dropped_after = Some(stalled_since.elapsed().as_secs_f64());
        }
        out.tcp_kb_after_drop = tcp_mem_kb();
    }
    out.hwm_kb = server.status("VmHWM");
    out.threads_end = server.status("Threads");
    (out.dropped, out.drop_reason) = fleet.dropped();
    assert!(server.alive(), "{kind:?} died: {}", server.stderr());
    out.stderr = server.stderr();
    out
}

struct Throughput {
    cpu_s: f64,
    gb: f64,
    secs: f64,
    changes: u32,
}

/// Figure 2: replaces the frame as soon as every client has the previous one, for `secs`;
/// with `pace` (changes per second), no sooner than that rate allows either.
fn throughput(kind: Kind, n: usize, secs: f64, args: &[&str], pace: Option<f64>) -> Throughput {
    let mut server = Server::start(kind, &jpeg(FRAME_100K, 1), args);
    let mut fleet = Fleet::default();
    fleet.connect(server.addr, n);
    // Warm-up: a few changes before measuring.
    let mut id = 2;
    for _ in 0..5 {
        server.publish(&jpeg(FRAME_100K, id));
        assert!(fleet.wait_id(id, CHANGE_DEADLINE), "warm-up change lost");
        id += 1;
    }
    let frames: Vec<Vec<u8>> = (0..2).map(|i| jpeg(FRAME_100K, i)).collect();
    let (cpu0, bytes0, start) = (server.cpu_ticks(), fleet.bytes(), Instant::now());
    let mut changes = 0;
    while start.elapsed().as_secs_f64() < secs {
        if let Some(rate) = pace {
            let due = Duration::from_secs_f64(f64::from(changes) / rate);
            thread::sleep(due.saturating_sub(start.elapsed()));
        }
        // Only the id bytes change between frames: no frame building inside the timed loop.
        let mut frame = frames[(id % 2) as usize].clone();
        frame[14..18].copy_from_slice(&id.to_le_bytes());
        server.publish(&frame);
        assert!(fleet.wait_id(id, CHANGE_DEADLINE), "change lost");
        id += 1;
        changes += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu_s = (server.cpu_ticks() - cpu0) as f64 / clk_tck();
    let gb = (fleet.bytes() - bytes0) as f64 / 1e9;
    assert!(server.alive(), "{kind:?} died: {}", server.stderr());
    Throughput {
        cpu_s,
        gb,
        secs,
        changes,
    }
}

struct Idle {
    /// From schedstat (ns), and from /proc/PID/stat ticks as a cross-check.
    cpu_pct: f64,
    ticks_pct: f64,
    parts: u64,
    /// Bytes the clients received meanwhile: parts, and keep-alive padding.
    bytes: u64,
}

/// Figure 3: server CPU over `secs` with `n` clients connected and no change.
fn idle(kind: Kind, n: usize, secs: f64, args: &[&str]) -> Idle {
    let server = Server::start(kind, &jpeg(FRAME_100K, 1), args);
    let mut fleet = Fleet::default();
    fleet.connect(server.addr, n);
    thread::sleep(Duration::from_secs(1));
    let parts = |f: &Fleet| -> u64 {
        f.stats
            .iter()
            .map(|c| c.parts.load(Ordering::Relaxed))
            .sum()
    };
    let threads0 = server.status("Threads");
    let (cpu0, parts0, bytes0) = (server.cpu_ns_live(), parts(&fleet), fleet.bytes());
    let (ticks0, start) = (server.cpu_ticks(), Instant::now());
    thread::sleep(Duration::from_secs_f64(secs));
    let cpu = (server.cpu_ns_live() - cpu0) as f64 / 1e9;
    let ticks = (server.cpu_ticks() - ticks0) as f64 / clk_tck();
    let wall = start.elapsed().as_secs_f64();
    assert_eq!(threads0, server.status("Threads"), "threads came or went");
    Idle {
        cpu_pct: 100.0 * cpu / wall,
        ticks_pct: 100.0 * ticks / wall,
        parts: parts(&fleet) - parts0,
        bytes: fleet.bytes() - bytes0,
    }
}

/// One reader of figure 6 that comes and goes.
struct Passer {
    sock: TcpStream,
    thread: JoinHandle<()>,
    stat: Arc<ClientStat>,
    since: Instant,
    /// Just before its connect, in ns since the start of the run.
    t0: u64,
}

/// What the readers that came and went saw.
#[derive(Default)]
struct Passers {
    /// When each one connected (ns since the start of the run).
    arrivals: Vec<u64>,
    /// From just before the connect to the whole first part, in ms, of each that got one.
    first_part: Vec<f64>,
    failed: usize,
    error: Option<String>,
}

impl Passers {
    fn arrive(&mut self, addr: SocketAddr) -> Option<Passer> {
        let t0 = now_ns();
        self.arrivals.push(t0);
        let attempt = || -> io::Result<Passer> {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
            s.write_all(REQUEST)?;
            let stat = Arc::new(ClientStat::default());
            let sock = s.try_clone()?;
            let thread = spawn_reader(s, &stat)?;
            Ok(Passer {
                sock,
                thread,
                stat,
                since: Instant::now(),
                t0,
            })
        };
        match attempt() {
            Ok(passer) => Some(passer),
            Err(e) => {
                self.fail(e.to_string());
                None
            }
        }
    }

    /// Closes the reader's connection (it has had its first part, or failed).
    fn leave(&mut self, p: Passer) {
        if p.stat.last_id.load(Ordering::Acquire) != 0 {
            let done = p.stat.done_ns.load(Ordering::Relaxed);
            self.first_part.push(ms(done.saturating_sub(p.t0)));
        } else {
            let why = p.stat.error.lock().unwrap().clone();
            self.fail(why.unwrap_or_else(|| format!("no part within {CHURN_STAY:?}")));
        }
        let _ = p.sock.shutdown(Shutdown::Both);
        let _ = p.thread.join();
    }

    fn fail(&mut self, why: String) {
        self.failed += 1;
        self.error.get_or_insert(why);
    }
}

/// Figure 6: readers that come and go beside the idle ones, one every 1/[`CHURN_RATE`] s, each
/// reading its first part, staying [`CHURN_STAY`] and closing, until `stop`.
fn come_and_go(addr: SocketAddr, stop: &AtomicBool) -> Passers {
    let every = Duration::from_secs_f64(1.0 / CHURN_RATE);
    let mut out = Passers::default();
    let mut passing: VecDeque<Passer> = VecDeque::new();
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if Instant::now() >= next {
            next += every;
            passing.extend(out.arrive(addr));
        }
        while passing
            .front()
            .is_some_and(|p| p.since.elapsed() >= CHURN_STAY)
        {
            if let Some(p) = passing.pop_front() {
                out.leave(p);
            }
        }
        let wake = passing
            .front()
            .map_or(next, |p| next.min(p.since + CHURN_STAY));
        let pause = wake.saturating_duration_since(Instant::now());
        thread::sleep(pause.min(Duration::from_millis(10)));
    }
    for p in passing {
        out.leave(p);
    }
    out
}

/// Sets the flag when dropped, also by a panic: what ends a thread that runs until told.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

struct Churn {
    /// Server CPU in % of a core: with the idle readers alone, then with readers coming and
    /// going; from schedstat, and from /proc/PID/stat ticks as a cross-check.
    idle_pct: f64,
    churn_pct: f64,
    idle_ticks_pct: f64,
    churn_ticks_pct: f64,
    /// Bytes the idle readers got in each window (the keep-alive padding), and whether each
    /// window opened in a lull between two rounds of it.
    idle_bytes: u64,
    churn_bytes: u64,
    aligned: (bool, bool),
    /// The server's CPU in the two windows by kind of thread.
    by_thread: String,
    /// Other processes' CPU and steal in each window, in % of the machine.
    idle_disturbed: (f64, f64),
    churn_disturbed: (f64, f64),
    /// Readers that connected within the churn window.
    came: usize,
    passers: Passers,
    dropped: usize,
    drop_reason: Option<String>,
    stderr: String,
}

impl Fleet {
    /// Waits for the lull after a round of keep-alive padding: the first padding after a quiet
    /// spell of an eighth of `every`, then as long a quiet spell. The keeper pads each idle
    /// reader once per `every` (a round can take a while when the readers came over a few
    /// seconds), so two windows that open so and last the same hold the same rounds, whole;
    /// opened at any moment, a window of 10 s may hold 4 rounds of `--keepalive 2` and the next
    /// 5, or half a round. False if no such lull came in time.
    fn await_lull(&self, every: Duration) -> bool {
        let quiet = every / 8;
        let deadline = Instant::now() + 3 * every + Duration::from_secs(1);
        let (mut bytes, mut since) = (self.bytes(), Instant::now());
        let mut in_round = false;
        while Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
            let now = self.bytes();
            if now != bytes {
                in_round |= since.elapsed() >= quiet;
                (bytes, since) = (now, Instant::now());
            } else if in_round && since.elapsed() >= quiet {
                return true;
            }
        }
        false
    }
}

/// Figure 6: `n` idle readers; the server's CPU over `secs` with nothing else happening, then
/// over `secs` while [`CHURN_RATE`] readers a second come and go. Both windows open in a lull
/// between two rounds of keep-alives (every `keepalive`), so that both hold the same ones.
fn churn(n: usize, secs: f64, keepalive: Duration, args: &[&str]) -> Churn {
    let mut server = Server::start(Kind::Pushserve, &jpeg(FRAME_100K, 1), args);
    let mut fleet = Fleet::default();
    fleet.connect(server.addr, n);
    thread::sleep(Duration::from_secs(1));
    // Idle, measured as figure 3 measures it.
    let idle_aligned = fleet.await_lull(keepalive);
    let threads0 = server.status("Threads");
    let (cpu0, ticks0, start) = (server.thread_ns(), server.cpu_ticks(), Instant::now());
    let (bytes0, others) = (fleet.bytes(), Disturbance::start(&server));
    thread::sleep(Duration::from_secs_f64(secs));
    let idle_disturbed = others.end(&server);
    let idle_threads = since(&cpu0, &server.thread_ns());
    let idle_ticks = server.cpu_ticks().saturating_sub(ticks0) as f64 / clk_tck();
    let idle_wall = start.elapsed().as_secs_f64();
    let idle_bytes = fleet.bytes() - bytes0;
    assert_eq!(threads0, server.status("Threads"), "threads came or went");
    // Every thread there now stays; those of the readers that come and go are read often.
    let names = server.thread_names();
    let steady: HashSet<u32> = names.keys().copied().collect();
    let stop = AtomicBool::new(false);
    let mut churn_aligned = false;
    let (mut churn_threads, mut wall, mut ticks, mut churn_bytes) = (HashMap::new(), 0.0, 0.0, 0);
    let (mut churn_disturbed, mut window) = ((0.0, 0.0), 0..0);
    let passers = thread::scope(|scope| {
        let driver = scope.spawn(|| come_and_go(server.addr, &stop));
        let _stop = StopOnDrop(&stop);
        // Until the first readers have left, and a little more: then about 20 are passing.
        thread::sleep(CHURN_STAY + Duration::from_millis(500));
        churn_aligned = fleet.await_lull(keepalive);
        let (from, ticks0, bytes0) = (now_ns(), server.cpu_ticks(), fleet.bytes());
        let others = Disturbance::start(&server);
        (churn_threads, wall) = server.cpu_ns_tally(&steady, secs);
        churn_disturbed = others.end(&server);
        ticks = server.cpu_ticks().saturating_sub(ticks0) as f64 / clk_tck();
        (window, churn_bytes) = (from..now_ns(), fleet.bytes() - bytes0);
        stop.store(true, Ordering::Relaxed);
        driver.join().expect("readers coming and going")
    });
    assert!(server.alive(), "pushserve died: {}", server.stderr());
    let (dropped, drop_reason) = fleet.dropped();
    let pct = |threads: &HashMap<u32, u64>, wall: f64| {
        100.0 * threads.values().sum::<u64>() as f64 / 1e9 / wall
    };
    Churn {
        idle_pct: pct(&idle_threads, idle_wall),
        churn_pct: pct(&churn_threads, wall),
        idle_ticks_pct: 100.0 * idle_ticks / idle_wall,
        churn_ticks_pct: 100.0 * ticks / wall,
        idle_bytes,
        churn_bytes,
        aligned: (idle_aligned, churn_aligned),
        by_thread: by_thread(&names, &idle_threads, &churn_threads),
        idle_disturbed,
        churn_disturbed,
        came: passers
            .arrivals
            .iter()
            .filter(|t| window.contains(t))
            .count(),
        passers,
        dropped,
        drop_reason,
        stderr: server.stderr(),
    }
}

/// A response read whole, timed from just before the connect.
struct Got {
    first_byte: Duration,
    whole: Duration,
    head: String,
    body: Vec<u8>,
}

/// `GET path` on a fresh connection, read to the end of its body (by Content-Length); the
/// connect and each read wait at most `timeout`.
fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<Got, String> {
    let t0 = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut first_byte = None;
    loop {
        let got = match s.read(&mut chunk) {
            Ok(0) => return Err(format!("closed after {} bytes", buf.len())),
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("read after {} bytes: {e}", buf.len())),
        };
        let first_byte = *first_byte.get_or_insert_with(|| t0.elapsed());
        buf.extend_from_slice(&chunk[..got]);
        let Some(at) = find(&buf, b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..at]).into_owned();
        let len: usize = header_value(&head, "content-length")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no Content-Length in {head:?}"))?;
        if buf.len() >= at + 4 + len {
            return Ok(Got {
                first_byte,
                whole: t0.elapsed(),
                body: buf[at + 4..at + 4 + len].to_vec(),
                head,
            });
        }
    }
}

struct Viewers {
    connect_secs: f64,
    rss_kb: u64,
    hwm_kb: u64,
    threads: u64,
    /// `/status` on fresh connections, from just before the connect to the whole response, ms.
    status_ms: Vec<f64>,
    status_failed: usize,
    status_error: Option<String>,
    /// The open streams `/status` counted (`clients.stream`), in its last answer.
    streams: Option<u64>,
    dropped: usize,
    drop_reason: Option<String>,
    stderr: String,
}

/// Figure 7: `n` idle readers; then the server's memory and threads, and `/status` timed.
fn viewers(n: usize, args: &[&str]) -> Viewers {
    // Lean, so declared before the server: dropped after it, when the killed server's sockets
    // have closed and its readers have ended.
    let mut fleet = Fleet::default();
    fleet.lean = true;
    let mut server = Server::start(Kind::Pushserve, &jpeg(FRAME_100K, 1), args);
    let start = Instant::now();
    fleet.connect(server.addr, n);
    let connect_secs = start.elapsed().as_secs_f64();
    thread::sleep(Duration::from_secs(1));
    let mut out = Viewers {
        connect_secs,
        rss_kb: 0,
        hwm_kb: 0,
        threads: 0,
        status_ms: Vec::new(),
        status_failed: 0,
        status_error: None,
        streams: None,
        dropped: 0,
        drop_reason: None,
        stderr: String::new(),
    };
    for _ in 0..STATUS_REQUESTS {
        let why = match http_get(server.addr, "/status", Duration::from_secs(10)) {
            Ok(got) if got.head.starts_with("HTTP/1.1 200") => {
                out.status_ms.push(ms(got.whole.as_nanos() as u64));
                out.streams = serde_json::from_slice::<serde_json::Value>(&got.body)
                    .ok()
                    .and_then(|v| v["clients"]["stream"].as_u64());
                continue;
            }
            Ok(got) => got.head.lines().next().unwrap_or("").to_string(),
            Err(e) => e,
        };
        out.status_failed += 1;
        out.status_error.get_or_insert(why);
    }
    out.rss_kb = server.status("VmRSS");
    out.hwm_kb = server.status("VmHWM");
    out.threads = server.status("Threads");
    (out.dropped, out.drop_reason) = fleet.dropped();
    assert!(server.alive(), "pushserve died: {}", server.stderr());
    out.stderr = server.stderr();
    out
}

struct Burst {
    /// Per connection, from just before its connect to the first response byte, in ms; a
    /// connection that failed counts as never (infinity).
    first_byte: Vec<f64>,
    failed: usize,
    error: Option<String>,
    /// The machine's `TcpExt: ListenOverflows` and `ListenDrops` across the burst.
    overflows: u64,
    listen_drops: u64,
    secs: f64,
    stderr: String,
}

/// Figure 8: `n` connections to a fresh server released at once, each asking for `/snapshot`.
fn burst(n: usize) -> Burst {
    let mut server = Server::start(Kind::Pushserve, TINY_JPEG, &["--poll", "50"]);
    let addr = server.addr;
    match http_get(addr, "/snapshot", BURST_DEADLINE) {
        Ok(got) if got.head.starts_with("HTTP/1.1 200") => {}
        Ok(got) => panic!("no snapshot before the burst: {:?}", got.head),
        Err(e) => panic!("no snapshot before the burst: {e}"),
    }
    let gate = Arc::new(Barrier::new(n + 1));
    let clients: Vec<JoinHandle<Result<Got, String>>> = (0..n)
        .map(|_| {
            let gate = Arc::clone(&gate);
            thread::Builder::new()
                .name("burst".into())
                .stack_size(CLIENT_STACK)
                .spawn(move || {
                    gate.wait();
                    http_get(addr, "/snapshot", BURST_DEADLINE)
                })
                .expect("spawn burst client")
        })
        .collect();
    let (overflows0, drops0) = (tcp_ext("ListenOverflows"), tcp_ext("ListenDrops"));
    let start = Instant::now();
    gate.wait();
    let mut out = Burst {
        first_byte: Vec::with_capacity(n),
        failed: 0,
        error: None,
        overflows: 0,
        listen_drops: 0,
        secs: 0.0,
        stderr: String::new(),
    };
    for client in clients {
        let why = match client.join().expect("burst client") {
            Ok(got) if got.head.starts_with("HTTP/1.1 200") => {
                out.first_byte.push(ms(got.first_byte.as_nanos() as u64));
                continue;
            }
            Ok(got) => got.head.lines().next().unwrap_or("").to_string(),
            Err(e) => e,
        };
        out.first_byte.push(f64::INFINITY);
        out.failed += 1;
        out.error.get_or_insert(why);
    }
    out.secs = start.elapsed().as_secs_f64();
    out.overflows = tcp_ext("ListenOverflows").saturating_sub(overflows0);
    out.listen_drops = tcp_ext("ListenDrops").saturating_sub(drops0);
    assert!(server.alive(), "pushserve died: {}", server.stderr());
    out.stderr = server.stderr();
    out
}

/// The value at or below which a share `p` of `v` lies (nearest rank).
fn percentile(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((p * s.len() as f64).ceil() as usize).clamp(1, s.len().max(1));
    s.get(rank - 1).copied().unwrap_or(f64::NAN)
}

// ---------------------------------------------------------------------------------------------
// Report

struct Table {
    rows: String,
    notes: String,
}

impl Table {
    fn row(&mut self, cells: &[String]) {
        let _ = writeln!(self.rows, "| {} |", cells.join(" | "));
    }
}

/// Adds a line about a run that had lost changes, dropped readers or said something.
fn note_run(t: &mut Table, what: &str, r: &Fanout) {
    if r.timeouts > 0 || r.dropped > 0 || !r.stderr.is_empty() {
        let _ = writeln!(
            t.notes,
            "- {what}: {} change(s) not delivered to all within {CHANGE_DEADLINE:?}, {} \
             reading client(s) dropped ({}), stderr: {:?}",
            r.timeouts,
            r.dropped,
            r.drop_reason.as_deref().unwrap_or("-"),
            r.stderr.trim()
        );
    }
}

/// Bytes as `1000 B` (a keep-alive round to 1000 clients) or `200.2 MB`.
fn size(bytes: u64) -> String {
    if bytes < 1_000_000 {
        format!("{bytes} B")
    } else {
        format!("{:.1} MB", bytes as f64 / 1e6)
    }
}

fn verdict(ok: bool) -> String {
    if ok { "met" } else { "**missed**" }.to_string()
}

fn machine() -> String {
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|x| x.1.trim().to_string())
        })
        .unwrap_or_default();
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{} cores ({cpu}), {:.1} GiB memory, Linux {}, CLK_TCK {}",
        thread::available_parallelism().map_or(0, |n| n.get()),
        mem_kb / 1024.0 / 1024.0,
        kernel.trim(),
        clk_tck()
    )
}

fn log(what: &str) {
    eprintln!("[{:7.1} s] {what}", base().elapsed().as_secs_f64());
}

fn main() {
    if env::args().nth(1).as_deref() == Some("--baseline-server") {
        baseline_server();
        return;
    }
    base();
    let (busy0, steal0, own0) = (machine_ticks().0, machine_ticks().1, own_ticks());
    let _bin_copy = BinCopy;
    log(&format!("measuring {}", pushserve_bin().display()));
    let figures: Vec<u32> = env::var("FANOUT_FIGURES")
        .unwrap_or_else(|_| "1,2,3,4,5".into())
        .split(',')
        .filter_map(|f| f.trim().parse().ok())
        .collect();
    let idle_secs: f64 = env::var("FANOUT_IDLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10.0);
    let deadline = run_deadline(&figures, idle_secs);
    thread::spawn(move || {
        thread::sleep(deadline);
        eprintln!("fanout: over {deadline:?}, killing the servers and giving up");
        for pid in children().lock().unwrap().iter() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        process::exit(2);
    });
    if figures.contains(&6) || figures.contains(&7) {
        ensure_fds(FDS_NEEDED);
    }
    let mut t = Table {
        rows: String::new(),
        notes: String::new(),
    };
    t.row(&[
        "figure".into(),
        "case".into(),
        "pushserve".into(),
        "baseline".into(),
        "ratio".into(),
        "target".into(),
        "verdict".into(),
    ]);
    t.row(&vec!["---".to_string(); 7]);

    if figures.contains(&1) {
        for n in [1, 100, 1000] {
            let mut res = Vec::new();
            for kind in Kind::BOTH {
                log(&format!("figure 1: {kind:?}, N = {n}"));
                let r = fanout(kind, n, 0, FRAME_100K, CHANGES, &["--poll", "10"]);
                note_run(&mut t, &format!("figure 1 {kind:?} N={n}"), &r);
                log(&format!(
                    "  last client: median {:.1} ms, max {:.1} ms; first client median {:.1} ms",
                    median(&r.last),
                    max(&r.last),
                    median(&r.first)
                ));
                log(&format!("  per change (last client, ms): {:.0?}", r.last));
                res.push(r);
            }
            let (p, b) = (&res[0], &res[1]);
            t.row(&[
                "1. fan-out latency to last client, median / max of 20 (first client median)"
                    .into(),
                format!("N = {n}, 100 KB, --poll 10"),
                format!(
                    "{:.1} / {:.1} ms ({:.1})",
                    median(&p.last),
                    max(&p.last),
                    median(&p.first)
                ),
                format!(
                    "{:.1} / {:.1} ms ({:.1})",
                    median(&b.last),
                    max(&b.last),
                    median(&b.first)
                ),
                format!(
                    "{:.1}x / {:.1}x",
                    median(&p.last) / median(&b.last),
                    max(&p.last) / max(&b.last)
                ),
                "< 100 ms to all 1000".into(),
                if n == 1000 {
                    verdict(max(&p.last) < 100.0 && p.timeouts == 0)
                } else {
                    "-".into()
                },
            ]);
        }
    }

    if figures.contains(&2) {
        let measure = |kind: Kind, poll: &str, pace: Option<f64>| {
            log(&format!(
                "figure 2: {kind:?}, N = 100, back-to-back changes{}{}",
                if kind == Kind::Pushserve {
                    format!(", --poll {poll}")
                } else {
                    String::new()
                },
                pace.map_or(String::new(), |r| format!(", paced at {r:.0}/s"))
            ));
            let r = throughput(kind, 100, 5.0, &["--poll", poll], pace);
            log(&format!(
                "  {:.2} CPU s for {:.2} GB in {:.1} s ({} changes): {:.2} CPU s/GB",
                r.cpu_s,
                r.gb,
                r.secs,
                r.changes,
                r.cpu_s / r.gb
            ));
            r
        };
        let per_gb = |r: &Throughput| r.cpu_s / r.gb;
        let cell = |r: &Throughput| {
            format!(
                "{:.2} CPU s/GB ({:.2} GB/s, {:.0} changes/s)",
                per_gb(r),
                r.gb / r.secs,
                f64::from(r.changes) / r.secs
            )
        };
        // Unpaced, the baseline runs as fast as it can; paced, it makes as many changes per
        // second as pushserve managed, so the two deliver the same bytes at the same rate.
        // pushserve picks a change up within --poll: 10 ms (as in figure 1) caps it near 95
        // changes/s, 1 ms lets it run about as fast as the baseline.
        let unpaced = measure(Kind::Baseline, "-", None);
        for poll in ["10", "1"] {
            let ours = measure(Kind::Pushserve, poll, None);
            let rate = f64::from(ours.changes) / ours.secs;
            let paced = measure(Kind::Baseline, "-", Some(rate));
            for (label, b) in [
                ("baseline paced to pushserve's rate", &paced),
                ("baseline unpaced (as fast as it goes)", &unpaced),
            ] {
                let ratio = per_gb(&ours) / per_gb(b);
                t.row(&[
                    "2. server CPU per GB delivered".into(),
                    format!(
                        "N = 100, 100 KB, --poll {poll}, next change once all have the last, \
                         5 s; {label}"
                    ),
                    cell(&ours),
                    cell(b),
                    format!("{ratio:.2}x"),
                    "<= 1.5x baseline".into(),
                    verdict(ratio <= 1.5),
                ]);
            }
        }
    }

    if figures.contains(&3) {
        /// What a case of figure 3 is judged on.
        #[derive(PartialEq)]
        enum Judge {
            UnderOne,
            /// Under 1 %, and within noise of the N = 10 case.
            Flat,
            /// What one `--repeat` round costs, and so the default's share on average.
            Repeat,
            /// Over four windows, with the defaults: what idle readers cost in the long run.
            LongRun,
        }
        // Run-to-run spread of the same case is about +-0.02 points.
        const NOISE: f64 = 0.05;
        const DEFAULT_REPEAT_S: f64 = 20.0;
        let cases: Vec<(&str, usize, Vec<&str>, Judge)> = vec![
            ("N = 10", 10, vec!["--poll", "50"], Judge::UnderOne),
            ("N = 1000", 1000, vec!["--poll", "50"], Judge::Flat),
            (
                "N = 1000, --keepalive 3600 (no keep-alive in the window)",
                1000,
                vec!["--poll", "50", "--keepalive", "3600"],
                Judge::Flat,
            ),
            // The default --repeat (20 s) falls outside the window; this shows what each costs.
            (
                "N = 1000, --repeat 4 (the frame repeated in the window)",
                1000,
                vec!["--poll", "50", "--repeat", "4"],
                Judge::Repeat,
            ),
            (
                "N = 1000, four times as long (the default --repeat and --keepalive twice each)",
                1000,
                vec!["--poll", "50"],
                Judge::LongRun,
            ),
        ];
        let mut pcts = Vec::new();
        for (label, n, args, judge) in &cases {
            let mut res = Vec::new();
            let secs = if *judge == Judge::LongRun {
                4.0 * idle_secs
            } else {
                idle_secs
            };
            for kind in Kind::BOTH {
                if kind == Kind::Baseline && (args.len() > 2 || *judge == Judge::LongRun) {
                    // The baseline sends no keep-alives: its figure is the same as above.
                    continue;
                }
                log(&format!("figure 3: {kind:?}, {label}, {secs} s idle"));
                let r = idle(kind, *n, secs, args);
                log(&format!(
                    "  {:.2} % of a core ({:.1} % from ticks); clients got {} parts, {} \
                     meanwhile",
                    r.cpu_pct,
                    r.ticks_pct,
                    r.parts,
                    size(r.bytes)
                ));
                res.push(r);
            }
            let p = &res[0];
            pcts.push(p.cpu_pct);
            let base_cell = res.get(1).map_or("(as above)".into(), |b| {
                format!("{:.2} % ({} parts, {})", b.cpu_pct, b.parts, size(b.bytes))
            });
            let over_n10 = p.cpu_pct - pcts[0];
            let (extra, verdict_cell) = match judge {
                Judge::UnderOne => (String::new(), verdict(p.cpu_pct < 1.0)),
                Judge::Flat => (
                    format!("; {over_n10:+.2} points over N = 10"),
                    format!(
                        "< 1 %: {}; flat: {}",
                        verdict(p.cpu_pct < 1.0),
                        verdict(over_n10 <= NOISE)
                    ),
                ),
                Judge::Repeat => {
                    // Against the N = 1000 case without keep-alives: with a repeat every 4 s,
                    // no stream is quiet for --keepalive.
                    let rounds = p.parts as f64 / *n as f64;
                    let round_ms = (p.cpu_pct - pcts[2]) / 100.0 * secs * 1e3 / rounds;
                    (
                        format!(
                            "; {round_ms:.0} ms a round of {n}, so the default --repeat 20 \
                             adds {:.2} % of a core on average",
                            round_ms / 1e3 / DEFAULT_REPEAT_S * 100.0
                        ),
                        "(diagnostic)".into(),
                    )
                }
                Judge::LongRun => (
                    format!("; {over_n10:+.2} points over N = 10 in {idle_secs} s"),
                    "(diagnostic)".into(),
                ),
            };
            t.row(&[
                format!("3. idle server CPU, {secs} s, 100 KB frame, --poll 50"),
                label.to_string(),
                format!(
                    "{:.2} % of a core ({} parts repeated, {} received{extra})",
                    p.cpu_pct,
                    p.parts,
                    size(p.bytes)
                ),
                base_cell,
                "-".into(),
                "< 1 %, N = 10 ~ N = 1000".into(),
                verdict_cell,
            ]);
        }
    }

    if figures.contains(&4) {
        let mut res = Vec::new();
        for kind in Kind::BOTH {
            log(&format!("figure 4: {kind:?}, N = 1000, 1 MB frame"));
            let r = fanout(kind, 1000, 0, FRAME_1M, 3, &["--poll", "10"]);
            note_run(&mut t, &format!("figure 4 {kind:?}"), &r);
            log(&format!(
                "  RSS after changes {:?} kB, peak {} kB, threads {}; fan-out median {:.0} ms",
                r.rss,
                r.hwm_kb,
                r.threads_end,
                median(&r.last)
            ));
            res.push(r);
        }
        let mb = |kb: u64| kb as f64 / 1024.0;
        let cell = |r: &Fanout| {
            format!(
                "{:.1} MB RSS, peak {:.1} MB ({} threads; 3 changes fan out in {:.0} ms median)",
                mb(*r.rss.last().unwrap_or(&0)),
                mb(r.hwm_kb),
                r.threads_end,
                median(&r.last)
            )
        };
        let (p, b) = (&res[0], &res[1]);
        t.row(&[
            "4. server memory".into(),
            "N = 1000, 1 MB frame".into(),
            cell(p),
            cell(b),
            format!("{:.2}x", p.hwm_kb as f64 / b.hwm_kb as f64),
            "< 64 MB".into(),
            verdict(mb(p.hwm_kb) < 64.0),
        ]);
    }

    if figures.contains(&5) {
        let args = ["--poll", "10", "--write-timeout", "2"];
        let mut res = Vec::new();
        for kind in Kind::BOTH {
            for slow in [0, 50] {
                log(&format!("figure 5: {kind:?}, 50 readers + {slow} stalled"));
                let r = fanout(kind, 50, slow, FRAME_100K, 80, &args);
                note_run(&mut t, &format!("figure 5 {kind:?} slow={slow}"), &r);
                log(&format!(
                    "  readers: median {:.1} ms, max {:.1} ms; RSS {}..{} kB; threads {} -> {}; \
                     kernel TCP memory up to {} kB",
                    median(&r.last),
                    max(&r.last),
                    r.rss.iter().min().unwrap_or(&0),
                    r.rss.iter().max().unwrap_or(&0),
                    r.threads_start,
                    r.threads_end,
                    r.tcp_kb.iter().max().unwrap_or(&0)
                ));
                if slow > 0 && kind == Kind::Pushserve {
                    log(&format!(
                        "  stalled clients dropped {:.1?} s after they connected; kernel TCP \
                         memory then {} kB",
                        r.stalled_dropped_after, r.tcp_kb_after_drop
                    ));
                }
                log(&format!("  RSS per change (kB): {:?}", r.rss));
                log(&format!("  threads per change: {:?}", r.threads));
                log(&format!("  kernel TCP kB per change: {:?}", r.tcp_kb));
                res.push(r);
            }
        }
        let cell = |without: &Fanout, with: &Fanout| {
            format!(
                "{:.1} ms vs {:.1} ms alone ({:+.0} %); max {:.1} vs {:.1}; RSS {:.1}-{:.1} MB; \
                 threads {} -> {}; kernel TCP memory up to {:.0} MB",
                median(&with.last),
                median(&without.last),
                100.0 * (median(&with.last) / median(&without.last) - 1.0),
                max(&with.last),
                max(&without.last),
                *with.rss.iter().min().unwrap_or(&0) as f64 / 1024.0,
                *with.rss.iter().max().unwrap_or(&0) as f64 / 1024.0,
                with.threads_start,
                with.threads_end,
                *with.tcp_kb.iter().max().unwrap_or(&0) as f64 / 1024.0
            )
        };
        let _ = writeln!(
            t.notes,
            "- figure 5: pushserve dropped the 50 stalled clients {} after they connected \
             (--write-timeout 2); until then the kernel held up to {:.0} MB for them",
            res[1]
                .stalled_dropped_after
                .map_or("not within 20 s".to_string(), |s| format!("{s:.1} s")),
            *res[1].tcp_kb.iter().max().unwrap_or(&0) as f64 / 1024.0
        );
        let slowdown = median(&res[1].last) / median(&res[0].last);
        let rss_growth = *res[1].rss.iter().max().unwrap_or(&0) as f64
            / *res[1].rss.iter().min().unwrap_or(&1) as f64;
        t.row(&[
            "5. 50 stalled clients + 50 readers: readers' fan-out median".into(),
            "100 KB, --poll 10, --write-timeout 2, 80 changes (~5 s)".into(),
            cell(&res[0], &res[1]),
            cell(&res[2], &res[3]),
            format!(
                "{:.1}x (with stalled)",
                median(&res[1].last) / median(&res[3].last).max(f64::MIN_POSITIVE)
            ),
            "within 20 %, RSS flat".into(),
            verdict(slowdown <= 1.2 && rss_growth < 1.25),
        ]);
    }

    if figures.contains(&6) {
        // The frame never changes and is never repeated: the windows hold only the keep-alive
        // and, in the second, the readers coming and going.
        const TARGET_X: f64 = 1.5;
        // Other processes' CPU plus steal, in % of the machine, above which a window is noted.
        const DISTURBED_PCT: f64 = 5.0;
        for (secs, flag) in [(10, None), (2, Some("2"))] {
            let mut args = vec!["--poll", "50", "--repeat", "0"];
            args.extend(flag.iter().flat_map(|k| ["--keepalive", k]));
            let keepalive = flag.map_or("--keepalive 10 (default)".into(), |k| {
                format!("--keepalive {k}")
            });
            // N = 10's churn and marginal, at this keep-alive.
            let mut reference = None;
            for n in [10, 1000, 5000] {
                log(&format!(
                    "figure 6: N = {n} idle, {keepalive}: {idle_secs} s idle, then {idle_secs} s \
                     with {CHURN_RATE} readers/s coming and going"
                ));
                let r = churn(n, idle_secs, Duration::from_secs(secs), &args);
                let marginal = r.churn_pct - r.idle_pct;
                let p = &r.passers;
                log(&format!(
                    "  idle {:.2} % of a core ({:.1} % from ticks), churn {:.2} % ({:.1} % from \
                     ticks): {marginal:+.2} points; {} readers came in the window, {} came and \
                     went in all, {} failed; first part median {:.1} ms, max {:.1} ms; idle \
                     readers got {} and {} (windows opened in a keep-alive lull: {:?}); \
                     other processes used {:.1} and {:.1} % of the machine, steal {:.1} and \
                     {:.1} %",
                    r.idle_pct,
                    r.idle_ticks_pct,
                    r.churn_pct,
                    r.churn_ticks_pct,
                    r.came,
                    p.arrivals.len(),
                    p.failed,
                    median(&p.first_part),
                    max(&p.first_part),
                    size(r.idle_bytes),
                    size(r.churn_bytes),
                    r.aligned,
                    r.idle_disturbed.0,
                    r.churn_disturbed.0,
                    r.idle_disturbed.1,
                    r.churn_disturbed.1
                ));
                log(&format!("  by thread, idle -> churn: {}", r.by_thread));
                let disturbed = [r.idle_disturbed, r.churn_disturbed]
                    .iter()
                    .any(|(others, steal)| others + steal > DISTURBED_PCT);
                if disturbed {
                    let _ = writeln!(
                        t.notes,
                        "- figure 6 N={n} {keepalive}: other processes and steal took {:.1} + \
                         {:.1} % of the machine in the idle window, {:.1} + {:.1} % in the churn \
                         window; read this row (and, at N = 10, its ratios) with care",
                        r.idle_disturbed.0,
                        r.idle_disturbed.1,
                        r.churn_disturbed.0,
                        r.churn_disturbed.1
                    );
                }
                if p.failed > 0 || r.dropped > 0 || !r.stderr.is_empty() {
                    let _ = writeln!(
                        t.notes,
                        "- figure 6 N={n} {keepalive}: {} reader(s) coming and going failed \
                         ({}), {} idle reader(s) dropped ({}), stderr: {:?}",
                        p.failed,
                        p.error.as_deref().unwrap_or("-"),
                        r.dropped,
                        r.drop_reason.as_deref().unwrap_or("-"),
                        r.stderr.trim()
                    );
                }
                let (churn10, marginal10) = *reference.get_or_insert((r.churn_pct, marginal));
                let (total_x, marginal_x) = (r.churn_pct / churn10, marginal / marginal10);
                let first = n == 10;
                t.row(&[
                    format!(
                        "6. server CPU beside N idle readers: {idle_secs} s idle, then {idle_secs} \
                         s with {CHURN_RATE} readers/s coming and going (each reads its first \
                         part, stays {} s, closes); 100 KB frame, --poll 50, --repeat 0",
                        CHURN_STAY.as_secs_f64()
                    ),
                    format!("N = {n}, {keepalive}"),
                    format!(
                        "idle {:.2} %, churn {:.2} % of a core ({:.1} % from ticks): \
                         {marginal:+.2} points for the churn ({} readers came in the window, \
                         first part median {:.1} ms; keep-alive to the idle: {} and {})",
                        r.idle_pct,
                        r.churn_pct,
                        r.churn_ticks_pct,
                        r.came,
                        median(&p.first_part),
                        size(r.idle_bytes),
                        size(r.churn_bytes)
                    ),
                    "-".into(),
                    if first {
                        "(reference)".into()
                    } else {
                        format!("churn {total_x:.2}x, marginal {marginal_x:.2}x N = 10")
                    },
                    "churn CPU within 1.5x of N = 10".into(),
                    if first {
                        "-".into()
                    } else {
                        format!(
                            "marginal: {}; total: {}",
                            // A window disturbed by other work can put the churn below idle.
                            if marginal <= 0.0 || marginal10 <= 0.0 {
                                "inconclusive (churn not above idle)".into()
                            } else {
                                verdict(marginal_x <= TARGET_X && p.failed == 0)
                            },
                            verdict(total_x <= TARGET_X && p.failed == 0)
                        )
                    },
                ]);
            }
        }
    }

    if figures.contains(&7) {
        log(&format!("figure 7: {VIEWERS} idle readers, 100 KB frame"));
        let r = viewers(VIEWERS, &["--poll", "50"]);
        let mb = |kb: u64| kb as f64 / 1024.0;
        log(&format!(
            "  connected in {:.1} s; RSS {} kB, peak {} kB, {} threads; /status (ms): {:.1?}; \
             it counted {:?} streams",
            r.connect_secs, r.rss_kb, r.hwm_kb, r.threads, r.status_ms, r.streams
        ));
        if r.status_failed > 0 || r.dropped > 0 || !r.stderr.is_empty() {
            let _ = writeln!(
                t.notes,
                "- figure 7: {} /status request(s) failed ({}), {} idle reader(s) dropped ({}), \
                 stderr: {:?}",
                r.status_failed,
                r.status_error.as_deref().unwrap_or("-"),
                r.dropped,
                r.drop_reason.as_deref().unwrap_or("-"),
                r.stderr.trim()
            );
        }
        t.row(&[
            format!(
                "7. {VIEWERS} idle viewers: server memory and threads; /status median / max of \
                 {STATUS_REQUESTS} (each on a fresh connection, connect to whole response)"
            ),
            format!("N = {VIEWERS}, 100 KB frame, --poll 50"),
            format!(
                "{:.1} MB RSS, peak {:.1} MB ({} threads); /status {:.1} / {:.1} ms ({} failed; \
                 it counted {} streams); all connected in {:.1} s",
                mb(r.rss_kb),
                mb(r.hwm_kb),
                r.threads,
                median(&r.status_ms),
                max(&r.status_ms),
                r.status_failed,
                r.streams.map_or("no".into(), |s| s.to_string()),
                r.connect_secs
            ),
            "-".into(),
            "-".into(),
            "RSS < 160 MB".into(),
            verdict(mb(r.rss_kb) < 160.0 && r.dropped == 0),
        ]);
    }

    if figures.contains(&8) {
        log(&format!(
            "figure 8: {BURST} connections at once, each GET /snapshot"
        ));
        let r = burst(BURST);
        let (p50, p99, worst) = (
            percentile(&r.first_byte, 0.5),
            percentile(&r.first_byte, 0.99),
            max(&r.first_byte),
        );
        let after = |s: f64| r.first_byte.iter().filter(|&&t| t >= s * 1e3).count();
        log(&format!(
            "  first byte p50 {p50:.1} ms, p99 {p99:.1} ms, max {worst:.1} ms; {} after 1 s, {} \
             after 3 s; {} failed; ListenOverflows +{}, ListenDrops +{}; all done in {:.1} s",
            after(1.0),
            after(3.0),
            r.failed,
            r.overflows,
            r.listen_drops,
            r.secs
        ));
        if r.failed > 0 || !r.stderr.is_empty() {
            let _ = writeln!(
                t.notes,
                "- figure 8: {} connection(s) failed ({}), stderr: {:?}",
                r.failed,
                r.error.as_deref().unwrap_or("-"),
                r.stderr.trim()
            );
        }
        let ms_or_never = |v: f64| {
            if v.is_finite() {
                format!("{v:.0} ms")
            } else {
                "never (failed)".into()
            }
        };
        t.row(&[
            format!(
                "8. burst of {BURST} connections at once: just before connect to the first byte \
                 of /snapshot"
            ),
            format!("N = {BURST}, fresh server, 4-byte frame"),
            format!(
                "p50 {}, p99 {}, max {}; {} failed; ListenOverflows +{} (machine-wide)",
                ms_or_never(p50),
                ms_or_never(p99),
                ms_or_never(worst),
                r.failed,
                r.overflows
            ),
            "-".into(),
            "-".into(),
            "p99 < 1 s".into(),
            verdict(p99 < 1000.0),
        ]);
    }

    let ((busy1, steal1), own1) = (machine_ticks(), own_ticks());
    let others = busy1.saturating_sub(busy0).saturating_sub(own1 - own0) as f64 / clk_tck();
    let wall = base().elapsed().as_secs_f64();
    let revision = Command::new("git")
        .args([
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "describe",
            "--always",
            "--dirty",
        ])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .unwrap_or_default();
    println!("\n## Machine\n\n{}\n", machine());
    println!(
        "pushserve {}; run took {wall:.0} s; CPU used meanwhile by other processes: {others:.1} \
         s ({:.1} % of the machine), steal {:.1} s\n",
        revision.trim(),
        100.0 * others / wall / thread::available_parallelism().map_or(1.0, |n| n.get() as f64),
        (steal1 - steal0) as f64 / clk_tck()
    );
    println!("## Results\n\n{}", t.rows);
    if !t.notes.is_empty() {
        println!("Anomalies:\n\n{}", t.notes);
    }
    log("done");
}
