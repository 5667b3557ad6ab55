# frozen_string_literal: true

require_relative "lib/tornado_rs/version"

# The gem carries the C library when lib/tornado_rs/native/libtornado_rs.so
# is there (`make -C c_examples/ruby gem` puts a release build there): it is
# then a gem for this platform. Without it the gem is pure Ruby and loads
# libtornado_rs.so.0 from the system (`make install`) or $TORNADO_RS_LIB.
Gem::Specification.new do |spec|
  spec.name = "tornado_rs"
  spec.version = TornadoRS::VERSION
  spec.summary = "Tornado's IOLoop and HTTP client (tornado_rs, in Rust) for Ruby, through ffi"
  spec.description = "Blocks as callbacks, fetches that wait (and overlap under a Fiber scheduler), " \
                     "exceptions from blocks raised again, Ctrl-C that works."
  spec.authors = ["tornado_rs developers"]
  spec.license = "Apache-2.0"
  spec.required_ruby_version = ">= 3.0"
  spec.add_dependency "ffi", ">= 1.15"
  native = "lib/tornado_rs/native/libtornado_rs.so"
  spec.files = Dir["lib/**/*.rb"] + ["README.md"]
  if File.exist?(File.join(__dir__, native))
    spec.files << native
    spec.platform = Gem::Platform.local
  end
  spec.require_paths = ["lib"]
end
