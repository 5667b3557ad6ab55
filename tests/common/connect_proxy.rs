//! A CONNECT proxy on 127.0.0.1 for tests: opens the tunnel to the
//! requested address (an IP and port), then copies bytes both ways. It
//! also forwards absolute-form requests (`GET http://ip:port/path`), one
//! per connection, as a plain HTTP proxy does. Its log holds what it got.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use super::script_server::{Conn, ScriptServer};

/// A CONNECT proxy: opens the tunnel to the requested address, then copies
/// bytes both ways until either side closes.
pub fn connect_proxy() -> ScriptServer {
    ScriptServer::start(|mut conn: Conn| {
        let Some(request) = conn.read_request() else {
            return;
        };
        if request.method != "CONNECT" {
            forward(conn, request);
            return;
        }
        let target: SocketAddr = match request.target.parse() {
            Ok(addr) => addr,
            Err(_) => {
                conn.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
                return;
            }
        };
        let Ok(upstream) = TcpStream::connect(target) else {
            conn.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
            return;
        };
        conn.write(b"HTTP/1.1 200 Connection established\r\n\r\n");
        let client = conn.reader.get_ref().try_clone().unwrap();
        pipe_both_ways(client, upstream);
    })
}

/// Sends an absolute-form request to its origin in origin form (without
/// the proxy's own headers) and copies the answer back, then closes.
fn forward(mut conn: Conn, request: super::script_server::Received) {
    let Some(rest) = request.target.strip_prefix("http://") else {
        conn.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let Ok(mut upstream) = authority
        .parse::<SocketAddr>()
        .map_err(|_| ())
        .and_then(|a| TcpStream::connect(a).map_err(|_| ()))
    else {
        conn.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    let path = if path.is_empty() { "/" } else { path };
    let mut head = format!("{} {path} HTTP/1.1\r\n", request.method);
    for (name, value) in &request.headers {
        let hop = ["proxy-authorization", "proxy-connection", "connection"];
        if !hop.contains(&name.to_ascii_lowercase().as_str()) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&request.body);
    if upstream.write_all(&bytes).is_err() {
        return;
    }
    let mut answer = Vec::new();
    let _ = upstream.read_to_end(&mut answer);
    conn.write(&answer);
}

fn pipe_both_ways(a: TcpStream, b: TcpStream) {
    let (mut a_read, mut b_write) = (a.try_clone().unwrap(), b.try_clone().unwrap());
    let forward = std::thread::spawn(move || {
        let mut buf = [0u8; 16384];
        while let Ok(n) = a_read.read(&mut buf) {
            if n == 0 || b_write.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = b_write.shutdown(std::net::Shutdown::Write);
    });
    let (mut b_read, mut a_write) = (b, a);
    let mut buf = [0u8; 16384];
    while let Ok(n) = b_read.read(&mut buf) {
        if n == 0 || a_write.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = a_write.shutdown(std::net::Shutdown::Write);
    let _ = forward.join();
}
