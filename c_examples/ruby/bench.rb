# frozen_string_literal: true

# bench.rb: tornado_rs from Ruby beside Net::HTTP, both in fibers under
# Async, against the same keep-alive server on 127.0.0.1 (a threaded Ruby
# responder). Prints seconds for each workload (best of 3).
#
#   ruby bench.rb [small_fetches=200] [fibers=20]
require "async"
require "net/http"
require "socket"
require_relative "lib/tornado_rs"

SMALL = Integer(ARGV[0] || 200)
FIBERS = Integer(ARGV[1] || 20)

# Keep-alive HTTP/1.1 responder: "ok" at once, or after ?delay=seconds.
server = TCPServer.new("127.0.0.1", 0)
Thread.new do
  loop do
    conn = server.accept
    Thread.new(conn) do |c|
      while (line = c.gets)
        delay = line[/delay=([\d.]+)/, 1]
        nil while (h = c.gets) && h != "\r\n"
        sleep Float(delay) if delay
        c.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")
      end
    rescue StandardError
      nil
    ensure
      c.close
    end
  end
end
PORT = server.addr[1]

def best_of(n = 3)
  Array.new(n) do
    t = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    yield
    Process.clock_gettime(Process::CLOCK_MONOTONIC) - t
  end.min
end

# Each fiber runs `per` fetches with its own (keep-alive) connection or client slot.
def in_fibers(count, per, &fetch)
  Async do |task|
    Array.new(count) { task.async { per.times { fetch.call } } }.each(&:wait)
  end
end

loop = TornadoRS::IOLoop.new
client = TornadoRS::HTTPClient.new(loop, max_clients: FIBERS)
tornado = ->(path) { raise "bad" unless client.fetch("http://127.0.0.1:#{PORT}#{path}").body == "ok" }
net_http = lambda do
  conns = {}
  lambda do |path|
    http = (conns[Fiber.current] ||= Net::HTTP.start("127.0.0.1", PORT))
    raise "bad" unless http.get(path).body == "ok"
  end
end

results = {
  "3 x 300 ms fetches in 3 fibers" => [
    best_of { in_fibers(3, 1) { tornado.call("/?delay=0.3") } },
    best_of { get = net_http.call; in_fibers(3, 1) { get.call("/?delay=0.3") } }
  ],
  "#{SMALL} small fetches from #{FIBERS} fibers" => [
    best_of { in_fibers(FIBERS, SMALL / FIBERS) { tornado.call("/") } },
    best_of { get = net_http.call; in_fibers(FIBERS, SMALL / FIBERS) { get.call("/") } }
  ],
  "#{SMALL} small fetches in a row" => [
    best_of { SMALL.times { tornado.call("/") } },
    best_of { http = Net::HTTP.start("127.0.0.1", PORT); SMALL.times { http.get("/") }; http.finish }
  ]
}
puts format("%-36s %12s %12s", "workload", "tornado_rs", "Net::HTTP")
results.each { |name, (t, n)| puts format("%-36s %11.3fs %11.3fs", name, t, n) }
client.close
loop.close
