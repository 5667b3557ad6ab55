//! The WebSocket client against real servers on 127.0.0.1 — Tornado's
//! WebSocketHandler (plain, with compression, over TLS with a CA made for
//! the test, through the CONNECT proxy) and the `websockets` package's
//! server (tests/servers/ws_servers.py; `.ci/run` installs both) — and
//! against hostile servers written here on raw sockets, each breaking one
//! rule. A missing server fails the test with the reason.

mod common;

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::rc::Rc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tornado_rs::error::Code;
use tornado_rs::future::Future;
use tornado_rs::http::client::{AsyncHTTPClient, ClientOptions};
use tornado_rs::http::request::HTTPRequest;
use tornado_rs::websocket::handshake::accept_value;
use tornado_rs::websocket::{
    websocket_connect, CompressionOptions, Message, WebSocket, WebSocketOptions,
};
use tornado_rs::IOLoop;

use common::pki::test_pki;
use common::ws_server::WsServer;

/// Runs the loop until `f` is done (at most `secs`), and returns its outcome.
fn wait<T: Clone + 'static>(lp: &IOLoop, f: &Future<T>, secs: u64) -> tornado_rs::Result<T> {
    lp.run_until(|| f.done(), Some(Duration::from_secs(secs)))
        .expect("the loop runs");
    assert!(f.done(), "not done within {secs} s");
    f.result().unwrap()
}

/// Runs the loop for `how_long` (letting what is in flight arrive).
fn run_for(lp: &IOLoop, how_long: Duration) {
    let slept = tornado_rs::gen::sleep(lp, how_long).unwrap();
    wait(lp, &slept, 5).unwrap();
}

fn request(url: String) -> HTTPRequest {
    let mut request = HTTPRequest::new(url);
    request.connect_timeout = Some(Duration::from_secs(5));
    request.request_timeout = Some(Duration::from_secs(5));
    request
}

fn connect(
    lp: &IOLoop,
    request: HTTPRequest,
    options: WebSocketOptions,
) -> tornado_rs::Result<WebSocket> {
    let client = AsyncHTTPClient::new(lp, ClientOptions::default()).unwrap();
    let f = websocket_connect(&client, request, options).unwrap();
    wait(lp, &f, 10)
}

fn read(lp: &IOLoop, ws: &WebSocket) -> tornado_rs::Result<Option<Message>> {
    let f = ws.read_message().unwrap();
    wait(lp, &f, 10)
}

fn text(s: &str) -> Option<Message> {
    Some(Message::Text(s.into()))
}

/// Echo of text, binary, a large message and an empty one, then a clean close.
fn echo_round(lp: &IOLoop, ws: &WebSocket) {
    ws.write_text("hello \u{e9}\u{1f600}").unwrap();
    assert_eq!(read(lp, ws).unwrap(), text("hello \u{e9}\u{1f600}"));
    ws.write_binary(&[0, 1, 255]).unwrap();
    assert_eq!(
        read(lp, ws).unwrap(),
        Some(Message::Binary(vec![0, 1, 255]))
    );
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let sent = ws.write_binary(&big).unwrap();
    assert_eq!(read(lp, ws).unwrap(), Some(Message::Binary(big)));
    assert!(
        sent.done(),
        "the write future resolves once it is on the wire"
    );
    ws.write_text("").unwrap();
    assert_eq!(read(lp, ws).unwrap(), text(""));
    // Several in a row arrive in order.
    for i in 0..20 {
        ws.write_text(&format!("m{i}")).unwrap();
    }
    for i in 0..20 {
        assert_eq!(read(lp, ws).unwrap(), text(&format!("m{i}")));
    }
    let closed = ws.close(Some(1000), "bye").unwrap();
    wait(lp, &closed, 10).expect("the close handshake completes");
    assert_eq!(ws.close_code(), Some(1000), "the server echoes the code");
    assert!(ws.is_closed());
    assert_eq!(
        read(lp, ws).unwrap(),
        None,
        "reads after a clean close: None"
    );
    let late = ws.write_text("late").unwrap_err();
    assert_eq!(late.code(), Code::CLOSED);
}

#[test]
fn tornado_echo() {
    let server = WsServer::start(&["tornado"]);
    let lp = IOLoop::new().unwrap();
    let ws = connect(
        &lp,
        request(server.url("ws", "/echo")),
        WebSocketOptions::default(),
    )
    .unwrap();
    assert_eq!(ws.subprotocol(), None);
    assert_eq!(ws.extensions(), None);
    echo_round(&lp, &ws);
}

