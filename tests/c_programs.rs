//! Compiles each C test program in `tests/c/` against the built
//! `libtornado_rs.so` and runs it: one `#[test]` per program.
//!
//! Each program prints TAP lines and, as its last line, `N passed, M failed`;
//! it passes when it exits 0 and that line reads `N passed, 0 failed` with
//! N > 0.
//!
//! * `TORNADO_TEST_CC` overrides the compiler (default `cc`; may hold extra words, e.g.
//!   `ccache gcc`).
//! * `TORNADO_VALGRIND=1` runs each program under valgrind (leaks and invalid
//!   accesses are failures).

mod common;

use common::c_build::{compile, repo_dir, valgrind_enabled};

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(60);

/// What a C test needs around it: environment variables and the servers
/// they point to (kept alive until the test ends).
struct Fixture {
    env: Vec<(String, String)>,
    _servers: Vec<common::script_server::ScriptServer>,
    _pki: Option<common::pki::TestPki>,
    _full: Option<common::full_listener::FullListener>,
    _processes: (
        Option<common::tornado_server::TornadoServer>,
        Option<common::process_server::Server>,
    ),
}

fn fixture_for(name: &str) -> Fixture {
    if name == "test_http_tls" {
        return http_tls_fixture();
    }
    if name == "test_stream" {
        return tls_fixture();
    }
    if name == "test_http_wire" {
        let server = common::script_server::ScriptServer::start(wire_routes);
        return Fixture {
            env: vec![(
                "TORNADO_TEST_HTTP".into(),
                format!("http://{}", server.addr),
            )],
            _servers: vec![server],
            _pki: None,
            _full: None,
            _processes: (None, None),
        };
    }
    if name == "test_http_features" {
        return features_fixture();
    }
    if name == "test_keepalive" {
        return keep_alive_fixture();
    }
    if name == "test_websocket" {
        return websocket_fixture();
    }
    if name != "test_http" {
        return Fixture {
            env: Vec::new(),
            _servers: Vec::new(),
            _pki: None,
            _full: None,
            _processes: (None, None),
        };
    }
    let server = common::script_server::ScriptServer::start(http_routes);
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let pki = common::pki::test_pki(&["mtls.test", "127.0.0.1"]);
    let mtls = common::mtls_server::start(&pki);
    let connect_proxy = common::connect_proxy::connect_proxy();
    let full = common::full_listener::full_listener();
    let path = |p: &Path| p.display().to_string();
    Fixture {
        env: vec![
            (
                "TORNADO_TEST_HTTP".into(),
                format!("http://{}", server.addr),
            ),
            ("TORNADO_TEST_CLOSED_PORT".into(), closed_port.to_string()),
            (
                "TORNADO_TEST_MTLS_PORT".into(),
                mtls.addr.port().to_string(),
            ),
            ("TORNADO_TEST_CA".into(), path(&pki.ca_file)),
            (
                "TORNADO_TEST_CLIENT_CERT".into(),
                path(&pki.client_cert_file),
            ),
            ("TORNADO_TEST_CLIENT_KEY".into(), path(&pki.client_key_file)),
            (
                "TORNADO_TEST_CONNECT_PROXY_PORT".into(),
                connect_proxy.addr.port().to_string(),
            ),
            (
                "TORNADO_TEST_FULL_PORT".into(),
                full.addr.port().to_string(),
            ),
        ],
        _servers: vec![server, connect_proxy],
        _pki: Some(pki),
        _full: Some(full),
        _processes: (None, None),
    }
}

/// A test CA and a certificate for "localhost", as PEM files.
fn tls_fixture() -> Fixture {
    let pki = common::pki::test_pki(&["localhost"]);
    let cert = pki.dir.path().join("cert.pem");
    let key = pki.dir.path().join("key.pem");
    std::fs::write(&cert, &pki.cert_pem).expect("write cert.pem");
    std::fs::write(&key, &pki.key_pem).expect("write key.pem");
    let path = |p: &Path| p.display().to_string();
    Fixture {
        env: vec![
            ("TORNADO_TEST_CERT".into(), path(&cert)),
            ("TORNADO_TEST_KEY".into(), path(&key)),
            ("TORNADO_TEST_CA".into(), path(&pki.ca_file)),
        ],
        _servers: Vec::new(),
        _pki: Some(pki),
        _full: None,
        _processes: (None, None),
    }
}

