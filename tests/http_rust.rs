//! The HTTP client against scripted servers on 127.0.0.1: the wire
//! protocol, keep-alive, redirects, limits, timeouts, cancellation.

mod common;

use std::cell::RefCell;
use std::io::Write as _;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::script_server::{keep_alive, Conn, ScriptServer};
use tornado_rs::http::client::{AsyncHTTPClient, ClientOptions};
use tornado_rs::http::request::{BodyProducer, HTTPRequest, StreamingCallback};
use tornado_rs::http::response::HTTPResponse;
use tornado_rs::http::{kind_of, FetchErrorKind};
use tornado_rs::{Future, IOLoop};

const LIMIT: Option<Duration> = Some(Duration::from_secs(20));

fn wait(lp: &IOLoop, f: &Future<HTTPResponse>) -> HTTPResponse {
    lp.run_until(|| f.done(), LIMIT).expect("done in time");
    f.result().expect("done").expect("fetch futures resolve")
}

fn client(lp: &IOLoop) -> AsyncHTTPClient {
    AsyncHTTPClient::new(lp, ClientOptions::default()).unwrap()
}

fn fetch(lp: &IOLoop, c: &AsyncHTTPClient, request: HTTPRequest) -> HTTPResponse {
    let f = c.fetch(request).unwrap();
    wait(lp, &f)
}

fn get(lp: &IOLoop, c: &AsyncHTTPClient, url: &str) -> HTTPResponse {
    fetch(lp, c, HTTPRequest::new(url))
}

fn kind(response: &HTTPResponse) -> Option<FetchErrorKind> {
    response.error.as_ref().and_then(kind_of)
}

fn text(status: &str, body: &str) -> (String, Vec<(String, String)>, Vec<u8>) {
    (status.into(), vec![], body.as_bytes().to_vec())
}

/// A handler writing `bytes` once to each connection, then closing it.
fn raw(bytes: &'static [u8]) -> impl Fn(Conn) + Send + Sync + 'static {
    move |mut conn: Conn| {
        conn.read_request();
        conn.write(bytes);
    }
}

#[test]
fn get_with_content_length_and_default_headers() {
    let server = ScriptServer::start(keep_alive(|_| text("200 OK", "hello")));
    let lp = IOLoop::new().unwrap();
    let c = client(&lp);
    let r = get(&lp, &c, &server.url("/a?b=c"));
    assert_eq!(r.code, 200, "{:?}", r.error);
    assert_eq!(r.reason, "OK");
    assert_eq!(r.body, b"hello");
    assert!(r.error.is_none());
    let seen = &server.requests()[0];
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.target, "/a?b=c");
    assert_eq!(seen.header("Host"), Some(server.addr.to_string().as_str()));
    assert_eq!(
        seen.header("Accept-Encoding"),
        Some("gzip, deflate, br, zstd")
    );
    assert!(seen
        .header("User-Agent")
        .unwrap()
        .starts_with("tornado_rs/"));
    assert!(r.request_time > 0.0);
    assert!(r.time_info.total >= r.time_info.starttransfer);
    assert!(r.time_info.starttransfer >= r.time_info.connect);
}

#[test]
fn keep_alive_reuses_one_connection() {
    let server = ScriptServer::start(keep_alive(|r| text("200 OK", &r.target)));
    let lp = IOLoop::new().unwrap();
    let c = client(&lp);
    for i in 0..5 {
        let r = get(&lp, &c, &server.url(&format!("/{i}")));
        assert_eq!(r.body, format!("/{i}").as_bytes());
    }
    assert_eq!(server.connections(), 1, "one connection for five fetches");
    assert_eq!(c.idle_connections(), 1);
}

/// Runs the loop for `d` (nothing to wait for: the time passing is the point).
fn run_for(lp: &IOLoop, d: Duration) {
    let _ = lp.run_until(|| false, Some(d));
}

#[test]
fn idle_connections_close_when_their_own_idle_timeout_passes() {
    let server = ScriptServer::start(keep_alive(|r| text("200 OK", &r.target)));
    let lp = IOLoop::new().unwrap();
    let options = ClientOptions {
        idle_timeout: Duration::from_secs(1),
        ..ClientOptions::default()
    };
    let c = AsyncHTTPClient::new(&lp, options).unwrap();
    // Two connections at once, idle from t = 0.
    let first = c.fetch(HTTPRequest::new(server.url("/1"))).unwrap();
    let second = c.fetch(HTTPRequest::new(server.url("/2"))).unwrap();
    wait(&lp, &first);
    wait(&lp, &second);
    assert_eq!(server.connections(), 2);
    assert_eq!(c.idle_connections(), 2);
    // At t = 0.5 one is used again: idle afresh, until t = 1.5.
    run_for(&lp, Duration::from_millis(500));
    assert_eq!(get(&lp, &c, &server.url("/3")).code, 200);
    assert_eq!(server.connections(), 2, "a pooled connection was reused");
    // At t = 1.25 the other one (idle since t = 0) has been closed unasked.
    run_for(&lp, Duration::from_millis(750));
    assert_eq!(
        c.idle_connections(),
        1,
        "the expired one closed, the reused one kept"
    );
    // At t = 2 both are gone, and a fetch opens a new connection.
    run_for(&lp, Duration::from_millis(750));
    assert_eq!(c.idle_connections(), 0, "every idle connection expired");
    assert_eq!(get(&lp, &c, &server.url("/4")).code, 200);
    assert_eq!(server.connections(), 3);
}

