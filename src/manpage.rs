//! The man page (`--print-manpage`, committed as man/pushserve.1): clap_mangen's sections from
//! the clap definition, then the ones it has no source for.

use std::io::Write;

use clap_mangen::Man;
use clap_mangen::roff::{Inline, Roff, bold, italic, roman};

use crate::cli::EXAMPLES;
use crate::routes::ROUTES;

pub fn render(cmd: clap::Command) -> String {
    let mut arguments = Roff::new();
    arguments.control("SH", ["ARGUMENTS"]);
    for arg in cmd.get_positionals() {
        let name = arg
            .get_value_names()
            .map_or(arg.get_id().as_str(), |names| &names[0]);
        roff_item(
            &mut arguments,
            italic(name),
            &arg.get_help().unwrap_or_default().to_string(),
        );
    }
    let mut extra = Roff::new();
    environment(&mut extra, &cmd);
    exit_status(&mut extra);
    endpoints(&mut extra);
    examples(&mut extra);
    see_also(&mut extra);

    // clap_mangen would list SOURCE among the options, after --version, as if optional.
    let cmd = cmd.mut_arg(crate::cli::SOURCES, |sources| sources.hide(true));
    let man = Man::new(cmd).title("PUSHSERVE").manual("User Commands");
    let section = |render: fn(&Man, &mut dyn Write) -> std::io::Result<()>| {
        let mut out = Vec::new();
        render(&man, &mut out).expect("writing to a Vec cannot fail");
        String::from_utf8(out).expect("roff output of UTF-8 input is UTF-8")
    };
    let parts = [
        section(Man::render_title),
        section(Man::render_name_section),
        section(Man::render_synopsis_section),
        section(Man::render_description_section),
        arguments.render(),
        section(Man::render_options_section),
        extra.render(),
    ];
    // Each part comes with roff's apostrophe preamble; the page needs it once, at the top.
    let preamble = Roff::new().render();
    let mut page = preamble.clone();
    for part in &parts {
        page.push_str(part.strip_prefix(&preamble).unwrap_or(part));
    }
    page
}

/// One `.TP` entry: a tag line, then its text indented below.
fn roff_item(roff: &mut Roff, tag: Inline, text: &str) {
    roff.control("TP", []);
    roff.text([tag]);
    roff.text([roman(text)]);
}

/// Every `PUSHSERVE_*` variable, from the `env` of each option.
fn environment(roff: &mut Roff, cmd: &clap::Command) {
    roff.control("SH", ["ENVIRONMENT"]);
    roff.text([roman(
        "Each variable sets an option as if it were given on the command line, where the option \
         itself wins. A flag is off when its variable is 0, false, no, off or empty, on otherwise.",
    )]);
    for arg in cmd.get_arguments().filter(|arg| !arg.is_hide_set()) {
        if let (Some(var), Some(long)) = (arg.get_env(), arg.get_long()) {
            roff.control("TP", []);
            roff.text([bold(var.to_string_lossy())]);
            roff.text([roman("Sets "), bold(format!("--{long}")), roman(".")]);
        }
    }
}

fn exit_status(roff: &mut Roff) {
    roff.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in [
        (
            "0",
            "After Ctrl-C or SIGTERM (every stream is ended with the final boundary and every \
             --exec run stopped first, 2 s at most), or once every source has played with --once.",
        ),
        (
            "1",
            "A SOURCE path cannot be read, is neither a regular file nor a folder (a FIFO, a \
             device, a /proc or /sys file), is a folder with no file that can be shown, or the \
             port cannot be bound; one line on stderr says which. A source that fails later (an \
             upstream that goes away, a command that fails) is a warning, not an exit. A closed stdout or stderr changes nothing: \
             what cannot be written is dropped.",
        ),
        (
            "2",
            "A usage error: an unknown option, a bad value, a URL that cannot be relayed, - \
             given twice, or one NAME given to two sources.",
        ),
    ] {
        roff_item(roff, bold(code), meaning);
    }
}

fn endpoints(roff: &mut Roff) {
    roff.control("SH", ["ENDPOINTS"]);
    for route in &ROUTES {
        roff_item(roff, bold(route.path), route.summary);
    }
    roff.control("PP", []);
    roff.text([roman(
        "Only GET and HEAD are answered (others get 405), and any other path gets 404. No URL \
         names a file: nothing but the given sources is ever served. Bound to a loopback address, requests \
         whose Host is not localhost, *.localhost, a loopback address or an --allow-host name \
         get 403 (DNS rebinding). Every response says X-Content-Type-Options: nosniff; \
         /snapshot and /stream say Content-Security-Policy: sandbox.",
    )]);
}

fn examples(roff: &mut Roff) {
    roff.control("SH", ["EXAMPLES"]);
    for (command, what) in EXAMPLES {
        roff.control("PP", []);
        roff.text([roman(what)]);
        roff.control("RS", ["4"]);
        roff.control("EX", []);
        roff.text([roman(command)]);
        roff.control("EE", []);
        roff.control("RE", []);
    }
}

fn see_also(roff: &mut Roff) {
    roff.control("SH", ["SEE ALSO"]);
    roff.text([
        bold("curl"),
        roman("(1), "),
        bold("ffmpeg"),
        roman("(1), "),
        bold("ffmpeg-formats"),
        roman("(1) (the "),
        italic("mpjpeg"),
        roman(" demuxer)"),
    ]);
}
