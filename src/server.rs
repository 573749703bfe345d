//! Wires a run together: opens every source, listens, starts each source's thread, prints the
//! URLs and accepts connections. Startup errors return here; everything after is per
//! connection or per source.

use std::hash::{BuildHasher, RandomState};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use rustls::ServerConfig;

use crate::channel::Channel;
use crate::config::{Config, Tls, unique_names, url_segment};
use crate::http::auth;
use crate::http::host::HostCheck;
use crate::http::listener::{self, Bind, Listener, Local};
use crate::http::tls;
use crate::keeper::Keeper;
use crate::report::{self, Level, describe_io_error};
use crate::routes;
use crate::shutdown;
use crate::site::{Running, Serving, Site};
use crate::source::{self, Source};
use crate::status;
use crate::wake::Waiter;

/// How long startup waits for the first complete frames before printing the URLs anyway.
const FIRST_FRAME_WAIT: Duration = Duration::from_secs(1);

/// Each source's producer beside the channel it fills, not started yet.
type Producers = Vec<(Arc<Channel>, Box<dyn source::Producer>)>;

/// Starts the server, step by step, then serves on this thread.
pub fn run(mut config: Config) -> Result<()> {
    report::set_level(config.level);
    let sources = open_sources(&config)?;
    let listeners = open_listeners(&config)?;
    let (site, producers) = make_site(sources, &mut config)?;
    warn_of_passwords_in_clear(&site, &listeners);
    shutdown::on_signal_close(Arc::clone(&site))?;
    start_sources(producers, &site)?;
    wait_for_first_frames(&site);
    print_urls(&site, &listeners);
    if config.source_options.once {
        exit_when_sources_end(&site)?;
    }
    status::start_line(Arc::clone(&site));
    serve(listeners, &site, &config)
}

/// Opens every source in command-line order, with the name given to it if any: a source that
/// cannot be opened is a startup error, before anything listens.
fn open_sources(config: &Config) -> Result<Vec<(Option<String>, Source)>> {
    config
        .sources
        .iter()
        .map(|arg| {
            Ok((
                arg.name.clone(),
                source::open(&arg.what, &config.source_options)?,
            ))
        })
        .collect()
}

