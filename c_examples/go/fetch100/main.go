// fetch100: fetches 100 URLs from a local server concurrently through one
// tornado_rs loop (10 in flight), printing a summary.
package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"tornado_rs.example/go/tornado"
)

func main() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "page %s", r.URL.Path)
	}))
	defer srv.Close()

	start := time.Now()
	ok, failed := 0, 0
	err := tornado.Run(func(l *tornado.Loop) {
		client, err := l.NewClient(10)
		if err != nil {
			panic(err)
		}
		remaining := 100
		for i := 0; i < 100; i++ {
			url := fmt.Sprintf("%s/%d", srv.URL, i)
			err := client.FetchFunc(tornado.Request{URL: url}, func(r *tornado.Response) {
				if r.Err == nil && r.Code == 200 {
					ok++
				} else {
					failed++
				}
				if remaining--; remaining == 0 {
					client.Close()
					l.Stop()
				}
			})
			if err != nil {
				panic(err)
			}
		}
	})
	if err != nil {
		panic(err)
	}
	fmt.Printf("fetched 100 URLs with tornado_rs %s: %d ok, %d failed, %v\n", tornado.Version(), ok, failed, time.Since(start).Round(time.Millisecond))
	if ok != 100 {
		os.Exit(1)
	}
}
