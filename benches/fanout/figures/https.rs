//! Figure 11, TLS against plain (pushserve alone, no baseline): the same release binary four
//! times, in the clear and three times with `--tls-cert` and `--tls-key` (a certificate the
//! bench makes with rcgen), each with N readers of `/stream`. Over TLS each reader has a
//! session of its own (rustls on the ring provider, as the server, trusting only that
//! certificate), offering rustls's default suites (AES-256-GCM first), then AES-128-GCM alone
//! (what browsers pick on CPUs with AES instructions), then ChaCha20-Poly1305 alone (what a
//! client without them picks). Each server:
//!
//! * latency: after warm-up changes, M changes of a 40 KB frame, each timed for every reader
//!   from just before the rename to the last byte of that part's body; the next change comes
//!   once every reader has this one, after a random 20-50 ms pause;
//! * CPU per GB: changes of a 256 KiB frame, each as soon as every reader has the last one;
//!   the server's utime + stime over them per GB the readers read (over TLS the plaintext: the
//!   records add 22 bytes to each 16 KiB), and the bench's own beside it, which is the
//!   readers' (the driver only waits): they run on the same two cores, and over TLS they
//!   decrypt all the server encrypts, so they compete with it.
//!
//! Before the servers start, ring's own sealing rate on one core for each TLS 1.3 AEAD, to read
//! the server's added cost against; the readers record the suite they negotiated.

use std::process;
use std::thread;
use std::time::Instant;

use serde_json::{Value, json};

use crate::clients::{CHANGE_DEADLINE, Fleet};
use crate::config::Config;
use crate::figures::fanout::Jitter;
use crate::figures::sources::{dist, dist_cell};
use crate::frames::{FRAME_40K, jpeg};
use crate::measure::{Disturbance, Proc, clk_tck, ms};
use crate::report::{Summary, Table, int, list, log, max, median, num, percentile, verdict};
use crate::server::{Kind, Server};
use crate::tls::{Certificate, Offer, seal_rates};

/// Readers on each server.
const N: usize = 300;
/// Timed changes of the 40 KB frame, after [`WARM_UP`] untimed ones.
const CHANGES: u32 = 200;
const WARM_UP: u32 = 3;
const GAP_MS: (u64, u64) = (20, 50);
/// The frame and the changes of the CPU measurement: 300 readers × 80 × 256 KiB = 6.3 GB.
const CPU_FRAME: usize = 256 * 1024;
const CPU_CHANGES: u32 = 80;
const POLL_MS: u32 = 10;
/// The target: the server's CPU per GB over TLS at most this many times plain's.
const TARGET_X: f64 = 2.0;
/// Other processes' CPU (or steal), % of the machine, above which a phase is noted as disturbed.
const DISTURBED_PCT: f64 = 5.0;
/// How long ring's sealing rate is measured, per AEAD.
const SEAL_SECS: f64 = 0.3;

/// What one server run measured.
#[derive(Default)]
struct Run {
    connect_s: f64,
    /// Every reader's latency for every timed change, ms.
    each: Vec<f64>,
    /// Per timed change, the last reader's, ms.
    last: Vec<f64>,
    timeouts: usize,
    /// The CPU measurement: per change, the last reader's completion (ms).
    cpu_last: Vec<f64>,
    cpu_timeouts: usize,
    cpu_s: f64,
    /// The server's user and system CPU seconds, whose sum is `cpu_s`.
    cpu_user_s: f64,
    cpu_system_s: f64,
    client_cpu_s: f64,
    client_user_s: f64,
    /// The server's write calls (write, writev) and the bytes they wrote (over TLS, records).
    writes: u64,
    wire_gb: f64,
    gb: f64,
    secs: f64,
    rss_kb: u64,
    hwm_kb: u64,
    threads: u64,
    client_rss_kb: u64,
    /// CPU of other processes and steal, % of the machine, in the latency and CPU phases.
    disturbance: [(f64, f64); 2],
    sessions: Vec<(String, usize)>,
    dropped: usize,
    drop_reason: Option<String>,
    stderr: String,
}

