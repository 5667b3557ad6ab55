//! The resolver and TCPClient's Happy Eyeballs connect, on loopback.

use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use tornado_rs::resolver::{AddressFamily, Resolver};
use tornado_rs::tcpclient::{connect, ConnectOptions};
use tornado_rs::{gen, Code, Future, IOLoop, Result};

#[path = "common/ipv6.rs"]
mod ipv6;
use ipv6::require_ipv6_loopback;

const LIMIT: Option<Duration> = Some(Duration::from_secs(10));

fn run<T: Clone + 'static>(lp: &IOLoop, f: Future<T>) -> Result<T> {
    lp.run_until(|| f.done(), LIMIT).expect("finished in time");
    f.result().unwrap()
}

/// A listening socket whose backlog is full: further SYNs are dropped, so
/// a connect to it never completes (nothing leaves the machine).
struct Unanswering {
    addr: SocketAddr,
    _socket: socket2::Socket,
    _fillers: Vec<TcpStream>,
}

fn unanswering(ip: &str) -> Option<Unanswering> {
    let ip: IpAddr = ip.parse().unwrap();
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(SocketAddr::new(ip, 0)),
        socket2::Type::STREAM,
        None,
    )
    .ok()?;
    socket.bind(&SocketAddr::new(ip, 0).into()).ok()?;
    socket.listen(0).ok()?;
    let addr = socket.local_addr().ok()?.as_socket()?;
    let fillers = (0..4)
        .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok())
        .collect();
    Some(Unanswering {
        addr,
        _socket: socket,
        _fillers: fillers,
    })
}

