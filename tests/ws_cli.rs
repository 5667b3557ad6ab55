//! `tornado-ws` (c_examples/ws.c) as issue 17 specifies it: stdin lines
//! sent as messages, messages printed (or one JSON object each with
//! --json), exit 0 after a close handshake or a server's close, 1 with
//! "tornado-ws: KIND: MESSAGE" on any error, 2 on bad arguments. Run
//! against Tornado's WebSocketHandler and hostile servers on 127.0.0.1.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::c_build::{compile_source, repo_dir};
use common::pki::test_pki;
use common::ws_server::WsServer;
use serde_json::{json, Value};

fn ws_binary() -> &'static PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| compile_source(&repo_dir().join("c_examples").join("ws.c"), "tornado-ws"))
}

/// Runs tornado-ws with `stdin` as its input (closed after it), at most 20 s.
fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(ws_binary())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tornado-ws");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("tornado-ws {args:?} did not exit within 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn json_text_and_close_handshake() {
    let server = WsServer::start(&["tornado"]);
    let out = run(
        &["--json", &server.url("ws", "/echo")],
        "hello\n\"quoted\" \u{e9}\n\nlast",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        json_lines(&out),
        vec![
            json!({"type": "text", "data": "hello"}),
            json!({"type": "text", "data": "\"quoted\" \u{e9}"}),
            json!({"type": "text", "data": ""}),
            json!({"type": "text", "data": "last"}),
            json!({"type": "close", "code": 1000, "reason": ""}),
        ]
    );
}

#[test]
fn plain_binary_compressed_subprotocol_header() {
    let server = WsServer::start(&["tornado"]);
    let out = run(&[&server.url("ws", "/echo")], "one\ntwo\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\ntwo\n");

    let out = run(&["--json", "--binary", &server.url("ws", "/echo")], "abc\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        json_lines(&out)[0],
        json!({"type": "binary", "data": "YWJj"})
    );

    let out = run(
        &["--json", "--compress", &server.url("ws", "/deflate")],
        &"z".repeat(5000),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json_lines(&out)[0]["data"], json!("z".repeat(5000)));

    let out = run(
        &[
            "--json",
            "--subprotocol",
            "a",
            "--subprotocol",
            "chat",
            &server.url("ws", "/subprotocol"),
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        json_lines(&out)[0],
        json!({"type": "text", "data": "chose chat"})
    );

    let out = run(
        &[
            "--json",
            "--header",
            "X-Test: from cli",
            &server.url("ws", "/header"),
        ],
        "",
    );
    assert_eq!(
        json_lines(&out)[0],
        json!({"type": "text", "data": "from cli"})
    );
}

#[test]
fn server_close_ends_with_zero() {
    let server = WsServer::start(&["tornado"]);
    // Input stays open: the server's close alone ends the program.
    let mut child = Command::new(ws_binary())
        .args(["--json", &server.url("ws", "/close")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&line).unwrap(),
        json!({"type": "close", "code": 4001, "reason": "going away"})
    );
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < Duration::from_secs(10), "did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(child.wait().unwrap().code(), Some(0));
    drop(stdin);
}

#[test]
fn errors_exit_one_with_kind_and_message() {
    let server = WsServer::start(&["tornado"]);
    let out = run(&[&server.url("ws", "/nowhere")], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("tornado-ws: protocol: "),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("HTTP 404"), "{}", stderr(&out));

    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = run(&[&format!("ws://127.0.0.1:{closed}/")], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("tornado-ws: connect: "),
        "{}",
        stderr(&out)
    );

    // A server that breaks the protocol after the handshake (a masked frame).
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let hostile = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut key = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                break;
            }
            if let Some(v) = line.strip_prefix("Sec-WebSocket-Key:") {
                key = v.trim().to_string();
            }
        }
        let accept = tornado_rs::websocket::handshake::accept_value(&key);
        let reply = format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n");
        stream.write_all(reply.as_bytes()).unwrap();
        stream.write_all(&[0x81, 0x81, 0, 0, 0, 0, b'x']).unwrap();
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
    });
    let out = run(&[&url], "");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("tornado-ws: protocol: "),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("masked"), "{}", stderr(&out));
    hostile.join().unwrap();

    assert_eq!(run(&[], "").status.code(), Some(2));
    assert_eq!(
        run(&["--nope", "ws://127.0.0.1:1/"], "").status.code(),
        Some(2)
    );
    let out = run(&["http://127.0.0.1:1/"], "");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("invalid_url"), "{}", stderr(&out));
}

#[test]
fn wss_cacert_and_insecure() {
    let pki = test_pki(&["127.0.0.1"]);
    let cert = pki.dir.path().join("server.pem");
    let key = pki.dir.path().join("server.key");
    std::fs::write(&cert, &pki.cert_pem).unwrap();
    std::fs::write(&key, &pki.key_pem).unwrap();
    let server = WsServer::start(&["tornado", cert.to_str().unwrap(), key.to_str().unwrap()]);
    let url = server.url("wss", "/echo");
    let out = run(&[&url], "x\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("tornado-ws: tls: "),
        "{}",
        stderr(&out)
    );
    let ca = pki.ca_file.to_str().unwrap();
    let out = run(&["--cacert", ca, &url], "secure\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "secure\n");
    let out = run(&["--insecure", &url], "anyway\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "anyway\n");
}
