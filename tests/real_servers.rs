//! The HTTP client against servers it meets in the world, each started on
//! 127.0.0.1 for the test: nginx with `gzip on` (apt package nginx),
//! httpbin under gunicorn, aiohttp, and Python's http.server (`.ci/run`
//! installs them). A missing server fails the test with the reason; it is
//! never skipped. These are the places where bodiless gzip responses, form
//! POSTs, redirect limits and compressed streams were seen to go wrong.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::process_server::{httpbin, Server};

use tornado_rs::http::request::{AuthMode, HTTPRequest};
use tornado_rs::http::response::HTTPResponse;
use tornado_rs::http::{kind_of, FetchErrorKind};

const PAGE: &str = "<html><body>hello from nginx, compressed</body></html>\n";

/// nginx with gzip on for every type and size, as a site might run it.
fn nginx() -> Server {
    Server::start("nginx", |port, dir| {
        std::fs::create_dir_all(dir.join("html")).unwrap();
        std::fs::write(dir.join("html/index.html"), PAGE.repeat(50)).unwrap();
        let conf = format!(
            "daemon off; master_process off; worker_processes 1; error_log {d}/error.log; pid {d}/nginx.pid;
             events {{ worker_connections 64; }}
             http {{
               access_log off; client_body_temp_path {d}; proxy_temp_path {d};
               fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};
               gzip on; gzip_types *; gzip_min_length 0;
               server {{
                 listen 127.0.0.1:{port}; root {d}/html;
                 location = /moved {{ return 301 /index.html; }}
                 location = /empty {{ return 204; }}
               }}
             }}",
            d = dir.display()
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let nginx = ["/usr/sbin/nginx", "nginx"]
            .into_iter()
            .find(|p| !p.starts_with('/') || Path::new(p).exists())
            .unwrap();
        let mut command = Command::new(nginx);
        command
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"));
        command
    })
}

use common::fetch::fetch_once as fetch;

fn request(url: String, method: &str) -> HTTPRequest {
    let mut request = HTTPRequest::new(url);
    request.method = method.into();
    request.request_timeout = Some(Duration::from_secs(5));
    request
}

fn text(response: &HTTPResponse) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

#[test]
fn nginx_with_gzip_on() {
    let server = nginx();
    let r = fetch(request(server.url("/index.html"), "HEAD"));
    assert_eq!((r.code, r.body.len()), (200, 0), "HEAD: {:?}", r.error);
    assert!(r.error.is_none());
    assert_eq!(r.headers.get("Content-Encoding"), Some("gzip"));

    let r = fetch(request(server.url("/index.html"), "GET"));
    assert_eq!(text(&r), PAGE.repeat(50), "GET: {:?}", r.error);

    let r = fetch(request(server.url("/empty"), "GET"));
    assert_eq!((r.code, r.body.len()), (204, 0), "204: {:?}", r.error);

    let mut unfollowed = request(server.url("/moved"), "GET");
    unfollowed.follow_redirects = false;
    let r = fetch(unfollowed);
    assert_eq!(r.code, 301, "{:?}", r.error);
    assert!(text(&r).contains("301 Moved Permanently"), "{}", text(&r));
    let mut head = request(server.url("/moved"), "HEAD");
    head.follow_redirects = false;
    let r = fetch(head);
    assert_eq!((r.code, r.body.len()), (301, 0), "HEAD 301: {:?}", r.error);
    let r = fetch(request(server.url("/moved"), "GET"));
    assert_eq!(
        (r.code, text(&r)),
        (200, PAGE.repeat(50)),
        "followed: {:?}",
        r.error
    );
}

