//! The viewer page in real headless Chromium: what a person watching it actually sees.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::browser::{Browser, CENTRE_PIXEL, OtherOrigin, colour};
use common::{DEADLINE, TestServer, fixture};
use serde_json::Value;

/// Waits until the page shows `want`, with no other change to the file meanwhile.
fn wait_for_colour(browser: &mut Browser, want: &str) {
    let start = Instant::now();
    browser.wait_until(
        &format!("the viewer page to show {want}"),
        CENTRE_PIXEL,
        DEADLINE,
        |pixel| colour(pixel) == Some(want),
    );
    eprintln!("{want} shown after {:?}", start.elapsed());
}

/// Chromium displays a part of a multipart/x-mixed-replace stream only once the next part's
/// boundary and header block have arrived; the server must send them right after each body,
/// or the page stays one version behind until the file changes again.
#[test]
fn viewer_page_shows_each_new_jpeg_without_waiting_for_the_next() {
    if !common::browser::chromium_present() {
        return;
    }
    let start = Instant::now();
    // A long keep-alive: a resend of the current frame would push a stuck part out and hide
    // exactly the lag this test is about.
    let server = TestServer::serving(
        "cam.jpg",
        &fixture("red.jpg"),
        &["--poll", "20", "--keepalive", "600"],
    );
    let mut browser = Browser::launch(&server.url);
    eprintln!("Chromium ready after {:?}", start.elapsed());

    wait_for_colour(&mut browser, "red");
    server.dir().replace("cam.jpg", &fixture("green.jpg"));
    wait_for_colour(&mut browser, "green");
    server.dir().replace("cam.jpg", &fixture("blue.jpg"));
    wait_for_colour(&mut browser, "blue");
    eprintln!("whole test took {:?}", start.elapsed());
}

/// The text of the viewer's `#id` element when it is the one shown, else null.
fn shown_text(id: &str) -> String {
    format!(
        r#"(() => {{
            const el = document.getElementById('{id}');
            if (!el || el.hidden) return null;
            return el.tagName === 'IFRAME' ? el.contentDocument?.body?.innerText ?? null : el.textContent;
        }})()"#
    )
}

fn wait_for_text(browser: &mut Browser, id: &str, want: &str) {
    browser.wait_until(
        &format!("#{id} to show {want:?}"),
        &shown_text(id),
        DEADLINE,
        |v| v.as_str().is_some_and(|t| t.trim() == want),
    );
}

#[test]
fn viewer_page_shows_a_text_file_escaped_and_then_its_new_content() {
    if !common::browser::chromium_present() {
        return;
    }
    let server = TestServer::serving("now.txt", b"first <b>not bold</b>", &["--poll", "20"]);
    let mut browser = Browser::launch(&server.url);
    wait_for_text(&mut browser, "text", "first <b>not bold</b>");
    assert_eq!(browser.eval("document.querySelectorAll('b').length"), 0);
    assert_eq!(
        browser.eval("document.getElementById('name').textContent"),
        "now.txt"
    );
    assert_eq!(
        browser.eval("document.getElementById('state').textContent"),
        "live"
    );
    server.dir().replace("now.txt", b"second");
    wait_for_text(&mut browser, "text", "second");
}

#[test]
fn viewer_page_renders_an_html_file_sandboxed_and_then_its_new_content() {
    if !common::browser::chromium_present() {
        return;
    }
    let server = TestServer::serving(
        "page.html",
        b"<h1>one</h1><script>parent.document.title = 'escaped'</script>",
        &["--poll", "20"],
    );
    let mut browser = Browser::launch(&server.url);
    wait_for_text(&mut browser, "html", "one");
    assert_eq!(
        browser.eval("document.getElementById('html').contentDocument.querySelector('h1').tagName"),
        "H1"
    );
    server.dir().replace("page.html", b"<h1>two</h1>");
    wait_for_text(&mut browser, "html", "two");
    assert_ne!(
        browser.eval("document.title"),
        "escaped",
        "scripts in the file must not run"
    );
}

#[test]
fn viewer_page_falls_back_to_polling_the_snapshot_when_stream_and_events_fail() {
    if !common::browser::chromium_present() {
        return;
    }
    let server = TestServer::serving("cam.jpg", &fixture("red.jpg"), &["--poll", "100"]);
    let mut browser = Browser::launch(&format!("{}status", server.url));
    browser.block_urls(&["*/stream*", "*/events*"]);
    browser.navigate(&server.url);
    wait_for_colour(&mut browser, "red");
    assert_eq!(
        browser.eval("document.getElementById('state').textContent"),
        "polling"
    );
    server.dir().replace("cam.jpg", &fixture("green.jpg"));
    wait_for_colour(&mut browser, "green");

    // Once the stream works again, the page goes back to live (it retries every 5 s).
    browser.block_urls(&[]);
    browser.wait_until(
        "the page to go live again",
        "document.getElementById('state').textContent",
        DEADLINE,
        |s| s == "live",
    );
    server.dir().replace("cam.jpg", &fixture("blue.jpg"));
    wait_for_colour(&mut browser, "blue");
}

