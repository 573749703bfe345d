//! The command source: runs the command every `--poll` after the previous run ends (like
//! `watch`) and publishes what it prints on stdout whenever that differs from the last frame.
//! The command is run by the system's shell: `sh -c CMD`, or `cmd /C CMD` on Windows.
//!
//! This is the only code that starts or stops the command, and it keeps the policy: when to
//! run, what a run printed is worth publishing, what to warn of. How a run is started, read and
//! stopped is the platform's (`command/unix.rs`, `command/windows.rs`), behind one seam:
//! `spawn` a run, `Running::read` its pipes within a wait, `Running::stop` it,
//! [`kill_every_run`].
//! Each run is stopped whole, with everything it started (a process group on Unix, a job
//! object on Windows), so that a run that takes too long, prints too much, or is still going at
//! shutdown leaves nothing behind, and the source returns once none of it is alive (or after a
//! bounded wait). Both pipes are read as they fill: stdout up to `--max-frame` + 1 bytes,
//! stderr only for its last few hundred bytes, so neither pipe can stall the command nor grow
//! our memory, and a command that hangs, floods or fails never blocks another source or the
//! server's shutdown.

use std::io;
use std::process::ExitStatus;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::channel::{Channel, SourceState};
use crate::decode::complete::is_complete;
use crate::decode::image::sniff_image;
use crate::frame::{Frame, FrameBytes, NewFrame};
use crate::http::head::HeaderValue;
use crate::report::describe_io_error;
use crate::source::Producer;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as os;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as os;

pub use os::kill_every_run;

/// A run may take this long, or `--poll` if that is longer, before it is killed.
const MIN_TIME_LIMIT: Duration = Duration::from_secs(10);
/// How often a wait looks whether the server is closing.
const TICK: Duration = Duration::from_millis(100);
/// How often a run whose pipes are closed is looked at until it exits.
const EXIT_CHECK: Duration = Duration::from_millis(5);
/// How much of the command's stderr is kept, for the last line in a failure warning.
const STDERR_TAIL: usize = 200;

pub struct CommandSource {
    /// Run with `sh -c` (`cmd /C` on Windows).
    pub command: String,
    /// The pause between the end of one run and the start of the next.
    pub poll: Duration,
    /// `--type`: else an image by its first bytes, else UTF-8 text.
    pub content_type: Option<HeaderValue>,
    pub max_frame: u64,
    /// `--once`: run once, publish, return.
    pub once: bool,
}

impl Producer for CommandSource {
    fn run(self: Box<Self>, channel: &Channel) {
        let time_limit = self.poll.max(MIN_TIME_LIMIT);
        self.watch(channel, time_limit);
    }
}

/// What separates the folders of a path in a command: `\` too on Windows (on Unix it escapes:
/// `\ls`).
const PATH_SEPARATORS: &[char] = if cfg!(windows) { &['/', '\\'] } else { &['/'] };

/// The command's first word, for the source's default name: the program's
/// file name (`uptime` for `/usr/bin/uptime -p`, `cam.exe` for `C:\tools\cam.exe -x`).
pub fn first_word(command: &str) -> &str {
    program_name(command, PATH_SEPARATORS)
}

/// [`first_word`] with the separators of a platform.
fn program_name<'a>(command: &'a str, separators: &[char]) -> &'a str {
    let word = command.split_whitespace().next().unwrap_or("");
    match word.rsplit(separators).next() {
        Some(file_name) if !file_name.is_empty() => file_name,
        _ => word,
    }
}

/// How one run ended.
enum Run {
    /// Exited with status 0: all it printed.
    Printed(Vec<u8>),
    /// The shell could not be started.
    Unspawnable(io::Error),
    /// Exited otherwise: how (`exited with status 2`), and the last line of its stderr.
    Failed { how: String, stderr: Option<String> },
    /// Ran past the time limit, and was killed.
    TimedOut,
    /// Printed more than `--max-frame`, and was killed: the first `--max-frame` bytes.
    TooLarge(Vec<u8>),
    /// The server is closing; the run was killed.
    Closed,
}

/// What the source last warned of, so that each trouble is said once, not at every run.
#[derive(PartialEq, Eq)]
enum Trouble {
    Unspawnable,
    Failed(String),
    TimedOut,
    TooLarge,
    Incomplete,
}

