//! What the bench reads from `/proc`: a server's CPU (ticks from `/proc/PID/stat`, nanoseconds
//! per thread from `/proc/PID/task/*/schedstat`), its memory and threads (`/proc/PID/status`),
//! its read and write calls (`/proc/PID/io`), the kernel's TCP memory and counters
//! (`/proc/net/sockstat`, `/proc/net/netstat`), the CPU of the rest of the machine
//! (disturbance), the limit on open files, the machine itself, and the run's clock.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::process::{self, Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// How often figure 6 reads the threads that come and go.
pub const TALLY_EVERY: Duration = Duration::from_millis(10);

pub fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// Nanoseconds since the start of the run: comparable across threads.
pub fn now_ns() -> u64 {
    base().elapsed().as_nanos() as u64
}

pub fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// One process's `/proc` entries.
#[derive(Clone, Copy)]
pub struct Proc(pub u32);

impl Proc {
    /// utime + stime of the whole process (all threads, live and exited), in ticks.
    pub fn cpu_ticks(self) -> u64 {
        let (user, system) = self.user_system_ticks();
        user + system
    }

    /// (utime, stime) of the whole process, in ticks.
    pub fn user_system_ticks(self) -> (u64, u64) {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.0)).unwrap_or_default();
        let after_comm = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        // Fields after the comm: state is field 3, utime 14, stime 15.
        let fields: Vec<&str> = after_comm.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
        (field(14).unwrap_or(0), field(15).unwrap_or(0))
    }

    /// The process's state letter (`R`, `S`, `Z` for a zombie, ...), None once it is gone. A
    /// zombie's `stat` still holds all its CPU: read it before the child is waited for.
    pub fn state(self) -> Option<char> {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.0)).ok()?;
        stat.rsplit_once(')')?.1.trim_start().chars().next()
    }

    /// Nanoseconds on CPU of the live threads (`/proc/PID/task/*/schedstat`): finer than ticks,
    /// used where no thread starts or ends in the interval (figure 3).
    pub fn cpu_ns_live(self) -> u64 {
        self.thread_ns().values().sum()
    }

    /// The live threads' ids.
    fn tids(self) -> Vec<u32> {
        let Ok(tasks) = fs::read_dir(format!("/proc/{}/task", self.0)) else {
            return Vec::new();
        };
        tasks
            .filter_map(|t| t.ok()?.file_name().to_str()?.parse().ok())
            .collect()
    }

    /// Nanoseconds on CPU of one thread, if it is still there.
    fn task_ns(self, tid: u32) -> Option<u64> {
        fs::read_to_string(format!("/proc/{}/task/{tid}/schedstat", self.0))
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// Nanoseconds on CPU of each live thread.
    pub fn thread_ns(self) -> HashMap<u32, u64> {
        self.tids()
            .into_iter()
            .filter_map(|tid| Some((tid, self.task_ns(tid)?)))
            .collect()
    }

    /// Nanoseconds on CPU of all the threads over `secs`, those that start or end in it
    /// included (figure 6), and the wall time that covered. The threads in `steady` are read
    /// at both ends; the others every [`TALLY_EVERY`], each counted to its last reading, so
    /// what a thread does in its last few ms before it ends is missed.
    pub fn cpu_ns_tally(self, steady: &HashSet<u32>, secs: f64) -> (HashMap<u32, u64>, f64) {
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
    pub fn thread_names(self) -> HashMap<u32, String> {
        self.tids()
            .into_iter()
            .filter_map(|tid| {
                let comm = fs::read_to_string(format!("/proc/{}/task/{tid}/comm", self.0));
                Some((tid, comm.ok()?.trim().to_string()))
            })
            .collect()
    }

    /// A `/proc/PID/io` counter of the whole process, e.g. `syscw` (write and writev calls, on
    /// sockets too; not send or sendto) or `wchar` (the bytes they wrote); 0 if unreadable.
    pub fn io(self, key: &str) -> u64 {
        let io = fs::read_to_string(format!("/proc/{}/io", self.0)).unwrap_or_default();
        io.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    /// A `/proc/PID/status` line's number (kB for memory lines).
    pub fn status(self, key: &str) -> u64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.0)).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }
}

