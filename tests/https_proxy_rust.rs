//! https:// proxies (curl's `--proxy https://...`): TLS to the proxy
//! itself, then absolute-form requests for http URLs and a CONNECT tunnel
//! with TLS inside it (TLS in TLS) for https URLs. The proxy is real: nginx's
//! stream module terminates TLS with a certificate from a CA made for the
//! test and passes the plaintext to the tests' CONNECT/forwarding proxy
//! (tests/common/connect_proxy.rs), whose log shows what the proxy got.
//! The targets are nginx on loopback (https with a client certificate).

mod common;

use std::time::Duration;

use common::connect_proxy::connect_proxy;
use common::curl_sites::{nginx, nginx_tls_proxy};
use common::pki::test_pki;

use tornado_rs::http::client::{AsyncHTTPClient, ClientOptions};
use tornado_rs::http::request::HTTPRequest;
use tornado_rs::http::response::HTTPResponse;
use tornado_rs::http::{kind_of, FetchErrorKind};
use tornado_rs::IOLoop;

struct Client {
    lp: IOLoop,
    client: AsyncHTTPClient,
}

impl Client {
    fn new() -> Client {
        let lp = IOLoop::new().unwrap();
        let client = AsyncHTTPClient::new(&lp, ClientOptions::default()).unwrap();
        Client { lp, client }
    }

    fn fetch(&self, request: HTTPRequest) -> HTTPResponse {
        let f = self.client.fetch(request).unwrap();
        self.lp
            .run_until(|| f.done(), Some(Duration::from_secs(20)))
            .expect("done in time");
        f.result().expect("done").expect("fetch futures resolve")
    }
}

fn text(r: &HTTPResponse) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

fn error(r: &HTTPResponse) -> String {
    r.error
        .as_ref()
        .map(|e| e.message().to_string())
        .unwrap_or_default()
}

/// The request through `proxy` (an https:// URL) with Basic credentials.
fn via(url: String, proxy: &str) -> HTTPRequest {
    let mut r = HTTPRequest::new(url);
    r.request_timeout = Some(Duration::from_secs(10));
    r.connect_timeout = Some(Duration::from_secs(5));
    r.proxy_host = Some(proxy.to_string());
    r.proxy_username = Some("puser".into());
    r.proxy_password = Some("ppass".into());
    r
}

// "puser:ppass" in Base64.
const PROXY_AUTH: &str = "Basic cHVzZXI6cHBhc3M=";

#[test]
fn http_and_https_targets_through_an_https_proxy() {
    let target_pki = test_pki(&["localhost", "127.0.0.1"]);
    let proxy_pki = test_pki(&["localhost", "127.0.0.1"]);
    let site = nginx(Some(&target_pki));
    let tls_port = site.tls_port.unwrap();
    let upstream = connect_proxy();
    let proxy = nginx_tls_proxy(&proxy_pki, upstream.addr);
    let proxy_url = format!("https://127.0.0.1:{}", proxy.port);
    let c = Client::new();

    // An http URL: absolute form over the TLS connection to the proxy.
    let mut r = via(site.server.url("/whoami"), &proxy_url);
    r.proxy_ca_certs = Some(proxy_pki.ca_file.clone());
    let r = c.fetch(r);
    assert_eq!(
        (r.code, text(&r)),
        (200, "host=127.0.0.1".into()),
        "{}",
        error(&r)
    );
    let got = upstream.requests();
    let first = got.last().expect("the proxy got the request");
    assert_eq!(first.method, "GET");
    assert_eq!(first.target, site.server.url("/whoami"), "absolute form");
    assert_eq!(first.header("Proxy-Authorization"), Some(PROXY_AUTH));

    // An https URL: CONNECT over the proxy's TLS, then the target's TLS
    // (its own CA and a client certificate) inside it.
    let https = |path: &str| {
        let mut r = via(format!("https://127.0.0.1:{tls_port}{path}"), &proxy_url);
        r.proxy_ca_certs = Some(proxy_pki.ca_file.clone());
        r.ca_certs = Some(target_pki.ca_file.clone());
        r.client_cert = Some(target_pki.client_cert_file.clone());
        r.client_key = Some(target_pki.client_key_file.clone());
        r
    };
    let before = upstream.connections();
    let r = c.fetch(https("/whoami"));
    assert_eq!(
        (r.code, text(&r)),
        (200, "client=SUCCESS".into()),
        "{}",
        error(&r)
    );
    let got = upstream.requests();
    let connect = got.last().unwrap();
    assert_eq!(connect.method, "CONNECT");
    assert_eq!(connect.target, format!("127.0.0.1:{tls_port}"));
    assert_eq!(connect.header("Proxy-Authorization"), Some(PROXY_AUTH));
    // The credentials went to the proxy only, never inside the tunnel.
    let r = c.fetch(https("/proxy-auth"));
    assert_eq!((r.code, text(&r)), (200, "[]".into()), "{}", error(&r));
    // ... and that second fetch reused the tunnel (one connection).
    assert_eq!(upstream.connections(), before + 1);

    // A bigger body through both sessions, several records each way.
    let mut r = via(format!("https://127.0.0.1:{tls_port}/"), &proxy_url);
    r.proxy_ca_certs = Some(proxy_pki.ca_file.clone());
    r.ca_certs = Some(target_pki.ca_file.clone());
    r.client_cert = Some(target_pki.client_cert_file.clone());
    r.client_key = Some(target_pki.client_key_file.clone());
    r.decompress_response = false;
    let r = c.fetch(r);
    assert_eq!(
        (r.code, text(&r)),
        (200, common::curl_sites::page()),
        "{}",
        error(&r)
    );

    // Other proxy TLS settings are another pool key: a new connection.
    let mut r = https("/whoami");
    r.proxy_ca_certs = None;
    r.proxy_validate_cert = false;
    let r = c.fetch(r);
    assert_eq!(r.code, 200, "{}", error(&r));
    assert_eq!(upstream.connections(), before + 2);
}

