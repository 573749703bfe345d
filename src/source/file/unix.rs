//! What a file is on Unix: its identity (device and inode), what else than a regular file it
//! may be (a FIFO, a device, a socket), and, on Linux, whether it is a kernel file. A FIFO or a
//! terminal put in a file's place is opened without blocking and without becoming ours.

use std::fs::{self, File, FileType, Metadata};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use rustix::fs::OFlags;

use super::FileId;

/// What `path` leads to: its metadata and identity.
pub fn stat(path: &Path) -> io::Result<(Metadata, FileId)> {
    let meta = fs::metadata(path)?;
    let id = FileId(meta.dev(), meta.ino());
    Ok((meta, id))
}

/// What `file` is open on: its metadata and identity.
pub fn fstat(file: &File) -> io::Result<(Metadata, FileId)> {
    let meta = file.metadata()?;
    let id = FileId(meta.dev(), meta.ino());
    Ok((meta, id))
}

/// Opens `path` for reading without blocking on it.
pub fn open(path: &Path) -> io::Result<File> {
    File::options()
        .read(true)
        // Opening a FIFO for reading would wait for a writer; a terminal would become ours.
        .custom_flags((OFlags::NONBLOCK | OFlags::NOCTTY).bits() as i32)
        .open(path)
}

/// What `kind`, neither a file nor a folder, is: "a FIFO", ...
pub fn other_kind(kind: FileType) -> &'static str {
    match () {
        _ if kind.is_fifo() => "a FIFO",
        _ if kind.is_char_device() => "a character device",
        _ if kind.is_block_device() => "a block device",
        _ if kind.is_socket() => "a socket",
        _ => "not a file",
    }
}

/// What `file`, a regular file by its metadata, is if it cannot be served as one.
pub fn special(file: &File) -> Option<&'static str> {
    is_kernel_file(file)
        .then_some("a kernel file (/proc, /sys), whose size and changes are not reported")
}

/// Whether `file` lives on one of the kernel's pseudo-filesystems, whose files say they are
/// empty (or 4096 bytes) whatever they hold, and never change their mtime.
#[cfg(target_os = "linux")]
fn is_kernel_file(file: &File) -> bool {
    const PSEUDO_FILESYSTEMS: [u64; 8] = [
        0x9fa0,     // proc
        0x62656572, // sysfs
        0x64626720, // debugfs
        0x74726163, // tracefs
        0x73636673, // securityfs
        0x27e0eb,   // cgroup
        0x63677270, // cgroup2
        0x62656570, // configfs
    ];
    rustix::fs::fstatfs(file).is_ok_and(|fs| PSEUDO_FILESYSTEMS.contains(&(fs.f_type as u64)))
}

/// Elsewhere, no filesystem is known to report files so (macOS has no /proc or /sys).
#[cfg(not(target_os = "linux"))]
fn is_kernel_file(_file: &File) -> bool {
    false
}
