//! The builds for other platforms, run for real: Windows (`x86_64-pc-windows-gnu`) under Wine,
//! static ARM Linux (`aarch64-unknown-linux-musl`) under qemu, static x86-64 Linux
//! (`x86_64-unknown-linux-musl`) natively, each talked to over real HTTP by the Linux curl.
//!
//! Each test builds what it runs, with cargo, in `target/foreign`: a target dir of its own, so
//! that it never waits for the lock the running `cargo test` holds on `target/`. One build runs
//! at a time; `.ci/run` builds every target there first, so that the tests find them up to date.
//! A test whose tools are absent (the Rust target, the MinGW linker, cargo-zigbuild, Wine, qemu,
//! curl) is skipped, saying so (see `common::client_present`). The macOS builds are not run: no
//! macOS here. `.ci/run` checks that they compile.

mod common;

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use common::{Killed, PartReader, TempDir, TestServer, fixture};

/// A platform pushserve is built for here.
#[derive(PartialEq)]
struct Target {
    triple: &'static str,
    /// Built with cargo-zigbuild (zig as C compiler and linker), else with cargo and the linker
    /// Rust names for the target.
    zig: bool,
    exe: &'static str,
}

const WINDOWS: Target = Target {
    triple: "x86_64-pc-windows-gnu",
    zig: false,
    exe: "pushserve.exe",
};
const ARM_MUSL: Target = Target {
    triple: "aarch64-unknown-linux-musl",
    zig: true,
    exe: "pushserve",
};
const X86_MUSL: Target = Target {
    triple: "x86_64-unknown-linux-musl",
    zig: true,
    exe: "pushserve",
};

/// Where the foreign builds and the Wine prefix live (`.ci/run` builds there too).
fn foreign_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/foreign")
}

/// One line on the terminal, past the test harness, which swallows what a passing test prints.
fn tell(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The targets built so far by this run of the tests. Held through a build, so that builds
/// never run side by side.
static BUILT: Mutex<Vec<&str>> = Mutex::new(Vec::new());

/// pushserve built for `target` (a debug build), or None when a tool the build needs is absent
/// and the test is skipped.
fn build(target: &Target) -> Option<PathBuf> {
    let installed = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", target.triple])
        .output()
        .is_ok_and(|out| {
            out.status.success() && Path::new(String::from_utf8_lossy(&out.stdout).trim()).is_dir()
        });
    let rust_target = format!("the Rust target {}", target.triple);
    let add = format!("rustup target add {}", target.triple);
    if !common::client_present(&rust_target, &add, installed) {
        return None;
    }
    let cargo = if target.zig {
        let mut zigbuild = common::tool("cargo-zigbuild", "pip install ziglang cargo-zigbuild")?;
        zigbuild.arg("zigbuild");
        zigbuild
    } else {
        // The linker of x86_64-pc-windows-gnu, and the compiler of the Wine helper DLL.
        common::tool(
            "x86_64-w64-mingw32-gcc",
            "apt-get install gcc-mingw-w64-x86-64",
        )?;
        let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or("cargo".into()));
        cargo.arg("build");
        cargo
    };
    let out_dir = foreign_dir().join(target.triple).join("debug");
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    if !built.contains(&target.triple) {
        tell(&format!(
            "building pushserve for {} in target/foreign (minutes if not up to date)",
            target.triple
        ));
        run_cargo(cargo, target);
        if *target == WINDOWS {
            build_process_prng(&out_dir);
        }
        built.push(target.triple);
    }
    Some(out_dir.join(target.exe))
}

