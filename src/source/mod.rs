//! Sources: the producers that turn a file, a folder, stdin, a command or another server's
//! stream into frames published to their [`Channel`].
//!
//! A source owns all access to what feeds it (the filesystem, a pipe, a child process, an
//! upstream connection), each on a thread of its own; connections only ever see published
//! frames. Nothing outside this folder and the command line knows the kinds of source (the
//! channel holds a [`SourceKind`] and a [`crate::channel::SourceState`] only to show them).
//! What each source is opened with is in `options.rs`; this module opens them and owns their
//! names ([`url_safe_name`]).

pub mod blocks;
pub mod changes;
pub mod command;
pub mod file;
pub mod netrc;
pub mod options;
pub mod relay;
pub mod slideshow;
pub mod stdin;

use std::fs;
use std::path::Path;

use anyhow::{Result, anyhow, bail};

use crate::channel::{Channel, SourceKind};
use crate::decode::media::content_type_for;
use crate::report::describe_io_error;
use command::CommandSource;
use file::{FileSource, Skip};
use netrc::Netrc;
use options::{SourceOptions, UsageError, What};
use relay::RelaySource;
use slideshow::{Playing, Slideshow};
use stdin::StdinSource;

/// What a source does on its thread: publish into `channel` until the server closes, or, with
/// `--once`, until it has played once (a folder's cycle, stdin or an upstream to its end, one
/// run of a command, a file's current version). Returning ends nothing else.
pub trait Producer: Send {
    fn run(self: Box<Self>, channel: &Channel);
}

/// Kills at once every process a source has started and not yet stopped (a command's runs):
/// for a second Ctrl-C, which exits without waiting for the sources.
pub fn kill_children() {
    command::kill_every_run();
}

/// A source as the command line names it, checked and ready to run.
pub struct Source {
    /// The name it is served under, `/NAME/`, unless the command line gives one.
    pub name: String,
    /// For `/status` only.
    pub kind: SourceKind,
    /// The path, URL (without credentials) or command, for `/status` and messages.
    pub description: String,
    pub producer: Box<dyn Producer>,
}

/// Checks `what` and makes its producer: a file or folder must be there and servable now; a
/// URL must be one. Errors are one line; a bad URL is a [`UsageError`].
pub fn open(what: &What, opts: &SourceOptions) -> Result<Source> {
    match what {
        What::Path(path) => open_path(path, opts),
        What::Stdin => Ok(Source {
            name: "stdin".into(),
            kind: SourceKind::Stdin,
            description: "-".into(),
            producer: Box::new(StdinSource {
                lines: opts.lines,
                content_type: opts.content_type.clone(),
                max_frame: opts.max_frame,
            }),
        }),
        What::Url(url) => {
            let netrc = opts.netrc.as_deref().map(Netrc::read).transpose();
            let relay = RelaySource::new(
                url,
                opts.poll,
                opts.keepalive,
                opts.max_frame,
                opts.once,
                netrc.map_err(|e| anyhow!(e))?.as_ref(),
            )
            .map_err(|e| UsageError(format!("cannot relay: {e}")))?;
            Ok(Source {
                name: url_safe_name(&relay.host(), "relay"),
                kind: SourceKind::Relay,
                description: relay.display_url(),
                producer: Box::new(relay),
            })
        }
        What::Command(command) => Ok(Source {
            name: url_safe_name(command::first_word(command), "command"),
            kind: SourceKind::Command,
            description: command.clone(),
            producer: Box::new(CommandSource {
                command: command.clone(),
                poll: opts.poll,
                content_type: opts.content_type.clone(),
                max_frame: opts.max_frame,
                once: opts.once,
            }),
        }),
    }
}

/// A regular file that can be opened, or a folder with at least one file that can be shown.
fn open_path(path: &Path, opts: &SourceOptions) -> Result<Source> {
    let cannot_read = |e: std::io::Error| {
        anyhow!(
            "cannot read '{}': {}",
            without_password(&path.display().to_string()),
            describe_io_error(&e)
        )
    };
    let meta = fs::metadata(path).map_err(cannot_read)?;
    let stem = |p: &Path| {
        let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned());
        url_safe_name(&stem.unwrap_or_default(), "file")
    };
    if !meta.is_dir() {
        match file::open_regular(path) {
            Ok(_) => {}
            Err(Skip::Unreadable(e)) => return Err(cannot_read(e)),
            Err(skip) => bail!(
                "cannot serve '{}': it is {} (a regular file or a folder is needed)",
                path.display(),
                skip.describe(opts.max_frame)
                    .trim_start_matches("not a regular file but ")
            ),
        }
        return Ok(Source {
            name: stem(path),
            kind: SourceKind::File,
            description: path.display().to_string(),
            producer: Box::new(FileSource {
                path: path.to_path_buf(),
                content_type: content_type_for(path, opts.content_type.as_ref()),
                poll: opts.poll,
                max_frame: opts.max_frame,
                once: opts.once,
                events: !opts.poll_only,
            }),
        });
    }
    fs::read_dir(path).map_err(cannot_read)?;
    let slides = &opts.slideshow;
    let show = Slideshow {
        dir: path.to_path_buf(),
        extensions: slides.extensions.clone(),
        recursive: slides.recursive,
        follow_links: slides.follow_links,
        order: slides.order,
        interval: slides.interval,
        once: opts.once,
        forced_type: opts.content_type.clone(),
        max_frame: opts.max_frame,
        poll: opts.poll,
        events: !opts.poll_only,
    };
    let first = show.first_slide().map_err(|e| anyhow!(e))?;
    // `.` and `slides/` are named by the folder itself.
    let named_by = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    Ok(Source {
        name: url_safe_name(
            &named_by
                .file_name()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned()),
            "folder",
        ),
        kind: SourceKind::Folder,
        description: path.display().to_string(),
        producer: Box::new(Playing { show, first }),
    })
}

