package tornado

// The WebSocket client (Tornado's websocket_connect) over the library's
// tornado_websocket_*: the connection lives on the client's loop
// goroutine, as fetches do; its futures are watched by glue (tg_watch)
// and their outcomes handed to the goroutine that waits.

/*
#include "glue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    tg_state *st;
    uint64_t id;
} tg_watch_ud;

static void on_watched(tornado_future *future, void *ud) {
    (void)future;
    tg_watch_ud *w = ud;
    tg_push(w->st, TG_WATCHED, w->id);
}

tornado_code tg_watch(tg_state *st, tornado_future *future, uint64_t id) {
    tg_watch_ud *w = malloc(sizeof *w);
    if (!w)
        return TORNADO_ERR_INVALID;
    w->st = st;
    w->id = id;
    tornado_code rc = tornado_future_add_done_callback_full(future, on_watched, w, free);
    if (rc != TORNADO_OK)
        free(w);
    return rc;
}

static void on_ws_ping(const uint8_t *data, size_t len, void *ud) {
    tg_watch_ud *w = ud;
    tg_event *ev = tg_push(w->st, TG_WS_PING, w->id);
    ev->data = malloc(len ? len : 1);
    if (!ev->data) {
        ev->len = 0;
        return;
    }
    memcpy(ev->data, data, len);
    ev->len = len;
}

tornado_code tg_ws_watch_pings(tg_state *st, tornado_websocket *ws, uint64_t id) {
    tg_watch_ud *w = malloc(sizeof *w);
    if (!w)
        return TORNADO_ERR_INVALID;
    w->st = st;
    w->id = id;
    tornado_code rc = tornado_websocket_set_ping_callback(ws, on_ws_ping, w, free);
    if (rc != TORNADO_OK)
        free(w);
    return rc;
}

static void ws_error(char *err, size_t errlen) {
    const char *msg = tornado_last_error();
    snprintf(err, errlen, "%s", msg ? msg : "(no message)");
}

tornado_future *tg_ws_connect(tg_state *st, const tg_spec *spec, const char *strings, size_t strings_len,
                              const uint8_t *blobs, const tg_ws_spec *ws, const char *subprotocols, char *err,
                              size_t errlen) {
    tornado_future *f = NULL;
    tornado_websocket_options *o = NULL;
    tornado_http_request *r = tg_build_request(st, spec, strings, strings_len, NULL, 0, 0, blobs, err, errlen);
    if (!r)
        return NULL;
    o = tornado_websocket_options_new();
    if (!o)
        goto fail;
#define WS_OPT(call)                                                                                         \
    do {                                                                                                     \
        if ((call) != TORNADO_OK)                                                                            \
            goto fail;                                                                                       \
    } while (0)
    const char *p = subprotocols;
    for (int i = 0; i < ws->nsubprotocols; i++) {
        WS_OPT(tornado_websocket_options_add_subprotocol(o, p));
        p += strlen(p) + 1;
    }
    if (ws->compression >= 0) {
        WS_OPT(tornado_websocket_options_set_compression(o, ws->compression));
        if (ws->no_context_takeover[0] || ws->no_context_takeover[1])
            WS_OPT(tornado_websocket_options_set_no_context_takeover(o, ws->no_context_takeover[0] != 0,
                                                                    ws->no_context_takeover[1] != 0));
        if (ws->server_max_window_bits)
            WS_OPT(tornado_websocket_options_set_server_max_window_bits(o, ws->server_max_window_bits));
        if (ws->client_max_window_bits)
            WS_OPT(tornado_websocket_options_set_client_max_window_bits(o, ws->client_max_window_bits));
    }
    if (ws->max_message_size > 0)
        WS_OPT(tornado_websocket_options_set_max_message_size(o, (size_t)ws->max_message_size));
    if (ws->max_write_buffer > 0)
        WS_OPT(tornado_websocket_options_set_max_write_buffer(o, (size_t)ws->max_write_buffer));
    if (ws->ping_interval != 0 || ws->ping_timeout != 0)
        WS_OPT(tornado_websocket_options_set_ping(o, ws->ping_interval, ws->ping_timeout));
    if (ws->close_timeout > 0)
        WS_OPT(tornado_websocket_options_set_close_timeout(o, ws->close_timeout));
    f = tornado_websocket_connect(st->client, r, o);
    if (!f)
        goto fail;
    tornado_websocket_options_free(o);
    tornado_http_request_free(r);
    return f;
fail:
    ws_error(err, errlen);
    tornado_websocket_options_free(o);
    tornado_http_request_free(r);
    return NULL;
}
*/
import "C"

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// MessageType is a WebSocket message's kind (the values of RFC 6455's
// opcodes, as gorilla/websocket's TextMessage and BinaryMessage).
type MessageType int

