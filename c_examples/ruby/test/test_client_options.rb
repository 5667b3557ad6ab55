# frozen_string_literal: true

# The cookie jar's public suffix list, an https:// proxy's certificate and
# HTTP/2 PING liveness from Ruby, against real servers on 127.0.0.1:
# WEBrick setting a Domain= cookie (host names mapped to loopback, no
# DNS), WEBrick over TLS (TestPKI's CA) as the https:// proxy (it answers
# the absolute-form requests it gets), nginx with h2 (test_curl_parity.rb's).
require_relative "helper"
require_relative "test_curl_parity"

class TestPublicSuffixFile < Minitest::Test
  def setup
    @loop = TornadoRS::IOLoop.new
    @web = WebServer.new
    @web.server.mount_proc("/suffix") do |_req, res|
      res["Set-Cookie"] = "wide=1; Domain=tornado.test; Path=/"
      res.body = "set"
    end
    @dir = Dir.mktmpdir("tornado-rs-psl")
    @listed = File.join(@dir, "listed.dat")
    File.write(@listed, "// ===BEGIN ICANN DOMAINS===\ncom\ntest\ntornado.test\n")
    @unlisted = File.join(@dir, "unlisted.dat")
    File.write(@unlisted, "// ===BEGIN ICANN DOMAINS===\ncom\ntest\n")
  end

  def teardown
    @loop.close
    @web.close
    FileUtils.rm_rf(@dir)
  end

  def kept(list)
    client = TornadoRS::HTTPClient.new(@loop, cookies: true, public_suffix_file: list,
                                              hostname_mapping: { "www.shop.tornado.test" => "127.0.0.1" })
    assert_equal "set", client.fetch("http://www.shop.tornado.test:#{@web.port}/suffix").body
    client.cookie_count
  ensure
    client&.close
  end

  def test_a_listed_suffix_is_refused_and_kept_otherwise
    assert_equal 0, kept(@listed), "a list naming tornado.test refuses Domain=tornado.test"
    assert_equal 1, kept(@unlisted), "a list without tornado.test keeps it"
    assert_equal 1, kept(nil), "the built-in list keeps it"
  end

  def test_bad_files
    missing = File.join(@dir, "absent.dat")
    error = assert_raises(TornadoRS::Error) { TornadoRS::HTTPClient.new(@loop, cookies: true, public_suffix_file: missing) }
    assert_includes error.message, missing
    error = assert_raises(TornadoRS::Error) { TornadoRS::HTTPClient.new(@loop, cookies: true, public_suffix_file: "/dev/null") }
    assert_match(/not a public suffix list/, error.message)
    assert_raises(ArgumentError) { TornadoRS::HTTPClient.new(@loop, cookies: true, public_suffix_file: "a\0b") }
  end
end

class TestHTTPSProxy < Minitest::Test
  TARGET = "http://127.0.0.1:9/via-proxy"

  def setup
    pki = TestPKI.pki
    @proxy = WebServer.new(ssl: { SSLEnable: true, SSLCertificate: pki[:server], SSLPrivateKey: pki[:server_key],
                                  SSLStartImmediately: true, SSLCertName: nil })
    @proxy.server.mount_proc("/via-proxy") do |req, res|
      res.body = "proxy got #{req.request_method} #{req.unparsed_uri}"
    end
    @dir = Dir.mktmpdir("tornado-rs-proxy")
    @ca_file = File.join(@dir, "proxy-ca.pem")
    File.write(@ca_file, pki[:ca].to_pem)
    @loop = TornadoRS::IOLoop.new
    @client = TornadoRS::HTTPClient.new(@loop)
  end

  def teardown
    @client.close
    @loop.close
    @proxy.close
    FileUtils.rm_rf(@dir)
  end

  def via(**options)
    @client.fetch(TARGET, proxy_host: "https://127.0.0.1:#{@proxy.port}", **options)
  end

  def test_proxy_ca_certs_and_validate_cert
    assert_equal "proxy got GET #{TARGET}", via(proxy_ca_certs: @ca_file).body
    assert_equal "proxy got GET #{TARGET}", via(proxy_validate_cert: false).body
    [{}, { ca_pem: TestPKI.pki[:ca].to_pem, validate_cert: false }, { proxy_ca_certs: "#{@ca_file}.absent" }].each do |o|
      error = assert_raises(TornadoRS::HTTPClientError, o.inspect) { via(**o) }
      assert_equal ["tls", TornadoRS::ERR_TLS], [error.kind, error.code], o.inspect
      assert_includes error.message, "https proxy 127.0.0.1", o.inspect
    end
    error = assert_raises(TornadoRS::HTTPClientError) { via(proxy_ca_certs: "#{@ca_file}.absent") }
    assert_includes error.message, "proxy-ca.pem.absent"
    assert_raises(ArgumentError) { via(proxy_ca_certs: "a\0b") }
  end
end

class TestHTTP2Ping < Minitest::Test
  def setup
    @loop = TornadoRS::IOLoop.new
  end

  def teardown
    @loop.close
  end

  def test_h2_fetches_across_an_idle_ping
    nginx = nginx_h2
    client = TornadoRS::HTTPClient.new(@loop, http2_ping: [0.2, 10])
    url = "https://127.0.0.1:#{nginx.port}/proto"
    2.times do
      r = client.fetch(url, ca_pem: TestPKI.pki[:ca].to_pem)
      assert_equal [200, "HTTP/2.0\n", 20], [r.code, r.body, r.version]
      sleep 0.3 # idle past 0.2 s: a PING before the connection's reuse
    end
    assert_equal [1, 1], [client.connections_opened, client.http2_connections], "the PING was answered: one connection"
    client.close
    TornadoRS::HTTPClient.new(@loop, http2_ping: [0, 1]).close # 0: no check
    [[-1, 2], [5, 0], [Float::NAN, 2], [5, Float::INFINITY]].each do |bad|
      error = assert_raises(TornadoRS::Error, bad.inspect) { TornadoRS::HTTPClient.new(@loop, http2_ping: bad) }
      assert_equal TornadoRS::ERR_INVALID, error.code
    end
  ensure
    nginx&.close
  end

  # The PING itself, in nghttpd's frame log (-v): sent before the idle
  # connection's reuse, not sent with the check off.
  def test_the_ping_in_nghttpds_frame_log
    frames = nil
    nghttpd = ProgramServer.new("nghttpd (apt package nghttp2-server)") do |port, d|
      File.write(File.join(d, "index.html"), "h2c page\n")
      frames = File.join(d, "stderr") # ProgramServer's stderr file: the frame log goes there (1>&2)
      program = %w[/usr/sbin/nghttpd nghttpd].find { |p| !p.start_with?("/") || File.exist?(p) }
      ["sh", "-c", "exec \"$0\" -v --no-tls -a 127.0.0.1 -d \"$1\" \"$2\" 1>&2", program, d, port.to_s]
    end
    count = lambda do |ping|
      client = TornadoRS::HTTPClient.new(@loop, http_version: :http2_prior_knowledge, http2_ping: ping)
      2.times do
        assert_equal "h2c page\n", client.fetch("http://127.0.0.1:#{nghttpd.port}/index.html").body
        sleep 0.3
      end
      client.close
      sleep 0.2 # nghttpd's log written
      File.read(frames).scan("recv PING frame").size
    end
    assert_equal 1, count.([0.2, 10]), "one PING before the reuse"
    assert_equal 1, count.([0, 1]), "http2_ping [0, 1]: no PING (still one in all)"
  ensure
    nghttpd&.close
  end
end
