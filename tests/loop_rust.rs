//! The loop, futures and tasks driven from Rust, on real fds.

use std::cell::{Cell, RefCell};
use std::os::unix::io::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tornado_rs::{gen, Code, Error, Future, IOLoop, PeriodicCallback, ERROR, READ};

type Log = Rc<RefCell<Vec<&'static str>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

fn push(log: &Log, what: &'static str) -> impl FnOnce() + 'static {
    let log = log.clone();
    move || log.borrow_mut().push(what)
}

#[test]
fn callbacks_run_in_order_and_new_ones_wait_for_the_next_iteration() {
    let lp = IOLoop::new().unwrap();
    let seen = log();
    let inner = seen.clone();
    let h = lp.loop_ref();
    lp.add_callback(push(&seen, "a")).unwrap();
    lp.add_callback(move || {
        inner.borrow_mut().push("b");
        h.add_callback(push(&inner, "d")).unwrap();
    })
    .unwrap();
    lp.add_callback(push(&seen, "c")).unwrap();
    lp.run_once(Some(Duration::ZERO)).unwrap();
    assert_eq!(*seen.borrow(), vec!["a", "b", "c"]);
    lp.run_once(Some(Duration::ZERO)).unwrap();
    assert_eq!(*seen.borrow(), vec!["a", "b", "c", "d"]);
}

#[test]
fn stop_before_start_returns_at_once() {
    let lp = IOLoop::new().unwrap();
    lp.stop();
    let t = Instant::now();
    lp.start().unwrap();
    assert!(t.elapsed() < Duration::from_secs(1));
}

#[test]
fn add_callback_from_another_thread_wakes_a_sleeping_loop() {
    let lp = IOLoop::new().unwrap();
    let handle = lp.loop_handle();
    let woke_at = Rc::new(Cell::new(None));
    let sent_at = std::sync::Arc::new(std::sync::Mutex::new(None));
    let sent = sent_at.clone();
    let thread = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        *sent.lock().unwrap() = Some(Instant::now());
        let h2 = handle.clone();
        handle.add_callback(move || h2.stop()).unwrap();
    });
    let w = woke_at.clone();
    // A far timer: without a wake-up the loop would sleep 10 s.
    lp.call_later(Duration::from_secs(10), || {}).unwrap();
    lp.add_callback(move || w.set(Some(Instant::now())))
        .unwrap();
    lp.start().unwrap();
    thread.join().unwrap();
    let latency = Instant::now() - sent_at.lock().unwrap().unwrap();
    assert!(
        latency < Duration::from_millis(500),
        "woke after {latency:?}"
    );
}

#[test]
fn timers_fire_in_deadline_then_scheduling_order_and_removed_ones_never() {
    let lp = IOLoop::new().unwrap();
    let seen = log();
    let h = lp.loop_ref();
    lp.call_later(Duration::from_millis(30), push(&seen, "30ms"))
        .unwrap();
    lp.call_later(Duration::from_millis(10), push(&seen, "10ms"))
        .unwrap();
    let when = Duration::from_millis(20);
    // Two timers due together: the first removes the second.
    let victim = Rc::new(Cell::new(None));
    let v = victim.clone();
    let s2 = seen.clone();
    lp.call_later(when, move || {
        s2.borrow_mut().push("20ms-first");
        h.remove_timeout(v.get().unwrap()).unwrap();
    })
    .unwrap();
    victim.set(Some(
        lp.call_later(when, push(&seen, "20ms-removed")).unwrap(),
    ));
    let cancelled = lp
        .call_later(Duration::from_millis(5), push(&seen, "cancelled"))
        .unwrap();
    lp.remove_timeout(cancelled).unwrap();
    assert_eq!(
        lp.remove_timeout(cancelled).unwrap_err().code(),
        Code::NOT_FOUND
    );
    let done: Future<()> = gen::sleep(&lp, Duration::from_millis(50)).unwrap();
    lp.run_until(|| done.done(), Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(*seen.borrow(), vec!["10ms", "20ms-first", "30ms"]);
}

fn pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}

#[test]
fn handlers_are_level_triggered() {
    use std::io::Write;
    let lp = IOLoop::new().unwrap();
    let (mut a, b) = pair();
    a.write_all(b"xy").unwrap();
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    lp.add_handler(b.as_raw_fd(), READ, move |_, ev| {
        assert!(ev & READ != 0);
        c.set(c.get() + 1);
    })
    .unwrap();
    for _ in 0..3 {
        lp.run_once(Some(Duration::from_millis(100))).unwrap();
    }
    assert_eq!(calls.get(), 3, "unread data is reported on every iteration");
    lp.remove_handler(b.as_raw_fd()).unwrap();
    lp.run_once(Some(Duration::from_millis(10))).unwrap();
    assert_eq!(calls.get(), 3);
}

