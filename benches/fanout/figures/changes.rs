//! Figure 13, a change to a watched file reaching its readers at the defaults (no `--poll`):
//! pushserve as it starts by default (change events, the poll a safety net), pushserve with
//! `--poll-only` (the poll alone), and mjpg-streamer when `FANOUT_MJPG_STREAMER` names its
//! binary (input_file watching the file's folder, output_http serving it). A 100 KB frame
//! (figure 1's), readers as figure 1's (reader framing, the change id in a COM segment), each
//! keeping every change it sees and when its body was complete.
//!
//! * Latency: N = 1 and 300 readers; saves (a) atomic, a temp file renamed over the file, timed
//!   from just before the rename, and (b) in place, the file opened truncated, written whole
//!   and closed, timed from just before the close. 3 warm-up saves, then S; each waits until
//!   every reader has it or a give-up passes (300 ms where the server has events, the poll +
//!   500 ms where it polls), then a random pause: 0-50 ms, or where the server polls 0 to a
//!   poll, since a wait that ends when a poll finds the save would otherwise put every next
//!   save just after a poll (a whole poll's latency each time, not a random phase). Each
//!   reader's time of each version it got, the last reader's of each save, the versions each
//!   reader got, and those that came after the give-up.
//! * Nothing lost: 300 readers, 200 atomic saves exactly 10 ms apart, not waiting for anyone,
//!   then up to 2 s for the last to arrive: the versions each reader got, and whether all got
//!   the last one.
//! * Idle: 300 file sources (`fNNN=PATH`, 10 folders of 30) and a reader on each one's
//!   `/NAME/stream`; the server's CPU over `FANOUT_IDLE_SECS` measured as figure 3's, its
//!   threads and VmRSS; at the defaults and with `--poll-only`.
//!
//! A build without `--poll-only` (it only polls) skips those cases with a line saying so; to
//! measure it polling, give it through a wrapper that drops the flag.

use std::env;
use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::clients::{Fleet, Wire};
use crate::common::TempDir;
use crate::config::Config;
use crate::figures::fanout::Jitter;
use crate::figures::idle::measure_idle;
use crate::figures::sources::{dist, dist_cell};
use crate::frames::{FRAME_100K, jpeg};
use crate::measure::ms;
use crate::report::{Summary, Table, int, list, log, max, median, num, percentile, verdict};
use crate::server::{Kind, Server, pushserve_bin};

/// pushserve's `--poll` when none is given.
const DEFAULT_POLL_MS: u64 = 1000;
/// How long a save waits for every reader where the server has events, and beyond the poll
/// where it polls.
const EVENTS_GIVE_UP_MS: u64 = 300;
const POLL_GIVE_UP_MARGIN_MS: u64 = 500;
const WARM_UP: u32 = 3;
const PAUSE_MS: (u64, u64) = (0, 50);
const POLL_PAUSE_MS: (u64, u64) = (0, DEFAULT_POLL_MS);
const READERS: [usize; 2] = [1, 300];
/// Saves per case: where a save waits about half a poll, fewer.
const SAVES_EVENTS: u32 = 200;
const SAVES_POLLING: u32 = 40;
const BURST_READERS: usize = 300;
const BURST_SAVES: u32 = 200;
const BURST_EVERY: Duration = Duration::from_millis(10);
const BURST_SETTLE: Duration = Duration::from_secs(2);
const IDLE_FOLDERS: usize = 10;
const IDLE_PER_FOLDER: usize = 30;
/// mjpg-streamer's listen backlog is 10: readers connect this many at a time.
const MJPG_CONNECT_BATCH: usize = 10;
/// The targets: one reader, with events; 300 readers against figure 1's fan-out.
const ONE_MEDIAN_MS: f64 = 5.0;
const ONE_P99_MS: f64 = 20.0;
const FANOUT_WITHIN_MS: f64 = 10.0;

/// The server of a case.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Setup {
    /// pushserve at the defaults: change events, the poll a safety net.
    Events,
    /// pushserve `--poll-only`.
    PollOnly,
    MjpgStreamer,
}

