//! Tornado's request and client features that C needed a way to say
//! (issue 13), from the Rust API against scripted servers on 127.0.0.1:
//! queue and active counts, header values as bytes, Digest
//! authentication's single retry. (httpbin's digest endpoints are in
//! tests/real_servers.rs; C in tests/c/test_http_features.c.)

mod common;

use std::time::Duration;

use common::script_server::{Conn, ScriptServer};
use tornado_rs::http::client::{AsyncHTTPClient, ClientOptions};
use tornado_rs::http::request::{AuthMode, HTTPRequest};
use tornado_rs::IOLoop;

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
