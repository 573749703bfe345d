//! More viewers than one machine, run on one: an origin pushserve, two relays of its stream and
//! a real nginx spreading viewers over the relays, configured with the block docs/GUIDE.md shows
//! (read from it, with this test's addresses in place of the example's). Each change at the
//! origin must reach every viewer through origin → relay → nginx; what each hop takes is
//! printed.
//!
//! Without nginx the test is skipped (see `common::client_present`).

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::nginx::Nginx;
use common::{DEADLINE, PartReader, TestServer, fixture, sbin_tool};
use serde_json::Value;

/// The site's name in docs/GUIDE.md's example: viewers ask nginx for it, nginx passes it on
/// (`Host $host`), and the relays answer to it because of `--allow-host`.
const SITE: &str = "cam.example.com";

/// How soon the first part must come through nginx after connecting, while the origin sends
/// nothing more: well within the relays' 10 s keep-alive, whose padding would push out what a
/// buffering proxy held back.
const FIRST_PART_WITHIN: Duration = Duration::from_secs(5);

#[test]
fn an_origin_two_relays_and_nginx_bring_every_change_to_every_viewer() {
    let Some(nginx) = sbin_tool("nginx", "-v", "apt-get install nginx") else {
        return;
    };
    let (red, green, blue) = (
        fixture("red.jpg"),
        fixture("green.jpg"),
        fixture("blue.jpg"),
    );
    let origin = TestServer::serving("cam.jpg", &red, &["--poll", "20"]);
    let upstream = format!("{}stream", origin.url);
    let relays = [(); 2].map(|_| TestServer::start(&[&upstream, "--allow-host", SITE]));
    let nginx = Nginx::start(nginx.get_program(), |port| {
        guide_site(port, [&relays[0].addr, &relays[1].addr])
    });
    // Only the relays read the origin, however many viewers there are.
    origin.wait_until_connected("stream", 2);

    // The name nginx passes on is the one the viewer asked for, checked by the relays.
    let status = nginx.get("/status", SITE);
    assert_eq!(
        status.status, 200,
        "the relays refused {SITE}: {}",
        status.head
    );
    let status = nginx.get("/status", "elsewhere.example");
    assert_eq!(
        status.status, 403,
        "a relay answered another name: {}",
        status.head
    );

    // Stream readers (User-Agent `test`, not a browser) through nginx, each with its first part
    // at once: nothing is held back.
    let mut viewers: Vec<(String, Viewer)> = Vec::new();
    for i in 1..=4 {
        let asked = Instant::now();
        let conn = nginx.request("/stream", SITE, "test");
        conn.set_read_timeout(Some(FIRST_PART_WITHIN)).unwrap();
        let mut parts = PartReader::new(conn);
        let first = parts.next_part().expect("a first part");
        let took = asked.elapsed();
        parts
            .conn()
            .get_ref()
            .set_read_timeout(Some(DEADLINE))
            .unwrap();
        eprintln!(
            "nginx stream {i}: first part {} ms after connecting",
            took.as_millis()
        );
        assert_eq!(first.body, red);
        assert!(
            took < FIRST_PART_WITHIN,
            "the first part took {took:?} through nginx"
        );
        viewers.push((format!("nginx stream {i}"), Viewer::Stream(Box::new(parts))));
    }
    // least_conn spread them over both relays.
    let on_relays = relays.each_ref().map(|relay| clients(relay, "stream"));
    eprintln!("stream viewers per relay: {on_relays:?}");
    assert_eq!(on_relays.iter().sum::<u64>(), 4, "{on_relays:?}");
    assert!(on_relays.iter().all(|&n| n > 0), "{on_relays:?}");

    for i in 1..=2 {
        let mut events = open_events(&nginx);
        let (_, size) = events.next();
        assert_eq!(size, red.len() as u64);
        viewers.push((format!("nginx events {i}"), Viewer::Events(events)));
    }
    // One reader at each tier's own port, to tell the hops apart.
    let mut at_origin = origin.stream("", "test");
    assert_eq!(at_origin.next_part().unwrap().body, red);
    viewers.push(("origin".into(), Viewer::Stream(Box::new(at_origin))));
    let mut at_relay = relays[0].stream("", "test");
    assert_eq!(at_relay.next_part().unwrap().body, red);
    viewers.push(("relay".into(), Viewer::Stream(Box::new(at_relay))));

    let changes = [green.clone(), blue.clone()];
    let (tx, rx) = mpsc::channel();
    let names: Vec<String> = viewers.iter().map(|(name, _)| name.clone()).collect();
    let watchers: Vec<_> = viewers
        .into_iter()
        .enumerate()
        .map(|(v, (_, viewer))| {
            let (tx, changes) = (tx.clone(), changes.clone());
            thread::spawn(move || viewer.watch(v, &changes, &tx))
        })
        .collect();

    // Each hop is under a millisecond here, about the noise of waking the readers' threads:
    // the sum over both is the steadier figure.
    let (mut relay_hops, mut nginx_hops, mut both) = (Vec::new(), Vec::new(), Vec::new());
    for (c, bytes) in changes.iter().enumerate() {
        let changed = Instant::now();
        origin.dir().replace("cam.jpg", bytes);
        let mut seen = vec![None; names.len()];
        while seen.iter().any(Option::is_none) {
            let left = DEADLINE.saturating_sub(changed.elapsed());
            let Ok((v, change, at)) = rx.recv_timeout(left) else {
                let missing: Vec<&String> = (0..names.len())
                    .filter(|&v| seen[v].is_none())
                    .map(|v| &names[v])
                    .collect();
                panic!("change {c} never reached {missing:?} within {DEADLINE:?}");
            };
            assert_eq!(change, c, "{} saw the changes out of order", names[v]);
            seen[v] = Some(at - changed);
        }
        let seen: Vec<Duration> = seen.into_iter().map(Option::unwrap).collect();
        let report: Vec<String> = names
            .iter()
            .zip(&seen)
            .map(|(name, took)| format!("{name} {:.1} ms", ms(*took)))
            .collect();
        eprintln!("change {c}: {}", report.join(", "));
        let (origin_at, relay_at) = (seen[names.len() - 2], seen[names.len() - 1]);
        let through_nginx = seen[..names.len() - 2].iter().max().unwrap();
        relay_hops.push(ms(relay_at) - ms(origin_at));
        nginx_hops.push(ms(*through_nginx) - ms(relay_at));
        both.push(ms(*through_nginx) - ms(origin_at));
    }
    eprintln!(
        "origin → relay: {relay_hops:.1?} ms; relay → nginx → slowest viewer: {nginx_hops:.1?} \
         ms; origin → relay → nginx → slowest viewer: {both:.1?} ms"
    );
    drop(tx);
    for watcher in watchers {
        watcher.join().expect("a viewer's reader failed");
    }

    let snapshot = nginx.get("/snapshot", SITE);
    assert_eq!(snapshot.status, 200, "{}", snapshot.head);
    assert_eq!(
        snapshot.header("content-type").as_deref(),
        Some("image/jpeg")
    );
    assert_eq!(snapshot.body, blue);
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `clients.<endpoint>` of a server's /status, asked directly.
fn clients(server: &TestServer, endpoint: &str) -> u64 {
    server.status()["clients"][endpoint].as_u64().unwrap()
}

/// A viewer that has seen the first frame, waiting for the changes.
enum Viewer {
    Stream(Box<PartReader>),
    Events(Events),
}

impl Viewer {
    /// Reports (viewer, change, when) as each of `changes` arrives, in order.
    fn watch(self, viewer: usize, changes: &[Vec<u8>], tx: &mpsc::Sender<(usize, usize, Instant)>) {
        match self {
            Viewer::Stream(mut parts) => {
                for (c, bytes) in changes.iter().enumerate() {
                    parts.wait_for(bytes);
                    let _ = tx.send((viewer, c, Instant::now()));
                }
            }
            Viewer::Events(mut events) => {
                let mut after = 0;
                for (c, bytes) in changes.iter().enumerate() {
                    // The fixtures differ in size from the one before each: an event of the
                    // next frame's size, newer than the last one seen, is that frame.
                    let start = Instant::now();
                    loop {
                        let (seq, size) = events.next();
                        if seq > after && size == bytes.len() as u64 {
                            after = seq;
                            break;
                        }
                        assert!(start.elapsed() < DEADLINE, "no event of change {c}");
                    }
                    let _ = tx.send((viewer, c, Instant::now()));
                }
            }
        }
    }
}

/// Server-Sent Events read through nginx: the sequence number and size of each frame.
struct Events(BufReader<TcpStream>);

impl Events {
    fn next(&mut self) -> (u64, u64) {
        let mut event = None;
        let start = Instant::now();
        loop {
            assert!(start.elapsed() < DEADLINE, "no event within {DEADLINE:?}");
            let mut line = String::new();
            assert!(self.0.read_line(&mut line).unwrap() > 0, "events ended");
            let line = line.trim_end_matches('\n');
            if let Some(data) = line.strip_prefix("data: ") {
                let data: Value = serde_json::from_str(data).unwrap();
                event = Some((
                    data["seq"].as_u64().unwrap(),
                    data["size"].as_u64().unwrap(),
                ));
            } else if line.is_empty()
                && let Some(event) = event.take()
            {
                return event;
            }
        }
    }
}

/// Server-Sent Events through nginx, once their response head has come.
fn open_events(nginx: &Nginx) -> Events {
    let mut lines = BufReader::new(nginx.request("/events", SITE, "test"));
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        assert!(lines.read_line(&mut head).unwrap() > 0, "head: {head}");
    }
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(
        head.contains("Content-Type: text/event-stream\r\n"),
        "{head}"
    );
    Events(lines)
}

/// The nginx block of docs/GUIDE.md's "More viewers than one machine", listening on `port` and
/// spreading over `relays` (`host:port`) instead of the example's names.
fn guide_site(port: u16, relays: [&str; 2]) -> String {
    let section = include_str!("../docs/GUIDE.md")
        .split("\n## More viewers than one machine\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("docs/GUIDE.md's section \"More viewers than one machine\"");
    let block = section
        .split("```nginx\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("an nginx block in docs/GUIDE.md's section \"More viewers than one machine\"");
    let mut site = block.to_string();
    for (example, here) in [
        ("listen 80;", format!("listen 127.0.0.1:{port};")),
        ("server relay1:8080;", format!("server {};", relays[0])),
        ("server relay2:8080;", format!("server {};", relays[1])),
    ] {
        assert!(
            site.contains(example),
            "docs/GUIDE.md's nginx block no longer says {example:?}:\n{block}"
        );
        site = site.replace(example, &here);
    }
    site
}