/// Names are path segments: `/NAME/stream`.
pub const MAX_NAME: usize = 64;

/// `text` made into a name: what is not a letter, a digit (of any script), `_`, `-` or `.`
/// becomes `-`, with no `-` or `.` at either end; `fallback` if nothing is left. Letters beyond
/// ASCII are kept, and percent-encoded in URLs (`config::url_segment`).
pub fn url_safe_name(text: &str, fallback: &str) -> String {
    let mut name = String::new();
    for c in text.chars() {
        let c = if c.is_alphanumeric() || "_.".contains(c) {
            c
        } else {
            '-'
        };
        if !(c == '-' && name.ends_with('-')) {
            name.push(c);
        }
    }
    let name = name.trim_matches(|c| c == '-' || c == '.');
    let mut name: String = name.chars().take(MAX_NAME).collect();
    name = name.trim_end_matches(['-', '.']).to_string();
    if name.is_empty() {
        fallback.to_string()
    } else {
        name
    }
}

/// `text` with what looks like a URL's `user:password@` shown as `***@`: a URL mistyped
/// (`http:/user:pass@cam/`, `user:pass@cam/`) is taken for a path, and named in the error.
fn without_password(text: &str) -> String {
    let segments: Vec<String> = text
        .split('/')
        .map(|segment| match segment.rsplit_once('@') {
            Some((userinfo, host)) if userinfo.contains(':') => format!("***@{host}"),
            _ => segment.to_string(),
        })
        .collect();
    segments.join("/")
}

#[cfg(test)]
mod tests {
    use super::{MAX_NAME, open, url_safe_name, without_password};
    use crate::source::options::{Order, SlideshowOptions, SourceOptions, What};
    use std::time::Duration;

    fn options() -> SourceOptions {
        SourceOptions {
            poll: Duration::from_secs(1),
            poll_only: true,
            content_type: None,
            max_frame: 1 << 20,
            keepalive: Duration::from_secs(10),
            lines: 1,
            once: true,
            netrc: None,
            slideshow: SlideshowOptions {
                interval: Duration::from_secs(1),
                extensions: vec!["txt".into()],
                recursive: false,
                follow_links: false,
                order: Order::Name,
            },
        }
    }

    /// On Windows the paths are `C:\…\Temp\…`: the names are still the file's and the folder's.
    #[test]
    fn a_path_is_named_by_its_file_or_folder_name_alone() {
        let dir = std::env::temp_dir().join(format!("pushserve-names-{}", std::process::id()));
        let folder = dir.join("slides");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("cam.txt"), "x").unwrap();
        let file = open(&What::Path(folder.join("cam.txt")), &options()).unwrap();
        assert_eq!(file.name, "cam");
        assert_eq!(
            file.description,
            folder.join("cam.txt").display().to_string()
        );
        let mut with_separator = folder.into_os_string();
        with_separator.push(std::path::MAIN_SEPARATOR_STR);
        let show = open(&What::Path(with_separator.into()), &options()).unwrap();
        assert_eq!(show.name, "slides");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_are_made_url_safe() {
        assert_eq!(url_safe_name("cam", "x"), "cam");
        assert_eq!(url_safe_name("my cam (1)", "x"), "my-cam-1");
        assert_eq!(url_safe_name("../etc", "x"), "etc");
        assert_eq!(url_safe_name("<script>", "x"), "script");
        assert_eq!(url_safe_name("\u{1b}[31m", "x"), "31m");
        assert_eq!(url_safe_name("...", "file"), "file");
        assert_eq!(url_safe_name(&"a".repeat(100), "x").len(), MAX_NAME);
        assert_eq!(url_safe_name("ünï cödé", "x"), "ünï-cödé");
        assert_eq!(url_safe_name("カメラ 1", "x"), "カメラ-1");
        // Bidirectional overrides and other format characters are not letters.
        assert_eq!(url_safe_name("a\u{202e}b\u{200b}c", "x"), "a-b-c");
    }

    #[test]
    fn a_password_in_what_looks_like_a_url_is_never_shown() {
        for (given, shown) in [
            ("http:/user:secret@cam/x.jpg", "http:/***@cam/x.jpg"),
            ("user:secret@cam.local/video", "***@cam.local/video"),
            ("rtsp:user:a@b:secret@cam", "***@cam"),
            ("photos/me@home.jpg", "photos/me@home.jpg"),
            ("photos/a:b.jpg", "photos/a:b.jpg"),
        ] {
            assert_eq!(without_password(given), shown);
        }
    }
}
