//! The command line: the clap definition, and nothing that acts on it.

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;

use clap::builder::FalseyValueParser;
use clap::{Arg, ArgAction, Parser};
use clap_complete::Shell;

use crate::http::head::HeaderValue;
use crate::source::options::Order;

#[derive(Parser, Debug)]
#[command(
    name = "pushserve",
    version,
    about = "Stream a file, a folder, stdin, a command or another server's stream to browsers and \
        tools as HTTP server push",
    long_about = "Stream a file, a folder, stdin, a command or another server's stream to browsers \
        and tools as HTTP server push.\n\n\
        Serves each SOURCE as one endless multipart/x-mixed-replace response at /stream: every time \
        a file changes on disk, the new version goes out to every connected client at once. Open \
        the printed URL in a browser, or point <img src=\".../stream\">, curl -N, ffmpeg -f mpjpeg \
        or OpenCV at /stream. The current version alone is at /snapshot.\n\n\
        A folder is a slideshow: its files in turn, --interval apart, each part with its own \
        Content-Type; the folder is read again every cycle, so files that appear or vanish join or \
        leave the show. - reads frames from stdin: multipart (ffmpeg -f mpjpeg -), concatenated \
        JPEG or PNG images (ffmpeg -f image2pipe -), or else text, shown as a live tail of its last \
        --lines lines. An http:// or https:// URL is relayed: a multipart stream part by part, \
        anything else fetched again every --poll ms. --exec CMD serves the output of CMD, run \
        every --poll ms.\n\n\
        With several sources, each is served under /NAME/ (NAME=SOURCE names one; else the file \
        stem, folder name, stdin, the URL's host or the command's first word), / is an index of \
        them all, and the other root endpoints serve the first.",
    after_help = examples_help(),
    // Not derived from SOURCE, which is optional to clap only so that the print flags and --exec
    // need none.
    override_usage = "pushserve [OPTIONS] <SOURCE>...\n       pushserve [OPTIONS] --exec <CMD> [SOURCE]...",
    args = print_flags(),
)]
pub struct Args {
    /// What to serve: a file (pushed on every change), a folder (a slideshow), - (frames from
    /// stdin) or an http:// or https:// URL (relayed); NAME=SOURCE names it
    #[arg(id = SOURCES, value_name = "SOURCE", required_unless_present_any = [PRINT_MANPAGE, PRINT_COMPLETIONS, EXEC])]
    pub sources: Vec<OsString>,

    /// Serve the output of CMD, run with sh -c (cmd /C on Windows) every --poll ms after the last
    /// run ends (like watch): text, or an image by its first bytes, or --type. A run that fails or takes over
    /// 10 s (or --poll) keeps the last frame. NAME=CMD names it. Repeat for several
    #[arg(long, id = EXEC, value_name = "CMD")]
    pub exec: Vec<String>,

    /// Port to listen on (0 picks a free one)
    #[arg(short, long, default_value_t = 8080, env = "PUSHSERVE_PORT")]
    pub port: u16,

