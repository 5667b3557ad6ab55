package tornado

// The public suffix list, https:// proxies' certificates and HTTP/2 PING
// liveness, against real servers on 127.0.0.1: net/http setting a
// Domain= cookie (host names mapped to loopback, no DNS), net/http over
// TLS with a CA made for the test as the https:// proxy (it answers the
// absolute-form requests it gets), net/http's h2 by ALPN.

import (
	"context"
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

func TestPublicSuffixFile(t *testing.T) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", "wide=1; Domain=tornado.test; Path=/")
		io.WriteString(w, "set")
	}))
	t.Cleanup(s.Close)
	port := s.Listener.Addr().(*net.TCPAddr).Port
	dir := t.TempDir()
	listed := filepath.Join(dir, "listed.dat")
	unlisted := filepath.Join(dir, "unlisted.dat")
	os.WriteFile(listed, []byte("// ===BEGIN ICANN DOMAINS===\ncom\ntest\ntornado.test\n"), 0o600)
	os.WriteFile(unlisted, []byte("// ===BEGIN ICANN DOMAINS===\ncom\ntest\n"), 0o600)
	kept := func(list string) int {
		t.Helper()
		c := newClient(t, &Options{Cookies: true, PublicSuffixFile: list,
			HostnameMapping: map[string]string{"www.shop.tornado.test": "127.0.0.1"}})
		r, err := c.Do(context.Background(), &Request{URL: fmt.Sprintf("http://www.shop.tornado.test:%d/", port)})
		if err != nil || string(r.Body) != "set" {
			t.Fatalf("fetch: %+v %v", r, err)
		}
		n, err := c.CookieCount()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := kept(listed); n != 0 {
		t.Fatalf("a list naming tornado.test: the Domain=tornado.test cookie must be refused (%d kept)", n)
	}
	if n := kept(unlisted); n != 1 {
		t.Fatalf("a list without tornado.test: %d kept", n)
	}
	if n := kept(""); n != 1 {
		t.Fatalf("the built-in list: %d kept", n)
	}

	var e *Error
	missing := filepath.Join(dir, "absent.dat")
	if _, err := NewClient(&Options{Cookies: true, PublicSuffixFile: missing}); !errors.As(err, &e) ||
		!strings.Contains(e.Message, missing) {
		t.Fatalf("a missing list: %v", err)
	}
	if _, err := NewClient(&Options{Cookies: true, PublicSuffixFile: "/dev/null"}); !errors.As(err, &e) ||
		!strings.Contains(e.Message, "not a public suffix list") {
		t.Fatalf("a file that is no list: %v", err)
	}
	if _, err := NewClient(&Options{Cookies: true, PublicSuffixFile: "a\x00b"}); !errors.As(err, &e) || e.Code != ErrCodeInvalid {
		t.Fatalf("a NUL in the path: %v", err)
	}
}

func TestHTTPSProxyCertificates(t *testing.T) {
	proxy, caPEM := newTLSServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "proxy got "+r.Method+" "+r.RequestURI)
	}))
	caFile := filepath.Join(t.TempDir(), "proxy-ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const target = "http://127.0.0.1:9/via-proxy"
	via := func(p Proxy, tls *TLSOptions) (*Response, error) {
		p.Host = proxy.URL // https://127.0.0.1:port
		return c.Do(ctx, &Request{URL: target, Proxy: &p, TLS: tls})
	}
	for name, p := range map[string]Proxy{
		"CAFile":             {CAFile: caFile},
		"InsecureSkipVerify": {InsecureSkipVerify: true},
	} {
		r, err := via(p, nil)
		if err != nil || string(r.Body) != "proxy got GET "+target {
			t.Fatalf("%s: the absolute-form request over TLS to the proxy: %+v %v", name, r, err)
		}
	}
	var e *Error
	for name, p := range map[string]Proxy{
		"the system's store": {},
		"a missing CA file":  {CAFile: caFile + ".absent"},
	} {
		_, err := via(p, &TLSOptions{CAPEM: caPEM, InsecureSkipVerify: true}) // the target's, not the proxy's
		if !errors.As(err, &e) || e.Code != ErrCodeTLS || !strings.Contains(e.Message, "https proxy 127.0.0.1") {
			t.Fatalf("%s: %v", name, err)
		}
		if p.CAFile != "" && !strings.Contains(e.Message, "proxy-ca.pem.absent") {
			t.Fatalf("the missing file is named: %v", err)
		}
	}
	if _, err := via(Proxy{CAFile: "a\x00b"}, nil); !errors.As(err, &e) || e.Code != ErrCodeInvalid {
		t.Fatalf("a NUL in CAFile: %v", err)
	}
}

