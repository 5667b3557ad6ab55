package tornado

/*
#include <stdlib.h>
#include "glue.h"
*/
import "C"

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"net/textproto"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Options configure a Client (nil: the defaults).
type Options struct {
	// Fetches in flight at once (default 64); the others wait in a FIFO queue.
	MaxClients int
	// Idle keep-alive connections kept per origin (default: MaxClients).
	MaxIdlePerHost int
	// How long an idle connection is kept (default 60 s).
	IdleTimeout time.Duration
	// Limits (defaults: 100 MiB body and read buffer, 64 KiB head).
	MaxBodySize, MaxBufferSize, MaxHeaderSize int64
	// Host names resolved to these IP addresses without asking DNS
	// (Tornado's hostname_mapping).
	HostnameMapping map[string]string
	// (host, port) connected to as (ToHost, ToPort), curl's --connect-to.
	EndpointMappings []EndpointMapping
	// Looks names up instead of the library's threaded resolver, with the
	// signature of (*net.Resolver).LookupNetIP (network is "ip", "ip4" or
	// "ip6"). It runs on its own goroutine; ctx ends when the client closes.
	Resolver func(ctx context.Context, network, host string) ([]netip.Addr, error)
	// Unread bytes of a streamed response body (RoundTrip) before the
	// library stops reading from the server (default 1 MiB).
	StreamWindow int
	// Used for requests that carry none (and for every RoundTrip).
	TLS *TLSOptions
	// The HTTP versions requests use unless they choose (Request.HTTPVersion);
	// HTTPVersionDefault: HTTPVersionAny.
	HTTPVersion HTTPVersion
	// The cookie jar (curl's -b/-c, off by default as in Tornado): every
	// response's Set-Cookie is kept and sent back to the URLs it matches,
	// across redirects and fetches; see Client.LoadCookies / SaveCookies.
	Cookies bool
	// How long the threaded resolver keeps an answer (curl's DNS cache):
	// 0 the default (60 s), negative: no cache (every connection asks).
	DNSCacheTTL time.Duration
	// The public suffix list the cookie jar refuses Domain= cookies for
	// (RFC 6265 5.3 step 5): a file in publicsuffix.org's format, such as
	// Debian's /usr/share/publicsuffix/public_suffix_list.dat; "": the list
	// built in. Read by NewClient (with Cookies on): a missing file, or
	// one that is no such list, fails it.
	PublicSuffixFile string
	// HTTP/2 liveness checks (nil: the library's, a PING after 5 s idle
	// answered within 2 s).
	HTTP2Ping *HTTP2Ping
}

// HTTP2Ping: a pooled HTTP/2 connection idle at least Idle answers a PING
// within Timeout before a fetch reuses it; otherwise it is dropped and the
// fetch opens another. Idle 0 turns the check off; a negative Idle, or a
// Timeout that is not positive, fails NewClient (ErrCodeInvalid).
type HTTP2Ping struct {
	Idle, Timeout time.Duration
}

// HTTPVersion says which HTTP versions a fetch may use (curl's --http1.1,
// --http2, --http2-prior-knowledge).
type HTTPVersion int

const (
	// HTTPVersionDefault: the client's (Options.HTTPVersion) for a
	// request, HTTPVersionAny for the client.
	HTTPVersionDefault HTTPVersion = iota
	// HTTPVersionAny: https offers h2 and http/1.1 by ALPN and uses what
	// the server picks; plain http is HTTP/1.1.
	HTTPVersionAny
	// HTTPVersion1_1: HTTP/1.1 only.
	HTTPVersion1_1
	// HTTPVersion2: HTTP/2 over TLS by ALPN (HTTP/1.1 if the server does
	// not pick h2); plain http as HTTPVersionAny.
	HTTPVersion2
	// HTTPVersion2PriorKnowledge: HTTP/2 without negotiation, plain TCP
	// too (h2c); a server that does not speak it fails the fetch.
	HTTPVersion2PriorKnowledge
)

// cValue is the TORNADO_HTTP_VERSION_* value, or -1 for the default.
func (v HTTPVersion) cValue() (C.int32_t, error) {
	switch v {
	case HTTPVersionDefault:
		return -1, nil
	case HTTPVersionAny:
		return C.TORNADO_HTTP_VERSION_ANY, nil
	case HTTPVersion1_1:
		return C.TORNADO_HTTP_VERSION_1_1, nil
	case HTTPVersion2:
		return C.TORNADO_HTTP_VERSION_2, nil
	case HTTPVersion2PriorKnowledge:
		return C.TORNADO_HTTP_VERSION_2_PRIOR_KNOWLEDGE, nil
	}
	return 0, newError(ErrCodeInvalid, "invalid: HTTPVersion "+strconv.Itoa(int(v)), 0, nil)
}

