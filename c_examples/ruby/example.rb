# frozen_string_literal: true

# example.rb: what a Ruby program does with tornado_rs — fetches that wait,
# three of them at once in fibers (Async), and the callback style with a
# timer. The server is WEBrick on 127.0.0.1, answering after 0.2 s.
require "webrick"
require "async"
require_relative "lib/tornado_rs"

server = WEBrick::HTTPServer.new(BindAddress: "127.0.0.1", Port: 0,
                                 Logger: WEBrick::Log.new(File::NULL), AccessLog: [])
server.mount_proc("/") do |req, res|
  sleep 0.2
  res["Content-Type"] = "text/plain; charset=utf-8"
  res.body = "h\u00e9llo from #{req.path}"
end
Thread.new { server.start }
base = "http://127.0.0.1:#{server.config[:Port]}"

loop = TornadoRS::IOLoop.new
client = TornadoRS::HTTPClient.new(loop)

response = client.fetch("#{base}/one")
puts "#{response.code} #{response.body} (#{response.body.encoding})"

started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
Async do |task|
  bodies = %w[/a /b /c].map { |path| task.async { client.fetch(base + path).body } }.map(&:wait)
  elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
  puts "#{bodies.join(', ')} in #{elapsed.round(2)} s (three 0.2 s fetches in fibers)"
end

begin
  client.fetch("http://127.0.0.1:1/")
rescue TornadoRS::HTTPClientError => e
  puts "#{e.kind} error, cause #{e.cause.class}"
end

loop.call_later(0) { puts "timer fired" }
client.fetch("#{base}/callback") do |r|
  puts "callback got #{r.code}"
  loop.stop
end
loop.start

client.close
loop.close
server.shutdown
puts "tornado_rs #{TornadoRS.version} from Ruby: done"
