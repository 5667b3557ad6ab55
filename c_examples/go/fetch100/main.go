// fetch100: fetches 100 URLs from a local server, one goroutine each,
// through one tornado_rs client, all within a 10 s deadline; then reads one
// more through net/http's http.Client with tornado_rs as its Transport.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"time"

	"github.com/tornado-rs/tornado-rs/c_examples/go/tornado"
)

func main() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "page %s", r.URL.Path)
	}))
	defer srv.Close()

	client, err := tornado.NewClient(&tornado.Options{MaxClients: 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer client.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, failed := 0, 0
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			resp, err := client.Do(ctx, &tornado.Request{URL: fmt.Sprintf("%s/%d", srv.URL, i)})
			mu.Lock()
			defer mu.Unlock()
			if err == nil && resp.StatusCode == 200 && string(resp.Body) == fmt.Sprintf("page /%d", i) {
				ok++
			} else {
				failed++
				fmt.Fprintln(os.Stderr, "fetch", i, err)
			}
		}(i)
	}
	wg.Wait()
	fmt.Printf("fetched 100 URLs with tornado_rs %s: %d ok, %d failed, %v\n",
		tornado.Version(), ok, failed, time.Since(start).Round(time.Millisecond))

	// net/http code runs over the same client.
	hc := &http.Client{Transport: client, Timeout: 10 * time.Second}
	resp, err := hc.Get(srv.URL + "/via-net-http")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("net/http over tornado_rs: %s %q %v\n", resp.Status, body, err)
	if ok != 100 || string(body) != "page /via-net-http" {
		os.Exit(1)
	}
}