/// A port on `ip` where nothing listens (connects are refused).
fn refused_port(ip: &str) -> u16 {
    let l = TcpListener::bind((ip.parse::<IpAddr>().unwrap(), 0)).unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn resolves_names_literals_and_mappings() {
    let lp = IOLoop::new().unwrap();
    let resolver = Resolver::new();
    resolver.add_mapping(
        "pinned.test",
        vec!["127.0.0.9".parse().unwrap(), "::1".parse().unwrap()],
    );
    let r = resolver.clone();
    let f = gen::spawn(&lp, async move {
        let localhost = r.resolve("localhost", 80, AddressFamily::V4).await?;
        let literal = r.resolve("[::1]", 81, AddressFamily::Any).await?;
        let pinned = r.resolve("PINNED.test", 82, AddressFamily::Any).await?;
        let pinned_v4 = r.resolve("pinned.test", 82, AddressFamily::V4).await?;
        let missing = r
            .resolve("no-such-host.invalid", 80, AddressFamily::Any)
            .await
            .unwrap_err();
        Ok((
            localhost,
            literal,
            pinned,
            pinned_v4,
            missing.message().to_string(),
        ))
    })
    .unwrap();
    let (localhost, literal, pinned, pinned_v4, missing) = run(&lp, f).unwrap();
    assert!(
        localhost.contains(&"127.0.0.1:80".parse().unwrap()),
        "{localhost:?}"
    );
    assert_eq!(literal, ["[::1]:81".parse().unwrap()]);
    assert_eq!(
        pinned,
        ["127.0.0.9:82".parse().unwrap(), "[::1]:82".parse().unwrap()]
    );
    assert_eq!(pinned_v4, ["127.0.0.9:82".parse().unwrap()]);
    assert!(missing.contains("no-such-host.invalid"), "{missing}");
}

/// The threaded resolver's cache (curl's 60 s DNS cache): a name asked
/// again within the TTL is not looked up again; after it, or with the
/// cache off, it is. ("localhost" is the one name resolved here: it comes
/// from /etc/hosts, never from the network.)
#[test]
fn the_dns_cache_keeps_answers_for_its_ttl_and_can_be_turned_off() {
    let lp = IOLoop::new().unwrap();
    let resolver = Resolver::new();
    assert_eq!(
        resolver.cache_ttl(),
        Some(tornado_rs::resolver::DEFAULT_DNS_CACHE_TTL)
    );
    assert_eq!(
        tornado_rs::resolver::DEFAULT_DNS_CACHE_TTL,
        Duration::from_secs(60)
    );
    let lookups = |r: &Resolver, port: u16| {
        let r2 = r.clone();
        let f = gen::spawn(&lp, async move {
            r2.resolve("localhost", port, AddressFamily::V4).await
        })
        .unwrap();
        let addrs = run(&lp, f).unwrap();
        assert!(addrs.iter().all(|a| a.port() == port), "{addrs:?}");
        assert!(addrs.contains(&SocketAddr::from(([127, 0, 0, 1], port))));
        r.system_lookups()
    };
    assert_eq!(lookups(&resolver, 80), 1);
    // Cached: another port, another family filter, the same answer.
    assert_eq!(lookups(&resolver, 81), 1);
    assert_eq!(lookups(&resolver.clone(), 82), 1, "clones share the cache");
    // IP literals never reach the system resolver, cached or not.
    let r = resolver.clone();
    let f = gen::spawn(&lp, async move {
        r.resolve("127.0.0.1", 1, AddressFamily::Any).await
    })
    .unwrap();
    run(&lp, f).unwrap();
    assert_eq!(resolver.system_lookups(), 1);

    // A short TTL runs out.
    resolver.set_cache_ttl(Some(Duration::from_millis(50)));
    assert_eq!(lookups(&resolver, 80), 1, "still fresh");
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(lookups(&resolver, 80), 2, "expired: looked up again");

    // Off: every resolve asks the system.
    resolver.set_cache_ttl(None);
    assert_eq!(resolver.cache_ttl(), None);
    assert_eq!(lookups(&resolver, 80), 3);
    assert_eq!(lookups(&resolver, 80), 4);
    resolver.set_cache_ttl(Some(Duration::ZERO));
    assert_eq!(resolver.cache_ttl(), None, "zero is off too");
    assert_eq!(lookups(&resolver, 80), 5);
}

#[test]
fn many_lookups_at_once_all_complete() {
    let lp = IOLoop::new().unwrap();
    let futures: Vec<_> = (0..50)
        .map(|_| {
            gen::spawn(&lp, async move {
                Resolver::new()
                    .resolve("localhost", 1, AddressFamily::V4)
                    .await
            })
            .unwrap()
        })
        .collect();
    lp.run_until(|| futures.iter().all(|f| f.done()), LIMIT)
        .unwrap();
    assert!(futures.iter().all(|f| f.result().unwrap().is_ok()));
}

fn connect_via_mapping(
    lp: &IOLoop,
    addrs: Vec<IpAddr>,
    port: u16,
    timeout: Option<Duration>,
) -> (Result<SocketAddr>, Duration) {
    let resolver = Resolver::new();
    resolver.add_mapping("multi.test", addrs);
    let options = ConnectOptions {
        resolver: Some(resolver),
        timeout,
        ..Default::default()
    };
    let h = lp.handle();
    let started = Instant::now();
    let f = gen::spawn(lp, async move {
        let (stream, addr) = connect(&h, "multi.test", port, &options).await?;
        stream.close(None);
        Ok(addr)
    })
    .unwrap();
    let outcome = run(lp, f);
    (outcome, started.elapsed())
}

/// An IPv6 listener on `[::1]:port` that never answers, and a working
/// IPv4 one on `127.0.0.1:port`: the same port on both, as a name that
/// resolves to both addresses has one port. Ports are tried until one is
/// free on both.
fn silent_ipv6_and_working_ipv4() -> (Unanswering, TcpListener) {
    for _ in 0..20 {
        let silent = unanswering("::1").expect("a silent IPv6 listener");
        if let Ok(good) = TcpListener::bind(("127.0.0.1", silent.addr.port())) {
            return (silent, good);
        }
    }
    panic!("no port free on both ::1 and 127.0.0.1 in 20 tries");
}

#[test]
#[cfg_attr(
    tornado_no_ipv6,
    ignore = "TORNADO_TEST_NO_IPV6 is set: no IPv6 loopback (::1) here"
)]
fn happy_eyeballs_ipv6_falls_back_to_the_other_family_after_300_ms() {
    require_ipv6_loopback();
    let lp = IOLoop::new().unwrap();
    // Primary family IPv6 never answers; the IPv4 address works.
    let (silent, good) = silent_ipv6_and_working_ipv4();
    let port = silent.addr.port();
    let (outcome, elapsed) = connect_via_mapping(
        &lp,
        vec!["::1".parse().unwrap(), "127.0.0.1".parse().unwrap()],
        port,
        None,
    );
    assert_eq!(
        outcome.unwrap(),
        SocketAddr::new("127.0.0.1".parse().unwrap(), port)
    );
    assert!(
        elapsed >= Duration::from_millis(250),
        "waited for the primary: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    drop(good);
}

/// A working IPv4 listener on a port where nothing listens on `[::1]`
/// (connects there are refused at once). Ports are tried until one is.
fn working_ipv4_refused_ipv6() -> TcpListener {
    for _ in 0..20 {
        let good = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = good.local_addr().unwrap().port();
        // Bound and dropped at once: nothing listens there after this.
        if TcpListener::bind(("::1", port)).is_ok() {
            return good;
        }
    }
    panic!("no IPv4 port also free on ::1 in 20 tries");
}

#[test]
#[cfg_attr(
    tornado_no_ipv6,
    ignore = "TORNADO_TEST_NO_IPV6 is set: no IPv6 loopback (::1) here"
)]
fn happy_eyeballs_ipv6_refused_primary_starts_the_secondary_at_once() {
    require_ipv6_loopback();
    let lp = IOLoop::new().unwrap();
    let good = working_ipv4_refused_ipv6();
    let port = good.local_addr().unwrap().port();
    let (outcome, elapsed) = connect_via_mapping(
        &lp,
        vec!["::1".parse().unwrap(), "127.0.0.1".parse().unwrap()],
        port,
        None,
    );
    assert_eq!(
        outcome.unwrap(),
        SocketAddr::new("127.0.0.1".parse().unwrap(), port)
    );
    assert!(
        elapsed < Duration::from_millis(250),
        "no 300 ms wait: {elapsed:?}"
    );
}

