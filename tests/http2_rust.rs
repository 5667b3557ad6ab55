//! HTTP/2 against real servers on 127.0.0.1, each started by its test:
//! nginx with `http2` over TLS (a CA made at test time; ALPN picks h2),
//! nghttpd (Debian's nghttp2-server) with prior knowledge over plain TCP
//! (h2c), and tests/servers/h2_peer.py (Python's h2 package): an echo
//! server and hostile peers, one fault each. `.ci/run` installs them; a
//! missing one fails the test with the reason.

mod common;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::pki::test_pki;
use common::process_server::Server;

use tornado_rs::http::client::{AsyncHTTPClient, ClientOptions};
use tornado_rs::http::request::{HTTPRequest, StreamingCallback};
use tornado_rs::http::response::HTTPResponse;
use tornado_rs::http::upload::{BodyProducer, BodyWriter};
use tornado_rs::http::{kind_of, FetchErrorKind, HttpVersion};
use tornado_rs::{Future, IOLoop};

const PAGE: &str = "<html><body>hello over HTTP/2</body></html>\n";

/// nginx serving https with HTTP/2 (`listen ... ssl http2`), gzip on, with
/// a certificate for 127.0.0.1 from a CA made now (its file: `.1`).
fn nginx_h2() -> (Server, PathBuf) {
    nginx_h2_with("")
}

