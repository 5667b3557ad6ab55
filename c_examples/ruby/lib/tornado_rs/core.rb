# frozen_string_literal: true

module TornadoRS
  # A failed call: #code is the TORNADO_ERR_* value, #code_name its name.
  class Error < StandardError
    attr_reader :code

    def initialize(code, message)
      super(message)
      @code = code
    end

    def code_name
      Lib.tornado_code_name(@code)
    end
  end

  # Raises Error unless code is TORNADO_OK, with the library's message.
  def self.check(code, what)
    raise Error.new(code, "#{what}: #{Lib.tornado_last_error}") unless code.zero?

    nil
  end

  # Raises Error when a constructor returned NULL.
  def self.check_ptr(ptr, what)
    raise Error.new(ERR_INVALID, "#{what}: #{Lib.tornado_last_error}") if ptr.null?

    ptr
  end

  def self.version
    Lib.tornado_version
  end

  # The library's version number (MAJOR * 10000 + MINOR * 100 + PATCH).
  def self.version_number
    Lib.tornado_version_number
  end

  # Objects the library may still call, by integer key (the userdata). An
  # entry leaves when the library says it is done with it (a one-shot
  # callback after its call, a registration through its drop function), so
  # the garbage collector never frees a block the library may call.
  module Registry
    @held = {}
    @next = 0
    @lock = Mutex.new

    def self.hold(obj)
      @lock.synchronize do
        @next += 1
        @held[@next] = obj
        FFI::Pointer.new(@next)
      end
    end

    def self.get(ptr)
      @lock.synchronize { @held[ptr.address] }
    end

    def self.release(ptr)
      @lock.synchronize { @held.delete(ptr.address) }
    end

    def self.size
      @lock.synchronize { @held.size }
    end
  end

  # Runs a block the library called. The library calls back only from inside
  # tornado_loop_run_once, which IOLoop#step runs with asynchronous
  # interrupts deferred (Thread.handle_interrupt): the block itself takes
  # them at once (Ctrl-C in a long block), and whatever it raises is caught
  # here and handed to its loop, which raises it again once run_once has
  # returned. No Ruby exception ever unwinds through the library's frames.
  module Guard
    # A `throw` (Timeout.timeout's own, for one) leaving a block: stopped
    # here, since it must not unwind through the library either.
    class ThrowError < StandardError; end

    # Runs the block; what it raises goes to `on_error` (by default its
    # loop, to raise again), and the fallback is returned instead.
    def self.call(loop, fallback = nil, on_error: nil)
      finished = false
      result = Thread.handle_interrupt(Object => :immediate) { yield }
      finished = true
      result
    rescue Exception => e # rubocop:disable Lint/RescueException -- raised again by the loop
      finished = true
      on_error ? on_error.call(e) : loop.deliver(e)
      fallback.respond_to?(:call) ? fallback.call : fallback
    ensure
      unless finished
        # Only a throw gets here: returning from ensure stops it.
        error = ThrowError.new("a throw left a block the library called; it was stopped there")
        on_error ? on_error.call(error) : loop.deliver(error)
        return fallback.respond_to?(:call) ? fallback.call : fallback # rubocop:disable Lint/EnsureReturn
      end
    end
  end

  # A block to call with the library's arguments, guarded for its loop.
  class Callback
    def initialize(loop, block)
      @loop = loop
      @block = block
    end

    def call(*args)
      Guard.call(@loop) { @block.call(*args) }
    end
  end

  # The C trampolines: constants, so they live as long as the process.
  RUN = FFI::Function.new(:void, [:pointer]) { |ud| Registry.get(ud)&.call }
  DROP = FFI::Function.new(:void, [:pointer]) { |ud| Registry.release(ud) }
  NOOP = FFI::Function.new(:void, [:pointer]) { |_ud| nil }
  ON_FD = FFI::Function.new(:void, %i[int uint32 pointer]) { |fd, events, ud| Registry.get(ud)&.call(fd, events) }
  FUTURE_DONE = FFI::Function.new(:void, %i[pointer pointer]) { |_future, ud| Registry.get(ud)&.call }
end
