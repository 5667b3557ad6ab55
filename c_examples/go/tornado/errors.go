package tornado

import (
	"context"
	"errors"
	"strings"
	"syscall"
)

// Codes of Error.Code (the library's TORNADO_ERR_* values).
const (
	ErrCodeInvalid          = 1
	ErrCodeTimeout          = 7
	ErrCodeCancelled        = 8
	ErrCodeIO               = 10
	ErrCodeClosed           = 11
	ErrCodeResolve          = 14
	ErrCodeConnect          = 15
	ErrCodeTLS              = 16
	ErrCodeProtocol         = 17
	ErrCodeTooLarge         = 18
	ErrCodeTooManyRedirects = 19
	ErrCodeInvalidURL       = 20
	ErrCodeUser             = 1000 // a body reader's error
)

// ErrClientClosed is returned for calls on a closed Client.
var ErrClientClosed = errors.New("tornado: client closed")

// Error is a failed fetch or call. It is a net.Error; errors.Is matches
// context.DeadlineExceeded for any timeout (the context's deadline or a
// request timeout) and context.Canceled when the context was cancelled;
// errors.Unwrap gives the operating system's error number when there is one.
type Error struct {
	Code    int           // TORNADO_ERR_* (ErrCode* constants)
	Kind    string        // the library's kind: "timeout", "connect", "tls", "closed", ...
	Message string        // the library's message, "kind: detail"
	Errno   syscall.Errno // the OS error behind it (ECONNREFUSED, ECONNRESET, ...), or 0
	ctx     error         // the context's error when the context ended the fetch
}

func newError(code int, message string, errno int, ctxErr error) *Error {
	kind := message
	if i := strings.Index(message, ": "); i >= 0 {
		kind = message[:i]
	}
	return &Error{Code: code, Kind: kind, Message: message, Errno: syscall.Errno(errno), ctx: ctxErr}
}

// CodeName is the code's name, e.g. "TORNADO_ERR_TIMEOUT".
func (e *Error) CodeName() string { return codeName(e.Code) }

func (e *Error) Error() string {
	if e.ctx != nil {
		return "tornado: " + e.ctx.Error()
	}
	return "tornado: " + e.Message
}

// Timeout reports a timeout: the context's deadline or the request's own.
func (e *Error) Timeout() bool {
	return e.Code == ErrCodeTimeout || errors.Is(e.ctx, context.DeadlineExceeded)
}

// Temporary is Timeout (net.Error's deprecated method).
func (e *Error) Temporary() bool { return e.Timeout() }

// Is matches context.DeadlineExceeded for timeouts and context.Canceled for
// a cancelled context.
func (e *Error) Is(target error) bool {
	switch target {
	case context.DeadlineExceeded:
		return e.Timeout()
	case context.Canceled:
		return errors.Is(e.ctx, context.Canceled)
	}
	return false
}

// Unwrap gives the OS error number (when there is one) or the context's error.
func (e *Error) Unwrap() error {
	if e.Errno != 0 {
		return e.Errno
	}
	return e.ctx
}
