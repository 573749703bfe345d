//! Fan-out benchmark: `cargo bench --bench fanout`.
//!
//! Starts the release `pushserve` on 127.0.0.1 and N raw-socket clients that parse parts, and,
//! in the same run and with the same clients, a *baseline*: this binary re-executed as
//! `--baseline-server`, a minimal process that writes the same bytes to the same N sockets with
//! no HTTP parsing and no file watching (frames come in on its stdin). Every figure is measured
//! the same way for both, so each can be read as a ratio to the physical limit of the machine.
//! Figures 6-13 measure pushserve alone (9 against itself: a relay beside its origin; 11
//! against itself: over TLS beside in the clear; 12 against itself: one input piped into
//! `pushserve -` beside others; 13 at its defaults beside `--poll-only`, and beside
//! mjpg-streamer when one is given). Latency runs from just before the atomic
//! rename (pushserve) or the write of the frame to the baseline's stdin, to the moment the
//! whole body of that part was read by the last client. The CPU that the rest of the machine used during
//! the run is printed, so a run disturbed by other work (a build, say) can be recognised.
//!
//! This file owns the command line, the environment, which figures run, the watchdog and the
//! JSON document's frame; `server.rs` the servers, `clients.rs` the clients, `tls.rs` their
//! TLS (figure 11), `measure.rs` what is read from `/proc`, `frames.rs` the frames, `figures/`
//! each figure (measured, and rendered from its JSON), `report.rs` the log, the tables' cells
//! and the JSON document, `render.rs` the markdown tables from that document. `tests/common` is
//! shared with the tests for `find`, `read_some` and `TempDir`.
//!
//! Loopback only; every wait has a deadline; children are killed on drop, and a watchdog kills
//! them and exits if the whole run takes longer than [`run_deadline`] allows for the figures.
//!
//! Environment:
//!
//! * `FANOUT_FIGURES=1,2,3,4,5` selects figures (the default; figures 6, 7 and 8 take about 4
//!   more minutes and 10,000 threads, so they run only when named, e.g. `FANOUT_FIGURES=6,7,8`;
//!   so do 9, the relay, and 10, ffmpeg piped into `pushserve -`, about 1 minute together,
//!   figure 10 skipped with a line saying so when ffmpeg is absent), and 11, TLS against plain
//!   with 300 readers, about 70 s, and 12, the CPU per byte of splitting 20 MB of each of five
//!   inputs fed to `pushserve -`, about 20 s (a build without the linear splitter: 50 s), and
//!   13, a save reaching 1 and 300 readers at the defaults (events) and with `--poll-only`, a
//!   burst of saves and 300 idle file sources, about 4 minutes (a build that only polls: 6);
//! * `FANOUT_MJPG_STREAMER=/path/to/mjpg_streamer` (its plugins in the same folder) adds
//!   mjpg-streamer to figure 13;
//! * `FANOUT_IDLE_SECS` (default 10; also figure 6's windows);
//! * `FANOUT_PUSHSERVE=/path/to/pushserve` measures another build (to compare before and after);
//! * `FANOUT_JSON=path` is where the results go (default `target/fanout/results.json`);
//! * `FANOUT_LABEL` names the build in the JSON and the summary's column (default: the commit,
//!   or with `FANOUT_PUSHSERVE` the binary's path);
//! * `FANOUT_QUICK=1` runs every figure selected at a small size (a few clients, a few changes,
//!   1 s windows): a smoke test of the bench, its JSON and its rendering, not a measurement.
//!
//! `cargo bench --bench fanout -- --render FILE...` prints the markdown tables from results
//! files (see `render.rs`) and measures nothing.

#[path = "../../tests/common/mod.rs"]
mod common;

mod clients;
mod config;
mod figures;
mod frames;
mod measure;
mod render;
mod report;
mod server;
mod tls;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{self, Command};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::config::Config;
use crate::measure::{Machine, base, clk_tck, ensure_fds, machine_ticks, own_ticks};
use crate::report::{Doc, log};
use crate::server::{BinCopy, children, pushserve_bin};

/// The watchdog's limit for figures 1-5; figures 6-13 add their own (see [`run_deadline`]).
const RUN_DEADLINE: Duration = Duration::from_secs(420);
/// Open files the bench holds at most, with room to spare: figure 6 has 5000 readers with two
/// descriptors each, figure 7 10,000 with one.
const FDS_NEEDED: u64 = 10_500;