// EndpointMapping sends connections for (Host, Port) to (ToHost, ToPort).
type EndpointMapping struct {
	Host   string
	Port   uint16
	ToHost string
	ToPort uint16
}

// TLSOptions are a request's TLS settings. Certificates are validated
// unless InsecureSkipVerify.
type TLSOptions struct {
	InsecureSkipVerify bool
	CAFile             string // PEM file of trusted CAs (instead of the system's)
	CAPEM              []byte // PEM of trusted CAs (with CAFile's, if both)
	ClientCertPEM      []byte // a client certificate chain ...
	ClientKeyPEM       []byte // ... and its key
	ClientCertFile     string // or as PEM files (read when a connection starts)
	ClientKeyFile      string
	MinVersion         string // "1.2" (default) or "1.3"
	ServerName         string // SNI and the name checked, instead of the URL's host
}

// Proxy is an HTTP proxy (CONNECT for https). Host may also be a proxy
// URL, as curl's --proxy: "https://host:port" (TLS to the proxy itself),
// "socks5h://host:port", ...
type Proxy struct {
	Host               string
	Port               uint16 // 0: 8080
	Username, Password string
	// An https:// proxy's certificate: checked against the CAs of this PEM
	// file (curl's --proxy-cacert; "": the system's store), read when a
	// connection to the proxy starts (a bad file fails that fetch with a
	// "tls" error), or not checked at all with InsecureSkipVerify (curl's
	// --proxy-insecure, for tests). The target's certificate follows the
	// request's TLSOptions.
	CAFile             string
	InsecureSkipVerify bool
}

// Request describes one fetch (Tornado's HTTPRequest).
type Request struct {
	Method string // default GET
	URL    string
	Header http.Header
	Body   []byte // nil: none
	// A body streamed from a reader instead (chunked, or unframed when
	// Header has a Content-Length), read as the connection takes it; it is
	// sent once (not again after a 307/308 or a digest challenge).
	BodyReader io.Reader
	// 0: the library's default (20 s each); a context deadline lowers both.
	ConnectTimeout, RequestTimeout time.Duration
	NoRedirects                    bool // return 3xx responses as they are
	MaxRedirects                   int  // 0: 5
	NoDecompression                bool // keep gzip/deflate bodies as sent
	UserAgent                      string
	// Credentials, sent as AuthMode says: "basic" (default) or "digest".
	Username, Password, AuthMode string
	TLS                          *TLSOptions
	IPv4Only                     bool
	Proxy                        *Proxy
	NetworkInterface             string    // a local IP address to connect from
	IfModifiedSince              time.Time // sends If-Modified-Since (zero: none)
	AllowNonstandardMethods      bool
	Expect100Continue            bool
	// The HTTP versions this fetch may use (HTTPVersionDefault: the client's).
	HTTPVersion HTTPVersion
	// Connect to the Unix domain socket at this path instead of the URL's
	// host and port (curl's --unix-socket); the URL still gives the Host
	// header and the path. No proxy is used.
	UnixSocket string
}

// Response is a fetch's response, read whole.
type Response struct {
	StatusCode   int
	Reason       string
	Header       http.Header
	Body         []byte
	EffectiveURL string        // after redirects
	RequestTime  time.Duration // not counting time queued
	StartTime    time.Time     // when the fetch started
	Times        TimeInfo
	// The HTTP version it came over, as net/http's: "HTTP/1.1" (1, 1),
	// "HTTP/1.0" (1, 0) or "HTTP/2.0" (2, 0).
	Proto                  string
	ProtoMajor, ProtoMinor int
}

// TimeInfo is curl's timings of a fetch, each from its start: waiting for
// a slot among MaxClients, the name resolved, connected, the TLS handshake
// done (0 for http), about to send, the first response byte, all done.
type TimeInfo struct {
	Queue, NameLookup, Connect, AppConnect, PreTransfer, StartTransfer, Total time.Duration
}

// Stats are the client's counters (Tornado's len(client.queue) and
// len(client.active)).
type Stats struct {
	Queued, Active, IdleConnections int
	// Connections opened so far, and HTTP/2 connections open now.
	ConnectionsOpened, HTTP2Connections int
}

// Client is an HTTP client with keep-alive over one tornado_rs loop. Any
// goroutine may call it; Close it when done (a Client that is garbage
// collected unclosed is closed then).
type Client struct {
	*core
}

const defaultMaxClients = 64
const defaultStreamWindow = 1 << 20

// Bodies larger than this are copied into Go memory by the goroutine that
// called Do rather than by the loop's.
const lendAbove = 256 << 10

type opKind int

const (
	opStart opKind = iota
	opCancel
	opAck
	opFunc
	opClose
	opResolved
	opRelease
	opWrite
	opEndUpload
)

