//! Real headless Chromium, driven over the DevTools protocol (CDP) on the page's WebSocket
//! (tungstenite), with [`Browser::eval`], which runs JavaScript in the page and returns its
//! result as JSON. Every wait has a deadline; Chromium is stopped on drop.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::Message;

use super::{DEADLINE, TempDir};

/// How long Chromium may take to start and print its DevTools address.
const LAUNCH_DEADLINE: Duration = Duration::from_secs(20);
/// Polling interval of every wait below.
const POLL: Duration = Duration::from_millis(50);
/// Lines of Chromium's stderr kept for failure messages.
const STDERR_LINES: usize = 60;

/// The Chromium binary: `$CHROMIUM`, else `chromium` on the PATH.
pub fn chromium_binary() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(
        || {
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .map(|dir| dir.join("chromium"))
                .find(|path| path.is_file())
                .unwrap_or_else(|| PathBuf::from("chromium"))
        },
        PathBuf::from,
    )
}

/// Whether Chromium is here; a test without it is skipped (see [`super::client_present`]).
pub fn chromium_present() -> bool {
    super::client_present(
        "chromium",
        "apt-get install chromium, or set CHROMIUM to its path",
        chromium_binary().exists(),
    )
}

/// One headless Chromium with one page, open at the URL it was launched with.
pub struct Browser {
    ws: WebSocket,
    next_id: u64,
    // Declared last: dropped (Chromium stopped, profile removed) after the socket is closed.
    process: Chromium,
}

impl Browser {
    /// Starts Chromium on `url` with a fresh profile, connects to the page's DevTools
    /// WebSocket and waits until the page's document has been parsed.
    pub fn launch(url: &str) -> Browser {
        let binary = chromium_binary();
        let profile = TempDir::new("chromium");
        let mut child = Command::new(&binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.0.display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));

