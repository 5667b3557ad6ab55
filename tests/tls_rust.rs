//! TLS streams over loopback with a test CA generated at test time (rcgen).

mod common;

use common::https_server::tls_server;
use common::pki::{test_pki, TestPki};

use std::sync::Arc;
use std::time::Duration;

use tornado_rs::tcpclient::{connect, connect_addr, ConnectOptions};
use tornado_rs::tcpserver::DEFAULT_BACKLOG;
use tornado_rs::tls::{
    client_config, server_config_from_pem, server_name, TlsClientOptions, TlsConnect,
};
use tornado_rs::{gen, Code, Future, IOLoop, IOStream, Result, TCPServer};

const LIMIT: Option<Duration> = Some(Duration::from_secs(10));

fn run<T: Clone + 'static>(lp: &IOLoop, f: Future<T>) -> Result<T> {
    lp.run_until(|| f.done(), LIMIT).expect("finished in time");
    f.result().unwrap()
}

/// A TLS line-echo server on 127.0.0.1 with the PKI's server certificate.
fn tls_echo_server(lp: &IOLoop, pki: &TestPki, alpn: &[&[u8]]) -> TCPServer {
    tls_server(lp, &pki.cert_pem, &pki.key_pem, alpn, |stream| async move {
        while let Ok(line) = stream.read_until(b"\n", None).await {
            if stream.write(&line).is_err() {
                break;
            }
        }
    })
}

/// Connects to `server`, starts TLS as `host`, and returns the stream.
async fn tls_connect(
    lp: &tornado_rs::LoopRef,
    server: std::net::SocketAddr,
    host: &str,
    options: &TlsClientOptions,
) -> Result<IOStream> {
    let stream = connect_addr(lp, server, Some(Duration::from_secs(5)), None).await?;
    stream
        .start_tls_client(client_config(options)?, server_name(host)?)
        .await?;
    Ok(stream)
}

fn trusting(pki: &TestPki) -> TlsClientOptions {
    TlsClientOptions {
        ca_file: Some(pki.ca_file.clone()),
        ..Default::default()
    }
}

#[test]
fn echo_over_tls_with_a_trusted_ca_and_alpn() {
    let lp = IOLoop::new().unwrap();
    let pki = test_pki(&["localhost", "127.0.0.1"]);
    let server = tls_echo_server(&lp, &pki, &[b"h2", b"http/1.1"]);
    let addr = server.local_addr();
    let options = TlsClientOptions {
        alpn: vec![b"http/1.1".to_vec()],
        ..trusting(&pki)
    };
    let h = lp.loop_ref();
    let f = gen::spawn(&lp, async move {
        let stream = tls_connect(&h, addr, "localhost", &options).await?;
        assert!(stream.is_tls());
        let alpn = stream.alpn_protocol();
        stream.write(b"hello over tls\n")?.value().await?;
        let line = stream.read_until(b"\n", None).await?;
        stream.close(None);
        Ok((line, alpn))
    })
    .unwrap();
    let (line, alpn) = run(&lp, f).unwrap();
    assert_eq!(line, b"hello over tls\n");
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
}

#[test]
fn an_ip_address_is_checked_against_the_certificate() {
    let lp = IOLoop::new().unwrap();
    let pki = test_pki(&["127.0.0.1"]);
    let server = tls_echo_server(&lp, &pki, &[]);
    let addr = server.local_addr();
    let options = trusting(&pki);
    let h = lp.loop_ref();
    let f = gen::spawn(&lp, async move {
        let stream = tls_connect(&h, addr, "127.0.0.1", &options).await?;
        stream.write(b"ip\n")?.value().await?;
        stream.read_until(b"\n", None).await
    })
    .unwrap();
    assert_eq!(run(&lp, f).unwrap(), b"ip\n");
}

#[test]
fn a_large_transfer_over_tls_arrives_intact() {
    let lp = IOLoop::new().unwrap();
    let pki = test_pki(&["localhost"]);
    let server = tls_echo_server(&lp, &pki, &[]);
    let addr = server.local_addr();
    let options = trusting(&pki);
    // 4 MiB in 64 KiB lines, each line distinct so reordering would show.
    let payload: Vec<u8> = (0..64u32)
        .flat_map(|i| {
            let mut line = vec![b'a' + (i % 26) as u8; 65535];
            line.push(b'\n');
            line
        })
        .collect();
    let expected = payload.clone();
    let h = lp.loop_ref();
    let f = gen::spawn(&lp, async move {
        let stream = tls_connect(&h, addr, "localhost", &options).await?;
        let written = stream.write(&payload)?;
        let mut echoed = Vec::new();
        while echoed.len() < payload.len() {
            echoed.extend(stream.read_until(b"\n", None).await?);
        }
        written.value().await?;
        Ok(echoed)
    })
    .unwrap();
    assert!(run(&lp, f).unwrap() == expected);
}