// op is one request to the loop goroutine.
type op struct {
	kind  opKind
	call  *call
	n     uint64
	err   error
	fn    func()
	reply *C.tornado_resolve_reply
	addrs []netip.Addr
	data  []byte
}

// core is the client's state; the loop goroutine holds it, the user holds
// the Client wrapper (so that an unreachable Client can be finalized).
type core struct {
	st     *C.tg_state
	window int
	tls    *TLSOptions

	mu          sync.Mutex
	ops, spare  []op
	wakePending bool
	closing     bool
	exited      chan struct{}

	// Loop goroutine only.
	calls    map[uint64]*call
	lent     int // fetches whose large body the caller copies (opRelease returns them)
	nextID   uint64
	replies  map[*C.tornado_resolve_reply]struct{}
	watches  map[uint64]watch      // futures of WebSockets waited for (websocket.go)
	sockets  map[uint64]*WebSocket // WebSockets not yet released
	resolver func(ctx context.Context, network, host string) ([]netip.Addr, error)
	ctx      context.Context
	cancel   context.CancelFunc
	errbuf   [512]C.char
	shutdown bool
	// Returns from the loop with events, and the events (for the tests:
	// several events per return is the batching).
	batches, events int
}

func liveReqs() int64 { return int64(C.tg_live_reqs()) }

// openClients counts clients whose loop goroutine runs (for the tests).
var openClients int64

// call is one fetch in flight.
type call struct {
	spec    C.tg_spec
	strs    []byte
	body    []byte
	hasBody bool
	blobs   []byte

	// Set by the loop goroutine before done (or head) is closed.
	creq      *C.tg_req
	cancelErr error
	result    *Response
	rawHeader []byte     // the header block (Do) or the head's lines (RoundTrip)
	lentBody  *C.uint8_t // a large body the caller copies, then releases
	lentLen   int
	err       error
	done      chan struct{}
	// Streaming (RoundTrip) only.
	head    chan struct{} // closed when the head arrived (or at done)
	gotHead bool
	stream  *bodyStream
	// Streamed upload only.
	upload  io.Reader
	written chan int32 // each write's outcome
}

// NewClient starts a client: its loop goroutine, locked to a new OS thread.
func NewClient(opts *Options) (*Client, error) {
	if opts == nil {
		opts = &Options{}
	}
	c := &core{
		window:   opts.StreamWindow,
		tls:      opts.TLS,
		exited:   make(chan struct{}),
		calls:    make(map[uint64]*call),
		replies:  make(map[*C.tornado_resolve_reply]struct{}),
		watches:  make(map[uint64]watch),
		sockets:  make(map[uint64]*WebSocket),
		resolver: opts.Resolver,
	}
	if c.window <= 0 {
		c.window = defaultStreamWindow
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	var spec C.tg_client_spec
	spec.max_clients = C.int64_t(opts.MaxClients)
	if opts.MaxClients <= 0 {
		spec.max_clients = defaultMaxClients
	}
	spec.max_idle_per_host = C.int64_t(opts.MaxIdlePerHost)
	spec.max_body_size = C.int64_t(opts.MaxBodySize)
	spec.max_buffer_size = C.int64_t(opts.MaxBufferSize)
	spec.max_header_size = C.int64_t(opts.MaxHeaderSize)
	spec.idle_timeout = -1
	if opts.IdleTimeout > 0 {
		spec.idle_timeout = C.double(opts.IdleTimeout.Seconds())
	}
	var strs []byte
	for host, addr := range opts.HostnameMapping {
		strs = appendStrings(strs, host, addr)
		spec.nhostmaps++
	}
	for _, m := range opts.EndpointMappings {
		strs = appendStrings(strs, m.Host, strconv.Itoa(int(m.Port)), m.ToHost, strconv.Itoa(int(m.ToPort)))
		spec.nendpoints++
	}
	if hasNUL(opts) {
		return nil, newError(ErrCodeInvalid, "invalid: a NUL byte in a mapping", 0, nil)
	}
	if strings.IndexByte(opts.PublicSuffixFile, 0) >= 0 {
		return nil, newError(ErrCodeInvalid, "invalid: a NUL byte in PublicSuffixFile", 0, nil)
	}
	strs = appendStrings(strs, opts.PublicSuffixFile)
	strs = append(strs, 0)
	if opts.Resolver != nil {
		spec.resolver = 1
	}
	version, err := opts.HTTPVersion.cValue()
	if err != nil {
		return nil, err
	}
	spec.http_version = version
	if opts.Cookies {
		spec.cookies = 1
	}
	if opts.DNSCacheTTL != 0 {
		spec.has_dns_cache_ttl = 1
		if opts.DNSCacheTTL > 0 {
			spec.dns_cache_ttl = C.double(opts.DNSCacheTTL.Seconds())
		}
	}
	if opts.HTTP2Ping != nil {
		spec.has_http2_ping = 1
		spec.http2_ping_idle = C.double(opts.HTTP2Ping.Idle.Seconds())
		spec.http2_ping_timeout = C.double(opts.HTTP2Ping.Timeout.Seconds())
	}
	ready := make(chan error, 1)
	go c.run(&spec, strs, ready)
	if err := <-ready; err != nil {
		return nil, err
	}
	client := &Client{c}
	runtime.SetFinalizer(client, func(client *Client) { go client.core.Close() })
	return client, nil
}

func hasNUL(opts *Options) bool {
	for host, addr := range opts.HostnameMapping {
		if strings.IndexByte(host, 0) >= 0 || strings.IndexByte(addr, 0) >= 0 {
			return true
		}
	}
	for _, m := range opts.EndpointMappings {
		if strings.IndexByte(m.Host, 0) >= 0 || strings.IndexByte(m.ToHost, 0) >= 0 {
			return true
		}
	}
	return false
}

func appendStrings(b []byte, ss ...string) []byte {
	for _, s := range ss {
		b = append(b, s...)
		b = append(b, 0)
	}
	return b
}

// Close ends the fetches in flight (with a "closed" error), closes the
// connections and stops the loop; it returns once all that is done. Any
// goroutine; a second Close waits for the first. Calls made after Close
// return ErrClientClosed.
func (c *core) Close() error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		<-c.exited
		return nil
	}
	c.closing = true
	c.ops = append(c.ops, op{kind: opClose})
	c.wakeLocked()
	c.mu.Unlock()
	<-c.exited
	return nil
}

