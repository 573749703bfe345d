//! The change watcher: one operating-system file watcher for the whole process (inotify on
//! Linux; FSEvents or kqueue on macOS and ReadDirectoryChangesW on Windows, through `notify`),
//! shared by every file and folder source.
//!
//! A source asks for the [`Changes`] of a file or a folder and waits on them between looks.
//! The watcher's thread turns each event into a nudge of the sources it concerns: a change
//! that is whole (a file renamed into place, a writer closing it) makes them look at once
//! ([`Wake::Written`]); one under way (a write, a create, a delete) once no event has come for
//! [`SETTLE`] ([`Wake::Writing`]), so that a burst is one look, and what such a look finds is
//! known to be possibly half-written.
//! Only inotify reports a writer's close. Where the watcher does not (FSEvents, kqueue,
//! ReadDirectoryChangesW: [`CLOSES_REPORTED`]), a change under way that has been quiet for
//! [`SETTLE`] is taken for a whole one, as the close that will not come, and so is a rename
//! whose direction is not told (`Name(Any)`): the look checks that the file did not move while
//! it was read, and that an image is whole.
//! Sources still look every `--poll`, so an event lost costs at most that. Where events cannot
//! be had (no watcher, the watch limit reached, a filesystem that does not report every change)
//! the source is told why, says so once, and relies on the poll.
//!
//! A file's folder is watched, not the file: an atomic save replaces the file's inode, and a
//! watch on the inode would end with it. A path through a symlink is watched at both ends. The
//! watcher's thread reads no file and never waits on a source: it sets flags and unparks.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};

use crate::channel::{Channel, Look, SourceState, Waited};
use crate::wake::Waiter;

/// How long a change under way must be quiet before the source looks: long enough for the
/// writes of one save to end, short beside a person's eye.
pub const SETTLE: Duration = Duration::from_millis(20);

/// Whether the watcher reports a writer closing a file: inotify does, FSEvents, kqueue and
/// ReadDirectoryChangesW do not.
const CLOSES_REPORTED: bool = cfg!(any(target_os = "linux", target_os = "android"));

/// How long after a writer's first write without a close the poll still leaves the file to
/// the close (see [`Changes::being_written`]): far longer than a save takes, short enough that
/// a file kept open and rewritten (a log truncated in place) is still polled.
const WRITER_GRACE: Duration = Duration::from_secs(2);

/// The most paths a folder's [`Changes::take_appeared`] keeps between two asks; a source that
/// lists the folder again finds those beyond as files it did not list before.
const APPEARED_KEPT: usize = 1024;

/// What a source's wait ended on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Wake {
    /// The server is closing.
    Closed,
    /// The time given passed (the next poll is due).
    Due,
    /// A whole change: a file renamed into place, a writer that closed it, its metadata; or
    /// events were lost. Look now, even if a `stat` says nothing moved (two writes of the same
    /// size inside one tick of the clock keep the mtime).
    Written,
    /// Writes, a create or a delete, then [`SETTLE`] of quiet, and no close: a writer that
    /// keeps the file open (a log), or one that stalled half-way through a rewrite, which a
    /// look must not take for a version. Only what grew the last version (an append) is one.
    Writing,
}

