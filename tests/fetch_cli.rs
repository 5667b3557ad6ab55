//! `tornado-fetch` (c_examples/fetch.c) as shared/FETCH_CLI.md specifies
//! it, run against scripted servers on 127.0.0.1.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

use base64::Engine as _;
use common::c_build::{compile_source, repo_dir};
use common::script_server::{keep_alive, Conn, ScriptServer};
use serde_json::Value;

fn fetch_binary() -> &'static PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        compile_source(
            &repo_dir().join("c_examples").join("fetch.c"),
            "tornado-fetch",
        )
    })
}

fn run(args: &[&str]) -> Output {
    Command::new(fetch_binary())
        .args(args)
        .output()
        .expect("run tornado-fetch")
}

/// Runs with --json; returns the exit code and the parsed line.
fn run_json(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = run(&all);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().next().unwrap_or_else(|| {
        panic!(
            "no output; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    (out.status.code().unwrap_or(-1), value)
}

fn body(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v["body_b64"].as_str().unwrap())
        .unwrap()
}

fn error_kind(v: &Value) -> String {
    v["error"]
        .as_str()
        .unwrap_or("")
        .split(':')
        .next()
        .unwrap_or("")
        .to_string()
}

fn routes() -> ScriptServer {
    ScriptServer::start(keep_alive(|r| {
        let echo = format!(
            "{} {} {} auth={} x={}",
            r.method,
            r.target,
            String::from_utf8_lossy(&r.body),
            r.header("Authorization").unwrap_or("-"),
            r.headers
                .iter()
                .filter(|(n, _)| n.starts_with("X-"))
                .map(|(n, v)| format!("{n}:{v}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        match r.target.as_str() {
            "/loop" => (
                "302 Found".into(),
                vec![("Location".into(), "/loop".into())],
                vec![],
            ),
            "/big" => ("200 OK".into(), vec![], vec![b'b'; 300_000]),
            "/cookies" => (
                "200 OK".into(),
                vec![
                    ("Set-Cookie".into(), "a=1".into()),
                    ("x-lower".into(), "v".into()),
                    ("Set-Cookie".into(), "b=2".into()),
                ],
                b"c".to_vec(),
            ),
            _ => ("200 OK".into(), vec![], echo.into_bytes()),
        }
    }))
}

#[test]
fn json_output_of_a_get() {
    let server = routes();
    let (code, v) = run_json(&[&server.url("/cookies")]);
    assert_eq!(code, 0);
    assert_eq!(v["code"], 200);
    assert_eq!(v["reason"], "OK");
    assert_eq!(v["error"], Value::Null);
    assert_eq!(v["effective_url"], server.url("/cookies"));
    assert!(v["request_time"].as_f64().unwrap() > 0.0);
    assert_eq!(v["http_version"], "1.1");
    let headers: Vec<(String, String)> = v["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h[0].as_str().unwrap().into(), h[1].as_str().unwrap().into()))
        .collect();
    let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["Set-Cookie", "x-lower", "Set-Cookie", "Content-Length"],
        "received order and case"
    );
    assert_eq!(body(&v), b"c");
}

#[test]
fn plain_output_is_the_body() {
    let server = routes();
    let out = run(&[&server.url("/plain")]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("GET /plain"));
}

#[test]
fn request_options() {
    let server = routes();
    let (code, v) = run_json(&[
        "-X",
        "POST",
        "-d",
        "payload",
        "-H",
        "X-B: 2",
        "-H",
        "X-A: 1",
        "--user",
        "u:p",
        "--user-agent",
        "agent/1",
        &server.url("/post"),
    ]);
    assert_eq!(code, 0, "{v}");
    let text = String::from_utf8(body(&v)).unwrap();
    assert_eq!(text, "POST /post payload auth=Basic dTpw x=X-B:2,X-A:1");
    assert_eq!(server.requests()[0].header("User-Agent"), Some("agent/1"));

    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), b"from a file").unwrap();
    let (_, v) = run_json(&[
        "-X",
        "PUT",
        "--data-file",
        file.path().to_str().unwrap(),
        &server.url("/put"),
    ]);
    assert!(String::from_utf8(body(&v))
        .unwrap()
        .starts_with("PUT /put from a file"));
}

#[test]
fn errors_have_a_kind_and_exit_1() {
    let server = routes();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, v) = run_json(&[&format!("http://127.0.0.1:{closed}/")]);
    assert_eq!((code, v["code"].as_i64()), (1, Some(599)));
    assert_eq!(error_kind(&v), "connect");

    let (code, v) = run_json(&[&server.url("/loop")]);
    assert_eq!(code, 1);
    assert_eq!(error_kind(&v), "too_many_redirects");

    let (code, v) = run_json(&["--max-body-size", "1000", &server.url("/big")]);
    assert_eq!((code, error_kind(&v).as_str()), (1, "body_too_large"));

    let (code, v) = run_json(&["-X", "BREW", &server.url("/")]);
    assert_eq!((code, error_kind(&v).as_str()), (1, "invalid_request"));
    let (code, v) = run_json(&[
        "-X",
        "BREW",
        "--allow-nonstandard-methods",
        &server.url("/"),
    ]);
    assert_eq!(code, 0, "{v}");

    let (code, v) = run_json(&["-H", "X-Evil: a\r\nInjected: 1", &server.url("/")]);
    assert_eq!((code, error_kind(&v).as_str()), (1, "invalid_request"));
    let (code, v) = run_json(&["ftp://127.0.0.1/"]);
    assert_eq!((code, error_kind(&v).as_str()), (1, "invalid_url"));

    let stall = ScriptServer::start(|mut conn: Conn| {
        conn.read_request();
        std::thread::sleep(std::time::Duration::from_secs(2));
    });
    let (code, v) = run_json(&["--request-timeout", "0.2", &stall.url("/")]);
    assert_eq!((code, error_kind(&v).as_str()), (1, "timeout"));
}

#[test]
fn redirects_can_be_limited_or_not_followed() {
    let server = routes();
    let (code, v) = run_json(&["--no-follow", &server.url("/loop")]);
    assert_eq!((code, v["code"].as_i64()), (0, Some(302)));
    let (code, v) = run_json(&["--max-redirects", "0", &server.url("/loop")]);
    assert_eq!((code, error_kind(&v).as_str()), (1, "too_many_redirects"));
}

#[test]
fn streaming_reports_chunks() {
    let server = routes();
    let (code, v) = run_json(&["--stream", &server.url("/big")]);
    assert_eq!(code, 0);
    assert!(v["chunks"].as_i64().unwrap() >= 1);
    assert_eq!(body(&v).len(), 300_000);
}

#[test]
fn load_mode_prints_a_summary() {
    let server = routes();
    let out = run(&["-n", "50", "-c", "5", &server.url("/x")]);
    assert_eq!(out.status.code(), Some(0));
    let v: Value =
        serde_json::from_slice(out.stdout.split(|&b| b == b'\n').next().unwrap()).unwrap();
    assert_eq!(
        (v["n"].as_i64(), v["ok"].as_i64(), v["errors"].as_i64()),
        (Some(50), Some(50), Some(0))
    );
    assert!(v["req_per_s"].as_f64().unwrap() > 0.0);
    assert!(
        server.connections() <= 5,
        "keep-alive: at most one connection per slot"
    );
    assert_eq!(v["connections"].as_u64(), Some(server.connections() as u64));
}

/// `--http2-prior-knowledge` against nghttpd (h2c); `--http1.1` to the same
/// server fails (it speaks HTTP/2 only), and `"http_version"` says "2".
#[test]
fn http2_prior_knowledge_and_http_version() {
    let server = common::process_server::Server::start(
        "nghttpd (apt package nghttp2-server)",
        |port, dir| {
            std::fs::write(dir.join("index.html"), "over h2c\n").unwrap();
            let mut command = std::process::Command::new("nghttpd");
            command
                .args(["--no-tls", "-a", "127.0.0.1", "-d"])
                .arg(dir)
                .arg(port.to_string());
            command
        },
    );
    let url = server.url("/index.html");
    let (code, v) = run_json(&["--http2-prior-knowledge", &url]);
    assert_eq!((code, v["code"].as_i64()), (0, Some(200)), "{v}");
    assert_eq!(v["http_version"], "2");
    assert_eq!(body(&v), b"over h2c\n");
    // -I prints the status line of the version the response came over, as
    // curl does: "HTTP/2 200" (HTTP/2 has no reason phrase).
    let out = run(&["--http2-prior-knowledge", "-I", &url]);
    let head = String::from_utf8_lossy(&out.stdout);
    assert!(head.starts_with("HTTP/2 200\r\n"), "{head}");
    let out = run(&["--http2-prior-knowledge", "-n", "20", "-c", "5", &url]);
    let summary: Value =
        serde_json::from_slice(out.stdout.split(|&b| b == b'\n').next().unwrap()).unwrap();
    assert_eq!(summary["ok"].as_i64(), Some(20), "{summary}");
    assert_eq!(
        summary["connections"].as_u64(),
        Some(1),
        "one h2 connection: {summary}"
    );
    let (code, v) = run_json(&["--http1.1", "--request-timeout", "3", &url]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["http_version"], Value::Null);
}

#[test]
fn bad_arguments_exit_2() {
    for args in [
        &["--bogus", "http://x/"][..],
        &[][..],
        &["-n", "5", "http://x/"][..],
        &["--request-timeout", "abc", "http://x/"][..],
    ] {
        assert_eq!(run(args).status.code(), Some(2), "{args:?}");
    }
}

fn valgrind_args() -> Vec<String> {
    let supp = repo_dir().join("tests/valgrind.supp");
    [
        "--leak-check=full",
        "--errors-for-leak-kinds=definite,indirect",
        "--error-exitcode=99",
        "-q",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--suppressions={}", supp.display())])
    .collect()
}

/// Under `TORNADO_VALGRIND=1` (as `make test` runs), a fetch, an error and
/// a small load leak nothing and touch no invalid memory.
#[test]
fn clean_under_valgrind() {
    if !common::c_build::valgrind_enabled() {
        return;
    }
    let server = routes();
    for args in [
        vec!["--json".to_string(), server.url("/cookies")],
        vec![
            "--json".to_string(),
            "--stream".to_string(),
            server.url("/big"),
        ],
        vec!["--json".to_string(), "http://127.0.0.1:1/".to_string()],
        vec![
            "-n".to_string(),
            "20".to_string(),
            "-c".to_string(),
            "4".to_string(),
            server.url("/x"),
        ],
    ] {
        let out = Command::new("valgrind")
            .args(valgrind_args())
            .arg(fetch_binary())
            .args(&args)
            .output()
            .expect("valgrind");
        assert_ne!(
            out.status.code(),
            Some(99),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let crawl = compile_source(&repo_dir().join("c_examples").join("crawl.c"), "crawl");
    let out = Command::new("valgrind")
        .args(valgrind_args())
        .arg(crawl)
        .arg(server.url("/cookies"))
        .output()
        .expect("valgrind");
    assert_eq!(
        out.status.code(),
        Some(0),
        "crawl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// c_examples/crawl.c: follows every same-origin link once, N at a time.
#[test]
fn crawl_visits_every_linked_page_once() {
    let site = ScriptServer::start(keep_alive(|r| {
        let page = match r.target.as_str() {
            "/" => {
                r#"<a href="/a">a</a> <a href="/b#top">b</a> <a href="http://elsewhere.test/x">out</a>"#
            }
            "/a" => r#"<a href="/">home</a> <a href="/c">c</a>"#,
            "/b" => r#"<a href="/c">c</a> <a href="/a">a</a>"#,
            "/c" => "no links",
            _ => return ("404 Not Found".into(), vec![], b"missing".to_vec()),
        };
        ("200 OK".into(), vec![], page.as_bytes().to_vec())
    }));
    let exe = compile_source(&repo_dir().join("c_examples").join("crawl.c"), "crawl");
    let out = Command::new(exe)
        .args([&site.url("/"), "--concurrency", "2"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("crawled 4 pages, 0 errors"), "{stdout}");
    let mut fetched: Vec<String> = site.requests().iter().map(|r| r.target.clone()).collect();
    fetched.sort();
    assert_eq!(fetched, ["/", "/a", "/b", "/c"], "each page once");
}

/// An HTTPS server on its own loop thread (certificate for "localhost"
/// from a test CA), answering every request with its path; stops on drop.
struct HttpsSite {
    port: u16,
    pki: common::pki::TestPki,
    stop: Option<tornado_rs::LoopHandle>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for HttpsSite {
    fn drop(&mut self) {
        if let Some(handle) = self.stop.take() {
            handle.stop();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn https_site() -> HttpsSite {
    let pki = common::pki::test_pki(&["localhost", "127.0.0.1"]);
    let (cert, key) = (pki.cert_pem.clone(), pki.key_pem.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let lp = tornado_rs::IOLoop::new().unwrap();
        let server = common::https_server::https_server(&lp, &cert, &key);
        tx.send((server.local_addr().port(), lp.loop_handle()))
            .unwrap();
        lp.start().unwrap();
    });
    let (port, handle) = rx.recv().unwrap();
    HttpsSite {
        port,
        pki,
        stop: Some(handle),
        thread: Some(thread),
    }
}

#[test]
fn https_with_cacert_insecure_and_validation_failure() {
    let site = https_site();
    let url = format!("https://localhost:{}/", site.port);
    let ca = site.pki.ca_file.to_str().unwrap().to_string();
    let (code, v) = run_json(&["--cacert", &ca, &url]);
    assert_eq!((code, body(&v)), (0, b"/".to_vec()), "{v}");
    let (code, v) = run_json(&[&url]);
    assert_eq!((code, error_kind(&v).as_str()), (1, "tls"), "{v}");
    let (code, v) = run_json(&["--insecure", &url]);
    assert_eq!((code, body(&v)), (0, b"/".to_vec()), "{v}");
}

#[test]
fn https_trusts_ssl_cert_file_without_cacert() {
    // The C library's default trust store (issue 16): the CA named by
    // SSL_CERT_FILE is trusted with validation on and no --cacert, as by
    // curl; without the variable the private CA is not.
    let site = https_site();
    let url = format!("https://localhost:{}/", site.port);
    let fetch = |env: Option<&std::path::Path>| {
        let mut command = Command::new(fetch_binary());
        command
            .args(["--json", &url])
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR");
        if let Some(file) = env {
            command.env("SSL_CERT_FILE", file);
        }
        let out = command.output().expect("run tornado-fetch");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let v: Value = serde_json::from_str(stdout.lines().next().unwrap_or(""))
            .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
        (out.status.code().unwrap_or(-1), v)
    };
    let (code, v) = fetch(Some(&site.pki.ca_file));
    assert_eq!((code, body(&v)), (0, b"/".to_vec()), "{v}");
    let (code, v) = fetch(None);
    assert_eq!((code, error_kind(&v).as_str()), (1, "tls"), "{v}");
}