// submit hands an op to the loop goroutine (any goroutine).
func (c *core) submit(o op) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return ErrClientClosed
	}
	c.ops = append(c.ops, o)
	c.wakeLocked()
	return nil
}

// wakeLocked wakes the loop once per batch of ops (c.mu held: the loop is
// not freed meanwhile).
func (c *core) wakeLocked() {
	if !c.wakePending {
		c.wakePending = true
		C.tg_wake(c.st)
	}
}

// onLoop runs fn on the loop goroutine and waits for it.
func (c *core) onLoop(fn func()) error {
	done := make(chan struct{})
	if err := c.submit(op{kind: opFunc, fn: func() { fn(); close(done) }}); err != nil {
		return err
	}
	<-done
	return nil
}

// CancelAll ends every fetch in flight or queued with a "cancelled" error
// (their connections closed); the client stays usable.
func (c *core) CancelAll() error {
	return c.onLoop(func() { C.tornado_http_client_cancel_all(c.st.client) })
}

// Stats reads the client's counters.
func (c *core) Stats() (Stats, error) {
	var s Stats
	err := c.onLoop(func() {
		s.Queued = int(C.tornado_http_client_queued(c.st.client))
		s.Active = int(C.tornado_http_client_active(c.st.client))
		s.IdleConnections = int(C.tornado_http_client_idle_connections(c.st.client))
		s.ConnectionsOpened = int(C.tornado_http_client_connections_opened(c.st.client))
		s.HTTP2Connections = int(C.tornado_http_client_http2_connections(c.st.client))
	})
	return s, err
}

// LoadCookies adds the cookies of a curl (Netscape) cookie file to the
// jar (Options.Cookies), replacing held ones of the same domain, path and
// name. A malformed line fails the whole load (the jar unchanged).
func (c *core) LoadCookies(path string) error {
	return c.cookieCall(path, func(p *C.char) C.tornado_code { return C.tornado_http_client_load_cookies(c.st.client, p) })
}

// SaveCookies writes the jar's unexpired cookies to path as a curl
// (Netscape) cookie file, through a temporary file renamed into place.
func (c *core) SaveCookies(path string) error {
	return c.cookieCall(path, func(p *C.char) C.tornado_code { return C.tornado_http_client_save_cookies(c.st.client, p) })
}

// ClearCookies empties the jar.
func (c *core) ClearCookies() error {
	return c.cookieCall("", func(*C.char) C.tornado_code { return C.tornado_http_client_clear_cookies(c.st.client) })
}

// CookieCount is the number of unexpired cookies in the jar (0 with
// cookies off).
func (c *core) CookieCount() (int, error) {
	var n int
	err := c.onLoop(func() { n = int(C.tornado_http_client_cookie_count(c.st.client)) })
	return n, err
}