/// What a served document's own probes did: the document's title (each probe that runs appends
/// its name to it), whether its marker element is there, and the origin it runs in.
const PROBED: &str = r#"(() => ({
    title: document.title,
    marker: document.getElementById('marker') !== null,
    origin: self.origin,
}))()"#;

/// Opens `URL/snapshot` on its own, as a person following a link to it would, and returns
/// [`PROBED`] once the document and everything in it (the broken image too) has loaded.
fn open_snapshot_and_probe(name: &str, content: &[u8]) -> Value {
    let server = TestServer::serving(name, content, &["--poll", "20"]);
    let mut browser = Browser::launch(&format!("{}status", server.url));
    let snapshot = format!("{}snapshot", server.url);
    browser.navigate(&snapshot);
    browser.wait_until(
        &format!("{snapshot} to load completely"),
        "document.readyState === 'complete' && document.getElementById('marker') !== null",
        DEADLINE,
        |loaded| loaded == &Value::Bool(true),
    );
    browser.eval(PROBED)
}

/// An HTML file is served as what it is, but a script in it must not run on the server's origin
/// (where it could read /status or the stream, or use the origin's storage): `/snapshot` puts it
/// in a sandbox with an opaque origin.
#[test]
fn an_html_snapshot_opened_on_its_own_runs_no_script() {
    if !common::browser::chromium_present() {
        return;
    }
    let probed = open_snapshot_and_probe(
        "page.html",
        br#"<!doctype html>
<html>
<head><title>untouched</title></head>
<body onload="document.title += ' +body-onload'">
<p id="marker">served</p>
<script>document.title += ' +inline-script';</script>
<script src="data:text/javascript,document.title += ' +data-script'"></script>
<img src="missing.png" onerror="document.title += ' +img-onerror'">
<iframe srcdoc="<script>parent.document.title += ' +iframe-script'</script>"></iframe>
</body>
</html>
"#,
    );
    assert_eq!(
        probed,
        serde_json::json!({ "title": "untouched", "marker": true, "origin": "null" }),
        "the title lists every script of the file that ran; origin \"null\" is the sandbox's"
    );
}

/// The same for an SVG image, which is a document with scripts too when opened on its own.
#[test]
fn an_svg_snapshot_opened_on_its_own_runs_no_script() {
    if !common::browser::chromium_present() {
        return;
    }
    let probed = open_snapshot_and_probe(
        "drawing.svg",
        br#"<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"
     onload="document.title += ' +svg-onload'">
<title>untouched</title>
<rect id="marker" width="100" height="100" fill="red"/>
<script>document.title += ' +inline-script';</script>
<image href="missing.png" width="10" height="10" onerror="document.title += ' +image-onerror'"/>
</svg>
"#,
    );
    assert_eq!(
        probed,
        serde_json::json!({ "title": "untouched", "marker": true, "origin": "null" }),
        "the title lists every script of the file that ran; origin \"null\" is the sandbox's"
    );
}

/// A text file that happens to be JavaScript must not be usable as a script by a page on
/// another origin (`<script src>` is not bound by the same-origin policy, and would hand that
/// page whatever the script computes from the file): the server says `nosniff`, so Chromium
/// refuses to run `text/plain` as a script.
#[test]
fn a_page_on_another_origin_cannot_run_a_served_text_file_as_a_script() {
    if !common::browser::chromium_present() {
        return;
    }
    let server = TestServer::serving("data.txt", b"window.leaked = 42;\n", &["--poll", "20"]);
    assert_eq!(
        server
            .get("/snapshot", "")
            .header("Content-Type")
            .as_deref(),
        Some("text/plain; charset=utf-8")
    );
    let page = OtherOrigin::serve(format!(
        r#"<!doctype html><title>elsewhere</title>
<script src="{}snapshot" onload="window.loaded = true" onerror="window.failed = true"></script>
"#,
        server.url
    ));
    assert_ne!(page.url, server.url);
    let mut browser = Browser::launch(&page.url);
    browser.wait_until(
        "the page on the other origin to have loaded or failed to load the snapshot as a script",
        "window.loaded === true || window.failed === true",
        DEADLINE,
        |done| done == &Value::Bool(true),
    );
    assert_eq!(
        browser.eval(
            "({ leaked: window.leaked ?? null, loaded: window.loaded ?? false, \
                failed: window.failed ?? false })"
        ),
        serde_json::json!({ "leaked": null, "loaded": false, "failed": true }),
        "the served text file ran as a script on another origin's page"
    );
}

