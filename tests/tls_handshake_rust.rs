//! What a new TLS connection puts on the wire (issue 12: a TLS 1.2
//! handshake stalled 40 ms behind the server's delayed ACK): the client's
//! second flight leaves in one write, TCP_NODELAY is on before the
//! handshake (HTTP client; start_tls_client unless the caller chose), and
//! the stream reports the version, cipher and kind of handshake it got. Servers are rustls on blocking loopback
//! sockets in a thread, driven by hand so the test sees each read.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::pki::{test_pki, TestPki};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned, SupportedProtocolVersion};

use tornado_rs::http::client::{AsyncHTTPClient, ClientOptions};
use tornado_rs::http::request::HTTPRequest;
use tornado_rs::tcpclient::connect_addr;
use tornado_rs::tls::{client_config, server_name, TlsClientOptions};
use tornado_rs::{gen, IOLoop};

const LIMIT: Option<Duration> = Some(Duration::from_secs(10));

fn server_config(pki: &TestPki, version: &'static SupportedProtocolVersion) -> Arc<ServerConfig> {
    let certs = CertificateDer::pem_slice_iter(pki.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(pki.key_pem.as_bytes()).unwrap();
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[version])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
    Arc::new(config)
}

/// Reads and processes records until the session has something to say
/// (the server's first flight once the ClientHello is in).
fn read_until_wants_write(conn: &mut ServerConnection, tcp: &mut TcpStream) {
    while !conn.wants_write() {
        assert!(conn.read_tls(tcp).unwrap() > 0, "the client closed early");
        conn.process_new_packets().unwrap();
    }
}

fn write_all_tls(conn: &mut ServerConnection, tcp: &mut TcpStream) {
    while conn.wants_write() {
        conn.write_tls(tcp).unwrap();
    }
}

/// The content types of the whole TLS records at the start of `bytes`.
fn record_types(mut bytes: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    while bytes.len() >= 5 {
        let len = u16::from_be_bytes([bytes[3], bytes[4]]) as usize;
        if bytes.len() < 5 + len {
            break;
        }
        types.push(bytes[0]);
        bytes = &bytes[5 + len..];
    }
    types
}

/// What the server of [`one_connection_server`] saw.
struct Seen {
    /// TCP_NODELAY on the client's socket when the ClientHello was in.
    nodelay_at_hello: Option<bool>,
    /// What the server's first read(2) after its own flight returned.
    first_read: Vec<u8>,
}

/// A TLS server for one connection that answers the ClientHello, then
/// sends back (on the channel) what its very next read(2) returned: the
/// client's second flight, as far as it had arrived. It then finishes
/// the handshake and waits for the client to close.
fn one_connection_server(
    pki: &TestPki,
    version: &'static SupportedProtocolVersion,
) -> (SocketAddr, mpsc::Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let config = server_config(pki, version);
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut tcp, client) = listener.accept().unwrap();
        let mut conn = ServerConnection::new(config).unwrap();
        read_until_wants_write(&mut conn, &mut tcp);
        let nodelay_at_hello = find_socket(client, addr).map(nodelay_of);
        write_all_tls(&mut conn, &mut tcp);
        let mut buf = vec![0; 64 * 1024];
        let n = tcp.read(&mut buf).unwrap();
        tx.send(Seen {
            nodelay_at_hello,
            first_read: buf[..n].to_vec(),
        })
        .unwrap();
        let mut first = &buf[..n];
        while !first.is_empty() {
            conn.read_tls(&mut first).unwrap();
        }
        conn.process_new_packets().unwrap();
        while conn.is_handshaking() && !conn.wants_write() {
            if conn.read_tls(&mut tcp).unwrap() == 0 {
                return;
            }
            conn.process_new_packets().unwrap();
        }
        write_all_tls(&mut conn, &mut tcp);
        // Until the client closes.
        while tcp.read(&mut buf).is_ok_and(|n| n > 0) {}
    });
    (addr, rx)
}

#[derive(Clone)]
struct Handshake {
    version: Option<&'static str>,
    cipher: Option<&'static str>,
    resumed: Option<bool>,
    nodelay: bool,
}