/// Why a source cannot rely on change events, for it to say once.
#[derive(Debug)]
pub enum NoEvents {
    /// None come: why. The source polls alone.
    Unavailable(String),
    /// They come, but not for changes made on other machines or by a FUSE daemon: the
    /// filesystem. The poll sees those.
    Unreported(&'static str),
}

impl NoEvents {
    /// What the source says, once, about `what` (a file or a folder) polled every `poll`.
    pub fn message(&self, what: &str, poll: Duration) -> String {
        let every = format!("every {} ms (--poll)", poll.as_millis());
        match self {
            NoEvents::Unavailable(why) => format!("{why}; '{what}' is looked at {every}"),
            NoEvents::Unreported(fs) => format!(
                "'{what}' is on {fs}, which does not report changes made elsewhere; it is also looked at {every}"
            ),
        }
    }
}

/// The changes of one file or folder, as one source waits on them.
pub struct Changes {
    /// The source's thread, woken by events and by the server closing.
    waiter: Arc<Waiter>,
    /// None: polling alone (`--poll-only`, or events cannot be had).
    watch: Option<Watch>,
}

/// What one source watches, and what the watcher tells it.
struct Watch {
    interest: Arc<Interest>,
    /// The filesystem reports every change (not a network or FUSE one).
    reported: bool,
    /// The watcher reports a writer's close ([`CLOSES_REPORTED`]).
    closes: bool,
    /// When the places were (last) registered: changes before it have no event to come.
    since: SystemTime,
    /// What was asked for, to resolve a symlink again when its target may have moved.
    asked: Target,
    /// The (folder, name) pairs registered for it: for a file, its folder as given and, when
    /// it is reached through symlinks, the folder it really is in.
    places: Vec<Place>,
}

impl Watch {
    /// Whether a symlink leads to a folder of its own: its target may move, so the places are
    /// resolved again after each wait (for a plain path, only once a watch is lost).
    fn through_link(&self) -> bool {
        matches!(self.asked, Target::File(_)) && self.places.len() > 1
    }
}

/// What a source watches.
#[derive(Clone)]
pub enum Target {
    /// A file: the changes of its folder that concern it.
    File(PathBuf),
    /// Folders, each for what is directly in it (a slideshow lists the subfolders it walks:
    /// a watch of its own over a whole tree would follow links it does not, and could take
    /// every watch the system allows).
    Folders(Vec<PathBuf>),
}

#[derive(Clone, PartialEq, Eq, Debug)]
struct Place {
    folder: PathBuf,
    /// The file's name in `folder`; None: anything in the folder.
    name: Option<OsString>,
}

impl Changes {
    /// Polls alone: `--poll-only`, or what events cannot reach.
    pub fn polling() -> Changes {
        Changes {
            waiter: Waiter::for_current_thread(),
            watch: None,
        }
    }

    /// The changes of `target` for the calling thread (the source's) to wait on, or polling
    /// alone when `watched` is false (`--poll-only`, or `--once`, which needs no events). What
    /// keeps events from being relied on is said once on `channel` about `what` (the path as
    /// the source names it), and shown by `/status`.
    pub fn for_source(
        target: Target,
        watched: bool,
        channel: &Channel,
        what: &str,
        poll: Duration,
    ) -> Changes {
        if !watched {
            return Changes::polling();
        }
        let (changes, no_events) = Changes::watch(target);
        if let Some(why) = no_events {
            let message = why.message(what, poll);
            channel.warn(&message);
            channel.set_state(Some(SourceState::Polled(message)));
        }
        changes
    }

    /// Watches `folders` from now on, instead of those given before: a slideshow's listing
    /// found subfolders added or removed. Says nothing (a watch that cannot be set leaves those
    /// folders to the next cycle's listing).
    pub fn set_folders(&mut self, folders: Vec<PathBuf>) {
        if let Some(watch) = &mut self.watch
            && !matches!(&watch.asked, Target::Folders(old) if *old == folders)
        {
            watch.asked = Target::Folders(folders);
            watch.rewatch(false);
        }
    }

    fn watch(asked: Target) -> (Changes, Option<NoEvents>) {
        let mut changes = Changes::polling();
        let interest = Arc::new(Interest {
            waiter: Arc::clone(&changes.waiter),
            pending: Mutex::new(Pending::default()),
            appeared: Mutex::new(Vec::new()),
            lost: AtomicBool::new(false),
        });
        let watcher = match watcher() {
            Ok(watcher) => watcher,
            Err(why) => return (changes, Some(NoEvents::Unavailable(why.clone()))),
        };
        let places = places_of(&asked);
        if let Err(why) = watcher.add(&places, &interest) {
            watcher.remove(&interest);
            return (changes, Some(why));
        }
        let unreported = places
            .iter()
            .find_map(|p| unreporting_filesystem(&p.folder));
        changes.watch = Some(Watch {
            interest,
            reported: unreported.is_none(),
            closes: watcher.closes,
            since: SystemTime::now(),
            asked,
            places,
        });
        (changes, unreported.map(NoEvents::Unreported))
    }

    /// For folders: the paths that appeared in them (created, or renamed into them) since the
    /// last call, as the events said; empty when polling. A file added while a folder is being
    /// listed is in the listing, but still new.
    pub fn take_appeared(&mut self) -> Vec<PathBuf> {
        match &self.watch {
            Some(watch) => std::mem::take(&mut *lock(&watch.interest.appeared)),
            None => Vec::new(),
        }
    }

    /// Waits until `until`, an event calls for a look, or the server closes.
    pub fn wait(&self, channel: &Channel, until: Instant) -> Wake {
        match channel.wait(&self.waiter, Some(until), |now| self.look(now)) {
            Waited::Closed => Wake::Closed,
            Waited::Due => Wake::Due,
            Waited::Found(wake) => wake,
        }
    }

