//! A scripted HTTP server for tests: a thread per connection on 127.0.0.1
//! runs the test's handler, which reads requests and writes whatever bytes
//! the test wants (well-formed or hostile).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// One request as the server received it.
#[derive(Clone, Debug, Default)]
pub struct Received {
    pub method: String,
    pub target: String,
    /// Header lines as sent (name, value), in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A connection handed to a handler, with a buffered reader on it.
pub struct Conn {
    pub reader: BufReader<TcpStream>,
    pub index: usize,
    pub log: Arc<Mutex<Vec<Received>>>,
}

impl Conn {
    /// Reads one request (head and a Content-Length or chunked body); None
    /// when the client closed the connection.
    pub fn read_request(&mut self) -> Option<Received> {
        let mut line = String::new();
        if self.reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let mut parts = line.trim_end().splitn(3, ' ');
        let mut received = Received {
            method: parts.next()?.to_string(),
            target: parts.next()?.to_string(),
            ..Default::default()
        };
        loop {
            let mut header = String::new();
            if self.reader.read_line(&mut header).ok()? == 0 {
                return None;
            }
            let header = header.trim_end_matches(['\r', '\n']);
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':')?;
            received
                .headers
                .push((name.to_string(), value.trim().to_string()));
        }
        if let Some(len) = received.header("Content-Length") {
            let mut body = vec![0; len.parse().ok()?];
            if received.header("Expect").is_none() {
                self.reader.read_exact(&mut body).ok()?;
                received.body = body;
            }
        } else if received
            .header("Transfer-Encoding")
            .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
        {
            received.body = self.read_chunked()?;
        }
        self.log.lock().unwrap().push(received.clone());
        Some(received)
    }

    fn read_chunked(&mut self) -> Option<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let mut size = String::new();
            self.reader.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0; size + 2];
            self.reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                return Some(body);
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }

    pub fn write(&mut self, bytes: &[u8]) -> bool {
        self.reader.get_mut().write_all(bytes).is_ok()
    }

    /// Writes a complete response with a Content-Length.
    pub fn respond(&mut self, status: &str, headers: &[(&str, &str)], body: &[u8]) -> bool {
        let mut head = format!("HTTP/1.1 {status}\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        self.write(&bytes)
    }
}

pub struct ScriptServer {
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    pub log: Arc<Mutex<Vec<Received>>>,
}

impl ScriptServer {
    /// Serves each connection with `handler` on its own thread.
    pub fn start(handler: impl Fn(Conn) + Send + Sync + 'static) -> ScriptServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let log = Arc::new(Mutex::new(Vec::new()));
        let handler = Arc::new(handler);
        let (count, shared_log) = (connections.clone(), log.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                let index = count.fetch_add(1, Ordering::SeqCst);
                let handler = handler.clone();
                let log = shared_log.clone();
                thread::spawn(move || {
                    handler(Conn {
                        reader: BufReader::new(stream),
                        index,
                        log,
                    })
                });
            }
        });
        ScriptServer {
            addr,
            connections,
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }
}

/// A handler that answers every request on a connection with `f(request)`
/// = (status, headers, body), keeping the connection alive.
pub fn keep_alive(
    f: impl Fn(&Received) -> (String, Vec<(String, String)>, Vec<u8>) + Send + Sync + 'static,
) -> impl Fn(Conn) + Send + Sync + 'static {
    move |mut conn: Conn| {
        while let Some(request) = conn.read_request() {
            let (status, headers, body) = f(&request);
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            if request.method == "HEAD" {
                let mut head = format!("HTTP/1.1 {status}\r\n");
                for (n, v) in &headers {
                    head.push_str(&format!("{n}: {v}\r\n"));
                }
                head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
                if !conn.write(head.as_bytes()) {
                    return;
                }
            } else if !conn.respond(&status, &headers, &body) {
                return;
            }
        }
    }
}
