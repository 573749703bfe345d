//! The file source: one thread that stats the watched file every `--poll` and publishes each
//! new, complete version to [`Latest`].
//!
//! This is the only code that touches the file: one `stat` per poll and one read per change,
//! whatever the number of clients. It never publishes a version that moved while it was read.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::frame::{Latest, NewFrame};
use crate::report::describe_io_error;
use crate::source::complete::is_complete;

/// How long a version may stay incomplete before we say so (a normal write takes far less).
const INCOMPLETE_WARNING_AFTER: Duration = Duration::from_secs(2);

/// What identifies one version of a file on disk: nanosecond mtime (two saves in one second
/// differ), size, and inode (an editor's atomic save makes a new one).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Version {
    mtime: (i64, i64),
    pub size: u64,
    inode: (u64, u64),
}

impl Version {
    pub fn of(meta: &fs::Metadata) -> Version {
        Version {
            mtime: (meta.mtime(), meta.mtime_nsec()),
            size: meta.size(),
            inode: (meta.dev(), meta.ino()),
        }
    }
}

pub struct FileSource {
    pub path: PathBuf,
    pub content_type: String,
    pub poll: Duration,
    pub max_frame: u64,
}

/// Why a read of the file gave no frame.
pub enum Skip {
    /// The file is not there (between an editor's delete and rename, say) or cannot be read.
    Unreadable(std::io::Error),
    /// The file moved while it was read, or is not a whole image yet: try at the next poll.
    Unsettled(Version),
    /// Over `--max-frame`: not read at all.
    TooLarge(Version),
}

impl FileSource {
    /// Polls forever, publishing every new complete version; returns when the server closes.
    pub fn run(self, latest: Arc<Latest>) {
        let name = self.path.display().to_string();
        let mut published: Option<Version> = None;
        let mut missing = false;
        // A version we decided not to publish, and since when: not re-read until it changes.
        let mut skipped: Option<(Version, Instant, bool)> = None;
        while !latest.is_closed() {
            let seen = published.or(skipped.map(|s| s.0));
            match read_version(&self.path, &self.content_type, self.max_frame, seen) {
                Ok(None) => {}
                Ok(Some((version, frame))) => {
                    if missing {
                        note!("'{name}' is back");
                        missing = false;
                    }
                    latest.publish(frame);
                    published = Some(version);
                    skipped = None;
                }
                Err(Skip::Unreadable(e)) => {
                    if !missing {
                        warning!(
                            "cannot read '{name}': {}; keeping the last frame",
                            describe_io_error(&e)
                        );
                        missing = true;
                    }
                }
                Err(Skip::TooLarge(version)) => {
                    warning!(
                        "'{name}' is {} bytes, over --max-frame {}; keeping the last frame",
                        version.size,
                        self.max_frame
                    );
                    skipped = Some((version, Instant::now(), true));
                }
                Err(Skip::Unsettled(version)) => match &mut skipped {
                    Some((v, since, warned)) if *v == version => {
                        if !*warned && since.elapsed() >= INCOMPLETE_WARNING_AFTER {
                            warning!(
                                "'{name}' is not a complete {}; waiting for the next version",
                                self.content_type
                            );
                            *warned = true;
                        }
                    }
                    _ => skipped = Some((version, Instant::now(), false)),
                },
            }
            thread::sleep(self.poll);
        }
    }
}

/// One look at `path`: a stat, and if the version is not `seen`, a read checked against a
/// second stat and, for images, a completeness check. Shared by the file and folder sources.
pub fn read_version(
    path: &Path,
    content_type: &str,
    max_frame: u64,
    seen: Option<Version>,
) -> Result<Option<(Version, NewFrame)>, Skip> {
    let meta = fs::metadata(path).map_err(Skip::Unreadable)?;
    let version = Version::of(&meta);
    if seen == Some(version) {
        return Ok(None);
    }
    if version.size > max_frame {
        return Err(Skip::TooLarge(version));
    }
    let bytes = fs::read(path).map_err(Skip::Unreadable)?;
    let after = fs::metadata(path).map_err(Skip::Unreadable)?;
    if Version::of(&after) != version
        || bytes.len() as u64 != version.size
        || !is_complete(content_type, &bytes)
    {
        return Err(Skip::Unsettled(version));
    }
    let name = path
        .file_name()
        .unwrap_or(path.as_os_str())
        .to_string_lossy()
        .into_owned();
    let modified = meta
        .modified()
        .unwrap_or_else(|_| std::time::SystemTime::now());
    let content_type = content_type.to_string();
    Ok(Some((
        version,
        NewFrame {
            bytes,
            content_type,
            name,
            modified,
        },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(path: PathBuf, content_type: &str) -> FileSource {
        FileSource {
            path,
            content_type: content_type.into(),
            poll: Duration::from_millis(1),
            max_frame: 1 << 20,
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
        let (v, frame) = read_version(&src.path, &src.content_type, src.max_frame, None)
            .ok()
            .flatten()
            .unwrap();
        assert_eq!(frame.bytes, b"one");
        assert!(matches!(
            read_version(&src.path, &src.content_type, src.max_frame, Some(v)),
            Ok(None)
        ));
    }

    #[test]
    fn a_half_written_jpeg_is_not_published() {
        let jpeg = include_bytes!("../../tests/fixtures/red.jpg");
        let src = source(temp_file("half.jpg", &jpeg[..jpeg.len() / 2]), "image/jpeg");
        assert!(matches!(
            read_version(&src.path, &src.content_type, src.max_frame, None),
            Err(Skip::Unsettled(_))
        ));
    }

    #[test]
    fn a_file_over_max_frame_is_not_read() {
        let mut src = source(temp_file("big.txt", b"0123456789"), "text/plain");
        src.max_frame = 9;
        assert!(matches!(
            read_version(&src.path, &src.content_type, src.max_frame, None),
            Err(Skip::TooLarge(_))
        ));
    }
}
