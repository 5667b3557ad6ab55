//! Tornado's `AsyncHTTPClient`, with keep-alive: fetches queue for one of
//! `max_clients` slots, connect (resolver, Happy Eyeballs, TLS, proxies),
//! reuse pooled connections, follow redirects and time out.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::path::PathBuf;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::body::Body;
use super::body_pool::BodyPool;
use super::conn::{Connection, SharedPool};
use super::cookies::CookieJar;
use super::h1::connection::{
    classify, exchange, read_raw_head, ExchangeFailure, Exchanged, Limits,
};
use super::h1::request_head::connect_tunnel_head;
use super::h1::response_head::{parse_response_head, ResponseHead};
use super::h2::{self as http2, H2Connection, HttpVersion};
use super::proxy::{self, ProxyKind, ProxySpec};
use super::redirect::{answers_digest_challenge, can_follow, digest_retry, redirect_request};
use super::request::HTTPRequest;
use super::response::{HTTPResponse, TimeInfo};
use super::url::{parse_target, Scheme, Target};
use super::validate::validate_request;
use super::{fetch_error, FetchErrorKind};
use crate::error::{Code, Error, Result};
use crate::future::Future;
use crate::gen::{limit_of, until, within};
use crate::ioloop::{LoopRef, TimeoutId};
use crate::iostream::IOStream;
use crate::resolver::{AddressFamily, ResolveHook, Resolver, DEFAULT_DNS_CACHE_TTL};
use crate::socks::{self, Credentials, Destination};
use crate::tcpclient::{connect_resolved, ConnectOptions};
use crate::tls::{client_config, server_name, CertKeyPem, TlsClientOptions, TlsVersion};
use crate::util::monotonic_ns;

/// Client-wide settings (Tornado's `AsyncHTTPClient.initialize` arguments).
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Fetches in flight at once; the rest wait in a FIFO queue (10).
    pub max_clients: usize,
    /// The most a stream may buffer (100 MiB).
    pub max_buffer_size: usize,
    /// The most a response head may take (64 KiB).
    pub max_header_size: usize,
    /// The most a response body may take, after decompression (100 MiB).
    pub max_body_size: u64,
    /// How long a pooled connection may stay idle (60 s).
    pub idle_timeout: Duration,
    /// Idle connections kept per origin (the rest are closed). `None` (the
    /// default) keeps up to `max_clients`: fetches at that concurrency to
    /// one keep-alive origin then never open more than `max_clients`
    /// connections, however many are queued. `Some(0)` turns pooling off.
    pub max_idle_per_host: Option<usize>,
    /// Host → addresses used instead of DNS (Tornado's hostname_mapping).
    pub hostname_mapping: Vec<(String, Vec<IpAddr>)>,
    /// (host, port) → (host, port), resolved in its place (Tornado's
    /// OverrideResolver keyed by (host, port); curl's `--connect-to`). The
    /// request keeps its URL: Host header and TLS name are the original's.
    pub endpoint_mapping: Vec<((String, u16), (String, u16))>,
    /// Resolves names instead of the threaded resolver (Tornado's
    /// `resolver=`); the mappings above apply first.
    pub resolver: Option<ResolveHook>,
    /// Default request values (Tornado's `defaults`): requests made with
    /// [`AsyncHTTPClient::request`] start as a copy of this one (its URL is
    /// ignored).
    pub defaults: Option<HTTPRequest>,
    /// The HTTP versions a request that does not choose may use (`Any`:
    /// HTTP/2 where TLS negotiates it, else HTTP/1.1).
    pub http_version: HttpVersion,
    /// A cookie jar for this client (off by default, as in Tornado): see
    /// [`CookieJar`] and [`AsyncHTTPClient::cookie_jar`].
    pub cookies: bool,
    /// The public suffix list the cookie jar refuses `Domain=` cookies for
    /// (a file in the PSL format, such as Debian's
    /// /usr/share/publicsuffix/public_suffix_list.dat), read when the
    /// client is made; None: the snapshot built in. See [`CookieJar`].
    pub public_suffix_file: Option<PathBuf>,
    /// How long the threaded resolver keeps an answer (60 s, curl's; None:
    /// no cache). Not used with `resolver`.
    pub dns_cache_ttl: Option<Duration>,
    /// A pooled HTTP/2 connection idle at least this long answers a PING
    /// before a fetch reuses it (5 s; None: never asked): one whose peer
    /// stopped answering is dropped, and the fetch opens another.
    pub http2_ping_after_idle: Option<Duration>,
    /// How long that PING's answer may take (2 s).
    pub http2_ping_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            max_clients: 10,
            max_buffer_size: 100 * 1024 * 1024,
            max_header_size: 64 * 1024,
            max_body_size: 100 * 1024 * 1024,
            idle_timeout: Duration::from_secs(60),
            max_idle_per_host: None,
            hostname_mapping: Vec::new(),
            endpoint_mapping: Vec::new(),
            resolver: None,
            defaults: None,
            http_version: HttpVersion::Any,
            cookies: false,
            public_suffix_file: None,
            dns_cache_ttl: Some(DEFAULT_DNS_CACHE_TTL),
            http2_ping_after_idle: Some(Duration::from_secs(5)),
            http2_ping_timeout: Duration::from_secs(2),
        }
    }
}

/// An HTTP client bound to a loop. Cheap to clone (shared).
#[derive(Clone)]
pub struct AsyncHTTPClient {
    inner: Rc<Inner>,
}

struct Inner {
    lp: LoopRef,
    options: ClientOptions,
    resolver: Resolver,
    /// Slots in use (at most `max_clients`).
    active: Cell<usize>,
    /// Fetches waiting for a slot, in arrival order.
    waiting: RefCell<VecDeque<Future<()>>>,
    /// Idle keep-alive connections per pool key.
    idle: RefCell<HashMap<PoolKey, Vec<IdleConnection>, foldhash::fast::RandomState>>,
    /// HTTP/2 connections per pool key, each serving many fetches.
    shared: RefCell<SharedPool<PoolKey>>,
    /// Connections opened so far (TCP connects that reached TLS or the
    /// first request).
    connects: Cell<u64>,
    /// The one timeout that closes expired idle connections, armed while
    /// any are pooled (one timer per client, not one per check-in).
    idle_sweep: Cell<Option<TimeoutId>>,
    /// The result futures of fetches not yet done (for cancel_all / close).
    in_flight: RefCell<HashMap<u64, Future<HTTPResponse>>>,
    next_id: Cell<u64>,
    /// The last URL parsed: clients often fetch one URL many times, and
    /// parsing (IDNA and all) costs more than the rest of a request's setup.
    last_target: RefCell<Option<(String, Rc<Target>)>>,
    /// Large body buffers given back by finished responses.
    body_pool: Rc<BodyPool>,
    /// The cookie jar, when `options.cookies` is on.
    cookies: Option<Rc<CookieJar>>,
    closed: Cell<bool>,
}

