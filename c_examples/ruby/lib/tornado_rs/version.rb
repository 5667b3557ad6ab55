# frozen_string_literal: true

module TornadoRS
  # The gem's version: the library's (Cargo.toml), checked by the tests.
  VERSION = "0.1.0"
end
