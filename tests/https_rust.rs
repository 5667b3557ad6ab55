//! HTTPS fetches: a TLS server on the loop with a test CA, certificate
//! validation on and off, and a CONNECT tunnel through a scripted proxy.

mod common;

use std::time::Duration;

use common::https_server::https_server;
use common::mtls_server;
use common::pki::test_pki;
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

#[test]
fn https_through_a_connect_tunnel() {
    let lp = IOLoop::new().unwrap();
    let pki = test_pki(&["127.0.0.1"]);
    let server = https_server(&lp, &pki.cert_pem, &pki.key_pem);
    let proxy = common::connect_proxy::connect_proxy();
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

/// A pooled tunnel carries the proxy credentials it was opened with: a
/// request with the same proxy user but another password gets a tunnel of
/// its own (the pool key is built from every setting connect reads), one
/// with the same credentials reuses it.
#[test]
fn a_tunnel_is_reused_only_with_its_own_proxy_credentials() {
    let lp = IOLoop::new().unwrap();
    let pki = test_pki(&["127.0.0.1"]);
    let server = https_server(&lp, &pki.cert_pem, &pki.key_pem);
    let proxy = common::connect_proxy::connect_proxy();
    let client = AsyncHTTPClient::new(&lp, ClientOptions::default()).unwrap();
    let via_proxy = |password: &str| {
        let mut request = HTTPRequest::new(format!(
            "https://127.0.0.1:{}/t",
            server.local_addr().port()
        ));
        request.ca_certs = Some(pki.ca_file.clone());
        request.proxy_host = Some("127.0.0.1".into());
        request.proxy_port = Some(proxy.addr.port());
        request.proxy_username = Some("user".into());
        request.proxy_password = Some(password.into());
        request
    };
    for password in ["one", "one", "two", "two"] {
        let r = fetch(&lp, &client, via_proxy(password));
        assert_eq!(r.body, b"/t", "{:?}", r.error);
    }
    let authorizations: Vec<String> = proxy
        .requests()
        .iter()
        .map(|r| r.header("Proxy-Authorization").unwrap_or("").to_string())
        .collect();
    // "user:one" and "user:two" in base64: one tunnel for each.
    assert_eq!(
        authorizations,
        ["Basic dXNlcjpvbmU=", "Basic dXNlcjp0d28="],
        "one CONNECT per set of credentials"
    );
}