/// Connects a plain stream to `addr` and completes a TLS handshake as a
/// client trusting `pki`; `nodelay`: what the caller sets first (None:
/// nothing, the stream's default).
fn handshake(addr: SocketAddr, pki: &TestPki, nodelay: Option<bool>) -> Handshake {
    let lp = IOLoop::new().unwrap();
    let options = TlsClientOptions {
        ca_file: Some(pki.ca_file.clone()),
        ..Default::default()
    };
    let h = lp.loop_ref();
    let f = gen::spawn(&lp, async move {
        let stream = connect_addr(&h, addr, Some(Duration::from_secs(5)), None).await?;
        if let Some(on) = nodelay {
            stream.set_nodelay(on)?;
        }
        stream
            .start_tls_client(client_config(&options)?, server_name("localhost")?)
            .await?;
        let fd = stream.fd().unwrap();
        let got = Handshake {
            version: stream.tls_version(),
            cipher: stream.tls_cipher(),
            resumed: stream.tls_resumed(),
            nodelay: nodelay_of(fd),
        };
        stream.close(None);
        Ok(got)
    })
    .unwrap();
    lp.run_until(|| f.done(), LIMIT).expect("finished in time");
    match f.result().unwrap() {
        Ok(got) => got,
        Err(e) => panic!("handshake failed: {e}"),
    }
}

fn nodelay_of(fd: i32) -> bool {
    let mut on: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt into a c_int of the length given.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&mut on as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0, "getsockopt(TCP_NODELAY) on fd {fd}");
    on != 0
}

#[test]
fn tls12_client_second_flight_leaves_in_one_write() {
    let pki = test_pki(&["localhost"]);
    let (addr, seen) = one_connection_server(&pki, &rustls::version::TLS12);
    // The caller turns TCP_NODELAY off: start_tls_client leaves it so.
    let got = handshake(addr, &pki, Some(false));
    let seen = seen.recv_timeout(LIMIT.unwrap()).unwrap();
    let first_read = seen.first_read;
    // ClientKeyExchange (handshake, 22), ChangeCipherSpec (20), Finished
    // (22, encrypted) in the server's first read: written together. As
    // three writes with Nagle on, the last two would wait for the ACK of
    // the first, and the read would hold the ClientKeyExchange alone.
    assert_eq!(seen.nodelay_at_hello, Some(false));
    assert!(!got.nodelay, "the caller's choice stands");
    assert_eq!(
        record_types(&first_read),
        [22, 20, 22],
        "{} bytes in the first read",
        first_read.len()
    );
    assert_eq!(record_types(&first_read).len(), 3);
    assert_eq!(got.version, Some("TLSv1.2"));
    let cipher = got.cipher.unwrap();
    assert!(cipher.starts_with("TLS_ECDHE_"), "{cipher}");
    assert_eq!(got.resumed, Some(false), "a first handshake is a full one");
}

#[test]
fn tls13_handshake_reports_its_version_and_cipher() {
    let pki = test_pki(&["localhost"]);
    let (addr, seen) = one_connection_server(&pki, &rustls::version::TLS13);
    let got = handshake(addr, &pki, Some(false));
    let first_read = seen.recv_timeout(LIMIT.unwrap()).unwrap().first_read;
    // The client's Finished, after the ChangeCipherSpec rustls sends for
    // middleboxes (when it sends one), in one write: as two writes with
    // Nagle on, the read held the ChangeCipherSpec alone.
    // (A TLS 1.3 client is done once its Finished is out, so its
    // close_notify, one more record, may be in the same read.)
    let types = record_types(&first_read);
    assert!(
        types.starts_with(&[20, 23]) || types.starts_with(&[23]),
        "{types:?}"
    );
    assert_eq!(got.version, Some("TLSv1.3"));
    let cipher = got.cipher.unwrap();
    assert!(cipher.starts_with("TLS13_"), "{cipher}");
    assert_eq!(got.resumed, Some(false));
}

#[test]
fn start_tls_client_turns_nodelay_on_before_the_handshake_unless_the_caller_chose() {
    let pki = test_pki(&["localhost"]);
    let (addr, seen) = one_connection_server(&pki, &rustls::version::TLS13);
    let got = handshake(addr, &pki, None);
    let seen = seen.recv_timeout(LIMIT.unwrap()).unwrap();
    assert_eq!(
        seen.nodelay_at_hello,
        Some(true),
        "on when the ClientHello left"
    );
    assert!(got.nodelay);
    // Chosen on, it stays on too.
    let (addr, seen) = one_connection_server(&pki, &rustls::version::TLS12);
    let got = handshake(addr, &pki, Some(true));
    assert_eq!(
        seen.recv_timeout(LIMIT.unwrap()).unwrap().nodelay_at_hello,
        Some(true)
    );
    assert!(got.nodelay);
}

