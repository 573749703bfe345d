//! The folder source: a slideshow that publishes each matching file in turn, `--interval` apart.
//!
//! The folder is listed again at the start of every cycle and each slide is read when its turn
//! comes, so added, deleted and changed files are seen. The folder's change events
//! (`changes.rs`) are followed too: the slide on screen is sent again as soon as its file
//! changes (it is also looked at every `--poll`), and a folder that changed during a turn is
//! listed again when the turn ends, so that a file added is shown next and one removed leaves
//! the cycle (once a turn: a busy folder is not walked at every event). Reads go through the same checks as the
//! file source (`file.rs`): a slide being written is never sent half-written, and anything but a
//! regular file is skipped. The first slide is found before the server listens, walking only as
//! far as it must, so that any folder starts serving at once; the whole listing follows.
//! Symlinked files are served; symlinked folders are walked only when they stay inside the
//! folder, unless `--follow-links` says otherwise.

use std::cmp::Ordering;
use std::collections::{HashSet, VecDeque};
use std::fs;
use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use walkdir::{DirEntry, WalkDir};

use crate::channel::Channel;
use crate::decode::media::content_type_for;
use crate::frame::NewFrame;
use crate::http::head::HeaderValue;
use crate::source::Producer;
use crate::source::changes::{Changes, Target, Wake};
use crate::source::file::{self, Skip, Version, read_version};
use crate::source::options::Order;

/// How often a slide that is being written is looked at again during its turn.
const SETTLE_RETRY: Duration = Duration::from_millis(20);
/// How long the first slide may take to settle before the next file is tried.
const FIRST_SLIDE_SETTLE: Duration = Duration::from_millis(500);
/// The most folders of a tree (`--recursive`) whose changes are followed: each takes one of
/// the system's watches, which other programs of the same user need too. Files in the others
/// are found by the listing at the start of each cycle.
pub const MAX_FOLLOWED_FOLDERS: usize = 1024;

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
    /// How often the slide on screen is looked at for a change without an event.
    pub poll: Duration,
    /// Wake on change events (false: `--poll-only`).
    pub events: bool,
}

/// The slide shown first, found before the server listens.
pub struct FirstSlide {
    path: PathBuf,
    version: Version,
    frame: NewFrame,
}

/// One listing of the folder: the slides in show order, the same as a set (to tell a file
/// added since an earlier listing), and the folders walked, whose changes are followed.
struct Listing {
    order: Vec<PathBuf>,
    set: HashSet<PathBuf>,
    folders: Vec<PathBuf>,
}

impl Listing {
    fn of(order: Vec<PathBuf>, mut folders: Vec<PathBuf>) -> Listing {
        let set = order.iter().cloned().collect();
        folders.truncate(MAX_FOLLOWED_FOLDERS);
        Listing {
            order,
            set,
            folders,
        }
    }

    fn contains(&self, path: &PathBuf) -> bool {
        self.set.contains(path)
    }

