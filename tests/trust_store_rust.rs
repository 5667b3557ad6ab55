//! The default trust store (issue 16): with validation on and no CA
//! given, a client trusts what `SSL_CERT_FILE` / `SSL_CERT_DIR` name, or
//! else the system's store, as curl and Python's `ssl` do. The roots are
//! read once per process, so each case runs the fetch in a child process
//! (this test binary again, running only `child_fetch`) with its own
//! environment; the HTTPS server, signed by a CA made at test time, runs
//! here on 127.0.0.1.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::pki::{test_pki, TestPki};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use tornado_rs::http::client::{AsyncHTTPClient, ClientOptions};
use tornado_rs::http::kind_of;
use tornado_rs::http::request::HTTPRequest;
use tornado_rs::tls::{system_roots_source, RootsSource};
use tornado_rs::IOLoop;

const CHILD_URL: &str = "TORNADO_TRUST_TEST_URL";
const ANSWER: &[u8] = b"trusted";

/// A blocking rustls HTTPS server on 127.0.0.1, a thread per connection,
/// answering every request with 200 "trusted".
fn https_server(pki: &TestPki) -> SocketAddr {
    let certs = CertificateDer::pem_slice_iter(pki.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(pki.key_pem.as_bytes()).unwrap();
    let config = Arc::new(
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { return };
            let config = config.clone();
            thread::spawn(move || {
                let Ok(conn) = ServerConnection::new(config) else {
                    return;
                };
                let mut stream = BufReader::new(StreamOwned::new(conn, tcp));
                let mut line = String::new();
                loop {
                    line.clear();
                    match stream.read_line(&mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) if line == "\r\n" => break,
                        Ok(_) => {}
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    ANSWER.len()
                );
                let tls = stream.get_mut();
                let _ = tls.write_all(head.as_bytes());
                let _ = tls.write_all(ANSWER);
                let _ = tls.flush();
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    addr
}

/// Runs `child_fetch` in a new process with `env` set (and SSL_CERT_FILE,
/// SSL_CERT_DIR removed first) and returns its result line.
fn fetch_in_child(addr: SocketAddr, env: &[(&str, &Path)]) -> String {
    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args(["child_fetch", "--exact", "--ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .env(CHILD_URL, format!("https://localhost:{}/", addr.port()));
    for (name, value) in env {
        child.env(name, value);
    }
    let out = child.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .find_map(|l| l.split_once("RESULT ").map(|(_, result)| result))
        .unwrap_or_else(|| panic!("no result from the child:\n{stdout}"))
        .to_string()
}

/// The child's side: one fetch with validation on and no CA given; prints
/// `RESULT <code> <error kind or -> <body> <roots source>`.
#[test]
#[ignore = "run by the tests below in a child process"]
fn child_fetch() {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return;
    };
    let lp = IOLoop::new().unwrap();
    let options = ClientOptions {
        // No DNS: the certificate is for "localhost", mapped here.
        hostname_mapping: vec![("localhost".into(), vec!["127.0.0.1".parse().unwrap()])],
        ..Default::default()
    };
    let client = AsyncHTTPClient::new(&lp, options).unwrap();
    let request = HTTPRequest::new(url);
    assert!(request.validate_cert && request.ca_certs.is_none());
    let f = client.fetch(request).unwrap();
    lp.run_until(|| f.done(), Some(Duration::from_secs(20)))
        .unwrap();
    let r = f.result().unwrap().unwrap();
    let kind = r
        .error
        .as_ref()
        .map_or("-".to_string(), |e| format!("{:?}", kind_of(e)));
    let (source, count) = system_roots_source();
    println!(
        "RESULT {} {kind} {} {source:?}/{}",
        r.code,
        String::from_utf8_lossy(&r.body),
        count > 0
    );
}

fn ca_pem_of(pki: &TestPki) -> String {
    std::fs::read_to_string(&pki.ca_file).unwrap()
}

#[test]
fn ssl_cert_file_names_the_trusted_cas() {
    let pki = test_pki(&["localhost"]);
    let addr = https_server(&pki);
    let got = fetch_in_child(addr, &[("SSL_CERT_FILE", &pki.ca_file)]);
    assert_eq!(got, "200 - trusted Environment/true");
}

#[test]
fn ssl_cert_dir_names_a_hashed_directory_of_cas() {
    let pki = test_pki(&["localhost"]);
    let addr = https_server(&pki);
    // An OpenSSL CA directory: the certificate under its subject hash,
    // as `openssl rehash` / `update-ca-certificates` leave it.
    let dir = tempfile::tempdir().unwrap();
    let hash = Command::new("openssl")
        .args(["x509", "-hash", "-noout", "-in"])
        .arg(&pki.ca_file)
        .output()
        .expect("the openssl tool");
    assert!(hash.status.success());
    let hash = String::from_utf8(hash.stdout).unwrap();
    std::fs::write(
        dir.path().join(format!("{}.0", hash.trim())),
        ca_pem_of(&pki),
    )
    .unwrap();
    let got = fetch_in_child(addr, &[("SSL_CERT_DIR", dir.path())]);
    assert_eq!(got, "200 - trusted Environment/true");
}

#[test]
fn without_the_variables_the_system_store_decides_and_a_private_ca_fails() {
    let pki = test_pki(&["localhost"]);
    let addr = https_server(&pki);
    let got = fetch_in_child(addr, &[]);
    // The test CA is in no system store: the handshake fails on it. The
    // roots came from the system (or, on a machine without one, the
    // bundled Mozilla roots), not from the variables.
    assert!(
        got == "599 Some(Tls)  System/true" || got == "599 Some(Tls)  Bundled/true",
        "{got}"
    );
}

#[test]
fn the_variables_replace_the_system_store_they_do_not_add_to_it() {
    // SSL_CERT_FILE names another CA: the server's is not trusted, and no
    // fallback (system or bundled roots) makes it so.
    let pki = test_pki(&["localhost"]);
    let other = test_pki(&["localhost"]);
    let addr = https_server(&pki);
    let got = fetch_in_child(addr, &[("SSL_CERT_FILE", &other.ca_file)]);
    assert_eq!(got, "599 Some(Tls)  Environment/true");
    // A file that does not exist: nothing is trusted.
    let missing = other.dir.path().join("missing.pem");
    let got = fetch_in_child(addr, &[("SSL_CERT_FILE", &missing)]);
    assert_eq!(got, "599 Some(Tls)  Environment/false");
}

#[test]
fn the_system_store_holds_what_the_administrator_installed() {
    // Only where the system has a store (Debian's ca-certificates): the
    // default roots are its certificates, not the bundled ones.
    if !Path::new("/etc/ssl/certs/ca-certificates.crt").exists() {
        eprintln!("no /etc/ssl/certs/ca-certificates.crt: nothing to compare");
        return;
    }
    let (source, count) = system_roots_source();
    if std::env::var_os("SSL_CERT_FILE").is_some() || std::env::var_os("SSL_CERT_DIR").is_some() {
        assert_eq!(source, RootsSource::Environment);
        return;
    }
    assert_eq!(source, RootsSource::System);
    let bundle = std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap();
    let in_bundle = CertificateDer::pem_slice_iter(&bundle).count();
    assert!(
        in_bundle > 0 && count >= in_bundle * 9 / 10,
        "{count} roots, {in_bundle} in the bundle"
    );
}
