//! Tornado's request and client features that C needed a way to say
//! (issue 13), from the Rust API against scripted servers on 127.0.0.1:
//! queue and active counts, header values as bytes, Digest
//! authentication's single retry, OS error numbers, a resolver hook and
//! endpoint mappings; and against Tornado's HTTPServer: an
//! asynchronous body producer with flow control, and a streaming callback
//! that pauses the read. (httpbin's digest endpoints are in
//! tests/real_servers.rs; C in tests/c/test_http_features.c.)

mod common;

use std::time::Duration;

use common::script_server::{Conn, ScriptServer};
use common::tornado_server::TornadoServer;
use tornado_rs::http::client::{AsyncHTTPClient, ClientOptions};
use tornado_rs::http::request::{
    AuthMode, BodyProducer, BodyWriter, HTTPRequest, StreamingCallback,
};
use tornado_rs::resolver::{AddressFamily, ResolveHook};
use tornado_rs::{Future, IOLoop, LoopRef};

const LIMIT: Option<Duration> = Some(Duration::from_secs(20));

#[test]
fn queued_and_active_counts_follow_the_fetches() {
    let server = ScriptServer::start(|mut conn: Conn| {
        while conn.read_request().is_some() {
            std::thread::sleep(Duration::from_millis(200));
            if !conn.respond("200 OK", &[], b"slow") {
                return;
            }
        }
    });
    let lp = IOLoop::new().unwrap();
    let options = ClientOptions {
        max_clients: 2,
        ..ClientOptions::default()
    };
    let client = AsyncHTTPClient::new(&lp, options).unwrap();
    assert_eq!((client.queued(), client.active()), (0, 0));
    let fetches: Vec<_> = (0..5)
        .map(|_| client.fetch(HTTPRequest::new(server.url("/"))).unwrap())
        .collect();
    lp.run_once(Some(Duration::from_millis(50))).unwrap();
    assert_eq!((client.active(), client.queued()), (2, 3));
    fetches[4].cancel().unwrap();
    lp.run_once(Some(Duration::ZERO)).unwrap();
    assert_eq!(client.queued(), 2, "a cancelled fetch leaves the queue");
    lp.run_until(|| fetches.iter().all(|f| f.done()), LIMIT)
        .unwrap();
    assert_eq!((client.queued(), client.active()), (0, 0));
}

#[test]
fn a_latin1_header_value_is_sent_as_its_bytes() {
    let server = ScriptServer::start(|mut conn: Conn| {
        // The request's raw head, echoed back as the body.
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8];
            if std::io::Read::read_exact(&mut conn.reader, &mut byte).is_err() {
                return;
            }
            head.push(byte[0]);
        }
        conn.respond("200 OK", &[], &head);
    });
    let lp = IOLoop::new().unwrap();
    let client = AsyncHTTPClient::new(&lp, ClientOptions::default()).unwrap();
    let mut request = HTTPRequest::new(server.url("/"));
    request.headers.add_latin1("X-Name", b"caf\xe9");
    let f = client.fetch(request).unwrap();
    lp.run_until(|| f.done(), LIMIT).unwrap();
    let r = f.result().unwrap().unwrap();
    let sent = &r.body[..];
    assert!(
        sent.windows(14).any(|w| w == b"X-Name: caf\xe9\r\n"),
        "{}",
        String::from_utf8_lossy(sent)
    );
}

