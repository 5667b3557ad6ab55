# frozen_string_literal: true

# The gem: built with `gem build` (carrying the library), installed with
# `gem install --local` into a scratch GEM_HOME, then required and used by
# a program outside the source tree with no TORNADO_RS_LIB.
require_relative "helper"

class TestGem < Minitest::Test
  def test_version_is_the_librarys
    cargo = File.read(File.join(RUBY_DIR, "..", "..", "Cargo.toml"))[/^version = "(.*)"/, 1]
    assert_equal cargo, TornadoRS::VERSION
    assert_equal cargo, TornadoRS.version
  end

  def test_build_install_require_and_fetch
    server = TinyServer.new
    Dir.mktmpdir("tornado-rs-gem") do |dir|
      out, ok = run_cmd("make", "-C", RUBY_DIR, "gem", "LIB=#{File.expand_path(TornadoRS::Lib::PATH)}")
      assert ok, out
      gem_file = Dir[File.join(RUBY_DIR, "build", "tornado_rs-#{TornadoRS::VERSION}-*.gem")].max_by { |f| File.mtime(f) }
      refute_nil gem_file, out
      home = File.join(dir, "gems")
      env = { "GEM_HOME" => home, "GEM_PATH" => ([home] + Gem.path).join(File::PATH_SEPARATOR),
              "TORNADO_RS_LIB" => nil, "RUBYLIB" => nil, "RUBYOPT" => nil }
      out, ok = run_cmd(env, "gem", "install", "--local", "--no-document", gem_file)
      assert ok, out
      assert_match(/Successfully installed tornado_rs-#{Regexp.escape(TornadoRS::VERSION)}/, out)
      program = <<~RUBY
        require "tornado_rs"
        loop = TornadoRS::IOLoop.new
        client = TornadoRS::HTTPClient.new(loop)
        response = client.fetch("#{server.url('/from-the-gem')}")
        puts "lib=\#{TornadoRS::Lib::PATH}"
        puts "src=\#{$LOADED_FEATURES.grep(%r{/tornado_rs\\.rb\\z}).first}"
        puts "body=\#{response.body}"
      RUBY
      out, ok = run_cmd(env, RbConfig.ruby, "-e", program, chdir: dir)
      assert ok, out
      assert_includes out, "body=GET /from-the-gem"
      assert_match(%r{^lib=#{Regexp.escape(home)}/gems/tornado_rs-[^/]+/lib/tornado_rs/native/libtornado_rs\.so$}, out)
      assert_match(%r{^src=#{Regexp.escape(home)}/gems/tornado_rs-}, out)
    end
  ensure
    server&.close
  end

  def run_cmd(*args, chdir: Dir.pwd)
    env = args.first.is_a?(Hash) ? args.shift : {}
    reader, writer = IO.pipe
    pid = spawn(env, *args, out: writer, err: writer, chdir: chdir)
    writer.close
    out = reader.read
    Process.wait(pid)
    [out, $?.success?]
  ensure
    reader&.close
  end
end