/// A keep-alive origin for test_keepalive.c: "ok" to every request, and
/// to /connections how many connections it has accepted.
fn keep_alive_fixture() -> Fixture {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let accepted = Arc::new(AtomicUsize::new(0));
    let server = common::script_server::ScriptServer::start(move |mut conn| {
        accepted.fetch_add(1, Ordering::SeqCst);
        while let Some(request) = conn.read_request() {
            let body = match request.target.as_str() {
                "/connections" => accepted.load(Ordering::SeqCst).to_string(),
                _ => "ok".to_string(),
            };
            if !conn.respond("200 OK", &[], body.as_bytes()) {
                return;
            }
        }
    });
    Fixture {
        env: vec![
            (
                "TORNADO_TEST_KEEPALIVE".into(),
                format!("http://{}", server.addr),
            ),
            // 1,200 fetches take longer under valgrind.
            ("TAP_WATCHDOG_S".into(), "120".into()),
        ],
        _servers: vec![server],
        _pki: None,
        _full: None,
        _processes: (None, None),
    }
}

/// The routes test_http.c fetches.
fn http_routes(mut conn: common::script_server::Conn) {
    while let Some(request) = conn.read_request() {
        let ok = match request.target.as_str() {
            "/hello" => conn.respond("200 OK", &[("X-Reply", "yes")], b"hello"),
            "/echo" => {
                let reply = format!(
                    "{} {} {}",
                    request.method,
                    request.body.len(),
                    request.header("Transfer-Encoding").unwrap_or("-")
                );
                conn.respond("200 OK", &[], reply.as_bytes())
            }
            "/redirect" => conn.respond("302 Found", &[("Location", "/hello")], b""),
            "/ims" => conn.respond(
                "200 OK",
                &[],
                request
                    .header("If-Modified-Since")
                    .unwrap_or("-")
                    .as_bytes(),
            ),
            "/expect" => {
                let Some(expect) = request.header("Expect") else {
                    return;
                };
                conn.write(b"HTTP/1.1 100 Continue\r\n\r\n");
                let len: usize = request
                    .header("Content-Length")
                    .unwrap_or("0")
                    .parse()
                    .unwrap_or(0);
                let mut body = vec![0; len];
                if std::io::Read::read_exact(&mut conn.reader, &mut body).is_err() {
                    return;
                }
                let reply = format!("{expect} {len}");
                conn.respond("200 OK", &[], reply.as_bytes())
            }
            "/gzip" => {
                let body = encoded("gzip", b"decompressed!");
                conn.respond("200 OK", &[("Content-Encoding", "gzip")], &body)
            }
            "/whoami" => {
                let reply = format!(
                    "{} {}",
                    request.header("User-Agent").unwrap_or("-"),
                    request.header("X-Default").unwrap_or("-")
                );
                conn.respond("200 OK", &[], reply.as_bytes())
            }
            target if target.starts_with("http://") => {
                let reply = match request.header("Proxy-Authorization") {
                    Some(auth) => format!("proxied {target} {auth}"),
                    None => format!("proxied {target}"),
                };
                conn.respond("200 OK", &[], reply.as_bytes())
            }
            "/big" => conn.respond("200 OK", &[], &vec![b'b'; 200_000]),
            "/big2" => conn.respond("200 OK", &[], &vec![b'c'; 150_000]),
            "/stall" => {
                std::thread::sleep(Duration::from_secs(3));
                return;
            }
            _ => match more_routes(&mut conn, &request) {
                Some(keep_open) => keep_open,
                None => conn.respond("404 Not Found", &[], b"no such page"),
            },
        };
        if !ok {
            return;
        }
    }
}

