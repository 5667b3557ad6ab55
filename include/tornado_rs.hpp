// tornado_rs.hpp: a header-only C++17 wrapper over tornado_rs.h.
//
// Owning handles (move-only, released in the destructor), lambdas as
// callbacks (kept on the heap until the library drops them: each C
// registration that takes a drop function gets one that deletes the
// lambda), and errors as exceptions (tornado::Error carries the code and
// tornado_last_error()'s message).
//
//   tornado::Loop loop;
//   loop.call_later(0.1, [&] { loop.stop(); });
//   loop.start();
#ifndef TORNADO_RS_HPP
#define TORNADO_RS_HPP

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tornado_rs.h"

namespace tornado {

/// A failed call: the code (TORNADO_ERR_*) and the library's message.
class Error : public std::runtime_error {
public:
    Error(tornado_code code, const std::string &what) : std::runtime_error(what), code_(code) {}
    tornado_code code() const noexcept { return code_; }

private:
    tornado_code code_;
};

namespace detail {
inline std::string last_error(const char *context) {
    const char *msg = tornado_last_error();
    return std::string(context) + ": " + (msg ? msg : "(no message)");
}

inline void check(tornado_code rc, const char *context) {
    if (rc != TORNADO_OK) throw Error(rc, last_error(context));
}

template <typename T>
T *check_ptr(T *ptr, const char *context) {
    if (!ptr) throw Error(TORNADO_ERR_INVALID, last_error(context));
    return ptr;
}

// A heap-held std::function and the C trampolines that call and delete it.
using Thunk = std::function<void()>;
inline void call_thunk(void *ud) { (*static_cast<Thunk *>(ud))(); }
inline void drop_thunk(void *ud) { delete static_cast<Thunk *>(ud); }
}  // namespace detail

class Loop;

/// A reference to a future (tornado_future_ref/unref). Copying adds a reference.
class Future {
public:
    Future() = default;
    /// Adopts one reference the caller owns.
    explicit Future(tornado_future *f) noexcept : f_(f) {}
    Future(const Future &o) noexcept : f_(o.f_ ? tornado_future_ref(o.f_) : nullptr) {}
    Future(Future &&o) noexcept : f_(std::exchange(o.f_, nullptr)) {}
    Future &operator=(Future o) noexcept {
        std::swap(f_, o.f_);
        return *this;
    }
    ~Future() { tornado_future_unref(f_); }

    tornado_future *get() const noexcept { return f_; }
    bool done() const noexcept { return tornado_future_done(f_); }
    /// TORNADO_OK, or the error's code (message in `message`, if given).
    tornado_code error(std::string *message = nullptr) const {
        const char *msg = nullptr;
        tornado_code rc = tornado_future_error(f_, &msg);
        if (message) *message = msg ? msg : "";
        return rc;
    }
    /// The value pointer (borrowed; owned by the future).
    void *result() const noexcept { return tornado_future_result(f_); }
    void cancel() { detail::check(tornado_future_cancel(f_), "tornado_future_cancel"); }
    /// Calls `cb(*this)` from the loop once done (or on the next iteration if done).
    /// `cb` is deleted once the library drops it: after the call, or uncalled
    /// when the future is freed pending or the loop is freed first.
    void then(std::function<void(Future &)> cb) {
        using Fn = std::function<void(Future &)>;
        auto *held = new Fn(std::move(cb));
        tornado_code rc = tornado_future_add_done_callback_full(
            f_,
            [](tornado_future *f, void *ud) {
                Future view(tornado_future_ref(f));
                (*static_cast<Fn *>(ud))(view);
            },
            held, [](void *ud) { delete static_cast<Fn *>(ud); });
        if (rc != TORNADO_OK) {
            delete held;
            detail::check(rc, "tornado_future_add_done_callback");
        }
    }

private:
    tornado_future *f_ = nullptr;
};

/// An event loop (tornado.ioloop.IOLoop). Move-only; freed in the destructor.
class Loop {
public:
    Loop() : loop_(detail::check_ptr(tornado_loop_new(), "tornado_loop_new")) {}
    Loop(const Loop &) = delete;
    Loop &operator=(const Loop &) = delete;
    Loop(Loop &&o) noexcept : loop_(std::exchange(o.loop_, nullptr)) {}
    ~Loop() {
        if (loop_) tornado_loop_free(loop_);
    }

