//! The viewer page in real headless Chromium: what a person watching it actually sees.

mod common;

use std::time::Instant;

use common::browser::Browser;
use common::{DEADLINE, TempDir, TestServer, fixture};
use serde_json::Value;

/// The RGB of the centre pixel of the page's `<img>` as currently displayed, or null while it
/// shows no image yet.
const CENTRE_PIXEL: &str = r#"(() => {
    const img = document.querySelector('img');
    if (!img || img.naturalWidth === 0) return null;
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const [r, g, b] = ctx.getImageData(canvas.width >> 1, canvas.height >> 1, 1, 1).data;
    return [r, g, b];
})()"#;

/// Which of the fixtures' solid colours a pixel is, with room for JPEG's loss. (green.jpg is
/// CSS green, #008000.)
fn colour(pixel: &Value) -> Option<&'static str> {
    let rgb: Vec<u64> = pixel
        .as_array()?
        .iter()
        .map(Value::as_u64)
        .collect::<Option<_>>()?;
    match rgb[..] {
        [r, g, b] if r > 200 && g < 60 && b < 60 => Some("red"),
        [r, g, b] if r < 60 && g > 100 && b < 60 => Some("green"),
        [r, g, b] if r < 60 && g < 60 && b > 200 => Some("blue"),
        _ => None,
    }
}

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
    let start = Instant::now();
    let dir = TempDir::new("browser-jpeg");
    dir.replace("cam.jpg", &fixture("red.jpg"));
    let path = dir.path("cam.jpg");
    // A long keep-alive: a resend of the current frame would push a stuck part out and hide
    // exactly the lag this test is about.
    let server = TestServer::start(&[path.to_str().unwrap(), "--poll", "20", "--keepalive", "600"]);
    let mut browser = Browser::launch(&server.url);
    eprintln!("Chromium ready after {:?}", start.elapsed());

    wait_for_colour(&mut browser, "red");
    dir.replace("cam.jpg", &fixture("green.jpg"));
    wait_for_colour(&mut browser, "green");
    dir.replace("cam.jpg", &fixture("blue.jpg"));
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
    let dir = TempDir::new("browser-text");
    dir.replace("now.txt", b"first <b>not bold</b>");
    let server = TestServer::start(&[dir.path("now.txt").to_str().unwrap(), "--poll", "20"]);
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
    dir.replace("now.txt", b"second");
    wait_for_text(&mut browser, "text", "second");
}

#[test]
fn viewer_page_renders_an_html_file_sandboxed_and_then_its_new_content() {
    let dir = TempDir::new("browser-html");
    dir.replace(
        "page.html",
        b"<h1>one</h1><script>parent.document.title = 'escaped'</script>",
    );
    let server = TestServer::start(&[dir.path("page.html").to_str().unwrap(), "--poll", "20"]);
    let mut browser = Browser::launch(&server.url);
    wait_for_text(&mut browser, "html", "one");
    assert_eq!(
        browser.eval("document.getElementById('html').contentDocument.querySelector('h1').tagName"),
        "H1"
    );
    dir.replace("page.html", b"<h1>two</h1>");
    wait_for_text(&mut browser, "html", "two");
    assert_ne!(
        browser.eval("document.title"),
        "escaped",
        "scripts in the file must not run"
    );
}

#[test]
fn viewer_page_falls_back_to_polling_the_snapshot_when_stream_and_events_fail() {
    let dir = TempDir::new("browser-fallback");
    dir.replace("cam.jpg", &fixture("red.jpg"));
    let server = TestServer::start(&[dir.path("cam.jpg").to_str().unwrap(), "--poll", "100"]);
    let mut browser = Browser::launch(&format!("{}status", server.url));
    browser.block_urls(&["*/stream*", "*/events*"]);
    browser.navigate(&server.url);
    wait_for_colour(&mut browser, "red");
    assert_eq!(
        browser.eval("document.getElementById('state').textContent"),
        "polling"
    );
    dir.replace("cam.jpg", &fixture("green.jpg"));
    wait_for_colour(&mut browser, "green");

    // Once the stream works again, the page goes back to live (it retries every 5 s).
    browser.block_urls(&[]);
    browser.wait_until(
        "the page to go live again",
        "document.getElementById('state').textContent",
        DEADLINE,
        |s| s == "live",
    );
    dir.replace("cam.jpg", &fixture("blue.jpg"));
    wait_for_colour(&mut browser, "blue");
}
