//! Tests that need an IPv6 loopback (`::1`): Happy Eyeballs across address
//! families, echo over IPv6.
//!
//! Such a test calls [`require_ipv6_loopback`] first, which fails it, with
//! the way out, when `::1` cannot be bound: a machine without IPv6 must
//! not pass these tests without running them. CI has `::1` (`.ci/run`
//! turns it on, or stops with the reason). Where it cannot be had, build
//! the tests with `TORNADO_TEST_NO_IPV6=1` in the environment: build.rs then
//! sets `cfg(tornado_no_ipv6)`, and each such test carries
//! `#[cfg_attr(tornado_no_ipv6, ignore = "...")]`, so `cargo test` reports
//! it as ignored, with the reason, never as passed.

/// Panics, saying how to fix it, when `::1` cannot be bound.
pub fn require_ipv6_loopback() {
    if let Err(e) = std::net::TcpListener::bind("[::1]:0") {
        panic!(
            "this test needs an IPv6 loopback, and binding [::1]:0 failed: {e}. \
             Turn it on (sysctl -w net.ipv6.conf.lo.disable_ipv6=0), or run with \
             TORNADO_TEST_NO_IPV6=1 to have the IPv6 tests reported as ignored"
        );
    }
}