/// The routes of test_http.c's request options, wire details, redirects
/// and hostile answers. Some(false): the connection is to be closed.
fn more_routes(
    conn: &mut common::script_server::Conn,
    request: &common::script_server::Received,
) -> Option<bool> {
    let header = |name: &str| request.header(name).unwrap_or("-").to_string();
    let own_port = conn.reader.get_ref().local_addr().ok()?.port();
    let redirect = |status: &str| Some((status.to_string(), "/method".to_string()));
    let redirect_to = match request.target.as_str() {
        "/r301" => redirect("301 Moved Permanently"),
        "/r302" => redirect("302 Found"),
        "/r303" => redirect("303 See Other"),
        "/r307" => redirect("307 Temporary Redirect"),
        "/r308" => redirect("308 Permanent Redirect"),
        "/loop" => Some(("302 Found".into(), "/loop".into())),
        "/cross" => Some((
            "302 Found".into(),
            format!("http://mapped.test:{own_port}/auth"),
        )),
        _ => None,
    };
    if let Some((status, location)) = redirect_to {
        return Some(conn.respond(&status, &[("Location", &location)], b""));
    }
    let reply = match request.target.as_str() {
        "/method" => format!(
            "{} {} {}",
            request.method,
            request.body.len(),
            header("Content-Type")
        ),
        "/auth" => format!("{} {}", header("Authorization"), header("Cookie")),
        "/host" => header("Host"),
        "/ae" => header("Accept-Encoding"),
        "/peer" => conn.reader.get_ref().peer_addr().ok()?.ip().to_string(),
        "/rep" => request
            .headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("X-Rep"))
            .map(|(_, value)| value.as_str())
            .collect::<Vec<_>>()
            .join(","),
        "/slow" => {
            std::thread::sleep(Duration::from_millis(300));
            "slow".into()
        }
        "/close-after" => {
            // Answers, then closes without saying so (no Connection: close).
            let reply = format!("connection {}", conn.index);
            conn.respond("200 OK", &[], reply.as_bytes());
            return Some(false);
        }
        target if target.starts_with("/seq/") || target.starts_with("/pct") => target.into(),
        _ => return raw_routes(conn, request),
    };
    Some(conn.respond("200 OK", &[], reply.as_bytes()))
}

/// Answers written byte for byte: wire details and hostile servers.
fn raw_routes(
    conn: &mut common::script_server::Conn,
    request: &common::script_server::Received,
) -> Option<bool> {
    if let Some((bytes, then_close)) = canned(&request.target) {
        return Some(conn.write(bytes) && !then_close);
    }
    match request.target.as_str() {
        "/stall-after-head" => {
            conn.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
            std::thread::sleep(Duration::from_secs(3));
            Some(false)
        }
        "/reset-mid-body" => {
            conn.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
            conn.write(&[b'r'; 1000]);
            std::thread::sleep(Duration::from_millis(50));
            // A zero linger turns the close into a reset.
            let _ = socket2::SockRef::from(conn.reader.get_ref()).set_linger(Some(Duration::ZERO));
            Some(false)
        }
        "/gzip-bomb" => {
            let body = encoded("gzip", &vec![0; 10 << 20]);
            Some(conn.respond("200 OK", &[("Content-Encoding", "gzip")], &body))
        }
        "/deflate" => {
            let body = encoded("deflate", b"inflated!");
            Some(conn.respond("200 OK", &[("Content-Encoding", "deflate")], &body))
        }
        "/long-head" => Some(conn.respond("200 OK", &[("X-Long", &"h".repeat(3000))], b"short")),
        _ => None,
    }
}