/// `--poll` is how often the server checks the file, which may be every few milliseconds; the
/// viewer's fallback must not fetch /snapshot at that rate (a page left open in a tab would be a
/// load on the server), but once a second.
#[test]
fn the_viewer_fallback_polls_once_a_second_whatever_the_poll() {
    if !common::browser::chromium_present() {
        return;
    }
    let server = TestServer::serving("now.txt", b"hello", &["--poll", "5", "-v"]);
    let mut browser = Browser::launch(&format!("{}status", server.url));
    browser.block_urls(&["*/stream*", "*/events*"]);
    browser.navigate(&server.url);
    browser.wait_until(
        "the viewer page to fall back to polling",
        "document.getElementById('state').textContent",
        DEADLINE,
        |s| s == "polling",
    );
    wait_for_text(&mut browser, "text", "hello");

    // With -v, each finished connection is one line of stderr: count the /snapshot ones over a
    // fixed window.
    let snapshot_requests = || {
        server
            .stderr()
            .lines()
            .filter(|line| line.contains(" /snapshot "))
            .count()
    };
    const WINDOW: Duration = Duration::from_secs(3);
    let before = snapshot_requests();
    thread::sleep(WINDOW);
    let during = snapshot_requests() - before;
    assert!(
        (1..=6).contains(&during),
        "the viewer fetched /snapshot {during} times in {WINDOW:?} (once a second is 3)"
    );
}

/// The centre pixel of the `n`th `<img>` on the page, as [`CENTRE_PIXEL`] does for the first.
fn nth_image_pixel(n: usize) -> String {
    CENTRE_PIXEL.replace(
        "document.querySelector('img')",
        &format!("document.querySelectorAll('img')[{n}]"),
    )
}

/// With several sources, `/` shows every one of them live: images through their streams, text
/// through their events, each tile linking to that source's own viewer.
#[test]
fn the_index_of_several_sources_shows_each_live_and_links_to_its_viewer() {
    if !common::browser::chromium_present() {
        return;
    }
    let dir = common::TempDir::new("index-page");
    dir.rewrite("cam.jpg", &fixture("red.jpg"));
    dir.rewrite("notes.txt", b"first <b>note</b>");
    let path = |name: &str| dir.path(name).display().to_string();
    let server = TestServer::start(&[&path("cam.jpg"), &path("notes.txt"), "--poll", "20"]);
    let mut browser = Browser::launch(&server.url);
    let cam = nth_image_pixel(0);
    browser.wait_until("the camera tile to show red", &cam, DEADLINE, |p| {
        colour(p) == Some("red")
    });
    let notes = "document.querySelectorAll('pre')[1].textContent";
    browser.wait_until("the notes tile to show its text", notes, DEADLINE, |t| {
        t == "first <b>note</b>"
    });
    assert_eq!(browser.eval("document.querySelectorAll('b').length"), 0);
    dir.replace("cam.jpg", &fixture("green.jpg"));
    dir.replace("notes.txt", b"second");
    browser.wait_until("the camera tile to show green", &cam, DEADLINE, |p| {
        colour(p) == Some("green")
    });
    browser.wait_until("the notes tile to follow", notes, DEADLINE, |t| {
        t == "second"
    });
    let links = browser.eval("[...document.querySelectorAll('a.tile')].map(a => a.href)");
    assert_eq!(
        links,
        serde_json::json!([
            format!("{}cam/", server.url),
            format!("{}notes/", server.url)
        ])
    );
    let names = browser.eval("[...document.querySelectorAll('.name')].map(n => n.textContent)");
    assert_eq!(names, serde_json::json!(["cam", "notes"]));
}

/// Whether the element `selector` (the `n`th match) is scrolled to the end of its text, and
/// whether it has more than a screenful of it.
fn scrolled_to_end(selector: &str, n: usize) -> String {
    format!(
        r#"(() => {{
            const el = document.querySelectorAll('{selector}')[{n}];
            if (!el || el.hidden) return null;
            return [el.scrollHeight > el.clientHeight,
                    el.scrollHeight - el.scrollTop - el.clientHeight < 2,
                    el.textContent.trim().split('\n').pop()];
        }})()"#
    )
}

/// `n` numbered lines, the last one `last`.
fn lines(n: usize, last: &str) -> Vec<u8> {
    let mut text: String = (1..n).map(|i| format!("line {i}\n")).collect();
    text.push_str(last);
    text.push('\n');
    text.into_bytes()
}

