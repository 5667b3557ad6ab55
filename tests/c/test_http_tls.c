/* test_http_tls.c: per-request TLS options through the C API, as Tornado's
 * ssl_options and curl set them: CA and client certificate from PEM in
 * memory, the minimum TLS version, the ALPN protocols offered, the server
 * name, validation off with them; and "Timeout during TLS handshake" apart
 * from "Timeout while connecting". Against the servers tests/c_programs.rs
 * starts on 127.0.0.1 (tests/common/tls_probe.rs): each answers with what
 * the ClientHello offered, "sni=... alpn=... chosen=... version=...".
 *   TORNADO_TEST_TLS_PORT    offers ALPN http/1.1
 *   TORNADO_TEST_TLS12_PORT  TLS 1.2 only
 *   TORNADO_TEST_H2_PORT     picks ALPN h2
 *   TORNADO_TEST_MTLS_PORT   asks for a client certificate
 *   TORNADO_TEST_SILENT_PORT accepts and never answers
 *   TORNADO_TEST_FULL_PORT   never accepts (a full accept queue)
 *   TORNADO_TEST_CA, _CLIENT_CERT, _CLIENT_KEY  the test PKI's PEM files
 * Every server certificate names mtls.test only (the client maps it to
 * 127.0.0.1). */
#include <stdlib.h>
#include <string.h>

#include "tap.h"

static tornado_loop *loop;

typedef struct {
    uint8_t *data;
    size_t len;
} pem_t;

static pem_t read_pem(const char *path) {
    pem_t pem = {NULL, 0};
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f) return pem;
    pem.data = malloc(16384);
    pem.len = pem.data ? fread(pem.data, 1, 16384, f) : 0;
    fclose(f);
    return pem;
}

/* Fetches `r`; on success copies the body into `body` (NUL-terminated) and
 * returns TORNADO_OK, else the error code with its message in `body`. */
/* tornado_http_response_version of the last fetch's response (0: none). */
static int last_version;

static tornado_code fetch(tornado_http_client *c, tornado_http_request *r, char *body, size_t size) {
    body[0] = '\0';
    last_version = 0;
    tornado_future *f = tornado_http_client_fetch(c, r);
    CHECK(f != NULL, "fetch returned a future");
    if (!f) return TORNADO_ERR_INVALID;
    tornado_loop_run_sync(loop, f, 20);
    const char *msg = NULL;
    tornado_code rc = tornado_future_error(f, &msg);
    if (rc != TORNADO_OK) {
        snprintf(body, size, "%s", msg ? msg : "");
    } else {
        size_t n = 0;
        const uint8_t *b = tornado_http_response_body(tornado_future_result(f), &n);
        last_version = tornado_http_response_version(tornado_future_result(f));
        snprintf(body, size, "%.*s", (int)n, b ? (const char *)b : "");
    }
    tornado_future_unref(f);
    return rc;
}

