//! Per-request TLS options, as Tornado's `ssl_options` (Python's
//! `ssl.SSLContext`) and curl set them: CA and client certificate from PEM
//! in memory, the minimum TLS version, the ALPN protocols offered, the
//! server name, validation off with each; and "Timeout during TLS
//! handshake" apart from "Timeout while connecting". Against rustls servers
//! on 127.0.0.1 that record each ClientHello (tests/common/tls_probe.rs).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::pki::{test_pki, TestPki};
use common::tls_probe::{self, ProbeOptions};
use tornado_rs::http::client::{AsyncHTTPClient, ClientOptions};
use tornado_rs::http::request::{HTTPRequest, TlsVersion};
use tornado_rs::http::response::HTTPResponse;
use tornado_rs::http::{kind_of, FetchErrorKind};
use tornado_rs::tls::{client_config, TlsClientOptions};
use tornado_rs::IOLoop;

fn fetch(lp: &IOLoop, client: &AsyncHTTPClient, request: HTTPRequest) -> HTTPResponse {
    let f = client.fetch(request).unwrap();
    lp.run_until(|| f.done(), Some(Duration::from_secs(20)))
        .unwrap();
    f.result().unwrap().unwrap()
}

fn client(lp: &IOLoop) -> AsyncHTTPClient {
    let options = ClientOptions {
        hostname_mapping: vec![("mtls.test".into(), vec!["127.0.0.1".parse().unwrap()])],
        ..Default::default()
    };
    AsyncHTTPClient::new(lp, options).unwrap()
}

fn body(r: &HTTPResponse) -> String {
    assert_eq!(r.code, 200, "{:?}", r.error);
    String::from_utf8_lossy(&r.body).into_owned()
}

/// The kind and message of a failed fetch.
fn failure(r: &HTTPResponse) -> (Option<FetchErrorKind>, String) {
    assert_eq!(r.code, 599, "the fetch failed");
    let error = r.error.as_ref().expect("an error");
    (kind_of(error), error.message().to_string())
}

fn ca_pem(pki: &TestPki) -> Arc<[u8]> {
    std::fs::read(&pki.ca_file).unwrap().into()
}

fn client_pem(pki: &TestPki) -> (Arc<[u8]>, Arc<[u8]>) {
    (
        std::fs::read(&pki.client_cert_file).unwrap().into(),
        std::fs::read(&pki.client_key_file).unwrap().into(),
    )
}

#[test]
fn a_ca_from_memory_is_trusted_and_malformed_pem_is_a_tls_error() {
    let pki = test_pki(&["mtls.test"]);
    let server = tls_probe::start(&pki, ProbeOptions::default());
    let lp = IOLoop::new().unwrap();
    let client = client(&lp);
    let url = format!("https://mtls.test:{}/", server.addr.port());

    let mut request = HTTPRequest::new(&url);
    request.ca_pem = Some(ca_pem(&pki));
    assert!(body(&fetch(&lp, &client, request)).starts_with("sni=mtls.test "));

    // Together with a CA file (of another CA): both are trusted.
    let other = test_pki(&["other.test"]);
    let mut request = HTTPRequest::new(&url);
    request.ca_certs = Some(other.ca_file.clone());
    request.ca_pem = Some(ca_pem(&pki));
    body(&fetch(&lp, &client, request));
    // The other CA's file alone does not vouch for this server.
    let mut request = HTTPRequest::new(&url);
    request.ca_pem = Some(ca_pem(&other));
    let (kind, _) = failure(&fetch(&lp, &client, request));
    assert_eq!(kind, Some(FetchErrorKind::Tls));

    for (pem, says) in [
        (&b"not PEM at all"[..], "no certificate"),
        (
            &b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"[..],
            "bad CA PEM",
        ),
    ] {
        let mut request = HTTPRequest::new(&url);
        request.ca_pem = Some(pem.into());
        let (kind, message) = failure(&fetch(&lp, &client, request));
        assert_eq!(kind, Some(FetchErrorKind::Tls), "{message}");
        assert!(message.contains(says), "{message}");
    }
}