    /// Whether a new version that is not an append, found after `wake`, may be one caught
    /// half-way through a rewrite, to be left to the writer's close (a [`Wake::Written`] to
    /// come):
    /// - after [`Wake::Writing`], always: a change under way and no close;
    /// - after [`Wake::Written`], when a writer has begun again since the close or rename that
    ///   woke the source (an event delivered late, the next save already under way);
    /// - after [`Wake::Due`] (the poll), when a writer has been at work without closing for
    ///   less than [`WRITER_GRACE`], or when the version, `modified` within [`SETTLE`] and
    ///   after the watch began, may be one whose event is yet to be delivered.
    ///
    /// Where events are not relied on (polling alone, a filesystem that does not report
    /// changes), the poll takes what it finds, as it always did.
    pub fn being_written(&self, wake: Wake, modified: SystemTime) -> bool {
        let Some(watch) = &self.watch else {
            return false;
        };
        let writer_since = lock(&watch.interest.pending).writer_since;
        let writer_at_work = writer_since.is_some_and(|since| since.elapsed() < WRITER_GRACE);
        match wake {
            Wake::Writing => true,
            Wake::Written => writer_at_work,
            Wake::Due if watch.reported => {
                writer_at_work
                    || modified > watch.since
                        && SystemTime::now()
                            .duration_since(modified)
                            .is_ok_and(|age| age < SETTLE)
            }
            Wake::Due | Wake::Closed => false,
        }
    }

    /// Whether what the watcher said calls for a look now; if not, when a change under way
    /// will have settled.
    fn look(&self, now: Instant) -> Look<Wake> {
        let Some(watch) = &self.watch else {
            return Look::Again(None);
        };
        let mut pending = lock(&watch.interest.pending);
        let settled = pending.last_under_way.map(|t| t + SETTLE);
        if pending.whole || settled.is_some_and(|at| now >= at) {
            // Without closes, the quiet is all the end of a write there is.
            let whole = pending.whole || !watch.closes;
            *pending = Pending {
                writer_since: pending.writer_since.filter(|_| watch.closes),
                ..Pending::default()
            };
            return Look::Found(if whole { Wake::Written } else { Wake::Writing });
        }
        Look::Again(settled)
    }

    /// After each wait: watches again a folder whose watch ended (it was deleted or moved, and
    /// may be back) and follows a symlink that now leads elsewhere. Cheap when neither happened.
    pub fn refresh(&mut self) {
        let Some(watch) = &mut self.watch else { return };
        let lost = watch.interest.lost.swap(false, Ordering::SeqCst);
        if lost || watch.through_link() {
            watch.rewatch(lost);
        }
    }
}

impl Watch {
    /// Registers the places of what was asked again, if they moved or `lost` says the old
    /// watches have ended.
    fn rewatch(&mut self, lost: bool) {
        let Ok(watcher) = watcher() else { return };
        let places = places_of(&self.asked);
        if places == self.places && !lost {
            return;
        }
        watcher.remove(&self.interest);
        if lost {
            watcher.forget(&self.places);
        }
        self.since = SystemTime::now();
        if watcher.add(&places, &self.interest).is_err()
            && places.iter().any(|p| !p.folder.is_dir())
        {
            // Not there yet: try again at the next poll. (Another failure, such as the
            // watch limit, is not tried again until the places change.)
            self.interest.lost.store(true, Ordering::SeqCst);
        }
        self.places = places;
    }
}

impl Drop for Changes {
    fn drop(&mut self) {
        if let Some(watch) = &self.watch
            && let Ok(watcher) = watcher()
        {
            watcher.remove(&watch.interest);
        }
    }
}

/// The folders to watch for `target`: a file's folder (and the real one behind symlinks), or
/// the folder itself. Paths are made absolute, as the watcher reports events under them.
fn places_of(target: &Target) -> Vec<Place> {
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    match target {
        Target::File(path) => {
            let mut places = Vec::new();
            let given = absolute(path);
            let real = std::fs::canonicalize(path).ok();
            for path in std::iter::once(given).chain(real) {
                let (Some(folder), Some(name)) = (path.parent(), path.file_name()) else {
                    continue;
                };
                let place = Place {
                    folder: folder.to_path_buf(),
                    name: Some(name.to_os_string()),
                };
                if !places.contains(&place) {
                    places.push(place);
                }
            }
            places
        }
        Target::Folders(folders) => {
            let mut places = Vec::new();
            for folder in folders {
                // FSEvents reports the real path (`/private/tmp/…` for `/tmp/…`).
                let real = cfg!(target_os = "macos")
                    .then(|| std::fs::canonicalize(folder).ok())
                    .flatten();
                for folder in std::iter::once(absolute(folder)).chain(real) {
                    let place = Place { folder, name: None };
                    if !places.contains(&place) {
                        places.push(place);
                    }
                }
            }
            places
        }
    }
}

/// A filesystem whose changes made on other machines (or by a FUSE daemon) raise no local
/// event: named, for the note that the poll is what sees them.
#[cfg(target_os = "linux")]
fn unreporting_filesystem(folder: &Path) -> Option<&'static str> {
    const UNREPORTING: [(u64, &str); 9] = [
        (0x6969, "NFS"),
        (0x517B, "SMB"),
        (0xFF53_4D42, "CIFS"),
        (0xFE53_4D42, "SMB2"),
        (0x6573_5546, "a FUSE filesystem"),
        (0x0102_1997, "9P"),
        (0x00C3_6400, "Ceph"),
        (0x786F_4256, "a VirtualBox shared folder"),
        (0x6B41_4653, "AFS"),
    ];
    let fs_type = rustix::fs::statfs(folder).ok()?.f_type as u64;
    UNREPORTING
        .iter()
        .find(|(magic, _)| *magic == fs_type)
        .map(|(_, name)| *name)
}

