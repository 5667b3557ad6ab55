//! Tornado's `TCPServer`: listens on an address and hands every accepted
//! connection, as a ready `IOStream`, to a callback.

use std::cell::RefCell;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::io::AsRawFd;
use std::rc::Rc;

use socket2::{Domain, Protocol, Socket, Type};

use crate::error::{Error, Result};
use crate::ioloop::{LoopRef, Registration};
use crate::iostream::IOStream;

/// Default listen backlog (Tornado's `_DEFAULT_BACKLOG`).
pub const DEFAULT_BACKLOG: i32 = 128;

struct Listening {
    registration: Rc<Registration>,
    listener: TcpListener,
}

/// A listening TCP server. Dropping it stops listening; accepted streams live on.
pub struct TCPServer {
    lp: LoopRef,
    listening: Rc<RefCell<Option<Listening>>>,
    local_addr: SocketAddr,
}

impl TCPServer {
    /// Binds and listens on `addr` (port 0: an ephemeral port, see
    /// `local_addr`). IPv6 sockets are IPv6-only. Call `start` to accept.
    pub fn bind(lp: &LoopRef, addr: SocketAddr, backlog: i32) -> Result<TCPServer> {
        lp.check_thread()?;
        let listener = listen(addr, backlog)?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| Error::from_io("cannot read the bound address", e))?;
        let registration = Rc::new(lp.register_fd(listener.as_raw_fd())?);
        Ok(TCPServer {
            lp: lp.clone(),
            listening: Rc::new(RefCell::new(Some(Listening {
                registration,
                listener,
            }))),
            local_addr,
        })
    }

    /// The loop the server accepts on.
    pub fn loop_ref(&self) -> &LoopRef {
        &self.lp
    }

    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Accepts connections from the loop, calling `on_accept(stream, peer)`
    /// for each.
    pub fn start(&self, on_accept: impl Fn(IOStream, SocketAddr) + 'static) -> Result<()> {
        let listening = self.listening.clone();
        let lp = self.lp.clone();
        self.lp.spawn(async move {
            loop {
                let accepted = {
                    let guard = listening.borrow();
                    let Some(l) = guard.as_ref() else { return };
                    match l.listener.accept() {
                        Ok(pair) => Ok(Some(pair)),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            l.registration.clear_read_ready();
                            Ok(None)
                        }
                        Err(e) => Err(e),
                    }
                };
                match accepted {
                    Ok(Some((socket, peer))) => match IOStream::from_tcp(&lp, socket) {
                        Ok(stream) => on_accept(stream, peer),
                        Err(e) => {
                            crate::log::warn(&format!("cannot set up an accepted connection: {e}"))
                        }
                    },
                    Ok(None) => {
                        let registration = match listening.borrow().as_ref() {
                            Some(l) => l.registration.clone(),
                            None => return,
                        };
                        registration.readable().await;
                    }
                    // EMFILE and friends: log, back off a little, go on.
                    Err(e) => {
                        crate::log::warn(&format!("accept failed: {e}"));
                        if let Ok(pause) =
                            crate::gen::sleep(&lp, std::time::Duration::from_millis(100))
                        {
                            pause.wait().await;
                        }
                    }
                }
            }
        })
    }

    /// Stops listening (closes the listening socket); accepted streams stay open.
    pub fn stop(&self) {
        let listening = self.listening.borrow_mut().take();
        if let Some(l) = listening {
            l.registration.deregister();
            l.registration.wake_all();
        }
    }
}

impl Drop for TCPServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn listen(addr: SocketAddr, backlog: i32) -> Result<TcpListener> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )
    .map_err(|e| Error::from_io("cannot create a socket", e))?;
    let setup = || -> std::io::Result<()> {
        socket.set_reuse_address(true)?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.bind(&addr.into())?;
        socket.listen(backlog)
    };
    setup().map_err(|e| Error::from_io(&format!("cannot listen on {addr}"), e))?;
    Ok(socket.into())
}
