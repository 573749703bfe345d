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
