//! A command's run on Unix: `sh -c CMD` in a process group of its own, its two pipes read by
//! one `poll`, and the group stopped with SIGTERM, then SIGKILL if any of it is still alive
//! after [`TERM_GRACE`]. A process that leaves the group (`setsid`, a daemon) is out of reach.
//! A second Ctrl-C kills every group at once ([`kill_every_run`]).

use std::fs;
use std::io::{self, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{Pid, Signal, kill_process_group, test_kill_process_group};

use super::{EXIT_CHECK, Output};

/// How long a run that is stopped has to end after SIGTERM before it gets SIGKILL.
const TERM_GRACE: Duration = Duration::from_millis(500);
/// How long a run that got SIGKILL is waited for before a thread of its own is left to reap it.
const REAP_WAIT: Duration = Duration::from_secs(1);

/// The process groups of the runs going on now, for [`kill_every_run`]: each listed from before
/// its run starts until it has ended.
static RUNS: Mutex<Vec<Pid>> = Mutex::new(Vec::new());

/// A run going on: `sh`, the leader of its group, and the pipes not yet at their end.
pub struct Running {
    child: Child,
    /// None once at its end.
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    buf: Vec<u8>,
    _listed: Listed,
}

/// Starts `sh -c command` in a process group of its own, with stdin from /dev/null.
pub fn spawn(command: &str) -> io::Result<Running> {
    // Listed as it starts, so that a second Ctrl-C never misses it.
    let mut runs = runs();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()?;
    let listed = Listed::new(&mut runs, Pid::from_child(&child));
    drop(runs);
    Ok(Running {
        stdout: child.stdout.take(),
        stderr: child.stderr.take(),
        child,
        buf: vec![0; 64 * 1024],
        _listed: listed,
    })
}

impl Running {
    /// Whether either pipe may still bring something.
    pub fn pipes_open(&self) -> bool {
        self.stdout.is_some() || self.stderr.is_some()
    }

    /// Waits up to `wait` for either pipe, and takes what came into `output`. An error of
    /// stdout stops the run; one of stderr only ends its reading.
    pub fn read(&mut self, output: &mut Output, wait: Duration) -> io::Result<()> {
        let (stdout_ready, stderr_ready) = self.ready(wait)?;
        if let (true, Some(stdout)) = (stdout_ready, &mut self.stdout) {
            let room = output.room().min(self.buf.len());
            match stdout.read(&mut self.buf[..room]) {
                Ok(0) => self.stdout = None,
                Ok(n) => output.print(&self.buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            if output.room() == 0 {
                return Ok(());
            }
        }
        if let (true, Some(stderr)) = (stderr_ready, &mut self.stderr) {
            match stderr.read(&mut self.buf) {
                Ok(0) => self.stderr = None,
                Ok(n) => output.complain(&self.buf[..n]),
                // Only the failure message needs stderr: a broken one is not worth a stop.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => self.stderr = None,
            }
        }
        Ok(())
    }

    /// Waits up to `wait` for either open pipe to have data or reach its end: which did.
    fn ready(&self, wait: Duration) -> io::Result<(bool, bool)> {
        let timeout = Timespec::try_from(wait).unwrap_or(Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        });
        let mut fds = Vec::with_capacity(2);
        if let Some(stdout) = &self.stdout {
            fds.push(PollFd::new(stdout, PollFlags::IN));
        }
        if let Some(stderr) = &self.stderr {
            fds.push(PollFd::new(stderr, PollFlags::IN));
        }
        poll(&mut fds, Some(&timeout))?;
        // HUP and ERR count as ready: the read that follows sees the end or the error.
        let mut ready = fds.iter().map(|fd| !fd.revents().is_empty());
        let stdout_ready = self.stdout.is_some() && ready.next().unwrap_or(false);
        let stderr_ready = self.stderr.is_some() && ready.next().unwrap_or(false);
        Ok((stdout_ready, stderr_ready))
    }

    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    /// Stops the run's whole process group: SIGTERM, so that it may clean up, then SIGKILL if
    /// any of it is still alive after [`TERM_GRACE`]. Returns once `sh` is reaped and nothing of
    /// the group is alive, or after [`REAP_WAIT`] more, leaving `sh` to a thread of its own.
    pub fn stop(self) {
        let Running {
            mut child,
            stdout,
            stderr,
            _listed,
            ..
        } = self;
        // The pipes are closed before the kill: nothing the group does can block us now.
        drop((stdout, stderr));
        // `sh` is not reaped yet, so its pid still names this group and no other; once it is,
        // the group's living processes keep the number from being given to another.
        let group = Pid::from_child(&child);
        let _ = kill_process_group(group, Signal::TERM);
        if ended(&mut child, group, TERM_GRACE) {
            return;
        }
        let _ = kill_process_group(group, Signal::KILL);
        if !ended(&mut child, group, REAP_WAIT) {
            thread::spawn(move || child.wait());
        }
    }
}

/// `exited with status 2`, `was killed by signal 9`.
pub fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => format!("ended ({status})"),
    }
}