impl CommandSource {
    /// Runs the command until the server closes (with `once`, one run), killing any run that
    /// lasts longer than `time_limit`.
    fn watch(&self, channel: &Channel, time_limit: Duration) {
        let command = &self.command;
        let mut last: Option<Arc<Frame>> = None;
        let mut said: Option<Trouble> = None;
        loop {
            let outcome = match run(command, self.max_frame, time_limit, channel) {
                Run::Closed => return,
                Run::Printed(bytes) => self.publish_new(channel, &mut last, bytes),
                Run::Unspawnable(e) => Err((
                    Trouble::Unspawnable,
                    format!(
                        "cannot run '{command}': {}; trying again every poll",
                        describe_io_error(&e)
                    ),
                )),
                Run::Failed { how, stderr } => {
                    let message = match stderr {
                        Some(line) => format!("'{command}' {how}: {line}"),
                        None => format!("'{command}' {how}"),
                    };
                    Err((Trouble::Failed(how), message))
                }
                Run::TimedOut => Err((
                    Trouble::TimedOut,
                    format!(
                        "'{command}' ran longer than {} s and was killed",
                        time_limit.as_secs_f64()
                    ),
                )),
                Run::TooLarge(head) => self.publish_new(channel, &mut last, head).and(Err((
                    Trouble::TooLarge,
                    format!(
                        "'{command}' printed more than --max-frame {} bytes; it was stopped \
                             and its output cut off there",
                        self.max_frame
                    ),
                ))),
            };
            match outcome {
                Ok(()) => {
                    if said.take().is_some() {
                        channel.note(format_args!("'{command}' works again"));
                        channel.set_state(None);
                    }
                }
                Err((trouble, message)) => {
                    if said.as_ref() != Some(&trouble) {
                        channel.warn(format_args!("{message}"));
                    }
                    channel.set_state(Some(SourceState::Failing(message)));
                    said = Some(trouble);
                }
            }
            if self.once || !channel.pause(self.poll) {
                return;
            }
        }
    }

    /// Publishes what a run printed, unless it is what the last frame holds; an image that is
    /// not whole is not published.
    fn publish_new(
        &self,
        channel: &Channel,
        last: &mut Option<Arc<Frame>>,
        bytes: Vec<u8>,
    ) -> Result<(), (Trouble, String)> {
        if last
            .as_ref()
            .is_some_and(|frame| frame.bytes[..] == bytes[..])
        {
            return Ok(());
        }
        let content_type = match &self.content_type {
            Some(forced) => forced.clone(),
            None => match sniff_image(&bytes) {
                Some(image) => HeaderValue::from_static(image),
                None => HeaderValue::from_static("text/plain; charset=utf-8"),
            },
        };
        if !is_complete(content_type.as_str(), &bytes) {
            return Err((
                Trouble::Incomplete,
                format!(
                    "'{}' printed an incomplete {content_type}; keeping the last frame",
                    self.command
                ),
            ));
        }
        // Copied into storage of the frame's own size (a mapping for large frames).
        let len = bytes.len();
        let frame_bytes =
            FrameBytes::read(&bytes[..], len, len as u64).unwrap_or_else(|_| bytes.into());
        *last = Some(channel.publish(NewFrame {
            bytes: frame_bytes,
            content_type,
            name: channel.name.clone(),
            modified: SystemTime::now(),
        }));
        Ok(())
    }
}

/// One run of the command, with stdin from nowhere: started, read within the limits, and
/// stopped whole unless it exits by itself in time.
fn run(command: &str, max_frame: u64, time_limit: Duration, channel: &Channel) -> Run {
    let deadline = Instant::now() + time_limit;
    let mut running = match os::spawn(command) {
        Ok(running) => running,
        Err(e) => return Run::Unspawnable(e),
    };
    let mut output = Output {
        printed: Vec::new(),
        limit: usize::try_from(max_frame.saturating_add(1)).unwrap_or(usize::MAX),
        stderr_tail: Vec::new(),
    };
    match drain(&mut running, &mut output, deadline, channel) {
        Ok(status) if status.success() => Run::Printed(output.printed),
        Ok(status) => Run::Failed {
            how: os::describe_status(status),
            stderr: output.last_stderr_line(),
        },
        Err(stop) => {
            running.stop();
            stop
        }
    }
}