#[test]
fn a_pooled_connection_closed_by_the_server_is_retried_once() {
    // The server answers one request per connection, then closes it
    // without saying so (no Connection: close).
    let server = ScriptServer::start(|mut conn: Conn| {
        if conn.read_request().is_some() {
            conn.respond("200 OK", &[], b"once");
        }
    });
    let lp = IOLoop::new().unwrap();
    let c = client(&lp);
    assert_eq!(get(&lp, &c, &server.url("/1")).body, b"once");
    std::thread::sleep(Duration::from_millis(50)); // let the close arrive
    let r = get(&lp, &c, &server.url("/2"));
    assert_eq!(r.code, 200, "{:?}", r.error);
    assert_eq!(server.connections(), 2);
}

#[test]
fn chunked_responses_are_decoded() {
    let server = ScriptServer::start(raw(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n",
    ));
    let lp = IOLoop::new().unwrap();
    let r = get(&lp, &client(&lp), &server.url("/"));
    assert_eq!(r.body, b"hello world", "{:?}", r.error);
}

#[test]
fn gzip_bodies_are_decoded_unless_disabled() {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(b"compressed body").unwrap();
    let gz: &'static [u8] = Box::leak(encoder.finish().unwrap().into_boxed_slice());
    let server = ScriptServer::start(keep_alive(move |r| {
        let gzip = r
            .header("Accept-Encoding")
            .is_some_and(|v| v.split(", ").any(|c| c == "gzip"));
        if gzip {
            (
                "200 OK".into(),
                vec![("Content-Encoding".into(), "gzip".into())],
                gz.to_vec(),
            )
        } else {
            text("200 OK", "plain body")
        }
    }));
    let lp = IOLoop::new().unwrap();
    let c = client(&lp);
    assert_eq!(get(&lp, &c, &server.url("/")).body, b"compressed body");
    let mut request = HTTPRequest::new(server.url("/"));
    request.decompress_response = false;
    assert_eq!(fetch(&lp, &c, request).body, b"plain body");
}

#[test]
fn a_gzip_bomb_stops_at_max_body_size() {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&vec![0u8; 20 * 1024 * 1024]).unwrap();
    let bomb: &'static [u8] = Box::leak(encoder.finish().unwrap().into_boxed_slice());
    assert!(bomb.len() < 100 * 1024);
    let server = ScriptServer::start(keep_alive(move |_| {
        (
            "200 OK".into(),
            vec![("Content-Encoding".into(), "gzip".into())],
            bomb.to_vec(),
        )
    }));
    let lp = IOLoop::new().unwrap();
    let options = ClientOptions {
        max_body_size: 1024 * 1024,
        ..Default::default()
    };
    let c = AsyncHTTPClient::new(&lp, options).unwrap();
    let r = get(&lp, &c, &server.url("/"));
    assert_eq!(
        kind(&r),
        Some(FetchErrorKind::BodyTooLarge),
        "{:?}",
        r.error
    );
    assert_eq!(r.code, 599);
}

#[test]
fn http_1_0_bodies_are_read_until_close() {
    let server = ScriptServer::start(raw(b"HTTP/1.0 200 OK\r\n\r\nuntil the end"));
    let lp = IOLoop::new().unwrap();
    let c = client(&lp);
    let r = get(&lp, &c, &server.url("/"));
    assert_eq!(r.body, b"until the end", "{:?}", r.error);
    assert_eq!(c.idle_connections(), 0);
}

#[test]
fn informational_responses_are_skipped_and_head_has_no_body() {
    let server = ScriptServer::start(raw(
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
    ));
    let lp = IOLoop::new().unwrap();
    let r = get(&lp, &client(&lp), &server.url("/"));
    assert_eq!(r.code, 204, "{:?}", r.error);
    assert!(r.body.is_empty());

    let server = ScriptServer::start(keep_alive(|_| text("200 OK", "not sent for HEAD")));
    let mut request = HTTPRequest::new(server.url("/"));
    request.method = "HEAD".into();
    let r = fetch(&lp, &client(&lp), request);
    assert_eq!(r.code, 200);
    assert!(r.body.is_empty());
}

#[test]
fn repeated_headers_are_kept_in_order() {
    let server = ScriptServer::start(raw(
        b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX-Other: y\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n",
    ));
    let lp = IOLoop::new().unwrap();
    let r = get(&lp, &client(&lp), &server.url("/"));
    let cookies: Vec<&str> = r.headers.get_all("set-cookie").collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    let names: Vec<&str> = r.headers.iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        ["Set-Cookie", "X-Other", "Set-Cookie", "Content-Length"]
    );
}

#[test]
fn protocol_violations_are_errors() {
    let lp = IOLoop::new().unwrap();
    for (bytes, expected) in [
        (
            &b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                [..],
            FetchErrorKind::Protocol,
        ),
        (
            &b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"[..],
            FetchErrorKind::Protocol,
        ),
        (&b"garbage garbage\r\n\r\n"[..], FetchErrorKind::Protocol),
        (
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff\r\n"[..],
            FetchErrorKind::Protocol,
        ),
        (
            &b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"[..],
            FetchErrorKind::Closed,
        ),
        (&b""[..], FetchErrorKind::Closed),
    ] {
        let server = ScriptServer::start(raw(Box::leak(bytes.to_vec().into_boxed_slice())));
        let r = get(&lp, &client(&lp), &server.url("/"));
        assert_eq!(
            kind(&r),
            Some(expected),
            "{:?} for {:?}",
            r.error,
            String::from_utf8_lossy(bytes)
        );
        assert_eq!(r.code, 599);
    }
}

