//! TLS servers on the test's loop, on 127.0.0.1: each accepted connection
//! completes a TLS handshake with the given certificate, then is served.

#![allow(dead_code)]

use std::future::Future;

use tornado_rs::tcpserver::DEFAULT_BACKLOG;
use tornado_rs::tls::server_config_from_pem;
use tornado_rs::{IOLoop, IOStream, TCPServer};

/// A TLS server offering `alpn`; `serve` runs on each connection once its
/// handshake succeeded.
pub fn tls_server<F>(
    lp: &IOLoop,
    cert_pem: &str,
    key_pem: &str,
    alpn: &[&[u8]],
    serve: impl Fn(IOStream) -> F + Clone + 'static,
) -> TCPServer
where
    F: Future<Output = ()> + 'static,
{
    let alpn: Vec<Vec<u8>> = alpn.iter().map(|p| p.to_vec()).collect();
    let config = server_config_from_pem(cert_pem.as_bytes(), key_pem.as_bytes(), &alpn).unwrap();
    let server = TCPServer::bind(lp, "127.0.0.1:0".parse().unwrap(), DEFAULT_BACKLOG).unwrap();
    let h = lp.loop_ref();
    server
        .start(move |stream, _| {
            let (config, serve) = (config.clone(), serve.clone());
            h.spawn(async move {
                if stream.start_tls_server(config).await.is_ok() {
                    serve(stream).await;
                }
            })
            .unwrap();
        })
        .unwrap();
    server
}

/// An HTTPS server answering each request with its path, keeping the
/// connection alive.
pub fn https_server(lp: &IOLoop, cert_pem: &str, key_pem: &str) -> TCPServer {
    tls_server(lp, cert_pem, key_pem, &[], |stream| async move {
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
}
