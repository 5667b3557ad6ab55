# frozen_string_literal: true

# example.rb: a timer and an HTTP fetch from Ruby (the server is a
# one-line Ruby TCP responder on 127.0.0.1).
require "socket"
require_relative "tornado_rs"

server = TCPServer.new("127.0.0.1", 0)
Thread.new do
  conn = server.accept
  conn.gets
  conn.write("HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\nhello, ruby\n")
  conn.close
end

loop = TornadoRS::IOLoop.new
client = TornadoRS::HTTPClient.new(loop)
loop.call_later(0) { puts "timer fired" }
client.fetch("http://127.0.0.1:#{server.addr[1]}/") do |response|
  puts "#{response.code} #{response.body}"
  loop.stop
end
loop.start
client.close
loop.close
puts "tornado_rs #{TornadoRS.version} from Ruby: done"