#[test]
fn a_digest_challenge_is_answered_once_and_hidden_from_the_callbacks() {
    let server = ScriptServer::start(|mut conn: Conn| {
        while let Some(request) = conn.read_request() {
            let ok = match request.header("Authorization") {
                Some(auth) if auth.starts_with("Digest username=\"u\"") => {
                    conn.respond("200 OK", &[], auth.as_bytes())
                }
                _ => conn.respond(
                    "401 Unauthorized",
                    &[(
                        "WWW-Authenticate",
                        r#"Digest realm="test", nonce="abc", qop="auth", algorithm=SHA-256"#,
                    )],
                    b"challenge",
                ),
            };
            if !ok {
                return;
            }
        }
    });
    let lp = IOLoop::new().unwrap();
    let client = AsyncHTTPClient::new(&lp, ClientOptions::default()).unwrap();
    let lines = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let seen = lines.clone();
    let mut request = HTTPRequest::new(server.url("/private"));
    request.auth_username = Some("u".into());
    request.auth_password = Some("p".into());
    request.auth_mode = AuthMode::Digest;
    request.header_callback = Some(std::rc::Rc::new(move |line: &[u8]| {
        seen.borrow_mut().push(line.to_vec())
    }));
    let f = client.fetch(request).unwrap();
    lp.run_until(|| f.done(), LIMIT).unwrap();
    let r = f.result().unwrap().unwrap();
    assert_eq!(r.code, 200, "{:?}", r.error);
    let answer = String::from_utf8(r.body.to_vec()).unwrap();
    assert!(
        answer.contains(r#"uri="/private", algorithm=SHA-256"#)
            && answer.contains("qop=auth, nc=00000001"),
        "{answer}"
    );
    assert_eq!(
        lines.borrow()[0],
        b"HTTP/1.1 200 OK\r\n",
        "the callbacks saw the answer only"
    );
    assert_eq!(server.requests().len(), 2, "one challenge, one answer");
    assert!(server.requests()[0].header("Authorization").is_none());
}

/// A producer that writes `parts` pieces of 1000 bytes, each once the one
/// before reached the socket, and then resolves its future.
fn paced_producer(lp: &IOLoop, parts: usize) -> BodyProducer {
    let lp = lp.loop_ref();
    BodyProducer::writer(move |writer: BodyWriter| {
        let done = Future::new(&lp);
        fn write_next(writer: BodyWriter, left: usize, done: Future<()>) {
            if left == 0 {
                let _ = done.set_result(());
                return;
            }
            let written = writer.write(&vec![b'0' + left as u8; 1000]);
            written
                .add_done_callback(move |w| match w.error() {
                    Some(e) => {
                        let _ = done.set_error(e);
                    }
                    None => write_next(writer, left - 1, done),
                })
                .unwrap();
        }
        write_next(writer, parts, done.clone());
        done
    })
}

fn expected_upload(parts: usize) -> Vec<u8> {
    (1..=parts)
        .rev()
        .flat_map(|left| vec![b'0' + left as u8; 1000])
        .collect()
}

#[test]
fn an_asynchronous_body_producer_writes_with_flow_control() {
    let server = TornadoServer::start();
    let lp = IOLoop::new().unwrap();
    let client = AsyncHTTPClient::new(&lp, ClientOptions::default()).unwrap();
    for declared in [None, Some("3000")] {
        let mut request = HTTPRequest::new(server.url("/body"));
        request.method = "PUT".into();
        if let Some(length) = declared {
            request.headers.add("Content-Length", length);
        }
        request.body_producer = Some(paced_producer(&lp, 3));
        let f = client.fetch(request).unwrap();
        lp.run_until(|| f.done(), LIMIT).unwrap();
        let r = f.result().unwrap().unwrap();
        assert_eq!(r.code, 200, "{declared:?}: {:?}", r.error);
        assert_eq!(&r.body[..], &expected_upload(3)[..], "{declared:?}");
    }
}

#[test]
fn a_producer_that_fails_or_writes_too_late_ends_the_fetch_clearly() {
    let server = TornadoServer::start();
    let lp = IOLoop::new().unwrap();
    let client = AsyncHTTPClient::new(&lp, ClientOptions::default()).unwrap();
    let handle = lp.loop_ref();
    let kept = std::rc::Rc::new(std::cell::RefCell::new(None::<BodyWriter>));
    let keep = kept.clone();
    let mut request = HTTPRequest::new(server.url("/body"));
    request.method = "PUT".into();
    request.body_producer = Some(BodyProducer::writer(move |writer: BodyWriter| {
        *keep.borrow_mut() = Some(writer);
        let failed = Future::new(&handle);
        let _ = failed.set_error(tornado_rs::Error::new(
            tornado_rs::Code::USER,
            "no more data",
        ));
        failed
    }));
    let f = client.fetch(request).unwrap();
    lp.run_until(|| f.done(), LIMIT).unwrap();
    let r = f.result().unwrap().unwrap();
    assert_eq!(r.code, 599);
    assert!(
        r.error.as_ref().unwrap().message().contains("no more data"),
        "{:?}",
        r.error
    );
    let late = kept.borrow().clone().unwrap();
    assert!(!late.is_open());
    let write = late.write(b"late");
    lp.run_until(|| write.done(), LIMIT).unwrap();
    assert_eq!(
        write.error().map(|e| e.code()),
        Some(tornado_rs::Code::CLOSED)
    );
}

/// GETs `n` bytes from Tornado's /big (gzipped unless `decompress` is off)
/// with a callback that pauses the read after its first chunk until the
/// test lets it go on.
fn paused_read(decompress: bool) {
    let server = TornadoServer::start();
    let lp = IOLoop::new().unwrap();
    let client = AsyncHTTPClient::new(&lp, ClientOptions::default()).unwrap();
    let received = std::rc::Rc::new(std::cell::Cell::new(0usize));
    let calls = std::rc::Rc::new(std::cell::Cell::new(0usize));
    let gate: Future<()> = Future::new(&lp.loop_ref());
    let (seen, count, hold) = (received.clone(), calls.clone(), gate.clone());
    let mut request = HTTPRequest::new(server.url("/big?n=4000000"));
    request.decompress_response = decompress;
    request.streaming_callback = Some(StreamingCallback::pausing(move |chunk: &[u8]| {
        seen.set(seen.get() + chunk.len());
        count.set(count.get() + 1);
        Ok((count.get() == 1).then(|| hold.clone()))
    }));
    let f = client.fetch(request).unwrap();
    lp.run_until(|| calls.get() > 0, LIMIT).unwrap();
    // Paused: nothing more arrives however long the loop runs.
    let paused_at = (calls.get(), received.get());
    let until = std::time::Instant::now() + Duration::from_millis(300);
    while std::time::Instant::now() < until {
        lp.run_once(Some(Duration::from_millis(20))).unwrap();
    }
    assert_eq!(
        (calls.get(), received.get()),
        paused_at,
        "decompress {decompress}: paused"
    );
    assert!(!f.done());
    gate.set_result(()).unwrap();
    lp.run_until(|| f.done(), LIMIT).unwrap();
    let r = f.result().unwrap().unwrap();
    assert_eq!(r.code, 200, "{:?}", r.error);
    if decompress {
        assert_eq!(r.headers.get("Content-Encoding"), Some("gzip"));
        assert_eq!(received.get(), 4_000_000);
    }
    assert!(calls.get() > 1);
}

#[test]
fn a_pausing_streaming_callback_holds_the_read_back() {
    paused_read(false);
}

#[test]
fn a_pausing_streaming_callback_holds_a_gzipped_read_back() {
    paused_read(true);
}

#[test]
fn the_os_error_of_a_refused_connect_and_a_reset_is_kept() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let lp = IOLoop::new().unwrap();
    let client = AsyncHTTPClient::new(&lp, ClientOptions::default()).unwrap();
    let fetch = |url: String| {
        let f = client.fetch(HTTPRequest::new(url)).unwrap();
        lp.run_until(|| f.done(), LIMIT).unwrap();
        f.result().unwrap().unwrap()
    };
    let r = fetch(format!("http://127.0.0.1:{port}/"));
    assert_eq!(
        r.error.as_ref().and_then(|e| e.os_error()),
        Some(libc::ECONNREFUSED),
        "{:?}",
        r.error
    );
    let server = ScriptServer::start(|mut conn: Conn| {
        conn.read_request();
        conn.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial");
        std::thread::sleep(Duration::from_millis(50));
        let _ = socket2::SockRef::from(conn.reader.get_ref()).set_linger(Some(Duration::ZERO));
    });
    let r = fetch(server.url("/"));
    assert_eq!(
        r.error.as_ref().and_then(|e| e.os_error()),
        Some(libc::ECONNRESET),
        "{:?}",
        r.error
    );
    let r = fetch(format!("http://127.0.0.1:{}/", server.addr.port()));
    assert!(r.error.is_some());
}

