package tornado

/*
#include <stdlib.h>
#include "glue.h"
*/
import "C"

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

var errEOF = io.EOF

var errBodyClosed = errors.New("tornado: read on closed response body")

// RoundTrip makes Client an http.RoundTripper: http.Client{Transport:
// client} runs net/http code over tornado_rs. The response arrives once its
// head has; its Body streams from the library (the read from the server
// pauses while more than Options.StreamWindow bytes are unread). Redirects
// are left to http.Client; the request's context ends the fetch (its
// connection closed) whether the head or the body is being read; closing
// the Body early closes the connection too. gzip is asked for and decoded
// as net/http's Transport does when the request names no Accept-Encoding
// (Response.Uncompressed). There is no time limit but the context's.
func (c *core) RoundTrip(hr *http.Request) (*http.Response, error) {
	if hr.URL == nil {
		closeBody(hr)
		return nil, errors.New("tornado: nil Request.URL")
	}
	ctx := hr.Context()
	req := &Request{
		Method:                  hr.Method,
		URL:                     hr.URL.String(),
		Header:                  hr.Header,
		NoRedirects:             true,
		AllowNonstandardMethods: true,
	}
	if req.Method == "" {
		req.Method = http.MethodGet
	}
	if hr.Host != "" && hr.Host != hr.URL.Host {
		req.Header = hr.Header.Clone()
		if req.Header == nil {
			req.Header = http.Header{}
		}
		req.Header.Set("Host", hr.Host)
	}
	decoding := hr.Header.Get("Accept-Encoding") == "" && hr.Header.Get("Range") == "" && req.Method != http.MethodHead
	req.NoDecompression = !decoding
	if hr.Body != nil && hr.Body != http.NoBody {
		if hr.ContentLength > 0 && hr.ContentLength <= readBodyBelow { // (0 with a body: unknown)
			body, err := io.ReadAll(hr.Body)
			hr.Body.Close()
			if err != nil {
				return nil, err
			}
			req.Body = body
		} else {
			// Streamed from the reader (closed once read), chunked when
			// its length is unknown.
			req.BodyReader = closingReader{hr.Body}
			if hr.ContentLength > 0 {
				req.Header = req.Header.Clone()
				if req.Header == nil {
					req.Header = http.Header{}
				}
				req.Header.Set("Content-Length", strconv.FormatInt(hr.ContentLength, 10))
			}
		}
	} else if req.Method == http.MethodPost || req.Method == http.MethodPut || req.Method == http.MethodPatch {
		req.Body = []byte{}
	}
	deadline, hasDeadline := ctx.Deadline()
	cl, err := c.prepare(req, true, deadline, hasDeadline)
	if err != nil {
		closeBody(hr)
		return nil, err
	}
	if err := c.submit(op{kind: opStart, call: cl}); err != nil {
		closeBody(hr)
		return nil, err
	}
	if req.BodyReader != nil {
		// The body is closed once the fetch ended, read to its end or not
		// (RoundTrip's contract).
		go func() {
			<-cl.done
			hr.Body.Close()
		}()
	}
	if done := ctx.Done(); done != nil {
		go func() {
			select {
			case <-done:
				_ = c.submit(op{kind: opCancel, call: cl, err: ctx.Err()})
			case <-cl.done:
			}
		}()
	}
	<-cl.head // closed by the head, or when the fetch ended without one
	if !cl.gotHead {
		if cl.err == nil {
			cl.err = newError(ErrCodeProtocol, "protocol: no response head", 0, nil)
		}
		return nil, cl.err
	}
	resp, err := parseHead(cl.rawHeader)
	if err != nil {
		cl.stream.Close()
		return nil, err
	}
	resp.Request = hr
	resp.Body = cl.stream
	if decoding {
		switch strings.ToLower(resp.Header.Get("Content-Encoding")) {
		case "gzip", "x-gzip", "deflate":
			resp.Header.Del("Content-Encoding")
			resp.Header.Del("Content-Length")
			resp.ContentLength = -1
			resp.Uncompressed = true
		}
	}
	return resp, nil
}

// Request bodies up to this size are read before the fetch starts;
// larger ones, and those of unknown length, stream.
const readBodyBelow = 64 << 10

// closingReader closes the request body once it is read to its end or fails.
type closingReader struct{ rc io.ReadCloser }

func (r closingReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if err != nil {
		r.rc.Close()
	}
	return n, err
}

func closeBody(hr *http.Request) {
	if hr.Body != nil {
		hr.Body.Close()
	}
}

// parseHead reads a status line and header lines, as the library received them.
func parseHead(raw []byte) (*http.Response, error) {
	line := raw
	rest := []byte(nil)
	if i := bytes.IndexByte(raw, '\n'); i >= 0 {
		line, rest = raw[:i], raw[i+1:]
	}
	line = bytes.TrimSuffix(line, []byte{'\r'})
	// "HTTP/1.1 200 OK"
	proto, status, ok := strings.Cut(string(line), " ")
	if !ok || len(status) < 3 {
		return nil, newError(ErrCodeProtocol, "protocol: malformed status line "+strconv.Quote(string(line)), 0, nil)
	}
	code, err := strconv.Atoi(status[:3])
	if err != nil {
		return nil, newError(ErrCodeProtocol, "protocol: malformed status line "+strconv.Quote(string(line)), 0, nil)
	}
	major, minor, _ := http.ParseHTTPVersion(proto)
	if proto == "HTTP/2" { // the library's status line for HTTP/2; net/http says "HTTP/2.0"
		proto, major, minor = "HTTP/2.0", 2, 0
	}
	resp := &http.Response{
		Status:        strings.TrimSpace(status),
		StatusCode:    code,
		Proto:         proto,
		ProtoMajor:    major,
		ProtoMinor:    minor,
		Header:        parseHeaderBlock(rest, 8),
		ContentLength: -1,
	}
	if cl := resp.Header.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n >= 0 {
			resp.ContentLength = n
		}
	}
	if strings.EqualFold(resp.Header.Get("Transfer-Encoding"), "chunked") {
		resp.TransferEncoding = []string{"chunked"}
		resp.Header.Del("Transfer-Encoding")
	}
	return resp, nil
}