struct IdleConnection {
    stream: IOStream,
    /// When it went idle (monotonic ns): it expires idle_timeout later.
    since_ns: u64,
}

/// A fetch's timestamps, for `time_info` (curl's meanings).
struct Clock {
    start: Instant,
    start_wall: SystemTime,
    dequeued: Option<Instant>,
    info: TimeInfo,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            start: Instant::now(),
            start_wall: SystemTime::now(),
            dequeued: None,
            info: TimeInfo::default(),
        }
    }

    fn since_start(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}

impl AsyncHTTPClient {
    /// A client on `lp` (Tornado's `AsyncHTTPClient(**options)`; each call
    /// makes a new client, there is no per-loop instance). Call it on the
    /// loop's thread (else `WRONG_THREAD`); `max_clients`,
    /// `max_header_size` and `max_buffer_size` must be positive (else
    /// `INVALID`).
    pub fn new(lp: &LoopRef, options: ClientOptions) -> Result<AsyncHTTPClient> {
        lp.check_thread()?;
        if options.max_clients == 0 {
            return Err(Error::invalid("max_clients must be at least 1"));
        }
        if options.max_header_size == 0 || options.max_buffer_size == 0 {
            return Err(Error::invalid("buffer and header limits must be positive"));
        }
        let resolver = match &options.resolver {
            Some(hook) => Resolver::with_hook(lp, hook.clone()),
            None => Resolver::new(),
        };
        for (host, addrs) in &options.hostname_mapping {
            resolver.add_mapping(host, addrs.clone());
        }
        for ((host, port), (to_host, to_port)) in &options.endpoint_mapping {
            resolver.add_endpoint_mapping(host, *port, to_host, *to_port);
        }
        resolver.set_cache_ttl(options.dns_cache_ttl);
        let cookies = match options.cookies {
            true => {
                let list = super::cookies::public_suffixes(options.public_suffix_file.as_deref())?;
                Some(Rc::new(CookieJar::with_public_suffixes(list)))
            }
            false => None,
        };
        Ok(AsyncHTTPClient {
            inner: Rc::new(Inner {
                lp: lp.clone(),
                options,
                resolver,
                active: Cell::new(0),
                waiting: RefCell::new(VecDeque::new()),
                idle: RefCell::new(HashMap::default()),
                shared: RefCell::new(SharedPool::default()),
                connects: Cell::new(0),
                idle_sweep: Cell::new(None),
                in_flight: RefCell::new(HashMap::new()),
                next_id: Cell::new(0),
                last_target: RefCell::new(None),
                body_pool: Rc::default(),
                cookies,
                closed: Cell::new(false),
            }),
        })
    }

    /// The client's cookie jar (None unless `ClientOptions::cookies`):
    /// to load or save it, or look inside.
    pub fn cookie_jar(&self) -> Option<Rc<CookieJar>> {
        self.inner.cookies.clone()
    }

    /// The loop the client runs its fetches on.
    pub fn loop_ref(&self) -> &LoopRef {
        &self.inner.lp
    }

    /// A GET of `url` that starts from the client's default request values
    /// (or Tornado's defaults when the client has none).
    pub fn request(&self, url: impl Into<String>) -> HTTPRequest {
        match &self.inner.options.defaults {
            Some(template) => HTTPRequest {
                url: url.into(),
                ..template.clone()
            },
            None => HTTPRequest::new(url),
        }
    }

    /// Fetches `request`. The future resolves with a response for every
    /// HTTP status, and with code 599 and `error` set when no response was
    /// received. Cancelling the future aborts the fetch (its connection is
    /// closed); `cancel_all` and `close` fail it with a `cancelled` or
    /// `closed` fetch error.
    pub fn fetch(&self, request: HTTPRequest) -> Result<Future<HTTPResponse>> {
        self.fetch_shared(Rc::new(request))
    }

    /// As [`fetch`](Self::fetch), for a request the caller keeps: the
    /// client only reads it (a redirect makes a new one), so many fetches
    /// may share one request without copying it.
    pub fn fetch_shared(&self, request: Rc<HTTPRequest>) -> Result<Future<HTTPResponse>> {
        let lp = &self.inner.lp;
        lp.check_thread()?;
        if self.inner.closed.get() {
            return Err(Error::closed());
        }
        let result = Future::new(lp);
        let id = self.inner.next_id.get();
        self.inner.next_id.set(id + 1);
        self.inner.in_flight.borrow_mut().insert(id, result.clone());
        let client = Rc::downgrade(&self.inner);
        let watched = result.clone();
        let task = async move {
            // Boxed so the task does not hold the fetch's state twice (a
            // future moved into another is not overlapped by the compiler).
            let work = Box::pin(run_fetch(client.clone(), request));
            // A cancel or a client shutdown completes `watched` first: the work is
            // dropped, which closes its connection.
            let outcome = until(work, watched.wait()).await;
            if let Some(response) = outcome {
                let _ = watched.set_result(response);
            }
            if let Some(inner) = client.upgrade() {
                inner.in_flight.borrow_mut().remove(&id);
            }
        };
        lp.spawn(task)?;
        Ok(result)
    }

    /// Ends every fetch in flight or queued with a "cancelled" error.
    pub fn cancel_all(&self) {
        self.end_all(|| fetch_error(FetchErrorKind::Cancelled, "the fetch was cancelled"));
    }

    /// Ends every fetch with a "closed" error, closes pooled connections and
    /// refuses new fetches. Dropping the last handle does the same.
    pub fn close(&self) {
        if self.inner.closed.replace(true) {
            return;
        }
        self.end_all(|| fetch_error(FetchErrorKind::Closed, "the HTTP client was closed"));
        self.inner.close_idle();
    }

    fn end_all(&self, error: impl Fn() -> Error) {
        let futures: Vec<_> = self.inner.in_flight.borrow_mut().drain().collect();
        for (_, future) in futures {
            let _ = future.set_error(error());
        }
    }

    /// Gives a response body's buffer back for a later body of known length
    /// to be read into (optional): a client fetching large bodies then
    /// reuses memory instead of mapping fresh pages. Small buffers are
    /// simply freed, and the client keeps at most 32 MiB.
    pub fn recycle_body(&self, body: Body) {
        self.inner.body_pool.give_back(body.into_buffer());
    }

    /// The pool behind [`recycle_body`](Self::recycle_body), for holders of
    /// responses that may outlive the client (it then frees them instead).
    pub fn body_pool(&self) -> Weak<BodyPool> {
        Rc::downgrade(&self.inner.body_pool)
    }

