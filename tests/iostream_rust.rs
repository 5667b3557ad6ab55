//! IOStream, TCPServer and connects on real sockets over loopback.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use tornado_rs::tcpclient::connect_addr;
use tornado_rs::tcpserver::DEFAULT_BACKLOG;
use tornado_rs::{gen, Code, Future, IOLoop, IOStream, Result, TCPServer};

#[path = "common/ipv6.rs"]
mod ipv6;
use ipv6::require_ipv6_loopback;

const LIMIT: Option<Duration> = Some(Duration::from_secs(10));

fn run<T: Clone + 'static>(lp: &IOLoop, f: Future<T>) -> Result<T> {
    lp.run_until(|| f.done(), LIMIT).expect("finished in time");
    f.result().unwrap()
}

/// An echo server on the loop: echoes each line back until the peer closes.
fn echo_server(lp: &IOLoop, addr: &str) -> TCPServer {
    let server = TCPServer::bind(lp, addr.parse().unwrap(), DEFAULT_BACKLOG).unwrap();
    let h = lp.loop_ref();
    server
        .start(move |stream, _peer| {
            h.spawn(async move {
                while let Ok(line) = stream.read_until(b"\n", None).await {
                    if stream.write(&line).is_err() {
                        break;
                    }
                }
            })
            .unwrap();
        })
        .unwrap();
    server
}

#[test]
fn echo_over_ipv4() {
    echo_over("127.0.0.1:0");
}

#[test]
#[cfg_attr(
    tornado_no_ipv6,
    ignore = "TORNADO_TEST_NO_IPV6 is set: no IPv6 loopback (::1) here"
)]
fn echo_over_ipv6() {
    require_ipv6_loopback();
    echo_over("[::1]:0");
}

fn echo_over(addr: &str) {
    let lp = IOLoop::new().unwrap();
    let server = echo_server(&lp, addr);
    let target = server.local_addr();
    assert_ne!(target.port(), 0);
    let h = lp.loop_ref();
    let f = gen::spawn(&lp, async move {
        let stream = connect_addr(&h, target, Some(Duration::from_secs(5)), None).await?;
        stream.set_nodelay(true)?;
        stream.write(b"hello\nworld\n")?.value().await?;
        let a = stream.read_until(b"\n", None).await?;
        let b = stream.read_until(b"\n", None).await?;
        stream.close(None);
        Ok((a, b))
    })
    .unwrap();
    let (a, b) = run(&lp, f).unwrap();
    assert_eq!(
        (a.as_slice(), b.as_slice()),
        (&b"hello\n"[..], &b"world\n"[..])
    );
}

/// A blocking peer on a plain thread, for byte-exact control.
fn peer_thread(behaviour: impl FnOnce(TcpStream) + Send + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (socket, _) = listener.accept().unwrap();
        behaviour(socket);
    });
    addr
}

#[test]
fn ten_megabytes_each_way() {
    const SIZE: usize = 10 * 1024 * 1024;
    let addr = peer_thread(|mut s| {
        let mut got = vec![0u8; SIZE];
        s.read_exact(&mut got).unwrap();
        s.write_all(&got).unwrap();
    });
    let lp = IOLoop::new().unwrap();
    let h = lp.loop_ref();
    let f = gen::spawn(&lp, async move {
        let stream = connect_addr(&h, addr, LIMIT, None).await?;
        let data: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
        let sent = stream.write(&data)?;
        let back = stream.read_bytes(SIZE, false).await?;
        sent.value().await?;
        Ok(back == data)
    })
    .unwrap();
    assert!(run(&lp, f).unwrap());
}