/// Runs `cargo` (a build for `target`, in `target/foreign`); fails saying why if it fails. What
/// it printed on stdout.
fn run_cargo(mut cargo: Command, target: &Target) -> String {
    // What cargo tells a test about its package is no setting for this build: ring's build
    // script reruns when CARGO_MANIFEST_DIR changes, so a build by `.ci/run` and one from here
    // would each make the other stale.
    for (name, _) in std::env::vars_os() {
        let told = [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_BIN_EXE_",
            "CARGO_CRATE_",
        ];
        if told.iter().any(|t| name.to_string_lossy().starts_with(t)) {
            cargo.env_remove(name);
        }
    }
    let out = cargo
        .args([
            "--locked",
            "--quiet",
            "--target",
            target.triple,
            "--target-dir",
        ])
        .arg(foreign_dir())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the build for {} failed:\n{}",
        target.triple,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The library's unit tests built for Windows (`cargo test --lib --no-run`): the test .exe, with
/// the `ProcessPrng` DLL beside it; None when a tool the build needs is absent.
fn build_windows_unit_tests() -> Option<PathBuf> {
    build(&WINDOWS)?;
    let _alone = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    tell("building the unit tests for x86_64-pc-windows-gnu in target/foreign");
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or("cargo".into()));
    cargo.args(["test", "--lib", "--no-run", "--message-format=json"]);
    let said = run_cargo(cargo, &WINDOWS);
    let exe = said
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .expect("cargo names the unit tests' executable");
    build_process_prng(exe.parent().unwrap());
    Some(exe)
}

/// Puts `bcryptprimitives.dll` with the `ProcessPrng` that Wine 8 lacks beside the .exe (see
/// `tests/platforms/processprng.c`); Windows looks beside the .exe first.
fn build_process_prng(exe_dir: &Path) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/platforms/processprng.c");
    let out = Command::new("x86_64-w64-mingw32-gcc")
        .args(["-shared", "-O2", "-o"])
        .arg(exe_dir.join("bcryptprimitives.dll"))
        .arg(source)
        .arg("-ladvapi32")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bcryptprimitives.dll: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether the prefix in `target/foreign/wine` is made and up to date in this run of the
/// tests. Held by each test that runs Wine: they run one at a time, each alone in the prefix.
static WINE: Mutex<bool> = Mutex::new(false);

/// Making a Wine prefix takes seconds on an idle machine.
const WINE_PREFIX_DEADLINE: Duration = Duration::from_secs(120);

/// Wine with a prefix of its own (see [`wine_in`]). Dropping it ends every Windows process of the prefix and its wineserver, so a test leaves nothing running.
struct Wine {
    prefix: PathBuf,
    _alone: MutexGuard<'static, bool>,
}