#[test]
fn every_address_is_tried_and_the_last_error_kept() {
    let lp = IOLoop::new().unwrap();
    let port = refused_port("127.0.0.1");
    let (outcome, _) = connect_via_mapping(
        &lp,
        vec!["127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap()],
        port,
        None,
    );
    let error = outcome.unwrap_err();
    assert!(
        error.message().contains("127.0.0.2"),
        "the last attempt's error: {error}"
    );
}

#[test]
fn the_timeout_covers_the_whole_connect() {
    let lp = IOLoop::new().unwrap();
    let silent = unanswering("127.0.0.1").unwrap();
    let (outcome, elapsed) = connect_via_mapping(
        &lp,
        vec!["127.0.0.1".parse().unwrap()],
        silent.addr.port(),
        Some(Duration::from_millis(200)),
    );
    assert_eq!(outcome.unwrap_err().code(), Code::TIMEOUT);
    assert!(elapsed >= Duration::from_millis(190));
}

#[test]
fn a_source_address_and_port_are_bound() {
    let lp = IOLoop::new().unwrap();
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = server.local_addr().unwrap();
    let source_port = refused_port("127.0.0.3");
    let options = ConnectOptions {
        source_ip: Some("127.0.0.3".parse().unwrap()),
        source_port: Some(source_port),
        ..Default::default()
    };
    let h = lp.handle();
    let f = gen::spawn(&lp, async move {
        let (stream, _) = connect(&h, "127.0.0.1", target.port(), &options).await?;
        Ok(stream.fd().is_some())
    })
    .unwrap();
    assert!(run(&lp, f).unwrap());
    let (_conn, peer) = server.accept().unwrap();
    assert_eq!(
        peer,
        SocketAddr::new("127.0.0.3".parse().unwrap(), source_port)
    );
}
