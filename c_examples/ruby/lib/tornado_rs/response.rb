# frozen_string_literal: true

module TornadoRS
  # A response copied into Ruby objects (Tornado's HTTPResponse).
  #
  # #body is in the encoding its Content-Type's charset names (a String in
  # UTF-8 for "text/html; charset=utf-8", in ISO-8859-1 for
  # "charset=latin1", ...; the bytes as received, not transcoded), and
  # binary (ASCII-8BIT) when no charset is declared or Ruby knows none by
  # that name. Header values are UTF-8 text; bytes that are not UTF-8 are
  # read as Latin-1 (as Tornado does).
  class HTTPResponse
    attr_reader :code, :reason, :headers, :body, :effective_url, :error, :error_code, :os_error,
                :request_time, :start_time, :time_info, :version

    # The HTTP version it came over: "HTTP/1.0", "HTTP/1.1", "HTTP/2", or
    # nil when no response was received (#version is 10, 11, 20 or 0).
    def http_version
      return nil if @version.zero?

      @version == 20 ? "HTTP/2" : "HTTP/#{@version / 10}.#{@version % 10}"
    end

    # From a tornado_http_response* (borrowed: everything is copied now).
    def self.from_ptr(ptr)
      new.tap { |r| r.send(:read, ptr) }
    end

    # The response of a fetch that got none (code 599), as the library's
    # callback-style fetch reports one.
    def self.failed(url, error_code, message, os_error)
      new.tap { |r| r.send(:fail_with, url, error_code, message, os_error) }
    end

    # The first value of header `name` (case-insensitive), or nil.
    def [](name)
      @headers.find { |n, _| n.casecmp?(name) }&.last
    end

    # Every value of header `name`, in received order.
    def get_all(name)
      @headers.select { |n, _| n.casecmp?(name) }.map(&:last)
    end

    # The charset Content-Type declares, or nil.
    def charset
      TornadoRS.charset_of(self["content-type"])
    end

    # Tornado's rethrow: raises the error when the fetch failed (599) or carries one.
    def rethrow
      return unless @error

      errno = @os_error.positive? ? SystemCallError.new(@error, @os_error) : nil
      raise HTTPClientError.for(@error_code, @error, @os_error, @code == 599 ? nil : self, url: @effective_url),
            cause: errno
    end

    def inspect
      "#<TornadoRS::HTTPResponse #{@code} #{@effective_url}#{@error ? " error=#{@error.inspect}" : ''}>"
    end

    private

    def read(ptr)
      @code = Lib.tornado_http_response_code(ptr)
      @version = Lib.tornado_http_response_version(ptr)
      @reason = Lib.tornado_http_response_reason(ptr).force_encoding(Encoding::UTF_8)
      len = FFI::MemoryPointer.new(:size_t)
      @headers = parse_headers(Lib.tornado_http_response_header_block(ptr, len), len.read(:size_t))
      data = Lib.tornado_http_response_body(ptr, len)
      n = len.read(:size_t)
      @body = n.positive? ? data.read_bytes(n) : String.new(encoding: Encoding::BINARY)
      @body.force_encoding(TornadoRS.encoding_for(self["content-type"]))
      @effective_url = Lib.tornado_http_response_effective_url(ptr)
      @error = Lib.tornado_http_response_error(ptr)
      @error_code = Lib.tornado_http_response_error_code(ptr)
      @os_error = Lib.tornado_http_response_os_error(ptr)
      @request_time = Lib.tornado_http_response_request_time(ptr)
      @start_time = Time.at(Lib.tornado_http_response_start_time(ptr))
      info = Lib::TimeInfo.new
      Lib.tornado_http_response_time_info(ptr, info)
      @time_info = info.members.to_h { |m| [m, info[m]] }
    end

    def fail_with(url, error_code, message, os_error)
      @code = 599
      @version = 0
      @reason = "Unknown"
      @headers = []
      @body = String.new(encoding: Encoding::BINARY)
      @effective_url = url
      @error = message
      @error_code = error_code
      @os_error = os_error
      @request_time = 0.0
      @start_time = Time.now
      @time_info = {}
    end

    # "Name: value\r\n" lines, values byte for byte.
    def parse_headers(block, len)
      return [] if block.null? || len.zero?

      block.read_bytes(len).split("\r\n").map do |line|
        name, value = line.split(":", 2)
        [name.force_encoding(Encoding::UTF_8), TornadoRS.header_text(value.to_s.strip)]
      end
    end
  end

  # A header value as text: UTF-8 when it is, else Latin-1 read into UTF-8.
  def self.header_text(bytes)
    text = bytes.dup.force_encoding(Encoding::UTF_8)
    return text if text.valid_encoding?

    bytes.dup.force_encoding(Encoding::ISO_8859_1).encode(Encoding::UTF_8)
  end

  # The charset parameter of a Content-Type value, or nil.
  def self.charset_of(content_type)
    return nil unless content_type

    content_type.split(";")[1..].each do |param|
      key, value = param.split("=", 2)
      next unless key.strip.casecmp?("charset") && value

      value = value.strip
      value = value[1...-1] if value.start_with?('"') && value.end_with?('"') && value.size >= 2
      return value unless value.empty?
    end
    nil
  end

  # The Encoding a Content-Type's charset names; binary when none or unknown.
  def self.encoding_for(content_type)
    name = charset_of(content_type)
    return Encoding::BINARY unless name

    Encoding.find(name)
  rescue ArgumentError
    Encoding::BINARY
  end
end
