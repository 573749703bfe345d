//! `--auth USER:PASS` through the real binary: every path asks for credentials (unknown ones
//! too, before saying 404), refuses wrong and malformed ones the same way, lets the right ones
//! through; a CORS preflight passes without them; the command line, the environment, the log
//! and the startup warning; and Chromium logging in to the viewer.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::Command;
use std::time::Instant;

use common::browser::{Browser, CENTRE_PIXEL, OtherOrigin, colour};
use common::{DEADLINE, PartReader, Response, TempDir, TestServer, fixture};
use serde_json::Value;

const CHALLENGE: &str = "Basic realm=\"pushserve\", charset=\"UTF-8\"";
const ALICE: &str = "alice:s3cret";

/// `Authorization: Basic …` for `user_pass`, as a header line.
fn basic(user_pass: &str) -> String {
    format!("Authorization: Basic {}\r\n", base64(user_pass.as_bytes()))
}

/// Base64 with padding (RFC 4648 section 4).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize])
            } else {
                '='
            });
        }
    }
    out
}

/// Checks that `response` is the challenge: 401, the exact WWW-Authenticate, a short text body
/// of the stated length, nosniff.
fn assert_challenge(response: &Response, what: &str) {
    assert_eq!(response.status, 401, "{what}: {}", response.head);
    assert_eq!(
        response.header("www-authenticate").as_deref(),
        Some(CHALLENGE),
        "{what}"
    );
    assert_eq!(
        response.header("content-length"),
        Some(response.body.len().to_string()),
        "{what}"
    );
    assert!(
        !response.body.is_empty() && response.body.len() < 100,
        "{what}"
    );
    assert!(
        response
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{what}"
    );
    assert_eq!(
        response.header("x-content-type-options").as_deref(),
        Some("nosniff"),
        "{what}"
    );
}

/// Sends `METHOD path` with `headers` (and Host) and reads the response head and as much body
/// as its Content-Length says, so that a stream served where a 401 was due fails the test
/// instead of holding it.
fn ask(server: &TestServer, method: &str, path: &str, headers: &str) -> Response {
    let mut reader = send(server, method, path, headers);
    let mut raw = Vec::new();
    while !raw.ends_with(b"\r\n\r\n") {
        assert!(
            reader.read_until(b'\n', &mut raw).unwrap() > 0,
            "{method} {path}: {raw:?}"
        );
    }
    let length = match Response::parse(&raw).header("content-length") {
        Some(n) if method != "HEAD" => n.parse().unwrap(),
        _ => 0,
    };
    let start = raw.len();
    raw.resize(start + length, 0);
    reader.read_exact(&mut raw[start..]).unwrap();
    Response::parse(&raw)
}

fn get(server: &TestServer, path: &str, headers: &str) -> Response {
    ask(server, "GET", path, headers)
}

/// Every way to be refused: no header, a wrong password, a wrong user, and malformed headers.
fn refused_headers() -> Vec<(&'static str, String)> {
    vec![
        ("no credentials", String::new()),
        ("a wrong password", basic("alice:s3cret!")),
        ("a wrong user", basic("bob:s3cret")),
        ("the right password under no name", basic(":s3cret")),
        (
            "another scheme",
            format!("Authorization: Bearer {}\r\n", base64(ALICE.as_bytes())),
        ),
        (
            "bad base64",
            "Authorization: Basic YWxpY2U6czNjcmV0=\r\n".to_string(),
        ),
        (
            "base64 with a stray character",
            "Authorization: Basic YWxp*2U6czNjcmV0\r\n".to_string(),
        ),
        ("no colon", basic("alices3cret")),
        ("no token", "Authorization: Basic\r\n".to_string()),
    ]
}

/// Sends `METHOD path` with `headers` (and Host); returns the connection to read the answer.
fn send(
    server: &TestServer,
    method: &str,
    path: &str,
    headers: &str,
) -> BufReader<std::net::TcpStream> {
    let mut conn = server.connect();
    write!(
        conn,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/8.0\r\n{headers}\r\n"
    )
    .unwrap();
    BufReader::new(conn)
}

/// Opens `/…stream` with `headers` and returns its first part's body.
fn first_part(server: &TestServer, path: &str, headers: &str) -> Vec<u8> {
    let mut conn = server.connect();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/8.0\r\n{headers}\r\n"
    )
    .unwrap();
    let mut reader = PartReader::new(conn);
    assert!(reader.head.starts_with("HTTP/1.1 200 "), "{}", reader.head);
    reader.next_part().expect("a first part").body
}

