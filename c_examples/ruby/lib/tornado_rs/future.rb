# frozen_string_literal: true

module TornadoRS
  # A future of the loop (Tornado's Future): what a body producer or a
  # streaming block returns to make the library wait (a pause), and what
  # BodyWriter#write returns. Its value is a Ruby object kept on the Ruby
  # side; the library sees only done / failed.
  class Future
    attr_reader :loop, :ptr
    attr_writer :turn

    # A new pending future of `loop`.
    def initialize(loop, ptr = nil)
      loop.check_open
      @loop = loop
      @ptr = ptr || TornadoRS.check_ptr(Lib.tornado_future_new(loop.ptr), "Future")
      @value = nil
      @exception = nil
      # The reference is released on the loop's thread once this object is
      # collected (if the loop is still open then).
      ObjectSpace.define_finalizer(self, Future.releaser(loop, @ptr))
    end

    def self.releaser(loop, ptr)
      proc { loop.release_later(ptr) unless loop.closed? }
    end

    def done?
      Lib.tornado_future_done(@ptr)
    end

    def set_result(value = nil)
      @value = value
      TornadoRS.check(Lib.tornado_future_set_result(@ptr, nil, nil), "set_result")
      self
    end

    # Fails the future with an exception (raised again by #wait, #result).
    def set_exception(error)
      error = RuntimeError.new(error.to_s) unless error.is_a?(Exception)
      @exception = error
      TornadoRS.check(Lib.tornado_future_set_error(@ptr, ERR_USER, error.message.to_s.delete("\0")),
                      "set_exception")
      self
    end

    def cancel
      Lib.tornado_future_cancel(@ptr).zero?
    end

    # TORNADO_OK, the error code, or TORNADO_ERR_NOT_DONE while pending.
    def code
      Lib.tornado_future_error(@ptr, nil)
    end

    # The exception of a failed future (nil if it succeeded or is pending).
    def exception
      return @exception if @exception

      message = FFI::MemoryPointer.new(:pointer)
      code = Lib.tornado_future_error(@ptr, message)
      return nil if code == OK || code == ERR_NOT_DONE

      text = message.read_pointer
      Error.new(code, text.null? ? Lib.tornado_code_name(code) : text.read_string)
    end

    # The value; raises the error of a failed future.
    def result
      raise Error.new(ERR_NOT_DONE, "the future is not done") unless done?

      error = exception
      raise error if error

      @value
    end

    # Runs the loop until the future is done, then #result.
    def wait
      unless done? || @wakes
        @wakes = true
        add_done_callback { @turn&.push(:done) }
      end
      @loop.run_until(self) { done? }
      result
    end

    # Calls the block with the future once it is done, from the loop.
    def add_done_callback(&block)
      key = Registry.hold(Callback.new(@loop, -> { block.call(self) }))
      code = Lib.tornado_future_add_done_callback_full(@ptr, FUTURE_DONE, key, DROP)
      return self if code.zero?

      Registry.release(key)
      TornadoRS.check(code, "add_done_callback")
    end
  end

  class IOLoop
    # Releases a future's reference from any thread (a finalizer's): on the
    # loop's thread, through a callback.
    def release_later(ptr)
      Lib.tornado_loop_add_callback_full(@ptr, UNREF, ptr, nil) unless @ptr.nil?
    end
  end

  UNREF = FFI::Function.new(:void, [:pointer]) { |future| Lib.tornado_future_unref(future) }
end
