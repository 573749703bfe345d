//! Figures 9 and 10, two sources other than a watched file (pushserve alone, no baseline):
//!
//! * 9, relay latency: an origin watching a file (`--poll 10`, a 40 KB frame renamed over it
//!   for each change) and a relay of its `/stream` (`pushserve http://ORIGIN/stream`), with N
//!   readers on each at the same time. Each change is timed for every reader, from just before
//!   the rename to the last byte of that part's body; the next change comes once every reader
//!   of both has this one, after a random 20-50 ms pause. The relay hop is the difference of
//!   the two medians (relayed minus direct) and their ratio; change by change, the difference
//!   of the two groups' medians is also kept (the same change, so the same poll phase).
//! * 10, `ffmpeg ... -f mpjpeg -` and `ffmpeg ... -f image2pipe -` (640×480 `testsrc` at 30
//!   fps, `-re`, MJPEG `-q:v 5`) piped into `pushserve -`, with N viewers on `/stream`
//!   connected before the first frame. The bench reads ffmpeg's stdout itself, counts the
//!   JPEGs in it by walking their structure ([`JpegCount`]) and forwards every byte to
//!   pushserve's stdin, which it closes when ffmpeg ends, as a shell pipe would. Frames made
//!   (and ffmpeg's own `-progress` count), published (`/status` frame seq) and received by
//!   each viewer (parts); pushserve's CPU (utime + stime from `/proc/PID/stat`) from ffmpeg's
//!   start until the viewers have everything, and ffmpeg's over its life (read from its
//!   zombie, before it is waited for). Skipped, with a line saying so, when ffmpeg is absent.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::clients::{CHANGE_DEADLINE, Fleet, http_get};
use crate::common::Killed;
use crate::config::Config;
use crate::figures::fanout::Jitter;
use crate::frames::{FRAME_40K, jpeg};
use crate::measure::{Proc, clk_tck, ms};
use crate::report::{
    Summary, Table, int, ints, list, log, max, median, num, percentile, size, verdict,
};
use crate::server::{Kind, Server, children};

/// Figure 9: readers on the origin and as many on the relay, and the changes timed.
const RELAY_N: usize = 10;
const RELAY_CHANGES: u32 = 200;
/// Changes before the timed ones (the first change after the clients connect is the slowest).
const WARM_UP: u32 = 3;
const GAP_MS: (u64, u64) = (20, 50);
/// The target: the relay adds less than this at the median.
const HOP_TARGET_MS: f64 = 5.0;

/// Figure 10: ffmpeg's run, the viewers, the formats, the target for pushserve's CPU.
const FFMPEG_SECS: u32 = 20;
const FFMPEG_VIEWERS: usize = 10;
const FORMATS: [&str; 2] = ["mpjpeg", "image2pipe"];
const CPU_TARGET_PCT: f64 = 5.0;
const INSTALL_FFMPEG: &str = "apt-get install ffmpeg";
/// What pushserve says when stdin ends, as it should here.
const STDIN_ENDED: &str = "stdin ended; keeping the last frame";
/// How long the viewers may take to get the last frames once ffmpeg has ended.
const SETTLE_DEADLINE: Duration = Duration::from_secs(10);
/// No viewer got a part for this long: what they have is all they will get.
const SETTLE_QUIET: Duration = Duration::from_secs(1);

/// Median, p90, p99 and max of a list of times in ms.
pub fn dist(v: &[f64]) -> Value {
    json!({
        "samples": v.len(),
        "median_ms": median(v),
        "p90_ms": percentile(v, 0.90),
        "p99_ms": percentile(v, 0.99),
        "max_ms": max(v),
    })
}

pub fn dist_cell(d: &Value) -> String {
    format!(
        "{:.1} / {:.1} / {:.1} / {:.1} ms",
        num(&d["median_ms"]),
        num(&d["p90_ms"]),
        num(&d["p99_ms"]),
        num(&d["max_ms"])
    )
}

/// A server's `/status`, or null.
pub fn status(addr: SocketAddr) -> Value {
    http_get(addr, "/status", Duration::from_secs(5))
        .ok()
        .and_then(|got| serde_json::from_slice(&got.body).ok())
        .unwrap_or(Value::Null)
}

