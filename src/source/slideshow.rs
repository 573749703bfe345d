//! The folder source: a slideshow that publishes each matching file in turn, `--interval` apart.
//!
//! The folder is listed again at the start of every cycle and each slide is read when its turn
//! comes, so added, deleted and changed files are seen. Reads go through the same checks as the
//! file source (`file.rs`): a slide being written is never sent half-written, and anything but a
//! regular file is skipped. The first slide is found before the server listens, walking only as
//! far as it must, so that any folder starts serving at once; the whole listing follows.
//! Symlinked files are served; symlinked folders are walked only when they stay inside the
//! folder, unless `--follow-links` says otherwise.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::fs;
use std::hash::{BuildHasher, RandomState};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use walkdir::{DirEntry, WalkDir};

use crate::channel::Channel;
use crate::cli::Order;
use crate::frame::NewFrame;
use crate::http::head::HeaderValue;
use crate::source::file::{Skip, read_version};
use crate::source::{Producer, content_type_for};

/// How often a slide that is being written is looked at again during its turn.
const SETTLE_RETRY: Duration = Duration::from_millis(20);
/// How long the first slide may take to settle before the next file is tried.
const FIRST_SLIDE_SETTLE: Duration = Duration::from_millis(500);

pub struct Slideshow {
    pub dir: PathBuf,
    /// Lower-case, without dots.
    pub extensions: Vec<String>,
    pub recursive: bool,
    /// Walk symlinked folders that lead outside `dir` too.
    pub follow_links: bool,
    pub order: Order,
    pub interval: Duration,
    pub once: bool,
    pub forced_type: Option<HeaderValue>,
    pub max_frame: u64,
}

/// The slide shown first, found before the server listens.
pub struct FirstSlide {
    path: PathBuf,
    frame: NewFrame,
}

/// A slideshow with its first slide found: what runs.
pub struct Playing {
    pub show: Slideshow,
    pub first: FirstSlide,
}

impl Producer for Playing {
    fn run(self: Box<Self>, channel: &Channel) {
        self.show.play(channel, self.first);
    }
}

