# frozen_string_literal: true

# Shared by the minitest files: the binding from the source tree and real
# servers on 127.0.0.1 (WEBrick, and plain TCPServer-based ones where a test
# needs to see the connection itself).
require "minitest/autorun"
require "socket"
require "webrick"
require "webrick/https"
require "openssl"
require "logger"
require "rbconfig"
require "tmpdir"
require_relative "../lib/tornado_rs"

RUBY_DIR = File.expand_path("..", __dir__)

# Answers each request with "METHOD PATH" (keep-alive), X-Path: PATH.
class TinyServer
  attr_reader :port

  def initialize
    @server = TCPServer.new("127.0.0.1", 0)
    @port = @server.addr[1]
    @thread = Thread.new do
      loop do
        client = @server.accept
        Thread.new(client) { |c| serve(c) }
      rescue IOError
        break
      end
    end
  end

  def serve(conn)
    while (line = conn.gets)
      method, path, = line.split
      length = 0
      while (header = conn.gets) && header != "\r\n"
        length = header.split(":", 2)[1].to_i if header.downcase.start_with?("content-length")
      end
      conn.read(length) if length.positive?
      body = "#{method} #{path}"
      status = path == "/missing" ? "404 Not Found" : "200 OK"
      conn.write("HTTP/1.1 #{status}\r\nContent-Length: #{body.bytesize}\r\nX-Path: #{path}\r\n\r\n#{body}")
    end
  rescue StandardError
    nil
  ensure
    conn.close
  end

  def url(path = "/")
    "http://127.0.0.1:#{@port}#{path}"
  end

  def close
    @server.close
  end
end

# Accepts connections and never answers; records when each one is closed by
# the client (a cancelled fetch closes its connection).
class SilentServer
  attr_reader :port, :accepted, :closed

  def initialize
    @server = TCPServer.new("127.0.0.1", 0)
    @port = @server.addr[1]
    @accepted = Queue.new
    @closed = Queue.new
    @thread = Thread.new do
      loop do
        conn = @server.accept
        @accepted << Time.now
        Thread.new(conn) do |c|
          c.read # returns at EOF: the client closed
          @closed << Time.now
        rescue StandardError
          @closed << Time.now
        ensure
          c.close
        end
      rescue IOError
        break
      end
    end
  end

  def url(path = "/")
    "http://127.0.0.1:#{@port}#{path}"
  end

  def close
    @server.close
  end
end