func TestHTTP2Ping(t *testing.T) {
	s, ca := newH2Server(t)
	c := newClient(t, &Options{TLS: &TLSOptions{CAPEM: ca}, HTTP2Ping: &HTTP2Ping{Idle: 200 * time.Millisecond, Timeout: 10 * time.Second}})
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		r, err := c.Do(ctx, &Request{URL: s.URL + "/"})
		if err != nil || string(r.Body) != "HTTP/2.0" {
			t.Fatalf("fetch %d over h2: %+v %v", i, r, err)
		}
		time.Sleep(300 * time.Millisecond) // idle past 0.2 s: a PING before the reuse
	}
	st, err := c.Stats()
	if err != nil || st.ConnectionsOpened != 1 || st.HTTP2Connections != 1 {
		t.Fatalf("the PING was answered, the connection reused: %+v %v", st, err)
	}
	newClient(t, &Options{HTTP2Ping: &HTTP2Ping{Idle: 0, Timeout: time.Second}}) // Idle 0: no check

	// The PING itself, in nghttpd's frame log (-v): sent before the idle
	// connection's reuse, not sent with the check off.
	url, frames := startNghttpdLogged(t)
	pings := func(opts HTTP2Ping) int {
		t.Helper()
		pc := newClient(t, &Options{HTTPVersion: HTTPVersion2PriorKnowledge, HTTP2Ping: &opts})
		for i := 0; i < 2; i++ {
			if r, err := pc.Do(ctx, &Request{URL: url}); err != nil || string(r.Body) != "h2c page\n" {
				t.Fatalf("h2c fetch %d: %+v %v", i, r, err)
			}
			time.Sleep(300 * time.Millisecond)
		}
		pc.Close()
		time.Sleep(200 * time.Millisecond) // nghttpd's log written
		log, _ := os.ReadFile(frames)
		return strings.Count(string(log), "recv PING frame")
	}
	if n := pings(HTTP2Ping{Idle: 200 * time.Millisecond, Timeout: 10 * time.Second}); n != 1 {
		t.Fatalf("one PING before the reuse, nghttpd got %d", n)
	}
	if n := pings(HTTP2Ping{Idle: 0, Timeout: time.Second}); n != 1 {
		t.Fatalf("Idle 0 sends no PING: nghttpd got %d in all", n)
	}
	var e *Error
	for _, bad := range []HTTP2Ping{{Idle: -time.Second, Timeout: time.Second}, {Idle: time.Second}, {Idle: time.Second, Timeout: -1}} {
		if _, err := NewClient(&Options{HTTP2Ping: &bad}); !errors.As(err, &e) || e.Code != ErrCodeInvalid {
			t.Fatalf("%+v: %v", bad, err)
		}
	}
}

// startNghttpdLogged is startNghttpd with nghttpd's frame log (-v) written
// to the file it returns with the page's URL.
func startNghttpdLogged(t *testing.T) (string, string) {
	t.Helper()
	path, err := exec.LookPath("nghttpd")
	if err != nil {
		path = "/usr/sbin/nghttpd"
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("h2c page\n"), 0o600)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	frames := filepath.Join(t.TempDir(), "frames.log")
	log, err := os.Create(frames)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, "-v", "--no-tls", "-a", "127.0.0.1", "-d", dir, fmt.Sprint(port))
	cmd.Stdout = log
	if err := cmd.Start(); err != nil {
		t.Fatalf("nghttpd (apt package nghttp2-server; .ci/run installs it): %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); log.Close() })
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
	return "http://" + addr + "/index.html", frames
}