#[test]
fn a_client_certificate_from_memory_is_shown() {
    let pki = test_pki(&["mtls.test"]);
    let server = tls_probe::start(
        &pki,
        ProbeOptions {
            require_client_cert: true,
            ..Default::default()
        },
    );
    let lp = IOLoop::new().unwrap();
    let client = client(&lp);
    let url = format!("https://mtls.test:{}/", server.addr.port());
    let mut request = HTTPRequest::new(&url);
    request.ca_pem = Some(ca_pem(&pki));
    request.client_cert_pem = Some(client_pem(&pki));
    body(&fetch(&lp, &client, request.clone()));

    // Not the pooled connection: the certificate is part of the pool key.
    let mut without = request.clone();
    without.client_cert_pem = None;
    let (kind, message) = failure(&fetch(&lp, &client, without));
    assert_eq!(kind, Some(FetchErrorKind::Tls), "{message}");

    let mut bad_key = request.clone();
    bad_key.client_cert_pem = Some((client_pem(&pki).0, b"no key here".as_slice().into()));
    let (kind, message) = failure(&fetch(&lp, &client, bad_key));
    assert_eq!(kind, Some(FetchErrorKind::Tls), "{message}");
    assert!(message.contains("private key"), "{message}");

    // Shown with validation off too.
    let mut unvalidated = request;
    unvalidated.ca_pem = None;
    unvalidated.validate_cert = false;
    body(&fetch(&lp, &client, unvalidated));
}

#[test]
fn a_minimum_of_tls_1_3_refuses_a_tls_1_2_server() {
    let pki = test_pki(&["mtls.test"]);
    let old = tls_probe::start(
        &pki,
        ProbeOptions {
            tls12_only: true,
            ..Default::default()
        },
    );
    let modern = tls_probe::start(&pki, ProbeOptions::default());
    let lp = IOLoop::new().unwrap();
    let client = client(&lp);
    let request = |server: &tls_probe::ProbeServer, min| {
        let mut r = HTTPRequest::new(format!("https://mtls.test:{}/", server.addr.port()));
        r.ca_pem = Some(ca_pem(&pki));
        r.min_tls_version = min;
        r
    };
    let b = body(&fetch(&lp, &client, request(&old, None)));
    assert!(b.ends_with("version=TLSv1_2"), "{b}");
    let b = body(&fetch(&lp, &client, request(&old, Some(TlsVersion::Tls12))));
    assert!(b.ends_with("version=TLSv1_2"), "{b}");
    let (kind, message) = failure(&fetch(&lp, &client, request(&old, Some(TlsVersion::Tls13))));
    assert_eq!(kind, Some(FetchErrorKind::Tls), "{message}");
    let b = body(&fetch(
        &lp,
        &client,
        request(&modern, Some(TlsVersion::Tls13)),
    ));
    assert!(b.ends_with("version=TLSv1_3"), "{b}");

    // With validation off, the minimum still holds.
    let mut unvalidated = request(&old, Some(TlsVersion::Tls13));
    unvalidated.validate_cert = false;
    let (kind, _) = failure(&fetch(&lp, &client, unvalidated));
    assert_eq!(kind, Some(FetchErrorKind::Tls));

    assert!(TlsVersion::parse("1.1").is_err());
    assert_eq!(TlsVersion::parse("1.3").unwrap(), TlsVersion::Tls13);
}

#[test]
fn the_alpn_protocols_offered_and_another_protocol_chosen() {
    let pki = test_pki(&["mtls.test"]);
    let server = tls_probe::start(
        &pki,
        ProbeOptions {
            alpn: vec![b"http/1.1".to_vec()],
            ..Default::default()
        },
    );
    let lp = IOLoop::new().unwrap();
    let client = client(&lp);
    let url = format!("https://mtls.test:{}/", server.addr.port());
    let with_alpn = |alpn: Option<Vec<&[u8]>>| {
        let mut r = HTTPRequest::new(&url);
        r.ca_pem = Some(ca_pem(&pki));
        r.alpn_protocols = alpn.map(|list| list.iter().map(|p| p.to_vec()).collect());
        r
    };
    // By default both HTTP versions are offered, h2 first (as curl).
    let b = body(&fetch(&lp, &client, with_alpn(None)));
    assert!(b.contains(" alpn=h2,http/1.1 chosen=http/1.1 "), "{b}");
    // Each a new connection: the ALPN list is part of the pool key.
    let b = body(&fetch(
        &lp,
        &client,
        with_alpn(Some(vec![b"x-test", b"http/1.1"])),
    ));
    assert!(b.contains(" alpn=x-test,http/1.1 chosen=http/1.1 "), "{b}");
    let b = body(&fetch(&lp, &client, with_alpn(Some(vec![]))));
    assert!(b.contains(" alpn=- chosen=- "), "none offered: {b}");
    let offered: Vec<_> = server.hellos().into_iter().map(|h| h.alpn).collect();
    assert_eq!(
        offered,
        vec![
            vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            vec![b"x-test".to_vec(), b"http/1.1".to_vec()],
            vec![],
        ]
    );

    // A server that picks a protocol other than HTTP/1.1 and HTTP/2.
    let other = tls_probe::start(
        &pki,
        ProbeOptions {
            alpn: vec![b"x-test".to_vec()],
            ..Default::default()
        },
    );
    let mut request = HTTPRequest::new(format!("https://mtls.test:{}/", other.addr.port()));
    request.ca_pem = Some(ca_pem(&pki));
    request.alpn_protocols = Some(vec![b"x-test".to_vec(), b"http/1.1".to_vec()].into());
    let (kind, message) = failure(&fetch(&lp, &client, request.clone()));
    assert_eq!(kind, Some(FetchErrorKind::Protocol), "{message}");
    assert!(message.contains("\"x-test\""), "{message}");
    request.validate_cert = false;
    let (kind, _) = failure(&fetch(&lp, &client, request));
    assert_eq!(kind, Some(FetchErrorKind::Protocol));
}

