//! Hostile servers (issue 6): scripted servers on 127.0.0.1 that misbehave
//! the way a broken network or an attacker does. For each one the test
//! checks three things:
//! - the fetch ends with the right error kind, within its timeout;
//! - the heap the loop thread holds meanwhile stays within a bound set by
//!   the client's limits (a counting allocator measures it);
//! - the same client on the same loop keeps serving fetches to a good server
//!   while the hostile one is in progress.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::io::Write as _;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::https_server::https_server;
use common::pki::{self_signed, test_pki, test_pki_with};
use common::script_server::{keep_alive, Conn, ScriptServer};
use tornado_rs::gen;
use tornado_rs::http::client::{AsyncHTTPClient, ClientOptions};
use tornado_rs::http::request::HTTPRequest;
use tornado_rs::http::{kind_of, FetchErrorKind};
use tornado_rs::{IOLoop, TCPServer};

// ---------------------------------------------------------------------------
// Heap accounting per thread

/// Counts the heap bytes each thread holds, and their peak, so a test can see
/// what the loop thread (the test's own thread) holds while it is attacked.
struct CountingAllocator;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn account(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// accounting touches only const-initialised thread-locals, which never
// allocate.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            account(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on as is.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            account(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.dealloc(ptr, layout) };
        account(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract is passed on as is.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            account(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Starts measuring: returns the bytes live now and resets the peak to it.
fn heap_mark() -> isize {
    let live = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(live));
    live
}

fn heap_peak_since(mark: isize) -> isize {
    PEAK.with(Cell::get) - mark
}

// ---------------------------------------------------------------------------
// The client's limits and what the tests hold it to

const MAX_HEADER_SIZE: usize = 64 * 1024;
const MAX_BODY_SIZE: u64 = 1024 * 1024;
/// The most the loop thread may hold at its peak during one hostile fetch:
/// a body at its limit (with the growth of its buffer), a head at its limit,
/// a read buffer and the good fetches running beside it.
const HEAP_BOUND: isize = 4 * MAX_BODY_SIZE as isize + 2 * 1024 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Scheduling slack for "ended within its timeout" on a busy machine.
const SLACK: Duration = Duration::from_secs(2);

fn hostile_client(lp: &IOLoop) -> AsyncHTTPClient {
    let options = ClientOptions {
        max_header_size: MAX_HEADER_SIZE,
        max_body_size: MAX_BODY_SIZE,
        hostname_mapping: vec![("good.test".into(), vec!["127.0.0.1".parse().unwrap()])],
        ..Default::default()
    };
    AsyncHTTPClient::new(lp, options).unwrap()
}

fn request(url: String) -> HTTPRequest {
    let mut request = HTTPRequest::new(url);
    request.connect_timeout = Some(REQUEST_TIMEOUT);
    request.request_timeout = Some(REQUEST_TIMEOUT);
    request
}

/// What happened to one hostile fetch and the good ones beside it.
struct Verdict {
    kind: Option<FetchErrorKind>,
    error: String,
    took: Duration,
    heap_peak: isize,
    good_ok: usize,
    good_ok_meanwhile: usize,
    good_failures: Vec<String>,
}

/// Fetches `hostile` while a chain of fetches to a well-behaved server runs
/// on the same client and loop, until the hostile fetch has ended and at
/// least three good ones have completed.
fn face(lp: &IOLoop, client: &AsyncHTTPClient, hostile: HTTPRequest) -> Verdict {
    let good_server =
        ScriptServer::start(keep_alive(|_| ("200 OK".into(), vec![], b"good".to_vec())));
    let good_url = good_server.url("/good");
    let hostile_ended: Rc<Cell<Option<Instant>>> = Rc::default();
    let good_ok = Rc::new(Cell::new(0usize));
    let good_ok_meanwhile = Rc::new(Cell::new(0usize));
    let good_failures: Rc<RefCell<Vec<String>>> = Rc::default();
    let good_done = Rc::new(Cell::new(false));

    let mark = heap_mark();
    let started = Instant::now();
    let hostile_future = client.fetch(hostile).unwrap();
    {
        let ended = hostile_ended.clone();
        hostile_future
            .add_done_callback(move |_| ended.set(Some(Instant::now())))
            .unwrap();
    }
    {
        let (client, lp_ref) = (client.clone(), lp.loop_ref());
        let (ended, ok, meanwhile) = (
            hostile_ended.clone(),
            good_ok.clone(),
            good_ok_meanwhile.clone(),
        );
        let (failures, done) = (good_failures.clone(), good_done.clone());
        lp.loop_ref()
            .spawn(async move {
                while ended.get().is_none() || ok.get() < 3 {
                    let fetched = client.fetch(HTTPRequest::new(good_url.as_str()));
                    let response = match fetched {
                        Ok(future) => future.value().await,
                        Err(e) => Err(e),
                    };
                    match response {
                        Ok(r) if r.code == 200 && r.body == b"good" => {
                            ok.set(ok.get() + 1);
                            if ended.get().is_none() {
                                meanwhile.set(meanwhile.get() + 1);
                            }
                        }
                        Ok(r) => failures
                            .borrow_mut()
                            .push(format!("{} {:?}", r.code, r.error)),
                        Err(e) => failures.borrow_mut().push(e.to_string()),
                    }
                    if !failures.borrow().is_empty() {
                        break;
                    }
                    // Leave the machine to the hostile exchange between fetches.
                    let _ = gen::sleep(&lp_ref, Duration::from_millis(5))
                        .unwrap()
                        .value()
                        .await;
                }
                done.set(true);
            })
            .unwrap();
    }
    lp.run_until(
        || hostile_ended.get().is_some() && good_done.get(),
        Some(REQUEST_TIMEOUT * 4),
    )
    .expect("the hostile fetch and the good ones end");
    let heap_peak = heap_peak_since(mark);
    let response = hostile_future.result().unwrap().unwrap();
    let took = hostile_ended.get().unwrap() - started;
    let good_failures = good_failures.borrow().clone();
    Verdict {
        kind: response.error.as_ref().and_then(kind_of),
        error: format!("{:?}", response.error),
        took,
        heap_peak,
        good_ok: good_ok.get(),
        good_ok_meanwhile: good_ok_meanwhile.get(),
        good_failures,
    }
}

/// The three checks every hostile case must pass.
fn assert_contained(verdict: &Verdict, expected: FetchErrorKind, timeout: Duration) {
    // The figures docs/RELIABILITY.md quotes (`--nocapture` shows them).
    eprintln!(
        "hostile: {:?} after {:?}; loop-thread heap peak +{} KiB; good fetches {} ({} meanwhile)",
        verdict.kind,
        verdict.took,
        verdict.heap_peak / 1024,
        verdict.good_ok,
        verdict.good_ok_meanwhile
    );
    assert_eq!(verdict.kind, Some(expected), "error: {}", verdict.error);
    assert!(
        verdict.took <= timeout + SLACK,
        "ended after {:?} (timeout {:?}): {}",
        verdict.took,
        timeout,
        verdict.error
    );
    assert!(
        verdict.heap_peak <= HEAP_BOUND,
        "the loop thread's heap grew by {} bytes (bound {HEAP_BOUND})",
        verdict.heap_peak
    );
    assert!(
        verdict.good_failures.is_empty() && verdict.good_ok >= 3,
        "good fetches beside it: {} ok, failures {:?}",
        verdict.good_ok,
        verdict.good_failures
    );
    // A hostile fetch that lasts, lasts without blocking the others.
    if verdict.took >= Duration::from_millis(500) {
        assert!(
            verdict.good_ok_meanwhile >= 1,
            "no good fetch completed during the {:?} the hostile one took",
            verdict.took
        );
    }
}

/// Runs one hostile case end to end with a plain-HTTP scripted server.
fn hostile_http(handler: impl Fn(Conn) + Send + Sync + 'static, expected: FetchErrorKind) {
    let server = ScriptServer::start(handler);
    let lp = IOLoop::new().unwrap();
    let client = hostile_client(&lp);
    let verdict = face(&lp, &client, request(server.url("/")));
    assert_contained(&verdict, expected, REQUEST_TIMEOUT);
}

/// Writes `block` until the client goes away.
fn write_forever(conn: &mut Conn, block: &[u8]) {
    while conn.write(block) {}
}

// ---------------------------------------------------------------------------
// Garbage and oversized heads

#[test]
fn garbage_instead_of_a_response_is_a_protocol_error() {
    hostile_http(
        |mut conn| {
            conn.read_request();
            let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
            conn.write(&garbage);
        },
        FetchErrorKind::Protocol,
    );
}

#[test]
fn a_status_line_of_one_megabyte_is_header_too_large() {
    hostile_http(
        |mut conn| {
            conn.read_request();
            conn.write(b"HTTP/1.1 200 ");
            conn.write(&vec![b'x'; 1024 * 1024]);
            std::thread::sleep(Duration::from_secs(2));
        },
        FetchErrorKind::HeaderTooLarge,
    );
}

#[test]
fn headers_without_end_are_header_too_large() {
    hostile_http(
        |mut conn| {
            conn.read_request();
            conn.write(b"HTTP/1.1 200 OK\r\n");
            write_forever(&mut conn, b"X-Filler: never-ending-header-block\r\n");
        },
        FetchErrorKind::HeaderTooLarge,
    );
}

// ---------------------------------------------------------------------------
// Bodies that do not end or lie about their size

#[test]
fn a_body_without_end_is_body_too_large() {
    hostile_http(
        |mut conn| {
            conn.read_request();
            conn.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
            write_forever(&mut conn, &[b'e'; 16384]);
        },
        FetchErrorKind::BodyTooLarge,
    );
}

#[test]
fn chunks_without_end_are_body_too_large() {
    hostile_http(
        |mut conn| {
            conn.read_request();
            conn.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
            let mut chunk = b"4000\r\n".to_vec();
            chunk.extend_from_slice(&[b'c'; 0x4000]);
            chunk.extend_from_slice(b"\r\n");
            write_forever(&mut conn, &chunk);
        },
        FetchErrorKind::BodyTooLarge,
    );
}

#[test]
fn a_content_length_beyond_the_limit_is_refused_before_reading() {
    hostile_http(
        |mut conn| {
            conn.read_request();
            conn.write(b"HTTP/1.1 200 OK\r\nContent-Length: 999999999999999\r\n\r\nabc");
            std::thread::sleep(Duration::from_secs(2));
        },
        FetchErrorKind::BodyTooLarge,
    );
}

#[test]
fn a_content_length_that_overflows_is_a_protocol_error() {
    hostile_http(
        raw_then_wait(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999999\r\n\r\n"),
        FetchErrorKind::Protocol,
    );
}

#[test]
fn a_content_length_longer_than_the_body_is_closed() {
    hostile_http(
        |mut conn| {
            conn.read_request();
            conn.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly this much");
        },
        FetchErrorKind::Closed,
    );
}

#[test]
fn bytes_beyond_the_content_length_never_become_the_next_response() {
    // The first connection answers with a short Content-Length followed by a
    // smuggled second response; the client must not take that connection
    // back into its pool, so the next fetch gets a fresh, honest answer.
    let server = ScriptServer::start(|mut conn: Conn| {
        if conn.index == 0 {
            conn.read_request();
            conn.write(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok\
                  HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled",
            );
            std::thread::sleep(Duration::from_secs(2));
        } else {
            keep_alive(|_| ("200 OK".into(), vec![], b"fresh".to_vec()))(conn);
        }
    });
    let lp = IOLoop::new().unwrap();
    let client = hostile_client(&lp);
    for expected in [&b"ok"[..], b"fresh"] {
        let f = client.fetch(request(server.url("/"))).unwrap();
        lp.run_until(|| f.done(), Some(REQUEST_TIMEOUT)).unwrap();
        let r = f.result().unwrap().unwrap();
        assert_eq!(r.body, expected, "{:?}", r.error);
    }
    assert_eq!(server.connections(), 2);
}

#[test]
fn a_chunk_size_that_overflows_is_a_protocol_error() {
    hostile_http(
        raw_then_wait(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffffffff\r\nabc",
        ),
        FetchErrorKind::Protocol,
    );
}

#[test]
fn a_chunk_larger_than_the_limit_is_body_too_large() {
    hostile_http(
        raw_then_wait(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffff\r\nabc"),
        FetchErrorKind::BodyTooLarge,
    );
}

#[test]
fn a_gzip_bomb_stops_at_the_body_limit() {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1024 * 1024];
    for _ in 0..100 {
        encoder.write_all(&zeros).unwrap();
    }
    let bomb = encoder.finish().unwrap(); // 100 MiB of zeros in ~100 KiB
    assert!(bomb.len() < 200 * 1024);
    hostile_http(
        move |mut conn| {
            conn.read_request();
            conn.respond("200 OK", &[("Content-Encoding", "gzip")], &bomb);
        },
        FetchErrorKind::BodyTooLarge,
    );
}

/// A handler that reads the request, writes `bytes` and holds the connection
/// open, so only the client's own checks can end the fetch.
fn raw_then_wait(bytes: &'static [u8]) -> impl Fn(Conn) + Send + Sync + 'static {
    move |mut conn: Conn| {
        conn.read_request();
        conn.write(bytes);
        std::thread::sleep(Duration::from_secs(2 * REQUEST_TIMEOUT.as_secs()));
    }
}

// ---------------------------------------------------------------------------
// Slow, stalled and broken connections

#[test]
fn a_server_sending_one_byte_per_second_times_out() {
    let server = ScriptServer::start(|mut conn: Conn| {
        conn.read_request();
        for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nslow!" {
            if !conn.write(&[*byte]) {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let lp = IOLoop::new().unwrap();
    let client = hostile_client(&lp);
    let mut slow = request(server.url("/"));
    let timeout = Duration::from_millis(2500);
    slow.request_timeout = Some(timeout);
    let verdict = face(&lp, &client, slow);
    assert_contained(&verdict, FetchErrorKind::Timeout, timeout);
    assert!(verdict.took >= timeout, "ended early: {:?}", verdict.took);
}

#[test]
fn a_server_that_never_answers_times_out() {
    hostile_http(
        |mut conn| {
            conn.read_request();
            std::thread::sleep(Duration::from_secs(2 * REQUEST_TIMEOUT.as_secs()));
        },
        FetchErrorKind::Timeout,
    );
}

#[test]
fn a_reset_mid_body_is_closed() {
    hostile_http(
        |mut conn| {
            conn.read_request();
            conn.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npart of it");
            std::thread::sleep(Duration::from_millis(100));
            // SO_LINGER 0: closing sends a RST instead of a FIN.
            let socket = socket2::SockRef::from(conn.reader.get_ref());
            socket.set_linger(Some(Duration::ZERO)).unwrap();
        },
        FetchErrorKind::Closed,
    );
}

#[test]
fn a_half_close_mid_body_is_closed() {
    hostile_http(
        |mut conn| {
            conn.read_request();
            conn.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf");
            // The server stops sending but keeps its side open for reading.
            let _ = conn.reader.get_ref().shutdown(std::net::Shutdown::Write);
            std::thread::sleep(Duration::from_secs(2 * REQUEST_TIMEOUT.as_secs()));
        },
        FetchErrorKind::Closed,
    );
}

// ---------------------------------------------------------------------------
// Redirects

#[test]
fn a_redirect_loop_is_too_many_redirects() {
    hostile_http(
        keep_alive(|_| {
            (
                "302 Found".into(),
                vec![("Location".into(), "/again".into())],
                vec![],
            )
        }),
        FetchErrorKind::TooManyRedirects,
    );
}

#[test]
fn a_redirect_to_another_scheme_is_refused() {
    for location in ["ftp://127.0.0.1/file", "file:///etc/passwd", "gopher://x/"] {
        hostile_http(
            keep_alive(move |_| {
                (
                    "302 Found".into(),
                    vec![("Location".into(), location.into())],
                    vec![],
                )
            }),
            FetchErrorKind::InvalidUrl,
        );
    }
}

// ---------------------------------------------------------------------------
// TLS: certificates the client must refuse

/// A request for https://good.test/ on `server`, trusting the CA in
/// `ca_file` (None: the system's trust store).
fn tls_request(server: &TCPServer, ca_file: Option<&std::path::Path>) -> HTTPRequest {
    let mut tls = request(format!("https://good.test:{}/", server.local_addr().port()));
    tls.ca_certs = ca_file.map(Into::into);
    tls
}

/// The fetch of https://good.test/ from `server` ends with `tls`.
fn refused_tls(lp: &IOLoop, server: &TCPServer, ca_file: Option<&std::path::Path>) {
    let client = hostile_client(lp);
    let verdict = face(lp, &client, tls_request(server, ca_file));
    assert_contained(&verdict, FetchErrorKind::Tls, REQUEST_TIMEOUT);
}

#[test]
fn a_certificate_for_another_host_is_refused() {
    let lp = IOLoop::new().unwrap();
    let pki = test_pki(&["other.test"]);
    let server = https_server(&lp, &pki.cert_pem, &pki.key_pem);
    refused_tls(&lp, &server, Some(&pki.ca_file));
}

#[test]
fn an_expired_certificate_is_refused() {
    let lp = IOLoop::new().unwrap();
    let pki = test_pki_with(&["good.test"], |params| {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    });
    let server = https_server(&lp, &pki.cert_pem, &pki.key_pem);
    refused_tls(&lp, &server, Some(&pki.ca_file));
}

#[test]
fn a_self_signed_certificate_is_refused() {
    let lp = IOLoop::new().unwrap();
    let (cert, key) = self_signed(&["good.test"]);
    let server = https_server(&lp, &cert, &key);
    // Trust a real test CA that did not sign it, and then the default roots.
    let unrelated = test_pki(&["good.test"]);
    refused_tls(&lp, &server, Some(&unrelated.ca_file));
    refused_tls(&lp, &server, None);
}

#[test]
fn the_tls_server_itself_works_with_the_right_certificate() {
    // The control for the three refusals above: the same server, a valid
    // certificate for the right name, and the fetch succeeds.
    let lp = IOLoop::new().unwrap();
    let pki = test_pki(&["good.test"]);
    let server = https_server(&lp, &pki.cert_pem, &pki.key_pem);
    let client = hostile_client(&lp);
    let f = client
        .fetch(tls_request(&server, Some(&pki.ca_file)))
        .unwrap();
    lp.run_until(|| f.done(), Some(REQUEST_TIMEOUT)).unwrap();
    let r = f.result().unwrap().unwrap();
    assert_eq!(
        (r.code, r.body.as_slice()),
        (200, &b"/"[..]),
        "{:?}",
        r.error
    );
}
