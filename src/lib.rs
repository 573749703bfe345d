//! pushserve as a library: everything the binary (`src/main.rs`) runs, and the pieces the
//! integration tests and the benchmark use directly. The binary parses the command line into a
//! [`config::Config`] and hands it to [`server::run`]; docs/ARCHITECTURE.md walks the rest.

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
pub mod cli;
mod client;
pub mod config;
pub mod decode;
mod events;
mod frame;
mod http;
mod json;
mod keeper;
pub mod manpage;
mod pages;
mod push;
pub mod report;
mod routes;
pub mod server;
mod shutdown;
mod site;
mod source;
mod stats;
mod status;
mod wake;
