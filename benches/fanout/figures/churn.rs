//! Figure 6, churn beside idle readers (pushserve alone): N = 10, 1000 and 5000 idle readers of
//! a 100 KB frame that never changes and is never repeated, at the default `--keepalive` and
//! at 2. The server's CPU over one window with nothing happening, then over another while
//! [`CHURN_RATE`] readers a second come and go (each reads its first part, stays
//! [`CHURN_STAY`], closes). Threads end in that window, and schedstat has no entry for an ended
//! thread, so the threads that were not there before the churn are read every
//! [`crate::measure::TALLY_EVERY`] and each is counted to its last reading. Both windows open
//! in a lull between keep-alive rounds; the log splits them by thread and notes a window that
//! other processes or steal disturbed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::clients::{ClientStat, Fleet, REQUEST, spawn_reader};
use crate::config::Config;
use crate::frames::{FRAME_100K, jpeg};
use crate::measure::{Disturbance, by_thread, clk_tck, ms, now_ns, since};
use crate::report::{Summary, Table, int, list, log, max, median, num, size, verdict};
use crate::server::{Kind, Server};

/// Readers that come and go per second beside the idle ones, and how long each stays.
pub const CHURN_RATE: f64 = 20.0;
pub const CHURN_STAY: Duration = Duration::from_secs(1);
/// The target: the churn's CPU within this many times that beside N = 10.
const TARGET_X: f64 = 1.5;
/// Other processes' CPU plus steal, in % of the machine, above which a window is noted.
const DISTURBED_PCT: f64 = 5.0;

/// One reader that comes and goes.
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

/// Readers that come and go beside the idle ones, one every 1/[`CHURN_RATE`] s, each reading
/// its first part, staying [`CHURN_STAY`] and closing, until `stop`.
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
    /// The server's CPU in the two windows by kind of thread, in ns.
    by_thread: Vec<(String, [u64; 2])>,
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

