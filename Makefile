# Top-level commands (see README.md).
#
#   make example   build the library (release) and run the main example
#   make test      every check CI runs: format, lint, header, Rust and C tests,
#                  examples under valgrind
#   make bench     build c_examples/build/bench (see benches/RESULTS.md)

CARGO ?= cargo

example:
	$(CARGO) build --release
	$(MAKE) -C c_examples build/hello build/libtornado_rs.so.0
	./c_examples/build/hello

test:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) build --release
	@# The committed header must be what the build generates.
	git diff --exit-code -- include/tornado_rs.h
	@test -z "$$(git status --porcelain -- include)" || { echo "include/ has uncommitted generated files"; exit 1; }
	TORNADO_VALGRIND=1 $(CARGO) test
	$(MAKE) -C c_examples c-header-check cxx-header-check
	$(MAKE) -C c_examples run
	$(MAKE) -C c_examples valgrind

bench:
	$(CARGO) build --release
	$(MAKE) -C c_examples bench

.PHONY: example test bench
