# frozen_string_literal: true

# The HTTP client's features from Ruby, against WEBrick on 127.0.0.1:
# encodings, uploads (String, IO, Enumerable, body_producer), streaming,
# header lines, auth (basic, digest), resolver and mappings, queue counts,
# OS errors, TLS options.
require_relative "helper"
require "stringio"

class TestHTTP < Minitest::Test
  def setup
    @loop = TornadoRS::IOLoop.new
    @web = WebServer.new
    @client = TornadoRS::HTTPClient.new(@loop)
  end

  def teardown
    @client.close
    @loop.close
    @web.close
  end

  def typed(content_type, bytes)
    query = "hex=#{bytes.unpack1('H*')}"
    query += "&ct=#{URI.encode_www_form_component(content_type)}" if content_type
    @client.fetch(@web.url("/typed?#{query}"))
  end

  def test_body_in_its_charsets_encoding
    utf8 = typed("text/plain; charset=utf-8", "h\u00e9".b)
    assert_equal Encoding::UTF_8, utf8.body.encoding
    assert_equal "h\u00e9", utf8.body
    latin = typed("text/html; charset=ISO-8859-1", "caf\xe9".b)
    assert_equal Encoding::ISO_8859_1, latin.body.encoding
    assert_equal "caf\u00e9", latin.body.encode(Encoding::UTF_8)
    quoted = typed('text/plain; format=flowed; charset="Shift_JIS"', "\x82\xa0".b)
    assert_equal Encoding::Shift_JIS, quoted.body.encoding
    assert_equal "\u3042", quoted.body.encode(Encoding::UTF_8)
    assert_equal "Shift_JIS", quoted.charset
  end

  def test_body_binary_without_a_known_charset
    assert_equal Encoding::BINARY, typed("application/octet-stream", "\x00\xff".b).body.encoding
    assert_equal Encoding::BINARY, typed("application/json", "{}".b).body.encoding
    assert_equal Encoding::BINARY, typed("text/plain; charset=no-such-charset", "x".b).body.encoding
    assert_equal Encoding::BINARY, typed(nil, "x".b).body.encoding
  end

  def test_response_fields
    r = @client.fetch(@web.url("/redirect"), headers: { "X-Echo" => "caf\u00e9" })
    assert_equal 200, r.code
    assert_equal "OK", r.reason
    assert_equal @web.url("/echo"), r.effective_url
    assert_equal "GET", r["x-method"]
    assert_nil r.error
    assert_equal TornadoRS::OK, r.error_code
    assert_operator r.request_time, :>, 0
    assert_in_delta Time.now.to_f, r.start_time.to_f, 10
    assert_operator r.time_info[:total], :>=, r.time_info[:connect]
    assert_equal %i[queue namelookup connect appconnect pretransfer starttransfer total], r.time_info.keys
  end

  def test_header_values_as_text
    r = @client.fetch(@web.url("/latin1-header"))
    assert_equal "caf\u00e9", r["x-name"]
    assert_equal Encoding::UTF_8, r["x-name"].encoding
    assert_equal ["caf\u00e9"], r.get_all("X-Name")
    sent = @client.fetch(@web.url("/echo"), headers: [["X-Echo", "caf\xe9".b]])
    assert_equal "caf\u00e9", sent["x-echo-header"], "a Latin-1 value goes byte for byte"
  end

  def test_running_out_of_redirects_returns_the_3xx_with_its_error
    r = @client.fetch(@web.url("/redirect"), max_redirects: 0)
    assert_equal 302, r.code
    assert_equal TornadoRS::ERR_TOO_MANY_REDIRECTS, r.error_code
    error = assert_raises(TornadoRS::HTTPClientError) { r.rethrow }
    assert_same r, error.response
    r = @client.fetch(@web.url("/redirect"), follow_redirects: false)
    assert_equal [302, nil], [r.code, r.error]
  end

  def test_uploads
    assert_equal "abc", @client.fetch(@web.url("/echo"), method: "POST", body: "abc").body
    io = StringIO.new("x" * 100_000)
    r = @client.fetch(@web.url("/echo"), method: "PUT", body: io)
    assert_equal "x" * 100_000, r.body
    r = @client.fetch(@web.url("/echo"), method: "POST", body: %w[one two three].each)
    assert_equal "onetwothree", r.body
    producer = lambda do |writer|
      writer.write("part 1, ")
      writer << "part 2"
      nil
    end
    assert_equal "part 1, part 2", @client.fetch(@web.url("/echo"), method: "POST", body_producer: producer).body
  end

  def test_body_producer_finishing_later
    producer = lambda do |writer|
      done = TornadoRS::Future.new(@loop)
      writer.write("now, ")
      @loop.call_later(0.05) do
        writer.write("later")
        done.set_result
      end
      done
    end
    assert_equal "now, later", @client.fetch(@web.url("/echo"), method: "POST", body_producer: producer).body
  end

  def test_streaming_with_a_pause
    chunks = []
    paused = 0
    streaming = lambda do |chunk|
      chunks << chunk
      next nil unless paused < 2

      paused += 1
      pause = TornadoRS::Future.new(@loop)
      @loop.call_later(0.05) { pause.set_result }
      pause
    end
    started = monotonic
    r = @client.fetch(@web.url("/big?n=300000"), streaming_callback: streaming)
    assert_equal "", r.body
    assert_equal 300_000, chunks.sum(&:bytesize)
    assert(chunks.all? { |c| c.encoding == Encoding::BINARY })
    assert_operator monotonic - started, :>=, 0.1, "the two pauses held the read"
  end

  def test_header_lines
    lines = []
    @client.fetch(@web.url("/echo"), header_callback: ->(line) { lines << line })
    assert_match(%r{\AHTTP/1\.1 200}, lines.first)
    assert_equal "\r\n", lines.last
    assert(lines.any? { |l| l.start_with?("X-Method: GET") })
  end

  def test_basic_and_digest_auth
    assert_equal 401, @client.fetch(@web.url("/basic")).code
    assert_equal "basic ok",
                 @client.fetch(@web.url("/basic"), auth_username: "ruby", auth_password: "gem").body
    assert_equal 401, @client.fetch(@web.url("/digest"), auth_username: "ruby", auth_password: "gem").code
    r = @client.fetch(@web.url("/digest"), auth_username: "ruby", auth_password: "gem", auth_mode: "digest")
    assert_equal [200, "digest ok"], [r.code, r.body]
    assert_raises(TornadoRS::Error) { @client.fetch(@web.url("/digest"), auth_mode: "kerberos") }
  end

  def test_resolver_and_mappings
    seen = []
    client = TornadoRS::HTTPClient.new(@loop, resolver: lambda { |host, port, _family|
      seen << [host, port]
      ["127.0.0.1"]
    })
    assert_equal 200, client.fetch("http://service.test:#{@web.port}/echo").code
    assert_equal [["service.test", @web.port]], seen
    client.close
    later = TornadoRS::HTTPClient.new(@loop, resolver: lambda { |_host, port, _family, reply|
      @loop.call_later(0.02) { reply.done([["127.0.0.1", port]]) }
    })
    assert_equal 200, later.fetch("http://later.test:#{@web.port}/echo").code
    failing = TornadoRS::HTTPClient.new(@loop, resolver: ->(_h, _p, _f, reply) { reply.fail("no such host") })
    error = assert_raises(TornadoRS::HTTPClientError) { failing.fetch("http://nowhere.test:#{@web.port}/") }
    assert_equal "resolve", error.kind
    assert_match(/no such host/, error.message)
    mapped = TornadoRS::HTTPClient.new(@loop, hostname_mapping: { "mapped.test" => "127.0.0.1" },
                                              endpoint_mapping: { ["moved.test", 80] => ["127.0.0.1", @web.port] })
    assert_equal 200, mapped.fetch("http://mapped.test:#{@web.port}/echo").code
    r = mapped.fetch("http://moved.test/echo")
    assert_equal [200, "http://moved.test/echo"], [r.code, r.effective_url]
  ensure
    [later, failing, mapped].each { |c| c&.close }
  end

  def test_defaults_and_queue_counts
    client = TornadoRS::HTTPClient.new(@loop, max_clients: 1, defaults: { headers: { "X-Echo" => "default" } })
    done = []
    3.times { client.fetch(@web.url("/delay?s=0.1")) { |r| done << r.code } }
    counts = nil
    @loop.call_later(0.05) { counts = [client.active, client.queued] }
    @loop.run_until { done.size == 3 }
    assert_equal [1, 2], counts
    assert_equal [0, 0], [client.active, client.queued]
    assert_equal "default", client.fetch(@web.url("/echo"))["x-echo-header"]
    assert_equal 1, client.idle_connections
  ensure
    client&.close
  end

  def test_os_error_cancel_and_timeouts
    error = assert_raises(TornadoRS::HTTPClientError) { @client.fetch("http://127.0.0.1:1/") }
    assert_equal "connect", error.kind
    assert_equal Errno::ECONNREFUSED::Errno, error.os_error
    assert_kind_of Errno::ECONNREFUSED, error.cause
    silent = SilentServer.new
    error = assert_raises(TornadoRS::TimeoutError) { @client.fetch(silent.url, request_timeout: 0.1) }
    assert_equal TornadoRS::ERR_TIMEOUT, error.code
    fetch = @client.fetch(silent.url) { |r| @cancelled = r }
    @loop.call_later(0.05) { fetch.cancel }
    @loop.run_until { fetch.done? }
    assert_equal [599, TornadoRS::ERR_CANCELLED], [@cancelled.code, @cancelled.error_code]
    pending = []
    2.times { @client.fetch(silent.url) { |r| pending << r.error_code } }
    @client.cancel_all
    @loop.run_until { pending.size == 2 }
    assert_equal [TornadoRS::ERR_CANCELLED] * 2, pending
  ensure
    silent&.close
  end

  def test_bad_options
    assert_raises(ArgumentError) { @client.fetch(@web.url("/"), no_such_option: 1) }
    assert_raises(TornadoRS::Error) { @client.fetch(@web.url("/"), headers: { "Bad\r\nName" => "x" }) }
    assert_raises(TornadoRS::Error) { @client.fetch(@web.url("/"), min_tls_version: "1.0") }
    assert_raises(TornadoRS::Error) { TornadoRS::HTTPClient.new(@loop, max_clients: 0) }
    @client.close
    assert_raises(TornadoRS::Error) { @client.fetch(@web.url("/")) }
  end