#[test]
fn read_until_across_small_segments_and_partial_reads() {
    let addr = peer_thread(|mut s| {
        s.set_nodelay(true).unwrap();
        for b in b"abc--def--" {
            s.write_all(&[*b]).unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
        s.write_all(b"xyz").unwrap();
    });
    let lp = IOLoop::new().unwrap();
    let h = lp.loop_ref();
    let f = gen::spawn(&lp, async move {
        let stream = connect_addr(&h, addr, LIMIT, None).await?;
        let a = stream.read_until(b"--", None).await?;
        let b = stream.read_until(b"--", None).await?;
        let c = stream.read_bytes(100, true).await?;
        let rest = stream.read_until_close().await?;
        Ok((a, b, c, rest))
    })
    .unwrap();
    let (a, b, c, rest) = run(&lp, f).unwrap();
    assert_eq!(a, b"abc--");
    assert_eq!(b, b"def--");
    let mut tail = c.clone();
    tail.extend(rest);
    assert!(!c.is_empty() && c.len() <= 3);
    assert_eq!(tail, b"xyz");
}

#[test]
fn buffered_data_satisfies_a_read_and_a_second_read_is_refused() {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    (&a).write_all(b"line1\nline2\n").unwrap();
    let lp = IOLoop::new().unwrap();
    let stream = IOStream::from_unix(&lp, b).unwrap();
    let s2 = stream.clone();
    let first = gen::spawn(&lp, async move { s2.read_until(b"\n", None).await }).unwrap();
    assert_eq!(run(&lp, first).unwrap(), b"line1\n");
    // line2 is buffered now; a read gets it without any new data.
    let s3 = stream.clone();
    let second = gen::spawn(&lp, async move { s3.read_until(b"\n", None).await }).unwrap();
    assert_eq!(run(&lp, second).unwrap(), b"line2\n");

    let s4 = stream.clone();
    let s5 = stream.clone();
    let both = gen::spawn(&lp, async move {
        let pending = s4.read_bytes(1, false);
        let mut pending = std::pin::pin!(pending);
        // Start the first read (it waits for data), then try another.
        std::future::poll_fn(|cx| {
            let _ = pending.as_mut().poll(cx);
            std::task::Poll::Ready(())
        })
        .await;
        Ok(s5.read_bytes(1, false).await.unwrap_err().code())
    })
    .unwrap();
    assert_eq!(run(&lp, both).unwrap(), Code::RUNNING);
    drop(a);
}

use std::future::Future as _;

#[test]
fn max_buffer_size_overflow_fails_and_closes() {
    let addr = peer_thread(|mut s| {
        let _ = s.write_all(&vec![b'x'; 1 << 20]);
    });
    let lp = IOLoop::new().unwrap();
    let h = lp.loop_ref();
    let f = gen::spawn(&lp, async move {
        let stream = connect_addr(&h, addr, LIMIT, None).await?;
        stream.set_max_buffer_size(64 * 1024)?;
        let err = stream.read_until(b"\n", None).await.unwrap_err();
        Ok((
            err.message().to_string(),
            stream.closed(),
            stream.error().is_some(),
        ))
    })
    .unwrap();
    let (message, closed, has_error) = run(&lp, f).unwrap();
    assert!(message.contains("maximum read buffer size"), "{message}");
    assert!(closed && has_error);
}

#[test]
fn read_until_max_bytes_without_delimiter_fails() {
    let addr = peer_thread(|mut s| {
        let _ = s.write_all(&[b'a'; 1000]);
        std::thread::sleep(Duration::from_millis(200));
    });
    let lp = IOLoop::new().unwrap();
    let h = lp.loop_ref();
    let f = gen::spawn(&lp, async move {
        let stream = connect_addr(&h, addr, LIMIT, None).await?;
        let err = stream.read_until(b"\n", Some(100)).await.unwrap_err();
        Ok((err.message().to_string(), stream.closed()))
    })
    .unwrap();
    let (message, closed) = run(&lp, f).unwrap();
    assert!(message.contains("not found within 100"), "{message}");
    assert!(closed);
}

#[test]
fn a_reset_peer_fails_the_read() {
    let addr = peer_thread(|s| {
        // SO_LINGER 0: close sends RST.
        let sock = socket2::Socket::from(s);
        sock.set_linger(Some(Duration::ZERO)).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        drop(sock);
    });
    let lp = IOLoop::new().unwrap();
    let h = lp.loop_ref();
    let f = gen::spawn(&lp, async move {
        let stream = connect_addr(&h, addr, LIMIT, None).await?;
        Ok(stream.read_bytes(10, false).await.map(|_| ()).unwrap_err())
    })
    .unwrap();
    let err = run(&lp, f).unwrap();
    assert!(
        err.message().contains("reset") || err.code() == Code::CLOSED,
        "{err:?}"
    );
}

#[test]
fn half_close_lets_the_peer_finish() {
    let addr = peer_thread(|mut s| {
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap(); // until our shutdown_write
        s.write_all(&got).unwrap();
        s.write_all(b"|done").unwrap();
    });
    let lp = IOLoop::new().unwrap();
    let h = lp.loop_ref();
    let f = gen::spawn(&lp, async move {
        let stream = connect_addr(&h, addr, LIMIT, None).await?;
        stream.write(b"request")?.value().await?;
        stream.shutdown_write()?;
        stream.read_until_close().await
    })
    .unwrap();
    assert_eq!(run(&lp, f).unwrap(), b"request|done");
}

#[test]
fn connect_refused_and_connect_timeout() {
    let lp = IOLoop::new().unwrap();
    // A port with nothing listening: bind, read the port, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let h = lp.loop_ref();
    let refused = gen::spawn(&lp, async move {
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        Ok(connect_addr(&h, addr, LIMIT, None)
            .await
            .map(|_| ())
            .unwrap_err())
    })
    .unwrap();
    let err = run(&lp, refused).unwrap();
    assert!(err.message().contains("refused"), "{err:?}");

    // A listener with a full backlog that never accepts: further SYNs are
    // dropped, so the connect hangs until the timeout.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    sock.listen(0).unwrap();
    let full: SocketAddr = sock.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(s) = TcpStream::connect_timeout(&full, Duration::from_millis(200)) {
            fillers.push(s);
        }
    }
    let h = lp.loop_ref();
    let t = Instant::now();
    let timed_out = gen::spawn(&lp, async move {
        Ok(
            connect_addr(&h, full, Some(Duration::from_millis(300)), None)
                .await
                .map(|_| ())
                .unwrap_err()
                .code(),
        )
    })
    .unwrap();
    assert_eq!(run(&lp, timed_out).unwrap(), Code::TIMEOUT);
    assert!(t.elapsed() >= Duration::from_millis(290));
}

