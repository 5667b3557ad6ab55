# frozen_string_literal: true

module TornadoRS
  # A fetch that got no response (Tornado's HTTPClientError with code 599):
  # #kind is the library's error kind ("connect", "timeout", "tls", ...),
  # #code the TORNADO_ERR_* value, #os_error the errno behind it (0 if none;
  # then #cause is the matching Errno exception, e.g. Errno::ECONNREFUSED),
  # #response the response when there is one (a 3xx that ran out of
  # redirects), else nil.
  class HTTPClientError < Error
    attr_reader :kind, :os_error, :response, :url

    def self.for(code, message, os_error, response = nil, url: nil)
      (code == ERR_TIMEOUT ? TimeoutError : HTTPClientError).new(code, message, os_error, response, url)
    end

    def initialize(code, message, os_error = 0, response = nil, url = nil)
      super(code, message)
      @kind = message.to_s.split(":", 2).first
      @os_error = os_error
      @response = response
      @url = url
    end
  end

  # A fetch that ran out of time (connect_timeout or request_timeout).
  class TimeoutError < HTTPClientError; end

  # Tornado's AsyncHTTPClient, with keep-alive.
  #
  #   client.fetch(url) { |response| ... }  # from the loop, once; returns a Fetch
  #   response = client.fetch(url)          # runs the loop until it is done
  #
  # The second form is the one fibers use: under a Fiber scheduler each
  # fiber's fetch waits through the scheduler, so fibers fetch concurrently.
  # It returns the response for every HTTP status and raises HTTPClientError
  # (TimeoutError for timeouts) when none came (a response that carries an
  # error, the last 3xx when max_redirects ran out, is returned: its
  # #rethrow raises it); an exception raised by one of
  # its blocks (streaming_callback, header_callback, body_producer) is raised
  # from it. An exception that interrupts the wait (Interrupt, Thread#raise,
  # Timeout.timeout) cancels the fetch: its connection is closed.
  #
  # Request options (Tornado's HTTPRequest fields): method, headers (a Hash
  # or [name, value] pairs), body (a String, an IO-like object with #read,
  # or an Enumerable of String chunks: then streamed with chunked encoding),
  # body_producer (a block given a BodyWriter), connect_timeout,
  # request_timeout, follow_redirects, max_redirects, user_agent,
  # auth_username, auth_password, auth_mode ("basic" or "digest"),
  # decompress_response, validate_cert, ca_certs (a PEM file), ca_pem (PEM
  # text), client_cert / client_key (PEM files), client_cert_pem /
  # client_key_pem (PEM text), min_tls_version ("1.2", "1.3"), alpn (an
  # Array of protocol names), server_name, allow_ipv6, network_interface,
  # if_modified_since (a Time), proxy_host (a host, or a proxy URL such as
  # "https://127.0.0.1:3129" or "socks5h://..."), proxy_port, proxy_username,
  # proxy_password, proxy_ca_certs (a PEM file of the CAs an https:// proxy's
  # certificate is checked against, curl's --proxy-cacert; default: the
  # system's store; read when a connection to the proxy starts, so a bad
  # file fails that fetch with kind "tls"), proxy_validate_cert (false:
  # curl's --proxy-insecure, for tests; the target's certificate follows
  # validate_cert), allow_nonstandard_methods, expect_100_continue,
  # http_version (:any, :http1_1, :http2, :http2_prior_knowledge; the
  # response's #version says which one it came over), unix_socket (a path:
  # connect there instead of the URL's host, curl's --unix-socket),
  # streaming_callback (called with each body chunk; returning a
  # TornadoRS::Future pauses the read until it is done), header_callback
  # (called with each header line).
  class HTTPClient
    attr_reader :loop

    # Client options: max_clients, max_buffer_size, max_header_size,
    # max_body_size, idle_timeout, max_idle_per_host; hostname_mapping
    # ({ "host" => "address" or [addresses] }), endpoint_mapping
    # ({ ["host", port] => ["to_host", to_port] }, curl's --connect-to),
    # resolver (a block called as resolver.(host, port, family) returning
    # addresses — "1.2.3.4" or ["1.2.3.4", port] — or, when it takes a 4th
    # argument, given a ResolveReply to answer later), defaults (request
    # options every fetch starts from), http_version (the requests'
    # default, as the request option), cookies (true: a cookie jar, see
    # #load_cookies), dns_cache_ttl (seconds the resolver keeps an answer;
    # 0: no cache; default 60), public_suffix_file (the public suffix list
    # the cookie jar refuses Domain= cookies for, in publicsuffix.org's
    # format, e.g. /usr/share/publicsuffix/public_suffix_list.dat; default:
    # the list built in; read here with cookies on: a missing file or one
    # that is no such list raises Error), http2_ping ([idle_s, timeout_s]:
    # a pooled HTTP/2 connection idle idle_s seconds answers a PING within
    # timeout_s before reuse, else another is opened; default [5, 2]; idle_s
    # 0: no check; negative, NaN or infinite values or a timeout_s of 0
    # raise Error ERR_INVALID).
    def initialize(loop, max_clients: nil, max_buffer_size: nil, max_header_size: nil,
                   max_body_size: nil, idle_timeout: nil, max_idle_per_host: nil,
                   hostname_mapping: nil, endpoint_mapping: nil, resolver: nil, defaults: nil,
                   http_version: nil, cookies: nil, dns_cache_ttl: nil, public_suffix_file: nil, http2_ping: nil)
      @loop = loop
      loop.check_open
      options = TornadoRS.check_ptr(Lib.tornado_http_client_options_new, "options")
      begin
        { max_clients: max_clients, max_buffer_size: max_buffer_size, max_header_size: max_header_size,
          max_body_size: max_body_size, idle_timeout: idle_timeout,
          max_idle_per_host: max_idle_per_host }.each do |name, value|
          next if value.nil?

          TornadoRS.check(Lib.send(:"tornado_http_client_options_set_#{name}", options, value), name.to_s)
        end
        unless http_version.nil?
          TornadoRS.check(Lib.tornado_http_client_options_set_http_version(options, TornadoRS.http_version_value(http_version)),
                          "http_version")
        end
        TornadoRS.check(Lib.tornado_http_client_options_set_cookies(options, true), "cookies") if cookies
        unless dns_cache_ttl.nil?
          TornadoRS.check(Lib.tornado_http_client_options_set_dns_cache_ttl(options, Float(dns_cache_ttl)),
                          "dns_cache_ttl")
        end
        unless http2_ping.nil?
          idle, timeout = http2_ping
          TornadoRS.check(Lib.tornado_http_client_options_set_http2_ping(options, Float(idle), Float(timeout)),
                          "http2_ping")
        end
        unless public_suffix_file.nil?
          TornadoRS.check(Lib.tornado_http_client_options_set_public_suffix_file(options, public_suffix_file.to_s),
                          "public_suffix_file")
        end
        (hostname_mapping || {}).each do |host, addresses|
          Array(addresses).each do |address|
            TornadoRS.check(Lib.tornado_http_client_options_add_hostname_mapping(options, host, address),
                            "hostname_mapping")
          end
        end
        (endpoint_mapping || {}).each do |(host, port), (to_host, to_port)|
          TornadoRS.check(Lib.tornado_http_client_options_add_endpoint_mapping(options, host, port, to_host, to_port),
                          "endpoint_mapping")
        end
        set_resolver(options, resolver) if resolver
        set_defaults(options, defaults) if defaults
        @ptr = TornadoRS.check_ptr(Lib.tornado_http_client_new(loop.ptr, options), "HTTPClient")
      ensure
        Lib.tornado_http_client_options_free(options)
      end
    end

    def fetch(url, **options, &block)
      check_open
      fetch = Fetch.new(self, url, block)
      fetch.start(options)
      return fetch if block

      fetch.wait
    end

    # Fetches waiting for a slot among max_clients (Tornado's len(client.queue)).
    def queued
      check_open
      Lib.tornado_http_client_queued(@ptr)
    end

    # Fetches holding a slot (Tornado's len(client.active)).
    def active
      check_open
      Lib.tornado_http_client_active(@ptr)
    end

    # Idle keep-alive connections held.
    def idle_connections
      check_open
      Lib.tornado_http_client_idle_connections(@ptr)
    end

    # Connections opened so far (HTTP/1.1 and HTTP/2).
    def connections_opened
      check_open
      Lib.tornado_http_client_connections_opened(@ptr)
    end

    # HTTP/2 connections open now.
    def http2_connections
      check_open
      Lib.tornado_http_client_http2_connections(@ptr)
    end

    # The cookie jar (cookies: true; Error ERR_INVALID otherwise). Adds the
    # cookies of a curl (Netscape) cookie file; a malformed line fails the
    # whole load (ERR_INVALID, the jar unchanged), an unreadable file is ERR_IO.
    def load_cookies(path)
      check_open
      TornadoRS.check(Lib.tornado_http_client_load_cookies(@ptr, path.to_s), "load_cookies")
    end

    # Writes the jar's unexpired cookies to path as a curl (Netscape) cookie file.
    def save_cookies(path)
      check_open
      TornadoRS.check(Lib.tornado_http_client_save_cookies(@ptr, path.to_s), "save_cookies")
    end

    def clear_cookies
      check_open
      TornadoRS.check(Lib.tornado_http_client_clear_cookies(@ptr), "clear_cookies")
    end

    # Unexpired cookies in the jar (0 with cookies off).
    def cookie_count
      check_open
      Lib.tornado_http_client_cookie_count(@ptr)
    end

    # Ends every fetch in flight or queued with a "cancelled" error.
    def cancel_all
      check_open
      TornadoRS.check(Lib.tornado_http_client_cancel_all(@ptr), "cancel_all")
    end

    # Fetches in flight end with a "closed" error (their blocks are called).
    def close
      return if @ptr.nil?

      Lib.tornado_http_client_free(@ptr)
      @ptr = nil
    end

    def closed?
      @ptr.nil?
    end

    # A new request for url, starting from the client's defaults (internal).
    def new_request(url)
      check_open
      TornadoRS.check_ptr(Lib.tornado_http_client_request_new(@ptr, url), "request")
    end

    def ptr
      check_open
      @ptr
    end

    private

    def check_open
      raise Error.new(ERR_CLOSED, "the client is closed") if @ptr.nil?

      @loop.check_owner
    end

    def set_resolver(options, resolver)
      key = Registry.hold(Resolver.new(@loop, resolver))
      code = Lib.tornado_http_client_options_set_resolver(options, RESOLVE, key, DROP)
      return if code.zero?

      Registry.release(key)
      TornadoRS.check(code, "resolver")
    end

    def set_defaults(options, defaults)
      request = TornadoRS.check_ptr(Lib.tornado_http_request_new("http://defaults.invalid/"), "defaults")
      begin
        RequestBuilder.new(request, nil).apply(defaults)
        TornadoRS.check(Lib.tornado_http_client_options_set_defaults(options, request), "defaults")
      ensure
        Lib.tornado_http_request_free(request)
      end
    end
  end

  # One fetch: its future, its blocks' state and how it ended.
  class Fetch
    attr_reader :url, :response
    attr_writer :turn

    def initialize(client, url, block)
      @client = client
      @loop = client.loop
      @url = url
      @block = block
      @future = nil
      @done = false
      @raised = nil
      @writers = []
    end

    def start(options)
      request = @client.new_request(@url)
      begin
        RequestBuilder.new(request, self).apply(options)
        @future = TornadoRS.check_ptr(Lib.tornado_http_client_fetch(@client.ptr, request), "fetch")
      ensure
        Lib.tornado_http_request_free(request)
      end
      key = Registry.hold(self)
      code = Lib.tornado_future_add_done_callback_full(@future, FUTURE_DONE, key, FETCH_DROP)
      return @loop.fetch_started(self) if code.zero?

      Registry.release(key)
      Lib.tornado_future_unref(@future)
      TornadoRS.check(code, "fetch")
    end

    def done?
      @done
    end

    # Aborts the fetch (its connection is closed); it ends with a "cancelled" error.
    def cancel
      return false if @done || @future.nil?

      Lib.tornado_future_cancel(@future).zero?
    end

    # Runs the loop until the fetch is done; its response, or raises.
    def wait
      finished = false
      begin
        @loop.run_until(self) { @done }
        finished = true
      ensure
        # Whatever ended the wait (an exception, Timeout's throw) aborts the fetch.
        cancel unless finished
      end
      raise @raised if @raised

      @response.rethrow if @response.code == 599
      @response
    end

    # A block of this fetch raised: the fetch fails and the exception is
    # what the fetch's waiter (or, with a block, loop.start) raises.
    def block_raised(error)
      @raised ||= error
    end

    def keep_writer(writer)
      @writers << writer
    end

    # The future is done (FUTURE_DONE, from the loop). Nothing raised here
    # leaves: reading the outcome fails the fetch, the block's exception
    # goes to the loop.
    def call
      begin
        @response = Guard.call(@loop, nil, on_error: ->(e) { block_raised(e) }) { read_outcome }
      ensure
        Lib.tornado_future_unref(@future)
        @future = nil
        @loop.fetch_ended(self)
        @writers.each(&:close)
        @writers.clear
        @done = true
        @turn&.push(:done)
      end
      return unless @block

      @raised ? @loop.deliver(@raised) : Guard.call(@loop) { @block.call(@response) }
    end

    # The fetch will never call back (its loop was freed first): its
    # reference to the future goes (which releases the done callback).
    def dropped
      @loop.fetch_ended(self)
      return if @future.nil?

      future = @future
      @future = nil
      Lib.tornado_future_unref(future)
    end

    private

    def read_outcome
      message = FFI::MemoryPointer.new(:pointer)
      code = Lib.tornado_future_error(@future, message)
      return HTTPResponse.from_ptr(Lib.tornado_future_result(@future)) if code == OK

      text = message.read_pointer
      text = text.null? ? Lib.tornado_code_name(code) : text.read_string.force_encoding(Encoding::UTF_8)
      HTTPResponse.failed(@url, code, text, Lib.tornado_future_os_error(@future))
    end
  end

  # Sets a request's fields from fetch options.
  class RequestBuilder
    FLAGS = %i[follow_redirects decompress_response validate_cert allow_ipv6
               allow_nonstandard_methods expect_100_continue proxy_validate_cert].freeze
    SECONDS = %i[connect_timeout request_timeout].freeze
    STRINGS = %i[method user_agent auth_mode ca_certs min_tls_version server_name network_interface
                 unix_socket proxy_ca_certs].freeze
    KNOWN = (FLAGS + SECONDS + STRINGS +
             %i[headers body body_producer max_redirects auth_username auth_password ca_pem
                client_cert client_key client_cert_pem client_key_pem alpn if_modified_since
                proxy_host proxy_port proxy_username proxy_password streaming_callback
                header_callback http_version]).freeze

    def initialize(request, fetch)
      @r = request
      @fetch = fetch
    end

    def apply(options)
      unknown = options.keys - KNOWN
      raise ArgumentError, "unknown request option(s): #{unknown.join(', ')}" unless unknown.empty?

      options.each do |name, value|
        if FLAGS.include?(name)
          set(name, value ? true : false)
        elsif SECONDS.include?(name)
          set(name, value.to_f)
        elsif STRINGS.include?(name)
          set(name, value&.to_s)
        end
      end
      headers(options[:headers]) if options[:headers]
      body(options[:body]) if options.key?(:body)
      set(:max_redirects, Integer(options[:max_redirects])) if options.key?(:max_redirects)
      set(:http_version, TornadoRS.http_version_value(options[:http_version])) unless options[:http_version].nil?
      tls(options)
      auth(options)
      proxy(options)
      if options[:if_modified_since]
        set(:if_modified_since, options[:if_modified_since].to_f)
      end
      callbacks(options)
    end

    private

    def set(name, *args)
      TornadoRS.check(Lib.send(:"tornado_http_request_set_#{name}", @r, *args), name.to_s)
    end

    def headers(headers)
      headers.each do |name, value|
        bytes = value.to_s.b
        buf = FFI::MemoryPointer.new(:uint8, [bytes.bytesize, 1].max)
        buf.put_bytes(0, bytes)
        TornadoRS.check(Lib.tornado_http_request_add_header_bytes(@r, name.to_s, buf, bytes.bytesize),
                        "header #{name}")
      end
    end

    def body(body)
      if body.nil? || body.is_a?(String)
        data = body.to_s.b
        buf = FFI::MemoryPointer.new(:uint8, [data.bytesize, 1].max)
        buf.put_bytes(0, data)
        set(:body, buf, data.bytesize)
      elsif body.respond_to?(:read) || body.respond_to?(:each)
        need_fetch(:body)
        hold(:body_producer, PRODUCE, Producer.new(@fetch, body))
      else
        raise ArgumentError, "body: a String, an IO-like object (#read) or an Enumerable of Strings"
      end
    end

    def tls(options)
      pem(:ca_pem, options[:ca_pem]) if options.key?(:ca_pem)
      if options.key?(:client_cert) || options.key?(:client_key)
        set(:client_cert, options[:client_cert]&.to_s, options[:client_key]&.to_s)
      end
      if options.key?(:client_cert_pem) || options.key?(:client_key_pem)
        cert = pointer_for(options[:client_cert_pem])
        key = pointer_for(options[:client_key_pem])
        set(:client_cert_pem, cert[0], cert[1], key[0], key[1])
      end
      alpn(options[:alpn]) if options.key?(:alpn)
    end

    def pem(name, text)
      ptr, len = pointer_for(text)
      set(name, ptr, len)
    end

    def pointer_for(text)
      return [nil, 0] if text.nil?

      data = text.to_s.b
      buf = FFI::MemoryPointer.new(:uint8, [data.bytesize, 1].max)
      buf.put_bytes(0, data)
      [buf, data.bytesize]
    end

    def alpn(protocols)
      return set(:alpn, nil, 0) if protocols.nil?

      names = protocols.map { |p| FFI::MemoryPointer.from_string(p.to_s) }
      array = FFI::MemoryPointer.new(:pointer, [names.size, 1].max)
      array.write_array_of_pointer(names) unless names.empty?
      set(:alpn, array, names.size)
    end

    def auth(options)
      return unless options.key?(:auth_username) || options.key?(:auth_password)

      set(:auth, options[:auth_username]&.to_s, options[:auth_password]&.to_s)
    end

    def proxy(options)
      return unless options[:proxy_host]

      set(:proxy, options[:proxy_host].to_s, Integer(options[:proxy_port] || 0),
          options[:proxy_username]&.to_s, options[:proxy_password]&.to_s)
    end

    def callbacks(options)
      if options[:streaming_callback]
        need_fetch(:streaming_callback)
        hold(:streaming_callback_async, STREAM, Streamer.new(@fetch, options[:streaming_callback]))
      end
      if options[:header_callback]
        need_fetch(:header_callback)
        hold(:header_callback, HEADER, HeaderLines.new(@fetch, options[:header_callback]))
      end
      return unless options[:body_producer]

      need_fetch(:body_producer)
      hold(:body_producer_async, BODY_WRITE, AsyncProducer.new(@fetch, options[:body_producer]))
    end

    def need_fetch(name)
      raise ArgumentError, "#{name} cannot be a client default (give it to each fetch)" if @fetch.nil?
    end

    def hold(setter, trampoline, handler)
      key = Registry.hold(handler)
      code = Lib.send(:"tornado_http_request_set_#{setter}", @r, trampoline, key, DROP)
      return if code.zero?

      Registry.release(key)
      TornadoRS.check(code, setter.to_s)
    end
  end

  # The blocks a fetch runs for the library. Each catches what its block
  # raises: the fetch fails, and the fetch keeps the exception to raise.
  class FetchBlock
    def initialize(fetch, block)
      @fetch = fetch
      @loop = fetch.instance_variable_get(:@loop)
      @block = block
    end

    private

    def guarded(fallback, &block)
      Guard.call(@loop, fallback, on_error: ->(e) { @fetch.block_raised(e) }, &block)
    end

    # A failed future, for the library: fails the fetch.
    def failed_future
      future = Lib.tornado_future_new(@loop.ptr)
      Lib.tornado_future_set_error(future, ERR_USER, "a Ruby block raised") unless future.null?
      future
    end

    # A TornadoRS::Future returned by a block: one reference for the library.
    def handed_over(result)
      return FFI::Pointer::NULL unless result.is_a?(Future)

      Lib.tornado_future_ref(result.ptr)
    end
  end

  # streaming_callback: each body chunk (binary String).
  class Streamer < FetchBlock
    def chunk(data, len)
      bytes = len.zero? ? String.new(encoding: Encoding::BINARY) : data.read_bytes(len)
      guarded(-> { failed_future }) { handed_over(@block.call(bytes)) }
    end
  end

  # header_callback: each header line as received (binary String with its line end).
  class HeaderLines < FetchBlock
    def line(data, len)
      raised = false
      guarded(-> { raised = true }) { @block.call(data.read_bytes(len)) }
      @fetch.cancel if raised
    end
  end

  # body: an IO-like object (#read) or an Enumerable of String chunks.
  class Producer < FetchBlock
    def initialize(fetch, source)
      super(fetch, nil)
      @source = source
      @chunks = source.respond_to?(:read) ? nil : source.each
      @left = nil
    end

    def produce(buf, cap)
      guarded(-1) do
        data = next_bytes(cap)
        next 0 if data.nil?

        buf.put_bytes(0, data)
        data.bytesize
      end
    end

    private

    def next_bytes(cap)
      if @chunks.nil?
        data = @source.read(cap)
        return data.nil? || data.empty? ? nil : data.b
      end
      while @left.nil? || @left.empty?
        begin
          @left = @chunks.next.to_s.b
        rescue StopIteration
          return nil
        end
      end
      data = @left.byteslice(0, cap)
      @left = @left.byteslice(cap..)
      data
    end
  end

  # body_producer: called with a BodyWriter; returns nil when the body is
  # complete on return, or a TornadoRS::Future done when it is.
  class AsyncProducer < FetchBlock
    def produce(writer_ptr)
      writer = BodyWriter.new(@loop, writer_ptr)
      @fetch.keep_writer(writer)
      guarded(-> { failed_future }) { handed_over(@block.call(writer)) }
    end
  end

  # What a body_producer writes the upload with (Tornado's `write`).
  class BodyWriter
    def initialize(loop, ptr)
      @loop = loop
      @ptr = ptr
    end

    # Queues bytes; returns a Future done once they reached the socket.
    def write(data)
      raise Error.new(ERR_CLOSED, "the upload is over") if @ptr.nil?

      bytes = data.to_s.b
      buf = FFI::MemoryPointer.new(:uint8, [bytes.bytesize, 1].max)
      buf.put_bytes(0, bytes)
      Future.new(@loop, TornadoRS.check_ptr(Lib.tornado_http_body_writer_write(@ptr, buf, bytes.bytesize), "write"))
    end
    alias << write

    def close
      return if @ptr.nil?

      Lib.tornado_http_body_writer_free(@ptr)
      @ptr = nil
    end
  end

  # A lookup the resolver block answers (later): #add addresses, then #done
  # (or #fail). Each reply is answered once.
  class ResolveReply
    def initialize(ptr, port)
      @ptr = ptr
      @port = port
    end

    def add(address, port = @port)
      raise Error.new(ERR_ALREADY_DONE, "the lookup was answered") if @ptr.nil?

      TornadoRS.check(Lib.tornado_resolve_reply_add(@ptr, address.to_s, Integer(port)), "resolve add")
      self
    end

    def done(addresses = [])
      addresses.each { |a| a.is_a?(Array) ? add(*a) : add(a) }
      finish { Lib.tornado_resolve_reply_done(@ptr) }
    end

    def fail(message = nil)
      finish { Lib.tornado_resolve_reply_fail(@ptr, ERR_RESOLVE, message&.to_s) }
    end

    def answered?
      @ptr.nil?
    end

    private

    def finish
      raise Error.new(ERR_ALREADY_DONE, "the lookup was answered") if @ptr.nil?

      code = yield
      @ptr = nil
      TornadoRS.check(code, "resolve")
    end
  end

  # The client's resolver block.
  class Resolver
    def initialize(loop, block)
      @loop = loop
      @block = block
    end

    def resolve(host, port, family, reply_ptr)
      reply = ResolveReply.new(reply_ptr, port)
      later = @block.arity == 4 || @block.arity.negative? && @block.parameters.size >= 4
      Guard.call(@loop) do
        if later
          @block.call(host, port, family, reply)
        else
          reply.done(Array(@block.call(host, port, family)))
        end
      end
    ensure
      # A block that raised (or answered nothing, synchronously) fails the
      # lookup; its exception is raised by the loop.
      reply.fail("the resolver raised") if !later && !reply.answered?
    end
  end

  FETCH_DROP = FFI::Function.new(:void, [:pointer]) { |ud| Registry.release(ud)&.dropped }
  STREAM = FFI::Function.new(:pointer, %i[pointer size_t pointer]) do |data, len, ud|
    Registry.get(ud)&.chunk(data, len) || FFI::Pointer::NULL
  end
  HEADER = FFI::Function.new(:void, %i[pointer size_t pointer]) { |line, len, ud| Registry.get(ud)&.line(line, len) }
  PRODUCE = FFI::Function.new(:int64, %i[pointer size_t pointer]) { |buf, cap, ud| Registry.get(ud)&.produce(buf, cap) || -1 }
  BODY_WRITE = FFI::Function.new(:pointer, %i[pointer pointer]) do |writer, ud|
    Registry.get(ud)&.produce(writer) || FFI::Pointer::NULL
  end
  RESOLVE = FFI::Function.new(:void, %i[string uint16 int pointer pointer]) do |host, port, family, reply, ud|
    handler = Registry.get(ud)
    if handler
      handler.resolve(host, port, family, reply)
    else
      Lib.tornado_resolve_reply_fail(reply, ERR_RESOLVE, "no resolver")
    end
  end
end