/// A canned answer for `target`, and whether the connection closes after it.
fn canned(target: &str) -> Option<(&'static [u8], bool)> {
    Some(match target {
        "/chunked" => (&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\nchunked\r\n6\r\n reply\r\n0\r\n\r\n"[..], false),
        "/103" => (b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false),
        "/204" => (b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", false),
        "/304" => (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", false),
        "/head" => (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false),
        "/r301-noloc" => (b"HTTP/1.1 301 Moved Permanently\r\nContent-Length: 11\r\n\r\nno location", false),
        "/http10" => (b"HTTP/1.0 200 OK\r\n\r\nuntil the end", true),
        "/garbage" => (b"NOT HTTP AT ALL\r\n\r\n", true),
        "/badchunk" => (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", true),
        "/twolengths" => (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", true),
        "/te-and-cl" => (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", true),
        _ => return None,
    })
}

/// test_http_features.c's servers: Tornado's HTTPServer (uploads and
/// streamed bodies), httpbin (digest authentication) and a scripted one
/// that echoes a request's raw head, or answers /slow after 200 ms.
fn features_fixture() -> Fixture {
    let tornado = common::tornado_server::TornadoServer::start();
    let httpbin = common::process_server::httpbin();
    let raw = common::script_server::ScriptServer::start(echo_raw_head);
    Fixture {
        env: vec![
            ("TORNADO_TEST_TORNADO".into(), tornado.url("")),
            ("TORNADO_TEST_HTTPBIN".into(), httpbin.url("")),
            ("TORNADO_TEST_HTTP".into(), format!("http://{}", raw.addr)),
        ],
        _servers: vec![raw],
        _pki: None,
        _full: None,
        _processes: (Some(tornado), Some(httpbin)),
    }
}

/// Answers each request with its head as received, byte for byte (or
/// "slow" after 200 ms for /slow), keeping the connection open.
fn echo_raw_head(mut conn: common::script_server::Conn) {
    loop {
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8];
            if std::io::Read::read_exact(&mut conn.reader, &mut byte).is_err() {
                return;
            }
            head.push(byte[0]);
        }
        let reply = if head.starts_with(b"GET /slow ") {
            std::thread::sleep(Duration::from_millis(200));
            b"slow".to_vec()
        } else {
            head
        };
        if !conn.respond("200 OK", &[], &reply) {
            return;
        }
    }
}

/// The routes test_http_wire.c fetches: what real servers send that the
/// common case does not (bare LF, codings on empty bodies, gzip members,
/// streams that wait, many 1xx, Latin-1 headers), and echoes of what the
/// client sent.
fn wire_routes(mut conn: common::script_server::Conn) {
    while let Some(request) = conn.read_request() {
        let ok = match request.target.as_str() {
            "/method" => {
                let reply = format!(
                    "{} {} {}",
                    request.method,
                    request.body.len(),
                    request.header("Content-Type").unwrap_or("-")
                );
                conn.respond("200 OK", &[], reply.as_bytes())
            }
            "/body" => conn.respond("200 OK", &[], &request.body),
            "/auth" => {
                let reply = request.header("Authorization").unwrap_or("-").to_string();
                conn.respond("200 OK", &[], reply.as_bytes())
            }
            "/gzip-members" => {
                let mut body = encoded("gzip", b"first member, ");
                body.extend(encoded("gzip", b"second member"));
                conn.respond("200 OK", &[("Content-Encoding", "gzip")], &body)
            }
            "/gzip-bomb" => {
                let body = encoded("gzip", &vec![0; 10 << 20]);
                conn.respond("200 OK", &[("Content-Encoding", "gzip")], &body)
            }
            "/gzip-then-wait" => {
                // The first part of a gzip stream, flushed, as one chunk; then
                // nothing until the client gives up.
                let mut gz =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                std::io::Write::write_all(&mut gz, b"part one").expect("gzip");
                std::io::Write::flush(&mut gz).expect("flush");
                let part = gz.get_ref().clone();
                let mut bytes = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                bytes.extend(format!("{:x}\r\n", part.len()).into_bytes());
                bytes.extend(part);
                bytes.extend(b"\r\n");
                conn.write(&bytes);
                std::thread::sleep(Duration::from_secs(3));
                false
            }
            target if target.starts_with("/informational/") => {
                let count: usize = target["/informational/".len()..].parse().unwrap_or(0);
                let mut bytes = b"HTTP/1.1 102 Processing\r\n\r\n".repeat(count);
                bytes.extend(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal");
                conn.write(&bytes)
            }
            "/loop-body" => conn.respond("302 Found", &[("Location", "/loop-body")], b"again"),
            target => match wire_canned(target) {
                Some(bytes) => conn.write(bytes),
                None => conn.respond("404 Not Found", &[], b"no such page"),
            },
        };
        if !ok {
            return;
        }
    }
}

/// Answers of test_http_wire.c written byte for byte (the connection stays open).
fn wire_canned(target: &str) -> Option<&'static [u8]> {
    Some(match target {
        "/lf-head" => b"HTTP/1.1 200 OK\nContent-Length: 2\nX-Lf: yes\n\nok",
        "/lf-chunked" => b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nbar\n2;x=y\ne \n2\nlf\n0\n\n",
        "/gzip-head" => b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 30\r\n\r\n",
        "/gzip-204" => b"HTTP/1.1 204 No Content\r\nContent-Encoding: gzip\r\n\r\n",
        "/gzip-304" => b"HTTP/1.1 304 Not Modified\r\nContent-Encoding: gzip\r\nContent-Length: 30\r\n\r\n",
        "/gzip-empty" => b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 0\r\n\r\n",
        "/gzip-empty-chunked" => b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "/gzip-302" => b"HTTP/1.1 302 Found\r\nLocation: /lf-head\r\nContent-Encoding: gzip\r\nContent-Length: 0\r\n\r\n",
        "/gzip-103" => b"HTTP/1.1 103 Early Hints\r\nContent-Encoding: gzip\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        "/latin1" => b"HTTP/1.1 200 OK\r\nFoo: caf\xe9\r\nContent-Length: 2\r\n\r\nok",
        _ => return None,
    })
}

/// `bytes` compressed with `coding` ("gzip" or "deflate").
fn encoded(coding: &str, bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let level = flate2::Compression::best();
    match coding {
        "gzip" => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), level);
            gz.write_all(bytes).expect("gzip");
            gz.finish()
        }
        _ => {
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), level);
            z.write_all(bytes).expect("deflate");
            z.finish()
        }
    }
    .expect("compressed")
}