#[test]
fn close_callback_runs_and_writes_after_close_fail() {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let lp = IOLoop::new().unwrap();
    let stream = IOStream::from_unix(&lp, b).unwrap();
    let called = Rc::new(RefCell::new(false));
    let c = called.clone();
    stream.set_close_callback(move || *c.borrow_mut() = true);
    drop(a);
    let s = stream.clone();
    let f = gen::spawn(
        &lp,
        async move { Ok(s.read_bytes(1, false).await.is_err()) },
    )
    .unwrap();
    assert!(run(&lp, f).unwrap());
    stream.close(None);
    lp.run_once(Some(Duration::ZERO)).unwrap();
    assert!(*called.borrow());
    assert!(stream.write(b"x").is_err());
}

#[test]
fn is_quiet_sees_data_and_the_end_that_arrive_after_a_drained_read() {
    // A keep-alive pool asks is_quiet before reusing a connection. After a
    // short read drained the socket it answers without a syscall, so it
    // must still notice what arrives later: more data, then the FIN.
    let (to_peer, from_test) = std::sync::mpsc::channel::<&'static [u8]>();
    let addr = peer_thread(move |mut s| {
        s.set_nodelay(true).unwrap();
        for bytes in from_test {
            if bytes.is_empty() {
                return; // closes: FIN
            }
            s.write_all(bytes).unwrap();
        }
    });
    let lp = IOLoop::new().unwrap();
    let h = lp.loop_ref();
    let connected = gen::spawn(
        &lp,
        async move { connect_addr(&h, addr, LIMIT, None).await },
    )
    .unwrap();
    let stream = run(&lp, connected).unwrap();
    let settle = |lp: &IOLoop| {
        std::thread::sleep(Duration::from_millis(50));
        lp.run_once(Some(Duration::from_millis(50))).unwrap();
    };

    to_peer.send(b"hello").unwrap();
    let reader = stream.clone();
    let first = gen::spawn(&lp, async move { reader.read_bytes(5, false).await }).unwrap();
    assert_eq!(run(&lp, first).unwrap(), b"hello");
    assert!(stream.is_quiet(), "drained, nothing new");
    to_peer.send(b"late").unwrap();
    settle(&lp);
    assert!(!stream.is_quiet(), "data that arrived later is seen");
    let reader = stream.clone();
    let late = gen::spawn(&lp, async move { reader.read_bytes(4, false).await }).unwrap();
    assert_eq!(run(&lp, late).unwrap(), b"late");
    assert!(stream.is_quiet());
    to_peer.send(b"").unwrap();
    settle(&lp);
    assert!(!stream.is_quiet(), "the peer's FIN is seen");
}