    tornado_loop *get() const noexcept { return loop_; }
    void start() { detail::check(tornado_loop_start(loop_), "tornado_loop_start"); }
    /// Any thread.
    void stop() noexcept { tornado_loop_stop(loop_); }
    double time() const noexcept { return tornado_loop_time(loop_); }

    /// Runs `fn` on the next iteration. Any thread.
    void add_callback(std::function<void()> fn) {
        auto *thunk = new detail::Thunk(std::move(fn));
        tornado_code rc = tornado_loop_add_callback_full(loop_, detail::call_thunk, thunk, detail::drop_thunk);
        if (rc != TORNADO_OK) {
            delete thunk;  // refused: the drop function is never called
            detail::check(rc, "tornado_loop_add_callback_full");
        }
    }

    /// Runs `fn` after `delay_s` seconds; returns the timeout id.
    std::uint64_t call_later(double delay_s, std::function<void()> fn) {
        auto *thunk = new detail::Thunk(std::move(fn));
        std::uint64_t id = tornado_loop_call_later_full(loop_, delay_s, detail::call_thunk, thunk, detail::drop_thunk);
        if (id == 0) {
            delete thunk;
            throw Error(TORNADO_ERR_INVALID, detail::last_error("tornado_loop_call_later_full"));
        }
        return id;
    }

    void remove_timeout(std::uint64_t id) { detail::check(tornado_loop_remove_timeout(loop_, id), "tornado_loop_remove_timeout"); }

    /// Runs the loop until `f` is done (at most `timeout_s`; 0: no limit);
    /// returns the future's code.
    tornado_code run_sync(const Future &f, double timeout_s = 0) { return tornado_loop_run_sync(loop_, f.get(), timeout_s); }

