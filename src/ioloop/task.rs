//! Tasks: Rust futures polled by the loop. A task is woken through its
//! `Waker`, which queues it as an ordinary callback, so task wake-ups and
//! callbacks share one queue and one order.

use std::future::Future as StdFuture;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Wake, Waker};

use super::{Callback, Inner, LoopRef, OnOwner, RemoteCallback};
use crate::error::Result;

pub(crate) type TaskFuture = Pin<Box<dyn StdFuture<Output = ()>>>;

struct Slot {
    generation: u32,
    future: Option<TaskFuture>,
    waker: Option<Arc<TaskWaker>>,
}

#[derive(Default)]
pub(crate) struct Tasks {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

impl Tasks {
    fn insert(&mut self, inner: &Arc<Inner>, future: TaskFuture) -> (u32, u32) {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(Slot {
                    generation: 1,
                    future: None,
                    waker: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let entry = &mut self.slots[slot as usize];
        let generation = entry.generation;
        entry.future = Some(future);
        entry.waker = Some(Arc::new(TaskWaker {
            inner: inner.clone(),
            slot,
            generation,
            // Spawning queues the first poll.
            scheduled: AtomicBool::new(true),
        }));
        (slot, generation)
    }

    /// Takes the task's future out for polling, with its waker.
    fn checkout(&mut self, slot: u32, generation: u32) -> Option<(TaskFuture, Arc<TaskWaker>)> {
        let entry = self.slots.get_mut(slot as usize)?;
        if entry.generation != generation {
            return None;
        }
        let future = entry.future.take()?;
        Some((future, entry.waker.clone()?))
    }

    fn checkin(&mut self, slot: u32, future: TaskFuture) {
        self.slots[slot as usize].future = Some(future);
    }

    fn finish(&mut self, slot: u32) -> Option<Arc<TaskWaker>> {
        let entry = &mut self.slots[slot as usize];
        entry.generation = entry.generation.wrapping_add(1).max(1);
        entry.future = None;
        self.free.push(slot);
        entry.waker.take()
    }

    pub fn take_all(&mut self) -> Vec<TaskFuture> {
        self.free.clear();
        std::mem::take(&mut self.slots)
            .into_iter()
            .filter_map(|s| s.future)
            .collect()
    }
}

struct TaskWaker {
    inner: Arc<Inner>,
    slot: u32,
    generation: u32,
    /// Already queued: further wake-ups before the poll are free.
    scheduled: AtomicBool,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let callback = Callback::Task {
            slot: self.slot,
            generation: self.generation,
        };
        // On the loop thread, queue directly; elsewhere (or while the loop's
        // state is borrowed) through the thread-safe queue.
        if let Ok(mut local) = self.inner.local.borrow_mut() {
            if !local.closed {
                let wake_host = local.ready.is_empty() && !local.running;
                local.ready.push(callback);
                drop(local);
                if wake_host {
                    self.inner.wake();
                }
            }
            return;
        }
        let _ = self.inner.push_remote(RemoteCallback::Task {
            slot: self.slot,
            generation: self.generation,
        });
    }
}

impl LoopRef {
    /// Runs `future` on the loop; its first poll happens on the next iteration.
    pub fn spawn(&self, future: impl StdFuture<Output = ()> + 'static) -> Result<()> {
        let (slot, generation) = self
            .open_local()?
            .tasks
            .insert(&self.inner, Box::pin(future));
        // The task was inserted marked scheduled: queue its first poll.
        if let Err((e, _)) = self.queue(Callback::Task { slot, generation }) {
            let waker = self.local()?.tasks.finish(slot);
            drop(waker);
            return Err(e);
        }
        Ok(())
    }

    pub(crate) fn poll_task(&self, on: OnOwner, slot: u32, generation: u32) {
        let Some((mut future, waker)) = self
            .local_on(on)
            .ok()
            .and_then(|mut local| local.tasks.checkout(slot, generation))
        else {
            return;
        };
        waker.scheduled.store(false, Ordering::Release);
        let task_waker = Waker::from(waker);
        let mut cx = Context::from_waker(&task_waker);
        let mut ready = false;
        let completed = super::callback::run_contained(|| {
            ready = future.as_mut().poll(&mut cx).is_ready();
        });
        // A task that panicked is finished: its future may be half-way through a step.
        let finished = ready || !completed;
        let mut local = match self.local_on(on) {
            Ok(local) => local,
            Err(_) => return,
        };
        if finished {
            let waker = local.tasks.finish(slot);
            drop(local);
            drop(future);
            drop(waker);
        } else {
            local.tasks.checkin(slot, future);
        }
    }
}