/// The sequence number of a server's current frame (how many it has published), 0 for none.
fn published(addr: SocketAddr) -> u64 {
    int(&status(addr)["frame"]["seq"])
}

/// Figure 9: N = 10 readers on the origin and 10 on the relay (2 and 2 quick), 200 changes
/// (10 quick).
pub fn relay(cfg: &Config) -> Value {
    let (n, changes) = if cfg.quick {
        (2, 10)
    } else {
        (RELAY_N, RELAY_CHANGES)
    };
    log(&format!(
        "figure 9: origin (--poll 10) and a relay of its /stream, {n} readers on each, \
         {changes} changes of a 40 KB frame"
    ));
    let mut origin = Server::start(Kind::Pushserve, &jpeg(FRAME_40K, 1), &["--poll", "10"]);
    let upstream = format!("http://{}/stream", origin.addr);
    let mut relay = Server::command(&[&upstream], Stdio::null());
    let mut direct = Fleet::default();
    direct.connect(origin.addr, n);
    let mut relayed = Fleet::default();
    relayed.connect(relay.addr, n);
    let mut jitter = Jitter(0x2545_F491_4F6C_DD1D);
    let mut id = 2;
    for _ in 0..WARM_UP {
        thread::sleep(jitter.pause(GAP_MS.0, GAP_MS.1));
        origin.publish(&jpeg(FRAME_40K, id));
        let got = direct.wait_id(id, CHANGE_DEADLINE) && relayed.wait_id(id, CHANGE_DEADLINE);
        assert!(got, "warm-up change lost");
        id += 1;
    }
    let (origin_ticks0, relay_ticks0) = (origin.proc().cpu_ticks(), relay.proc().cpu_ticks());
    let start = Instant::now();
    let (mut d, mut r, mut hops, mut timeouts) = (Vec::new(), Vec::new(), Vec::new(), 0);
    for _ in 0..changes {
        let frame = jpeg(FRAME_40K, id);
        thread::sleep(jitter.pause(GAP_MS.0, GAP_MS.1));
        let t0 = origin.publish(&frame);
        if !(direct.wait_id(id, CHANGE_DEADLINE) && relayed.wait_id(id, CHANGE_DEADLINE)) {
            timeouts += 1;
        }
        let each = |f: &Fleet| -> Vec<f64> { f.each_latency(id, t0).into_iter().map(ms).collect() };
        let (dc, rc) = (each(&direct), each(&relayed));
        if dc.len() == n && rc.len() == n {
            hops.push(median(&rc) - median(&dc));
        }
        d.extend(dc);
        r.extend(rc);
        id += 1;
    }
    let wall = start.elapsed().as_secs_f64();
    let pct = |ticks: u64| 100.0 * ticks as f64 / clk_tck() / wall;
    let origin_pct = pct(origin.proc().cpu_ticks().saturating_sub(origin_ticks0));
    let relay_pct = pct(relay.proc().cpu_ticks().saturating_sub(relay_ticks0));
    let (origin_seq, relay_seq) = (published(origin.addr), published(relay.addr));
    assert!(origin.alive(), "origin died: {}", origin.stderr());
    assert!(relay.alive(), "relay died: {}", relay.stderr());
    let (direct_dropped, direct_why) = direct.dropped();
    let (relayed_dropped, relayed_why) = relayed.dropped();
    let hop = median(&r) - median(&d);
    log(&format!(
        "  direct: median {:.1}, p90 {:.1}, p99 {:.1}, max {:.1} ms; relayed: median {:.1}, \
         p90 {:.1}, p99 {:.1}, max {:.1} ms; hop {hop:+.2} ms ({:.2}x), change by change \
         median {:+.2} ms; {timeouts} change(s) late; CPU origin {origin_pct:.1} %, relay \
         {relay_pct:.1} % of a core over {wall:.1} s; frames published: origin {origin_seq}, \
         relay {relay_seq}",
        median(&d),
        percentile(&d, 0.9),
        percentile(&d, 0.99),
        max(&d),
        median(&r),
        percentile(&r, 0.9),
        percentile(&r, 0.99),
        max(&r),
        median(&r) / median(&d),
        median(&hops),
    ));
    let row = json!({
        "n": n,
        "changes": changes,
        "direct": dist(&d),
        "relayed": dist(&r),
        "hop_ms": hop,
        "hop_ratio": median(&r) / median(&d),
        "per_change_hop": dist(&hops),
        "timeouts": timeouts,
        "wall_s": wall,
        "origin_cpu_pct": origin_pct,
        "relay_cpu_pct": relay_pct,
        "origin_published": origin_seq,
        "relay_published": relay_seq,
        "dropped": direct_dropped + relayed_dropped,
        "drop_reason": direct_why.or(relayed_why),
        "origin_stderr": origin.stderr(),
        "relay_stderr": relay.stderr(),
        "direct_ms": d,
        "relayed_ms": r,
        "per_change_hop_ms": hops,
    });
    json!({
        "figure": 9,
        "frame_bytes": FRAME_40K,
        "poll_ms": 10,
        "warm_up": WARM_UP,
        "gap_ms": [GAP_MS.0, GAP_MS.1],
        "rows": [row],
    })
}