        // Drain stderr for the whole run (so the pipe never fills), keep its tail for failure
        // messages, and pass on the DevTools address once it is printed.
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let pipe = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let tail = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(pipe).split(b'\n').map_while(Result::ok) {
                let line = String::from_utf8_lossy(&line).into_owned();
                if let Some(at) = line.find("DevTools listening on ws://")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(
                        line[at + "DevTools listening on ".len()..]
                            .trim()
                            .to_string(),
                    );
                }
                if line.contains(":ERROR:dbus/") {
                    continue; // there is no D-Bus in a container: noise
                }
                let mut tail = tail.lock().unwrap();
                if tail.len() == STDERR_LINES {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        });
        let process = Chromium {
            child,
            stderr,
            closing: false,
            _profile: profile,
        };

        let browser_ws = match rx.recv_timeout(LAUNCH_DEADLINE) {
            Ok(ws) => ws,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!(
                    "Chromium printed no DevTools address within {LAUNCH_DEADLINE:?}{}",
                    process.stderr_tail()
                )
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!(
                    "Chromium exited before printing its DevTools address{}",
                    process.stderr_tail()
                )
            }
        };
        let devtools = browser_ws
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap()
            .to_string();

        // The page target for the URL given on the command line.
        let start = Instant::now();
        let page_ws = loop {
            let targets = http_get(&devtools, "/json/list").and_then(|body| {
                serde_json::from_str::<Value>(&body)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
            });
            let found = targets
                .as_ref()
                .ok()
                .and_then(|t| t.as_array())
                .and_then(|targets| {
                    targets
                        .iter()
                        .find(|t| t["type"] == "page")
                        .and_then(|t| t["webSocketDebuggerUrl"].as_str())
                });
            if let Some(ws) = found {
                break ws.to_string();
            }
            assert!(
                start.elapsed() < DEADLINE,
                "Chromium listed no page target within {DEADLINE:?} (last answer: {targets:?}){}",
                process.stderr_tail()
            );
            thread::sleep(POLL);
        };
        let ws = connect(&page_ws).unwrap_or_else(|e| {
            panic!(
                "cannot open the DevTools WebSocket {page_ws}: {e}{}",
                process.stderr_tail()
            )
        });

        let mut browser = Browser {
            ws,
            next_id: 0,
            process,
        };
        browser.wait_until(
            &format!("the page {url} to load"),
            "document.readyState !== 'loading' && location.href !== 'about:blank' ? location.href : null",
            DEADLINE,
            |href| href.is_string(),
        );
        browser
    }

    /// Sends one CDP command and returns its `result`, or the `error.message` Chromium gave.
    /// Events and replies to earlier commands are skipped.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let request = json!({ "id": id, "method": method, "params": params }).to_string();
        if let Err(e) = self.ws.send(Message::text(request)) {
            panic!(
                "cannot send {method} to Chromium: {e}{}",
                self.process.stderr_tail()
            );
        }
        let start = Instant::now();
        loop {
            let left = DEADLINE.saturating_sub(start.elapsed());
            assert!(
                !left.is_zero(),
                "Chromium did not answer {method} within {DEADLINE:?}{}",
                self.process.stderr_tail()
            );
            let text = match recv_text(&mut self.ws, left) {
                Ok(Some(text)) => text,
                Ok(None) => continue, // the deadline check above fails
                Err(e) => panic!(
                    "no answer from Chromium to {method}: {e}{}",
                    self.process.stderr_tail()
                ),
            };
            let message: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
                panic!("Chromium sent a message that is not JSON ({e}): {text}")
            });
            if message["id"].as_u64() != Some(id) {
                continue;
            }
            if let Some(error) = message.get("error") {
                return Err(error["message"]
                    .as_str()
                    .map_or_else(|| error.to_string(), str::to_string));
            }
            return Ok(message["result"].clone());
        }
    }

    /// Evaluates the JavaScript expression `js` in the page (awaiting it if it is a promise);
    /// its value as JSON (`undefined` as null), or the exception it threw as text.
    pub fn try_eval(&mut self, js: &str) -> Result<Value, String> {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": js, "returnByValue": true, "awaitPromise": true }),
        )?;
        if let Some(details) = result.get("exceptionDetails") {
            let description = details["exception"]["description"]
                .as_str()
                .or_else(|| details["text"].as_str());
            return Err(description.map_or_else(|| details.to_string(), str::to_string));
        }
        Ok(result["result"]
            .get("value")
            .cloned()
            .unwrap_or(Value::Null))
    }

    /// [`Browser::try_eval`] that panics on an exception.
    pub fn eval(&mut self, js: &str) -> Value {
        self.try_eval(js)
            .unwrap_or_else(|e| panic!("evaluating `{js}` threw: {e}"))
    }

    /// Evaluates `js` every 50 ms until its value satisfies `ok`, and returns that value.
    /// Exceptions count as "not yet" (the page may be loading); panics after `deadline` with
    /// `what`, the last value and the last exception.
    pub fn wait_until(
        &mut self,
        what: &str,
        js: &str,
        deadline: Duration,
        ok: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let last = match self.try_eval(js) {
                Ok(value) if ok(&value) => return value,
                last => last,
            };
            assert!(
                start.elapsed() < deadline,
                "waited {deadline:?} for {what}; last result: {last:?}{}",
                self.process.stderr_tail()
            );
            thread::sleep(POLL);
        }
    }

    /// Loads `url` in the page and waits until its document has been parsed.
    pub fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url }))
            .unwrap_or_else(|e| panic!("cannot navigate to {url}: {e}"));
        let expected = serde_json::to_string(url).unwrap();
        self.wait_until(
            &format!("the page {url} to load"),
            &format!("document.readyState !== 'loading' && location.href === {expected}"),
            DEADLINE,
            |loaded| loaded == &Value::Bool(true),
        );
    }

    /// Makes every request whose URL matches one of `patterns` (`*` wildcards) fail, as a
    /// broken network or proxy would.
    pub fn block_urls(&mut self, patterns: &[&str]) {
        self.call("Network.enable", json!({})).unwrap();
        self.call("Network.setBlockedURLs", json!({ "urls": patterns }))
            .unwrap();
    }

    /// The RGB of the page's pixel at (`x`, `y`) as it is on screen: from a screenshot, so it
    /// works for an image from another origin too (a canvas would be tainted by it). The
    /// screenshot is decoded by the page itself, from a data URL, which taints nothing.
    pub fn pixel_on_screen(&mut self, x: f64, y: f64) -> Option<[u8; 3]> {
        let clip = json!({ "x": x, "y": y, "width": 1, "height": 1, "scale": 1 });
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({ "format": "png", "clip": clip }),
            )
            .ok()?;
        let data = shot["data"].as_str()?;
        let rgb = self
            .try_eval(&format!(
                "(async () => {{
                    const img = new Image();
                    img.src = 'data:image/png;base64,{data}';
                    await img.decode();
                    const canvas = document.createElement('canvas');
                    canvas.width = canvas.height = 1;
                    const ctx = canvas.getContext('2d');
                    ctx.drawImage(img, 0, 0);
                    return Array.from(ctx.getImageData(0, 0, 1, 1).data.slice(0, 3));
                }})()"
            ))
            .ok()?;
        let rgb: Vec<u8> = rgb
            .as_array()?
            .iter()
            .map(|v| v.as_u64().and_then(|c| u8::try_from(c).ok()))
            .collect::<Option<_>>()?;
        rgb.try_into().ok()
    }

    /// The last lines Chromium wrote to stderr.
    pub fn stderr(&self) -> String {
        self.process.stderr_tail()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ask Chromium to close (it takes its helper processes with it); the process guard
        // then waits for it, and kills it if it does not exit in time.
        let request =
            json!({ "id": self.next_id + 1, "method": "Browser.close", "params": {} }).to_string();
        self.process.closing = self.ws.send(Message::text(request)).is_ok();
    }
}