    /// Fetches waiting for a slot among `max_clients` (Tornado's
    /// `len(client.queue)`): not those cancelled or timed out meanwhile.
    pub fn queued(&self) -> usize {
        let waiting = self.inner.waiting.borrow();
        waiting.iter().filter(|turn| !turn.done()).count()
    }

    /// Fetches holding a slot now: connecting, exchanging or following
    /// redirects (at most `max_clients`; Tornado's `len(client.active)`).
    pub fn active(&self) -> usize {
        self.inner.active.get()
    }

    /// Connections this client has opened so far (for tests, benchmarks
    /// and monitoring).
    pub fn connections_opened(&self) -> u64 {
        self.inner.connects.get()
    }

    /// Open HTTP/2 connections in the pool (each may serve many fetches).
    pub fn http2_connections(&self) -> usize {
        let mut shared = self.inner.shared.borrow_mut();
        shared.sweep(monotonic_ns(), self.inner.idle_timeout_ns());
        shared.open_connections()
    }

    /// Idle pooled HTTP/1.1 connections (for tests and monitoring).
    pub fn idle_connections(&self) -> usize {
        let idle = self.inner.idle.borrow();
        let open = idle.values().flatten().filter(|c| !c.stream.closed());
        open.count()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.closed.set(true);
        for (_, future) in self.in_flight.get_mut().drain() {
            let _ = future.set_error(fetch_error(
                FetchErrorKind::Closed,
                "the HTTP client was closed",
            ));
        }
        self.close_idle();
    }
}

impl Inner {
    /// The parsed URL, shared with the one-entry cache: a client that
    /// fetches the same URL again parses and copies nothing.
    fn target_for(&self, url: &str) -> Result<Rc<Target>> {
        if let Some((last_url, target)) = &*self.last_target.borrow() {
            if last_url == url {
                return Ok(target.clone());
            }
        }
        let target = Rc::new(parse_target(url)?);
        *self.last_target.borrow_mut() = Some((url.to_string(), target.clone()));
        Ok(target)
    }

    fn close_idle(&self) {
        if let Some(sweep) = self.idle_sweep.take() {
            let _ = self.lp.remove_timeout(sweep);
        }
        // Each ends once its streams are done (the fetches end too).
        drop(self.shared.borrow_mut().clear());
        let pools: Vec<_> = self.idle.borrow_mut().drain().collect();
        for (_, connections) in pools {
            for idle in connections {
                idle.stream.close(None);
            }
        }
    }

    fn is_expired(&self, connection: &IdleConnection, now_ns: u64) -> bool {
        now_ns.saturating_sub(connection.since_ns) >= self.idle_timeout_ns()
    }

    fn max_idle_per_host(&self) -> usize {
        let options = &self.options;
        options.max_idle_per_host.unwrap_or(options.max_clients)
    }

    fn idle_timeout_ns(&self) -> u64 {
        self.options.idle_timeout.as_nanos().min(u64::MAX as u128) as u64
    }

    fn limits(&self) -> Limits {
        Limits {
            // A head is buffered whole: the buffer's bound is the head's too.
            max_header_size: self
                .options
                .max_header_size
                .min(self.options.max_buffer_size),
            max_body_size: self.options.max_body_size,
        }
    }
}

/// The whole fetch: queue slot, then hops until a final response.
/// `request` is shared (an `Rc`): it is large and lives in the fetch's state throughout.
async fn run_fetch(client: Weak<Inner>, request: Rc<HTTPRequest>) -> HTTPResponse {
    let mut clock = Clock::new();
    // For an error response's URL (a reference, not a copy of the URL).
    let original = Rc::clone(&request);
    let outcome = fetch_in_slot(&client, request, &mut clock).await;
    let mut response = match outcome {
        Ok(response) => response,
        Err((error, last)) => match last {
            Some(mut response) => {
                response.error = Some(error);
                response
            }
            None => HTTPResponse::error_response(&original.url, error),
        },
    };
    clock.info.total = clock.since_start();
    response.start_time = clock.start_wall;
    response.request_time = clock.info.total - clock.info.queue;
    response.time_info = clock.info;
    response
}

type FetchFailure = (Error, Option<HTTPResponse>);

async fn fetch_in_slot(
    client: &Weak<Inner>,
    mut request: Rc<HTTPRequest>,
    clock: &mut Clock,
) -> std::result::Result<HTTPResponse, FetchFailure> {
    validate_request(&request).map_err(|e| (e, None))?;
    check_proxy(&request).map_err(|e| (e, None))?;
    let inner = client.upgrade().ok_or_else(|| (closed_client(), None))?;
    let mut target = inner.target_for(&request.url).map_err(|e| (e, None))?;
    let _slot = match try_acquire_slot(&inner) {
        Some(slot) => slot,
        None => Box::pin(wait_for_slot(&inner, &request))
            .await
            .map_err(|e| (e, None))?,
    };
    drop(inner);
    clock.dequeued = Some(Instant::now());
    clock.info.queue = clock.since_start();
    loop {
        let inner = client.upgrade().ok_or_else(|| (closed_client(), None))?;
        // The jar's cookies go on this hop only: the request kept for the
        // next hop (a redirect's) gets that hop's own.
        let sent = with_cookies(inner.cookies.as_deref(), &request);
        // Boxed: a hop's state is only live during the hop.
        let response = Box::pin(fetch_hop(&inner, &sent, &target, clock))
            .await
            .map_err(|e| (e, None))?;
        drop(sent);
        if let Some(jar) = &inner.cookies {
            keep_cookies(jar, &response);
        }
        drop(inner);
        if let Some(answered) = digest_retry(&request, &target, response.code, &response.headers) {
            request = Rc::new(answered);
            continue;
        }
        if !request.follow_redirects || !is_redirect(response.code) {
            return Ok(response);
        }
        let next = redirect_request(
            &request,
            &response.effective_url,
            response.code,
            &response.headers,
        )
        .map_err(|e| (e, None))?;
        let Some(next) = next else {
            return Ok(response);
        };
        if request.max_redirects == 0 {
            let error = fetch_error(
                FetchErrorKind::TooManyRedirects,
                format!(
                    "more than the allowed redirects; last status {}",
                    response.code
                ),
            );
            return Err((error, Some(response)));
        }
        target = Rc::new(parse_target(&next.url).map_err(|e| (e, None))?);
        request = Rc::new(next);
    }
}

/// A proxy setting that cannot be used fails the fetch before anything
/// is sent: a bad URL, or SOCKS credentials or a name too long for it.
fn check_proxy(request: &HTTPRequest) -> Result<()> {
    let Some(ProxySpec {
        kind: ProxyKind::Socks(version),
        username,
        password,
        ..
    }) = proxy::of(request)?
    else {
        return Ok(());
    };
    let target = parse_target(&request.url)?;
    let destination = match target.host.parse::<IpAddr>() {
        Ok(ip) => Destination::Addr(ip, target.port),
        Err(_) => Destination::Name(&target.host, target.port),
    };
    let credentials = Credentials {
        username: username.as_deref(),
        password: password.as_deref(),
    };
    socks::check(version, destination, credentials)
}

