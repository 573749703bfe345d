//! Figure 12, what splitting stdin costs per byte: 20 MB of each of four inputs piped into
//! `pushserve -` (a fresh server for each run, no viewers), and pushserve's CPU (utime + stime
//! from `/proc/PID/stat`) from the first byte written until it says `stdin ended` on stderr;
//! then the first of them from a file:
//!
//! * (a) `FF D8 FF 00` over and over: each is the start of a JPEG and none is one, the worst
//!   case for splitting concatenated images;
//! * (b) random bytes, which read as text (their first byte is none that starts an image or a
//!   multipart stream);
//! * (c) `FF D8 FF` then random bytes: the image path, over bytes that are no image;
//! * (d) a real JPEG (`tests/fixtures/noise1.jpg`) repeated, a frame published per copy;
//! * (e) (a) from a file (`pushserve - < FILE`, the process's whole life counted), which is
//!   read 256 KiB at a time where a pipe gives 64 KiB: a splitter whose cost per byte grows
//!   with what it holds costs more here.
//!
//! A run of the cheaper inputs takes a few ticks of CPU (10 ms each), so each input is fed
//! again, into a fresh server, until its runs add up to [`ENOUGH_CPU`] or [`MAX_RUNS`]; the
//! CPU per byte is over all its runs. The target: (a) costs at most [`WITHIN_X`] times each
//! other input of the image path, (c) and (d), per byte, as the splitter's time is linear in its
//! input; (b), which the text tail reads and the splitter never sees, and (e) are shown beside.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{TempDir, fixture};
use crate::config::Config;
use crate::figures::sources::status;
use crate::measure::clk_tck;
use crate::report::{Summary, Table, int, list, log, num, size, verdict};
use crate::server::Server;

const INPUT_BYTES: usize = 20_000_000;
const QUICK_INPUT_BYTES: usize = 2_000_000;
/// Runs of an input add up to at least this much CPU, or stop at [`MAX_RUNS`].
const ENOUGH_CPU: Duration = Duration::from_millis(500);
const MAX_RUNS: usize = 5;
/// The target: false starts cost at most this many times each other input of the image path,
/// per byte.
const WITHIN_X: f64 = 10.0;
/// How long one run may take to end: the build before the linear splitter took about 20 s
/// for (a).
const END_DEADLINE: Duration = Duration::from_secs(120);
/// What pushserve says when stdin ends, with or without a frame to show.
const STDIN_ENDED: &str = "stdin ended";
/// What pushserve says, once, of bytes that are not an image on the image path.
const SKIPPING: &str = "skipping to the next image";

/// The inputs, in the order they run: (letter, what).
const INPUTS: [(&str, &str); 5] = [
    ("a", "`FF D8 FF 00` repeated (false JPEG starts)"),
    ("b", "random bytes (read as text)"),
    ("c", "`FF D8 FF` + random bytes (the image path)"),
    ("d", "a real JPEG (noise1.jpg, 40 KB) repeated"),
    (
        "e",
        "(a) from a file, `pushserve - < FILE` (reads of 256 KiB, a pipe's are 64 KiB)",
    ),
];
/// The input that is redirected from a file rather than piped.
const REDIRECTED: &str = "e";

/// `len` pseudo-random bytes (xorshift64, the same for a given seed).
fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Input `letter`, about `len` bytes (whole copies of the JPEG for (d)).
fn input(letter: &str, len: usize) -> Vec<u8> {
    match letter {
        "a" | "e" => [0xFF, 0xD8, 0xFF, 0x00].repeat(len / 4),
        "b" => {
            let text = random(len, 0x2545_F491_4F6C_DD1D);
            // Not `-` (multipart), 0xFF (JPEG) or 0x89 (PNG): stdin must be read as text.
            assert!(
                !matches!(text[0], b'-' | 0xFF | 0x89),
                "random input would not read as text"
            );
            text
        }
        "c" => {
            let mut image = vec![0xFF, 0xD8, 0xFF];
            image.extend(random(len - 3, 0x9E37_79B9_7F4A_7C15));
            image
        }
        "d" => {
            let jpeg = fixture("noise1.jpg");
            jpeg.repeat(len / jpeg.len())
        }
        _ => unreachable!("no input {letter}"),
    }
}