/// Opens `/…events` with `headers` and returns the response head and its first event.
fn first_event(server: &TestServer, path: &str, headers: &str) -> (String, String) {
    let mut reader = send(server, "GET", path, headers);
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        assert!(reader.read_line(&mut head).unwrap() > 0, "{head}");
    }
    let mut event = String::new();
    while !(event.contains("data:") && event.ends_with("\n\n")) {
        assert!(reader.read_line(&mut event).unwrap() > 0, "{event}");
    }
    (head, event)
}

#[test]
fn every_path_of_one_source_asks_for_credentials_first() {
    let server = TestServer::serving("cam.jpg", &fixture("red.jpg"), &["--auth", ALICE]);
    let paths = [
        "/",
        "/stream",
        "/stream?type=image/*",
        "/snapshot",
        "/events",
        "/poll?since=0",
        "/status",
        "/nope",
        "/cam/stream",
        "/../../etc/passwd",
    ];
    for path in paths {
        for (what, headers) in refused_headers() {
            assert_challenge(
                &get(&server, path, &headers),
                &format!("{path} with {what}"),
            );
        }
        let head = ask(&server, "HEAD", path, "");
        assert_eq!(head.status, 401, "HEAD {path}");
        assert_eq!(head.header("www-authenticate").as_deref(), Some(CHALLENGE));
    }
    // Other methods are refused before they are found not allowed, and so is a preflight
    // without --cors.
    for method in ["POST", "OPTIONS", "DELETE"] {
        assert_challenge(&ask(&server, method, "/snapshot", ""), method);
    }
    // The Host check comes first, as without --auth.
    let response = Response::parse(&server.raw(b"GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n"));
    assert_eq!(response.status, 403);
}

#[test]
fn the_right_credentials_open_every_endpoint_of_one_source() {
    let red = fixture("red.jpg");
    let server = TestServer::serving("cam.jpg", &red, &["--auth", ALICE]);
    let auth = basic(ALICE);
    let page = get(&server, "/", &auth);
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("<title>pushserve</title>"));
    let snapshot = get(&server, "/snapshot", &auth);
    assert_eq!((snapshot.status, &snapshot.body), (200, &red));
    assert!(snapshot.header("www-authenticate").is_none());
    let status: Value = serde_json::from_slice(&get(&server, "/status", &auth).body).unwrap();
    assert_eq!(status["sources"][0]["name"], "cam");
    let poll = get(&server, "/poll?since=0", &auth);
    assert_eq!(poll.status, 200);
    assert!(String::from_utf8_lossy(&poll.body).contains("\"seq\":1"));
    assert_eq!(first_part(&server, "/stream", &auth), red);
    let (head, event) = first_event(&server, "/events", &auth);
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(event.contains("\"name\":\"cam.jpg\""), "{event}");
    // Only now is an unknown path said to be unknown.
    assert_eq!(get(&server, "/nope", &auth).status, 404);
    // The scheme's name is case-insensitive (RFC 7617).
    let lower = format!("authorization: basic {}\r\n", base64(ALICE.as_bytes()));
    assert_eq!(get(&server, "/snapshot", &lower).status, 200);
}

#[test]
fn every_path_of_several_sources_asks_for_credentials_first() {
    let dir = TempDir::new("auth-several");
    dir.rewrite("front.jpg", &fixture("red.jpg"));
    dir.rewrite("back.jpg", &fixture("blue.jpg"));
    let front = dir.path("front.jpg");
    let back = dir.path("back.jpg");
    let server = TestServer::start(&[
        front.to_str().unwrap(),
        back.to_str().unwrap(),
        "--auth",
        ALICE,
    ]);
    for path in [
        "/",
        "/front",
        "/front/",
        "/back/stream",
        "/back/snapshot",
        "/back/events",
        "/back/poll",
        "/status",
        "/nobody/stream",
        "/nobody",
    ] {
        for (what, headers) in refused_headers() {
            assert_challenge(
                &get(&server, path, &headers),
                &format!("{path} with {what}"),
            );
        }
    }
    let auth = basic(ALICE);
    let index = get(&server, "/", &auth);
    assert_eq!(index.status, 200);
    assert!(String::from_utf8_lossy(&index.body).contains("<html"));
    assert_eq!(get(&server, "/front", &auth).status, 301);
    assert_eq!(get(&server, "/back/", &auth).status, 200);
    assert_eq!(
        first_part(&server, "/back/stream", &auth),
        fixture("blue.jpg")
    );
    assert_eq!(first_part(&server, "/stream", &auth), fixture("red.jpg"));
    assert_eq!(get(&server, "/nobody/stream", &auth).status, 404);
}

