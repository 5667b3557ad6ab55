# frozen_string_literal: true

# HTTP versions (issue 16) and curl's Unix sockets, cookie jar and DNS
# cache TTL (issue 19) from Ruby, against real servers: nginx with h2 over
# TLS (a CA made by TestPKI), nghttpd over h2c (prior knowledge), a server
# on a Unix socket, WEBrick setting cookies.
require_relative "helper"
require "fileutils"

# A program started for a test on a free port of 127.0.0.1, stopped (TERM,
# then KILL) by #close. A missing program fails the test with the reason.
class ProgramServer
  attr_reader :port, :dir

  def initialize(what)
    @what = what
    @dir = Dir.mktmpdir("tornado-rs-server")
    probe = TCPServer.new("127.0.0.1", 0)
    @port = probe.addr[1]
    probe.close
    argv = yield(@port, @dir)
    begin
      @pid = Process.spawn(*argv, out: File::NULL, err: File.join(@dir, "stderr"))
    rescue SystemCallError => e
      raise "#{what} could not start (#{e.message}); .ci/run installs it"
    end
    wait_listening
  end

  def close
    Process.kill("TERM", @pid)
    unless wait_child(@pid, 5)
      Process.kill("KILL", @pid)
      Process.wait(@pid)
    end
    FileUtils.rm_rf(@dir)
  end

  private

  def wait_listening
    deadline = monotonic + 20
    loop do
      TCPSocket.new("127.0.0.1", @port).close
      return
    rescue SystemCallError
      status = wait_child(@pid, 0)
      raise "#{@what} exited at start (#{status}): #{File.read(File.join(@dir, 'stderr'))}" if status
      raise "#{@what} did not listen on 127.0.0.1:#{@port} within 20 s" if monotonic > deadline

      sleep 0.05
    end
  end
end

# nginx serving https with HTTP/2 and HTTP/1.1 by ALPN: /proto answers the
# protocol it saw ("HTTP/2.0\n").
def nginx_h2
  pki = TestPKI.pki
  nginx = %w[/usr/sbin/nginx nginx].find { |p| !p.start_with?("/") || File.exist?(p) }
  ProgramServer.new("nginx") do |port, d|
    File.write(File.join(d, "cert.pem"), pki[:server].to_pem)
    File.write(File.join(d, "key.pem"), pki[:server_key].to_pem)
    File.write(File.join(d, "nginx.conf"), <<~CONF)
      daemon off; master_process off; worker_processes 1; error_log #{d}/error.log; pid #{d}/nginx.pid;
      events { worker_connections 64; }
      http {
        access_log off; client_body_temp_path #{d}; proxy_temp_path #{d};
        fastcgi_temp_path #{d}; uwsgi_temp_path #{d}; scgi_temp_path #{d};
        server {
          listen 127.0.0.1:#{port} ssl http2;
          ssl_certificate #{d}/cert.pem; ssl_certificate_key #{d}/key.pem;
          location = /proto { return 200 "$server_protocol\\n"; }
        }
      }
    CONF
    [nginx, "-p", d, "-c", File.join(d, "nginx.conf")]
  end
end

# nghttpd serving index.html ("h2c page\n") over plain TCP (h2c only).
def nghttpd_h2c
  ProgramServer.new("nghttpd (apt package nghttp2-server)") do |port, d|
    File.write(File.join(d, "index.html"), "h2c page\n")
    nghttpd = %w[/usr/sbin/nghttpd nghttpd].find { |p| !p.start_with?("/") || File.exist?(p) }
    [nghttpd, "--no-tls", "-a", "127.0.0.1", "-d", d, port.to_s]
  end
end

# An HTTP/1.1 server on a Unix domain socket: answers each request with
# "unix METHOD TARGET host=HOST", then closes.
class UnixHTTPServer
  attr_reader :path

  def initialize(path)
    @path = path
    @server = UNIXServer.new(path)
    @thread = Thread.new do
      loop do
        conn = @server.accept
        request = conn.gets.to_s.split
        host = nil
        while (line = conn.gets) && line != "\r\n"
          host = line.split(":", 2)[1].strip if line.downcase.start_with?("host:")
        end
        body = "unix #{request[0]} #{request[1]} host=#{host}"
        conn.write("HTTP/1.1 200 OK\r\nContent-Length: #{body.bytesize}\r\nConnection: close\r\n\r\n#{body}")
        conn.close
      rescue IOError, SystemCallError
        break
      end
    end
  end

  def close
    @server.close
    @thread.join(5)
    File.unlink(@path) if File.exist?(@path)
  end