/// With many sources, the ones past the live ones are shown from one request a second for
/// them all (each used to poll on its own: 45 requests a second here), and still follow their
/// changes; text tiles, live or not, show their newest lines; names beyond ASCII are kept.
#[test]
fn an_idle_index_of_many_sources_asks_once_a_second_and_text_tiles_show_their_end() {
    if !common::browser::chromium_present() {
        return;
    }
    const SOURCES: usize = 50;
    let dir = common::TempDir::new("index-many");
    let mut args: Vec<String> = Vec::new();
    for i in 0..SOURCES {
        let name = if i == SOURCES - 1 {
            "ünï cödé.txt".to_string()
        } else {
            format!("t{i:02}.txt")
        };
        dir.rewrite(
            &name,
            &lines(if i < 2 { 100 } else { 1 }, &format!("first {i}")),
        );
        args.push(dir.path(&name).display().to_string());
    }
    args.extend(["--poll", "50", "-v"].map(String::from));
    let server = TestServer::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut browser = Browser::launch(&server.url);
    let last = SOURCES - 1;
    browser.wait_until(
        "every tile to show its text",
        &scrolled_to_end("pre", last),
        DEADLINE,
        |v| v[2] == format!("first {last}"),
    );
    browser.wait_until(
        "a live tile at its end",
        &scrolled_to_end("pre", 1),
        DEADLINE,
        |v| v == &serde_json::json!([true, true, "first 1"]),
    );

    // With -v, each finished request is one line of stderr.
    let requests = || {
        server
            .stderr()
            .lines()
            .filter(|line| line.starts_with("pushserve: 127.0.0.1:"))
            .count()
    };
    const WINDOW: Duration = Duration::from_secs(4);
    let before = requests();
    thread::sleep(WINDOW);
    let during = requests() - before;
    eprintln!("{during} requests in {WINDOW:?} from an idle index of {SOURCES} sources");
    assert!(
        during <= 6,
        "an idle index of {SOURCES} sources made {during} requests in {WINDOW:?}: {}",
        server
            .stderr()
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );

    // A polled tile follows its source, to its end.
    dir.replace("t05.txt", &lines(100, "second 5"));
    dir.replace("t01.txt", &lines(200, "second 1"));
    browser.wait_until(
        "the polled tile to follow",
        &scrolled_to_end("pre", 5),
        DEADLINE,
        |v| v == &serde_json::json!([true, true, "second 5"]),
    );
    browser.wait_until(
        "the live tile to follow",
        &scrolled_to_end("pre", 1),
        DEADLINE,
        |v| v == &serde_json::json!([true, true, "second 1"]),
    );

    let href = format!("document.querySelectorAll('a.tile')[{last}].getAttribute('href')");
    assert_eq!(browser.eval(&href), "%C3%BCn%C3%AF-c%C3%B6d%C3%A9/");
    let name = format!("document.querySelectorAll('.name')[{last}].textContent");
    assert_eq!(browser.eval(&name), "ünï-cödé");
}

/// Text in the viewer stays scrolled to its newest line, as `tail -f` shows it, until the
/// reader scrolls up; a command's versions are named by its source's name.
#[test]
fn the_viewer_keeps_text_at_its_end_unless_scrolled_up_and_names_a_command_by_its_source() {
    if !common::browser::chromium_present() {
        return;
    }
    let dir = common::TempDir::new("viewer-tail");
    dir.rewrite("log.txt", &lines(300, "first"));
    let log = dir.path("log.txt").display().to_string();
    let server = TestServer::start(&[&log, "--exec", "load=cat /proc/loadavg", "--poll", "50"]);
    let mut browser = Browser::launch(&format!("{}log/", server.url));
    let text = scrolled_to_end("#text", 0);
    browser.wait_until("the log at its end", &text, DEADLINE, |v| {
        v == &serde_json::json!([true, true, "first"])
    });
    dir.replace("log.txt", &lines(400, "second"));
    browser.wait_until("the log to follow to its end", &text, DEADLINE, |v| {
        v == &serde_json::json!([true, true, "second"])
    });
    browser.eval("document.getElementById('text').scrollTop = 0");
    dir.replace("log.txt", &lines(500, "third"));
    browser.wait_until("the log to change", &text, DEADLINE, |v| v[2] == "third");
    assert_eq!(
        browser.eval("document.getElementById('text').scrollTop"),
        0,
        "a reader who scrolled up stays where they are"
    );

    browser.navigate(&format!("{}load/", server.url));
    browser.wait_until("the command's viewer", "document.title", DEADLINE, |t| {
        t == "load \u{2014} pushserve"
    });
    assert_eq!(
        browser.eval("document.getElementById('name').textContent"),
        "load"
    );
}
