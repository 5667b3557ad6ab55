// The one table of status codes. Each row: the Rust name on `Code`, the
// value, the C name, what it means (the C header's doc comment).
// Read by src/error.rs (`Code`'s constants and names), by src/ffi (the
// `TORNADO_*` constants for Rust callers) and by build.rs (the header's
// `#define`s): add a code here and nowhere else.
status_codes! {
    OK = 0, TORNADO_OK, "Success.";
    INVALID = 1, TORNADO_ERR_INVALID, "A bad argument: NULL handle or pointer, NaN/negative/infinite time, unknown flag bits, invalid UTF-8.";
    WRONG_THREAD = 2, TORNADO_ERR_WRONG_THREAD, "Called from a thread that does not own the loop.";
    RUNNING = 3, TORNADO_ERR_RUNNING, "The loop is running (free, start, run_once or run_sync from inside the loop).";
    ALREADY_DONE = 4, TORNADO_ERR_ALREADY_DONE, "A future or coroutine was completed twice.";
    NOT_FOUND = 5, TORNADO_ERR_NOT_FOUND, "Unknown timeout id, or an fd with no handler.";
    EXISTS = 6, TORNADO_ERR_EXISTS, "The fd already has a handler.";
    TIMEOUT = 7, TORNADO_ERR_TIMEOUT, "The operation timed out.";
    CANCELLED = 8, TORNADO_ERR_CANCELLED, "The future was cancelled.";
    PANIC = 9, TORNADO_ERR_PANIC, "A Rust panic was caught at the boundary.";
    IO = 10, TORNADO_ERR_IO, "An operating-system error; the message has its text.";
    CLOSED = 11, TORNADO_ERR_CLOSED, "The loop (or the object's loop) was closed.";
    NOT_DONE = 12, TORNADO_ERR_NOT_DONE, "The future is not done yet.";
    BAD_FD = 13, TORNADO_ERR_BAD_FD, "The fd is not open, or epoll cannot watch it (a regular file).";
    RESOLVE = 14, TORNADO_ERR_RESOLVE, "A host name could not be resolved.";
    CONNECT = 15, TORNADO_ERR_CONNECT, "A TCP connection could not be made (refused, unreachable).";
    TLS = 16, TORNADO_ERR_TLS, "A TLS failure: a certificate that does not validate, a failed handshake.";
    PROTOCOL = 17, TORNADO_ERR_PROTOCOL, "The peer broke the protocol (a malformed response, bad chunking, bad gzip).";
    TOO_LARGE = 18, TORNADO_ERR_TOO_LARGE, "A limit was exceeded: a response head, a body, a read buffer.";
    TOO_MANY_REDIRECTS = 19, TORNADO_ERR_TOO_MANY_REDIRECTS, "More redirects than the request allows.";
    INVALID_URL = 20, TORNADO_ERR_INVALID_URL, "A URL that cannot be fetched (unparsable, no host, a scheme other than http/https).";
    USER = 1000, TORNADO_ERR_USER, "The first code free for applications (`tornado_future_set_error` takes any non-zero code).";
}
