//! Name resolution off the loop thread (Tornado's `ThreadedResolver`), with
//! overrides (Tornado's `OverrideResolver`): host → addresses, and
//! (host, port) → (host, port); or, in place of the threads, a resolver the
//! caller supplies (Tornado's `resolver=`), asynchronous through a future.
//!
//! `getaddrinfo` blocks, so it runs on a small shared pool of threads fed by
//! a bounded queue; a result comes back by waking the waiting task, which
//! goes through the loop's thread-safe queue. IP literals and mapped hosts
//! never touch the pool.
//!
//! The pool's answers are cached per resolver (per HTTP client) for
//! [`DEFAULT_DNS_CACHE_TTL`], as curl keeps its DNS cache for 60 s:
//! `getaddrinfo` gives no TTL, so the time is fixed, not the record's.
//! [`Resolver::set_cache_ttl`] changes it; `None` (or zero) turns the cache
//! off and every fetch that connects asks the system again.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::Future as StdFuture;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::error::{Code, Error, Result};

/// Which addresses a caller wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AddressFamily {
    #[default]
    /// IPv4 and IPv6 (the default; Python's `socket.AF_UNSPEC`).
    Any,
    /// IPv4 only (`AF_INET`).
    V4,
    /// IPv6 only (`AF_INET6`).
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

/// A caller's resolver: (host, port, family) → addresses, through a
/// future (Tornado's `Resolver.resolve`). It sees every host, IP literals
/// included (as Tornado's does); hosts of the hostname mapping never reach
/// it.
#[derive(Clone)]
pub struct ResolveHook(pub Rc<ResolveFn>);

/// What a [`ResolveHook`] calls: the loop the lookup is for, then the name,
/// port and family.
pub type ResolveFn = dyn Fn(
    &crate::ioloop::LoopRef,
    &str,
    u16,
    AddressFamily,
) -> crate::future::Future<Vec<SocketAddr>>;

impl std::fmt::Debug for ResolveHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResolveHook")
    }
}

/// A (host, port) pair.
type Endpoint = (String, u16);

/// How long the threaded resolver's answers are reused (curl's 60 s).
pub const DEFAULT_DNS_CACHE_TTL: Duration = Duration::from_secs(60);
/// Names cached per resolver, at most: past this the expired entries go,
/// and if none had expired, all of them (a crawler's cache stays small).
const DNS_CACHE_ENTRIES: usize = 1024;

/// The threaded resolver's answers by lower-case host name: when each was
/// looked up, and its addresses (any family; the port is the caller's).
struct DnsCache {
    ttl: Cell<Option<Duration>>,
    entries: RefCell<HashMap<String, (Instant, Vec<IpAddr>)>>,
    /// Lookups sent to the thread pool (for tests and statistics).
    lookups: Cell<u64>,
}

impl Default for DnsCache {
    fn default() -> Self {
        DnsCache {
            ttl: Cell::new(Some(DEFAULT_DNS_CACHE_TTL)),
            entries: RefCell::default(),
            lookups: Cell::new(0),
        }
    }
}

impl DnsCache {
    fn get(&self, host: &str, port: u16) -> Option<Vec<SocketAddr>> {
        let ttl = self.ttl.get()?;
        let entries = self.entries.borrow();
        let (at, ips) = entries.get(host)?;
        (at.elapsed() < ttl).then(|| ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect())
    }

    fn put(&self, host: &str, addrs: &[SocketAddr]) {
        let Some(ttl) = self.ttl.get() else {
            return;
        };
        let mut entries = self.entries.borrow_mut();
        if entries.len() >= DNS_CACHE_ENTRIES && !entries.contains_key(host) {
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            if entries.len() >= DNS_CACHE_ENTRIES {
                entries.clear();
            }
        }
        let mut ips: Vec<IpAddr> = Vec::with_capacity(addrs.len());
        for addr in addrs {
            if !ips.contains(&addr.ip()) {
                ips.push(addr.ip());
            }
        }
        entries.insert(host.to_string(), (Instant::now(), ips));
    }
}