#[test]
fn hang_up_is_reported_as_error_and_duplicates_are_refused() {
    let lp = IOLoop::new().unwrap();
    let (a, b) = pair();
    let got = Rc::new(Cell::new(0u32));
    let g = got.clone();
    lp.add_handler(b.as_raw_fd(), 0, move |_, ev| g.set(g.get() | ev))
        .unwrap();
    let dup = lp.add_handler(b.as_raw_fd(), READ, |_, _| {}).unwrap_err();
    assert_eq!(dup.code(), Code::EXISTS);
    drop(a);
    lp.run_once(Some(Duration::from_millis(500))).unwrap();
    assert!(got.get() & ERROR != 0, "events {:#x}", got.get());
    lp.remove_handler(b.as_raw_fd()).unwrap();
    assert_eq!(
        lp.add_handler(-1, READ, |_, _| {}).unwrap_err().code(),
        Code::BAD_FD
    );
    assert_eq!(
        lp.add_handler(b.as_raw_fd(), 2, |_, _| {})
            .unwrap_err()
            .code(),
        Code::INVALID
    );
}

#[test]
fn a_handler_removed_by_another_in_the_same_iteration_is_not_called() {
    use std::io::Write;
    let lp = IOLoop::new().unwrap();
    let (mut a1, b1) = pair();
    let (mut a2, b2) = pair();
    a1.write_all(b"1").unwrap();
    a2.write_all(b"2").unwrap();
    let fds: [RawFd; 2] = [b1.as_raw_fd(), b2.as_raw_fd()];
    let calls = Rc::new(RefCell::new(Vec::new()));
    for (i, &fd) in fds.iter().enumerate() {
        let other = fds[1 - i];
        let h = lp.loop_ref();
        let calls = calls.clone();
        lp.add_handler(fd, READ, move |fd, _| {
            calls.borrow_mut().push(fd);
            let _ = h.remove_handler(other);
        })
        .unwrap();
    }
    lp.run_once(Some(Duration::from_millis(100))).unwrap();
    assert_eq!(
        calls.borrow().len(),
        1,
        "only the first ready handler ran: {:?}",
        calls.borrow()
    );
}

#[test]
fn a_panicking_callback_is_contained() {
    let lp = IOLoop::new().unwrap();
    let seen = log();
    lp.add_callback(|| panic!("boom (expected by the test)"))
        .unwrap();
    lp.add_callback(push(&seen, "after")).unwrap();
    lp.run_once(Some(Duration::ZERO)).unwrap();
    assert_eq!(*seen.borrow(), vec!["after"]);
}

#[test]
fn futures_schedule_done_callbacks_through_the_loop_in_order() {
    let lp = IOLoop::new().unwrap();
    let f: Future<u32> = Future::new(&lp);
    let seen = log();
    let s1 = seen.clone();
    f.add_done_callback(move |_| s1.borrow_mut().push("first"))
        .unwrap();
    let s2 = seen.clone();
    f.add_done_callback(move |_| s2.borrow_mut().push("second"))
        .unwrap();
    f.set_result(7).unwrap();
    assert!(seen.borrow().is_empty(), "not run inside set_result");
    assert_eq!(f.set_result(8).unwrap_err().code(), Code::ALREADY_DONE);
    let s3 = seen.clone();
    f.add_done_callback(move |_| s3.borrow_mut().push("late"))
        .unwrap();
    assert_eq!(seen.borrow().len(), 0, "not run inside add_done_callback");
    lp.run_once(Some(Duration::ZERO)).unwrap();
    assert_eq!(*seen.borrow(), vec!["first", "second", "late"]);
    assert_eq!(f.result().unwrap().unwrap(), 7);
}

