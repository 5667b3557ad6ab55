package tornado

// The WebSocket client against tests/servers/ws_servers.py (the servers
// the Rust tests use): Tornado's WebSocketHandler and the websockets
// package's server on 127.0.0.1, each run through every case.

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// startWSServer runs ws_servers.py kind; it returns the base ws:// URL.
// The server exits when its stdin closes (at the test's end).
func startWSServer(t *testing.T, kind string) string {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(here), "../../../tests/servers/ws_servers.py")
	cmd := exec.Command("python3", script, kind)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("python3 ws_servers.py: %v", err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- l
	}()
	select {
	case l := <-line:
		if !strings.HasPrefix(l, "PORT ") {
			t.Fatalf("ws_servers.py %s did not start (python3 with tornado and websockets>=13; .ci/run installs them): %q", kind, l)
		}
		return "ws://127.0.0.1:" + strings.TrimSpace(strings.TrimPrefix(l, "PORT "))
	case <-time.After(30 * time.Second):
		t.Fatalf("ws_servers.py %s: no PORT line within 30 s", kind)
	}
	return ""
}

func TestWebSocket(t *testing.T) {
	for _, kind := range []string{"tornado", "websockets"} {
		t.Run(kind, func(t *testing.T) {
			base := startWSServer(t, kind)
			c := newClient(t, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			dial := func(path string, opts *WebSocketOptions, header ...string) *WebSocket {
				t.Helper()
				req := &Request{URL: base + path}
				if len(header) == 2 {
					req.Header = map[string][]string{header[0]: {header[1]}}
				}
				ws, err := c.DialWebSocket(ctx, req, opts)
				if err != nil {
					t.Fatalf("dial %s: %v", path, err)
				}
				return ws
			}
			read := func(ws *WebSocket) (MessageType, string) {
				t.Helper()
				typ, data, err := ws.ReadMessage(ctx)
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				return typ, string(data)
			}

			t.Run("echo", func(t *testing.T) {
				ws := dial("/echo", nil)
				if err := ws.WriteMessage(ctx, TextMessage, []byte("h\u00e9llo")); err != nil {
					t.Fatal(err)
				}
				if typ, s := read(ws); typ != TextMessage || s != "h\u00e9llo" {
					t.Fatalf("text: %v %q", typ, s)
				}
				ws.WriteMessage(ctx, BinaryMessage, []byte{0, 0xff, 1})
				if typ, s := read(ws); typ != BinaryMessage || s != "\x00\xff\x01" {
					t.Fatalf("binary: %v %q", typ, s)
				}
				if ws.Subprotocol() != "" || ws.Extensions() != "" {
					t.Fatalf("none asked: %q %q", ws.Subprotocol(), ws.Extensions())
				}
				var e *Error
				if err := ws.WriteMessage(ctx, TextMessage, []byte{0xff}); !errors.As(err, &e) || e.Code != ErrCodeInvalid {
					t.Fatalf("text not UTF-8: %v", err)
				}
				if err := ws.Ping(ctx, make([]byte, 126)); !errors.As(err, &e) || e.Code != ErrCodeInvalid {
					t.Fatalf("a ping over 125 bytes: %v", err)
				}
				if err := ws.Close(ctx, 1000, "bye"); err != nil {
					t.Fatal(err)
				}
				if closed, why, _ := ws.State(); !closed || why != nil {
					t.Fatalf("after Close: %v %v", closed, why)
				}
				if err := ws.WriteMessage(ctx, TextMessage, []byte("late")); err != ErrWebSocketClosed {
					t.Fatalf("write after Close: %v", err)
				}
				if _, _, err := ws.ReadMessage(ctx); err != ErrWebSocketClosed {
					t.Fatalf("read after Close: %v", err)
				}
				if err := ws.Close(ctx, 0, ""); err != nil {
					t.Fatalf("a second Close: %v", err)
				}
			})

			t.Run("subprotocol and header", func(t *testing.T) {
				ws := dial("/subprotocol", &WebSocketOptions{Subprotocols: []string{"chat.v1", "chat.v2"}})
				if _, s := read(ws); ws.Subprotocol() != "chat.v2" || s != "chose chat.v2" {
					t.Fatalf("%q %q", ws.Subprotocol(), s)
				}
				ws.Close(ctx, 0, "")
				ws = dial("/header", nil, "X-Test", "from go")
				if _, s := read(ws); s != "from go" {
					t.Fatalf("header: %q", s)
				}
				ws.Close(ctx, 0, "")
			})

			t.Run("compression", func(t *testing.T) {
				ws := dial("/deflate", &WebSocketOptions{Compression: true, ClientNoContextTakeover: true})
				if !strings.HasPrefix(ws.Extensions(), "permessage-deflate") {
					t.Fatalf("extensions: %q", ws.Extensions())
				}
				big := strings.Repeat("tornado_rs ", 10000)
				ws.WriteMessage(ctx, TextMessage, []byte(big))
				if _, s := read(ws); s != big {
					t.Fatalf("%d bytes back", len(s))
				}
				ws.Close(ctx, 0, "")
			})

			t.Run("client window", func(t *testing.T) {
				// Both servers take the value offered (Tornado echoes it).
				ws := dial("/deflate", &WebSocketOptions{Compression: true, ClientMaxWindowBits: 9})
				if kind == "tornado" && ws.Extensions() != "permessage-deflate; client_max_window_bits=9" ||
					!strings.Contains(ws.Extensions(), "client_max_window_bits=9") {
					t.Fatalf("extensions: %q", ws.Extensions())
				}
				big := strings.Repeat("a 512-byte window ", 5000)
				ws.WriteMessage(ctx, TextMessage, []byte(big))
				if _, s := read(ws); s != big {
					t.Fatalf("%d bytes back", len(s))
				}
				ws.Close(ctx, 0, "")
				var e *Error
				for _, opts := range []*WebSocketOptions{
					{Compression: true, ClientMaxWindowBits: 7},
					{Compression: true, ClientMaxWindowBits: 16},
					{ClientMaxWindowBits: 9}, // compression off
				} {
					if _, err := c.DialWebSocket(ctx, &Request{URL: base + "/deflate"}, opts); !errors.As(err, &e) || e.Code != ErrCodeInvalid {
						t.Fatalf("%+v: %v", opts, err)
					}
				}
			})

			t.Run("close from the server", func(t *testing.T) {
				ws := dial("/close", nil)
				if _, _, err := ws.ReadMessage(ctx); err != io.EOF {
					t.Fatalf("read: %v", err)
				}
				if code, reason := ws.CloseCode(); code != 4001 || reason != "going away" {
					t.Fatalf("close code: %d %q", code, reason)
				}
				ws.Close(ctx, 0, "")
				if code, _ := ws.CloseCode(); code != 4001 {
					t.Fatalf("kept after release: %d", code)
				}
			})

			t.Run("pings", func(t *testing.T) {
				var mu sync.Mutex
				var pings [][]byte
				ws := dial("/ping", &WebSocketOptions{OnPing: func(p []byte) {
					mu.Lock()
					pings = append(pings, p)
					mu.Unlock()
				}})
				if err := ws.Ping(ctx, []byte("are you there")); err != nil {
					t.Fatal(err)
				}
				ws.WriteMessage(ctx, TextMessage, []byte("x"))
				read(ws)
				for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
					mu.Lock()
					n := len(pings)
					mu.Unlock()
					if n > 0 {
						break
					}
					if time.Since(start) > 10*time.Second {
						t.Fatal("no ping reported")
					}
				}
				ws.Close(ctx, 0, "")
			})

			t.Run("max message size", func(t *testing.T) {
				ws := dial("/echo", &WebSocketOptions{MaxMessageSize: 1000})
				ws.WriteMessage(ctx, TextMessage, []byte(strings.Repeat("x", 2000)))
				var e *Error
				if _, _, err := ws.ReadMessage(ctx); !errors.As(err, &e) || e.Code != ErrCodeTooLarge {
					t.Fatalf("read: %v", err)
				}
				if _, why, _ := ws.State(); why == nil || why.(*Error).Code != ErrCodeTooLarge {
					t.Fatalf("state: %v", why)
				}
				ws.Close(ctx, 0, "")
			})

			t.Run("an interrupted read loses no message", func(t *testing.T) {
				ws := dial("/echo", &WebSocketOptions{PingInterval: 50 * time.Millisecond})
				short, stop := context.WithTimeout(ctx, 100*time.Millisecond)
				_, _, err := ws.ReadMessage(short)
				stop()
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("read with a short deadline: %v", err)
				}
				ws.WriteMessage(ctx, TextMessage, []byte("after"))
				if _, s := read(ws); s != "after" {
					t.Fatalf("the pending read: %q", s)
				}
				ws.Close(ctx, 0, "")
			})

			t.Run("many goroutines", func(t *testing.T) {
				var wg sync.WaitGroup
				errs := make(chan error, 20)
				for i := 0; i < 20; i++ {
					wg.Add(1)
					go func(i int) {
						defer wg.Done()
						ws, err := c.DialWebSocket(ctx, &Request{URL: base + "/echo"}, nil)
						if err != nil {
							errs <- err
							return
						}
						defer ws.Close(ctx, 0, "")
						msg := strings.Repeat("m", i)
						ws.WriteMessage(ctx, TextMessage, []byte(msg))
						if _, got, err := ws.ReadMessage(ctx); err != nil || string(got) != msg {
							errs <- errors.New("echo mismatch")
						}
					}(i)
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Error(err)
				}
			})
		})
	}
}