/// `request` with the jar's cookies for its URL added to its `Cookie`
/// header (after the caller's own), or `request` itself when none match.
fn with_cookies(jar: Option<&CookieJar>, request: &Rc<HTTPRequest>) -> Rc<HTTPRequest> {
    let Some(cookies) = jar.and_then(|jar| jar.header_for(&request.url)) else {
        return Rc::clone(request);
    };
    let mut sent = HTTPRequest::clone(request);
    let value = match sent.headers.get("Cookie") {
        Some(own) => format!("{own}; {cookies}"),
        None => cookies,
    };
    sent.headers.set("Cookie", value);
    Rc::new(sent)
}

/// Stores a response's `Set-Cookie` lines; the refused ones are logged.
fn keep_cookies(jar: &CookieJar, response: &HTTPResponse) {
    for refused in jar.store_from(&response.effective_url, &response.headers) {
        crate::log::warn(&format!(
            "cookie from {} refused ({}): {}",
            response.effective_url, refused.reason, refused.line
        ));
    }
}

fn is_redirect(code: u16) -> bool {
    matches!(code, 301 | 302 | 303 | 307 | 308)
}

fn closed_client() -> Error {
    fetch_error(FetchErrorKind::Closed, "the HTTP client was closed")
}

/// Runs `work` within `timeout` (see `limit_of`); running out of time is a
/// `timeout` fetch error that says which (`what`).
async fn within_saying<T>(
    lp: &LoopRef,
    work: impl std::future::Future<Output = Result<T>>,
    timeout: Option<Duration>,
    what: &str,
) -> Result<T> {
    within(lp, timeout, work)
        .await
        .map_err(|e| timeout_as(e, what))
}

/// One request/response on one connection, within request_timeout.
async fn fetch_hop(
    inner: &Rc<Inner>,
    request: &HTTPRequest,
    target: &Rc<Target>,
    clock: &mut Clock,
) -> Result<HTTPResponse> {
    // Boxed before race_timeout takes it: a future moved into another is
    // otherwise held twice in the caller's state.
    let key = PoolKey::new(request, target, version_of(inner, request));
    let exchange_and_retry = Box::pin(async {
        let (connection, pooled) = checkout_or_connect(inner, &key, request, clock).await?;
        match connection {
            Connection::Http1(stream) => {
                match exchange_on(inner, &stream, request, target, clock).await {
                    Ok(done) => Ok((done, Some(stream))),
                    Err(failure) if pooled && failure.untouched && is_idempotent(request) => {
                        // The server closed the idle connection: retry once, fresh.
                        stream.close(None);
                        exchange_fresh(inner, &key, request, target, clock).await
                    }
                    Err(failure) => {
                        stream.close(None);
                        Err(failure.error)
                    }
                }
            }
            Connection::Http2(h2) => match exchange_h2(inner, &h2, request, target, clock).await {
                Ok(done) => Ok((done, None)),
                // Refused, or left out by a GOAWAY: once more, on another
                // connection (a new one when this one is going away; fetches
                // retried together share it).
                Err(failure) if failure.retry => {
                    let (connection, _) = checkout_or_connect(inner, &key, request, clock).await?;
                    exchange_once(inner, connection, request, target, clock).await
                }
                Err(failure) => Err(failure.error),
            },
        }
    });
    let (done, stream) = within_saying(
        &inner.lp,
        exchange_and_retry,
        request.request_timeout,
        "Timeout during request",
    )
    .await?;
    if let Some(first_byte) = done.first_byte {
        clock.info.starttransfer = first_byte.duration_since(clock.start).as_secs_f64();
    }
    let response = HTTPResponse::from_head(done.head, done.body, request.url.clone());
    // An HTTP/2 connection stays in the shared pool; an HTTP/1.1 one is
    // handed over after a 101 to an upgrade that asked for it, or goes back
    // to the idle pool when it can carry another request.
    if let Some(stream) = stream {
        if let (true, Some(upgrade)) = (done.upgraded, &request.upgrade) {
            upgrade.hand_over(stream);
        } else if done.reusable {
            check_in(inner, key, stream);
        } else {
            stream.close(None);
        }
    }
    Ok(response)
}

/// The exchange again on a connection of its own (no further retry).
async fn exchange_fresh(
    inner: &Rc<Inner>,
    key: &PoolKey,
    request: &HTTPRequest,
    target: &Rc<Target>,
    clock: &mut Clock,
) -> Result<(Exchanged, Option<IOStream>)> {
    let connection = connect_connection(inner, key, request, clock).await?;
    exchange_once(inner, connection, request, target, clock).await
}

/// One exchange on `connection`, with no retry.
async fn exchange_once(
    inner: &Rc<Inner>,
    connection: Connection,
    request: &HTTPRequest,
    target: &Rc<Target>,
    clock: &mut Clock,
) -> Result<(Exchanged, Option<IOStream>)> {
    match connection {
        Connection::Http1(stream) => {
            let done = exchange_on(inner, &stream, request, target, clock)
                .await
                .map_err(|f| f.error);
            match done {
                Ok(done) => Ok((done, Some(stream))),
                Err(error) => {
                    stream.close(None);
                    Err(error)
                }
            }
        }
        Connection::Http2(h2) => {
            let done = exchange_h2(inner, &h2, request, target, clock)
                .await
                .map_err(|f| f.error)?;
            Ok((done, None))
        }
    }
}

async fn exchange_h2(
    inner: &Rc<Inner>,
    connection: &H2Connection,
    request: &HTTPRequest,
    target: &Target,
    clock: &mut Clock,
) -> std::result::Result<Exchanged, http2::H2Failure> {
    clock.info.pretransfer = clock.since_start();
    let will_follow = |head: &ResponseHead| will_follow(request, head);
    http2::exchange(
        connection,
        request,
        target,
        inner.limits(),
        &will_follow,
        &inner.body_pool,
    )
    .await
}

/// Whether the client will answer this response with another send (a
/// redirect it follows, a digest challenge): the callbacks see none of it.
fn will_follow(request: &HTTPRequest, head: &ResponseHead) -> bool {
    (request.follow_redirects
        && request.max_redirects > 0
        && is_redirect(head.code)
        && can_follow(request, head.code)
        && head.headers.contains("Location"))
        || answers_digest_challenge(request, head.code, &head.headers)
}