static int starts_with(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static tornado_http_request *request_for(const char *host, const char *port, const pem_t *ca) {
    char url[128];
    snprintf(url, sizeof url, "https://%s:%s/", host, port);
    tornado_http_request *r = tornado_http_request_new(url);
    CHECK(r != NULL, "request for %s", url);
    if (ca) CHECK_OK(tornado_http_request_set_ca_pem(r, ca->data, ca->len), "set_ca_pem");
    return r;
}

static void test_ca_pem(tornado_http_client *c, const char *port, const pem_t *ca) {
    tap_section("CA certificates from memory");
    char body[512];
    tornado_http_request *r = request_for("mtls.test", port, ca);
    CHECK(fetch(c, r, body, sizeof body) == TORNADO_OK && starts_with(body, "sni=mtls.test "),
          "trusted through set_ca_pem (%s)", body);
    CHECK_FAIL(tornado_http_request_set_ca_pem(r, (const uint8_t *)"not PEM", 7), TORNADO_ERR_INVALID,
               "PEM without a certificate is refused when set");
    CHECK(strstr(tornado_last_error(), "no certificate") != NULL, "it says so (%s)", tornado_last_error());
    static const char broken[] = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    CHECK_FAIL(tornado_http_request_set_ca_pem(r, (const uint8_t *)broken, strlen(broken)), TORNADO_ERR_INVALID,
               "a malformed certificate is refused when set");
    CHECK(fetch(c, r, body, sizeof body) == TORNADO_OK, "the request kept its CA (%s)", body);
    CHECK_OK(tornado_http_request_set_ca_pem(r, NULL, 0), "set_ca_pem(NULL, 0): the system's store");
    CHECK(fetch(c, r, body, sizeof body) != TORNADO_OK && starts_with(body, "tls: "),
          "the system's store does not trust the test CA (%s)", body);
    tornado_http_request_free(r);
}

static void test_client_cert_pem(tornado_http_client *c, const char *port, const pem_t *ca, const pem_t *cert,
                                 const pem_t *key) {
    tap_section("a client certificate from memory");
    char body[512];
    tornado_http_request *r = request_for("mtls.test", port, ca);
    CHECK_FAIL(tornado_http_request_set_client_cert_pem(r, cert->data, cert->len, (const uint8_t *)"no key", 6),
               TORNADO_ERR_INVALID, "a malformed key is refused when set");
    CHECK_OK(tornado_http_request_set_client_cert_pem(r, cert->data, cert->len, key->data, key->len),
             "set_client_cert_pem");
    CHECK(fetch(c, r, body, sizeof body) == TORNADO_OK && starts_with(body, "sni=mtls.test "),
          "the server took the certificate (%s)", body);
    CHECK_OK(tornado_http_request_set_validate_cert(r, false), "validate_cert(false)");
    CHECK_OK(tornado_http_request_set_ca_pem(r, NULL, 0), "no CA");
    CHECK(fetch(c, r, body, sizeof body) == TORNADO_OK, "shown with validation off too (%s)", body);
    CHECK_OK(tornado_http_request_set_client_cert_pem(r, NULL, 0, NULL, 0), "set_client_cert_pem(none)");
    CHECK(fetch(c, r, body, sizeof body) != TORNADO_OK && starts_with(body, "tls: "),
          "refused without one (%s)", body);
    tornado_http_request_free(r);
}

static void test_min_version(tornado_http_client *c, const char *tls12_port, const char *port, const pem_t *ca) {
    tap_section("the minimum TLS version");
    char body[512];
    tornado_http_request *r = request_for("mtls.test", tls12_port, ca);
    CHECK(fetch(c, r, body, sizeof body) == TORNADO_OK && strstr(body, "version=TLSv1_2"),
          "a TLS 1.2 server by default (%s)", body);
    CHECK_OK(tornado_http_request_set_min_tls_version(r, "1.3"), "min_tls_version 1.3");
    CHECK(fetch(c, r, body, sizeof body) != TORNADO_OK && starts_with(body, "tls: "),
          "a TLS 1.2 server refused with a minimum of 1.3 (%s)", body);
    CHECK_OK(tornado_http_request_set_validate_cert(r, false), "validate_cert(false)");
    CHECK(fetch(c, r, body, sizeof body) != TORNADO_OK && starts_with(body, "tls: "),
          "also with validation off (%s)", body);
    CHECK_OK(tornado_http_request_set_min_tls_version(r, "1.2"), "min_tls_version 1.2");
    CHECK(fetch(c, r, body, sizeof body) == TORNADO_OK && strstr(body, "version=TLSv1_2"), "1.2 allowed (%s)",
          body);
    tornado_http_request_free(r);

    r = request_for("mtls.test", port, ca);
    CHECK_OK(tornado_http_request_set_min_tls_version(r, "1.3"), "min_tls_version 1.3");
    CHECK(fetch(c, r, body, sizeof body) == TORNADO_OK && strstr(body, "version=TLSv1_3"),
          "a TLS 1.3 server (%s)", body);
    tornado_http_request_free(r);
}

static void test_alpn(tornado_http_client *c, const char *port, const char *h2_port, const pem_t *ca) {
    tap_section("ALPN protocols offered");
    char body[512];
    tornado_http_request *r = request_for("mtls.test", port, ca);
    CHECK(fetch(c, r, body, sizeof body) == TORNADO_OK && strstr(body, " alpn=h2,http/1.1 chosen=http/1.1 "),
          "h2 and http/1.1 by default (%s)", body);
    CHECK(last_version == 11, "the server chose http/1.1: the response says HTTP/1.1 (%d)", last_version);
    CHECK_OK(tornado_http_request_set_http_version(r, TORNADO_HTTP_VERSION_1_1), "set_http_version(1.1)");
    CHECK(fetch(c, r, body, sizeof body) == TORNADO_OK && strstr(body, " alpn=http/1.1 chosen=http/1.1 "),
          "HTTP/1.1 only: http/1.1 alone (%s)", body);
    CHECK_OK(tornado_http_request_set_http_version(r, TORNADO_HTTP_VERSION_ANY), "set_http_version(ANY)");
    const char *offer[] = {"x-test", "http/1.1"};
    CHECK_OK(tornado_http_request_set_alpn(r, offer, 2), "set_alpn(x-test, http/1.1)");
    CHECK(fetch(c, r, body, sizeof body) == TORNADO_OK && strstr(body, " alpn=x-test,http/1.1 chosen=http/1.1 "),
          "both offered, in order (%s)", body);
    CHECK_OK(tornado_http_request_set_alpn(r, offer, 0), "set_alpn(array, 0): none");
    CHECK(fetch(c, r, body, sizeof body) == TORNADO_OK && strstr(body, " alpn=- chosen=- "), "none offered (%s)",
          body);
    CHECK_OK(tornado_http_request_set_alpn(r, NULL, 0), "set_alpn(NULL, 0): the default");
    CHECK(fetch(c, r, body, sizeof body) == TORNADO_OK && strstr(body, " alpn=h2,http/1.1 "), "the default again (%s)",
          body);
    tornado_http_request_free(r);

    r = request_for("mtls.test", h2_port, ca);
    const char *h2[] = {"h2", "http/1.1"};
    CHECK_OK(tornado_http_request_set_alpn(r, h2, 2), "set_alpn(h2, http/1.1)");
    CHECK(fetch(c, r, body, sizeof body) != TORNADO_OK && starts_with(body, "protocol: "),
          "a server that picks h2 but answers in HTTP/1.1: a protocol error (%s)", body);
    tornado_http_request_free(r);
}

static void test_server_name(tornado_http_client *c, const char *port, const pem_t *ca) {
    tap_section("the server name");
    char body[512];
    tornado_http_request *r = request_for("127.0.0.1", port, ca);
    CHECK(fetch(c, r, body, sizeof body) != TORNADO_OK && starts_with(body, "tls: "),
          "the certificate does not name 127.0.0.1 (%s)", body);
    CHECK_OK(tornado_http_request_set_server_name(r, "mtls.test"), "set_server_name(mtls.test)");
    CHECK(fetch(c, r, body, sizeof body) == TORNADO_OK && starts_with(body, "sni=mtls.test "),
          "validated as mtls.test, sent as SNI (%s)", body);
    CHECK_OK(tornado_http_request_set_server_name(r, "other.test"), "set_server_name(other.test)");
    CHECK(fetch(c, r, body, sizeof body) != TORNADO_OK && starts_with(body, "tls: "),
          "a wrong name is refused (%s)", body);
    CHECK_OK(tornado_http_request_set_validate_cert(r, false), "validate_cert(false)");
    CHECK(fetch(c, r, body, sizeof body) == TORNADO_OK && starts_with(body, "sni=other.test "),
          "with validation off the name is still sent (%s)", body);
    CHECK_OK(tornado_http_request_set_server_name(r, NULL), "set_server_name(NULL): the URL's host");
    tornado_http_request_free(r);
}

static void test_handshake_timeout(tornado_http_client *c, const char *silent_port, const char *full_port) {
    tap_section("a timeout during the TLS handshake");
    char body[512];
    tornado_http_request *r = request_for("127.0.0.1", silent_port, NULL);
    CHECK_OK(tornado_http_request_set_connect_timeout(r, 0.3), "connect_timeout 0.3");
    char expected[128];
    snprintf(expected, sizeof expected, "timeout: Timeout during TLS handshake with 127.0.0.1:%s", silent_port);
    CHECK(fetch(c, r, body, sizeof body) == TORNADO_ERR_TIMEOUT && strcmp(body, expected) == 0,
          "TCP up, no ServerHello (%s)", body);
    tornado_http_request_free(r);
    r = request_for("127.0.0.1", full_port, NULL);
    CHECK_OK(tornado_http_request_set_connect_timeout(r, 0.3), "connect_timeout 0.3");
    CHECK(fetch(c, r, body, sizeof body) == TORNADO_ERR_TIMEOUT &&
              strcmp(body, "timeout: Timeout while connecting") == 0,
          "TCP never connected (%s)", body);
    tornado_http_request_free(r);
}

int main(void) {
    tap_init("test_http_tls");
    const char *port = getenv("TORNADO_TEST_TLS_PORT"), *tls12 = getenv("TORNADO_TEST_TLS12_PORT");
    const char *h2 = getenv("TORNADO_TEST_H2_PORT"), *mtls = getenv("TORNADO_TEST_MTLS_PORT");
    const char *silent = getenv("TORNADO_TEST_SILENT_PORT"), *full = getenv("TORNADO_TEST_FULL_PORT");
    pem_t ca = read_pem(getenv("TORNADO_TEST_CA"));
    pem_t cert = read_pem(getenv("TORNADO_TEST_CLIENT_CERT"));
    pem_t key = read_pem(getenv("TORNADO_TEST_CLIENT_KEY"));
    if (!port || !tls12 || !h2 || !mtls || !silent || !full || !ca.len || !cert.len || !key.len) {
        printf("# run through tests/c_programs.rs, which starts the servers\n");
        return 2;
    }
    loop = tornado_loop_new();
    tornado_http_client_options *o = tornado_http_client_options_new();
    CHECK_OK(tornado_http_client_options_add_hostname_mapping(o, "mtls.test", "127.0.0.1"), "mapping");
    tornado_http_client *c = tornado_http_client_new(loop, o);
    tornado_http_client_options_free(o);
    CHECK(c != NULL, "client");

    test_ca_pem(c, port, &ca);
    test_client_cert_pem(c, mtls, &ca, &cert, &key);
    test_min_version(c, tls12, port, &ca);
    test_alpn(c, port, h2, &ca);
    test_server_name(c, port, &ca);
    test_handshake_timeout(c, silent, full);

    free(ca.data);
    free(cert.data);
    free(key.data);
    CHECK_OK(tornado_http_client_free(c), "client_free");
    tornado_loop_run_once(loop, 0);
    CHECK_OK(tornado_loop_free(loop), "loop_free");
    return tap_done();
}
