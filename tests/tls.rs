//! HTTPS through the real binary: our own TLS client, ffmpeg and Chromium as clients, plain
//! HTTP sent to the TLS port, a client that stalls in the handshake, bad certificates and keys.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::browser::{Browser, CENTRE_PIXEL, colour};
use common::tls::{Verifier, certificate, certificate_valid, client_config};
use common::{DEADLINE, Killed, PartReader, TempDir, TestServer, fixture, tool, wait_exit};
use rustls::crypto::ring::default_provider;
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// A TLS connection to `server` that trusts only `cert` (DER).
fn connect(server: &TestServer, cert: &[u8]) -> Tls {
    connect_with(server, Arc::new(Verifier::pinned(cert)))
}

fn connect_with(server: &TestServer, verifier: Arc<Verifier>) -> Tls {
    let config = client_config(default_provider(), verifier);
    let session =
        ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).unwrap();
    StreamOwned::new(session, server.connect())
}

/// `GET path` over TLS; the whole response.
fn get(server: &TestServer, cert: &[u8], path: &str) -> common::Response {
    let mut tls = connect(server, cert);
    write!(tls, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    match tls.read_to_end(&mut raw) {
        Ok(_) => {}
        // Some clients close without close_notify; we send it, so this must not happen.
        Err(e) => panic!("reading {path} over TLS: {e}"),
    }
    common::Response::parse(&raw)
}

#[test]
fn every_endpoint_answers_over_https_and_the_stream_follows_each_change() {
    let dir = TempDir::new("tls-cert");
    let (cert, key, der) = certificate(&dir);
    let server = TestServer::serving(
        "cam.jpg",
        &fixture("red.jpg"),
        &["--tls-cert", &cert, "--tls-key", &key, "--poll", "20"],
    );
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    for path in ["/", "/snapshot", "/status", "/poll?since=0"] {
        assert_eq!(get(&server, &der, path).status, 200, "{path}");
    }
    assert_eq!(get(&server, &der, "/snapshot").body, fixture("red.jpg"));

    let mut tls = connect(&server, &der);
    write!(
        tls,
        "GET /stream HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n"
    )
    .unwrap();
    let mut parts = PartReader::new(tls);
    parts.wait_for(&fixture("red.jpg"));
    server.dir().replace("cam.jpg", &fixture("green.jpg"));
    parts.wait_for(&fixture("green.jpg"));
}

/// The keeper's keep-alive goes through the TLS session, not around it: a reader idle for
/// longer than --keepalive gets it as a header line, and the stream stays well-formed.
#[test]
fn keep_alives_over_tls_are_whole_header_lines() {
    let dir = TempDir::new("tls-keepalive");
    let (cert, key, der) = certificate(&dir);
    let server = TestServer::serving(
        "now.txt",
        b"one",
        &[
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--poll",
            "20",
            "--keepalive",
            "1",
            "--repeat",
            "0",
        ],
    );
    let mut tls = connect(&server, &der);
    write!(
        tls,
        "GET /stream HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n"
    )
    .unwrap();
    let mut parts = PartReader::new(tls);
    parts.wait_for(b"one");
    // The stimulus, not a wait for an event: two and a half --keepalive periods of silence.
    std::thread::sleep(Duration::from_millis(2500));
    server.dir().rewrite("now.txt", b"two");
    parts.wait_for(b"two");
    assert!(
        parts.keepalives_seen >= 2,
        "{} keep-alives",
        parts.keepalives_seen
    );
}

#[test]
fn the_self_signed_certificate_is_the_one_whose_fingerprint_is_printed() {
    let server = TestServer::serving("cam.jpg", &fixture("red.jpg"), &["--tls-self-signed"]);
    server.wait_stderr("SHA-256 fingerprint");
    let stderr = server.stderr();
    let printed = stderr
        .split("SHA-256 fingerprint ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .unwrap()
        .trim()
        .to_string();
    // Take whatever certificate the server shows, then check it against the printed print.
    let seen = Arc::new(Verifier::default());
    let mut tls = connect_with(&server, Arc::clone(&seen));
    write!(tls, "GET /snapshot HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    tls.read_to_end(&mut raw).unwrap();
    assert_eq!(common::Response::parse(&raw).body, fixture("red.jpg"));
    let der = seen.seen();
    let digest = ring::digest::digest(&ring::digest::SHA256, &der);
    let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    assert_eq!(printed, hex.join(":"));
}

#[test]
fn plain_http_sent_to_the_tls_port_is_told_it_speaks_https() {
    let dir = TempDir::new("tls-plain");
    let (cert, key, _) = certificate(&dir);
    let server = TestServer::serving(
        "cam.jpg",
        &fixture("red.jpg"),
        &["--tls-cert", &cert, "--tls-key", &key],
    );
    let response = server.get("/snapshot", "");
    assert_eq!(response.status, 400);
    assert_eq!(
        String::from_utf8_lossy(&response.body),
        "This port speaks HTTPS: use https:// instead.\r\n"
    );
}

/// The handshake has the request head's deadline (10 s), and a client stalled in it holds
/// up nobody else.
#[test]
fn a_client_stalled_in_the_handshake_is_dropped_and_holds_up_nobody() {
    let dir = TempDir::new("tls-stall");
    let (cert, key, der) = certificate(&dir);
    let server = TestServer::serving(
        "cam.jpg",
        &fixture("red.jpg"),
        &["--tls-cert", &cert, "--tls-key", &key],
    );
    let mut stalled = server.connect();
    stalled
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    // The first bytes of a ClientHello, and nothing more.
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    let since = Instant::now();
    assert_eq!(get(&server, &der, "/snapshot").body, fixture("red.jpg"));
    let mut rest = Vec::new();
    let _ = stalled.read_to_end(&mut rest);
    let held = since.elapsed();
    assert!(
        held < Duration::from_secs(14),
        "the stalled handshake was held {held:?}"
    );
    assert!(
        held >= Duration::from_secs(9),
        "dropped after only {held:?}"
    );
}

#[test]
fn a_missing_mismatched_or_invalid_certificate_or_key_is_exit_1_naming_the_file() {
    let dir = TempDir::new("tls-bad");
    let (cert, key, _) = certificate(&dir);
    let other = TempDir::new("tls-bad-other");
    let (_, other_key, _) = certificate(&other);
    dir.rewrite("garbage.pem", b"not a certificate at all\n");
    let key_pem = std::fs::read_to_string(&key).unwrap();
    let cert_pem = std::fs::read_to_string(&cert).unwrap();
    let garbage = dir.path("garbage.pem").display().to_string();
    let missing = dir.path("missing.pem").display().to_string();
    for (cert, key, names) in [
        (&missing, &key, &missing),
        (&cert, &missing, &missing),
        (&garbage, &key, &garbage),
        (&cert, &garbage, &garbage),
        (&cert, &other_key, &other_key),
        (&key, &cert, &key),
    ] {
        let out = Command::new(common::bin())
            .arg(dir.path("cert.pem"))
            .args(["--tls-cert", cert, "--tls-key", key, "--port", "0"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{cert} {key}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(names.as_str()), "names {names}: {stderr}");
        assert!(out.stdout.is_empty());
        // Nothing from inside the files: no line of the key or the certificate.
        for pem in [&key_pem, &cert_pem] {
            let inside = pem.lines().nth(1).unwrap();
            assert!(!stderr.contains(inside), "{stderr}");
        }
    }
}

/// What pushserve says on stderr when it serves `cert` and `key` and exits (`--once`).
fn startup_stderr(dir: &TempDir, cert: &str, key: &str) -> String {
    dir.rewrite("a.txt", b"a");
    let child = Command::new(common::bin())
        .arg(dir.path("a.txt"))
        .args([
            "--once",
            "--tls-cert",
            cert,
            "--tls-key",
            key,
            "--port",
            "0",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (status, stdout, stderr) = Killed(child).finish("pushserve --once never exited");
    assert!(
        status.success() && stdout.starts_with("https://"),
        "{stdout} {stderr}"
    );
    stderr
}

/// The date rcgen writes for `time`, as pushserve's warnings show it.
fn utc_day(time: SystemTime) -> String {
    let time = time::OffsetDateTime::from(time);
    format!(
        "{}-{:02}-{:02}",
        time.year(),
        u8::from(time.month()),
        time.day()
    )
}

#[test]
fn a_certificate_out_of_its_dates_or_a_key_others_can_read_is_one_warning_each() {
    let day = Duration::from_secs(24 * 60 * 60);
    let now = SystemTime::now();
    let dir = TempDir::new("tls-warnings");
    let (cert, key, _) = certificate(&dir);
    assert_eq!(
        startup_stderr(&dir, &cert, &key),
        "",
        "a good pair is served without a word"
    );

    let (expired_from, expired_on) = (now - 30 * day, now - day);
    let (cert, key, _) = certificate_valid(&dir, expired_from, expired_on);
    let stderr = startup_stderr(&dir, &cert, &key);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("'{cert}' expired on {} ", utc_day(expired_on)))
            && stderr.contains(&format!("valid from {} ", utc_day(expired_from))),
        "{stderr}"
    );

    let (valid_from, valid_to) = (now + day, now + 30 * day);
    let (cert, key, _) = certificate_valid(&dir, valid_from, valid_to);
    let stderr = startup_stderr(&dir, &cert, &key);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "'{cert}' is not valid before {} ",
            utc_day(valid_from)
        )) && stderr.contains(&format!("valid to {} ", utc_day(valid_to))),
        "{stderr}"
    );

    let (cert, key, _) = certificate(&dir);
    for mode in [0o644, 0o640, 0o604] {
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
        let stderr = startup_stderr(&dir, &cert, &key);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(&format!("'{key}' holds the private key and is readable by other users (mode {mode:o}); chmod 600 it")),
            "{stderr}"
        );
    }
}

