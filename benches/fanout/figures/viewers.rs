//! Figure 7, 10,000 idle viewers (pushserve alone): readers of a 100 KB frame connected as the
//! other figures' readers are, but keeping no second descriptor per socket; then the server's
//! VmRSS, VmHWM and threads, and 20 `GET /status` in turn, each on a fresh connection, timed
//! from just before the connect to the last byte of the body. The VmRSS before the readers
//! connect too, so that what each costs is their growth over N. The readers hold 10,000
//! sockets, so `main` raises the soft limit on open files first (the servers inherit it).

use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::clients::{Fleet, http_get};
use crate::config::Config;
use crate::frames::{FRAME_100K, jpeg};
use crate::measure::ms;
use crate::report::{Summary, Table, int, list, log, max, median, num, thousands, verdict};
use crate::server::{Kind, Server};

/// Idle readers, and the `/status` requests timed while they are connected.
const VIEWERS: usize = 10_000;
const STATUS_REQUESTS: usize = 20;

struct Viewers {
    connect_secs: f64,
    /// Before the readers connect.
    base_rss_kb: u64,
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

/// `n` idle readers; then the server's memory and threads, and `/status` timed `requests` times.
fn viewers(n: usize, requests: usize, args: &[&str]) -> Viewers {
    // Lean, so declared before the server: dropped after it, when the killed server's sockets
    // have closed and its readers have ended.
    let mut fleet = Fleet::default();
    fleet.lean = true;
    let mut server = Server::start(Kind::Pushserve, &jpeg(FRAME_100K, 1), args);
    let base_rss_kb = server.status("VmRSS");
    let start = Instant::now();
    fleet.connect(server.addr, n);
    let connect_secs = start.elapsed().as_secs_f64();
    thread::sleep(Duration::from_secs(1));
    let mut out = Viewers {
        connect_secs,
        base_rss_kb,
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
    for _ in 0..requests {
        let why = match http_get(server.addr, "/status", Duration::from_secs(10)) {
            Ok(got) if got.head.starts_with("HTTP/1.1 200") => {
                out.status_ms.push(ms(got.whole.as_nanos() as u64));
                out.streams = serde_json::from_slice::<Value>(&got.body)
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

/// Figure 7's readers and `/status` requests.
fn sizes(cfg: &Config) -> (usize, usize) {
    if cfg.quick {
        (50, 5)
    } else {
        (VIEWERS, STATUS_REQUESTS)
    }
}

/// Figure 7: 10,000 readers (50 quick), 20 `/status` requests (5 quick).
pub fn run(cfg: &Config) -> Value {
    let (n, requests) = sizes(cfg);
    log(&format!("figure 7: {n} idle readers, 100 KB frame"));
    let r = viewers(n, requests, &["--poll", "50"]);
    log(&format!(
        "  connected in {:.1} s; RSS {} kB, peak {} kB, {} threads; /status (ms): {:.1?}; \
         it counted {:?} streams",
        r.connect_secs, r.rss_kb, r.hwm_kb, r.threads, r.status_ms, r.streams
    ));
    json!({
        "figure": 7,
        "n": n,
        "status_requests": requests,
        "frame_bytes": FRAME_100K,
        "poll_ms": 50,
        "rows": [{
            "connect_secs": r.connect_secs,
            "base_rss_kb": r.base_rss_kb,
            "rss_kb": r.rss_kb,
            "hwm_kb": r.hwm_kb,
            "threads": r.threads,
            "status_ms": r.status_ms,
            "status_median_ms": median(&r.status_ms),
            "status_max_ms": max(&r.status_ms),
            "status_failed": r.status_failed,
            "status_error": r.status_error,
            "streams": r.streams,
            "dropped": r.dropped,
            "drop_reason": r.drop_reason,
            "stderr": r.stderr,
        }],
    })
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// What each viewer added to the server's RSS, `, X KiB a viewer`; empty for a run from before
/// the bench read the RSS before the viewers connected.
fn per_viewer(r: &Value, n: u64) -> String {
    let base = int(&r["base_rss_kb"]);
    if base == 0 || n == 0 {
        return String::new();
    }
    let added = int(&r["rss_kb"]).saturating_sub(base);
    format!(", {:.2} KiB a viewer", added as f64 / n as f64)
}

fn viewers_verdict(r: &Value) -> String {
    verdict(mb(int(&r["rss_kb"])) < 160.0 && int(&r["dropped"]) == 0)
}

pub fn rows(fig: &Value, t: &mut Table) {
    let Some(r) = list(&fig["rows"]).first() else {
        return;
    };
    let (n, requests) = (int(&fig["n"]), int(&fig["status_requests"]));
    let stderr = r["stderr"].as_str().unwrap_or("");
    if int(&r["status_failed"]) > 0 || int(&r["dropped"]) > 0 || !stderr.is_empty() {
        t.note(&format!(
            "- figure 7: {} /status request(s) failed ({}), {} idle reader(s) dropped ({}), \
             stderr: {:?}",
            int(&r["status_failed"]),
            r["status_error"].as_str().unwrap_or("-"),
            int(&r["dropped"]),
            r["drop_reason"].as_str().unwrap_or("-"),
            stderr.trim()
        ));
    }
    t.row(&[
        format!(
            "7. {n} idle viewers: server memory and threads; /status median / max of \
             {requests} (each on a fresh connection, connect to whole response)"
        ),
        format!("N = {n}, 100 KB frame, --poll 50"),
        format!(
            "{:.1} MB RSS{}, peak {:.1} MB ({} threads); /status {:.1} / {:.1} ms ({} failed; \
             it counted {} streams); all connected in {:.1} s",
            mb(int(&r["rss_kb"])),
            per_viewer(r, n),
            mb(int(&r["hwm_kb"])),
            int(&r["threads"]),
            num(&r["status_median_ms"]),
            num(&r["status_max_ms"]),
            int(&r["status_failed"]),
            r["streams"].as_u64().map_or("no".into(), |s| s.to_string()),
            num(&r["connect_secs"])
        ),
        "-".into(),
        "-".into(),
        "RSS < 160 MB".into(),
        viewers_verdict(r),
    ]);
}

pub fn summary(fig: &Value) -> Vec<Summary> {
    let Some(r) = list(&fig["rows"]).first() else {
        return Vec::new();
    };
    let n = thousands(int(&fig["n"]));
    vec![Summary {
        figure: format!("7. {n} idle viewers"),
        case: format!("N = {n}, 100 KB frame"),
        cell: format!(
            "{:.1} MB RSS{} ({} threads); `/status` {:.1} / {:.1} ms median / max of {}; all \
             connected in {:.1} s",
            mb(int(&r["rss_kb"])),
            per_viewer(r, int(&fig["n"])),
            thousands(int(&r["threads"])),
            num(&r["status_median_ms"]),
            num(&r["status_max_ms"]),
            int(&fig["status_requests"]),
            num(&r["connect_secs"])
        ),
        target: "RSS < 160 MB".into(),
        verdict: viewers_verdict(r),
    }]
}
