//! An HTTPS server on 127.0.0.1 that requires a client certificate signed
//! by the test CA: rustls with blocking I/O, a thread per connection, so
//! that tests of C programs can run it too. Every request gets the answer
//! "client certificate accepted"; a handshake without a certificate the
//! CA signed fails, with an alert.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection, StreamOwned};

use super::pki::TestPki;

pub const ANSWER: &[u8] = b"client certificate accepted";

pub struct MtlsServer {
    pub addr: SocketAddr,
}

/// Starts the server with `pki`'s server certificate (for the names it
/// was made for), trusting `pki`'s CA for client certificates. Its
/// threads end with the test process.
pub fn start(pki: &TestPki) -> MtlsServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let config = server_config(pki);
    thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { return };
            let config = config.clone();
            thread::spawn(move || serve(config, tcp));
        }
    });
    MtlsServer { addr }
}

fn server_config(pki: &TestPki) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut client_roots = RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(&pki.ca_file).unwrap() {
        client_roots.add(ca.unwrap()).unwrap();
    }
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(client_roots), provider.clone())
            .build()
            .unwrap();
    let certs = CertificateDer::pem_slice_iter(pki.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(pki.key_pem.as_bytes()).unwrap();
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .unwrap();
    Arc::new(config)
}

/// Answers each request (a head; these tests send no bodies) until the
/// client closes or the handshake fails.
fn serve(config: Arc<ServerConfig>, tcp: TcpStream) {
    let Ok(tls) = ServerConnection::new(config) else {
        return;
    };
    let mut stream = BufReader::new(StreamOwned::new(tls, tcp));
    let mut line = String::new();
    loop {
        loop {
            line.clear();
            match stream.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if line == "\r\n" => break,
                Ok(_) => {}
            }
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            ANSWER.len()
        );
        let out = stream.get_mut();
        let sent = out
            .write_all(head.as_bytes())
            .and_then(|_| out.write_all(ANSWER))
            .and_then(|_| out.flush());
        if sent.is_err() {
            return;
        }
    }
}
