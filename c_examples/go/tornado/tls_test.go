package tornado

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// newTLSServer serves handler over TLS with a leaf certificate for
// 127.0.0.1 signed by a fresh CA (webpki refuses a self-signed CA as the
// server's own certificate, which is what httptest's is). It returns the
// CA's PEM.
func newTLSServer(t *testing.T, handler http.Handler) (*httptest.Server, []byte) {
	s, ca, _ := newTLSServerWith(t, handler, nil)
	return s, ca
}

// newTLSServerWith is newTLSServer with the server's tls.Config changed
// by configure (given the CA's pool) before it starts; it also returns a
// client certificate and key (PEM) signed by the CA.
func newTLSServerWith(t *testing.T, handler http.Handler, configure func(*tls.Config, *x509.CertPool)) (*httptest.Server, []byte, [2][]byte) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tornado go test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"tls.test"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	clientKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	clientTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(3),
		Subject:      pkix.Name{CommonName: "go client"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	clientDER, err := x509.CreateCertificate(rand.Reader, clientTmpl, ca, &clientKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(clientKey)
	client := [2][]byte{
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: clientDER}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
	s := httptest.NewUnstartedServer(handler)
	s.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}}}
	if configure != nil {
		pool := x509.NewCertPool()
		pool.AddCert(ca)
		configure(s.TLS, pool)
	}
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	s.StartTLS()
	t.Cleanup(s.Close)
	return s, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), client
}

// A server that requires a client certificate: given as PEM or as files.
func TestClientCertificates(t *testing.T) {
	s, ca, client := newTLSServerWith(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello "+r.TLS.PeerCertificates[0].Subject.CommonName)
	}), func(c *tls.Config, pool *x509.CertPool) {
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = pool
	})
	c := newClient(t, nil)
	if _, err := c.Do(context.Background(), &Request{URL: s.URL, TLS: &TLSOptions{CAPEM: ca}}); err == nil {
		t.Fatal("no client certificate: the server must refuse")
	}
	r, err := c.Do(context.Background(), &Request{URL: s.URL, TLS: &TLSOptions{CAPEM: ca, ClientCertPEM: client[0], ClientKeyPEM: client[1]}})
	if err != nil || string(r.Body) != "hello go client" {
		t.Fatalf("PEM: %v %v", r, err)
	}
	dir := t.TempDir()
	files := [3]string{filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")}
	for i, data := range [][]byte{ca, client[0], client[1]} {
		if err := os.WriteFile(files[i], data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r, err = c.Do(context.Background(), &Request{URL: s.URL, TLS: &TLSOptions{CAFile: files[0], ClientCertFile: files[1], ClientKeyFile: files[2]}})
	if err != nil || string(r.Body) != "hello go client" {
		t.Fatalf("files: %v %v", r, err)
	}
	_, err = c.Do(context.Background(), &Request{URL: s.URL, TLS: &TLSOptions{CAFile: files[0], ClientCertFile: files[1]}})
	var e *Error
	if !errors.As(err, &e) || e.Code != ErrCodeInvalid {
		t.Fatalf("a certificate without its key: %#v", err)
	}
}