/// A resolver. Cheap to clone; clones share the mappings and the cache.
#[derive(Clone, Default)]
pub struct Resolver {
    mapping: Rc<RefCell<HashMap<String, Vec<IpAddr>>>>,
    /// (host, port) → (host, port), applied before anything else.
    endpoints: Rc<RefCell<HashMap<Endpoint, Endpoint>>>,
    hook: Option<(crate::ioloop::LoopRef, ResolveHook)>,
    cache: Rc<DnsCache>,
}

impl Resolver {
    /// A resolver with no mappings that runs `getaddrinfo` on the shared
    /// thread pool (Tornado's `ThreadedResolver`).
    pub fn new() -> Resolver {
        Resolver::default()
    }

    /// A resolver that asks `hook` for names instead of the thread pool,
    /// for lookups on `lp`.
    pub fn with_hook(lp: &crate::ioloop::LoopRef, hook: ResolveHook) -> Resolver {
        Resolver {
            hook: Some((lp.clone(), hook)),
            ..Resolver::default()
        }
    }

    /// Makes (`host`, `port`) resolve as (`to_host`, `to_port`) would, as
    /// Tornado's OverrideResolver with a (host, port) key and curl's
    /// `--connect-to`: the request keeps its URL (Host header, TLS name).
    pub fn add_endpoint_mapping(&self, host: &str, port: u16, to_host: &str, to_port: u16) {
        self.endpoints.borrow_mut().insert(
            (host.to_ascii_lowercase(), port),
            (to_host.to_string(), to_port),
        );
    }

    /// Makes `host` resolve to exactly `addrs`, without DNS (for tests and
    /// for pinning a name to an address). Host names are case-insensitive.
    pub fn add_mapping(&self, host: &str, addrs: Vec<IpAddr>) {
        self.mapping
            .borrow_mut()
            .insert(host.to_ascii_lowercase(), addrs);
    }

    /// How long the threaded resolver's answers are reused
    /// ([`DEFAULT_DNS_CACHE_TTL`] unless set). `None` or zero turns the
    /// cache off (and empties it); so does a caller's resolver hook, which
    /// is never cached. Mapped hosts and IP literals are never looked up.
    pub fn set_cache_ttl(&self, ttl: Option<Duration>) {
        let ttl = ttl.filter(|t| !t.is_zero());
        self.cache.ttl.set(ttl);
        if ttl.is_none() {
            self.cache.entries.borrow_mut().clear();
        }
    }

    /// The cache's time to live (None: off).
    pub fn cache_ttl(&self) -> Option<Duration> {
        self.cache.ttl.get()
    }

    /// How many names this resolver (and its clones) sent to the system's
    /// resolver so far: cache hits do not count.
    pub fn system_lookups(&self) -> u64 {
        self.cache.lookups.get()
    }

    /// The addresses of `host` (a name or an IP literal, IPv6 with or
    /// without brackets) with `port`, in the resolver's order, deduplicated.
    pub async fn resolve(
        &self,
        host: &str,
        port: u16,
        family: AddressFamily,
    ) -> Result<Vec<SocketAddr>> {
        let endpoint = self
            .endpoints
            .borrow()
            .get(&(host.to_ascii_lowercase(), port))
            .cloned();
        let (host, port) = match &endpoint {
            Some((to_host, to_port)) => (to_host.as_str(), *to_port),
            None => (host, port),
        };
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let mapped = self
            .mapping
            .borrow()
            .get(&bare.to_ascii_lowercase())
            .map(|ips| ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect());
        let found = if let Some(addrs) = mapped {
            addrs
        } else if let Some((lp, hook)) = &self.hook {
            // As Tornado's resolver=, the hook sees IP literals too.
            (hook.0)(lp, bare, port, family)
                .value()
                .await
                .map_err(|e| {
                    Error::new(
                        Code::RESOLVE,
                        format!("cannot resolve {host}: {}", e.message()),
                    )
                })?
        } else if let Ok(ip) = bare.parse::<IpAddr>() {
            vec![SocketAddr::new(ip, port)]
        } else {
            let name = bare.to_ascii_lowercase();
            match self.cache.get(&name, port) {
                Some(addrs) => addrs,
                None => {
                    self.cache.lookups.set(self.cache.lookups.get() + 1);
                    let addrs = Lookup::start(bare, port)?.await?;
                    self.cache.put(&name, &addrs);
                    addrs
                }
            }
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