#[test]
fn a_plain_stream_reports_no_tls() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let lp = IOLoop::new().unwrap();
    let h = lp.loop_ref();
    let f = gen::spawn(&lp, async move {
        let stream = connect_addr(&h, addr, Some(Duration::from_secs(5)), None).await?;
        let got = (
            stream.tls_version(),
            stream.tls_cipher(),
            stream.tls_resumed(),
        );
        stream.close(None);
        Ok(got)
    })
    .unwrap();
    lp.run_until(|| f.done(), LIMIT).expect("finished in time");
    assert_eq!(f.result().unwrap().unwrap(), (None, None, None));
}

/// The socket of this process whose local end is `local` and remote end
/// `remote` (the client's side of a loopback connection the test's
/// server accepted), by getsockname/getpeername over the open fds.
fn find_socket(local: SocketAddr, remote: SocketAddr) -> Option<i32> {
    fn addr_of(
        fd: i32,
        f: unsafe extern "C" fn(
            libc::c_int,
            *mut libc::sockaddr,
            *mut libc::socklen_t,
        ) -> libc::c_int,
    ) -> Option<SocketAddr> {
        // SAFETY: zeroed sockaddr_in is a valid value.
        let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: get{sock,peer}name into a sockaddr_in of the length
        // given; an fd that is not an IPv4 socket fails or reports another
        // family, and is skipped.
        let rc = unsafe { f(fd, (&mut sin as *mut libc::sockaddr_in).cast(), &mut len) };
        if rc != 0 || sin.sin_family != libc::AF_INET as libc::sa_family_t {
            return None;
        }
        let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
        Some(SocketAddr::new(ip.into(), u16::from_be(sin.sin_port)))
    }
    (0..4096).find(|&fd| {
        addr_of(fd, libc::getsockname) == Some(local)
            && addr_of(fd, libc::getpeername) == Some(remote)
    })
}

#[test]
fn https_fetch_sets_nodelay_before_the_handshake() {
    let pki = test_pki(&["localhost"]);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let config = server_config(&pki, &rustls::version::TLS12);
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut tcp, client) = listener.accept().unwrap();
        // The ClientHello is here: the handshake has started and waits for
        // us. Look at the client's socket (it is in this process).
        let mut conn = ServerConnection::new(config).unwrap();
        read_until_wants_write(&mut conn, &mut tcp);
        let nodelay = find_socket(client, addr).map(nodelay_of);
        tx.send(nodelay).unwrap();
        let mut stream = BufReader::new(StreamOwned::new(conn, tcp));
        let mut line = String::new();
        loop {
            line.clear();
            match stream.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if line == "\r\n" => break,
                Ok(_) => {}
            }
        }
        let tls = stream.get_mut();
        let _ = tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        let _ = tls.flush();
        let mut rest = Vec::new();
        let _ = tls.read_to_end(&mut rest);
    });
    let lp = IOLoop::new().unwrap();
    let options = ClientOptions {
        hostname_mapping: vec![("localhost".into(), vec!["127.0.0.1".parse().unwrap()])],
        ..Default::default()
    };
    let client = AsyncHTTPClient::new(&lp, options).unwrap();
    let mut request = HTTPRequest::new(format!("https://localhost:{}/", addr.port()));
    request.ca_certs = Some(pki.ca_file.clone());
    let f = client.fetch(request).unwrap();
    lp.run_until(|| f.done(), LIMIT).unwrap();
    let r = f.result().unwrap().unwrap();
    assert_eq!(r.code, 200, "{:?}", r.error);
    assert_eq!(r.body, &b"ok"[..]);
    let nodelay = rx.recv_timeout(LIMIT.unwrap()).unwrap();
    assert_eq!(
        nodelay,
        Some(true),
        "TCP_NODELAY on the client's socket while its handshake was under way"
    );
}