end

class TestHTTPS < Minitest::Test
  def setup
    pki = TestPKI.pki
    @pki = pki
    store = OpenSSL::X509::Store.new
    store.add_cert(pki[:ca])
    @https = WebServer.new(ssl: { SSLEnable: true, SSLCertificate: pki[:server], SSLPrivateKey: pki[:server_key],
                                  SSLCertificateStore: store, SSLVerifyClient: OpenSSL::SSL::VERIFY_PEER,
                                  SSLStartImmediately: true, SSLCertName: nil })
    @loop = TornadoRS::IOLoop.new
    @client = TornadoRS::HTTPClient.new(@loop)
  end

  def teardown
    @client.close
    @loop.close
    @https.close
  end

  def test_certificates_validated_by_default
    error = assert_raises(TornadoRS::HTTPClientError) { @client.fetch(@https.url("/client-cert")) }
    assert_equal "tls", error.kind
    assert_equal TornadoRS::ERR_TLS, error.code
  end

  def test_ca_pem_server_name_min_version_and_client_cert
    ca = @pki[:ca].to_pem
    assert_equal "none", @client.fetch(@https.url("/client-cert"), ca_pem: ca).body
    assert_equal 200, @client.fetch("https://127.0.0.1:#{@https.port}/client-cert", ca_pem: ca,
                                                                                  server_name: "tornado.test").code
    assert_equal 200, @client.fetch(@https.url("/client-cert"), ca_pem: ca, min_tls_version: "1.3",
                                                                alpn: ["http/1.1"]).code
    r = @client.fetch(@https.url("/client-cert"), ca_pem: ca, client_cert_pem: @pki[:client].to_pem,
                                                  client_key_pem: @pki[:client_key].private_to_pem)
    assert_equal "/CN=ruby client", r.body
    error = assert_raises(TornadoRS::HTTPClientError) do
      @client.fetch(@https.url("/client-cert"), ca_pem: ca, server_name: "other.test")
    end
    assert_equal "tls", error.kind
    assert_equal 200, @client.fetch(@https.url("/client-cert"), validate_cert: false).code
  end
end