// chunk is a body chunk in C memory (the library's copy), freed once read.
type chunk struct {
	p unsafe.Pointer
	n int
}

// bodyStream is a streamed response body: the loop goroutine delivers
// chunks, the reader takes them and acknowledges what it read, which lets
// the library read on from the server.
type bodyStream struct {
	c       *core
	call    *call
	mu      sync.Mutex
	cond    sync.Cond
	chunks  []chunk
	off     int
	err     error // io.EOF or the fetch's error, once it ended
	closed  bool
	unacked int
}

func newBodyStream(c *core, cl *call) *bodyStream {
	s := &bodyStream{c: c, call: cl}
	s.cond.L = &s.mu
	// A body dropped unread and unclosed frees its chunks when collected.
	runtime.SetFinalizer(s, (*bodyStream).Close)
	return s
}

// deliver adds a chunk (loop goroutine).
func (s *bodyStream) deliver(p unsafe.Pointer, n int) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		C.tg_chunk_free((*C.uint8_t)(p), C.size_t(n))
		return
	}
	s.chunks = append(s.chunks, chunk{p, n})
	s.mu.Unlock()
	s.cond.Signal()
}

// finish records the fetch's end (loop goroutine).
func (s *bodyStream) finish(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
	s.cond.Broadcast()
}

// Read reads body bytes: io.EOF at the end, the fetch's error if it failed.
func (s *bodyStream) Read(p []byte) (int, error) {
	s.mu.Lock()
	for len(s.chunks) == 0 && s.err == nil && !s.closed {
		s.cond.Wait()
	}
	if s.closed {
		s.mu.Unlock()
		return 0, errBodyClosed
	}
	n := 0
	for n < len(p) && len(s.chunks) > 0 {
		ch := &s.chunks[0]
		k := copy(p[n:], unsafe.Slice((*byte)(ch.p), ch.n)[s.off:])
		n += k
		s.off += k
		if s.off == ch.n {
			C.tg_chunk_free((*C.uint8_t)(ch.p), C.size_t(ch.n))
			s.chunks[0] = chunk{}
			s.chunks = s.chunks[1:]
			s.off = 0
		}
	}
	ack := 0
	if s.err == nil {
		// Acknowledged every half window: the library pauses only past a
		// whole window unacknowledged, so a reader that empties its
		// buffer always lets it go on.
		s.unacked += n
		if s.unacked >= s.c.window/2 {
			ack, s.unacked = s.unacked, 0
		}
	}
	var err error
	if len(s.chunks) == 0 {
		err = s.err
	}
	s.mu.Unlock()
	if ack > 0 {
		_ = s.c.submit(op{kind: opAck, call: s.call, n: uint64(ack)})
	}
	if n > 0 && err != nil && err != io.EOF {
		err = nil // the data first; the error on the next Read
	}
	return n, err
}

// WriteTo writes the body to w straight from the library's chunks (io.Copy
// uses it: no copy into an intermediate buffer).
func (s *bodyStream) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		s.mu.Lock()
		for len(s.chunks) == 0 && s.err == nil && !s.closed {
			s.cond.Wait()
		}
		if s.closed {
			s.mu.Unlock()
			return total, errBodyClosed
		}
		if len(s.chunks) == 0 {
			err := s.err
			s.mu.Unlock()
			if err == io.EOF {
				err = nil
			}
			return total, err
		}
		// Take the chunks buffered now; write them unlocked.
		taken, off := s.chunks, s.off
		s.chunks, s.off = nil, 0
		running := s.err == nil
		s.mu.Unlock()
		var werr error
		n := 0
		for i, ch := range taken {
			if werr == nil {
				k, err := w.Write(unsafe.Slice((*byte)(ch.p), ch.n)[off:])
				n += k
				werr = err
			}
			off = 0
			C.tg_chunk_free((*C.uint8_t)(ch.p), C.size_t(ch.n))
			taken[i] = chunk{}
		}
		total += int64(n)
		if werr != nil {
			s.Close()
			return total, werr
		}
		if running {
			s.mu.Lock()
			s.unacked += n
			ack := 0
			if s.unacked >= s.c.window/2 {
				ack, s.unacked = s.unacked, 0
			}
			s.mu.Unlock()
			if ack > 0 {
				_ = s.c.submit(op{kind: opAck, call: s.call, n: uint64(ack)})
			}
		}
	}
}

// Close discards the rest of the body; a fetch still running is aborted
// (its connection closed).
func (s *bodyStream) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for _, ch := range s.chunks {
		C.tg_chunk_free((*C.uint8_t)(ch.p), C.size_t(ch.n))
	}
	s.chunks = nil
	running := s.err == nil
	s.mu.Unlock()
	s.cond.Broadcast()
	if running {
		_ = s.c.submit(op{kind: opCancel, call: s.call})
	}
	return nil
}