fn relay_met(row: &Value) -> bool {
    num(&row["hop_ms"]) < HOP_TARGET_MS && int(&row["timeouts"]) == 0
}

pub fn relay_rows(fig: &Value, t: &mut Table) {
    for row in list(&fig["rows"]) {
        let stderr = format!(
            "{}{}",
            row["origin_stderr"].as_str().unwrap_or(""),
            row["relay_stderr"].as_str().unwrap_or("")
        );
        if int(&row["timeouts"]) > 0 || int(&row["dropped"]) > 0 || !stderr.trim().is_empty() {
            t.note(&format!(
                "- figure 9: {} change(s) not delivered to all within {CHANGE_DEADLINE:?}, {} \
                 reader(s) dropped ({}), stderr: {:?}",
                int(&row["timeouts"]),
                int(&row["dropped"]),
                row["drop_reason"].as_str().unwrap_or("-"),
                stderr.trim()
            ));
        }
        t.row(&[
            format!(
                "9. relay latency, rename → last byte of the part, each reader, median / p90 / \
                 p99 / max; N readers on the origin and N on a relay of its /stream at once; \
                 pushserve column: relayed, baseline column: direct (the origin); next change \
                 once all have the last, plus {}-{} ms",
                int(&fig["gap_ms"][0]),
                int(&fig["gap_ms"][1])
            ),
            format!(
                "N = {}, {} changes, {} KB, --poll {}",
                int(&row["n"]),
                int(&row["changes"]),
                int(&fig["frame_bytes"]) / 1000,
                int(&fig["poll_ms"])
            ),
            format!(
                "{} (relay CPU {:.1} % of a core; published {} of {})",
                dist_cell(&row["relayed"]),
                num(&row["relay_cpu_pct"]),
                int(&row["relay_published"]),
                int(&row["origin_published"])
            ),
            format!(
                "{} (origin CPU {:.1} % of a core)",
                dist_cell(&row["direct"]),
                num(&row["origin_cpu_pct"])
            ),
            format!(
                "hop {:+.2} ms at the median ({:.2}x; change by change {:+.2} ms)",
                num(&row["hop_ms"]),
                num(&row["hop_ratio"]),
                num(&row["per_change_hop"]["median_ms"])
            ),
            format!("relay adds < {HOP_TARGET_MS} ms at the median"),
            verdict(relay_met(row)),
        ]);
    }
}

pub fn relay_summary(fig: &Value) -> Vec<Summary> {
    list(&fig["rows"])
        .iter()
        .map(|row| Summary {
            figure: "9. relay hop: rename → each reader's last byte, direct / relayed, median \
                     / p99"
                .into(),
            case: format!(
                "N = {} + {}, {} changes of {} KB, `--poll {}`",
                int(&row["n"]),
                int(&row["n"]),
                int(&row["changes"]),
                int(&fig["frame_bytes"]) / 1000,
                int(&fig["poll_ms"])
            ),
            cell: format!(
                "{:.1} / {:.1} ms and {:.1} / {:.1} ms: {:+.2} ms, {:.2}x at the median",
                num(&row["direct"]["median_ms"]),
                num(&row["direct"]["p99_ms"]),
                num(&row["relayed"]["median_ms"]),
                num(&row["relayed"]["p99_ms"]),
                num(&row["hop_ms"]),
                num(&row["hop_ratio"])
            ),
            target: format!("< {HOP_TARGET_MS} ms added at the median"),
            verdict: verdict(relay_met(row)),
        })
        .collect()
}

