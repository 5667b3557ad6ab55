//! An HTTPS server on 127.0.0.1 that records what each client offered in
//! its ClientHello (SNI, ALPN) and answers every request with it, as
//! `sni=<name or -> alpn=<offered, comma-separated, or -> chosen=<ALPN or
//! -> version=<TLSv1_2|TLSv1_3>`. It may be held to TLS 1.2, pick from its
//! own ALPN list, or ask for a client certificate the test CA signed.
//! rustls with blocking I/O, a thread per connection, so that tests of C
//! programs can run it too (its threads end with the test process).
//!
//! Also a TCP server that accepts and never answers: a TLS handshake with
//! it waits for the ServerHello until the client gives up.

#![allow(dead_code)]

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ProtocolVersion, RootCertStore, ServerConfig, ServerConnection, StreamOwned};

use super::pki::TestPki;

/// What one ClientHello offered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hello {
    pub sni: Option<String>,
    pub alpn: Vec<Vec<u8>>,
}

#[derive(Clone, Default)]
pub struct ProbeOptions {
    /// Speak TLS 1.2 only.
    pub tls12_only: bool,
    /// The server's ALPN protocols (it picks the client's first one it has).
    pub alpn: Vec<Vec<u8>>,
    /// Ask for a client certificate signed by the test CA.
    pub require_client_cert: bool,
}

pub struct ProbeServer {
    pub addr: SocketAddr,
    hellos: Arc<Mutex<Vec<Hello>>>,
}

impl ProbeServer {
    /// The ClientHellos seen so far, in order.
    pub fn hellos(&self) -> Vec<Hello> {
        self.hellos.lock().unwrap().clone()
    }
}

thread_local! {
    /// The ClientHello of the connection this thread serves (the handshake
    /// runs on the connection's own thread).
    static THIS_HELLO: RefCell<Hello> = RefCell::default();
}

/// Records each ClientHello, then hands out the one certificate.
#[derive(Debug)]
struct Recorder {
    key: Arc<CertifiedKey>,
    hellos: Arc<Mutex<Vec<Hello>>>,
}

impl ResolvesServerCert for Recorder {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let seen = Hello {
            sni: hello.server_name().map(str::to_string),
            alpn: hello
                .alpn()
                .map(|protocols| protocols.map(<[u8]>::to_vec).collect())
                .unwrap_or_default(),
        };
        THIS_HELLO.with(|this| *this.borrow_mut() = seen.clone());
        self.hellos.lock().unwrap().push(seen);
        Some(self.key.clone())
    }
}

/// Starts the server with `pki`'s server certificate.
pub fn start(pki: &TestPki, options: ProbeOptions) -> ProbeServer {
    let hellos = Arc::new(Mutex::new(Vec::new()));
    let config = server_config(pki, &options, hellos.clone());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { return };
            let config = config.clone();
            thread::spawn(move || serve(config, tcp));
        }
    });
    ProbeServer { addr, hellos }
}

fn server_config(
    pki: &TestPki,
    options: &ProbeOptions,
    hellos: Arc<Mutex<Vec<Hello>>>,
) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = CertificateDer::pem_slice_iter(pki.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(pki.key_pem.as_bytes()).unwrap();
    let key = Arc::new(CertifiedKey::from_der(certs, key, &provider).unwrap());
    let versions: &[&rustls::SupportedProtocolVersion] = if options.tls12_only {
        &[&rustls::version::TLS12]
    } else {
        rustls::DEFAULT_VERSIONS
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .unwrap();
    let builder = if options.require_client_cert {
        let mut roots = RootCertStore::empty();
        for ca in CertificateDer::pem_file_iter(&pki.ca_file).unwrap() {
            roots.add(ca.unwrap()).unwrap();
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder.with_cert_resolver(Arc::new(Recorder { key, hellos }));
    config.alpn_protocols = options.alpn.clone();
    Arc::new(config)
}

fn text(protocols: &[Vec<u8>]) -> String {
    if protocols.is_empty() {
        return "-".into();
    }
    let names: Vec<_> = protocols
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    names.join(",")
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
        let conn = &stream.get_ref().conn;
        let version = match conn.protocol_version() {
            Some(ProtocolVersion::TLSv1_2) => "TLSv1_2",
            Some(ProtocolVersion::TLSv1_3) => "TLSv1_3",
            _ => "?",
        };
        let chosen = conn.alpn_protocol().map(<[u8]>::to_vec);
        let hello = THIS_HELLO.with(|this| this.borrow().clone());
        let body = format!(
            "sni={} alpn={} chosen={} version={version}",
            hello.sni.as_deref().unwrap_or("-"),
            text(&hello.alpn),
            text(chosen.as_slice()),
        );
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
        let out = stream.get_mut();
        let sent = out
            .write_all(head.as_bytes())
            .and_then(|_| out.write_all(body.as_bytes()))
            .and_then(|_| out.flush());
        if sent.is_err() {
            return;
        }
    }
}

pub struct SilentServer {
    pub addr: SocketAddr,
}

/// Accepts connections on 127.0.0.1 and holds them open without reading
/// or writing a byte.
pub fn silent_server() -> SilentServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let mut held = Vec::new();
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { return };
            held.push(tcp);
        }
    });
    SilentServer { addr }
}
