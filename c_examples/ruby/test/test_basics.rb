# frozen_string_literal: true

# The loop, timers, callbacks and plain fetches, with GC.stress on while
# callbacks are registered and run.
require_relative "helper"

class TestTornadoRS < Minitest::Test
  def setup
    @loop = TornadoRS::IOLoop.new
  end

  def teardown
    @loop.close
  end

  def test_version
    assert_match(/\A\d+\.\d+\.\d+\z/, TornadoRS.version)
  end

  def test_callbacks_and_timers_under_gc_stress
    seen = []
    GC.stress = true
    begin
      8.times { |i| @loop.add_callback { seen << i } }
      id = @loop.call_later(10) { seen << :never }
      @loop.remove_timeout(id)
      @loop.call_later(0.02) do
        seen << :timer
        @loop.stop
      end
    ensure
      GC.stress = false
    end
    GC.start
    @loop.start
    # Callbacks run in the order they were added; the timer (due by the
    # time GC.stress let the loop start) runs in the same iteration.
    assert_equal((0...8).to_a, seen - [:timer])
    assert_equal 1, seen.count(:timer)
  end

  def test_add_callback_from_another_thread
    Thread.new do
      sleep 0.05
      @loop.add_callback { @loop.stop }
    end
    @loop.start
    pass
  end

  def test_registry_is_emptied
    before = TornadoRS::Registry.size
    5.times { @loop.add_callback {} }
    @loop.add_callback { @loop.stop }
    @loop.start
    assert_equal before, TornadoRS::Registry.size
  end

  # Issue 12 #15: a fetch still pending when its loop is freed is never
  # called back; closing its client then releases its block.
  def test_freeing_with_a_pending_fetch_releases_its_block
    silent = TCPServer.new("127.0.0.1", 0) # accepted by the kernel, never answered
    lp = TornadoRS::IOLoop.new
    client = TornadoRS::HTTPClient.new(lp)
    before = TornadoRS::Registry.size
    called = false
    client.fetch("http://127.0.0.1:#{silent.addr[1]}/never") { called = true }
    lp.call_later(0.05) { lp.stop }
    lp.start
    assert_equal before + 1, TornadoRS::Registry.size, "the pending fetch holds its block"
    lp.close
    client.close
    refute called, "no callback without a loop"
    assert_equal before, TornadoRS::Registry.size, "the block was released"
  ensure
    silent&.close
  end

  def test_fetch
    server = TinyServer.new
    client = TornadoRS::HTTPClient.new(@loop)
    responses = []
    collect = lambda do |r|
      responses << r
      @loop.stop if responses.size == 3
    end
    GC.stress = true
    begin
      client.fetch("http://127.0.0.1:#{server.port}/hello", &collect)
      client.fetch("http://127.0.0.1:#{server.port}/post", method: "POST", body: "abc", &collect)
    ensure
      GC.stress = false
    end
    client.fetch("http://127.0.0.1:#{server.port}/missing", &collect)
    timeout = @loop.call_later(10) { @loop.stop }
    @loop.start
    @loop.remove_timeout(timeout)
    assert_equal 3, responses.size
    by_path = responses.to_h { |r| [r["x-path"], r] }
    assert_equal "GET /hello", by_path["/hello"].body
    assert_equal "POST /post", by_path["/post"].body
    assert_equal 404, by_path["/missing"].code
    assert_nil by_path["/hello"].error
    client.close
    server.close
  end

  def test_fetch_errors
    client = TornadoRS::HTTPClient.new(@loop)
    result = nil
    client.fetch("http://127.0.0.1:1/") do |r|
      result = r
      @loop.stop
    end
    @loop.start
    assert_equal 599, result.code
    assert result.error.start_with?("connect: "), result.error
    client.close
  end

  def test_bad_arguments
    err = assert_raises(TornadoRS::Error) { @loop.call_later(-1) {} }
    refute_equal 0, err.code
  end
end
