//! The log bridge: library messages go to a registered sink, or to stderr.

use std::sync::{Arc, RwLock};

/// Severity of a log line (the C constants `TORNADO_LOG_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(i32)]
pub enum Level {
    /// A failure the library cannot return to a caller (`TORNADO_LOG_ERROR`):
    /// a callback that failed or panicked, a loop that cannot wake or close.
    Error = 1,
    /// Something failed that ends one thing but not the program
    /// (`TORNADO_LOG_WARNING`): a periodic callback stopped, a server-side
    /// TLS handshake failed. Without a sink, errors and warnings go to stderr.
    Warning = 2,
    /// Informational (`TORNADO_LOG_INFO`); the library logs none today, and
    /// without a sink they are dropped.
    Info = 3,
    /// Debugging detail (`TORNADO_LOG_DEBUG`); the library logs none today,
    /// and without a sink they are dropped.
    Debug = 4,
}

/// Where log lines go. `Send + Sync` because any thread may log.
pub type Sink = Arc<dyn Fn(Level, &str) + Send + Sync>;

static SINK: RwLock<Option<Sink>> = RwLock::new(None);

/// Installs `sink` for every later log line (None: back to stderr for warnings and errors).
pub fn set_sink(sink: Option<Sink>) {
    let mut guard = SINK.write().unwrap_or_else(|e| e.into_inner());
    *guard = sink;
}

/// Emits one log line.
pub fn log(level: Level, message: &str) {
    // Clone the sink out so that it may itself call `set_sink` without deadlock.
    let sink = SINK.read().unwrap_or_else(|e| e.into_inner()).clone();
    match sink {
        Some(sink) => sink(level, message),
        None if level <= Level::Warning => eprintln!("tornado_rs: {message}"),
        None => {}
    }
}

/// Logs `message` at [`Level::Warning`].
pub fn warn(message: &str) {
    log(Level::Warning, message);
}

/// Logs `message` at [`Level::Error`].
pub fn error(message: &str) {
    log(Level::Error, message);
}

/// Describes a caught panic's payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}
