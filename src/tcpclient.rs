//! Tornado's `TCPClient`: non-blocking connects with a timeout.

use std::future::Future as _;
use std::net::SocketAddr;
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::error::{Code, Error, Result};
use crate::ioloop::LoopRef;
use crate::iostream::IOStream;

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
        Err(e) => return Err(Error::from_io(&format!("cannot connect to {addr}"), e)),
    }
    let stream = IOStream::from_tcp(lp, socket.into())?;
    let connected = wait_connected(&stream, addr);
    let outcome = match timeout {
        None => connected.await,
        Some(limit) => race_timeout(lp, connected, limit).await,
    };
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
        Ok(Some(e)) | Err(e) => Err(Error::from_io(&format!("cannot connect to {addr}"), e)),
    }
}

/// Runs `work` until it finishes or `limit` passes (`TIMEOUT`). The timer
/// is removed as soon as `work` finishes.
pub async fn race_timeout<T>(
    lp: &LoopRef,
    work: impl std::future::Future<Output = Result<T>>,
    limit: Duration,
) -> Result<T> {
    let expired = crate::future::Future::<()>::new(lp);
    let fire = expired.clone();
    let timer = TimerGuard {
        lp: lp.clone(),
        id: lp.call_later(limit, move || {
            let _ = fire.set_result(());
        })?,
    };
    let mut work = std::pin::pin!(work);
    let mut expiry = std::pin::pin!(expired.wait());
    let outcome = std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(out) = work.as_mut().poll(cx) {
            return std::task::Poll::Ready(out);
        }
        if expiry.as_mut().poll(cx).is_ready() {
            return std::task::Poll::Ready(Err(Error::new(Code::TIMEOUT, "timed out")));
        }
        std::task::Poll::Pending
    })
    .await;
    drop(timer);
    outcome
}

/// Removes a timeout when dropped (also when the task is dropped mid-way).
struct TimerGuard {
    lp: LoopRef,
    id: crate::ioloop::TimeoutId,
}

impl Drop for TimerGuard {
    fn drop(&mut self) {
        let _ = self.lp.remove_timeout(self.id);
    }
}