#[test]
fn a_proxy_certificate_no_ca_vouches_for_is_refused_by_default() {
    let target_pki = test_pki(&["localhost", "127.0.0.1"]);
    let proxy_pki = test_pki(&["localhost", "127.0.0.1"]);
    let site = nginx(Some(&target_pki));
    let upstream = connect_proxy();
    let proxy = nginx_tls_proxy(&proxy_pki, upstream.addr);
    let proxy_url = format!("https://127.0.0.1:{}", proxy.port);
    let c = Client::new();

    for url in [
        site.server.url("/whoami"),
        format!("https://127.0.0.1:{}/whoami", site.tls_port.unwrap()),
    ] {
        // The system's store does not know the test CA.
        let mut r = via(url.clone(), &proxy_url);
        r.ca_certs = Some(target_pki.ca_file.clone());
        let r = c.fetch(r);
        assert_eq!(r.code, 599, "{url}");
        assert_eq!(
            r.error.as_ref().and_then(kind_of),
            Some(FetchErrorKind::Tls)
        );
        assert!(
            error(&r).contains(&format!("https proxy 127.0.0.1:{}", proxy.port)),
            "{}",
            error(&r)
        );
        // The target's CA is not the proxy's: still refused.
        let mut r = via(url.clone(), &proxy_url);
        r.proxy_ca_certs = Some(target_pki.ca_file.clone());
        let r = c.fetch(r);
        assert_eq!(
            r.error.as_ref().and_then(kind_of),
            Some(FetchErrorKind::Tls),
            "{url}"
        );
        // Turning the target's checks off does not turn the proxy's off.
        let mut r = via(url.clone(), &proxy_url);
        r.validate_cert = false;
        let r = c.fetch(r);
        assert_eq!(
            r.error.as_ref().and_then(kind_of),
            Some(FetchErrorKind::Tls),
            "{url}"
        );
    }
    // Nothing reached the proxy behind nginx: every handshake failed first.
    assert!(upstream.requests().is_empty());

    // A "proxy" that does not speak TLS at all (nginx's plain port answers
    // the ClientHello with an HTTP 400).
    let r = c.fetch(via(
        site.server.url("/whoami"),
        &format!("https://127.0.0.1:{}", site.server.port),
    ));
    assert_eq!(
        r.error.as_ref().and_then(kind_of),
        Some(FetchErrorKind::Tls)
    );
    assert!(error(&r).contains("https proxy"), "{}", error(&r));
}

