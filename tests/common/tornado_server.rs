//! Tornado's own HTTPServer (tests/servers/tornado_app.py, Python 3 with the
//! `tornado` package, which `.ci/run` installs) on 127.0.0.1, for tests.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The server process; it exits when its stdin closes (when this drops).
pub struct TornadoServer {
    child: Child,
    port: u16,
}

impl TornadoServer {
    pub fn start() -> TornadoServer {
        let (child, port) =
            spawn_python_server("tornado_app.py", &[], "is the tornado package installed?");
        TornadoServer { child, port }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }
}

impl Drop for TornadoServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// Starts `tests/servers/<script>` with `args`: it prints `PORT <n>` once it
/// listens on 127.0.0.1 and exits when its stdin closes. Panics, naming
/// `hint`, when it does not start.
pub fn spawn_python_server(script: &str, args: &[&str], hint: &str) -> (Child, u16) {
    let path = format!("{}/tests/servers/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new("python3")
        .arg(path)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 must be installed (see .ci/run)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .strip_prefix("PORT ")
        .unwrap_or_else(|| panic!("{script} {args:?} did not start ({hint}): {line:?}"))
        .parse()
        .unwrap();
    (child, port)
}