/// Counts the JPEG images in a byte stream fed in pieces, by walking each one's structure:
/// SOI, marker segments by their lengths, entropy-coded data (where 0xFF is followed by 00 or
/// a restart marker) up to EOI. Bytes outside an image (multipart heads) are skipped up to the
/// next SOI.
#[derive(Default)]
struct JpegCount {
    walk: Walk,
    images: u64,
}

#[derive(Default, Clone, Copy)]
enum Walk {
    /// Outside an image, after a byte that is not 0xFF.
    #[default]
    Seek,
    /// Outside an image, after 0xFF.
    SeekFf,
    /// In the headers, where a marker starts.
    Marker,
    /// In the headers, after 0xFF.
    Code,
    /// A segment's length: its first byte is next, then its second (after `Some(high)`).
    Length { marker: u8, high: Option<u8> },
    /// In a segment's payload, with `left` bytes to go; then entropy-coded data if `scan`.
    Skip { left: usize, scan: bool },
    /// In entropy-coded data.
    Entropy,
    /// In entropy-coded data, after 0xFF.
    EntropyFf,
}

impl JpegCount {
    fn feed(&mut self, mut bytes: &[u8]) {
        while let Some((&b, rest)) = bytes.split_first() {
            // Fast paths: a payload is skipped whole, entropy-coded data up to its next 0xFF.
            match self.walk {
                Walk::Skip { left, scan } => {
                    let k = left.min(bytes.len());
                    bytes = &bytes[k..];
                    self.walk = if left > k {
                        Walk::Skip {
                            left: left - k,
                            scan,
                        }
                    } else if scan {
                        Walk::Entropy
                    } else {
                        Walk::Marker
                    };
                    continue;
                }
                Walk::Entropy => {
                    match bytes.iter().position(|&x| x == 0xFF) {
                        Some(at) => {
                            bytes = &bytes[at + 1..];
                            self.walk = Walk::EntropyFf;
                        }
                        None => bytes = &[],
                    }
                    continue;
                }
                _ => {}
            }
            bytes = rest;
            self.walk = match (self.walk, b) {
                (Walk::Seek | Walk::SeekFf, 0xFF) => Walk::SeekFf,
                (Walk::SeekFf, 0xD8) => Walk::Marker,
                (Walk::Seek | Walk::SeekFf, _) => Walk::Seek,
                (Walk::Marker, 0xFF) => Walk::Code,
                (Walk::Marker, _) => Walk::Seek,
                (Walk::Code | Walk::EntropyFf, 0xFF) => self.walk,
                (Walk::Code | Walk::EntropyFf, 0xD9) => {
                    self.images += 1;
                    Walk::Seek
                }
                (Walk::Code, 0xD8) => Walk::Marker,
                (Walk::Code, 0x01 | 0xD0..=0xD7) => Walk::Marker,
                (Walk::EntropyFf, 0x00 | 0xD0..=0xD7) => Walk::Entropy,
                (Walk::Code | Walk::EntropyFf, marker) => Walk::Length { marker, high: None },
                (Walk::Length { marker, high: None }, high) => Walk::Length {
                    marker,
                    high: Some(high),
                },
                (
                    Walk::Length {
                        marker,
                        high: Some(high),
                    },
                    low,
                ) => match usize::from(u16::from_be_bytes([high, low])) {
                    len if len < 2 => Walk::Seek,
                    len => Walk::Skip {
                        left: len - 2,
                        scan: marker == 0xDA,
                    },
                },
                (Walk::Skip { .. } | Walk::Entropy, _) => unreachable!("handled above"),
            };
        }
    }
}

/// What went through the bench on its way from ffmpeg to pushserve.
struct Forwarded {
    bytes: u64,
    images: u64,
    /// A write to pushserve's stdin that failed (the rest was still read from ffmpeg).
    error: Option<String>,
}