fn deflate_round(lp: &IOLoop, ws: &WebSocket) {
    assert!(
        ws.extensions()
            .is_some_and(|e| e.contains("permessage-deflate")),
        "{:?}",
        ws.extensions()
    );
    // Repeated messages: context takeover both ways.
    let line = "the quick brown fox jumps over the lazy dog ".repeat(2000);
    for _ in 0..3 {
        ws.write_text(&line).unwrap();
        assert_eq!(read(lp, ws).unwrap(), text(&line));
    }
    ws.write_binary(&[9; 100]).unwrap();
    assert_eq!(read(lp, ws).unwrap(), Some(Message::Binary(vec![9; 100])));
    // Repeats 1,000 bytes apart: past a 2^9 window, within 2^10 and more.
    let far = far_repeats();
    for _ in 0..2 {
        ws.write_binary(&far).unwrap();
        assert_eq!(read(lp, ws).unwrap(), Some(Message::Binary(far.clone())));
    }
    let closed = ws.close(Some(1000), "").unwrap();
    wait(lp, &closed, 10).unwrap();
}

fn far_repeats() -> Vec<u8> {
    let block: Vec<u8> = (0..1000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    block.repeat(20)
}

fn deflate_options(edit: impl FnOnce(&mut CompressionOptions)) -> WebSocketOptions {
    let mut compression = CompressionOptions::default();
    edit(&mut compression);
    WebSocketOptions {
        compression: Some(compression),
        ..Default::default()
    }
}

#[test]
fn tornado_with_compression() {
    let server = WsServer::start(&["tornado"]);
    let lp = IOLoop::new().unwrap();
    let ws = connect(
        &lp,
        request(server.url("ws", "/deflate")),
        deflate_options(|_| {}),
    )
    .unwrap();
    deflate_round(&lp, &ws);
    // Without context takeover on either side, and a small server window.
    let options = deflate_options(|c| {
        c.client_no_context_takeover = true;
        c.server_no_context_takeover = true;
        c.server_max_window_bits = Some(10);
    });
    let ws = connect(&lp, request(server.url("ws", "/deflate")), options).unwrap();
    // Tornado's server drops valueless parameters: it keeps its context.
    let agreed = ws.extensions().unwrap().to_string();
    assert!(agreed.contains("server_max_window_bits=10"), "{agreed}");
    deflate_round(&lp, &ws);
    // The client's window: Tornado echoes the value offered and inflates
    // with that window; offered bare, it leaves it out (32 KiB).
    let ws = connect(
        &lp,
        request(server.url("ws", "/deflate")),
        deflate_options(|c| c.client_max_window_bits = Some(9)),
    )
    .unwrap();
    assert_eq!(
        ws.extensions(),
        Some("permessage-deflate; client_max_window_bits=9")
    );
    deflate_round(&lp, &ws);
    // A server without compression: the offer is declined, messages plain.
    let ws = connect(
        &lp,
        request(server.url("ws", "/echo")),
        deflate_options(|_| {}),
    )
    .unwrap();
    assert_eq!(ws.extensions(), None);
    echo_round(&lp, &ws);
}

/// A message refused for a full write buffer leaves the deflater as it
/// was: sent again later, it arrives intact (with context takeover, a
/// compressed-but-unsent copy in our window would make the retry a
/// back-reference the server's inflater never saw).
#[test]
fn a_refused_write_does_not_touch_the_compression_context() {
    let server = WsServer::start(&["tornado"]);
    let lp = IOLoop::new().unwrap();
    let mut options = deflate_options(|_| {});
    options.max_write_buffer = 64 * 1024;
    let ws = connect(&lp, request(server.url("ws", "/slow-deflate")), options).unwrap();
    // Incompressible 16 KiB messages (an xorshift stream), so the socket's
    // buffers fill within a few MiB while the server reads nothing.
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut message = || -> Vec<u8> {
        (0..16 * 1024)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    };
    let mut sent = Vec::new();
    let mut last = None;
    let refused = loop {
        assert!(sent.len() < 10_000, "the write buffer never filled");
        let next = message();
        match ws.write_binary(&next) {
            Ok(written) => {
                last = Some(written);
                sent.push(next);
            }
            Err(e) => {
                assert_eq!(e.code(), Code::TOO_LARGE, "{e:?}");
                break next;
            }
        }
    };
    // As the C doc says: wait for the earlier writes, then send it again.
    wait(&lp, &last.expect("some writes went"), 20).expect("the earlier writes went out");
    ws.write_binary(&refused).unwrap();
    sent.push(refused);
    for (i, expected) in sent.iter().enumerate() {
        let echoed = read(&lp, &ws).unwrap_or_else(|e| panic!("message {i}: {e:?}"));
        assert!(
            echoed == Some(Message::Binary(expected.clone())),
            "message {i} of {} came back different",
            sent.len()
        );
    }
}

#[test]
fn tornado_subprotocol_headers_server_close_and_ping() {
    let server = WsServer::start(&["tornado"]);
    let lp = IOLoop::new().unwrap();
    let options = WebSocketOptions {
        subprotocols: vec!["a".into(), "chat".into()],
        ..Default::default()
    };
    let ws = connect(&lp, request(server.url("ws", "/subprotocol")), options).unwrap();
    assert_eq!(ws.subprotocol(), Some("chat"));
    assert_eq!(read(&lp, &ws).unwrap(), text("chose chat"));

    let mut r = request(server.url("ws", "/header"));
    r.headers.add("X-Test", "from the request");
    let ws = connect(&lp, r, WebSocketOptions::default()).unwrap();
    assert_eq!(read(&lp, &ws).unwrap(), text("from the request"));

    let ws = connect(
        &lp,
        request(server.url("ws", "/close")),
        WebSocketOptions::default(),
    )
    .unwrap();
    assert_eq!(
        read(&lp, &ws).unwrap(),
        None,
        "a server close ends reading cleanly"
    );
    assert_eq!(ws.close_code(), Some(4001));
    assert_eq!(ws.close_reason().as_deref(), Some("going away"));
    assert!(ws.error().is_none());

    let ws = connect(
        &lp,
        request(server.url("ws", "/ping")),
        WebSocketOptions::default(),
    )
    .unwrap();
    let pings = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let seen = pings.clone();
    ws.set_ping_callback(Some(std::rc::Rc::new(move |data: &[u8]| {
        seen.borrow_mut().push(data.to_vec())
    })))
    .unwrap();
    ws.write_text("after the ping").unwrap();
    assert_eq!(read(&lp, &ws).unwrap(), text("after the ping"));
    // The ping before the echo at least (the one at the start may have
    // been read before the callback was set).
    let pings = pings.borrow();
    assert!(
        !pings.is_empty() && pings.iter().all(|p| p == b"hi"),
        "{pings:?}"
    );
}

#[test]
fn tornado_refused_handshake_and_bad_urls() {
    let server = WsServer::start(&["tornado"]);
    let lp = IOLoop::new().unwrap();
    let error = connect(
        &lp,
        request(server.url("ws", "/nowhere")),
        WebSocketOptions::default(),
    )
    .err()
    .expect("a 404 is no WebSocket");
    assert_eq!(error.code(), Code::PROTOCOL);
    assert!(error.message().contains("HTTP 404"), "{error:?}");
    let client = AsyncHTTPClient::new(&lp, ClientOptions::default()).unwrap();
    let bad = websocket_connect(
        &client,
        request(server.url("http", "/echo")),
        WebSocketOptions::default(),
    );
    assert_eq!(bad.err().unwrap().code(), Code::INVALID_URL);
    let options = WebSocketOptions {
        subprotocols: vec!["no spaces".into()],
        ..Default::default()
    };
    let bad = websocket_connect(&client, request(server.url("ws", "/echo")), options);
    assert_eq!(bad.err().unwrap().code(), Code::INVALID);
}

#[test]
fn message_callback_form() {
    let server = WsServer::start(&["tornado"]);
    let lp = IOLoop::new().unwrap();
    let ws = connect(
        &lp,
        request(server.url("ws", "/echo")),
        WebSocketOptions::default(),
    )
    .unwrap();
    let got = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let sink = got.clone();
    ws.set_message_callback(Some(std::rc::Rc::new(move |m: Option<Message>| {
        sink.borrow_mut().push(m)
    })))
    .unwrap();
    for i in 0..5 {
        ws.write_text(&format!("cb{i}")).unwrap();
    }
    lp.run_until(|| got.borrow().len() >= 5, Some(Duration::from_secs(10)))
        .unwrap();
    let closed = ws.close(Some(1000), "").unwrap();
    wait(&lp, &closed, 10).unwrap();
    lp.run_until(|| got.borrow().len() >= 6, Some(Duration::from_secs(5)))
        .unwrap();
    let got = got.borrow();
    let expected: Vec<Option<Message>> = (0..5)
        .map(|i| text(&format!("cb{i}")))
        .chain([None])
        .collect();
    assert_eq!(*got, expected, "each message, then None at the end");
}

/// A callback set while messages wait gets them first, then the ones read
/// after, then None: in order, although more was readable at once.
#[test]
fn a_message_callback_set_late_keeps_the_order() {
    let server = WsServer::start(&["tornado"]);
    let lp = IOLoop::new().unwrap();
    let ws = connect(
        &lp,
        request(server.url("ws", "/burst")),
        WebSocketOptions::default(),
    )
    .unwrap();
    let first = read(&lp, &ws).unwrap();
    assert!(
        matches!(&first, Some(Message::Text(t)) if t.starts_with('0')),
        "{first:?}"
    );
    // Let the rest arrive: some wait in the connection, the rest in the socket.
    run_for(&lp, Duration::from_millis(300));
    let got = Rc::new(RefCell::new(Vec::new()));
    let sink = got.clone();
    ws.set_message_callback(Some(Rc::new(move |m: Option<Message>| {
        sink.borrow_mut().push(m.map(|m| match m {
            Message::Text(t) => t.chars().next().unwrap(),
            Message::Binary(_) => 'b',
        }))
    })))
    .unwrap();
    assert!(got.borrow().is_empty(), "not from inside the call");
    lp.run_until(
        || got.borrow().last() == Some(&None),
        Some(Duration::from_secs(10)),
    )
    .unwrap();
    let expected: Vec<Option<char>> = "1234567".chars().map(Some).chain([None]).collect();
    assert_eq!(*got.borrow(), expected);
}

/// Released right after its callback was set, the connection calls nothing.
#[test]
fn a_released_connection_calls_no_message_callback() {
    let server = WsServer::start(&["tornado"]);
    let lp = IOLoop::new().unwrap();
    let ws = connect(
        &lp,
        request(server.url("ws", "/burst")),
        WebSocketOptions::default(),
    )
    .unwrap();
    read(&lp, &ws).unwrap();
    run_for(&lp, Duration::from_millis(300));
    let calls = Rc::new(RefCell::new(0));
    let count = calls.clone();
    ws.set_message_callback(Some(Rc::new(move |_m: Option<Message>| {
        *count.borrow_mut() += 1
    })))
    .unwrap();
    drop(ws);
    run_for(&lp, Duration::from_millis(300));
    assert_eq!(*calls.borrow(), 0);
}

/// close() with messages waiting unread still completes the handshake: the
/// server's close is read past them.
#[test]
fn close_completes_with_messages_unread() {
    let server = WsServer::start(&["tornado"]);
    let lp = IOLoop::new().unwrap();
    let ws = connect(
        &lp,
        request(server.url("ws", "/echo")),
        WebSocketOptions::default(),
    )
    .unwrap();
    for i in 0..3 {
        ws.write_text(&format!("unread {i}")).unwrap();
    }
    run_for(&lp, Duration::from_millis(300));
    let start = Instant::now();
    let closed = ws.close(Some(1000), "").unwrap();
    wait(&lp, &closed, 10).expect("the close handshake completes");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(ws.close_code(), Some(1000));
    // What had arrived before the close is still there to read.
    assert_eq!(read(&lp, &ws).unwrap(), text("unread 0"));
}

#[test]
fn websockets_package_server() {
    let server = WsServer::start(&["websockets"]);
    let lp = IOLoop::new().unwrap();
    let ws = connect(
        &lp,
        request(server.url("ws", "/echo")),
        WebSocketOptions::default(),
    )
    .unwrap();
    echo_round(&lp, &ws);
    let ws = connect(
        &lp,
        request(server.url("ws", "/echo")),
        deflate_options(|_| {}),
    )
    .unwrap();
    // Its default: both windows 2^12 (the client offered its own bare).
    let agreed = ws.extensions().unwrap().to_string();
    assert!(agreed.contains("client_max_window_bits=12"), "{agreed}");
    deflate_round(&lp, &ws);
    let options = deflate_options(|c| {
        c.client_no_context_takeover = true;
        c.server_no_context_takeover = true;
        c.server_max_window_bits = Some(9);
    });
    let ws = connect(&lp, request(server.url("ws", "/echo")), options).unwrap();
    let agreed = ws.extensions().unwrap().to_string();
    assert!(agreed.contains("server_no_context_takeover"), "{agreed}");
    assert!(agreed.contains("server_max_window_bits=9"), "{agreed}");
    deflate_round(&lp, &ws);
    let options = WebSocketOptions {
        subprotocols: vec!["chat".into(), "superchat".into()],
        ..Default::default()
    };
    let ws = connect(&lp, request(server.url("ws", "/subprotocol")), options).unwrap();
    assert_eq!(ws.subprotocol(), Some("superchat"));
    assert_eq!(read(&lp, &ws).unwrap(), text("chose superchat"));
    wait(&lp, &ws.close(Some(1000), "").unwrap(), 5).unwrap();
    let ws = connect(
        &lp,
        request(server.url("ws", "/close")),
        WebSocketOptions::default(),
    )
    .unwrap();
    assert_eq!(read(&lp, &ws).unwrap(), None);
    assert_eq!(ws.close_code(), Some(4001));
    let ws = connect(
        &lp,
        request(server.url("ws", "/ping")),
        WebSocketOptions::default(),
    )
    .unwrap();
    ws.write_text("x").unwrap();
    assert_eq!(read(&lp, &ws).unwrap(), text("x"));
    wait(&lp, &ws.close(Some(1000), "").unwrap(), 5).unwrap();
}

/// A server that asks for a smaller client window (and enables
/// compression only for a client that offers client_max_window_bits).
#[test]
fn websockets_server_asks_for_a_small_client_window() {
    let server = WsServer::start(&["websockets-window"]);
    let lp = IOLoop::new().unwrap();
    for (offered, agreed) in [(None, 9), (Some(12), 9), (Some(8), 8)] {
        let options = deflate_options(|c| c.client_max_window_bits = offered);
        let ws = connect(&lp, request(server.url("ws", "/echo")), options).unwrap();
        assert_eq!(
            ws.extensions(),
            Some(format!("permessage-deflate; client_max_window_bits={agreed}").as_str()),
            "offered {offered:?}"
        );
        deflate_round(&lp, &ws);
    }
}

#[test]
fn wss_with_a_test_ca_and_through_the_connect_proxy() {
    let pki = test_pki(&["127.0.0.1"]);
    let cert = pki.dir.path().join("server.pem");
    let key = pki.dir.path().join("server.key");
    std::fs::write(&cert, &pki.cert_pem).unwrap();
    std::fs::write(&key, &pki.key_pem).unwrap();
    let server = WsServer::start(&["tornado", cert.to_str().unwrap(), key.to_str().unwrap()]);
    let lp = IOLoop::new().unwrap();

    // The system's roots do not know the test CA.
    let error = connect(
        &lp,
        request(server.url("wss", "/echo")),
        WebSocketOptions::default(),
    )
    .err()
    .expect("an unknown CA fails");
    assert_eq!(error.code(), Code::TLS, "{error:?}");

    let mut r = request(server.url("wss", "/echo"));
    r.ca_certs = Some(pki.ca_file.clone());
    let ws = connect(&lp, r, WebSocketOptions::default()).unwrap();
    echo_round(&lp, &ws);

    let proxy = common::connect_proxy::connect_proxy();
    let mut r = request(server.url("wss", "/deflate"));
    r.ca_certs = Some(pki.ca_file.clone());
    r.proxy_host = Some("127.0.0.1".into());
    r.proxy_port = Some(proxy.addr.port());
    let ws = connect(&lp, r, deflate_options(|_| {})).unwrap();
    deflate_round(&lp, &ws);
    assert_eq!(
        proxy.requests()[0].target,
        format!("127.0.0.1:{}", server.port)
    );

    // Through an https:// proxy (nginx terminating TLS in front of the
    // CONNECT proxy): the WebSocket's TLS runs inside the proxy's.
    let proxy_pki = test_pki(&["127.0.0.1"]);
    let tls_proxy = common::curl_sites::nginx_tls_proxy(&proxy_pki, proxy.addr);
    let mut r = request(server.url("wss", "/echo"));
    r.ca_certs = Some(pki.ca_file.clone());
    r.proxy_host = Some(format!("https://127.0.0.1:{}", tls_proxy.port));
    r.proxy_ca_certs = Some(proxy_pki.ca_file.clone());
    let ws = connect(&lp, r, WebSocketOptions::default()).unwrap();
    echo_round(&lp, &ws);
    assert_eq!(proxy.requests().len(), 2);
}

// ---- hostile servers ----

/// A server on raw sockets: reads the handshake request, then runs
/// `script` with the connection and the client's key.
fn hostile(script: impl FnOnce(TcpStream, String) + Send + 'static) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut key = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("sec-websocket-key") {
                    key = value.trim().to_string();
                }
            }
        }
        script(stream, key);
    });
    (url, handle)
}

