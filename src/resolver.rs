//! Name resolution off the loop thread (Tornado's `ThreadedResolver`), with
//! a host → addresses override (Tornado's `OverrideResolver`).
//!
//! `getaddrinfo` blocks, so it runs on a small shared pool of threads fed by
//! a bounded queue; a result comes back by waking the waiting task, which
//! goes through the loop's thread-safe queue. IP literals and mapped hosts
//! never touch the pool.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::future::Future as StdFuture;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};

use crate::error::{Code, Error, Result};

/// Which addresses a caller wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AddressFamily {
    #[default]
    Any,
    V4,
    V6,
}

impl AddressFamily {
    fn admits(self, addr: &SocketAddr) -> bool {
        match self {
            AddressFamily::Any => true,
            AddressFamily::V4 => addr.is_ipv4(),
            AddressFamily::V6 => addr.is_ipv6(),
        }
    }
}

/// Threads in the pool, at most.
const POOL_THREADS: usize = 4;
/// Lookups waiting for a thread, at most; more fail at once.
const QUEUE_CAPACITY: usize = 1024;

/// A resolver. Cheap to clone; clones share the mapping.
#[derive(Clone, Default)]
pub struct Resolver {
    mapping: Rc<RefCell<HashMap<String, Vec<IpAddr>>>>,
}

impl Resolver {
    pub fn new() -> Resolver {
        Resolver::default()
    }

    /// Makes `host` resolve to exactly `addrs`, without DNS (for tests and
    /// for pinning a name to an address). Host names are case-insensitive.
    pub fn add_mapping(&self, host: &str, addrs: Vec<IpAddr>) {
        self.mapping
            .borrow_mut()
            .insert(host.to_ascii_lowercase(), addrs);
    }

    /// The addresses of `host` (a name or an IP literal, IPv6 with or
    /// without brackets) with `port`, in the resolver's order, deduplicated.
    pub async fn resolve(
        &self,
        host: &str,
        port: u16,
        family: AddressFamily,
    ) -> Result<Vec<SocketAddr>> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let mapped = self
            .mapping
            .borrow()
            .get(&bare.to_ascii_lowercase())
            .map(|ips| ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect());
        let found = if let Ok(ip) = bare.parse::<IpAddr>() {
            vec![SocketAddr::new(ip, port)]
        } else if let Some(addrs) = mapped {
            addrs
        } else {
            Lookup::start(bare, port)?.await?
        };
        let mut addrs: Vec<SocketAddr> = Vec::with_capacity(found.len());
        for addr in found {
            if family.admits(&addr) && !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
        if addrs.is_empty() {
            return Err(Error::new(
                Code::RESOLVE,
                format!("cannot resolve {host}: no {family:?} address"),
            ));
        }
        Ok(addrs)
    }
}

/// Where a worker leaves a result for the waiting task.
#[derive(Default)]
struct Slot {
    result: Option<std::result::Result<Vec<SocketAddr>, String>>,
    waker: Option<Waker>,
}

struct Job {
    host: String,
    port: u16,
    slot: Arc<Mutex<Slot>>,
}

#[derive(Default)]
struct PoolState {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

struct Pool {
    state: Mutex<PoolState>,
    ready: Condvar,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        state: Mutex::new(PoolState::default()),
        ready: Condvar::new(),
    })
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A worker never panics while holding a lock; if one did, the data is still usable.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Pool {
    fn submit(&'static self, job: Job) -> Result<()> {
        let mut state = lock(&self.state);
        if state.jobs.len() >= QUEUE_CAPACITY {
            return Err(Error::new(
                Code::IO,
                format!("cannot resolve {}: the resolver queue is full", job.host),
            ));
        }
        state.jobs.push_back(job);
        if state.idle == 0 && state.threads < POOL_THREADS {
            let spawned = std::thread::Builder::new()
                .name("tornado-resolver".into())
                .spawn(move || self.work());
            if spawned.is_ok() {
                state.threads += 1;
            }
        }
        let no_threads = state.threads == 0;
        drop(state);
        if no_threads {
            return Err(Error::new(Code::IO, "cannot start a resolver thread"));
        }
        self.ready.notify_one();
        Ok(())
    }

    fn work(&self) {
        loop {
            let job = {
                let mut state = lock(&self.state);
                loop {
                    if let Some(job) = state.jobs.pop_front() {
                        break job;
                    }
                    state.idle += 1;
                    state = self
                        .ready
                        .wait(state)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    state.idle -= 1;
                }
            };
            let result = (job.host.as_str(), job.port)
                .to_socket_addrs()
                .map(Iterator::collect)
                .map_err(|e| e.to_string());
            let waker = {
                let mut slot = lock(&job.slot);
                slot.result = Some(result);
                slot.waker.take()
            };
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }
}

/// A lookup on the pool. Dropping it is safe: the late result is dropped.
struct Lookup {
    host: String,
    slot: Arc<Mutex<Slot>>,
}

impl Lookup {
    fn start(host: &str, port: u16) -> Result<Lookup> {
        let slot = Arc::new(Mutex::new(Slot::default()));
        pool().submit(Job {
            host: host.to_string(),
            port,
            slot: slot.clone(),
        })?;
        Ok(Lookup {
            host: host.to_string(),
            slot,
        })
    }
}

impl StdFuture for Lookup {
    type Output = Result<Vec<SocketAddr>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = lock(&self.slot);
        match slot.result.take() {
            Some(Ok(addrs)) => Poll::Ready(Ok(addrs)),
            Some(Err(reason)) => Poll::Ready(Err(Error::new(
                Code::RESOLVE,
                format!("cannot resolve {}: {reason}", self.host),
            ))),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