func TestWebSocketDialFailures(t *testing.T) {
	c := newClient(t, nil)
	ctx := context.Background()
	var e *Error
	http := echoServer(t) // answers 200, not 101
	_, err := c.DialWebSocket(ctx, &Request{URL: "ws" + strings.TrimPrefix(http.URL, "http") + "/"}, nil)
	if !errors.As(err, &e) || e.Code != ErrCodeProtocol || !strings.Contains(e.Message, "HTTP 200") {
		t.Fatalf("an HTTP server: %v", err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	if _, err := c.DialWebSocket(ctx, &Request{URL: "ws://" + addr + "/"}, nil); !errors.As(err, &e) || e.Code != ErrCodeConnect {
		t.Fatalf("refused: %v", err)
	}
	if _, err := c.DialWebSocket(ctx, &Request{URL: "http://127.0.0.1/"}, nil); !errors.As(err, &e) || e.Code != ErrCodeInvalidURL {
		t.Fatalf("http URL: %v", err)
	}
	if _, err := c.DialWebSocket(ctx, &Request{URL: "ws://127.0.0.1/"}, &WebSocketOptions{Subprotocols: []string{"not a token"}}); !errors.As(err, &e) || e.Code != ErrCodeInvalid {
		t.Fatalf("bad subprotocol: %v", err)
	}
	if _, err := c.DialWebSocket(ctx, &Request{URL: "ws://127.0.0.1/"}, &WebSocketOptions{ServerMaxWindowBits: 10}); !errors.As(err, &e) || e.Code != ErrCodeInvalid {
		t.Fatalf("window bits without compression: %v", err)
	}
	if _, err := c.DialWebSocket(ctx, nil, nil); !errors.As(err, &e) {
		t.Fatalf("nil request: %v", err)
	}
	// A server that never answers the handshake: the context ends it.
	silent := newSilentServer(t)
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = c.DialWebSocket(short, &Request{URL: "ws://" + silent.ln.Addr().String() + "/"}, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("silent server: %v", err)
	}
}

// Connections left open are released by Client.Close (no leak, no hang).
func TestWebSocketClientCloseReleases(t *testing.T) {
	base := startWSServer(t, "tornado")
	c, err := NewClient(nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ws, err := c.DialWebSocket(ctx, &Request{URL: base + "/echo"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	reading := make(chan error, 1)
	go func() {
		_, _, err := ws.ReadMessage(ctx)
		reading <- err
	}()
	time.Sleep(50 * time.Millisecond)
	c.Close()
	select {
	case err := <-reading:
		var e *Error
		if !errors.As(err, &e) || e.Code != ErrCodeClosed {
			t.Fatalf("a read in flight at Client.Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the read did not end at Client.Close")
	}
	if err := ws.WriteMessage(ctx, TextMessage, []byte("x")); err != ErrClientClosed {
		t.Fatalf("after Client.Close: %v", err)
	}
}
