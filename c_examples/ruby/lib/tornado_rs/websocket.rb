# frozen_string_literal: true

module TornadoRS
  # A call on a WebSocket that is closing or closed (Tornado's WebSocketClosedError).
  class WebSocketClosedError < Error; end

  # A C future the binding waits for through the loop, as a fetch does: its
  # done callback marks it done and wakes the fiber waiting for it (under a
  # Fiber scheduler, while another fiber runs the loop). One reference to
  # the future is this object's until #release.
  class PendingFuture
    attr_reader :ptr
    attr_writer :turn

    def initialize(loop, ptr, what)
      @loop = loop
      @ptr = ptr
      @done = false
      key = Registry.hold(self)
      code = Lib.tornado_future_add_done_callback_full(ptr, FUTURE_DONE, key, DROP)
      if code.zero?
        @loop.fetch_started(self) # its reference goes if the loop is closed first
        return
      end

      Registry.release(key)
      Lib.tornado_future_unref(ptr)
      TornadoRS.check(code, what)
    end

    # The done callback (FUTURE_DONE, from the loop).
    def call
      @done = true
      @turn&.push(:done)
    end

    def done?
      @done
    end

    # Runs the loop until the future is done.
    def wait
      @loop.run_until(self) { @done }
      self
    end

    def cancel
      Lib.tornado_future_cancel(@ptr) unless @ptr.nil? || @done
    end

    # Yields (code, message, value pointer, OS error) of the done future,
    # then releases it (the value is borrowed from it for the block).
    def take
      message = FFI::MemoryPointer.new(:pointer)
      code = Lib.tornado_future_error(@ptr, message)
      text = message.read_pointer
      text = text.null? ? Lib.tornado_code_name(code) : text.read_string.force_encoding(Encoding::UTF_8)
      yield code, text, Lib.tornado_future_result(@ptr), Lib.tornado_future_os_error(@ptr)
    ensure
      release
    end

    def release
      return if @ptr.nil?

      @loop.fetch_ended(self)
      dropped
    end

    # The loop was closed first (IOLoop#close): the reference goes now.
    def dropped
      ptr = @ptr
      @ptr = nil
      Lib.tornado_future_unref(ptr) unless ptr.nil?
    end
  end

  # Tornado's WebSocket client (websocket_connect and
  # WebSocketClientConnection) over the library's tornado_websocket_*.
  #
  #   ws = TornadoRS::WebSocket.connect(client, "ws://127.0.0.1:8888/echo")  # waits
  #   ws.write_message("hi")                # a Future, done once on the wire
  #   ws.read_message                       # => "hi" (waits); nil once closed
  #   ws.close(1000, "bye").wait
  #
  # Messages are Strings: text in UTF-8, binary in ASCII-8BIT (#binary? on
  # the encoding). Waits (connect, read_message, Future#wait) run the loop
  # as a fetch does: under a Fiber scheduler several fibers wait at once;
  # Ctrl-C, Thread#raise and Timeout end them (an interrupted connect is
  # aborted; an interrupted read_message leaves its read pending, and the
  # next read_message gets that message: none is lost). An exception raised
  # by an on_message or on_ping block is raised again from the call running
  # the loop.
  #
  # The connection is the loop's thread's. Close it (#close) when done; one
  # dropped without a close is closed at once (no close handshake) when the
  # garbage collector takes it, or when its loop is closed.
  class WebSocket
    attr_reader :loop

    # Opens a WebSocket to url (ws:// or wss://) through client's
    # connections and waits for the handshake. Options: subprotocols (an
    # Array of names offered), compression (true: permessage-deflate at zlib
    # level 6; an Integer 0-9: that level), client_no_context_takeover,
    # server_no_context_takeover, server_max_window_bits (8-15),
    # client_max_window_bits (8-15: compress what is sent with a window of at
    # most 2^bits bytes, offered as client_max_window_bits=bits; 0: offered
    # without a value, 32 KiB unless the server asks for less),
    # max_message_size (bytes; 10 MiB), ping_interval / ping_timeout
    # (seconds; a missing pong closes the connection), max_write_buffer,
    # close_timeout (seconds the close handshake waits; 5), on_ping (a block
    # given each ping's payload); every other keyword is a request option
    # of HTTPClient#fetch (headers, connect_timeout, request_timeout, TLS
    # options, auth, proxy, ...). The block, if given, is the message
    # callback (#on_message). Raises HTTPClientError (TimeoutError for
    # timeouts) when the connection or the handshake fails (kind
    # "protocol": the server refused it, e.g. "HTTP 404").
    def self.connect(client, url, subprotocols: nil, compression: nil, client_no_context_takeover: false,
                     server_no_context_takeover: false, server_max_window_bits: nil, client_max_window_bits: nil,
                     max_message_size: nil, ping_interval: nil, ping_timeout: nil, max_write_buffer: nil, close_timeout: nil,
                     on_ping: nil, **request_options, &on_message)
      loop = client.loop
      options = Options.build(subprotocols: subprotocols, compression: compression,
                              client_no_context_takeover: client_no_context_takeover,
                              server_no_context_takeover: server_no_context_takeover,
                              server_max_window_bits: server_max_window_bits,
                              client_max_window_bits: client_max_window_bits, max_message_size: max_message_size,
                              ping_interval: ping_interval, ping_timeout: ping_timeout,
                              max_write_buffer: max_write_buffer, close_timeout: close_timeout)
      begin
        request = client.new_request(url)
        begin
          RequestBuilder.new(request, nil).apply(request_options)
          future = Lib.tornado_websocket_connect(client.ptr, request, options)
        ensure
          Lib.tornado_http_request_free(request)
        end
      ensure
        Lib.tornado_websocket_options_free(options)
      end
      raise WebSocket.failed_call("websocket connect") if future.null?

      pending = PendingFuture.new(loop, future, "websocket connect")
      handshake(pending)
      ws = pending.take do |code, text, value, os_error|
        unless code == OK
          errno = os_error.positive? ? SystemCallError.new(text, os_error) : nil
          raise HTTPClientError.for(code, text, os_error, url: url), cause: errno
        end
        new(loop, TornadoRS.check_ptr(Lib.tornado_websocket_ref(value), "websocket"))
      end
      ws.on_message(&on_message) if on_message
      ws.on_ping(&on_ping) if on_ping
      ws
    end

    # Waits for the handshake; an exception that ends the wait aborts it.
    def self.handshake(pending)
      finished = false
      pending.wait
      finished = true
    ensure
      unless finished
        pending.cancel
        pending.release
      end
    end
    private_class_method :handshake

    def initialize(loop, ptr)
      @loop = loop
      @ptr = ptr
      @pending_read = nil
      @on_message = nil
      WebSocket.live[ptr.address] = [loop, ptr]
      ObjectSpace.define_finalizer(self, WebSocket.releaser(loop, ptr))
    end

    # Handles not yet released, by address: [loop, pointer] (IOLoop#close
    # releases its loop's).
    def self.live
      @live ||= {}
    end

    # Releases the handle from any thread (a finalizer's): on the loop's thread.
    def self.releaser(loop, ptr)
      proc { Lib.tornado_loop_add_callback_full(loop.ptr, WS_UNREF, ptr, nil) unless loop.closed? }
    end

    # Releases the handles of loop's connections (before the loop is freed).
    def self.release_all(loop)
      live.select { |_, (l, _)| l.equal?(loop) }.each_key { |address| release(address) }
    end

    def self.release(address)
      _, ptr = live.delete(address)
      Lib.tornado_websocket_unref(ptr) if ptr
    end

    # The next message (a String: text in UTF-8, binary in ASCII-8BIT),
    # waiting for it through the loop; nil once the connection is closed,
    # cleanly or not (then #error says why). Not with an on_message block.
    def read_message
      raise Error.new(ERR_INVALID, "read_message: an on_message block receives the messages") if @on_message

      @pending_read ||= PendingFuture.new(@loop, check_call(Lib.tornado_websocket_read_message(ptr), "read_message"),
                                          "read_message")
      @pending_read.wait # interrupted: stays pending for the next call
      pending = @pending_read
      @pending_read = nil
      pending.take { |code, _, value, _| code == OK ? WebSocket.message_string(value) : nil }
    end

    # Calls the block from the loop with each message from now on, then
    # with nil when the connection ends (Tornado's on_message_callback).
    # Without a block: back to read_message.
    def on_message(&block)
      set_callback(:tornado_websocket_set_message_callback, WS_MESSAGE, block && MessageHandler.new(@loop, block))
      @on_message = block
      self
    end

    # Calls the block from the loop with each ping's payload (binary), after
    # the pong is queued (Tornado's on_ping). Without a block: none. Pings
    # are always answered; those that came before the block was set (for
    # connect's on_ping: while the handshake's end was being handled) are
    # not reported.
    def on_ping(&block)
      set_callback(:tornado_websocket_set_ping_callback, WS_PING, block && Callback.new(@loop, block))
      self
    end

    # Sends a message: text (data must be UTF-8) or binary. Returns a
    # Future done once it is on the wire. WebSocketClosedError once closing.
    def write_message(data, binary: false)
      bytes = data.to_s.b
      buf = FFI::MemoryPointer.new(:uint8, [bytes.bytesize, 1].max)
      buf.put_bytes(0, bytes)
      Future.new(@loop, check_call(Lib.tornado_websocket_write_message(ptr, buf, bytes.bytesize, binary ? true : false),
                                   "write_message"))
    end

    # Sends a ping (at most 125 bytes); a Future done once it is on the wire.
    def ping(data = "")
      bytes = data.to_s.b
      buf = FFI::MemoryPointer.new(:uint8, [bytes.bytesize, 1].max)
      buf.put_bytes(0, bytes)
      Future.new(@loop, check_call(Lib.tornado_websocket_ping(ptr, buf, bytes.bytesize), "ping"))
    end

    # Starts the close handshake with code (nil: none; 1000 when only a
    # reason is given) and reason. Returns a Future done once the server's
    # close frame came and the connection is closed (it fails with a
    # timeout after close_timeout). Calling it again gives the same end.
    def close(code = nil, reason = nil)
      code = 1000 if code.nil? && reason
      Future.new(@loop, check_call(Lib.tornado_websocket_close(ptr, Integer(code || 0), reason&.to_s), "close"))
    end

    # The code of the server's close frame (nil before one, or when it had none).
    def close_code
      code = Lib.tornado_websocket_close_code(ptr)
      code.zero? ? nil : code
    end

    # The reason of the server's close frame ("" when none given; nil before one).
    def close_reason
      Lib.tornado_websocket_close_reason(ptr)&.force_encoding(Encoding::UTF_8)
    end

    # The subprotocol the server chose, or nil.
    def subprotocol
      Lib.tornado_websocket_subprotocol(ptr)&.force_encoding(Encoding::UTF_8)
    end

    # The extensions agreed (e.g. "permessage-deflate; ..."), or nil.
    def extensions
      Lib.tornado_websocket_extensions(ptr)&.force_encoding(Encoding::UTF_8)
    end

    def closed?
      Lib.tornado_websocket_is_closed(ptr)
    end

    # Why the connection ended when it did not close cleanly: an Error
    # (code ERR_TIMEOUT, ERR_PROTOCOL, ERR_TOO_LARGE, ERR_CLOSED...), else nil.
    def error
      code = Lib.tornado_websocket_error(ptr)
      code.zero? ? nil : Error.new(code, Lib.tornado_last_error.to_s)
    end

    # Bytes written and not yet on the wire.
    def buffered_amount
      Lib.tornado_websocket_buffered_amount(ptr)
    end

    def inspect
      "#<TornadoRS::WebSocket#{closed? ? ' closed' : ''}#{subprotocol ? " subprotocol=#{subprotocol}" : ''}>"
    end

    # The exception for a call that returned NULL: the code its message
    # names ("TORNADO_ERR_CLOSED: ..."), WebSocketClosedError for ERR_CLOSED.
    def self.failed_call(what)
      message = Lib.tornado_last_error.to_s
      name = message[/\ATORNADO_ERR_[A-Z_]+/]
      code = (1..ERR_INVALID_URL).find { |c| Lib.tornado_code_name(c) == name } || ERR_INVALID
      (code == ERR_CLOSED ? WebSocketClosedError : Error).new(code, "#{what}: #{message}")
    end

    # A message (tornado_websocket_message *, borrowed) as a String.
    def self.message_string(msg)
      return nil if msg.null?

      len = FFI::MemoryPointer.new(:size_t)
      data = Lib.tornado_websocket_message_data(msg, len)
      n = len.read(:size_t)
      text = n.zero? ? String.new : data.read_bytes(n)
      text.force_encoding(Lib.tornado_websocket_message_is_binary(msg) ? Encoding::BINARY : Encoding::UTF_8)
    end

    private

    def ptr
      @loop.check_owner
      @ptr
    end

    # A NULL future from the library: raises WebSocketClosedError when the
    # connection is closing or closed, else Error.
    def check_call(future, what)
      return future unless future.null?

      raise WebSocket.failed_call(what)
    end

    def set_callback(setter, trampoline, handler)
      key = handler ? Registry.hold(handler) : nil
      code = Lib.send(setter, ptr, handler ? trampoline : nil, key, handler ? DROP : nil)
      return if code.zero?

      Registry.release(key) if key
      TornadoRS.check(code, setter.to_s.sub("tornado_websocket_", ""))
    end

    # The tornado_websocket_options for connect (the caller frees them).
    module Options
      def self.build(subprotocols:, compression:, client_no_context_takeover:, server_no_context_takeover:,
                     server_max_window_bits:, client_max_window_bits:, max_message_size:, ping_interval:, ping_timeout:,
                     max_write_buffer:, close_timeout:)
        o = TornadoRS.check_ptr(Lib.tornado_websocket_options_new, "websocket options")
        begin
          set = ->(what, code) { TornadoRS.check(code, what) }
          Array(subprotocols).each do |name|
            set.("subprotocols", Lib.tornado_websocket_options_add_subprotocol(o, name.to_s))
          end
          if compression
            level = compression == true ? 6 : Integer(compression)
            set.("compression", Lib.tornado_websocket_options_set_compression(o, level))
            if client_no_context_takeover || server_no_context_takeover
              set.("no_context_takeover", Lib.tornado_websocket_options_set_no_context_takeover(
                o, client_no_context_takeover ? true : false, server_no_context_takeover ? true : false
              ))
            end
            if server_max_window_bits
              set.("server_max_window_bits",
                   Lib.tornado_websocket_options_set_server_max_window_bits(o, Integer(server_max_window_bits)))
            end
            if client_max_window_bits
              set.("client_max_window_bits",
                   Lib.tornado_websocket_options_set_client_max_window_bits(o, Integer(client_max_window_bits)))
            end
          elsif client_no_context_takeover || server_no_context_takeover || server_max_window_bits ||
                client_max_window_bits
            raise ArgumentError, "no_context_takeover and the window bits need compression"
          end
          if max_message_size
            set.("max_message_size", Lib.tornado_websocket_options_set_max_message_size(o, Integer(max_message_size)))
          end
          if ping_interval
            set.("ping", Lib.tornado_websocket_options_set_ping(o, Float(ping_interval), Float(ping_timeout || 0)))
          end
          if max_write_buffer
            set.("max_write_buffer", Lib.tornado_websocket_options_set_max_write_buffer(o, Integer(max_write_buffer)))
          end
          if close_timeout
            set.("close_timeout", Lib.tornado_websocket_options_set_close_timeout(o, Float(close_timeout)))
          end
          o
        rescue Exception # rubocop:disable Lint/RescueException -- freed, then raised on
          Lib.tornado_websocket_options_free(o)
          raise
        end
      end
    end
  end

  # An on_message block: each message as a String, then nil at the end.
  class MessageHandler
    def initialize(loop, block)
      @loop = loop
      @block = block
    end

    def call(msg)
      Guard.call(@loop) { @block.call(WebSocket.message_string(msg)) }
    end
  end

  WS_MESSAGE = FFI::Function.new(:void, %i[pointer pointer]) { |msg, ud| Registry.get(ud)&.call(msg) }
  WS_PING = FFI::Function.new(:void, %i[pointer size_t pointer]) do |data, len, ud|
    Registry.get(ud)&.call(len.zero? ? String.new(encoding: Encoding::BINARY) : data.read_bytes(len))
  end
  WS_UNREF = FFI::Function.new(:void, [:pointer]) { |ws| WebSocket.release(ws.address) }
end