async fn exchange_on(
    inner: &Rc<Inner>,
    stream: &IOStream,
    request: &HTTPRequest,
    target: &Target,
    clock: &mut Clock,
) -> std::result::Result<Exchanged, ExchangeFailure> {
    clock.info.pretransfer = clock.since_start();
    let via_proxy = proxy::forwards_plain_http(request, target);
    // Responses answered by another send: the callbacks see none of them.
    let will_follow = |head: &ResponseHead| will_follow(request, head);
    exchange(
        stream,
        request,
        target,
        via_proxy,
        inner.limits(),
        &will_follow,
        &inner.body_pool,
    )
    .await
}

fn is_idempotent(request: &HTTPRequest) -> bool {
    request.body_producer.is_none()
        && matches!(
            request.method.as_str(),
            "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "TRACE"
        )
}

fn timeout_as(error: Error, what: &str) -> Error {
    if error.code() == Code::TIMEOUT && super::kind_of(&error).is_none() {
        fetch_error(FetchErrorKind::Timeout, what)
    } else {
        error
    }
}

// ---- the queue ----

/// A slot among `max_clients`; handed to the next waiter when dropped.
struct Slot {
    inner: Weak<Inner>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            release_slot(&inner);
        }
    }
}

fn release_slot(inner: &Inner) {
    loop {
        let next = inner.waiting.borrow_mut().pop_front();
        match next {
            // The slot passes on without the count changing; a waiter that
            // already went away (cancelled, timed out) is skipped.
            Some(waiter) => {
                if waiter.set_result(()).is_ok() {
                    return;
                }
            }
            None => {
                inner.active.set(inner.active.get() - 1);
                return;
            }
        }
    }
}

/// A free slot now, if there is one.
fn try_acquire_slot(inner: &Rc<Inner>) -> Option<Slot> {
    if inner.active.get() >= inner.options.max_clients {
        return None;
    }
    inner.active.set(inner.active.get() + 1);
    Some(Slot {
        inner: Rc::downgrade(inner),
    })
}

/// Waits in the FIFO queue for a slot, at most min(connect, request) timeout.
/// Dropped while waiting (the fetch cancelled), it leaves the queue; a turn
/// that came meanwhile passes on to the next waiter.
async fn wait_for_slot(inner: &Rc<Inner>, request: &HTTPRequest) -> Result<Slot> {
    let turn = Future::new(&inner.lp);
    inner.waiting.borrow_mut().push_back(turn.clone());
    let wait = Waiter {
        turn: Some(turn.clone()),
        inner: Rc::downgrade(inner),
    };
    // Tornado: a queued fetch times out after min(connect, request) timeout.
    let limit = match (
        limit_of(request.connect_timeout),
        limit_of(request.request_timeout),
    ) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    within_saying(&inner.lp, turn.value(), limit, "Timeout in request queue").await?;
    Ok(wait.into_slot())
}

/// A fetch's place in the queue until its turn comes.
struct Waiter {
    /// None once the turn became a slot.
    turn: Option<Future<()>>,
    inner: Weak<Inner>,
}

impl Waiter {
    /// The turn came: the slot is the fetch's now, to release when done.
    fn into_slot(mut self) -> Slot {
        self.turn = None;
        Slot {
            inner: std::mem::take(&mut self.inner),
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let Some(turn) = self.turn.take() else {
            return;
        };
        let granted_meanwhile = turn.cancel().is_err();
        if granted_meanwhile {
            if let Some(inner) = self.inner.upgrade() {
                release_slot(&inner);
            }
        }
    }
}

// ---- connections ----

/// What makes one pooled connection differ from another: the origin and
/// the settings the connection was made with. `connect` reads its settings
/// from the key and from nothing else, so a setting that shapes a
/// connection cannot be missing from the key. Building one clones an `Rc`
/// and settings that are usually `None`: no allocation per fetch.
#[derive(Clone)]
struct PoolKey {
    target: Rc<Target>,
    settings: ConnectionSettings,
    /// The HTTP versions the fetch may use (its own choice, else the
    /// client's): it decides the ALPN offered, and whether a plain
    /// connection speaks HTTP/2 (prior knowledge).
    version: HttpVersion,
}

/// Everything `connect` uses to make a connection, taken from a request.
#[derive(Clone, PartialEq, Eq, Hash)]
struct ConnectionSettings {
    allow_ipv6: bool,
    network_interface: Option<IpAddr>,
    proxy: Option<ProxySettings>,
    /// None for plain http: a connection without TLS is the same whatever
    /// the TLS settings (and the key stays cheap to hash and compare).
    tls: Option<TlsSettings>,
    /// Connections to a Unix socket are kept by its path (and origin).
    unix_socket: Option<PathBuf>,
}

/// The HTTP proxy a connection goes through (for https, the tunnel's
/// credentials are part of the connection).
#[derive(Clone, PartialEq, Eq, Hash)]
struct ProxySettings {
    /// HTTP (CONNECT for https) or SOCKS (a tunnel for every URL).
    kind: ProxyKind,
    host: String,
    port: u16,
    username: Option<String>,
    password: Option<String>,
    /// For an https:// proxy, how its certificate is checked (None for
    /// other proxies, whatever the request's proxy TLS options say).
    tls: Option<ProxyTlsSettings>,
}

/// How the TLS connection to an https:// proxy is checked (curl's
/// `--proxy-insecure` and `--proxy-cacert`).
#[derive(Clone, PartialEq, Eq, Hash)]
struct ProxyTlsSettings {
    validate_cert: bool,
    ca_certs: Option<PathBuf>,
}

/// A request's TLS settings, as it holds them (`Arc`s: cloned, not copied).
#[derive(Clone, PartialEq, Eq, Hash)]
struct TlsSettings {
    validate_cert: bool,
    ca_certs: Option<PathBuf>,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
    ca_pem: Option<Arc<[u8]>>,
    client_cert_pem: Option<CertKeyPem>,
    min_tls_version: Option<TlsVersion>,
    alpn_protocols: Option<Arc<[Vec<u8>]>>,
    tls_server_name: Option<Arc<str>>,
    /// The ALPN offered unless `alpn_protocols` says: by the version choice.
    default_alpn: HttpVersion,
}

impl ConnectionSettings {
    fn of(request: &HTTPRequest, target: &Target, version: HttpVersion) -> ConnectionSettings {
        ConnectionSettings {
            allow_ipv6: request.allow_ipv6,
            network_interface: request.network_interface,
            // A bad proxy setting never gets here: fetch_in_slot refuses it.
            proxy: proxy::of(request).ok().flatten().map(|spec| ProxySettings {
                kind: spec.kind,
                host: spec.host.into_owned(),
                port: spec.port,
                username: spec.username.map(|u| u.into_owned()),
                password: spec.password.map(|p| p.into_owned()),
                tls: (spec.kind == ProxyKind::Https).then(|| ProxyTlsSettings {
                    validate_cert: request.proxy_validate_cert,
                    ca_certs: request.proxy_ca_certs.clone(),
                }),
            }),
            tls: (target.scheme == Scheme::Https).then(|| TlsSettings::of(request, version)),
            unix_socket: request.unix_socket.clone(),
        }
    }
}

impl TlsSettings {
    fn of(request: &HTTPRequest, version: HttpVersion) -> TlsSettings {
        TlsSettings {
            validate_cert: request.validate_cert,
            ca_certs: request.ca_certs.clone(),
            client_cert: request.client_cert.clone(),
            client_key: request.client_key.clone(),
            ca_pem: request.ca_pem.clone(),
            client_cert_pem: request.client_cert_pem.clone(),
            min_tls_version: request.min_tls_version,
            alpn_protocols: request.alpn_protocols.clone(),
            tls_server_name: request.tls_server_name.clone(),
            default_alpn: version,
        }
    }

