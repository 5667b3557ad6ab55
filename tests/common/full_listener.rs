//! A listening socket on 127.0.0.1 whose accept queue is full: the kernel
//! drops further SYNs, so a connect to it neither succeeds nor fails until
//! the client gives up. What a connect timeout needs, on loopback.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream};

use socket2::{Domain, Socket, Type};

pub struct FullListener {
    pub addr: SocketAddr,
    _listener: Socket,
    _queued: TcpStream,
}

pub fn full_listener() -> FullListener {
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let any_port: SocketAddr = "127.0.0.1:0".parse().unwrap();
    listener.bind(&any_port.into()).unwrap();
    // A backlog of 0 holds one connection; it is never accepted.
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    let queued = TcpStream::connect(addr).unwrap();
    FullListener {
        addr,
        _listener: listener,
        _queued: queued,
    }
}
