# frozen_string_literal: true

# TornadoRS::WebSocket against real WebSocket servers on 127.0.0.1:
# Tornado's WebSocketHandler and the websockets package's server
# (tests/servers/ws_servers.py, the servers the Rust tests use: /echo,
# /deflate, /subprotocol, /header, /close, /ping).
require_relative "helper"
require "async"
require "timeout"
require "fileutils"

# tests/servers/ws_servers.py KIND, stopped by #close (it exits when its
# stdin closes).
class WSServer
  SCRIPT = File.expand_path("../../../tests/servers/ws_servers.py", __dir__)

  attr_reader :port

  def initialize(kind, *tls_files)
    @io = IO.popen(["python3", SCRIPT, kind, *tls_files], "r+", err: File::NULL)
    line = Timeout.timeout(30) { @io.gets }
    raise "ws_servers.py #{kind} did not start (python3 with tornado and websockets>=13; .ci/run installs them)" unless line&.start_with?("PORT ")

    @port = Integer(line.split[1])
  end

  def url(path, scheme: "ws")
    "#{scheme}://127.0.0.1:#{@port}#{path}"
  end

  def close
    @io.close_write
    Process.wait(@io.pid)
    @io.close
  end
end

module WebSocketCases
  def setup
    @loop = TornadoRS::IOLoop.new
    @client = TornadoRS::HTTPClient.new(@loop)
  end

  def teardown
    @client.close
    @loop.close
  end

  def connect(path, **options, &block)
    TornadoRS::WebSocket.connect(@client, self.class.server.url(path), **options, &block)
  end

  def test_echo_text_and_binary
    ws = connect("/echo")
    ws.write_message("h\u00e9llo").wait
    text = ws.read_message
    assert_equal ["h\u00e9llo", Encoding::UTF_8], [text, text.encoding]
    ws.write_message("\x00\xff\x01".b, binary: true)
    data = ws.read_message
    assert_equal ["\x00\xff\x01".b, Encoding::BINARY], [data, data.encoding]
    assert_nil ws.subprotocol
    assert_nil ws.extensions
    refute ws.closed?
    ws.close(1000, "bye").wait
    assert ws.closed?
    assert_nil ws.error
    assert_nil ws.read_message, "read_message is nil once closed"
    assert_raises(TornadoRS::WebSocketClosedError) { ws.write_message("late") }
    assert_raises(TornadoRS::WebSocketClosedError) { ws.ping }
  end

  def test_text_must_be_utf8
    ws = connect("/echo")
    error = assert_raises(TornadoRS::Error) { ws.write_message("\xff".b) }
    assert_equal TornadoRS::ERR_INVALID, error.code
    assert_raises(TornadoRS::Error) { ws.ping("x" * 126) }
    ws.close.wait
  end

  def test_subprotocol_and_header
    ws = connect("/subprotocol", subprotocols: %w[chat.v1 chat.v2])
    assert_equal "chat.v2", ws.subprotocol
    assert_equal "chose chat.v2", ws.read_message
    ws.close.wait
    ws = connect("/header", headers: { "X-Test" => "from ruby" })
    assert_equal "from ruby", ws.read_message
    ws.close.wait
  end

  # Both servers take the window the client offers (Tornado echoes it).
  def test_client_max_window_bits
    ws = connect("/deflate", compression: true, client_max_window_bits: 9)
    assert_match(/\Apermessage-deflate;.*client_max_window_bits=9/, ws.extensions)
    big = "a 512-byte window " * 5000
    ws.write_message(big)
    assert_equal big, ws.read_message
    ws.close.wait
    [7, 16].each do |bits|
      error = assert_raises(TornadoRS::Error) { connect("/deflate", compression: true, client_max_window_bits: bits) }
      assert_equal TornadoRS::ERR_INVALID, error.code
      assert_match(/client_max_window_bits/, error.message)
    end
    assert_raises(ArgumentError) { connect("/deflate", client_max_window_bits: 9) }
  end

  def test_compression
    ws = connect("/deflate", compression: true)
    assert_match(/\Apermessage-deflate/, ws.extensions)
    big = "tornado_rs " * 10_000
    ws.write_message(big)
    assert_equal big, ws.read_message
    ws.close.wait
    ws = connect("/deflate", compression: 9, client_no_context_takeover: true, server_no_context_takeover: true)
    assert_match(/\Apermessage-deflate/, ws.extensions)
    ws.write_message("again")
    assert_equal "again", ws.read_message
    ws.close.wait
  end

  def test_close_from_the_server
    ws = connect("/close")
    assert_nil ws.read_message
    assert ws.closed?
    assert_equal [4001, "going away"], [ws.close_code, ws.close_reason]
    assert_nil ws.error, "a clean close is no error"
  end

  def test_pings_both_ways
    pings = []
    ws = connect("/ping", on_ping: ->(data) { pings << data })
    ws.ping("are you there").wait
    ws.write_message("x")
    # Both servers ping before each echo; the ping's callback runs before
    # the message after it is read.
    assert_equal "x", ws.read_message
    refute_empty pings
    assert(pings.all? { |p| p.encoding == Encoding::BINARY })
    ws.close.wait
  end

  def test_on_message_block_and_its_exception
    got = []
    ws = connect("/echo") do |message|
      got << message
      @loop.stop if message.nil? || got.size == 2
    end
    assert_raises(TornadoRS::Error) { ws.read_message }
    ws.write_message("one")
    ws.write_message("two")
    @loop.start
    assert_equal %w[one two], got
    ws.on_message { |m| raise ArgumentError, "from on_message: #{m}" if m }
    ws.write_message("three")
    error = assert_raises(ArgumentError) { @loop.start }
    assert_equal "from on_message: three", error.message
    ws.on_message # back to read_message
    ws.write_message("four")
    assert_equal "four", ws.read_message
    ws.close.wait
  end

  def test_max_message_size
    ws = connect("/echo", max_message_size: 1000)
    ws.write_message("x" * 2000)
    assert_nil ws.read_message
    assert_equal TornadoRS::ERR_TOO_LARGE, ws.error.code
    assert_match(/message_too_large/, ws.error.message)
  end

  def test_interrupted_read_loses_no_message
    ws = connect("/echo")
    assert_raises(Timeout::Error) { Timeout.timeout(0.2) { ws.read_message } }
    ws.write_message("after the timeout")
    assert_equal "after the timeout", ws.read_message, "the pending read got it"
    ws.close.wait
  end

  def test_fibers_read_concurrently
    sockets = Array.new(3) { connect("/echo") }
    order = []
    Async do |task|
      sockets.each_with_index.map do |ws, i|
        task.async do
          order << [:read, i]
          order << [:got, ws.read_message]
        end
      end
      task.async do
        sockets.each_with_index.to_a.reverse_each { |ws, i| ws.write_message("m#{i}").wait }
      end
    end.wait
    assert_equal [[:read, 0], [:read, 1], [:read, 2]], order.first(3), "all three waited at once"
    assert_equal %w[m0 m1 m2], order.drop(3).map(&:last).sort
    sockets.each { |ws| ws.close.wait }
  end

  def test_connect_failures
    http = TinyServer.new # an HTTP server that answers 200, not 101
    error = assert_raises(TornadoRS::HTTPClientError) do
      TornadoRS::WebSocket.connect(@client, "ws://127.0.0.1:#{http.port}/echo")
    end
    http.close
    assert_equal "protocol", error.kind
    assert_match(/refused the WebSocket handshake: HTTP 200/, error.message)
    error = assert_raises(TornadoRS::HTTPClientError) do
      TornadoRS::WebSocket.connect(@client, "ws://127.0.0.1:#{closed_port}/echo")
    end
    assert_equal "connect", error.kind
    assert_kind_of Errno::ECONNREFUSED, error.cause
    error = assert_raises(TornadoRS::Error) { TornadoRS::WebSocket.connect(@client, "http://127.0.0.1/echo") }
    assert_equal TornadoRS::ERR_INVALID_URL, error.code
    assert_raises(TornadoRS::Error) { connect("/echo", subprotocols: ["not a token"]) }
    assert_raises(TornadoRS::Error) { connect("/echo", compression: 12) }
    assert_raises(TornadoRS::Error) { connect("/echo", ping_interval: -1) }
    assert_raises(ArgumentError) { connect("/echo", server_max_window_bits: 10) }
    assert_raises(ArgumentError) { connect("/echo", streaming_callback: ->(_) {}) }
  end

  def test_connect_timeout_and_ping_options
    silent = SilentServer.new
    started = monotonic
    assert_raises(TornadoRS::TimeoutError) do
      TornadoRS::WebSocket.connect(@client, "ws://127.0.0.1:#{silent.port}/", request_timeout: 0.2)
    end
    assert_operator monotonic - started, :<, 5
    silent.close
    ws = connect("/echo", ping_interval: 0.05, ping_timeout: 1, close_timeout: 2, max_write_buffer: 1 << 20)
    sleep_on_loop(0.2)
    ws.write_message("still open")
    assert_equal "still open", ws.read_message, "pings answered: the connection stays open"
    ws.close.wait
  end

  def test_under_gc_stress
    got = []
    ws = connect("/echo") { |m| got << m }
    GC.stress = true
    begin
      ws.write_message("under stress")
      @loop.run_until { got.size == 1 }
      ws.on_message
      ws.write_message("read")
      read = ws.read_message
    ensure
      GC.stress = false
    end
    assert_equal ["under stress", "read"], [got.first, read]
    ws.close.wait
  end

  def test_dropped_connections_are_released_with_the_loop
    connect("/echo")
    connect("/echo").write_message("unread")
    # teardown closes the loop: both handles are released before it is freed.
  end

  private

  def closed_port
    s = TCPServer.new("127.0.0.1", 0)
    port = s.addr[1]
    s.close
    port
  end

  def sleep_on_loop(seconds)
    @loop.call_later(seconds) { @loop.stop }
    @loop.start
  end
