#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
//! tornado_rs: Tornado's IOLoop, Future and coroutine runner in Rust, with a
//! C ABI (`include/tornado_rs.h`).
//!
//! The Rust core ([`ioloop`], [`future`], [`gen`]) is usable on its own; the
//! `extern "C"` layer lives in `ffi` (the default cargo feature `ffi`) and
//! holds every raw-pointer conversion; the core does not depend on it.
//! `unsafe` is allowed in three places only: `ffi`, `sys` (the system
//! calls the core makes itself) and the loop (`ioloop::raw` calls C
//! callbacks; its thread-owned cells and queues assert `Send`/`Sync`).
//! Every other module is `forbid(unsafe_code)`.

// Without `ffi`, the crate-internal API that only the C layer calls (raw
// callbacks, thread-safe queueing, C strings of errors) is unused.
#![cfg_attr(not(feature = "ffi"), allow(dead_code))]

#[forbid(unsafe_code)]
pub mod error;
#[cfg(feature = "ffi")]
pub mod ffi;
#[forbid(unsafe_code)]
pub mod future;
#[forbid(unsafe_code)]
pub mod gen;
#[forbid(unsafe_code)]
pub mod http;
pub mod ioloop;
#[forbid(unsafe_code)]
pub mod iostream;
#[forbid(unsafe_code)]
pub mod log;
#[forbid(unsafe_code)]
pub mod resolver;
#[forbid(unsafe_code)]
pub mod socks;
mod sys;
#[forbid(unsafe_code)]
pub mod tcpclient;
#[forbid(unsafe_code)]
pub mod tcpserver;
#[forbid(unsafe_code)]
pub mod tls;
#[forbid(unsafe_code)]
pub(crate) mod util;
#[forbid(unsafe_code)]
pub mod websocket;

pub use error::{Code, Error, Result};
pub use future::Future;
pub use ioloop::{IOLoop, LoopHandle, LoopRef, PeriodicCallback, TimeoutId, ERROR, READ, WRITE};
pub use iostream::IOStream;
pub use tcpserver::TCPServer;