#[test]
fn a_resolver_hook_answers_later_and_endpoint_mappings_apply_first() {
    let server = ScriptServer::start(|mut conn: Conn| {
        while let Some(request) = conn.read_request() {
            let host = request.header("Host").unwrap_or("-").to_string();
            if !conn.respond("200 OK", &[], host.as_bytes()) {
                return;
            }
        }
    });
    let port = server.addr.port();
    let lp = IOLoop::new().unwrap();
    let asked = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let log = asked.clone();
    let hook = ResolveHook(std::rc::Rc::new(
        move |lp: &LoopRef, host: &str, port: u16, family| {
            log.borrow_mut().push((host.to_string(), port, family));
            let answer = Future::new(lp);
            let later = answer.clone();
            let host = host.to_string();
            // Answered from a timer: the resolver is asynchronous.
            lp.call_later(Duration::from_millis(20), move || {
                let _ = match host.as_str() {
                    "svc.test" => later.set_result(vec![
                        "[::1]:1".parse().unwrap(),
                        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                    ]),
                    "empty.test" => later.set_result(Vec::new()),
                    _ => later.set_error(tornado_rs::Error::new(
                        tornado_rs::Code::USER,
                        "unknown to the hook",
                    )),
                };
            })
            .unwrap();
            answer
        },
    ));
    let options = ClientOptions {
        resolver: Some(hook),
        endpoint_mapping: vec![(("mapped.test".into(), 80), ("svc.test".into(), port))],
        ..ClientOptions::default()
    };
    let client = AsyncHTTPClient::new(&lp, options).unwrap();
    let fetch = |url: String, ipv6: bool| {
        let mut request = HTTPRequest::new(url);
        request.allow_ipv6 = ipv6;
        let f = client.fetch(request).unwrap();
        lp.run_until(|| f.done(), LIMIT).unwrap();
        f.result().unwrap().unwrap()
    };
    let r = fetch(format!("http://svc.test:{port}/"), false);
    assert_eq!(
        &r.body[..],
        format!("svc.test:{port}").as_bytes(),
        "{:?}",
        r.error
    );
    assert_eq!(
        asked.borrow()[0],
        ("svc.test".into(), port, AddressFamily::V4)
    );
    let r = fetch("http://mapped.test/".into(), false);
    assert_eq!(
        &r.body[..],
        b"mapped.test",
        "the URL's Host is kept: {:?}",
        r.error
    );
    assert_eq!(
        asked.borrow()[1].0,
        "svc.test",
        "the mapped name is what gets resolved"
    );
    for host in ["empty.test", "nowhere.test"] {
        let r = fetch(format!("http://{host}/"), true);
        assert_eq!(
            r.error.as_ref().map(|e| e.code()),
            Some(tornado_rs::Code::RESOLVE),
            "{host}: {:?}",
            r.error
        );
    }
    let r = fetch(format!("http://127.0.0.1:{port}/"), true);
    assert_eq!(
        r.error.as_ref().map(|e| e.code()),
        Some(tornado_rs::Code::RESOLVE),
        "{:?}",
        r.error
    );
    assert_eq!(
        asked.borrow().last().unwrap().0,
        "127.0.0.1",
        "IP literals reach the hook too, as in Tornado"
    );
}