/// What one run measured.
struct Run {
    ticks: u64,
    wall_s: f64,
    /// It said `stdin ended` within [`END_DEADLINE`].
    ended: bool,
    status: Value,
    stderr: String,
    write_error: Option<String>,
}

/// How a run's input reaches pushserve's stdin.
enum Feed<'a> {
    /// Written into a pipe by the bench, as a shell pipe would, and closed at the end.
    Piped(&'a Arc<Vec<u8>>),
    /// A file given as stdin (`pushserve - < FILE`), read from as soon as pushserve starts.
    Redirected(&'a Path),
}

/// One run: the input fed to a fresh `pushserve -` until it says `stdin ended`.
fn feed(input: &Feed) -> Run {
    let spawned = Instant::now();
    let stdin = match input {
        Feed::Piped(_) => Stdio::piped(),
        Feed::Redirected(path) => Stdio::from(File::open(path).expect("open the input")),
    };
    let mut server = Server::command(&["-"], stdin);
    let proc = server.proc();
    // A redirected file is read before the URL is printed: the whole life is counted.
    let (mut ticks0, mut start, mut writer) = (0, spawned, None);
    if let Feed::Piped(bytes) = input {
        let mut stdin = server.take_stdin().expect("pushserve's stdin");
        let bytes = Arc::clone(bytes);
        (ticks0, start) = (proc.cpu_ticks(), Instant::now());
        writer = Some(thread::spawn(move || {
            stdin.write_all(&bytes).err().map(|e| e.to_string())
        }));
    }
    let ended = loop {
        if server.stderr().contains(STDIN_ENDED) {
            break true;
        }
        if start.elapsed() >= END_DEADLINE || !server.alive() {
            break false;
        }
        thread::sleep(Duration::from_millis(2));
    };
    let (ticks, wall_s) = (
        proc.cpu_ticks().saturating_sub(ticks0),
        start.elapsed().as_secs_f64(),
    );
    let status = if ended {
        status(server.addr)
    } else {
        Value::Null
    };
    let stderr = server.stderr();
    // Killing the server ends a write still blocked on a full pipe.
    drop(server);
    let write_error = writer.and_then(|w| w.join().expect("writer"));
    Run {
        ticks,
        wall_s,
        ended,
        status,
        stderr,
        write_error,
    }
}

/// Every run of one input: until [`ENOUGH_CPU`], [`MAX_RUNS`] or one that did not end.
fn measure(letter: &str, what: &str, len: usize, max_runs: usize) -> Value {
    let bytes = Arc::new(input(letter, len));
    log(&format!(
        "figure 12 ({letter}): {what}, {} into pushserve -",
        size(bytes.len() as u64)
    ));
    let dir = TempDir::new("stdin");
    let file = dir.path("input");
    let how = if letter == REDIRECTED {
        fs::write(&file, bytes.as_slice()).expect("write the input");
        Feed::Redirected(&file)
    } else {
        Feed::Piped(&bytes)
    };
    let enough = (ENOUGH_CPU.as_secs_f64() * clk_tck()) as u64;
    let mut runs: Vec<Run> = Vec::new();
    while runs.len() < max_runs && runs.iter().map(|r| r.ticks).sum::<u64>() < enough {
        let run = feed(&how);
        let ended = run.ended;
        runs.push(run);
        if !ended {
            break;
        }
    }
    let ticks: u64 = runs.iter().map(|r| r.ticks).sum();
    let fed = (bytes.len() * runs.len()) as f64;
    let cpu_s = ticks as f64 / clk_tck();
    let last = runs.last().expect("a run");
    let ended = runs.iter().all(|r| r.ended);
    log(&format!(
        "  {cpu_s:.2} CPU s in {} run(s) ({} ticks each): {:.2} ns/B; {} published ({}){}",
        runs.len(),
        runs.iter()
            .map(|r| r.ticks.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        cpu_s * 1e9 / fed,
        int(&last.status["frame"]["seq"]),
        last.status["frame"]["type"].as_str().unwrap_or("no frame"),
        if ended {
            String::new()
        } else {
            format!("; did not end within {END_DEADLINE:?}")
        }
    ));
    json!({
        "input": letter,
        "what": what,
        "bytes": bytes.len(),
        "runs": runs.len(),
        "ticks": runs.iter().map(|r| r.ticks).collect::<Vec<_>>(),
        "wall_s": runs.iter().map(|r| r.wall_s).collect::<Vec<_>>(),
        "cpu_s": cpu_s,
        "ns_per_byte": cpu_s * 1e9 / fed,
        "ended": ended,
        "published": int(&last.status["frame"]["seq"]),
        "type": last.status["frame"]["type"],
        "stderr": last.stderr,
        "write_error": runs.iter().find_map(|r| r.write_error.clone()),
    })
}

/// Figure 12: 20 MB of each input (2 MB, one run, quick).
pub fn run(cfg: &Config) -> Value {
    let (len, max_runs) = if cfg.quick {
        (QUICK_INPUT_BYTES, 1)
    } else {
        (INPUT_BYTES, MAX_RUNS)
    };
    json!({
        "figure": 12,
        "input_bytes": len,
        "max_runs": max_runs,
        "enough_cpu_s": ENOUGH_CPU.as_secs_f64(),
        "clk_tck": clk_tck(),
        "rows": INPUTS
            .iter()
            .map(|(letter, what)| measure(letter, what, len, max_runs))
            .collect::<Vec<_>>(),
    })
}

/// CPU ns per byte, for a ratio: runs that read 0 ticks count as 1, the resolution.
fn per_byte_at_least_a_tick(fig: &Value, row: &Value) -> f64 {
    let tck = num(&fig["clk_tck"]);
    let ticks = (num(&row["cpu_s"]) * tck).round().max(1.0);
    ticks / tck * 1e9 / (int(&row["bytes"]) * int(&row["runs"])) as f64
}

/// (a)'s CPU per byte over each of (b)-(d)'s, as (letter, ratio).
fn ratios(fig: &Value) -> Vec<(String, f64)> {
    let rows = list(&fig["rows"]);
    let Some(a) = rows.iter().find(|r| r["input"] == "a") else {
        return Vec::new();
    };
    rows.iter()
        .filter(|r| matches!(r["input"].as_str(), Some("b" | "c" | "d")))
        .map(|r| {
            (
                r["input"].as_str().unwrap_or("?").to_string(),
                num(&a["ns_per_byte"]) / per_byte_at_least_a_tick(fig, r),
            )
        })
        .collect()
}

/// (e)'s CPU per byte over (a)'s: what reads of 256 KiB cost beside those of 64 KiB.
fn redirected_over_piped(fig: &Value, row: &Value) -> f64 {
    let a = list(&fig["rows"]).iter().find(|r| r["input"] == "a");
    num(&row["ns_per_byte"]) / a.map_or(f64::NAN, |a| per_byte_at_least_a_tick(fig, a))
}

fn met(fig: &Value) -> bool {
    let ratios = ratios(fig);
    let ended = list(&fig["rows"])
        .iter()
        .all(|r| r["ended"].as_bool() == Some(true));
    let mut image_path = ratios.iter().filter(|(letter, _)| letter != "b").peekable();
    ended && image_path.peek().is_some() && image_path.all(|(_, x)| *x <= WITHIN_X)
}

fn ratios_cell(fig: &Value) -> String {
    ratios(fig)
        .iter()
        .map(|(letter, x)| format!("({letter}) {x:.1}x"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `12.34 ns/B`, or `< 0.10 ns/B` when the runs read 0 ticks.
fn per_byte_cell(fig: &Value, row: &Value) -> String {
    if num(&row["cpu_s"]) > 0.0 {
        format!("{:.2} ns/B", num(&row["ns_per_byte"]))
    } else {
        format!("< {:.2} ns/B", per_byte_at_least_a_tick(fig, row))
    }
}

fn target() -> String {
    format!("(a) within {WITHIN_X}x of (c) and (d) per byte")
}

pub fn rows(fig: &Value, t: &mut Table) {
    let figure = format!(
        "12. stdin split: pushserve's CPU per byte of its stdin (`pushserve -`) until it says \
         `stdin ended`, {} of each input, a fresh server per run, runs until they add up to {} \
         CPU s, at most {} (CPU in ticks of 1/{} s)",
        size(int(&fig["input_bytes"])),
        num(&fig["enough_cpu_s"]),
        int(&fig["max_runs"]),
        num(&fig["clk_tck"])
    );
    for (i, row) in list(&fig["rows"]).iter().enumerate() {
        let letter = row["input"].as_str().unwrap_or("?");
        // What pushserve says of these inputs is expected; anything else is noted.
        let said: Vec<&str> = row["stderr"]
            .as_str()
            .unwrap_or("")
            .lines()
            .filter(|l| !l.contains(STDIN_ENDED) && !l.contains(SKIPPING) && !l.trim().is_empty())
            .collect();
        if row["ended"].as_bool() != Some(true)
            || row["write_error"].is_string()
            || !said.is_empty()
        {
            t.note(&format!(
                "- figure 12 ({letter}): ended: {}, writing: {}, pushserve said {:?}",
                row["ended"],
                row["write_error"].as_str().unwrap_or("ok"),
                said.join("\n")
            ));
        }
        let (is_a, ratio) = match letter {
            "a" => (true, format!("(a) / {}", ratios_cell(fig))),
            REDIRECTED => (
                false,
                format!("(e) / (a) {:.1}x", redirected_over_piped(fig, row)),
            ),
            _ => (false, String::new()),
        };
        let walls: Vec<String> = list(&row["wall_s"])
            .iter()
            .map(|w| format!("{:.2}", num(w)))
            .collect();
        t.row(&[
            if i == 0 {
                figure.clone()
            } else {
                String::new()
            },
            format!("({letter}) {}", row["what"].as_str().unwrap_or("?")),
            format!(
                "{}: {:.2} CPU s for {} in {} run(s) (ticks {}; {} s each{}); {} frame(s) \
                 published ({})",
                per_byte_cell(fig, row),
                num(&row["cpu_s"]),
                size(int(&row["bytes"]) * int(&row["runs"])),
                int(&row["runs"]),
                list(&row["ticks"])
                    .iter()
                    .map(|t| int(t).to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                walls.join(", "),
                if letter == REDIRECTED {
                    " from the start, which waits up to 1 s for a first frame"
                } else {
                    ""
                },
                int(&row["published"]),
                row["type"].as_str().unwrap_or("none")
            ),
            "-".into(),
            ratio,
            if is_a { target() } else { String::new() },
            if is_a {
                verdict(met(fig))
            } else {
                String::new()
            },
        ]);
    }
}

pub fn summary(fig: &Value) -> Vec<Summary> {
    let figure = format!(
        "12. stdin split: pushserve's CPU per byte, {} into `pushserve -`",
        size(int(&fig["input_bytes"]))
    );
    list(&fig["rows"])
        .iter()
        .map(|row| {
            let letter = row["input"].as_str().unwrap_or("?");
            let is_a = letter == "a";
            let mut cell = format!(
                "{} ({:.2} CPU s per run)",
                per_byte_cell(fig, row),
                num(&row["cpu_s"]) / int(&row["runs"]).max(1) as f64
            );
            let target = match letter {
                "a" => {
                    cell.push_str(&format!("; (a) / {}", ratios_cell(fig)));
                    target()
                }
                REDIRECTED => {
                    let x = redirected_over_piped(fig, row);
                    cell.push_str(&format!("; (e) / (a) {x:.1}x"));
                    "(beside (a))".into()
                }
                _ => "(reference)".into(),
            };
            if row["ended"].as_bool() != Some(true) {
                cell.push_str(&format!("; did not end within {END_DEADLINE:?}"));
            }
            Summary {
                figure: figure.clone(),
                case: format!("({letter}) {}", row["what"].as_str().unwrap_or("?")),
                cell,
                target,
                verdict: if is_a { verdict(met(fig)) } else { "-".into() },
            }
        })
        .collect()
}
