//! pushserve: parse the command line, run, turn an error into one line and an exit code.
//! Everything else is the library (`src/lib.rs`).

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use clap_complete::Shell;
use pushserve::report::{Level, line};
use pushserve::{cli, config, manpage, server};

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
            line(Level::Quiet, format_args!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}

fn print(bytes: &[u8]) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            line(Level::Quiet, format_args!("cannot write to stdout: {e}"));
            ExitCode::FAILURE
        }
    }
}
