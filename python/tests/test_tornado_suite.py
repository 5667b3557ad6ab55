"""Tornado's own HTTP client tests against RsAsyncHTTPClient, the way
tornado/test/curl_httpclient_test.py runs them for curl."""

import unittest

from tornado.test import httpclient_test

from tornado_rs.httpclient import RsAsyncHTTPClient


class RsHTTPClientCommonTestCase(httpclient_test.HTTPClientCommonTestCase):
    # The library decodes br (and zstd) whatever Accept-Encoding said, as
    # libcurl: test_streaming_unsolicited_brotli_bomb runs.
    decompresses_brotli = True

    def get_http_client(self):
        return RsAsyncHTTPClient(force_instance=True, defaults=dict(allow_ipv6=False))


if __name__ == "__main__":
    unittest.main()


# ---- the client-behaviour tests of tornado.test.simple_httpclient_test ----

from tornado.test import simple_httpclient_test as simple  # noqa: E402
from tornado.testing import AsyncHTTPTestCase  # noqa: E402


def create_client(**kwargs):
    return RsAsyncHTTPClient(force_instance=True, **kwargs)


class RsHTTPClientTestCase(AsyncHTTPTestCase, simple.SimpleHTTPClientTestMixin):
    def setUp(self):
        super().setUp()
        self.http_client = self.create_client()

    def get_app(self):
        return self.mixin_get_app()

    def create_client(self, **kwargs):
        return create_client(**kwargs)


class RsGzipResponseTestCase(simple.GzipResponseTestCase):
    def get_http_client(self):
        return create_client()


class RsHTTP1xxLimitTestCase(simple.HTTP1xxLimitTestCase):
    def get_http_client(self):
        return create_client()


class RsHTTP204NoContentTestCase(simple.HTTP204NoContentTestCase):
    def get_http_client(self):
        return create_client()


class RsHTTP100ContinueTestCase(simple.HTTP100ContinueTestCase):
    def get_http_client(self):
        return create_client()


class RsHTTPSClientTestCase(simple.SimpleHTTPSClientTestCase):
    def create_client(self, **kwargs):
        return create_client(defaults=dict(validate_cert=False), **kwargs)


class RsMaxHeaderSizeTest(simple.MaxHeaderSizeTest):
    def get_http_client(self):
        return create_client(max_header_size=1024)


class RsHTTPClientMaxBodySizeTestCase(simple.SimpleHTTPClientMaxBodySizeTestCase):
    def get_http_client(self):
        return create_client(max_body_size=httpclient_test.MAX_BODY_SIZE)


class RsMaxBodySizeUntilCloseTest(simple.MaxBodySizeUntilCloseTest):
    def get_http_client(self):
        return create_client(max_body_size=1024 * 64)


class RsMaxBufferSizeUntilCloseTest(simple.MaxBufferSizeUntilCloseTest):
    def get_http_client(self):
        return create_client(max_body_size=1024 * 1024, max_buffer_size=1024 * 64)


class RsMaxBufferSizeTest(simple.MaxBufferSizeTest):
    def get_http_client(self):
        return create_client(max_body_size=1024 * 100, max_buffer_size=1024 * 64)


class RsChunkedWithContentLengthTest(simple.ChunkedWithContentLengthTest):
    def get_http_client(self):
        return create_client()


class RsHostnameMappingTestCase(simple.HostnameMappingTestCase):
    def setUp(self):
        AsyncHTTPTestCase.setUp(self)
        self.http_client = create_client(
            hostname_mapping={
                "www.example.com": "127.0.0.1",
                ("foo.example.com", 8000): ("127.0.0.1", self.get_http_port()),
            }
        )


class RsSyncHTTPClientTest(httpclient_test.SyncHTTPClientTest):
    def setUp(self):
        super().setUp()
        self.http_client.close()
        from tornado.httpclient import HTTPClient

        self.http_client = HTTPClient(async_client_class=RsAsyncHTTPClient)
