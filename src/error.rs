//! Error codes and the error type shared by the Rust core and the C ABI.

use std::ffi::CString;
use std::fmt;

/// A status code, as the C ABI's `tornado_code` (a plain `int32_t`).
///
/// Codes coming in from C are arbitrary integers; this type never assumes
/// they are one of the named constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Code(pub i32);

impl Code {
    pub const OK: Code = Code(0);
    pub const INVALID: Code = Code(1);
    pub const WRONG_THREAD: Code = Code(2);
    pub const RUNNING: Code = Code(3);
    pub const ALREADY_DONE: Code = Code(4);
    pub const NOT_FOUND: Code = Code(5);
    pub const EXISTS: Code = Code(6);
    pub const TIMEOUT: Code = Code(7);
    pub const CANCELLED: Code = Code(8);
    pub const PANIC: Code = Code(9);
    pub const IO: Code = Code(10);
    pub const CLOSED: Code = Code(11);
    pub const NOT_DONE: Code = Code(12);
    pub const BAD_FD: Code = Code(13);
    pub const RESOLVE: Code = Code(14);
    pub const CONNECT: Code = Code(15);
    pub const TLS: Code = Code(16);
    pub const PROTOCOL: Code = Code(17);
    pub const TOO_LARGE: Code = Code(18);
    pub const TOO_MANY_REDIRECTS: Code = Code(19);
    pub const INVALID_URL: Code = Code(20);
    /// The first code free for applications.
    pub const USER: Code = Code(1000);

    /// The constant's C name, or `"TORNADO_ERR_UNKNOWN"`.
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "TORNADO_OK",
            1 => "TORNADO_ERR_INVALID",
            2 => "TORNADO_ERR_WRONG_THREAD",
            3 => "TORNADO_ERR_RUNNING",
            4 => "TORNADO_ERR_ALREADY_DONE",
            5 => "TORNADO_ERR_NOT_FOUND",
            6 => "TORNADO_ERR_EXISTS",
            7 => "TORNADO_ERR_TIMEOUT",
            8 => "TORNADO_ERR_CANCELLED",
            9 => "TORNADO_ERR_PANIC",
            10 => "TORNADO_ERR_IO",
            11 => "TORNADO_ERR_CLOSED",
            12 => "TORNADO_ERR_NOT_DONE",
            13 => "TORNADO_ERR_BAD_FD",
            14 => "TORNADO_ERR_RESOLVE",
            15 => "TORNADO_ERR_CONNECT",
            16 => "TORNADO_ERR_TLS",
            17 => "TORNADO_ERR_PROTOCOL",
            18 => "TORNADO_ERR_TOO_LARGE",
            19 => "TORNADO_ERR_TOO_MANY_REDIRECTS",
            20 => "TORNADO_ERR_INVALID_URL",
            c if c >= 1000 => "TORNADO_ERR_USER",
            _ => "TORNADO_ERR_UNKNOWN",
        }
    }
}

/// An error: a code and a human-readable message.
///
/// The message is kept NUL-terminated so the C layer can lend it out as a
/// `const char *` for as long as the error lives.
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    code: Code,
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
            message,
            os_error: None,
        }
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

    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(Code::INVALID, message)
    }

    pub fn wrong_thread() -> Error {
        Error::new(
            Code::WRONG_THREAD,
            "called from a thread that does not own the loop",
        )
    }

    pub fn closed() -> Error {
        Error::new(Code::CLOSED, "the loop is closed")
    }

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

    pub fn code(&self) -> Code {
        self.code
    }

    pub fn message(&self) -> &str {
        self.message.to_str().unwrap_or("")
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

pub type Result<T, E = Error> = std::result::Result<T, E>;