// cookieCall runs a jar call with path (a C string) on the loop.
func (c *core) cookieCall(path string, call func(*C.char) C.tornado_code) error {
	if strings.IndexByte(path, 0) >= 0 {
		return newError(ErrCodeInvalid, "invalid: a NUL byte in the cookie file's path", 0, nil)
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var err error
	if e := c.onLoop(func() {
		if rc := call(cpath); rc != 0 {
			text := "(no message)"
			if msg := C.tornado_last_error(); msg != nil {
				text = C.GoString(msg)
			}
			err = newError(int(rc), text, 0, nil)
		}
	}); e != nil {
		return e
	}
	return err
}

// run is the loop goroutine.
func (c *core) run(spec *C.tg_client_spec, strs []byte, ready chan<- error) {
	// Never unlocked: the thread ends with this goroutine.
	runtime.LockOSThread()
	c.st = C.tg_state_new()
	if rc := C.tg_open(c.st, spec, (*C.char)(unsafe.Pointer(&strs[0])), &c.errbuf[0], C.size_t(len(c.errbuf))); rc != 0 {
		ready <- newError(int(rc), "client: "+C.GoString(&c.errbuf[0]), 0, nil)
		C.tg_state_free(c.st)
		close(c.exited)
		return
	}
	atomic.AddInt64(&openClients, 1)
	ready <- nil
	for !c.shutdown {
		c.handleOps()
		if c.shutdown {
			break
		}
		if rc := C.tg_drive(c.st); rc != 0 {
			panic(lastError("tornado (Go binding): the loop failed", rc))
		}
		c.handleEvents()
	}
	c.close()
}

func (c *core) handleOps() {
	c.mu.Lock()
	ops := c.ops
	c.ops = c.spare[:0]
	c.wakePending = false
	c.mu.Unlock()
	for i := range ops {
		o := &ops[i]
		switch o.kind {
		case opStart:
			c.start(o.call)
		case opCancel:
			if o.call.creq != nil {
				if o.call.cancelErr == nil {
					o.call.cancelErr = o.err
				}
				C.tornado_future_cancel(o.call.creq.future)
			}
		case opAck:
			if o.call.creq != nil {
				C.tg_req_consumed(o.call.creq, C.uint64_t(o.n))
			}
		case opFunc:
			o.fn()
		case opResolved:
			c.answer(o.reply, o.addrs, uint16(o.n), o.err)
		case opRelease:
			C.tg_req_release(o.call.creq)
			o.call.creq = nil
			c.lent--
		case opWrite:
			if o.call.creq != nil {
				rc := C.tg_upload_write(o.call.creq, (*C.uint8_t)(unsafe.Pointer(&o.data[0])), C.size_t(len(o.data)))
				if rc != 0 {
					select {
					case o.call.written <- int32(rc):
					default:
					}
				}
			}
		case opEndUpload:
			if o.call.creq != nil {
				if o.err != nil {
					msg := C.CString("the body reader failed: " + o.err.Error())
					C.tg_upload_end(o.call.creq, ErrCodeUser, msg)
					C.free(unsafe.Pointer(msg))
				} else {
					C.tg_upload_end(o.call.creq, 0, nil)
				}
			}
		case opClose:
			c.shutdown = true
		}
		*o = op{}
	}
	c.spare = ops
}

func (c *core) start(cl *call) {
	c.nextID++
	cl.spec.id = C.uint64_t(c.nextID)
	var body, blobs *C.uint8_t
	if len(cl.body) > 0 {
		body = (*C.uint8_t)(unsafe.Pointer(&cl.body[0]))
	}
	if len(cl.blobs) > 0 {
		blobs = (*C.uint8_t)(unsafe.Pointer(&cl.blobs[0]))
	}
	hasBody := C.int(0)
	if cl.hasBody {
		hasBody = 1
	}
	creq := C.tg_start(c.st, &cl.spec, (*C.char)(unsafe.Pointer(&cl.strs[0])), C.size_t(len(cl.strs)),
		body, C.size_t(len(cl.body)), hasBody, blobs, &c.errbuf[0], C.size_t(len(c.errbuf)))
	if creq == nil {
		cl.err = newError(ErrCodeInvalid, C.GoString(&c.errbuf[0]), 0, nil)
		cl.finish()
		return
	}
	cl.creq = creq
	c.calls[c.nextID] = cl
}

func (c *core) handleEvents() {
	n := int(c.st.nevents)
	if n == 0 {
		return
	}
	events := unsafe.Slice(c.st.events, n)
	c.batches++
	c.events += n
	for i := range events {
		ev := &events[i]
		if ev.kind == C.TG_RESOLVE {
			host := C.GoStringN((*C.char)(unsafe.Pointer(ev.data)), C.int(ev.len))
			C.free(unsafe.Pointer(ev.data))
			c.resolve(host, uint16(ev.port), ev.family, ev.reply)
			continue
		}
		if ev.kind == C.TG_WATCHED {
			c.watched(uint64(ev.id))
			continue
		}
		if ev.kind == C.TG_WS_PING {
			data := C.GoBytes(unsafe.Pointer(ev.data), C.int(ev.len))
			C.free(unsafe.Pointer(ev.data))
			c.pinged(uint64(ev.id), data)
			continue
		}
		cl := c.calls[uint64(ev.id)]
		if cl == nil {
			// After its TG_DONE (an upload write that failed as the fetch
			// ended): nothing waits for it.
			if ev.kind == C.TG_HEAD {
				C.free(unsafe.Pointer(ev.data))
			} else if ev.kind == C.TG_CHUNK {
				C.tg_chunk_free(ev.data, ev.len)
			}
			continue
		}
		switch ev.kind {
		case C.TG_DONE:
			c.done(cl)
		case C.TG_HEAD:
			cl.rawHeader = C.GoBytes(unsafe.Pointer(ev.data), C.int(ev.len))
			C.free(unsafe.Pointer(ev.data))
			cl.gotHead = true
			close(cl.head)
		case C.TG_CHUNK:
			cl.stream.deliver(unsafe.Pointer(ev.data), int(ev.len))
		case C.TG_PRODUCE:
			go c.produce(cl)
		case C.TG_WRITTEN:
			select {
			case cl.written <- int32(ev.code):
			default:
			}
		}
	}
	c.st.nevents = 0
}

// done reads a finished fetch and hands it to its caller.
func (c *core) done(cl *call) {
	delete(c.calls, uint64(cl.spec.id))
	var res C.tg_result
	C.tg_collect(cl.creq, &res)
	if res.error_code != 0 {
		msg := C.GoString(res.error)
		cl.err = newError(int(res.error_code), msg, int(res.os_error), cl.cancelErr)
	}
	if res.has_response != 0 && cl.stream == nil {
		r := &Response{
			StatusCode:   int(res.code),
			Reason:       C.GoString(res.reason),
			EffectiveURL: C.GoString(res.url),
			RequestTime:  seconds(res.request_time),
			StartTime:    time.UnixMicro(int64(float64(res.start_time) * 1e6)),
			Times: TimeInfo{
				Queue: seconds(res.times.queue), NameLookup: seconds(res.times.namelookup),
				Connect: seconds(res.times.connect), AppConnect: seconds(res.times.appconnect),
				PreTransfer: seconds(res.times.pretransfer), StartTransfer: seconds(res.times.starttransfer),
				Total: seconds(res.times.total),
			},
		}
		r.Proto, r.ProtoMajor, r.ProtoMinor = protoOf(int(res.version))
		cl.rawHeader = C.GoBytes(unsafe.Pointer(res.headers), C.int(res.headers_len))
		cl.result = r
		if res.body_len > lendAbove {
			// Copied by the caller's goroutine, which then hands the
			// fetch back (opRelease): the loop goes on meanwhile.
			cl.lentBody, cl.lentLen = res.body, int(res.body_len)
			c.lent++
			cl.finish()
			return
		}
		if res.body_len > 0 {
			r.Body = C.GoBytes(unsafe.Pointer(res.body), C.int(res.body_len))
		} else {
			r.Body = []byte{}
		}
	}
	C.tg_req_release(cl.creq)
	cl.creq = nil
	if cl.stream != nil {
		err := cl.err
		if err == nil {
			err = errEOF
		}
		cl.stream.finish(err)
	}
	cl.finish()
}

// produce streams a request body from its reader (its own goroutine): one
// write at a time, the next read once the connection took the last.
func (c *core) produce(cl *call) {
	buf := make([]byte, 64<<10)
	for {
		n, err := cl.upload.Read(buf)
		if n > 0 {
			if c.submit(op{kind: opWrite, call: cl, data: buf[:n]}) != nil {
				return
			}
			select {
			case code := <-cl.written:
				if code != 0 {
					return // the fetch fails with the reason
				}
			case <-cl.done:
				return
			}
		}
		if err == io.EOF {
			_ = c.submit(op{kind: opEndUpload, call: cl})
			return
		}
		if err != nil {
			_ = c.submit(op{kind: opEndUpload, call: cl, err: err})
			return
		}
	}
}

func seconds(s C.double) time.Duration { return time.Duration(float64(s) * float64(time.Second)) }

func (cl *call) finish() {
	if cl.head != nil && !cl.gotHead {
		close(cl.head)
	}
	close(cl.done)
}

func (c *core) resolve(host string, port uint16, family C.int32_t, reply *C.tornado_resolve_reply) {
	if c.shutdown {
		c.answer(reply, nil, 0, ErrClientClosed)
		return
	}
	c.replies[reply] = struct{}{}
	if addr, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		c.answer(reply, []netip.Addr{addr}, port, nil) // an IP literal needs no lookup
		return
	}
	network := "ip"
	switch family {
	case C.int32_t(syscall.AF_INET):
		network = "ip4"
	case C.int32_t(syscall.AF_INET6):
		network = "ip6"
	}
	go func() {
		addrs, err := c.resolver(c.ctx, network, host)
		if err == nil && len(addrs) == 0 {
			err = errors.New("no address")
		}
		if c.submit(op{kind: opResolved, reply: reply, addrs: addrs, n: uint64(port), err: err}) != nil {
			return // closing: close() fails the reply
		}
	}()
}