#[test]
fn a_huge_head_is_header_too_large() {
    let server = ScriptServer::start(|mut conn: Conn| {
        conn.read_request();
        conn.write(b"HTTP/1.1 200 OK\r\n");
        let line = format!("X-Big: {}\r\n", "a".repeat(1000));
        for _ in 0..200 {
            if !conn.write(line.as_bytes()) {
                return;
            }
        }
    });
    let lp = IOLoop::new().unwrap();
    let options = ClientOptions {
        max_header_size: 16 * 1024,
        ..Default::default()
    };
    let c = AsyncHTTPClient::new(&lp, options).unwrap();
    let r = get(&lp, &c, &server.url("/"));
    assert_eq!(
        kind(&r),
        Some(FetchErrorKind::HeaderTooLarge),
        "{:?}",
        r.error
    );
}

#[test]
fn redirects_follow_tornado_rules() {
    let server = ScriptServer::start(keep_alive(|r| match r.target.as_str() {
        "/303" => (
            "303 See Other".into(),
            vec![("Location".into(), "/final".into())],
            vec![],
        ),
        "/302" => (
            "302 Found".into(),
            vec![("Location".into(), "/final".into())],
            vec![],
        ),
        "/307" => (
            "307 Temporary Redirect".into(),
            vec![("Location".into(), "/final".into())],
            vec![],
        ),
        "/301-no-location" => text("301 Moved Permanently", ""),
        "/loop" => (
            "302 Found".into(),
            vec![("Location".into(), "/loop".into())],
            vec![],
        ),
        _ => text(
            "200 OK",
            &format!("{} {}", r.method, String::from_utf8_lossy(&r.body)),
        ),
    }));
    let lp = IOLoop::new().unwrap();
    let c = client(&lp);
    let post = |path: &str| {
        let mut request = HTTPRequest::new(server.url(path));
        request.method = "POST".into();
        request.body = Some(b"data".to_vec());
        request
    };
    let r = fetch(&lp, &c, post("/303"));
    assert_eq!(r.body, b"GET ");
    assert_eq!(r.effective_url, server.url("/final"));
    assert_eq!(fetch(&lp, &c, post("/302")).body, b"GET ");
    assert_eq!(fetch(&lp, &c, post("/307")).body, b"POST data");
    assert_eq!(get(&lp, &c, &server.url("/301-no-location")).code, 301);

    let r = get(&lp, &c, &server.url("/loop"));
    assert_eq!(
        kind(&r),
        Some(FetchErrorKind::TooManyRedirects),
        "{:?}",
        r.error
    );
    assert_eq!(r.code, 302, "the last response is kept");

    let mut request = HTTPRequest::new(server.url("/302"));
    request.max_redirects = 0;
    let r = fetch(&lp, &c, request);
    assert_eq!(
        kind(&r),
        Some(FetchErrorKind::TooManyRedirects),
        "max_redirects 0"
    );
    assert_eq!(r.code, 302);

    let mut request = HTTPRequest::new(server.url("/302"));
    request.follow_redirects = false;
    let r = fetch(&lp, &c, request);
    assert_eq!(r.code, 302);
    assert!(r.error.is_none());
}

#[test]
fn a_cross_origin_redirect_drops_credentials() {
    let other = ScriptServer::start(keep_alive(|_| text("200 OK", "other")));
    let target = other.url("/landing");
    let first = ScriptServer::start(keep_alive(move |_| {
        (
            "302 Found".into(),
            vec![("Location".into(), target.clone())],
            vec![],
        )
    }));
    let lp = IOLoop::new().unwrap();
    let mut request = HTTPRequest::new(first.url("/start"));
    request.auth_username = Some("user".into());
    request.auth_password = Some("secret".into());
    request.headers.add("Cookie", "session=1");
    let r = fetch(&lp, &client(&lp), request);
    assert_eq!(r.body, b"other", "{:?}", r.error);
    assert!(first.requests()[0].header("Authorization").is_some());
    let seen = &other.requests()[0];
    assert_eq!(seen.header("Authorization"), None);
    assert_eq!(seen.header("Cookie"), None);

    // Credentials in the URL go as basic auth, and not across origins.
    let url = format!("http://user:secret@{}/start", first.addr);
    let r = get(&lp, &client(&lp), &url);
    assert_eq!(r.body, b"other", "{:?}", r.error);
    assert_eq!(
        first.requests()[1].header("Authorization"),
        Some("Basic dXNlcjpzZWNyZXQ="),
        "the URL's credentials, as basic auth"
    );
    assert_eq!(other.requests()[1].header("Authorization"), None);
}

#[test]
fn redirects_with_one_slot_do_not_deadlock() {
    let server = ScriptServer::start(keep_alive(|r| match r.target.as_str() {
        "/start" => (
            "302 Found".into(),
            vec![("Location".into(), "/end".into())],
            vec![],
        ),
        _ => text("200 OK", "end"),
    }));
    let lp = IOLoop::new().unwrap();
    let options = ClientOptions {
        max_clients: 1,
        ..Default::default()
    };
    let c = AsyncHTTPClient::new(&lp, options).unwrap();
    let futures: Vec<_> = (0..3)
        .map(|_| c.fetch(HTTPRequest::new(server.url("/start"))).unwrap())
        .collect();
    for f in &futures {
        assert_eq!(wait(&lp, f).body, b"end");
    }
}

