//! The file source: one thread that looks at the watched file when a change event says it
//! changed (`changes.rs`) and every `--poll` as well, and publishes each new, complete version
//! to [`Latest`].
//!
//! This is the only code that touches the file: one `stat` per look and one read per change,
//! whatever the number of clients. It never publishes a version that moved while it was read,
//! never blocks on what it opens (a FIFO or a device put in the file's place is opened
//! non-blocking and refused after an `fstat` of the opened descriptor), and never reads more
//! than `--max-frame` + 1 bytes. What a file is (its identity, its kind) is asked of the
//! platform (`file/unix.rs`, `file/windows.rs`).

use std::fs::{File, Metadata};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::channel::Channel;
use crate::decode::complete::is_complete;
use crate::frame::{FrameBytes, NewFrame};
use crate::http::head::HeaderValue;
use crate::report::describe_io_error;
use crate::source::Producer;
use crate::source::changes::{Changes, Target, Wake};

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as os;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as os;

pub use os::stat;

/// How long a version may stay incomplete before we say so (a normal write takes far less).
const INCOMPLETE_WARNING_AFTER: Duration = Duration::from_secs(2);

/// What identifies one version of a file on disk: nanosecond mtime (two saves in one second
/// differ), size, and the file's identity (an editor's atomic save makes a new one).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Version {
    mtime: Option<SystemTime>,
    pub size: u64,
    id: FileId,
}

/// Which file a path leads to: (device, inode) on Unix, (volume, file index) on Windows. A
/// path that names another file than before (a rename into place) has another one.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct FileId(u64, u64);

impl Version {
    pub fn of(meta: &Metadata, id: FileId) -> Version {
        Version {
            mtime: meta.modified().ok(),
            size: meta.len(),
            id,
        }
    }
}

pub struct FileSource {
    pub path: PathBuf,
    pub content_type: HeaderValue,
    pub poll: Duration,
    pub max_frame: u64,
    /// `--once`: publish one version and return.
    pub once: bool,
    /// Wake on change events (false: `--poll-only`).
    pub events: bool,
}

impl Producer for FileSource {
    fn run(self: Box<Self>, channel: &Channel) {
        self.poll(channel);
    }
}