fn main() {
    // `cargo bench` adds `--bench`; other words (a filter) are ignored, as before.
    let args: Vec<String> = env::args().skip(1).filter(|a| a != "--bench").collect();
    match args.first().map(String::as_str) {
        Some("--baseline-server") => server::baseline_server(),
        Some("--render") => {
            let mut paths: Vec<PathBuf> = args[1..].iter().map(PathBuf::from).collect();
            if paths.is_empty() {
                paths.push(results_path());
            }
            match render::files(&paths) {
                Ok(markdown) => print!("{markdown}"),
                Err(e) => {
                    eprintln!("fanout --render: {e}");
                    process::exit(1);
                }
            }
        }
        _ => run(&Config::from_env()),
    }
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
    if figures.contains(&9) {
        secs += 60.0;
    }
    if figures.contains(&10) {
        // Two runs of ffmpeg of 20 s, each with a settling time.
        secs += 90.0;
    }
    if figures.contains(&11) {
        // Four servers, each with 300 readers to connect, 203 changes and 82 more.
        secs += 120.0;
    }
    if figures.contains(&12) {
        // Up to 5 runs of 5 inputs; a build without the linear splitter takes about 30 s for
        // one run of one of them.
        secs += 120.0;
    }
    if figures.contains(&13) {
        // Every save given up, as when a build without events is measured at the defaults.
        secs += figures::changes::allowance(idle_secs);
    }
    Duration::from_secs_f64(secs)
}

/// `FANOUT_JSON`, or `fanout/results.json` in the target directory this bench was built in.
fn results_path() -> PathBuf {
    if let Some(path) = env::var_os("FANOUT_JSON") {
        return PathBuf::from(path);
    }
    let target = env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .find(|dir| dir.join("CACHEDIR.TAG").is_file())
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("fanout").join("results.json")
}

/// `git ARGS` in the source tree, trimmed; None if git fails or says nothing.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn run(cfg: &Config) {
    base();
    let ((busy0, steal0), own0) = (machine_ticks(), own_ticks());
    let _bin_copy = BinCopy;
    log(&format!("measuring {}", pushserve_bin().display()));
    let deadline = run_deadline(&cfg.figures, cfg.idle_secs);
    thread::spawn(move || {
        thread::sleep(deadline);
        eprintln!("fanout: over {deadline:?}, killing the servers and giving up");
        for pid in children().lock().unwrap().iter() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        process::exit(2);
    });
    if !cfg.quick
        && (cfg.figures.contains(&6) || cfg.figures.contains(&7))
        && let Some(soft) = ensure_fds(FDS_NEEDED)
    {
        log(&format!("raised the soft limit on open files to {soft}"));
    }

    let commit = git(&["rev-parse", "--short", "HEAD"]);
    let revision = git(&["describe", "--always", "--dirty"]).unwrap_or_default();
    let other_build = env::var("FANOUT_PUSHSERVE").ok();
    let label = env::var("FANOUT_LABEL").ok().unwrap_or_else(|| {
        other_build.clone().unwrap_or_else(|| match &commit {
            Some(c) if revision.ends_with("-dirty") => format!("{c}-dirty"),
            Some(c) => c.clone(),
            None => "unknown".into(),
        })
    });
    let mut doc = Doc::new(
        json!({
            "bench": "fanout",
            "format": 1,
            "label": label,
            "commit": commit,
            "revision": revision,
            "pushserve": other_build,
            "quick": cfg.quick,
            "figures_selected": cfg.figures,
            "idle_secs": cfg.idle_secs,
            "started_unix_s": SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            "machine": report::machine_json(&Machine::read()),
            "run": null,
            "figures": [],
        }),
        results_path(),
    );

    for figure in figures::ALL {
        if cfg.figures.contains(&figure) {
            let earlier = report::list(&doc.value["figures"]);
            let results = figures::run(figure, cfg, earlier);
            doc.add(results);
        }
    }

    let ((busy1, steal1), own1) = (machine_ticks(), own_ticks());
    let others = busy1.saturating_sub(busy0).saturating_sub(own1 - own0) as f64 / clk_tck();
    let wall = base().elapsed().as_secs_f64();
    let cores = thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
    doc.finish(json!({
        "wall_s": wall,
        "others_cpu_s": others,
        "others_pct": 100.0 * others / wall / cores,
        "steal_s": (steal1 - steal0) as f64 / clk_tck(),
    }));
    print!("{}", render::report(&doc.value));
    log(&format!(
        "results in {}; `cargo bench --bench fanout -- --render {0}` prints the tables again",
        doc.path().display()
    ));
    log("done");
}