#[test]
fn ffmpeg_reads_the_stream_over_https() {
    let Some(mut ffmpeg) = tool("ffmpeg", "apt-get install ffmpeg") else {
        return;
    };
    let dir = TempDir::new("tls-ffmpeg");
    let (cert, key, _) = certificate(&dir);
    let server = TestServer::serving(
        "cam.jpg",
        &fixture("red.jpg"),
        &["--tls-cert", &cert, "--tls-key", &key],
    );
    let mut child = common::Killed(
        ffmpeg
            .args(["-hide_banner", "-loglevel", "error", "-tls_verify", "0"])
            .args(["-f", "mpjpeg", "-i"])
            .arg(format!("{}stream", server.url))
            .args(["-frames:v", "1", "-c", "copy", "-f", "mjpeg", "-"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let status = wait_exit(&mut child.0, "ffmpeg to read one frame over HTTPS");
    let mut out = Vec::new();
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    let mut err = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "ffmpeg: {err}");
    assert_eq!(out, fixture("red.jpg"));
}

#[test]
fn chromium_shows_the_viewer_over_https() {
    if !common::browser::chromium_present() {
        return;
    }
    let dir = TempDir::new("tls-chromium");
    let (cert, key, _) = certificate(&dir);
    let server = TestServer::serving(
        "cam.jpg",
        &fixture("red.jpg"),
        &["--tls-cert", &cert, "--tls-key", &key, "--poll", "20"],
    );
    let mut browser = Browser::launch("data:text/html,blank");
    // As a person does who accepted the certificate (or whose machine trusts its issuer).
    browser
        .call(
            "Security.setIgnoreCertificateErrors",
            serde_json::json!({ "ignore": true }),
        )
        .unwrap();
    browser.navigate(&server.url);
    for want in ["red", "blue"] {
        if want == "blue" {
            server.dir().replace("cam.jpg", &fixture("blue.jpg"));
        }
        browser.wait_until(&format!("{want} over HTTPS"), CENTRE_PIXEL, DEADLINE, |p| {
            colour(p) == Some(want)
        });
    }
    assert_eq!(
        browser.eval("document.getElementById('state').textContent"),
        "live"
    );
}

/// The write rule holds under TLS: a client that completes its handshake and then stops
/// reading is dropped within --write-timeout, and a healthy TLS client is not held up.
#[test]
fn a_tls_client_that_stops_reading_is_dropped_and_holds_up_nobody() {
    let dir = TempDir::new("tls-stops-reading");
    let (cert, key, der) = certificate(&dir);
    let size = 4 << 20;
    let server = TestServer::serving(
        "big.bin",
        &vec![b'a'; size],
        &[
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--poll",
            "20",
            "--write-timeout",
            "2",
        ],
    );
    let idle_threads = server.threads();
    let mut stalled = connect(&server, &der);
    write!(stalled, "GET /stream HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    stalled.flush().unwrap();
    server.wait_threads(
        "rose for the stalled client",
        |n| n > idle_threads,
        DEADLINE,
    );

    let mut tls = connect(&server, &der);
    write!(
        tls,
        "GET /stream HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n"
    )
    .unwrap();
    let mut healthy = PartReader::new(tls);
    healthy.next_part().unwrap();
    let start = Instant::now();
    for i in 1u8.. {
        let version = vec![b'a' + i % 26; size];
        server.dir().replace("big.bin", &version);
        assert_eq!(healthy.next_part().unwrap().body, version);
        if server.threads() == idle_threads + 1 {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the stalled TLS client was never dropped"
        );
    }
    drop(stalled);
}