#[test]
fn each_account_works_and_a_password_may_hold_colons() {
    let server = TestServer::serving(
        "now.txt",
        b"hello",
        &[
            "--auth",
            ALICE,
            "--auth",
            "bob:pa:ss:w0rd",
            "--auth",
            "carol:",
        ],
    );
    for account in [ALICE, "bob:pa:ss:w0rd", "carol:"] {
        let response = get(&server, "/snapshot", &basic(account));
        assert_eq!(
            (response.status, &response.body[..]),
            (200, &b"hello"[..]),
            "{account}"
        );
    }
    // One account's password does not open another's name, and a password is whole.
    for wrong in [
        "bob:s3cret",
        "alice:pa:ss:w0rd",
        "bob:pa",
        "bob:pa:ss",
        "carol:x",
        "carol",
    ] {
        assert_challenge(&get(&server, "/snapshot", &basic(wrong)), wrong);
    }
}

#[test]
fn a_cors_preflight_passes_without_credentials_and_the_request_after_it_does_not() {
    let server = TestServer::serving("now.txt", b"hello", &["--auth", ALICE, "--cors"]);
    let preflight = |path: &str| {
        ask(
            &server,
            "OPTIONS",
            path,
            "Origin: http://a.example\r\nAccess-Control-Request-Method: GET\r\n\
             Access-Control-Request-Headers: authorization\r\n",
        )
    };
    let answer = preflight("/snapshot");
    assert_eq!(answer.status, 204, "{}", answer.head);
    assert_eq!(
        answer.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    let allowed = answer.header("access-control-allow-headers").unwrap();
    assert!(allowed.contains("Authorization"), "{allowed}");
    // The same answer wherever it is asked: a preflight tells nothing of which paths exist.
    for path in ["/events", "/stream", "/nope", "/nobody/snapshot"] {
        let other = preflight(path);
        assert_eq!(other.status, 204, "{path}");
        assert_eq!(
            other.head.lines().skip(1).collect::<Vec<_>>(),
            answer.head.lines().skip(1).collect::<Vec<_>>(),
            "{path}"
        );
    }
    let origin = "Origin: http://a.example\r\n";
    let refused = get(&server, "/snapshot", origin);
    assert_challenge(&refused, "the GET after the preflight");
    // Readable by the page that asked, so that it can tell a refusal from a server gone.
    assert_eq!(
        refused.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    let answer = get(&server, "/snapshot", &format!("{origin}{}", basic(ALICE)));
    assert_eq!((answer.status, &answer.body[..]), (200, &b"hello"[..]));
    assert_eq!(
        answer.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
}

#[test]
fn an_auth_value_without_a_colon_or_a_user_is_a_usage_error() {
    for (value, says) in [
        ("nocolon", "has no colon"),
        (":pw", "user name before the colon is empty"),
    ] {
        let out = Command::new(common::bin())
            .args(["x.jpg", "--port", "0", "--auth", ALICE, "--auth", value])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--auth takes USER:PASS") && err.contains(says),
            "{err}"
        );
        // The value may be a password typed without its user name: it is not repeated.
        assert!(!err.contains(value), "{err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn pushserve_auth_gives_one_account_and_help_never_shows_it() {
    let mut command = Command::new(common::bin());
    let dir = TempDir::new("auth-env");
    dir.rewrite("now.txt", b"hello");
    command
        .arg(dir.path("now.txt"))
        .env("PUSHSERVE_AUTH", "envuser:env:s3cret");
    let server = TestServer::start_command(command);
    assert_challenge(&get(&server, "/snapshot", ""), "no credentials");
    assert_eq!(
        get(&server, "/snapshot", &basic("envuser:env:s3cret")).status,
        200
    );

    for flag in ["--help", "-h"] {
        let out = Command::new(common::bin())
            .arg(flag)
            .env("PUSHSERVE_AUTH", "envuser:env:s3cret")
            .output()
            .unwrap();
        assert!(out.status.success());
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("--auth <USER:PASS>"), "{help}");
        assert!(
            !help.contains("envuser") && !help.contains("s3cret"),
            "{help}"
        );
        if flag == "--help" {
            assert!(help.contains("[env: PUSHSERVE_AUTH]"), "{help}");
        }
    }
}

#[test]
fn verbose_logs_a_refusal_with_the_user_tried_and_never_the_password() {
    let server = TestServer::serving("now.txt", b"hello", &["--auth", ALICE, "-v"]);
    assert_eq!(
        get(&server, "/snapshot", &basic("mallory:guess-one")).status,
        401
    );
    assert_eq!(get(&server, "/snapshot", &basic(ALICE)).status, 200);
    assert_eq!(get(&server, "/stream", "").status, 401);
    assert_eq!(get(&server, "/nope", &basic("alice:s3cret:x")).status, 401);
    assert_eq!(
        get(&server, "/status", "Authorization: Basic %%%%\r\n").status,
        401
    );
    // A name that would drive the terminal or forge a field of the line.
    assert_eq!(
        get(&server, "/poll", &basic("eve\u{1b}[2J\" 200:guess-two")).status,
        401
    );
    // A line is written when its connection ends, which need not be in the order they began.
    for path in [
        " /snapshot 401 ",
        " /snapshot 200 ",
        " /stream 401 ",
        " /nope 401 ",
        " /status 401 ",
        " /poll 401 ",
    ] {
        server.wait_stderr(path);
    }
    let stderr = server.stderr();
    let line = |needle: &str| {
        let found: Vec<&str> = stderr.lines().filter(|l| l.contains(needle)).collect();
        assert_eq!(found.len(), 1, "one line with {needle:?}: {stderr}");
        found[0].to_string()
    };
    let refused = line("mallory");
    assert!(refused.contains(" /snapshot 401 "), "{refused}");
    assert!(
        refused.ends_with(" (wrong credentials for user \"mallory\")"),
        "{refused}"
    );
    assert!(
        line(" /snapshot 200 ").ends_with('B'),
        "nothing about a user on a success"
    );
    assert!(line(" /stream 401 ").ends_with(" (no credentials)"));
    assert!(line(" /nope 401 ").ends_with(" (wrong credentials for user \"alice\")"));
    assert!(line(" /status 401 ").ends_with(" (malformed credentials)"));
    let eve = line(" /poll 401 ");
    assert!(
        eve.ends_with(" (wrong credentials for user \"eve\\u{1b}[2J\\\" 200\")"),
        "{eve}"
    );
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
    for secret in ["guess-one", "guess-two", "s3cret"] {
        assert!(!stderr.contains(secret), "{stderr}");
    }
}

/// Runs `pushserve FILE --once ARGS` to its end (it exits once the URL is out, so a server
/// bound beyond loopback is up for a moment only); returns its stderr.
fn once_stderr(args: &[&str]) -> String {
    let dir = TempDir::new("auth-once");
    dir.rewrite("now.txt", b"hello");
    let out = Command::new(common::bin())
        .arg(dir.path("now.txt"))
        .args(["--once", "--port", "0"])
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn credentials_that_would_cross_the_network_in_clear_text_are_warned_of_once() {
    const WARNING: &str = "cross the network in clear text";
    let warned = once_stderr(&["--bind", "0.0.0.0", "--auth", "u:p"]);
    assert_eq!(warned.matches(WARNING).count(), 1, "{warned}");
    assert!(warned.contains("--bind 0.0.0.0"), "{warned}");
    assert!(!warned.contains("u:p"), "{warned}");
    for args in [
        &["--bind", "127.0.0.1", "--auth", "u:p"][..],
        &["--bind", "::1", "--auth", "u:p"][..],
        &["--bind", "0.0.0.0"][..],
        &["--bind", "0.0.0.0", "--auth", "u:p", "--tls-self-signed"][..],
    ] {
        let quiet = once_stderr(args);
        assert!(!quiet.contains(WARNING), "{args:?}: {quiet}");
    }
}

/// The paths the server refused with 401, from its access log.
fn refused_paths(server: &TestServer) -> Vec<String> {
    server
        .stderr()
        .lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            (fields.get(3) == Some(&"401")).then(|| fields[2].to_string())
        })
        .collect()
}

#[test]
fn chromium_logs_in_to_the_viewer_and_sees_it_live() {
    if !common::browser::chromium_present() {
        return;
    }
    let server = TestServer::serving(
        "cam.jpg",
        &fixture("red.jpg"),
        &["--auth", ALICE, "--auth", "bob:other", "--poll", "20", "-v"],
    );
    // Start elsewhere, so that every request to the server is one the login below sees.
    let blank = OtherOrigin::serve("<!doctype html><title>blank</title>".into());
    let mut browser = Browser::launch(&blank.url);
    let start = Instant::now();
    let (state, challenges) = browser.log_in(
        &server.url,
        ("alice", "s3cret"),
        "the viewer to show the red image, live",
        &format!(
            "(() => {{ const p = {CENTRE_PIXEL}; \
             return p && document.getElementById('state').textContent + ' ' + p.join(','); }})()"
        ),
        |v| {
            v.as_str().is_some_and(|s| {
                let (state, rgb) = s.split_once(' ').unwrap();
                let rgb: Vec<Value> = rgb
                    .split(',')
                    .map(|c| c.parse::<u64>().unwrap().into())
                    .collect();
                state == "live" && colour(&Value::Array(rgb)) == Some("red")
            })
        },
    );
    eprintln!("logged in and live after {:?}: {state}", start.elapsed());
    // The page itself asked; what it then loaded went with what Chromium remembered of the login.
    assert!(!challenges.is_empty());
    assert_eq!(challenges[0].url, server.url);
    for challenge in &challenges {
        assert_eq!(
            (
                challenge.source.as_str(),
                challenge.scheme.as_str(),
                challenge.realm.as_str()
            ),
            ("Server", "basic", "pushserve"),
            "{challenge:?}"
        );
    }
    // The stream and the events are open, on the page's credentials.
    let auth = basic(ALICE);
    let start = Instant::now();
    loop {
        let status: Value = serde_json::from_slice(&get(&server, "/status", &auth).body).unwrap();
        if status["clients"]["stream"] == 1 && status["clients"]["events"] == 1 {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the page's stream and events never opened: {status}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    server.dir().replace("cam.jpg", &fixture("green.jpg"));
    browser.wait_until(
        "the viewer to show green",
        CENTRE_PIXEL,
        DEADLINE,
        |pixel| colour(pixel) == Some("green"),
    );
    assert_eq!(
        browser.eval("document.getElementById('state').textContent"),
        "live"
    );
    // Every 401 the server sent was a challenge the login answered: none went unanswered.
    let start = Instant::now();
    loop {
        let mut refused = refused_paths(&server);
        refused.sort();
        let mut answered: Vec<String> = challenges
            .iter()
            .map(|c| {
                c.url
                    .trim_start_matches(server.url.trim_end_matches('/'))
                    .to_string()
            })
            .collect();
        answered.sort();
        if refused == answered {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the server refused {refused:?}, the login answered {answered:?}: {}",
            server.stderr()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let stderr = server.stderr();
    assert!(
        !stderr.contains(" /stream 401 ") && !stderr.contains(" /events 401 "),
        "{stderr}"
    );
}

#[test]
fn a_page_on_another_origin_reads_with_its_own_authorization_header() {
    if !common::browser::chromium_present() {
        return;
    }
    let server = TestServer::serving("now.txt", b"hello", &["--auth", ALICE, "--cors", "-v"]);
    let page = OtherOrigin::serve("<!doctype html><title>elsewhere</title>".into());
    let mut browser = Browser::launch(&page.url);
    let answers = browser.eval(&format!(
        r#"(async () => {{
            const ask = (headers) => fetch("{url}snapshot", {{ headers }}).then(
                async (r) => r.status + " " + await r.text(), (e) => "failed: " + e);
            return [
                await ask({{}}),
                await ask({{ Authorization: "Basic " + btoa("alice:wrong") }}),
                await ask({{ Authorization: "Basic " + btoa("{ALICE}") }}),
            ];
        }})()"#,
        url = server.url
    ));
    assert_eq!(
        answers,
        serde_json::json!(["401 Unauthorized", "401 Unauthorized", "200 hello"])
    );
    // The header made Chromium ask first, and the preflight passed without credentials.
    server.wait_stderr(" /snapshot 204 ");
}
