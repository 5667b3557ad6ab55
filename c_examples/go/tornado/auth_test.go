package tornado

import (
	"context"
	"crypto/md5"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
)

var digestParam = regexp.MustCompile(`(\w+)=(?:"([^"]*)"|([^,\s]*))`)

func md5hex(s string) string { return fmt.Sprintf("%x", md5.Sum([]byte(s))) }

// A server that checks RFC 7616 digest credentials (MD5, qop=auth) for
// user "alice", password "secret".
func digestServer(t *testing.T) (*httptest.Server, *int64) {
	var challenges int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		if !strings.HasPrefix(auth, "Digest ") {
			atomic.AddInt64(&challenges, 1)
			w.Header().Set("WWW-Authenticate", `Digest realm="go-test", qop="auth", nonce="n0nce42", opaque="op", algorithm=MD5`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		p := map[string]string{}
		for _, m := range digestParam.FindAllStringSubmatch(auth[len("Digest "):], -1) {
			p[m[1]] = m[2] + m[3]
		}
		ha1 := md5hex("alice:go-test:secret")
		ha2 := md5hex(r.Method + ":" + p["uri"])
		want := md5hex(strings.Join([]string{ha1, p["nonce"], p["nc"], p["cnonce"], p["qop"], ha2}, ":"))
		if p["username"] != "alice" || p["response"] != want || p["uri"] != r.URL.RequestURI() {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, "bad digest")
			return
		}
		io.WriteString(w, "digest ok")
	}))
	t.Cleanup(s.Close)
	return s, &challenges
}

func TestDigestAuth(t *testing.T) {
	s, challenges := digestServer(t)
	c := newClient(t, nil)
	r, err := c.Do(context.Background(), &Request{URL: s.URL + "/private?x=1", Username: "alice", Password: "secret", AuthMode: "digest"})
	if err != nil || r.StatusCode != 200 || string(r.Body) != "digest ok" || atomic.LoadInt64(challenges) != 1 {
		t.Fatalf("digest: %v %v %q (challenges %d)", r, err, r.Body, atomic.LoadInt64(challenges))
	}
	r, err = c.Do(context.Background(), &Request{URL: s.URL + "/private", Username: "alice", Password: "wrong", AuthMode: "digest"})
	if err != nil || r.StatusCode != 403 {
		t.Fatalf("wrong password: %v %v", r, err)
	}
	// Basic credentials to a digest server: the 401 is the response.
	r, err = c.Do(context.Background(), &Request{URL: s.URL + "/private", Username: "alice", Password: "secret"})
	if err != nil || r.StatusCode != 401 {
		t.Fatalf("basic: %v %v", r, err)
	}
}