impl Run {
    fn json(&self, transport: &str) -> Value {
        json!({
            "transport": transport,
            "connect_s": self.connect_s,
            "latency": dist(&self.each),
            "last": dist(&self.last),
            "timeouts": self.timeouts,
            "cpu_last": dist(&self.cpu_last),
            "cpu_timeouts": self.cpu_timeouts,
            "cpu_s": self.cpu_s,
            "cpu_user_s": self.cpu_user_s,
            "cpu_system_s": self.cpu_system_s,
            "client_cpu_s": self.client_cpu_s,
            "client_user_s": self.client_user_s,
            "writes": self.writes,
            "wire_gb": self.wire_gb,
            "gb": self.gb,
            "secs": self.secs,
            "cpu_s_per_gb": self.cpu_s / self.gb,
            "client_cpu_s_per_gb": self.client_cpu_s / self.gb,
            "gb_per_s": self.gb / self.secs,
            "rss_kb": self.rss_kb,
            "hwm_kb": self.hwm_kb,
            "threads": self.threads,
            "client_rss_kb": self.client_rss_kb,
            "others_pct": [self.disturbance[0].0, self.disturbance[1].0],
            "steal_pct": [self.disturbance[0].1, self.disturbance[1].1],
            "sessions": self.sessions.iter().map(|(s, n)| json!({"session": s, "readers": n}))
                .collect::<Vec<_>>(),
            "dropped": self.dropped,
            "drop_reason": self.drop_reason,
            "stderr": self.stderr,
            "last_ms": self.last,
            "cpu_last_ms": self.cpu_last,
        })
    }
}