func (c *core) answer(reply *C.tornado_resolve_reply, addrs []netip.Addr, port uint16, err error) {
	if _, ok := c.replies[reply]; !ok && !c.shutdown {
		return
	}
	delete(c.replies, reply)
	var strs []byte
	for _, a := range addrs {
		strs = appendStrings(strs, a.String())
	}
	strs = append(strs, 0)
	var msg *C.char
	n := len(addrs)
	if err != nil {
		msg = C.CString(err.Error())
		defer C.free(unsafe.Pointer(msg))
		n = 0
	}
	C.tg_resolve_answer(reply, (*C.char)(unsafe.Pointer(&strs[0])), C.int32_t(n), C.uint16_t(port), msg)
}

// close frees the client and the loop (the loop goroutine, at the end).
func (c *core) close() {
	c.cancel()
	for reply := range c.replies {
		c.answer(reply, nil, 0, ErrClientClosed)
	}
	// WebSockets left open close at once: their reads and writes end.
	c.closeSockets()
	C.tornado_http_client_free(c.st.client)
	// The fetches end with a "closed" error, called back from the loop;
	// lent bodies come back; the WebSockets' futures end.
	for len(c.calls) > 0 || c.lent > 0 || len(c.watches) > 0 {
		if rc := C.tg_drive(c.st); rc != 0 {
			break
		}
		c.handleEvents()
		c.handleOps()
	}
	c.mu.Lock() // no wake-up may reach the loop from now on (c.closing is set)
	C.tornado_loop_free(c.st.loop)
	c.mu.Unlock()
	C.tg_state_free(c.st)
	atomic.AddInt64(&openClients, -1)
	close(c.exited)
}