    /// Address to listen on; use 0.0.0.0 or :: to serve other machines, or unix:PATH for a Unix
    /// socket (for a proxy in front; not on Windows). Sockets handed over by systemd (socket
    /// activation) are used instead
    #[arg(
        short,
        long,
        default_value = "127.0.0.1",
        value_name = "ADDR",
        value_parser = parse_bind,
        env = "PUSHSERVE_BIND"
    )]
    pub bind: BindArg,

    /// Also answer requests whose Host is NAME (.example.com: and its subdomains). Bound to
    /// loopback, other names than localhost are refused (DNS rebinding); bound elsewhere, giving
    /// names limits requests to them and IP addresses. Repeat, or separate with commas
    #[arg(
        long,
        value_name = "NAME",
        value_delimiter = ',',
        env = "PUSHSERVE_ALLOW_HOST"
    )]
    pub allow_host: Vec<String>,

    /// Serve HTTPS with this certificate chain (PEM); --tls-key gives its key
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        env = "PUSHSERVE_TLS_CERT"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM)
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_cert",
        env = "PUSHSERVE_TLS_KEY"
    )]
    pub tls_key: Option<PathBuf>,

    /// Serve HTTPS with a certificate made at start for this machine's names and addresses, for a
    /// quick share on a LAN; its SHA-256 fingerprint goes to stderr, to check against what the
    /// browser shows
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"], env = "PUSHSERVE_TLS_SELF_SIGNED", value_parser = FalseyValueParser::new())]
    pub tls_self_signed: bool,

    /// How often to look at a file or the current slide even without a change event (a change
    /// is seen at once through the system's change events; the poll is the safety net), run a
    /// command again, or fetch an image URL again, in milliseconds
    #[arg(long, default_value_t = 1000, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..), env = "PUSHSERVE_POLL")]
    pub poll: u64,

    /// Look at files and folders only every --poll, without change events (for a filesystem
    /// whose events are wrong, or to compare)
    #[arg(long, env = "PUSHSERVE_POLL_ONLY", value_parser = FalseyValueParser::new())]
    pub poll_only: bool,

    /// Content-Type of the parts [default: guessed from the file extension]
    #[arg(
        short = 't',
        long = "type",
        value_name = "MIME",
        value_parser = |t: &str| HeaderValue::new(t.to_string()),
        env = "PUSHSERVE_TYPE"
    )]
    pub content_type: Option<HeaderValue>,

    /// Send a keep-alive on a stream that has sent nothing for this many seconds, so proxies
    /// and GStreamer (which gives up after 15 s) keep idle streams open and vanished clients
    /// are noticed: a browser gets the current frame again, a stream reader a header line it
    /// ignores, /events a comment line; a relay connects again to an upstream that has sent
    /// nothing for three times this long
    #[arg(long, default_value_t = 10, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..), env = "PUSHSERVE_KEEPALIVE")]
    pub keepalive: u64,

    /// Send a stream reader (not a browser) the current frame again after this many seconds
    /// without a new one, as OpenCV gives up on a stream after 30 s without a frame; 0 never
    /// does, so that a recording gets no duplicate frames
    #[arg(
        long,
        default_value_t = 20,
        value_name = "SECS",
        env = "PUSHSERVE_REPEAT"
    )]
    pub repeat: u64,

    /// Drop a client that takes less than 64 KiB (or all that is left to send) in this many
    /// seconds: slow but steady clients are never cut
    #[arg(long, default_value_t = 10, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..), env = "PUSHSERVE_WRITE_TIMEOUT")]
    pub write_timeout: u64,

    /// Lines of text from stdin shown at once: the live tail of `tail -f log | pushserve -`
    #[arg(long, default_value_t = 50, value_name = "N", value_parser = clap::value_parser!(u16).range(1..), env = "PUSHSERVE_LINES")]
    pub lines: u16,

    /// Play each source once (a folder's cycle, stdin or a relayed stream to its end, one run of
    /// each command, a file's current version), end every stream, and exit
    #[arg(long)]
    pub once: bool,

    /// Skip versions larger than this, keeping the last frame (suffixes K, M, G: powers of 1024)
    #[arg(long, default_value = "64M", value_name = "BYTES", value_parser = parse_bytes, env = "PUSHSERVE_MAX_FRAME")]
    pub max_frame: u64,

    /// Ask every client for this user name and password (HTTP Basic authentication; the password
    /// may hold colons). Repeat for several accounts. Without TLS in front, they cross the
    /// network readable by anyone on the way. PUSHSERVE_AUTH keeps a password out of ps
    #[arg(
        long,
        value_name = "USER:PASS",
        env = "PUSHSERVE_AUTH",
        hide_env_values = true
    )]
    pub auth: Vec<String>,

    /// Take the user name and password of a relayed URL that has none from this netrc file
    /// (machine HOST login USER password PASS, as curl --netrc-file and wget read it), where ps
    /// does not show them as it shows a URL's
    #[arg(long, value_name = "FILE", env = "PUSHSERVE_NETRC_FILE")]
    pub netrc_file: Option<PathBuf>,

    /// Add Access-Control-Allow-Origin: * to /events, /poll, /snapshot and /status, so pages
    /// on other origins can use them
    #[arg(long, env = "PUSHSERVE_CORS", value_parser = FalseyValueParser::new())]
    pub cors: bool,

    /// Print only errors (wins over --verbose)
    #[arg(short, long, env = "PUSHSERVE_QUIET", value_parser = FalseyValueParser::new())]
    pub quiet: bool,

    /// Also print one line per finished connection: client, path, status, duration, bytes
    #[arg(short, long, env = "PUSHSERVE_VERBOSE", value_parser = FalseyValueParser::new())]
    pub verbose: bool,

    #[command(flatten)]
    pub slideshow: SlideshowArgs,
}

/// Ids of the hidden flags that print what `man/` and `completions/` hold (tests/generated.rs
/// keeps those files in step); main.rs answers them and exits before anything else.
pub const PRINT_MANPAGE: &str = "print_manpage";
pub const PRINT_COMPLETIONS: &str = "print_completions";
/// Ids of the arguments whose order config.rs reads from the matches.
pub const SOURCES: &str = "sources";
pub const EXEC: &str = "exec";

