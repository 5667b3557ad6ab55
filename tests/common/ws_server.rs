//! The real WebSocket servers of tests/servers/ws_servers.py (Tornado's
//! WebSocketHandler, the `websockets` package's server) on 127.0.0.1.

#![allow(dead_code)]

use std::process::Child;

use super::tornado_server::spawn_python_server;

/// A ws_servers.py server; it exits when its stdin closes (on drop).
pub struct WsServer {
    child: Child,
    pub port: u16,
}

impl WsServer {
    pub fn start(args: &[&str]) -> WsServer {
        let (child, port) = spawn_python_server(
            "ws_servers.py",
            args,
            "are tornado and websockets installed? .ci/run installs them",
        );
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