// prepare encodes a request for tg_start (in the caller's goroutine).
func (c *core) prepare(req *Request, stream bool, deadline time.Time, hasDeadline bool) (*call, error) {
	cl := &call{done: make(chan struct{})}
	s := &cl.spec
	s.connect_timeout, s.request_timeout = -1, -1
	if req.ConnectTimeout > 0 {
		s.connect_timeout = C.double(req.ConnectTimeout.Seconds())
	}
	if req.RequestTimeout > 0 {
		s.request_timeout = C.double(req.RequestTimeout.Seconds())
	} else if stream {
		s.request_timeout = 0 // net/http's: no limit but the context's
	}
	if hasDeadline {
		left := time.Until(deadline).Seconds()
		if left <= 0 {
			left = 1e-6
		}
		if s.connect_timeout < 0 || float64(s.connect_timeout) > left {
			s.connect_timeout = C.double(left)
		}
		if s.request_timeout <= 0 || float64(s.request_timeout) > left {
			s.request_timeout = C.double(left)
		}
	}
	s.if_modified_since = -1
	if !req.IfModifiedSince.IsZero() {
		s.if_modified_since = C.double(float64(req.IfModifiedSince.UnixMicro()) / 1e6)
	}
	s.follow_redirects, s.max_redirects, s.decompress, s.validate_cert, s.allow_ipv6 = -1, -1, -1, -1, -1
	if req.NoRedirects {
		s.follow_redirects = 0
	}
	if req.MaxRedirects > 0 {
		s.max_redirects = C.int32_t(req.MaxRedirects)
	}
	if req.NoDecompression {
		s.decompress = 0
	}
	if req.IPv4Only {
		s.allow_ipv6 = 0
	}
	if req.AllowNonstandardMethods {
		s.allow_nonstandard = 1
	}
	if req.Expect100Continue {
		s.expect_continue = 1
	}
	version, err := req.HTTPVersion.cValue()
	if err != nil {
		return nil, err
	}
	s.http_version = version
	if req.Username != "" || req.Password != "" {
		s.has_auth = 1
	}
	tls := req.TLS
	if tls == nil {
		tls = c.tls
	}
	if tls == nil {
		tls = &TLSOptions{}
	}
	if tls.InsecureSkipVerify {
		s.validate_cert = 0
	}
	var proxy Proxy
	s.proxy_validate_cert = -1
	if req.Proxy != nil {
		proxy = *req.Proxy
		s.proxy_port = C.uint16_t(proxy.Port)
		if proxy.InsecureSkipVerify {
			s.proxy_validate_cert = 0
		}
	}
	strs := make([]byte, 0, len(req.URL)+64)
	for _, str := range [C.TG_S_COUNT]string{
		req.URL, req.Method, req.UserAgent, req.Username, req.Password, req.AuthMode,
		tls.CAFile, tls.MinVersion, tls.ServerName, proxy.Host, proxy.Username, proxy.Password,
		req.NetworkInterface, tls.ClientCertFile, tls.ClientKeyFile, req.UnixSocket, proxy.CAFile,
	} {
		if strings.IndexByte(str, 0) >= 0 {
			return nil, newError(ErrCodeInvalid, "invalid: a NUL byte in "+strconv.Quote(str), 0, nil)
		}
		strs = append(strs, str...)
		strs = append(strs, 0)
	}
	for name, values := range req.Header {
		for _, v := range values {
			if strings.IndexByte(name, 0) >= 0 || strings.IndexByte(v, 0) >= 0 {
				return nil, newError(ErrCodeInvalid, "invalid: a NUL byte in header "+strconv.Quote(name), 0, nil)
			}
			strs = appendStrings(strs, name, v)
			s.nheaders++
		}
	}
	cl.strs = strs
	if req.Body != nil {
		cl.body, cl.hasBody = req.Body, true
	}
	if req.BodyReader != nil {
		if req.Body != nil {
			return nil, newError(ErrCodeInvalid, "invalid: both Body and BodyReader", 0, nil)
		}
		s.produce = 1
		cl.upload = req.BodyReader
		cl.written = make(chan int32, 1)
	}
	s.ca_pem_len = C.size_t(len(tls.CAPEM))
	s.cert_pem_len = C.size_t(len(tls.ClientCertPEM))
	s.key_pem_len = C.size_t(len(tls.ClientKeyPEM))
	if len(tls.CAPEM)+len(tls.ClientCertPEM)+len(tls.ClientKeyPEM) > 0 {
		cl.blobs = append(append(append([]byte{}, tls.CAPEM...), tls.ClientCertPEM...), tls.ClientKeyPEM...)
	}
	if stream {
		s.stream = 1
		s.window = C.uint64_t(c.window)
		cl.head = make(chan struct{})
		cl.stream = newBodyStream(c, cl)
	}
	return cl, nil
}

