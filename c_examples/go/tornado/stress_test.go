package tornado

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Many goroutines mixing Do, RoundTrip, streamed bodies read or dropped,
// cancels and deadlines, then Close while some are still running: every
// outcome is a response or an error (no hang, no race), and every C
// request record is freed.
func TestMixedLoadThenClose(t *testing.T) {
	before := liveRequests()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
		case "/big":
			io.WriteString(w, strings.Repeat("b", 3<<20))
		default:
			io.WriteString(w, "ok")
		}
	}))
	defer s.Close()
	c, err := NewClient(&Options{MaxClients: 16, StreamWindow: 128 << 10})
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: c}
	var wg sync.WaitGroup
	for g := 0; g < 40; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(5+g%7*10)*time.Millisecond)
				switch (g + i) % 5 {
				case 0:
					r, err := c.Do(context.Background(), &Request{URL: s.URL + "/small"})
					if err == nil && string(r.Body) != "ok" {
						t.Errorf("body %q", r.Body)
					}
				case 1:
					c.Do(ctx, &Request{URL: s.URL + "/slow"})
				case 2:
					if resp, err := hc.Get(s.URL + "/big"); err == nil {
						n, err := io.Copy(io.Discard, resp.Body)
						if err == nil && n != 3<<20 {
							t.Errorf("read %d", n)
						}
						resp.Body.Close()
					}
				case 3:
					req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/big", nil)
					if resp, err := hc.Do(req); err == nil {
						io.CopyN(io.Discard, resp.Body, 1000)
						resp.Body.Close()
					}
				case 4:
					c.Do(context.Background(), &Request{URL: s.URL + "/post", Method: "POST",
						BodyReader: strings.NewReader(fmt.Sprint(g, i))})
				}
				cancel()
			}
		}(g)
	}
	time.Sleep(150 * time.Millisecond)
	c.Close() // while some goroutines still fetch: they get errors
	wg.Wait()
	if n := liveRequests(); n != before {
		t.Fatalf("%d request records live, want %d", n, before)
	}
}