impl Slideshow {
    /// The matching, non-hidden regular files, in walk order (by name within each folder).
    fn walk(&self) -> impl Iterator<Item = DirEntry> + '_ {
        let root = fs::canonicalize(&self.dir).unwrap_or_else(|_| self.dir.clone());
        let mut folders_seen = HashSet::new();
        WalkDir::new(&self.dir)
            .follow_links(true)
            .max_depth(if self.recursive { usize::MAX } else { 1 })
            .sort_by(|a, b| natural_cmp(Path::new(a.file_name()), Path::new(b.file_name())))
            .into_iter()
            .filter_entry(move |e| {
                if e.depth() > 0
                    && (e.file_name().to_string_lossy().starts_with('.')
                        || !self.may_walk_into(e, &root))
                {
                    return false;
                }
                // Each folder once, however many links lead to it: loops end, and trees full of
                // links (/sys) are not walked again and again.
                !e.file_type().is_dir()
                    || e.metadata()
                        .is_ok_and(|m| folders_seen.insert((m.dev(), m.ino())))
            })
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file() && self.matches(e.path()))
    }

    /// A symlinked folder that leads outside the folder (to `/`, to `/etc`) is walked only with
    /// `--follow-links`.
    fn may_walk_into(&self, e: &DirEntry, root: &Path) -> bool {
        self.follow_links
            || !e.path_is_symlink()
            || !e.file_type().is_dir()
            || fs::canonicalize(e.path()).is_ok_and(|target| target.starts_with(root))
    }

    /// The slides of one cycle, in show order.
    pub fn list(&self) -> Vec<PathBuf> {
        let mut slides: Vec<(PathBuf, SystemTime)> = self
            .walk()
            .map(|e| {
                let modified = e.metadata().ok().and_then(|m| m.modified().ok());
                (e.into_path(), modified.unwrap_or(SystemTime::UNIX_EPOCH))
            })
            .collect();
        match self.order {
            Order::Name => slides.sort_by(|a, b| natural_cmp(&a.0, &b.0)),
            Order::Mtime => {
                slides.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| natural_cmp(&a.0, &b.0)))
            }
            Order::Random => shuffle(&mut slides),
        }
        slides.into_iter().map(|(path, _)| path).collect()
    }

    fn matches(&self, path: &Path) -> bool {
        path.extension()
            .is_some_and(|ext| self.extensions.iter().any(|e| ext.eq_ignore_ascii_case(e)))
    }

    /// The first file of the walk that can be shown, read; or why there is none, in one line.
    pub fn first_slide(&self) -> Result<FirstSlide, String> {
        let mut skipped: Vec<(PathBuf, Skip)> = Vec::new();
        for entry in self.walk() {
            let path = entry.into_path();
            match self.read_slide(&path, Instant::now() + FIRST_SLIDE_SETTLE) {
                Ok(frame) => return Ok(FirstSlide { path, frame }),
                Err(skip) => skipped.push((path, skip)),
            }
        }
        let dir = self.dir.display();
        match skipped.first() {
            None => Err(format!(
                "'{dir}' has no files ending in {}{}",
                self.extensions.join(", "),
                if self.recursive {
                    ""
                } else {
                    " (add --recursive to look in subfolders)"
                }
            )),
            Some((path, skip)) => Err(format!(
                "'{dir}' has no file that can be shown: '{}' is {}{}",
                self.display_name(path),
                self.describe(skip),
                match skipped.len() - 1 {
                    0 => String::new(),
                    more => format!(", and {more} more cannot be shown either"),
                }
            )),
        }
    }

    /// Shows `first`, then plays cycle after cycle (one with `--once`) until the server closes.
    fn play(self, channel: &Channel, first: FirstSlide) {
        channel.publish(first.frame);
        let mut shown_until = Instant::now() + self.interval;
        // The first cycle goes on after the first slide, and does not show it again.
        let mut resume_after = Some(first.path);
        let mut emptied = false;
        let mut stuck = false;
        let mut unreadable: Vec<PathBuf> = Vec::new();
        while !channel.is_closed() {
            let mut slides: Vec<(usize, PathBuf)> = self.list().into_iter().enumerate().collect();
            let count = slides.len();
            if let Some(after) = resume_after.take()
                && let Some(at) = slides.iter().position(|(_, p)| *p == after)
            {
                channel.note(format_args!(
                    "slide {}/{count}: {}",
                    at + 1,
                    self.display_name(&after)
                ));
                slides.rotate_left(at + 1);
                slides.pop();
            }
            if count == 0 {
                if !emptied {
                    channel.warn(format_args!(
                        "'{}' has no slides left; keeping the last one",
                        self.dir.display()
                    ));
                    emptied = true;
                }
                channel.pause(self.interval);
                continue;
            }
            emptied = false;
            // Whether a slide was shown, or one was still being written (worth a new try at once).
            let (mut shown, mut settling) = (false, false);
            for (i, path) in slides {
                if !channel.pause(shown_until.saturating_duration_since(Instant::now())) {
                    return;
                }
                match self.read_slide(&path, Instant::now() + self.interval) {
                    Ok(frame) => {
                        unreadable.retain(|p| *p != path);
                        channel.note(format_args!(
                            "slide {}/{count}: {}",
                            i + 1,
                            self.display_name(&path)
                        ));
                        channel.publish(frame);
                        shown_until = Instant::now() + self.interval;
                        (shown, stuck) = (true, false);
                    }
                    // Deleted since the listing: no gap, no error.
                    Err(Skip::Unreadable(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(skip) => {
                        settling |= matches!(skip, Skip::Unsettled(_));
                        if !unreadable.contains(&path) {
                            channel.warn(format_args!(
                                "skipping '{}': {}",
                                path.display(),
                                self.describe(&skip)
                            ));
                            unreadable.push(path);
                        }
                    }
                }
            }
            if self.once {
                channel.pause(shown_until.saturating_duration_since(Instant::now()));
                return;
            }
            if !shown && !settling {
                // Nothing can be shown: one try per --interval, not a busy loop.
                if !stuck {
                    channel.warn(format_args!(
                        "no file in '{}' can be shown now; keeping the last slide",
                        self.dir.display()
                    ));
                    stuck = true;
                }
                shown_until = Instant::now() + self.interval;
            }
        }
    }

    /// Reads one slide, retrying while it is being written, at most until `deadline`.
    fn read_slide(&self, path: &Path, deadline: Instant) -> Result<NewFrame, Skip> {
        let content_type = content_type_for(path, self.forced_type.as_ref());
        loop {
            match read_version(path, &content_type, self.max_frame, |_| false) {
                Ok(Some((_, frame))) => return Ok(frame),
                Ok(None) => unreachable!("nothing was seen before"),
                Err(Skip::Unsettled(_)) if Instant::now() + SETTLE_RETRY < deadline => {
                    thread::sleep(SETTLE_RETRY)
                }
                Err(skip) => return Err(skip),
            }
        }
    }

    fn display_name(&self, path: &Path) -> String {
        path.strip_prefix(&self.dir)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    fn describe(&self, skip: &Skip) -> String {
        match skip {
            Skip::Unsettled(_) => "still being written when its turn ended".into(),
            skip => skip.describe(self.max_frame),
        }
    }
}

/// Compares paths as people do: runs of digits by value, so `img2` < `img10`; letters
/// case-insensitively, ties broken by the exact text.
pub fn natural_cmp(a: &Path, b: &Path) -> Ordering {
    let (a, b) = (a.to_string_lossy(), b.to_string_lossy());
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return a.cmp(&b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let (n, rest_x) = split_digits(x);
                let (m, rest_y) = split_digits(y);
                let (n, m) = (trim_zeros(n), trim_zeros(m));
                let by_value = n.len().cmp(&m.len()).then_with(|| n.cmp(m));
                if by_value != Ordering::Equal {
                    return by_value;
                }
                (x, y) = (rest_x, rest_y);
            }
            (Some(c), Some(d)) => {
                let by_letter = c.to_ascii_lowercase().cmp(&d.to_ascii_lowercase());
                if by_letter != Ordering::Equal {
                    return by_letter;
                }
                (x, y) = (&x[1..], &y[1..]);
            }
        }
    }
}

