//! Reporting: the log on stderr, the statistics the tables quote, the JSON document a run
//! writes (machine, commit, each figure's rows as numbers) and the markdown rendered from that
//! document alone. A run prints its full table at the end ([`report`]); `--render` prints, for
//! one or more documents, a summary with one column per build ([`render`]), figure 3 run by run
//! when there are several runs of it, and then each document's full table, so that the tables
//! in BENCHMARKS.md come from the JSON.
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

use crate::figures;
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
    fn new() -> Table {
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

fn machine_line(m: &Value) -> String {
    format!(
        "{} cores ({}), {:.1} GiB memory, Linux {}, CLK_TCK {}",
        int(&m["cores"]),
        m["cpu"].as_str().unwrap_or(""),
        num(&m["memory_gib"]),
        m["kernel"].as_str().unwrap_or(""),
        num(&m["clk_tck"])
    )
}

/// A run's machine, the run itself, the full table and its anomalies, as a run prints them at
/// the end.
pub fn report(doc: &Value) -> String {
    let mut t = Table::new();
    for fig in list(&doc["figures"]) {
        figures::rows(fig, &mut t);
    }
    let mut out = format!("\n## Machine\n\n{}\n\n", machine_line(&doc["machine"]));
    let revision = doc["revision"].as_str().unwrap_or("");
    let run = &doc["run"];
    if run.is_null() {
        let _ = write!(out, "pushserve {revision}; the run did not finish");
    } else {
        let _ = write!(
            out,
            "pushserve {revision}; run took {:.0} s; CPU used meanwhile by other processes: \
             {:.1} s ({:.1} % of the machine), steal {:.1} s",
            num(&run["wall_s"]),
            num(&run["others_cpu_s"]),
            num(&run["others_pct"]),
            num(&run["steal_s"])
        );
    }
    if doc["quick"].as_bool().unwrap_or(false) {
        out.push_str(" (FANOUT_QUICK: small sizes, a smoke test, not figures)");
    }
    let _ = write!(out, "\n\n## Results\n\n{}\n", t.rows);
    if !t.notes.is_empty() {
        let _ = write!(out, "Anomalies:\n\n{}\n", t.notes);
    }
    out
}

/// The summary of one or more runs: a column per build (the documents' `label`; the figures of
/// several documents with one label are merged, a later one's replacing an earlier one's), the
/// target and the first build's verdict; the figures in the order the first build has them.
pub fn summary(docs: &[Value]) -> String {
    // (label, figures) of each build.
    let mut builds: Vec<(String, Vec<&Value>)> = Vec::new();
    for doc in docs {
        let label = doc["label"].as_str().unwrap_or("?").to_string();
        let at = match builds.iter().position(|(l, _)| *l == label) {
            Some(at) => at,
            None => {
                builds.push((label, Vec::new()));
                builds.len() - 1
            }
        };
        for fig in list(&doc["figures"]) {
            let figs = &mut builds[at].1;
            match figs.iter().position(|f| f["figure"] == fig["figure"]) {
                Some(i) => figs[i] = fig,
                None => figs.push(fig),
            }
        }
    }
    // (figure, case) in order, then each build's row for it.
    let mut keys: Vec<(u64, String)> = Vec::new();
    let mut cells: Vec<Vec<Option<Summary>>> = Vec::new();
    for (b, (_, figs)) in builds.iter().enumerate() {
        for fig in figs {
            let number = int(&fig["figure"]);
            for row in figures::summary(fig) {
                let key = (number, row.case.clone());
                let at = match keys.iter().position(|k| *k == key) {
                    Some(at) => at,
                    None => {
                        // After the figure's last row so far, or at the end.
                        let at = keys
                            .iter()
                            .rposition(|k| k.0 == number)
                            .map_or(keys.len(), |i| i + 1);
                        keys.insert(at, key);
                        cells.insert(at, (0..builds.len()).map(|_| None).collect());
                        at
                    }
                };
                cells[at][b] = Some(row);
            }
        }
    }
    let labels: Vec<&str> = builds.iter().map(|(l, _)| l.as_str()).collect();
    let mut header = vec!["figure".to_string(), "case".to_string()];
    header.extend(labels.iter().map(|l| l.to_string()));
    header.push("target".into());
    header.push(format!("verdict ({})", labels.first().unwrap_or(&"")));
    let mut out = md_row(&header);
    out.push_str(&md_row(&vec!["---".to_string(); header.len()]));
    let (mut last_figure, mut last_target) = (String::new(), String::new());
    for ((_, case), row) in keys.iter().zip(&cells) {
        let Some(first) = row.iter().flatten().next() else {
            continue;
        };
        let figure = if first.figure == last_figure {
            String::new()
        } else {
            first.figure.clone()
        };
        let target = if figure.is_empty() && first.target == last_target {
            String::new()
        } else {
            first.target.clone()
        };
        (last_figure, last_target) = (first.figure.clone(), first.target.clone());
        let mut line = vec![figure, case.clone()];
        line.extend(
            row.iter()
                .map(|s| s.as_ref().map_or("-".to_string(), |s| s.cell.clone())),
        );
        line.push(target);
        line.push(
            row[0]
                .as_ref()
                .map_or("-".to_string(), |s| s.verdict.clone()),
        );
        out.push_str(&md_row(&line));
    }
    out
}

/// `--render FILE...`: the summary of the documents, then each one's full report.
pub fn render(paths: &[PathBuf]) -> Result<String, String> {
    let mut docs = Vec::new();
    for path in paths {
        let text =
            fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let doc: Value = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
        if doc["bench"] != "fanout" {
            return Err(format!("{} is not a fanout result", path.display()));
        }
        docs.push(doc);
    }
    let mut out = format!("## Summary\n\n{}", summary(&docs));
    // Figure 3 of every run, when there are several: the builds taking turns.
    let mut idle_runs: Vec<(String, Vec<&Value>)> = Vec::new();
    for doc in &docs {
        let label = doc["label"].as_str().unwrap_or("?").to_string();
        let figs = list(&doc["figures"]).iter().filter(|f| f["figure"] == 3);
        match idle_runs.iter_mut().find(|(l, _)| *l == label) {
            Some((_, runs)) => runs.extend(figs),
            None => idle_runs.push((label, figs.collect())),
        }
    }
    if idle_runs.iter().map(|(_, runs)| runs.len()).sum::<usize>() > 1 {
        let _ = write!(
            out,
            "\n## Figure 3, run by run\n\n{}",
            figures::idle::runs_table(&idle_runs)
        );
    }
    for (path, doc) in paths.iter().zip(&docs) {
        let _ = write!(
            out,
            "\n# {} ({}, {})\n{}",
            doc["label"].as_str().unwrap_or("?"),
            doc["commit"].as_str().unwrap_or("no commit"),
            path.display(),
            report(doc)
        );
    }
    Ok(out)
}
