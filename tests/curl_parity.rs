//! What curl users check for first (issue 19), each against a real server
//! started on loopback for the test: brotli and zstd bodies from nginx
//! (pre-compressed static files served with their Content-Encoding, as
//! Debian's nginx has no brotli or zstd module), nginx on a Unix domain
//! socket, SOCKS5/5h through Debian's microsocks and SOCKS4/4a (and
//! misbehaving proxies) through tests/servers/socks_server.py, and
//! httpbin's cookie endpoints under gunicorn. `.ci/run` installs them; a
//! missing server fails the test, it is never skipped.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::time::Duration;

use common::curl_sites::{microsocks, nginx, page};
use common::process_server::{httpbin, Server};

use tornado_rs::http::client::{AsyncHTTPClient, ClientOptions};
use tornado_rs::http::request::{HTTPRequest, StreamingCallback};
use tornado_rs::http::response::HTTPResponse;
use tornado_rs::http::{kind_of, FetchErrorKind};
use tornado_rs::IOLoop;

struct Client {
    lp: IOLoop,
    client: AsyncHTTPClient,
}

impl Client {
    fn new(options: ClientOptions) -> Client {
        let lp = IOLoop::new().unwrap();
        let client = AsyncHTTPClient::new(&lp, options).unwrap();
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

fn get(url: String) -> HTTPRequest {
    let mut r = HTTPRequest::new(url);
    r.request_timeout = Some(Duration::from_secs(10));
    r.connect_timeout = Some(Duration::from_secs(5));
    r
}

fn text(r: &HTTPResponse) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

fn kind(r: &HTTPResponse) -> Option<FetchErrorKind> {
    r.error.as_ref().and_then(kind_of)
}

fn error(r: &HTTPResponse) -> String {
    r.error
        .as_ref()
        .map(|e| e.message().to_string())
        .unwrap_or_default()
}

// ---- brotli and zstd ----

#[test]
fn nginx_brotli_and_zstd_bodies_are_decoded_and_bombs_refused() {
    let site = nginx(None);
    let server = &site.server;
    let c = Client::new(ClientOptions {
        max_body_size: 1 << 20,
        ..ClientOptions::default()
    });
    for path in ["/page.br", "/page.zst"] {
        let r = c.fetch(get(server.url(path)));
        assert_eq!((r.code, text(&r)), (200, page()), "{path}: {:?}", r.error);
        // Streamed: decoded pieces of at most 64 KiB.
        let mut streamed = get(server.url(path));
        let got = Rc::new(std::cell::RefCell::new(Vec::<usize>::new()));
        let body = Rc::new(std::cell::RefCell::new(Vec::new()));
        let (g, b) = (got.clone(), body.clone());
        streamed.streaming_callback = Some(StreamingCallback::new(move |chunk| {
            g.borrow_mut().push(chunk.len());
            b.borrow_mut().extend_from_slice(chunk);
        }));
        let r = c.fetch(streamed);
        assert!(r.error.is_none(), "{path} streamed: {:?}", r.error);
        assert_eq!(String::from_utf8_lossy(&body.borrow()), page());
        assert!(got.borrow().iter().all(|&n| n <= 64 * 1024));
        // Undecoded when asked so.
        let mut raw = get(server.url(path));
        raw.decompress_response = false;
        let r = c.fetch(raw);
        assert_ne!(text(&r), page(), "{path} raw");
        assert!(!r.body.is_empty());
    }
    // Bombs: 64 MiB of brotli zeros, 500 MiB of zstd RLE blocks, against a
    // 1 MiB limit; buffered and streamed.
    for path in ["/bomb.br", "/bomb.zst"] {
        let r = c.fetch(get(server.url(path)));
        assert_eq!(
            kind(&r),
            Some(FetchErrorKind::BodyTooLarge),
            "{path}: {:?}",
            r.error
        );
        let mut streamed = get(server.url(path));
        let total = Rc::new(std::cell::Cell::new(0usize));
        let t = total.clone();
        streamed.streaming_callback = Some(StreamingCallback::new(move |chunk| {
            t.set(t.get() + chunk.len())
        }));
        let r = c.fetch(streamed);
        assert_eq!(
            kind(&r),
            Some(FetchErrorKind::BodyTooLarge),
            "{path} streamed"
        );
        assert!(
            total.get() <= 1 << 20,
            "{path}: {} bytes handed on",
            total.get()
        );
    }
    // A pausing callback (Tornado's coroutine streaming_callback) under a
    // large limit gets all of each bomb, in pieces of at most 64 KiB: the
    // input is decoded a few bytes at a time between its pauses.
    let roomy = Client::new(ClientOptions {
        max_body_size: 1 << 30,
        ..ClientOptions::default()
    });
    for (path, size) in [
        ("/bomb.br", 64usize << 20),
        ("/bomb.zst", 4000 * (128 << 10)),
    ] {
        let mut paused = get(server.url(path));
        let pieces = Rc::new(std::cell::Cell::new((0usize, 0usize)));
        let p = pieces.clone();
        paused.streaming_callback = Some(StreamingCallback::pausing(move |chunk| {
            let (n, largest) = p.get();
            p.set((n + chunk.len(), largest.max(chunk.len())));
            Ok(None)
        }));
        let r = roomy.fetch(paused);
        assert!(r.error.is_none(), "{path} paused: {:?}", r.error);
        assert_eq!(pieces.get().0, size, "{path}");
        assert!(pieces.get().1 <= 64 * 1024, "{path}");
    }
    let r = c.fetch(get(server.url("/wide.zst")));
    assert_eq!(kind(&r), Some(FetchErrorKind::Protocol), "{:?}", r.error);
    assert!(error(&r).contains("zstd"), "{}", error(&r));
    let r = c.fetch(get(server.url("/truncated.br")));
    assert_eq!(kind(&r), Some(FetchErrorKind::Protocol), "{:?}", r.error);
    // And the client goes on: nothing else lost.
    let r = c.fetch(get(server.url("/page.zst")));
    assert_eq!(text(&r), page());
}

#[test]
fn accept_encoding_names_every_decoded_coding_only_when_decompressing() {
    let server = httpbin();
    let c = Client::new(ClientOptions::default());
    let r = c.fetch(get(server.url("/headers")));
    let json: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
    assert_eq!(
        json["headers"]["Accept-Encoding"], "gzip, deflate, br, zstd",
        "{json}"
    );
    let mut off = get(server.url("/headers"));
    off.decompress_response = false;
    let r = c.fetch(off);
    let json: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
    assert!(json["headers"].get("Accept-Encoding").is_none(), "{json}");
}

// ---- Unix domain sockets ----

#[test]
fn nginx_on_a_unix_socket_pooled_by_path() {
    let site = nginx(None);
    let socket = site.socket.clone();
    let c = Client::new(ClientOptions::default());
    let via = |url: &str, path: &Path| {
        let mut r = get(url.to_string());
        r.unix_socket = Some(path.to_path_buf());
        r
    };
    let r = c.fetch(via("http://daemon.test/index.html", &socket));
    assert_eq!((r.code, text(&r)), (200, page()), "{:?}", r.error);
    let r = c.fetch(via("http://daemon.test/whoami", &socket));
    assert_eq!(
        text(&r),
        "host=daemon.test",
        "the URL gives the Host header"
    );
    assert_eq!(
        c.client.idle_connections(),
        1,
        "one pooled connection for the path"
    );
    let r = c.fetch(via("http://daemon.test/index.html", &socket));
    assert_eq!(r.code, 200);
    assert_eq!(c.client.idle_connections(), 1, "reused");
    // Another origin on the same socket: a connection of its own (the key
    // is the origin and the path, as for TCP).
    let r = c.fetch(via("http://other.test/whoami", &socket));
    assert_eq!(text(&r), "host=other.test");
    assert_eq!(c.client.idle_connections(), 2);
    // A socket that is not there: a connect error, at once.
    let missing = socket.with_file_name("missing.sock");
    let r = c.fetch(via("http://daemon.test/", &missing));
    assert_eq!(kind(&r), Some(FetchErrorKind::Connect), "{:?}", r.error);
    assert!(error(&r).contains("missing.sock"), "{}", error(&r));
    // A path that is a file, not a socket: refused too.
    let not_socket = socket.with_file_name("nginx.conf");
    let r = c.fetch(via("http://daemon.test/", &not_socket));
    assert_eq!(kind(&r), Some(FetchErrorKind::Connect), "{:?}", r.error);
}

// ---- SOCKS ----

/// tests/servers/socks_server.py in `mode`; its log of requests.
fn python_socks(mode: &str, credentials: Option<&str>) -> (Server, PathBuf) {
    let mut log = PathBuf::new();
    let server = Server::start("tests/servers/socks_server.py", |port, dir| {
        log = dir.join("requests.log");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/servers/socks_server.py");
        let mut command = Command::new("python3");
        command
            .arg(script)
            .arg(port.to_string())
            .arg(mode)
            .arg(&log);
        if let Some(c) = credentials {
            command.arg(c);
        }
        command
    });
    (server, log)
}

fn via_proxy(url: String, proxy: &str) -> HTTPRequest {
    let mut r = get(url);
    r.proxy_host = Some(proxy.to_string());
    r
}

#[test]
fn socks5_and_socks5h_through_microsocks() {
    let nginx = nginx(None);
    let site = &nginx.server;
    let socks = microsocks(None);
    let c = Client::new(ClientOptions::default());
    for scheme in ["socks5", "socks5h"] {
        let proxy = format!("{scheme}://127.0.0.1:{}", socks.port);
        let r = c.fetch(via_proxy(site.url("/index.html"), &proxy));
        assert_eq!((r.code, text(&r)), (200, page()), "{scheme}: {:?}", r.error);
    }
    // socks5h sends the name: microsocks resolves "localhost" itself.
    let proxy = format!("socks5h://127.0.0.1:{}", socks.port);
    let url = format!("http://localhost:{}/whoami", site.port);
    let r = c.fetch(via_proxy(url, &proxy));
    assert_eq!(text(&r), "host=localhost", "{:?}", r.error);
    // The proxy port may come from proxy_port too.
    let mut r = via_proxy(site.url("/whoami"), "socks5://127.0.0.1");
    r.proxy_port = Some(socks.port);
    assert_eq!(c.fetch(r).code, 200);

    let authed = microsocks(Some(("alice", "s3cret")));
    let proxy = format!("socks5://alice:s3cret@127.0.0.1:{}", authed.port);
    let r = c.fetch(via_proxy(site.url("/whoami"), &proxy));
    assert_eq!(r.code, 200, "with credentials: {:?}", r.error);
    let mut r = via_proxy(
        site.url("/whoami"),
        &format!("socks5h://127.0.0.1:{}", authed.port),
    );
    r.proxy_username = Some("alice".into());
    r.proxy_password = Some("s3cret".into());
    assert_eq!(c.fetch(r).code, 200, "credentials from proxy_username");
    let proxy = format!("socks5://alice:wrong@127.0.0.1:{}", authed.port);
    let r = c.fetch(via_proxy(site.url("/whoami"), &proxy));
    assert_eq!(kind(&r), Some(FetchErrorKind::Connect), "{:?}", r.error);
    assert!(error(&r).contains("username and password"), "{}", error(&r));
    let proxy = format!("socks5://127.0.0.1:{}", authed.port);
    let r = c.fetch(via_proxy(site.url("/whoami"), &proxy));
    assert_eq!(kind(&r), Some(FetchErrorKind::Connect), "{:?}", r.error);
    assert!(error(&r).contains("authentication"), "{}", error(&r));
}

#[test]
fn tls_inside_a_socks_tunnel() {
    let pki = common::pki::test_pki(&["localhost", "127.0.0.1"]);
    let lp = IOLoop::new().unwrap();
    let server = common::https_server::tls_server(
        &lp,
        &pki.cert_pem,
        &pki.key_pem,
        &[b"http/1.1"],
        |stream| async move {
            let _ = stream.read_until(b"\r\n\r\n", Some(65536)).await;
            let reply =
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nover TLS\r\n";
            if let Ok(sent) = stream.write(reply) {
                let _ = sent.value().await;
            }
        },
    );
    let port = server.local_addr().port();
    let socks = microsocks(None);
    let client = AsyncHTTPClient::new(&lp, ClientOptions::default()).unwrap();
    for scheme in ["socks5", "socks5h"] {
        let mut r = via_proxy(
            format!("https://localhost:{port}/"),
            &format!("{scheme}://127.0.0.1:{}", socks.port),
        );
        r.ca_certs = Some(pki.ca_file.clone());
        let f = client.fetch(r).unwrap();
        lp.run_until(|| f.done(), Some(Duration::from_secs(20)))
            .unwrap();
        let r = f.result().unwrap().unwrap();
        assert_eq!(
            (r.code, text(&r)),
            (200, "over TLS\r\n".to_string()),
            "{scheme}: {:?}",
            r.error
        );
    }
}

#[test]
fn socks4_and_socks4a_through_the_test_server() {
    let nginx = nginx(None);
    let site = &nginx.server;
    let (socks, log) = python_socks("good", None);
    let c = Client::new(ClientOptions::default());
    let proxy = format!("socks4a://someone@127.0.0.1:{}", socks.port);
    let r = c.fetch(via_proxy(
        format!("http://localhost:{}/whoami", site.port),
        &proxy,
    ));
    assert_eq!(text(&r), "host=localhost", "socks4a: {:?}", r.error);
    let proxy = format!("socks4://127.0.0.1:{}", socks.port);
    let r = c.fetch(via_proxy(site.url("/whoami"), &proxy));
    assert_eq!(r.code, 200, "socks4: {:?}", r.error);
    let proxy = format!("socks5h://127.0.0.1:{}", socks.port);
    let r = c.fetch(via_proxy(
        format!("http://localhost:{}/whoami", site.port),
        &proxy,
    ));
    assert_eq!(r.code, 200, "socks5h: {:?}", r.error);
    let proxy = format!("socks5://127.0.0.1:{}", socks.port);
    let r = c.fetch(via_proxy(
        format!("http://localhost:{}/whoami", site.port),
        &proxy,
    ));
    assert_eq!(r.code, 200, "socks5: {:?}", r.error);
    let log = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let port = site.port;
    assert_eq!(
        lines,
        [
            format!("socks4 localhost {port} someone"),
            format!("socks4 127.0.0.1 {port} -"),
            format!("socks5 3 localhost {port}"),
            format!("socks5 1 127.0.0.1 {port}"),
        ],
        "4a and 5h send the name, 4 and 5 the address resolved here"
    );
}

#[test]
fn socks_proxies_that_lie_refuse_or_stall_end_with_an_error() {
    let nginx = nginx(None);
    let site = &nginx.server;
    let c = Client::new(ClientOptions::default());
    for (mode, scheme, expected, words) in [
        ("lie", "socks5", FetchErrorKind::Protocol, "version 4"),
        ("lie", "socks4a", FetchErrorKind::Protocol, "starts with 9"),
        (
            "bad-atyp",
            "socks5h",
            FetchErrorKind::Protocol,
            "address type 9",
        ),
        (
            "refuse",
            "socks5",
            FetchErrorKind::Connect,
            "connection refused",
        ),
        ("refuse", "socks4", FetchErrorKind::Connect, "rejected"),
        ("stall", "socks5h", FetchErrorKind::Timeout, "Timeout"),
        ("stall", "socks4a", FetchErrorKind::Timeout, "Timeout"),
    ] {
        let (socks, _) = python_socks(mode, None);
        let mut r = via_proxy(
            site.url("/whoami"),
            &format!("{scheme}://127.0.0.1:{}", socks.port),
        );
        r.connect_timeout = Some(Duration::from_millis(500));
        let started = std::time::Instant::now();
        let r = c.fetch(r);
        assert_eq!(kind(&r), Some(expected), "{mode} {scheme}: {:?}", r.error);
        assert!(error(&r).contains(words), "{mode} {scheme}: {}", error(&r));
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    // A proxy that closes at once; one that is not there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let r = c.fetch(via_proxy(
        site.url("/"),
        &format!("socks5h://127.0.0.1:{port}"),
    ));
    assert_eq!(kind(&r), Some(FetchErrorKind::Connect), "{:?}", r.error);
    // Settings refused before a byte is sent.
    for proxy in ["gopher://127.0.0.1:1", "socks5h://127.0.0.1:0"] {
        let r = c.fetch(via_proxy(site.url("/"), proxy));
        assert_eq!(
            kind(&r),
            Some(FetchErrorKind::InvalidRequest),
            "{proxy}: {:?}",
            r.error
        );
    }
    let mut long_user = via_proxy(site.url("/"), "socks5://127.0.0.1:1080");
    long_user.proxy_username = Some("u".repeat(256));
    assert_eq!(
        kind(&c.fetch(long_user)),
        Some(FetchErrorKind::InvalidRequest)
    );
    // And the client still fetches.
    assert_eq!(c.fetch(get(site.url("/whoami"))).code, 200);
}

// ---- cookies ----

fn cookies_of(r: &HTTPResponse) -> serde_json::Value {
    let json: serde_json::Value = serde_json::from_slice(&r.body)
        .unwrap_or_else(|_| panic!("JSON from /cookies: {:?} {}", r.error, text(r)));
    json["cookies"].clone()
}

#[test]
fn httpbin_cookies_kept_across_redirects_and_fetches() {
    let server = httpbin();
    // Off by default: nothing kept.
    let plain = Client::new(ClientOptions::default());
    assert!(plain.client.cookie_jar().is_none());
    let r = plain.fetch(get(server.url("/cookies/set?flavour=oat")));
    assert_eq!(cookies_of(&r), serde_json::json!({}));

    let c = Client::new(ClientOptions {
        cookies: true,
        ..ClientOptions::default()
    });
    let jar = c.client.cookie_jar().expect("a jar");
    // /cookies/set sets and redirects to /cookies: sent on the redirect.
    let r = c.fetch(get(server.url("/cookies/set?flavour=oat&count=2")));
    assert_eq!(
        cookies_of(&r),
        serde_json::json!({"flavour": "oat", "count": "2"})
    );
    assert_eq!(jar.len(), 2);
    // And on the next fetch.
    let r = c.fetch(get(server.url("/cookies")));
    assert_eq!(
        cookies_of(&r),
        serde_json::json!({"flavour": "oat", "count": "2"})
    );
    // A caller's own Cookie header goes with the jar's.
    let mut own = get(server.url("/cookies"));
    own.headers.add("Cookie", "mine=1");
    let r = c.fetch(own);
    assert_eq!(cookies_of(&r)["mine"], "1");
    assert_eq!(cookies_of(&r)["flavour"], "oat");
    // Deleted by the server.
    let r = c.fetch(get(server.url("/cookies/delete?count")));
    assert_eq!(cookies_of(&r), serde_json::json!({"flavour": "oat"}));
    // A cookie for another domain is refused, the rest kept.
    let r = c.fetch(get(
        server.url("/response-headers?Set-Cookie=evil%3D1%3B%20Domain%3Dexample.com")
    ));
    assert_eq!(r.code, 200);
    assert_eq!(jar.len(), 1);
    let r = c.fetch(get(server.url("/cookies")));
    assert_eq!(cookies_of(&r), serde_json::json!({"flavour": "oat"}));

    // Saved as curl's cookie file, loaded by another client.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cookies.txt");
    jar.save_netscape(&file).unwrap();
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(saved.starts_with("# Netscape HTTP Cookie File"), "{saved}");
    assert!(
        saved.contains("127.0.0.1\tFALSE\t/\tFALSE\t0\tflavour\toat\n"),
        "{saved}"
    );
    let other = Client::new(ClientOptions {
        cookies: true,
        ..ClientOptions::default()
    });
    let other_jar = other.client.cookie_jar().unwrap();
    assert_eq!(other_jar.load_netscape(&file).unwrap(), 1);
    let r = other.fetch(get(server.url("/cookies")));
    assert_eq!(cookies_of(&r), serde_json::json!({"flavour": "oat"}));

    // A malformed file: a clear error naming the line, the jar as it was,
    // fetches go on.
    let bad = dir.path().join("bad.txt");
    std::fs::write(
        &bad,
        "127.0.0.1\tFALSE\t/\tFALSE\t0\tnew\t1\n127.0.0.1\tFALSE\t/\n",
    )
    .unwrap();
    let err = other_jar.load_netscape(&bad).unwrap_err();
    assert!(err.message().contains("line 2"), "{}", err.message());
    let err = other_jar
        .load_netscape(&dir.path().join("absent.txt"))
        .unwrap_err();
    assert!(err.message().contains("absent.txt"), "{}", err.message());
    let r = other.fetch(get(server.url("/cookies")));
    assert_eq!(cookies_of(&r), serde_json::json!({"flavour": "oat"}));
}

/// A host name under a public suffix mapped to loopback (no DNS): the jar
/// keeps `Domain=example.co.uk` and refuses `Domain=co.uk` (RFC 6265 5.3
/// step 5, the built-in public suffix list); the kept cookie goes to a
/// sibling host under example.co.uk, nothing goes to another co.uk site.
#[test]
fn cookies_for_a_public_suffix_are_refused() {
    let server = common::script_server::ScriptServer::start(|mut conn| {
        while let Some(request) = conn.read_request() {
            let cookie = request.header("Cookie").unwrap_or("").to_string();
            let ok = if request.target == "/set" {
                conn.respond(
                    "200 OK",
                    &[
                        ("Set-Cookie", "suffix=1; Domain=co.uk; Path=/"),
                        ("Set-Cookie", "site=2; Domain=example.co.uk; Path=/"),
                        ("Set-Cookie", "host=3; Path=/"),
                    ],
                    b"set",
                )
            } else {
                conn.respond("200 OK", &[], format!("[{cookie}]").as_bytes())
            };
            if !ok {
                return;
            }
        }
    });
    let port = server.addr.port();
    let mut options = ClientOptions {
        cookies: true,
        ..ClientOptions::default()
    };
    for host in ["www.example.co.uk", "shop.example.co.uk", "www.other.co.uk"] {
        options
            .endpoint_mapping
            .push(((host.into(), port), ("127.0.0.1".into(), port)));
    }
    let c = Client::new(options);
    let url = |host: &str, path: &str| format!("http://{host}:{port}{path}");
    let r = c.fetch(get(url("www.example.co.uk", "/set")));
    assert_eq!((r.code, text(&r)), (200, "set".into()), "{}", error(&r));
    let r = c.fetch(get(url("www.example.co.uk", "/check")));
    let body = text(&r);
    let mut sent: Vec<&str> = body.trim_matches(['[', ']']).split("; ").collect();
    sent.sort_unstable();
    assert_eq!(sent, ["host=3", "site=2"], "{body}");
    let r = c.fetch(get(url("shop.example.co.uk", "/check")));
    assert_eq!(text(&r), "[site=2]");
    let r = c.fetch(get(url("www.other.co.uk", "/check")));
    assert_eq!(text(&r), "[]");
    // Every request went to the loopback server, none to a DNS name.
    assert_eq!(server.requests().len(), 4);
}