fn split_digits(s: &[u8]) -> (&[u8], &[u8]) {
    s.split_at(
        s.iter()
            .position(|c| !c.is_ascii_digit())
            .unwrap_or(s.len()),
    )
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    &s[s.iter().position(|&c| c != b'0').unwrap_or(s.len())..]
}

/// Fisher-Yates with the process's random hasher keys as the source of randomness.
fn shuffle<T>(items: &mut [T]) {
    let random = RandomState::new();
    for i in (1..items.len()).rev() {
        let j = (random.hash_one((i, Instant::now())) % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_puts_img2_before_img10() {
        let mut names = [
            "img10.jpg",
            "img2.jpg",
            "IMG1.jpg",
            "img02b.jpg",
            "a/z.jpg",
            "img1.jpg",
        ]
        .map(PathBuf::from)
        .to_vec();
        names.sort_by(|a, b| natural_cmp(a, b));
        let sorted: Vec<_> = names.iter().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(
            sorted,
            [
                "a/z.jpg",
                "IMG1.jpg",
                "img1.jpg",
                "img2.jpg",
                "img02b.jpg",
                "img10.jpg"
            ]
        );
    }

    #[test]
    fn shuffle_keeps_every_item() {
        let mut items: Vec<u32> = (0..50).collect();
        shuffle(&mut items);
        items.sort();
        assert_eq!(items, (0..50).collect::<Vec<_>>());
    }
}
