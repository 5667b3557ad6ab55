package tornado

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// net/http code runs over the Client as a RoundTripper: methods, bodies,
// headers, Host, redirects and cookies by http.Client, gzip decoded.
func TestRoundTripperUnderHTTPClient(t *testing.T) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/login":
			http.SetCookie(w, &http.Cookie{Name: "session", Value: "s1"})
			http.Redirect(w, r, "/home", http.StatusSeeOther)
		case "/gzip":
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			io.WriteString(zw, strings.Repeat("compressed ", 100))
			zw.Close()
		default:
			body, _ := io.ReadAll(r.Body)
			cookie := "none"
			if c, err := r.Cookie("session"); err == nil {
				cookie = c.Value
			}
			w.Header().Set("X-Host", r.Host)
			w.Header().Set("X-Echo", r.Header.Get("X-Echo"))
			fmt.Fprintf(w, "%s %s [%s] cookie=%v", r.Method, r.URL.Path, body, cookie)
		}
	}))
	defer s.Close()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Transport: newClient(t, nil), Jar: jar}

	resp, err := hc.Post(s.URL+"/submit", "text/plain", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "POST /submit [payload] cookie=none" || resp.Proto != "HTTP/1.1" ||
		resp.ContentLength != int64(len(body)) {
		t.Fatalf("post: %v %q", resp, body)
	}

	resp, err = hc.Get(s.URL + "/login") // 303 -> /home, the cookie set on the way
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "GET /home [] cookie=s1" || resp.Request.URL.Path != "/home" {
		t.Fatalf("redirect with cookie: %q", body)
	}

	req, _ := http.NewRequest("PUT", s.URL+"/put", bytes.NewReader([]byte("x")))
	req.Host = "virtual.test"
	req.Header.Set("X-Echo", "echoed")
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "PUT /put [x] cookie=s1" || resp.Header.Get("X-Host") != "virtual.test" || resp.Header.Get("X-Echo") != "echoed" {
		t.Fatalf("put: %q %v", body, resp.Header)
	}

	resp, err = hc.Get(s.URL + "/gzip")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != strings.Repeat("compressed ", 100) || !resp.Uncompressed || resp.Header.Get("Content-Encoding") != "" {
		t.Fatalf("gzip: %v %q", resp, body)
	}

	resp, err = hc.Head(s.URL + "/head")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(body) != 0 {
		t.Fatalf("head: %v %q", resp, body)
	}

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	_, err = hc.Get("http://" + addr + "/")
	var e *Error
	if !errors.As(err, &e) || e.Kind != "connect" {
		t.Fatalf("refused through http.Client: %#v", err)
	}
}

// The body streams: the response and its first bytes arrive while the
// server still holds the rest back.
func TestRoundTripStreamsTheBody(t *testing.T) {
	release := make(chan struct{})
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first part;")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "second part")
	}))
	defer s.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	hc := &http.Client{Transport: newClient(t, nil)}
	resp, err := hc.Get(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, len("first part;"))
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "first part;" {
		t.Fatalf("first part: %q %v", first, err)
	}
	close(release)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "second part" {
		t.Fatalf("rest: %q %v", rest, err)
	}
	if _, err := resp.Body.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after the end: %v", err)
	}
}

// A reader that does not read holds the library back: the server cannot
// write much past the stream window (and the sockets' buffers); reading
// on gets every byte.
func TestRoundTripBackpressure(t *testing.T) {
	const total = 64 << 20
	var written int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(total))
		buf := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
		for sent := 0; sent < total; sent += len(buf) {
			if _, err := w.Write(buf); err != nil {
				return
			}
			atomic.AddInt64(&written, int64(len(buf)))
		}
	}))
	defer s.Close()
	hc := &http.Client{Transport: newClient(t, &Options{StreamWindow: 256 << 10})}
	resp, err := hc.Get(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	time.Sleep(500 * time.Millisecond)
	if w := atomic.LoadInt64(&written); w > 16<<20 {
		t.Fatalf("the server wrote %d bytes while nothing was read: no backpressure", w)
	} else {
		t.Logf("%d KiB written while the reader waited", w>>10)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n != total {
		t.Fatalf("read %d of %d: %v", n, total, err)
	}
}

// Cancelling the request's context while its body is read fails the read
// with context.Canceled and closes the connection; closing a body early
// closes its connection too.
func TestRoundTripCancelAndEarlyClose(t *testing.T) {
	serverGone := make(chan struct{}, 2)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "start;")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done(): // the server saw the client go away
			serverGone <- struct{}{}
		case <-time.After(10 * time.Second):
		}
	}))
	defer s.Close()
	hc := &http.Client{Transport: newClient(t, nil)}

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL, nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	_, err = io.ReadAll(resp.Body)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("read after cancel: %v", err)
	}
	resp.Body.Close()
	waitFor(t, serverGone, "the server to see the cancelled connection close")

	resp, err = hc.Get(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadFull(resp.Body, buf)
	resp.Body.Close()
	if _, err := resp.Body.Read(buf); err == nil {
		t.Fatal("read after Close")
	}
	waitFor(t, serverGone, "the server to see the early-closed body's connection close")

	// A deadline while waiting for the head: a timeout error through http.Client.
	silent := newSilentServer(t)
	ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, "GET", silent.url(), nil)
	_, err = hc.Do(req)
	var ne net.Error
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("deadline: %#v", err)
	}
	waitFor(t, silent.closed, "the connection closed at the deadline")
}