end

# Ctrl-C during a WebSocket wait, in a child ruby: Interrupt comes out of
# read_message at once, and the connection is still usable after it.
class TestWebSocketInterrupt < Minitest::Test
  def test_ctrl_c_ends_a_waiting_read
    server = WSServer.new("tornado")
    reader, writer = IO.pipe
    pid = spawn(RbConfig.ruby, "-I", File.join(RUBY_DIR, "lib"), "-rtornado_rs", "-e", <<~RUBY, out: writer, err: writer)
      loop = TornadoRS::IOLoop.new
      client = TornadoRS::HTTPClient.new(loop)
      ws = TornadoRS::WebSocket.connect(client, "#{server.url('/echo')}")
      $stdout.puts "ready"; $stdout.flush
      begin
        ws.read_message
      rescue Interrupt
        ws.write_message("after Ctrl-C")
        puts "Interrupt from read_message, then: \#{ws.read_message}"
        ws.close.wait
        exit 3
      end
    RUBY
    writer.close
    output = +""
    assert reader.wait_readable(30), "the child never got ready"
    output << reader.readpartial(4096) until output.include?("ready")
    sleep 0.2
    sent = monotonic
    Process.kill("INT", pid)
    status = wait_child(pid, 10)
    flunk "the child did not exit within 10 s of SIGINT" unless status
    assert_operator monotonic - sent, :<, 5
    output << reader.read
    assert_includes output, "Interrupt from read_message, then: after Ctrl-C"
    assert_equal 3, status.exitstatus, output
  ensure
    reader&.close
    if pid && !status
      Process.kill("KILL", pid)
      Process.wait(pid)
    end
    server&.close
  end
