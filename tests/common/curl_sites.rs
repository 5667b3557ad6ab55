//! The real servers the curl-parity tests (tests/curl_parity.rs,
//! tests/fetch_cli_curl.rs) run against: nginx serving pre-compressed
//! brotli and zstd files (Debian's nginx has neither module) on TCP, on a
//! Unix socket and, with a test PKI, over TLS asking for a client
//! certificate; and Debian's microsocks (SOCKS5).

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::pki::TestPki;
use super::process_server::Server;

pub const PAGE: &str = "<html><body>hello from nginx, pre-compressed</body></html>\n";

pub fn page() -> String {
    PAGE.repeat(400)
}

pub fn brotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 9, 22);
        w.write_all(data).unwrap();
    }
    out
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

/// A zstd frame of 4,000 RLE blocks of 128 KiB: 500 MiB from 16 KB.
fn zstd_bomb() -> Vec<u8> {
    let mut z = 0xFD2F_B528u32.to_le_bytes().to_vec();
    z.extend([0x00, 13 << 3]); // window 8 MiB
    for i in 0..4000u32 {
        let header = u32::from(i == 3999) | 1 << 1 | (128 << 10) << 3;
        z.extend(&header.to_le_bytes()[..3]);
        z.push(0);
    }
    z
}

/// A zstd frame that asks for a 16 MiB window (over RFC 9659's 8 MiB).
fn zstd_wide_window() -> Vec<u8> {
    let mut z = 0xFD2F_B528u32.to_le_bytes().to_vec();
    z.extend([0x00, 14 << 3]);
    // One raw last block of 3 bytes.
    let header = 1u32 | 3 << 3;
    z.extend(&header.to_le_bytes()[..3]);
    z.extend(b"abc");
    z
}

/// nginx serving pre-compressed files under their codings, plain files,
/// and everything on a Unix socket too (`{dir}/nginx.sock`).
pub struct Nginx {
    pub server: Server,
    /// nginx's Unix socket: the same site.
    pub socket: PathBuf,
    /// With a PKI: the https port, which asks for a client certificate
    /// signed by the PKI's CA (`/whoami` answers with its subject).
    pub tls_port: Option<u16>,
}

pub fn nginx(pki: Option<&TestPki>) -> Nginx {
    let mut socket = PathBuf::new();
    let tls_port = pki.map(|_| free_port());
    let server = Server::start("nginx", |port, dir| {
        let tls = match (pki, tls_port) {
            (Some(pki), Some(tls_port)) => {
                std::fs::write(dir.join("cert.pem"), &pki.cert_pem).unwrap();
                std::fs::write(dir.join("key.pem"), &pki.key_pem).unwrap();
                format!(
                    "server {{
                       listen 127.0.0.1:{tls_port} ssl; root {d}/html;
                       ssl_certificate {d}/cert.pem; ssl_certificate_key {d}/key.pem;
                       ssl_client_certificate {ca}; ssl_verify_client on;
                       location = /whoami {{ default_type text/plain; return 200 \"client=$ssl_client_verify\"; }}
                       location = /proxy-auth {{ default_type text/plain; return 200 \"[$http_proxy_authorization]\"; }}
                     }}",
                    d = dir.display(),
                    ca = pki.ca_file.display()
                )
            }
            _ => String::new(),
        };
        let html = dir.join("html");
        std::fs::create_dir_all(&html).unwrap();
        std::fs::write(html.join("index.html"), page()).unwrap();
        std::fs::write(html.join("page.br"), brotli(page().as_bytes())).unwrap();
        std::fs::write(html.join("page.zst"), zstd(page().as_bytes())).unwrap();
        std::fs::write(html.join("bomb.br"), brotli(&vec![0u8; 64 << 20])).unwrap();
        std::fs::write(html.join("bomb.zst"), zstd_bomb()).unwrap();
        std::fs::write(html.join("wide.zst"), zstd_wide_window()).unwrap();
        let br = brotli(page().as_bytes());
        std::fs::write(html.join("truncated.br"), &br[..br.len() / 2]).unwrap();
        socket = dir.join("nginx.sock");
        let conf = format!(
            "daemon off; master_process off; worker_processes 1; error_log {d}/error.log; pid {d}/nginx.pid;
             events {{ worker_connections 64; }}
             http {{
               access_log off; client_body_temp_path {d}; proxy_temp_path {d};
               fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};
               types {{ text/html html; }}
               server {{
                 listen 127.0.0.1:{port}; listen unix:{d}/nginx.sock; root {d}/html;
                 location ~ \\.br$ {{ default_type text/html; add_header Content-Encoding br; }}
                 location ~ \\.zst$ {{ default_type text/html; add_header Content-Encoding zstd; }}
                 location = /whoami {{ default_type text/plain; return 200 \"host=$host\"; }}
                 location = /proxy-auth {{ default_type text/plain; return 200 \"[$http_proxy_authorization]\"; }}
               }}
               {tls}
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
    });
    Nginx {
        server,
        socket,
        tls_port,
    }
}

/// nginx's stream module as an https:// proxy: it terminates TLS (with
/// `pki`'s server certificate) and passes the plaintext to `upstream`, a
/// plain HTTP proxy (tests/common/connect_proxy.rs). Debian ships the
/// module as libnginx-mod-stream; .ci/run installs it.
pub fn nginx_tls_proxy(pki: &TestPki, upstream: std::net::SocketAddr) -> Server {
    let module = Path::new("/usr/lib/nginx/modules/ngx_stream_module.so");
    assert!(
        module.exists(),
        "{} is missing: apt-get install libnginx-mod-stream (.ci/run does)",
        module.display()
    );
    Server::start("nginx (stream TLS proxy)", |port, dir| {
        std::fs::write(dir.join("cert.pem"), &pki.cert_pem).unwrap();
        std::fs::write(dir.join("key.pem"), &pki.key_pem).unwrap();
        let conf = format!(
            "load_module {module};
             daemon off; master_process off; worker_processes 1; error_log {d}/error.log; pid {d}/nginx.pid;
             events {{ worker_connections 64; }}
             stream {{
               server {{
                 listen 127.0.0.1:{port} ssl;
                 ssl_certificate {d}/cert.pem; ssl_certificate_key {d}/key.pem;
                 proxy_pass {upstream};
               }}
             }}",
            module = module.display(),
            d = dir.display()
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let mut command = Command::new("/usr/sbin/nginx");
        command
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"));
        command
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Debian's microsocks on a port of its own (SOCKS5, remote resolution),
/// with `-u USER -P PASS` when given.
pub fn microsocks(credentials: Option<(&str, &str)>) -> Server {
    Server::start("microsocks (apt package microsocks)", |port, _| {
        let mut command = Command::new("microsocks");
        command.args(["-i", "127.0.0.1", "-p", &port.to_string()]);
        command.stderr(Stdio::null());
        if let Some((user, pass)) = credentials {
            command.args(["-u", user, "-P", pass]);
        }
        command
    })
}