/// Why a read of the file gave no frame.
#[derive(Debug)]
pub enum Skip {
    /// The file is not there (between an editor's delete and rename, say) or cannot be read.
    Unreadable(std::io::Error),
    /// Something other than a regular file is there: what, e.g. "a FIFO".
    NotRegular(&'static str),
    /// The file moved while it was read, or is not a whole image yet: try at the next poll.
    Unsettled(Version),
    /// Over `--max-frame`: not read (or not past `--max-frame` + 1 bytes).
    TooLarge(Version),
}

impl Skip {
    /// Why, in a few words, e.g. "100 bytes, over --max-frame 10".
    pub fn describe(&self, max_frame: u64) -> String {
        match self {
            Skip::Unreadable(e) => describe_io_error(e),
            Skip::NotRegular(what) => format!("not a regular file but {what}"),
            Skip::Unsettled(_) => "still being written".into(),
            Skip::TooLarge(v) => format!("{} bytes, over --max-frame {max_frame}", v.size),
        }
    }
}

/// What the source last said was wrong, so that each problem is said once (a version over
/// `--max-frame` once per version), not at every poll.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Said {
    Unreadable,
    NotRegular(&'static str),
    TooLarge(Version),
    Unsettled(Version),
}

impl FileSource {
    /// Polls forever, publishing every new complete version; returns when the server closes
    /// (with `once`, after the first).
    fn poll(self, channel: &Channel) {
        let name = self.path.display().to_string();
        let target = Target::File(self.path.clone());
        let watched = self.events && !self.once;
        let mut changes = Changes::for_source(target, watched, channel, &name, self.poll);
        let mut published: Option<Version> = None;
        // A version over --max-frame: not read again until the file changes.
        let mut too_large: Option<Version> = None;
        let mut unsettled_since: Option<(Version, Instant)> = None;
        let mut said: Option<Said> = None;
        let mut wake = Wake::Due;
        while wake != Wake::Closed {
            // After an event the file is read even if its stat has not moved: two saves of the
            // same size within one tick of the filesystem's clock share an mtime.
            let event = matches!(wake, Wake::Written | Wake::Writing);
            let seen = |v: Version| !event && (Some(v) == published || Some(v) == too_large);
            let half_way = |frame: &NewFrame| {
                !appends(channel, frame) && changes.being_written(wake, frame.modified)
            };
            match read_version(&self.path, &self.content_type, self.max_frame, seen) {
                Ok(None) => {}
                // A change under way: only an append is a version yet; the rest (a file
                // truncated, half rewritten, or moved away while it is saved) waits for the
                // writer's close, the rename into place, or the poll (see `being_written`).
                Ok(Some((_, frame))) if half_way(&frame) => {}
                Err(_) if wake == Wake::Writing => {}
                Ok(Some((version, frame))) => {
                    if matches!(said, Some(Said::Unreadable | Said::NotRegular(_))) {
                        channel.note(format_args!("'{name}' is back"));
                    }
                    let unchanged = Some(version) == published
                        && channel
                            .latest
                            .current()
                            .is_some_and(|last| *last.bytes == *frame.bytes);
                    if !unchanged {
                        channel.publish(frame);
                    }
                    if self.once {
                        return;
                    }
                    published = Some(version);
                    (too_large, unsettled_since, said) = (None, None, None);
                }
                Err(skip) => {
                    let now = match &skip {
                        Skip::Unreadable(_) => Some(Said::Unreadable),
                        Skip::NotRegular(what) => Some(Said::NotRegular(what)),
                        Skip::TooLarge(v) => {
                            too_large = Some(*v);
                            Some(Said::TooLarge(*v))
                        }
                        Skip::Unsettled(v) => match unsettled_since {
                            Some((u, since)) if u == *v => (since.elapsed()
                                >= INCOMPLETE_WARNING_AFTER)
                                .then_some(Said::Unsettled(*v)),
                            _ => {
                                unsettled_since = Some((*v, Instant::now()));
                                None
                            }
                        },
                    };
                    if now.is_some() && now != said {
                        match &skip {
                            Skip::Unreadable(e) => channel.warn(format_args!(
                                "cannot read '{name}': {}; keeping the last frame",
                                describe_io_error(e)
                            )),
                            Skip::Unsettled(_) => channel.warn(format_args!(
                                "'{name}' is not a complete {}; waiting for the next version",
                                self.content_type
                            )),
                            skip => channel.warn(format_args!(
                                "'{name}' is {}; keeping the last frame",
                                skip.describe(self.max_frame)
                            )),
                        }
                        said = now;
                    }
                }
            }
            wake = changes.wait(channel, Instant::now() + self.poll);
            changes.refresh();
        }
    }
}

/// Whether `frame` is the channel's current frame with more bytes after it: what a writer that
/// keeps appending (a log) makes, which no rewrite caught half-way does.
fn appends(channel: &Channel, frame: &NewFrame) -> bool {
    channel.latest.current().is_some_and(|last| {
        frame.bytes.len() > last.bytes.len() && frame.bytes.starts_with(&last.bytes)
    })
}

/// Opens `path` for reading without blocking on it, and checks what the opened descriptor is:
/// only a regular file on a disk-backed filesystem can be served. With the version it has.
pub fn open_regular(path: &Path) -> Result<(File, Version), Skip> {
    let file = os::open(path).map_err(Skip::Unreadable)?;
    let (meta, id) = os::fstat(&file).map_err(Skip::Unreadable)?;
    if let Some(what) = not_regular(&meta) {
        return Err(Skip::NotRegular(what));
    }
    if let Some(what) = os::special(&file) {
        return Err(Skip::NotRegular(what));
    }
    Ok((file, Version::of(&meta, id)))
}

/// What `meta` describes, if not a regular file: "a folder", "a FIFO", ...
pub fn not_regular(meta: &Metadata) -> Option<&'static str> {
    let kind = meta.file_type();
    match () {
        _ if kind.is_file() => None,
        _ if kind.is_dir() => Some("a folder"),
        _ => Some(os::other_kind(kind)),
    }
}

