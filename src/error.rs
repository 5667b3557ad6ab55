//! Error codes and the error type shared by the Rust core and the C ABI.

use std::ffi::{CStr, CString};
use std::fmt;

/// A status code, as the C ABI's `tornado_code` (a plain `int32_t`).
///
/// Codes coming in from C are arbitrary integers; this type never assumes
/// they are one of the named constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Code(pub i32);

/// Defines `Code`'s constants and its name lookups from the table in
/// `status_codes.rs` (one row per code).
macro_rules! status_codes {
    ($($name:ident = $value:literal, $c_name:ident, $doc:literal;)*) => {
        impl Code {
            $(#[doc = $doc] pub const $name: Code = Code($value);)*

            /// The constant's C name, or `"TORNADO_ERR_UNKNOWN"`
            /// (`"TORNADO_ERR_USER"` for every code from `USER` up).
            pub fn name(self) -> &'static str {
                self.c_name().to_str().expect("the names are ASCII")
            }

            /// [`Code::name`] as a C string, for the C ABI.
            pub fn c_name(self) -> &'static CStr {
                match self.0 {
                    $($value => nul_terminated(concat!(stringify!($c_name), "\0")),)*
                    c if c >= Code::USER.0 => Code::USER.c_name(),
                    _ => c"TORNADO_ERR_UNKNOWN",
                }
            }
        }
    };
}

include!("status_codes.rs");

const fn nul_terminated(text: &'static str) -> &'static CStr {
    match CStr::from_bytes_with_nul(text.as_bytes()) {
        Ok(name) => name,
        Err(_) => panic!("a code's name has no interior NUL"),
    }
}

/// What went wrong, for the operations that name it: the kinds of
/// `FETCH_CLI.md` (a fetch's error message starts with `kind: `), also used
/// by connections and streams. Carried by [`Error`] itself, so nothing has
/// to read it back out of a message.
macro_rules! error_kinds {
    ($($(#[doc = $doc:literal])* $kind:ident = $text:literal, $code:ident;)*) => {
        /// What went wrong, for the errors that name it (the table below;
        /// [`Error::kind`] gives it).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorKind {
            $($(#[doc = $doc])* $kind,)*
        }

        impl ErrorKind {
            /// Every kind, in the table's order.
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$kind,)*];

            /// The kind's name, as messages and `tornado-fetch` print it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorKind::$kind => $text,)*
                }
            }

            /// The status code a C caller sees for this kind.
            pub fn code(self) -> Code {
                match self {
                    $(ErrorKind::$kind => Code::$code,)*
                }
            }
        }
    };
}

error_kinds! {
    /// The host name could not be resolved.
    Resolve = "resolve", RESOLVE;
    /// No TCP connection could be made (refused, unreachable), to the
    /// host or to the proxy.
    Connect = "connect", CONNECT;
    /// A time limit ran out (connect, request, or the wait in the queue);
    /// the message says which.
    Timeout = "timeout", TIMEOUT;
    /// The TLS handshake failed or the certificate did not validate, or
    /// the TLS options themselves are bad (unreadable PEM).
    Tls = "tls", TLS;
    /// The peer broke the protocol: a malformed head, bad chunking, a
    /// broken gzip stream inside a well-framed body.
    Protocol = "protocol", PROTOCOL;
    /// The connection ended early (no bytes, inside the head or the body,
    /// a reset), or the client was closed.
    Closed = "closed", CLOSED;
    /// The body, counted after decompression, is over `max_body_size`.
    BodyTooLarge = "body_too_large", TOO_LARGE;
    /// The response head is over `max_header_size`, has no end, or has too
    /// many fields.
    HeaderTooLarge = "header_too_large", TOO_LARGE;
    /// More redirects than `max_redirects` allows.
    TooManyRedirects = "too_many_redirects", TOO_MANY_REDIRECTS;
    /// A URL that cannot be fetched: unparsable, no host, a scheme other
    /// than http/https, or a bad `Location`.
    InvalidUrl = "invalid_url", INVALID_URL;
    /// A request refused before anything is sent: an unknown method, a
    /// body where none belongs (or none where one is required), CR, LF or
    /// NUL in a header.
    InvalidRequest = "invalid_request", INVALID;
    /// The operation was cancelled before it finished.
    Cancelled = "cancelled", CANCELLED;
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error: a code and a human-readable message.
///
/// The message is kept NUL-terminated so the C layer can lend it out as a
/// `const char *` for as long as the error lives.
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    code: Code,
    /// Set for the errors that name their kind (see [`Error::of_kind`]).
    kind: Option<ErrorKind>,
    message: CString,
    /// The operating system's error number behind it (ECONNREFUSED, ...),
    /// kept so a binding can raise its language's native error.
    os_error: Option<i32>,
}