#[cfg(not(target_os = "linux"))]
fn unreporting_filesystem(_folder: &Path) -> Option<&'static str> {
    None
}

/// One source's side of the watcher: what it has been told since it last looked.
struct Interest {
    waiter: Arc<Waiter>,
    pending: Mutex<Pending>,
    /// For a folder: the paths that appeared in it (created, or renamed into it) since the
    /// source last asked, at most [`APPEARED_KEPT`].
    appeared: Mutex<Vec<PathBuf>>,
    /// A folder it watches was deleted or moved away: its watch has ended.
    lost: AtomicBool,
}

#[derive(Default)]
struct Pending {
    /// A whole change: look now.
    whole: bool,
    /// The last event of a change under way: look [`SETTLE`] after it.
    last_under_way: Option<Instant>,
    /// The first event under way since the last whole one: a writer at work since then. Kept
    /// by a look; ended by a whole change.
    writer_since: Option<Instant>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Urgency {
    Whole,
    UnderWay,
}

impl Interest {
    fn appear(&self, path: &Path) {
        let mut appeared = lock(&self.appeared);
        if appeared.len() < APPEARED_KEPT && !appeared.iter().any(|p| p == path) {
            appeared.push(path.to_path_buf());
        }
    }

    fn nudge(&self, urgency: Urgency) {
        let mut pending = lock(&self.pending);
        // Woken once per look: the first event of a burst wakes it, the rest only move the time.
        let wake = match urgency {
            Urgency::Whole => {
                pending.writer_since = None;
                !std::mem::replace(&mut pending.whole, true)
            }
            Urgency::UnderWay => {
                let first = pending.last_under_way.is_none() && !pending.whole;
                let now = Instant::now();
                pending.last_under_way = Some(now);
                pending.writer_since.get_or_insert(now);
                first
            }
        };
        drop(pending);
        if wake {
            self.waiter.wake();
        }
    }
}

/// The process's one watcher.
struct Watcher {
    /// Adds and removes the operating system's watches. Never held with `table`: the
    /// watcher's thread takes `table` to deliver an event, and `os` waits on that thread.
    os: Mutex<Os>,
    /// Who wants the events of which folder: the only lock the watcher's thread takes.
    table: Mutex<HashMap<PathBuf, Vec<Entry>>>,
    /// The rename whose new name was last reported (notify's tracker), on the watcher's thread.
    last_moved_to: Mutex<Option<usize>>,
    /// It reports a writer's close ([`CLOSES_REPORTED`]).
    closes: bool,
}

struct Os {
    watcher: RecommendedWatcher,
    /// The folders watched.
    watched: HashSet<PathBuf>,
}

struct Entry {
    name: Option<OsString>,
    interest: Arc<Interest>,
}

static WATCHER: OnceLock<Result<Watcher, String>> = OnceLock::new();

/// The watcher, made at first use; or why there is none (said by each source that asks).
fn watcher() -> Result<&'static Watcher, &'static String> {
    WATCHER
        .get_or_init(|| {
            let watcher = notify::recommended_watcher(|event: notify::Result<Event>| {
                // Nothing is watched before the watcher is stored, so nothing is missed here.
                if let Some(Ok(watcher)) = WATCHER.get() {
                    watcher.deliver(event);
                }
            })
            .map_err(|e| format!("change events are not available: {}", describe(&e)))?;
            Ok(Watcher {
                os: Mutex::new(Os {
                    watcher,
                    watched: HashSet::new(),
                }),
                table: Mutex::new(HashMap::new()),
                last_moved_to: Mutex::new(None),
                closes: CLOSES_REPORTED,
            })
        })
        .as_ref()
}

impl Watcher {
    /// Registers `interest` at `places` and watches their folders; registered first, so that
    /// no event falls between the watch and the registration.
    fn add(&self, places: &[Place], interest: &Arc<Interest>) -> Result<(), NoEvents> {
        let mut table = lock(&self.table);
        for place in places {
            table.entry(place.folder.clone()).or_default().push(Entry {
                name: place.name.clone(),
                interest: Arc::clone(interest),
            });
        }
        drop(table);
        let mut os = lock(&self.os);
        for place in places {
            if os.watched.contains(&place.folder) {
                continue;
            }
            os.watcher
                .watch(&place.folder, RecursiveMode::NonRecursive)
                .map_err(|e| {
                    NoEvents::Unavailable(format!(
                        "cannot watch '{}' for changes: {}",
                        place.folder.display(),
                        describe(&e)
                    ))
                })?;
            os.watched.insert(place.folder.clone());
        }
        Ok(())
    }

