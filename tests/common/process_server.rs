//! A server program started for a test on a port of its own (nginx,
//! gunicorn with httpbin, aiohttp, Python's http.server), stopped when the
//! test ends. A missing program fails the test with the reason.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process on a port of its own; killed when dropped.
pub struct Server {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Runs `command` (given the port and a scratch dir) and waits until
    /// the port accepts connections.
    pub fn start(what: &str, command: impl FnOnce(u16, &Path) -> Command) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut command = command(port, dir.path());
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{what} could not start ({e}); .ci/run installs it"));
        let mut server = Server {
            child,
            port,
            _dir: dir,
        };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("{what} exited at start ({status}); is it installed? .ci/run installs it");
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{what} did not listen on 127.0.0.1:{port} within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }
}

impl Drop for Server {
    /// SIGTERM first, so a server with workers (gunicorn) stops them too;
    /// SIGKILL if it has not exited within 5 s.
    fn drop(&mut self) {
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let start = Instant::now();
        while let Ok(None) = self.child.try_wait() {
            if start.elapsed() > Duration::from_secs(5) {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.wait();
    }
}

/// httpbin under gunicorn (`python3 -m gunicorn httpbin:app`).
pub fn httpbin() -> Server {
    Server::start(
        "httpbin under gunicorn (python3 -m gunicorn httpbin:app)",
        |port, _| {
            let mut command = Command::new("python3");
            command.args(["-m", "gunicorn", "-w", "1", "-b"]);
            command.arg(format!("127.0.0.1:{port}")).arg("httpbin:app");
            command.stderr(Stdio::null());
            command
        },
    )
}