/// One look at `path`: a stat, and unless `seen` says that version is known, a bounded read
/// checked against the descriptor's stat before and after and, for images, a completeness
/// check. Shared by the file and folder sources.
pub fn read_version(
    path: &Path,
    content_type: &HeaderValue,
    max_frame: u64,
    seen: impl Fn(Version) -> bool,
) -> Result<Option<(Version, NewFrame)>, Skip> {
    let (meta, id) = os::stat(path).map_err(Skip::Unreadable)?;
    if let Some(what) = not_regular(&meta) {
        return Err(Skip::NotRegular(what));
    }
    let version = Version::of(&meta, id);
    if seen(version) {
        return Ok(None);
    }
    if version.size > max_frame {
        return Err(Skip::TooLarge(version));
    }
    let (file, opened) = open_regular(path)?;
    if opened != version {
        return Err(Skip::Unsettled(opened));
    }
    // One byte more than allowed tells a file that grew past --max-frame while read.
    let bytes = FrameBytes::read(&file, version.size as usize, max_frame.saturating_add(1))
        .map_err(Skip::Unreadable)?;
    if bytes.len() as u64 > max_frame {
        return Err(Skip::TooLarge(Version {
            size: bytes.len() as u64,
            ..version
        }));
    }
    let (after, id) = os::fstat(&file).map_err(Skip::Unreadable)?;
    if Version::of(&after, id) != version
        || bytes.len() as u64 != version.size
        || !is_complete(content_type.as_str(), &bytes)
    {
        return Err(Skip::Unsettled(version));
    }
    let name = path
        .file_name()
        .unwrap_or(path.as_os_str())
        .to_string_lossy()
        .into_owned();
    let modified = meta.modified().unwrap_or_else(|_| SystemTime::now());
    Ok(Some((
        version,
        NewFrame {
            bytes,
            content_type: content_type.clone(),
            name,
            modified,
        },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::SourceKind;
    use std::fs;

    fn source(path: PathBuf, content_type: &'static str) -> FileSource {
        FileSource {
            path,
            content_type: HeaderValue::from_static(content_type),
            poll: Duration::from_millis(1),
            max_frame: 1 << 20,
            once: false,
            events: true,
        }
    }

    fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("pushserve-unit-{}-{name}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn a_version_already_seen_is_not_read_again() {
        let src = source(temp_file("a.txt", b"one"), "text/plain");
        let (v, frame) = read_version(&src.path, &src.content_type, src.max_frame, |_| false)
            .ok()
            .flatten()
            .unwrap();
        assert_eq!(&frame.bytes[..], b"one");
        assert!(matches!(
            read_version(&src.path, &src.content_type, src.max_frame, |seen| seen
                == v),
            Ok(None)
        ));
    }

    #[test]
    fn a_file_saved_over_with_the_same_size_and_mtime_is_another_version() {
        let path = temp_file("same.txt", b"one");
        let new = path.with_file_name("same.tmp");
        fs::write(&new, b"two").unwrap();
        let mtime = fs::metadata(&path).unwrap().modified().unwrap();
        File::options()
            .write(true)
            .open(&new)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let (_, before) = open_regular(&path).unwrap();
        fs::rename(&new, &path).unwrap();
        let (_, after) = open_regular(&path).unwrap();
        assert_eq!((before.size, before.mtime), (after.size, after.mtime));
        assert_ne!(before, after, "the file's identity tells them apart");
    }

    #[test]
    fn a_half_written_jpeg_is_not_published() {
        let jpeg = include_bytes!("../../tests/fixtures/red.jpg");
        let src = source(temp_file("half.jpg", &jpeg[..jpeg.len() / 2]), "image/jpeg");
        assert!(matches!(
            read_version(&src.path, &src.content_type, src.max_frame, |_| false),
            Err(Skip::Unsettled(_))
        ));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn fifos_devices_and_kernel_files_are_refused_without_blocking() {
        let fifo = temp_file("fifo", b"").with_file_name("a.fifo");
        let _ = fs::remove_file(&fifo);
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let text = HeaderValue::from_static("text/plain");
        let refused = |path: &Path| match read_version(path, &text, 1 << 20, |_| false) {
            Err(Skip::NotRegular(what)) => what,
            Err(other) => panic!("{}: {other:?}", path.display()),
            Ok(_) => panic!("{} was read", path.display()),
        };
        assert_eq!(refused(&fifo), "a FIFO");
        assert!(matches!(
            open_regular(&fifo),
            Err(Skip::NotRegular("a FIFO"))
        ));
        assert_eq!(refused(Path::new("/dev/zero")), "a character device");
        assert!(refused(Path::new("/proc/uptime")).starts_with("a kernel file"));
    }

    #[test]
    fn a_version_over_max_frame_is_said_once_and_the_next_one_published() {
        let path = temp_file("grows.txt", b"one");
        let replace = |bytes: &[u8]| {
            let new = path.with_file_name("grows.tmp");
            fs::write(&new, bytes).unwrap();
            fs::rename(&new, &path).unwrap();
        };
        let mut src = source(path.clone(), "text/plain");
        src.max_frame = 5;
        let channel = Channel::for_test(SourceKind::File);
        std::thread::scope(|scope| {
            let _closing = channel.closing();
            scope.spawn(|| src.poll(&channel));
            channel.wait_recorded("the first version", |r| r.frames.len() == 1);
            replace(b"far too long");
            channel.wait_recorded("the warning", |r| !r.warnings().is_empty());
            replace(b"two");
            channel.wait_recorded("the next version", |r| r.frames.len() == 2);
        });
        let recorded = channel.recorded();
        assert_eq!(recorded.bodies(), [b"one", b"two"]);
        assert_eq!(recorded.warnings().len(), 1, "{:?}", recorded.said);
        assert!(
            recorded.warnings()[0].contains("over --max-frame"),
            "{:?}",
            recorded.said
        );
    }

    #[test]
    fn a_file_over_max_frame_is_not_read() {
        let mut src = source(temp_file("big.txt", b"0123456789"), "text/plain");
        src.max_frame = 9;
        assert!(matches!(
            read_version(&src.path, &src.content_type, src.max_frame, |_| false),
            Err(Skip::TooLarge(_))
        ));
    }
}