struct Run {
    status: Option<std::process::ExitStatus>,
    timed_out: bool,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

fn run(exe: &Path, env: &[(String, String)]) -> Run {
    run_with(exe, &[], env, valgrind_enabled())
}

/// Runs `exe args...` (under valgrind if `valgrind`), killed after TIMEOUT.
fn run_with(exe: &Path, args: &[&str], env: &[(String, String)], valgrind: bool) -> Run {
    let mut cmd = if valgrind {
        let mut c = Command::new("valgrind");
        c.args([
            "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect",
            "--error-exitcode=99",
            &format!(
                "--suppressions={}",
                repo_dir().join("tests/valgrind.supp").display()
            ),
            "-q",
        ])
        .arg(exe);
        // valgrind slows everything down: give the in-program watchdog more room.
        c.env("TAP_WATCHDOG_S", "50");
        c
    } else {
        Command::new(exe)
    };
    cmd.args(args);
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| {
        panic!(
            "could not start {} (valgrind: {valgrind}): {e}",
            exe.display()
        )
    });
    let mut out_pipe = child.stdout.take().expect("stdout piped");
    let mut err_pipe = child.stderr.take().expect("stderr piped");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf);
        buf
    });
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if start.elapsed() > TIMEOUT => {
                timed_out = true;
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("waiting for {}: {e}", exe.display()),
        }
    };
    let elapsed = start.elapsed();
    let stdout = String::from_utf8_lossy(&out_reader.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
    Run {
        status,
        timed_out,
        stdout,
        stderr,
        elapsed,
    }
}

/// Parses "N passed, M failed".
fn summary(line: &str) -> Option<(u64, u64)> {
    let (passed, failed) = line.trim().split_once(", ")?;
    let passed = passed.strip_suffix(" passed")?.parse().ok()?;
    let failed = failed.strip_suffix(" failed")?.parse().ok()?;
    Some((passed, failed))
}

fn run_c_test(name: &str) {
    let exe = compile(name);
    let fixture = fixture_for(name);
    let r = run(&exe, &fixture.env);
    let last = check_run(name, &r);
    eprintln!(
        "{name}: {} ({:.1?}{})",
        last.trim(),
        r.elapsed,
        if valgrind_enabled() { ", valgrind" } else { "" }
    );
}

/// Panics, with the output, unless `r` exited 0 with a last line of
/// `N passed, 0 failed` (N > 0); returns that line.
fn check_run<'a>(name: &str, r: &'a Run) -> &'a str {
    let last = r
        .stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let counts = summary(last);
    let mut problems = Vec::new();
    if r.timed_out {
        problems.push(format!("killed after {TIMEOUT:?} (timeout)"));
    }
    match r.status {
        Some(s) if s.success() => {}
        Some(s) => {
            let mut p = format!("{s}");
            if s.code() == Some(99) {
                p.push_str(" (valgrind found errors: see stderr)");
            }
            problems.push(p);
        }
        None => {}
    }
    match counts {
        Some((n, 0)) if n > 0 => {}
        Some((n, m)) => problems.push(format!("summary says {n} passed, {m} failed")),
        None => problems.push(format!("last line is not `N passed, M failed`: {last:?}")),
    }
    let failing: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("not ok"))
        .collect();
    if !problems.is_empty() {
        panic!(
            "C test {name} failed: {}\nfailing checks:\n  {}\n--- full stdout ({:.1?}) ---\n{}\n--- stderr ---\n{}",
            problems.join("; "),
            failing.join("\n  "),
            r.elapsed,
            r.stdout,
            r.stderr
        );
    }
    last
}

