"""Tornado's own HTTP client tests against RsAsyncHTTPClient, the way
tornado/test/curl_httpclient_test.py runs them for curl."""

import unittest

from tornado.test import httpclient_test

from tornado_rs.httpclient import RsAsyncHTTPClient


class RsHTTPClientCommonTestCase(httpclient_test.HTTPClientCommonTestCase):
    def get_http_client(self):
        return RsAsyncHTTPClient(force_instance=True, defaults=dict(allow_ipv6=False))


if __name__ == "__main__":
    unittest.main()