#[test]
fn requests_with_cr_or_lf_are_refused_before_sending() {
    let server = ScriptServer::start(keep_alive(|_| text("200 OK", "")));
    let lp = IOLoop::new().unwrap();
    let c = client(&lp);
    let mut request = HTTPRequest::new(server.url("/"));
    request.headers.add("X-Evil", "a\r\nInjected: yes");
    let r = fetch(&lp, &c, request);
    assert_eq!(kind(&r), Some(FetchErrorKind::InvalidRequest));
    let mut request = HTTPRequest::new(server.url("/"));
    request.method = "GET\r\nX".into();
    assert_eq!(
        kind(&fetch(&lp, &c, request)),
        Some(FetchErrorKind::InvalidRequest)
    );
    let mut request = HTTPRequest::new(server.url("/"));
    request.body = Some(b"x".to_vec()); // a body on GET
    assert_eq!(
        kind(&fetch(&lp, &c, request)),
        Some(FetchErrorKind::InvalidRequest)
    );
    assert_eq!(server.connections(), 0, "nothing was sent");
    assert_eq!(
        kind(&get(&lp, &c, "ftp://127.0.0.1/")),
        Some(FetchErrorKind::InvalidUrl)
    );
}

#[test]
fn timeouts_say_which_one_fired() {
    let stall = ScriptServer::start(|mut conn: Conn| {
        conn.read_request();
        std::thread::sleep(Duration::from_secs(5));
    });
    let lp = IOLoop::new().unwrap();
    let c = client(&lp);
    let mut request = HTTPRequest::new(stall.url("/"));
    request.request_timeout = Some(Duration::from_millis(200));
    let started = Instant::now();
    let r = fetch(&lp, &c, request);
    assert_eq!(kind(&r), Some(FetchErrorKind::Timeout));
    assert!(r
        .error
        .as_ref()
        .unwrap()
        .message()
        .contains("during request"));
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[test]
fn a_queued_fetch_times_out_in_the_queue() {
    let stall = ScriptServer::start(|mut conn: Conn| {
        conn.read_request();
        std::thread::sleep(Duration::from_secs(3));
    });
    let lp = IOLoop::new().unwrap();
    let options = ClientOptions {
        max_clients: 1,
        ..Default::default()
    };
    let c = AsyncHTTPClient::new(&lp, options).unwrap();
    let mut slow = HTTPRequest::new(stall.url("/"));
    slow.request_timeout = Some(Duration::from_secs(2));
    let first = c.fetch(slow).unwrap();
    let mut queued = HTTPRequest::new(stall.url("/"));
    queued.connect_timeout = Some(Duration::from_millis(200));
    let second = c.fetch(queued).unwrap();
    let r = wait(&lp, &second);
    assert_eq!(kind(&r), Some(FetchErrorKind::Timeout));
    assert!(
        r.error
            .as_ref()
            .unwrap()
            .message()
            .contains("in request queue"),
        "{:?}",
        r.error
    );
    let _ = wait(&lp, &first);
}

#[test]
fn cancelling_and_closing_end_fetches() {
    let stall = ScriptServer::start(|mut conn: Conn| {
        conn.read_request();
        std::thread::sleep(Duration::from_secs(3));
    });
    let lp = IOLoop::new().unwrap();
    let c = client(&lp);
    let f = c.fetch(HTTPRequest::new(stall.url("/"))).unwrap();
    lp.run_once(Some(Duration::from_millis(50))).unwrap();
    f.cancel().unwrap();
    lp.run_until(|| f.done(), LIMIT).unwrap();
    assert_eq!(f.error().unwrap().code(), tornado_rs::Code::CANCELLED);

    let g = c.fetch(HTTPRequest::new(stall.url("/"))).unwrap();
    let h = c.fetch(HTTPRequest::new(stall.url("/"))).unwrap();
    lp.run_once(Some(Duration::from_millis(50))).unwrap();
    c.cancel_all();
    for f in [&g, &h] {
        assert!(f.done());
        assert_eq!(
            kind_of(&f.error().unwrap()),
            Some(FetchErrorKind::Cancelled)
        );
    }

    let g = c.fetch(HTTPRequest::new(stall.url("/"))).unwrap();
    let h = c.fetch(HTTPRequest::new(stall.url("/"))).unwrap();
    c.close();
    for f in [&g, &h] {
        assert!(f.done());
        assert_eq!(kind_of(&f.error().unwrap()), Some(FetchErrorKind::Closed));
    }
    assert!(c.fetch(HTTPRequest::new(stall.url("/"))).is_err());
    // The aborted fetches' tasks end without touching the finished futures.
    lp.run_once(Some(Duration::from_millis(50))).unwrap();
}

#[test]
fn streaming_and_header_callbacks_see_the_final_response() {
    let server = ScriptServer::start(keep_alive(|r| match r.target.as_str() {
        "/start" => (
            "302 Found".into(),
            vec![("Location".into(), "/end".into())],
            b"redirect body".to_vec(),
        ),
        _ => (
            "200 OK".into(),
            vec![("X-Final".into(), "1".into())],
            vec![b'z'; 300_000],
        ),
    }));
    let lp = IOLoop::new().unwrap();
    let chunks = Rc::new(RefCell::new(Vec::<usize>::new()));
    let lines = Rc::new(RefCell::new(Vec::<String>::new()));
    let mut request = HTTPRequest::new(server.url("/start"));
    let sink = chunks.clone();
    request.streaming_callback = Some(StreamingCallback::new(move |chunk: &[u8]| {
        sink.borrow_mut().push(chunk.len())
    }));
    let sink = lines.clone();
    request.header_callback = Some(Rc::new(move |line: &[u8]| {
        sink.borrow_mut()
            .push(String::from_utf8(line.to_vec()).unwrap())
    }));
    let r = fetch(&lp, &client(&lp), request);
    assert_eq!(r.code, 200, "{:?}", r.error);
    assert!(r.body.is_empty(), "streamed bodies are not buffered");
    assert_eq!(chunks.borrow().iter().sum::<usize>(), 300_000);
    let lines = lines.borrow();
    assert_eq!(lines[0], "HTTP/1.1 200 OK\r\n");
    assert!(lines.contains(&"X-Final: 1\r\n".to_string()));
    assert_eq!(lines.last().unwrap(), "\r\n");
}

#[test]
fn chunked_uploads_and_expect_continue() {
    let server = ScriptServer::start(|mut conn: Conn| {
        while let Some(request) = conn.read_request() {
            let mut body = request.body.clone();
            if request.header("Expect").is_some() {
                conn.write(b"HTTP/1.1 100 Continue\r\n\r\n");
                let len: usize = request.header("Content-Length").unwrap().parse().unwrap();
                body = vec![0; len];
                std::io::Read::read_exact(&mut conn.reader, &mut body).unwrap();
            }
            let reply = format!(
                "{} {}",
                request.header("Transfer-Encoding").unwrap_or("-"),
                body.len()
            );
            conn.respond("200 OK", &[], reply.as_bytes());
        }
    });
    let lp = IOLoop::new().unwrap();
    let c = client(&lp);
    let parts = Rc::new(RefCell::new(vec![vec![b'a'; 1000], vec![b'b'; 70_000]]));
    let mut request = HTTPRequest::new(server.url("/upload"));
    request.method = "PUT".into();
    request.body_producer = Some(BodyProducer::pull(move || Ok(parts.borrow_mut().pop())));
    assert_eq!(fetch(&lp, &c, request).body, b"chunked 71000");

    let mut request = HTTPRequest::new(server.url("/expect"));
    request.method = "POST".into();
    request.body = Some(vec![b'x'; 5000]);
    request.expect_100_continue = true;
    let r = fetch(&lp, &c, request);
    assert_eq!(r.body, b"- 5000", "{:?}", r.error);
}

#[test]
fn hostname_mapping_and_connect_errors() {
    let server = ScriptServer::start(keep_alive(|r| {
        text("200 OK", r.header("Host").unwrap_or(""))
    }));
    let lp = IOLoop::new().unwrap();
    let options = ClientOptions {
        hostname_mapping: vec![("example.test".into(), vec!["127.0.0.1".parse().unwrap()])],
        ..Default::default()
    };
    let c = AsyncHTTPClient::new(&lp, options).unwrap();
    let url = format!("http://example.test:{}/", server.addr.port());
    let r = get(&lp, &c, &url);
    assert_eq!(
        r.body,
        format!("example.test:{}", server.addr.port()).as_bytes(),
        "{:?}",
        r.error
    );

    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let r = get(&lp, &c, &format!("http://127.0.0.1:{closed_port}/"));
    assert_eq!(kind(&r), Some(FetchErrorKind::Connect), "{:?}", r.error);
    let r = get(&lp, &c, "http://no-such-host.invalid/");
    assert_eq!(kind(&r), Some(FetchErrorKind::Resolve), "{:?}", r.error);
}

#[test]
fn through_an_http_proxy() {
    let proxy = ScriptServer::start(keep_alive(|r| {
        text(
            "200 OK",
            &format!(
                "proxied {} {}",
                r.target,
                r.header("Proxy-Authorization").unwrap_or("-")
            ),
        )
    }));
    let lp = IOLoop::new().unwrap();
    let mut request = HTTPRequest::new("http://example.test/path");
    request.proxy_host = Some("127.0.0.1".into());
    request.proxy_port = Some(proxy.addr.port());
    request.proxy_username = Some("u".into());
    request.proxy_password = Some("p".into());
    let r = fetch(&lp, &client(&lp), request);
    assert_eq!(
        r.body, b"proxied http://example.test/path Basic dTpw",
        "{:?}",
        r.error
    );
}

#[test]
fn a_stall_after_the_headers_times_out_and_a_reset_mid_body_is_closed() {
    let stall = ScriptServer::start(|mut conn: Conn| {
        conn.read_request();
        conn.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial");
        std::thread::sleep(Duration::from_secs(3));
    });
    let lp = IOLoop::new().unwrap();
    let c = client(&lp);
    let mut request = HTTPRequest::new(stall.url("/"));
    request.request_timeout = Some(Duration::from_millis(300));
    let r = fetch(&lp, &c, request);
    assert_eq!(kind(&r), Some(FetchErrorKind::Timeout), "{:?}", r.error);

    let reset = ScriptServer::start(|mut conn: Conn| {
        conn.read_request();
        conn.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nsome of the body");
        std::thread::sleep(Duration::from_millis(50));
        // SO_LINGER 0: close sends a RST instead of a FIN.
        let socket = socket2::SockRef::from(conn.reader.get_ref());
        socket.set_linger(Some(Duration::ZERO)).unwrap();
    });
    let r = get(&lp, &c, &reset.url("/"));
    assert_eq!(kind(&r), Some(FetchErrorKind::Closed), "{:?}", r.error);
}

#[test]
fn an_endless_body_stops_at_max_body_size() {
    let endless = ScriptServer::start(|mut conn: Conn| {
        conn.read_request();
        conn.write(b"HTTP/1.1 200 OK\r\n\r\n");
        let block = vec![b'e'; 65536];
        while conn.write(&block) {}
    });
    let lp = IOLoop::new().unwrap();
    let options = ClientOptions {
        max_body_size: 4 * 1024 * 1024,
        ..Default::default()
    };
    let c = AsyncHTTPClient::new(&lp, options).unwrap();
    let r = get(&lp, &c, &endless.url("/"));
    assert_eq!(
        kind(&r),
        Some(FetchErrorKind::BodyTooLarge),
        "{:?}",
        r.error
    );
}

#[test]
fn large_bodies_arrive_intact_into_recycled_buffers() {
    // Bodies of known length are read straight into their buffer; a buffer
    // given back with recycle_body is reused by the next large body, which
    // must hold exactly its own bytes (shorter, different: no leftovers).
    let server = ScriptServer::start(keep_alive(|request| {
        let body: Vec<u8> = match request.target.as_str() {
            "/long" => (0..3_000_000u32).map(|i| (i % 251) as u8).collect(),
            _ => vec![b'z'; 200_000],
        };
        ("200 OK".into(), vec![], body)
    }));
    let lp = IOLoop::new().unwrap();
    let c = client(&lp);
    for _ in 0..2 {
        let long = get(&lp, &c, &server.url("/long"));
        assert_eq!(long.body.len(), 3_000_000, "{:?}", long.error);
        assert!(long
            .body
            .iter()
            .enumerate()
            .all(|(i, &b)| b == (i % 251) as u8));
        c.recycle_body(long.body);
        let short = get(&lp, &c, &server.url("/short"));
        assert_eq!(short.body, vec![b'z'; 200_000]);
        c.recycle_body(short.body);
    }
    assert_eq!(server.connections(), 1, "all on one keep-alive connection");
}

#[test]
fn if_modified_since_is_sent_as_an_http_date() {
    let server = ScriptServer::start(keep_alive(|r| {
        text("200 OK", r.header("If-Modified-Since").unwrap_or("-"))
    }));
    let lp = IOLoop::new().unwrap();
    let c = client(&lp);
    let mut request = HTTPRequest::new(server.url("/"));
    request.if_modified_since = Some(std::time::UNIX_EPOCH + Duration::from_secs(784_111_777));
    let r = fetch(&lp, &c, request);
    assert_eq!(r.body, b"Sun, 06 Nov 1994 08:49:37 GMT", "{:?}", r.error);
    assert_eq!(get(&lp, &c, &server.url("/")).body, b"-", "only when set");
}

#[test]
fn network_interface_is_the_source_address() {
    let server = ScriptServer::start(|mut conn: Conn| {
        let peer = conn.reader.get_ref().peer_addr().unwrap().ip().to_string();
        while conn.read_request().is_some() {
            if !conn.respond("200 OK", &[], peer.as_bytes()) {
                return;
            }
        }
    });
    let lp = IOLoop::new().unwrap();
    let c = client(&lp);
    for source in ["127.0.0.2", "127.0.0.3"] {
        let mut request = HTTPRequest::new(server.url("/"));
        request.network_interface = Some(source.parse().unwrap());
        let r = fetch(&lp, &c, request);
        assert_eq!(r.body, source.as_bytes(), "{:?}", r.error);
    }
    assert_eq!(get(&lp, &c, &server.url("/")).body, b"127.0.0.1");
}

#[test]
fn allow_ipv6_off_keeps_to_ipv4_addresses() {
    let server = ScriptServer::start(keep_alive(|_| text("200 OK", "over IPv4")));
    let port = server.addr.port();
    let options = ClientOptions {
        hostname_mapping: vec![
            ("v6only.test".into(), vec!["::1".parse().unwrap()]),
            (
                "dual.test".into(),
                vec!["::1".parse().unwrap(), "127.0.0.1".parse().unwrap()],
            ),
        ],
        ..Default::default()
    };
    let lp = IOLoop::new().unwrap();
    let c = AsyncHTTPClient::new(&lp, options).unwrap();
    let ipv4_only = |url: String| {
        let mut request = HTTPRequest::new(url);
        request.allow_ipv6 = false;
        request
    };
    let r = fetch(&lp, &c, ipv4_only(format!("http://v6only.test:{port}/")));
    assert_eq!(r.code, 599);
    assert_eq!(kind(&r), Some(FetchErrorKind::Resolve), "{:?}", r.error);
    let r = fetch(&lp, &c, ipv4_only(format!("http://dual.test:{port}/")));
    assert_eq!(r.body, b"over IPv4", "{:?}", r.error);
    let r = fetch(&lp, &c, ipv4_only(format!("http://[::1]:{port}/")));
    assert_eq!(kind(&r), Some(FetchErrorKind::Resolve), "{:?}", r.error);
}

#[test]
fn connect_timeout_fires_while_connecting_and_zero_means_none() {
    let full = common::full_listener::full_listener();
    let lp = IOLoop::new().unwrap();
    let c = client(&lp);
    let mut request = HTTPRequest::new(format!("http://{}/", full.addr));
    request.connect_timeout = Some(Duration::from_millis(300));
    let r = fetch(&lp, &c, request);
    assert_eq!(kind(&r), Some(FetchErrorKind::Timeout), "{:?}", r.error);
    let message = r.error.as_ref().unwrap().message().to_string();
    assert!(message.contains("while connecting"), "{message}");

    // Zero is no limit (Tornado's 0), not a limit of zero.
    let slow = ScriptServer::start(keep_alive(|_| {
        std::thread::sleep(Duration::from_millis(300));
        text("200 OK", "late")
    }));
    let mut request = HTTPRequest::new(slow.url("/"));
    request.connect_timeout = Some(Duration::ZERO);
    request.request_timeout = Some(Duration::ZERO);
    let r = fetch(&lp, &c, request);
    assert_eq!(r.body, b"late", "{:?}", r.error);
}

#[test]
fn max_buffer_size_bounds_a_head_but_not_a_body() {
    let server = ScriptServer::start(keep_alive(|r| match r.target.as_str() {
        "/long-head" => (
            "200 OK".into(),
            vec![("X-Long".into(), "h".repeat(3000))],
            b"short".to_vec(),
        ),
        _ => ("200 OK".into(), vec![], vec![b'b'; 100_000]),
    }));
    let lp = IOLoop::new().unwrap();
    let options = ClientOptions {
        max_buffer_size: 1000,
        ..Default::default()
    };
    let c = AsyncHTTPClient::new(&lp, options).unwrap();
    let r = get(&lp, &c, &server.url("/long-head"));
    assert_eq!(r.code, 599);
    assert_eq!(
        kind(&r),
        Some(FetchErrorKind::HeaderTooLarge),
        "{:?}",
        r.error
    );
    let r = get(&lp, &c, &server.url("/big"));
    assert_eq!(
        r.body.len(),
        100_000,
        "a body passes in bounded reads: {:?}",
        r.error
    );
}

#[test]
fn idle_connections_are_capped_per_host() {
    let server = ScriptServer::start(keep_alive(|_| {
        std::thread::sleep(Duration::from_millis(100));
        text("200 OK", "ok")
    }));
    let lp = IOLoop::new().unwrap();
    let options = ClientOptions {
        max_clients: 3,
        max_idle_per_host: Some(1),
        ..Default::default()
    };
    let c = AsyncHTTPClient::new(&lp, options).unwrap();
    let futures: Vec<_> = (0..3)
        .map(|_| c.fetch(HTTPRequest::new(server.url("/"))).unwrap())
        .collect();
    for f in &futures {
        assert_eq!(wait(&lp, f).body, b"ok");
    }
    assert_eq!(server.connections(), 3, "three at once");
    assert_eq!(c.idle_connections(), 1, "one kept for the host");
}

/// Connections a keep-alive origin accepted for `n` fetches queued at once.
fn connections_for_burst(n: usize, max_clients: usize, max_idle: Option<usize>) -> usize {
    let server = ScriptServer::start(keep_alive(|_| text("200 OK", "ok")));
    let lp = IOLoop::new().unwrap();
    let options = ClientOptions {
        max_clients,
        max_idle_per_host: max_idle,
        ..Default::default()
    };
    let c = AsyncHTTPClient::new(&lp, options).unwrap();
    let request = Rc::new(HTTPRequest::new(server.url("/")));
    let futures: Vec<_> = (0..n)
        .map(|_| c.fetch_shared(request.clone()).unwrap())
        .collect();
    for f in &futures {
        let r = wait(&lp, f);
        assert_eq!(r.body, b"ok", "{:?}", r.error);
    }
    server.connections()
}

#[test]
fn a_burst_to_one_keep_alive_origin_opens_at_most_max_clients_connections() {
    // Issue 12 #13: at max_clients 16 and 64 with the idle limit left at
    // its default, every wave of finished fetches closed the connections
    // beyond 10 and the next wave connected again.
    for max_clients in [16, 64] {
        let opened = connections_for_burst(600, max_clients, None);
        assert!(
            opened <= max_clients,
            "600 fetches at max_clients {max_clients} opened {opened} connections"
        );
    }
}

#[test]
fn queued_fetches_start_in_the_order_they_were_made() {
    let server = ScriptServer::start(keep_alive(|r| text("200 OK", &r.target)));
    let lp = IOLoop::new().unwrap();
    let options = ClientOptions {
        max_clients: 1,
        ..Default::default()
    };
    let c = AsyncHTTPClient::new(&lp, options).unwrap();
    let futures: Vec<_> = (0..6)
        .map(|i| {
            c.fetch(HTTPRequest::new(server.url(&format!("/{i}"))))
                .unwrap()
        })
        .collect();
    for f in &futures {
        wait(&lp, f);
    }
    let order: Vec<String> = server.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(order, ["/0", "/1", "/2", "/3", "/4", "/5"]);
}

#[test]
fn a_cr_or_lf_in_a_header_name_is_refused_before_sending() {
    let server = ScriptServer::start(keep_alive(|_| text("200 OK", "sent")));
    let lp = IOLoop::new().unwrap();
    let c = client(&lp);
    for name in ["X-Bad\r\nInjected", "X-Bad\nInjected", "X-Bad\rInjected"] {
        let mut request = HTTPRequest::new(server.url("/"));
        request.headers.add(name, "1");
        let r = fetch(&lp, &c, request);
        assert_eq!(kind(&r), Some(FetchErrorKind::InvalidRequest), "{name:?}");
    }
    assert!(server.requests().is_empty(), "nothing was sent");
}

#[test]
fn time_info_stages_are_in_order_and_start_time_is_the_fetch_start() {
    let server = ScriptServer::start(keep_alive(|r| {
        if r.target == "/slow" {
            std::thread::sleep(Duration::from_millis(200));
        }
        text("200 OK", "timed")
    }));
    let lp = IOLoop::new().unwrap();
    let options = ClientOptions {
        max_clients: 1,
        ..Default::default()
    };
    let c = AsyncHTTPClient::new(&lp, options).unwrap();
    let before = std::time::SystemTime::now();
    let slow = c.fetch(HTTPRequest::new(server.url("/slow"))).unwrap();
    let queued = c.fetch(HTTPRequest::new(server.url("/"))).unwrap();
    let first = wait(&lp, &slow);
    let second = wait(&lp, &queued);
    let after = std::time::SystemTime::now();
    for r in [&first, &second] {
        let t = r.time_info;
        assert!(
            0.0 <= t.queue
                && t.queue <= t.namelookup
                && t.namelookup <= t.connect
                && t.connect <= t.pretransfer
                && t.pretransfer <= t.starttransfer
                && t.starttransfer <= t.total
                && t.total > 0.0,
            "{t:?}"
        );
        assert!(before <= r.start_time && r.start_time <= after);
    }
    assert!(
        first.time_info.starttransfer >= 0.15,
        "{:?}",
        first.time_info
    );
    assert!(
        second.time_info.queue >= 0.15,
        "waited for the slot: {:?}",
        second.time_info
    );
    assert!(
        second.request_time < second.time_info.total,
        "request_time leaves out the queue"
    );
}

#[test]
fn client_defaults_fill_what_a_request_leaves_unset() {
    let server = ScriptServer::start(keep_alive(|r| {
        let reply = format!(
            "{} {}",
            r.header("User-Agent").unwrap_or("-"),
            r.header("X-Default").unwrap_or("-")
        );
        text("200 OK", &reply)
    }));
    let lp = IOLoop::new().unwrap();
    let mut defaults = HTTPRequest::new("http://ignored/");
    defaults.user_agent = Some("defaults/1".into());
    defaults.headers.add("X-Default", "yes");
    let options = ClientOptions {
        defaults: Some(defaults),
        ..Default::default()
    };
    let c = AsyncHTTPClient::new(&lp, options).unwrap();
    let r = fetch(&lp, &c, c.request(server.url("/")));
    assert_eq!(r.body, b"defaults/1 yes", "{:?}", r.error);
    let mut own = c.request(server.url("/"));
    own.user_agent = Some("mine/2".into());
    assert_eq!(fetch(&lp, &c, own).body, b"mine/2 yes");
}

#[test]
fn wire_details_deflate_304_repeated_headers_encoding_and_method_rules() {
    let server = ScriptServer::start(keep_alive(|r| match r.target.as_str() {
        "/deflate" => {
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            z.write_all(b"inflated!").unwrap();
            (
                "200 OK".into(),
                vec![("Content-Encoding".into(), "deflate".into())],
                z.finish().unwrap(),
            )
        }
        "/304" => (
            "304 Not Modified".into(),
            vec![("Content-Length".into(), "10".into())],
            vec![],
        ),
        "/repeated" => {
            let values: Vec<&str> = r
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("X-Rep"))
                .map(|(_, v)| v.as_str())
                .collect();
            text("200 OK", &values.join(","))
        }
        target => text(
            "200 OK",
            &format!("{} {} {}", r.method, target, r.body.len()),
        ),
    }));
    let lp = IOLoop::new().unwrap();
    let c = client(&lp);
    assert_eq!(get(&lp, &c, &server.url("/deflate")).body, b"inflated!");

    // A 304 with a Content-Length has no body: the next request on the
    // connection is answered, not taken for its body.
    let r = get(&lp, &c, &server.url("/304"));
    assert_eq!((r.code, r.body.len()), (304, 0), "{:?}", r.error);
    assert_eq!(get(&lp, &c, &server.url("/after")).body, b"GET /after 0");

    let mut request = HTTPRequest::new(server.url("/repeated"));
    request.headers.add("X-Rep", "1");
    request.headers.add("X-Rep", "2");
    assert_eq!(fetch(&lp, &c, request).body, b"1,2", "both, in order");

    let r = get(&lp, &c, &server.url("/a b/caf\u{e9}?q=a b"));
    assert_eq!(r.body, b"GET /a%20b/caf%C3%A9?q=a%20b 0", "{:?}", r.error);

    for method in ["POST", "PUT", "PATCH"] {
        let mut request = HTTPRequest::new(server.url("/m"));
        request.method = method.into();
        let r = fetch(&lp, &c, request);
        assert_eq!(
            kind(&r),
            Some(FetchErrorKind::InvalidRequest),
            "{method} without a body"
        );
    }
    for method in ["GET", "HEAD"] {
        let mut request = HTTPRequest::new(server.url("/m"));
        request.method = method.into();
        request.body = Some(b"x".to_vec());
        let r = fetch(&lp, &c, request);
        assert_eq!(
            kind(&r),
            Some(FetchErrorKind::InvalidRequest),
            "{method} with a body"
        );
    }
    let mut request = HTTPRequest::new(server.url("/m"));
    request.method = "BREW".into();
    request.allow_nonstandard_methods = true;
    assert_eq!(fetch(&lp, &c, request).body, b"BREW /m 0");
    let mut request = HTTPRequest::new(server.url("/m"));
    request.body = Some(b"abc".to_vec());
    request.allow_nonstandard_methods = true;
    assert_eq!(
        fetch(&lp, &c, request).body,
        b"GET /m 3",
        "a GET body, allowed"
    );
}