const (
	TextMessage   MessageType = 1 // UTF-8 text
	BinaryMessage MessageType = 2
)

// ErrWebSocketClosed is returned for calls on a WebSocket that is closing
// or closed (after Close, or once the connection ended).
var ErrWebSocketClosed = errors.New("tornado: websocket closed")

// WebSocketOptions are websocket_connect's arguments beyond the request.
type WebSocketOptions struct {
	Subprotocols []string // offered in Sec-WebSocket-Protocol
	// permessage-deflate (RFC 7692): Compression on, at zlib
	// CompressionLevel (0: Tornado's 6; 1-9).
	Compression             bool
	CompressionLevel        int
	ClientNoContextTakeover bool
	ServerNoContextTakeover bool
	ServerMaxWindowBits     int // 8-15; 0: ask nothing
	// The window the client compresses with, at most 2^bits bytes (8-15),
	// offered as client_max_window_bits=bits; 0: offered without a value
	// (32 KiB unless the server asks for less). A server's smaller value
	// is always honoured.
	ClientMaxWindowBits       int
	MaxMessageSize            int // the largest message read (0: 10 MiB)
	MaxWriteBuffer            int // bytes queued unsent before writes fail (0: 16 MiB)
	PingInterval, PingTimeout time.Duration
	CloseTimeout              time.Duration // how long Close waits for the server (0: 5 s)
	// Called with each ping's payload (the pong is sent by the library),
	// on a goroutine of the connection's own, in order; pings that come
	// while 64 wait unhandled are answered but not reported.
	OnPing func(payload []byte)
}

// WebSocket is a client connection. Any goroutine may call it; reads,
// writes and Close wait as Do does (the context's end returns early: an
// interrupted ReadMessage keeps its read, so the next one gets that
// message; a write or close goes on). Close it when done: Close releases
// the connection (Client.Close releases those left open).
type WebSocket struct {
	c  *core
	id uint64

	mu      sync.Mutex
	reading chan wsRead // the read in flight, if any (buffered: its outcome waits there)

	// Loop goroutine only.
	ptr *C.tornado_websocket
	// Set once (Close, or when the connection was released).
	subprotocol, extensions string
	closeCode               int
	closeReason             string
	pings                   chan []byte
}

type wsRead struct {
	typ  MessageType
	data []byte
	err  error
}

// watch is one future of a connection the loop goroutine waits for.
type watch struct {
	future *C.tornado_future
	done   func(f *C.tornado_future) // on the loop goroutine; the future is released after it
}