/// Each section of tests/c/test_http.c runs alone (in a process of its own,
/// with fresh servers), in reverse order: none depends on what another did
/// before it. Without valgrind: the whole program runs under it in
/// `test_http`.
#[test]
fn test_http_sections_run_alone() {
    let exe = compile("test_http");
    let list = run_with(&exe, &["--list"], &[], false);
    assert!(
        list.status.is_some_and(|s| s.success()),
        "test_http --list failed: {}",
        list.stderr
    );
    let sections: Vec<&str> = list.stdout.lines().filter(|l| !l.is_empty()).collect();
    assert!(sections.len() >= 10, "sections: {sections:?}");
    for section in sections.iter().rev() {
        let fixture = fixture_for("test_http");
        let r = run_with(&exe, &[section], &fixture.env, false);
        let last = check_run(&format!("test_http {section}"), &r);
        eprintln!("test_http {section}: {} ({:.1?})", last.trim(), r.elapsed);
    }
    let unknown = run_with(&exe, &["no_such_section"], &[], false);
    assert!(
        unknown.status.and_then(|s| s.code()) == Some(2)
            && unknown.stderr.contains("no section no_such_section"),
        "an unknown section is refused: {:?} {}",
        unknown.status,
        unknown.stderr
    );
}

macro_rules! c_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run_c_test(stringify!($name));
            }
        )*

        /// Every tests/c/*.c has a #[test] above.
        #[test]
        fn every_c_program_is_listed() {
            let listed = [$(stringify!($name)),*];
            let dir = repo_dir().join("tests").join("c");
            let mut missing = Vec::new();
            for entry in std::fs::read_dir(&dir).expect("read tests/c") {
                let path = entry.expect("dir entry").path();
                if path.extension().and_then(|e| e.to_str()) == Some("c") {
                    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
                    if !listed.contains(&stem.as_str()) {
                        missing.push(stem);
                    }
                }
            }
            assert!(missing.is_empty(), "tests/c programs without a #[test] in tests/c_programs.rs: {missing:?}");
        }
    };
}

c_tests!(
    test_loop,
    test_timers,
    test_handlers,
    test_threads,
    test_future,
    test_coroutine,
    test_bad_input,
    test_api_abuse,
    test_free,
    test_http,
    test_http_wire,
    test_http_features,
    test_stream,
    test_keepalive,
    test_http_tls,
    test_websocket,
);

/// Tornado's WebSocketHandler (tests/servers/ws_servers.py) for test_websocket.c.
fn websocket_fixture() -> Fixture {
    let server = common::process_server::Server::start("ws_servers.py tornado", |port, _| {
        let mut command = Command::new("python3");
        command
            .arg(repo_dir().join("tests/servers/ws_servers.py"))
            .arg("tornado")
            .env("WS_PORT", port.to_string());
        command
    });
    Fixture {
        env: vec![(
            "TORNADO_TEST_WS".into(),
            format!("ws://127.0.0.1:{}", server.port),
        )],
        _servers: Vec::new(),
        _pki: None,
        _full: None,
        _processes: (None, Some(server)),
    }
}

/// The TLS servers test_http_tls.c fetches from (tests/common/tls_probe.rs),
/// all with a certificate for mtls.test from one test CA.
fn http_tls_fixture() -> Fixture {
    use common::tls_probe::{self, ProbeOptions};
    let pki = common::pki::test_pki(&["mtls.test"]);
    let probe = |options: ProbeOptions| tls_probe::start(&pki, options).addr.port().to_string();
    let plain = probe(ProbeOptions {
        alpn: vec![b"http/1.1".to_vec()],
        ..Default::default()
    });
    let tls12 = probe(ProbeOptions {
        tls12_only: true,
        ..Default::default()
    });
    let h2 = probe(ProbeOptions {
        alpn: vec![b"h2".to_vec()],
        ..Default::default()
    });
    let mtls = probe(ProbeOptions {
        require_client_cert: true,
        ..Default::default()
    });
    let silent = tls_probe::silent_server().addr.port().to_string();
    let full = common::full_listener::full_listener();
    let path = |p: &Path| p.display().to_string();
    Fixture {
        env: vec![
            ("TORNADO_TEST_TLS_PORT".into(), plain),
            ("TORNADO_TEST_TLS12_PORT".into(), tls12),
            ("TORNADO_TEST_H2_PORT".into(), h2),
            ("TORNADO_TEST_MTLS_PORT".into(), mtls),
            ("TORNADO_TEST_SILENT_PORT".into(), silent),
            (
                "TORNADO_TEST_FULL_PORT".into(),
                full.addr.port().to_string(),
            ),
            ("TORNADO_TEST_CA".into(), path(&pki.ca_file)),
            (
                "TORNADO_TEST_CLIENT_CERT".into(),
                path(&pki.client_cert_file),
            ),
            ("TORNADO_TEST_CLIENT_KEY".into(), path(&pki.client_key_file)),
        ],
        _servers: Vec::new(),
        _pki: Some(pki),
        _full: Some(full),
        _processes: (None, None),
    }
}
