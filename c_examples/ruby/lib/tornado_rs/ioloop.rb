# frozen_string_literal: true

require "io/wait"

module TornadoRS
  # Tornado's IOLoop, driven from Ruby.
  #
  # The wait happens in Ruby: IO#wait_readable on the loop's backend fd (the
  # epoll fd) for as long as tornado_loop_backend_timeout allows, then one
  # non-blocking tornado_loop_run_once. So:
  # - Ctrl-C (Interrupt) and Thread#raise end #start at once: the wait is an
  #   ordinary interruptible Ruby wait, and nothing ever blocks inside the
  #   library;
  # - under a Fiber scheduler (Async, ...) the wait goes through the
  #   scheduler's io_wait, so other fibers run meanwhile;
  # - an exception raised in a block (a callback, a timeout, a fetch's block,
  #   a streaming block) is raised again from #start (or from the call that
  #   was waiting for the loop, e.g. HTTPClient#fetch without a block), with
  #   its own backtrace. More than one raised in one iteration: each is raised
  #   in turn by the next calls.
  #
  # The loop belongs to the thread that made it; only #add_callback and #stop
  # may be called from other threads. Fibers of that thread share it: one of
  # them runs it at a time, the others wait for their turn (with a Fiber
  # scheduler) while the one running it serves their fetches too.
  class IOLoop
    attr_reader :ptr, :owner

    def initialize
      @ptr = TornadoRS.check_ptr(Lib.tornado_loop_new, "tornado_loop_new")
      @owner = Thread.current
      @io = IO.for_fd(Lib.tornado_loop_backend_fd(@ptr), autoclose: false)
      @errors = []
      @stop = false
      @running = false
      @driver = nil
      # Fibers waiting for their turn to run the loop: their queues, oldest
      # first, each with its fiber (held here too: Ruby 3.1's Queue does not
      # keep a waiting fiber alive for the GC, bugs.ruby-lang.org 18818).
      @waiters = {}
      @fetches = {}.compare_by_identity
    end

    # Runs until #stop (Tornado's IOLoop.start). A #stop before #start makes
    # it run one non-blocking iteration and return, as in Tornado.
    def start
      check_owner
      raise Error.new(ERR_RUNNING, "start: the loop is already running") if @running

      @running = true
      begin
        if @stop
          step(block: false)
        else
          run_until { @stop }
        end
      ensure
        @stop = false
        @running = false
      end
      nil
    end

    # Makes #start return after the current iteration. Any thread.
    def stop
      @stop = true
      wake unless Thread.current.equal?(@owner)
      wake_waiters
      nil
    end

    def running?
      @running
    end

    # Runs iterations until the block returns true. This is how a call that
    # waits for the loop (a fetch without a block, Future#wait) runs it.
    # `waiter` (optional) has #turn= : while this fiber waits for another
    # to run the loop, it gets a Queue to push to when the block may have
    # become true (a fetch's completion wakes its own fiber only).
    def run_until(waiter = nil, &done)
      check_owner
      until done.call
        if @driver.nil?
          drive(done)
        elsif @driver.equal?(Fiber.current)
          raise Error.new(ERR_RUNNING, "cannot wait for the loop from inside one of its callbacks " \
                                       "(pass a block to get the result later)")
        else
          wait_turn(done, waiter)
        end
      end
      nil
    end

    # One iteration: waits (unless block: false) for I/O or the next timer,
    # then runs what is due.
    def step(block: true)
      raise_pending
      if block
        timeout = Lib.tornado_loop_backend_timeout(@ptr)
        @io.wait_readable(timeout.negative? ? nil : timeout) unless timeout.zero?
      end
      code = Thread.handle_interrupt(Object => :never) { Lib.tornado_loop_run_once(@ptr, 0.0) }
      TornadoRS.check(code, "run_once")
      raise_pending
    end

    # Monotonic seconds (the clock of #call_at).
    def time
      Lib.tornado_loop_time(@ptr)
    end

    # Calls the block on the next iteration. Any thread.
    def add_callback(&block)
      check_open
      key = Registry.hold(Callback.new(self, block))
      code = Lib.tornado_loop_add_callback_full(@ptr, RUN, key, DROP)
      return nil if code.zero?

      Registry.release(key)
      TornadoRS.check(code, "add_callback")
    end

    # Calls the block once, delay seconds from now. Returns an id for #remove_timeout.
    def call_later(delay, &block)
      schedule(:tornado_loop_call_later_full, delay, block)
    end

    # Calls the block once at `deadline`, in #time seconds.
    def call_at(deadline, &block)
      schedule(:tornado_loop_call_at_full, deadline, block)
    end

    def remove_timeout(id)
      TornadoRS.check(Lib.tornado_loop_remove_timeout(@ptr, id), "remove_timeout")
    end

    # Calls the block with (fd, events) on each iteration in which `io` (an
    # IO or an fd) is ready for `events` (TornadoRS::READ | TornadoRS::WRITE).
    def add_handler(io, events, &block)
      fd = io.respond_to?(:fileno) ? io.fileno : Integer(io)
      key = Registry.hold(Callback.new(self, block))
      code = Lib.tornado_loop_add_handler_full(@ptr, fd, events, ON_FD, key, DROP)
      return nil if code.zero?

      Registry.release(key)
      TornadoRS.check(code, "add_handler")
    end

    def update_handler(io, events)
      fd = io.respond_to?(:fileno) ? io.fileno : Integer(io)
      TornadoRS.check(Lib.tornado_loop_update_handler(@ptr, fd, events), "update_handler")
    end

    def remove_handler(io)
      fd = io.respond_to?(:fileno) ? io.fileno : Integer(io)
      TornadoRS.check(Lib.tornado_loop_remove_handler(@ptr, fd), "remove_handler")
    end

    # Frees the loop: pending callbacks, timeouts and handlers are released
    # uncalled, and fetches in flight never call back.
    def close
      return if @ptr.nil?
      raise Error.new(ERR_RUNNING, "close: the loop is running") if @running || @driver

      # WebSockets still open close at once (their last handle reference).
      WebSocket.release_all(self)
      TornadoRS.check(Lib.tornado_loop_free(@ptr), "close")
      @io.close
      @ptr = nil
      # Fetches still pending never call back now: their futures' last
      # references go, which releases their blocks (with the client's).
      @fetches.keys.each(&:dropped)
      @fetches.clear
    end

    # Fetches in flight on this loop (HTTPClient's bookkeeping).
    def fetch_started(fetch)
      @fetches[fetch] = true
    end

    def fetch_ended(fetch)
      @fetches.delete(fetch)
    end

    def closed?
      @ptr.nil?
    end

    # Hands an exception raised in a block to whoever runs the loop (Guard).
    def deliver(error)
      @errors << error
    end

    # Wakes every fiber waiting for its turn to run the loop.
    def wake_waiters
      @waiters.each_key { |queue| queue.push(:wake) }
    end

    def check_open
      raise Error.new(ERR_CLOSED, "the loop is closed") if @ptr.nil?
    end

    # Running the loop is for the thread that made it.
    def check_owner
      check_open
      return if Thread.current.equal?(@owner)

      raise Error.new(ERR_WRONG_THREAD, "the loop belongs to #{@owner.inspect}; only add_callback and " \
                                        "stop may be called from other threads")
    end

    private

    def drive(done)
      @driver = Fiber.current
      step until done.call
    ensure
      @driver = nil
      pass_turn
    end

    # The loop has no driver: the longest-waiting fiber takes it over.
    def pass_turn
      @waiters.first&.first&.push(:turn) if @driver.nil?
    end

    # Another fiber runs the loop: sleep (through the Fiber scheduler; a
    # Thread::Queue pop is scheduler-aware) until that fiber is done with it
    # or our condition may hold.
    def wait_turn(done, waiter)
      unless Fiber.scheduler && !Fiber.current.blocking?
        raise Error.new(ERR_RUNNING, "the loop is being run by another fiber; without a Fiber " \
                                     "scheduler this one cannot wait for it")
      end

      queue = Thread::Queue.new
      @waiters[queue] = Fiber.current
      waiter&.turn = queue
      queue.pop unless done.call || @driver.nil?
    ensure
      waiter&.turn = nil
      @waiters.delete(queue)
      # Woken to take over but leaving (done, or stopped by an exception):
      # the next waiter takes over instead.
      pass_turn
    end

    def raise_pending
      raise @errors.shift unless @errors.empty?
    end

    # Wakes the wait from another thread: a callback queued from another
    # thread makes the backend fd readable.
    def wake
      Lib.tornado_loop_add_callback_full(@ptr, NOOP, nil, nil) unless @ptr.nil?
    end

    def schedule(function, time, block)
      check_open
      key = Registry.hold(Callback.new(self, block))
      id = Lib.send(function, @ptr, time.to_f, RUN, key, DROP)
      if id.zero?
        Registry.release(key)
        raise Error.new(ERR_INVALID, "#{function.to_s.sub('tornado_loop_', '').sub('_full', '')}: " \
                                     "#{Lib.tornado_last_error}")
      end
      id
    end
  end

  # Tornado's PeriodicCallback: calls the block every `interval` seconds once
  # started (runs missed while the loop was busy are skipped).
  class PeriodicCallback
    def initialize(loop, interval, jitter: nil, &block)
      @key = Registry.hold(Callback.new(loop, block))
      @ptr = Lib.tornado_periodic_new(loop.ptr, interval.to_f, RUN, @key, DROP)
      if @ptr.null?
        Registry.release(@key)
        TornadoRS.check_ptr(@ptr, "PeriodicCallback")
      end
      TornadoRS.check(Lib.tornado_periodic_set_jitter(@ptr, jitter.to_f), "jitter") if jitter
    end

    def start
      TornadoRS.check(Lib.tornado_periodic_start(@ptr), "start")
      self
    end

    def stop
      TornadoRS.check(Lib.tornado_periodic_stop(@ptr), "stop")
    end

    def running?
      Lib.tornado_periodic_is_running(@ptr)
    end

    def close
      return if @ptr.nil?

      TornadoRS.check(Lib.tornado_periodic_free(@ptr), "close")
      @ptr = nil
    end
  end
end
