package tornado

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Issue 12 #15: a fetch still pending when the loop is freed is never
// called back; closing its client then releases the callback's handle
// (the closure) instead of leaking it.
func TestLoopFreedWithAPendingFetchReleasesItsCallback(t *testing.T) {
	// Accepted by the kernel and never answered: the fetch stays pending.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// Stay on the loop's OS thread after Run, to close the client there.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := atomic.LoadInt64(&liveSlots)
	called := false
	var client *Client
	err = Run(func(l *Loop) {
		c, err := l.NewClient(1)
		if err != nil {
			t.Error(err)
			l.Stop()
			return
		}
		client = c
		if err := c.FetchFunc(Request{URL: "http://" + ln.Addr().String() + "/never"}, func(*Response) { called = true }); err != nil {
			t.Error(err)
		}
		if _, err := l.CallLater(50*time.Millisecond, l.Stop); err != nil {
			t.Error(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if live := atomic.LoadInt64(&liveSlots); live != before+1 {
		t.Fatalf("after the loop was freed: %d live handles, want the fetch's one (%d)", live, before+1)
	}
	client.Close()
	if called {
		t.Fatal("the fetch callback ran without a loop")
	}
	if live := atomic.LoadInt64(&liveSlots); live != before {
		t.Fatalf("%d handles still live after Close, want %d: the fetch callback leaked", live, before)
	}
}

func server() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("X-Path", r.URL.Path)
		fmt.Fprintf(w, "%s %s", r.Method, r.URL.Path)
	}))
}

func TestVersion(t *testing.T) {
	if strings.Count(Version(), ".") != 2 {
		t.Fatalf("version %q", Version())
	}
}

func TestCallbacksTimersAndStop(t *testing.T) {
	var order []string
	err := Run(func(l *Loop) {
		if _, err := l.CallLater(20*time.Millisecond, func() { order = append(order, "timer"); l.Stop() }); err != nil {
			t.Error(err)
		}
		id, _ := l.CallLater(time.Hour, func() { order = append(order, "never") })
		if err := l.RemoveTimeout(id); err != nil {
			t.Error(err)
		}
		_ = l.AddCallback(func() { order = append(order, "callback") })
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(order, ",") != "callback,timer" {
		t.Fatalf("order %v", order)
	}
}

func TestStopAndCallbacksFromOtherGoroutines(t *testing.T) {
	var count int64
	err := Run(func(l *Loop) {
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 100; i++ {
					_ = l.AddCallback(func() { atomic.AddInt64(&count, 1) })
				}
			}()
		}
		go func() {
			wg.Wait()
			_ = l.AddCallback(l.Stop)
		}()
	})
	if err != nil {
		t.Fatal(err)
	}
	if atomic.LoadInt64(&count) != 800 {
		t.Fatalf("ran %d of 800 callbacks", count)
	}
}

func TestBadArguments(t *testing.T) {
	_ = Run(func(l *Loop) {
		defer l.Stop()
		if _, err := l.CallLater(-time.Second, func() {}); err == nil {
			t.Error("a negative delay must fail")
		} else if e, ok := err.(*Error); !ok || e.Code == 0 {
			t.Errorf("error %v", err)
		}
		c, _ := l.NewClient(1)
		defer c.Close()
		if _, err := c.Fetch(Request{URL: "http://x/", Method: "GET\r\nX"}); err != nil {
			t.Errorf("bad methods are reported by the fetch, not the call: %v", err)
		}
	})
}

func TestGet(t *testing.T) {
	s := server()
	defer s.Close()
	r, err := Get(s.URL+"/hello", 5*time.Second)
	if err != nil || r.Err != nil {
		t.Fatal(err, r)
	}
	if r.Code != 200 || string(r.Body) != "GET /hello" || r.Header("x-path") != "/hello" {
		t.Fatalf("response %v %q", r, r.Body)
	}
	r, _ = Get(s.URL+"/missing", 5*time.Second)
	if r.Code != 404 || r.Err != nil {
		t.Fatalf("404: %v %v", r, r.Err)
	}
	r, _ = Get("http://127.0.0.1:1/", 5*time.Second)
	if r.Code != 599 || r.Err == nil || !strings.HasPrefix(r.Err.Error(), "connect: ") {
		t.Fatalf("refused: %v %v", r, r.Err)
	}
}

func TestManyFetchesWithChannels(t *testing.T) {
	s := server()
	defer s.Close()
	const n = 100
	results := make(chan *Response, n)
	err := Run(func(l *Loop) {
		c, err := l.NewClient(10)
		if err != nil {
			t.Error(err)
			l.Stop()
			return
		}
		chans := make([]<-chan *Response, 0, n)
		for i := 0; i < n; i++ {
			ch, err := c.Fetch(Request{URL: fmt.Sprintf("%s/page%d", s.URL, i), Method: "POST", Body: []byte("x")})
			if err != nil {
				t.Error(err)
			}
			chans = append(chans, ch)
		}
		go func() { // a plain goroutine waits on the channels
			for _, ch := range chans {
				results <- <-ch
			}
			_ = l.AddCallback(func() { c.Close(); l.Stop() })
		}()
	})
	if err != nil {
		t.Fatal(err)
	}
	close(results)
	i := 0
	for r := range results {
		if r.Err != nil || string(r.Body) != fmt.Sprintf("POST /page%d", i) {
			t.Fatalf("fetch %d: %v %q", i, r.Err, r.Body)
		}
		i++
	}
	if i != n {
		t.Fatalf("%d of %d", i, n)
	}
}
