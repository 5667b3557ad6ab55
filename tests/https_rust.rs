//! HTTPS fetches: a TLS server on the loop with a test CA, certificate
//! validation on and off, and a CONNECT tunnel through a scripted proxy.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::https_server::https_server;
use common::mtls_server;
use common::pki::test_pki;
use common::script_server::{Conn, ScriptServer};
use tornado_rs::http::client::{AsyncHTTPClient, ClientOptions};
use tornado_rs::http::request::HTTPRequest;
use tornado_rs::http::response::HTTPResponse;
use tornado_rs::http::{kind_of, FetchErrorKind};
use tornado_rs::IOLoop;

fn fetch(lp: &IOLoop, client: &AsyncHTTPClient, request: HTTPRequest) -> HTTPResponse {
    let f = client.fetch(request).unwrap();
    lp.run_until(|| f.done(), Some(Duration::from_secs(20)))
        .unwrap();
    f.result().unwrap().unwrap()
}

fn client_for(lp: &IOLoop, host: &str) -> AsyncHTTPClient {
    let options = ClientOptions {
        hostname_mapping: vec![(host.into(), vec!["127.0.0.1".parse().unwrap()])],
        ..Default::default()
    };
    AsyncHTTPClient::new(lp, options).unwrap()
}

#[test]
fn https_with_a_trusted_ca_and_keep_alive() {
    let lp = IOLoop::new().unwrap();
    let pki = test_pki(&["secure.test"]);
    let server = https_server(&lp, &pki.cert_pem, &pki.key_pem);
    let client = client_for(&lp, "secure.test");
    for path in ["/one", "/two"] {
        let mut request = HTTPRequest::new(format!(
            "https://secure.test:{}{path}",
            server.local_addr().port()
        ));
        request.ca_certs = Some(pki.ca_file.clone());
        let r = fetch(&lp, &client, request);
        assert_eq!(r.code, 200, "{:?}", r.error);
        assert_eq!(r.body, path.as_bytes());
        assert!(r.time_info.appconnect >= r.time_info.connect);
    }
    assert_eq!(
        client.idle_connections(),
        1,
        "the TLS connection was reused"
    );
}

#[test]
fn a_client_certificate_is_shown_when_given_and_the_server_refuses_none() {
    let pki = test_pki(&["mtls.test"]);
    let server = mtls_server::start(&pki);
    let lp = IOLoop::new().unwrap();
    let client = client_for(&lp, "mtls.test");
    let url = format!("https://mtls.test:{}/", server.addr.port());
    let mut request = HTTPRequest::new(url.clone());
    request.ca_certs = Some(pki.ca_file.clone());
    request.client_cert = Some(pki.client_cert_file.clone());
    request.client_key = Some(pki.client_key_file.clone());
    let r = fetch(&lp, &client, request);
    assert_eq!(r.code, 200, "{:?}", r.error);
    assert_eq!(r.body, mtls_server::ANSWER);

    // Not the pooled connection: the client certificate is part of its key.
    let mut without = HTTPRequest::new(url);
    without.ca_certs = Some(pki.ca_file.clone());
    let r = fetch(&lp, &client, without);
    assert_eq!(r.code, 599, "refused without a client certificate");
    assert_eq!(
        kind_of(r.error.as_ref().unwrap()),
        Some(FetchErrorKind::Tls),
        "{:?}",
        r.error
    );
}

#[test]
fn an_untrusted_certificate_fails_with_tls_unless_validation_is_off() {
    let lp = IOLoop::new().unwrap();
    let pki = test_pki(&["secure.test"]);
    let server = https_server(&lp, &pki.cert_pem, &pki.key_pem);
    let client = client_for(&lp, "secure.test");
    let url = format!("https://secure.test:{}/x", server.local_addr().port());
    let r = fetch(&lp, &client, HTTPRequest::new(&url));
    assert_eq!(
        kind_of(r.error.as_ref().unwrap()),
        Some(FetchErrorKind::Tls),
        "{:?}",
        r.error
    );
    assert_eq!(r.code, 599);

    let wrong_name = client_for(&lp, "other.test");
    let mut request = HTTPRequest::new(format!(
        "https://other.test:{}/x",
        server.local_addr().port()
    ));
    request.ca_certs = Some(pki.ca_file.clone());
    let r = fetch(&lp, &wrong_name, request);
    assert_eq!(
        kind_of(r.error.as_ref().unwrap()),
        Some(FetchErrorKind::Tls),
        "{:?}",
        r.error
    );

    let mut request = HTTPRequest::new(&url);
    request.validate_cert = false;
    let r = fetch(&lp, &client, request);
    assert_eq!(r.body, b"/x", "{:?}", r.error);
}

/// A CONNECT proxy: opens the tunnel to the requested address, then copies
/// bytes both ways until either side closes.
fn connect_proxy() -> ScriptServer {
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

#[test]
fn https_through_a_connect_tunnel() {
    let lp = IOLoop::new().unwrap();
    let pki = test_pki(&["127.0.0.1"]);
    let server = https_server(&lp, &pki.cert_pem, &pki.key_pem);
    let proxy = connect_proxy();
    let client = AsyncHTTPClient::new(&lp, ClientOptions::default()).unwrap();
    let mut request = HTTPRequest::new(format!(
        "https://127.0.0.1:{}/tunnelled",
        server.local_addr().port()
    ));
    request.ca_certs = Some(pki.ca_file.clone());
    request.proxy_host = Some("127.0.0.1".into());
    request.proxy_port = Some(proxy.addr.port());
    let r = fetch(&lp, &client, request);
    assert_eq!(r.body, b"/tunnelled", "{:?}", r.error);
    assert_eq!(
        proxy.requests()[0].target,
        format!("127.0.0.1:{}", server.local_addr().port())
    );
}
