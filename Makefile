# Top-level commands (see README.md).
#
#   make example   build the library (release) and run the main example
#   make test      every check CI runs: format, lint, header, Rust and C tests,
#                  examples under valgrind
#   make bench     build c_examples/build/bench (see benches/RESULTS.md)
#   make install PREFIX=/usr/local   library (+ SONAME links), static library,
#                  headers and pkg-config file (DESTDIR is honoured)

CARGO ?= cargo
PREFIX ?= /usr/local
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
SOMAJOR := $(firstword $(subst ., ,$(VERSION)))
LIBDEST = $(DESTDIR)$(PREFIX)/lib

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
	$(MAKE) install-check
	$(MAKE) bindings-test
	$(MAKE) sanitize
	$(MAKE) tsan
	$(MAKE) fuzz

# The C test programs, tornado-fetch and every example built with
# AddressSanitizer and UndefinedBehaviorSanitizer (LeakSanitizer included),
# against the library.
SANITIZE_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
SANITIZE_CC = cc $(SANITIZE_FLAGS)
sanitize:
	TORNADO_TEST_CC="$(SANITIZE_CC)" $(CARGO) test --test c_programs --test fetch_cli
	$(MAKE) -C c_examples run BUILD=build-asan CC="$(SANITIZE_CC)" CXX="g++ $(SANITIZE_FLAGS)"

# tests/thread_safety.rs (8 threads calling add_callback and stop through the
# C ABI while the loop runs) under ThreadSanitizer, with the standard library
# and tornado_rs rebuilt instrumented (-Zbuild-std needs rust-src).
tsan:
	rustup component list --installed | grep -q '^rust-src' || rustup component add rust-src
	cd tsan && RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zsanitizer=thread" TSAN_OPTIONS="halt_on_error=1" \
		$(CARGO) test -Zbuild-std --target $$(rustc -vV | sed -n 's/^host: //p') --test thread_safety

# Every cargo-fuzz target for FUZZ_SECONDS each (see fuzz/run.sh).
FUZZ_SECONDS ?= 60
fuzz:
	bash fuzz/run.sh $(FUZZ_SECONDS)

# Go (race detector), Ruby (minitest, GC.stress, Async) and Python (pytest) bindings,
# each with its example.
bindings-test:
	cd c_examples/python && python3 -m pytest -q test_tornado_rs.py && python3 example.py
	@# The Python package: its own tests, then Tornado's own HTTP client tests
	@# against RsAsyncHTTPClient (python/tests/test_tornado_suite.py).
	cd python && PYTHONPATH=. python3 -m pytest -q tests/test_package.py tests/test_websocket.py
	cd python && PYTHONPATH=.:tests python3 -m tornado.test.runtests test_tornado_suite
	@# Go: linked through pkg-config, here the in-tree tornado_rs.pc (make
	@# go-pkgconfig); the library is found at run time through LD_LIBRARY_PATH.
	@# The tests run under the race detector, then under AddressSanitizer
	@# (the binding's C glue; its leaks are counted by TestNoRequestRecordLeaks).
	$(MAKE) go-pkgconfig
	cd c_examples/go && export PKG_CONFIG_PATH=$(CURDIR)/build/pkgconfig-intree LD_LIBRARY_PATH=$(CURDIR)/target/release && \
		test -z "$$(gofmt -l .)" && go vet ./... && go test -race -count=1 ./... && \
		go test -asan -count=1 ./tornado && go run ./fetch100
	@# Ruby: minitest (exceptions, Ctrl-C, fibers under Async, the gem built
	@# and installed into a scratch GEM_HOME), then the example.
	$(MAKE) -C c_examples/ruby test

# A tornado_rs.pc for the library as built in this tree (include/ and
# target/release), for cgo's `#cgo pkg-config: tornado_rs` without `make
# install`: PKG_CONFIG_PATH=$(CURDIR)/build/pkgconfig-intree (see
# c_examples/go/README.md).
go-pkgconfig:
	@mkdir -p build/pkgconfig-intree
	sed -e 's|@PREFIX@|$(CURDIR)|' -e 's|@VERSION@|$(VERSION)|' -e 's|^libdir=.*|libdir=$(CURDIR)/target/release|' \
		tornado_rs.pc.in > build/pkgconfig-intree/tornado_rs.pc

install:
	$(CARGO) build --release
	install -d $(LIBDEST)/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 755 target/release/libtornado_rs.so $(LIBDEST)/libtornado_rs.so.$(VERSION)
	ln -sfn libtornado_rs.so.$(VERSION) $(LIBDEST)/libtornado_rs.so.$(SOMAJOR)
	ln -sfn libtornado_rs.so.$(SOMAJOR) $(LIBDEST)/libtornado_rs.so
	install -m 644 target/release/libtornado_rs.a $(LIBDEST)/libtornado_rs.a
	install -m 644 include/tornado_rs.h include/tornado_rs.hpp $(DESTDIR)$(PREFIX)/include/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' tornado_rs.pc.in > $(LIBDEST)/pkgconfig/tornado_rs.pc

# Installs into a scratch prefix and builds every example out of tree with
# pkg-config only (what a user of the installed library does), runs a few,
# links hello statically, and builds and runs the Go example against the
# installed tornado_rs.pc.
install-check:
	@rm -rf build/install-check && mkdir -p build/install-check
	$(MAKE) install PREFIX=$(CURDIR)/build/install-check/prefix
	cd build/install-check && \
	export PKG_CONFIG_PATH=$(CURDIR)/build/install-check/prefix/lib/pkgconfig && \
	for src in $(filter-out %/header_check.c,$(wildcard $(CURDIR)/c_examples/*.c)); do \
		cc -std=c99 -D_GNU_SOURCE -Wall -Werror -o $$(basename $$src .c) $$src $$(pkg-config --cflags --libs tornado_rs) \
			-lpthread -lm -Wl,-rpath,$(CURDIR)/build/install-check/prefix/lib || exit 1; \
	done && \
	g++ -std=c++17 -Wall -Wextra -Werror -pthread -o cpp_hello $(CURDIR)/c_examples/cpp_hello.cpp \
		$$(pkg-config --cflags --libs tornado_rs) -Wl,-rpath,$(CURDIR)/build/install-check/prefix/lib && \
	g++ -std=c++20 -Wall -Wextra -Werror -pthread -o cpp_fetch $(CURDIR)/c_examples/cpp_fetch.cpp \
		$$(pkg-config --cflags --libs tornado_rs) -Wl,-rpath,$(CURDIR)/build/install-check/prefix/lib && \
	./hello && ./cpp_hello && ./cpp_fetch > /dev/null && ./timers > /dev/null && \
	cc -std=c99 -Wall -Werror -o hello-static $(CURDIR)/c_examples/hello.c $$(pkg-config --static --cflags tornado_rs) \
		$(CURDIR)/build/install-check/prefix/lib/libtornado_rs.a -lpthread -ldl -lm && ./hello-static && \
	readelf -d prefix/lib/libtornado_rs.so | grep -q 'SONAME.*libtornado_rs.so.$(SOMAJOR)' && \
	(cd $(CURDIR)/c_examples/go && go build -o $(CURDIR)/build/install-check/fetch100 ./fetch100) && \
	LD_LIBRARY_PATH=$(CURDIR)/build/install-check/prefix/lib ./fetch100 > /dev/null && \
	echo "install-check: OK (every example built out of tree from pkg-config; shared and static)"

bench:
	$(CARGO) build --release
	$(MAKE) -C c_examples bench

.PHONY: example test bench install install-check bindings-test go-pkgconfig fuzz sanitize tsan
