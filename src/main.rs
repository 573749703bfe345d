//! pushserve: parse the command line, run, turn an error into one line and an exit code.

// Lines on stderr (see report.rs), visible in every module below.
/// Always printed, even with `--quiet`.
macro_rules! error {
    ($($arg:tt)*) => { $crate::report::line($crate::report::Level::Quiet, format_args!($($arg)*)) };
}
/// Something went wrong but serving goes on; hidden by `--quiet`.
macro_rules! warning {
    ($($arg:tt)*) => { $crate::report::line($crate::report::Level::Normal, format_args!($($arg)*)) };
}
/// What the source is doing (the current slide); hidden by `--quiet`.
macro_rules! note {
    ($($arg:tt)*) => { $crate::report::line($crate::report::Level::Normal, format_args!($($arg)*)) };
}

mod channel;
mod cli;
mod client;
mod config;
mod events;
mod frame;
mod http;
mod json;
mod keeper;
mod manpage;
// The integration tests compile this file too, and use parts of it the sources do not.
#[allow(dead_code)]
mod multipart;
#[cfg(test)]
mod multipart_tests;
mod pages;
mod push;
mod report;
mod routes;
mod server;
mod shutdown;
mod site;
mod source;
mod stats;
mod status;
mod wake;

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use clap_complete::Shell;

fn main() -> ExitCode {
    // clap exits with 2 on a usage error: the documented exit status for one.
    let matches = cli::Args::command().get_matches();
    // The hidden flags behind man/ and completions/: answered before `Args`, which needs a SOURCE.
    if matches.get_flag(cli::PRINT_MANPAGE) {
        return print(manpage::render(cli::Args::command()).as_bytes());
    }
    if let Some(&shell) = matches.get_one::<Shell>(cli::PRINT_COMPLETIONS) {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut cli::Args::command(), "pushserve", &mut script);
        return print(&script);
    }
    let args = cli::Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let usage_error = |e: &dyn std::fmt::Display| -> ! {
        let mut cmd = cli::Args::command();
        cmd.error(clap::error::ErrorKind::ValueValidation, e).exit()
    };
    let config = config::Config::from_args(args, &matches).unwrap_or_else(|e| usage_error(&e));
    match server::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<config::UsageError>() => usage_error(&e),
        Err(e) => {
            error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn print(bytes: &[u8]) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("cannot write to stdout: {e}");
            ExitCode::FAILURE
        }
    }
}
