# frozen_string_literal: true

# tornado_rs from Ruby, through the ffi gem: an IOLoop, timers and
# callbacks as blocks, and an HTTP client with keep-alive.
#
#   require_relative "tornado_rs"
#   loop = TornadoRS::IOLoop.new
#   client = TornadoRS::HTTPClient.new(loop)
#   client.fetch("http://127.0.0.1:8000/") { |r| puts r.code; loop.stop }
#   loop.start
#
# Blocks are kept in a registry until the library says it is done with them
# (a one-shot callback after its call, a registration through its drop
# function): the garbage collector never frees one the library may call.
require "ffi"

module TornadoRS
  # The C library.
  module Lib
    extend FFI::Library
    here = File.expand_path(__dir__)
    candidates = [ENV["TORNADO_RS_LIB"],
                  File.join(here, "..", "..", "target", "release", "libtornado_rs.so"),
                  File.join(here, "..", "..", "target", "debug", "libtornado_rs.so"),
                  "libtornado_rs.so.0"].compact
    ffi_lib candidates.find { |c| File.exist?(c) } || "libtornado_rs.so.0"

    callback :callback, [:pointer], :void
    callback :drop_fn, [:pointer], :void
    callback :fetch_fn, [:pointer, :pointer], :void

    attach_function :tornado_version, [], :string
    attach_function :tornado_last_error, [], :string
    attach_function :tornado_loop_new, [], :pointer
    attach_function :tornado_loop_free, [:pointer], :int32
    attach_function :tornado_loop_start, [:pointer], :int32, blocking: true
    attach_function :tornado_loop_stop, [:pointer], :int32
    attach_function :tornado_loop_time, [:pointer], :double
    attach_function :tornado_loop_add_callback_full, %i[pointer callback pointer drop_fn], :int32
    attach_function :tornado_loop_call_later_full, %i[pointer double callback pointer drop_fn], :uint64
    attach_function :tornado_loop_remove_timeout, %i[pointer uint64], :int32
    attach_function :tornado_http_client_options_new, [], :pointer
    attach_function :tornado_http_client_options_free, [:pointer], :void
    attach_function :tornado_http_client_options_set_max_clients, %i[pointer size_t], :int32
    attach_function :tornado_http_client_new, %i[pointer pointer], :pointer
    attach_function :tornado_http_client_free, [:pointer], :int32
    attach_function :tornado_http_client_fetch_cb_full, %i[pointer pointer fetch_fn pointer drop_fn], :int32
    attach_function :tornado_http_request_new, [:string], :pointer
    attach_function :tornado_http_request_free, [:pointer], :void
    attach_function :tornado_http_request_set_method, %i[pointer string], :int32
    attach_function :tornado_http_request_add_header, %i[pointer string string], :int32
    attach_function :tornado_http_request_set_body, %i[pointer pointer size_t], :int32
    attach_function :tornado_http_request_set_request_timeout, %i[pointer double], :int32
    attach_function :tornado_http_response_code, [:pointer], :int
    attach_function :tornado_http_response_reason, [:pointer], :string
    attach_function :tornado_http_response_body, %i[pointer pointer], :pointer
    attach_function :tornado_http_response_header_count, [:pointer], :size_t
    attach_function :tornado_http_response_header_at, %i[pointer size_t pointer pointer], :int32
    attach_function :tornado_http_response_effective_url, [:pointer], :string
    attach_function :tornado_http_response_error, [:pointer], :string
    attach_function :tornado_http_response_request_time, [:pointer], :double
  end

  # A failed call: code is the TORNADO_ERR_* value.
  class Error < StandardError
    attr_reader :code

    def initialize(code, message)
      super(message)
      @code = code
    end
  end

  def self.check(code, what)
    raise Error.new(code, "#{what}: #{Lib.tornado_last_error}") unless code.zero?
  end

  def self.version
    Lib.tornado_version
  end

  # Blocks the library may still call, by integer key (the userdata).
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

  # The C trampolines: constants, so they live as long as the process.
  RUN = proc { |ud| Registry.get(ud)&.call }
  DROP = proc { |ud| Registry.release(ud) }
  # At most once; the block is released by DROP right after, or alone when
  # the fetch is released uncalled (its loop freed first).
  FETCHED = proc do |response, ud|
    Registry.get(ud)&.call(HTTPResponse.new(response))
  end

  # Tornado's IOLoop. Only #add_callback and #stop may be used from other threads.
  class IOLoop
    def initialize
      @ptr = Lib.tornado_loop_new
      raise Error.new(1, "tornado_loop_new: #{Lib.tornado_last_error}") if @ptr.null?
    end

    attr_reader :ptr

    def start
      TornadoRS.check(Lib.tornado_loop_start(@ptr), "start")
    end

    def stop
      Lib.tornado_loop_stop(@ptr)
    end

    def time
      Lib.tornado_loop_time(@ptr)
    end

    def add_callback(&block)
      key = Registry.hold(block)
      code = Lib.tornado_loop_add_callback_full(@ptr, RUN, key, DROP)
      return if code.zero?

      Registry.release(key)
      TornadoRS.check(code, "add_callback")
    end

    def call_later(delay, &block)
      key = Registry.hold(block)
      id = Lib.tornado_loop_call_later_full(@ptr, delay.to_f, RUN, key, DROP)
      if id.zero?
        Registry.release(key)
        TornadoRS.check(1, "call_later")
      end
      id
    end

    def remove_timeout(id)
      TornadoRS.check(Lib.tornado_loop_remove_timeout(@ptr, id), "remove_timeout")
    end

    def close
      return if @ptr.nil?

      TornadoRS.check(Lib.tornado_loop_free(@ptr), "close")
      @ptr = nil
    end
  end

  # A response copied into Ruby objects.
  class HTTPResponse
    attr_reader :code, :reason, :headers, :body, :effective_url, :error, :request_time

    def initialize(ptr)
      @code = Lib.tornado_http_response_code(ptr)
      @reason = Lib.tornado_http_response_reason(ptr)
      len = FFI::MemoryPointer.new(:size_t)
      data = Lib.tornado_http_response_body(ptr, len)
      n = len.read(:size_t)
      @body = n.positive? ? data.read_bytes(n) : +""
      @headers = (0...Lib.tornado_http_response_header_count(ptr)).map do |i|
        name = FFI::MemoryPointer.new(:pointer)
        value = FFI::MemoryPointer.new(:pointer)
        Lib.tornado_http_response_header_at(ptr, i, name, value)
        [name.read_pointer.read_string, value.read_pointer.read_string]
      end
      @effective_url = Lib.tornado_http_response_effective_url(ptr)
      @error = Lib.tornado_http_response_error(ptr)
      @request_time = Lib.tornado_http_response_request_time(ptr)
    end

    def [](name)
      @headers.find { |n, _| n.casecmp?(name) }&.last
    end
  end

  # Tornado's AsyncHTTPClient (callback form): the block gets the response
  # exactly once, on the loop thread (code 599 and #error when none came).
  class HTTPClient
    def initialize(loop, max_clients: 10)
      options = Lib.tornado_http_client_options_new
      Lib.tornado_http_client_options_set_max_clients(options, max_clients)
      @ptr = Lib.tornado_http_client_new(loop.ptr, options)
      Lib.tornado_http_client_options_free(options)
      raise Error.new(1, "HTTPClient: #{Lib.tornado_last_error}") if @ptr.null?
    end

    def fetch(url, method: "GET", headers: {}, body: nil, request_timeout: nil, &block)
      request = Lib.tornado_http_request_new(url)
      raise Error.new(1, "request: #{Lib.tornado_last_error}") if request.null?

      begin
        TornadoRS.check(Lib.tornado_http_request_set_method(request, method), "method")
        headers.each { |n, v| TornadoRS.check(Lib.tornado_http_request_add_header(request, n, v), "header") }
        if body
          buf = FFI::MemoryPointer.from_string(body)
          TornadoRS.check(Lib.tornado_http_request_set_body(request, buf, body.bytesize), "body")
        end
        TornadoRS.check(Lib.tornado_http_request_set_request_timeout(request, request_timeout.to_f), "timeout") if request_timeout
        key = Registry.hold(block)
        code = Lib.tornado_http_client_fetch_cb_full(@ptr, request, FETCHED, key, DROP)
        unless code.zero?
          Registry.release(key)
          TornadoRS.check(code, "fetch")
        end
      ensure
        Lib.tornado_http_request_free(request)
      end
    end

    # Fetches in flight end with a "closed" error (their blocks are called).
    def close
      return if @ptr.nil?

      Lib.tornado_http_client_free(@ptr)
      @ptr = nil
    end
  end
end
