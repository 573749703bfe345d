//! Decoding: turning bytes into frames, knowing nothing of where the bytes come from or where
//! the frames go. Pure functions and small state machines over buffers and readers; no
//! threads, no sockets, no files, no channels. Sources (`crate::source`) use it; it never
//! uses them.

pub mod complete;
pub mod format;
pub mod image;
pub mod media;
pub mod multipart;
pub mod split;
pub mod tail;
