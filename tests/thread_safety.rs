//! Eight threads call `tornado_loop_add_callback_full` and `tornado_loop_stop`
//! through the C ABI while the loop runs on this thread (issue 6). Each
//! callback carries a heap payload written by its sender and read on the
//! loop thread, so under ThreadSanitizer (`make tsan`) a missing
//! happens-before edge in the library's cross-thread queue or wake-up is a
//! reported data race; in a plain `cargo test` the test checks that every
//! callback runs exactly once, on the loop thread, in each sender's order.

use std::cell::RefCell;
use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use tornado_rs::ffi::loop_api::tornado_loop;
use tornado_rs::ffi::loop_api::{
    tornado_loop_add_callback, tornado_loop_add_callback_full, tornado_loop_free, tornado_loop_new,
    tornado_loop_start, tornado_loop_stop,
};
use tornado_rs::ffi::TORNADO_OK;

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