    /// The options the handshake is made with (built only to connect).
    fn client_options(&self) -> TlsClientOptions {
        TlsClientOptions {
            validate_cert: self.validate_cert,
            ca_file: self.ca_certs.clone(),
            client_cert: match (&self.client_cert, &self.client_key) {
                (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
                (Some(cert), None) => Some((cert.clone(), cert.clone())),
                _ => None,
            },
            alpn: match &self.alpn_protocols {
                Some(protocols) => protocols.to_vec(),
                None => self.default_alpn.alpn(),
            },
            ca_pem: self.ca_pem.clone(),
            client_cert_pem: self.client_cert_pem.clone(),
            min_version: self.min_tls_version,
        }
    }
}

impl PoolKey {
    fn new(request: &HTTPRequest, target: &Rc<Target>, version: HttpVersion) -> PoolKey {
        PoolKey {
            target: target.clone(),
            settings: ConnectionSettings::of(request, target, version),
            version,
        }
    }
}

/// Two URLs of one origin share connections: only the origin of the
/// target counts, not its path.
impl PartialEq for PoolKey {
    fn eq(&self, other: &PoolKey) -> bool {
        self.target.origin() == other.target.origin()
            && self.settings == other.settings
            && self.version == other.version
    }
}

impl Eq for PoolKey {}

impl Hash for PoolKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.target.origin().hash(state);
        self.settings.hash(state);
        self.version.hash(state);
    }
}

/// The fetch's version choice: its own, else the client's.
fn version_of(inner: &Inner, request: &HTTPRequest) -> HttpVersion {
    request.http_version.unwrap_or(inner.options.http_version)
}

/// Whether a connection for this key may turn out HTTP/2: by ALPN over
/// TLS (also inside a proxy's tunnel), by prior knowledge over plain TCP
/// (not through a plain-HTTP proxy, which forwards HTTP/1.1).
fn may_use_h2(key: &PoolKey) -> bool {
    match key.target.scheme {
        Scheme::Https => key.version != HttpVersion::Http1Only,
        Scheme::Http => key.version.h2c() && key.settings.proxy.is_none(),
    }
}

/// A connection for the fetch: an HTTP/2 one with a stream to spare, an
/// idle HTTP/1.1 one, or a new one. While a connection that may be HTTP/2
/// is being made to the origin, the fetch waits for it first.
async fn checkout_or_connect(
    inner: &Rc<Inner>,
    key: &PoolKey,
    request: &HTTPRequest,
    clock: &mut Clock,
) -> Result<(Connection, bool)> {
    let version = key.version;
    let may_h2 = may_use_h2(key);
    loop {
        let picked = if may_h2 {
            inner.shared.borrow_mut().pick(key)
        } else {
            None
        };
        if let (Some(h2), Some(after)) = (&picked, inner.options.http2_ping_after_idle) {
            // Idle a while: it answers a PING first, or is dropped.
            if h2.needs_ping(after) && !h2.answers_ping(inner.options.http2_ping_timeout).await {
                continue;
            }
        }
        let reused = picked.map(Connection::Http2);
        let reused = match reused {
            Some(connection) => Some(connection),
            None if version == HttpVersion::Http2PriorKnowledge => None,
            None => check_out(inner, key).map(Connection::Http1),
        };
        if let Some(connection) = reused {
            // Nothing to look up, connect or handshake: those stages end where
            // the wait for a slot did (as curl reports a reused connection).
            let at = clock.info.queue;
            clock.info.namelookup = at;
            clock.info.connect = at;
            if key.target.scheme == Scheme::Https {
                clock.info.appconnect = at;
            }
            return Ok((connection, true));
        }
        let connecting = if may_h2 {
            inner.shared.borrow().connecting(key)
        } else {
            None
        };
        match connecting {
            Some(connect) => connect.wait().await,
            None => break,
        }
    }
    Ok((connect_connection(inner, key, request, clock).await?, false))
}

/// A new connection, HTTP/2 when ALPN (or prior knowledge) says so; an
/// HTTP/2 one joins the shared pool at once, for the fetches to come.
async fn connect_connection(
    inner: &Rc<Inner>,
    key: &PoolKey,
    request: &HTTPRequest,
    clock: &mut Clock,
) -> Result<Connection> {
    let version = key.version;
    let may_h2 = may_use_h2(key);
    // Announced while it is made: racing fetches wait for it.
    let _turn = may_h2.then(|| {
        let mut shared = inner.shared.borrow_mut();
        shared.begin_connect(&inner.lp, key.clone())
    });
    let stream = connect(inner, key, request.connect_timeout, clock).await?;
    inner.connects.set(inner.connects.get() + 1);
    let h2 = match key.target.scheme {
        Scheme::Https => stream.alpn_protocol().as_deref() == Some(b"h2".as_slice()),
        Scheme::Http => may_h2,
    };
    if !h2 {
        if version == HttpVersion::Http2PriorKnowledge {
            stream.close(None);
            return Err(fetch_error(
                FetchErrorKind::Protocol,
                "the server did not pick HTTP/2 (ALPN h2), which the request requires",
            ));
        }
        if may_h2 {
            inner.shared.borrow_mut().note_http1(key.clone());
        }
        return Ok(Connection::Http1(stream));
    }
    let connection = H2Connection::handshake(stream, inner.limits()).await?;
    inner
        .shared
        .borrow_mut()
        .add(key.clone(), connection.clone());
    // The sweep also ends HTTP/2 connections left idle too long.
    if inner.idle_sweep.get().is_none() {
        arm_idle_sweep(inner, monotonic_ns());
    }
    Ok(Connection::Http2(connection))
}

