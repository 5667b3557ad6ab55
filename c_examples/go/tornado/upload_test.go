package tornado

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A server that reports what it received: length, framing and a digest.
func uploadServer(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		fmt.Fprintf(w, "%d %x cl=%d te=%v err=%v", n, h.Sum(nil)[:8], r.ContentLength, r.TransferEncoding, err)
	}))
	t.Cleanup(s.Close)
	return s
}

func expectUpload(data []byte, contentLength int64, chunked bool) string {
	te := "[]"
	if chunked {
		te = "[chunked]"
	}
	sum := sha256.Sum256(data)
	return fmt.Sprintf("%d %x cl=%d te=%s err=<nil>", len(data), sum[:8], contentLength, te)
}

func TestDoStreamsABodyReader(t *testing.T) {
	s := uploadServer(t)
	c := newClient(t, nil)
	data := bytes.Repeat([]byte("upload-bytes-"), 300000) // ~3.9 MB, many writes
	r, err := c.Do(context.Background(), &Request{URL: s.URL, Method: "PUT", BodyReader: bytes.NewReader(data)})
	if err != nil || string(r.Body) != expectUpload(data, -1, true) {
		t.Fatalf("chunked upload: %v %q", err, r.Body)
	}
	// With a Content-Length the bytes go unframed.
	hdr := http.Header{"Content-Length": {fmt.Sprint(len(data))}}
	r, err = c.Do(context.Background(), &Request{URL: s.URL, Method: "POST", Header: hdr, BodyReader: bytes.NewReader(data)})
	if err != nil || string(r.Body) != expectUpload(data, int64(len(data)), false) {
		t.Fatalf("unframed upload: %v %q", err, r.Body)
	}
	// A reader that fails fails the fetch with its error.
	failing := io.MultiReader(strings.NewReader("some bytes"), errReader{})
	_, err = c.Do(context.Background(), &Request{URL: s.URL, Method: "POST", BodyReader: failing})
	var e *Error
	if !errors.As(err, &e) || e.Code != ErrCodeUser || !strings.Contains(e.Message, "disk on fire") {
		t.Fatalf("failing reader: %#v", err)
	}
	if _, err := c.Do(context.Background(), &Request{URL: s.URL, Method: "POST", Body: []byte("x"), BodyReader: failing}); err == nil {
		t.Fatal("Body and BodyReader together must be refused")
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

// RoundTrip streams request bodies of unknown length (an io.Pipe) chunked,
// and large ones of known length unframed.
func TestRoundTripStreamsRequestBodies(t *testing.T) {
	s := uploadServer(t)
	hc := &http.Client{Transport: newClient(t, nil)}
	data := bytes.Repeat([]byte("0123456789"), 50000)
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < len(data); i += 7000 {
			end := i + 7000
			if end > len(data) {
				end = len(data)
			}
			pw.Write(data[i:end])
		}
		pw.Close()
	}()
	resp, err := hc.Post(s.URL, "application/octet-stream", pr)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != expectUpload(data, -1, true) {
		t.Fatalf("piped: %q", body)
	}
	resp, err = hc.Post(s.URL, "application/octet-stream", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != expectUpload(data, int64(len(data)), false) {
		t.Fatalf("known length: %q", body)
	}
}

type closeRecorder struct {
	io.Reader
	closed chan struct{}
}

func (r *closeRecorder) Close() error {
	select {
	case <-r.closed:
	default:
		close(r.closed)
	}
	return nil
}

// RoundTrip closes a request body it streams, also when the fetch fails
// before reading it (net/http's contract).
func TestRoundTripClosesTheRequestBody(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	hc := &http.Client{Transport: newClient(t, nil)}
	body := &closeRecorder{Reader: strings.NewReader("never sent"), closed: make(chan struct{})}
	req, _ := http.NewRequest("POST", "http://"+addr+"/", body)
	if _, err := hc.Do(req); err == nil {
		t.Fatal("refused: no error")
	}
	waitFor(t, body.closed, "the request body to be closed")
}