end

class TestHTTPVersions < Minitest::Test
  def setup
    @loop = TornadoRS::IOLoop.new
    @ca = TestPKI.pki[:ca].to_pem
  end

  def teardown
    @loop.close
  end

  def test_h2_by_alpn_and_http1_1_on_request
    nginx = nginx_h2
    client = TornadoRS::HTTPClient.new(@loop)
    url = "https://127.0.0.1:#{nginx.port}/proto"
    r = client.fetch(url, ca_pem: @ca)
    assert_equal [200, "HTTP/2.0\n", 20, "HTTP/2"], [r.code, r.body, r.version, r.http_version]
    assert_equal 1, client.http2_connections
    r = client.fetch(url, ca_pem: @ca, http_version: :http1_1)
    assert_equal ["HTTP/1.1\n", 11, "HTTP/1.1"], [r.body, r.version, r.http_version]
    assert_equal 2, client.connections_opened, "HTTP/1.1 only: a connection of its own"
    r = client.fetch(url, ca_pem: @ca, http_version: TornadoRS::HTTP_VERSION_2)
    assert_equal ["HTTP/2.0\n", 20], [r.body, r.version]
    client.close

    # The client's default for requests that do not choose.
    only11 = TornadoRS::HTTPClient.new(@loop, http_version: :http1_1)
    assert_equal 11, only11.fetch(url, ca_pem: @ca).version
    assert_equal 20, only11.fetch(url, ca_pem: @ca, http_version: :http2).version
    only11.close
  ensure
    nginx&.close
  end

  def test_h2c_prior_knowledge
    nghttpd = nghttpd_h2c
    url = "http://127.0.0.1:#{nghttpd.port}/index.html"
    client = TornadoRS::HTTPClient.new(@loop)
    r = client.fetch(url, http_version: :http2_prior_knowledge)
    assert_equal [200, "h2c page\n", 20], [r.code, r.body, r.version]
    # Without prior knowledge plain http is HTTP/1.1, which nghttpd does not speak.
    assert_raises(TornadoRS::HTTPClientError) { client.fetch(url, request_timeout: 10) }
    client.close
    pk = TornadoRS::HTTPClient.new(@loop, http_version: :http2_prior_knowledge)
    assert_equal 20, pk.fetch(url).version
    pk.close
  ensure
    nghttpd&.close
  end

  def test_http1_version_and_none
    web = TinyServer.new
    client = TornadoRS::HTTPClient.new(@loop)
    assert_equal [11, "HTTP/1.1"], client.fetch(web.url("/")).then { |r| [r.version, r.http_version] }
    silent = SilentServer.new
    client.fetch(silent.url, request_timeout: 0.05) do |r|
      assert_equal [599, 0, nil], [r.code, r.version, r.http_version]
      @loop.stop
    end
    @loop.start
    client.close
    silent.close
    web.close
  end

  def test_bad_http_versions
    client = TornadoRS::HTTPClient.new(@loop)
    error = assert_raises(TornadoRS::Error) { client.fetch("http://127.0.0.1:1/", http_version: 9) }
    assert_equal TornadoRS::ERR_INVALID, error.code
    assert_raises(ArgumentError) { client.fetch("http://127.0.0.1:1/", http_version: :http3) }
    assert_raises(TornadoRS::Error) { client.fetch("http://127.0.0.1:1/", http_version: -1) }
    error = assert_raises(TornadoRS::Error) { TornadoRS::HTTPClient.new(@loop, http_version: 4) }
    assert_equal TornadoRS::ERR_INVALID, error.code
    client.close
  end
end

