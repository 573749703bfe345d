//! A real nginx in front of the servers under test: started in the foreground as one process,
//! configured and writing only in a folder of its own, listening on a free loopback port,
//! killed on drop. What it serves is the test's: the `http` block's contents, given the port.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{DEADLINE, Killed, Response, TempDir};

/// nginx in the foreground, configured in a folder of its own: killed on drop, then the
/// folder removed (fields drop in order).
pub struct Nginx {
    process: Killed,
    /// Where it listens: `127.0.0.1:PORT`.
    pub addr: String,
    dir: TempDir,
}

impl Nginx {
    /// Starts `program` (from `common::sbin_tool`) with `site(port)` in its `http` block: one or
    /// more `server { … }` blocks (and whatever else goes there, such as an `upstream`), the
    /// one that viewers reach listening on `127.0.0.1:port`.
    pub fn start(program: &OsStr, site: impl Fn(u16) -> String) -> Nginx {
        // A port that was free a moment ago: if something else takes it first, once more.
        for attempt in 1..=2 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let dir = TempDir::new("nginx");
            let config = nginx_conf(&dir, &site(port));
            std::fs::write(dir.path("nginx.conf"), config).unwrap();
            let process = Command::new(program)
                .arg("-p")
                .arg(&dir.0)
                .arg("-e")
                .arg(dir.path("error.log"))
                .arg("-c")
                .arg(dir.path("nginx.conf"))
                .args(["-g", "daemon off;"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start nginx");
            let mut nginx = Nginx {
                process: Killed(process),
                addr: format!("127.0.0.1:{port}"),
                dir,
            };
            match nginx.wait_listening() {
                Ok(()) => return nginx,
                Err(log) if attempt == 1 && log.contains("Address already in use") => {}
                Err(log) => panic!("nginx stopped: {log}"),
            }
        }
        unreachable!()
    }

    /// Waits until nginx listens (it writes its pid file once its port is bound) and accepts
    /// a connection; Err with its error log if it exits first.
    fn wait_listening(&mut self) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.process.0.try_wait().unwrap() {
                return Err(format!("{status}; error log: {}", self.log()));
            }
            if self.dir.path("nginx.pid").exists() && TcpStream::connect(&self.addr).is_ok() {
                return Ok(());
            }
            assert!(
                start.elapsed() < DEADLINE,
                "nginx never listened; error log: {}",
                self.log()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Its error log so far (warnings and errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path("error.log")).unwrap_or_default()
    }

    /// Sends `GET path` naming `host`. In HTTP/1.0, so that nginx sends the body as it comes
    /// (to HTTP/1.1 clients, which undo it, nginx sends it chunked), for the strict readers
    /// here to read what pushserve wrote.
    pub fn request(&self, path: &str, host: &str, user_agent: &str) -> TcpStream {
        let mut conn = TcpStream::connect(&self.addr).unwrap();
        conn.set_read_timeout(Some(DEADLINE)).unwrap();
        write!(
            conn,
            "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: {user_agent}\r\n\r\n"
        )
        .unwrap();
        conn
    }

    /// `GET path` naming `host`, the whole response.
    pub fn get(&self, path: &str, host: &str) -> Response {
        let mut raw = Vec::new();
        let _ = self.request(path, host, "test").read_to_end(&mut raw);
        Response::parse(&raw)
    }
}

/// A whole configuration around `site`: everything nginx writes goes into `dir`, and it runs
/// as one process, so that killing it leaves no worker behind.
fn nginx_conf(dir: &TempDir, site: &str) -> String {
    let dir = dir.0.display();
    format!(
        "master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections 256;
}}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;

{site}
}}
"
    )
}
