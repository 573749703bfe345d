//! Wires a run together: checks PATH, starts its source thread, listens, prints the URL and
//! accepts connections. Startup errors return here; everything after is per connection.

use std::fs::{self, File};
use std::hash::{BuildHasher, RandomState};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};

use crate::cli::Args;
use crate::frame::Latest;
use crate::http::listener;
use crate::keeper::Keeper;
use crate::report::describe_io_error;
use crate::report::{self, Level};
use crate::routes::{self, App};
use crate::shutdown;
use crate::source::file::FileSource;
use crate::source::slideshow::Slideshow;
use crate::source::{Source, content_type_for};
use crate::status::{self, Stats};

/// How long startup waits for the first complete frame before printing the URL anyway.
const FIRST_FRAME_WAIT: Duration = Duration::from_secs(1);

/// The viewer page; `{{POLL_MS}}` becomes `--poll`, its fallback polling interval.
const VIEWER: &str = include_str!("viewer.html");

pub fn run(args: Args) -> Result<()> {
    report::set_level(match (args.quiet, args.verbose) {
        (true, _) => Level::Quiet,
        (_, true) => Level::Verbose,
        _ => Level::Normal,
    });
    let source = open_source(&args)?;
    let source_is_folder = matches!(source, Source::Slideshow(_));
    let latest = Arc::new(Latest::new(random_boundary()));
    let listener = TcpListener::bind((args.bind, args.port)).map_err(|e| {
        let addr = SocketAddr::new(args.bind, args.port);
        anyhow!("cannot listen on {addr}: {}", describe_io_error(&e))
    })?;
    let stats = Arc::new(Stats::default());
    shutdown::on_signal_close(Arc::clone(&latest), Arc::clone(&stats))?;

    let (source_latest, source_stats) = (Arc::clone(&latest), Arc::clone(&stats));
    thread::Builder::new()
        .name("source".into())
        .spawn(move || {
            let finite = matches!(&source, Source::Slideshow(show) if show.once);
            source.run(Arc::clone(&source_latest));
            if finite {
                shutdown::close_and_exit(&source_latest, &source_stats);
            }
        })?;

    let keepalive = Duration::from_secs(args.keepalive);
    let app = App {
        keeper: Keeper::start(Arc::clone(&latest), keepalive)?,
        latest: Arc::clone(&latest),
        stats: Arc::clone(&stats),
        keepalive,
        repeat: (args.repeat > 0).then(|| Duration::from_secs(args.repeat)),
        write_timeout: Duration::from_secs(args.write_timeout),
        cors: args.cors,
        source_path: args.path.clone(),
        source_is_folder,
        viewer: VIEWER.replace("{{POLL_MS}}", &args.poll.to_string()),
    };
    // Once the URL is out, every thread is up and, unless the file is mid-write, the first
    // frame is there: a script may fetch /snapshot at once.
    let _ = latest.wait_newer(0, FIRST_FRAME_WAIT);
    println!("{}", viewer_url(listener.local_addr()?));
    status::start_line(stats, latest);
    listener::serve(&listener, Arc::new(move |conn| routes::handle(&app, conn)))
}

/// The source for PATH, checked before anything listens: a readable file, or a folder with at
/// least one slide.
fn open_source(args: &Args) -> Result<Source> {
    let path = &args.path;
    let cannot_read = |e: std::io::Error| {
        anyhow!(
            "cannot read '{}': {}",
            path.display(),
            describe_io_error(&e)
        )
    };
    if !fs::metadata(path).map_err(cannot_read)?.is_dir() {
        File::open(path).map_err(cannot_read)?;
        return Ok(Source::File(FileSource {
            path: path.clone(),
            content_type: content_type_for(path, args.content_type.as_deref()),
            poll: Duration::from_millis(args.poll),
            max_frame: args.max_frame,
        }));
    }
    fs::read_dir(path).map_err(cannot_read)?;
    let opts = &args.slideshow;
    let show = Slideshow {
        dir: path.clone(),
        extensions: opts
            .ext
            .iter()
            .map(|e| e.trim().trim_start_matches('.').to_ascii_lowercase())
            .collect(),
        recursive: opts.recursive,
        order: opts.order,
        interval: Duration::from_millis(opts.interval),
        once: opts.once,
        forced_type: args.content_type.clone(),
        max_frame: args.max_frame,
    };
    if show.list().is_empty() {
        bail!(
            "'{}' has no files ending in {}{}",
            path.display(),
            show.extensions.join(", "),
            if opts.recursive {
                ""
            } else {
                " (add --recursive to look in subfolders)"
            }
        );
    }
    Ok(Source::Slideshow(show))
}

/// The URL to print: an unspecified bind address is shown as loopback, which always works here.
fn viewer_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        ip if !ip.is_unspecified() => ip,
        std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
    };
    format!("http://{}/", SocketAddr::new(ip, addr.port()))
}

/// 40 random letters and digits: a browser finds parts by scanning for the boundary, so it
/// must never occur in a frame by chance.
fn random_boundary() -> String {
    const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let random = RandomState::new();
    (0..40u64)
        .map(|i| char::from(ALPHANUMERIC[(random.hash_one(i) % 62) as usize]))
        .collect()
}
