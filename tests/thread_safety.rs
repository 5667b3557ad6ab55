//! Eight threads call `tornado_loop_add_callback_full` and `tornado_loop_stop`
//! through the C ABI while the loop runs on this thread (issue 6); and
//! another thread calls the setters and free of a request handle while
//! fetches of it are in flight on the loop thread (issue 12 #14: it must
//! be refused with WRONG_THREAD, not race on the request's counts). Each
//! callback carries a heap payload written by its sender and read on the
//! loop thread, so under ThreadSanitizer (`make tsan`) a missing
//! happens-before edge in the library's cross-thread queue or wake-up is a
//! reported data race; in a plain `cargo test` the test checks that every
//! callback runs exactly once, on the loop thread, in each sender's order.

use std::cell::RefCell;
use std::ffi::{c_void, CString};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use tornado_rs::ffi::http::{
    tornado_http_client_fetch_cb, tornado_http_client_free, tornado_http_client_new,
    tornado_http_request, tornado_http_request_add_header, tornado_http_request_free,
    tornado_http_request_new, tornado_http_request_set_method,
    tornado_http_request_set_request_timeout, tornado_http_response, tornado_http_response_code,
};
use tornado_rs::ffi::loop_api::tornado_loop;
use tornado_rs::ffi::loop_api::tornado_loop_run_once;
use tornado_rs::ffi::loop_api::{
    tornado_loop_add_callback, tornado_loop_add_callback_full, tornado_loop_free, tornado_loop_new,
    tornado_loop_start, tornado_loop_stop,
};
use tornado_rs::ffi::{TORNADO_ERR_WRONG_THREAD, TORNADO_OK};

const THREADS: usize = 8;
const PER_THREAD: usize = 2000;
/// Every STOP_EVERY-th callback, the sender also stops the loop.
const STOP_EVERY: usize = 250;

/// Written by the sending thread, read (and freed) on the loop thread.
struct Payload {
    sender: usize,
    seq: usize,
    checksum: usize,
}

thread_local! {
    /// The last sequence number seen from each sender (loop thread only).
    static LAST_SEQ: RefCell<Vec<Option<usize>>> = RefCell::new(vec![None; THREADS]);
}

static RAN: AtomicUsize = AtomicUsize::new(0);
static DROPPED: AtomicUsize = AtomicUsize::new(0);
static OUT_OF_ORDER: AtomicUsize = AtomicUsize::new(0);
static CORRUPT: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn run(userdata: *mut c_void) {
    // SAFETY: userdata is the Box<Payload> `send` leaked; it is read here and
    // freed in `drop_payload`, which the library calls after this callback.
    let payload = unsafe { &*(userdata as *const Payload) };
    if payload.checksum != payload.sender * 1_000_003 + payload.seq {
        CORRUPT.fetch_add(1, Ordering::Relaxed);
    }
    LAST_SEQ.with(|last| {
        let mut last = last.borrow_mut();
        let expected = last[payload.sender].map_or(0, |s| s + 1);
        if payload.seq != expected {
            OUT_OF_ORDER.fetch_add(1, Ordering::Relaxed);
        }
        last[payload.sender] = Some(payload.seq);
    });
    RAN.fetch_add(1, Ordering::Relaxed);
}

unsafe extern "C" fn drop_payload(userdata: *mut c_void) {
    // SAFETY: userdata came from Box::into_raw in `send`; dropped once.
    drop(unsafe { Box::from_raw(userdata as *mut Payload) });
    DROPPED.fetch_add(1, Ordering::Relaxed);
}

unsafe extern "C" fn stop_loop(lp: *mut c_void) {
    assert_eq!(tornado_loop_stop(lp as *mut tornado_loop), TORNADO_OK);
}

/// The loop pointer, shared with the sender threads: `add_callback` and
/// `stop` are the thread-safe calls of the API.
#[derive(Clone, Copy)]
struct SharedLoop(*mut tornado_loop);
// SAFETY: the senders only call the functions the API documents as callable
// from any thread, and the loop outlives them (joined before it is freed).
unsafe impl Send for SharedLoop {}

fn send(lp: SharedLoop, sender: usize) {
    for seq in 0..PER_THREAD {
        let payload = Box::new(Payload {
            sender,
            seq,
            checksum: sender * 1_000_003 + seq,
        });
        let rc = tornado_loop_add_callback_full(
            lp.0,
            Some(run),
            Box::into_raw(payload) as *mut c_void,
            Some(drop_payload),
        );
        assert_eq!(rc, TORNADO_OK);
        if seq % STOP_EVERY == 0 {
            assert_eq!(tornado_loop_stop(lp.0), TORNADO_OK);
        }
        if seq % 64 == 0 {
            thread::yield_now();
        }
    }
}

#[test]
fn eight_threads_add_callbacks_and_stop_while_the_loop_runs() {
    let lp = SharedLoop(tornado_loop_new());
    assert!(!lp.0.is_null());
    let finished = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..THREADS)
        .map(|sender| {
            let finished = finished.clone();
            thread::spawn(move || {
                send(lp, sender);
                // The last sender queues a final stop behind every callback
                // sent (the queue is FIFO), so the loop ends after them all.
                if finished.fetch_add(1, Ordering::SeqCst) + 1 == THREADS {
                    let rc = tornado_loop_add_callback(lp.0, Some(stop_loop), lp.0 as *mut c_void);
                    assert_eq!(rc, TORNADO_OK);
                }
            })
        })
        .collect();
    // Each stop ends one `start`; run again until every sender is done and
    // every callback it sent has run (the final stop comes after them).
    let mut starts = 0;
    while finished.load(Ordering::SeqCst) < THREADS
        || RAN.load(Ordering::Relaxed) < THREADS * PER_THREAD
    {
        assert_eq!(tornado_loop_start(lp.0), TORNADO_OK);
        starts += 1;
        assert!(starts < 1_000_000, "the loop never got every callback");
    }
    for sender in senders {
        sender.join().unwrap();
    }
    assert_eq!(tornado_loop_free(lp.0), TORNADO_OK);
    assert_eq!(RAN.load(Ordering::Relaxed), THREADS * PER_THREAD);
    assert_eq!(DROPPED.load(Ordering::Relaxed), THREADS * PER_THREAD);
    assert_eq!(OUT_OF_ORDER.load(Ordering::Relaxed), 0);
    assert_eq!(CORRUPT.load(Ordering::Relaxed), 0);
    assert!(starts > 1, "the senders' stops were not seen");
}

