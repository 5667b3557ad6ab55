# frozen_string_literal: true

require "ffi"

module TornadoRS
  # The C library, through ffi. Nothing here blocks: the loop is waited on
  # from Ruby (IO#wait_readable on its backend fd) and run with
  # tornado_loop_run_once(loop, 0), so Ctrl-C, Thread#raise and a Fiber
  # scheduler all see the wait.
  #
  # Where the library is looked for, first found wins:
  #   1. $TORNADO_RS_LIB (a path to libtornado_rs.so);
  #   2. the copy a built gem carries (lib/tornado_rs/native/);
  #   3. the source tree's target/release and target/debug (running from a checkout);
  #   4. libtornado_rs.so.0 on the dynamic linker's path (`make install`).
  module Lib
    extend FFI::Library

    here = __dir__
    tree = File.expand_path("../../../..", here)
    CANDIDATES = [ENV.fetch("TORNADO_RS_LIB", nil),
                  File.join(here, "native", "libtornado_rs.so"),
                  File.join(tree, "target", "release", "libtornado_rs.so"),
                  File.join(tree, "target", "debug", "libtornado_rs.so")].compact.freeze
    PATH = CANDIDATES.find { |c| File.exist?(c) } || "libtornado_rs.so.0"
    begin
      ffi_lib PATH
    rescue LoadError => e
      raise LoadError, "tornado_rs: cannot load the C library (#{e.message}); looked for " \
                       "#{(CANDIDATES + [PATH]).uniq.join(', ')}: build it (cargo build --release), " \
                       "install it (make install) or set TORNADO_RS_LIB"
    end

    typedef :int32, :code

    callback :callback, [:pointer], :void
    callback :drop_fn, [:pointer], :void
    callback :fd_fn, %i[int uint32 pointer], :void
    callback :future_fn, %i[pointer pointer], :void
    callback :chunk_async_fn, %i[pointer size_t pointer], :pointer
    callback :header_fn, %i[pointer size_t pointer], :void
    callback :producer_fn, %i[pointer size_t pointer], :int64
    callback :body_write_fn, %i[pointer pointer], :pointer
    callback :resolve_fn, %i[string uint16 int pointer pointer], :void
    callback :ws_message_fn, %i[pointer pointer], :void
    callback :ws_ping_fn, %i[pointer size_t pointer], :void

    # Curl's timings of a fetch (tornado_http_time_info).
    class TimeInfo < FFI::Struct
      layout :queue, :double, :namelookup, :double, :connect, :double, :appconnect, :double,
             :pretransfer, :double, :starttransfer, :double, :total, :double
    end

    # Library.
    attach_function :tornado_version, [], :string
    attach_function :tornado_version_number, [], :int32
    attach_function :tornado_code_name, [:code], :string
    attach_function :tornado_last_error, [], :string

    # Loop.
    attach_function :tornado_loop_new, [], :pointer
    attach_function :tornado_loop_free, [:pointer], :code
    attach_function :tornado_loop_run_once, %i[pointer double], :code
    attach_function :tornado_loop_backend_fd, [:pointer], :int
    attach_function :tornado_loop_backend_timeout, [:pointer], :double
    attach_function :tornado_loop_time, [:pointer], :double
    attach_function :tornado_loop_add_callback_full, %i[pointer callback pointer drop_fn], :code
    attach_function :tornado_loop_call_later_full, %i[pointer double callback pointer drop_fn], :uint64
    attach_function :tornado_loop_call_at_full, %i[pointer double callback pointer drop_fn], :uint64
    attach_function :tornado_loop_remove_timeout, %i[pointer uint64], :code
    attach_function :tornado_loop_add_handler_full, %i[pointer int uint32 fd_fn pointer drop_fn], :code
    attach_function :tornado_loop_update_handler, %i[pointer int uint32], :code
    attach_function :tornado_loop_remove_handler, %i[pointer int], :code
    attach_function :tornado_periodic_new, %i[pointer double callback pointer drop_fn], :pointer
    attach_function :tornado_periodic_set_jitter, %i[pointer double], :code
    attach_function :tornado_periodic_start, [:pointer], :code
    attach_function :tornado_periodic_stop, [:pointer], :code
    attach_function :tornado_periodic_is_running, [:pointer], :bool
    attach_function :tornado_periodic_free, [:pointer], :code

    # Futures.
    attach_function :tornado_future_new, [:pointer], :pointer
    attach_function :tornado_future_ref, [:pointer], :pointer
    attach_function :tornado_future_unref, [:pointer], :void
    attach_function :tornado_future_done, [:pointer], :bool
    attach_function :tornado_future_set_result, %i[pointer pointer drop_fn], :code
    attach_function :tornado_future_set_error, %i[pointer code string], :code
    attach_function :tornado_future_cancel, [:pointer], :code
    attach_function :tornado_future_result, [:pointer], :pointer
    attach_function :tornado_future_error, %i[pointer pointer], :code
    attach_function :tornado_future_os_error, [:pointer], :int
    attach_function :tornado_future_add_done_callback_full, %i[pointer future_fn pointer drop_fn], :code

    # HTTP client options.
    attach_function :tornado_http_client_options_new, [], :pointer
    attach_function :tornado_http_client_options_free, [:pointer], :void
    attach_function :tornado_http_client_options_set_max_clients, %i[pointer size_t], :code
    attach_function :tornado_http_client_options_set_max_buffer_size, %i[pointer size_t], :code
    attach_function :tornado_http_client_options_set_max_header_size, %i[pointer size_t], :code
    attach_function :tornado_http_client_options_set_max_body_size, %i[pointer uint64], :code
    attach_function :tornado_http_client_options_set_idle_timeout, %i[pointer double], :code
    attach_function :tornado_http_client_options_set_max_idle_per_host, %i[pointer size_t], :code
    attach_function :tornado_http_client_options_add_hostname_mapping, %i[pointer string string], :code
    attach_function :tornado_http_client_options_add_endpoint_mapping, %i[pointer string uint16 string uint16], :code
    attach_function :tornado_http_client_options_set_defaults, %i[pointer pointer], :code
    attach_function :tornado_http_client_options_set_resolver, %i[pointer resolve_fn pointer drop_fn], :code
    attach_function :tornado_http_client_options_set_http_version, %i[pointer uint32], :code
    attach_function :tornado_http_client_options_set_cookies, %i[pointer bool], :code
    attach_function :tornado_http_client_options_set_dns_cache_ttl, %i[pointer double], :code
    attach_function :tornado_http_client_options_set_http2_ping, %i[pointer double double], :code
    attach_function :tornado_http_client_options_set_public_suffix_file, %i[pointer string], :code
    attach_function :tornado_resolve_reply_add, %i[pointer string uint16], :code
    attach_function :tornado_resolve_reply_done, [:pointer], :code
    attach_function :tornado_resolve_reply_fail, %i[pointer code string], :code

    # HTTP client.
    attach_function :tornado_http_client_new, %i[pointer pointer], :pointer
    attach_function :tornado_http_client_free, [:pointer], :code
    attach_function :tornado_http_client_cancel_all, [:pointer], :code
    attach_function :tornado_http_client_queued, [:pointer], :size_t
    attach_function :tornado_http_client_active, [:pointer], :size_t
    attach_function :tornado_http_client_idle_connections, [:pointer], :size_t
    attach_function :tornado_http_client_fetch, %i[pointer pointer], :pointer
    attach_function :tornado_http_client_connections_opened, [:pointer], :uint64
    attach_function :tornado_http_client_http2_connections, [:pointer], :size_t
    attach_function :tornado_http_client_load_cookies, %i[pointer string], :code
    attach_function :tornado_http_client_save_cookies, %i[pointer string], :code
    attach_function :tornado_http_client_clear_cookies, [:pointer], :code
    attach_function :tornado_http_client_cookie_count, [:pointer], :size_t

    # Requests.
    attach_function :tornado_http_request_new, [:string], :pointer
    attach_function :tornado_http_client_request_new, %i[pointer string], :pointer
    attach_function :tornado_http_request_free, [:pointer], :void
    attach_function :tornado_http_request_set_method, %i[pointer string], :code
    attach_function :tornado_http_request_add_header_bytes, %i[pointer string pointer size_t], :code
    attach_function :tornado_http_request_set_body, %i[pointer pointer size_t], :code
    attach_function :tornado_http_request_set_connect_timeout, %i[pointer double], :code
    attach_function :tornado_http_request_set_request_timeout, %i[pointer double], :code
    attach_function :tornado_http_request_set_follow_redirects, %i[pointer bool], :code
    attach_function :tornado_http_request_set_max_redirects, %i[pointer int], :code
    attach_function :tornado_http_request_set_user_agent, %i[pointer string], :code
    attach_function :tornado_http_request_set_auth, %i[pointer string string], :code
    attach_function :tornado_http_request_set_auth_mode, %i[pointer string], :code
    attach_function :tornado_http_request_set_decompress_response, %i[pointer bool], :code
    attach_function :tornado_http_request_set_validate_cert, %i[pointer bool], :code
    attach_function :tornado_http_request_set_ca_certs, %i[pointer string], :code
    attach_function :tornado_http_request_set_ca_pem, %i[pointer pointer size_t], :code
    attach_function :tornado_http_request_set_client_cert, %i[pointer string string], :code
    attach_function :tornado_http_request_set_client_cert_pem, %i[pointer pointer size_t pointer size_t], :code
    attach_function :tornado_http_request_set_min_tls_version, %i[pointer string], :code
    attach_function :tornado_http_request_set_alpn, %i[pointer pointer size_t], :code
    attach_function :tornado_http_request_set_server_name, %i[pointer string], :code
    attach_function :tornado_http_request_set_allow_ipv6, %i[pointer bool], :code
    attach_function :tornado_http_request_set_network_interface, %i[pointer string], :code
    attach_function :tornado_http_request_set_if_modified_since, %i[pointer double], :code
    attach_function :tornado_http_request_set_proxy, %i[pointer string uint16 string string], :code
    attach_function :tornado_http_request_set_proxy_ca_certs, %i[pointer string], :code
    attach_function :tornado_http_request_set_proxy_validate_cert, %i[pointer bool], :code
    attach_function :tornado_http_request_set_allow_nonstandard_methods, %i[pointer bool], :code
    attach_function :tornado_http_request_set_expect_100_continue, %i[pointer bool], :code
    attach_function :tornado_http_request_set_http_version, %i[pointer uint32], :code
    attach_function :tornado_http_request_set_unix_socket, %i[pointer string], :code
    attach_function :tornado_http_request_set_streaming_callback_async, %i[pointer chunk_async_fn pointer drop_fn], :code
    attach_function :tornado_http_request_set_header_callback, %i[pointer header_fn pointer drop_fn], :code
    attach_function :tornado_http_request_set_body_producer, %i[pointer producer_fn pointer drop_fn], :code
    attach_function :tornado_http_request_set_body_producer_async, %i[pointer body_write_fn pointer drop_fn], :code
    attach_function :tornado_http_body_writer_write, %i[pointer pointer size_t], :pointer
    attach_function :tornado_http_body_writer_free, [:pointer], :void

    # Responses.
    attach_function :tornado_http_response_code, [:pointer], :int
    attach_function :tornado_http_response_version, [:pointer], :int
    attach_function :tornado_http_response_reason, [:pointer], :string
    attach_function :tornado_http_response_body, %i[pointer pointer], :pointer
    attach_function :tornado_http_response_header_block, %i[pointer pointer], :pointer
    attach_function :tornado_http_response_effective_url, [:pointer], :string
    attach_function :tornado_http_response_error, [:pointer], :string
    attach_function :tornado_http_response_error_code, [:pointer], :code
    attach_function :tornado_http_response_os_error, [:pointer], :int
    attach_function :tornado_http_response_request_time, [:pointer], :double
    attach_function :tornado_http_response_start_time, [:pointer], :double
    attach_function :tornado_http_response_time_info, %i[pointer pointer], :code

    # WebSocket client.
    attach_function :tornado_websocket_options_new, [], :pointer
    attach_function :tornado_websocket_options_free, [:pointer], :void
    attach_function :tornado_websocket_options_add_subprotocol, %i[pointer string], :code
    attach_function :tornado_websocket_options_set_max_message_size, %i[pointer size_t], :code
    attach_function :tornado_websocket_options_set_compression, %i[pointer int], :code
    attach_function :tornado_websocket_options_set_no_context_takeover, %i[pointer bool bool], :code
    attach_function :tornado_websocket_options_set_server_max_window_bits, %i[pointer int], :code
    attach_function :tornado_websocket_options_set_client_max_window_bits, %i[pointer int], :code
    attach_function :tornado_websocket_options_set_ping, %i[pointer double double], :code
    attach_function :tornado_websocket_options_set_max_write_buffer, %i[pointer size_t], :code
    attach_function :tornado_websocket_options_set_close_timeout, %i[pointer double], :code
    attach_function :tornado_websocket_connect, %i[pointer pointer pointer], :pointer
    attach_function :tornado_websocket_ref, [:pointer], :pointer
    attach_function :tornado_websocket_unref, [:pointer], :void
    attach_function :tornado_websocket_read_message, [:pointer], :pointer
    attach_function :tornado_websocket_message_is_binary, [:pointer], :bool
    attach_function :tornado_websocket_message_data, %i[pointer pointer], :pointer
    attach_function :tornado_websocket_set_message_callback, %i[pointer ws_message_fn pointer drop_fn], :code
    attach_function :tornado_websocket_set_ping_callback, %i[pointer ws_ping_fn pointer drop_fn], :code
    attach_function :tornado_websocket_write_message, %i[pointer pointer size_t bool], :pointer
    attach_function :tornado_websocket_ping, %i[pointer pointer size_t], :pointer
    attach_function :tornado_websocket_close, %i[pointer int string], :pointer
    attach_function :tornado_websocket_close_code, [:pointer], :int
    attach_function :tornado_websocket_close_reason, [:pointer], :string
    attach_function :tornado_websocket_subprotocol, [:pointer], :string
    attach_function :tornado_websocket_extensions, [:pointer], :string
    attach_function :tornado_websocket_is_closed, [:pointer], :bool
    attach_function :tornado_websocket_error, [:pointer], :code
    attach_function :tornado_websocket_buffered_amount, [:pointer], :size_t
  end

  # The tornado_code values (TORNADO_OK and TORNADO_ERR_*).
  OK = 0
  ERR_INVALID = 1
  ERR_WRONG_THREAD = 2
  ERR_RUNNING = 3
  ERR_ALREADY_DONE = 4
  ERR_NOT_FOUND = 5
  ERR_EXISTS = 6
  ERR_TIMEOUT = 7
  ERR_CANCELLED = 8
  ERR_PANIC = 9
  ERR_IO = 10
  ERR_CLOSED = 11
  ERR_NOT_DONE = 12
  ERR_BAD_FD = 13
  ERR_RESOLVE = 14
  ERR_CONNECT = 15
  ERR_TLS = 16
  ERR_PROTOCOL = 17
  ERR_TOO_LARGE = 18
  ERR_TOO_MANY_REDIRECTS = 19
  ERR_INVALID_URL = 20
  ERR_USER = 1000

  # The HTTP versions a fetch may use (the http_version option; the
  # symbols :any, :http1_1, :http2 and :http2_prior_knowledge name them too).
  HTTP_VERSION_ANY = 0
  HTTP_VERSION_1_1 = 1
  HTTP_VERSION_2 = 2
  HTTP_VERSION_2_PRIOR_KNOWLEDGE = 3
  HTTP_VERSIONS = { any: HTTP_VERSION_ANY, http1_1: HTTP_VERSION_1_1, http2: HTTP_VERSION_2,
                    http2_prior_knowledge: HTTP_VERSION_2_PRIOR_KNOWLEDGE }.freeze

  # An http_version option's value: a symbol of HTTP_VERSIONS or an HTTP_VERSION_* integer.
  def self.http_version_value(version)
    return HTTP_VERSIONS.fetch(version) { raise ArgumentError, "http_version: one of #{HTTP_VERSIONS.keys.inspect}" } if version.is_a?(Symbol)

    v = Integer(version)
    raise Error.new(ERR_INVALID, "http_version: #{version.inspect} is no HTTP_VERSION_* value") if v.negative?

    v
  end

  # Event bits of IOLoop#add_handler (the epoll values, as in Tornado).
  READ = 1
  WRITE = 4
  ERROR = 8
end