fn print_flags() -> [Arg; 2] {
    [
        Arg::new(PRINT_MANPAGE)
            .long("print-manpage")
            .action(ArgAction::SetTrue)
            .help("Print the man page (roff) and exit")
            .hide(true),
        Arg::new(PRINT_COMPLETIONS)
            .long("print-completions")
            .value_name("SHELL")
            .value_parser(clap::value_parser!(Shell))
            .help("Print the completion script for SHELL and exit")
            .hide(true),
    ]
}

/// Usage examples with what each does: the commands follow `--help`, the pairs make the man
/// page's EXAMPLES.
pub const EXAMPLES: [(&str, &str); 10] = [
    (
        "pushserve webcam.jpg",
        "Serve webcam.jpg: each new version is on screen as soon as it is saved; open the printed URL.",
    ),
    (
        "pushserve status.html --port 0 --bind 0.0.0.0",
        "Serve to other machines on a free port; the URL is the only line on stdout.",
    ),
    (
        "pushserve slides/ --interval 3000 --order random",
        "Show each file in slides/ for 3 s, shuffled anew every cycle.",
    ),
    (
        "pushserve slides/ --once",
        "Play each file once, end every stream, and exit 0.",
    ),
    (
        "ffmpeg -f mpjpeg -i http://127.0.0.1:8080/stream -c copy out.mjpeg",
        "Record the stream with ffmpeg, part by part.",
    ),
    (
        "ffmpeg -f v4l2 -i /dev/video0 -f mpjpeg - | pushserve -",
        "Serve a camera that ffmpeg reads, frame by frame, from stdin.",
    ),
    (
        "tail -f app.log | pushserve -",
        "Serve the last 50 lines of a log as they grow.",
    ),
    (
        "pushserve --exec 'uptime' --poll 2000",
        "Serve the output of a command, run again every 2 s.",
    ),
    (
        "pushserve http://user:pass@cam.local/video.mjpg",
        "Relay another server's stream (or image URL) to more viewers; the password goes \
         upstream only, but ps shows it: --netrc-file keeps it in a file.",
    ),
    (
        "pushserve front=front.jpg back=http://cam.local/snap.jpg --exec 'load=uptime'",
        "Serve three sources at once: each under /NAME/, all of them on the index at /.",
    ),
];

fn examples_help() -> String {
    let mut text = String::from("Examples:");
    for (command, _) in EXAMPLES {
        text.push_str("\n  ");
        text.push_str(command);
    }
    text
}

/// The default `--ext` list: what browsers show in an `<img>` or the viewer page.
pub const DEFAULT_EXTENSIONS: &str = "jpg,jpeg,png,gif,webp,svg,bmp,html,htm,txt";

/// Options that apply to a SOURCE that is a folder.
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Slideshow (a SOURCE is a folder)")]
pub struct SlideshowArgs {
    /// Time each slide is shown, in milliseconds
    #[arg(long, default_value_t = 5000, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..), env = "PUSHSERVE_INTERVAL")]
    pub interval: u64,

    /// File extensions to show, comma-separated (case-insensitive)
    #[arg(long, value_name = "LIST", default_value = DEFAULT_EXTENSIONS, value_delimiter = ',', env = "PUSHSERVE_EXT")]
    pub ext: Vec<String>,

    /// Include files in subfolders
    #[arg(short, long, env = "PUSHSERVE_RECURSIVE", value_parser = FalseyValueParser::new())]
    pub recursive: bool,

    /// Also walk symlinked folders that lead outside the folder (symlinked files are always
    /// shown)
    #[arg(long, env = "PUSHSERVE_FOLLOW_LINKS", value_parser = FalseyValueParser::new())]
    pub follow_links: bool,

    /// Order of the slides in each cycle
    #[arg(long, value_enum, default_value_t = Order::Name, env = "PUSHSERVE_ORDER")]
    pub order: Order,
}

/// `--bind`: an IP address, or `unix:PATH`.
#[derive(Clone, Debug)]
pub enum BindArg {
    Ip(IpAddr),
    Unix(PathBuf),
}

fn parse_bind(text: &str) -> Result<BindArg, String> {
    if let Some(path) = text.strip_prefix("unix:") {
        if cfg!(windows) {
            return Err("Unix sockets are not available on Windows".into());
        }
        if path.is_empty() {
            return Err("unix: needs the path of the socket, e.g. unix:/run/pushserve.sock".into());
        }
        return Ok(BindArg::Unix(PathBuf::from(path)));
    }
    text.parse()
        .map(BindArg::Ip)
        .map_err(|_| format!("'{text}' is not an IP address or unix:PATH"))
}

