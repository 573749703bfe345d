//! Reporting: the log on stderr, the statistics the tables quote, the tables' cells and rows
//! that each figure writes, and the JSON document a run writes (machine, commit, each figure's
//! rows as numbers). The markdown rendered from that document alone is `render.rs`'s.
//!
//! The JSON document (`"format": 1`):
//!
//! * `label`, `commit`, `revision`, `pushserve`, `quick`, `figures_selected`, `idle_secs`,
//!   `started_unix_s`: what was measured and how;
//! * `machine`: `cores`, `cpu`, `memory_gib`, `kernel`, `clk_tck`;
//! * `run`: `wall_s`, `others_cpu_s`, `others_pct`, `steal_s` (null until the run ends);
//! * `figures`: one object per figure, `{"figure": N, ...its parameters, "rows": [...]}`, the
//!   rows as each module in `figures/` writes them (times in ms, memory in kB, CPU in % of a
//!   core or CPU seconds; a value that is not a number, such as the median of nothing or the
//!   time of a failed connection, is `null`).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::measure::{Machine, base};

pub fn log(what: &str) {
    eprintln!("[{:7.1} s] {what}", base().elapsed().as_secs_f64());
}

pub fn median(v: &[f64]) -> f64 {
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

pub fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

/// The value at or below which a share `p` of `v` lies (nearest rank).
pub fn percentile(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((p * s.len() as f64).ceil() as usize).clamp(1, s.len().max(1));
    s.get(rank - 1).copied().unwrap_or(f64::NAN)
}

/// Bytes as `1000 B` (a keep-alive round to 1000 clients) or `200.2 MB`.
pub fn size(bytes: u64) -> String {
    if bytes < 1_000_000 {
        format!("{bytes} B")
    } else {
        format!("{:.1} MB", bytes as f64 / 1e6)
    }
}

pub fn verdict(ok: bool) -> String {
    if ok { "met" } else { "**missed**" }.to_string()
}

/// `10,000`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A JSON number (`null`, which stands for NaN or infinity, as NaN).
pub fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

pub fn int(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

pub fn ints(v: &Value) -> Vec<u64> {
    list(v).iter().map(int).collect()
}

pub fn list(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

/// A markdown table row; an empty cell is written `| |`.
pub fn md_row(cells: &[String]) -> String {
    let mut row = String::from("|");
    for cell in cells {
        if cell.is_empty() {
            row.push_str(" |");
        } else {
            let _ = write!(row, " {cell} |");
        }
    }
    row.push('\n');
    row
}

/// The full table: one row per case, both servers side by side, and notes on anything unusual.
pub struct Table {
    rows: String,
    notes: String,
}

impl Table {
    pub fn new() -> Table {
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
        t
    }

    pub fn row(&mut self, cells: &[String]) {
        self.rows.push_str(&md_row(cells));
    }

    /// Adds a line (starting `- `) under Anomalies.
    pub fn note(&mut self, line: &str) {
        let _ = writeln!(self.notes, "{line}");
    }

    /// The section `## Results`: the rows, then the anomalies if there are any.
    pub fn results(&self) -> String {
        let mut out = format!("## Results\n\n{}\n", self.rows);
        if !self.notes.is_empty() {
            let _ = write!(out, "Anomalies:\n\n{}\n", self.notes);
        }
        out
    }
}

/// A row of the summary, with the cell of one build.
pub struct Summary {
    pub figure: String,
    pub case: String,
    pub cell: String,
    pub target: String,
    pub verdict: String,
}

/// The JSON document of a run, written again after each figure so that a run that fails half
/// way leaves the figures it finished.
pub struct Doc {
    pub value: Value,
    path: PathBuf,
}

impl Doc {
    pub fn new(value: Value, path: PathBuf) -> Doc {
        Doc { value, path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn add(&mut self, figure: Value) {
        if let Some(figures) = self.value["figures"].as_array_mut() {
            figures.push(figure);
        }
        self.write();
    }

    pub fn finish(&mut self, run: Value) {
        self.value["run"] = run;
        self.write();
    }

    fn write(&self) {
        if let Some(dir) = self.path.parent() {
            let _ = fs::create_dir_all(dir);
        }
        let text = serde_json::to_string_pretty(&self.value).expect("JSON") + "\n";
        if let Err(e) = fs::write(&self.path, text) {
            log(&format!("cannot write {}: {e}", self.path.display()));
        }
    }
}

pub fn machine_json(m: &Machine) -> Value {
    json!({
        "cores": m.cores,
        "cpu": m.cpu,
        "memory_gib": m.memory_gib,
        "kernel": m.kernel,
        "clk_tck": m.clk_tck,
    })
}