    fn position(&self, path: &PathBuf) -> Option<usize> {
        self.order.iter().position(|p| p == path)
    }
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
        self.walk_all()
            .filter(|e| e.file_type().is_file() && self.matches(e.path()))
    }

    /// What [`Slideshow::walk`] visits: the folder, the subfolders it enters, every file.
    fn walk_all(&self) -> impl Iterator<Item = DirEntry> + '_ {
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
                    || file::stat(e.path()).is_ok_and(|(_, id)| folders_seen.insert(id))
            })
            .filter_map(Result::ok)
    }

    /// A symlinked folder that leads outside the folder (to `/`, to `/etc`) is walked only with
    /// `--follow-links`.
    fn may_walk_into(&self, e: &DirEntry, root: &Path) -> bool {
        self.follow_links
            || !e.path_is_symlink()
            || !e.file_type().is_dir()
            || fs::canonicalize(e.path()).is_ok_and(|target| target.starts_with(root))
    }

    /// The slides of one cycle, in show order, and the folders they were found in.
    fn list(&self) -> Listing {
        let mut slides: Vec<(PathBuf, SystemTime)> = Vec::new();
        let mut folders = Vec::new();
        for e in self.walk_all() {
            if e.file_type().is_dir() {
                folders.push(e.into_path());
            } else if e.file_type().is_file() && self.matches(e.path()) {
                let modified = e.metadata().ok().and_then(|m| m.modified().ok());
                slides.push((e.into_path(), modified.unwrap_or(SystemTime::UNIX_EPOCH)));
            }
        }
        match self.order {
            Order::Name => slides.sort_by(|a, b| natural_cmp(&a.0, &b.0)),
            Order::Mtime => {
                slides.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| natural_cmp(&a.0, &b.0)))
            }
            Order::Random => shuffle(&mut slides),
        }
        Listing::of(slides.into_iter().map(|(path, _)| path).collect(), folders)
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
            // Opening, before the server runs: there is no shutdown to wait for yet.
            let pause = |time| {
                thread::sleep(time);
                true
            };
            match self.read_slide(&path, Instant::now() + FIRST_SLIDE_SETTLE, pause) {
                Ok((version, frame)) => {
                    return Ok(FirstSlide {
                        path,
                        version,
                        frame,
                    });
                }
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
        // Watched before the first slide is out, so that nothing added after the URL is printed
        // is missed; the subfolders (a large tree takes a while) once listed.
        let mut changes = Changes::for_source(
            Target::Folders(vec![self.dir.clone()]),
            self.events && !self.once,
            channel,
            &self.dir.display().to_string(),
            self.poll,
        );
        channel.publish(first.frame);
        let mut listing = self.list();
        changes.set_folders(listing.folders.clone());
        // Files added since the watch began are new, even if this first listing found them.
        let added_early = changes.take_appeared();
        // The first cycle goes on after the first slide, and does not show it again.
        let mut queue: VecDeque<PathBuf> = match listing.position(&first.path) {
            Some(at) => {
                channel.note(format_args!(
                    "slide {}/{}: {}",
                    at + 1,
                    listing.order.len(),
                    self.display_name(&first.path)
                ));
                let (before, after) = listing.order.split_at(at);
                after[1..].iter().chain(before).cloned().collect()
            }
            None => listing.order.iter().cloned().collect(),
        };
        queue
            .make_contiguous()
            .sort_by_key(|p| !within(p, &added_early));
        let mut on_screen = Some((first.path, first.version));
        let mut shown_until = Instant::now() + self.interval;
        // Whether this cycle showed a slide, or found one still being written (worth a new
        // cycle at once).
        let (mut shown, mut settling) = (true, false);
        let (mut emptied, mut stuck) = (false, false);
        let mut unreadable: Vec<PathBuf> = Vec::new();
        // An event came from the folder during this turn.
        let mut folder_changed = false;
        let mut turns = 0u64;
        loop {
            // The slide on screen has its turn; if its file changes meanwhile, it is sent again.
            loop {
                let wake = changes.wait(channel, shown_until.min(Instant::now() + self.poll));
                match wake {
                    Wake::Closed => return,
                    Wake::Due if Instant::now() >= shown_until => break,
                    Wake::Due => {}
                    Wake::Written | Wake::Writing => folder_changed = true,
                }
                changes.refresh();
                // Not while a file is being written: a rewrite may have stalled half-way.
                if wake != Wake::Writing {
                    self.send_again_if_changed(channel, &mut on_screen);
                }
            }
            // The folder changed: listed again (once a turn, however busy it is: a walk of a
            // large tree is not cheap), a file added is shown next, one removed leaves the cycle.
            turns += 1;
            if std::mem::take(&mut folder_changed) {
                let now = self.list();
                changes.set_folders(now.folders.clone());
                // A file saved over one that was there is a change, not a file added; but until
                // the first turn ends, the first listing may have found files added as it ran.
                let appeared = changes.take_appeared();
                let first_turn = turns == 1;
                let added: Vec<PathBuf> = now
                    .order
                    .iter()
                    .filter(|p| !listing.contains(p) || first_turn && within(p, &appeared))
                    .cloned()
                    .collect();
                let added_set: HashSet<&PathBuf> = added.iter().collect();
                queue.retain(|p| now.contains(p) && !added_set.contains(p));
                for (i, path) in added.iter().enumerate() {
                    queue.insert(i, path.clone());
                }
                listing = now;
            }
            let path = match queue.pop_front() {
                Some(path) => path,
                None => {
                    // A cycle has ended.
                    if self.once {
                        return;
                    }
                    let rest = !shown && !settling;
                    if rest && !stuck {
                        channel.warn(format_args!(
                            "no file in '{}' can be shown now; keeping the last slide",
                            self.dir.display()
                        ));
                        stuck = true;
                    }
                    listing = self.list();
                    changes.set_folders(listing.folders.clone());
                    queue = listing.order.iter().cloned().collect();
                    (shown, settling) = (false, false);
                    if listing.order.is_empty() && !emptied {
                        channel.warn(format_args!(
                            "'{}' has no slides left; keeping the last one",
                            self.dir.display()
                        ));
                    }
                    emptied = listing.order.is_empty();
                    // Nothing can be shown: one try per --interval, not a busy loop.
                    if rest || emptied {
                        shown_until = Instant::now() + self.interval;
                        continue;
                    }
                    match queue.pop_front() {
                        Some(path) => path,
                        None => continue,
                    }
                }
            };
            let read = self.read_slide(&path, Instant::now() + self.interval, |time| {
                channel.pause(time)
            });
            if channel.is_closed() {
                return;
            }
            match read {
                Ok((version, frame)) => {
                    unreadable.retain(|p| *p != path);
                    if let Some(at) = listing.position(&path) {
                        channel.note(format_args!(
                            "slide {}/{}: {}",
                            at + 1,
                            listing.order.len(),
                            self.display_name(&path)
                        ));
                    }
                    channel.publish(frame);
                    on_screen = Some((path, version));
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
    }

    /// Sends the slide on screen again if its file has a new version since it was sent.
    fn send_again_if_changed(&self, channel: &Channel, on_screen: &mut Option<(PathBuf, Version)>) {
        let Some((path, sent)) = on_screen else {
            return;
        };
        let content_type = content_type_for(path, self.forced_type.as_ref());
        if let Ok(Some((version, frame))) =
            read_version(path, &content_type, self.max_frame, |v| v == *sent)
        {
            channel.publish(frame);
            *sent = version;
        }
    }

    /// Reads one slide, retrying while it is being written, at most until `deadline`, with
    /// `pause` between tries (false: the server closed, and the retries end).
    fn read_slide(
        &self,
        path: &Path,
        deadline: Instant,
        pause: impl Fn(Duration) -> bool,
    ) -> Result<(Version, NewFrame), Skip> {
        let content_type = content_type_for(path, self.forced_type.as_ref());
        loop {
            match read_version(path, &content_type, self.max_frame, |_| false) {
                Ok(Some(read)) => return Ok(read),
                Ok(None) => unreachable!("nothing was seen before"),
                Err(skip @ Skip::Unsettled(_)) if Instant::now() + SETTLE_RETRY < deadline => {
                    if !pause(SETTLE_RETRY) {
                        return Err(skip);
                    }
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

/// Whether `path` is one of `appeared`, or in a folder that is (a subfolder made with its
/// files).
fn within(path: &Path, appeared: &[PathBuf]) -> bool {
    appeared.iter().any(|a| path.starts_with(a))
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
