//! Tornado's `TCPClient`: resolve, then connect with Happy Eyeballs
//! (Tornado's `_Connector`, RFC 6555), then start TLS if asked, within a
//! timeout.

use std::cell::Cell;
use std::future::Future as _;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::error::{Code, Error, Result};
use crate::gen::{within, TimerGuard};
use crate::ioloop::LoopRef;
use crate::iostream::IOStream;
use crate::resolver::{AddressFamily, Resolver};
use crate::tls::TlsConnect;

/// How long the first address family has before the other one is tried too
/// (Tornado's `_INITIAL_CONNECT_TIMEOUT`).
const SECONDARY_DELAY: Duration = Duration::from_millis(300);

/// Options of [`connect`].
#[derive(Clone, Default)]
pub struct ConnectOptions {
    /// Limit for resolve + connect + TLS handshake (None: no limit); only
    /// [`connect`] applies it.
    pub timeout: Option<Duration>,
    /// Local address to bind before connecting.
    pub source_ip: Option<IpAddr>,
    /// Local port to bind (with `source_ip`, or the unspecified address).
    pub source_port: Option<u16>,
    /// Which address families to connect to (Tornado's `af`; `Any` by
    /// default, both tried as Happy Eyeballs).
    pub family: AddressFamily,
    /// The resolver (None: a default one).
    pub resolver: Option<Resolver>,
    /// Start TLS as a client once connected (Tornado's `ssl_options`);
    /// None: plain TCP. Only [`connect`] applies it (a caller of
    /// [`connect_resolved`] may have a proxy tunnel to open first).
    pub tls: Option<TlsConnect>,
}

impl ConnectOptions {
    fn source_for(&self, target: &SocketAddr) -> Option<SocketAddr> {
        let unspecified: IpAddr = if target.is_ipv4() {
            std::net::Ipv4Addr::UNSPECIFIED.into()
        } else {
            std::net::Ipv6Addr::UNSPECIFIED.into()
        };
        match (self.source_ip, self.source_port) {
            (None, None) => None,
            (ip, port) => Some(SocketAddr::new(
                ip.unwrap_or(unspecified),
                port.unwrap_or(0),
            )),
        }
    }
}

/// Resolves `host` and connects to one of its addresses with Happy
/// Eyeballs, then completes the TLS handshake of `options.tls` if set (the
/// timeout covers all of it, as Tornado's `TCPClient.connect`); returns the
/// stream and the address it reached.
pub async fn connect(
    lp: &LoopRef,
    host: &str,
    port: u16,
    options: &ConnectOptions,
) -> Result<(IOStream, SocketAddr)> {
    let work = async {
        let default_resolver;
        let resolver = match &options.resolver {
            Some(resolver) => resolver,
            None => {
                default_resolver = Resolver::new();
                &default_resolver
            }
        };
        let addrs = resolver.resolve(host, port, options.family).await?;
        let (stream, addr) = connect_resolved(
            lp,
            addrs,
            &ConnectOptions {
                timeout: None,
                ..options.clone()
            },
        )
        .await?;
        if let Some(tls) = &options.tls {
            stream
                .start_tls_client(tls.config.clone(), tls.server_name.clone())
                .await?;
        }
        Ok((stream, addr))
    };
    within(lp, options.timeout, work).await
}

