//! A command's run on Windows: `cmd /D /S /C "CMD"` in a job object of its own, created to
//! kill everything in it when its handle closes (`KILL_ON_JOB_CLOSE`), so that stopping a run
//! (closing the job) ends it with every process it started, and so does our own exit, however
//! it comes (which is how a second Ctrl-C kills every run: [`kill_every_run`]).
//!
//! There is no asking a console program to end: a run is stopped at once. The command is
//! started, then put in the job: a process it starts in between (within microseconds of its
//! start, before `cmd` has read its command line) would be outside the job, out of reach like a
//! process that leaves its group on Unix. Anonymous pipes cannot be polled, so each pipe has a
//! thread of its own that reads it and hands the run what came, a few blocks ahead at most; a
//! pipe kept open by a process outside the job keeps its thread until that process ends.

use std::io::{self, Read};
use std::os::windows::io::AsRawHandle;
use std::os::windows::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::thread;
use std::time::{Duration, Instant};

use win32job::{ExtendedLimitInfo, Job};

use super::{EXIT_CHECK, Output};

/// How long a run whose job was closed is waited for before a thread of its own is left to
/// wait for it.
const REAP_WAIT: Duration = Duration::from_secs(1);
/// How many blocks a pipe's thread may read ahead of the run.
const BLOCKS_AHEAD: usize = 4;
/// `CREATE_NEW_PROCESS_GROUP`: Ctrl-C in our console does not reach the run, which the
/// server stops itself, as on Unix.
const NEW_PROCESS_GROUP: u32 = 0x0000_0200;

/// A run going on: `cmd`, the job it is in, and what its pipes' threads send.
pub struct Running {
    child: Child,
    /// Closing it kills everything in it.
    job: Job,
    blocks: Receiver<Block>,
    /// How many of the two pipes have not reached their end.
    open: u8,
}

/// What a pipe's thread hands the run.
enum Block {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// A pipe reached its end; or failed, which for stdout stops the run.
    End {
        stdout: bool,
        error: Option<io::Error>,
    },
}

/// Starts `cmd /D /S /C "command"` in a job of its own, with stdin from nowhere. `/S` takes
/// the command between the outer quotes as it is, whatever quotes it holds; `/D` skips the
/// AutoRun commands of the registry.
pub fn spawn(command: &str) -> io::Result<Running> {
    let job = Job::create_with_limit_info(ExtendedLimitInfo::new().limit_kill_on_job_close())
        .map_err(io::Error::other)?;
    let mut child = Command::new("cmd.exe")
        .raw_arg(format!("/D /S /C \"{command}\""))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .creation_flags(NEW_PROCESS_GROUP)
        .spawn()?;
    if let Err(e) = job.assign_process(child.as_raw_handle() as isize) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(io::Error::other(e));
    }
    let (send, blocks) = mpsc::sync_channel(BLOCKS_AHEAD);
    let mut open = 0;
    if let Some(stdout) = child.stdout.take() {
        let send = send.clone();
        thread::spawn(move || forward(stdout, &send, Block::Stdout, true));
        open += 1;
    }
    if let Some(stderr) = child.stderr.take() {
        thread::spawn(move || forward(stderr, &send, Block::Stderr, false));
        open += 1;
    }
    Ok(Running {
        child,
        job,
        blocks,
        open,
    })
}

/// On a pipe's thread: reads it to its end, handing each block to the run, until the run
/// stops listening.
fn forward(
    mut pipe: impl Read,
    send: &SyncSender<Block>,
    block: fn(Vec<u8>) -> Block,
    stdout: bool,
) {
    let mut buf = vec![0; 64 * 1024];
    loop {
        let end = match pipe.read(&mut buf) {
            Ok(0) => Block::End {
                stdout,
                error: None,
            },
            Ok(n) => {
                if send.send(block(buf[..n].to_vec())).is_err() {
                    return;
                }
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Block::End {
                stdout,
                error: Some(e),
            },
        };
        let _ = send.send(end);
        return;
    }
}

impl Running {
    /// Whether either pipe may still bring something.
    pub fn pipes_open(&self) -> bool {
        self.open > 0
    }

    /// Waits up to `wait` for a block from either pipe, and takes it and those that follow it
    /// at once into `output`, up to its limit. An error of stdout stops the run; one of stderr
    /// only ends its reading.
    pub fn read(&mut self, output: &mut Output, wait: Duration) -> io::Result<()> {
        let mut next = match self.blocks.recv_timeout(wait) {
            Ok(block) => block,
            Err(RecvTimeoutError::Timeout) => return Ok(()),
            // Both threads gone without a word: only a panic does that.
            Err(RecvTimeoutError::Disconnected) => {
                self.open = 0;
                return Ok(());
            }
        };
        loop {
            match next {
                Block::Stdout(bytes) => output.print(&bytes),
                Block::Stderr(bytes) => output.complain(&bytes),
                Block::End { stdout, error } => {
                    self.open = self.open.saturating_sub(1);
                    if let (true, Some(e)) = (stdout, error) {
                        return Err(e);
                    }
                }
            }
            if output.room() == 0 {
                return Ok(());
            }
            next = match self.blocks.try_recv() {
                Ok(block) => block,
                Err(TryRecvError::Empty) => return Ok(()),
                Err(TryRecvError::Disconnected) => {
                    self.open = 0;
                    return Ok(());
                }
            };
        }
    }

    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    /// Stops the run at once, with everything it started: its job is closed. Returns once
    /// `cmd` has ended, or after [`REAP_WAIT`], leaving it to a thread of its own.
    pub fn stop(self) {
        let Running {
            mut child,
            job,
            blocks,
            ..
        } = self;
        // The pipes' threads stop at their next block, or at the pipes' end, which the kill
        // brings.
        drop(blocks);
        drop(job);
        let until = Instant::now() + REAP_WAIT;
        while matches!(child.try_wait(), Ok(None)) {
            if Instant::now() >= until {
                thread::spawn(move || child.wait());
                return;
            }
            thread::sleep(EXIT_CHECK);
        }
    }
}

/// `exited with status 2`; a status that is a Windows error code in hexadecimal, as Windows
/// writes those (`exited with status 0xC0000005`).
pub fn describe_status(status: ExitStatus) -> String {
    match status.code() {
        Some(code) if code < 0 => format!("exited with status {:#010X}", code as u32),
        Some(code) => format!("exited with status {code}"),
        None => format!("ended ({status})"),
    }
}

/// Nothing to do: every run's job is closed by our exit, which kills what is in it. For a
/// second Ctrl-C, which exits at once.
pub fn kill_every_run() {}
