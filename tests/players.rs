//! The client matrix: each player, library and browser people point at a stream, run for
//! real, with what it *shows* observed (the pixels on Chromium's screen, the frames a player
//! decodes, the bytes a tool writes), through one scenario:
//!
//! * the first frame on connect, then three changes (saved by rename, rewritten in place),
//!   then a 25 s quiet spell and a change after it, each shown within [`SHOWN_WITHIN`];
//! * a slideshow of JPEGs, a PNG and a text file, of which each client shows the parts it can
//!   show, and keeps showing the last of them through the others.
//!
//! A client that is not installed is skipped with a line on the terminal (see
//! `common::client_present`).

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::browser::{Browser, OtherOrigin, chromium_present};
use common::{DEADLINE, Killed, TestServer, find, fixture, tool};

/// How soon a change must be on screen: the tool's promise, not a speed measurement (the
/// latencies seen here are printed, and are tens of milliseconds).
const SHOWN_WITHIN: Duration = Duration::from_secs(1);

/// How long the scenario leaves the file alone: past the keep-alive (10 s), past
/// GStreamer's 15 s read timeout and past the 20 s repeat.
const QUIET_SPELL: Duration = Duration::from_secs(25);

/// What a client shows: one of the fixtures' colours, the text slide, or something else
/// (nothing, a blank or broken image).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Shown {
    Red,
    Green,
    Blue,
    Text,
    Other,
}

use Shown::{Blue, Green, Other, Red, Text};

/// A solid colour of the fixtures, with room for JPEG's loss (green.jpg is CSS green, #008000).
fn colour([r, g, b]: [u8; 3]) -> Shown {
    match (r, g, b) {
        (200.., ..60, ..60) => Red,
        (..60, 100.., ..60) => Green,
        (..60, ..60, 200..) => Blue,
        _ => Other,
    }
}

/// A running client, observed.
trait Player {
    /// What it has shown since the last call, each with when it was seen: every frame it
    /// decoded or wrote, or, for a browser, what is on screen now if that differs from before.
    fn look(&mut self) -> Vec<(Instant, Shown)>;
}

/// A client process whose stdout is read by a thread that tells what each frame shows.
struct Piped {
    _child: Killed,
    seen: Arc<Mutex<Vec<(Instant, Shown)>>>,
}

impl Piped {
    /// Starts `command` with its stdout handed to `watch`, which records what it shows.
    fn start(
        mut command: Command,
        watch: fn(Box<dyn Read + Send>, &dyn Fn(Shown)),
    ) -> Box<dyn Player> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the client");
        let stdout = Box::new(child.stdout.take().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        thread::spawn(move || {
            watch(stdout, &|shown| {
                sink.lock().unwrap().push((Instant::now(), shown));
            });
        });
        Box::new(Piped {
            _child: Killed(child),
            seen,
        })
    }
}