impl Wine {
    /// Wine, once its prefix is ready; None when Wine is absent and the test is skipped.
    fn start() -> Option<Wine> {
        common::tool("wine", "apt-get install wine wine64")?;
        let mut ready = WINE.lock().unwrap_or_else(PoisonError::into_inner);
        let prefix = foreign_dir().join("wine");
        if !*ready {
            if !prefix.exists() {
                tell("making a Wine prefix in target/foreign/wine (seconds, a minute at most)");
                std::fs::create_dir_all(foreign_dir()).unwrap();
            }
            // Makes the prefix, or brings it up to date with this Wine, before any test starts
            // a server against the usual deadline.
            let mut boot = Killed(
                wine_in(&prefix, "wineboot")
                    .args(["--init"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap(),
            );
            let status = wait_exit_within(&mut boot.0, WINE_PREFIX_DEADLINE)
                .expect("wineboot did not make the Wine prefix within 2 minutes");
            assert!(status.success(), "wineboot: {status}");
            *ready = true;
        }
        Some(Wine {
            prefix,
            _alone: ready,
        })
    }

    /// `wine PROGRAM` in the prefix.
    fn command(&self, program: impl AsRef<OsStr>) -> Command {
        wine_in(&self.prefix, program)
    }
}

/// `wine PROGRAM` in `prefix`, quiet, with no prompt to install Mono or Gecko.
fn wine_in(prefix: &Path, program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new("wine");
    command
        .arg(program)
        .env("WINEPREFIX", prefix)
        .env("WINEDEBUG", "-all")
        .env("WINEDLLOVERRIDES", "mscoree,mshtml=");
    command
}

impl Drop for Wine {
    fn drop(&mut self) {
        // `wineserver -k` kills every process of the prefix, then the wineserver ends.
        for flag in ["-k", "-w"] {
            if let Ok(mut server) = Command::new("wineserver")
                .arg(flag)
                .env("WINEPREFIX", &self.prefix)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                && wait_exit_within(&mut server, common::DEADLINE).is_none()
            {
                let _ = server.kill();
                let _ = server.wait();
            }
        }
    }
}

/// Wine, alone in its prefix, and the Windows build to run in it; None when a tool either
/// needs is absent and the test is skipped.
fn windows_build_under_wine() -> Option<(Wine, PathBuf)> {
    let wine = Wine::start()?;
    Some((wine, build(&WINDOWS)?))
}

/// Waits for `child` to exit; None if it is still running after `deadline`.
fn wait_exit_within(child: &mut Child, deadline: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if start.elapsed() > deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// `Z:\tmp\…`: the path as a Windows program under Wine names it (Wine's drive Z: is `/`).
fn windows_path(path: &Path) -> String {
    format!("Z:{}", path.display()).replace('/', "\\")
}

fn unix_path(path: &Path) -> String {
    path.display().to_string()
}

/// What a user's Ctrl-C sends (under Wine, SIGINT to the process is a CTRL_C_EVENT to it).
fn ctrl_c(server: &TestServer) {
    let kill = Command::new("kill")
        .args(["-INT", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
}

/// Serves a `cam.jpg` through `program` (the binary, or its emulator with the binary as first
/// argument), the file named as `name_of` writes its path for the platform, and checks that
/// curl on /stream gets it, then a new version, /snapshot the new version, and that Ctrl-C ends
/// curl's stream with its final boundary and the server with exit 0. What the server said,
/// its lines on stderr, the file's name in them written `CAM`. None when curl is absent.
fn follows_a_change_then_stops_on_ctrl_c(
    mut program: Command,
    name_of: impl Fn(&Path) -> String,
) -> Option<Vec<String>> {
    let mut curl = common::tool("curl", "apt-get install curl")?;
    let (red, blue) = (fixture("red.jpg"), fixture("blue.jpg"));
    let dir = TempDir::new("platform-cam");
    dir.rewrite("cam.jpg", &red);
    let cam = name_of(&dir.path("cam.jpg"));
    program.arg(&cam);
    let mut server = TestServer::start_command(program);
    // A minute at most: it cannot hang the test.
    let mut curl = Killed(
        curl.args(["-sSN", "-i", "--max-time", "60"])
            .arg(format!("{}stream", server.url))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stream = PartReader::new(curl.0.stdout.take().unwrap());
    assert_eq!(stream.next_part().expect("a first part").body, red);
    dir.replace("cam.jpg", &blue);
    stream.wait_for(&blue);
    assert_eq!(server.get("/snapshot", "").body, blue);

    ctrl_c(&server);
    while stream.next_part().is_some() {}
    assert!(stream.closed_cleanly, "no final boundary");
    let status = common::wait_exit(&mut server.child, "still running after Ctrl-C");
    assert_eq!(status.code(), Some(0), "{}", server.stderr());
    let (status, _, error) = curl.finish("curl still running after the stream ended");
    assert!(status.success(), "curl: {status} {error}");
    Some(
        server
            .stderr()
            .lines()
            .map(|line| line.replace(&cam, "CAM"))
            .collect(),
    )
}

#[test]
fn windows_build_under_wine_follows_a_file_named_by_its_drive_path_and_stops_as_on_linux() {
    let Some((wine, exe)) = windows_build_under_wine() else {
        return;
    };
    let Some(said) = follows_a_change_then_stops_on_ctrl_c(wine.command(&exe), windows_path) else {
        return;
    };
    let on_linux =
        follows_a_change_then_stops_on_ctrl_c(Command::new(common::bin()), unix_path).unwrap();
    assert_eq!(said, on_linux, "what it said on Windows, then on Linux");
}

#[test]
fn windows_build_under_wine_shows_a_folder_slide_after_slide() {
    let Some((wine, exe)) = windows_build_under_wine() else {
        return;
    };
    let dir = TempDir::new("platform-slides");
    dir.rewrite("a.txt", b"a");
    dir.rewrite("b.txt", b"b");
    let mut show = wine.command(&exe);
    show.arg(windows_path(&dir.0)).args(["--interval", "100"]);
    let server = TestServer::start_command(show);
    let mut stream = server.stream("", "curl/8");
    let slides: Vec<Vec<u8>> = (0..4)
        .map(|_| stream.next_part().expect("a slide").body)
        .collect();
    let other = if slides[0] == b"a" { b"b" } else { b"a" };
    let expected = [&slides[0][..], other, &slides[0][..], other];
    assert_eq!(slides, expected, "slides in turn");
}

#[test]
fn windows_build_under_wine_serves_what_a_cmd_command_prints() {
    let Some((wine, exe)) = windows_build_under_wine() else {
        return;
    };
    let mut exec = wine.command(&exe);
    exec.args(["--exec", "cmd /C echo hi"]);
    let server = TestServer::start_command(exec);
    let part = server.stream("", "curl/8").next_part().expect("a part");
    assert_eq!(String::from_utf8_lossy(&part.body).trim_end(), "hi");
}

#[test]
fn windows_build_under_wine_serves_stdin_and_a_relay_over_tls_with_a_password() {
    let Some((wine, exe)) = windows_build_under_wine() else {
        return;
    };
    let Some(_) = common::tool("curl", "apt-get install curl") else {
        return;
    };
    let upstream = TestServer::serving("up.txt", b"from upstream", &[]);
    let mut command = wine.command(&exe);
    command.args([
        "piped=-",
        &format!("relayed={}stream", upstream.url),
        "--tls-self-signed",
        "--auth",
        "ann:secret",
    ]);
    let (server, mut stdin) = TestServer::fed_command(command);
    assert!(server.url.starts_with("https://"), "{}", server.url);
    stdin.write_all(b"from stdin\n").unwrap();
    stdin.flush().unwrap();
    // curl over TLS (the certificate is self-signed); what it got, and the status code.
    let get = |path: &str, user: &str| {
        let out = Command::new("curl")
            .args([
                "-sk",
                "--max-time",
                "10",
                "-u",
                user,
                "-w",
                "\n%{http_code}",
            ])
            .arg(format!("{}{path}", server.url))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", ""));
        (body.to_string(), code.to_string())
    };
    common::wait_until("stdin's line served", || {
        get("piped/snapshot", "ann:secret").0.contains("from stdin")
    });
    common::wait_until("the relayed file served", || {
        get("relayed/snapshot", "ann:secret").0 == "from upstream"
    });
    assert_eq!(get("piped/snapshot", "ann:wrong").1, "401");

    // A long-poll whose client leaves is freed at once (the watcher of clients leaving), not
    // after its 300 s.
    let waiting = |n: u64| {
        move |(body, _): (String, String)| {
            serde_json::from_str::<serde_json::Value>(&body)
                .is_ok_and(|status| status["clients"]["poll"] == n)
        }
    };
    let mut poll = Killed(
        Command::new("curl")
            .args(["-sk", "--max-time", "60", "-u", "ann:secret"])
            .arg(format!("{}piped/poll?since=1&timeout=300", server.url))
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    common::wait_until("one long-poll waiting", || {
        waiting(1)(get("status", "ann:secret"))
    });
    poll.0.kill().unwrap();
    poll.0.wait().unwrap();
    common::wait_until("the long-poll freed", || {
        waiting(0)(get("status", "ann:secret"))
    });
}

#[test]
fn windows_build_under_wine_refuses_a_unix_socket_and_socket_activation_in_a_line_exit_2() {
    let Some((wine, exe)) = windows_build_under_wine() else {
        return;
    };
    let dir = TempDir::new("platform-refused");
    dir.rewrite("cam.jpg", &fixture("red.jpg"));
    let cam = windows_path(&dir.path("cam.jpg"));
    let refusal = |mut command: Command| {
        let mut run = Killed(
            command
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let (status, _, said) = run.finish("still running, not refusing");
        assert_eq!(status.code(), Some(2), "{said}");
        let lines: Vec<String> = said
            .lines()
            .filter(|line| line.contains("not available on Windows"))
            .map(str::to_string)
            .collect();
        assert_eq!(lines.len(), 1, "one line saying why: {said}");
        lines[0].clone()
    };
    let mut unix = wine.command(&exe);
    unix.args([&cam, "--port", "0", "--bind", "unix:/tmp/pushserve.sock"]);
    assert!(refusal(unix).contains("Unix sockets"));
    let mut activated = wine.command(&exe);
    activated.arg(&cam).env("LISTEN_FDS", "1");
    assert!(refusal(activated).contains("LISTEN_FDS"));
}

#[test]
fn windows_unit_tests_of_the_command_runner_pass_under_wine() {
    // `cmd /C` runs in a job object: stopped, timed out or flooding, a run is killed with
    // everything it started (src/source/command.rs, `cmd_tests`).
    let Some(wine) = Wine::start() else {
        return;
    };
    let Some(exe) = build_windows_unit_tests() else {
        return;
    };
    let mut tests = Killed(
        wine.command(&exe)
            .args(["source::command::", "--test-threads", "2"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // They wait for commands that loop until stopped: slow under Wine on a busy machine.
    let status = wait_exit_within(&mut tests.0, Duration::from_secs(120))
        .expect("the unit tests still running under Wine after 2 minutes");
    let (mut said, mut error) = (String::new(), String::new());
    std::io::Read::read_to_string(tests.0.stdout.as_mut().unwrap(), &mut said).unwrap();
    std::io::Read::read_to_string(tests.0.stderr.as_mut().unwrap(), &mut error).unwrap();
    assert!(status.success(), "{said}\n{error}");
    let passed: u32 = said
        .lines()
        .find_map(|line| line.strip_prefix("test result: ok. "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("a test result line");
    assert!(passed >= 6, "only {passed} ran: {said}");
}

#[test]
fn aarch64_musl_build_under_qemu_follows_a_file_and_stops_on_ctrl_c() {
    let Some(qemu) = common::tool("qemu-aarch64-static", "apt-get install qemu-user-static") else {
        return;
    };
    let Some(exe) = build(&ARM_MUSL) else {
        return;
    };
    let mut program = qemu;
    program.arg(exe);
    follows_a_change_then_stops_on_ctrl_c(program, unix_path);
}

#[test]
fn x86_64_musl_build_is_static_and_follows_a_file_and_stops_on_ctrl_c() {
    let Some(exe) = build(&X86_MUSL) else {
        return;
    };
    let host_build = std::fs::read(env!("CARGO_BIN_EXE_pushserve")).unwrap();
    assert!(
        asks_for_an_interpreter(&host_build),
        "the check sees no dynamic executable"
    );
    let elf = std::fs::read(&exe).unwrap();
    assert!(!asks_for_an_interpreter(&elf), "dynamically linked");
    follows_a_change_then_stops_on_ctrl_c(Command::new(exe), unix_path);
}

/// Whether a 64-bit little-endian ELF file has a PT_INTERP program header: a dynamic loader to
/// run it, which a static executable has not.
fn asks_for_an_interpreter(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    assert!(
        elf.starts_with(b"\x7fELF\x02\x01"),
        "not a 64-bit little-endian ELF file"
    );
    let number = |at: usize, len: usize| {
        elf[at..at + len]
            .iter()
            .rev()
            .fold(0usize, |n, &b| n << 8 | usize::from(b))
    };
    let (table, size, count) = (number(0x20, 8), number(0x36, 2), number(0x38, 2));
    (0..count).any(|i| number(table + i * size, 4) == PT_INTERP as usize)
}