end

# wss:// with TestPKI's CA: Tornado's WebSocketHandler over TLS.
class TestWebSocketTLS < Minitest::Test
  def test_wss_with_a_test_ca
    dir = Dir.mktmpdir("tornado-rs-wss")
    pki = TestPKI.pki
    File.write(File.join(dir, "cert.pem"), pki[:server].to_pem)
    File.write(File.join(dir, "key.pem"), pki[:server_key].to_pem)
    server = WSServer.new("tornado", File.join(dir, "cert.pem"), File.join(dir, "key.pem"))
    loop = TornadoRS::IOLoop.new
    client = TornadoRS::HTTPClient.new(loop)
    url = server.url("/echo", scheme: "wss")
    error = assert_raises(TornadoRS::HTTPClientError) { TornadoRS::WebSocket.connect(client, url) }
    assert_equal "tls", error.kind, "the test CA is not trusted by default"
    ws = TornadoRS::WebSocket.connect(client, url, ca_pem: pki[:ca].to_pem)
    ws.write_message("over TLS")
    assert_equal "over TLS", ws.read_message
    ws.close.wait
    client.close
    loop.close
  ensure
    server&.close
    FileUtils.rm_rf(dir) if dir
  end
end

class TestWebSocketTornado < Minitest::Test
  include WebSocketCases

  def self.server
    @server ||= WSServer.new("tornado").tap { |s| Minitest.after_run { s.close } }
  end
end

class TestWebSocketWebsocketsPackage < Minitest::Test
  include WebSocketCases

  def self.server
    @server ||= WSServer.new("websockets").tap { |s| Minitest.after_run { s.close } }
  end
end