/// `n` idle readers; the server's CPU over `secs` with nothing else happening, then over
/// `secs` while [`CHURN_RATE`] readers a second come and go. Both windows open in a lull
/// between two rounds of keep-alives (every `keepalive`), so that both hold the same ones.
fn churn(n: usize, secs: f64, keepalive: Duration, args: &[&str]) -> Churn {
    let mut server = Server::start(Kind::Pushserve, &jpeg(FRAME_100K, 1), args);
    let proc = server.proc();
    let mut fleet = Fleet::default();
    fleet.connect(server.addr, n);
    thread::sleep(Duration::from_secs(1));
    // Idle, measured as figure 3 measures it.
    let idle_aligned = fleet.await_lull(keepalive);
    let threads0 = server.status("Threads");
    let (cpu0, ticks0, start) = (proc.thread_ns(), proc.cpu_ticks(), Instant::now());
    let (bytes0, others) = (fleet.bytes(), Disturbance::start(proc));
    thread::sleep(Duration::from_secs_f64(secs));
    let idle_disturbed = others.end(proc);
    let idle_threads = since(&cpu0, &proc.thread_ns());
    let idle_ticks = proc.cpu_ticks().saturating_sub(ticks0) as f64 / clk_tck();
    let idle_wall = start.elapsed().as_secs_f64();
    let idle_bytes = fleet.bytes() - bytes0;
    assert_eq!(threads0, server.status("Threads"), "threads came or went");
    // Every thread there now stays; those of the readers that come and go are read often.
    let names = proc.thread_names();
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
        let (from, ticks0, bytes0) = (now_ns(), proc.cpu_ticks(), fleet.bytes());
        let others = Disturbance::start(proc);
        (churn_threads, wall) = proc.cpu_ns_tally(&steady, secs);
        churn_disturbed = others.end(proc);
        ticks = proc.cpu_ticks().saturating_sub(ticks0) as f64 / clk_tck();
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

/// Figure 6: N = 10, 1000 and 5000 (2, 10 and 20 quick) at `--keepalive` 10 (the default) and
/// 2 (2 and 1 quick).
pub fn run(cfg: &Config) -> Value {
    let idle_secs = cfg.idle_secs;
    let (ns, keepalives): (&[usize], [(u64, bool); 2]) = if cfg.quick {
        (&[2, 10, 20], [(2, false), (1, false)])
    } else {
        (&[10, 1000, 5000], [(10, true), (2, false)])
    };
    let mut rows = Vec::new();
    for (secs, default) in keepalives {
        // The frame never changes and is never repeated: the windows hold only the keep-alive
        // and, in the second, the readers coming and going.
        let mut args = vec!["--poll", "50", "--repeat", "0"];
        let flag = secs.to_string();
        if !default {
            args.extend(["--keepalive", flag.as_str()]);
        }
        let keepalive = keepalive_label(secs, default);
        for &n in ns {
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
            log(&format!(
                "  by thread, idle -> churn: {}",
                r.by_thread
                    .iter()
                    .map(|(name, [x, y])| format!("{name} {:.1} -> {:.1} ms", ms(*x), ms(*y)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            rows.push(json!({
                "n": n,
                "keepalive_s": secs,
                "keepalive_default": default,
                "idle_pct": r.idle_pct,
                "churn_pct": r.churn_pct,
                "marginal_points": marginal,
                "idle_ticks_pct": r.idle_ticks_pct,
                "churn_ticks_pct": r.churn_ticks_pct,
                "idle_bytes": r.idle_bytes,
                "churn_bytes": r.churn_bytes,
                "idle_aligned": r.aligned.0,
                "churn_aligned": r.aligned.1,
                "by_thread": r.by_thread.iter().map(|(name, [x, y])| json!({
                    "threads": name,
                    "idle_ms": ms(*x),
                    "churn_ms": ms(*y),
                })).collect::<Vec<_>>(),
                "idle_others_pct": r.idle_disturbed.0,
                "idle_steal_pct": r.idle_disturbed.1,
                "churn_others_pct": r.churn_disturbed.0,
                "churn_steal_pct": r.churn_disturbed.1,
                "came_in_window": r.came,
                "came_in_all": p.arrivals.len(),
                "first_part_ms": p.first_part,
                "first_part_median_ms": median(&p.first_part),
                "first_part_max_ms": max(&p.first_part),
                "failed": p.failed,
                "error": p.error,
                "dropped": r.dropped,
                "drop_reason": r.drop_reason,
                "stderr": r.stderr,
            }));
        }
    }
    json!({
        "figure": 6,
        "idle_secs": idle_secs,
        "churn_rate": CHURN_RATE,
        "stay_s": CHURN_STAY.as_secs_f64(),
        "frame_bytes": FRAME_100K,
        "poll_ms": 50,
        "rows": rows,
    })
}

fn keepalive_label(secs: u64, default: bool) -> String {
    if default {
        format!("--keepalive {secs} (default)")
    } else {
        format!("--keepalive {secs}")
    }
}

/// A row of figure 6 beside the first row at its keep-alive (N = 10, the reference).
struct Judged<'a> {
    row: &'a Value,
    reference: bool,
    /// The reference's N.
    reference_n: u64,
    marginal: f64,
    total_x: f64,
    marginal_x: f64,
    /// The verdicts on the marginal cost and on the total, None for the reference.
    verdicts: Option<(String, String)>,
}

fn judged(fig: &Value) -> Vec<Judged<'_>> {
    // (keep-alive, N, churn, marginal) of each keep-alive's first row.
    let mut references: Vec<(u64, u64, f64, f64)> = Vec::new();
    list(&fig["rows"])
        .iter()
        .map(|row| {
            let keepalive = int(&row["keepalive_s"]);
            let (churn, marginal) = (num(&row["churn_pct"]), num(&row["marginal_points"]));
            let reference = !references.iter().any(|r| r.0 == keepalive);
            if reference {
                references.push((keepalive, int(&row["n"]), churn, marginal));
            }
            let &(_, reference_n, churn10, marginal10) =
                references.iter().find(|r| r.0 == keepalive).unwrap();
            let (total_x, marginal_x) = (churn / churn10, marginal / marginal10);
            let failed = int(&row["failed"]) > 0;
            let verdicts = (!reference).then(|| {
                (
                    // A window disturbed by other work can put the churn below idle.
                    if marginal <= 0.0 || marginal10 <= 0.0 {
                        "inconclusive (churn not above idle)".to_string()
                    } else {
                        verdict(marginal_x <= TARGET_X && !failed)
                    },
                    verdict(total_x <= TARGET_X && !failed),
                )
            });
            Judged {
                row,
                reference,
                reference_n,
                marginal,
                total_x,
                marginal_x,
                verdicts,
            }
        })
        .collect()
}

pub fn rows(fig: &Value, t: &mut Table) {
    let idle_secs = num(&fig["idle_secs"]);
    for j in judged(fig) {
        let r = j.row;
        let n = int(&r["n"]);
        let keepalive = keepalive_label(
            int(&r["keepalive_s"]),
            r["keepalive_default"].as_bool().unwrap_or(false),
        );
        let disturbed = ["idle", "churn"].iter().any(|w| {
            num(&r[format!("{w}_others_pct")]) + num(&r[format!("{w}_steal_pct")]) > DISTURBED_PCT
        });
        if disturbed {
            t.note(&format!(
                "- figure 6 N={n} {keepalive}: other processes and steal took {:.1} + {:.1} % \
                 of the machine in the idle window, {:.1} + {:.1} % in the churn window; read \
                 this row (and, at N = 10, its ratios) with care",
                num(&r["idle_others_pct"]),
                num(&r["idle_steal_pct"]),
                num(&r["churn_others_pct"]),
                num(&r["churn_steal_pct"])
            ));
        }
        let stderr = r["stderr"].as_str().unwrap_or("");
        if int(&r["failed"]) > 0 || int(&r["dropped"]) > 0 || !stderr.is_empty() {
            t.note(&format!(
                "- figure 6 N={n} {keepalive}: {} reader(s) coming and going failed ({}), {} \
                 idle reader(s) dropped ({}), stderr: {:?}",
                int(&r["failed"]),
                r["error"].as_str().unwrap_or("-"),
                int(&r["dropped"]),
                r["drop_reason"].as_str().unwrap_or("-"),
                stderr.trim()
            ));
        }
        t.row(&[
            format!(
                "6. server CPU beside N idle readers: {idle_secs} s idle, then {idle_secs} s \
                 with {} readers/s coming and going (each reads its first part, stays {} s, \
                 closes); 100 KB frame, --poll 50, --repeat 0",
                num(&fig["churn_rate"]),
                num(&fig["stay_s"])
            ),
            format!("N = {n}, {keepalive}"),
            format!(
                "idle {:.2} %, churn {:.2} % of a core ({:.1} % from ticks): {:+.2} points for \
                 the churn ({} readers came in the window, first part median {:.1} ms; \
                 keep-alive to the idle: {} and {})",
                num(&r["idle_pct"]),
                num(&r["churn_pct"]),
                num(&r["churn_ticks_pct"]),
                j.marginal,
                int(&r["came_in_window"]),
                num(&r["first_part_median_ms"]),
                size(int(&r["idle_bytes"])),
                size(int(&r["churn_bytes"]))
            ),
            "-".into(),
            if j.reference {
                "(reference)".into()
            } else {
                format!(
                    "churn {:.2}x, marginal {:.2}x N = {}",
                    j.total_x, j.marginal_x, j.reference_n
                )
            },
            format!("churn CPU within 1.5x of N = {}", j.reference_n),
            match &j.verdicts {
                None => "-".into(),
                Some((marginal, total)) => format!("marginal: {marginal}; total: {total}"),
            },
        ]);
    }
}

/// One row per case: idle → with churn (marginal), and the ratios to the reference.
pub fn summary(fig: &Value) -> Vec<Summary> {
    judged(fig)
        .iter()
        .map(|j| {
            let r = j.row;
            let base = format!(
                "{:.2} → {:.2} ({:+.2})",
                num(&r["idle_pct"]),
                num(&r["churn_pct"]),
                j.marginal
            );
            Summary {
                figure: format!(
                    "6. churn: {} readers/s coming and going beside N idle readers, % of a core \
                     (idle → with churn; marginal)",
                    num(&fig["churn_rate"])
                ),
                case: format!(
                    "N = {}, `--keepalive` {}",
                    int(&r["n"]),
                    int(&r["keepalive_s"])
                ),
                cell: if j.reference {
                    base
                } else {
                    format!(
                        "{base}: {:.2}x total, {:.2}x marginal",
                        j.total_x, j.marginal_x
                    )
                },
                target: format!("churn within 1.5x of N = {}", j.reference_n),
                verdict: match &j.verdicts {
                    None => "(reference)".into(),
                    Some((marginal, total)) if marginal == total => marginal.clone(),
                    Some((marginal, total)) => format!("marginal {marginal}; total {total}"),
                },
            }
        })
        .collect()
}
