# frozen_string_literal: true

# An exception raised in any block is raised again from loop.start (or from
# the fetch that waits), with the backtrace of the raise — never swallowed.
require_relative "helper"

class Boom < StandardError; end

class TestExceptions < Minitest::Test
  def setup
    @loop = TornadoRS::IOLoop.new
    @web = WebServer.new
    @client = TornadoRS::HTTPClient.new(@loop)
    # A timer that would end a loop whose exception was lost.
    @guard = @loop.call_later(10) { @loop.stop }
  end

  def teardown
    @client.close
    @loop.close
    @web.close
  end

  # The exception is the one raised, with the line of the raise on top.
  def assert_raised_here(line, &block)
    error = assert_raises(Boom, &block)
    assert_match(/#{Regexp.escape(__FILE__)}:#{line}:/, error.backtrace.first)
    error
  end

  def test_add_callback
    line = __LINE__ + 1
    @loop.add_callback { raise Boom, "from add_callback" }
    error = assert_raised_here(line) { @loop.start }
    assert_equal "from add_callback", error.message
    refute @loop.running?
  end

  def test_call_later_and_call_at
    line = __LINE__ + 1
    @loop.call_later(0.01) { raise Boom, "from call_later" }
    assert_raised_here(line) { @loop.start }
    line = __LINE__ + 1
    @loop.call_at(@loop.time + 0.01) { raise Boom, "from call_at" }
    assert_raised_here(line) { @loop.start }
  end

  def test_the_loop_runs_again_after_an_exception
    @loop.add_callback { raise Boom }
    assert_raises(Boom) { @loop.start }
    ran = false
    @loop.add_callback do
      ran = true
      @loop.stop
    end
    @loop.start
    assert ran
  end

  def test_two_exceptions_in_one_iteration_are_both_raised
    @loop.add_callback { raise Boom, "first" }
    @loop.add_callback { raise Boom, "second" }
    assert_equal "first", assert_raises(Boom) { @loop.start }.message
    assert_equal "second", assert_raises(Boom) { @loop.start }.message
  end

  def test_fetch_block
    line = __LINE__ + 1
    @client.fetch(@web.url("/echo")) { |_r| raise Boom, "from the fetch block" }
    assert_raised_here(line) { @loop.start }
  end

  def test_periodic_callback
    line = __LINE__ + 1
    periodic = TornadoRS::PeriodicCallback.new(@loop, 0.01) { raise Boom, "from periodic" }
    periodic.start
    assert_raised_here(line) { @loop.start }
    periodic.close
  end

  def test_fd_handler
    reader, writer = IO.pipe
    line = __LINE__ + 1
    @loop.add_handler(reader, TornadoRS::READ) { |_fd, _events| raise Boom, "from a handler" }
    writer.write("x")
    assert_raised_here(line) { @loop.start }
    @loop.remove_handler(reader)
  ensure
    reader&.close
    writer&.close
  end

  def test_streaming_block_fails_the_waiting_fetch
    line = __LINE__ + 1
    streaming = ->(_chunk) { raise Boom, "from streaming" }
    assert_raised_here(line) { @client.fetch(@web.url("/big?n=200000"), streaming_callback: streaming) }
  end

  def test_streaming_block_of_a_callback_fetch_is_raised_by_start
    called = false
    line = __LINE__ + 1
    streaming = ->(_chunk) { raise Boom, "from streaming" }
    @client.fetch(@web.url("/big?n=200000"), streaming_callback: streaming) { called = true }
    assert_raised_here(line) { @loop.start }
    refute called, "the fetch's block is not called: its exception is the outcome"
  end

  def test_header_block
    line = __LINE__ + 1
    header = ->(_line) { raise Boom, "from header_callback" }
    assert_raised_here(line) { @client.fetch(@web.url("/echo"), header_callback: header) }
  end

  def test_body_reader_and_body_producer
    source = Object.new
    line = __LINE__ + 1
    def source.read(_n) = raise(Boom, "from read")
    assert_raised_here(line) { @client.fetch(@web.url("/echo"), method: "POST", body: source) }
    line = __LINE__ + 1
    producer = ->(_writer) { raise Boom, "from body_producer" }
    assert_raised_here(line) { @client.fetch(@web.url("/echo"), method: "POST", body_producer: producer) }
  end

  def test_resolver_block
    line = __LINE__ + 1
    client = TornadoRS::HTTPClient.new(@loop, resolver: ->(_host, _port, _family) { raise Boom, "from resolver" })
    assert_raised_here(line) { client.fetch("http://resolver.test:#{@web.port}/echo") }
  ensure
    client&.close
  end

  def test_exception_raised_while_a_fetch_waits
    line = __LINE__ + 1
    @loop.call_later(0.05) { raise Boom, "from a timer" }
    assert_raised_here(line) { @client.fetch(@web.url("/delay?s=0.5")) }
  end

  # A throw must not unwind through the library: it is stopped at the
  # boundary and reported from start.
  def test_throw_out_of_a_callback
    @loop.add_callback { throw :out }
    thrown = true
    catch(:out) do
      assert_raises(TornadoRS::Guard::ThrowError) { @loop.start }
      thrown = false
    end
    refute thrown, "the throw did not cross the library"
  end

  def test_waiting_inside_a_callback_is_refused
    error = nil
    @loop.add_callback do
      @client.fetch(@web.url("/echo"))
    rescue TornadoRS::Error => e
      error = e
    ensure
      @loop.stop
    end
    @loop.start
    assert_equal TornadoRS::ERR_RUNNING, error.code
  end
end