fn check_out(inner: &Inner, key: &PoolKey) -> Option<IOStream> {
    let mut idle = inner.idle.borrow_mut();
    let connections = idle.get_mut(key)?;
    let now_ns = monotonic_ns();
    // The most recently used first: the likeliest to be still open.
    while let Some(connection) = connections.pop() {
        if inner.is_expired(&connection, now_ns)
            || connection.stream.closed()
            || !connection.stream.is_quiet()
        {
            connection.stream.close(None);
            continue;
        }
        return Some(connection.stream);
    }
    None
}

fn check_in(inner: &Rc<Inner>, key: PoolKey, stream: IOStream) {
    if inner.closed.get() {
        stream.close(None);
        return;
    }
    let mut idle = inner.idle.borrow_mut();
    // The key is stored once per origin, not once per check-in.
    let connections = match idle.get_mut(&key) {
        Some(connections) => connections,
        None => idle.entry(key).or_default(),
    };
    // Connections the server closed while idle are dropped here (and
    // skipped by check_out).
    connections.retain(|c| !c.stream.closed());
    if connections.len() >= inner.max_idle_per_host() {
        stream.close(None);
        return;
    }
    let since_ns = monotonic_ns();
    connections.push(IdleConnection { stream, since_ns });
    drop(idle);
    if inner.idle_sweep.get().is_none() {
        arm_idle_sweep(inner, since_ns);
    }
}

/// Schedules the sweep for when the connection idle since `oldest_ns`
/// expires.
fn arm_idle_sweep(inner: &Rc<Inner>, oldest_ns: u64) {
    let deadline_ns = oldest_ns.saturating_add(inner.idle_timeout_ns());
    let delay = Duration::from_nanos(deadline_ns.saturating_sub(monotonic_ns()));
    let client = Rc::downgrade(inner);
    let sweep = inner.lp.call_later(delay, move || {
        if let Some(inner) = client.upgrade() {
            sweep_idle(&inner);
        }
    });
    // Without a timer (a closed loop) idle connections still expire at
    // check-out.
    inner.idle_sweep.set(sweep.ok());
}

/// Closes the idle connections that expired, and re-arms for the oldest
/// of the rest.
fn sweep_idle(inner: &Rc<Inner>) {
    inner.idle_sweep.set(None);
    let now_ns = monotonic_ns();
    let mut expired = Vec::new();
    let mut oldest_ns = None::<u64>;
    inner.idle.borrow_mut().retain(|_, connections| {
        connections.retain_mut(|c| {
            let keep = !inner.is_expired(c, now_ns) && !c.stream.closed();
            if keep {
                oldest_ns = Some(oldest_ns.map_or(c.since_ns, |o| o.min(c.since_ns)));
            } else {
                expired.push(c.stream.clone());
            }
            keep
        });
        !connections.is_empty()
    });
    // Closed with the pool released: closing runs callbacks.
    for stream in expired {
        stream.close(None);
    }
    // HTTP/2 connections idle as long end too; while any stays open, the
    // sweep comes back (at the latest one idle timeout from now).
    let h2_open = inner
        .shared
        .borrow_mut()
        .sweep(now_ns, inner.idle_timeout_ns());
    let oldest_ns = match oldest_ns {
        None if h2_open > 0 => Some(now_ns),
        oldest => oldest,
    };
    if let Some(oldest_ns) = oldest_ns {
        arm_idle_sweep(inner, oldest_ns);
    }
}

/// A new connection for `target`, within connect_timeout: resolve, TCP
/// (Happy Eyeballs), proxy tunnel, TLS.
/// A new connection for `key`'s origin, made with `key`'s settings only.
async fn connect(
    inner: &Rc<Inner>,
    key: &PoolKey,
    connect_timeout: Option<Duration>,
    clock: &mut Clock,
) -> Result<IOStream> {
    // Boxed: the connect machinery (resolver, Happy Eyeballs, TLS) is big and
    // only needed for new connections; inline it would sit in every fetch.
    let phase = Cell::new(ConnectPhase::Resolving);
    let work = Box::pin(connect_unlimited(inner, key, clock, &phase));
    // The message says which step ran out of time, as Tornado's do.
    let stream = within(&inner.lp, connect_timeout, work)
        .await
        .map_err(|e| timeout_as(e, &phase.get().timeout_message(key)))?;
    stream.set_max_buffer_size(inner.options.max_buffer_size)?;
    Ok(stream)
}

/// Where a new connection is, for the message of a connect timeout.
#[derive(Clone, Copy)]
enum ConnectPhase {
    Resolving,
    Connecting,
    /// The SOCKS handshake with the proxy.
    Socks,
    /// The TLS handshake with an https:// proxy.
    ProxyHandshaking,
    Handshaking,
}

impl ConnectPhase {
    fn timeout_message(self, key: &PoolKey) -> String {
        let target = &key.target;
        match self {
            ConnectPhase::Resolving => {
                let host = key
                    .settings
                    .proxy
                    .as_ref()
                    .map_or(&target.host, |p| &p.host);
                format!("Timeout while resolving {host}")
            }
            ConnectPhase::Connecting => "Timeout while connecting".into(),
            ConnectPhase::Socks => format!(
                "Timeout during the SOCKS handshake (to {}:{})",
                target.host, target.port
            ),
            ConnectPhase::ProxyHandshaking => {
                let (host, port) = key
                    .settings
                    .proxy
                    .as_ref()
                    .map_or((&target.host, target.port), |p| (&p.host, p.port));
                format!("Timeout during TLS handshake with proxy {host}:{port}")
            }
            ConnectPhase::Handshaking => format!(
                "Timeout during TLS handshake with {}:{}",
                target.host, target.port
            ),
        }
    }
}