#[test]
fn a_server_name_override_is_sent_and_checked() {
    // The certificate names mtls.test only, not 127.0.0.1.
    let pki = test_pki(&["mtls.test"]);
    let server = tls_probe::start(&pki, ProbeOptions::default());
    let lp = IOLoop::new().unwrap();
    let client = AsyncHTTPClient::new(&lp, ClientOptions::default()).unwrap();
    let url = format!("https://127.0.0.1:{}/", server.addr.port());
    let named = |name: Option<&str>| {
        let mut r = HTTPRequest::new(&url);
        r.ca_pem = Some(ca_pem(&pki));
        r.tls_server_name = name.map(Into::into);
        r
    };
    let b = body(&fetch(&lp, &client, named(Some("mtls.test"))));
    assert!(b.starts_with("sni=mtls.test "), "{b}");
    assert_eq!(client.idle_connections(), 1);
    for name in [None, Some("other.test")] {
        let (kind, message) = failure(&fetch(&lp, &client, named(name)));
        assert_eq!(kind, Some(FetchErrorKind::Tls), "{name:?}: {message}");
    }
    // The pooled connection (made for mtls.test) was not used for the others.
    assert_eq!(server.hellos().len(), 3);
    assert_eq!(server.hellos()[2].sni.as_deref(), Some("other.test"));

    let mut unvalidated = named(Some("other.test"));
    unvalidated.validate_cert = false;
    let b = body(&fetch(&lp, &client, unvalidated));
    assert!(b.starts_with("sni=other.test "), "{b}");

    let (_, message) = failure(&fetch(&lp, &client, named(Some("not a name"))));
    assert!(message.contains("not a valid TLS server name"), "{message}");
}

#[test]
fn a_timeout_during_the_tls_handshake_says_so() {
    let silent = tls_probe::silent_server();
    let lp = IOLoop::new().unwrap();
    let client = AsyncHTTPClient::new(&lp, ClientOptions::default()).unwrap();
    let mut request = HTTPRequest::new(format!("https://127.0.0.1:{}/", silent.addr.port()));
    request.connect_timeout = Some(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let (kind, message) = failure(&fetch(&lp, &client, request));
    assert_eq!(kind, Some(FetchErrorKind::Timeout), "{message}");
    assert_eq!(
        message,
        format!(
            "timeout: Timeout during TLS handshake with 127.0.0.1:{}",
            silent.addr.port()
        )
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    // TCP never connects: the accept queue is full.
    let full = common::full_listener::full_listener();
    let mut request = HTTPRequest::new(format!("https://127.0.0.1:{}/", full.addr.port()));
    request.connect_timeout = Some(Duration::from_millis(300));
    let (kind, message) = failure(&fetch(&lp, &client, request));
    assert_eq!(kind, Some(FetchErrorKind::Timeout), "{message}");
    assert_eq!(message, "timeout: Timeout while connecting");
}

#[test]
fn configs_with_pem_in_memory_are_cached() {
    let pki = test_pki(&["mtls.test"]);
    let options = TlsClientOptions {
        ca_pem: Some(ca_pem(&pki)),
        client_cert_pem: Some(client_pem(&pki)),
        min_version: Some(TlsVersion::Tls13),
        ..Default::default()
    };
    let a = client_config(&options).unwrap();
    // An equal copy (other buffers, same bytes) finds the same config.
    let copy = TlsClientOptions {
        ca_pem: Some(ca_pem(&pki)),
        ..options.clone()
    };
    assert!(Arc::ptr_eq(&a, &client_config(&copy).unwrap()));
    let debug = format!("{options:?}");
    assert!(!debug.contains("PRIVATE KEY"), "{debug}");
}
