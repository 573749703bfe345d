//! The committed man page and completion scripts are exactly what the binary prints now, so a
//! change to the command line that was not regenerated fails here. With `PUSHSERVE_BLESS=1`
//! each test rewrites its file instead.

mod common;

use std::path::Path;
use std::process::Command;

const REGENERATE: &str = "PUSHSERVE_BLESS=1 cargo test --test generated";

#[test]
fn man_page() {
    check("man/pushserve.1", &["--print-manpage"]);
}

#[test]
fn bash_completions() {
    check(
        "completions/pushserve.bash",
        &["--print-completions", "bash"],
    );
}

#[test]
fn zsh_completions() {
    check("completions/_pushserve", &["--print-completions", "zsh"]);
}

#[test]
fn fish_completions() {
    check(
        "completions/pushserve.fish",
        &["--print-completions", "fish"],
    );
}

#[test]
fn powershell_completions() {
    check(
        "completions/_pushserve.ps1",
        &["--print-completions", "powershell"],
    );
}

#[test]
fn elvish_completions() {
    check(
        "completions/pushserve.elv",
        &["--print-completions", "elvish"],
    );
}

/// Runs `pushserve ARGS` and compares its stdout with the committed file, byte for byte.
fn check(committed: &str, args: &[&str]) {
    let mut command = Command::new(common::bin());
    command.args(args);
    // A PUSHSERVE_* setting of whoever runs the tests must not make the output differ or fail.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PUSHSERVE_") {
            command.env_remove(name);
        }
    }
    let out = command.output().unwrap();
    let run = format!("pushserve {}", args.join(" "));
    assert!(
        out.status.success(),
        "`{run}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(committed);
    if std::env::var("PUSHSERVE_BLESS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &out.stdout).unwrap();
        return;
    }
    let on_disk = std::fs::read(&path).unwrap_or_default();
    if on_disk != out.stdout {
        panic!(
            "{committed} is not what `{run}` prints now ({}); regenerate it with\n\n    {REGENERATE}\n",
            first_difference(&on_disk, &out.stdout)
        );
    }
}

fn first_difference(committed: &[u8], now: &[u8]) -> String {
    if committed.is_empty() {
        return "the file is missing or empty".to_owned();
    }
    let committed = String::from_utf8_lossy(committed);
    let now = String::from_utf8_lossy(now);
    let (mut old, mut new) = (committed.lines(), now.lines());
    for line in 1.. {
        match (old.next(), new.next()) {
            (Some(a), Some(b)) if a == b => continue,
            (None, None) => return "they differ in line endings".to_owned(),
            (a, b) => {
                return format!(
                    "line {line} is {:?} but now {:?}",
                    a.unwrap_or("(end of file)"),
                    b.unwrap_or("(end of file)")
                );
            }
        }
    }
    unreachable!()
}