impl Error {
    /// Makes an error; interior NUL bytes in `message` are dropped.
    pub fn new(code: Code, message: impl Into<String>) -> Error {
        let mut bytes = message.into().into_bytes();
        bytes.retain(|&b| b != 0);
        let message = CString::new(bytes).expect("NUL bytes were removed");
        Error {
            code,
            kind: None,
            message,
            os_error: None,
        }
    }

    /// An error of a named kind: its code is the kind's, its message
    /// `"kind: detail"` (what C callers and `tornado-fetch` see).
    pub fn of_kind(kind: ErrorKind, detail: impl fmt::Display) -> Error {
        Error {
            kind: Some(kind),
            ..Error::new(kind.code(), format!("{kind}: {detail}"))
        }
    }

    /// The kind this error was made with, if any: never guessed from the
    /// message, so a message that happens to start with "timeout:" is not
    /// a timeout.
    pub fn kind(&self) -> Option<ErrorKind> {
        self.kind
    }

    /// The same error, recording the OS error number behind it.
    pub fn with_os_error(mut self, errno: Option<i32>) -> Error {
        self.os_error = errno;
        self
    }

    /// The OS error number behind this error (`errno`), if it came from
    /// a system call.
    pub fn os_error(&self) -> Option<i32> {
        self.os_error
    }

    /// A bad argument ([`Code::INVALID`]) with `message`.
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(Code::INVALID, message)
    }

    /// [`Code::WRONG_THREAD`]: a loop-bound object used from a thread
    /// that does not own its loop.
    pub fn wrong_thread() -> Error {
        Error::new(
            Code::WRONG_THREAD,
            "called from a thread that does not own the loop",
        )
    }

    /// [`Code::CLOSED`]: the loop (or the object's loop) is closed.
    pub fn closed() -> Error {
        Error::new(Code::CLOSED, "the loop is closed")
    }

    /// [`Code::CANCELLED`]: the future was cancelled.
    pub fn cancelled() -> Error {
        Error::new(Code::CANCELLED, "the future was cancelled")
    }

    /// An error from the operating system's `errno` value.
    pub fn from_io(context: &str, err: std::io::Error) -> Error {
        let code = match err.raw_os_error() {
            Some(libc::EBADF) | Some(libc::EPERM) => Code::BAD_FD,
            _ => Code::IO,
        };
        Error::new(code, format!("{context}: {err}")).with_os_error(err.raw_os_error())
    }

    /// The status code (what a C caller gets as `tornado_code`).
    pub fn code(&self) -> Code {
        self.code
    }

    /// The human-readable message; for an error with a kind, it starts
    /// with `"kind: "` (see [`Error::detail`]).
    pub fn message(&self) -> &str {
        self.message.to_str().unwrap_or("")
    }

    /// The message without its `"kind: "` prefix (the whole message for an
    /// error of no kind).
    pub fn detail(&self) -> &str {
        let message = self.message();
        match self.kind {
            Some(kind) => message
                .strip_prefix(kind.as_str())
                .and_then(|rest| rest.strip_prefix(": "))
                .unwrap_or(message),
            None => message,
        }
    }

    pub(crate) fn message_cstr(&self) -> &std::ffi::CStr {
        &self.message
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.name(), self.message())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_c_name() {
        assert_eq!(Code::OK.name(), "TORNADO_OK");
        assert_eq!(Code::INVALID_URL.name(), "TORNADO_ERR_INVALID_URL");
        assert_eq!(Code(1000).name(), "TORNADO_ERR_USER");
        assert_eq!(Code(4711).name(), "TORNADO_ERR_USER");
        assert_eq!(Code(-3).name(), "TORNADO_ERR_UNKNOWN");
        assert_eq!(Code(999).c_name(), c"TORNADO_ERR_UNKNOWN");
    }

    #[test]
    fn a_kind_is_carried_not_read_back_from_the_message() {
        let timeout = Error::of_kind(ErrorKind::Timeout, "Timeout while connecting");
        assert_eq!(timeout.kind(), Some(ErrorKind::Timeout));
        assert_eq!(timeout.code(), Code::TIMEOUT);
        assert_eq!(timeout.message(), "timeout: Timeout while connecting");
        assert_eq!(timeout.detail(), "Timeout while connecting");
        // A message that only looks like a kind is not one.
        let lookalike = Error::new(Code::IO, "timeout: a peer's words");
        assert_eq!(lookalike.kind(), None);
        assert_eq!(lookalike.detail(), "timeout: a peer's words");
    }

    #[test]
    fn kinds_have_distinct_names() {
        let mut names: Vec<_> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorKind::ALL.len());
    }
}