#[test]
fn a_lookup_that_never_answers_times_out_while_resolving() {
    let lp = IOLoop::new().unwrap();
    let never = ResolveHook(std::rc::Rc::new(|lp: &LoopRef, _: &str, _: u16, _| {
        Future::new(lp)
    }));
    let options = ClientOptions {
        resolver: Some(never),
        ..ClientOptions::default()
    };
    let client = AsyncHTTPClient::new(&lp, options).unwrap();
    let mut request = HTTPRequest::new("http://127.0.0.1:9/");
    request.connect_timeout = Some(Duration::from_millis(100));
    let f = client.fetch(request).unwrap();
    lp.run_until(|| f.done(), LIMIT).unwrap();
    let r = f.result().unwrap().unwrap();
    assert_eq!(
        r.error.as_ref().map(|e| e.message()),
        Some("timeout: Timeout while resolving 127.0.0.1"),
        "as Tornado's message"
    );
}

#[test]
fn a_streamed_upload_is_not_sent_again_on_a_307() {
    let server = ScriptServer::start(|mut conn: Conn| {
        while let Some(request) = conn.read_request() {
            let ok = match request.target.as_str() {
                "/moved" => conn.respond(
                    "307 Temporary Redirect",
                    &[("Location", "/final")],
                    b"moved",
                ),
                _ => conn.respond("200 OK", &[], b"followed"),
            };
            if !ok {
                return;
            }
        }
    });
    let lp = IOLoop::new().unwrap();
    let client = AsyncHTTPClient::new(&lp, ClientOptions::default()).unwrap();
    let calls = std::rc::Rc::new(std::cell::Cell::new(0));
    let counted = calls.clone();
    let mut request = HTTPRequest::new(server.url("/moved"));
    request.method = "PUT".into();
    request.body_producer = Some(BodyProducer::pull(move || {
        counted.set(counted.get() + 1);
        Ok((counted.get() == 1).then(|| b"once".to_vec()))
    }));
    let f = client.fetch(request).unwrap();
    lp.run_until(|| f.done(), LIMIT).unwrap();
    let r = f.result().unwrap().unwrap();
    assert_eq!(
        (r.code, &r.body[..]),
        (307, &b"moved"[..]),
        "the 307 is the response"
    );
    assert_eq!(server.requests().len(), 1, "nothing sent to /final");
}
