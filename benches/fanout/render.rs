//! The markdown rendered from the JSON documents alone (see `report.rs`): a run prints its full
//! table at the end ([`report`]); `--render` prints, for one or more documents, a summary with
//! one column per build ([`summary`]), figure 3 run by run when there are several runs of it,
//! and then each document's full table ([`files`]), so that the tables in BENCHMARKS.md come
//! from the JSON. Each figure's rows are its module's in `figures/`.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

use serde_json::Value;

use crate::figures;
use crate::report::{Summary, Table, int, list, md_row, num};

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
    let _ = write!(out, "\n\n{}", t.results());
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
pub fn files(paths: &[PathBuf]) -> Result<String, String> {
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