impl Player for Piped {
    fn look(&mut self) -> Vec<(Instant, Shown)> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// Decoded frames scaled to one pixel, as 4 bytes of RGBx each.
fn rgbx_frames(mut out: Box<dyn Read + Send>, shown: &dyn Fn(Shown)) {
    let mut rgbx = [0u8; 4];
    while out.read_exact(&mut rgbx).is_ok() {
        shown(colour([rgbx[0], rgbx[1], rgbx[2]]));
    }
}

/// One line per decoded frame: `R G B`.
fn rgb_lines(out: Box<dyn Read + Send>, shown: &dyn Fn(Shown)) {
    for line in BufReader::new(out).lines().map_while(Result::ok) {
        let rgb: Vec<u8> = line.split(' ').filter_map(|c| c.parse().ok()).collect();
        shown(rgb.try_into().map_or(Other, colour));
    }
}

/// The bytes a tool writes (curl, or ffmpeg copying the stream): each fixture, or the text
/// slide, as it appears in them.
fn written_bytes(mut out: Box<dyn Read + Send>, shown: &dyn Fn(Shown)) {
    let known = [
        (fixture("red.jpg"), Red),
        (fixture("green.jpg"), Green),
        (fixture("blue.jpg"), Blue),
        (fixture("red.png"), Red),
        (CAPTION.to_vec(), Text),
    ];
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    while let Ok(n @ 1..) = out.read(&mut chunk) {
        buf.extend_from_slice(&chunk[..n]);
        // The earliest complete fixture first; what precedes it is done with.
        while let Some((at, len, what)) = known
            .iter()
            .filter_map(|(bytes, what)| find(&buf, bytes).map(|at| (at, bytes.len(), *what)))
            .min_by_key(|(at, ..)| *at)
        {
            shown(what);
            buf.drain(..at + len);
        }
    }
}

fn curl(url: &str) -> Option<Box<dyn Player>> {
    let mut curl = tool("curl", "apt-get install curl")?;
    curl.args(["-sN", &format!("{url}stream")]);
    Some(Piped::start(curl, written_bytes))
}

/// ffmpeg copying the stream to its output, as the guide's recording recipe does; `input` is
/// `-f mpjpeg`, or nothing to let it probe.
fn ffmpeg(url: &str, input: &[&str]) -> Option<Box<dyn Player>> {
    let mut ffmpeg = tool("ffmpeg", "apt-get install ffmpeg")?;
    ffmpeg
        .args(["-nostdin", "-v", "error"])
        .args(input)
        .args(["-i", &format!("{url}stream")])
        .args(["-c", "copy", "-f", "mjpeg", "-flush_packets", "1", "pipe:1"]);
    Some(Piped::start(ffmpeg, written_bytes))
}

/// GStreamer's `souphttpsrc ! multipartdemux ! jpegdec`, each decoded frame scaled to a pixel.
fn gstreamer(url: &str) -> Option<Box<dyn Player>> {
    let mut gst = tool(
        "gst-launch-1.0",
        "apt-get install gstreamer1.0-tools gstreamer1.0-plugins-good",
    )?;
    gst.args([
        "-q",
        "souphttpsrc",
        &format!("location={url}stream"),
        "!",
        "multipartdemux",
        "!",
        "jpegdec",
        "!",
        "videoconvert",
        "!",
        "videoscale",
        "!",
        "video/x-raw,format=RGBx,width=1,height=1",
        "!",
        "fdsink",
        "fd=1",
        "sync=false",
    ]);
    Some(Piped::start(gst, rgbx_frames))
}

/// OpenCV's `VideoCapture`, the mean colour of each frame it reads.
const OPENCV_SHOWS: &str = r#"
import sys, cv2
cap = cv2.VideoCapture(sys.argv[1])
while True:
    ok, image = cap.read()
    if not ok:
        break
    b, g, r = image.mean(axis=(0, 1))[:3]
    print(int(r), int(g), int(b), flush=True)
"#;

fn opencv(url: &str) -> Option<Box<dyn Player>> {
    let mut python = common::python_with_opencv()?;
    python.args(["-c", OPENCV_SHOWS, &format!("{url}stream")]);
    Some(Piped::start(python, rgb_lines))
}

/// mpv with its default settings, writing each frame it shows, scaled to one pixel, as a PNG.
struct Mpv {
    _child: Killed,
    frames: common::TempDir,
    /// The number of the next frame file, from 1.
    next: u32,
}

fn mpv(url: &str) -> Option<Box<dyn Player>> {
    let mut mpv = tool("mpv", "apt-get install mpv")?;
    let frames = common::TempDir::new("mpv-frames");
    let child = mpv
        .args([
            "--no-config",
            "--really-quiet",
            "--vo=image",
            "--vo-image-format=png",
        ])
        // Stored, not deflated: the pixel can be read straight from the file.
        .args([
            "--vo-image-png-compression=0",
            "--vf=scale=w=1:h=1,format=rgb24",
        ])
        .arg(format!("--vo-image-outdir={}", frames.0.display()))
        .arg(format!("{url}stream"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mpv");
    Some(Box::new(Mpv {
        _child: Killed(child),
        frames,
        next: 1,
    }))
}

/// The pixel of a 1x1 RGB PNG whose image data is stored uncompressed: after `IDAT`, the
/// zlib header (2 bytes), the stored block's header (5), the row's filter byte (1), whichever
/// filter it is, since a first pixel has no neighbours to predict from.
fn stored_png_pixel(png: &[u8]) -> Option<[u8; 3]> {
    let data = find(png, b"IDAT")? + 4;
    png.get(data + 8..data + 11)?.try_into().ok()
}

impl Player for Mpv {
    fn look(&mut self) -> Vec<(Instant, Shown)> {
        let mut shown = Vec::new();
        loop {
            let path = self.frames.path(&format!("{:08}.png", self.next));
            match std::fs::read(&path) {
                // Complete once its last chunk is there.
                Ok(png) if png.ends_with(b"IEND\xae\x42\x60\x82") => {
                    shown.push((Instant::now(), stored_png_pixel(&png).map_or(Other, colour)));
                    self.next += 1;
                }
                _ => return shown,
            }
        }
    }
}

/// VLC, writing each frame it shows to a YUV4MPEG2 file; as `nobody` when the tests run as
/// root, which VLC refuses. `--network-caching=100`: with its default of a second, VLC shows
/// each change about 1.1 s after it (see docs/GUIDE.md).
struct Vlc {
    _child: Killed,
    out: common::TempDir,
    /// Frames of the file already looked at.
    frames_seen: usize,
}

fn vlc(url: &str) -> Option<Box<dyn Player>> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    tool("cvlc", "apt-get install vlc-bin vlc-plugin-base")?;
    let out = common::TempDir::new("vlc");
    std::fs::set_permissions(&out.0, std::fs::Permissions::from_mode(0o777)).unwrap();
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    let mut command = if root {
        let mut setpriv = Command::new("setpriv");
        setpriv.args(["--reuid=65534", "--regid=65534", "--clear-groups", "env"]);
        setpriv.arg(format!("HOME={}", out.0.display())).arg("cvlc");
        setpriv
    } else {
        Command::new("cvlc")
    };
    let child = command
        .args([
            "-q",
            "--network-caching=100",
            "-V",
            "yuv",
            "--yuv-chroma",
            "I420",
        ])
        .arg(format!("--yuv-file={}", out.path("shown.y4m").display()))
        .arg(format!("{url}stream"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start VLC");
    Some(Box::new(Vlc {
        _child: Killed(child),
        out,
        frames_seen: 0,
    }))
}

/// The colour of the centre of each complete frame in a YUV4MPEG2 file of I420 frames.
fn y4m_centres(file: &[u8]) -> Vec<[u8; 3]> {
    let Some(header_end) = file.iter().position(|&b| b == b'\n') else {
        return Vec::new();
    };
    let header = String::from_utf8_lossy(&file[..header_end]);
    let size = |tag: char| {
        header
            .split(' ')
            .find_map(|field| field.strip_prefix(tag)?.parse::<usize>().ok())
    };
    let (Some(w), Some(h)) = (size('W'), size('H')) else {
        return Vec::new();
    };
    let (luma, chroma) = (w * h, (w / 2) * (h / 2));
    let frame = b"FRAME\n".len() + luma + 2 * chroma;
    file[header_end + 1..]
        .chunks_exact(frame)
        .map(|f| {
            let f = &f[b"FRAME\n".len()..];
            let y = f64::from(f[(h / 2) * w + w / 2]);
            let at = (h / 4) * (w / 2) + w / 4;
            let u = f64::from(f[luma + at]) - 128.0;
            let v = f64::from(f[luma + chroma + at]) - 128.0;
            let clamp = |c: f64| c.clamp(0.0, 255.0) as u8;
            [
                clamp(y + 1.402 * v),
                clamp(y - 0.344 * u - 0.714 * v),
                clamp(y + 1.772 * u),
            ]
        })
        .collect()
}

impl Player for Vlc {
    /// VLC writes a frame at every redraw, many a second: only changes are reported.
    fn look(&mut self) -> Vec<(Instant, Shown)> {
        let file = std::fs::read(self.out.path("shown.y4m")).unwrap_or_default();
        let centres = y4m_centres(&file);
        let now = Instant::now();
        let mut shown: Vec<(Instant, Shown)> = Vec::new();
        let mut last = self
            .frames_seen
            .checked_sub(1)
            .and_then(|i| centres.get(i))
            .map(|rgb| colour(*rgb));
        for rgb in centres.iter().skip(self.frames_seen) {
            let now_shown = colour(*rgb);
            if last != Some(now_shown) {
                shown.push((now, now_shown));
                last = Some(now_shown);
            }
        }
        self.frames_seen = centres.len();
        shown
    }
}

/// Headless Chromium showing the stream in an element of a page; observed on screen.
struct Chromium {
    browser: Browser,
    /// The element that shows the stream.
    selector: &'static str,
    last: Option<Shown>,
    /// The page is the viewer, which shows text slides in a `<pre>` of its own.
    viewer: bool,
    // Dropped after the browser, which may still be loading the page.
    _page: Option<OtherOrigin>,
}

impl Chromium {
    fn on_screen(&mut self) -> Shown {
        if self.text_shown() {
            return Text;
        }
        let centre = self.browser.try_eval(&format!(
            "(() => {{ const e = document.querySelector('{}'); if (!e || e.hidden) return null; \
             const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()",
            self.selector
        ));
        let Some([x, y]) = centre
            .ok()
            .and_then(|c| serde_json::from_value::<[f64; 2]>(c).ok())
        else {
            return if self.text_shown() { Text } else { Other };
        };
        match self
            .browser
            .pixel_on_screen(x.floor(), y.floor())
            .map_or(Other, colour)
        {
            // The viewer may have turned to a text slide since the image was found.
            Other if self.text_shown() => Text,
            shown => shown,
        }
    }

    /// The viewer shows the text slide, in a `<pre>` of its own.
    fn text_shown(&mut self) -> bool {
        self.viewer
            && self
                .browser
                .try_eval(
                    "(() => { const t = document.getElementById('text'); \
                     return t && !t.hidden && t.textContent; })()",
                )
                .is_ok_and(|t| t.as_str().map(str::as_bytes) == Some(CAPTION))
    }
}

impl Player for Chromium {
    fn look(&mut self) -> Vec<(Instant, Shown)> {
        let now = self.on_screen();
        if self.last == Some(now) {
            return Vec::new();
        }
        self.last = Some(now);
        vec![(Instant::now(), now)]
    }
}

/// README's embed recipe: `<img src=".../stream">` in a page.
const EMBED: &str = r#"<body style="margin:0"><img id="live" src="URL" alt="live"
    style="display:block;width:64px;height:64px">"#;

/// `<img>` in a page on the server's own origin (a page the server serves, rewritten).
fn img_same_origin(url: &str) -> Option<Box<dyn Player>> {
    if !chromium_present() {
        return None;
    }
    let mut browser = Browser::launch(&format!("{url}status"));
    let html = EMBED.replace("URL", "/stream");
    browser.eval(&format!(
        "document.documentElement.innerHTML = {}",
        serde_json::to_string(&html).unwrap()
    ));
    Some(Box::new(Chromium {
        browser,
        selector: "#live",
        last: None,
        viewer: false,
        _page: None,
    }))
}

/// `<img>` in a page on another origin, as when the stream is embedded in a site.
fn img_other_origin(url: &str) -> Option<Box<dyn Player>> {
    if !chromium_present() {
        return None;
    }
    let page = OtherOrigin::serve(EMBED.replace("URL", &format!("{url}stream")));
    let browser = Browser::launch(&page.url);
    Some(Box::new(Chromium {
        browser,
        selector: "#live",
        last: None,
        viewer: false,
        _page: Some(page),
    }))
}

/// The viewer page the server prints the URL of.
fn viewer_page(url: &str) -> Option<Box<dyn Player>> {
    if !chromium_present() {
        return None;
    }
    Some(Box::new(Chromium {
        browser: Browser::launch(url),
        selector: "#image",
        last: None,
        viewer: true,
        _page: None,
    }))
}

/// Waits until `player` shows `want` in something seen at `since` or later, failing at
/// `deadline` with what was shown meanwhile; returns when it was seen.
fn wait_shown(
    player: &mut dyn Player,
    want: Shown,
    since: Instant,
    deadline: Instant,
    what: &str,
) -> Instant {
    let mut seen = Vec::new();
    loop {
        for (at, shown) in player.look() {
            if shown == want && at >= since {
                return at;
            }
            seen.push((at.saturating_duration_since(since), shown));
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {want:?} not shown in time; shown meanwhile: {seen:?}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// [`wait_shown`] for a change made at `at`: how long until it was on screen.
fn change_shown(player: &mut dyn Player, want: Shown, at: Instant, what: &str) -> Duration {
    wait_shown(player, want, at, at + SHOWN_WITHIN, what) - at
}

/// The first frame, three changes, a quiet spell and one more change, each on screen within
/// [`SHOWN_WITHIN`].
fn shows_every_change(name: &str, start: fn(&str) -> Option<Box<dyn Player>>) {
    let server = TestServer::serving("cam.jpg", &fixture("red.jpg"), &["--poll", "20"]);
    let launched = Instant::now();
    let Some(mut player) = start(&server.url) else {
        return;
    };
    server.wait_until_connected("stream", 1);
    let connected = Instant::now();
    let first = wait_shown(
        &mut *player,
        Red,
        launched,
        connected + SHOWN_WITHIN,
        "the first frame",
    );
    // Counted from when the server had the connection (a browser takes seconds to start).
    let mut latencies = vec![first.saturating_duration_since(connected)];
    let dir = server.dir();
    type Save = fn(&common::TempDir, &str, &[u8]);
    let changes: [(&str, Shown, Save); 3] = [
        ("green.jpg", Green, common::TempDir::replace),
        ("blue.jpg", Blue, common::TempDir::rewrite),
        ("red.jpg", Red, common::TempDir::replace),
    ];
    for (file, colour, save) in changes {
        let at = Instant::now();
        save(dir, "cam.jpg", &fixture(file));
        latencies.push(change_shown(&mut *player, colour, at, file));
    }
    thread::sleep(QUIET_SPELL);
    let at = Instant::now();
    dir.rewrite("cam.jpg", &fixture("green.jpg"));
    latencies.push(change_shown(
        &mut *player,
        Green,
        at,
        "the change after the quiet spell",
    ));
    eprintln!("{name}: first frame and changes shown after {latencies:?}");
}

const CAPTION: &[u8] = b"a caption\n";

/// A slideshow of a green JPEG, a red PNG, a text file and a blue JPEG: the client must show
/// each slide in `shows` (the types it can show), nothing else, and the first again on the
/// next round, so it kept going through the others; a browser must never go blank.
fn follows_a_mixed_slideshow(start: fn(&str) -> Option<Box<dyn Player>>, shows: &[Shown]) {
    let server = TestServer::showing(
        &[
            ("1.jpg", &fixture("green.jpg")),
            ("2.png", &fixture("red.png")),
            ("3.txt", CAPTION),
            ("4.jpg", &fixture("blue.jpg")),
        ],
        &["--interval", "700"],
    );
    let Some(mut player) = start(&server.url) else {
        return;
    };
    let begin = Instant::now();
    let mut seen: Vec<Shown> = Vec::new();
    loop {
        for (_, shown) in player.look() {
            // Before the first slide, a browser shows an empty page.
            if shown == Other && seen.is_empty() {
                continue;
            }
            assert!(shows.contains(&shown), "shown {shown:?} after {seen:?}");
            seen.push(shown);
        }
        let first_again = seen.iter().filter(|s| **s == shows[0]).count() >= 2;
        if first_again && shows.iter().all(|s| seen.contains(s)) {
            return;
        }
        assert!(
            begin.elapsed() < DEADLINE * 2,
            "the slideshow did not go round; shown {seen:?}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

const JPEG_ONLY: &[Shown] = &[Green, Blue];
const IMAGES: &[Shown] = &[Green, Red, Blue];
const EVERYTHING: &[Shown] = &[Green, Red, Text, Blue];

/// The matrix, one row per client: its two tests' names (kept as names, which `cargo test NAME`
/// and the CI log use), its name in the latencies printed, how to start it, and what it shows
/// of the slideshow.
macro_rules! clients {
    ($($shows_every_change:ident, $follows_a_mixed_slideshow:ident:
        $name:literal, $start:expr, $shows:expr;)*) => {$(
        #[test]
        fn $shows_every_change() {
            shows_every_change($name, $start);
        }

        #[test]
        fn $follows_a_mixed_slideshow() {
            follows_a_mixed_slideshow($start, $shows);
        }
    )*};
}

clients! {
    curl_shows_every_change, curl_follows_a_mixed_slideshow:
        "curl", curl, EVERYTHING;
    ffmpeg_mpjpeg_shows_every_change, ffmpeg_mpjpeg_follows_a_mixed_slideshow:
        "ffmpeg -f mpjpeg", |url| ffmpeg(url, &["-f", "mpjpeg"]), JPEG_ONLY;
    ffmpeg_probing_shows_every_change, ffmpeg_probing_follows_a_mixed_slideshow:
        "ffmpeg (probing)", |url| ffmpeg(url, &[]), JPEG_ONLY;
    opencv_shows_every_change, opencv_follows_a_mixed_slideshow:
        "OpenCV", opencv, JPEG_ONLY;
    gstreamer_shows_every_change, gstreamer_follows_a_mixed_slideshow:
        "GStreamer", gstreamer, JPEG_ONLY;
    mpv_shows_every_change, mpv_follows_a_mixed_slideshow:
        "mpv", mpv, JPEG_ONLY;
    vlc_shows_every_change, vlc_follows_a_mixed_slideshow:
        "VLC --network-caching=100", vlc, JPEG_ONLY;
    chromium_img_same_origin_shows_every_change, chromium_img_same_origin_follows_a_mixed_slideshow:
        "Chromium <img>, same origin", img_same_origin, IMAGES;
    chromium_img_other_origin_shows_every_change, chromium_img_other_origin_follows_a_mixed_slideshow:
        "Chromium <img>, other origin", img_other_origin, IMAGES;
    chromium_viewer_page_shows_every_change, chromium_viewer_page_follows_a_mixed_slideshow:
        "Chromium, viewer page", viewer_page, EVERYTHING;
}
