//! Tornado's `Future`: a result that will be set later, with done callbacks
//! that always run from the loop, in registration order.

use std::cell::RefCell;
use std::future::Future as StdFuture;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::error::{Code, Error, Result};
use crate::ioloop::{Callback, LoopRef};

/// A single-threaded, reference-counted future bound to a loop.
pub struct Future<T> {
    pub(crate) cell: Rc<FutureCell<T>>,
}

impl<T> Clone for Future<T> {
    fn clone(&self) -> Self {
        Future {
            cell: self.cell.clone(),
        }
    }
}

pub(crate) struct FutureCell<T> {
    lp: LoopRef,
    state: RefCell<State<T>>,
}

struct State<T> {
    outcome: Option<Result<T>>,
    waiters: Waiters<T>,
}

/// Who waits on a future, in registration order. Most futures have one
/// waiter (the task awaiting it): that one is kept inline, and only a
/// second one allocates.
struct Waiters<T> {
    first: Option<Waiter<T>>,
    rest: Vec<Waiter<T>>,
}

impl<T> Default for Waiters<T> {
    fn default() -> Self {
        Waiters {
            first: None,
            rest: Vec::new(),
        }
    }
}

impl<T> Waiters<T> {
    fn push(&mut self, waiter: Waiter<T>) {
        if self.first.is_none() && self.rest.is_empty() {
            self.first = Some(waiter);
        } else {
            self.rest.push(waiter);
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Waiter<T>> {
        self.first.iter().chain(&self.rest)
    }

    /// Removes them all, in order.
    fn take(&mut self) -> impl Iterator<Item = Waiter<T>> {
        let first = self.first.take();
        first.into_iter().chain(std::mem::take(&mut self.rest))
    }
}

type DoneCallback<T> = Box<dyn FnOnce(Future<T>)>;

enum Waiter<T> {
    Callback(DoneCallback<T>),
    Task(Waker),
}

impl<T: 'static> Future<T> {
    /// A pending future bound to `lp`.
    pub fn new(lp: &LoopRef) -> Future<T> {
        Future {
            cell: Rc::new(FutureCell {
                lp: lp.clone(),
                state: RefCell::new(State {
                    outcome: None,
                    waiters: Waiters::default(),
                }),
            }),
        }
    }

    /// A future already done with `value`.
    pub fn ready(lp: &LoopRef, value: T) -> Future<T> {
        let future = Future::new(lp);
        let _ = future.set_result(value);
        future
    }

    /// The loop this future belongs to: its callbacks run there.
    pub fn loop_ref(&self) -> &LoopRef {
        &self.cell.lp
    }

    /// Whether the future has a result or an error (Tornado's `done()`;
    /// a cancelled future is done).
    pub fn done(&self) -> bool {
        self.cell.state.borrow().outcome.is_some()
    }

    /// Completes the future with `value` (Tornado's `set_result`); its done
    /// callbacks are queued on the loop, not run here. A future already done
    /// stays as it is and this returns `ALREADY_DONE`.
    pub fn set_result(&self, value: T) -> Result<()> {
        self.complete(Ok(value))
    }

    /// Completes the future with `error` (Tornado's `set_exception`); as
    /// [`set_result`](Self::set_result) otherwise.
    pub fn set_error(&self, error: Error) -> Result<()> {
        self.complete(Err(error))
    }

    /// Cancels a pending future: it completes with a `CANCELLED` error.
    pub fn cancel(&self) -> Result<()> {
        self.complete(Err(Error::cancelled()))
    }

    /// Sets the outcome once; a second completion is `ALREADY_DONE`.
    pub fn complete(&self, outcome: Result<T>) -> Result<()> {
        let waiters = {
            let mut state = self.cell.state.borrow_mut();
            if state.outcome.is_some() {
                return Err(Error::new(Code::ALREADY_DONE, "the future is already done"));
            }
            state.outcome = Some(outcome);
            state.waiters.take()
        };
        for waiter in waiters {
            self.schedule(waiter);
        }
        Ok(())
    }

    /// Queues a waiter on the loop; if the loop is closed it is dropped.
    fn schedule(&self, waiter: Waiter<T>) {
        match waiter {
            Waiter::Callback(f) => {
                let me = self.clone();
                let _ = self.cell.lp.queue(Callback::Boxed(Box::new(move || f(me))));
            }
            Waiter::Task(waker) => waker.wake(),
        }
    }

    /// Calls `f(self)` from the loop once the future is done (on the next
    /// iteration if it already is); never from inside this call.
    pub fn add_done_callback(&self, f: impl FnOnce(Future<T>) + 'static) -> Result<()> {
        if self.cell.lp.is_closed() {
            // It could never be scheduled.
            return Err(Error::closed());
        }
        let waiter = Waiter::Callback(Box::new(f));
        let done = {
            let mut state = self.cell.state.borrow_mut();
            if state.outcome.is_none() {
                state.waiters.push(waiter);
                return Ok(());
            }
            waiter
        };
        self.schedule(done);
        Ok(())
    }

    /// Lends the outcome mutably, for a future's only consumer: it may move
    /// the value out (leaving a placeholder) instead of cloning it.
    pub fn with_outcome_mut<R>(&self, f: impl FnOnce(Option<&mut Result<T>>) -> R) -> R {
        f(self.cell.state.borrow_mut().outcome.as_mut())
    }

    /// Looks at the outcome without taking it.
    pub fn with_outcome<R>(&self, f: impl FnOnce(Option<&Result<T>>) -> R) -> R {
        f(self.cell.state.borrow().outcome.as_ref())
    }

    /// The error, if the future failed.
    pub fn error(&self) -> Option<Error> {
        self.with_outcome(|o| match o {
            Some(Err(e)) => Some(e.clone()),
            _ => None,
        })
    }

    /// A future that resolves (to `()`) once this one is done.
    pub fn wait(&self) -> WaitDone<T> {
        WaitDone {
            future: self.clone(),
        }
    }
}

impl<T: Clone + 'static> Future<T> {
    /// The outcome, if done.
    pub fn result(&self) -> Option<Result<T>> {
        self.with_outcome(|o| o.cloned())
    }

    /// Waits for the outcome (for `async` code on the loop).
    pub async fn value(&self) -> Result<T> {
        self.wait().await;
        self.result().expect("a waited future is done")
    }
}

/// Resolves when the future is done; see [`Future::wait`].
pub struct WaitDone<T> {
    future: Future<T>,
}

impl<T: 'static> StdFuture for WaitDone<T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.future.cell.state.borrow_mut();
        if state.outcome.is_some() {
            return Poll::Ready(());
        }
        let already = state
            .waiters
            .iter()
            .any(|w| matches!(w, Waiter::Task(waker) if waker.will_wake(cx.waker())));
        if !already {
            state.waiters.push(Waiter::Task(cx.waker().clone()));
        }
        Poll::Pending
    }
}

impl<T> std::fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.cell.state.try_borrow() {
            Ok(s) => match &s.outcome {
                None => "pending",
                Some(Ok(_)) => "done",
                Some(Err(_)) => "failed",
            },
            Err(_) => "busy",
        };
        write!(f, "Future({state})")
    }
}
