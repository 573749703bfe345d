//! The command line made into a validated [`Config`], once: the sources in command-line order
//! with their names, and the settings of the serving side. Nothing here opens a source or a
//! socket; a usage mistake found here exits 2, like clap's own.

use std::ffi::{OsStr, OsString};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::ArgMatches;

use crate::cli::{self, Args, BindArg};
use crate::http::auth::{Account, Accounts};
use crate::http::listener::Bind;
use crate::report::Level;
use crate::source::MAX_NAME;
pub use crate::source::options::UsageError;
use crate::source::options::{SlideshowOptions, SourceOptions, What};
use crate::source::relay::url_scheme;

pub struct Config {
    pub listen: Bind,
    pub tls: Option<Tls>,
    pub allow_host: Vec<String>,
    /// `--keepalive`; its uses are listed at `Args::keepalive`.
    pub keepalive: Duration,
    /// `--repeat`; None for 0.
    pub repeat: Option<Duration>,
    pub write_timeout: Duration,
    pub cors: bool,
    /// `--auth`; None without it.
    pub auth: Option<Accounts>,
    pub level: Level,
    /// In command-line order, `--exec` among the others where it was given.
    pub sources: Vec<SourceArg>,
    pub source_options: SourceOptions,
}

/// Where the TLS certificate comes from.
pub enum Tls {
    Files {
        cert: PathBuf,
        key: PathBuf,
    },
    /// Made at start (`--tls-self-signed`).
    SelfSigned,
}

/// One SOURCE or `--exec`, as given.
pub struct SourceArg {
    /// From `NAME=SOURCE`; checked, and unique among the names given.
    pub name: Option<String>,
    pub what: What,
}

impl Config {
    pub fn from_args(args: Args, matches: &ArgMatches) -> Result<Config, UsageError> {
        let sources = sources_in_order(&args, matches)?;
        let accounts = args
            .auth
            .iter()
            .map(|text| Account::parse(text).map_err(|e| UsageError(e.to_string())))
            .collect::<Result<_, _>>()?;
        let opts = &args.slideshow;
        Ok(Config {
            listen: match args.bind {
                BindArg::Ip(ip) => Bind::Tcp(SocketAddr::new(ip, args.port)),
                BindArg::Unix(path) => Bind::Unix(path),
            },
            tls: match (args.tls_cert, args.tls_key, args.tls_self_signed) {
                (Some(cert), Some(key), _) => Some(Tls::Files { cert, key }),
                (_, _, true) => Some(Tls::SelfSigned),
                _ => None,
            },
            allow_host: args.allow_host,
            keepalive: Duration::from_secs(args.keepalive),
            repeat: (args.repeat > 0).then(|| Duration::from_secs(args.repeat)),
            write_timeout: Duration::from_secs(args.write_timeout),
            cors: args.cors,
            auth: Accounts::new(accounts),
            level: match (args.quiet, args.verbose) {
                (true, _) => Level::Quiet,
                (_, true) => Level::Verbose,
                _ => Level::Normal,
            },
            sources,
            source_options: SourceOptions {
                poll: Duration::from_millis(args.poll),
                poll_only: args.poll_only,
                content_type: args.content_type,
                max_frame: args.max_frame,
                keepalive: Duration::from_secs(args.keepalive),
                lines: args.lines.into(),
                once: args.once,
                netrc: args.netrc_file,
                slideshow: SlideshowOptions {
                    interval: Duration::from_millis(opts.interval),
                    extensions: opts
                        .ext
                        .iter()
                        .map(|e| e.trim().trim_start_matches('.').to_ascii_lowercase())
                        .collect(),
                    recursive: opts.recursive,
                    follow_links: opts.follow_links,
                    order: opts.order,
                },
            },
        })
    }
}