    /// Unregisters `interest` everywhere (its watches stay for the other sources).
    fn remove(&self, interest: &Arc<Interest>) {
        let mut table = lock(&self.table);
        table.retain(|_, entries| {
            entries.retain(|e| !Arc::ptr_eq(&e.interest, interest));
            !entries.is_empty()
        });
    }

    /// Forgets the watches of `places`, which have ended, so that they are set again.
    fn forget(&self, places: &[Place]) {
        let mut os = lock(&self.os);
        for place in places {
            if os.watched.remove(&place.folder) {
                let _ = os.watcher.unwatch(&place.folder);
            }
        }
    }

    fn nudge_all(&self) {
        for entry in lock(&self.table).values().flatten() {
            entry.interest.nudge(Urgency::Whole);
        }
    }

    /// On the watcher's thread: nudges each source that `event` concerns.
    fn deliver(&self, event: notify::Result<Event>) {
        let event = match event {
            // A queue overflow or a watch that failed: anything may have changed.
            Err(_) => return self.nudge_all(),
            Ok(event) if event.need_rescan() => return self.nudge_all(),
            Ok(event) => event,
        };
        let Some(urgency) = urgency(event.kind, self.closes) else {
            return;
        };
        let renamed = event.kind == EventKind::Modify(ModifyKind::Name(RenameMode::Both));
        // A rename within a watched folder comes as From (the old name), To (the new one), then
        // Both, with nothing From and To did not say. Taken again, the new name would wake its
        // source a second time, which, if the source was quick to look at the first, can come
        // in the middle of the next save, and take that save's first half for a version.
        let moved_to = event.kind == EventKind::Modify(ModifyKind::Name(RenameMode::To));
        let mut last_moved_to = lock(&self.last_moved_to);
        if renamed && event.tracker().is_some() && event.tracker() == *last_moved_to {
            return;
        }
        *last_moved_to = if moved_to { event.tracker() } else { None };
        drop(last_moved_to);
        // A rename whose direction is not told may have been either.
        let moved =
            !self.closes && event.kind == EventKind::Modify(ModifyKind::Name(RenameMode::Any));
        let gone = moved
            || matches!(
                event.kind,
                EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(RenameMode::From))
            );
        let appeared = moved
            || matches!(
                event.kind,
                EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(RenameMode::To))
            );
        let table = lock(&self.table);
        for (i, path) in event.paths.iter().enumerate() {
            // A rename's new name is whole; its old one is gone, likely to come back.
            let urgency = if renamed && i == 1 {
                Urgency::Whole
            } else {
                urgency
            };
            if gone && let Some(entries) = table.get(path) {
                // A watched folder itself went away: its watch has ended.
                for entry in entries {
                    entry.interest.lost.store(true, Ordering::SeqCst);
                    entry.interest.nudge(Urgency::UnderWay);
                }
            }
            let Some(folder) = path.parent() else {
                continue;
            };
            for entry in table.get(folder).into_iter().flatten() {
                let concerned = match &entry.name {
                    Some(name) => path.file_name() == Some(name.as_os_str()),
                    None => true,
                };
                if concerned {
                    if entry.name.is_none() && (appeared || renamed && i == 1) {
                        entry.interest.appear(path);
                    }
                    entry.interest.nudge(urgency);
                }
            }
        }
    }
}

