#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
//! tornado_rs: Tornado's IOLoop, Future and coroutine runner in Rust, with a
//! C ABI (`include/tornado_rs.h`).
//!
//! The Rust core ([`ioloop`], [`future`], [`gen`]) is usable on its own; the
//! `extern "C"` layer lives in [`ffi`] and holds every raw-pointer conversion.

pub mod error;
pub mod ffi;
pub mod future;
pub mod gen;
pub mod http;
pub mod ioloop;
pub mod iostream;
pub mod log;
pub mod resolver;
pub mod socks;
pub mod tcpclient;
pub mod tcpserver;
pub mod tls;
pub(crate) mod util;
pub mod websocket;

pub use error::{Code, Error, Result};
pub use future::Future;
pub use ioloop::{IOLoop, LoopHandle, LoopRef, PeriodicCallback, TimeoutId, ERROR, READ, WRITE};
pub use iostream::IOStream;
pub use tcpserver::TCPServer;