/// Waits up to `time` for `sh` to be reaped and nothing else of its group to be alive.
fn ended(child: &mut Child, group: Pid, time: Duration) -> bool {
    let until = Instant::now() + time;
    loop {
        // An error means `sh` cannot be waited for: nothing to reap.
        let reaped = !matches!(child.try_wait(), Ok(None));
        if reaped && !group_alive(group) {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        thread::sleep(EXIT_CHECK);
    }
}

/// Whether a process of `group` is alive. A zombie is not: it waits only for its parent to reap
/// it, which an init that does not reap (pushserve as PID 1 in a container) never does.
fn group_alive(group: Pid) -> bool {
    // No process at all, or none we may signal: nothing more to do for it.
    if test_kill_process_group(group).is_err() {
        return false;
    }
    let Ok(processes) = fs::read_dir("/proc") else {
        // No /proc to tell zombies apart: the group counts as alive.
        return true;
    };
    processes.flatten().any(|process| {
        fs::read_to_string(process.path().join("stat"))
            .is_ok_and(|stat| alive_in_group(&stat, group.as_raw_pid()))
    })
}

/// Whether the process a `/proc/PID/stat` line describes is alive, in process group `group`.
fn alive_in_group(stat: &str, group: i32) -> bool {
    // The fields after the name are found from its closing parenthesis, the last one: the name
    // may hold spaces and parentheses.
    let Some((_, fields)) = stat.rsplit_once(')') else {
        return false;
    };
    let mut fields = fields.split_whitespace();
    let (state, _parent, process_group) = (fields.next(), fields.next(), fields.next());
    !matches!(state, Some("Z" | "X" | "x"))
        && process_group.and_then(|g| g.parse().ok()) == Some(group)
}

/// Sends SIGKILL to the process group of every run going on now, without waiting: for a second
/// Ctrl-C, which exits at once.
pub fn kill_every_run() {
    for &group in runs().iter() {
        let _ = kill_process_group(group, Signal::KILL);
    }
}

fn runs() -> MutexGuard<'static, Vec<Pid>> {
    // A panicking holder leaves the list whole: each change is one push or one removal.
    RUNS.lock().unwrap_or_else(|e| e.into_inner())
}

/// A run's place in [`RUNS`], from its start until it has been stopped or has exited.
struct Listed(Pid);

impl Listed {
    fn new(runs: &mut Vec<Pid>, group: Pid) -> Listed {
        runs.push(group);
        Listed(group)
    }
}

impl Drop for Listed {
    fn drop(&mut self) {
        let mut runs = runs();
        if let Some(at) = runs.iter().position(|&group| group == self.0) {
            runs.swap_remove(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::alive_in_group;

    #[test]
    fn group_membership_is_read_past_a_name_with_parentheses_and_zombies_are_not_alive() {
        let stat = |state: &str, group: i32| {
            format!("4242 (a) b (c)) {state} 1 {group} {group} 0 -1 4194560 0 0 0 0 0 0 0 0 20")
        };
        assert!(alive_in_group(&stat("S", 77), 77));
        assert!(alive_in_group(&stat("R", 77), 77));
        assert!(!alive_in_group(&stat("S", 78), 77));
        assert!(!alive_in_group(&stat("Z", 77), 77));
        assert!(!alive_in_group("garbage", 77));
    }
}
