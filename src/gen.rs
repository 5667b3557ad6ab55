//! Tornado's `tornado.gen` helpers: spawn a coroutine, sleep, moment, multi,
//! with_timeout.

use std::cell::Cell;
use std::future::Future as StdFuture;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use crate::error::{Code, Error, Result};
use crate::future::Future;
use crate::ioloop::{LoopRef, TimeoutId};

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

/// A timeout as a limit: none for None or zero (Tornado's and libcurl's
/// 0 means "no limit"). The one place that rule is written.
pub fn limit_of(timeout: Option<Duration>) -> Option<Duration> {
    timeout.filter(|limit| !limit.is_zero())
}

/// Runs `work` until it finishes (`Some`) or `stop` finishes first (`None`:
/// `work` is dropped, which ends what it was doing, e.g. closes its
/// connection). `work` is polled first, so one that is ready wins.
pub async fn until<T>(work: impl StdFuture<Output = T>, stop: impl StdFuture) -> Option<T> {
    let mut work = std::pin::pin!(work);
    let mut stop = std::pin::pin!(stop);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        stop.as_mut().poll(cx).map(|_| None)
    })
    .await
}

/// Tornado's `gen.with_timeout` for the library's own async code: `work`
/// within `limit` (see [`limit_of`]: None or zero is no limit), else a
/// `TIMEOUT` error ("timed out") and `work` is dropped. The timer is
/// removed as soon as `work` finishes.
pub async fn within<T>(
    lp: &LoopRef,
    limit: Option<Duration>,
    work: impl StdFuture<Output = Result<T>>,
) -> Result<T> {
    let Some(limit) = limit_of(limit) else {
        return work.await;
    };
    let expired = Future::<()>::new(lp);
    let fire = expired.clone();
    let _timer = TimerGuard {
        lp: lp.clone(),
        id: lp.call_later(limit, move || {
            let _ = fire.set_result(());
        })?,
    };
    until(work, expired.wait())
        .await
        .unwrap_or_else(|| Err(Error::new(Code::TIMEOUT, "timed out")))
}

/// Removes a timeout when dropped (also when the task is dropped mid-way).
pub(crate) struct TimerGuard {
    pub(crate) lp: LoopRef,
    pub(crate) id: TimeoutId,
}

impl Drop for TimerGuard {
    fn drop(&mut self) {
        let _ = self.lp.remove_timeout(self.id);
    }
}

/// Wraps `future` in one that fails with `TIMEOUT` after `timeout` (zero:
/// never); `map` turns the inner outcome into the outer one. The inner
/// future is not cancelled on timeout (as in Tornado): only its wait is.
pub fn with_timeout_map<T: 'static, U: 'static>(
    lp: &LoopRef,
    future: &Future<T>,
    timeout: Duration,
    map: impl FnOnce(&Future<T>) -> Result<U> + 'static,
) -> Result<Future<U>> {
    let outer = Future::new(lp);
    let (done, inner, task_lp) = (outer.clone(), future.clone(), lp.clone());
    lp.spawn(async move {
        let waited = within(&task_lp, Some(timeout), async {
            inner.wait().await;
            Ok(())
        })
        .await;
        let _ = done.complete(waited.and_then(|()| map(&inner)));
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
