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

class TestLoopMore < Minitest::Test
  def setup
    @loop = TornadoRS::IOLoop.new
  end

  def teardown
    @loop.close
  end

  def test_stop_from_another_thread_wakes_an_idle_loop
    Thread.new do
      sleep 0.1
      @loop.stop
    end
    started = monotonic
    @loop.start
    assert_operator monotonic - started, :<, 1.0
  end

  def test_stop_before_start_runs_one_iteration
    ran = false
    @loop.add_callback { ran = true }
    @loop.stop
    @loop.start
    assert ran
    refute @loop.running?
  end

  def test_start_inside_start_is_refused
    error = nil
    @loop.add_callback do
      @loop.start
    rescue TornadoRS::Error => e
      error = e
    ensure
      @loop.stop
    end
    @loop.start
    assert_equal TornadoRS::ERR_RUNNING, error.code
  end

  def test_periodic_callback_and_handler
    ticks = 0
    periodic = TornadoRS::PeriodicCallback.new(@loop, 0.01, jitter: 0.1) { ticks += 1 }.start
    assert periodic.running?
    reader, writer = IO.pipe
    got = nil
    @loop.add_handler(reader, TornadoRS::READ) do |fd, events|
      got = [fd, events, reader.read_nonblock(10)]
      @loop.remove_handler(fd)
    end
    @loop.call_later(0.02) { writer.write("ping") }
    @loop.call_later(0.1) { @loop.stop }
    @loop.start
    periodic.stop
    refute periodic.running?
    periodic.close
    assert_operator ticks, :>=, 3
    assert_equal [reader.fileno, TornadoRS::READ, "ping"], got
  ensure
    reader&.close
    writer&.close
  end

  def test_futures
    future = TornadoRS::Future.new(@loop)
    seen = nil
    future.add_done_callback { |f| seen = f.result }
    @loop.call_later(0.01) { future.set_result(:value) }
    assert_equal :value, future.wait
    @loop.run_until { seen }
    assert_equal :value, seen
    failed = TornadoRS::Future.new(@loop)
    failed.set_exception(ArgumentError.new("bad"))
    assert_raises(ArgumentError) { failed.wait }
    cancelled = TornadoRS::Future.new(@loop)
    assert cancelled.cancel
    assert_equal TornadoRS::ERR_CANCELLED, cancelled.code
    assert_equal TornadoRS::ERR_CANCELLED, assert_raises(TornadoRS::Error) { cancelled.result }.code
    assert_equal TornadoRS::ERR_ALREADY_DONE, assert_raises(TornadoRS::Error) { future.set_result(1) }.code
  end

  # Every block the library held is released once it is done with it:
  # fetches with streaming, header and body blocks, and a resolver client.
  def test_blocks_of_fetches_are_released
    server = WebServer.new
    before = TornadoRS::Registry.size
    client = TornadoRS::HTTPClient.new(@loop, resolver: ->(_h, _p, _f) { ["127.0.0.1"] })
    chunks = 0
    done = false
    GC.stress = true
    begin
      client.fetch("http://blocks.test:#{server.port}/big?n=70000", streaming_callback: ->(c) { chunks += c.bytesize },
                                                                   header_callback: ->(_l) {}) { done = true }
    ensure
      GC.stress = false
    end
    @loop.run_until { done }
    assert_equal 70_000, chunks
    client.fetch(server.url("/echo"), method: "POST", body: %w[a b].each)
    client.fetch(server.url("/echo"), method: "POST", body_producer: ->(w) { w << "x"; nil })
    assert_raises(ArgumentError) { client.fetch(server.url("/big?n=10"), streaming_callback: ->(_c) { raise ArgumentError }) }
    client.close
    @loop.call_later(0.05) { @loop.stop }
    @loop.start
    GC.start
    assert_equal before, TornadoRS::Registry.size
  ensure
    server&.close
  end

  def test_running_from_another_thread_is_refused
    error = Thread.new { assert_raises(TornadoRS::Error) { @loop.start } }.value
    assert_equal TornadoRS::ERR_WRONG_THREAD, error.code
    client = TornadoRS::HTTPClient.new(@loop)
    error = Thread.new { assert_raises(TornadoRS::Error) { client.fetch("http://127.0.0.1:1/") } }.value
    assert_equal TornadoRS::ERR_WRONG_THREAD, error.code
    client.close
  end

  def test_an_idle_loop_does_not_spin
    @loop.call_later(0.5) { @loop.stop }
    cpu = Process.clock_gettime(Process::CLOCK_THREAD_CPUTIME_ID)
    @loop.start
    used = Process.clock_gettime(Process::CLOCK_THREAD_CPUTIME_ID) - cpu
    assert_operator used, :<, 0.1, "#{used} s of CPU while waiting 0.5 s"
  end

  def test_closed_objects_refuse_use
    loop = TornadoRS::IOLoop.new
    loop.close
    assert_equal TornadoRS::ERR_CLOSED, assert_raises(TornadoRS::Error) { loop.add_callback {} }.code
    assert_equal TornadoRS::ERR_CLOSED, assert_raises(TornadoRS::Error) { loop.start }.code
    assert_raises(TornadoRS::Error) { TornadoRS::HTTPClient.new(loop) }
    loop.close # twice is fine
  end
end