fn switching(key: &str, extra: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n{extra}\r\n",
        accept_value(key)
    )
    .into_bytes()
}

/// A server frame (unmasked unless `mask`).
fn frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![b0];
    let len = payload.len();
    if len < 126 {
        out.push(len as u8);
    } else if len <= 0xFFFF {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
    out
}

/// Reads one client frame: (first byte, unmasked payload); asserts it is masked.
fn client_frame(stream: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).ok()?;
    assert_eq!(head[1] & 0x80, 0x80, "every client frame is masked");
    let len = match head[1] & 0x7F {
        126 => {
            let mut b = [0u8; 2];
            stream.read_exact(&mut b).ok()?;
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            stream.read_exact(&mut b).ok()?;
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    let mut mask = [0u8; 4];
    stream.read_exact(&mut mask).ok()?;
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).ok()?;
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
    Some((head[0], payload))
}

/// A hostile server that sends `frames` after a good handshake and reports
/// the close code the client sent back.
fn rule_breaker(
    frames: Vec<u8>,
    extra_headers: &'static str,
) -> (
    String,
    JoinHandle<()>,
    std::sync::mpsc::Receiver<Option<u16>>,
) {
    let (tx, rx) = std::sync::mpsc::channel();
    let (url, handle) = hostile(move |mut stream, key| {
        stream.write_all(&switching(&key, extra_headers)).unwrap();
        stream.write_all(&frames).unwrap();
        let mut code = None;
        while let Some((b0, payload)) = client_frame(&mut stream) {
            if b0 & 0x0F == 0x8 {
                code = (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                break;
            }
        }
        let _ = tx.send(code);
    });
    (url, handle, rx)
}

/// Connects to a rule breaker and reads until the connection ends: the
/// error, and the close code the server got.
fn broken(
    frames: Vec<u8>,
    options: WebSocketOptions,
    extra: &'static str,
) -> (tornado_rs::Error, Option<u16>) {
    let (url, handle, codes) = rule_breaker(frames, extra);
    let lp = IOLoop::new().unwrap();
    let ws = connect(&lp, request(url), options).unwrap();
    let started = Instant::now();
    let error = loop {
        match read(&lp, &ws) {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("a broken rule must end with an error, not a clean close"),
            Err(e) => break e,
        }
    };
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(ws.error().as_ref(), Some(&error));
    let code = codes
        .recv_timeout(Duration::from_secs(5))
        .expect("the server saw the end");
    handle.join().unwrap();
    (error, code)
}

#[test]
fn hostile_rule_breakers() {
    let cases: Vec<(&str, Vec<u8>, Code, u16)> = vec![
        (
            "masked server frame",
            vec![0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2],
            Code::PROTOCOL,
            1002,
        ),
        (
            "invalid UTF-8",
            frame(0x81, &[b'o', b'k', 0xC3, 0x28]),
            Code::PROTOCOL,
            1007,
        ),
        (
            "fragmented control frame",
            frame(0x09, b"ping"),
            Code::PROTOCOL,
            1002,
        ),
        ("reserved opcode", frame(0x83, b""), Code::PROTOCOL, 1002),
        (
            "close with an invalid code",
            frame(0x88, &1005u16.to_be_bytes()),
            Code::PROTOCOL,
            1002,
        ),
        (
            "RSV1 without an extension",
            frame(0xC1, b"x"),
            Code::PROTOCOL,
            1002,
        ),
        // Declares 1 GiB: refused from the header, nothing buffered.
        (
            "oversize message",
            vec![0x82, 127, 0, 0, 0, 0, 0x40, 0, 0, 0],
            Code::TOO_LARGE,
            1009,
        ),
    ];
    for (what, frames, code, close) in cases {
        // A good message first: delivered before the broken one ends it.
        let mut all = frame(0x81, b"fine");
        all.extend(frames);
        let (error, sent) = broken(all, WebSocketOptions::default(), "");
        assert_eq!(error.code(), code, "{what}: {error:?}");
        assert_eq!(sent, Some(close), "{what}: the close code sent");
        assert!(
            error.message().contains(&format!("closed with {close}")),
            "{what}: {error:?}"
        );
    }
}

#[test]
fn hostile_handshakes() {
    // A wrong accept key.
    let (url, handle) = hostile(|mut stream, _key| {
        stream.write_all(&switching("not the key", "")).unwrap();
        std::thread::sleep(Duration::from_millis(200));
    });
    let lp = IOLoop::new().unwrap();
    let error = connect(&lp, request(url), WebSocketOptions::default())
        .err()
        .unwrap();
    assert_eq!(error.code(), Code::PROTOCOL);
    assert!(
        error.message().contains("Sec-WebSocket-Accept"),
        "{error:?}"
    );
    handle.join().unwrap();

    // An extension that was not offered.
    let (url, handle) = hostile(|mut stream, key| {
        stream
            .write_all(&switching(
                &key,
                "Sec-WebSocket-Extensions: permessage-deflate\r\n",
            ))
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
    });
    let error = connect(&lp, request(url), WebSocketOptions::default())
        .err()
        .unwrap();
    assert_eq!(error.code(), Code::PROTOCOL, "{error:?}");
    handle.join().unwrap();

    // A redirect is not followed.
    let (url, handle) = hostile(|mut stream, _key| {
        stream
            .write_all(b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
    });
    let error = connect(&lp, request(url), WebSocketOptions::default())
        .err()
        .unwrap();
    assert!(error.message().contains("HTTP 302"), "{error:?}");
    handle.join().unwrap();

    // A server that never answers: the request timeout.
    let (url, handle) = hostile(|_stream, _key| std::thread::sleep(Duration::from_secs(2)));
    let mut r = request(url);
    r.request_timeout = Some(Duration::from_millis(300));
    let started = Instant::now();
    let error = connect(&lp, r, WebSocketOptions::default()).err().unwrap();
    assert_eq!(error.code(), Code::TIMEOUT, "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    handle.join().unwrap();
}

#[test]
fn server_that_never_answers_the_close() {
    let (url, handle) = hostile(|mut stream, key| {
        stream.write_all(&switching(&key, "")).unwrap();
        // Reads the close and says nothing.
        let got = client_frame(&mut stream);
        assert_eq!(got.map(|(b0, _)| b0 & 0x0F), Some(0x8));
        std::thread::sleep(Duration::from_secs(2));
    });
    let lp = IOLoop::new().unwrap();
    let options = WebSocketOptions {
        close_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let ws = connect(&lp, request(url), options).unwrap();
    let started = Instant::now();
    let closed = ws.close(Some(1000), "done").unwrap();
    let error = wait(&lp, &closed, 5).unwrap_err();
    assert_eq!(error.code(), Code::TIMEOUT, "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(ws.is_closed());
    handle.join().unwrap();
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn deflate_bomb_is_cut_at_the_limit() {
    // 200 MiB of zeros compressed (about 200 KiB on the wire).
    use flate2::{Compress, Compression, FlushCompress};
    let zeros = vec![0u8; 200 * 1024 * 1024];
    let mut deflate = Compress::new(Compression::best(), false);
    let mut bomb = Vec::with_capacity(1 << 20);
    deflate
        .compress_vec(&zeros, &mut bomb, FlushCompress::Sync)
        .unwrap();
    drop(zeros);
    assert!(bomb.len() < 1 << 20);
    let before = peak_rss_kib();
    let (error, sent) = broken(
        frame(0xC2, &bomb),
        WebSocketOptions {
            compression: Some(CompressionOptions::default()),
            max_message_size: 1024 * 1024,
            ..Default::default()
        },
        "Sec-WebSocket-Extensions: permessage-deflate\r\n",
    );
    assert_eq!(error.code(), Code::TOO_LARGE, "{error:?}");
    assert!(error.message().contains("after decompression"), "{error:?}");
    assert_eq!(sent, Some(1009));
    let grown_mib = (peak_rss_kib().saturating_sub(before)) / 1024;
    assert!(
        grown_mib < 32,
        "peak memory grew {grown_mib} MiB for a 1 MiB limit"
    );
}

#[test]
fn ping_timeout_closes_a_silent_server() {
    let (url, handle) = hostile(|mut stream, key| {
        stream.write_all(&switching(&key, "")).unwrap();
        // Reads the pings, never answers them.
        while let Some((b0, _)) = client_frame(&mut stream) {
            if b0 & 0x0F == 0x8 {
                break;
            }
        }
    });
    let lp = IOLoop::new().unwrap();
    let options = WebSocketOptions {
        ping_interval: Some(Duration::from_millis(200)),
        ping_timeout: Some(Duration::from_millis(200)),
        ..Default::default()
    };
    let ws = connect(&lp, request(url), options).unwrap();
    let started = Instant::now();
    let error = read(&lp, &ws).unwrap_err();
    assert_eq!(error.code(), Code::TIMEOUT, "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    handle.join().unwrap();
}

#[test]
fn pings_keep_a_live_server_open() {
    let server = WsServer::start(&["tornado"]);
    let lp = IOLoop::new().unwrap();
    let options = WebSocketOptions {
        ping_interval: Some(Duration::from_millis(400)),
        ping_timeout: Some(Duration::from_millis(400)),
        ..Default::default()
    };
    let ws = connect(&lp, request(server.url("ws", "/echo")), options).unwrap();
    let pongs = std::rc::Rc::new(std::cell::Cell::new(0));
    let count = pongs.clone();
    ws.set_pong_callback(Some(std::rc::Rc::new(move |_: &[u8]| {
        count.set(count.get() + 1)
    })))
    .unwrap();
    lp.run_until(
        || pongs.get() >= 3 || ws.is_closed(),
        Some(Duration::from_secs(10)),
    )
    .unwrap();
    assert_eq!(ws.error(), None);
    assert!(pongs.get() >= 3);
    ws.write_text("still here").unwrap();
    assert_eq!(read(&lp, &ws).unwrap(), text("still here"));
}

/// An HTTP forward proxy for ws:// (no CONNECT): takes the absolute-form
/// request, sends it on in origin form to the host it names, then copies
/// bytes both ways (the 101 and the frames).
fn forward_proxy() -> common::script_server::ScriptServer {
    common::script_server::ScriptServer::start(|mut conn| {
        let Some(request) = conn.read_request() else {
            return;
        };
        let rest = request
            .target
            .strip_prefix("http://")
            .expect("absolute form");
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let mut upstream = TcpStream::connect(authority).unwrap();
        let mut head = format!("{} {} HTTP/1.1\r\n", request.method, path);
        for (name, value) in &request.headers {
            if !name.eq_ignore_ascii_case("proxy-authorization") {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        head.push_str("\r\n");
        upstream.write_all(head.as_bytes()).unwrap();
        let mut client = conn.reader.get_ref().try_clone().unwrap();
        let mut up_read = upstream.try_clone().unwrap();
        let mut client_write = client.try_clone().unwrap();
        let back = std::thread::spawn(move || {
            let _ = std::io::copy(&mut up_read, &mut client_write);
            let _ = client_write.shutdown(std::net::Shutdown::Write);
        });
        let _ = std::io::copy(&mut client, &mut upstream);
        let _ = upstream.shutdown(std::net::Shutdown::Write);
        let _ = back.join();
    })
}

#[test]
fn ws_through_an_http_forward_proxy() {
    let server = WsServer::start(&["tornado"]);
    let proxy = forward_proxy();
    let lp = IOLoop::new().unwrap();
    let mut r = request(server.url("ws", "/echo"));
    r.proxy_host = Some("127.0.0.1".into());
    r.proxy_port = Some(proxy.addr.port());
    r.proxy_username = Some("user".into());
    r.proxy_password = Some("secret".into());
    let ws = connect(&lp, r, WebSocketOptions::default()).unwrap();
    echo_round(&lp, &ws);
    let seen = &proxy.requests()[0];
    assert_eq!(
        seen.target,
        server.url("http", "/echo"),
        "absolute form to the proxy"
    );
    assert!(seen
        .header("Proxy-Authorization")
        .is_some_and(|v| v.starts_with("Basic ")));
    assert_eq!(seen.header("Upgrade"), Some("websocket"));
}