/// How soon an event of `kind` calls for a look, if at all, from a watcher that reports a
/// writer's close (`closes`) or not.
fn urgency(kind: EventKind, closes: bool) -> Option<Urgency> {
    Some(match kind {
        // Reads (ours among them) change nothing.
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => Urgency::Whole,
        EventKind::Access(_) => return None,
        EventKind::Modify(ModifyKind::Name(RenameMode::To)) => Urgency::Whole,
        EventKind::Modify(ModifyKind::Metadata(_)) if closes => Urgency::Whole,
        // FSEvents' only kind of rename; and its flags pile up, so that a metadata change can
        // come with the writes that follow it: under way, settled like them.
        EventKind::Modify(ModifyKind::Name(RenameMode::Any)) if !closes => Urgency::Whole,
        _ => Urgency::UnderWay,
    })
}

/// A watcher error in a few words, naming the limit to raise where there is one.
fn describe(e: &notify::Error) -> String {
    match &e.kind {
        notify::ErrorKind::MaxFilesWatch => {
            "the limit of watches is reached (on Linux, raise fs.inotify.max_user_watches)".into()
        }
        notify::ErrorKind::Io(io) if io.raw_os_error() == Some(24) => {
            // EMFILE from inotify_init: the per-user limit of inotify instances.
            "too many watchers (on Linux, raise fs.inotify.max_user_instances)".into()
        }
        notify::ErrorKind::Io(io) => crate::report::describe_io_error(io),
        notify::ErrorKind::PathNotFound => "it is not there".into(),
        other => format!("{other:?}"),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use notify::event::{CreateKind, DataChange};

    use super::*;

    fn watcher_with(entries: Vec<(&str, Option<&str>)>) -> (Watcher, Vec<Arc<Interest>>) {
        watcher_like(true, entries)
    }

    /// A watcher that reports a writer's close (inotify) or not (FSEvents, Windows).
    fn watcher_like(
        closes: bool,
        entries: Vec<(&str, Option<&str>)>,
    ) -> (Watcher, Vec<Arc<Interest>>) {
        let mut table: HashMap<PathBuf, Vec<Entry>> = HashMap::new();
        let mut interests = Vec::new();
        for (folder, name) in entries {
            let interest = Arc::new(Interest {
                waiter: Waiter::for_current_thread(),
                pending: Mutex::new(Pending::default()),
                appeared: Mutex::new(Vec::new()),
                lost: AtomicBool::new(false),
            });
            table.entry(folder.into()).or_default().push(Entry {
                name: name.map(OsString::from),
                interest: Arc::clone(&interest),
            });
            interests.push(interest);
        }
        let os = Os {
            watcher: notify::recommended_watcher(|_: notify::Result<Event>| {}).unwrap(),
            watched: HashSet::new(),
        };
        let watcher = Watcher {
            os: Mutex::new(os),
            table: Mutex::new(table),
            last_moved_to: Mutex::new(None),
            closes,
        };
        (watcher, interests)
    }

    fn event(kind: EventKind, paths: &[&str]) -> notify::Result<Event> {
        let mut event = Event::new(kind);
        for path in paths {
            event = event.add_path(path.into());
        }
        Ok(event)
    }

    /// (whole, under way) and resets it, as a source's look does.
    fn take(interest: &Interest) -> (bool, bool) {
        let pending = std::mem::take(&mut *lock(&interest.pending));
        (pending.whole, pending.last_under_way.is_some())
    }

    #[test]
    fn reads_concern_nobody_and_writes_concern_only_their_file() {
        let (watcher, interests) = watcher_with(vec![("/d", Some("cur.jpg"))]);
        let cur = &interests[0];
        for kind in [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
        ] {
            watcher.deliver(event(kind, &["/d/cur.jpg"]));
        }
        assert_eq!(
            take(cur),
            (false, false),
            "our own reads would wake us forever"
        );
        watcher.deliver(event(
            EventKind::Create(CreateKind::File),
            &["/d/other.jpg"],
        ));
        watcher.deliver(event(
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            &["/e/cur.jpg"],
        ));
        assert_eq!(take(cur), (false, false));
    }

    #[test]
    fn a_write_is_a_change_under_way_and_a_close_or_rename_into_place_a_whole_one() {
        let (watcher, interests) = watcher_with(vec![("/d", Some("cur.jpg"))]);
        let cur = &interests[0];
        for _ in 0..3 {
            watcher.deliver(event(
                EventKind::Modify(ModifyKind::Data(DataChange::Any)),
                &["/d/cur.jpg"],
            ));
        }
        assert_eq!(take(cur), (false, true));
        watcher.deliver(event(
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            &["/d/cur.jpg"],
        ));
        assert_eq!(take(cur), (true, false));
        // vim: the file renamed away (gone, likely back soon), then a new one renamed in.
        watcher.deliver(event(
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
            &["/d/cur.jpg", "/d/cur.jpg~"],
        ));
        assert_eq!(take(cur), (false, true));
        watcher.deliver(event(
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
            &["/d/.cur.jpg.tmp", "/d/cur.jpg"],
        ));
        assert_eq!(take(cur), (true, false));
    }

    #[test]
    fn a_rename_reported_three_times_wakes_its_file_once() {
        let (watcher, interests) = watcher_with(vec![("/d", Some("cur.jpg"))]);
        let cur = &interests[0];
        let name = |mode| EventKind::Modify(ModifyKind::Name(mode));
        let tracked = |kind, paths: &[&str]| event(kind, paths).map(|e| e.set_tracker(7));
        watcher.deliver(tracked(name(RenameMode::From), &["/d/.cur.jpg.tmp"]));
        watcher.deliver(tracked(name(RenameMode::To), &["/d/cur.jpg"]));
        assert_eq!(take(cur), (true, false));
        watcher.deliver(tracked(
            name(RenameMode::Both),
            &["/d/.cur.jpg.tmp", "/d/cur.jpg"],
        ));
        assert_eq!(take(cur), (false, false), "woken again by the same rename");
    }

    #[test]
    fn a_folder_sees_what_is_directly_in_it() {
        let (watcher, interests) = watcher_with(vec![("/show", None), ("/show/sub", None)]);
        let create = EventKind::Create(CreateKind::File);
        watcher.deliver(event(create, &["/show/a.jpg"]));
        assert_eq!(take(&interests[0]), (false, true));
        assert_eq!(take(&interests[1]), (false, false));
        watcher.deliver(event(create, &["/show/sub/x/a.jpg"]));
        assert_eq!(take(&interests[1]), (false, false));
        // The watched folder itself deleted: its watch has ended, and is set again later.
        watcher.deliver(event(
            EventKind::Remove(notify::event::RemoveKind::Folder),
            &["/show"],
        ));
        assert!(interests[0].lost.load(Ordering::SeqCst));
    }

    fn interest() -> Arc<Interest> {
        Arc::new(Interest {
            waiter: Waiter::for_current_thread(),
            pending: Mutex::new(Pending::default()),
            appeared: Mutex::new(Vec::new()),
            lost: AtomicBool::new(false),
        })
    }

    /// A file's changes as a source waits on them, from a watcher that reports closes or not.
    fn changes_like(closes: bool) -> (Changes, Arc<Interest>) {
        let interest = interest();
        let changes = Changes {
            waiter: Arc::clone(&interest.waiter),
            watch: Some(Watch {
                interest: Arc::clone(&interest),
                reported: true,
                closes,
                since: SystemTime::now(),
                asked: Target::File("/d/cur.jpg".into()),
                places: Vec::new(),
            }),
        };
        (changes, interest)
    }

    fn kinds_of(watcher: &Watcher, cur: &Interest, kinds: &[EventKind]) -> (bool, bool) {
        for &kind in kinds {
            watcher.deliver(event(kind, &["/d/cur.jpg"]));
        }
        take(cur)
    }

    #[test]
    fn on_macos_a_rename_is_whole_and_writes_and_metadata_are_under_way() {
        let (watcher, interests) = watcher_like(false, vec![("/d", Some("cur.jpg"))]);
        let cur = &interests[0];
        let content = EventKind::Modify(ModifyKind::Data(DataChange::Content));
        let metadata = EventKind::Modify(ModifyKind::Metadata(notify::event::MetadataKind::Any));
        let created = EventKind::Create(CreateKind::File);
        assert_eq!(
            kinds_of(&watcher, cur, &[created, content, metadata, content]),
            (false, true),
            "a save in place under way: its flags pile up, metadata among them"
        );
        let renamed = EventKind::Modify(ModifyKind::Name(RenameMode::Any));
        assert_eq!(kinds_of(&watcher, cur, &[renamed]), (true, false));
        let removed = EventKind::Remove(notify::event::RemoveKind::File);
        assert_eq!(kinds_of(&watcher, cur, &[removed]), (false, true));
        // In a folder, a file renamed in (or out: the listing tells) has appeared.
        let (watcher, interests) = watcher_like(false, vec![("/show", None)]);
        watcher.deliver(event(renamed, &["/show/a.jpg"]));
        watcher.deliver(event(created, &["/show/b.jpg"]));
        assert_eq!(
            std::mem::take(&mut *lock(&interests[0].appeared)),
            [PathBuf::from("/show/a.jpg"), PathBuf::from("/show/b.jpg")]
        );
        // The watched folder itself renamed: its watch is set again.
        watcher.deliver(event(renamed, &["/show"]));
        assert!(interests[0].lost.load(Ordering::SeqCst));
    }

    #[test]
    fn on_windows_a_rename_to_is_whole_and_the_rest_under_way() {
        let (watcher, interests) = watcher_like(false, vec![("/d", Some("cur.jpg"))]);
        let cur = &interests[0];
        let any = EventKind::Modify(ModifyKind::Any);
        let created = EventKind::Create(CreateKind::Any);
        let removed = EventKind::Remove(notify::event::RemoveKind::Any);
        let name = |mode| EventKind::Modify(ModifyKind::Name(mode));
        assert_eq!(kinds_of(&watcher, cur, &[any, any]), (false, true));
        assert_eq!(kinds_of(&watcher, cur, &[created, any]), (false, true));
        assert_eq!(kinds_of(&watcher, cur, &[removed]), (false, true));
        assert_eq!(
            kinds_of(&watcher, cur, &[name(RenameMode::From)]),
            (false, true)
        );
        // Saved beside, then renamed into place: From the temporary name, To this one.
        watcher.deliver(event(name(RenameMode::From), &["/d/cur.jpg.tmp"]));
        watcher.deliver(event(name(RenameMode::To), &["/d/cur.jpg"]));
        assert_eq!(take(cur), (true, false));
    }

    #[test]
    fn inotify_s_kinds_keep_their_meaning() {
        let (watcher, interests) = watcher_with(vec![("/d", Some("cur.jpg"))]);
        let cur = &interests[0];
        let metadata = EventKind::Modify(ModifyKind::Metadata(notify::event::MetadataKind::Any));
        assert_eq!(kinds_of(&watcher, cur, &[metadata]), (true, false));
        let moved_self = EventKind::Modify(ModifyKind::Name(RenameMode::Any));
        assert_eq!(kinds_of(&watcher, cur, &[moved_self]), (false, true));
    }

    #[test]
    fn without_closes_a_write_is_whole_once_quiet_for_settle() {
        let (changes, interest) = changes_like(false);
        let start = Instant::now();
        interest.nudge(Urgency::UnderWay);
        let written_at = lock(&interest.pending).last_under_way.unwrap();
        // Mid-write: no look yet, and a poll that comes now leaves it to the writer.
        assert!(matches!(changes.look(start), Look::Again(Some(at)) if at == written_at + SETTLE));
        let now = SystemTime::now() - Duration::from_secs(60);
        assert!(changes.being_written(Wake::Due, now));
        // Quiet for SETTLE: the end of the write, as a close would say it.
        assert!(matches!(
            changes.look(written_at + SETTLE),
            Look::Found(Wake::Written)
        ));
        assert!(!changes.being_written(Wake::Written, now));
        assert!(!changes.being_written(Wake::Due, now));
        // A writer at work again after that look: its version waits.
        interest.nudge(Urgency::UnderWay);
        assert!(changes.being_written(Wake::Written, now));
    }

    #[test]
    fn with_closes_a_quiet_write_is_still_under_way() {
        let (changes, interest) = changes_like(true);
        interest.nudge(Urgency::UnderWay);
        let written_at = lock(&interest.pending).last_under_way.unwrap();
        assert!(matches!(
            changes.look(written_at + SETTLE),
            Look::Found(Wake::Writing)
        ));
        let now = SystemTime::now() - Duration::from_secs(60);
        assert!(changes.being_written(Wake::Writing, now));
        assert!(changes.being_written(Wake::Due, now), "left to the close");
        interest.nudge(Urgency::Whole);
        assert!(matches!(
            changes.look(Instant::now()),
            Look::Found(Wake::Written)
        ));
        assert!(!changes.being_written(Wake::Written, now));
    }
}