// DialWebSocket opens a WebSocket to req.URL (ws:// or wss://) through
// the client's connections and waits for the handshake: req gives the
// handshake's headers, auth, TLS options, proxy and timeouts (its method,
// body and redirects are not used); the context's deadline is the
// timeout and its cancel aborts the handshake. A server that does not
// switch protocols is an *Error of kind "protocol".
func (c *core) DialWebSocket(ctx context.Context, req *Request, opts *WebSocketOptions) (*WebSocket, error) {
	if req == nil {
		return nil, newError(ErrCodeInvalid, "invalid: nil Request", 0, nil)
	}
	if opts == nil {
		opts = &WebSocketOptions{}
	}
	if err := ctx.Err(); err != nil {
		return nil, newError(ErrCodeCancelled, "cancelled: "+err.Error(), 0, err)
	}
	if req.Body != nil || req.BodyReader != nil {
		return nil, newError(ErrCodeInvalid, "invalid: a WebSocket handshake has no body", 0, nil)
	}
	deadline, hasDeadline := ctx.Deadline()
	cl, err := c.prepare(req, false, deadline, hasDeadline)
	if err != nil {
		return nil, err
	}
	var spec C.tg_ws_spec
	spec.compression = -1
	if opts.Compression {
		spec.compression = C.int32_t(opts.CompressionLevel)
		if opts.CompressionLevel == 0 {
			spec.compression = 6
		}
		spec.no_context_takeover[0] = C.int32_t(boolInt(opts.ClientNoContextTakeover))
		spec.no_context_takeover[1] = C.int32_t(boolInt(opts.ServerNoContextTakeover))
		spec.server_max_window_bits = C.int32_t(opts.ServerMaxWindowBits)
		spec.client_max_window_bits = C.int32_t(opts.ClientMaxWindowBits)
	} else if opts.ClientNoContextTakeover || opts.ServerNoContextTakeover || opts.ServerMaxWindowBits != 0 ||
		opts.ClientMaxWindowBits != 0 {
		return nil, newError(ErrCodeInvalid, "invalid: context takeover and window bits need Compression", 0, nil)
	}
	spec.max_message_size = C.int64_t(opts.MaxMessageSize)
	spec.max_write_buffer = C.int64_t(opts.MaxWriteBuffer)
	spec.ping_interval = C.double(opts.PingInterval.Seconds())
	spec.ping_timeout = C.double(opts.PingTimeout.Seconds())
	spec.close_timeout = C.double(opts.CloseTimeout.Seconds())
	var subs []byte
	for _, s := range opts.Subprotocols {
		if strings.IndexByte(s, 0) >= 0 {
			return nil, newError(ErrCodeInvalid, "invalid: a NUL byte in subprotocol "+strconv.Quote(s), 0, nil)
		}
		subs = appendStrings(subs, s)
	}
	subs = append(subs, 0)
	spec.nsubprotocols = C.int32_t(len(opts.Subprotocols))

	ws := &WebSocket{c: c}
	if opts.OnPing != nil {
		ws.pings = make(chan []byte, 64)
		go func() {
			for p := range ws.pings {
				opts.OnPing(p)
			}
		}()
	}
	type dialed struct {
		err error
	}
	result := make(chan dialed, 1)
	var connect *C.tornado_future
	start := func() {
		var blobs *C.uint8_t
		if len(cl.blobs) > 0 {
			blobs = (*C.uint8_t)(unsafe.Pointer(&cl.blobs[0]))
		}
		f := C.tg_ws_connect(c.st, &cl.spec, (*C.char)(unsafe.Pointer(&cl.strs[0])), C.size_t(len(cl.strs)), blobs,
			&spec, (*C.char)(unsafe.Pointer(&subs[0])), &c.errbuf[0], C.size_t(len(c.errbuf)))
		if f == nil {
			result <- dialed{libError(C.GoString(&c.errbuf[0]))}
			return
		}
		connect = f
		err := c.watch(f, func(f *C.tornado_future) {
			connect = nil
			var msg *C.char
			if code := C.tornado_future_error(f, &msg); code != 0 {
				result <- dialed{newError(int(code), C.GoString(msg), int(C.tornado_future_os_error(f)), nil)}
				return
			}
			ws.ptr = C.tornado_websocket_ref((*C.tornado_websocket)(C.tornado_future_result(f)))
			c.nextID++
			ws.id = c.nextID
			c.sockets[ws.id] = ws
			if ws.pings != nil {
				C.tg_ws_watch_pings(c.st, ws.ptr, C.uint64_t(ws.id))
			}
			result <- dialed{}
		})
		if err != nil {
			result <- dialed{err}
		}
	}
	if err := c.submit(op{kind: opFunc, fn: start}); err != nil {
		return nil, err
	}
	var r dialed
	select {
	case r = <-result:
	case <-ctx.Done():
		_ = c.submit(op{kind: opFunc, fn: func() {
			if connect != nil {
				C.tornado_future_cancel(connect)
			}
		}})
		r = <-result
		if r.err == nil { // connected first: the caller has gone, so close it (which releases it)
			ws.Close(context.Background(), 0, "")
			return nil, newError(ErrCodeCancelled, "cancelled: "+ctx.Err().Error(), 0, ctx.Err())
		}
		if isCancelled(r.err) {
			r.err = newError(ErrCodeCancelled, "cancelled: "+ctx.Err().Error(), 0, ctx.Err())
		}
	}
	if r.err != nil {
		if ws.pings != nil {
			close(ws.pings) // never connected: nothing else closes it
		}
		return nil, r.err
	}
	_ = c.onLoop(func() {
		ws.subprotocol = goStringOrEmpty(C.tornado_websocket_subprotocol(ws.ptr))
		ws.extensions = goStringOrEmpty(C.tornado_websocket_extensions(ws.ptr))
	})
	return ws, nil
}

