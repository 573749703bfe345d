//! Command-line behaviour of the real binary: errors and exit codes.

mod common;

use std::process::Command;

#[test]
fn a_missing_path_exits_1_with_one_line_naming_it() {
    let out = Command::new(common::bin())
        .args(["no-such-file.jpg", "--port", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "pushserve: cannot read 'no-such-file.jpg': No such file or directory\n"
    );
}

#[test]
fn a_bad_flag_is_a_usage_error_exiting_2() {
    let out = Command::new(common::bin())
        .args(["x.jpg", "--poll", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--poll"));
}

#[test]
fn a_port_in_use_exits_1_naming_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let file = std::env::current_exe().unwrap();
    let out = Command::new(common::bin())
        .args([file.to_str().unwrap(), "--port", &port])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!("pushserve: cannot listen on 127.0.0.1:{port}: ")),
        "{err}"
    );
}