/// As [`nginx_h2`], with more `location` blocks.
fn nginx_h2_with(extra: &str) -> (Server, PathBuf) {
    let extra = extra.to_string();
    let pki = test_pki(&["127.0.0.1"]);
    let ca_file = pki.ca_file.clone();
    let server = Server::start("nginx", move |port, dir| {
        std::fs::create_dir_all(dir.join("html")).unwrap();
        std::fs::write(dir.join("html/index.html"), PAGE.repeat(40)).unwrap();
        std::fs::write(dir.join("html/big"), vec![b'b'; 3 * 1024 * 1024 + 7]).unwrap();
        std::fs::write(dir.join("cert.pem"), &pki.cert_pem).unwrap();
        std::fs::write(dir.join("key.pem"), &pki.key_pem).unwrap();
        std::fs::copy(&pki.ca_file, dir.join("ca.pem")).unwrap();
        let conf = format!(
            "daemon off; master_process off; worker_processes 1; error_log {d}/error.log; pid {d}/nginx.pid;
             events {{ worker_connections 256; }}
             http {{
               access_log off; client_body_temp_path {d}; proxy_temp_path {d};
               fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};
               gzip on; gzip_types *; gzip_min_length 0;
               server {{
                 listen 127.0.0.1:{port} ssl http2; root {d}/html;
                 ssl_certificate {d}/cert.pem; ssl_certificate_key {d}/key.pem;
                 location = /moved {{ return 301 /index.html; }}
                 location = /post {{ return 200 \"posted\\n\"; }}
                 location = /proto {{ return 200 \"$server_protocol\\n\"; }}
                 location = /host {{ return 200 \"$http_host|$host\\n\"; }}
                 {extra}
               }}
             }}",
            d = dir.display()
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        // The pki's files live in its temp dir: keep it until nginx read them.
        std::mem::forget(pki);
        let mut command = Command::new(nginx_path());
        command
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"));
        command
    });
    (server, ca_file)
}

fn nginx_path() -> &'static str {
    ["/usr/sbin/nginx", "nginx"]
        .into_iter()
        .find(|p| !p.starts_with('/') || Path::new(p).exists())
        .unwrap()
}

/// nghttpd serving a directory over h2c (prior knowledge, no TLS).
fn nghttpd() -> Server {
    Server::start("nghttpd (apt package nghttp2-server)", |port, dir| {
        std::fs::write(dir.join("index.html"), PAGE.repeat(10)).unwrap();
        std::fs::write(dir.join("big"), vec![b'n'; 1024 * 1024]).unwrap();
        let program = ["/usr/sbin/nghttpd", "nghttpd"]
            .into_iter()
            .find(|p| !p.starts_with('/') || Path::new(p).exists())
            .unwrap();
        let mut command = Command::new(program);
        command
            .arg("--no-tls")
            .arg("-a")
            .arg("127.0.0.1")
            .arg("-d")
            .arg(dir)
            .arg(port.to_string());
        command
    })
}

/// tests/servers/h2_peer.py in `mode` (see its doc).
fn h2_peer(mode: &str) -> Server {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/h2_peer.py");
    let mode = mode.to_string();
    Server::start(
        "tests/servers/h2_peer.py (python3 with the h2 package)",
        move |port, _| {
            let mut command = Command::new("python3");
            command.arg(script).arg(port.to_string()).arg(mode);
            command
        },
    )
}

fn h2c(url: String) -> HTTPRequest {
    let mut request = HTTPRequest::new(url);
    request.http_version = Some(HttpVersion::Http2PriorKnowledge);
    request.request_timeout = Some(Duration::from_secs(10));
    request
}

fn https(server: &Server, ca: &Path, path: &str) -> HTTPRequest {
    let mut request = HTTPRequest::new(format!("https://127.0.0.1:{}{}", server.port, path));
    request.ca_certs = Some(ca.to_path_buf());
    request.request_timeout = Some(Duration::from_secs(10));
    request
}

/// Runs every request at once on one client; the responses in order.
fn fetch_all(
    options: ClientOptions,
    requests: Vec<HTTPRequest>,
) -> (Vec<HTTPResponse>, AsyncHTTPClient, IOLoop) {
    let lp = IOLoop::new().unwrap();
    let client = AsyncHTTPClient::new(&lp, options).unwrap();
    let futures: Vec<Future<HTTPResponse>> = requests
        .into_iter()
        .map(|r| client.fetch(r).unwrap())
        .collect();
    lp.run_until(
        || futures.iter().all(|f| f.done()),
        Some(Duration::from_secs(30)),
    )
    .expect("every fetch done within 30 s");
    let responses = futures
        .iter()
        .map(|f| f.result().expect("done").expect("fetch futures resolve"))
        .collect();
    (responses, client, lp)
}

fn fetch(request: HTTPRequest) -> HTTPResponse {
    fetch_all(ClientOptions::default(), vec![request])
        .0
        .remove(0)
}

fn text(response: &HTTPResponse) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

fn json(response: &HTTPResponse) -> serde_json::Value {
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?} {}", response.error, text(response)))
}

fn kind(response: &HTTPResponse) -> Option<FetchErrorKind> {
    response.error.as_ref().and_then(kind_of)
}

/// The message of a fetch that must have failed.
fn message(response: &HTTPResponse) -> &str {
    response.error.as_ref().expect("the fetch failed").message()
}

// ---- nginx over TLS ----

#[test]
fn nginx_negotiates_h2_by_alpn_and_serves_get_head_post_gzip_and_redirects() {
    let (server, ca) = nginx_h2();
    let r = fetch(https(&server, &ca, "/index.html"));
    assert_eq!((r.code, r.version), (200, 20), "{:?}", r.error);
    assert_eq!(text(&r), PAGE.repeat(40), "decoded from gzip");
    assert_eq!(r.headers.get("content-encoding"), Some("gzip"));
    assert!(r.time_info.appconnect > 0.0 && r.time_info.starttransfer >= r.time_info.pretransfer);

    let r = fetch(https(&server, &ca, "/proto"));
    assert_eq!(text(&r), "HTTP/2.0\n", "nginx saw HTTP/2");
    let r = fetch(https(&server, &ca, "/host"));
    let port = server.port;
    assert_eq!(
        text(&r),
        format!("127.0.0.1:{port}|127.0.0.1\n"),
        ":authority carries Host"
    );

    let mut head = https(&server, &ca, "/index.html");
    head.method = "HEAD".into();
    let r = fetch(head);
    assert_eq!(
        (r.code, r.body.len(), r.version),
        (200, 0, 20),
        "{:?}",
        r.error
    );

    let mut post = https(&server, &ca, "/post");
    post.method = "POST".into();
    post.body = Some(vec![b'p'; 300 * 1024]);
    let r = fetch(post);
    assert_eq!(
        (r.code, text(&r).as_str()),
        (200, "posted\n"),
        "{:?}",
        r.error
    );

    let r = fetch(https(&server, &ca, "/moved"));
    assert_eq!((r.code, r.version), (200, 20), "{:?}", r.error);
    assert!(r.effective_url.ends_with("/index.html"));

    let r = fetch(https(&server, &ca, "/big"));
    assert_eq!(
        (r.code, r.body.len()),
        (200, 3 * 1024 * 1024 + 7),
        "{:?}",
        r.error
    );
}

#[test]
fn a_redirect_hop_may_change_protocol() {
    let h1 = Server::start("python3 -m http.server", |port, dir| {
        std::fs::write(dir.join("plain.txt"), "over http/1\n").unwrap();
        let mut command = Command::new("python3");
        command
            .args(["-m", "http.server", "--bind", "127.0.0.1", "-d"])
            .arg(dir)
            .arg(port.to_string());
        command
    });
    let (server, ca) = nginx_h2_with(&format!(
        "location = /to-h1 {{ return 302 {}; }}",
        h1.url("/plain.txt")
    ));
    let lines = Rc::new(RefCell::new(Vec::<String>::new()));
    let seen = lines.clone();
    let mut request = https(&server, &ca, "/to-h1");
    request.header_callback = Some(Rc::new(move |line: &[u8]| {
        seen.borrow_mut()
            .push(String::from_utf8_lossy(line).into_owned())
    }));
    let r = fetch(request);
    assert_eq!(
        (r.code, r.version, text(&r).as_str()),
        (200, 10, "over http/1\n"),
        "{:?}",
        r.error
    );
    // The callback saw the final (HTTP/1) head only, not the followed 302.
    assert!(
        lines.borrow()[0].starts_with("HTTP/1.0 200"),
        "{:?}",
        lines.borrow()
    );
}

#[test]
fn nginx_http1_only_and_the_client_default() {
    let (server, ca) = nginx_h2();
    let mut one = https(&server, &ca, "/proto");
    one.http_version = Some(HttpVersion::Http1Only);
    let r = fetch(one);
    assert_eq!(
        (text(&r).as_str(), r.version),
        ("HTTP/1.1\n", 11),
        "{:?}",
        r.error
    );

    let options = ClientOptions {
        http_version: HttpVersion::Http1Only,
        ..Default::default()
    };
    let (r, _, _) = fetch_all(options, vec![https(&server, &ca, "/proto")]);
    assert_eq!(
        r[0].version, 11,
        "the client default applies: {:?}",
        r[0].error
    );
}

#[test]
fn nginx_many_fetches_share_one_h2_connection() {
    let (server, ca) = nginx_h2();
    let options = ClientOptions {
        max_clients: 50,
        ..Default::default()
    };
    let requests = (0..200)
        .map(|_| https(&server, &ca, "/index.html"))
        .collect();
    let (responses, client, _lp) = fetch_all(options, requests);
    for r in &responses {
        assert_eq!((r.code, r.version), (200, 20), "{:?}", r.error);
        assert_eq!(r.body.len(), PAGE.len() * 40);
    }
    assert_eq!(
        client.connections_opened(),
        1,
        "racing fetches waited for the first connection"
    );
    assert_eq!(client.http2_connections(), 1);
}

// ---- h2c with prior knowledge ----

#[test]
fn nghttpd_h2c_prior_knowledge() {
    let server = nghttpd();
    let r = fetch(h2c(server.url("/index.html")));
    assert_eq!((r.code, r.version), (200, 20), "{:?}", r.error);
    assert_eq!(text(&r), PAGE.repeat(10));
    let r = fetch(h2c(server.url("/big")));
    assert_eq!((r.code, r.body.len()), (200, 1024 * 1024), "{:?}", r.error);
    let r = fetch(h2c(server.url("/missing")));
    assert_eq!(r.code, 404);
    // Without prior knowledge, plain http stays HTTP/1.1: nghttpd does not
    // speak it, so the fetch fails (it never sends HTTP/2 unasked).
    let mut plain = HTTPRequest::new(server.url("/index.html"));
    plain.request_timeout = Some(Duration::from_secs(3));
    let r = fetch(plain);
    assert!(r.error.is_some() && r.version != 20, "{:?}", r.code);
}

#[test]
fn echo_sees_http2_fields_and_bodies() {
    let server = h2_peer("echo");
    let mut request = h2c(server.url("/echo?x=1"));
    request.method = "POST".into();
    request.headers.add("X-Mixed-Case", "kept");
    request.headers.add("Connection", "keep-alive");
    request.headers.add("Keep-Alive", "timeout=5");
    request.headers.add("TE", "gzip");
    request.body = Some(b"hello h2".to_vec());
    let r = fetch(request);
    assert_eq!((r.code, r.version), (200, 20), "{:?}", r.error);
    let seen = json(&r);
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["path"], "/echo?x=1");
    assert_eq!(seen["scheme"], "http");
    assert_eq!(seen["authority"], format!("127.0.0.1:{}", server.port));
    assert_eq!(seen["body"], "hello h2");
    let names: Vec<String> = seen["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h[0].as_str().unwrap().to_string())
        .collect();
    assert!(names.contains(&"x-mixed-case".to_string()), "{names:?}");
    for gone in [
        "connection",
        "keep-alive",
        "te",
        "host",
        "transfer-encoding",
    ] {
        assert!(!names.contains(&gone.to_string()), "{gone} sent: {names:?}");
    }
    assert!(names.iter().all(|n| *n == n.to_lowercase()), "{names:?}");

    // A pulled body producer, 1 MiB, through the server's windows.
    let mut upload = h2c(server.url("/echo"));
    upload.method = "PUT".into();
    let left = Rc::new(RefCell::new(16));
    upload.body_producer = Some(BodyProducer::pull(move || {
        let mut left = left.borrow_mut();
        if *left == 0 {
            return Ok(None);
        }
        *left -= 1;
        Ok(Some(vec![b'u'; 64 * 1024]))
    }));
    let r = fetch(upload);
    assert_eq!(json(&r)["body_len"], 1024 * 1024, "{:?}", r.error);

    let r = fetch(h2c(server.url("/gzip")));
    assert_eq!(
        text(&r),
        "compressed over h2\n".repeat(100),
        "{:?}",
        r.error
    );

    // max_body_size over the declared length, and over the decoded body.
    let options = ClientOptions {
        max_body_size: 1000,
        ..Default::default()
    };
    let (r, _, _) = fetch_all(
        options.clone(),
        vec![h2c(server.url("/big?n=5000")), h2c(server.url("/gzip"))],
    );
    assert_eq!(
        kind(&r[0]),
        Some(FetchErrorKind::BodyTooLarge),
        "{:?}",
        r[0].error
    );
    assert_eq!(
        kind(&r[1]),
        Some(FetchErrorKind::BodyTooLarge),
        "{:?}",
        r[1].error
    );
}

/// `TE: Trailers` goes as h2 wants it (exactly "trailers"), and a request
/// h2 would refuse no longer throws the shared connection away; a
/// 100-continue request sends its body at once without the field (h2
/// hides 1xx, so there is nothing to wait for).
#[test]
fn te_trailers_and_expect_over_h2_keep_the_connection() {
    let server = h2_peer("echo");
    let mut te = h2c(server.url("/echo"));
    te.headers.add("TE", "Trailers");
    let mut expect = h2c(server.url("/echo"));
    expect.method = "PUT".into();
    expect.expect_100_continue = true;
    expect.body = Some(b"at once".to_vec());
    let plain = h2c(server.url("/echo"));
    let (r, client, _lp) = fetch_all(ClientOptions::default(), vec![te, expect, plain]);
    for response in &r {
        assert_eq!(
            (response.code, response.version),
            (200, 20),
            "{:?}",
            response.error
        );
    }
    let fields = |response: &HTTPResponse| -> Vec<(String, String)> {
        json(response)["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h[0].as_str().unwrap().into(), h[1].as_str().unwrap().into()))
            .collect()
    };
    assert!(
        fields(&r[0]).contains(&("te".into(), "trailers".into())),
        "{:?}",
        fields(&r[0])
    );
    assert!(
        fields(&r[1]).iter().all(|(n, _)| n != "expect"),
        "{:?}",
        fields(&r[1])
    );
    assert_eq!(json(&r[1])["body"], "at once");
    assert_eq!(client.connections_opened(), 1);
}

#[test]
fn echo_header_and_streaming_callbacks() {
    let server = h2_peer("echo");
    let lines = Rc::new(RefCell::new(Vec::<String>::new()));
    let chunks = Rc::new(RefCell::new(0usize));
    let mut request = h2c(server.url("/big?n=200000"));
    let seen = lines.clone();
    request.header_callback = Some(Rc::new(move |line: &[u8]| {
        seen.borrow_mut()
            .push(String::from_utf8_lossy(line).into_owned())
    }));
    let count = chunks.clone();
    request.streaming_callback = Some(StreamingCallback::new(move |data: &[u8]| {
        *count.borrow_mut() += data.len()
    }));
    let r = fetch(request);
    assert_eq!((r.code, r.body.len()), (200, 0), "{:?}", r.error);
    assert_eq!(*chunks.borrow(), 200000);
    let lines = lines.borrow();
    assert_eq!(lines.first().map(String::as_str), Some("HTTP/2 200\r\n"));
    assert!(
        lines.contains(&"content-length: 200000\r\n".to_string()),
        "{lines:?}"
    );
    assert_eq!(lines.last().map(String::as_str), Some("\r\n"));
}

#[test]
fn paused_consumer_stalls_only_its_own_stream() {
    let server = h2_peer("echo");
    let lp = IOLoop::new().unwrap();
    let client = AsyncHTTPClient::new(&lp, ClientOptions::default()).unwrap();
    // The first fetch's consumer pauses on its first chunk until released.
    let gate: Future<()> = Future::new(&lp);
    let held = gate.clone();
    let got = Rc::new(RefCell::new(0usize));
    let count = got.clone();
    let mut paused = h2c(server.url("/big?n=8000000"));
    paused.streaming_callback = Some(StreamingCallback::pausing(move |data: &[u8]| {
        *count.borrow_mut() += data.len();
        Ok(Some(held.clone()))
    }));
    let slow = client.fetch(paused).unwrap();
    // Let it start, then fetch more on the same connection.
    lp.run_until(|| *got.borrow() > 0, Some(Duration::from_secs(10)))
        .expect("the paused fetch got its first chunk");
    let others: Vec<_> = (0..3)
        .map(|_| client.fetch(h2c(server.url("/big?n=3000000"))).unwrap())
        .collect();
    lp.run_until(
        || others.iter().all(|f| f.done()),
        Some(Duration::from_secs(20)),
    )
    .expect("the other streams finish while one consumer is paused");
    for f in &others {
        let r = f.result().unwrap().unwrap();
        assert_eq!((r.code, r.body.len()), (200, 3000000), "{:?}", r.error);
    }
    assert!(!slow.done(), "the paused fetch waits");
    assert!(
        *got.borrow() <= 2 * 1024 * 1024 + 64 * 1024,
        "the stream window bounds what a paused consumer holds: {}",
        got.borrow()
    );
    assert_eq!(client.connections_opened(), 1);
    let _ = gate.set_result(());
    lp.run_until(|| slow.done(), Some(Duration::from_secs(20)))
        .expect("resumed, the paused fetch finishes");
    let r = slow.result().unwrap().unwrap();
    assert_eq!(r.code, 200, "{:?}", r.error);
    assert_eq!(*got.borrow(), 8000000);
}

#[test]
fn cancelling_one_fetch_resets_only_its_stream() {
    let server = h2_peer("echo");
    let lp = IOLoop::new().unwrap();
    let client = AsyncHTTPClient::new(&lp, ClientOptions::default()).unwrap();
    let gate: Future<()> = Future::new(&lp);
    let held = gate.clone();
    let mut paused = h2c(server.url("/big?n=8000000"));
    let started = Rc::new(RefCell::new(false));
    let mark = started.clone();
    paused.streaming_callback = Some(StreamingCallback::pausing(move |_: &[u8]| {
        *mark.borrow_mut() = true;
        Ok(Some(held.clone()))
    }));
    let doomed = client.fetch(paused).unwrap();
    lp.run_until(|| *started.borrow(), Some(Duration::from_secs(10)))
        .unwrap();
    doomed.cancel().unwrap();
    let next = client.fetch(h2c(server.url("/echo"))).unwrap();
    lp.run_until(|| next.done(), Some(Duration::from_secs(10)))
        .unwrap();
    let r = next.result().unwrap().unwrap();
    assert_eq!((r.code, r.version), (200, 20), "{:?}", r.error);
    assert_eq!(client.connections_opened(), 1, "the connection carried on");
}

// ---- faults ----

#[test]
fn goaway_retries_the_streams_left_out_and_fails_the_cut_one() {
    let server = h2_peer("goaway");
    let (r, client, _lp) = fetch_all(
        ClientOptions::default(),
        vec![h2c(server.url("/first")), h2c(server.url("/second"))],
    );
    // The first stream was processed, then cut: a clear error, no retry.
    assert!(r[0].error.is_some(), "{}", r[0].code);
    assert!(
        matches!(
            kind(&r[0]),
            Some(FetchErrorKind::Closed | FetchErrorKind::Protocol)
        ),
        "{:?}",
        r[0].error
    );
    // The second was above last-stream-id: retried on a new connection.
    assert_eq!(r[1].code, 200, "{:?}", r[1].error);
    assert_eq!(r[1].headers.get("x-connection"), Some("2"));
    assert_eq!(client.connections_opened(), 2);
}

#[test]
fn rst_stream_fails_that_stream_and_others_carry_on() {
    let server = h2_peer("rst");
    let (r, client, _lp) = fetch_all(
        ClientOptions::default(),
        vec![h2c(server.url("/rst")), h2c(server.url("/fine"))],
    );
    assert_eq!(
        kind(&r[0]),
        Some(FetchErrorKind::Protocol),
        "{:?}",
        r[0].error
    );
    assert!(message(&r[0]).contains("INTERNAL_ERROR"));
    assert_eq!(r[1].code, 200, "{:?}", r[1].error);
    assert_eq!(client.connections_opened(), 1);
}

#[test]
fn refused_stream_is_retried() {
    let server = h2_peer("refused");
    let r = fetch(h2c(server.url("/once")));
    assert_eq!(r.code, 200, "{:?}", r.error);
    let stats = fetch(h2c(server.url("/stats")));
    assert_eq!(json(&stats)["requests"], 3, "refused, retried, then /stats");
}

#[test]
fn zero_window_forever_ends_in_the_request_timeout() {
    let server = h2_peer("zero_window");
    let mut request = h2c(server.url("/upload"));
    request.method = "POST".into();
    // More than the 64 KiB window the server never reopens.
    request.body = Some(vec![b'z'; 300 * 1024]);
    request.request_timeout = Some(Duration::from_millis(800));
    let start = Instant::now();
    let r = fetch(request);
    assert_eq!(kind(&r), Some(FetchErrorKind::Timeout), "{:?}", r.error);
    assert!(r
        .error
        .unwrap()
        .message()
        .contains("Timeout during request"));
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn bad_frame_is_a_protocol_error() {
    let server = h2_peer("bad_frame");
    let start = Instant::now();
    let r = fetch(h2c(server.url("/x")));
    assert_eq!(kind(&r), Some(FetchErrorKind::Protocol), "{:?}", r.error);
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn header_list_over_the_limit_is_header_too_large() {
    let server = h2_peer("big_headers");
    let start = Instant::now();
    let r = fetch(h2c(server.url("/x")));
    assert_eq!(
        kind(&r),
        Some(FetchErrorKind::HeaderTooLarge),
        "{:?}",
        r.error
    );
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn max_concurrent_streams_1_queues_fetches_on_one_connection() {
    let server = h2_peer("max_streams_1");
    let requests = (0..5).map(|i| h2c(server.url(&format!("/n{i}")))).collect();
    let (r, client, _lp) = fetch_all(ClientOptions::default(), requests);
    for response in &r {
        assert_eq!(response.code, 200, "{:?}", response.error);
    }
    let stats = fetch(h2c(server.url("/stats")));
    assert_eq!(json(&stats)["max_concurrent"], 1, "{}", text(&stats));
    assert!(client.connections_opened() <= 5);
}

#[test]
fn continuation_flood_ends_the_fetch_with_bounded_memory() {
    // h2 refuses the endless header block (a connection error: protocol);
    // the flooding peer, writing into a closed connection, sometimes resets
    // it first (closed). Either way the fetch ends at once.
    let server = h2_peer("continuation");
    let start = Instant::now();
    let r = fetch(h2c(server.url("/x")));
    assert!(
        matches!(
            kind(&r),
            Some(FetchErrorKind::Protocol | FetchErrorKind::Closed)
        ),
        "{:?}",
        r.error
    );
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );
}

// ---- writing body producers (Tornado's body_producer(write)) ----

/// The hex SHA-256 of `data` (as the echo server reports a body's).
fn sha256_hex(data: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes a producer sends: `n` bytes of a pattern (so a reordered or
/// lost piece changes the hash).
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// What a writing producer saw: writes whose futures completed, and the
/// error of the first that failed.
#[derive(Default)]
struct Writes {
    completed: usize,
    failed: Option<tornado_rs::Error>,
}

/// A producer that writes `body` in `piece`-byte writes. `wait`: each write
/// waits for the one before (flow control); else everything is written at
/// once. Its future is done when the last write's is.
fn writing_producer(
    body: Vec<u8>,
    piece: usize,
    wait: bool,
) -> (BodyProducer, Rc<RefCell<Writes>>) {
    let seen = Rc::new(RefCell::new(Writes::default()));
    let log = seen.clone();
    let producer = BodyProducer::writer(move |writer: BodyWriter| {
        let lp = writer.loop_ref().clone();
        let done: Future<()> = Future::new(&lp);
        let (body, log, finished) = (body.clone(), log.clone(), done.clone());
        lp.spawn(async move {
            let mut pending = Vec::new();
            for chunk in body.chunks(piece) {
                let written = writer.write(chunk);
                if wait {
                    if let Err(e) = written.value().await {
                        log.borrow_mut().failed.get_or_insert(e.clone());
                        let _ = finished.set_error(e);
                        return;
                    }
                    log.borrow_mut().completed += 1;
                } else {
                    pending.push(written);
                }
            }
            for written in pending {
                match written.value().await {
                    Ok(()) => log.borrow_mut().completed += 1,
                    Err(e) => {
                        log.borrow_mut().failed.get_or_insert(e);
                    }
                }
            }
            let _ = finished.set_result(());
        })
        .unwrap();
        done
    });
    (producer, seen)
}

#[test]
fn writing_producer_over_h2_sends_bodies_past_the_first_window() {
    let server = h2_peer("echo");
    // 1 MiB + 5 in 16 KiB writes, each waiting for the one before: the
    // server's 64 KiB windows open as it reads.
    let body = pattern(1024 * 1024 + 5);
    let (producer, writes) = writing_producer(body.clone(), 16 * 1024, true);
    let mut upload = h2c(server.url("/echo"));
    upload.method = "PUT".into();
    upload.body_producer = Some(producer);
    let r = fetch(upload);
    assert_eq!((r.code, r.version), (200, 20), "{:?}", r.error);
    let seen = json(&r);
    assert_eq!(seen["body_len"], body.len(), "{:?}", r.error);
    assert_eq!(seen["body_sha256"], sha256_hex(&body));
    assert_eq!(writes.borrow().completed, body.len().div_ceil(16 * 1024));
    assert!(writes.borrow().failed.is_none());

    // Written all at once (no waiting), with a Content-Length: sent in order.
    let body = pattern(300 * 1024);
    let (producer, writes) = writing_producer(body.clone(), 10_000, false);
    let mut upload = h2c(server.url("/echo"));
    upload.method = "POST".into();
    upload.headers.add("Content-Length", body.len().to_string());
    upload.body_producer = Some(producer);
    let r = fetch(upload);
    let seen = json(&r);
    assert_eq!(seen["body_sha256"], sha256_hex(&body), "{:?}", r.error);
    let content_length = seen["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0] == "content-length")
        .map(|h| h[1].as_str().unwrap().to_string());
    assert_eq!(content_length, Some(body.len().to_string()));
    assert_eq!(writes.borrow().completed, body.len().div_ceil(10_000));
}

#[test]
fn writing_producer_over_h2_to_nginx() {
    // nginx's WebDAV PUT keeps the body as a file, which a GET then reads
    // back: what nginx received, byte for byte (more than its 64 KiB
    // initial window).
    let (server, ca) = nginx_h2_with(
        "location /dav/ { dav_methods PUT; create_full_put_path on; client_max_body_size 10m; }",
    );
    let body = pattern(700 * 1024 + 3);
    let (producer, writes) = writing_producer(body.clone(), 8 * 1024, true);
    let mut put = https(&server, &ca, "/dav/upload.bin");
    put.method = "PUT".into();
    put.body_producer = Some(producer);
    let r = fetch(put);
    assert_eq!((r.code, r.version), (201, 20), "{:?}", r.error);
    assert_eq!(writes.borrow().completed, body.len().div_ceil(8 * 1024));
    let mut get = https(&server, &ca, "/dav/upload.bin");
    get.decompress_response = false;
    let r = fetch(get);
    assert_eq!(r.code, 200, "{:?}", r.error);
    assert_eq!(r.body.len(), body.len());
    assert!(r.body[..] == body[..], "nginx stored the body as sent");
}

#[test]
fn writing_producer_is_paused_while_the_window_is_closed() {
    // The server never opens its window: 64 KiB go, then the producer's
    // write waits until the request timeout ends the fetch, and the write
    // waiting then fails instead of hanging.
    let server = h2_peer("zero_window");
    let (producer, writes) = writing_producer(pattern(1024 * 1024), 16 * 1024, true);
    let mut upload = h2c(server.url("/upload"));
    upload.method = "POST".into();
    upload.body_producer = Some(producer);
    upload.request_timeout = Some(Duration::from_millis(800));
    let start = Instant::now();
    let lp = IOLoop::new().unwrap();
    let client = AsyncHTTPClient::new(&lp, ClientOptions::default()).unwrap();
    let f = client.fetch(upload).unwrap();
    lp.run_until(
        || f.done() && writes.borrow().failed.is_some(),
        Some(Duration::from_secs(10)),
    )
    .expect("the fetch ends and the waiting write fails");
    let r = f.result().unwrap().unwrap();
    assert_eq!(kind(&r), Some(FetchErrorKind::Timeout), "{:?}", r.error);
    assert!(r
        .error
        .unwrap()
        .message()
        .contains("Timeout during request"));
    assert!(start.elapsed() < Duration::from_secs(5));
    let completed = writes.borrow().completed;
    // 65,535 bytes of window: three 16 KiB writes went, the fourth waits.
    assert_eq!(
        completed, 3,
        "the writes the first window took, and no more"
    );
    let failed = writes.borrow_mut().failed.take().unwrap();
    assert_eq!(failed.code(), tornado_rs::error::Code::CLOSED, "{failed:?}");
}

#[test]
fn writing_producer_over_h2_errors_fail_the_fetch() {
    let server = h2_peer("echo");
    // Short of its Content-Length.
    let (producer, _) = writing_producer(pattern(1000), 100, true);
    let mut short = h2c(server.url("/echo"));
    short.method = "POST".into();
    short.headers.add("Content-Length", "2000");
    short.body_producer = Some(producer);
    // Past it: that write fails, and so does the fetch.
    let (producer, past_writes) = writing_producer(pattern(3000), 1000, true);
    let mut past = h2c(server.url("/echo"));
    past.method = "POST".into();
    past.headers.add("Content-Length", "2500");
    past.body_producer = Some(producer);
    // The producer's own error.
    let mut failing = h2c(server.url("/echo"));
    failing.method = "POST".into();
    failing.body_producer = Some(BodyProducer::writer(|writer: BodyWriter| {
        let failed = Future::new(writer.loop_ref());
        let _ = writer.write(b"some");
        let _ = failed.set_error(tornado_rs::Error::new(
            tornado_rs::error::Code::USER,
            "the producer gave up",
        ));
        failed
    }));
    let (r, client, _lp) = fetch_all(ClientOptions::default(), vec![short, past, failing]);
    assert_eq!(
        kind(&r[0]),
        Some(FetchErrorKind::InvalidRequest),
        "{:?}",
        r[0].error
    );
    assert!(message(&r[0]).contains("gave 1000 of the 2000"));
    assert_eq!(
        kind(&r[1]),
        Some(FetchErrorKind::InvalidRequest),
        "{:?}",
        r[1].error
    );
    assert!(message(&r[1]).contains("more than the 2500"));
    assert_eq!(past_writes.borrow().completed, 2);
    let error = r[2]
        .error
        .as_ref()
        .expect("the producer's error fails the fetch");
    assert!(
        error.message().contains("the producer gave up"),
        "{error:?}"
    );
    assert!(r.iter().all(|r| r.version != 11));
    // The connection carried on: the streams were reset, not the connection.
    let next = fetch(h2c(server.url("/echo")));
    assert_eq!(next.code, 200, "{:?}", next.error);
    assert_eq!(client.connections_opened(), 1);
}

// ---- through a proxy ----

#[test]
fn https_through_a_connect_proxy_negotiates_h2_inside_the_tunnel() {
    let (server, ca) = nginx_h2();
    let proxy = common::connect_proxy::connect_proxy();
    let requests = (0..5)
        .map(|_| {
            let mut request = https(&server, &ca, "/proto");
            request.proxy_host = Some("127.0.0.1".into());
            request.proxy_port = Some(proxy.addr.port());
            request
        })
        .collect();
    let (r, client, _lp) = fetch_all(ClientOptions::default(), requests);
    for response in &r {
        assert_eq!(
            (response.code, response.version, text(response).as_str()),
            (200, 20, "HTTP/2.0\n"),
            "{:?}",
            response.error
        );
    }
    let seen = proxy.requests();
    assert_eq!(seen.len(), 1, "one tunnel carries every stream");
    assert_eq!(seen[0].method, "CONNECT");
    assert_eq!(seen[0].target, format!("127.0.0.1:{}", server.port));
    assert_eq!(
        (client.connections_opened(), client.http2_connections()),
        (1, 1)
    );
}

// ---- GOAWAY with streams above last-stream-id ----

/// Three fetches at once to a peer that sends GOAWAY(last-stream-id = the
/// first, `code`) once all three are open.
fn goaway_three(how: &str, code: &str) -> (Vec<HTTPResponse>, AsyncHTTPClient) {
    let server = h2_peer(&format!("goaway3_{how}_{code}"));
    let requests = (0..3).map(|i| h2c(server.url(&format!("/n{i}")))).collect();
    let (r, client, _lp) = fetch_all(ClientOptions::default(), requests);
    (r, client)
}

/// The responses that came from connection `n` of the peer.
fn on_connection(r: &[HTTPResponse], n: &str) -> usize {
    r.iter()
        .filter(|r| r.headers.get("x-connection") == Some(n))
        .count()
}

#[test]
fn goaway_with_an_error_code_retries_the_streams_above_last_stream_id() {
    for code in ["PROTOCOL_ERROR", "INTERNAL_ERROR", "NO_ERROR"] {
        let (r, client) = goaway_three("done", code);
        for response in &r {
            assert_eq!(response.code, 200, "{code}: {:?}", response.error);
        }
        assert_eq!(on_connection(&r, "1"), 1, "{code}: the first was answered");
        assert_eq!(
            on_connection(&r, "2"),
            2,
            "{code}: both streams left out went once more, on one new connection"
        );
        assert_eq!(client.connections_opened(), 2, "{code}");
    }
}

#[test]
fn goaway_cutting_a_processed_stream_fails_it_clearly() {
    for (code, expected) in [
        ("INTERNAL_ERROR", FetchErrorKind::Protocol),
        ("NO_ERROR", FetchErrorKind::Closed),
    ] {
        let (r, client) = goaway_three("cut", code);
        let failed: Vec<_> = r.iter().filter(|r| r.error.is_some()).collect();
        assert_eq!(failed.len(), 1, "{code}: only the processed stream fails");
        let error = failed[0].error.as_ref().unwrap();
        assert_eq!(kind(failed[0]), Some(expected), "{code}: {error:?}");
        assert!(
            error.message().contains("GOAWAY") && error.message().contains(code),
            "{code}: the message names the GOAWAY: {error:?}"
        );
        assert_eq!(on_connection(&r, "2"), 2, "{code}: the others were retried");
        assert_eq!(client.connections_opened(), 2, "{code}");
    }
}

// ---- PING liveness of idle pooled connections ----

/// Two fetches on one client, the second after the connection was idle
/// 400 ms (PINGed after 200 ms idle, 300 ms for the PONG).
fn fetch_after_idle(server: &Server) -> (HTTPResponse, HTTPResponse, AsyncHTTPClient, Duration) {
    let lp = IOLoop::new().unwrap();
    let options = ClientOptions {
        http2_ping_after_idle: Some(Duration::from_millis(200)),
        http2_ping_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let client = AsyncHTTPClient::new(&lp, options).unwrap();
    let first = client.fetch(h2c(server.url("/one"))).unwrap();
    lp.run_until(|| first.done(), Some(Duration::from_secs(10)))
        .unwrap();
    let idle = tornado_rs::gen::sleep(&lp, Duration::from_millis(400)).unwrap();
    lp.run_until(|| idle.done(), Some(Duration::from_secs(5)))
        .unwrap();
    let start = Instant::now();
    let second = client.fetch(h2c(server.url("/two"))).unwrap();
    lp.run_until(|| second.done(), Some(Duration::from_secs(10)))
        .unwrap();
    let took = start.elapsed();
    (
        first.result().unwrap().unwrap(),
        second.result().unwrap().unwrap(),
        client,
        took,
    )
}

#[test]
fn an_idle_connection_that_answers_ping_is_reused() {
    let server = h2_peer("echo");
    let (first, second, client, _) = fetch_after_idle(&server);
    assert_eq!(first.code, 200, "{:?}", first.error);
    assert_eq!(second.code, 200, "{:?}", second.error);
    assert_eq!(second.headers.get("x-connection"), Some("1"));
    assert_eq!(client.connections_opened(), 1);
}

#[test]
fn an_idle_connection_whose_peer_went_quiet_is_dropped_before_reuse() {
    let server = h2_peer("silent");
    let (first, second, client, took) = fetch_after_idle(&server);
    assert_eq!(
        first.headers.get("x-connection"),
        Some("1"),
        "{:?}",
        first.error
    );
    // Without the PING, the request would go to the quiet peer and end in
    // its 10 s request timeout.
    assert_eq!(second.code, 200, "{:?}", second.error);
    assert_eq!(second.headers.get("x-connection"), Some("2"));
    assert_eq!(client.connections_opened(), 2);
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(client.http2_connections(), 1, "the quiet one was dropped");
}

/// A fetch that ends (its request timeout) while its PING is out leaves
/// that PING to the next check, which waits for its PONG instead of
/// sending a second one (h2 allows one in flight): the healthy connection
/// is kept.
#[test]
fn a_ping_check_cut_short_does_not_condemn_the_connection() {
    let server = h2_peer("slow_pong");
    let lp = IOLoop::new().unwrap();
    let options = ClientOptions {
        http2_ping_after_idle: Some(Duration::from_millis(200)),
        http2_ping_timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let client = AsyncHTTPClient::new(&lp, options).unwrap();
    let run = |request: HTTPRequest| -> HTTPResponse {
        let f = client.fetch(request).unwrap();
        lp.run_until(|| f.done(), Some(Duration::from_secs(10)))
            .unwrap();
        f.result().unwrap().unwrap()
    };
    let first = run(h2c(server.url("/one")));
    assert_eq!(first.code, 200, "{:?}", first.error);
    let idle = tornado_rs::gen::sleep(&lp, Duration::from_millis(400)).unwrap();
    lp.run_until(|| idle.done(), Some(Duration::from_secs(5)))
        .unwrap();
    let mut hasty = h2c(server.url("/two"));
    hasty.request_timeout = Some(Duration::from_millis(100));
    let cut = run(hasty);
    assert_eq!(kind(&cut), Some(FetchErrorKind::Timeout), "{:?}", cut.error);
    let third = run(h2c(server.url("/three")));
    assert_eq!(third.code, 200, "{:?}", third.error);
    assert_eq!(third.headers.get("x-connection"), Some("1"));
    assert_eq!(client.connections_opened(), 1);
}

#[test]
fn writing_producer_failing_while_the_window_is_closed_fails_the_fetch_at_once() {
    let server = h2_peer("zero_window");
    let mut upload = h2c(server.url("/upload"));
    upload.method = "POST".into();
    upload.request_timeout = Some(Duration::from_secs(10));
    // 256 KiB written at once (the window takes 64 KiB), then, 100 ms
    // later, the producer fails.
    upload.body_producer = Some(BodyProducer::writer(|writer: BodyWriter| {
        let lp = writer.loop_ref().clone();
        for _ in 0..16 {
            let _ = writer.write(&[b'w'; 16 * 1024]);
        }
        let failed = Future::new(&lp);
        let failing = failed.clone();
        lp.call_later(Duration::from_millis(100), move || {
            let _ = failing.set_error(tornado_rs::Error::new(
                tornado_rs::error::Code::USER,
                "the producer's source broke",
            ));
        })
        .unwrap();
        failed
    }));
    let start = Instant::now();
    let r = fetch(upload);
    let error = r.error.expect("the producer's error fails the fetch");
    assert!(error.message().contains("source broke"), "{error:?}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}