#[test]
fn a_fetch_cancelled_in_the_queue_gives_no_slot_away() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (n, m) = (now.clone(), most.clone());
    let server = ScriptServer::start(keep_alive(move |_| {
        let at_once = n.fetch_add(1, Ordering::SeqCst) + 1;
        m.fetch_max(at_once, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(150));
        n.fetch_sub(1, Ordering::SeqCst);
        text("200 OK", "ok")
    }));
    let lp = IOLoop::new().unwrap();
    let options = ClientOptions {
        max_clients: 1,
        ..Default::default()
    };
    let c = AsyncHTTPClient::new(&lp, options).unwrap();
    let first = c.fetch(HTTPRequest::new(server.url("/1"))).unwrap();
    let cancelled = c.fetch(HTTPRequest::new(server.url("/2"))).unwrap();
    let third = c.fetch(HTTPRequest::new(server.url("/3"))).unwrap();
    lp.run_until(|| false, Some(Duration::from_millis(30))).ok();
    cancelled.cancel().unwrap();
    assert_eq!(wait(&lp, &first).body, b"ok");
    assert_eq!(wait(&lp, &third).body, b"ok");
    assert_eq!(
        most.load(Ordering::SeqCst),
        1,
        "never two at once with max_clients 1"
    );
    let targets: Vec<String> = server.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(targets, ["/1", "/3"]);
}