impl Setup {
    fn name(self) -> &'static str {
        match self {
            Setup::Events => "events",
            Setup::PollOnly => "poll-only",
            Setup::MjpgStreamer => "mjpg-streamer",
        }
    }

    fn from_name(name: &str) -> Option<Setup> {
        [Setup::Events, Setup::PollOnly, Setup::MjpgStreamer]
            .into_iter()
            .find(|s| s.name() == name)
    }

    fn label(self) -> &'static str {
        match self {
            Setup::Events => "pushserve at the defaults (events)",
            Setup::PollOnly => "pushserve --poll-only",
            Setup::MjpgStreamer => "mjpg-streamer (input_file, output_http)",
        }
    }

    fn give_up(self) -> Duration {
        Duration::from_millis(match self {
            Setup::PollOnly => DEFAULT_POLL_MS + POLL_GIVE_UP_MARGIN_MS,
            Setup::Events | Setup::MjpgStreamer => EVENTS_GIVE_UP_MS,
        })
    }

    /// The random pause after a save's wait.
    fn pause_ms(self) -> (u64, u64) {
        match self {
            Setup::PollOnly => POLL_PAUSE_MS,
            Setup::Events | Setup::MjpgStreamer => PAUSE_MS,
        }
    }

    fn saves(self, quick: bool) -> u32 {
        match (quick, self) {
            (true, _) => 3,
            (false, Setup::PollOnly) => SAVES_POLLING,
            (false, _) => SAVES_EVENTS,
        }
    }

    /// Starts the server on a file holding `first`.
    fn start(self, first: &[u8], mjpg: Option<&PathBuf>) -> Server {
        match self {
            Setup::Events => Server::start(Kind::Pushserve, first, &[]),
            Setup::PollOnly => Server::start(Kind::Pushserve, first, &["--poll-only"]),
            Setup::MjpgStreamer => Server::mjpg_streamer(mjpg.expect("mjpg-streamer"), first),
        }
    }

    /// Connects `n` readers that keep every change they see.
    fn readers(self, server: &Server, n: usize) -> Fleet {
        let mut fleet = Fleet::default();
        fleet.record = true;
        if self == Setup::MjpgStreamer {
            fleet.wire = Wire::MjpgStreamer;
            fleet.path = Some("/?action=stream".into());
            // It sends nothing before the next change; each reader is a thread of its own.
            let threads0 = server.status("Threads");
            let held = || server.status("Threads").saturating_sub(threads0) as usize;
            fleet.connect_unserved(server.addr, n, MJPG_CONNECT_BATCH, held);
        } else {
            fleet.connect(server.addr, n);
        }
        fleet
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Save {
    Atomic,
    InPlace,
}

impl Save {
    fn name(self) -> &'static str {
        match self {
            Save::Atomic => "atomic",
            Save::InPlace => "in-place",
        }
    }

    /// Saves `frame`; returns the time just before the rename or the close.
    fn save(self, server: &mut Server, frame: &[u8]) -> u64 {
        match self {
            Save::Atomic => server.publish(frame),
            Save::InPlace => server.rewrite(frame),
        }
    }
}

