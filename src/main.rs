//! pushserve: parse the command line, run, turn an error into one line and an exit code.

/// One line on stderr, prefixed with the program name (visible in every module below).
macro_rules! warning {
    ($($arg:tt)*) => { eprintln!("pushserve: {}", format_args!($($arg)*)) };
}

mod cli;
mod frame;
mod http;
mod push;
mod routes;
mod server;
mod shutdown;
mod source;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // clap exits with 2 on a usage error, as DESIGN.md section 6 asks.
    let args = cli::Args::parse();
    match server::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            warning!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
