# frozen_string_literal: true

# tornado_rs from Ruby, through the ffi gem: Tornado's IOLoop, timers and
# callbacks as blocks, and its HTTP client with keep-alive.
#
#   require "tornado_rs"
#   loop = TornadoRS::IOLoop.new
#   client = TornadoRS::HTTPClient.new(loop)
#   response = client.fetch("http://127.0.0.1:8000/")          # waits
#   client.fetch("http://127.0.0.1:8000/") { |r| puts r.code; loop.stop }
#   loop.start                                                  # callback style
#
# See README.md beside the gemspec for exceptions, Ctrl-C and fibers.
require_relative "tornado_rs/version"
require_relative "tornado_rs/lib"
require_relative "tornado_rs/core"
require_relative "tornado_rs/ioloop"
require_relative "tornado_rs/future"
require_relative "tornado_rs/response"
require_relative "tornado_rs/http_client"
require_relative "tornado_rs/websocket"
