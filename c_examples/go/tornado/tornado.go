// Package tornado is a cgo binding of tornado_rs: an event loop (Tornado's
// IOLoop), futures as channels, and an HTTP client with keep-alive.
//
// A loop belongs to one OS thread, so Run locks the calling goroutine's
// thread, creates the loop there and runs it until Stop. Only AddCallback
// and Stop may be used from other goroutines; use AddCallback to get onto
// the loop's thread for anything else.
//
// Go values are never handed to C: each callback is a runtime/cgo.Handle
// stored in C memory, deleted exactly once, when the library calls the
// callback's drop function.
package tornado

/*
#cgo CFLAGS: -I${SRCDIR}/../../../include
#cgo LDFLAGS: -L${SRCDIR}/../../../target/release -ltornado_rs -Wl,-rpath,${SRCDIR}/../../../target/release
#include <stdint.h>
#include <stdlib.h>
#include "tornado_rs.h"

extern void goRunCallback(void *ud);
extern void goDropCallback(void *ud);
extern void goFetchDone(tornado_http_response *r, void *ud);

static tornado_code add_callback(tornado_loop *l, void *ud) {
    return tornado_loop_add_callback_full(l, goRunCallback, ud, goDropCallback);
}
static uint64_t call_later(tornado_loop *l, double delay, void *ud) {
    return tornado_loop_call_later_full(l, delay, goRunCallback, ud, goDropCallback);
}
static tornado_code fetch_cb(tornado_http_client *c, tornado_http_request *r, void *ud) {
    return tornado_http_client_fetch_cb_full(c, r, (void (*)(const tornado_http_response *, void *))goFetchDone, ud,
                                             goDropCallback);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/cgo"
	"sync/atomic"
	"time"
	"unsafe"
)

// Error is a failed call: Code is the TORNADO_ERR_* value.
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string { return e.Message }

func lastError(what string, code C.tornado_code) error {
	msg := C.tornado_last_error()
	text := "(no message)"
	if msg != nil {
		text = C.GoString(msg)
	}
	return &Error{Code: int(code), Message: what + ": " + text}
}

// Version is the loaded library's version.
func Version() string { return C.GoString(C.tornado_version()) }

// liveSlots counts handles not yet released (for the tests).
var liveSlots int64

// handleSlot puts a cgo.Handle in C memory, so that C holds no Go pointer.
func handleSlot(v any) unsafe.Pointer {
	slot := (*C.uintptr_t)(C.malloc(C.size_t(unsafe.Sizeof(C.uintptr_t(0)))))
	*slot = C.uintptr_t(cgo.NewHandle(v))
	atomic.AddInt64(&liveSlots, 1)
	return unsafe.Pointer(slot)
}

func slotHandle(ud unsafe.Pointer) cgo.Handle { return cgo.Handle(*(*C.uintptr_t)(ud)) }

// releaseSlot deletes the handle and frees its slot: exactly once per slot.
func releaseSlot(ud unsafe.Pointer) {
	slotHandle(ud).Delete()
	C.free(ud)
	atomic.AddInt64(&liveSlots, -1)
}

//export goRunCallback
func goRunCallback(ud unsafe.Pointer) {
	slotHandle(ud).Value().(func())()
}

//export goDropCallback
func goDropCallback(ud unsafe.Pointer) { releaseSlot(ud) }

// Loop is an event loop bound to the OS thread that runs it.
type Loop struct {
	ptr *C.tornado_loop
}

// Run locks the goroutine to its OS thread, creates a loop, calls setup on
// the loop thread, and runs the loop until Stop; then frees it.
func Run(setup func(*Loop)) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ptr := C.tornado_loop_new()
	if ptr == nil {
		return lastError("tornado_loop_new", 1)
	}
	l := &Loop{ptr: ptr}
	if err := l.AddCallback(func() { setup(l) }); err != nil {
		C.tornado_loop_free(ptr)
		return err
	}
	if rc := C.tornado_loop_start(ptr); rc != 0 {
		C.tornado_loop_free(ptr)
		return lastError("tornado_loop_start", rc)
	}
	if rc := C.tornado_loop_free(ptr); rc != 0 {
		return lastError("tornado_loop_free", rc)
	}
	return nil
}

// Stop makes Start/Run return. Any goroutine.
func (l *Loop) Stop() { C.tornado_loop_stop(l.ptr) }

// AddCallback runs fn on the loop's thread, on the next iteration. Any goroutine.
func (l *Loop) AddCallback(fn func()) error {
	ud := handleSlot(fn)
	if rc := C.add_callback(l.ptr, ud); rc != 0 {
		releaseSlot(ud) // refused: the drop function will not run
		return lastError("add_callback", rc)
	}
	return nil
}

// CallLater runs fn after d on the loop's thread (loop thread only).
func (l *Loop) CallLater(d time.Duration, fn func()) (uint64, error) {
	ud := handleSlot(fn)
	id := C.call_later(l.ptr, C.double(d.Seconds()), ud)
	if id == 0 {
		releaseSlot(ud)
		return 0, lastError("call_later", 1)
	}
	return uint64(id), nil
}

// RemoveTimeout cancels a CallLater (loop thread only).
func (l *Loop) RemoveTimeout(id uint64) error {
	if rc := C.tornado_loop_remove_timeout(l.ptr, C.uint64_t(id)); rc != 0 {
		return lastError("remove_timeout", rc)
	}
	return nil
}

// Response is a fetch's result, copied into Go memory.
type Response struct {
	Code         int
	Reason       string
	Headers      [][2]string
	Body         []byte
	EffectiveURL string
	// Err is set when no response was received (Code is then 599); its
	// message starts with the error's kind ("connect: ...", "timeout: ...").
	Err         error
	RequestTime time.Duration
}

// Header returns the first value of name (case-insensitive).
func (r *Response) Header(name string) string {
	for _, h := range r.Headers {
		if equalFold(h[0], name) {
			return h[1]
		}
	}
	return ""
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func copyResponse(r *C.tornado_http_response) *Response {
	out := &Response{
		Code:         int(C.tornado_http_response_code(r)),
		Reason:       C.GoString(C.tornado_http_response_reason(r)),
		EffectiveURL: C.GoString(C.tornado_http_response_effective_url(r)),
		RequestTime:  time.Duration(float64(C.tornado_http_response_request_time(r)) * float64(time.Second)),
	}
	var n C.size_t
	body := C.tornado_http_response_body(r, &n)
	if n > 0 {
		out.Body = C.GoBytes(unsafe.Pointer(body), C.int(n))
	}
	count := int(C.tornado_http_response_header_count(r))
	for i := 0; i < count; i++ {
		var name, value *C.char
		if C.tornado_http_response_header_at(r, C.size_t(i), &name, &value) == 0 {
			out.Headers = append(out.Headers, [2]string{C.GoString(name), C.GoString(value)})
		}
	}
	if e := C.tornado_http_response_error(r); e != nil {
		out.Err = &Error{Code: int(C.tornado_http_response_error_code(r)), Message: C.GoString(e)}
	}
	return out
}

// goFetchDone is called at most once; the slot is released by the drop
// function (goDropCallback) right after, or alone when the fetch is
// released uncalled (the loop freed first).
//
//export goFetchDone
func goFetchDone(r *C.tornado_http_response, ud unsafe.Pointer) {
	slotHandle(ud).Value().(func(*Response))(copyResponse(r))
}

// Client is an HTTP client (Tornado's AsyncHTTPClient) with keep-alive.
type Client struct {
	loop *Loop
	ptr  *C.tornado_http_client
}

// NewClient makes a client with at most maxClients fetches in flight
// (loop thread only).
func (l *Loop) NewClient(maxClients int) (*Client, error) {
	o := C.tornado_http_client_options_new()
	defer C.tornado_http_client_options_free(o)
	if rc := C.tornado_http_client_options_set_max_clients(o, C.size_t(maxClients)); rc != 0 {
		return nil, lastError("max_clients", rc)
	}
	ptr := C.tornado_http_client_new(l.ptr, o)
	if ptr == nil {
		return nil, lastError("tornado_http_client_new", 1)
	}
	return &Client{loop: l, ptr: ptr}, nil
}

// Close frees the client; fetches in flight end with a "closed" error.
func (c *Client) Close() {
	if c.ptr != nil {
		C.tornado_http_client_free(c.ptr)
		c.ptr = nil
	}
}

// Request describes a fetch.
type Request struct {
	URL            string
	Method         string
	Headers        [][2]string
	Body           []byte
	RequestTimeout time.Duration
}

// Fetch starts a fetch (loop thread only) and returns a channel that
// receives the response once (buffered: the loop never blocks on it).
func (c *Client) Fetch(req Request) (<-chan *Response, error) {
	ch := make(chan *Response, 1)
	if err := c.FetchFunc(req, func(r *Response) { ch <- r }); err != nil {
		return nil, err
	}
	return ch, nil
}

// FetchFunc starts a fetch (loop thread only); done is called exactly
// once, on the loop thread, with the response (Err set when none came) —
// unless the loop is freed first: then done is released uncalled when the
// client is closed (or right away if it was closed already).
func (c *Client) FetchFunc(req Request, done func(*Response)) error {
	url := C.CString(req.URL)
	defer C.free(unsafe.Pointer(url))
	r := C.tornado_http_request_new(url)
	if r == nil {
		return lastError("request", 1)
	}
	defer C.tornado_http_request_free(r)
	if req.Method != "" {
		m := C.CString(req.Method)
		rc := C.tornado_http_request_set_method(r, m)
		C.free(unsafe.Pointer(m))
		if rc != 0 {
			return lastError("method", rc)
		}
	}
	for _, h := range req.Headers {
		name, value := C.CString(h[0]), C.CString(h[1])
		rc := C.tornado_http_request_add_header(r, name, value)
		C.free(unsafe.Pointer(name))
		C.free(unsafe.Pointer(value))
		if rc != 0 {
			return lastError("header", rc)
		}
	}
	if req.Body != nil {
		data := C.CBytes(req.Body)
		rc := C.tornado_http_request_set_body(r, (*C.uint8_t)(data), C.size_t(len(req.Body)))
		C.free(data)
		if rc != 0 {
			return lastError("body", rc)
		}
	}
	if req.RequestTimeout > 0 {
		if rc := C.tornado_http_request_set_request_timeout(r, C.double(req.RequestTimeout.Seconds())); rc != 0 {
			return lastError("request_timeout", rc)
		}
	}
	ud := handleSlot(done)
	if rc := C.fetch_cb(c.ptr, r, ud); rc != 0 {
		releaseSlot(ud)
		return lastError("fetch", rc)
	}
	return nil
}

// ErrClosed is returned by Get when the loop stopped before the fetch ended.
var ErrClosed = errors.New("tornado: the loop is gone")

// Get runs a whole loop on its own thread for one blocking fetch: the
// simplest use from ordinary Go code.
func Get(url string, timeout time.Duration) (*Response, error) {
	var result *Response
	var failure error
	err := Run(func(l *Loop) {
		c, err := l.NewClient(1)
		if err != nil {
			failure = err
			l.Stop()
			return
		}
		err = c.FetchFunc(Request{URL: url, RequestTimeout: timeout}, func(r *Response) {
			result = r
			c.Close()
			l.Stop()
		})
		if err != nil {
			failure = err
			c.Close()
			l.Stop()
		}
	})
	if err != nil {
		return nil, err
	}
	if failure != nil {
		return nil, failure
	}
	if result == nil {
		return nil, ErrClosed
	}
	return result, nil
}

// String shows a response briefly.
func (r *Response) String() string {
	return fmt.Sprintf("%d %s (%d bytes) %s", r.Code, r.Reason, len(r.Body), r.EffectiveURL)
}
