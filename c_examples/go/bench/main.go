// bench: the Go binding beside net/http on the same loopback server (a
// net/http server in a child process, so that the clients' CPU is their
// own). Workloads:
//
//	small-c200: 200 goroutines each fetch GET /small (200 bytes) -rounds
//	            times, one after another: 200 fetches in flight
//	big-c4:     4 goroutines each fetch GET /big (-bigmb MiB) -bigrounds
//	            times, reading the body with io.Copy
//
// Clients: net/http's Transport (MaxIdleConnsPerHost 200, so that it keeps
// its connections as tornado_rs does) reading bodies with io.Copy, the
// same reading them whole (io.ReadAll), tornado.Client.Do (whole bodies),
// and http.Client{Transport: tornado.Client} (streamed bodies, io.Copy).
// bigcl-c4 is big-c4 with a Content-Length (big-c4's bodies are chunked). Each
// workload runs -reps times per client, alternating; the median wall time
// is reported with the CPU time of this process. One JSON line per run and
// a summary. Usage (from c_examples/go, see benches/RESULTS.md):
//
//	go run ./bench -reps 5
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tornado-rs/tornado-rs/c_examples/go/tornado"
)

var (
	serve     = flag.Bool("serve", false, "run the server (the child process)")
	reps      = flag.Int("reps", 5, "runs per client and workload")
	rounds    = flag.Int("rounds", 50, "fetches per goroutine in small-c200")
	bigMB     = flag.Int("bigmb", 8, "MiB per /big body")
	bigRounds = flag.Int("bigrounds", 8, "fetches per goroutine in big-c4")
	only      = flag.String("only", "", "run only this workload")
	onlyImpl  = flag.String("impl", "", "run only this client")
)

func main() {
	flag.Parse()
	if *serve {
		runServer()
		return
	}
	addr, stop := startServer()
	defer stop()
	base := "http://" + addr
	type client struct {
		name string
		new  func() (fetcher, func())
	}
	clients := []client{
		{"net/http", func() (fetcher, func()) {
			tr := &http.Transport{MaxIdleConns: 400, MaxIdleConnsPerHost: 200}
			return httpFetcher{&http.Client{Transport: tr}, false}, tr.CloseIdleConnections
		}},
		{"net/http ReadAll", func() (fetcher, func()) {
			tr := &http.Transport{MaxIdleConns: 400, MaxIdleConnsPerHost: 200}
			return httpFetcher{&http.Client{Transport: tr}, true}, tr.CloseIdleConnections
		}},
		{"tornado Do", func() (fetcher, func()) {
			c, err := tornado.NewClient(&tornado.Options{MaxClients: 200})
			check(err)
			return doFetcher{c}, func() { c.Close() }
		}},
		{"tornado RoundTrip", func() (fetcher, func()) {
			c, err := tornado.NewClient(&tornado.Options{MaxClients: 200})
			check(err)
			return httpFetcher{&http.Client{Transport: c}, false}, func() { c.Close() }
		}},
	}
	type workload struct {
		name        string
		goroutines  int
		perG        int
		url         string
		length      int
		throughputs bool
	}
	workloads := []workload{
		{"small-c200", 200, *rounds, base + "/small", 200, false},
		{"big-c4", 4, *bigRounds, base + "/big", *bigMB << 20, true},
		{"bigcl-c4", 4, *bigRounds, base + "/bigcl", *bigMB << 20, true},
	}
	results := map[string]map[string][]run{}
	for _, w := range workloads {
		if *only != "" && w.name != *only {
			continue
		}
		results[w.name] = map[string][]run{}
		for rep := 0; rep < *reps; rep++ {
			for _, cl := range clients {
				if *onlyImpl != "" && cl.name != *onlyImpl {
					continue
				}
				f, closeFn := cl.new()
				r := measure(f, w.goroutines, w.perG, w.url, w.length)
				closeFn()
				r.Workload, r.Impl, r.Rep = w.name, cl.name, rep
				if w.throughputs {
					r.MBPerS = float64(r.N) * float64(w.length) / (1 << 20) / r.WallS
				}
				line, _ := json.Marshal(r)
				fmt.Println(string(line))
				results[w.name][cl.name] = append(results[w.name][cl.name], r)
			}
		}
	}
	fmt.Println()
	for _, w := range workloads {
		byImpl, ok := results[w.name]
		if !ok {
			continue
		}
		if len(byImpl["net/http"]) == 0 {
			continue // no reference to compare with (-impl)
		}
		ref := median(byImpl["net/http"])
		for _, cl := range clients {
			if len(byImpl[cl.name]) == 0 {
				continue
			}
			m := median(byImpl[cl.name])
			fmt.Printf("%-11s %-18s median wall %7.3f s (%.2fx net/http)  cpu %6.3f s  errors %d",
				w.name, cl.name, m.WallS, m.WallS/ref.WallS, m.CPUS, sumErrors(byImpl[cl.name]))
			if w.throughputs {
				fmt.Printf("  %7.0f MiB/s (%.2fx)", m.MBPerS, m.MBPerS/ref.MBPerS)
			}
			fmt.Println()
		}
	}
}