#[test]
fn async_tasks_await_futures_and_errors_propagate() {
    let lp = IOLoop::new().unwrap();
    let h = lp.loop_ref();
    let pending: Future<u32> = Future::new(&lp);
    let p = pending.clone();
    lp.call_later(Duration::from_millis(10), move || {
        p.set_result(40).unwrap();
    })
    .unwrap();
    let task = gen::spawn(&lp, async move {
        let v = pending.value().await?;
        gen::sleep(&h, Duration::from_millis(5))?.value().await?;
        gen::moment(&h)?.value().await?;
        Ok(v + 2)
    })
    .unwrap();
    lp.run_until(|| task.done(), Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(task.result().unwrap().unwrap(), 42);

    let h = lp.loop_ref();
    let failing = gen::spawn(&lp, async move {
        let f: Future<u32> = Future::new(&h);
        f.set_error(Error::new(Code::USER, "bad"))?;
        f.value().await
    })
    .unwrap();
    lp.run_until(|| failing.done(), Some(Duration::from_secs(5)))
        .unwrap();
    let e = failing.error().unwrap();
    assert_eq!((e.code(), e.message()), (Code::USER, "bad"));
}

#[test]
fn multi_and_with_timeout() {
    let lp = IOLoop::new().unwrap();
    let a = gen::sleep(&lp, Duration::from_millis(5)).unwrap();
    let b = gen::sleep(&lp, Duration::from_millis(10)).unwrap();
    let all = gen::multi(&lp, &[a.clone(), b.clone()]).unwrap();
    lp.run_until(|| all.done(), Some(Duration::from_secs(5)))
        .unwrap();
    assert!(a.done() && b.done() && all.error().is_none());

    let failing: Future<()> = Future::new(&lp);
    let never: Future<()> = Future::new(&lp);
    let all = gen::multi(&lp, &[never.clone(), failing.clone()]).unwrap();
    failing.set_error(Error::new(Code::USER, "x")).unwrap();
    lp.run_until(|| all.done(), Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(
        all.error().unwrap().code(),
        Code::USER,
        "fails on the first error"
    );

    let slow: Future<u32> = Future::new(&lp);
    let limited = gen::with_timeout(&lp, &slow, Duration::from_millis(20)).unwrap();
    let t = Instant::now();
    lp.run_until(|| limited.done(), Some(Duration::from_secs(5)))
        .unwrap();
    assert!(t.elapsed() >= Duration::from_millis(19));
    assert_eq!(limited.error().unwrap().code(), Code::TIMEOUT);
    assert!(!slow.done(), "the inner future is not cancelled");
    slow.set_result(1).unwrap();
}

/// `gen::within`, the one timeout helper of the library's async code: zero
/// is no limit, a limit ends the work with TIMEOUT, and finished work
/// leaves no timer behind.
#[test]
fn within_limits_async_work_and_zero_means_none() {
    let lp = IOLoop::new().unwrap();
    let lr = lp.loop_ref();
    let outcome = |limit: Option<Duration>, work: Future<u32>| {
        let task_lp = lr.clone();
        gen::spawn(&lr, async move {
            gen::within(&task_lp, limit, work.value()).await
        })
        .unwrap()
    };
    let never: Future<u32> = Future::new(&lr);
    let timed = outcome(Some(Duration::from_millis(20)), never.clone());
    let unlimited = outcome(Some(Duration::ZERO), never.clone());
    let ready = outcome(Some(Duration::from_secs(60)), Future::ready(&lr, 7));
    let t = Instant::now();
    lp.run_until(
        || timed.done() && ready.done(),
        Some(Duration::from_secs(5)),
    )
    .unwrap();
    assert!(t.elapsed() >= Duration::from_millis(19));
    assert_eq!(timed.error().unwrap().code(), Code::TIMEOUT);
    assert_eq!(ready.result().unwrap().unwrap(), 7);
    assert!(!unlimited.done(), "zero is no limit");
    never.set_result(3).unwrap();
    lp.run_until(|| unlimited.done(), Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(unlimited.result().unwrap().unwrap(), 3);
    // The 60 s timer of `ready` was removed when its work finished: the
    // loop has no timer left to wait for.
    assert_eq!(lr.backend_timeout().unwrap(), None);
}

#[test]
fn run_until_times_out() {
    let lp = IOLoop::new().unwrap();
    let never: Future<()> = Future::new(&lp);
    let err = lp
        .run_until(|| never.done(), Some(Duration::from_millis(20)))
        .unwrap_err();
    assert_eq!(err.code(), Code::TIMEOUT);
}

#[test]
fn periodic_callback_runs_repeatedly_and_skips_missed_runs() {
    let lp = IOLoop::new().unwrap();
    let count = Rc::new(Cell::new(0));
    let c = count.clone();
    let pc = PeriodicCallback::new(&lp, Duration::from_millis(10), move || {
        c.set(c.get() + 1);
        if c.get() == 1 {
            // Busy for 55 ms: about five runs are missed and skipped.
            std::thread::sleep(Duration::from_millis(55));
        }
    })
    .unwrap();
    pc.start().unwrap();
    assert!(pc.is_running());
    let done = gen::sleep(&lp, Duration::from_millis(100)).unwrap();
    lp.run_until(|| done.done(), Some(Duration::from_secs(5)))
        .unwrap();
    pc.stop();
    let n = count.get();
    // 100 ms of 10 ms runs with 55 ms lost: about 5 runs, never the ~10 a
    // catch-up burst would give.
    assert!((2..=8).contains(&n), "ran {n} times");
    let done = gen::sleep(&lp, Duration::from_millis(30)).unwrap();
    lp.run_until(|| done.done(), Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(count.get(), n, "stopped");
}

#[test]
fn backend_fd_and_timeout_for_embedding() {
    let lp = IOLoop::new().unwrap();
    assert_eq!(lp.backend_timeout().unwrap(), None);
    let fd = lp.backend_fd();
    let readable = |fd: RawFd| {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut p, 1, 0) == 1 }
    };
    assert!(!readable(fd));
    lp.call_later(Duration::from_secs(5), || {}).unwrap();
    let t = lp.backend_timeout().unwrap().unwrap();
    assert!(t > 4.0 && t <= 5.0, "{t}");
    // Registered between iterations, a callback makes the backend fd readable.
    lp.add_callback(|| {}).unwrap();
    assert!(readable(fd));
    assert_eq!(lp.backend_timeout().unwrap(), Some(0.0));
    lp.run_once(Some(Duration::ZERO)).unwrap();
    assert!(!readable(fd));
    // An earlier timer wakes it too.
    lp.call_later(Duration::from_millis(1), || {}).unwrap();
    assert!(readable(fd));
}

#[test]
fn closing_drops_pending_work_uncalled() {
    let lp = IOLoop::new().unwrap();
    let ran = Rc::new(Cell::new(false));
    let r1 = ran.clone();
    lp.add_callback(move || r1.set(true)).unwrap();
    let r2 = ran.clone();
    lp.call_later(Duration::from_millis(1), move || r2.set(true))
        .unwrap();
    let h = lp.loop_ref();
    lp.spawn(async move {
        let _ = gen::sleep(&h, Duration::from_secs(1));
    })
    .unwrap();
    let f: Future<()> = Future::new(&lp);
    lp.close().unwrap();
    assert!(!ran.get());
    assert_eq!(lp.add_callback(|| {}).unwrap_err().code(), Code::CLOSED);
    assert!(f.set_result(()).is_ok(), "a future outlives its loop");
}

/// A callback that queues itself again until `stop` is set (through
/// `start`, which runs callback batches back to back between polls).
fn endless_chain(lp: tornado_rs::LoopRef, ran: Rc<Cell<u64>>, stop: Rc<Cell<bool>>) {
    ran.set(ran.get() + 1);
    if !stop.get() {
        let next = lp.clone();
        lp.add_callback(move || endless_chain(next, ran, stop))
            .unwrap();
    }
}

#[test]
fn fd_events_and_timers_are_served_during_an_endless_callback_chain() {
    use std::io::Write;
    let lp = IOLoop::new().unwrap();
    let (mut a, b) = pair();
    let ran = Rc::new(Cell::new(0u64));
    let stop = Rc::new(Cell::new(false));
    let fd_seen_after = Rc::new(Cell::new(None::<u64>));
    let timer_seen_after = Rc::new(Cell::new(None::<u64>));
    let stop_when_both_seen = {
        let (lp, stop) = (lp.loop_ref(), stop.clone());
        let (fd_seen, timer_seen) = (fd_seen_after.clone(), timer_seen_after.clone());
        move || {
            if fd_seen.get().is_some() && timer_seen.get().is_some() {
                stop.set(true);
                lp.stop();
            }
        }
    };
    let check = stop_when_both_seen.clone();
    let (r, seen) = (ran.clone(), fd_seen_after.clone());
    lp.add_handler(b.as_raw_fd(), READ, move |_, _| {
        seen.get().is_none().then(|| seen.set(Some(r.get())));
        check();
    })
    .unwrap();
    let (r, seen, check) = (ran.clone(), timer_seen_after.clone(), stop_when_both_seen);
    lp.call_later(Duration::from_millis(20), move || {
        seen.set(Some(r.get()));
        check();
    })
    .unwrap();
    endless_chain(lp.loop_ref(), ran.clone(), stop.clone());
    // The byte arrives while the chain runs; a watchdog ends a starved loop.
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(5));
        a.write_all(b"x").unwrap();
        a
    });
    let (finished, wait_for_finish) = std::sync::mpsc::channel::<()>();
    let handle = lp.loop_handle();
    let watchdog = std::thread::spawn(move || {
        if wait_for_finish
            .recv_timeout(Duration::from_secs(20))
            .is_err()
        {
            handle.stop();
        }
    });
    lp.start().unwrap();
    let _ = finished.send(()); // the watchdog may have given up already
    watchdog.join().unwrap();
    let _a = writer.join().unwrap();
    let fd_at = fd_seen_after
        .get()
        .expect("the fd event was delivered during the chain");
    let timer_at = timer_seen_after
        .get()
        .expect("the timer fired during the chain");
    assert!(
        fd_at > 0 && timer_at > 0,
        "the chain ran first ({fd_at}, {timer_at})"
    );
    assert!(
        stop.get(),
        "stopped by the handler and timer, not the watchdog"
    );
}
