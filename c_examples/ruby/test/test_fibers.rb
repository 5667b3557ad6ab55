# frozen_string_literal: true

# Fetches in fibers under a Fiber scheduler overlap: the fiber that runs
# the loop waits for its backend fd through the scheduler's io_wait, the
# others wait their turn through the scheduler too. Tested under Async
# (Debian's ruby-async, 1.30) and under a minimal Fiber::Scheduler written
# here (after the one in Ruby's own test suite).
require_relative "helper"
require "async"

# The smallest Fiber scheduler: IO.select over the fds fibers wait for,
# timers for sleeps and timeouts, block/unblock for Mutex, Queue, CV.
class MiniScheduler
  def initialize
    @readable = {}
    @writable = {}
    @waiting = {}
    @ready = []
    # Fibers blocked on a Mutex, Queue or CV: held here, because Ruby 3.1's
    # wait queues do not mark their fibers for the GC (bugs.ruby-lang.org
    # 18818): a fiber referenced by nothing else is freed while it waits and
    # unblock is handed a dead object (a segfault in `fiber.alive?`).
    @blocked = {}
    @lock = Thread::Mutex.new
    @urgent = IO.pipe
  end

  def run
    until @readable.empty? && @writable.empty? && @waiting.empty? && @ready.empty? && @lock.synchronize { @blocked.empty? }
      timeout = @waiting.values.min&.-(monotonic)
      timeout = 0 if timeout&.negative? || !@ready.empty?
      readable, writable = IO.select(@readable.keys + [@urgent.first], @writable.keys, [], timeout)
      if readable&.delete(@urgent.first)
        @urgent.first.read_nonblock(1024, exception: false)
      end
      (readable || []).each { |io| @readable.delete(io)&.resume }
      (writable || []).each { |io| @writable.delete(io)&.resume }
      now = monotonic
      @waiting.select { |_f, t| t <= now }.each_key { |fiber| @waiting.delete(fiber); fiber.resume if fiber.alive? }
      ready = @lock.synchronize { @ready.slice!(0..) }
      ready.each { |fiber| fiber.resume if fiber.alive? }
    end
  end

  def close
    run
    @urgent.each(&:close)
  end

  def fiber(&block)
    Fiber.new(blocking: false, &block).tap(&:resume)
  end

  def io_wait(io, events, timeout)
    @readable[io] = Fiber.current if events.anybits?(IO::READABLE)
    @writable[io] = Fiber.current if events.anybits?(IO::WRITABLE)
    @waiting[Fiber.current] = monotonic + timeout if timeout
    Fiber.yield
    events
  ensure
    @readable.delete(io)
    @writable.delete(io)
    @waiting.delete(Fiber.current)
  end

  def kernel_sleep(duration = nil)
    @waiting[Fiber.current] = monotonic + duration if duration
    Fiber.yield
    true
  end

  def block(_blocker, timeout = nil)
    @waiting[Fiber.current] = monotonic + timeout if timeout
    @lock.synchronize { @blocked[Fiber.current] = true }
    Fiber.yield
  ensure
    @lock.synchronize { @blocked.delete(Fiber.current) }
    @waiting.delete(Fiber.current)
  end

  def unblock(_blocker, fiber)
    @lock.synchronize { @ready << fiber }
    @urgent.last.write_nonblock("x", exception: false)
  end

  def process_wait(pid, flags)
    Thread.new { Process::Status.wait(pid, flags) }.value
  end

  def monotonic
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end
end

class TestFibers < Minitest::Test
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

  def three_fetches_in_fibers
    codes = []
    started = monotonic
    yield(lambda do
      3.times.map do
        Fiber.schedule { codes << @client.fetch(@web.url("/delay?s=0.3")).code }
      end
    end)
    [monotonic - started, codes]
  end

  def test_three_300ms_fetches_overlap_under_async
    elapsed, codes = three_fetches_in_fibers { |go| Async { go.call } }
    assert_equal [200, 200, 200], codes
    assert_operator elapsed, :<, 0.6, "three 300 ms fetches in fibers took #{elapsed.round(2)} s"
  end

  def test_three_300ms_fetches_overlap_under_a_minimal_scheduler
    elapsed, codes = three_fetches_in_fibers do |go|
      Thread.new do
        # A loop of this thread: the scheduler belongs to this thread too.
        loop = TornadoRS::IOLoop.new
        client = TornadoRS::HTTPClient.new(loop)
        Fiber.set_scheduler(MiniScheduler.new)
        @client, saved = client, @client
        go.call
        Fiber.scheduler.run
        @client = saved
        Fiber.set_scheduler(nil)
        client.close
        loop.close
      end.join
    end
    assert_equal [200, 200, 200], codes
    assert_operator elapsed, :<, 0.6, "three 300 ms fetches in fibers took #{elapsed.round(2)} s"
  end

  # The fiber running the loop is done first: another takes over.
  def test_fibers_hand_the_loop_over
    started = monotonic
    bodies = nil
    Async do |task|
      bodies = [0.1, 0.4, 0.2, 0.3].map { |s| task.async { [s, @client.fetch(@web.url("/delay?s=#{s}")).body] } }.map(&:wait)
    end
    assert_equal [[0.1, "slept"], [0.4, "slept"], [0.2, "slept"], [0.3, "slept"]], bodies
    assert_operator monotonic - started, :<, 0.7
  end

  # A fiber waiting for a future while another runs the loop wakes when
  # the future is done, not when the other fiber's fetch is.
  def test_future_wait_in_a_fiber_wakes_on_its_own_future
    waited = nil
    Async do |task|
      started = monotonic
      task.async { @client.fetch(@web.url("/delay?s=0.4")) }
      task.async do
        future = TornadoRS::Future.new(@loop)
        @loop.call_later(0.05) { future.set_result(:ready) }
        assert_equal :ready, future.wait
        waited = monotonic - started
      end
    end
    assert_operator waited, :<, 0.3
  end

  def test_without_fibers_the_same_fetches_take_their_sum
    started = monotonic
    3.times { @client.fetch(@web.url("/delay?s=0.3")) }
    assert_operator monotonic - started, :>=, 0.9
  end

  def test_other_fibers_run_while_a_fetch_waits
    ticks = 0
    Async do |task|
      ticker = task.async { loop { sleep 0.05; ticks += 1 } }
      @client.fetch(@web.url("/delay?s=0.3"))
      ticker.stop
    end
    assert_operator ticks, :>=, 3, "the scheduler ran other fibers meanwhile"
  end

  def test_an_exception_in_a_fiber_fetch_reaches_that_fiber
    raised = nil
    Async do |task|
      task.async { @client.fetch(@web.url("/delay?s=0.1")) }
      task.async do
        @client.fetch(@web.url("/big?n=1000"), streaming_callback: ->(_c) { raise ArgumentError, "stream" })
      rescue ArgumentError => e
        raised = e
      end
    end
    assert_equal "stream", raised&.message
  end

  # Stopping the task of a waiting fetch cancels the fetch (its connection
  # is closed). (Async 1.30's with_timeout cannot be used for this: its
  # scheduler's io_wait rescues the task's TimeoutError and returns nil.)
  def test_stopping_a_task_cancels_its_fetch
    silent = SilentServer.new
    started = monotonic
    Async do |task|
      fetching = task.async { @client.fetch(silent.url) }
      task.sleep 0.2
      fetching.stop
    end
    assert_operator monotonic - started, :<, 1.0
    @loop.call_later(0.2) { @loop.stop }
    @loop.start
    assert_equal 0, @client.active
    Timeout.timeout(2) { silent.closed.pop }
  ensure
    silent&.close
  end
end