/// SOURCE and `--exec` arguments merged in the order they were given, names split off and
/// checked.
fn sources_in_order(args: &Args, matches: &ArgMatches) -> Result<Vec<SourceArg>, UsageError> {
    let indices =
        |id: &str| -> Vec<usize> { matches.indices_of(id).map_or(Vec::new(), |i| i.collect()) };
    let mut given: Vec<(usize, SourceArg)> = Vec::new();
    for (at, source) in indices(cli::SOURCES).into_iter().zip(&args.sources) {
        given.push((at, source_arg(source)?));
    }
    for (at, command) in indices(cli::EXEC).into_iter().zip(&args.exec) {
        let (name, command) = split_name(command.as_bytes());
        let command = String::from_utf8_lossy(command).trim().to_string();
        if command.is_empty() {
            return Err(UsageError("--exec needs a command".into()));
        }
        given.push((at, named(name, What::Command(command))?));
    }
    given.sort_by_key(|(at, _)| *at);
    let sources: Vec<SourceArg> = given.into_iter().map(|(_, s)| s).collect();
    if sources
        .iter()
        .filter(|s| matches!(s.what, What::Stdin))
        .count()
        > 1
    {
        return Err(UsageError("'-' (stdin) can be given only once".into()));
    }
    for (i, source) in sources.iter().enumerate() {
        if let Some(name) = &source.name
            && sources[..i].iter().any(|s| s.name.as_ref() == Some(name))
        {
            return Err(UsageError(format!(
                "the name '{name}' is given to two sources; each needs its own"
            )));
        }
    }
    Ok(sources)
}

/// `-`, a URL (`scheme://…`), or a path; `NAME=` before any of them names it, unless the whole argument is
/// an existing path (a file may have `=` in its name).
fn source_arg(arg: &OsString) -> Result<SourceArg, UsageError> {
    let (name, rest) = match split_name(arg.as_encoded_bytes()) {
        (Some(name), _) if !PathBuf::from(arg).exists() => {
            (Some(name), after_ascii(arg, name.len() + 1))
        }
        _ => (None, arg.clone()),
    };
    let text = rest.to_string_lossy();
    let what = if rest == "-" {
        What::Stdin
    } else if url_scheme(&text).is_some() {
        // Any scheme: opening refuses those it cannot relay without showing the password that
        // a mistyped `htp://user:pass@…` would show as a path.
        What::Url(text.into_owned())
    } else {
        What::Path(PathBuf::from(rest))
    };
    named(name, what)
}

/// `arg` without its first `skip` characters, all ASCII (a name and its `=`), losing nothing
/// of the rest, which need not be Unicode: bytes on Unix, UTF-16 units on Windows.
#[cfg(unix)]
fn after_ascii(arg: &OsStr, skip: usize) -> OsString {
    use std::os::unix::ffi::OsStrExt;
    OsStr::from_bytes(&arg.as_bytes()[skip..]).to_os_string()
}

#[cfg(windows)]
fn after_ascii(arg: &OsStr, skip: usize) -> OsString {
    use std::os::windows::ffi::{OsStrExt, OsStringExt};
    let units: Vec<u16> = arg.encode_wide().skip(skip).collect();
    OsString::from_wide(&units)
}

/// Splits `NAME=REST` when what comes before the first `=` looks like a name.
fn split_name(arg: &[u8]) -> (Option<&[u8]>, &[u8]) {
    match arg.iter().position(|&b| b == b'=') {
        Some(at)
            if at > 0
                && arg[..at]
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) =>
        {
            (Some(&arg[..at]), &arg[at + 1..])
        }
        _ => (None, arg),
    }
}

fn named(name: Option<&[u8]>, what: What) -> Result<SourceArg, UsageError> {
    let name = match name {
        None => None,
        Some(name) => {
            let name = String::from_utf8_lossy(name).into_owned();
            if name.starts_with('.') || name.len() > MAX_NAME {
                return Err(UsageError(format!(
                    "'{name}' cannot name a source: a name is 1 to {MAX_NAME} letters, digits, \
                     '_', '-' and '.', not starting with '.'"
                )));
            }
            Some(name)
        }
    };
    Ok(SourceArg { name, what })
}

/// `name` as a URL path segment: its bytes beyond ASCII percent-encoded (a name holds nothing
/// else that a URL would need escaped).
pub fn url_segment(name: &str) -> String {
    let mut segment = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"_.-".contains(&byte) {
            segment.push(char::from(byte));
        } else {
            segment.push_str(&format!("%{byte:02X}"));
        }
    }
    segment
}

