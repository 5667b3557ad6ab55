//! A CONNECT proxy on 127.0.0.1 for tests: opens the tunnel to the
//! requested address (an IP and port), then copies bytes both ways.

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
        assert_eq!(request.method, "CONNECT");
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
