//! Tornado's `tornado.gen` helpers: spawn a coroutine, sleep, moment, multi,
//! with_timeout.

use std::cell::Cell;
use std::future::Future as StdFuture;
use std::rc::Rc;
use std::time::Duration;

use crate::error::{Code, Error, Result};
use crate::future::Future;
use crate::ioloop::LoopRef;

/// Runs `body` as a task on the loop and returns a future of its outcome
/// (Tornado's `gen.coroutine`). The body first runs on the next iteration.
pub fn spawn<T: 'static>(
    lp: &LoopRef,
    body: impl StdFuture<Output = Result<T>> + 'static,
) -> Result<Future<T>> {
    let result = Future::new(lp);
    let out = result.clone();
    lp.spawn(async move {
        let outcome = body.await;
        let _ = out.complete(outcome);
    })?;
    Ok(result)
}

/// A future done after `duration`.
pub fn sleep(lp: &LoopRef, duration: Duration) -> Result<Future<()>> {
    sleep_with(lp, duration, || ())
}

/// `sleep` whose result is `value()`.
pub fn sleep_with<U: 'static>(
    lp: &LoopRef,
    duration: Duration,
    value: impl FnOnce() -> U + 'static,
) -> Result<Future<U>> {
    let future = Future::new(lp);
    let done = future.clone();
    lp.call_later(duration, move || {
        let _ = done.set_result(value());
    })?;
    Ok(future)
}

/// A future done on the next iteration: awaiting it lets other callbacks run.
pub fn moment(lp: &LoopRef) -> Result<Future<()>> {
    moment_with(lp, || ())
}

/// `moment` whose result is `value()`.
pub fn moment_with<U: 'static>(
    lp: &LoopRef,
    value: impl FnOnce() -> U + 'static,
) -> Result<Future<U>> {
    let future = Future::new(lp);
    let done = future.clone();
    lp.add_callback(move || {
        let _ = done.set_result(value());
    })?;
    Ok(future)
}

/// A future done when all `futures` are; it fails with the first error
/// (the others keep running).
pub fn multi<T: 'static>(lp: &LoopRef, futures: &[Future<T>]) -> Result<Future<()>> {
    multi_with(lp, futures, || ())
}

/// `multi` whose result is `value()`.
pub fn multi_with<T: 'static, U: 'static>(
    lp: &LoopRef,
    futures: &[Future<T>],
    value: impl Fn() -> U + 'static,
) -> Result<Future<U>> {
    let all = Future::new(lp);
    if futures.is_empty() {
        all.set_result(value())?;
        return Ok(all);
    }
    let value = Rc::new(value);
    let remaining = Rc::new(Cell::new(futures.len()));
    for future in futures {
        let all = all.clone();
        let remaining = remaining.clone();
        let value = value.clone();
        future.add_done_callback(move |f| {
            if all.done() {
                return;
            }
            if let Some(e) = f.error() {
                let _ = all.set_error(e);
                return;
            }
            remaining.set(remaining.get() - 1);
            if remaining.get() == 0 {
                let _ = all.set_result(value());
            }
        })?;
    }
    Ok(all)
}

/// Wraps `future` in one that fails with `TIMEOUT` after `timeout`; `map`
/// turns the inner outcome into the outer one. The inner future is not
/// cancelled on timeout (as in Tornado).
pub fn with_timeout_map<T: 'static, U: 'static>(
    lp: &LoopRef,
    future: &Future<T>,
    timeout: Duration,
    map: impl FnOnce(&Future<T>) -> Result<U> + 'static,
) -> Result<Future<U>> {
    let outer = Future::new(lp);
    let on_timeout = outer.clone();
    let timer = lp.call_later(timeout, move || {
        let _ = on_timeout.set_error(Error::new(Code::TIMEOUT, "timed out"));
    })?;
    let on_done = outer.clone();
    let lp_done = lp.clone();
    future.add_done_callback(move |inner| {
        if !on_done.done() {
            let _ = lp_done.remove_timeout(timer);
            let _ = on_done.complete(map(&inner));
        }
    })?;
    Ok(outer)
}

/// `with_timeout_map` for cloneable results.
pub fn with_timeout<T: Clone + 'static>(
    lp: &LoopRef,
    future: &Future<T>,
    timeout: Duration,
) -> Result<Future<T>> {
    with_timeout_map(lp, future, timeout, |inner| {
        inner.result().expect("a done future has an outcome")
    })
}