/// A path segment percent-decoded, if what it encodes is UTF-8.
pub fn decoded_segment(segment: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(segment.len());
    let mut rest = segment.as_bytes();
    while let Some((&byte, after)) = rest.split_first() {
        rest = after;
        if byte != b'%' {
            bytes.push(byte);
            continue;
        }
        let hex = rest
            .get(..2)
            .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))?;
        bytes.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
        rest = &rest[2..];
    }
    String::from_utf8(bytes).ok()
}

/// The names sources are served under: the given one, else `wanted`, with `-2`, `-3`… for a
/// name already taken.
pub fn unique_names(wanted: Vec<(Option<String>, String)>) -> Vec<String> {
    let given: Vec<String> = wanted.iter().filter_map(|(n, _)| n.clone()).collect();
    let mut taken: Vec<String> = Vec::new();
    for (name, default) in wanted {
        let name = name.unwrap_or_else(|| {
            let free = |n: &String| !taken.contains(n) && !given.contains(n);
            (1..)
                .map(|i| {
                    if i == 1 {
                        default.clone()
                    } else {
                        format!("{default}-{i}")
                    }
                })
                .find(free)
                .expect("a free name")
        });
        taken.push(name);
    }
    taken
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_go_into_urls_percent_encoded_and_come_back() {
        assert_eq!(url_segment("cam_1.a-b"), "cam_1.a-b");
        assert_eq!(url_segment("ünï-cödé"), "%C3%BCn%C3%AF-c%C3%B6d%C3%A9");
        assert_eq!(
            decoded_segment("%C3%BCn%C3%AF-c%c3%b6d%C3%A9").as_deref(),
            Some("ünï-cödé")
        );
        assert_eq!(decoded_segment("ünï").as_deref(), Some("ünï"));
        assert_eq!(decoded_segment("%C3"), None);
        assert_eq!(decoded_segment("%"), None);
        assert_eq!(decoded_segment("%+1"), None);
        assert_eq!(decoded_segment("a%2Fb").as_deref(), Some("a/b"));
    }

    #[test]
    fn a_clash_of_derived_names_gets_a_number() {
        let names = unique_names(vec![
            (None, "cam".into()),
            (None, "cam".into()),
            (Some("cam-2".into()), "x".into()),
            (None, "cam".into()),
        ]);
        assert_eq!(names, ["cam", "cam-3", "cam-2", "cam-4"]);
    }

    #[test]
    fn a_name_comes_before_the_first_equals_sign() {
        assert_eq!(split_name(b"cam=a.jpg"), (Some(&b"cam"[..]), &b"a.jpg"[..]));
        assert_eq!(split_name(b"a.jpg"), (None, &b"a.jpg"[..]));
        assert_eq!(
            split_name(b"http://h/x?a=b"),
            (None, &b"http://h/x?a=b"[..])
        );
        assert_eq!(split_name(b"=x"), (None, &b"=x"[..]));
    }

    #[test]
    fn a_windows_path_is_not_taken_for_a_name() {
        assert_eq!(split_name(b"C:\\x=y"), (None, &b"C:\\x=y"[..]));
        assert_eq!(split_name(b"C:"), (None, &b"C:"[..]));
        let arg = |text: &str| source_arg(&OsString::from(text)).unwrap();
        let cam = arg("cam=C:\\pics\\cam.jpg");
        assert_eq!(cam.name.as_deref(), Some("cam"));
        assert!(matches!(cam.what, What::Path(p) if p.as_os_str() == "C:\\pics\\cam.jpg"));
        let unnamed = arg("Z:\\tmp\\a=b\\slides\\");
        assert_eq!(unnamed.name, None);
        assert!(matches!(unnamed.what, What::Path(p) if p.as_os_str() == "Z:\\tmp\\a=b\\slides\\"));
    }

    #[cfg(unix)]
    #[test]
    fn a_named_path_keeps_bytes_that_are_not_utf8() {
        use std::os::unix::ffi::OsStrExt;
        let given = OsStr::from_bytes(b"cam=caf\xe9.jpg");
        let named = source_arg(&given.to_os_string()).unwrap();
        assert_eq!(named.name.as_deref(), Some("cam"));
        assert!(matches!(named.what, What::Path(p) if p.as_os_str().as_bytes() == b"caf\xe9.jpg"));
    }
}
