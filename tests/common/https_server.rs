//! An HTTPS server on the test's loop: presents the given certificate and
//! answers each request with its path, keeping the connection alive.

#![allow(dead_code)]

use tornado_rs::tcpserver::DEFAULT_BACKLOG;
use tornado_rs::tls::server_config_from_pem;
use tornado_rs::{IOLoop, TCPServer};

pub fn https_server(lp: &IOLoop, cert_pem: &str, key_pem: &str) -> TCPServer {
    let config = server_config_from_pem(cert_pem.as_bytes(), key_pem.as_bytes(), &[]).unwrap();
    let server = TCPServer::bind(lp, "127.0.0.1:0".parse().unwrap(), DEFAULT_BACKLOG).unwrap();
    let h = lp.handle();
    server
        .start(move |stream, _| {
            let config = config.clone();
            h.spawn(async move {
                if stream.start_tls_server(config).await.is_err() {
                    return;
                }
                while let Ok(head) = stream.read_until(b"\r\n\r\n", Some(65536)).await {
                    let text = String::from_utf8_lossy(&head).to_string();
                    let path = text.split(' ').nth(1).unwrap_or("?").to_string();
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{path}",
                        path.len()
                    );
                    if stream.write(reply.as_bytes()).is_err() {
                        break;
                    }
                }
            })
            .unwrap();
        })
        .unwrap();
    server
}