#[test]
fn httpbin_under_gunicorn() {
    let server = httpbin();
    let r = fetch(request(server.url("/gzip"), "HEAD"));
    assert_eq!(
        (r.code, r.body.len()),
        (200, 0),
        "HEAD /gzip: {:?}",
        r.error
    );
    assert!(r.error.is_none());
    let r = fetch(request(server.url("/gzip"), "GET"));
    let json: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
    assert_eq!(json["gzipped"], true);

    let mut post = request(server.url("/post"), "POST");
    post.body = Some(b"a=1&b=two".to_vec());
    let r = fetch(post);
    let json: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
    assert_eq!(
        json["form"],
        serde_json::json!({"a": "1", "b": "two"}),
        "{json}"
    );

    let mut limited = request(server.url("/redirect/3"), "GET");
    limited.max_redirects = 1;
    let r = fetch(limited);
    assert_eq!(r.code, 302);
    assert_eq!(
        r.error.as_ref().and_then(kind_of),
        Some(FetchErrorKind::TooManyRedirects)
    );
    assert_eq!(r.headers.get("Location"), Some("/relative-redirect/1"));
    assert!(
        r.effective_url.ends_with("/relative-redirect/2"),
        "{}",
        r.effective_url
    );

    let r = fetch(request(server.url("/status/204"), "GET"));
    assert_eq!((r.code, r.body.len()), (204, 0), "{:?}", r.error);

    // Digest authentication (RFC 7616), as curl's --digest: both hashes.
    for algorithm in ["MD5", "SHA-256"] {
        let digest = |password: &str| {
            let path = format!("/digest-auth/auth/user/passwd/{algorithm}");
            let mut r = request(server.url(&path), "GET");
            r.auth_username = Some("user".into());
            r.auth_password = Some(password.into());
            r.auth_mode = AuthMode::Digest;
            fetch(r)
        };
        let r = digest("passwd");
        assert_eq!(r.code, 200, "{algorithm}: {:?} {}", r.error, text(&r));
        let json: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
        assert_eq!(json["authenticated"], true);
        assert_eq!(digest("wrong").code, 401, "{algorithm}: a wrong password");
    }
    let mut basic = request(server.url("/digest-auth/auth/user/passwd/MD5"), "GET");
    basic.auth_username = Some("user".into());
    basic.auth_password = Some("passwd".into());
    assert_eq!(
        fetch(basic).code,
        401,
        "basic credentials do not answer a digest challenge"
    );
    let r = fetch(request(server.url("/stream/3"), "GET"));
    assert_eq!(text(&r).lines().count(), 3, "{}", text(&r));
}

#[test]
fn aiohttp_with_compression() {
    let server = Server::start("aiohttp (tests/servers/aiohttp_app.py)", |port, _| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/servers/aiohttp_app.py");
        let mut command = Command::new("python3");
        command.arg(script).arg(port.to_string());
        command
    });
    let r = fetch(request(server.url("/page"), "HEAD"));
    assert_eq!((r.code, r.body.len()), (200, 0), "HEAD: {:?}", r.error);
    assert!(r.error.is_none());
    // aiohttp picks deflate from "gzip, deflate, br, zstd".
    assert_eq!(r.headers.get("Content-Encoding"), Some("deflate"));
    let r = fetch(request(server.url("/page"), "GET"));
    assert_eq!(text(&r), "hello aiohttp ".repeat(200), "{:?}", r.error);
    // And gzip when that is all that is asked for.
    let mut gzip_only = request(server.url("/page"), "GET");
    gzip_only.headers.add("Accept-Encoding", "gzip");
    let r = fetch(gzip_only);
    assert_eq!(r.headers.get("Content-Encoding"), Some("gzip"));
    assert_eq!(text(&r), "hello aiohttp ".repeat(200), "{:?}", r.error);
    let r = fetch(request(server.url("/stream"), "GET"));
    assert_eq!(text(&r), "first second", "{:?}", r.error);
}

#[test]
fn pythons_http_server() {
    let server = Server::start("python3 -m http.server", |port, dir| {
        std::fs::write(dir.join("file.txt"), "served by http.server\n").unwrap();
        let mut command = Command::new("python3");
        command
            .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
            .arg(dir)
            .arg(port.to_string());
        command.stderr(Stdio::null());
        command
    });
    let r = fetch(request(server.url("/file.txt"), "GET"));
    assert_eq!(text(&r), "served by http.server\n", "{:?}", r.error);
    let r = fetch(request(server.url("/file.txt"), "HEAD"));
    assert_eq!((r.code, r.body.len()), (200, 0), "{:?}", r.error);
    let r = fetch(request(server.url("/missing"), "GET"));
    assert_eq!(r.code, 404);
}