fn expect_handshake_failure(
    pki_names: &[&str],
    host: &str,
    options: impl Fn(&TestPki) -> TlsClientOptions,
) -> String {
    let lp = IOLoop::new().unwrap();
    let pki = test_pki(pki_names);
    let server = tls_echo_server(&lp, &pki, &[]);
    let addr = server.local_addr();
    let options = options(&pki);
    let host = host.to_string();
    let h = lp.loop_ref();
    let f = gen::spawn(&lp, async move {
        let stream = tls_connect(&h, addr, &host, &options).await?;
        Ok(stream.closed())
    })
    .unwrap();
    let error = run(&lp, f).expect_err("the handshake must fail");
    error.message().to_string()
}

#[test]
fn an_untrusted_certificate_is_refused_by_default() {
    // Default options: the system's trust store, which does not include
    // the test CA.
    let message =
        expect_handshake_failure(&["localhost"], "localhost", |_| TlsClientOptions::default());
    assert!(message.starts_with("tls: "), "{message}");
    assert!(message.contains("UnknownIssuer"), "{message}");
}

#[test]
fn a_certificate_for_another_name_is_refused() {
    let message = expect_handshake_failure(&["example.test"], "localhost", trusting);
    assert!(message.starts_with("tls: "), "{message}");
    assert!(message.contains("not valid for name"), "{message}");
}

#[test]
fn validation_off_accepts_an_untrusted_certificate() {
    let lp = IOLoop::new().unwrap();
    let pki = test_pki(&["example.test"]);
    let server = tls_echo_server(&lp, &pki, &[]);
    let addr = server.local_addr();
    let options = TlsClientOptions {
        validate_cert: false,
        ..Default::default()
    };
    let h = lp.loop_ref();
    let f = gen::spawn(&lp, async move {
        let stream = tls_connect(&h, addr, "localhost", &options).await?;
        stream.write(b"insecure\n")?.value().await?;
        stream.read_until(b"\n", None).await
    })
    .unwrap();
    assert_eq!(run(&lp, f).unwrap(), b"insecure\n");
}

#[test]
fn a_peer_that_is_not_tls_fails_the_handshake() {
    let lp = IOLoop::new().unwrap();
    let server = TCPServer::bind(&lp, "127.0.0.1:0".parse().unwrap(), DEFAULT_BACKLOG).unwrap();
    let h = lp.loop_ref();
    server
        .start(move |stream, _| {
            let _ = stream.write(b"HTTP/1.1 400 Bad Request\r\n\r\nthis is not TLS at all\r\n");
            h.spawn(async move {
                let _ = stream.read_until_close().await;
            })
            .unwrap();
        })
        .unwrap();
    let addr = server.local_addr();
    let h = lp.loop_ref();
    let f = gen::spawn(&lp, async move {
        tls_connect(&h, addr, "localhost", &TlsClientOptions::default())
            .await
            .map(|_| ())
    })
    .unwrap();
    let error = run(&lp, f).expect_err("not TLS");
    assert!(error.message().starts_with("tls: "), "{error}");
}

#[test]
fn a_missing_ca_file_is_a_clear_error() {
    let options = TlsClientOptions {
        ca_file: Some("/nonexistent/ca.pem".into()),
        ..Default::default()
    };
    let error = client_config(&options).expect_err("no such file");
    assert!(error.message().contains("/nonexistent/ca.pem"), "{error}");
    assert!(server_config_from_pem(b"garbage", b"garbage", &[]).is_err());
}

#[test]
fn default_client_configs_are_shared() {
    let a = client_config(&TlsClientOptions::default()).unwrap();
    let b = client_config(&TlsClientOptions::default()).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
}

/// `tcpclient::connect` with `ConnectOptions::tls` (Tornado's
/// `TCPClient.connect(ssl_options=)`): resolve, connect and handshake.
fn connect_with_tls(
    lp: &IOLoop,
    port: u16,
    options: &TlsClientOptions,
    timeout: Duration,
) -> Future<IOStream> {
    let tls = TlsConnect::new(options, "127.0.0.1").unwrap();
    let options = ConnectOptions {
        timeout: Some(timeout),
        tls: Some(tls),
        ..Default::default()
    };
    let h = lp.loop_ref();
    gen::spawn(lp, async move {
        let (stream, _addr) = connect(&h, "127.0.0.1", port, &options).await?;
        Ok(stream)
    })
    .unwrap()
}