// Do fetches req and returns the whole response. The context's deadline
// is the fetch's timeout; cancelling the context aborts the fetch (the
// connection is closed) before Do returns. An error is returned when no
// response was received, and with the last 3xx response when redirects ran
// out (Code ErrCodeTooManyRedirects); any HTTP status is a Response.
func (c *core) Do(ctx context.Context, req *Request) (*Response, error) {
	if req == nil {
		return nil, newError(ErrCodeInvalid, "invalid: nil Request", 0, nil)
	}
	if err := ctx.Err(); err != nil {
		return nil, newError(ErrCodeCancelled, "cancelled: "+err.Error(), 0, err)
	}
	deadline, hasDeadline := ctx.Deadline()
	cl, err := c.prepare(req, false, deadline, hasDeadline)
	if err != nil {
		return nil, err
	}
	if err := c.submit(op{kind: opStart, call: cl}); err != nil {
		return nil, err
	}
	select {
	case <-cl.done:
	case <-ctx.Done():
		// Cancelled: abort the fetch and wait until it has ended (its
		// connection closed); if it ended first, its own outcome stands.
		_ = c.submit(op{kind: opCancel, call: cl, err: ctx.Err()})
		<-cl.done
	}
	if cl.result != nil {
		if cl.lentBody != nil {
			cl.result.Body = C.GoBytes(unsafe.Pointer(cl.lentBody), C.int(cl.lentLen))
			cl.lentBody = nil
			c.mu.Lock() // accepted while closing too: the loop waits for it
			c.ops = append(c.ops, op{kind: opRelease, call: cl})
			c.wakeLocked()
			c.mu.Unlock()
		}
		cl.result.Header = parseHeaderBlock(cl.rawHeader, len(cl.rawHeader)/24)
	}
	if cl.err != nil {
		return cl.result, cl.err
	}
	return cl.result, nil
}

// parseHeaderBlock reads "Name: value" lines (CRLF or LF ended; a line
// starting with a space or tab continues the previous value).
func parseHeaderBlock(block []byte, hint int) http.Header {
	h := make(http.Header, hint)
	var last string
	for len(block) > 0 {
		line := block
		if i := bytes.IndexByte(block, '\n'); i >= 0 {
			line, block = block[:i], block[i+1:]
		} else {
			block = nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && last != "" {
			vs := h[last]
			vs[len(vs)-1] += " " + string(bytes.TrimSpace(line))
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		last = textproto.CanonicalMIMEHeaderKey(string(bytes.TrimSpace(line[:colon])))
		h[last] = append(h[last], string(bytes.Trim(line[colon+1:], " \t")))
	}
	return h
}

// protoOf gives tornado_http_response_version's 10, 11 or 20 as net/http's
// Proto, ProtoMajor and ProtoMinor.
func protoOf(version int) (string, int, int) {
	if version == 0 {
		return "", 0, 0
	}
	major, minor := version/10, version%10
	return "HTTP/" + strconv.Itoa(major) + "." + strconv.Itoa(minor), major, minor
}
