//! Figures 1, 4 and 5, which share one measurement ([`fanout`]: start a server, connect the
//! readers, make changes with a random 30-80 ms pause between them, time each one from just
//! before its publication to the last reader's whole body, and sample memory and threads):
//!
//! * 1, fan-out latency to the last of N = 1, 100, 1000 readers of a 100 KB frame;
//! * 4, server memory with 1000 readers of a 1 MB frame;
//! * 5, 50 stalled clients beside 50 readers, with `--write-timeout 2`.

use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::clients::{CHANGE_DEADLINE, Fleet};
use crate::config::Config;
use crate::frames::{FRAME_1M, FRAME_100K, jpeg};
use crate::measure::{ms, tcp_mem_kb};
use crate::report::{Summary, Table, int, ints, list, log, max, median, num, verdict};
use crate::server::{Kind, Server};

const CHANGES: u32 = 20;

/// A small xorshift for the pause between changes, so changes do not lock to the poll phase.
pub struct Jitter(pub u64);

impl Jitter {
    pub fn pause(&mut self, from_ms: u64, to_ms: u64) -> Duration {
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

impl Fanout {
    fn json(&self) -> Value {
        json!({
            "last_ms": self.last,
            "first_ms": self.first,
            "last_median_ms": median(&self.last),
            "last_max_ms": max(&self.last),
            "first_median_ms": median(&self.first),
            "timeouts": self.timeouts,
            "rss_kb": self.rss,
            "threads": self.threads,
            "tcp_kb": self.tcp_kb,
            "hwm_kb": self.hwm_kb,
            "stalled_dropped_after_s": self.stalled_dropped_after,
            "tcp_kb_after_drop": self.tcp_kb_after_drop,
            "threads_start": self.threads_start,
            "threads_end": self.threads_end,
            "dropped": self.dropped,
            "drop_reason": self.drop_reason,
            "stderr": self.stderr,
        })
    }
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

/// Adds a line about a run that had lost changes, dropped readers or said something.
fn note_run(t: &mut Table, what: &str, r: &Value) {
    let stderr = r["stderr"].as_str().unwrap_or("");
    if int(&r["timeouts"]) > 0 || int(&r["dropped"]) > 0 || !stderr.is_empty() {
        t.note(&format!(
            "- {what}: {} change(s) not delivered to all within {CHANGE_DEADLINE:?}, {} \
             reading client(s) dropped ({}), stderr: {:?}",
            int(&r["timeouts"]),
            int(&r["dropped"]),
            r["drop_reason"].as_str().unwrap_or("-"),
            stderr.trim()
        ));
    }
}

/// Figure 1: N = 1, 100 and 1000 readers (1, 10 and 20 quick), 20 changes each (3 quick).
pub fn latency(cfg: &Config) -> Value {
    let (ns, changes): (&[usize], u32) = if cfg.quick {
        (&[1, 10, 20], 3)
    } else {
        (&[1, 100, 1000], CHANGES)
    };
    let mut rows = Vec::new();
    for &n in ns {
        let mut res = Vec::new();
        for kind in Kind::BOTH {
            log(&format!("figure 1: {kind:?}, N = {n}"));
            let r = fanout(kind, n, 0, FRAME_100K, changes, &["--poll", "10"]);
            log(&format!(
                "  last client: median {:.1} ms, max {:.1} ms; first client median {:.1} ms",
                median(&r.last),
                max(&r.last),
                median(&r.first)
            ));
            log(&format!("  per change (last client, ms): {:.0?}", r.last));
            res.push(r.json());
        }
        rows.push(json!({ "n": n, "pushserve": res[0], "baseline": res[1] }));
    }
    json!({
        "figure": 1,
        "frame_bytes": FRAME_100K,
        "poll_ms": 10,
        "changes": changes,
        "rows": rows,
    })
}

/// Figure 1's verdict on a row (given only for the largest N).
fn latency_verdict(p: &Value) -> String {
    verdict(num(&p["last_max_ms"]) < 100.0 && int(&p["timeouts"]) == 0)
}

pub fn latency_rows(fig: &Value, t: &mut Table) {
    let rows = list(&fig["rows"]);
    for (i, row) in rows.iter().enumerate() {
        let n = int(&row["n"]);
        let (p, b) = (&row["pushserve"], &row["baseline"]);
        note_run(t, &format!("figure 1 {:?} N={n}", Kind::Pushserve), p);
        note_run(t, &format!("figure 1 {:?} N={n}", Kind::Baseline), b);
        let cell = |r: &Value| {
            format!(
                "{:.1} / {:.1} ms ({:.1})",
                num(&r["last_median_ms"]),
                num(&r["last_max_ms"]),
                num(&r["first_median_ms"])
            )
        };
        t.row(&[
            format!(
                "1. fan-out latency to last client, median / max of {} (first client median)",
                int(&fig["changes"])
            ),
            format!("N = {n}, 100 KB, --poll 10"),
            cell(p),
            cell(b),
            format!(
                "{:.1}x / {:.1}x",
                num(&p["last_median_ms"]) / num(&b["last_median_ms"]),
                num(&p["last_max_ms"]) / num(&b["last_max_ms"])
            ),
            "< 100 ms to all 1000".into(),
            if i + 1 == rows.len() {
                latency_verdict(p)
            } else {
                "-".into()
            },
        ]);
    }
}

pub fn latency_summary(fig: &Value) -> Vec<Summary> {
    let Some(row) = list(&fig["rows"]).last() else {
        return Vec::new();
    };
    let (p, b) = (&row["pushserve"], &row["baseline"]);
    vec![Summary {
        figure: format!(
            "1. fan-out latency to the last of {} clients, median / max of {}",
            int(&row["n"]),
            int(&fig["changes"])
        ),
        case: "100 KB, `--poll 10`".into(),
        cell: format!(
            "{:.1} / {:.1} ms (baseline {:.1} / {:.1}): {:.1}x / {:.1}x",
            num(&p["last_median_ms"]),
            num(&p["last_max_ms"]),
            num(&b["last_median_ms"]),
            num(&b["last_max_ms"]),
            num(&p["last_median_ms"]) / num(&b["last_median_ms"]),
            num(&p["last_max_ms"]) / num(&b["last_max_ms"])
        ),
        target: "< 100 ms".into(),
        verdict: latency_verdict(p),
    }]
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// Figure 4: 1000 readers (20 quick) of a 1 MB frame, 3 changes (2 quick).
pub fn memory(cfg: &Config) -> Value {
    let (n, changes) = if cfg.quick { (20, 2) } else { (1000, 3) };
    let mut res = Vec::new();
    for kind in Kind::BOTH {
        log(&format!("figure 4: {kind:?}, N = {n}, 1 MB frame"));
        let r = fanout(kind, n, 0, FRAME_1M, changes, &["--poll", "10"]);
        log(&format!(
            "  RSS after changes {:?} kB, peak {} kB, threads {}; fan-out median {:.0} ms",
            r.rss,
            r.hwm_kb,
            r.threads_end,
            median(&r.last)
        ));
        res.push(r.json());
    }
    json!({
        "figure": 4,
        "n": n,
        "frame_bytes": FRAME_1M,
        "poll_ms": 10,
        "changes": changes,
        "rows": [{ "pushserve": res[0], "baseline": res[1] }],
    })
}

fn memory_verdict(p: &Value) -> String {
    verdict(mb(int(&p["hwm_kb"])) < 64.0)
}

pub fn memory_rows(fig: &Value, t: &mut Table) {
    let Some(row) = list(&fig["rows"]).first() else {
        return;
    };
    let (p, b) = (&row["pushserve"], &row["baseline"]);
    note_run(t, &format!("figure 4 {:?}", Kind::Pushserve), p);
    note_run(t, &format!("figure 4 {:?}", Kind::Baseline), b);
    let cell = |r: &Value| {
        format!(
            "{:.1} MB RSS, peak {:.1} MB ({} threads; {} changes fan out in {:.0} ms median)",
            mb(*ints(&r["rss_kb"]).last().unwrap_or(&0)),
            mb(int(&r["hwm_kb"])),
            int(&r["threads_end"]),
            int(&fig["changes"]),
            num(&r["last_median_ms"])
        )
    };
    t.row(&[
        "4. server memory".into(),
        format!("N = {}, 1 MB frame", int(&fig["n"])),
        cell(p),
        cell(b),
        format!(
            "{:.2}x",
            int(&p["hwm_kb"]) as f64 / int(&b["hwm_kb"]) as f64
        ),
        "< 64 MB".into(),
        memory_verdict(p),
    ]);
}

pub fn memory_summary(fig: &Value) -> Vec<Summary> {
    let Some(row) = list(&fig["rows"]).first() else {
        return Vec::new();
    };
    let (p, b) = (&row["pushserve"], &row["baseline"]);
    vec![Summary {
        figure: format!("4. peak RSS, {} clients, 1 MB frame", int(&fig["n"])),
        case: String::new(),
        cell: format!(
            "{:.1} MB (baseline {:.1}): {:.2}x",
            mb(int(&p["hwm_kb"])),
            mb(int(&b["hwm_kb"])),
            int(&p["hwm_kb"]) as f64 / int(&b["hwm_kb"]) as f64
        ),
        target: "< 64 MB".into(),
        verdict: memory_verdict(p),
    }]
}

/// Figure 5: 50 readers (10 quick) alone and beside as many stalled clients, 80 changes (10
/// quick), with `--write-timeout 2`.
pub fn stalled(cfg: &Config) -> Value {
    let (readers, stalled, changes) = if cfg.quick {
        (10, 10, 10)
    } else {
        (50, 50, 80)
    };
    let args = ["--poll", "10", "--write-timeout", "2"];
    let mut rows = Vec::new();
    for kind in Kind::BOTH {
        for slow in [0, stalled] {
            log(&format!(
                "figure 5: {kind:?}, {readers} readers + {slow} stalled"
            ));
            let r = fanout(kind, readers, slow, FRAME_100K, changes, &args);
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
            let mut row = r.json();
            row["server"] = json!(format!("{kind:?}").to_lowercase());
            row["stalled"] = json!(slow);
            rows.push(row);
        }
    }
    json!({
        "figure": 5,
        "readers": readers,
        "stalled": stalled,
        "changes": changes,
        "frame_bytes": FRAME_100K,
        "poll_ms": 10,
        "write_timeout_s": 2,
        "rows": rows,
    })
}

/// The four runs of figure 5: pushserve alone, with stalled clients, then the baseline's.
fn stalled_runs(fig: &Value) -> Option<[&Value; 4]> {
    let find = |server: &str, stalled: bool| {
        list(&fig["rows"])
            .iter()
            .find(|r| r["server"] == server && (int(&r["stalled"]) > 0) == stalled)
    };
    Some([
        find("pushserve", false)?,
        find("pushserve", true)?,
        find("baseline", false)?,
        find("baseline", true)?,
    ])
}

/// (readers' slowdown beside the stalled clients, RSS growth meanwhile) of a server's runs.
fn stalled_verdict(without: &Value, with: &Value) -> String {
    let slowdown = num(&with["last_median_ms"]) / num(&without["last_median_ms"]);
    let rss = ints(&with["rss_kb"]);
    let rss_growth =
        *rss.iter().max().unwrap_or(&0) as f64 / *rss.iter().min().unwrap_or(&1) as f64;
    verdict(slowdown <= 1.2 && rss_growth < 1.25)
}

pub fn stalled_rows(fig: &Value, t: &mut Table) {
    let Some(runs) = stalled_runs(fig) else {
        return;
    };
    for r in runs {
        let kind = if r["server"] == "pushserve" {
            Kind::Pushserve
        } else {
            Kind::Baseline
        };
        note_run(
            t,
            &format!("figure 5 {kind:?} slow={}", int(&r["stalled"])),
            r,
        );
    }
    let stalled = int(&fig["stalled"]);
    let cell = |without: &Value, with: &Value| {
        let rss = ints(&with["rss_kb"]);
        format!(
            "{:.1} ms vs {:.1} ms alone ({:+.0} %); max {:.1} vs {:.1}; RSS {:.1}-{:.1} MB; \
             threads {} -> {}; kernel TCP memory up to {:.0} MB",
            num(&with["last_median_ms"]),
            num(&without["last_median_ms"]),
            100.0 * (num(&with["last_median_ms"]) / num(&without["last_median_ms"]) - 1.0),
            num(&with["last_max_ms"]),
            num(&without["last_max_ms"]),
            *rss.iter().min().unwrap_or(&0) as f64 / 1024.0,
            *rss.iter().max().unwrap_or(&0) as f64 / 1024.0,
            int(&with["threads_start"]),
            int(&with["threads_end"]),
            *ints(&with["tcp_kb"]).iter().max().unwrap_or(&0) as f64 / 1024.0
        )
    };
    t.note(&format!(
        "- figure 5: pushserve dropped the {stalled} stalled clients {} after they connected \
         (--write-timeout 2); until then the kernel held up to {:.0} MB for them",
        runs[1]["stalled_dropped_after_s"]
            .as_f64()
            .map_or("not within 20 s".to_string(), |s| format!("{s:.1} s")),
        *ints(&runs[1]["tcp_kb"]).iter().max().unwrap_or(&0) as f64 / 1024.0
    ));
    let changes = int(&fig["changes"]);
    t.row(&[
        format!(
            "5. {stalled} stalled clients + {} readers: readers' fan-out median",
            int(&fig["readers"])
        ),
        // A change takes 62.5 ms on average: the pause, 55 ms, then the fan-out.
        format!(
            "100 KB, --poll 10, --write-timeout 2, {changes} changes (~{:.0} s)",
            changes as f64 / 16.0
        ),
        cell(runs[0], runs[1]),
        cell(runs[2], runs[3]),
        format!(
            "{:.1}x (with stalled)",
            num(&runs[1]["last_median_ms"])
                / num(&runs[3]["last_median_ms"]).max(f64::MIN_POSITIVE)
        ),
        "within 20 %, RSS flat".into(),
        stalled_verdict(runs[0], runs[1]),
    ]);
}

pub fn stalled_summary(fig: &Value) -> Vec<Summary> {
    let Some([without, with, ..]) = stalled_runs(fig) else {
        return Vec::new();
    };
    let (alone, beside) = (
        num(&without["last_median_ms"]),
        num(&with["last_median_ms"]),
    );
    vec![Summary {
        figure: format!(
            "5. {} stalled + {} readers",
            int(&fig["stalled"]),
            int(&fig["readers"])
        ),
        case: "`--write-timeout 2`".into(),
        cell: format!(
            "{:+.0} % ({beside:.1} vs {alone:.1} ms); threads {} → {}",
            100.0 * (beside / alone - 1.0),
            int(&with["threads_start"]),
            int(&with["threads_end"])
        ),
        target: "within 20 %".into(),
        verdict: stalled_verdict(without, with),
    }]
}