func isCancelled(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == ErrCodeCancelled
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func goStringOrEmpty(s *C.char) string {
	if s == nil {
		return ""
	}
	return C.GoString(s)
}

// libError is a failed call's error from tornado_last_error's text, which
// names the code first ("TORNADO_ERR_CLOSED: closed: ...").
func libError(msg string) *Error {
	name, rest, _ := strings.Cut(msg, ": ")
	for code := 1; code <= ErrCodeInvalidURL; code++ {
		if codeName(code) == name {
			return newError(code, rest, 0, nil)
		}
	}
	return newError(ErrCodeInvalid, msg, 0, nil)
}

// cbytes copies data into C memory (at least one byte, so never NULL);
// the caller frees it.
func cbytes(data []byte) unsafe.Pointer {
	p := C.malloc(C.size_t(len(data) + 1))
	if len(data) > 0 {
		copy(unsafe.Slice((*byte)(p), len(data)), data)
	}
	return p
}

// watch calls done on the loop goroutine once f is done, then releases f
// (the loop goroutine; f's reference passes to the watch).
func (c *core) watch(f *C.tornado_future, done func(*C.tornado_future)) error {
	c.nextID++
	id := c.nextID
	if rc := C.tg_watch(c.st, f, C.uint64_t(id)); rc != 0 {
		C.tornado_future_unref(f)
		return lastError("watch", rc)
	}
	c.watches[id] = watch{future: f, done: done}
	return nil
}

// watched handles a TG_WATCHED event (the loop goroutine).
func (c *core) watched(id uint64) {
	w, ok := c.watches[id]
	if !ok {
		return
	}
	delete(c.watches, id)
	w.done(w.future)
	C.tornado_future_unref(w.future)
}

// pinged handles a TG_WS_PING event (the loop goroutine).
func (c *core) pinged(id uint64, data []byte) {
	if ws := c.sockets[id]; ws != nil && ws.pings != nil {
		select {
		case ws.pings <- data:
		default:
		}
	}
}

// closeSockets releases the connections left open (the loop goroutine, at Close).
func (c *core) closeSockets() {
	for id, ws := range c.sockets {
		ws.release()
		delete(c.sockets, id)
	}
}

// onLoopErr runs fn on the loop goroutine and returns its error.
func (c *core) onLoopErr(fn func() error) error {
	var err error
	if e := c.onLoop(func() { err = fn() }); e != nil {
		return e
	}
	return err
}

// wait runs start on the loop goroutine, which hands over a future to
// watch, and waits for it or for ctx; outcome reads the done future.
func (ws *WebSocket) wait(ctx context.Context, what string, start func() *C.tornado_future) error {
	result := make(chan error, 1)
	err := ws.c.onLoopErr(func() error {
		if ws.ptr == nil {
			return ErrWebSocketClosed
		}
		f := start()
		if f == nil {
			return ws.callError(what)
		}
		return ws.c.watch(f, func(f *C.tornado_future) {
			var msg *C.char
			if code := C.tornado_future_error(f, &msg); code != 0 {
				result <- newError(int(code), C.GoString(msg), int(C.tornado_future_os_error(f)), nil)
				return
			}
			result <- nil
		})
	})
	if err != nil {
		return err
	}
	select {
	case err := <-result:
		return err
	case <-ctx.Done():
		return newError(ErrCodeCancelled, "cancelled: "+ctx.Err().Error(), 0, ctx.Err())
	}
}

// callError is the error of a call that returned NULL (the loop goroutine).
func (ws *WebSocket) callError(what string) error {
	msg := "(no message)"
	if m := C.tornado_last_error(); m != nil {
		msg = C.GoString(m)
	}
	err := libError(msg)
	if err.Code == ErrCodeClosed {
		return ErrWebSocketClosed
	}
	err.Message = what + ": " + err.Message
	return err
}

// ReadMessage waits for the next message. It returns io.EOF once the
// connection closed cleanly (a close handshake from either side; see
// CloseCode), and the connection's *Error when it ended otherwise
// (timeout, protocol, too_large, closed).
func (ws *WebSocket) ReadMessage(ctx context.Context) (MessageType, []byte, error) {
	ws.mu.Lock()
	reading := ws.reading
	if reading == nil {
		reading = make(chan wsRead, 1)
		err := ws.c.onLoopErr(func() error {
			if ws.ptr == nil {
				return ErrWebSocketClosed
			}
			f := C.tornado_websocket_read_message(ws.ptr)
			if f == nil {
				return ws.callError("read_message")
			}
			return ws.c.watch(f, func(f *C.tornado_future) { reading <- ws.readOutcome(f) })
		})
		if err != nil {
			ws.mu.Unlock()
			return 0, nil, err
		}
		ws.reading = reading
	}
	ws.mu.Unlock()
	select {
	case r := <-reading:
		ws.mu.Lock()
		ws.reading = nil
		ws.mu.Unlock()
		return r.typ, r.data, r.err
	case <-ctx.Done(): // the read stays in flight: the next call gets its message
		return 0, nil, newError(ErrCodeCancelled, "cancelled: "+ctx.Err().Error(), 0, ctx.Err())
	}
}

// readOutcome reads a done read future (the loop goroutine).
func (ws *WebSocket) readOutcome(f *C.tornado_future) wsRead {
	var msg *C.char
	if code := C.tornado_future_error(f, &msg); code != 0 {
		return wsRead{err: newError(int(code), C.GoString(msg), int(C.tornado_future_os_error(f)), nil)}
	}
	m := (*C.tornado_websocket_message)(C.tornado_future_result(f))
	if m == nil {
		return wsRead{err: io.EOF}
	}
	var n C.size_t
	data := C.tornado_websocket_message_data(m, &n)
	r := wsRead{typ: TextMessage, data: C.GoBytes(unsafe.Pointer(data), C.int(n))}
	if C.tornado_websocket_message_is_binary(m) {
		r.typ = BinaryMessage
	}
	return r
}

// WriteMessage sends a message (TextMessage data must be UTF-8) and waits
// until it is on the wire. ErrWebSocketClosed once closing or closed.
func (ws *WebSocket) WriteMessage(ctx context.Context, typ MessageType, data []byte) error {
	if typ != TextMessage && typ != BinaryMessage {
		return newError(ErrCodeInvalid, "invalid: MessageType "+strconv.Itoa(int(typ)), 0, nil)
	}
	buf := cbytes(data) // the library copies it during the call
	defer C.free(buf)
	return ws.wait(ctx, "write_message", func() *C.tornado_future {
		return C.tornado_websocket_write_message(ws.ptr, (*C.uint8_t)(buf), C.size_t(len(data)), C.bool(typ == BinaryMessage))
	})
}

// Ping sends a ping (at most 125 bytes) and waits until it is on the wire.
func (ws *WebSocket) Ping(ctx context.Context, payload []byte) error {
	buf := cbytes(payload)
	defer C.free(buf)
	return ws.wait(ctx, "ping", func() *C.tornado_future {
		return C.tornado_websocket_ping(ws.ptr, (*C.uint8_t)(buf), C.size_t(len(payload)))
	})
}

// Close runs the close handshake with code (0: none) and reason, waits
// for the server's close frame (at most CloseTimeout), then releases the
// connection. After Close, CloseCode still answers; other calls return
// ErrWebSocketClosed. Closing again returns nil.
func (ws *WebSocket) Close(ctx context.Context, code int, reason string) error {
	if strings.IndexByte(reason, 0) >= 0 {
		return newError(ErrCodeInvalid, "invalid: a NUL byte in the close reason", 0, nil)
	}
	var creason *C.char
	if reason != "" {
		creason = C.CString(reason)
		defer C.free(unsafe.Pointer(creason))
	}
	err := ws.wait(ctx, "close", func() *C.tornado_future {
		return C.tornado_websocket_close(ws.ptr, C.int(code), creason)
	})
	if err == ErrWebSocketClosed {
		return nil // released already
	}
	var e *Error
	if errors.As(err, &e) && e.Code == ErrCodeInvalid {
		return err // a bad code or reason: the connection stays open
	}
	_ = ws.c.onLoop(func() {
		ws.release()
		delete(ws.c.sockets, ws.id)
	})
	return err
}

// release keeps what the accessors answer and drops the handle (the loop goroutine).
func (ws *WebSocket) release() {
	if ws.ptr == nil {
		return
	}
	ws.closeCode = int(C.tornado_websocket_close_code(ws.ptr))
	ws.closeReason = goStringOrEmpty(C.tornado_websocket_close_reason(ws.ptr))
	C.tornado_websocket_unref(ws.ptr)
	ws.ptr = nil
	if ws.pings != nil {
		close(ws.pings)
	}
}

// CloseCode is the code and reason of the server's close frame (0, "" before one).
func (ws *WebSocket) CloseCode() (int, string) {
	code, reason := 0, ""
	err := ws.c.onLoop(func() {
		if ws.ptr == nil {
			code, reason = ws.closeCode, ws.closeReason
			return
		}
		code = int(C.tornado_websocket_close_code(ws.ptr))
		reason = goStringOrEmpty(C.tornado_websocket_close_reason(ws.ptr))
	})
	if err != nil { // the client is closed: every connection was released
		return ws.closeCode, ws.closeReason
	}
	return code, reason
}

// Subprotocol is the subprotocol the server chose ("" for none).
func (ws *WebSocket) Subprotocol() string { return ws.subprotocol }

// Extensions are the extensions agreed (e.g. "permessage-deflate"), or "".
func (ws *WebSocket) Extensions() string { return ws.extensions }

// State says whether the connection ended, why when not cleanly (an
// *Error), and the bytes written and not yet on the wire.
func (ws *WebSocket) State() (closed bool, why error, buffered int) {
	_ = ws.c.onLoop(func() {
		if ws.ptr == nil {
			closed = true
			return
		}
		closed = bool(C.tornado_websocket_is_closed(ws.ptr))
		if code := C.tornado_websocket_error(ws.ptr); code != 0 {
			why = libError(goStringOrEmpty(C.tornado_last_error()))
			why.(*Error).Code = int(code)
		}
		buffered = int(C.tornado_websocket_buffered_amount(ws.ptr))
	})
	return closed, why, buffered
}
