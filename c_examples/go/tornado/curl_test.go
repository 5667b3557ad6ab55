package tornado

// HTTP versions (issue 16) and curl's Unix sockets, cookie jar and DNS
// cache TTL (issue 19), against real servers: net/http over TLS with h2
// by ALPN, nghttpd (Debian's nghttp2-server) for h2c, net/http on a Unix
// socket, net/http setting cookies.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// newH2Server is newTLSServer offering h2 and http/1.1 by ALPN; the
// handler answers with the protocol the server saw.
func newH2Server(t *testing.T) (*httptest.Server, []byte) {
	s, ca, _ := newTLSServerWith(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}), func(c *tls.Config, _ *x509.CertPool) { c.NextProtos = []string{"h2", "http/1.1"} })
	return s, ca
}

// startNghttpd serves a directory holding index.html ("h2c page\n") over
// h2c (prior knowledge only) on 127.0.0.1; it returns the page's URL.
func startNghttpd(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("nghttpd")
	if err != nil {
		path = "/usr/sbin/nghttpd" // Debian's, when /usr/sbin is not on PATH
		if _, err := os.Stat(path); err != nil {
			t.Fatal("nghttpd not found (apt package nghttp2-server; .ci/run installs it)")
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("h2c page\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(path, "--no-tls", "-a", "127.0.0.1", "-d", dir, fmt.Sprint(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("nghttpd did not listen on %s", addr)
		}
	}
	return "http://" + addr + "/index.html"
}

func TestHTTP2ByALPNAndPriorKnowledge(t *testing.T) {
	s, ca := newH2Server(t)
	c := newClient(t, &Options{TLS: &TLSOptions{CAPEM: ca}})
	ctx := context.Background()

	r, err := c.Do(ctx, &Request{URL: s.URL + "/"})
	if err != nil || string(r.Body) != "HTTP/2.0" || r.Proto != "HTTP/2.0" || r.ProtoMajor != 2 || r.ProtoMinor != 0 {
		t.Fatalf("h2 by ALPN (the default): %+v %v", r, err)
	}
	st, err := c.Stats()
	if err != nil || st.HTTP2Connections != 1 || st.ConnectionsOpened != 1 {
		t.Fatalf("one HTTP/2 connection: %+v %v", st, err)
	}
	r, err = c.Do(ctx, &Request{URL: s.URL + "/", HTTPVersion: HTTPVersion1_1})
	if err != nil || string(r.Body) != "HTTP/1.1" || r.Proto != "HTTP/1.1" || r.ProtoMajor != 1 || r.ProtoMinor != 1 {
		t.Fatalf("HTTPVersion1_1: %+v %v", r, err)
	}

	// net/http over the RoundTripper: resp.Proto as net/http's own h2.
	hc := &http.Client{Transport: c}
	resp, err := hc.Get(s.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "HTTP/2.0" || resp.Proto != "HTTP/2.0" || resp.ProtoMajor != 2 || resp.ProtoMinor != 0 {
		t.Fatalf("RoundTrip over h2: %q %s %d.%d", body, resp.Proto, resp.ProtoMajor, resp.ProtoMinor)
	}

	// The client's default: HTTP/1.1 only for every request that does not choose.
	c11 := newClient(t, &Options{TLS: &TLSOptions{CAPEM: ca}, HTTPVersion: HTTPVersion1_1})
	r, err = c11.Do(ctx, &Request{URL: s.URL + "/"})
	if err != nil || string(r.Body) != "HTTP/1.1" || r.ProtoMajor != 1 {
		t.Fatalf("Options.HTTPVersion1_1: %+v %v", r, err)
	}
	r, err = c11.Do(ctx, &Request{URL: s.URL + "/", HTTPVersion: HTTPVersion2})
	if err != nil || string(r.Body) != "HTTP/2.0" || r.ProtoMajor != 2 {
		t.Fatalf("a request's HTTPVersion2 over the client's 1.1: %+v %v", r, err)
	}

	// h2c: prior knowledge, per request and as the client's default.
	h2c := startNghttpd(t)
	r, err = c.Do(ctx, &Request{URL: h2c, HTTPVersion: HTTPVersion2PriorKnowledge})
	if err != nil || string(r.Body) != "h2c page\n" || r.ProtoMajor != 2 {
		t.Fatalf("h2c prior knowledge: %+v %v", r, err)
	}
	pk := newClient(t, &Options{HTTPVersion: HTTPVersion2PriorKnowledge})
	resp, err = (&http.Client{Transport: pk}).Get(h2c)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "h2c page\n" || resp.Proto != "HTTP/2.0" {
		t.Fatalf("RoundTrip over h2c: %q %s", body, resp.Proto)
	}
	// Plain http without prior knowledge is HTTP/1.1, which nghttpd does not speak.
	if _, err := c.Do(ctx, &Request{URL: h2c}); err == nil {
		t.Fatal("HTTP/1.1 to nghttpd (h2c only) must fail")
	}

	var e *Error
	if _, err := c.Do(ctx, &Request{URL: s.URL, HTTPVersion: 99}); !errors.As(err, &e) || e.Code != ErrCodeInvalid {
		t.Fatalf("HTTPVersion 99: %v", err)
	}
	if _, err := NewClient(&Options{HTTPVersion: -1}); !errors.As(err, &e) || e.Code != ErrCodeInvalid {
		t.Fatalf("Options.HTTPVersion -1: %v", err)
	}
}

func TestUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "http.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "unix %s %s host=%s", r.Method, r.URL.RequestURI(), r.Host)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	c := newClient(t, nil)
	ctx := context.Background()
	r, err := c.Do(ctx, &Request{URL: "http://docker.test/v1/info?x=1", UnixSocket: path})
	if err != nil || string(r.Body) != "unix GET /v1/info?x=1 host=docker.test" {
		t.Fatalf("over the Unix socket: %+v %v", r, err)
	}
	var e *Error
	_, err = c.Do(ctx, &Request{URL: "http://docker.test/", UnixSocket: path + ".missing"})
	if !errors.As(err, &e) || e.Code != ErrCodeConnect {
		t.Fatalf("a socket path nobody listens on: %v", err)
	}
	_, err = c.Do(ctx, &Request{URL: "http://docker.test/", UnixSocket: "/" + strings.Repeat("x", 200)})
	if !errors.As(err, &e) || e.Code != ErrCodeInvalid {
		t.Fatalf("a path over 107 bytes: %v", err)
	}
}

func TestCookieJar(t *testing.T) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/set" {
			http.SetCookie(w, &http.Cookie{Name: "session", Value: "abc", Path: "/"})
			http.SetCookie(w, &http.Cookie{Name: "kept", Value: "yes", Path: "/", MaxAge: 3600})
		}
		io.WriteString(w, "cookie="+r.Header.Get("Cookie"))
	}))
	t.Cleanup(s.Close)
	ctx := context.Background()
	c := newClient(t, &Options{Cookies: true, DNSCacheTTL: -1})
	if n, err := c.CookieCount(); err != nil || n != 0 {
		t.Fatalf("a new jar: %d %v", n, err)
	}
	if _, err := c.Do(ctx, &Request{URL: s.URL + "/set"}); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.CookieCount(); n != 2 {
		t.Fatalf("both Set-Cookie kept: %d", n)
	}
	r, err := c.Do(ctx, &Request{URL: s.URL + "/echo"})
	if err != nil || !strings.Contains(string(r.Body), "session=abc") || !strings.Contains(string(r.Body), "kept=yes") {
		t.Fatalf("sent back on the next fetch: %+v %v", r, err)
	}

	file := filepath.Join(t.TempDir(), "cookies.txt")
	if err := c.SaveCookies(file); err != nil {
		t.Fatal(err)
	}
	saved, _ := os.ReadFile(file)
	if !strings.Contains(string(saved), "127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tabc\n") ||
		!strings.Contains(string(saved), "\tkept\tyes\n") {
		t.Fatalf("a Netscape cookie file: %q", saved)
	}
	if err := c.ClearCookies(); err != nil {
		t.Fatal(err)
	}
	r, _ = c.Do(ctx, &Request{URL: s.URL + "/echo"})
	if n, _ := c.CookieCount(); n != 0 || string(r.Body) != "cookie=" {
		t.Fatalf("cleared: %d %q", n, r.Body)
	}

	other := newClient(t, &Options{Cookies: true, DNSCacheTTL: time.Second})
	if err := other.LoadCookies(file); err != nil {
		t.Fatal(err)
	}
	r, _ = other.Do(ctx, &Request{URL: s.URL + "/echo"})
	if n, _ := other.CookieCount(); n != 2 || !strings.Contains(string(r.Body), "session=abc") {
		t.Fatalf("loaded into another client: %d %q", n, r.Body)
	}
	// net/http code over the RoundTripper gets the library's jar too.
	resp, err := (&http.Client{Transport: other}).Get(s.URL + "/echo")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "kept=yes") {
		t.Fatalf("RoundTrip with the jar: %q", body)
	}

	var e *Error
	bad := filepath.Join(t.TempDir(), "bad.txt")
	os.WriteFile(bad, []byte("127.0.0.1\tFALSE\n"), 0o600)
	if err := other.LoadCookies(bad); !errors.As(err, &e) || e.Code != ErrCodeInvalid {
		t.Fatalf("a malformed file: %v", err)
	}
	if n, _ := other.CookieCount(); n != 2 {
		t.Fatalf("a failed load leaves the jar as it was: %d", n)
	}
	if err := other.LoadCookies(bad + ".missing"); !errors.As(err, &e) || e.Code != ErrCodeIO {
		t.Fatalf("a missing file: %v", err)
	}
	if err := other.LoadCookies("a\x00b"); !errors.As(err, &e) || e.Code != ErrCodeInvalid {
		t.Fatalf("a NUL in the path: %v", err)
	}

	off := newClient(t, nil)
	off.Do(ctx, &Request{URL: s.URL + "/set"})
	if n, _ := off.CookieCount(); n != 0 {
		t.Fatalf("cookies off by default: %d", n)
	}
	if err := off.SaveCookies(file); !errors.As(err, &e) || e.Code != ErrCodeInvalid {
		t.Fatalf("SaveCookies with cookies off: %v", err)
	}
	if err := off.ClearCookies(); !errors.As(err, &e) || e.Code != ErrCodeInvalid {
		t.Fatalf("ClearCookies with cookies off: %v", err)
	}
	off.Close()
	if err := off.LoadCookies(file); err != ErrClientClosed {
		t.Fatalf("on a closed client: %v", err)
	}
	if _, err := off.CookieCount(); err != ErrClientClosed {
		t.Fatalf("CookieCount on a closed client: %v", err)
	}
}