#[test]
fn tcp_connect_with_tls_options_completes_the_handshake() {
    let lp = IOLoop::new().unwrap();
    let pki = test_pki(&["127.0.0.1"]);
    let server = tls_echo_server(&lp, &pki, &[]);
    let f = connect_with_tls(
        &lp,
        server.local_addr().port(),
        &trusting(&pki),
        Duration::from_secs(5),
    );
    let stream = run(&lp, f).unwrap();
    assert!(stream.is_tls());
    let echoed = gen::spawn(&lp, async move {
        stream
            .write(b"connected with ssl_options\n")?
            .value()
            .await?;
        stream.read_until(b"\n", None).await
    })
    .unwrap();
    assert_eq!(run(&lp, echoed).unwrap(), b"connected with ssl_options\n");
}

#[test]
fn tcp_connect_with_tls_options_validates_the_certificate() {
    let lp = IOLoop::new().unwrap();
    let pki = test_pki(&["127.0.0.1"]);
    let server = tls_echo_server(&lp, &pki, &[]);
    // Default options: the system's trust store, without the test CA.
    let f = connect_with_tls(
        &lp,
        server.local_addr().port(),
        &TlsClientOptions::default(),
        Duration::from_secs(5),
    );
    let Err(error) = run(&lp, f) else {
        panic!("an untrusted certificate was accepted");
    };
    assert_eq!(error.code(), Code::TLS, "{error}");
    assert!(error.message().contains("UnknownIssuer"), "{error}");
}

#[test]
fn tcp_connect_timeout_covers_the_tls_handshake() {
    let lp = IOLoop::new().unwrap();
    // Accepts and keeps the connection open, but never answers the ClientHello.
    let server = TCPServer::bind(&lp, "127.0.0.1:0".parse().unwrap(), DEFAULT_BACKLOG).unwrap();
    let h = lp.loop_ref();
    server
        .start(move |stream, _| {
            h.spawn(async move {
                let _ = stream.read_until_close().await;
            })
            .unwrap();
        })
        .unwrap();
    let started = std::time::Instant::now();
    let f = connect_with_tls(
        &lp,
        server.local_addr().port(),
        &TlsClientOptions::default(),
        Duration::from_millis(200),
    );
    let Err(error) = run(&lp, f) else {
        panic!("a peer that never answers completed a handshake");
    };
    assert_eq!(error.code(), Code::TIMEOUT, "{error}");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(190), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

/// Bytes written while the handshake is still under way wait for it, then
/// go out encrypted. (On rustls' unbuffered API they once made the write
/// flusher spin: the socket was writable and the session not yet ready to
/// take them, so the loop never got back to the handshake.)
#[test]
fn a_write_made_during_the_handshake_goes_out_after_it() {
    let lp = IOLoop::new().unwrap();
    let pki = test_pki(&["localhost"]);
    let server = tls_echo_server(&lp, &pki, &[]);
    let addr = server.local_addr();
    let options = trusting(&pki);
    let h = lp.loop_ref();
    let f = gen::spawn(&lp, async move {
        let stream = connect_addr(&h, addr, Some(Duration::from_secs(5)), None).await?;
        let config = client_config(&options)?;
        let tls = stream.clone();
        let handshake = gen::spawn(&h, async move {
            tls.start_tls_client(config, server_name("localhost")?)
                .await
        })?;
        while !stream.is_tls() {
            gen::moment(&h)?.value().await?;
        }
        assert!(
            !handshake.done(),
            "the write must come during the handshake"
        );
        let written = stream.write(b"written early\n")?;
        handshake.value().await?;
        written.value().await?;
        stream.read_until(b"\n", None).await
    })
    .unwrap();
    assert_eq!(run(&lp, f).unwrap(), b"written early\n");
}

/// A TLS 1.3 server that refuses the client's protocols (ALPN) tells it so:
/// its alert follows the ServerHello it had already queued, and the client
/// names the reason instead of seeing the connection end.
#[test]
fn a_server_refusing_every_offered_protocol_sends_its_alert() {
    let lp = IOLoop::new().unwrap();
    let pki = test_pki(&["localhost"]);
    let server = tls_echo_server(&lp, &pki, &[b"h2"]);
    let addr = server.local_addr();
    let options = TlsClientOptions {
        alpn: vec![b"http/1.1".to_vec()],
        ..trusting(&pki)
    };
    let h = lp.loop_ref();
    let f = gen::spawn(&lp, async move {
        tls_connect(&h, addr, "localhost", &options).await
    })
    .unwrap();
    let error = run(&lp, f).err().expect("the handshake fails");
    assert_eq!(error.code(), Code::TLS, "{error}");
    assert!(
        error.to_string().contains("NoApplicationProtocol"),
        "the server's alert reached the client: {error}"
    );
}