/// `4096`, `512K`, `64M`, `1G` (binary multiples).
fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, shift) = match text.char_indices().last() {
        Some((at, 'k' | 'K')) => (&text[..at], 10),
        Some((at, 'm' | 'M')) => (&text[..at], 20),
        Some((at, 'g' | 'G')) => (&text[..at], 30),
        _ => (text, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a size like 4096, 512K, 64M or 1G"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("'{text}' is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Args::command().debug_assert();
    }

    /// docs/GUIDE.md's section "Options": a row for every flag with its short form, value name
    /// and default as clap has them, no row for a flag clap lacks, and the environment variables
    /// clap reads, no more, no fewer; a flag without one is named where the guide says so.
    #[test]
    fn guide_lists_the_options_of_the_clap_definition() {
        let section = include_str!("../docs/GUIDE.md")
            .split("\n## Options\n")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("docs/GUIDE.md's section \"Options\"");
        // The first two cells of each row: the flags, the default.
        let rows: Vec<(&str, &str)> = section
            .lines()
            .filter_map(|line| {
                let mut cells = line.strip_prefix("| ")?.splitn(3, " | ");
                let flags = cells.next().filter(|cell| cell.starts_with("`-"))?;
                Some((flags, cells.next()?))
            })
            .collect();
        let command = Args::command();
        let flags: Vec<&Arg> = command
            .get_arguments()
            .filter(|arg| !arg.is_positional() && !arg.is_hide_set())
            .collect();
        let mut wrong = Vec::new();

        for arg in &flags {
            let long = arg.get_long().expect("every visible flag has a long form");
            let short = arg.get_short().map_or(String::new(), |s| format!("-{s}, "));
            let value = if arg.get_action().takes_values() {
                let names = arg.get_value_names().expect("a flag with a value names it");
                format!(" <{}>", names[0])
            } else {
                String::new()
            };
            let spelled = format!("{short}--{long}{value}");
            let Some((_, default)) = rows
                .iter()
                .find(|(cell, _)| cell.split('`').any(|flag| flag == spelled))
            else {
                wrong.push(format!("no row for `{spelled}`"));
                continue;
            };
            let expected = if matches!(arg.get_action(), ArgAction::SetTrue) {
                "off".to_string()
            } else {
                let defaults: Vec<_> = arg
                    .get_default_values()
                    .iter()
                    .map(|v| v.to_string_lossy())
                    .collect();
                if defaults.is_empty() {
                    continue;
                }
                defaults.join(",")
            };
            if *default != expected {
                wrong.push(format!("--{long}'s default is {expected}, not {default}"));
            }
        }

        for (cell, _) in &rows {
            for flag in cell.split('`').filter(|flag| flag.contains("--")) {
                let long = flag.split("--").nth(1).unwrap().split(' ').next().unwrap();
                if !flags.iter().any(|arg| arg.get_long() == Some(long)) {
                    wrong.push(format!("a row for --{long}, which clap does not have"));
                }
            }
        }

        let named: Vec<&str> = section
            .split(|c: char| !(c.is_ascii_uppercase() || c == '_'))
            .filter(|word| word.starts_with("PUSHSERVE_"))
            .collect();
        let read: Vec<String> = flags
            .iter()
            .filter_map(|arg| Some(arg.get_env()?.to_string_lossy().into_owned()))
            .collect();
        for variable in read.iter().filter(|v| !named.contains(&v.as_str())) {
            wrong.push(format!("{variable} is not named"));
        }
        for variable in named.iter().filter(|v| !read.iter().any(|r| r == *v)) {
            wrong.push(format!("{variable} is named, but clap does not read it"));
        }
        let environment = section
            .split("\n\n")
            .find(|paragraph| paragraph.contains("from the environment"))
            .expect("a paragraph on the environment");
        for arg in flags.iter().filter(|arg| arg.get_env().is_none()) {
            let long = format!("`--{}`", arg.get_long().unwrap());
            if !environment.contains(&long) {
                wrong.push(format!(
                    "{long} has no variable, which the guide does not say"
                ));
            }
        }

        assert!(
            wrong.is_empty(),
            "docs/GUIDE.md's options are not clap's:\n{}",
            wrong.join("\n")
        );
    }

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("512K"), Ok(512 << 10));
        assert_eq!(parse_bytes("64m"), Ok(64 << 20));
        assert!(parse_bytes("lots").is_err());
    }
}
