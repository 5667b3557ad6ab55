//! include/tornado_rs.hpp: builds tests/cpp/test_wrapper.cpp (CXX, default
//! g++) against the built library twice, both with `-Wall -Wextra -Werror`
//! and the STRICT warnings below (as a demanding user builds), and runs each:
//!
//! - as C++17: the header's C++17 part, coroutine sections compiled out;
//!   under valgrind with TORNADO_VALGRIND=1;
//! - as C++20 with `-fsanitize=address,undefined` (LeakSanitizer included):
//!   every section, coroutines too, and any leak of a callback or handle
//!   fails the run.
//!
//! Both get a test PKI (a server certificate for tornado.test and
//! 127.0.0.1, and its CA) through TORNADO_TEST_CERT/KEY/CA, and two
//! nghttpd servers (Debian's nghttp2-server) for the HTTP/2 section: one
//! over TLS with that certificate (TORNADO_TEST_H2_PORT, h2 by ALPN) and
//! one over plain TCP (TORNADO_TEST_H2C_PORT, prior knowledge); and
//! Tornado's WebSocketHandler (tests/servers/ws_servers.py) on
//! TORNADO_TEST_WS_PORT for the WebSocket section.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::c_build::{lib_dir, repo_dir, valgrind_enabled};
use common::process_server::Server;

/// Warnings a C++ user may build with: the header must be clean under them.
const STRICT: &[&str] = &[
    "-Wpedantic",
    "-Wshadow",
    "-Wold-style-cast",
    "-Wconversion",
    "-Wsign-conversion",
];

const SANITIZE: &[&str] = &[
    "-fsanitize=address,undefined",
    "-fno-omit-frame-pointer",
    "-fno-sanitize-recover=all",
];

/// Compiles the test as `name` with `std` and `extra` flags.
fn build(name: &str, std: &str, extra: &[&str]) -> PathBuf {
    let lib = lib_dir();
    let exe = lib.join("c-tests").join(name);
    std::fs::create_dir_all(exe.parent().unwrap()).unwrap();
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "g++".into());
    let out = Command::new(&cxx)
        .arg(format!("-std={std}"))
        .args(["-Wall", "-Wextra", "-Werror", "-g", "-pthread"])
        .args(STRICT)
        .args(extra)
        .arg(format!("-I{}", repo_dir().join("include").display()))
        .arg(repo_dir().join("tests/cpp/test_wrapper.cpp"))
        .arg(format!("-L{}", lib.display()))
        .arg("-ltornado_rs")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap_or_else(|e| panic!("could not run the C++ compiler `{cxx}`: {e}"));
    assert!(
        out.status.success(),
        "compiling test_wrapper.cpp ({std} {extra:?}) failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

fn run(mut cmd: Command, pki: &common::pki::TestPki) {
    let cert = pki.dir.path().join("cert.pem");
    let key = pki.dir.path().join("key.pem");
    std::fs::write(&cert, &pki.cert_pem).unwrap();
    std::fs::write(&key, &pki.key_pem).unwrap();
    let path = |p: &Path| p.display().to_string();
    let h2 = nghttpd(Some((&key, &cert)));
    let h2c = nghttpd(None);
    let ws = common::ws_server::WsServer::start(&["tornado"]);
    let out = cmd
        .env("TORNADO_TEST_WS_PORT", ws.port.to_string())
        .env("TORNADO_TEST_H2_PORT", h2.port.to_string())
        .env("TORNADO_TEST_H2C_PORT", h2c.port.to_string())
        .env("TORNADO_TEST_CERT", path(&cert))
        .env("TORNADO_TEST_KEY", path(&key))
        .env("TORNADO_TEST_CA", path(&pki.ca_file))
        .output()
        .expect("run test_wrapper");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(" passed, 0 failed"),
        "{cmd:?}: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// nghttpd serving `index.html` ("h2 page\n"): over TLS with (key, cert),
/// else over plain TCP (h2c).
fn nghttpd(tls: Option<(&Path, &Path)>) -> Server {
    let tls = tls.map(|(k, c)| (k.to_path_buf(), c.to_path_buf()));
    Server::start("nghttpd (apt package nghttp2-server)", move |port, dir| {
        std::fs::write(dir.join("index.html"), "h2 page\n").unwrap();
        let program = ["/usr/sbin/nghttpd", "nghttpd"]
            .into_iter()
            .find(|p| !p.starts_with('/') || Path::new(p).exists())
            .unwrap();
        let mut command = Command::new(program);
        command.arg("-a").arg("127.0.0.1").arg("-d").arg(dir);
        match tls {
            Some((key, cert)) => command.arg(port.to_string()).arg(key).arg(cert),
            None => command.arg("--no-tls").arg(port.to_string()),
        };
        command
    })
}

#[test]
fn cpp17_wrapper() {
    let pki = common::pki::test_pki(&["tornado.test", "127.0.0.1"]);
    let exe = build("test_wrapper_cpp17", "c++17", &[]);
    let cmd = if valgrind_enabled() {
        let mut c = Command::new("valgrind");
        c.args([
            "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect",
            "--error-exitcode=99",
            "-q",
        ])
        .arg(format!(
            "--suppressions={}",
            repo_dir().join("tests/valgrind.supp").display()
        ))
        .arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    run(cmd, &pki);
}

#[test]
fn cpp20_wrapper_under_asan() {
    let pki = common::pki::test_pki(&["tornado.test", "127.0.0.1"]);
    let exe = build("test_wrapper_cpp20_asan", "c++20", SANITIZE);
    let mut cmd = Command::new(&exe);
    cmd.env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        .env("UBSAN_OPTIONS", "print_stacktrace=1");
    run(cmd, &pki);
}