# A WEBrick server (HTTP or HTTPS) with the handlers the tests use.
class WebServer
  attr_reader :port, :server

  def initialize(ssl: nil)
    options = { BindAddress: "127.0.0.1", Port: 0, Logger: WEBrick::Log.new(File::NULL),
                AccessLog: [], DoNotReverseLookup: true }
    options.merge!(ssl) if ssl
    @https = !ssl.nil?
    @server = WEBrick::HTTPServer.new(options)
    @port = @server.config[:Port]
    mount_handlers
    @thread = Thread.new { @server.start }
  end

  def url(path = "/")
    "#{@https ? 'https' : 'http'}://127.0.0.1:#{@port}#{path}"
  end

  def close
    @server.shutdown
    @thread.join(5)
  end

  private

  def mount_handlers
    # /delay?s=0.3: answers after s seconds.
    @server.mount_proc("/delay") do |req, res|
      sleep Float(req.query["s"] || "0.3")
      res.body = "slept"
    end
    # /typed?ct=...&hex=...: the bytes `hex` with Content-Type `ct` (none if absent).
    @server.mount_proc("/typed") do |req, res|
      res.body = [req.query["hex"].to_s].pack("H*")
      ct = req.query["ct"]
      ct ? res["Content-Type"] = ct : res.instance_variable_get(:@header).delete("content-type")
    end
    # /echo: the request body back, with what the server saw.
    @server.mount_proc("/echo") do |req, res|
      res.body = req.body.to_s
      res["X-Method"] = req.request_method
      res["X-Transfer-Encoding"] = req["Transfer-Encoding"].to_s
      res["X-Echo-Header"] = req["X-Echo"].to_s
      res["Content-Type"] = "application/octet-stream"
    end
    # /big?n=...: n bytes of a repeated pattern.
    @server.mount_proc("/big") do |req, res|
      n = Integer(req.query["n"] || "100000")
      res.body = ("0123456789abcdef" * ((n / 16) + 1))[0, n]
    end
    # /basic: Basic auth (user "ruby", password "gem").
    @server.mount_proc("/basic") do |req, res|
      WEBrick::HTTPAuth.basic_auth(req, res, "tornado") { |u, p| u == "ruby" && p == "gem" }
      res.body = "basic ok"
    end
    digest = WEBrick::HTTPAuth::DigestAuth.new(
      Realm: "tornado", UserDB: digest_db, Logger: WEBrick::Log.new(File::NULL), Algorithm: "MD5"
    )
    # /digest: Digest auth (RFC 7616, MD5).
    @server.mount_proc("/digest") do |req, res|
      digest.authenticate(req, res)
      res.body = "digest ok"
    end
    # /latin1-header: X-Name: caf\xe9 (a Latin-1 byte, as Tornado encodes header values).
    @server.mount_proc("/latin1-header") { |_req, res| res["X-Name"] = "caf\xe9".b }
    # /redirect: a 302 to /echo.
    @server.mount_proc("/redirect") { |_req, res| res.set_redirect(WEBrick::HTTPStatus::Found, "/echo") }
    # /client-cert: the subject of the client's certificate ("none" without one).
    @server.mount_proc("/client-cert") do |req, res|
      res.body = req.client_cert ? req.client_cert.subject.to_s : "none"
    end
  end

  def digest_db
    file = File.join(Dir.mktmpdir("tornado-rs-digest"), "htdigest")
    db = WEBrick::HTTPAuth::Htdigest.new(file)
    db.set_passwd("tornado", "ruby", "gem")
    db.flush
    db
  end
end

# A CA, a server certificate for 127.0.0.1 and "tornado.test", and a client
# certificate, made with Ruby's OpenSSL.
module TestPKI
  def self.key
    OpenSSL::PKey::EC.generate("prime256v1")
  end

  def self.cert(subject, key, issuer: nil, issuer_key: nil, ca: false, sans: nil)
    cert = OpenSSL::X509::Certificate.new
    cert.version = 2
    cert.serial = rand(1 << 60)
    cert.subject = OpenSSL::X509::Name.parse(subject)
    cert.issuer = issuer ? issuer.subject : cert.subject
    cert.public_key = key
    cert.not_before = Time.now - 60
    cert.not_after = Time.now + 3600
    ext = OpenSSL::X509::ExtensionFactory.new
    ext.subject_certificate = cert
    ext.issuer_certificate = issuer || cert
    cert.add_extension(ext.create_extension("basicConstraints", ca ? "CA:TRUE" : "CA:FALSE", true))
    cert.add_extension(ext.create_extension("keyUsage", ca ? "keyCertSign,cRLSign" : "digitalSignature", true))
    cert.add_extension(ext.create_extension("subjectAltName", sans)) if sans
    cert.sign(issuer_key || key, OpenSSL::Digest.new("SHA256"))
    cert
  end

  def self.build
    ca_key = key
    ca = cert("/CN=tornado_rs test CA", ca_key, ca: true)
    server_key = key
    server = cert("/CN=127.0.0.1", server_key, issuer: ca, issuer_key: ca_key,
                                               sans: "IP:127.0.0.1,DNS:tornado.test")
    client_key = key
    client = cert("/CN=ruby client", client_key, issuer: ca, issuer_key: ca_key)
    { ca: ca, server: server, server_key: server_key, client: client, client_key: client_key }
  end

  def self.pki
    @pki ||= build
  end
end

# Waits (at most `limit` seconds) for a child process; its status, or nil.
def wait_child(pid, limit)
  deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + limit
  loop do
    _, status = Process.waitpid2(pid, Process::WNOHANG)
    return status if status
    return nil if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

    sleep 0.02
  end
end

def monotonic
  Process.clock_gettime(Process::CLOCK_MONOTONIC)
end
