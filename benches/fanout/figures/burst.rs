//! Figure 8, a burst of connections (pushserve alone): a fresh server with a 4-byte frame (SOI,
//! EOI) and 2,000 client threads released at once by one barrier, each connecting and sending
//! `GET /snapshot`. The time runs from just before its connect to the first response byte; a
//! connection that fails counts as never answered. The kernel's `TcpExt: ListenOverflows`
//! (machine-wide) is read before and after.

use std::sync::{Arc, Barrier};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::clients::{CLIENT_STACK, Got, http_get};
use crate::config::Config;
use crate::frames::TINY_JPEG;
use crate::measure::{ms, tcp_ext};
use crate::report::{Summary, Table, int, list, log, max, num, percentile, thousands, verdict};
use crate::server::{Kind, Server};

/// Connections opened at once, and the longest wait for each one's connect and for each read
/// of its response (SYNs dropped by a full backlog are sent again after 1, 3, 7 s).
const BURST: usize = 2_000;
const BURST_DEADLINE: Duration = Duration::from_secs(15);

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

/// `n` connections to a fresh server released at once, each asking for `/snapshot`.
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

/// Figure 8: 2,000 connections at once (50 quick). In the JSON a connection that failed has
/// `null` for its time, and so do the percentiles it makes infinite.
pub fn run(cfg: &Config) -> Value {
    let n = if cfg.quick { 50 } else { BURST };
    log(&format!(
        "figure 8: {n} connections at once, each GET /snapshot"
    ));
    let r = burst(n);
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
    json!({
        "figure": 8,
        "n": n,
        "frame_bytes": TINY_JPEG.len(),
        "rows": [{
            "first_byte_ms": r.first_byte,
            "p50_ms": p50,
            "p99_ms": p99,
            "max_ms": worst,
            "after_1s": after(1.0),
            "after_3s": after(3.0),
            "failed": r.failed,
            "error": r.error,
            "listen_overflows": r.overflows,
            "listen_drops": r.listen_drops,
            "secs": r.secs,
            "stderr": r.stderr,
        }],
    })
}

/// `12 ms`, or `never (failed)` for a time a failed connection made infinite (`null`).
fn ms_or_never(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.0} ms")
    } else {
        "never (failed)".into()
    }
}

fn burst_verdict(r: &Value) -> String {
    verdict(num(&r["p99_ms"]) < 1000.0)
}

pub fn rows(fig: &Value, t: &mut Table) {
    let Some(r) = list(&fig["rows"]).first() else {
        return;
    };
    let n = int(&fig["n"]);
    let stderr = r["stderr"].as_str().unwrap_or("");
    if int(&r["failed"]) > 0 || !stderr.is_empty() {
        t.note(&format!(
            "- figure 8: {} connection(s) failed ({}), stderr: {:?}",
            int(&r["failed"]),
            r["error"].as_str().unwrap_or("-"),
            stderr.trim()
        ));
    }
    t.row(&[
        format!(
            "8. burst of {n} connections at once: just before connect to the first byte of \
             /snapshot"
        ),
        format!("N = {n}, fresh server, 4-byte frame"),
        format!(
            "p50 {}, p99 {}, max {}; {} failed; ListenOverflows +{} (machine-wide)",
            ms_or_never(num(&r["p50_ms"])),
            ms_or_never(num(&r["p99_ms"])),
            ms_or_never(num(&r["max_ms"])),
            int(&r["failed"]),
            int(&r["listen_overflows"])
        ),
        "-".into(),
        "-".into(),
        "p99 < 1 s".into(),
        burst_verdict(r),
    ]);
}

pub fn summary(fig: &Value) -> Vec<Summary> {
    let Some(r) = list(&fig["rows"]).first() else {
        return Vec::new();
    };
    vec![Summary {
        figure: format!(
            "8. {} connections at once, time to the first byte of `/snapshot`",
            thousands(int(&fig["n"]))
        ),
        case: "fresh server, 4-byte frame".into(),
        cell: format!(
            "p50 {}, p99 {}, max {}; ListenOverflows +{}",
            ms_or_never(num(&r["p50_ms"])),
            ms_or_never(num(&r["p99_ms"])),
            ms_or_never(num(&r["max_ms"])),
            int(&r["listen_overflows"])
        ),
        target: "p99 < 1 s".into(),
        verdict: burst_verdict(r),
    }]
}
