#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
//! tornado_rs: Tornado's IOLoop, Future and coroutine runner in Rust, with a
//! C ABI (`include/tornado_rs.h`).
//!
//! The Rust core ([`ioloop`], [`future`], [`gen`]) is usable on its own; the
//! `extern "C"` layer lives in `ffi` (the default cargo feature `ffi`) and
//! holds every raw-pointer conversion; the core does not depend on it.

// Without `ffi`, the crate-internal API that only the C layer calls (raw
// callbacks, thread-safe queueing, C strings of errors) is unused.
#![cfg_attr(not(feature = "ffi"), allow(dead_code))]

pub mod error;
#[cfg(feature = "ffi")]
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