/// Connects to one of `addrs` (in order of preference) with Happy Eyeballs:
/// the addresses of the first one's family are tried one after another;
/// the other family starts after 300 ms without a connection, or at once
/// when an attempt fails; the first connection wins and the others are
/// closed. Fails with the last attempt's error once every address failed.
pub async fn connect_resolved(
    lp: &LoopRef,
    addrs: Vec<SocketAddr>,
    options: &ConnectOptions,
) -> Result<(IOStream, SocketAddr)> {
    let Some(first) = addrs.first() else {
        return Err(Error::invalid("no address to connect to"));
    };
    let (primary, secondary): (Vec<_>, Vec<_>) =
        addrs.iter().partition(|a| a.is_ipv4() == first.is_ipv4());
    let no_secondary = secondary.is_empty();
    let failed_once = Rc::new(Cell::new(false));
    // Async fns do nothing until polled: the secondary lane starts when first polled.
    let mut primary_lane = std::pin::pin!(lane(lp, primary, options, failed_once.clone()));
    let mut secondary_lane =
        std::pin::pin!(lane(lp, secondary, options, Rc::new(Cell::new(false))));
    let mut primary_error: Option<Error> = None;
    let mut secondary_error: Option<Error> = None;
    let mut secondary_started = false;
    let delay = crate::future::Future::<()>::new(lp);
    let fire = delay.clone();
    let _timer = TimerGuard {
        lp: lp.clone(),
        id: lp.call_later(SECONDARY_DELAY, move || {
            let _ = fire.set_result(());
        })?,
    };
    let mut delay_over = std::pin::pin!(delay.wait());
    std::future::poll_fn(|cx| {
        if primary_error.is_none() {
            match primary_lane.as_mut().poll(cx) {
                Poll::Ready(Ok(won)) => return Poll::Ready(Ok(won)),
                Poll::Ready(Err(e)) => primary_error = Some(e),
                Poll::Pending => {}
            }
        }
        if !secondary_started && !no_secondary {
            secondary_started = failed_once.get()
                || primary_error.is_some()
                || delay_over.as_mut().poll(cx).is_ready();
        }
        if secondary_started && secondary_error.is_none() {
            match secondary_lane.as_mut().poll(cx) {
                Poll::Ready(Ok(won)) => return Poll::Ready(Ok(won)),
                Poll::Ready(Err(e)) => secondary_error = Some(e),
                Poll::Pending => {}
            }
        }
        let secondary_over = no_secondary || secondary_error.is_some();
        match (&primary_error, secondary_over) {
            // Both lanes are exhausted: report the error of the last attempt.
            (Some(e), true) => {
                Poll::Ready(Err(secondary_error.take().unwrap_or_else(|| e.clone())))
            }
            _ => Poll::Pending,
        }
    })
    .await
}

/// Tries `addrs` one after another; sets `failed_once` at the first failure.
async fn lane(
    lp: &LoopRef,
    addrs: Vec<SocketAddr>,
    options: &ConnectOptions,
    failed_once: Rc<Cell<bool>>,
) -> Result<(IOStream, SocketAddr)> {
    let mut last_error = Error::invalid("no address to connect to");
    for addr in addrs {
        match connect_addr(lp, addr, None, options.source_for(&addr)).await {
            Ok(stream) => return Ok((stream, addr)),
            Err(e) => {
                failed_once.set(true);
                last_error = e;
            }
        }
    }
    Err(last_error)
}

/// Connects to `addr`; fails with `TIMEOUT` after `timeout` (None: no limit),
/// or with the connect error. `source` binds the local end first.
pub async fn connect_addr(
    lp: &LoopRef,
    addr: SocketAddr,
    timeout: Option<Duration>,
    source: Option<SocketAddr>,
) -> Result<IOStream> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )
    .map_err(|e| Error::from_io("cannot create a socket", e))?;
    if let Some(source) = source {
        socket
            .bind(&source.into())
            .map_err(|e| Error::from_io(&format!("cannot bind to {source}"), e))?;
    }
    match socket.connect(&SockAddr::from(addr)) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(connect_error(addr, e)),
    }
    let stream = IOStream::from_tcp(lp, socket.into())?;
    let connected = wait_connected(&stream, addr);
    let outcome = within(lp, timeout, connected).await;
    match outcome {
        Ok(()) => Ok(stream),
        Err(e) => {
            stream.close(Some(e.clone()));
            Err(e)
        }
    }
}

async fn wait_connected(stream: &IOStream, addr: SocketAddr) -> Result<()> {
    stream.writable_for_connect().await;
    match stream.take_socket_error() {
        Ok(None) => Ok(()),
        Ok(Some(e)) | Err(e) => Err(connect_error(addr, e)),
    }
}

fn connect_error(addr: SocketAddr, e: std::io::Error) -> Error {
    Error::new(Code::CONNECT, format!("cannot connect to {addr}: {e}"))
        .with_os_error(e.raw_os_error())
}