/// nghttpd (Debian's nghttp2-server) over TLS: the inner ALPN picks h2
/// inside the proxy's TLS, and a 1 MiB body comes through both sessions.
#[test]
fn http2_inside_the_tunnel_of_an_https_proxy() {
    let target_pki = test_pki(&["localhost", "127.0.0.1"]);
    let proxy_pki = test_pki(&["localhost", "127.0.0.1"]);
    let h2 = common::process_server::Server::start(
        "nghttpd (apt package nghttp2-server)",
        |port, dir| {
            std::fs::write(dir.join("big"), vec![b'n'; 1024 * 1024]).unwrap();
            std::fs::write(dir.join("key.pem"), &target_pki.key_pem).unwrap();
            std::fs::write(dir.join("cert.pem"), &target_pki.cert_pem).unwrap();
            let mut command = std::process::Command::new("/usr/sbin/nghttpd");
            command
                .args(["-a", "127.0.0.1", "-d"])
                .arg(dir)
                .arg(port.to_string())
                .arg(dir.join("key.pem"))
                .arg(dir.join("cert.pem"));
            command
        },
    );
    let upstream = connect_proxy();
    let proxy = nginx_tls_proxy(&proxy_pki, upstream.addr);
    let c = Client::new();
    for _ in 0..2 {
        let mut r = via(
            format!("https://127.0.0.1:{}/big", h2.port),
            &format!("https://127.0.0.1:{}", proxy.port),
        );
        r.proxy_ca_certs = Some(proxy_pki.ca_file.clone());
        r.ca_certs = Some(target_pki.ca_file.clone());
        let r = c.fetch(r);
        assert_eq!(r.code, 200, "{}", error(&r));
        assert_eq!(r.version, 20, "h2 by ALPN inside the tunnel");
        assert_eq!(r.body.len(), 1024 * 1024);
        assert!(r.body.iter().all(|&b| b == b'n'));
    }
    // Both fetches on one HTTP/2 connection through one tunnel.
    assert_eq!(upstream.connections(), 1);
}

/// An 8 MiB upload through both sessions: the writes fill the socket, so
/// the proxy session's records wait for it (the flusher sends them).
#[test]
fn a_large_upload_through_an_https_proxy() {
    let target_pki = test_pki(&["localhost", "127.0.0.1"]);
    let proxy_pki = test_pki(&["localhost", "127.0.0.1"]);
    let c = Client::new();
    let server = common::https_server::tls_server(
        &c.lp,
        &target_pki.cert_pem,
        &target_pki.key_pem,
        &[b"http/1.1"],
        |stream| async move {
            let Ok(head) = stream.read_until(b"\r\n\r\n", Some(65536)).await else {
                return;
            };
            let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            let Ok(body) = stream.read_bytes(length, false).await else {
                return;
            };
            let sum: u64 = body.iter().map(|&b| u64::from(b)).sum();
            let text = format!("{} {sum}", body.len());
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
            if let Ok(sent) = stream.write(reply.as_bytes()) {
                let _ = sent.value().await;
            }
        },
    );
    let upstream = connect_proxy();
    let proxy = nginx_tls_proxy(&proxy_pki, upstream.addr);
    let body: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let sum: u64 = body.iter().map(|&b| u64::from(b)).sum();
    let mut r = via(
        format!("https://127.0.0.1:{}/upload", server.local_addr().port()),
        &format!("https://127.0.0.1:{}", proxy.port),
    );
    r.method = "POST".into();
    r.body = Some(body);
    r.proxy_ca_certs = Some(proxy_pki.ca_file.clone());
    r.ca_certs = Some(target_pki.ca_file.clone());
    let r = c.fetch(r);
    assert_eq!(r.code, 200, "{}", error(&r));
    assert_eq!(text(&r), format!("{} {sum}", 8 * 1024 * 1024));
}

/// A proxy that accepts and never answers the ClientHello: the connect
/// timeout ends the fetch, and the message says it was the proxy's
/// handshake.
#[test]
fn a_stalling_https_proxy_times_out_naming_the_proxy() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let (conn, _) = silent.accept().unwrap();
        std::thread::sleep(Duration::from_secs(3));
        drop(conn);
    });
    let c = Client::new();
    let mut r = via(
        "https://127.0.0.1:9/".into(),
        &format!("https://127.0.0.1:{port}"),
    );
    r.connect_timeout = Some(Duration::from_millis(500));
    let started = std::time::Instant::now();
    let r = c.fetch(r);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        r.error.as_ref().and_then(kind_of),
        Some(FetchErrorKind::Timeout),
        "{}",
        error(&r)
    );
    assert!(
        error(&r).contains(&format!("TLS handshake with proxy 127.0.0.1:{port}")),
        "{}",
        error(&r)
    );
    held.join().unwrap();
}
