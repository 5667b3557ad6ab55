//! tornado-fetch's curl-like options (shared/FETCH_CLI.md, "Additions")
//! against real servers on loopback: nginx (pre-compressed brotli, a Unix
//! socket, TLS asking for a client certificate), Debian's microsocks and
//! httpbin under gunicorn.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::c_build::{compile_source, repo_dir};
use common::curl_sites::{microsocks, nginx, page};
use common::process_server::httpbin;

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

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn head_output_file_write_out_and_compressed() {
    let site = nginx(None);
    let url = site.server.url("/index.html");
    let out = run(&["-I", &url]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("Content-Length: "), "{text}");
    assert!(text.ends_with("\r\n\r\n"), "headers only: {text}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("page.html");
    let out = run(&["-o", file.to_str().unwrap(), &url]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), page());
    assert_eq!(stdout(&out), "", "the body went to the file");
    assert_eq!(stderr(&out), "", "no progress meter without a terminal");
    let out = run(&["-o", "/nonexistent/dir/x", &url]);
    assert_eq!(out.status.code(), Some(2), "an unwritable -o file");

    let out = run(&[
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{size_download} %{time_namelookup} %{time_total} %{url_effective}\\n",
        &url,
    ]);
    let line = stdout(&out);
    let fields: Vec<&str> = line.trim_end().split(' ').collect();
    assert_eq!(fields.len(), 5, "{line}");
    assert_eq!(fields[0], "200");
    assert_eq!(fields[1], page().len().to_string());
    let total: f64 = fields[3].parse().unwrap();
    let lookup: f64 = fields[2].parse().unwrap();
    assert!(total > 0.0 && lookup <= total, "{line}");
    assert_eq!(fields[4], url);
    assert!(line.ends_with('\n'));

    let out = run(&["--compressed", &site.server.url("/page.br")]);
    assert_eq!(stdout(&out), page(), "{}", stderr(&out));
    let out = run(&["--compressed", "--no-decompress", &url]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn unix_socket_resolve_and_socks_proxies() {
    let site = nginx(None);
    let out = run(&[
        "--unix-socket",
        site.socket.to_str().unwrap(),
        "http://daemon.test/whoami",
    ]);
    assert_eq!(stdout(&out), "host=daemon.test", "{}", stderr(&out));
    let port = site.server.port.to_string();
    let out = run(&[
        "--resolve",
        &format!("site.test:{port}:127.0.0.1"),
        &format!("http://site.test:{port}/whoami"),
    ]);
    assert_eq!(stdout(&out), "host=site.test", "{}", stderr(&out));
    for bad in ["site.test:80", "site.test:0:127.0.0.1", ":80:127.0.0.1"] {
        let out = run(&["--resolve", bad, "http://site.test/"]);
        assert_eq!(out.status.code(), Some(2), "--resolve {bad}");
    }

    let socks = microsocks(None);
    for scheme in ["socks5", "socks5h"] {
        let proxy = format!("{scheme}://127.0.0.1:{}", socks.port);
        let out = run(&[
            "--proxy",
            &proxy,
            &format!("http://localhost:{port}/whoami"),
        ]);
        assert_eq!(stdout(&out), "host=localhost", "{scheme}: {}", stderr(&out));
    }
    let authed = microsocks(Some(("bob", "pw")));
    let proxy = format!("socks5h://127.0.0.1:{}", authed.port);
    let out = run(&[
        "--proxy",
        &proxy,
        "--proxy-user",
        "bob:pw",
        &site.server.url("/whoami"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(&[
        "--proxy",
        &proxy,
        "--proxy-user",
        "bob:no",
        &site.server.url("/whoami"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("connect:"), "{}", stderr(&out));
    let out = run(&["--proxy", "gopher://127.0.0.1:1", &site.server.url("/")]);
    assert_eq!(out.status.code(), Some(2), "an unknown proxy scheme");
}

#[test]
fn client_certificates_with_cert_and_key() {
    let pki = common::pki::test_pki(&["localhost", "127.0.0.1"]);
    let site = nginx(Some(&pki));
    let url = format!("https://localhost:{}/whoami", site.tls_port.unwrap());
    let ca = pki.ca_file.to_str().unwrap();
    let out = run(&[
        "--cacert",
        ca,
        "--cert",
        pki.client_cert_file.to_str().unwrap(),
        "--key",
        pki.client_key_file.to_str().unwrap(),
        &url,
    ]);
    assert_eq!(stdout(&out), "client=SUCCESS", "{}", stderr(&out));
    let out = run(&["--cacert", ca, &url]);
    assert!(
        stdout(&out).contains("400"),
        "no certificate: {}",
        stdout(&out)
    );
    let out = run(&["--key", "/x", &url]);
    assert_eq!(out.status.code(), Some(2), "--key without --cert");
}

#[test]
fn cookie_files_and_digest_with_httpbin() {
    let server = httpbin();
    let dir = tempfile::tempdir().unwrap();
    let jar = dir.path().join("jar.txt");
    let jar_s = jar.to_str().unwrap();
    let out = run(&["--cookie-jar", jar_s, &server.url("/cookies/set?sweet=yes")]);
    assert!(
        stdout(&out).contains("\"sweet\": \"yes\""),
        "{}",
        stdout(&out)
    );
    let saved = std::fs::read_to_string(&jar).unwrap();
    assert!(saved.contains("\tsweet\tyes"), "{saved}");
    let out = run(&["--cookie", jar_s, &server.url("/cookies")]);
    assert!(
        stdout(&out).contains("\"sweet\": \"yes\""),
        "{}",
        stdout(&out)
    );
    // A --cookie file that is not there is no cookies (as curl).
    let out = run(&["--cookie", "/nonexistent/cookies", &server.url("/cookies")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "127.0.0.1\tTRUE\n").unwrap();
    let out = run(&["--cookie", bad.to_str().unwrap(), &server.url("/cookies")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("line 1"), "{}", stderr(&out));

    let path = "/digest-auth/auth/user/passwd/MD5";
    let out = run(&[
        "--digest",
        "--user",
        "user:passwd",
        "-w",
        "%{http_code}",
        &server.url(path),
    ]);
    assert!(stdout(&out).ends_with("200"), "{}", stdout(&out));
    let out = run(&[
        "--user",
        "user:passwd",
        "-w",
        "%{http_code}",
        &server.url(path),
    ]);
    assert!(
        stdout(&out).ends_with("401"),
        "basic does not answer digest"
    );
    let out = run(&["--digest", &server.url(path)]);
    assert_eq!(out.status.code(), Some(2), "--digest needs --user");
}

/// The progress meter: on stderr when it is a terminal (`script` gives the
/// program a pseudo-terminal) and the body goes to a file; none with -s.
#[test]
fn progress_meter_on_a_terminal_and_silent_with_s() {
    let site = nginx(None);
    let url = site.server.url("/index.html");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.html");
    let command = |silent: &str| {
        format!(
            "{} {silent} -o {} {url}",
            fetch_binary().display(),
            file.display()
        )
    };
    let on_tty = |cmd: String| {
        let out = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .output()
            .expect("script (util-linux) runs the program on a pseudo-terminal");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shown = on_tty(command(""));
    assert!(shown.contains("100%"), "a meter: {shown:?}");
    assert!(
        shown.contains(&format!("{} of {}", page().len(), page().len())),
        "{shown:?}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), page());
    let quiet = on_tty(command("-s"));
    assert!(!quiet.contains('%'), "-s: {quiet:?}");
}

/// `-w`: curl's write-out variables tornado-fetch knows, `%{json}`,
/// `%{header{name}}`, `%{stderr}`/`%{stdout}`, the escapes, and unknown
/// variables (a warning on stderr, nothing printed, as curl).
#[test]
fn write_out_variables_as_curl() {
    let site = nginx(None);
    let url = site.server.url("/index.html");
    let out = run(&["-s", "-o", "/dev/null", "-w", "%{json}", &url]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("one JSON object");
    assert_eq!(json["http_code"], 200);
    assert_eq!(json["response_code"], 200);
    assert_eq!(json["size_download"], page().len());
    assert_eq!(json["http_version"], "1.1");
    assert_eq!(json["url"], url.as_str());
    assert_eq!(json["url_effective"], url.as_str());
    assert_eq!(json["content_type"], "text/html");
    assert_eq!(json["scheme"], "http");
    assert_eq!(json["method"], "GET");
    assert_eq!(json["exitcode"], 0);
    assert_eq!(json["errormsg"], serde_json::Value::Null);
    assert_eq!(json["filename_effective"], "/dev/null");
    // The head as HTTP/1.1 text: at least its status line and the headers.
    let size_header = json["size_header"].as_u64().unwrap();
    assert!(size_header > 100, "{json}");
    assert!(json["num_headers"].as_u64().unwrap() >= 4, "{json}");
    let total = json["time_total"].as_f64().unwrap();
    for t in [
        "time_queue",
        "time_namelookup",
        "time_connect",
        "time_pretransfer",
        "time_starttransfer",
    ] {
        let v = json[t].as_f64().unwrap();
        assert!((0.0..=total).contains(&v), "{t}: {json}");
    }
    let speed = json["speed_download"].as_u64().unwrap();
    let expected = page().len() as f64 / total;
    assert!(
        (speed as f64 - expected).abs() <= expected * 0.01 + 1.0,
        "{json}"
    );

    // The same size_header as the head -I prints.
    let head = run(&["-I", &url]);
    let out = run(&["-s", "-o", "/dev/null", "-w", "%{size_header}", &url]);
    assert_eq!(stdout(&out), stdout(&head).len().to_string());

    let out = run(&[
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{header{content-TYPE}}|%{header{X-None}}|%{method}|%{scheme}|%{http_version}\\t%{response_code}\\\\%{exitcode}\\q%%\\n",
        "-X",
        "HEAD",
        &url,
    ]);
    assert_eq!(
        stdout(&out),
        "text/html||HEAD|http|1.1\t200\\0\\q%\n",
        "{}",
        stderr(&out)
    );

    let out = run(&[
        "-s",
        "-w",
        "a%{stderr}%{http_code}-%{bogus}-%{remote_ip}%{stdout}b",
        &site.server.url("/whoami"),
    ]);
    assert_eq!(stdout(&out), "host=127.0.0.1ab");
    let err = stderr(&out);
    assert!(err.starts_with("200-"), "{err}");
    assert!(
        err.contains("unknown --write-out variable: 'bogus'"),
        "{err}"
    );
    assert!(
        err.contains("unknown --write-out variable: 'remote_ip'"),
        "{err}"
    );

    // A fetch that failed: curl's 000, the exit status and the error.
    let refused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = refused.local_addr().unwrap().port();
    drop(refused);
    let out = run(&[
        "-s",
        "-w",
        "%{http_code} %{exitcode} %{errormsg}",
        &format!("http://127.0.0.1:{port}/"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let line = stdout(&out);
    assert!(line.starts_with("000 1 connect"), "{line}");
    let out = run(&["-s", "-w", "%{json}", &format!("http://127.0.0.1:{port}/")]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        (&json["http_code"], &json["exitcode"]),
        (&0.into(), &1.into())
    );
    assert!(
        json["errormsg"].as_str().unwrap().starts_with("connect"),
        "{json}"
    );
    assert_eq!(json["content_type"], serde_json::Value::Null);
}

/// `--proxy https://...` with `--proxy-cacert` / `--proxy-insecure`: nginx's
/// stream module terminating TLS in front of the tests' CONNECT proxy.
#[test]
fn https_proxy_with_proxy_cacert_and_proxy_insecure() {
    let target_pki = common::pki::test_pki(&["localhost", "127.0.0.1"]);
    let proxy_pki = common::pki::test_pki(&["localhost", "127.0.0.1"]);
    let site = nginx(Some(&target_pki));
    let upstream = common::connect_proxy::connect_proxy();
    let proxy = common::curl_sites::nginx_tls_proxy(&proxy_pki, upstream.addr);
    let proxy_url = format!("https://127.0.0.1:{}", proxy.port);
    let proxy_ca = proxy_pki.ca_file.to_str().unwrap();
    let https = format!("https://127.0.0.1:{}/whoami", site.tls_port.unwrap());
    let target_tls = [
        "--cacert",
        target_pki.ca_file.to_str().unwrap(),
        "--cert",
        target_pki.client_cert_file.to_str().unwrap(),
        "--key",
        target_pki.client_key_file.to_str().unwrap(),
    ];

    let base = ["--proxy", &proxy_url, "--proxy-user", "u:p"];
    let out = run(&[
        &base[..],
        &["--proxy-cacert", proxy_ca, &site.server.url("/whoami")],
    ]
    .concat());
    assert_eq!(stdout(&out), "host=127.0.0.1", "{}", stderr(&out));
    let out = run(&[
        &base[..],
        &["--proxy-cacert", proxy_ca],
        &target_tls[..],
        &[&https],
    ]
    .concat());
    assert_eq!(stdout(&out), "client=SUCCESS", "{}", stderr(&out));
    let out = run(&[&base[..], &["--proxy-insecure"], &target_tls[..], &[&https]].concat());
    assert_eq!(stdout(&out), "client=SUCCESS", "{}", stderr(&out));
    let methods: Vec<String> = upstream
        .requests()
        .iter()
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(methods, ["GET", "CONNECT", "CONNECT"]);
    assert!(upstream
        .requests()
        .iter()
        .all(|r| r.header("Proxy-Authorization") == Some("Basic dTpw")));

    // Without the proxy's CA: refused, and the message names the proxy.
    let out = run(&[&base[..], &target_tls[..], &[&https]].concat());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("https proxy 127.0.0.1:{}", proxy.port)),
        "{}",
        stderr(&out)
    );
    let out = run(&["--proxy-insecure", &https]);
    assert_eq!(out.status.code(), Some(2), "--proxy-insecure needs --proxy");
}