/// A keep-alive HTTP/1.1 server on 127.0.0.1 answering "ok" to every
/// request (bodiless GETs), one thread per connection.
fn ok_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let url = format!("http://{}/", listener.local_addr().unwrap());
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { break };
            thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                loop {
                    line.clear();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) if line == "\r\n" => {
                            let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                            if writer.write_all(reply).is_err() {
                                return;
                            }
                        }
                        Ok(_) => {}
                    }
                }
            });
        }
    });
    url
}

/// A request handle, shared with a thread that must not use it.
#[derive(Clone, Copy)]
struct SharedRequest(*mut tornado_http_request);
// SAFETY: the other thread only makes calls the library must refuse there
// (it checks the handle's owner thread, a field written before sharing).
unsafe impl Send for SharedRequest {}

static FETCHED: AtomicUsize = AtomicUsize::new(0);
static FETCHED_OK: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn on_fetched(response: *const tornado_http_response, _: *mut c_void) {
    if tornado_http_response_code(response) == 200 {
        FETCHED_OK.fetch_add(1, Ordering::Relaxed);
    }
    FETCHED.fetch_add(1, Ordering::Relaxed);
}

#[test]
fn a_request_is_refused_on_other_threads_while_fetches_of_it_are_in_flight() {
    const FETCHES: usize = 400;
    let url = CString::new(ok_server()).unwrap();
    let lp = tornado_loop_new();
    let client = tornado_http_client_new(lp, std::ptr::null());
    assert!(!client.is_null());
    let request = SharedRequest(tornado_http_request_new(url.as_ptr()));
    assert!(!request.0.is_null());
    let done = Arc::new(AtomicUsize::new(0));
    let intruder = {
        let done = done.clone();
        thread::spawn(move || {
            let request = request;
            let (mut refused, mut accepted) = (0usize, 0usize);
            let mut round = 0;
            while done.load(Ordering::SeqCst) == 0 {
                for rc in [
                    tornado_http_request_set_method(request.0, c"HEAD".as_ptr()),
                    tornado_http_request_add_header(request.0, c"X-A".as_ptr(), c"1".as_ptr()),
                    tornado_http_request_set_request_timeout(request.0, 5.0),
                ] {
                    if rc == TORNADO_ERR_WRONG_THREAD {
                        refused += 1;
                    } else {
                        accepted += 1;
                    }
                }
                if round % 256 == 0 {
                    // Refused too (logged): the loop thread still fetches it.
                    tornado_http_request_free(request.0);
                }
                round += 1;
                thread::yield_now();
            }
            (refused, accepted)
        })
    };
    // The loop thread fetches the request, and changes it between fetches
    // (copy on write while fetches hold it), until every fetch is done.
    let mut sent = 0;
    let mut rounds = 0;
    while FETCHED.load(Ordering::Relaxed) < FETCHES {
        if sent < FETCHES {
            for _ in 0..8 {
                let rc = tornado_http_client_fetch_cb(
                    client,
                    request.0,
                    Some(on_fetched),
                    std::ptr::null_mut(),
                );
                assert_eq!(rc, TORNADO_OK);
                sent += 1;
            }
            let rc = tornado_http_request_add_header(request.0, c"X-Round".as_ptr(), c"1".as_ptr());
            assert_eq!(rc, TORNADO_OK, "the owner thread may change it");
        }
        assert_eq!(tornado_loop_run_once(lp, 0.01), TORNADO_OK);
        rounds += 1;
        assert!(rounds < 100_000, "the fetches never finished");
    }
    done.store(1, Ordering::SeqCst);
    let (refused, accepted) = intruder.join().unwrap();
    assert_eq!(accepted, 0, "a setter succeeded from another thread");
    assert!(refused > 0);
    assert_eq!(FETCHED_OK.load(Ordering::Relaxed), FETCHES);

    // A request made on another thread cannot be fetched on the loop's;
    // its own thread frees it.
    let (made, made_rx) = std::sync::mpsc::channel();
    let (free_now, free_rx) = std::sync::mpsc::channel::<()>();
    let owner = {
        let url = url.clone();
        thread::spawn(move || {
            let request = SharedRequest(tornado_http_request_new(url.as_ptr()));
            made.send(request).unwrap();
            free_rx.recv().unwrap();
            tornado_http_request_free(request.0);
        })
    };
    let elsewhere: SharedRequest = made_rx.recv().unwrap();
    let rc =
        tornado_http_client_fetch_cb(client, elsewhere.0, Some(on_fetched), std::ptr::null_mut());
    assert_eq!(rc, TORNADO_ERR_WRONG_THREAD);
    free_now.send(()).unwrap();
    owner.join().unwrap();

    tornado_http_request_free(request.0);
    assert_eq!(tornado_http_client_free(client), TORNADO_OK);
    assert_eq!(tornado_loop_free(lp), TORNADO_OK);
}