async fn connect_unlimited(
    inner: &Rc<Inner>,
    key: &PoolKey,
    clock: &mut Clock,
    phase: &Cell<ConnectPhase>,
) -> Result<IOStream> {
    let (target, settings) = (&*key.target, &key.settings);
    let family = if settings.allow_ipv6 {
        AddressFamily::Any
    } else {
        AddressFamily::V4
    };
    let stream = if let Some(path) = &settings.unix_socket {
        // Nothing to resolve; a Unix socket connects at once or fails.
        clock.info.namelookup = clock.since_start();
        phase.set(ConnectPhase::Connecting);
        let stream = super::unix::connect_unix(&inner.lp, path)?;
        clock.info.connect = clock.since_start();
        stream
    } else {
        let (host, port) = match &settings.proxy {
            Some(proxy) => (proxy.host.as_str(), proxy.port),
            None => (target.host.as_str(), target.port),
        };
        let addrs = inner
            .resolver
            .resolve(host, port, family)
            .await
            .map_err(|e| fetch_error(FetchErrorKind::Resolve, e.message()))?;
        clock.info.namelookup = clock.since_start();
        phase.set(ConnectPhase::Connecting);
        let options = ConnectOptions {
            source_ip: settings.network_interface,
            ..Default::default()
        };
        let (stream, _addr) = connect_resolved(&inner.lp, addrs, &options)
            .await
            .map_err(|e| classify(e, FetchErrorKind::Connect))?;
        clock.info.connect = clock.since_start();
        // TCP_NODELAY from the start, as curl: the proxy's CONNECT, the TLS
        // handshake's last flight and the request then go out without waiting
        // for the peer's delayed ACK (a 40 ms stall per new TLS connection).
        let _ = stream.set_nodelay(true);
        stream
    };
    if let Some(
        proxy @ ProxySettings {
            kind: ProxyKind::Socks(_),
            ..
        },
    ) = &settings.proxy
    {
        socks_tunnel(inner, &stream, proxy, target, family, phase).await?;
    }
    let proxy_tls = settings.proxy.as_ref().filter(|p| p.tls.is_some());
    if let Some(proxy) = proxy_tls {
        phase.set(ConnectPhase::ProxyHandshaking);
        proxy_handshake(&stream, proxy).await?;
    }
    if let Some(tls) = &settings.tls {
        if let Some(proxy) = settings.proxy.as_ref().filter(|p| p.kind.is_http()) {
            open_tunnel(inner, &stream, proxy, target).await?;
        }
        let config =
            client_config(&tls.client_options()).map_err(|e| classify(e, FetchErrorKind::Tls))?;
        let name = server_name(tls.tls_server_name.as_deref().unwrap_or(&target.host))?;
        phase.set(ConnectPhase::Handshaking);
        if proxy_tls.is_some() {
            // TLS in TLS: the target's session inside the proxy's.
            stream.start_tls_client_in_tunnel(config, name).await
        } else {
            stream.start_tls_client(config, name).await
        }
        .map_err(|e| classify(e, FetchErrorKind::Tls))?;
        if tls.alpn_protocols.is_some() {
            check_alpn(&stream)?;
        }
        clock.info.appconnect = clock.since_start();
    }
    Ok(stream)
}

/// TLS to an https:// proxy, checked as its `ProxyTlsSettings` say; the
/// proxy is offered HTTP/1.1 only (it gets absolute-form requests and
/// `CONNECT`, as curl sends them). Errors name the proxy.
async fn proxy_handshake(stream: &IOStream, proxy: &ProxySettings) -> Result<()> {
    let Some(tls) = &proxy.tls else {
        return Ok(());
    };
    let options = TlsClientOptions {
        validate_cert: tls.validate_cert,
        ca_file: tls.ca_certs.clone(),
        alpn: vec![b"http/1.1".to_vec()],
        ..TlsClientOptions::default()
    };
    let failed = |e: crate::error::Error| {
        let e = classify(e, FetchErrorKind::Tls);
        fetch_error(
            super::kind_of(&e).unwrap_or(FetchErrorKind::Tls),
            format!("https proxy {}:{}: {}", proxy.host, proxy.port, e.message()),
        )
    };
    let config = client_config(&options).map_err(failed)?;
    let name = server_name(&proxy.host)?;
    stream.start_tls_client(config, name).await.map_err(failed)
}

/// The server may pick any protocol offered; this client speaks HTTP/1.1
/// and HTTP/2 (and assumes HTTP/1.1 when the server picks none, as curl).
fn check_alpn(stream: &IOStream) -> Result<()> {
    match stream.alpn_protocol() {
        Some(chosen) if chosen != b"http/1.1" && chosen != b"h2" => Err(fetch_error(
            FetchErrorKind::Protocol,
            format!(
                "the server chose ALPN protocol {:?}; this client speaks HTTP/1.1 and HTTP/2",
                String::from_utf8_lossy(&chosen)
            ),
        )),
        _ => Ok(()),
    }
}

/// A SOCKS tunnel to the target through the proxy `stream` is connected
/// to. For socks4 and socks5 the target's name is resolved here (the
/// client's resolver, mappings and cache), for socks4a and socks5h by the
/// proxy.
async fn socks_tunnel(
    inner: &Inner,
    stream: &IOStream,
    spec: &ProxySettings,
    target: &Target,
    family: AddressFamily,
    phase: &Cell<ConnectPhase>,
) -> Result<()> {
    let ProxyKind::Socks(version) = spec.kind else {
        unreachable!("called for SOCKS proxies");
    };
    let literal = target.host.parse::<IpAddr>().ok();
    let destination = match literal {
        Some(ip) => Destination::Addr(ip, target.port),
        None if version.remote_resolution() => Destination::Name(&target.host, target.port),
        None => {
            // SOCKS4 reaches IPv4 only.
            let family = match version {
                socks::SocksVersion::V4 => AddressFamily::V4,
                _ => family,
            };
            let addrs = inner
                .resolver
                .resolve(&target.host, target.port, family)
                .await
                .map_err(|e| fetch_error(FetchErrorKind::Resolve, e.message()))?;
            Destination::Addr(addrs[0].ip(), target.port)
        }
    };
    let credentials = Credentials {
        username: spec.username.as_deref(),
        password: spec.password.as_deref(),
    };
    socks::check(version, destination, credentials)?;
    phase.set(ConnectPhase::Socks);
    socks::handshake(stream, version, destination, credentials)
        .await
        .map_err(|e| classify(e, FetchErrorKind::Connect))
        .map_err(|e| {
            fetch_error(
                super::kind_of(&e).unwrap_or(FetchErrorKind::Connect),
                format!(
                    "{} proxy {}:{}: {}",
                    version.scheme(),
                    spec.host,
                    spec.port,
                    e.message().split_once(": ").map_or(e.message(), |(_, m)| m)
                ),
            )
        })
}

/// `CONNECT host:port` through an HTTP proxy, for an https URL.
async fn open_tunnel(
    inner: &Inner,
    stream: &IOStream,
    proxy: &ProxySettings,
    target: &Target,
) -> Result<()> {
    let head = connect_tunnel_head(
        &target.host,
        target.port,
        proxy.username.as_deref(),
        proxy.password.as_deref(),
    );
    stream.write(&head)?;
    let raw = read_raw_head(stream, inner.options.max_header_size)
        .await
        .map_err(|e| classify(e, FetchErrorKind::Connect))?;
    let Some((reply, _)) = parse_response_head(&raw, inner.options.max_header_size)? else {
        return Err(fetch_error(
            FetchErrorKind::Protocol,
            "incomplete proxy reply",
        ));
    };
    if !(200..300).contains(&reply.code) {
        return Err(fetch_error(
            FetchErrorKind::Connect,
            format!(
                "the proxy refused the tunnel: {} {}",
                reply.code, reply.reason
            ),
        ));
    }
    Ok(())
}