/// Reads `from` to its end, counting the JPEGs, and writes every byte to `to`, then closes it.
fn forward(mut from: impl Read, mut to: ChildStdin) -> Forwarded {
    let mut buf = vec![0u8; 64 * 1024];
    let mut count = JpegCount::default();
    let (mut bytes, mut error) = (0, None);
    loop {
        let got = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                error = Some(format!("reading ffmpeg: {e}"));
                break;
            }
        };
        count.feed(&buf[..got]);
        bytes += got as u64;
        if error.is_none()
            && let Err(e) = to.write_all(&buf[..got])
        {
            error = Some(format!("writing to pushserve: {e}"));
        }
    }
    Forwarded {
        bytes,
        images: count.images,
        error,
    }
}

fn ffmpeg_present() -> bool {
    Command::new("ffmpeg")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Waits until `/status` counts `n` stream clients.
fn wait_stream_clients(addr: SocketAddr, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = status(addr);
        if int(&s["clients"]["stream"]) == n as u64 {
            return;
        }
        assert!(Instant::now() < deadline, "never {n} stream clients: {s}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// The ffmpeg command of figure 10 for `format`.
fn ffmpeg_args(format: &str, secs: u32) -> Vec<String> {
    let secs = secs.to_string();
    [
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-nostats",
        "-progress",
        "pipe:2",
        "-re",
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=640x480:rate=30",
        "-t",
        &secs,
        "-c:v",
        "mjpeg",
        "-q:v",
        "5",
        "-f",
        format,
        "-",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// One row of figure 10: `ffmpeg ... -f format - | pushserve -` with `n` viewers.
fn piped(format: &str, secs: u32, n: usize) -> Value {
    log(&format!(
        "figure 10: ffmpeg -f {format} for {secs} s piped into pushserve -, {n} viewers"
    ));
    let mut server = Server::command(&["-"], Stdio::piped());
    let stdin = server.take_stdin().expect("pushserve's stdin");
    let proc = server.proc();
    let mut fleet = Fleet::default();
    fleet.open(server.addr, n);
    wait_stream_clients(server.addr, n);
    let (ticks0, start) = (proc.cpu_ticks(), Instant::now());
    let mut child = Command::new("ffmpeg")
        .args(ffmpeg_args(format, secs))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ffmpeg");
    children().lock().unwrap().push(child.id());
    let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let mut ffmpeg = Killed(child);
    let ff = Proc(ffmpeg.0.id());
    let progress = thread::spawn(move || {
        BufReader::new(err)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    let forwarded = thread::spawn(move || forward(out, stdin))
        .join()
        .expect("forwarder");
    let piped_s = start.elapsed().as_secs_f64();
    // ffmpeg has closed its stdout, so it is ending: its CPU is read from its zombie.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !matches!(ff.state(), Some('Z') | None) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    let ffmpeg_cpu_s = ff.cpu_ticks() as f64 / clk_tck();
    let exit = ffmpeg.0.wait().map_or("?".to_string(), |s| s.to_string());
    children().lock().unwrap().retain(|&p| p != ff.0);
    let lines = progress.join().expect("ffmpeg's stderr");
    let ffmpeg_frames = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("frame=")?.trim().parse::<u64>().ok());
    // What is not progress (`key=value`) is ffmpeg saying something.
    let ffmpeg_said: Vec<&String> = lines
        .iter()
        .filter(|l| l.split_once('=').is_none_or(|(k, _)| k.contains(' ')))
        .collect();
    // Until every viewer has every frame published, or none gets anything more.
    let settle = Instant::now();
    let (mut parts, mut quiet_since) = (fleet.parts(), Instant::now());
    let mut seq = published(server.addr);
    loop {
        let all = fleet
            .stats
            .iter()
            .all(|c| c.parts.load(Ordering::Relaxed) >= seq);
        if (all && seq > 0)
            || quiet_since.elapsed() >= SETTLE_QUIET
            || settle.elapsed() >= SETTLE_DEADLINE
        {
            break;
        }
        thread::sleep(Duration::from_millis(10));
        if fleet.parts() != parts {
            (parts, quiet_since) = (fleet.parts(), Instant::now());
        }
        seq = published(server.addr);
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu_s = proc.cpu_ticks().saturating_sub(ticks0) as f64 / clk_tck();
    let received: Vec<u64> = fleet
        .stats
        .iter()
        .map(|c| c.parts.load(Ordering::Relaxed))
        .collect();
    assert!(server.alive(), "pushserve died: {}", server.stderr());
    let (dropped, drop_reason) = fleet.dropped();
    let with_all = received.iter().filter(|&&p| p == forwarded.images).count();
    let (least, most) = (
        received.iter().copied().min().unwrap_or(0),
        received.iter().copied().max().unwrap_or(0),
    );
    log(&format!(
        "  ffmpeg made {} frames ({} by its own count, {} in all), pushserve published {seq}; \
         viewers got {least}-{most} ({with_all} of {n} got every frame); pushserve {:.2} CPU s \
         in {wall:.1} s ({:.2} % of a core), ffmpeg {ffmpeg_cpu_s:.2} s in {piped_s:.1} s \
         ({:.1} %)",
        forwarded.images,
        ffmpeg_frames.map_or("-".to_string(), |f| f.to_string()),
        size(forwarded.bytes),
        cpu_s,
        100.0 * cpu_s / wall,
        100.0 * ffmpeg_cpu_s / piped_s
    ));
    json!({
        "format": format,
        "frames_made": forwarded.images,
        "ffmpeg_frames": ffmpeg_frames,
        "bytes_piped": forwarded.bytes,
        "published": seq,
        "received": received,
        "viewers_with_all": with_all,
        "received_min": least,
        "received_max": most,
        "pushserve_cpu_s": cpu_s,
        "wall_s": wall,
        "pushserve_cpu_pct": 100.0 * cpu_s / wall,
        "ffmpeg_cpu_s": ffmpeg_cpu_s,
        "piped_s": piped_s,
        "ffmpeg_cpu_pct": 100.0 * ffmpeg_cpu_s / piped_s,
        "ffmpeg_exit": exit,
        "ffmpeg_said": ffmpeg_said,
        "forward_error": forwarded.error,
        "dropped": dropped,
        "drop_reason": drop_reason,
        "stderr": server.stderr(),
    })
}

/// Figure 10: 10 viewers for 20 s (3 for 3 s quick) per format.
pub fn ffmpeg(cfg: &Config) -> Value {
    let (secs, n) = if cfg.quick {
        (3, 3)
    } else {
        (FFMPEG_SECS, FFMPEG_VIEWERS)
    };
    let mut fig = json!({
        "figure": 10,
        "secs": secs,
        "viewers": n,
        "ffmpeg": format!(
            "ffmpeg -re -f lavfi -i testsrc=size=640x480:rate=30 -t {secs} -c:v mjpeg -q:v 5"
        ),
        "skipped": null,
        "rows": [],
    });
    if !ffmpeg_present() {
        let why = format!("ffmpeg not found ({INSTALL_FFMPEG})");
        log(&format!("figure 10: skipped: {why}"));
        fig["skipped"] = json!(why);
        return fig;
    }
    fig["rows"] = FORMATS.iter().map(|f| piped(f, secs, n)).collect();
    fig
}

/// (every viewer got every frame made, pushserve's CPU under the target)
fn ffmpeg_met(row: &Value) -> (bool, bool) {
    let made = int(&row["frames_made"]);
    let all = made > 0 && ints(&row["received"]).iter().all(|&p| p == made);
    (all, num(&row["pushserve_cpu_pct"]) < CPU_TARGET_PCT)
}

fn ffmpeg_verdict(row: &Value) -> String {
    match ffmpeg_met(row) {
        (frames, cpu) if frames == cpu => verdict(frames),
        (frames, cpu) => format!("frames: {}; CPU: {}", verdict(frames), verdict(cpu)),
    }
}

/// `600 of 600 frames to each of 10 viewers` or `588-600 of 600 frames (7 of 10 got all)`.
fn received_cell(row: &Value) -> String {
    let (least, most, made) = (
        int(&row["received_min"]),
        int(&row["received_max"]),
        int(&row["frames_made"]),
    );
    let n = list(&row["received"]).len();
    if least == most {
        format!("{least} of {made} frames to each of {n} viewers")
    } else {
        format!(
            "{least}-{most} of {made} frames ({} of {n} viewers got all)",
            int(&row["viewers_with_all"])
        )
    }
}

pub fn ffmpeg_rows(fig: &Value, t: &mut Table) {
    if let Some(why) = fig["skipped"].as_str() {
        t.note(&format!("- figure 10: skipped: {why}"));
        return;
    }
    for row in list(&fig["rows"]) {
        let format = row["format"].as_str().unwrap_or("?");
        let said: Vec<&str> = list(&row["ffmpeg_said"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        // The end of stdin is expected: it is said once, and the last frame stays served.
        let stderr: Vec<&str> = row["stderr"]
            .as_str()
            .unwrap_or("")
            .lines()
            .filter(|l| !l.ends_with(STDIN_ENDED) && !l.trim().is_empty())
            .collect();
        if int(&row["dropped"]) > 0 || row["forward_error"].is_string() || !said.is_empty() {
            t.note(&format!(
                "- figure 10 -f {format}: {} viewer(s) dropped ({}), forwarding: {}, ffmpeg \
                 ({}) said {said:?}",
                int(&row["dropped"]),
                row["drop_reason"].as_str().unwrap_or("-"),
                row["forward_error"].as_str().unwrap_or("ok"),
                row["ffmpeg_exit"].as_str().unwrap_or("?")
            ));
        }
        if !stderr.is_empty() {
            t.note(&format!(
                "- figure 10 -f {format}: pushserve said {:?}",
                stderr.join("\n")
            ));
        }
        let ffmpeg_frames = row["ffmpeg_frames"]
            .as_u64()
            .map_or("-".to_string(), |f| f.to_string());
        t.row(&[
            format!(
                "10. `{} -f FORMAT - \\| pushserve -`, N viewers on /stream from before the first \
                 frame: frames each viewer got, pushserve's CPU from ffmpeg's start until the \
                 viewers have all",
                fig["ffmpeg"].as_str().unwrap_or("ffmpeg")
            ),
            format!("-f {format}, N = {}", list(&row["received"]).len()),
            format!(
                "{}; {} published; {:.2} % of a core ({:.2} CPU s in {:.1} s)",
                received_cell(row),
                int(&row["published"]),
                num(&row["pushserve_cpu_pct"]),
                num(&row["pushserve_cpu_s"]),
                num(&row["wall_s"])
            ),
            format!(
                "(ffmpeg: {} frames by its count, {} piped, {:.1} % of a core)",
                ffmpeg_frames,
                size(int(&row["bytes_piped"])),
                num(&row["ffmpeg_cpu_pct"])
            ),
            format!(
                "{:.2}x ffmpeg's CPU",
                num(&row["pushserve_cpu_pct"]) / num(&row["ffmpeg_cpu_pct"])
            ),
            format!("every viewer gets every frame; CPU < {CPU_TARGET_PCT} % of a core"),
            ffmpeg_verdict(row),
        ]);
    }
}

pub fn ffmpeg_summary(fig: &Value) -> Vec<Summary> {
    let figure = format!(
        "10. `ffmpeg \\| pushserve -`: 640×480 at 30 fps for {} s, {} viewers: frames each got; \
         pushserve's CPU (ffmpeg's)",
        int(&fig["secs"]),
        int(&fig["viewers"])
    );
    let target = format!("all frames; < {CPU_TARGET_PCT} % of a core");
    if let Some(why) = fig["skipped"].as_str() {
        return vec![Summary {
            figure,
            case: "-".into(),
            cell: format!("skipped: {why}"),
            target,
            verdict: "-".into(),
        }];
    }
    list(&fig["rows"])
        .iter()
        .map(|row| Summary {
            figure: figure.clone(),
            case: format!("`-f {}`", row["format"].as_str().unwrap_or("?")),
            cell: format!(
                "{}; {:.2} % of a core ({:.1} %)",
                received_cell(row),
                num(&row["pushserve_cpu_pct"]),
                num(&row["ffmpeg_cpu_pct"])
            ),
            target: target.clone(),
            verdict: ffmpeg_verdict(row),
        })
        .collect()
}