/// Reads both pipes of `running` to their end, then waits for the command to exit: its exit
/// status, or how the run must be stopped (it is left to the caller to stop it).
fn drain(
    running: &mut os::Running,
    output: &mut Output,
    deadline: Instant,
    channel: &Channel,
) -> Result<ExitStatus, Run> {
    loop {
        if channel.is_closed() {
            return Err(Run::Closed);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Run::TimedOut);
        }
        let wait = (deadline - now).min(TICK);
        if !running.pipes_open() {
            // Both pipes closed: the command is exiting (or went on without them, until the
            // time limit).
            match running.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) => thread::sleep(wait.min(EXIT_CHECK)),
                Err(e) => return Err(failed(&e)),
            }
            continue;
        }
        match running.read(output, wait) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(failed(&e)),
        }
        if output.printed.len() >= output.limit {
            output.printed.truncate(output.limit - 1);
            return Err(Run::TooLarge(std::mem::take(&mut output.printed)));
        }
    }
}

/// What a run has printed so far, within the limits.
pub struct Output {
    printed: Vec<u8>,
    /// `--max-frame` + 1: reaching it tells output that is too large.
    limit: usize,
    /// The last bytes of stderr, between [`STDERR_TAIL`] and twice that once that many came.
    stderr_tail: Vec<u8>,
}

impl Output {
    /// How many more bytes of stdout are wanted: reading more than that is not needed to know
    /// that the output is too large.
    fn room(&self) -> usize {
        self.limit - self.printed.len()
    }

    /// Takes bytes from stdout, up to the limit.
    fn print(&mut self, bytes: &[u8]) {
        let room = self.room().min(bytes.len());
        self.printed.extend_from_slice(&bytes[..room]);
    }

    /// Takes bytes from stderr, keeping only the tail.
    fn complain(&mut self, bytes: &[u8]) {
        self.stderr_tail.extend_from_slice(bytes);
        if self.stderr_tail.len() > 2 * STDERR_TAIL {
            let cut = self.stderr_tail.len() - STDERR_TAIL;
            self.stderr_tail.drain(..cut);
        }
    }

    /// The last line the command wrote on stderr that is not blank, if any.
    fn last_stderr_line(&self) -> Option<String> {
        let tail = &self.stderr_tail[self.stderr_tail.len().saturating_sub(STDERR_TAIL)..];
        String::from_utf8_lossy(tail)
            .lines()
            .map(str::trim)
            .rfind(|line| !line.is_empty())
            .map(str::to_owned)
    }
}

