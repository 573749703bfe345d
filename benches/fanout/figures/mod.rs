//! The figures. Each module measures its figure(s) and returns the results as JSON (numbers,
//! see `report.rs` for the document around them), and renders its rows of the tables from that
//! JSON alone: the rows of the full table (the bench's own, one line per case, with notes on
//! anything unusual) and those of the summary (one column per build).
//!
//! | figure | module | what |
//! | --- | --- | --- |
//! | 1 | [`fanout`] | fan-out latency to the last of N readers |
//! | 2 | [`throughput`] | server CPU per GB delivered |
//! | 3 | [`idle`] | idle server CPU |
//! | 4 | [`fanout`] | server memory, 1000 readers of a 1 MB frame |
//! | 5 | [`fanout`] | stalled clients beside readers |
//! | 6 | [`churn`] | readers coming and going beside idle ones |
//! | 7 | [`viewers`] | 10,000 idle viewers: memory, `/status` |
//! | 8 | [`burst`] | 2,000 connections at once |
//! | 9 | [`sources`] | relay latency: origin → relay → reader against origin → reader |
//! | 10 | [`sources`] | `ffmpeg \| pushserve -`: frames each viewer gets, CPU |
//! | 11 | [`https`] | TLS against plain: fan-out latency, server CPU per GB |
//! | 12 | [`stdin`] | `pushserve -`: CPU per byte split, false image starts against other input |
//! | 13 | [`changes`] | a save reaching readers at the defaults: events, `--poll-only`, mjpg-streamer |

pub mod burst;
pub mod changes;
pub mod churn;
pub mod fanout;
pub mod https;
pub mod idle;
pub mod sources;
pub mod stdin;
pub mod throughput;
pub mod viewers;

use serde_json::Value;

use crate::config::Config;
use crate::report::{Summary, Table, int};

/// Every figure, in the order they run.
pub const ALL: [u32; 13] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13];

/// Measures figure `figure`; `earlier` are the figures of this run measured before it (figure
/// 13 compares itself with figure 1's).
pub fn run(figure: u32, cfg: &Config, earlier: &[Value]) -> Value {
    match figure {
        1 => fanout::latency(cfg),
        2 => throughput::run(cfg),
        3 => idle::run(cfg),
        4 => fanout::memory(cfg),
        5 => fanout::stalled(cfg),
        6 => churn::run(cfg),
        7 => viewers::run(cfg),
        8 => burst::run(cfg),
        9 => sources::relay(cfg),
        10 => sources::ffmpeg(cfg),
        11 => https::run(cfg),
        12 => stdin::run(cfg),
        13 => changes::run(cfg, earlier),
        _ => unreachable!("no figure {figure}"),
    }
}

/// Adds a figure's rows (and notes) to the full table.
pub fn rows(fig: &Value, t: &mut Table) {
    match int(&fig["figure"]) {
        1 => fanout::latency_rows(fig, t),
        2 => throughput::rows(fig, t),
        3 => idle::rows(fig, t),
        4 => fanout::memory_rows(fig, t),
        5 => fanout::stalled_rows(fig, t),
        6 => churn::rows(fig, t),
        7 => viewers::rows(fig, t),
        8 => burst::rows(fig, t),
        9 => sources::relay_rows(fig, t),
        10 => sources::ffmpeg_rows(fig, t),
        11 => https::rows(fig, t),
        12 => stdin::rows(fig, t),
        13 => changes::rows(fig, t),
        n => t.note(&format!(
            "- figure {n}: not known to this version of the bench"
        )),
    }
}

/// A figure's rows of the summary.
pub fn summary(fig: &Value) -> Vec<Summary> {
    match int(&fig["figure"]) {
        1 => fanout::latency_summary(fig),
        2 => throughput::summary(fig),
        3 => idle::summary(fig),
        4 => fanout::memory_summary(fig),
        5 => fanout::stalled_summary(fig),
        6 => churn::summary(fig),
        7 => viewers::summary(fig),
        8 => burst::summary(fig),
        9 => sources::relay_summary(fig),
        10 => sources::ffmpeg_summary(fig),
        11 => https::summary(fig),
        12 => stdin::summary(fig),
        13 => changes::summary(fig),
        _ => Vec::new(),
    }
}