/// The sockets to serve, each with TLS if asked and with its local address (for the URLs and
/// the Host check).
fn open_listeners(config: &Config) -> Result<Vec<(Listener, Local)>> {
    let tls = config
        .tls
        .as_ref()
        .map(|tls| tls_config(tls, &config.listen))
        .transpose()?;
    let listeners = listen(&config.listen)?
        .into_iter()
        .map(|listener| {
            let listener = match &tls {
                Some(tls) => listener.with_tls(Arc::clone(tls)),
                None => listener,
            };
            let local = listener.local()?;
            Ok((listener, local))
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    Ok(listeners)
}

/// The site every connection shares, with a channel per source under a unique name, and the
/// sources' producers. The site takes `--auth` from the
/// config: nothing after this needs it.
fn make_site(
    sources: Vec<(Option<String>, Source)>,
    config: &mut Config,
) -> Result<(Arc<Site>, Producers)> {
    let names = unique_names(
        sources
            .iter()
            .map(|(given, source)| (given.clone(), source.name.clone()))
            .collect(),
    );
    let several = sources.len() > 1;
    let mut producers = Vec::new();
    let mut channels = Vec::new();
    for ((_, source), name) in sources.into_iter().zip(names) {
        let channel = Channel::new(
            name,
            source.kind,
            source.description,
            random_boundary(),
            several,
        );
        producers.push((Arc::clone(&channel), source.producer));
        channels.push(channel);
    }
    let keepalive = config.keepalive;
    let first = Arc::clone(&channels[0]);
    let site = Arc::new(Site {
        keeper: Keeper::start(move || first.is_closed(), keepalive)?,
        channels,
        serving: Serving {
            keepalive,
            repeat: config.repeat,
            cors: config.cors,
            auth: config.auth.take(),
        },
        started: Instant::now(),
        running: Running::new(producers.len()),
    });
    Ok((site, producers))
}

/// Warns, socket by socket, when `--auth` would send passwords over the network unencrypted.
fn warn_of_passwords_in_clear(site: &Site, listeners: &[(Listener, Local)]) {
    for (listener, local) in listeners {
        if site.serving.auth.is_some()
            && let Local::Tcp(addr) = local
            && auth::crosses_network_in_clear(addr.ip(), listener.is_tls())
        {
            warning!(
                "--auth with --bind {}: user names and passwords cross the network in clear \
                 text, readable by anyone on the way; serve HTTPS (--tls-cert, \
                 --tls-self-signed) or put a TLS proxy in front",
                addr.ip()
            );
        }
    }
}

/// Waits, up to [`FIRST_FRAME_WAIT`] in all, for each channel's first complete frame: once the
/// URLs are out, every thread is up and, unless a source is mid-write (or has nothing yet), its
/// first frame is there, so a script may fetch /snapshot at once.
fn wait_for_first_frames(site: &Site) {
    let deadline = Instant::now() + FIRST_FRAME_WAIT;
    for channel in &site.channels {
        let _ = channel
            .latest
            .subscribe(&Waiter::for_current_thread())
            .wait_until(0, Some(deadline));
    }
}

/// Prints the URLs on stdout, socket by socket in systemd's order (`| head -1` takes the first
/// socket's root), each followed by its sources' URLs when there are several.
fn print_urls(site: &Site, listeners: &[(Listener, Local)]) {
    let mut urls = Vec::new();
    for (listener, local) in listeners {
        let url = viewer_url(local, listener.is_tls());
        if site.is_multi() {
            let sources = site
                .channels
                .iter()
                .map(|c| format!("{url}{}/", url_segment(&c.name)));
            urls.extend(std::iter::once(url.clone()).chain(sources));
        } else {
            urls.push(url);
        }
    }
    // Nobody may be reading stdout (`| head -1` has exited, or it was closed): serve anyway.
    let _ = writeln!(std::io::stdout(), "{}", urls.join("\n"));
}

/// `--once`: closes the streams and exits once every source has played. Started only after the
/// URLs are out, even if every source is done by then.
fn exit_when_sources_end(site: &Arc<Site>) -> Result<()> {
    let site = Arc::clone(site);
    thread::Builder::new().name("once".into()).spawn(move || {
        site.running.wait_all(None);
        shutdown::close_and_exit(&site);
    })?;
    Ok(())
}

/// Accepts connections on every socket, the first on this thread, each other on one of its own.
fn serve(listeners: Vec<(Listener, Local)>, site: &Arc<Site>, config: &Config) -> Result<()> {
    let mut serving = listeners.into_iter().map(|(listener, local)| {
        // Per socket: on a loopback port, Host names are checked against DNS rebinding.
        let loopback = matches!(local, Local::Tcp(addr) if addr.ip().is_loopback());
        let hosts = HostCheck::new(loopback, &config.allow_host);
        let site = Arc::clone(site);
        let handle = Arc::new(move |conn| routes::handle(&site, &hosts, conn));
        (listener, handle)
    });
    let (first, handle) = serving.next().expect("at least one listener");
    for (listener, handle) in serving {
        let write_timeout = config.write_timeout;
        thread::Builder::new()
            .name("accept".into())
            .spawn(move || listener.serve(write_timeout, handle))?;
    }
    first.serve(config.write_timeout, handle)
}

/// Runs each producer on a thread of its own; [`Site::running`] counts each one that returns
/// (with `--once`, once it has played).
fn start_sources(producers: Producers, site: &Arc<Site>) -> Result<()> {
    for (channel, producer) in producers {
        let returned = Returned(Arc::clone(site));
        thread::Builder::new()
            .name(format!("source {}", channel.name))
            .spawn(move || {
                let _returned = returned;
                producer.run(&channel);
            })?;
    }
    Ok(())
}

/// Counts its source as returned when dropped: when the producer returns, or panics.
struct Returned(Arc<Site>);

impl Drop for Returned {
    fn drop(&mut self) {
        self.0.running.returned();
    }
}

/// The TLS configuration: the certificate and key given, checked now (a bad one is exit 1
/// before anything listens), or one made now for this machine's names.
fn tls_config(tls: &Tls, bind: &Bind) -> Result<Arc<ServerConfig>> {
    match tls {
        Tls::Files { cert, key } => tls::load(cert, key).map_err(|e| anyhow!(e)),
        Tls::SelfSigned => {
            let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
            if let Bind::Tcp(addr) = bind
                && !addr.ip().is_unspecified()
                && !addr.ip().is_loopback()
            {
                names.push(addr.ip().to_string());
            }
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            let host = host.trim();
            if !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.".contains(c))
            {
                names.push(host.to_string());
            }
            let made = tls::self_signed(&names).map_err(|e| anyhow!(e))?;
            // Printed even with --quiet: it is how a viewer knows the certificate is ours.
            report::line(
                Level::Quiet,
                format_args!(
                    "serving HTTPS with a self-signed certificate for {}; SHA-256 fingerprint {}",
                    names.join(", "),
                    made.fingerprint
                ),
            );
            Ok(made.config)
        }
    }
}

/// The sockets systemd handed over, else one bound as `--bind` says. Called before any thread
/// starts: taking systemd's sockets clears `LISTEN_*` from the environment.
fn listen(bind: &Bind) -> Result<Vec<Listener>> {
    #[cfg(unix)]
    {
        let inherited = listener::inherited().map_err(|e| {
            anyhow!(
                "cannot use the socket systemd passed: {}",
                describe_io_error(&e)
            )
        })?;
        if !inherited.is_empty() {
            return Ok(inherited);
        }
    }
    #[cfg(windows)]
    if std::env::var_os("LISTEN_FDS").is_some() {
        let why = "socket activation (LISTEN_FDS) is not available on Windows";
        return Err(crate::config::UsageError(why.into()).into());
    }
    let listener = listener::bind(bind).map_err(|e| {
        let at = match bind {
            Bind::Tcp(addr) => addr.to_string(),
            Bind::Unix(path) => format!("unix:{}", path.display()),
        };
        anyhow!("cannot listen on {at}: {}", describe_io_error(&e))
    })?;
    Ok(vec![listener])
}

/// The URL to print: an unspecified bind address is shown as loopback, which always works here;
/// a Unix socket as nginx's `proxy_pass` names one (`http://unix:/run/cam.sock:/`).
fn viewer_url(local: &Local, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    let addr = match local {
        Local::Tcp(addr) => *addr,
        #[cfg(unix)]
        Local::Unix(path) => {
            let path = path.as_deref().unwrap_or(std::path::Path::new("(unnamed)"));
            return format!("{scheme}://unix:{}:/", path.display());
        }
    };
    let ip = match addr.ip() {
        ip if !ip.is_unspecified() => ip,
        std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
    };
    format!("{scheme}://{}/", SocketAddr::new(ip, addr.port()))
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