class TestCurlParity < Minitest::Test
  def setup
    @loop = TornadoRS::IOLoop.new
    @dir = Dir.mktmpdir("tornado-rs-curl")
  end

  def teardown
    @loop.close
    FileUtils.rm_rf(@dir)
  end

  def test_unix_socket
    server = UnixHTTPServer.new(File.join(@dir, "http.sock"))
    client = TornadoRS::HTTPClient.new(@loop)
    r = client.fetch("http://docker.test/v1/info?x=1", unix_socket: server.path)
    assert_equal "unix GET /v1/info?x=1 host=docker.test", r.body
    error = assert_raises(TornadoRS::HTTPClientError) do
      client.fetch("http://docker.test/", unix_socket: "#{server.path}.missing")
    end
    assert_equal "connect", error.kind
    error = assert_raises(TornadoRS::Error) { client.fetch("http://docker.test/", unix_socket: "/#{'x' * 200}") }
    assert_equal TornadoRS::ERR_INVALID, error.code
    assert_raises(TornadoRS::Error) { client.fetch("http://docker.test/", unix_socket: "") }
    client.close
  ensure
    server&.close
  end

  def cookie_server
    web = WebServer.new
    web.server.mount_proc("/set") do |_req, res|
      res.cookies << WEBrick::Cookie.new("session", "abc").tap { |c| c.path = "/" }
      res.cookies << WEBrick::Cookie.new("kept", "yes").tap do |c|
        c.path = "/"
        c.max_age = 3600
      end
      res.body = "set"
    end
    web.server.mount_proc("/show") { |req, res| res.body = "cookie=#{req['Cookie']}" }
    web
  end

  def test_cookie_jar_kept_saved_loaded
    web = cookie_server
    client = TornadoRS::HTTPClient.new(@loop, cookies: true, dns_cache_ttl: 0)
    assert_equal 0, client.cookie_count
    client.fetch(web.url("/set"))
    assert_equal 2, client.cookie_count
    sent = client.fetch(web.url("/show")).body
    assert_includes sent, "session=abc"
    assert_includes sent, "kept=yes"

    file = File.join(@dir, "cookies.txt")
    client.save_cookies(file)
    saved = File.read(file)
    assert_includes saved, "127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tabc\n"
    assert_match(/\tkept\tyes\n/, saved)
    client.clear_cookies
    assert_equal 0, client.cookie_count
    assert_equal "cookie=", client.fetch(web.url("/show")).body

    other = TornadoRS::HTTPClient.new(@loop, cookies: true, dns_cache_ttl: 1.5)
    other.load_cookies(file)
    assert_equal 2, other.cookie_count
    assert_includes other.fetch(web.url("/show")).body, "session=abc"

    bad = File.join(@dir, "bad.txt")
    File.write(bad, "127.0.0.1\tFALSE\n")
    error = assert_raises(TornadoRS::Error) { other.load_cookies(bad) }
    assert_equal TornadoRS::ERR_INVALID, error.code
    assert_equal 2, other.cookie_count, "a failed load leaves the jar as it was"
    error = assert_raises(TornadoRS::Error) { other.load_cookies(File.join(@dir, "absent.txt")) }
    assert_equal TornadoRS::ERR_IO, error.code
    assert_raises(ArgumentError) { other.load_cookies("a\0b") }
    client.close
    other.close
  ensure
    web&.close
  end

  def test_cookies_off_by_default
    web = cookie_server
    client = TornadoRS::HTTPClient.new(@loop)
    client.fetch(web.url("/set"))
    assert_equal 0, client.cookie_count
    assert_equal "cookie=", client.fetch(web.url("/show")).body
    %i[clear_cookies].each do |call|
      assert_equal TornadoRS::ERR_INVALID, assert_raises(TornadoRS::Error) { client.send(call) }.code
    end
    error = assert_raises(TornadoRS::Error) { client.save_cookies(File.join(@dir, "x.txt")) }
    assert_equal TornadoRS::ERR_INVALID, error.code
    client.close
    assert_raises(TornadoRS::Error) { client.cookie_count }
  ensure
    web&.close
  end

  def test_bad_dns_cache_ttl
    error = assert_raises(TornadoRS::Error) { TornadoRS::HTTPClient.new(@loop, dns_cache_ttl: -1) }
    assert_equal TornadoRS::ERR_INVALID, error.code
    assert_raises(TornadoRS::Error) { TornadoRS::HTTPClient.new(@loop, dns_cache_ttl: Float::NAN) }
    assert_raises(ArgumentError) { TornadoRS::HTTPClient.new(@loop, dns_cache_ttl: "soon") }
  end
end
