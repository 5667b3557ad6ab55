//! The real WebSocket servers of tests/servers/ws_servers.py (Tornado's
//! WebSocketHandler, the `websockets` package's server) on 127.0.0.1.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A ws_servers.py server; it exits when its stdin closes (on drop).
pub struct WsServer {
    child: Child,
    pub port: u16,
}

impl WsServer {
    pub fn start(args: &[&str]) -> WsServer {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/servers/ws_servers.py");
        let mut child = Command::new("python3")
            .arg(script)
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
            .unwrap_or_else(|| {
                panic!("ws_servers.py {args:?} did not start (are tornado and websockets installed? .ci/run installs them): {line:?}")
            })
            .parse()
            .unwrap();
        WsServer { child, port }
    }

    pub fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://127.0.0.1:{}{}", self.port, path)
    }
}

impl Drop for WsServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}
