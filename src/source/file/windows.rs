//! What a file is on Windows: its identity (volume serial number and file index) and whether
//! it is a file on a disk, not a device (`NUL`, `CON`, `COM1`) or a named pipe, which Windows
//! opens as files too.

use std::fs::{File, FileType, Metadata};
use std::io;
use std::os::windows::fs::OpenOptionsExt;
use std::path::Path;

use winapi_util::file::{information, typ};

use super::FileId;

/// `FILE_FLAG_BACKUP_SEMANTICS`: what lets a folder be opened, to be told from a file.
const BACKUP_SEMANTICS: u32 = 0x0200_0000;

/// What `path` leads to: its metadata and identity. Opened without asking to read, as a look
/// at its metadata is, so that a file a writer holds without sharing can still be looked at.
pub fn stat(path: &Path) -> io::Result<(Metadata, FileId)> {
    let file = File::options()
        .access_mode(0)
        .custom_flags(BACKUP_SEMANTICS)
        .open(path)?;
    fstat(&file)
}

/// What `file` is open on: its metadata and identity.
pub fn fstat(file: &File) -> io::Result<(Metadata, FileId)> {
    let meta = file.metadata()?;
    let info = information(file)?;
    Ok((meta, FileId(info.volume_serial_number(), info.file_index())))
}

/// Opens `path` for reading (which does not wait on anything on Windows).
pub fn open(path: &Path) -> io::Result<File> {
    File::open(path)
}

/// What `kind`, neither a file nor a folder, is.
pub fn other_kind(_kind: FileType) -> &'static str {
    "not a file"
}

/// What `file`, a regular file by its metadata, is if it cannot be served as one.
pub fn special(file: &File) -> Option<&'static str> {
    match typ(file) {
        Ok(kind) if kind.is_disk() => None,
        Ok(kind) if kind.is_char() => Some("a character device"),
        Ok(kind) if kind.is_pipe() => Some("a pipe"),
        _ => Some("not a file on a disk"),
    }
}