/// One server, in the clear or (with `tls`) over TLS: `n` readers, `changes` timed changes of
/// a 40 KB frame, then `cpu_changes` back to back of a 256 KiB one with the CPU measured.
fn measure(tls: Option<(&Certificate, Offer)>, n: usize, changes: u32, cpu_changes: u32) -> Run {
    let mut args = vec!["--poll".to_string(), POLL_MS.to_string()];
    if let Some((cert, _)) = tls {
        args.extend(cert.args());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut server = Server::start(Kind::Pushserve, &jpeg(FRAME_40K, 1), &args);
    let mut fleet = Fleet::default();
    fleet.tls = tls.map(|(cert, offer)| cert.client_config(offer));
    let me = Proc(process::id());
    let mut out = Run::default();
    let start = Instant::now();
    fleet.connect(server.addr, n);
    out.connect_s = start.elapsed().as_secs_f64();
    out.client_rss_kb = me.status("VmRSS");

    let mut jitter = Jitter(0x2545_F491_4F6C_DD1D);
    let mut id = 2;
    let others = Disturbance::start(server.proc());
    for i in 0..WARM_UP + changes {
        let frame = jpeg(FRAME_40K, id);
        thread::sleep(jitter.pause(GAP_MS.0, GAP_MS.1));
        let t0 = server.publish(&frame);
        let all = fleet.wait_id(id, CHANGE_DEADLINE);
        if i >= WARM_UP {
            out.timeouts += usize::from(!all);
            let each: Vec<f64> = fleet.each_latency(id, t0).into_iter().map(ms).collect();
            if each.len() == n {
                out.last.push(max(&each));
            }
            out.each.extend(each);
        }
        id += 1;
    }
    out.disturbance[0] = others.end(server.proc());

    // Only the id bytes change between frames: no frame building inside the timed loop.
    let mut frame = jpeg(CPU_FRAME, id);
    let mut change = |server: &mut Server, id: u32| {
        frame[14..18].copy_from_slice(&id.to_le_bytes());
        let t0 = server.publish(&frame);
        let all = fleet.wait_id(id, CHANGE_DEADLINE);
        let (_, last, missing) = fleet.latency(id, t0);
        (all, (missing == 0).then(|| ms(last)))
    };
    for _ in 0..2 {
        change(&mut server, id);
        id += 1;
    }
    let (ps, bytes0) = (server.proc(), fleet.bytes());
    let (cpu0, own0) = (ps.user_system_ticks(), me.user_system_ticks());
    let (writes0, wire0) = (ps.io("syscw"), ps.io("wchar"));
    let (start, others) = (Instant::now(), Disturbance::start(server.proc()));
    for _ in 0..cpu_changes {
        let (all, last) = change(&mut server, id);
        out.cpu_timeouts += usize::from(!all);
        out.cpu_last.extend(last);
        id += 1;
    }
    out.secs = start.elapsed().as_secs_f64();
    out.disturbance[1] = others.end(server.proc());
    let (cpu1, own1) = (ps.user_system_ticks(), me.user_system_ticks());
    let secs = |ticks: u64| ticks as f64 / clk_tck();
    out.cpu_user_s = secs(cpu1.0 - cpu0.0);
    out.cpu_system_s = secs(cpu1.1 - cpu0.1);
    out.cpu_s = out.cpu_user_s + out.cpu_system_s;
    out.client_user_s = secs(own1.0 - own0.0);
    out.client_cpu_s = out.client_user_s + secs(own1.1 - own0.1);
    out.writes = ps.io("syscw") - writes0;
    out.wire_gb = (ps.io("wchar") - wire0) as f64 / 1e9;
    out.gb = (fleet.bytes() - bytes0) as f64 / 1e9;

    out.rss_kb = server.status("VmRSS");
    out.hwm_kb = server.status("VmHWM");
    out.threads = server.status("Threads");
    out.sessions = fleet.sessions();
    (out.dropped, out.drop_reason) = fleet.dropped();
    assert!(server.alive(), "pushserve died: {}", server.stderr());
    out.stderr = server.stderr();
    out
}

/// Figure 11: 300 readers (20 quick), 200 timed changes of 40 KB (10 quick), 80 of 256 KiB
/// (10 quick), in the clear, then over TLS with each offer.
pub fn run(cfg: &Config) -> Value {
    let (n, changes, cpu_changes) = if cfg.quick {
        (20, 10, 10)
    } else {
        (N, CHANGES, CPU_CHANGES)
    };
    let seal = seal_rates(if cfg.quick { 0.05 } else { SEAL_SECS });
    log(&format!(
        "figure 11: ring alone, one core, 16 KiB records: {}",
        seal.iter()
            .map(|(name, rate)| format!("{name} {rate:.2} GB/s"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let cert = Certificate::new();
    let mut rows = Vec::new();
    let transports = [
        ("plain", None),
        ("tls", Some((&cert, Offer::Default))),
        ("tls-aes128", Some((&cert, Offer::Aes128))),
        ("tls-chacha20", Some((&cert, Offer::ChaCha20))),
    ];
    for (transport, tls) in transports {
        log(&format!(
            "figure 11: {transport}, {n} readers, {changes} changes of 40 KB, then {cpu_changes} \
             of 256 KiB back to back"
        ));
        let r = measure(tls, n, changes, cpu_changes);
        log(&format!(
            "  connected in {:.1} s; each reader: median {:.1}, p90 {:.1}, p99 {:.1}, max {:.1} \
             ms; last reader per change: median {:.1}, max {:.1} ms; {} change(s) late",
            r.connect_s,
            median(&r.each),
            percentile(&r.each, 0.9),
            percentile(&r.each, 0.99),
            max(&r.each),
            median(&r.last),
            max(&r.last),
            r.timeouts
        ));
        log(&format!(
            "  CPU: server {:.2} s (user {:.2}), clients {:.2} s (user {:.2}) for {:.2} GB in \
             {:.1} s: {:.2} and {:.2} CPU s/GB; 256 KiB to all in {:.0} ms median, {:.0} max; \
             {} change(s) late; server: {} write calls, {:.2} GB written ({:.1} KB a call)",
            r.cpu_s,
            r.cpu_user_s,
            r.client_cpu_s,
            r.client_user_s,
            r.gb,
            r.secs,
            r.cpu_s / r.gb,
            r.client_cpu_s / r.gb,
            median(&r.cpu_last),
            max(&r.cpu_last),
            r.cpu_timeouts,
            r.writes,
            r.wire_gb,
            r.wire_gb * 1e6 / r.writes as f64
        ));
        log(&format!(
            "  server RSS {} kB, peak {} kB, {} threads; bench RSS {} kB; sessions {:?}; \
             {} reader(s) dropped ({:?}); stderr {:?}; other processes {:.1} % and {:.1} % of \
             the machine in the two phases (steal {:.1} %, {:.1} %)",
            r.rss_kb,
            r.hwm_kb,
            r.threads,
            r.client_rss_kb,
            r.sessions,
            r.dropped,
            r.drop_reason,
            r.stderr.trim(),
            r.disturbance[0].0,
            r.disturbance[1].0,
            r.disturbance[0].1,
            r.disturbance[1].1
        ));
        rows.push(r.json(transport));
    }
    json!({
        "figure": 11,
        "n": n,
        "poll_ms": POLL_MS,
        "frame_bytes": FRAME_40K,
        "changes": changes,
        "warm_up": WARM_UP,
        "gap_ms": [GAP_MS.0, GAP_MS.1],
        "cpu_frame_bytes": CPU_FRAME,
        "cpu_changes": cpu_changes,
        "seal_gb_per_s": seal.iter().map(|(name, rate)| json!({"aead": name, "gb_per_s": rate}))
            .collect::<Vec<_>>(),
        "rows": rows,
    })
}

/// The plain run, and each TLS run with how its readers are described.
fn runs(fig: &Value) -> Option<(&Value, Vec<(&Value, &'static str)>)> {
    let rows = list(&fig["rows"]);
    let plain = rows.iter().find(|r| r["transport"] == "plain")?;
    let tls = rows
        .iter()
        .filter_map(|r| match r["transport"].as_str() {
            Some("tls") => Some((r, "TLS, readers offering rustls's default suites")),
            Some("tls-aes128") => Some((r, "TLS, readers offering AES-128-GCM alone")),
            Some("tls-chacha20") => Some((r, "TLS, readers offering ChaCha20-Poly1305 alone")),
            _ => None,
        })
        .collect();
    Some((plain, tls))
}

/// The suites the TLS readers negotiated, e.g. `TLSv1_3 TLS13_AES_256_GCM_SHA384`, with how
/// many had each when they differ.
fn suites(tls: &Value) -> String {
    match list(&tls["sessions"]) {
        [] => "no TLS session recorded".into(),
        [one] => one["session"].as_str().unwrap_or("?").to_string(),
        many => many
            .iter()
            .map(|s| {
                let session = s["session"].as_str().unwrap_or("?");
                format!("{session} ×{}", int(&s["readers"]))
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// ring's sealing rate for `aead`, GB/s.
fn seal(fig: &Value, aead: &str) -> f64 {
    list(&fig["seal_gb_per_s"])
        .iter()
        .find(|s| s["aead"] == aead)
        .map_or(f64::NAN, |s| num(&s["gb_per_s"]))
}

fn ratio(tls: &Value, plain: &Value, key: &str) -> f64 {
    num(&tls[key]) / num(&plain[key])
}

fn latency_ratio(tls: &Value, plain: &Value, key: &str) -> f64 {
    num(&tls["latency"][key]) / num(&plain["latency"][key])
}

/// The target, and every change delivered to every reader of the TLS run.
fn cpu_met(plain: &Value, tls: &Value) -> bool {
    let lost = int(&tls["cpu_timeouts"]) + int(&tls["timeouts"]) + int(&tls["dropped"]);
    ratio(tls, plain, "cpu_s_per_gb") <= TARGET_X && lost == 0
}

pub fn rows(fig: &Value, t: &mut Table) {
    let Some((plain, tls_runs)) = runs(fig) else {
        return;
    };
    for r in list(&fig["rows"]) {
        let stderr = r["stderr"].as_str().unwrap_or("");
        let late = int(&r["timeouts"]) + int(&r["cpu_timeouts"]);
        if late > 0 || int(&r["dropped"]) > 0 || !stderr.trim().is_empty() {
            t.note(&format!(
                "- figure 11 {}: {late} change(s) not delivered to all within \
                 {CHANGE_DEADLINE:?}, {} reader(s) dropped ({}), stderr: {:?}",
                r["transport"].as_str().unwrap_or("?"),
                int(&r["dropped"]),
                r["drop_reason"].as_str().unwrap_or("-"),
                stderr.trim()
            ));
        }
        let others: Vec<f64> = list(&r["others_pct"]).iter().map(num).collect();
        let steal: Vec<f64> = list(&r["steal_pct"]).iter().map(num).collect();
        if others.iter().chain(&steal).any(|&pct| pct > DISTURBED_PCT) {
            t.note(&format!(
                "- figure 11 {}: other processes used {:.1?} % of the machine in the latency \
                 and CPU phases (steal {:.1?} %): the run was disturbed",
                r["transport"].as_str().unwrap_or("?"),
                others,
                steal
            ));
        }
    }
    let n = int(&fig["n"]);
    let latency_cell = |r: &Value| {
        format!(
            "{} (last reader of each change: median {:.1}, max {:.1} ms; all {n} connected in \
             {:.1} s)",
            dist_cell(&r["latency"]),
            num(&r["last"]["median_ms"]),
            num(&r["last"]["max_ms"]),
            num(&r["connect_s"])
        )
    };
    let cpu_cell = |r: &Value, extra: &str| {
        let gb = num(&r["gb"]);
        format!(
            "{:.2} CPU s/GB: user {:.2}, system {:.2} ({:.2} CPU s for {gb:.2} GB at {:.2} GB/s; \
             256 KiB to all {n} in {:.0} ms median; {:.1} KB a write call); clients {:.2} CPU \
             s/GB (user {:.2}); server RSS {:.1} MB, peak {:.1} MB; bench (clients) {:.1} MB\
             {extra}",
            num(&r["cpu_s_per_gb"]),
            num(&r["cpu_user_s"]) / gb,
            num(&r["cpu_system_s"]) / gb,
            num(&r["cpu_s"]),
            num(&r["gb_per_s"]),
            num(&r["cpu_last"]["median_ms"]),
            num(&r["wire_gb"]) * 1e6 / int(&r["writes"]) as f64,
            num(&r["client_cpu_s_per_gb"]),
            num(&r["client_user_s"]) / gb,
            int(&r["rss_kb"]) as f64 / 1024.0,
            int(&r["hwm_kb"]) as f64 / 1024.0,
            int(&r["client_rss_kb"]) as f64 / 1024.0
        )
    };
    for (tls, what) in tls_runs {
        t.row(&[
            format!(
                "11. {what} against plain: fan-out latency, rename → each reader's last byte \
                 of the part, median / p90 / p99 / max of {n} × {}; pushserve column: TLS, \
                 baseline column: plain (the same binary); next change once all have the \
                 last, plus {}-{} ms",
                int(&fig["changes"]),
                int(&fig["gap_ms"][0]),
                int(&fig["gap_ms"][1])
            ),
            format!(
                "N = {n}, {} changes, {} KB, --poll {}",
                int(&fig["changes"]),
                int(&fig["frame_bytes"]) / 1000,
                int(&fig["poll_ms"])
            ),
            latency_cell(tls),
            latency_cell(plain),
            format!(
                "{:.2}x / {:.2}x / {:.2}x (median / p99 / max)",
                latency_ratio(tls, plain, "median_ms"),
                latency_ratio(tls, plain, "p99_ms"),
                latency_ratio(tls, plain, "max_ms")
            ),
            "- (reported)".into(),
            "-".into(),
        ]);
        t.row(&[
            format!(
                "11. {what} against plain: server CPU per GB sent (utime + stime over the \
                 changes, per GB of parts the readers read); the clients' CPU beside it (the \
                 bench's, on the same 2 cores)"
            ),
            format!(
                "N = {n}, {} changes of 256 KiB, each once all have the last, --poll {}; ring \
                 alone seals {:.2} GB/s a core in AES-256-GCM, {:.2} in AES-128-GCM, {:.2} in \
                 ChaCha20-Poly1305",
                int(&fig["cpu_changes"]),
                int(&fig["poll_ms"]),
                seal(fig, "AES-256-GCM"),
                seal(fig, "AES-128-GCM"),
                seal(fig, "CHACHA20-POLY1305")
            ),
            cpu_cell(tls, &format!("; {}", suites(tls))),
            cpu_cell(plain, ""),
            format!(
                "{:.2}x (clients {:.2}x)",
                ratio(tls, plain, "cpu_s_per_gb"),
                ratio(tls, plain, "client_cpu_s_per_gb")
            ),
            format!("<= {TARGET_X}x plain"),
            verdict(cpu_met(plain, tls)),
        ]);
    }
}

pub fn summary(fig: &Value) -> Vec<Summary> {
    let Some((plain, tls_runs)) = runs(fig) else {
        return Vec::new();
    };
    let n = int(&fig["n"]);
    let mut out = Vec::new();
    for (tls, _) in &tls_runs {
        out.push(Summary {
            figure: format!("11. TLS against plain, {n} readers: TLS / plain"),
            case: format!("server CPU per GB, 256 KiB frames, {}", suites(tls)),
            cell: format!(
                "{:.2} vs {:.2} CPU s/GB: {:.2}x (clients {:.2}x)",
                num(&tls["cpu_s_per_gb"]),
                num(&plain["cpu_s_per_gb"]),
                ratio(tls, plain, "cpu_s_per_gb"),
                ratio(tls, plain, "client_cpu_s_per_gb")
            ),
            target: format!("<= {TARGET_X}x"),
            verdict: verdict(cpu_met(plain, tls)),
        });
    }
    for (tls, _) in &tls_runs {
        out.push(Summary {
            figure: format!("11. TLS against plain, {n} readers: TLS / plain"),
            case: format!(
                "rename → each reader's last byte, median / p99, {} KB, `--poll {}`, {}",
                int(&fig["frame_bytes"]) / 1000,
                int(&fig["poll_ms"]),
                suites(tls)
            ),
            cell: format!(
                "{:.1} / {:.1} ms vs {:.1} / {:.1} ms: {:.2}x / {:.2}x",
                num(&tls["latency"]["median_ms"]),
                num(&tls["latency"]["p99_ms"]),
                num(&plain["latency"]["median_ms"]),
                num(&plain["latency"]["p99_ms"]),
                latency_ratio(tls, plain, "median_ms"),
                latency_ratio(tls, plain, "p99_ms")
            ),
            target: "-".into(),
            verdict: "-".into(),
        });
    }
    out
}