    Future sleep(double seconds) { return Future(detail::check_ptr(tornado_sleep(loop_, seconds), "tornado_sleep")); }

private:
    tornado_loop *loop_;
};

/// A read-only view of a response (borrowed from its future or callback).
class ResponseView {
public:
    explicit ResponseView(const tornado_http_response *r) noexcept : r_(r) {}
    int code() const noexcept { return tornado_http_response_code(r_); }
    std::string_view reason() const noexcept { return tornado_http_response_reason(r_); }
    std::string_view body() const noexcept {
        std::size_t n = 0;
        const std::uint8_t *b = tornado_http_response_body(r_, &n);
        return {reinterpret_cast<const char *>(b), n};
    }
    /// The first value of a header (case-insensitive), or nullptr.
    const char *header(const char *name) const noexcept { return tornado_http_response_header(r_, name); }
    std::vector<std::pair<std::string, std::string>> headers() const {
        std::vector<std::pair<std::string, std::string>> all;
        std::size_t n = tornado_http_response_header_count(r_);
        for (std::size_t i = 0; i < n; i++) {
            const char *name = nullptr, *value = nullptr;
            if (tornado_http_response_header_at(r_, i, &name, &value) == TORNADO_OK) all.emplace_back(name, value);
        }
        return all;
    }
    std::string_view effective_url() const noexcept { return tornado_http_response_effective_url(r_); }
    /// nullptr when a response was received.
    const char *error() const noexcept { return tornado_http_response_error(r_); }
    double request_time() const noexcept { return tornado_http_response_request_time(r_); }

private:
    const tornado_http_response *r_;
};

/// A request (tornado.httpclient.HTTPRequest). Setters return *this.
class Request {
public:
    explicit Request(const std::string &url)
        : r_(detail::check_ptr(tornado_http_request_new(url.c_str()), "tornado_http_request_new")) {}
    Request(const Request &) = delete;
    Request &operator=(const Request &) = delete;
    Request(Request &&o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
    ~Request() { tornado_http_request_free(r_); }

    const tornado_http_request *get() const noexcept { return r_; }
    Request &method(const std::string &m) { return set(tornado_http_request_set_method(r_, m.c_str()), "set_method"); }
    Request &header(const std::string &name, const std::string &value) {
        return set(tornado_http_request_add_header(r_, name.c_str(), value.c_str()), "add_header");
    }
    Request &body(std::string_view data) {
        return set(tornado_http_request_set_body(r_, reinterpret_cast<const std::uint8_t *>(data.data()), data.size()),
                   "set_body");
    }
    Request &connect_timeout(double s) { return set(tornado_http_request_set_connect_timeout(r_, s), "set_connect_timeout"); }
    Request &request_timeout(double s) { return set(tornado_http_request_set_request_timeout(r_, s), "set_request_timeout"); }
    Request &follow_redirects(bool f) { return set(tornado_http_request_set_follow_redirects(r_, f), "set_follow_redirects"); }
    Request &validate_cert(bool v) { return set(tornado_http_request_set_validate_cert(r_, v), "set_validate_cert"); }
    Request &ca_certs(const std::string &path) { return set(tornado_http_request_set_ca_certs(r_, path.c_str()), "set_ca_certs"); }
    Request &user_agent(const std::string &ua) { return set(tornado_http_request_set_user_agent(r_, ua.c_str()), "set_user_agent"); }

private:
    Request &set(tornado_code rc, const char *what) {
        detail::check(rc, what);
        return *this;
    }
    tornado_http_request *r_;
};

/// An HTTP client (tornado.httpclient.AsyncHTTPClient) with keep-alive.
class HttpClient {
public:
    explicit HttpClient(Loop &loop, std::size_t max_clients = 10) {
        tornado_http_client_options *o = tornado_http_client_options_new();
        tornado_http_client_options_set_max_clients(o, max_clients);
        c_ = tornado_http_client_new(loop.get(), o);
        tornado_http_client_options_free(o);
        detail::check_ptr(c_, "tornado_http_client_new");
    }
    HttpClient(const HttpClient &) = delete;
    HttpClient &operator=(const HttpClient &) = delete;
    ~HttpClient() {
        if (c_) tornado_http_client_free(c_);
    }

    /// The future form: its result() is a tornado_http_response* (see
    /// response_of); it fails only when no response was received.
    Future fetch(const Request &r) {
        return Future(detail::check_ptr(tornado_http_client_fetch(c_, r.get()), "tornado_http_client_fetch"));
    }

    /// The callback form: `cb` is called exactly once, from the loop (not if
    /// the loop is freed first). It is deleted once the library drops it:
    /// after the call, or uncalled when the client is freed after the loop.
    void fetch(const Request &r, std::function<void(const ResponseView &)> cb) {
        using Fn = std::function<void(const ResponseView &)>;
        auto *held = new Fn(std::move(cb));
        tornado_code rc = tornado_http_client_fetch_cb_full(
            c_, r.get(),
            [](const tornado_http_response *resp, void *ud) { (*static_cast<Fn *>(ud))(ResponseView(resp)); },
            held, [](void *ud) { delete static_cast<Fn *>(ud); });
        if (rc != TORNADO_OK) {
            delete held;
            detail::check(rc, "tornado_http_client_fetch_cb");
        }
    }

    static ResponseView response_of(const Future &f) {
        return ResponseView(static_cast<const tornado_http_response *>(f.result()));
    }

private:
    tornado_http_client *c_ = nullptr;
};

inline std::string version() { return tornado_version(); }

}  // namespace tornado

#endif  // TORNADO_RS_HPP