/// Whether the build measured takes `--poll-only`: a build without it refuses it, as an
/// unknown argument, before it would print its version.
fn takes_poll_only() -> bool {
    Command::new(pushserve_bin())
        .args(["--poll-only", "--version"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `FANOUT_MJPG_STREAMER`, if set.
fn mjpg_streamer() -> Option<PathBuf> {
    env::var_os("FANOUT_MJPG_STREAMER").map(PathBuf::from)
}

/// What the watchdog allows for figure 13 at full size, in seconds: every save given up.
pub fn allowance(idle_secs: f64) -> f64 {
    let setups = if mjpg_streamer().is_some() { 3 } else { 2 };
    let mut secs = 0.0;
    for setup in [Setup::Events, Setup::PollOnly, Setup::MjpgStreamer]
        .into_iter()
        .take(setups)
    {
        let per_save = (setup.give_up().as_millis() as u64 + setup.pause_ms().1) as f64 / 1e3;
        let cases = (READERS.len() * 2) as f64;
        secs += cases * (f64::from(WARM_UP + setup.saves(false)) * per_save + 20.0);
        secs += 3.0 * BURST_SETTLE.as_secs_f64() + 20.0;
    }
    secs + 2.0 * (idle_secs + 40.0)
}

/// Each reader's (id, completion) of the changes from `first` on.
fn histories(fleet: &Fleet, first: u32) -> Vec<Vec<(u32, u64)>> {
    fleet
        .stats
        .iter()
        .map(|c| {
            let seen = c.history.lock().unwrap();
            seen.iter()
                .copied()
                .filter(|&(id, _)| id >= first)
                .collect()
        })
        .collect()
}

/// The median of counts.
fn median_count(counts: &[usize]) -> f64 {
    median(&counts.iter().map(|&c| c as f64).collect::<Vec<_>>())
}

/// One latency case: `n` readers of `setup`, saves of kind `save`.
fn latency(setup: Setup, save: Save, n: usize, cfg: &Config, mjpg: Option<&PathBuf>) -> Value {
    let (warm_up, saves) = (if cfg.quick { 1 } else { WARM_UP }, setup.saves(cfg.quick));
    let (give_up, pause) = (setup.give_up(), setup.pause_ms());
    log(&format!(
        "figure 13: {}, N = {n}, {} saves, {warm_up} + {saves}, give-up {give_up:?}",
        setup.label(),
        save.name()
    ));
    let mut server = setup.start(&jpeg(FRAME_100K, 1), mjpg);
    let fleet = setup.readers(&server, n);
    let mut jitter = Jitter(0x2545_F491_4F6C_DD1D ^ n as u64);
    let (mut id, mut warm_up_lost) = (2, 0);
    for _ in 0..warm_up {
        save.save(&mut server, &jpeg(FRAME_100K, id));
        if !fleet.wait_id(id, give_up) {
            warm_up_lost += 1;
        }
        thread::sleep(jitter.pause(pause.0, pause.1));
        id += 1;
    }
    let first = id;
    let (mut t0s, mut given_up) = (Vec::new(), 0);
    for _ in 0..saves {
        let frame = jpeg(FRAME_100K, id);
        t0s.push(save.save(&mut server, &frame));
        if !fleet.wait_id(id, give_up) {
            given_up += 1;
        }
        thread::sleep(jitter.pause(pause.0, pause.1));
        id += 1;
    }
    // The last save gets as long as the others for a late arrival.
    thread::sleep(give_up);
    let seen = histories(&fleet, first);
    let (mut each, mut late, mut last_reader) = (Vec::new(), 0, Vec::new());
    for (k, &t0) in t0s.iter().enumerate() {
        let id = first + k as u32;
        let times: Vec<f64> = seen
            .iter()
            .filter_map(|h| h.iter().find(|&&(i, _)| i == id))
            .map(|&(_, done)| ms(done.saturating_sub(t0)))
            .collect();
        late += times
            .iter()
            .filter(|&&t| t > give_up.as_secs_f64() * 1e3)
            .count();
        if times.len() == n {
            last_reader.push(max(&times));
        }
        each.extend(times);
    }
    let got: Vec<usize> = seen
        .iter()
        .map(|h| h.iter().filter(|&&(i, _)| i < first + saves).count())
        .collect();
    let (dropped, drop_reason) = fleet.dropped();
    assert!(server.alive(), "{} died: {}", setup.name(), server.stderr());
    let row = json!({
        "server": setup.name(),
        "save": save.name(),
        "n": n,
        "saves": saves,
        "warm_up": warm_up,
        "give_up_ms": give_up.as_secs_f64() * 1e3,
        "pause_ms": [pause.0, pause.1],
        "latency": dist(&each),
        "last_reader": {
            "saves": last_reader.len(),
            "median_ms": median(&last_reader),
            "p99_ms": percentile(&last_reader, 0.99),
        },
        "got_min": got.iter().min().copied().unwrap_or(0),
        "got_median": median_count(&got),
        "late": late,
        "given_up": given_up,
        "warm_up_lost": warm_up_lost,
        "dropped": dropped,
        "drop_reason": drop_reason,
        "stderr": server.stderr(),
    });
    log(&format!(
        "  each reader: {}; last reader median {:.1} ms; got {} (min) / {} (median) of {saves}, \
         {late} late; {given_up} save(s) given up",
        dist_cell(&row["latency"]),
        median(&last_reader),
        row["got_min"],
        row["got_median"]
    ));
    row
}

/// The burst: `n` readers, `saves` atomic saves [`BURST_EVERY`] apart.
fn burst(setup: Setup, n: usize, saves: u32, mjpg: Option<&PathBuf>) -> Value {
    log(&format!(
        "figure 13: {}, N = {n}, {saves} atomic saves {BURST_EVERY:?} apart",
        setup.label()
    ));
    let mut server = setup.start(&jpeg(FRAME_100K, 1), mjpg);
    let fleet = setup.readers(&server, n);
    // A change that every reader gets first, so that mjpg-streamer's have had a part too.
    server.publish(&jpeg(FRAME_100K, 2));
    let warm = fleet.wait_id(2, setup.give_up());
    let first = 3;
    let frames: Vec<Vec<u8>> = (first..first + saves)
        .map(|id| jpeg(FRAME_100K, id))
        .collect();
    let start = Instant::now();
    let mut behind = Duration::ZERO;
    for (k, frame) in frames.iter().enumerate() {
        let at = start + BURST_EVERY * k as u32;
        match at.checked_duration_since(Instant::now()) {
            Some(wait) => thread::sleep(wait),
            None => behind = behind.max(at.elapsed()),
        }
        server.publish(frame);
    }
    let last = first + saves - 1;
    let all_last = fleet.wait_id(last, BURST_SETTLE);
    let seen = histories(&fleet, first);
    let got: Vec<usize> = seen.iter().map(Vec::len).collect();
    let with_last = seen
        .iter()
        .filter(|h| h.iter().any(|&(i, _)| i == last))
        .count();
    let (dropped, drop_reason) = fleet.dropped();
    assert!(server.alive(), "{} died: {}", setup.name(), server.stderr());
    let row = json!({
        "server": setup.name(),
        "n": n,
        "saves": saves,
        "every_ms": BURST_EVERY.as_secs_f64() * 1e3,
        "behind_max_ms": behind.as_secs_f64() * 1e3,
        "warm_up_reached_all": warm,
        "got_min": got.iter().min().copied().unwrap_or(0),
        "got_median": median_count(&got),
        "with_last": with_last,
        "all_got_last": all_last && with_last == n,
        "dropped": dropped,
        "drop_reason": drop_reason,
        "stderr": server.stderr(),
    });
    log(&format!(
        "  per reader {} (min) / {} (median) of {saves}; {with_last} of {n} got the last; \
         saves up to {:.1} ms behind schedule",
        row["got_min"],
        row["got_median"],
        behind.as_secs_f64() * 1e3
    ));
    row
}

/// Idle: `folders` × `per_folder` file sources, a reader on each, over `secs`.
fn idle(poll_only: bool, folders: usize, per_folder: usize, secs: f64) -> Value {
    let root = TempDir::new("sources");
    let mut args = Vec::new();
    let mut names = Vec::new();
    for folder in 0..folders {
        let dir = root.path(&format!("d{folder:02}"));
        fs::create_dir_all(&dir).expect("create source folder");
        for i in 0..per_folder {
            let name = format!("f{:03}", folder * per_folder + i + 1);
            let path = dir.join(format!("{name}.jpg"));
            fs::write(&path, jpeg(FRAME_100K, 1)).expect("write source");
            args.push(format!("{name}={}", path.display()));
            names.push(name);
        }
    }
    if poll_only {
        args.push("--poll-only".into());
    }
    let sources = names.len();
    log(&format!(
        "figure 13: idle, {sources} file sources, a reader on each, {}, {secs} s",
        if poll_only {
            "--poll-only"
        } else {
            "the defaults"
        }
    ));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::command(&args, Stdio::null());
    let mut fleet = Fleet::default();
    for name in &names {
        fleet.path = Some(format!("/{name}/stream"));
        fleet.connect(server.addr, 1);
    }
    let r = measure_idle(&server, &fleet, secs);
    let (threads, rss_kb) = (server.status("Threads"), server.status("VmRSS"));
    let (dropped, drop_reason) = fleet.dropped();
    log(&format!(
        "  {:.2} % of a core ({:.1} % from ticks); {threads} threads, VmRSS {rss_kb} kB",
        r.cpu_pct, r.ticks_pct
    ));
    json!({
        "server": if poll_only { Setup::PollOnly } else { Setup::Events }.name(),
        "sources": sources,
        "folders": folders,
        "secs": secs,
        "idle": r.json(),
        "threads": threads,
        "rss_kb": rss_kb,
        "dropped": dropped,
        "drop_reason": drop_reason,
        "stderr": server.stderr(),
    })
}

/// Figure 1's fan-out at its largest N, from the figures that ran before this one.
fn figure1(earlier: &[Value]) -> Value {
    earlier
        .iter()
        .find(|f| int(&f["figure"]) == 1)
        .and_then(|f| list(&f["rows"]).last())
        .map_or(Value::Null, |row| {
            json!({
                "n": row["n"],
                "last_median_ms": row["pushserve"]["last_median_ms"],
                "poll_ms": 10,
            })
        })
}

/// Figure 13: N = 1 and 300 (1 and 4 quick), S saves each; the burst with 300 readers and 200
/// saves (4 and 20 quick); 300 idle sources (6 quick).
pub fn run(cfg: &Config, earlier: &[Value]) -> Value {
    let ns: &[usize] = if cfg.quick { &[1, 4] } else { &READERS };
    let (burst_n, burst_saves) = if cfg.quick {
        (4, 20)
    } else {
        (BURST_READERS, BURST_SAVES)
    };
    let (folders, per_folder) = if cfg.quick {
        (2, 3)
    } else {
        (IDLE_FOLDERS, IDLE_PER_FOLDER)
    };
    let poll_only = takes_poll_only();
    let mjpg = mjpg_streamer().filter(|path| {
        let ok = path.is_file();
        if !ok {
            log(&format!(
                "figure 13: FANOUT_MJPG_STREAMER={} is not a file; mjpg-streamer skipped",
                path.display()
            ));
        }
        ok
    });
    let mut setups = vec![Setup::Events];
    if poll_only {
        setups.push(Setup::PollOnly);
    } else {
        log("figure 13: this build has no --poll-only; its cases are skipped");
    }
    if mjpg.is_some() {
        setups.push(Setup::MjpgStreamer);
    }
    let (mut rows, mut bursts, mut idles) = (Vec::new(), Vec::new(), Vec::new());
    for &setup in &setups {
        for &n in ns {
            for save in [Save::Atomic, Save::InPlace] {
                rows.push(latency(setup, save, n, cfg, mjpg.as_ref()));
            }
        }
        bursts.push(burst(setup, burst_n, burst_saves, mjpg.as_ref()));
    }
    for with_poll_only in [false, true] {
        if !with_poll_only || poll_only {
            idles.push(idle(with_poll_only, folders, per_folder, cfg.idle_secs));
        }
    }
    let fig = json!({
        "figure": 13,
        "frame_bytes": FRAME_100K,
        "poll_ms": DEFAULT_POLL_MS,
        "poll_only_taken": poll_only,
        "mjpg_streamer": mjpg.map(|p| p.display().to_string()),
        "figure1": figure1(earlier),
        "rows": rows,
        "bursts": bursts,
        "idle": idles,
    });
    for line in target_lines(&fig) {
        log(&format!("figure 13 target: {line}"));
    }
    fig
}

/// A latency row of `server`, `save` kind, `n` readers.
fn find(fig: &Value, server: Setup, save: Save, n: Option<u64>) -> Option<&Value> {
    list(&fig["rows"]).iter().find(|r| {
        r["server"] == server.name()
            && r["save"] == save.name()
            && n.is_none_or(|n| int(&r["n"]) == n)
    })
}

/// The largest N of the latency rows.
fn many(fig: &Value) -> u64 {
    list(&fig["rows"])
        .iter()
        .map(|r| int(&r["n"]))
        .max()
        .unwrap_or(0)
}

/// One reader with events: median and p99 within the target, and no save lost.
fn one_met(row: &Value) -> bool {
    num(&row["latency"]["median_ms"]) <= ONE_MEDIAN_MS
        && num(&row["latency"]["p99_ms"]) <= ONE_P99_MS
        && int(&row["got_min"]) == int(&row["saves"])
}

/// N readers with events against figure 1: None when figure 1 did not run.
fn fanout_met(fig: &Value, row: &Value) -> Option<bool> {
    let reference = num(&fig["figure1"]["last_median_ms"]);
    (!reference.is_nan())
        .then(|| num(&row["last_reader"]["median_ms"]) <= reference + FANOUT_WITHIN_MS)
}

/// The target lines, each with its verdict.
fn target_lines(fig: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    for save in [Save::Atomic, Save::InPlace] {
        if let Some(row) = find(fig, Setup::Events, save, Some(1)) {
            lines.push(format!(
                "1 reader, events, {} save: median {:.1} ms (<= {ONE_MEDIAN_MS}), p99 {:.1} ms \
                 (<= {ONE_P99_MS}), {} of {} delivered: {}",
                save.name(),
                num(&row["latency"]["median_ms"]),
                num(&row["latency"]["p99_ms"]),
                int(&row["got_min"]),
                int(&row["saves"]),
                verdict(one_met(row))
            ));
        }
        let n = many(fig);
        if let Some(row) = find(fig, Setup::Events, save, Some(n)).filter(|_| n > 1) {
            let f1 = &fig["figure1"];
            lines.push(match fanout_met(fig, row) {
                Some(met) => format!(
                    "{n} readers, events, {} save: last reader median {:.1} ms, within \
                     {FANOUT_WITHIN_MS} ms of figure 1's fan-out to {} ({:.1} ms, --poll 10): {}",
                    save.name(),
                    num(&row["last_reader"]["median_ms"]),
                    int(&f1["n"]),
                    num(&f1["last_median_ms"]),
                    verdict(met)
                ),
                None => format!(
                    "{n} readers, events, {} save: last reader median {:.1} ms; against figure \
                     1's fan-out: run with FANOUT_FIGURES=1,13",
                    save.name(),
                    num(&row["last_reader"]["median_ms"])
                ),
            });
        }
    }
    lines
}

/// mjpg-streamer's banner on stderr, which it prints each start.
fn banner(line: &str) -> bool {
    line.starts_with("MJPG Streamer Version")
        || line.starts_with(" i: ")
        || line.starts_with(" o: ")
}

fn note_run(t: &mut Table, what: &str, r: &Value) {
    let stderr: Vec<&str> = r["stderr"]
        .as_str()
        .unwrap_or("")
        .lines()
        .filter(|l| !l.trim().is_empty() && !banner(l))
        .collect();
    let stderr = stderr.join("\n");
    if int(&r["dropped"]) > 0 || !stderr.is_empty() {
        t.note(&format!(
            "- figure 13 {what}: {} reader(s) dropped ({}), stderr: {:?}",
            int(&r["dropped"]),
            r["drop_reason"].as_str().unwrap_or("-"),
            stderr
        ));
    }
}

/// A latency row's cell: each reader's times, the last reader's, the versions delivered.
fn latency_cell(row: &Value) -> String {
    let last = if int(&row["n"]) > 1 {
        format!(
            "; last reader of each save {:.1} / {:.1} ms (median / p99 of {})",
            num(&row["last_reader"]["median_ms"]),
            num(&row["last_reader"]["p99_ms"]),
            int(&row["last_reader"]["saves"])
        )
    } else {
        String::new()
    };
    format!(
        "{}{last}; got {} / {} of {} (min / median of readers), {} late",
        dist_cell(&row["latency"]),
        int(&row["got_min"]),
        num(&row["got_median"]),
        int(&row["saves"]),
        int(&row["late"])
    )
}

/// The target and verdict cells of a latency row.
fn latency_judged(fig: &Value, row: &Value) -> (String, String) {
    let setup = row["server"].as_str().and_then(Setup::from_name);
    let n = int(&row["n"]);
    if setup != Some(Setup::Events) {
        return ("-".into(), "(reference)".into());
    }
    if n == 1 {
        return (
            format!("median <= {ONE_MEDIAN_MS} ms, p99 <= {ONE_P99_MS} ms, none lost"),
            verdict(one_met(row)),
        );
    }
    let f1 = &fig["figure1"];
    match fanout_met(fig, row) {
        Some(met) => (
            format!(
                "last reader's median within {FANOUT_WITHIN_MS} ms of figure 1's to {} \
                 ({:.1} ms)",
                int(&f1["n"]),
                num(&f1["last_median_ms"])
            ),
            verdict(met),
        ),
        None => (
            format!("last reader's median within {FANOUT_WITHIN_MS} ms of figure 1's"),
            "run with FANOUT_FIGURES=1,13".into(),
        ),
    }
}

fn burst_cell(b: &Value) -> String {
    let saves = int(&b["saves"]) as f64;
    format!(
        "got {:.1} % / {:.1} % of {} (min / median of readers); {} of {} got the last{}",
        100.0 * int(&b["got_min"]) as f64 / saves,
        100.0 * num(&b["got_median"]) / saves,
        int(&b["saves"]),
        int(&b["with_last"]),
        int(&b["n"]),
        if b["all_got_last"].as_bool() == Some(true) {
            ""
        } else {
            " (**not all**)"
        }
    )
}

fn idle_cell(r: &Value) -> String {
    format!(
        "{:.2} % of a core ({:.1} % from ticks); {} threads, VmRSS {:.1} MB",
        num(&r["idle"]["cpu_pct"]),
        num(&r["idle"]["ticks_pct"]),
        int(&r["threads"]),
        int(&r["rss_kb"]) as f64 / 1024.0
    )
}

pub fn rows(fig: &Value, t: &mut Table) {
    if fig["poll_only_taken"].as_bool() == Some(false) {
        t.note(
            "- figure 13: the build has no --poll-only, so its cases were skipped (give it \
             through a wrapper that drops the flag to measure it polling)",
        );
    }
    for row in list(&fig["rows"]) {
        let (server, save, n) = (
            row["server"].as_str().unwrap_or("?"),
            row["save"].as_str().unwrap_or("?"),
            int(&row["n"]),
        );
        note_run(t, &format!("{server} {save} N={n}"), row);
        if int(&row["warm_up_lost"]) > 0 {
            t.note(&format!(
                "- figure 13 {server} {save} N={n}: {} warm-up save(s) not to all in time",
                int(&row["warm_up_lost"])
            ));
        }
        let (target, judged) = latency_judged(fig, row);
        let label = row["server"]
            .as_str()
            .and_then(Setup::from_name)
            .map_or(server, |s| s.label());
        t.row(&[
            "13. save → each reader's last byte of that version, median / p90 / p99 / max over \
             readers × saves delivered (the pushserve column: the server of the case)"
                .into(),
            format!(
                "{label}, N = {n}, {save} save, {} saves, each waiting for all or {:.0} ms, then \
                 {}-{} ms{}",
                int(&row["saves"]),
                num(&row["give_up_ms"]),
                int(&row["pause_ms"][0]),
                int(&row["pause_ms"][1]),
                if server == Setup::PollOnly.name() {
                    " (each save waits about a poll in all: fewer saves)"
                } else {
                    ""
                }
            ),
            latency_cell(row),
            "-".into(),
            format!("{} given up", int(&row["given_up"])),
            target,
            judged,
        ]);
    }
    for b in list(&fig["bursts"]) {
        let server = b["server"].as_str().unwrap_or("?");
        note_run(t, &format!("burst {server}"), b);
        t.row(&[
            format!(
                "13. nothing lost: {} atomic saves exactly {} ms apart, then up to {:.0} s; \
                 versions each reader got",
                int(&b["saves"]),
                num(&b["every_ms"]),
                BURST_SETTLE.as_secs_f64()
            ),
            format!(
                "{}, N = {}{}",
                Setup::from_name(server).map_or(server, |s| s.label()),
                int(&b["n"]),
                if server == Setup::PollOnly.name() {
                    " (latest wins each poll: ~2 of 200 expected)"
                } else {
                    ""
                }
            ),
            burst_cell(b),
            "-".into(),
            format!("saves up to {:.1} ms late", num(&b["behind_max_ms"])),
            "every reader gets the last".into(),
            if server == Setup::Events.name() {
                verdict(b["all_got_last"].as_bool() == Some(true))
            } else {
                "(reference)".into()
            },
        ]);
    }
    for r in list(&fig["idle"]) {
        let server = r["server"].as_str().unwrap_or("?");
        note_run(t, &format!("idle {server}"), r);
        t.row(&[
            format!(
                "13. idle: server CPU over {} s (schedstat, as figure 3), threads, VmRSS",
                num(&r["secs"])
            ),
            format!(
                "{} file sources in {} folders, a reader on each, {}",
                int(&r["sources"]),
                int(&r["folders"]),
                Setup::from_name(server).map_or(server, |s| s.label())
            ),
            idle_cell(r),
            "-".into(),
            "-".into(),
            "-".into(),
            "(diagnostic)".into(),
        ]);
    }
}

/// A summary cell: the defaults', then the other servers' in parentheses, if any ran.
fn beside_others(cell: String, others: String) -> String {
    if others.is_empty() {
        cell
    } else {
        format!("{cell} ({others})")
    }
}

pub fn summary(fig: &Value) -> Vec<Summary> {
    let mut out = Vec::new();
    // The events cell, with the others' beside it.
    let beside = |save: Save, n: u64, cell: &dyn Fn(&Value) -> String| -> String {
        [Setup::PollOnly, Setup::MjpgStreamer]
            .into_iter()
            .filter_map(|s| {
                find(fig, s, save, Some(n)).map(|r| format!("{}: {}", s.name(), cell(r)))
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let short = |r: &Value| {
        format!(
            "{:.1} / {:.1} ms, got {} of {}",
            num(&r["latency"]["median_ms"]),
            num(&r["latency"]["p99_ms"]),
            int(&r["got_min"]),
            int(&r["saves"])
        )
    };
    let fanned = |r: &Value| {
        format!(
            "{:.1} / {:.1} ms, got {} of {}",
            num(&r["last_reader"]["median_ms"]),
            num(&r["last_reader"]["p99_ms"]),
            int(&r["got_min"]),
            int(&r["saves"])
        )
    };
    for save in [Save::Atomic, Save::InPlace] {
        if let Some(row) = find(fig, Setup::Events, save, Some(1)) {
            let (target, judged) = latency_judged(fig, row);
            out.push(Summary {
                figure: "13. save → reader at the defaults, median / p99; versions got (min of \
                         readers)"
                    .into(),
                case: format!("1 reader, {} save", save.name()),
                cell: beside_others(short(row), beside(save, 1, &short)),
                target,
                verdict: judged,
            });
        }
        let n = many(fig);
        if let Some(row) = find(fig, Setup::Events, save, Some(n)).filter(|_| n > 1) {
            let (target, judged) = latency_judged(fig, row);
            out.push(Summary {
                figure: "13. save → last reader at the defaults, median / p99 of saves".into(),
                case: format!("{n} readers, {} save", save.name()),
                cell: beside_others(fanned(row), beside(save, n, &fanned)),
                target,
                verdict: judged,
            });
        }
    }
    let bursts = list(&fig["bursts"]);
    if let Some(b) = bursts.iter().find(|b| b["server"] == Setup::Events.name()) {
        let others: Vec<String> = bursts
            .iter()
            .filter(|o| o["server"] != Setup::Events.name())
            .map(|o| {
                format!(
                    "{}: {:.1} %",
                    o["server"].as_str().unwrap_or("?"),
                    100.0 * num(&o["got_median"]) / int(&o["saves"]) as f64
                )
            })
            .collect();
        out.push(Summary {
            figure: "13. nothing lost: versions each reader got".into(),
            case: format!(
                "{} readers, {} atomic saves {} ms apart",
                int(&b["n"]),
                int(&b["saves"]),
                num(&b["every_ms"])
            ),
            cell: beside_others(burst_cell(b), others.join("; ")),
            target: "every reader gets the last".into(),
            verdict: verdict(b["all_got_last"].as_bool() == Some(true)),
        });
    }
    let idle = list(&fig["idle"]);
    if let Some(r) = idle.first() {
        out.push(Summary {
            figure: "13. idle file sources, a reader on each".into(),
            case: format!("{} sources, {} s", int(&r["sources"]), num(&r["secs"])),
            cell: idle
                .iter()
                .map(|r| format!("{}: {}", r["server"].as_str().unwrap_or("?"), idle_cell(r)))
                .collect::<Vec<_>>()
                .join("; "),
            target: "-".into(),
            verdict: "(diagnostic)".into(),
        });
    }
    out
}