type run struct {
	Workload string  `json:"workload"`
	Impl     string  `json:"impl"`
	Rep      int     `json:"rep"`
	N        int     `json:"n"`
	WallS    float64 `json:"wall_s"`
	CPUS     float64 `json:"cpu_s"`
	FirstS   float64 `json:"first_round_s"` // the first fetch of every goroutine (connects included)
	MBPerS   float64 `json:"mb_per_s,omitempty"`
	Errors   int     `json:"errors"`
}

func median(rs []run) run {
	s := append([]run(nil), rs...)
	sort.Slice(s, func(i, j int) bool { return s[i].WallS < s[j].WallS })
	return s[len(s)/2]
}

func sumErrors(rs []run) int {
	n := 0
	for _, r := range rs {
		n += r.Errors
	}
	return n
}

// fetcher gets a URL and returns the body's length.
type fetcher interface {
	fetch(url string) (int, error)
}

// httpFetcher reads the body with io.Copy to io.Discard, or whole into
// memory (readAll, as Do does).
type httpFetcher struct {
	c       *http.Client
	readAll bool
}

func (h httpFetcher) fetch(url string) (int, error) {
	resp, err := h.c.Get(url)
	if err != nil {
		return 0, err
	}
	var n int64
	if h.readAll {
		var body []byte
		body, err = io.ReadAll(resp.Body)
		n = int64(len(body))
	} else {
		n, err = io.Copy(io.Discard, resp.Body)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	return int(n), err
}

type doFetcher struct{ c *tornado.Client }

func (d doFetcher) fetch(url string) (int, error) {
	r, err := d.c.Do(context.Background(), &tornado.Request{URL: url})
	if err != nil {
		return 0, err
	}
	if r.StatusCode != 200 {
		return 0, fmt.Errorf("status %d", r.StatusCode)
	}
	return len(r.Body), nil
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func measure(f fetcher, goroutines, perG int, url string, length int) run {
	var wg sync.WaitGroup
	var mu sync.Mutex
	errors := 0
	var firstDone sync.WaitGroup
	firstDone.Add(goroutines)
	start, cpu := time.Now(), cpuSeconds()
	var first time.Duration
	go func() { firstDone.Wait(); first = time.Since(start) }()
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perG; i++ {
				n, err := f.fetch(url)
				if i == 0 {
					firstDone.Done()
				}
				if err != nil || n != length {
					mu.Lock()
					errors++
					if errors == 1 {
						fmt.Fprintln(os.Stderr, "fetch:", n, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	firstDone.Wait()
	return run{N: goroutines * perG, WallS: time.Since(start).Seconds(), CPUS: cpuSeconds() - cpu, FirstS: first.Seconds(), Errors: errors}
}

func runServer() {
	small := bytes.Repeat([]byte("x"), 200)
	big := bytes.Repeat([]byte("0123456789abcdef"), (*bigMB<<20)/16)
	mux := http.NewServeMux()
	mux.HandleFunc("/small", func(w http.ResponseWriter, r *http.Request) { w.Write(small) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { w.Write(big) })
	mux.HandleFunc("/bigcl", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(big)))
		w.Write(big)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	fmt.Println(ln.Addr().String())
	go func() { io.Copy(io.Discard, os.Stdin); os.Exit(0) }() // ends with its parent
	check(http.Serve(ln, mux))
}

func startServer() (string, func()) {
	exe, err := os.Executable()
	check(err)
	cmd := exec.Command(exe, "-serve", fmt.Sprintf("-bigmb=%d", *bigMB))
	stdin, err := cmd.StdinPipe()
	check(err)
	stdout, err := cmd.StdoutPipe()
	check(err)
	cmd.Stderr = os.Stderr
	check(cmd.Start())
	buf := make([]byte, 64)
	n, err := stdout.Read(buf)
	check(err)
	return strings.TrimSpace(string(buf[:n])), func() { stdin.Close(); cmd.Wait() }
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
