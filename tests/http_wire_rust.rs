//! What real servers send and Tornado's clients accept, from the Rust API,
//! against scripted servers on 127.0.0.1: heads ending in bare LF,
//! codings on body-less responses, multi-member gzip, a gzip stream that
//! waits for the client, the 1xx limit, a streamed upload's Content-Length,
//! a POST's default Content-Type, and header lines as bytes. (C covers the
//! same through the C API in tests/c/test_http_wire.c.)

mod common;

use std::cell::RefCell;
use std::io::Write as _;
use std::rc::Rc;
use std::time::Duration;

use common::script_server::{Conn, ScriptServer};
use tornado_rs::http::request::{BodyProducer, HTTPRequest, StreamingCallback};
use tornado_rs::http::response::HTTPResponse;
use tornado_rs::http::{kind_of, FetchErrorKind};

use common::fetch::fetch_once as fetch;

/// A request that fails within 2 s instead of hanging.
fn bounded(url: String) -> HTTPRequest {
    let mut request = HTTPRequest::new(url);
    request.request_timeout = Some(Duration::from_secs(2));
    request
}

fn kind(response: &HTTPResponse) -> Option<FetchErrorKind> {
    response.error.as_ref().and_then(kind_of)
}

/// Writes `bytes` after each request, keeping the connection open.
fn canned(bytes: &'static [u8]) -> impl Fn(Conn) + Send + Sync + 'static {
    move |mut conn: Conn| {
        while conn.read_request().is_some() {
            if !conn.write(bytes) {
                return;
            }
        }
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn a_bare_lf_head_and_chunked_body_are_read_at_once() {
    let server = ScriptServer::start(canned(
        b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\nX-Lf: 1\n\n4\nbare\n3\n lf\n0\n\n",
    ));
    let r = fetch(bounded(server.url("/")));
    assert_eq!(
        (r.code, &r.body[..]),
        (200, &b"bare lf"[..]),
        "{:?}",
        r.error
    );
    assert_eq!(r.headers.get("X-Lf"), Some("1"));
}

#[test]
fn a_coding_on_a_response_without_a_body_is_no_error() {
    let cases: [(&'static [u8], &str, u16); 4] = [
        (
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 9\r\n\r\n",
            "HEAD",
            200,
        ),
        (
            b"HTTP/1.1 204 No Content\r\nContent-Encoding: gzip\r\n\r\n",
            "GET",
            204,
        ),
        (
            b"HTTP/1.1 304 Not Modified\r\nContent-Encoding: gzip\r\n\r\n",
            "GET",
            304,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 0\r\n\r\n",
            "GET",
            200,
        ),
    ];
    for (bytes, method, code) in cases {
        let server = ScriptServer::start(canned(bytes));
        let mut request = bounded(server.url("/"));
        request.method = method.into();
        let r = fetch(request);
        assert_eq!(
            (r.code, r.body.len()),
            (code, 0),
            "{method} {code}: {:?}",
            r.error
        );
        assert!(r.error.is_none());
    }
}

#[test]
fn every_gzip_member_is_decoded() {
    let server = ScriptServer::start(|mut conn: Conn| {
        while conn.read_request().is_some() {
            let mut body = gzip(b"one, ");
            body.extend(gzip(b"two"));
            conn.respond("200 OK", &[("Content-Encoding", "gzip")], &body);
        }
    });
    let r = fetch(bounded(server.url("/")));
    assert_eq!(&r.body[..], b"one, two", "{:?}", r.error);
}

#[test]
fn decoded_bytes_reach_the_streaming_callback_before_the_server_sends_more() {
    let server = ScriptServer::start(|mut conn: Conn| {
        conn.read_request();
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b"first part").unwrap();
        e.flush().unwrap();
        let part = e.get_ref().clone();
        let mut bytes =
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_vec();
        bytes.extend(format!("{:x}\r\n", part.len()).into_bytes());
        bytes.extend(part);
        bytes.extend(b"\r\n");
        conn.write(&bytes);
        std::thread::sleep(Duration::from_secs(3));
    });
    let seen = Rc::new(RefCell::new(Vec::<u8>::new()));
    let sink = seen.clone();
    let mut request = HTTPRequest::new(server.url("/"));
    request.request_timeout = Some(Duration::from_millis(500));
    request.streaming_callback = Some(StreamingCallback::new(move |c: &[u8]| {
        sink.borrow_mut().extend(c)
    }));
    let r = fetch(request);
    assert_eq!(kind(&r), Some(FetchErrorKind::Timeout));
    assert_eq!(&seen.borrow()[..], b"first part");
}

#[test]
fn informational_responses_are_limited() {
    let ten: &'static [u8] = Box::leak(
        [
            b"HTTP/1.1 102 Processing\r\n\r\n".repeat(10),
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        ]
        .concat()
        .into_boxed_slice(),
    );
    let server = ScriptServer::start(canned(ten));
    let r = fetch(bounded(server.url("/")));
    assert_eq!((r.code, &r.body[..]), (200, &b"ok"[..]), "{:?}", r.error);
    let endless: &'static [u8] = Box::leak(b"HTTP/1.1 102 Processing\r\n\r\n".repeat(11).into());
    let server = ScriptServer::start(canned(endless));
    let r = fetch(bounded(server.url("/")));
    assert_eq!(kind(&r), Some(FetchErrorKind::Protocol), "{:?}", r.error);
}

/// A PUT of three 1000-byte chunks from a producer, with `declared` as its Content-Length.
fn produced_upload(url: String, declared: &str) -> HTTPRequest {
    let mut request = bounded(url);
    request.method = "PUT".into();
    request.headers.add("Content-Length", declared);
    let left = Rc::new(RefCell::new(3));
    request.body_producer = Some(BodyProducer::pull(move || {
        let mut left = left.borrow_mut();
        Ok((*left > 0).then(|| {
            *left -= 1;
            vec![b'p'; 1000]
        }))
    }));
    request
}

#[test]
fn a_streamed_upload_with_a_content_length_is_sent_unframed_and_must_match() {
    let server = ScriptServer::start(|mut conn: Conn| {
        while let Some(request) = conn.read_request() {
            conn.respond("200 OK", &[], &request.body);
        }
    });
    let r = fetch(produced_upload(server.url("/"), "3000"));
    assert_eq!(&r.body[..], &[b'p'; 3000][..], "{:?}", r.error);
    for declared in ["2000", "4000"] {
        let r = fetch(produced_upload(server.url("/"), declared));
        assert_eq!(
            kind(&r),
            Some(FetchErrorKind::InvalidRequest),
            "{declared}: {:?}",
            r.error
        );
    }
}

#[test]
fn a_post_without_content_type_is_sent_as_a_form_and_header_lines_are_bytes() {
    let server = ScriptServer::start(|mut conn: Conn| {
        while let Some(request) = conn.read_request() {
            let ct = request.header("Content-Type").unwrap_or("-").to_string();
            let mut head = b"HTTP/1.1 200 OK\r\nFoo: caf\xe9\r\nContent-Length: ".to_vec();
            head.extend(format!("{}\r\n\r\n{ct}", ct.len()).into_bytes());
            conn.write(&head);
        }
    });
    let lines = Rc::new(RefCell::new(Vec::new()));
    let sink = lines.clone();
    let mut request = bounded(server.url("/"));
    request.method = "POST".into();
    request.body = Some(b"a=1".to_vec());
    request.header_callback = Some(Rc::new(move |line: &[u8]| {
        sink.borrow_mut().push(line.to_vec())
    }));
    let r = fetch(request);
    assert_eq!(
        &r.body[..],
        b"application/x-www-form-urlencoded",
        "{:?}",
        r.error
    );
    assert_eq!(lines.borrow()[1], b"Foo: caf\xe9\r\n");
    assert_eq!(r.headers.get("Foo"), Some("caf\u{e9}"));
}