/// Kernel memory held by all TCP sockets of the machine (`/proc/net/sockstat`), in kB:
/// where the bytes queued for stalled clients live (RSS does not show them).
pub fn tcp_mem_kb() -> u64 {
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

/// Whether a socket listens on 127.0.0.1:`port` (`/proc/net/tcp`): known without connecting,
/// which would start a thread in a server that has one per connection.
pub fn listening(port: u16) -> bool {
    let local = format!("0100007F:{port:04X}");
    let tcp = fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    tcp.lines().skip(1).any(|l| {
        let words: Vec<&str> = l.split_whitespace().collect();
        words.get(1) == Some(&local.as_str()) && words.get(3) == Some(&"0A")
    })
}

/// A `TcpExt:` counter of the whole machine from `/proc/net/netstat`.
pub fn tcp_ext(key: &str) -> u64 {
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

/// Raises this process's soft limit on open files to `need` if it is lower, and says to what
/// (None: it was high enough); the servers, started later, inherit it. The package's rustix is built without the `process` feature that
/// has `setrlimit` (and `unsafe` is forbidden), so `prlimit(1)` of util-linux does it.
pub fn ensure_fds(need: u64) -> Option<u64> {
    let (soft, hard) = fd_limits();
    if soft >= need {
        return None;
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
    Some(soft)
}

/// Busy and steal time of the whole machine from `/proc/stat`, in ticks.
pub fn machine_ticks() -> (u64, u64) {
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
pub fn own_ticks() -> u64 {
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

pub fn clk_tck() -> f64 {
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

/// The machine's CPUs as the bench sees them (`available_parallelism`).
pub fn cores() -> usize {
    thread::available_parallelism().map_or(0, |n| n.get())
}

/// Each thread's nanoseconds on CPU in `to` since `from` (0 there for a thread born since).
pub fn since(from: &HashMap<u32, u64>, to: &HashMap<u32, u64>) -> HashMap<u32, u64> {
    to.iter()
        .map(|(tid, ns)| (*tid, ns.saturating_sub(from.get(tid).copied().unwrap_or(0))))
        .collect()
}

/// CPU time in two windows by kind of thread, in ns, largest in the second window first: the
/// threads in `names` by name (its connection threads are the idle readers'), the others as
/// the threads of the readers that came and went.
pub fn by_thread(
    names: &HashMap<u32, String>,
    a: &HashMap<u32, u64>,
    b: &HashMap<u32, u64>,
) -> Vec<(String, [u64; 2])> {
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
        .into_iter()
        .map(|(name, sums)| (name.to_string(), sums))
        .collect()
}

/// What the rest of the machine did while a window of figure 6 was measured: a window with a
/// large share of either reads the server's CPU high (a disturbed reference spoils a ratio).
pub struct Disturbance {
    busy: u64,
    steal: u64,
    own: u64,
    server: u64,
    since: Instant,
}

impl Disturbance {
    pub fn start(server: Proc) -> Disturbance {
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
    pub fn end(&self, server: Proc) -> (f64, f64) {
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

/// The machine the run is on: CPUs, memory, kernel, clock ticks.
pub struct Machine {
    pub cores: usize,
    pub cpu: String,
    pub memory_gib: f64,
    pub kernel: String,
    pub clk_tck: f64,
}

impl Machine {
    pub fn read() -> Machine {
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
        Machine {
            cores: cores(),
            cpu,
            memory_gib: mem_kb / 1024.0 / 1024.0,
            kernel: kernel.trim().to_string(),
            clk_tck: clk_tck(),
        }
    }
}
