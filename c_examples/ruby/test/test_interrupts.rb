# frozen_string_literal: true

# Ctrl-C (SIGINT -> Interrupt), Thread#raise and Timeout end a running loop
# or a waiting fetch at once; the process then exits without spinning.
require_relative "helper"

class Boom < StandardError; end

class TestInterrupts < Minitest::Test
  LIB = File.join(RUBY_DIR, "lib")

  # Runs `script` in a child ruby (the binding loaded), which prints "ready"
  # once it is about to wait; sends it `signal`; returns [status, output,
  # seconds from the signal to its exit, CPU seconds the child used].
  def run_child(script, signal: "INT")
    reader, writer = IO.pipe
    cpu_before = Process.times.cutime + Process.times.cstime
    pid = spawn(RbConfig.ruby, "-I", LIB, "-rtornado_rs", "-e", script, out: writer, err: writer)
    writer.close
    output = +""
    assert reader.wait_readable(10), "the child never got ready"
    output << reader.readpartial(4096) until output.include?("ready")
    sleep 0.2 # well inside its wait
    sent = monotonic
    Process.kill(signal, pid)
    status = wait_child(pid, 5)
    elapsed = monotonic - sent
    unless status
      Process.kill("KILL", pid)
      Process.wait(pid)
      flunk "the child did not exit within 5 s of SIG#{signal} (output: #{output})"
    end
    output << reader.read
    cpu = Process.times.cutime + Process.times.cstime - cpu_before
    [status, output, elapsed, cpu]
  ensure
    reader&.close
  end

  def test_ctrl_c_ends_loop_start
    silent = SilentServer.new
    status, output, elapsed, cpu = run_child(<<~RUBY)
      loop = TornadoRS::IOLoop.new
      client = TornadoRS::HTTPClient.new(loop)
      client.fetch("#{silent.url}") { }
      loop.call_later(30) { puts "timer fired"; loop.stop }
      $stdout.puts "ready"; $stdout.flush
      begin
        loop.start
      rescue Interrupt
        puts "Interrupt from loop.start"
        raise
      end
    RUBY
    assert_includes output, "Interrupt from loop.start"
    assert status.signaled? && status.termsig == Signal.list["INT"], "died of SIGINT as Ruby does: #{status.inspect}"
    assert_operator elapsed, :<, 2.0, "exited at once"
    assert_operator cpu, :<, 3.0, "no spinning (child CPU #{cpu} s)"
  ensure
    silent&.close
  end

  def test_ctrl_c_ends_a_waiting_fetch
    silent = SilentServer.new
    status, output, elapsed, = run_child(<<~RUBY)
      loop = TornadoRS::IOLoop.new
      client = TornadoRS::HTTPClient.new(loop)
      $stdout.puts "ready"; $stdout.flush
      begin
        client.fetch("#{silent.url}")
      rescue Interrupt
        puts "Interrupt from fetch"
        exit 3
      end
    RUBY
    assert_includes output, "Interrupt from fetch"
    assert_equal 3, status.exitstatus
    assert_operator elapsed, :<, 2.0
  ensure
    silent&.close
  end

  def test_thread_raise_ends_loop_start_and_exit_does_not_spin
    status, output, elapsed, cpu = run_child(<<~RUBY, signal: "USR1")
      class Boom < StandardError; end
      thread = Thread.new do
        loop = TornadoRS::IOLoop.new
        loop.call_later(30) { loop.stop }
        Thread.current[:ready] = true
        loop.start
      end
      sleep 0.01 until thread[:ready]
      trap("USR1") { thread.raise(Boom, "raised into the loop's thread") }
      $stdout.puts "ready"; $stdout.flush
      begin
        thread.join
      rescue Boom => e
        puts "joined: \#{e.message}"
      end
      exit 0
    RUBY
    assert_includes output, "joined: raised into the loop's thread"
    assert status.success?, output
    assert_operator elapsed, :<, 2.0
    assert_operator cpu, :<, 3.0, "no spinning at exit (child CPU #{cpu} s)"
  end

  # The main thread ends while another runs a loop with a fetch pending:
  # the process exits at once, without spinning.
  def test_exit_with_a_loop_running_in_another_thread
    silent = SilentServer.new
    cpu_before = Process.times.cutime + Process.times.cstime
    started = monotonic
    pid = spawn(RbConfig.ruby, "-I", LIB, "-rtornado_rs", "-e", <<~RUBY)
      ready = Queue.new
      Thread.new do
        loop = TornadoRS::IOLoop.new
        client = TornadoRS::HTTPClient.new(loop)
        client.fetch("#{silent.url}") { }
        loop.call_later(30) { loop.stop }
        ready << true
        loop.start
      end
      ready.pop
      sleep 0.2
      exit 0
    RUBY
    status = wait_child(pid, 10)
    unless status
      Process.kill("KILL", pid)
      Process.wait(pid)
      flunk "the process did not exit"
    end
    assert status.success?
    assert_operator monotonic - started, :<, 5.0
    assert_operator Process.times.cutime + Process.times.cstime - cpu_before, :<, 3.0
  ensure
    silent&.close
  end

  def test_thread_raise_in_process
    ready = Queue.new
    thread = Thread.new do
      Thread.current.report_on_exception = false
      loop = TornadoRS::IOLoop.new
      loop.call_later(30) { loop.stop }
      ready << true
      begin
        loop.start
      ensure
        loop.close
      end
    end
    ready.pop
    sleep 0.1
    started = monotonic
    thread.raise(Boom, "stop now")
    assert_raises(Boom) { thread.join(5) }
    assert_operator monotonic - started, :<, 1.0
  end

  def test_thread_raise_into_a_long_callback
    ready = Queue.new
    thread = Thread.new do
      Thread.current.report_on_exception = false
      loop = TornadoRS::IOLoop.new
      loop.add_callback do
        ready << true
        sleep 30 # a block that takes long: the exception reaches it too
      end
      begin
        loop.start
      ensure
        loop.close
      end
    end
    ready.pop
    started = monotonic
    thread.raise(Boom, "into the block")
    error = assert_raises(Boom) { thread.join(5) }
    assert_equal "into the block", error.message
    assert_operator monotonic - started, :<, 1.0
  end

  def test_timeout_cancels_the_fetch_and_closes_its_connection
    silent = SilentServer.new
    loop = TornadoRS::IOLoop.new
    client = TornadoRS::HTTPClient.new(loop)
    started = monotonic
    assert_raises(Timeout::Error) { Timeout.timeout(0.3) { client.fetch(silent.url) } }
    assert_operator monotonic - started, :<, 1.0
    silent.accepted.pop
    loop.call_later(0.3) { loop.stop }
    loop.start
    assert_equal 0, client.active, "the fetch was cancelled"
    Timeout.timeout(2) { silent.closed.pop }
  ensure
    client&.close
    loop&.close
    silent&.close
  end
end