/// A run that could not be followed (a failed poll or wait): said like a failure.
fn failed(e: &io::Error) -> Run {
    Run::Failed {
        how: format!("could not be followed ({})", describe_io_error(e)),
        stderr: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::SourceKind;
    use std::sync::mpsc;

    pub const DEADLINE: Duration = Duration::from_secs(5);

    pub fn source(command: impl Into<String>) -> CommandSource {
        CommandSource {
            command: command.into(),
            poll: Duration::from_millis(20),
            content_type: None,
            max_frame: 1 << 20,
            once: false,
        }
    }

    /// Runs `src` on a thread of its own; the receiver hears when it has returned.
    pub fn start(src: CommandSource, time_limit: Duration) -> (Arc<Channel>, mpsc::Receiver<()>) {
        let channel = Channel::for_test(SourceKind::Command);
        let (done, returned) = mpsc::channel();
        let ch = channel.clone();
        thread::spawn(move || {
            src.watch(&ch, time_limit);
            let _ = done.send(());
        });
        (channel, returned)
    }

    /// Waits until `what` is true, failing the test after [`DEADLINE`].
    pub fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
        let until = Instant::now() + DEADLINE;
        while !check() {
            assert!(Instant::now() < until, "timed out waiting for {what}");
            thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn stop(channel: &Channel, returned: &mpsc::Receiver<()>) {
        channel.latest.close();
        returned
            .recv_timeout(Duration::from_secs(1))
            .expect("the source returns within a second of the server closing");
    }

    pub fn seq(channel: &Channel) -> u64 {
        channel.latest.current().map_or(0, |f| f.seq)
    }

    #[test]
    fn first_word_is_the_program_file_name() {
        assert_eq!(first_word("uptime"), "uptime");
        assert_eq!(first_word("  /usr/bin/uptime -p"), "uptime");
        assert_eq!(first_word("date +%s"), "date");
        assert_eq!(first_word(""), "");
        assert_eq!(first_word("/"), "/");
    }

    #[test]
    fn a_windows_program_is_named_by_its_file_name() {
        let windows = ['/', '\\'];
        assert_eq!(program_name("C:\\tools\\cam.exe -x", &windows), "cam.exe");
        assert_eq!(program_name("cam.exe", &windows), "cam.exe");
        assert_eq!(program_name(".\\bin/cam.exe", &windows), "cam.exe");
        assert_eq!(program_name("C:\\", &windows), "C:\\");
        // On Unix a backslash is not a separator.
        assert_eq!(program_name("\\ls -l", &['/']), "\\ls");
    }
}

/// The tests that run commands through `sh`.
#[cfg(all(test, unix))]
mod shell_tests {
    use super::tests::{DEADLINE, seq, source, start, stop, wait_for};
    use super::*;
    use crate::channel::{Said, SourceKind};
    use std::fs;
    use std::path::PathBuf;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("pushserve-command-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Whether a live process runs with exactly these arguments (zombies have none).
    #[cfg(target_os = "linux")]
    fn running(args: &[&str]) -> bool {
        let wanted: Vec<u8> = args
            .iter()
            .flat_map(|a| [a.as_bytes(), b"\0"].concat())
            .collect();
        fs::read_dir("/proc").unwrap().flatten().any(|entry| {
            fs::read(entry.path().join("cmdline")).is_ok_and(|cmdline| cmdline == wanted)
        })
    }

    #[test]
    fn command_output_is_a_text_frame_named_by_its_channel() {
        let mut src = source("echo hello");
        src.once = true;
        let (channel, returned) = start(src, Duration::from_secs(10));
        returned.recv_timeout(DEADLINE).expect("once returns");
        let frame = channel.latest.current().expect("a frame");
        assert_eq!(&frame.bytes[..], b"hello\n");
        assert_eq!(frame.content_type.as_str(), "text/plain; charset=utf-8");
        assert_eq!(frame.name, "t");
        assert_eq!(frame.seq, 1);
    }

    #[test]
    fn command_type_given_is_used() {
        let mut src = source("echo '<p>hi</p>'");
        src.content_type = Some(HeaderValue::from_static("text/html"));
        src.once = true;
        let (channel, returned) = start(src, Duration::from_secs(10));
        returned.recv_timeout(DEADLINE).expect("once returns");
        let frame = channel.latest.current().expect("a frame");
        assert_eq!(frame.content_type.as_str(), "text/html");
    }

    #[test]
    fn command_output_is_published_only_when_it_changes() {
        let dir = temp_dir("changes");
        let (value, runs) = (dir.join("value"), dir.join("runs"));
        // Renamed over, never rewritten in place: a run must not read the file emptied.
        let replace = |bytes: &str| {
            fs::write(dir.join("value.tmp"), bytes).unwrap();
            fs::rename(dir.join("value.tmp"), &value).unwrap();
        };
        replace("1");
        let src = source(format!(
            "echo run >> '{}'; cat '{}'",
            runs.display(),
            value.display()
        ));
        let (channel, returned) = start(src, Duration::from_secs(10));
        let run_count = || fs::read_to_string(&runs).map_or(0, |r| r.lines().count());
        wait_for("the first frame", || seq(&channel) == 1);
        let seen = run_count();
        wait_for("three more runs", || run_count() >= seen + 3);
        assert_eq!(seq(&channel), 1, "the same output is not published again");
        replace("2");
        wait_for("the changed output", || seq(&channel) == 2);
        assert_eq!(&channel.latest.current().unwrap().bytes[..], b"2");
        stop(&channel, &returned);
        assert_eq!(channel.recorded().bodies(), [b"1", b"2"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn command_printing_an_image_gives_an_image_frame() {
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
        for (file, content_type) in [("red.png", "image/png"), ("red.jpg", "image/jpeg")] {
            let mut src = source(format!("cat '{fixtures}/{file}'"));
            src.once = true;
            let (channel, returned) = start(src, Duration::from_secs(10));
            returned.recv_timeout(DEADLINE).expect("once returns");
            let frame = channel.latest.current().expect("a frame");
            assert_eq!(frame.content_type.as_str(), content_type);
            assert_eq!(
                &frame.bytes[..],
                fs::read(format!("{fixtures}/{file}")).unwrap()
            );
        }
    }

    #[test]
    fn command_printing_half_an_image_publishes_nothing() {
        let jpeg = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/red.jpg");
        let mut src = source(format!("head -c 100 '{jpeg}'"));
        src.once = true;
        let (channel, returned) = start(src, Duration::from_secs(10));
        returned.recv_timeout(DEADLINE).expect("once returns");
        assert!(channel.latest.current().is_none());
        assert!(
            channel
                .state()
                .unwrap()
                .to_string()
                .contains("incomplete image/jpeg")
        );
    }

    #[test]
    fn command_failing_keeps_the_last_frame_and_says_why() {
        let dir = temp_dir("fails");
        let flag = dir.join("fail");
        let src = source(format!(
            "if [ -e '{}' ]; then echo oops >&2; echo 'no such file' >&2; exit 3; fi; echo first",
            flag.display()
        ));
        let command = src.command.clone();
        let (channel, returned) = start(src, Duration::from_secs(10));
        wait_for("the first frame", || seq(&channel) == 1);
        fs::write(&flag, "").unwrap();
        wait_for("the failure", || channel.state().is_some());
        assert_eq!(
            channel.state(),
            Some(SourceState::Failing(format!(
                "'{command}' exited with status 3: no such file"
            )))
        );
        let frame = channel.latest.current().unwrap();
        assert_eq!((&frame.bytes[..], frame.seq), (&b"first\n"[..], 1));
        fs::remove_file(&flag).unwrap();
        wait_for("the command to work again", || channel.state().is_none());
        assert_eq!(seq(&channel), 1, "the same output is not published again");
        stop(&channel, &returned);
        assert_eq!(
            channel.recorded().said,
            [
                Said::Warning(format!("'{command}' exited with status 3: no such file")),
                Said::Note(format!("'{command}' works again")),
            ],
            "a failure is said once, and its end"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn command_not_found_is_a_failure_with_the_shell_s_message() {
        let channel = Channel::for_test(SourceKind::Command);
        match run("x", 10, Duration::from_secs(1), &channel) {
            Run::Failed { how, stderr } => {
                assert_eq!(how, "exited with status 127");
                assert!(stderr.is_some_and(|line| line.contains("not found")));
            }
            _ => panic!("a missing program is a failure of sh, with its message"),
        }
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn command_over_the_time_limit_is_killed_with_its_whole_group() {
        let seconds = format!("101.{}", std::process::id());
        let src = source(format!("sleep {seconds}; echo done"));
        let started = Instant::now();
        let (channel, returned) = start(src, Duration::from_millis(300));
        wait_for("the sleep to start", || running(&["sleep", &seconds]));
        wait_for("the time limit", || channel.state().is_some());
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(
            channel
                .state()
                .unwrap()
                .to_string()
                .contains("ran longer than 0.3 s")
        );
        stop(&channel, &returned);
        wait_for("the sleep to be gone", || !running(&["sleep", &seconds]));
        assert!(channel.latest.current().is_none());
    }

    #[test]
    fn command_flooding_stdout_is_cut_off_and_polled_again() {
        let dir = temp_dir("floods");
        let flag = dir.join("calm");
        let mut src = source(format!(
            "if [ -e '{}' ]; then echo calm; else yes; fi",
            flag.display()
        ));
        src.max_frame = 1000;
        let (channel, returned) = start(src, Duration::from_secs(10));
        wait_for("the cut", || {
            channel
                .state()
                .is_some_and(|s| s.to_string().contains("more than --max-frame 1000 bytes"))
        });
        let cut = channel.latest.current().expect("the output, cut off");
        assert_eq!(&cut.bytes[..], &b"y\n".repeat(500)[..]);
        fs::write(&flag, "").unwrap();
        // The run's frame goes out first, then its warning is cleared: wait for both.
        wait_for("the next run, its warning cleared", || {
            seq(&channel) == 2 && channel.state().is_none()
        });
        assert_eq!(&channel.latest.current().unwrap().bytes[..], b"calm\n");
        stop(&channel, &returned);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn command_running_at_shutdown_is_killed_and_the_source_returns() {
        let seconds = format!("102.{}", std::process::id());
        let (channel, returned) =
            start(source(format!("sleep {seconds}")), Duration::from_secs(10));
        wait_for("the sleep to start", || running(&["sleep", &seconds]));
        stop(&channel, &returned);
        wait_for("the sleep to be gone", || !running(&["sleep", &seconds]));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn command_holding_its_pipes_after_sh_exits_does_not_hang_the_source() {
        // The background job keeps stdout open after `sh` has exited: the run ends at the limit.
        let seconds = format!("103.{}", std::process::id());
        let src = source(format!("sleep {seconds} & echo started"));
        let (channel, returned) = start(src, Duration::from_millis(300));
        wait_for("the time limit", || channel.state().is_some());
        wait_for("the sleep to be gone", || !running(&["sleep", &seconds]));
        stop(&channel, &returned);
    }
}

/// The tests that run commands through `cmd`.
#[cfg(all(test, windows))]
mod cmd_tests {
    use super::tests::{DEADLINE, seq, source, start, stop, wait_for};
    use super::*;
    use crate::channel::SourceKind;

    /// A loop that never ends in one line of `cmd` (`%i` is a loop variable outside a batch
    /// file).
    const FOREVER: &str = "for /L %i in (1,0,2) do";

    #[test]
    fn command_output_is_a_text_frame() {
        let mut src = source("echo hello");
        src.once = true;
        let (channel, returned) = start(src, Duration::from_secs(10));
        returned.recv_timeout(DEADLINE).expect("once returns");
        let frame = channel.latest.current().expect("a frame");
        assert_eq!(&frame.bytes[..], b"hello\r\n");
        assert_eq!(frame.content_type.as_str(), "text/plain; charset=utf-8");
    }

    #[test]
    fn command_quotes_reach_cmd_as_given() {
        let mut src = source(r#"echo "a b" "c""#);
        src.once = true;
        let (channel, returned) = start(src, Duration::from_secs(10));
        returned.recv_timeout(DEADLINE).expect("once returns");
        let frame = channel.latest.current().expect("a frame");
        assert_eq!(&frame.bytes[..], b"\"a b\" \"c\"\r\n");
    }

    #[test]
    fn command_failing_says_its_status_and_last_stderr_line() {
        let channel = Channel::for_test(SourceKind::Command);
        match run(
            "echo oops 1>&2 & exit 3",
            10,
            Duration::from_secs(10),
            &channel,
        ) {
            Run::Failed { how, stderr } => {
                assert_eq!(how, "exited with status 3");
                assert_eq!(stderr.as_deref(), Some("oops"));
            }
            _ => panic!("exit 3 is a failure"),
        }
    }

    #[test]
    fn command_over_the_time_limit_is_stopped() {
        let src = source(format!("{FOREVER} @rem"));
        let (channel, returned) = start(src, Duration::from_millis(300));
        wait_for("the time limit", || channel.state().is_some());
        assert!(
            channel
                .state()
                .unwrap()
                .to_string()
                .contains("ran longer than 0.3 s")
        );
        stop(&channel, &returned);
        assert!(channel.latest.current().is_none());
    }

    #[test]
    fn command_flooding_stdout_is_cut_off() {
        let mut src = source(format!("{FOREVER} @echo y"));
        src.max_frame = 1000;
        let (channel, returned) = start(src, Duration::from_secs(10));
        wait_for("the cut", || seq(&channel) == 1);
        let cut = channel.latest.current().unwrap();
        assert_eq!(cut.bytes.len(), 1000);
        assert!(cut.bytes.starts_with(b"y\r\ny\r\n"));
        stop(&channel, &returned);
    }

    #[test]
    fn command_leaving_a_process_on_its_pipes_ends_at_the_limit() {
        // `start /b` leaves a process holding stdout after `cmd` exits: the run ends at the
        // limit, and closing its job ends that process, and so the pipe.
        let src = source(format!("start /b cmd /c \"{FOREVER} @rem\" & echo started"));
        let (channel, returned) = start(src, Duration::from_millis(300));
        wait_for("the time limit", || channel.state().is_some());
        stop(&channel, &returned);
    }
}