/// The Chromium process and its profile: killed (or waited for, after `Browser.close`) and
/// removed on drop, also when a launch fails halfway.
struct Chromium {
    child: Child,
    stderr: Arc<Mutex<VecDeque<String>>>,
    closing: bool,
    _profile: TempDir,
}

impl Chromium {
    fn stderr_tail(&self) -> String {
        let tail = self.stderr.lock().unwrap();
        let lines: Vec<&str> = tail.iter().map(String::as_str).collect();
        format!(
            "\n--- Chromium stderr (last {} lines) ---\n{}",
            lines.len(),
            lines.join("\n")
        )
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        if self.closing {
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` on Chromium's DevTools HTTP endpoint; the body of a 200 response.
fn http_get(addr: &str, path: &str) -> io::Result<String> {
    let mut conn = TcpStream::connect(addr)?;
    conn.set_read_timeout(Some(DEADLINE))?;
    conn.set_write_timeout(Some(DEADLINE))?;
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut reader = BufReader::new(conn);
    let head = read_head(&mut reader)?;
    let status = head.lines().next().and_then(|line| line.split(' ').nth(1));
    if status != Some("200") {
        return Err(io::Error::other(format!("GET {path}: {head}")));
    }
    let length = head.lines().skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    });
    let mut body = Vec::new();
    match length {
        Some(n) => {
            body.resize(n, 0);
            reader.read_exact(&mut body)?;
        }
        None => {
            reader.read_to_end(&mut body)?;
        }
    }
    String::from_utf8(body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// An HTTP response head, up to and without the blank line.
fn read_head(reader: &mut impl BufRead) -> io::Result<String> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("truncated response head: {head:?}"),
            ));
        }
        if line == "\r\n" || line == "\n" {
            return Ok(head);
        }
        head.push_str(&line);
    }
}

/// The page's DevTools WebSocket. Plain `ws://` to 127.0.0.1, so no TLS.
type WebSocket = tungstenite::WebSocket<TcpStream>;

/// Opens `ws://host:port/path`, with a deadline on every read and write of the socket (and
/// so of the handshake).
fn connect(url: &str) -> Result<WebSocket, String> {
    let host = url
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .ok_or_else(|| format!("not a ws:// URL: {url}"))?;
    let conn = TcpStream::connect(host).map_err(|e| e.to_string())?;
    // Each command is one small message that waits for its answer: Nagle would only delay it.
    conn.set_nodelay(true).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(DEADLINE))
        .map_err(|e| e.to_string())?;
    conn.set_write_timeout(Some(DEADLINE))
        .map_err(|e| e.to_string())?;
    let (ws, _response) = tungstenite::client(url, conn).map_err(|e| e.to_string())?;
    Ok(ws)
}

/// The next text or binary message, or None if none arrived within `timeout`. Pings are
/// answered by tungstenite itself; a message cut short by the timeout stays buffered in it
/// and is completed by the next call.
fn recv_text(ws: &mut WebSocket, timeout: Duration) -> Result<Option<String>, String> {
    ws.get_ref()
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    loop {
        match ws.read() {
            Ok(Message::Text(text)) => return Ok(Some(text.as_str().to_string())),
            Ok(Message::Binary(bytes)) => {
                return String::from_utf8(bytes.to_vec())
                    .map(Some)
                    .map_err(|e| format!("a binary message that is not UTF-8: {e}"));
            }
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
            Ok(Message::Close(frame)) => {
                return Err(format!("Chromium closed the WebSocket ({frame:?})"));
            }
            // What a read timeout on the socket looks like, depending on the platform.
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// A page of its own on another origin than the server's (another port of 127.0.0.1), served
/// by a listener in this test until dropped: every request gets `html`.
pub struct OtherOrigin {
    pub url: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl OtherOrigin {
    pub fn serve(html: String) -> OtherOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(DEADLINE));
                let _ = conn.set_write_timeout(Some(DEADLINE));
                // Read the request head (and ignore it), then answer and close.
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
                     Content-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{html}",
                    html.len()
                );
            }
        });
        OtherOrigin {
            url: format!("http://{addr}/"),
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for OtherOrigin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://").trim_end_matches('/'));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An HTTP authentication challenge the page met, as [`Browser::log_in`] answered it.
#[derive(Debug, Clone)]
pub struct Challenge {
    pub url: String,
    /// `Server` or `Proxy`.
    pub source: String,
    pub scheme: String,
    pub realm: String,
}

impl Browser {
    /// Opens `url` as a person who types `user` and `password` into the login dialog each time
    /// the browser shows it: with CDP's Fetch domain, every request of the page is paused and let
    /// go, and every authentication challenge (a `401` with `WWW-Authenticate`) is answered with
    /// them (`Fetch.authRequired`, `Fetch.continueWithAuth`). Goes on until the JavaScript `js`
    /// gives a value that satisfies `ok` (within [`DEADLINE`], else it panics with `what`), then
    /// stops intercepting: later requests carry what Chromium remembers of the login, as they
    /// would for that person. Returns the value and the challenges answered.
    pub fn log_in(
        &mut self,
        url: &str,
        (user, password): (&str, &str),
        what: &str,
        js: &str,
        ok: impl Fn(&Value) -> bool,
    ) -> (Value, Vec<Challenge>) {
        self.call(
            "Fetch.enable",
            json!({ "handleAuthRequests": true, "patterns": [{ "urlPattern": "*" }] }),
        )
        .unwrap_or_else(|e| panic!("Fetch.enable: {e}"));
        let navigate = self.send_command("Page.navigate", json!({ "url": url }));
        let mut challenges = Vec::new();
        // The evaluation of `js` in flight (its id and when it was sent), and the last value.
        let mut pending: Option<(u64, Instant)> = None;
        let mut last = Value::Null;
        let start = Instant::now();
        let value = loop {
            assert!(
                start.elapsed() < DEADLINE,
                "waited {DEADLINE:?} for {what} while logging in; last result: {last}; \
                 challenges answered: {challenges:?}{}",
                self.process.stderr_tail()
            );
            // An evaluation sent while the page was being replaced may never be answered.
            if pending.is_none_or(|(_, sent)| sent.elapsed() > Duration::from_secs(2)) {
                let id = self.send_command(
                    "Runtime.evaluate",
                    json!({ "expression": js, "returnByValue": true, "awaitPromise": true }),
                );
                pending = Some((id, Instant::now()));
            }
            let text = match recv_text(&mut self.ws, POLL) {
                Ok(Some(text)) => text,
                Ok(None) => continue,
                Err(e) => panic!(
                    "Chromium's WebSocket failed while logging in: {e}{}",
                    self.process.stderr_tail()
                ),
            };
            let message: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
                panic!("Chromium sent a message that is not JSON ({e}): {text}")
            });
            let params = &message["params"];
            match message["method"].as_str() {
                Some("Fetch.requestPaused") => {
                    self.send_command(
                        "Fetch.continueRequest",
                        json!({ "requestId": params["requestId"] }),
                    );
                }
                Some("Fetch.authRequired") => {
                    let challenge = &params["authChallenge"];
                    let field = |v: &Value| v.as_str().unwrap_or_default().to_string();
                    challenges.push(Challenge {
                        url: field(&params["request"]["url"]),
                        source: field(&challenge["source"]),
                        scheme: field(&challenge["scheme"]),
                        realm: field(&challenge["realm"]),
                    });
                    self.send_command(
                        "Fetch.continueWithAuth",
                        json!({
                            "requestId": params["requestId"],
                            "authChallengeResponse": {
                                "response": "ProvideCredentials",
                                "username": user,
                                "password": password,
                            },
                        }),
                    );
                }
                _ => {}
            }
            let id = message["id"].as_u64();
            if id == Some(navigate)
                && let Some(error) = message.get("error")
            {
                panic!("cannot navigate to {url}: {error}");
            }
            if let Some((eval, _)) = pending
                && id == Some(eval)
            {
                pending = None;
                let result = &message["result"];
                if result.get("exceptionDetails").is_none() && message.get("error").is_none() {
                    last = result["result"]
                        .get("value")
                        .cloned()
                        .unwrap_or(Value::Null);
                    if ok(&last) {
                        break last;
                    }
                }
                thread::sleep(POLL);
            }
        };
        // Requests paused meanwhile go on unchanged once the domain is off.
        self.call("Fetch.disable", json!({}))
            .unwrap_or_else(|e| panic!("Fetch.disable: {e}"));
        (value, challenges)
    }

    /// Sends one CDP command without waiting for its answer; returns its id.
    fn send_command(&mut self, method: &str, params: Value) -> u64 {
        self.next_id += 1;
        let request = json!({ "id": self.next_id, "method": method, "params": params });
        if let Err(e) = self.ws.send(Message::text(request.to_string())) {
            panic!(
                "cannot send {method} to Chromium: {e}{}",
                self.process.stderr_tail()
            );
        }
        self.next_id
    }
}

/// The RGB of the centre pixel of the page's `<img>` as currently displayed, or null while it
/// shows no image yet.
pub const CENTRE_PIXEL: &str = r#"(() => {
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
pub fn colour(pixel: &Value) -> Option<&'static str> {
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
