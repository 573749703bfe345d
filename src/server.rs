//! Wires a run together: checks PATH, starts its source thread, listens, prints the URL and
//! accepts connections. Startup errors return here; everything after is per connection.

use std::fs;
use std::hash::{BuildHasher, RandomState};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};

use crate::channel::Channel;
use crate::cli::Args;
use crate::http::host::HostCheck;
use crate::http::listener;
use crate::keeper::Keeper;
use crate::report::describe_io_error;
use crate::report::{self, Level};
use crate::routes::{self, App};
use crate::shutdown;
use crate::source::file::{self, FileSource, Skip};
use crate::source::slideshow::{Playing, Slideshow};
use crate::source::{Source, content_type_for};
use crate::status;
use crate::wake::Waiter;

/// How long startup waits for the first complete frame before printing the URL anyway.
const FIRST_FRAME_WAIT: Duration = Duration::from_secs(1);

pub fn run(args: Args) -> Result<()> {
    report::set_level(match (args.quiet, args.verbose) {
        (true, _) => Level::Quiet,
        (_, true) => Level::Verbose,
        _ => Level::Normal,
    });
    let source = open_source(&args)?;
    let channel = Channel::new(
        source.name,
        source.kind,
        source.description,
        random_boundary(),
        false,
    );
    let latest = &channel.latest;
    let addr = SocketAddr::new(args.bind, args.port);
    let listener = listener::bind(addr)
        .map_err(|e| anyhow!("cannot listen on {addr}: {}", describe_io_error(&e)))?;
    shutdown::on_signal_close(Arc::clone(&channel))?;

    let source_channel = Arc::clone(&channel);
    let once = args.slideshow.once;
    let producer = source.producer;
    thread::Builder::new()
        .name("source".into())
        .spawn(move || {
            producer.run(&source_channel);
            if once {
                shutdown::close_and_exit(&source_channel);
            }
        })?;

    let keepalive = Duration::from_secs(args.keepalive);
    let app = App {
        keeper: {
            let channel = Arc::clone(&channel);
            Keeper::start(move || channel.is_closed(), keepalive)?
        },
        channel: Arc::clone(&channel),
        keepalive,
        repeat: (args.repeat > 0).then(|| Duration::from_secs(args.repeat)),
        cors: args.cors,
        hosts: HostCheck::new(args.bind, &args.allow_host),
    };
    // Once the URL is out, every thread is up and, unless the file is mid-write, the first
    // frame is there: a script may fetch /snapshot at once.
    let _ = latest
        .subscribe(&Waiter::for_current_thread())
        .wait_newer(0, FIRST_FRAME_WAIT);
    // Nobody may be reading stdout (`| head -1` has exited, or it was closed): serve anyway.
    let _ = writeln!(std::io::stdout(), "{}", viewer_url(listener.local_addr()?));
    status::start_line(Arc::clone(&channel));
    let write_timeout = Duration::from_secs(args.write_timeout);
    let handle = Arc::new(move |conn| routes::handle(&app, conn));
    listener.serve(write_timeout, handle)
}

/// The source for PATH, checked before anything listens: a regular file that can be opened,
/// or a folder with at least one file that can be shown.
fn open_source(args: &Args) -> Result<Source> {
    let path = &args.path;
    let cannot_read = |e: std::io::Error| {
        anyhow!(
            "cannot read '{}': {}",
            path.display(),
            describe_io_error(&e)
        )
    };
    let meta = fs::metadata(path).map_err(cannot_read)?;
    if !meta.is_dir() {
        match file::open_regular(path) {
            Ok(_) => {}
            Err(Skip::Unreadable(e)) => return Err(cannot_read(e)),
            Err(skip) => bail!(
                "cannot serve '{}': it is {} (a regular file or a folder is needed)",
                path.display(),
                skip.describe(args.max_frame)
                    .trim_start_matches("not a regular file but ")
            ),
        }
        return Ok(Source {
            name: "file".into(),
            kind: "file",
            description: path.display().to_string(),
            producer: Box::new(FileSource {
                path: path.clone(),
                content_type: content_type_for(path, args.content_type.as_ref()),
                poll: Duration::from_millis(args.poll),
                max_frame: args.max_frame,
                once: args.slideshow.once,
            }),
        });
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
        follow_links: opts.follow_links,
        order: opts.order,
        interval: Duration::from_millis(opts.interval),
        once: opts.once,
        forced_type: args.content_type.clone(),
        max_frame: args.max_frame,
    };
    let first = show.first_slide().map_err(|e| anyhow!(e))?;
    Ok(Source {
        name: "folder".into(),
        kind: "folder",
        description: path.display().to_string(),
        producer: Box::new(Playing { show, first }),
    })
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
