// tornado_rs.hpp: a header-only C++ wrapper over tornado_rs.h (C++17; the
// coroutine part, tornado::Task and `co_await` on futures, needs C++20).
//
//   tornado::Loop loop;
//   tornado::HttpClient http(loop);
//   tornado::Future f = http.fetch(tornado::Request("http://127.0.0.1:8888/"));
//   loop.run_sync(f, 10);
//
// or, in C++20, as a Tornado coroutine reads:
//
//   tornado::Task<std::string> title(tornado::HttpClient &http, std::string url) {
//       tornado::Response r = co_await http.fetch(tornado::Request(url));
//       co_return std::string(r.body());
//   }
//   std::string body = loop.run_sync(title(http, url), 10);
//
// The rules:
//
// - Handles (Loop, Future, HttpClient, Request, IOStream, ...) own what they
//   wrap and release it in their destructor. They are movable (move
//   constructor and move assignment) and not copyable; a second reference to
//   a reference-counted object (a future, a stream) is taken explicitly with
//   share().
// - Callbacks are any callable, move-only ones included (a lambda that
//   captures a std::unique_ptr): they are held in a tornado::Function (a
//   move-only std::function) on the heap until the library drops them. Each
//   registration uses the C API's `_full` form with a drop function, so a
//   callback still pending when its future, request, client or loop goes is
//   deleted (its captures destroyed) without being called: nothing leaks.
// - Errors of calls are exceptions: tornado::Error carries the code
//   (TORNADO_ERR_*) and tornado_last_error()'s message.
// - An exception thrown by a callback never unwinds into the library (that
//   would abort the process): the wrapper catches it where the library calls
//   the callback, ends the Loop call that is running it (start, run_sync,
//   run_once) and rethrows it from there, as it was thrown (same type). Only
//   the first exception of a run is kept; another thrown before the run ends
//   is discarded. A callback with a result hands the library a failure too
//   (a body producer returns -1, an async streaming callback or body
//   producer a failed future, a resolver fails its reply), so the operation
//   it belongs to ends with an error. An exception from a callback that ran
//   outside any Loop call of this wrapper (a loop driven through the C API)
//   is rethrown by the next Loop call on that thread. Inside a coroutine
//   (Task), an exception goes to whoever awaits the task, as in Tornado.
// - Every object belongs to its loop's thread, except Loop::add_callback and
//   Loop::stop, which any thread may call.
#ifndef TORNADO_RS_HPP
#define TORNADO_RS_HPP

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "tornado_rs.h"

// C++20 coroutines: tornado::Task and `co_await` on a tornado::Future.
#if defined(__has_include)
#if __has_include(<coroutine>) && defined(__cpp_impl_coroutine) && __cplusplus >= 202002L
#include <coroutine>
#define TORNADO_RS_COROUTINES 1
#endif
#endif

namespace tornado {

/// A failed call: the code (TORNADO_ERR_*) and the library's message.
class Error : public std::runtime_error {
public:
    Error(tornado_code code, const std::string &what) : std::runtime_error(what), code_(code) {}
    tornado_code code() const noexcept { return code_; }

private:
    tornado_code code_;
};

/// A move-only std::function (C++23's std::move_only_function): holds any
/// callable of the signature, also one that cannot be copied.
template <typename Sig>
class Function;

template <typename R, typename... Args>
class Function<R(Args...)> {
    struct Base {
        virtual ~Base() = default;
        virtual R call(Args... args) = 0;
    };
    template <typename F>
    struct Held final : Base {
        template <typename G>
        explicit Held(G &&g) : fn(std::forward<G>(g)) {}
        R call(Args... args) override { return std::invoke(fn, std::forward<Args>(args)...); }
        F fn;
    };

public:
    Function() noexcept = default;
    Function(std::nullptr_t) noexcept {}
    template <typename F, typename D = std::decay_t<F>,
              typename = std::enable_if_t<!std::is_same_v<D, Function> && std::is_invocable_r_v<R, D &, Args...>>>
    Function(F &&fn) : held_(new Held<D>(std::forward<F>(fn))) {}
    Function(Function &&) noexcept = default;
    Function &operator=(Function &&) noexcept = default;
    Function(const Function &) = delete;
    Function &operator=(const Function &) = delete;

    explicit operator bool() const noexcept { return held_ != nullptr; }
    R operator()(Args... args) {
        if (!held_) throw std::bad_function_call();
        return held_->call(std::forward<Args>(args)...);
    }

    // For the C trampolines: the callable as one heap pointer (userdata),
    // called with invoke() and deleted with drop().
    void *release() noexcept { return held_.release(); }
    static R invoke(void *ud, Args... args) { return static_cast<Base *>(ud)->call(std::forward<Args>(args)...); }
    static void drop(void *ud) noexcept { delete static_cast<Base *>(ud); }

private:
    std::unique_ptr<Base> held_;
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

// The callable of a registration as userdata; an empty one is refused
// (the library would call a null pointer).
template <typename Sig>
void *hold(Function<Sig> &fn, const char *what) {
    if (!fn) throw Error(TORNADO_ERR_INVALID, std::string(what) + ": the callback is empty");
    return fn.release();
}

inline const char *c_str_or_null(const std::optional<std::string> &s) { return s ? s->c_str() : nullptr; }

// ---- Exceptions at the C boundary ----------------------------------------
// Each Loop call that runs callbacks (start, run_sync, run_once) pushes a
// RunFrame on this thread's stack of them; a callback's exception is kept in
// the innermost frame, which then ends its run, and rethrown by that call.
struct RunFrame {
    tornado_loop *loop = nullptr;
    bool stop_on_error = false;      // start(): end it with tornado_loop_stop
    tornado_future *gate = nullptr;  // run_sync(): fail the future it waits on
    std::exception_ptr error;
    RunFrame *outer = nullptr;
};

inline RunFrame *&current_frame() noexcept {
    static thread_local RunFrame *frame = nullptr;
    return frame;
}

// An exception of a callback that ran with no frame (the loop driven
// through the C API): rethrown by the next Loop call on the thread.
inline std::exception_ptr &orphan_error() noexcept {
    static thread_local std::exception_ptr error;
    return error;
}

// Keeps a callback's exception and ends the run.
inline void capture(std::exception_ptr error) noexcept {
    RunFrame *frame = current_frame();
    if (!frame) {
        if (!orphan_error()) orphan_error() = std::move(error);
        return;
    }
    if (frame->error) return;  // the first one wins
    frame->error = std::move(error);
    if (frame->gate && !tornado_future_done(frame->gate))
        tornado_future_set_error(frame->gate, TORNADO_ERR_USER, "a C++ callback threw an exception");
    if (frame->stop_on_error) tornado_loop_stop(frame->loop);
}

// Called inside `catch (...)`.
inline void capture_exception() noexcept { capture(std::current_exception()); }

// A failed future on the running loop, handed back to the library by a
// callback that returns a future and threw (NULL when no loop is running).
inline tornado_future *failed_future() noexcept {
    RunFrame *frame = current_frame();
    if (!frame) return nullptr;
    tornado_future *f = tornado_future_new(frame->loop);
    if (f) tornado_future_set_error(f, TORNADO_ERR_USER, "a C++ callback threw an exception");
    return f;
}

class RunScope {
public:
    RunScope(tornado_loop *loop, bool stop_on_error, tornado_future *gate = nullptr) {
        if (std::exception_ptr pending = std::exchange(orphan_error(), nullptr)) std::rethrow_exception(pending);
        frame_.loop = loop;
        frame_.stop_on_error = stop_on_error;
        frame_.gate = gate;
        frame_.outer = std::exchange(current_frame(), &frame_);
    }
    RunScope(const RunScope &) = delete;
    RunScope &operator=(const RunScope &) = delete;
    ~RunScope() { current_frame() = frame_.outer; }
    void rethrow() {
        current_frame() = frame_.outer;
        if (frame_.error) std::rethrow_exception(std::exchange(frame_.error, nullptr));
    }

private:
    RunFrame frame_;
};

// Runs `fn` and keeps an exception instead of letting it reach the library.
template <typename F>
void guarded(F &&fn) noexcept {
    try {
        fn();
    } catch (...) {
        capture_exception();
    }
}

// The coroutines a Loop runs detached (Loop::spawn): an intrusive list, so
// that the Loop destroys those still suspended when it goes. Defined in
// every language mode: Loop's layout must not depend on it.
struct SpawnedNode {
    SpawnedNode *prev = nullptr, *next = nullptr;
    void (*destroy)(SpawnedNode *) = nullptr;
    bool linked() const noexcept { return next != nullptr; }
    void unlink() noexcept {
        prev->next = next;
        next->prev = prev;
        prev = next = nullptr;
    }
};
struct SpawnedList {
    SpawnedNode head;  // sentinel
    SpawnedList() noexcept { head.prev = head.next = &head; }
    SpawnedList(const SpawnedList &) = delete;
    SpawnedList &operator=(const SpawnedList &) = delete;
    void push(SpawnedNode *n) noexcept {
        n->prev = head.prev;
        n->next = &head;
        head.prev->next = n;
        head.prev = n;
    }
    void destroy_all() noexcept {
        while (head.next != &head) {
            SpawnedNode *n = head.next;
            n->unlink();
            n->destroy(n);
        }
    }
    ~SpawnedList() { destroy_all(); }
};

// The C trampolines for Function<void()>.
inline void call_void(void *ud) {
    guarded([&] { Function<void()>::invoke(ud); });
}
inline void drop_void(void *ud) { Function<void()>::drop(ud); }
}  // namespace detail

class Loop;
class IOStream;
class Response;
#ifdef TORNADO_RS_COROUTINES
template <typename T = void>
class Task;
#endif

/// A reference to a future (tornado_future_ref/unref). Move-only: share()
/// takes another reference.
class Future {
public:
    Future() = default;
    /// Adopts one reference the caller owns.
    explicit Future(tornado_future *f) noexcept : f_(f) {}
    Future(Future &&o) noexcept : f_(std::exchange(o.f_, nullptr)) {}
    Future &operator=(Future &&o) noexcept {
        if (this != &o) {
            tornado_future_unref(f_);
            f_ = std::exchange(o.f_, nullptr);
        }
        return *this;
    }
    Future(const Future &) = delete;
    Future &operator=(const Future &) = delete;
    ~Future() { tornado_future_unref(f_); }

    /// A new pending future of `loop`, completed with set_result/set_error.
    static Future pending(Loop &loop);

    /// Another reference to the same future.
    Future share() const { return Future(f_ ? detail::check_ptr(tornado_future_ref(f_), "tornado_future_ref") : nullptr); }
    tornado_future *get() const noexcept { return f_; }
    /// Gives up the reference (the caller owns it now).
    tornado_future *release() noexcept { return std::exchange(f_, nullptr); }
    explicit operator bool() const noexcept { return f_ != nullptr; }

    bool done() const noexcept { return tornado_future_done(f_); }
    /// TORNADO_OK, or the error's code (message in `message`, if given).
    tornado_code error(std::string *message = nullptr) const {
        const char *msg = nullptr;
        tornado_code rc = tornado_future_error(f_, &msg);
        if (message) *message = msg ? msg : "";
        return rc;
    }
    /// Throws tornado::Error when the future failed (or is not done).
    void check() const {
        std::string message;
        tornado_code rc = error(&message);
        if (rc != TORNADO_OK) throw Error(rc, message.empty() ? tornado_code_name(rc) : message);
    }
    /// The OS error number behind the failure (ECONNREFUSED...), or 0.
    int os_error() const noexcept { return tornado_future_os_error(f_); }
    /// The value pointer (borrowed; owned by the future).
    void *result() const noexcept { return tornado_future_result(f_); }
    /// Completes the future with `value`, owned by it from now on (`drop`
    /// releases it; may be NULL).
    void set_result(void *value = nullptr, tornado_drop_fn drop = nullptr) {
        detail::check(tornado_future_set_result(f_, value, drop), "tornado_future_set_result");
    }
    void set_error(tornado_code code, const std::string &message) {
        detail::check(tornado_future_set_error(f_, code, message.c_str()), "tornado_future_set_error");
    }
    void cancel() { detail::check(tornado_future_cancel(f_), "tornado_future_cancel"); }

    /// Calls `cb(future)` from the loop once done (on the next iteration if
    /// done already). `cb` is deleted once the library drops it: after the
    /// call, or uncalled when the future is freed pending or the loop is
    /// freed first.
    void then(Function<void(Future &)> cb) {
        using Fn = Function<void(Future &)>;
        void *held = detail::hold(cb, "tornado::Future::then");
        tornado_code rc = tornado_future_add_done_callback_full(
            f_,
            [](tornado_future *f, void *ud) {
                detail::guarded([&] {
                    Future view(tornado_future_ref(f));
                    Fn::invoke(ud, view);
                });
            },
            held, Fn::drop);
        if (rc != TORNADO_OK) {
            Fn::drop(held);  // refused: the drop function is never called
            detail::check(rc, "tornado_future_add_done_callback_full");
        }
    }

#ifdef TORNADO_RS_COROUTINES
    /// `co_await future` in a Task: resumes once it is done; throws
    /// tornado::Error if it failed.
    auto operator co_await() const;
#endif

private:
    tornado_future *f_ = nullptr;
};

namespace detail {
// What `co_await` and value() give for a FutureOf<T>.
template <typename T>
struct ValueOf;
template <>
struct ValueOf<void> {
    static void get(const Future &f) { f.check(); }
};
template <>
struct ValueOf<std::string> {
    // The bytes of a stream read (a tornado_buffer), copied.
    static std::string get(const Future &f) {
        f.check();
        std::size_t n = 0;
        const std::uint8_t *data = tornado_buffer_data(static_cast<const tornado_buffer *>(f.result()), &n);
        return std::string(reinterpret_cast<const char *>(data), n);
    }
};
}  // namespace detail

/// The value of a done future as a T (std::string for a stream read,
/// IOStream for a connect, Response for a fetch, void), or tornado::Error
/// if it failed: for then() callbacks, which see a plain Future.
template <typename T>
T value_of(const Future &f) {
    return detail::ValueOf<T>::get(f);
}

/// A future whose value is a T: value() (or `co_await`) gives it, or throws
/// tornado::Error if the future failed. Converts to a plain Future.
template <typename T>
class FutureOf : public Future {
public:
    FutureOf() = default;
    explicit FutureOf(tornado_future *f) noexcept : Future(f) {}
    T value() const { return detail::ValueOf<T>::get(*this); }
    FutureOf share() const { return FutureOf(Future::share().release()); }
#ifdef TORNADO_RS_COROUTINES
    auto operator co_await() const;
#endif
};

/// An event loop (tornado.ioloop.IOLoop). Move-only; freed in the destructor.
class Loop {
public:
    Loop() : loop_(detail::check_ptr(tornado_loop_new(), "tornado_loop_new")) {}
    Loop(const Loop &) = delete;
    Loop &operator=(const Loop &) = delete;
    Loop(Loop &&o) noexcept : loop_(std::exchange(o.loop_, nullptr)), spawned_(std::move(o.spawned_)) {}
    Loop &operator=(Loop &&o) noexcept {
        if (this != &o) {
            release();
            loop_ = std::exchange(o.loop_, nullptr);
            spawned_ = std::move(o.spawned_);
        }
        return *this;
    }
    /// Destroys the coroutines spawned on it that are still suspended, then
    /// frees the loop (pending callbacks are deleted uncalled).
    ~Loop() { release(); }

    tornado_loop *get() const noexcept { return loop_; }

    /// Runs until stop(), or until a callback throws: then that exception
    /// is rethrown from here.
    void start() {
        detail::RunScope scope(loop_, true);
        tornado_code rc = tornado_loop_start(loop_);
        scope.rethrow();
        detail::check(rc, "tornado_loop_start");
    }
    /// One iteration, waiting at most `max_wait_s` for I/O or a timer (0:
    /// do not block). Rethrows a callback's exception.
    void run_once(double max_wait_s = 0) {
        detail::RunScope scope(loop_, false);
        tornado_code rc = tornado_loop_run_once(loop_, max_wait_s);
        scope.rethrow();
        detail::check(rc, "tornado_loop_run_once");
    }
    /// Runs the loop until `f` is done (at most `timeout_s`; 0: no limit);
    /// returns the future's code (TORNADO_ERR_TIMEOUT when the time ran
    /// out, TORNADO_ERR_NOT_DONE when stop() ended the run; tornado::Error
    /// for an empty future). A callback's exception ends the run and is
    /// rethrown from here.
    tornado_code run_sync(const Future &f, double timeout_s = 0) {
        if (f.done()) return f.error();
        // The run waits on a gate done when `f` is (tornado_multi of `f`
        // alone, a future of this loop), so that a callback's exception can
        // end it too, by failing the gate, without a stop request that
        // would outlive the run.
        tornado_future *one = f.get();
        Future gate(detail::check_ptr(tornado_multi(loop_, &one, 1), "tornado_loop_run_sync"));
        detail::RunScope scope(loop_, false, gate.get());
        tornado_code rc = tornado_loop_run_sync(loop_, gate.get(), timeout_s);
        scope.rethrow();
        return rc == TORNADO_OK ? f.error() : rc;
    }

    /// Any thread.
    void stop() noexcept { tornado_loop_stop(loop_); }
    double time() const noexcept { return tornado_loop_time(loop_); }
    /// The pollable epoll fd, for hosts that drive the loop (see run_once).
    int backend_fd() const noexcept { return tornado_loop_backend_fd(loop_); }
    /// Seconds until the next timer or callback is due (-1: none).
    double backend_timeout() const noexcept { return tornado_loop_backend_timeout(loop_); }

    /// Runs `fn` on the next iteration. Any thread.
    void add_callback(Function<void()> fn) {
        void *held = detail::hold(fn, "tornado::Loop::add_callback");
        tornado_code rc = tornado_loop_add_callback_full(loop_, detail::call_void, held, detail::drop_void);
        if (rc != TORNADO_OK) {
            detail::drop_void(held);  // refused: the drop function is never called
            detail::check(rc, "tornado_loop_add_callback_full");
        }
    }

    /// Runs `fn` after `delay_s` seconds; returns the timeout id.
    std::uint64_t call_later(double delay_s, Function<void()> fn) {
        void *held = detail::hold(fn, "tornado::Loop::call_later");
        std::uint64_t id = tornado_loop_call_later_full(loop_, delay_s, detail::call_void, held, detail::drop_void);
        return timeout_id(id, held, "tornado_loop_call_later_full");
    }
    /// Runs `fn` at `when` (time()'s clock); returns the timeout id.
    std::uint64_t call_at(double when, Function<void()> fn) {
        void *held = detail::hold(fn, "tornado::Loop::call_at");
        std::uint64_t id = tornado_loop_call_at_full(loop_, when, detail::call_void, held, detail::drop_void);
        return timeout_id(id, held, "tornado_loop_call_at_full");
    }
    void remove_timeout(std::uint64_t id) { detail::check(tornado_loop_remove_timeout(loop_, id), "tornado_loop_remove_timeout"); }

    /// Calls `fn(fd, events)` whenever `fd` is ready for `events`
    /// (TORNADO_READ | TORNADO_WRITE), until remove_handler(fd); the fd
    /// stays the caller's.
    void add_handler(int fd, std::uint32_t events, Function<void(int, std::uint32_t)> fn) {
        using Fn = Function<void(int, std::uint32_t)>;
        void *held = detail::hold(fn, "tornado::Loop::add_handler");
        tornado_code rc = tornado_loop_add_handler_full(
            loop_, fd, events,
            [](int ready, std::uint32_t ev, void *ud) { detail::guarded([&] { Fn::invoke(ud, ready, ev); }); }, held, Fn::drop);
        if (rc != TORNADO_OK) {
            Fn::drop(held);
            detail::check(rc, "tornado_loop_add_handler_full");
        }
    }
    void update_handler(int fd, std::uint32_t events) {
        detail::check(tornado_loop_update_handler(loop_, fd, events), "tornado_loop_update_handler");
    }
    void remove_handler(int fd) { detail::check(tornado_loop_remove_handler(loop_, fd), "tornado_loop_remove_handler"); }

    /// Done (value NULL) after `seconds`.
    Future sleep(double seconds) { return Future(detail::check_ptr(tornado_sleep(loop_, seconds), "tornado_sleep")); }
    /// Done on the next iteration (Tornado's gen.moment).
    Future moment() { return Future(detail::check_ptr(tornado_moment(loop_), "tornado_moment")); }
    /// Done when every future is (fails with the first error).
    Future multi(const std::vector<const Future *> &futures) {
        std::vector<tornado_future *> raw;
        for (const Future *f : futures) raw.push_back(f ? f->get() : nullptr);
        return Future(detail::check_ptr(tornado_multi(loop_, raw.data(), raw.size()), "tornado_multi"));
    }
    template <typename... Fs>
    Future multi(const Fs &...futures) {
        return multi(std::vector<const Future *>{static_cast<const Future *>(&futures)...});
    }
    /// Completes as `f` does, or fails with TORNADO_ERR_TIMEOUT after `timeout_s`.
    Future with_timeout(const Future &f, double timeout_s) {
        return Future(detail::check_ptr(tornado_with_timeout(loop_, f.get(), timeout_s), "tornado_with_timeout"));
    }

#ifdef TORNADO_RS_COROUTINES
    /// Runs the loop until the task finishes and returns its value (or
    /// rethrows its exception); tornado::Error(TORNADO_ERR_TIMEOUT) after
    /// `timeout_s` (0: no limit), Error(TORNADO_ERR_NOT_DONE) if stop()
    /// ended the run first.
    template <typename T>
    T run_sync(Task<T> &task, double timeout_s = 0);
    template <typename T>
    T run_sync(Task<T> &&task, double timeout_s = 0) {
        return run_sync(task, timeout_s);
    }
    /// Runs the task detached (Tornado's spawn_callback): it frees itself
    /// when it finishes; its exception, if any, is rethrown from the Loop
    /// call running it then, as a callback's is (from here if it already
    /// failed). The Loop destroys the ones still suspended when it goes.
    template <typename T>
    void spawn(Task<T> task);
#endif

private:
    void release() noexcept {
        spawned_.reset();
        if (loop_) tornado_loop_free(loop_);
        loop_ = nullptr;
    }
    std::uint64_t timeout_id(std::uint64_t id, void *held, const char *what) {
        if (id == 0) {
            detail::drop_void(held);
            throw Error(TORNADO_ERR_INVALID, detail::last_error(what));
        }
        return id;
    }
    tornado_loop *loop_;
    std::unique_ptr<detail::SpawnedList> spawned_;  // Loop::spawn's coroutines
};

inline Future Future::pending(Loop &loop) {
    return Future(detail::check_ptr(tornado_future_new(loop.get()), "tornado_future_new"));
}

/// A periodic callback (tornado.ioloop.PeriodicCallback): stopped until start().
class PeriodicCallback {
public:
    PeriodicCallback(Loop &loop, double interval_s, Function<void()> fn) {
        void *held = detail::hold(fn, "tornado::PeriodicCallback");
        p_ = tornado_periodic_new(loop.get(), interval_s, detail::call_void, held, detail::drop_void);
        if (!p_) {
            detail::drop_void(held);
            throw Error(TORNADO_ERR_INVALID, detail::last_error("tornado_periodic_new"));
        }
    }
    PeriodicCallback(PeriodicCallback &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    PeriodicCallback &operator=(PeriodicCallback &&o) noexcept {
        if (this != &o) {
            if (p_) tornado_periodic_free(p_);
            p_ = std::exchange(o.p_, nullptr);
        }
        return *this;
    }
    PeriodicCallback(const PeriodicCallback &) = delete;
    PeriodicCallback &operator=(const PeriodicCallback &) = delete;
    ~PeriodicCallback() {
        if (p_) tornado_periodic_free(p_);
    }
    void start() { detail::check(tornado_periodic_start(p_), "tornado_periodic_start"); }
    void stop() { detail::check(tornado_periodic_stop(p_), "tornado_periodic_stop"); }
    bool is_running() const noexcept { return tornado_periodic_is_running(p_); }
    void set_jitter(double jitter) { detail::check(tornado_periodic_set_jitter(p_, jitter), "tornado_periodic_set_jitter"); }

private:
    tornado_periodic *p_ = nullptr;
};

// ---- TLS -------------------------------------------------------------------

/// TLS client settings (validation on by default).
class TlsOptions {
public:
    TlsOptions() : o_(detail::check_ptr(tornado_tls_options_new(), "tornado_tls_options_new")) {}
    TlsOptions(TlsOptions &&o) noexcept : o_(std::exchange(o.o_, nullptr)) {}
    TlsOptions &operator=(TlsOptions &&o) noexcept {
        std::swap(o_, o.o_);
        return *this;
    }
    TlsOptions(const TlsOptions &) = delete;
    TlsOptions &operator=(const TlsOptions &) = delete;
    ~TlsOptions() { tornado_tls_options_free(o_); }
    const tornado_tls_options *get() const noexcept { return o_; }

    TlsOptions &validate_cert(bool v) { return set(tornado_tls_options_set_validate_cert(o_, v), "set_validate_cert"); }
    /// A PEM CA file instead of the system's store (nullopt: the system's).
    TlsOptions &ca_file(const std::optional<std::string> &path) {
        return set(tornado_tls_options_set_ca_file(o_, detail::c_str_or_null(path)), "set_ca_file");
    }
    TlsOptions &client_cert(const std::string &cert_file, const std::string &key_file) {
        return set(tornado_tls_options_set_client_cert(o_, cert_file.c_str(), key_file.c_str()), "set_client_cert");
    }
    TlsOptions &add_alpn(const std::string &protocol) {
        return set(tornado_tls_options_add_alpn(o_, protocol.c_str()), "add_alpn");
    }

private:
    TlsOptions &set(tornado_code rc, const char *what) {
        detail::check(rc, what);
        return *this;
    }
    tornado_tls_options *o_;
};

/// A TLS server's certificate chain and key (PEM files).
class TlsServerConfig {
public:
    TlsServerConfig(const std::string &cert_file, const std::string &key_file)
        : c_(detail::check_ptr(tornado_tls_server_config_new(cert_file.c_str(), key_file.c_str()),
                               "tornado_tls_server_config_new")) {}
    TlsServerConfig(TlsServerConfig &&o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
    TlsServerConfig &operator=(TlsServerConfig &&o) noexcept {
        std::swap(c_, o.c_);
        return *this;
    }
    TlsServerConfig(const TlsServerConfig &) = delete;
    TlsServerConfig &operator=(const TlsServerConfig &) = delete;
    ~TlsServerConfig() { tornado_tls_server_config_free(c_); }
    const tornado_tls_server_config *get() const noexcept { return c_; }
    TlsServerConfig &add_alpn(const std::string &protocol) {
        detail::check(tornado_tls_server_config_add_alpn(c_, protocol.c_str()), "tornado_tls_server_config_add_alpn");
        return *this;
    }

private:
    tornado_tls_server_config *c_;
};

// ---- Streams ---------------------------------------------------------------

/// A stream (tornado.iostream.IOStream): one reference, released in the
/// destructor (the last one closes it). Move-only: share() takes another.
class IOStream {
public:
    IOStream() = default;
    /// Adopts one reference the caller owns.
    explicit IOStream(tornado_iostream *s) noexcept : s_(s) {}
    /// Wraps an open fd (the stream owns it from now on).
    static IOStream from_fd(Loop &loop, int fd) {
        return IOStream(detail::check_ptr(tornado_iostream_new_fd(loop.get(), fd), "tornado_iostream_new_fd"));
    }
    /// The stream of a connect future (tcp_connect, tcp_connect_tls).
    static IOStream of(const Future &f) {
        f.check();
        auto *s = static_cast<tornado_iostream *>(f.result());
        return IOStream(detail::check_ptr(tornado_iostream_ref(s), "tornado_iostream_ref"));
    }
    IOStream(IOStream &&o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    IOStream &operator=(IOStream &&o) noexcept {
        if (this != &o) {
            tornado_iostream_unref(s_);
            s_ = std::exchange(o.s_, nullptr);
        }
        return *this;
    }
    IOStream(const IOStream &) = delete;
    IOStream &operator=(const IOStream &) = delete;
    ~IOStream() { tornado_iostream_unref(s_); }

    IOStream share() const { return IOStream(detail::check_ptr(tornado_iostream_ref(s_), "tornado_iostream_ref")); }
    tornado_iostream *get() const noexcept { return s_; }
    explicit operator bool() const noexcept { return s_ != nullptr; }

    /// Reads up to and including `delimiter` (`max_bytes` 0: no limit).
    FutureOf<std::string> read_until(std::string_view delimiter, std::size_t max_bytes = 0) {
        return FutureOf<std::string>(detail::check_ptr(
            tornado_iostream_read_until(s_, bytes(delimiter), delimiter.size(), max_bytes), "tornado_iostream_read_until"));
    }
    /// Reads `n` bytes (with `partial`, as soon as any are there).
    FutureOf<std::string> read_bytes(std::size_t n, bool partial = false) {
        return FutureOf<std::string>(
            detail::check_ptr(tornado_iostream_read_bytes(s_, n, partial), "tornado_iostream_read_bytes"));
    }
    FutureOf<std::string> read_until_close() {
        return FutureOf<std::string>(
            detail::check_ptr(tornado_iostream_read_until_close(s_), "tornado_iostream_read_until_close"));
    }
    /// Queues `data` (copied); done when it has left the stream's buffer.
    Future write(std::string_view data) {
        return Future(detail::check_ptr(tornado_iostream_write(s_, bytes(data), data.size()), "tornado_iostream_write"));
    }
    void close() { detail::check(tornado_iostream_close(s_), "tornado_iostream_close"); }
    bool closed() const noexcept { return tornado_iostream_closed(s_); }
    /// Why it closed: TORNADO_OK (open or clean close) or the error's code.
    tornado_code error(std::string *message = nullptr) const {
        const char *msg = nullptr;
        tornado_code rc = tornado_iostream_error(s_, &msg);
        if (message) *message = msg ? msg : "";
        return rc;
    }
    int fd() const noexcept { return tornado_iostream_fd(s_); }
    void set_max_buffer_size(std::size_t bytes) {
        detail::check(tornado_iostream_set_max_buffer_size(s_, bytes), "tornado_iostream_set_max_buffer_size");
    }
    void set_nodelay(bool on) { detail::check(tornado_iostream_set_nodelay(s_, on), "tornado_iostream_set_nodelay"); }
    /// Calls `fn` from the loop once the stream closes.
    void set_close_callback(Function<void()> fn) {
        void *held = detail::hold(fn, "tornado::IOStream::set_close_callback");
        tornado_code rc = tornado_iostream_set_close_callback(s_, detail::call_void, held, detail::drop_void);
        if (rc != TORNADO_OK) {
            detail::drop_void(held);
            detail::check(rc, "tornado_iostream_set_close_callback");
        }
    }

    /// TLS as a client on a connected stream; `options` may be NULL (defaults).
    Future start_tls_client(const std::string &server_name, const TlsOptions *options = nullptr) {
        return Future(detail::check_ptr(
            tornado_iostream_start_tls_client(s_, server_name.c_str(), options ? options->get() : nullptr),
            "tornado_iostream_start_tls_client"));
    }
    Future start_tls_server(const TlsServerConfig &config) {
        return Future(detail::check_ptr(tornado_iostream_start_tls_server(s_, config.get()), "tornado_iostream_start_tls_server"));
    }
    bool is_tls() const noexcept { return tornado_iostream_is_tls(s_); }
    /// The ALPN protocol agreed ("" if none).
    std::string alpn_protocol() const { return text(tornado_iostream_alpn_protocol); }
    /// "TLSv1.2" or "TLSv1.3" ("" before the handshake or on a plain stream).
    std::string tls_version() const { return text(tornado_iostream_tls_version); }
    /// The cipher suite's IANA name ("" before the handshake or on a plain stream).
    std::string tls_cipher() const { return text(tornado_iostream_tls_cipher); }
    /// 1: resumed session, 0: full handshake, -1: no handshake done.
    int tls_resumed() const noexcept { return tornado_iostream_tls_resumed(s_); }

private:
    static const std::uint8_t *bytes(std::string_view s) { return reinterpret_cast<const std::uint8_t *>(s.data()); }
    std::string text(std::size_t (*copy)(const tornado_iostream *, char *, std::size_t)) const {
        char buf[128];
        std::size_t n = copy(s_, buf, sizeof buf);
        if (n < sizeof buf) return std::string(buf, n);
        std::string big(n + 1, '\0');
        copy(s_, big.data(), big.size());
        big.resize(n);
        return big;
    }
    tornado_iostream *s_ = nullptr;
};

namespace detail {
template <>
struct ValueOf<IOStream> {
    static IOStream get(const Future &f) { return IOStream::of(f); }
};
}  // namespace detail

/// Connects to `host`:`port` (Tornado's TCPClient.connect); the future's
/// value() is the IOStream. `timeout_s` 0: no limit.
inline FutureOf<IOStream> tcp_connect(Loop &loop, const std::string &host, std::uint16_t port, double timeout_s = 0) {
    return FutureOf<IOStream>(
        detail::check_ptr(tornado_tcp_connect(loop.get(), host.c_str(), port, timeout_s), "tornado_tcp_connect"));
}
/// Connects and starts TLS (`host` is also the name checked against the
/// certificate); `options` may be NULL (validation on).
inline FutureOf<IOStream> tcp_connect_tls(Loop &loop, const std::string &host, std::uint16_t port, double timeout_s = 0,
                                          const TlsOptions *options = nullptr) {
    return FutureOf<IOStream>(detail::check_ptr(
        tornado_tcp_connect_tls(loop.get(), host.c_str(), port, timeout_s, options ? options->get() : nullptr),
        "tornado_tcp_connect_tls"));
}

/// A listening TCP server (tornado.tcpserver.TCPServer): `on_accept(stream,
/// peer)` runs from the loop for each connection. Freed (listening
/// stopped) in the destructor; accepted streams stay open.
class TcpServer {
public:
    using AcceptFn = Function<void(IOStream, std::string_view)>;
    TcpServer(Loop &loop, const std::string &host, std::uint16_t port, AcceptFn on_accept, int backlog = 0) {
        void *held = detail::hold(on_accept, "tornado::TcpServer");
        s_ = tornado_tcp_server_new(
            loop.get(), host.c_str(), port, backlog,
            [](tornado_iostream *stream, const char *peer, void *ud) {
                IOStream s(stream);  // owned from here, also if the callback throws
                detail::guarded([&] { AcceptFn::invoke(ud, std::move(s), peer ? peer : ""); });
            },
            held, AcceptFn::drop);
        if (!s_) {
            AcceptFn::drop(held);
            throw Error(TORNADO_ERR_INVALID, detail::last_error("tornado_tcp_server_new"));
        }
    }
    TcpServer(TcpServer &&o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    TcpServer &operator=(TcpServer &&o) noexcept {
        if (this != &o) {
            if (s_) tornado_tcp_server_free(s_);
            s_ = std::exchange(o.s_, nullptr);
        }
        return *this;
    }
    TcpServer(const TcpServer &) = delete;
    TcpServer &operator=(const TcpServer &) = delete;
    ~TcpServer() {
        if (s_) tornado_tcp_server_free(s_);
    }
    tornado_tcp_server *get() const noexcept { return s_; }
    std::uint16_t port() const noexcept { return tornado_tcp_server_port(s_); }
    /// Accepted connections complete a TLS handshake with `config` first.
    void set_tls(const TlsServerConfig &config) {
        detail::check(tornado_tcp_server_set_tls(s_, config.get()), "tornado_tcp_server_set_tls");
    }
    void stop() { detail::check(tornado_tcp_server_stop(s_), "tornado_tcp_server_stop"); }

private:
    tornado_tcp_server *s_ = nullptr;
};

// ---- HTTP client -------------------------------------------------------------

/// A read-only view of a response (borrowed from its future or callback).
class ResponseView {
public:
    explicit ResponseView(const tornado_http_response *r) noexcept : r_(r) {}
    const tornado_http_response *get() const noexcept { return r_; }
    int code() const noexcept { return tornado_http_response_code(r_); }
    /// The HTTP version it came over: 10, 11 or 20 (HTTP/2); 0 when no
    /// response was received.
    int version() const noexcept { return tornado_http_response_version(r_); }
    std::string_view reason() const noexcept { return tornado_http_response_reason(r_); }
    std::string_view body() const noexcept {
        std::size_t n = 0;
        const std::uint8_t *b = tornado_http_response_body(r_, &n);
        return {reinterpret_cast<const char *>(b), n};
    }
    /// The first value of a header (case-insensitive), or nullptr.
    const char *header(const char *name) const noexcept { return tornado_http_response_header(r_, name); }
    /// Every header in received order (values as UTF-8 text).
    std::vector<std::pair<std::string, std::string>> headers() const {
        std::vector<std::pair<std::string, std::string>> all;
        std::size_t n = tornado_http_response_header_count(r_);
        for (std::size_t i = 0; i < n; i++) {
            const char *name = nullptr, *value = nullptr;
            if (tornado_http_response_header_at(r_, i, &name, &value) == TORNADO_OK) all.emplace_back(name, value);
        }
        return all;
    }
    /// The i-th header's value byte for byte as sent (not re-encoded).
    std::string_view header_bytes(std::size_t i, const char **name = nullptr) const {
        const std::uint8_t *value = nullptr;
        std::size_t n = 0;
        detail::check(tornado_http_response_header_bytes_at(r_, i, name, &value, &n), "tornado_http_response_header_bytes_at");
        return {reinterpret_cast<const char *>(value), n};
    }
    /// Every header as one "Name: value\r\n" block, bytes as sent.
    std::string_view header_block() const noexcept {
        std::size_t n = 0;
        const std::uint8_t *b = tornado_http_response_header_block(r_, &n);
        return {reinterpret_cast<const char *>(b), n};
    }
    std::string_view effective_url() const noexcept { return tornado_http_response_effective_url(r_); }
    /// "kind: detail", or nullptr when a response was received without error.
    const char *error() const noexcept { return tornado_http_response_error(r_); }
    tornado_code error_code() const noexcept { return tornado_http_response_error_code(r_); }
    /// The OS error number behind the error (ECONNREFUSED...), or 0.
    int os_error() const noexcept { return tornado_http_response_os_error(r_); }
    double request_time() const noexcept { return tornado_http_response_request_time(r_); }
    double start_time() const noexcept { return tornado_http_response_start_time(r_); }
    tornado_http_time_info time_info() const {
        tornado_http_time_info t{};
        detail::check(tornado_http_response_time_info(r_, &t), "tornado_http_response_time_info");
        return t;
    }

private:
    const tornado_http_response *r_;
};

/// A response owned by the future it came from (what `co_await` on a fetch
/// gives): the ResponseView accessors, valid as long as this object.
class Response : public ResponseView {
public:
    explicit Response(Future f)
        : ResponseView(static_cast<const tornado_http_response *>(f.result())), f_(std::move(f)) {}
    const Future &future() const noexcept { return f_; }

private:
    Future f_;
};

namespace detail {
template <>
struct ValueOf<Response> {
    // A fetch future fails only when no response was received.
    static Response get(const Future &f) {
        f.check();
        return Response(f.share());
    }
};
}  // namespace detail

/// The writer an async body producer writes the upload with (owned; freed
/// in the destructor).
class BodyWriter {
public:
    explicit BodyWriter(tornado_http_body_writer *w) noexcept : w_(w) {}
    BodyWriter(BodyWriter &&o) noexcept : w_(std::exchange(o.w_, nullptr)) {}
    BodyWriter &operator=(BodyWriter &&o) noexcept {
        std::swap(w_, o.w_);
        return *this;
    }
    BodyWriter(const BodyWriter &) = delete;
    BodyWriter &operator=(const BodyWriter &) = delete;
    ~BodyWriter() { tornado_http_body_writer_free(w_); }
    /// Writes `data` (copied); done once it reached the socket.
    Future write(std::string_view data) {
        return Future(detail::check_ptr(
            tornado_http_body_writer_write(w_, reinterpret_cast<const std::uint8_t *>(data.data()), data.size()),
            "tornado_http_body_writer_write"));
    }

private:
    tornado_http_body_writer *w_;
};

/// A request (tornado.httpclient.HTTPRequest). Setters return *this.
/// Callbacks set on it are deleted once the request and every fetch of it
/// are done with them.
class Request {
public:
    explicit Request(const std::string &url)
        : r_(detail::check_ptr(tornado_http_request_new(url.c_str()), "tornado_http_request_new")) {}
    /// Adopts a request the caller owns.
    explicit Request(tornado_http_request *r) noexcept : r_(r) {}
    Request(const Request &) = delete;
    Request &operator=(const Request &) = delete;
    Request(Request &&o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
    Request &operator=(Request &&o) noexcept {
        std::swap(r_, o.r_);
        return *this;
    }
    ~Request() { tornado_http_request_free(r_); }

    const tornado_http_request *get() const noexcept { return r_; }
    Request &method(const std::string &m) { return set(tornado_http_request_set_method(r_, m.c_str()), "set_method"); }
    Request &header(const std::string &name, const std::string &value) {
        return set(tornado_http_request_add_header(r_, name.c_str(), value.c_str()), "add_header");
    }
    /// A header value sent byte for byte (Latin-1 allowed).
    Request &header_bytes(const std::string &name, std::string_view value) {
        return set(tornado_http_request_add_header_bytes(r_, name.c_str(), bytes(value), value.size()), "add_header_bytes");
    }
    Request &body(std::string_view data) { return set(tornado_http_request_set_body(r_, bytes(data), data.size()), "set_body"); }
    Request &connect_timeout(double s) { return set(tornado_http_request_set_connect_timeout(r_, s), "set_connect_timeout"); }
    Request &request_timeout(double s) { return set(tornado_http_request_set_request_timeout(r_, s), "set_request_timeout"); }
    Request &follow_redirects(bool f) { return set(tornado_http_request_set_follow_redirects(r_, f), "set_follow_redirects"); }
    Request &max_redirects(int n) { return set(tornado_http_request_set_max_redirects(r_, n), "set_max_redirects"); }
    Request &user_agent(const std::string &ua) { return set(tornado_http_request_set_user_agent(r_, ua.c_str()), "set_user_agent"); }
    Request &auth(const std::string &username, const std::string &password) {
        return set(tornado_http_request_set_auth(r_, username.c_str(), password.c_str()), "set_auth");
    }
    /// "basic" (the default) or "digest".
    Request &auth_mode(const std::string &mode) { return set(tornado_http_request_set_auth_mode(r_, mode.c_str()), "set_auth_mode"); }
    Request &decompress_response(bool d) {
        return set(tornado_http_request_set_decompress_response(r_, d), "set_decompress_response");
    }
    Request &allow_ipv6(bool a) { return set(tornado_http_request_set_allow_ipv6(r_, a), "set_allow_ipv6"); }
    Request &network_interface(const std::optional<std::string> &address) {
        return set(tornado_http_request_set_network_interface(r_, detail::c_str_or_null(address)), "set_network_interface");
    }
    Request &if_modified_since(double unix_time) {
        return set(tornado_http_request_set_if_modified_since(r_, unix_time), "set_if_modified_since");
    }
    /// An HTTP proxy (port 0: 8080); empty credentials: none.
    Request &proxy(const std::string &host, std::uint16_t port, const std::optional<std::string> &username = std::nullopt,
                   const std::optional<std::string> &password = std::nullopt) {
        return set(tornado_http_request_set_proxy(r_, host.c_str(), port, detail::c_str_or_null(username),
                                                  detail::c_str_or_null(password)),
                   "set_proxy");
    }
    Request &allow_nonstandard_methods(bool a) {
        return set(tornado_http_request_set_allow_nonstandard_methods(r_, a), "set_allow_nonstandard_methods");
    }
    Request &expect_100_continue(bool e) { return set(tornado_http_request_set_expect_100_continue(r_, e), "set_expect_100_continue"); }
    /// An https:// proxy's CAs: a PEM file instead of the system's store
    /// (curl's --proxy-cacert; nullopt: the system's). Read when a connection
    /// to the proxy starts: a bad file fails that fetch with a TLS error.
    Request &proxy_ca_certs(const std::optional<std::string> &path) {
        return set(tornado_http_request_set_proxy_ca_certs(r_, detail::c_str_or_null(path)), "set_proxy_ca_certs");
    }
    /// Check an https:// proxy's certificate (default true; false is curl's
    /// --proxy-insecure, for tests). The target's follows validate_cert().
    Request &proxy_validate_cert(bool v) {
        return set(tornado_http_request_set_proxy_validate_cert(r_, v), "set_proxy_validate_cert");
    }
    /// The HTTP versions this fetch may use: TORNADO_HTTP_VERSION_ANY, _1_1,
    /// _2 (h2 by ALPN over TLS) or _2_PRIOR_KNOWLEDGE (h2c too).
    Request &http_version(std::uint32_t v) { return set(tornado_http_request_set_http_version(r_, v), "set_http_version"); }
    /// curl's --unix-socket: connect to the socket at `path` (the URL still
    /// gives Host and path); std::nullopt connects by the URL again.
    Request &unix_socket(const std::optional<std::string> &path) {
        return set(tornado_http_request_set_unix_socket(r_, detail::c_str_or_null(path)), "set_unix_socket");
    }

    // TLS, per request.
    Request &validate_cert(bool v) { return set(tornado_http_request_set_validate_cert(r_, v), "set_validate_cert"); }
    /// A PEM CA file instead of the system's store (nullopt: the system's).
    Request &ca_certs(const std::optional<std::string> &path) {
        return set(tornado_http_request_set_ca_certs(r_, detail::c_str_or_null(path)), "set_ca_certs");
    }
    /// CA certificates as PEM bytes (copied); empty: none.
    Request &ca_pem(std::string_view pem) {
        return set(tornado_http_request_set_ca_pem(r_, pem.empty() ? nullptr : bytes(pem), pem.size()), "set_ca_pem");
    }
    Request &client_cert(const std::string &cert_file, const std::string &key_file) {
        return set(tornado_http_request_set_client_cert(r_, cert_file.c_str(), key_file.c_str()), "set_client_cert");
    }
    Request &client_cert_pem(std::string_view cert, std::string_view key) {
        return set(tornado_http_request_set_client_cert_pem(r_, cert.empty() ? nullptr : bytes(cert), cert.size(),
                                                            key.empty() ? nullptr : bytes(key), key.size()),
                   "set_client_cert_pem");
    }
    /// "1.2" (the default) or "1.3".
    Request &min_tls_version(const std::string &v) {
        return set(tornado_http_request_set_min_tls_version(r_, v.c_str()), "set_min_tls_version");
    }
    /// The ALPN protocols offered, in order of preference.
    Request &alpn(const std::vector<std::string> &protocols) {
        std::vector<const char *> names;
        for (const std::string &p : protocols) names.push_back(p.c_str());
        return set(tornado_http_request_set_alpn(r_, names.data(), names.size()), "set_alpn");
    }
    /// The SNI name checked against the certificate instead of the URL's host.
    Request &server_name(const std::optional<std::string> &name) {
        return set(tornado_http_request_set_server_name(r_, detail::c_str_or_null(name)), "set_server_name");
    }

    // Callbacks.
    /// Receives the body in chunks instead of buffering it.
    Request &streaming_callback(Function<void(std::string_view)> fn) {
        void *held = detail::hold(fn, "tornado::Request::streaming_callback");
        return set_held(tornado_http_request_set_streaming_callback(r_, chunk_cb, held, drop_chunk), held, drop_chunk,
                        "set_streaming_callback");
    }
    /// Receives body chunks and may pause the read by returning a pending
    /// future (an empty Future: go on at once).
    Request &streaming_callback_async(Function<Future(std::string_view)> fn) {
        using Fn = Function<Future(std::string_view)>;
        void *held = detail::hold(fn, "tornado::Request::streaming_callback_async");
        tornado_code rc = tornado_http_request_set_streaming_callback_async(
            r_,
            [](const std::uint8_t *data, std::size_t len, void *ud) -> tornado_future * {
                try {
                    return Fn::invoke(ud, std::string_view(reinterpret_cast<const char *>(data), len)).release();
                } catch (...) {
                    detail::capture_exception();
                    return detail::failed_future();  // fails the fetch
                }
            },
            held, Fn::drop);
        return set_held(rc, held, Fn::drop, "set_streaming_callback_async");
    }
    /// Receives each header line of the final response, line end included.
    Request &header_callback(Function<void(std::string_view)> fn) {
        void *held = detail::hold(fn, "tornado::Request::header_callback");
        tornado_code rc = tornado_http_request_set_header_callback(
            r_, [](const char *line, std::size_t len, void *ud) { chunk_cb(reinterpret_cast<const std::uint8_t *>(line), len, ud); },
            held, drop_chunk);
        return set_held(rc, held, drop_chunk, "set_header_callback");
    }
    /// Streams the upload (chunked): `fn(buf, cap)` writes up to `cap` bytes
    /// and returns how many (0: done; < 0 or an exception: the fetch fails).
    Request &body_producer(Function<std::int64_t(std::uint8_t *, std::size_t)> fn) {
        using Fn = Function<std::int64_t(std::uint8_t *, std::size_t)>;
        void *held = detail::hold(fn, "tornado::Request::body_producer");
        tornado_code rc = tornado_http_request_set_body_producer(
            r_,
            [](std::uint8_t *buf, std::size_t cap, void *ud) -> std::int64_t {
                try {
                    return Fn::invoke(ud, buf, cap);
                } catch (...) {
                    detail::capture_exception();
                    return -1;
                }
            },
            held, Fn::drop);
        return set_held(rc, held, Fn::drop, "set_body_producer");
    }
    /// Tornado's body_producer(write): `fn(writer)` writes the upload with
    /// the writer, now or later, and returns a future done when the body is
    /// complete (an empty Future: complete on return).
    Request &body_producer_async(Function<Future(BodyWriter)> fn) {
        using Fn = Function<Future(BodyWriter)>;
        void *held = detail::hold(fn, "tornado::Request::body_producer_async");
        tornado_code rc = tornado_http_request_set_body_producer_async(
            r_,
            [](tornado_http_body_writer *w, void *ud) -> tornado_future * {
                try {
                    return Fn::invoke(ud, BodyWriter(w)).release();
                } catch (...) {
                    detail::capture_exception();
                    return detail::failed_future();
                }
            },
            held, Fn::drop);
        return set_held(rc, held, Fn::drop, "set_body_producer_async");
    }

private:
    using ChunkFn = Function<void(std::string_view)>;
    static void chunk_cb(const std::uint8_t *data, std::size_t len, void *ud) {
        detail::guarded([&] { ChunkFn::invoke(ud, std::string_view(reinterpret_cast<const char *>(data), len)); });
    }
    static void drop_chunk(void *ud) { ChunkFn::drop(ud); }
    static const std::uint8_t *bytes(std::string_view s) { return reinterpret_cast<const std::uint8_t *>(s.data()); }
    Request &set(tornado_code rc, const char *what) {
        detail::check(rc, what);
        return *this;
    }
    Request &set_held(tornado_code rc, void *held, void (*drop)(void *), const char *what) {
        if (rc != TORNADO_OK) drop(held);  // refused: the library never drops it
        return set(rc, what);
    }
    tornado_http_request *r_;
};

/// One name lookup asked of a resolver: add addresses, then done() (or
/// fail()). Move it into a later callback to answer later. Destroyed
/// unanswered, it fails the lookup.
class ResolveReply {
public:
    explicit ResolveReply(tornado_resolve_reply *r) noexcept : r_(r) {}
    ResolveReply(ResolveReply &&o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
    ResolveReply &operator=(ResolveReply &&o) noexcept {
        std::swap(r_, o.r_);
        return *this;
    }
    ResolveReply(const ResolveReply &) = delete;
    ResolveReply &operator=(const ResolveReply &) = delete;
    ~ResolveReply() {
        if (r_) tornado_resolve_reply_fail(r_, TORNADO_ERR_RESOLVE, "the resolver dropped the reply unanswered");
    }
    /// An IP literal and port for the answer.
    ResolveReply &add(const std::string &address, std::uint16_t port) {
        detail::check(tornado_resolve_reply_add(r_, address.c_str(), port), "tornado_resolve_reply_add");
        return *this;
    }
    void done() { detail::check(tornado_resolve_reply_done(std::exchange(r_, nullptr)), "tornado_resolve_reply_done"); }
    void fail(tornado_code code, const std::string &message) {
        detail::check(tornado_resolve_reply_fail(std::exchange(r_, nullptr), code, message.c_str()),
                      "tornado_resolve_reply_fail");
    }

private:
    tornado_resolve_reply *r_;
};

/// Client-wide settings (Tornado's AsyncHTTPClient.configure arguments).
class ClientOptions {
public:
    ClientOptions() : o_(detail::check_ptr(tornado_http_client_options_new(), "tornado_http_client_options_new")) {}
    ClientOptions(ClientOptions &&o) noexcept : o_(std::exchange(o.o_, nullptr)) {}
    ClientOptions &operator=(ClientOptions &&o) noexcept {
        std::swap(o_, o.o_);
        return *this;
    }
    ClientOptions(const ClientOptions &) = delete;
    ClientOptions &operator=(const ClientOptions &) = delete;
    ~ClientOptions() { tornado_http_client_options_free(o_); }
    const tornado_http_client_options *get() const noexcept { return o_; }

    ClientOptions &max_clients(std::size_t n) { return set(tornado_http_client_options_set_max_clients(o_, n), "set_max_clients"); }
    ClientOptions &max_buffer_size(std::size_t n) {
        return set(tornado_http_client_options_set_max_buffer_size(o_, n), "set_max_buffer_size");
    }
    ClientOptions &max_header_size(std::size_t n) {
        return set(tornado_http_client_options_set_max_header_size(o_, n), "set_max_header_size");
    }
    ClientOptions &max_body_size(std::uint64_t n) {
        return set(tornado_http_client_options_set_max_body_size(o_, n), "set_max_body_size");
    }
    ClientOptions &idle_timeout(double s) { return set(tornado_http_client_options_set_idle_timeout(o_, s), "set_idle_timeout"); }
    ClientOptions &max_idle_per_host(std::size_t n) {
        return set(tornado_http_client_options_set_max_idle_per_host(o_, n), "set_max_idle_per_host");
    }
    /// The HTTP versions requests use unless they choose (Request::http_version).
    ClientOptions &http_version(std::uint32_t v) {
        return set(tornado_http_client_options_set_http_version(o_, v), "set_http_version");
    }
    /// The cookie jar (default off): Set-Cookie kept and sent back across fetches.
    ClientOptions &cookies(bool enabled) { return set(tornado_http_client_options_set_cookies(o_, enabled), "set_cookies"); }
    /// How long resolved addresses are kept, in seconds (default 60; 0: no cache).
    ClientOptions &dns_cache_ttl(double s) {
        return set(tornado_http_client_options_set_dns_cache_ttl(o_, s), "set_dns_cache_ttl");
    }
    /// HTTP/2 liveness: a pooled h2 connection idle `idle_s` seconds answers
    /// a PING within `timeout_s` before reuse, else another is opened
    /// (defaults 5 and 2; idle_s 0: no check; negative, NaN, infinite or a
    /// timeout_s of 0: TORNADO_ERR_INVALID).
    ClientOptions &http2_ping(double idle_s, double timeout_s) {
        return set(tornado_http_client_options_set_http2_ping(o_, idle_s, timeout_s), "set_http2_ping");
    }
    /// The cookie jar's public suffix list (publicsuffix.org's format, e.g.
    /// /usr/share/publicsuffix/public_suffix_list.dat; nullopt: the built-in
    /// snapshot). Read when the client is made: a missing file or one that
    /// is no such list makes HttpClient's constructor throw.
    ClientOptions &public_suffix_file(const std::optional<std::string> &path) {
        return set(tornado_http_client_options_set_public_suffix_file(o_, detail::c_str_or_null(path)),
                   "set_public_suffix_file");
    }
    /// Tornado's hostname_mapping: `host` resolves to the IP `address`.
    ClientOptions &hostname_mapping(const std::string &host, const std::string &address) {
        return set(tornado_http_client_options_add_hostname_mapping(o_, host.c_str(), address.c_str()), "add_hostname_mapping");
    }
    /// curl's --connect-to: (host, port) is reached at (to_host, to_port).
    ClientOptions &endpoint_mapping(const std::string &host, std::uint16_t port, const std::string &to_host,
                                    std::uint16_t to_port) {
        return set(tornado_http_client_options_add_endpoint_mapping(o_, host.c_str(), port, to_host.c_str(), to_port),
                   "add_endpoint_mapping");
    }
    /// Tornado's defaults: HttpClient::request() starts from a copy of `r`.
    ClientOptions &defaults(const Request &r) { return set(tornado_http_client_options_set_defaults(o_, r.get()), "set_defaults"); }
    /// Tornado's resolver=: `fn(host, port, family, reply)` answers through
    /// `reply`, now or later (an exception fails the lookup).
    ClientOptions &resolver(Function<void(std::string_view, std::uint16_t, int, ResolveReply)> fn) {
        using Fn = Function<void(std::string_view, std::uint16_t, int, ResolveReply)>;
        void *held = detail::hold(fn, "tornado::ClientOptions::resolver");
        tornado_code rc = tornado_http_client_options_set_resolver(
            o_,
            [](const char *host, std::uint16_t port, int family, tornado_resolve_reply *reply, void *ud) {
                ResolveReply r(reply);  // fails the lookup if the callback throws
                detail::guarded([&] { Fn::invoke(ud, host, port, family, std::move(r)); });
            },
            held, Fn::drop);
        if (rc != TORNADO_OK) Fn::drop(held);
        return set(rc, "set_resolver");
    }

private:
    ClientOptions &set(tornado_code rc, const char *what) {
        detail::check(rc, what);
        return *this;
    }
    tornado_http_client_options *o_;
};

/// An HTTP client (tornado.httpclient.AsyncHTTPClient) with keep-alive.
/// Freeing it ends fetches in flight with a `closed` error.
class HttpClient {
public:
    explicit HttpClient(Loop &loop, const ClientOptions &options)
        : c_(detail::check_ptr(tornado_http_client_new(loop.get(), options.get()), "tornado_http_client_new")) {}
    explicit HttpClient(Loop &loop, std::size_t max_clients = 10)
        : HttpClient(loop, ClientOptions().max_clients(max_clients)) {}
    HttpClient(const HttpClient &) = delete;
    HttpClient &operator=(const HttpClient &) = delete;
    HttpClient(HttpClient &&o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
    HttpClient &operator=(HttpClient &&o) noexcept {
        if (this != &o) {
            if (c_) tornado_http_client_free(c_);
            c_ = std::exchange(o.c_, nullptr);
        }
        return *this;
    }
    ~HttpClient() {
        if (c_) tornado_http_client_free(c_);
    }
    tornado_http_client *get() const noexcept { return c_; }

    /// A request that starts from the client's defaults (ClientOptions::defaults).
    Request request(const std::string &url) const {
        return Request(detail::check_ptr(tornado_http_client_request_new(c_, url.c_str()), "tornado_http_client_request_new"));
    }

    /// The future form: value() (or `co_await`) gives the Response; it
    /// fails only when no response was received (every HTTP status is a
    /// response, as with Tornado's raise_error=False).
    FutureOf<Response> fetch(const Request &r) {
        return FutureOf<Response>(detail::check_ptr(tornado_http_client_fetch(c_, r.get()), "tornado_http_client_fetch"));
    }
    FutureOf<Response> fetch(const std::string &url) { return fetch(Request(url)); }

    /// The callback form: `cb` is called exactly once, from the loop (code
    /// 599 and an error when no response was received; not at all if the
    /// loop is freed first). It is deleted once the library drops it: after
    /// the call, or uncalled when the client is freed after the loop.
    void fetch(const Request &r, Function<void(const ResponseView &)> cb) {
        using Fn = Function<void(const ResponseView &)>;
        void *held = detail::hold(cb, "tornado::HttpClient::fetch");
        tornado_code rc = tornado_http_client_fetch_cb_full(
            c_, r.get(),
            [](const tornado_http_response *resp, void *ud) { detail::guarded([&] { Fn::invoke(ud, ResponseView(resp)); }); },
            held, Fn::drop);
        if (rc != TORNADO_OK) {
            Fn::drop(held);
            detail::check(rc, "tornado_http_client_fetch_cb_full");
        }
    }

    /// Ends every fetch in flight or queued with a `cancelled` error.
    void cancel_all() { detail::check(tornado_http_client_cancel_all(c_), "tornado_http_client_cancel_all"); }
    /// Fetches waiting for a slot (Tornado's len(client.queue)).
    std::size_t queued() const noexcept { return tornado_http_client_queued(c_); }
    /// Fetches holding a slot (Tornado's len(client.active)).
    std::size_t active() const noexcept { return tornado_http_client_active(c_); }
    std::size_t idle_connections() const noexcept { return tornado_http_client_idle_connections(c_); }
    /// Connections opened so far (HTTP/1.1 and HTTP/2).
    std::uint64_t connections_opened() const noexcept { return tornado_http_client_connections_opened(c_); }
    /// HTTP/2 connections open now.
    std::size_t http2_connections() const noexcept { return tornado_http_client_http2_connections(c_); }

    /// The cookie jar (ClientOptions::cookies(true); Error otherwise): load
    /// adds a curl (Netscape) cookie file's cookies, save writes the jar as one.
    void load_cookies(const std::string &path) {
        detail::check(tornado_http_client_load_cookies(c_, path.c_str()), "tornado_http_client_load_cookies");
    }
    void save_cookies(const std::string &path) {
        detail::check(tornado_http_client_save_cookies(c_, path.c_str()), "tornado_http_client_save_cookies");
    }
    void clear_cookies() { detail::check(tornado_http_client_clear_cookies(c_), "tornado_http_client_clear_cookies"); }
    /// Unexpired cookies in the jar (0 when cookies are off).
    std::size_t cookie_count() const noexcept { return tornado_http_client_cookie_count(c_); }

    static ResponseView response_of(const Future &f) {
        return ResponseView(static_cast<const tornado_http_response *>(f.result()));
    }

private:
    tornado_http_client *c_ = nullptr;
};

// ---- WebSocket client --------------------------------------------------------

namespace detail {
// A NULL handle from a call whose message names the code first
// ("TORNADO_ERR_CLOSED: closed: ..."): Error with that code.
template <typename T>
T *check_named(T *ptr, const char *context) {
    if (ptr) return ptr;
    const char *msg = tornado_last_error();
    std::string text = msg ? msg : "";
    tornado_code code = TORNADO_ERR_INVALID;
    for (tornado_code c = 1; c <= TORNADO_ERR_INVALID_URL; c++) {
        std::string name = tornado_code_name(c);
        if (text.compare(0, name.size() + 1, name + ":") == 0) code = c;
    }
    throw Error(code, last_error(context));
}
}  // namespace detail

/// What WebSocket::connect asks for beyond the request (Tornado's
/// websocket_connect arguments); copied by connect.
class WebSocketOptions {
public:
    WebSocketOptions()
        : o_(detail::check_ptr(tornado_websocket_options_new(), "tornado_websocket_options_new")) {}
    WebSocketOptions(WebSocketOptions &&o) noexcept : o_(std::exchange(o.o_, nullptr)) {}
    WebSocketOptions &operator=(WebSocketOptions &&o) noexcept {
        std::swap(o_, o.o_);
        return *this;
    }
    WebSocketOptions(const WebSocketOptions &) = delete;
    WebSocketOptions &operator=(const WebSocketOptions &) = delete;
    ~WebSocketOptions() { tornado_websocket_options_free(o_); }
    const tornado_websocket_options *get() const noexcept { return o_; }

    /// Offers a subprotocol (after those added before).
    WebSocketOptions &subprotocol(const std::string &name) {
        return set(tornado_websocket_options_add_subprotocol(o_, name.c_str()), "add_subprotocol");
    }
    WebSocketOptions &max_message_size(std::size_t bytes) {
        return set(tornado_websocket_options_set_max_message_size(o_, bytes), "set_max_message_size");
    }
    /// permessage-deflate at zlib `level` 0-9 (Tornado's 6); -1: off.
    WebSocketOptions &compression(int level = 6) {
        return set(tornado_websocket_options_set_compression(o_, level), "set_compression");
    }
    WebSocketOptions &no_context_takeover(bool client, bool server) {
        return set(tornado_websocket_options_set_no_context_takeover(o_, client, server), "set_no_context_takeover");
    }
    WebSocketOptions &server_max_window_bits(int bits) {
        return set(tornado_websocket_options_set_server_max_window_bits(o_, bits), "set_server_max_window_bits");
    }
    /// With compression on: compress what is sent with a window of at most
    /// 2^bits bytes (8-15), offered as client_max_window_bits=bits; 0: the
    /// default (offered without a value). A server's smaller value is honoured.
    WebSocketOptions &client_max_window_bits(int bits) {
        return set(tornado_websocket_options_set_client_max_window_bits(o_, bits), "set_client_max_window_bits");
    }
    /// A ping every `interval_s` (0: none); no pong within `timeout_s` closes.
    WebSocketOptions &ping(double interval_s, double timeout_s = 0) {
        return set(tornado_websocket_options_set_ping(o_, interval_s, timeout_s), "set_ping");
    }
    WebSocketOptions &max_write_buffer(std::size_t bytes) {
        return set(tornado_websocket_options_set_max_write_buffer(o_, bytes), "set_max_write_buffer");
    }
    WebSocketOptions &close_timeout(double seconds) {
        return set(tornado_websocket_options_set_close_timeout(o_, seconds), "set_close_timeout");
    }

private:
    WebSocketOptions &set(tornado_code rc, const char *what) {
        detail::check(rc, what);
        return *this;
    }
    tornado_websocket_options *o_;
};

/// A message received (copied out of the library's).
struct WebSocketMessage {
    bool binary = false;
    std::string data;  // text: UTF-8
    static WebSocketMessage of(const tornado_websocket_message *m) {
        std::size_t n = 0;
        const std::uint8_t *d = tornado_websocket_message_data(m, &n);
        return {tornado_websocket_message_is_binary(m), std::string(reinterpret_cast<const char *>(d), n)};
    }
};

/// A WebSocket client connection (Tornado's WebSocketClientConnection):
/// one reference to the handle, released in the destructor (the last one
/// closes the connection at once: close() first for a close handshake).
class WebSocket {
public:
    WebSocket() = default;
    /// Adopts one reference the caller owns.
    explicit WebSocket(tornado_websocket *ws) noexcept : ws_(ws) {}
    WebSocket(WebSocket &&o) noexcept : ws_(std::exchange(o.ws_, nullptr)) {}
    WebSocket &operator=(WebSocket &&o) noexcept {
        if (this != &o) {
            tornado_websocket_unref(ws_);
            ws_ = std::exchange(o.ws_, nullptr);
        }
        return *this;
    }
    WebSocket(const WebSocket &) = delete;
    WebSocket &operator=(const WebSocket &) = delete;
    ~WebSocket() { tornado_websocket_unref(ws_); }
    tornado_websocket *get() const noexcept { return ws_; }

    /// Opens a WebSocket to the request's ws:// or wss:// URL through
    /// `client`'s connections; the future's value() is the WebSocket
    /// (Error when the connection or the handshake failed).
    static FutureOf<WebSocket> connect(HttpClient &client, const Request &request,
                                       const WebSocketOptions *options = nullptr) {
        return FutureOf<WebSocket>(detail::check_named(
            tornado_websocket_connect(client.get(), request.get(), options ? options->get() : nullptr),
            "tornado_websocket_connect"));
    }
    /// The connection of a connect future.
    static WebSocket of(const Future &f) {
        f.check();
        auto *ws = static_cast<tornado_websocket *>(f.result());
        return WebSocket(detail::check_ptr(tornado_websocket_ref(ws), "tornado_websocket_ref"));
    }

    /// The next message; value() is std::nullopt once the connection closed
    /// cleanly, and Error when it ended otherwise (see error()).
    FutureOf<std::optional<WebSocketMessage>> read_message() {
        return FutureOf<std::optional<WebSocketMessage>>(
            detail::check_named(tornado_websocket_read_message(ws_), "tornado_websocket_read_message"));
    }
    /// Calls `cb` from the loop with each message from now on, then with
    /// std::nullopt when the connection ends (Tornado's on_message_callback);
    /// read_message() then gives nullopt. Deleted when replaced or when the
    /// connection goes. An empty Function goes back to read_message.
    void on_message(Function<void(const std::optional<WebSocketMessage> &)> cb) {
        using Fn = Function<void(const std::optional<WebSocketMessage> &)>;
        if (!cb) {
            detail::check(tornado_websocket_set_message_callback(ws_, nullptr, nullptr, nullptr),
                          "tornado_websocket_set_message_callback");
            return;
        }
        void *held = detail::hold(cb, "tornado::WebSocket::on_message");
        tornado_code rc = tornado_websocket_set_message_callback(
            ws_,
            [](const tornado_websocket_message *m, void *ud) {
                detail::guarded([&] {
                    std::optional<WebSocketMessage> message;
                    if (m) message = WebSocketMessage::of(m);
                    Fn::invoke(ud, message);
                });
            },
            held, Fn::drop);
        if (rc != TORNADO_OK) {
            Fn::drop(held);
            detail::check(rc, "tornado_websocket_set_message_callback");
        }
    }
    /// Calls `cb` from the loop with each ping's payload (the pong is sent).
    void on_ping(Function<void(std::string_view)> cb) {
        using Fn = Function<void(std::string_view)>;
        if (!cb) {
            detail::check(tornado_websocket_set_ping_callback(ws_, nullptr, nullptr, nullptr),
                          "tornado_websocket_set_ping_callback");
            return;
        }
        void *held = detail::hold(cb, "tornado::WebSocket::on_ping");
        tornado_code rc = tornado_websocket_set_ping_callback(
            ws_,
            [](const std::uint8_t *data, std::size_t len, void *ud) {
                detail::guarded([&] { Fn::invoke(ud, std::string_view(reinterpret_cast<const char *>(data), len)); });
            },
            held, Fn::drop);
        if (rc != TORNADO_OK) {
            Fn::drop(held);
            detail::check(rc, "tornado_websocket_set_ping_callback");
        }
    }
    /// Sends a message (text must be UTF-8); done once it is on the wire.
    /// Error(TORNADO_ERR_CLOSED) once closing or closed.
    FutureOf<void> write_message(std::string_view data, bool binary = false) {
        return FutureOf<void>(detail::check_named(
            tornado_websocket_write_message(ws_, reinterpret_cast<const std::uint8_t *>(data.data()), data.size(), binary),
            "tornado_websocket_write_message"));
    }
    /// Sends a ping (at most 125 bytes); done once it is on the wire.
    FutureOf<void> ping(std::string_view data = {}) {
        return FutureOf<void>(detail::check_named(
            tornado_websocket_ping(ws_, reinterpret_cast<const std::uint8_t *>(data.data()), data.size()),
            "tornado_websocket_ping"));
    }
    /// The close handshake with `code` (0: none) and `reason`; done once the
    /// server's close frame came and the connection is closed.
    FutureOf<void> close(int code = 0, const std::optional<std::string> &reason = std::nullopt) {
        return FutureOf<void>(
            detail::check_named(tornado_websocket_close(ws_, code, detail::c_str_or_null(reason)), "tornado_websocket_close"));
    }
    /// The server's close frame's code (0 before one) and reason (nullptr before one).
    int close_code() const noexcept { return tornado_websocket_close_code(ws_); }
    const char *close_reason() const noexcept { return tornado_websocket_close_reason(ws_); }
    /// The subprotocol and extensions agreed (nullptr for none).
    const char *subprotocol() const noexcept { return tornado_websocket_subprotocol(ws_); }
    const char *extensions() const noexcept { return tornado_websocket_extensions(ws_); }
    bool closed() const noexcept { return tornado_websocket_is_closed(ws_); }
    /// Why it ended when not cleanly: the code (message in `message`), or TORNADO_OK.
    tornado_code error(std::string *message = nullptr) const {
        tornado_code rc = tornado_websocket_error(ws_);
        if (message) {
            const char *msg = rc != TORNADO_OK ? tornado_last_error() : nullptr;
            *message = msg ? msg : "";
        }
        return rc;
    }
    std::size_t buffered_amount() const noexcept { return tornado_websocket_buffered_amount(ws_); }

private:
    tornado_websocket *ws_ = nullptr;
};

namespace detail {
template <>
struct ValueOf<WebSocket> {
    static WebSocket get(const Future &f) { return WebSocket::of(f); }
};
template <>
struct ValueOf<std::optional<WebSocketMessage>> {
    static std::optional<WebSocketMessage> get(const Future &f) {
        f.check();
        const auto *m = static_cast<const tornado_websocket_message *>(f.result());
        if (!m) return std::nullopt;
        return WebSocketMessage::of(m);
    }
};
}  // namespace detail

inline std::string version() { return tornado_version(); }
/// The loaded library's MAJOR * 10000 + MINOR * 100 + PATCH (compare with
/// TORNADO_VERSION_NUMBER, the header's).
inline int version_number() { return tornado_version_number(); }
inline const char *code_name(tornado_code code) { return tornado_code_name(code); }

// ---- Coroutines (C++20) ------------------------------------------------------
#ifdef TORNADO_RS_COROUTINES

namespace detail {
// Shared by a suspended `co_await` and the done callback it registered:
// whichever goes last frees it. The awaiter clears `handle` when its
// coroutine is destroyed first, so a late callback resumes nothing.
struct ResumeToken {
    std::coroutine_handle<> handle;
    int refs = 2;
    static void release(void *ud) noexcept {
        auto *t = static_cast<ResumeToken *>(ud);
        if (--t->refs == 0) delete t;
    }
    static void resume(tornado_future *, void *ud) {
        auto *t = static_cast<ResumeToken *>(ud);
        if (std::coroutine_handle<> h = std::exchange(t->handle, nullptr)) guarded([&] { h.resume(); });
    }
};

template <typename T>
class FutureAwaiter {
public:
    explicit FutureAwaiter(Future f) noexcept : f_(std::move(f)) {}
    FutureAwaiter(FutureAwaiter &&o) noexcept : f_(std::move(o.f_)), token_(std::exchange(o.token_, nullptr)) {}
    FutureAwaiter(const FutureAwaiter &) = delete;
    FutureAwaiter &operator=(const FutureAwaiter &) = delete;
    FutureAwaiter &operator=(FutureAwaiter &&) = delete;
    ~FutureAwaiter() {
        if (token_) {
            token_->handle = nullptr;
            ResumeToken::release(token_);
        }
    }
    bool await_ready() const noexcept { return f_.done(); }
    void await_suspend(std::coroutine_handle<> h) {
        auto *t = new ResumeToken{h};
        tornado_code rc = tornado_future_add_done_callback_full(f_.get(), ResumeToken::resume, t, ResumeToken::release);
        if (rc != TORNADO_OK) {
            delete t;
            check(rc, "co_await: tornado_future_add_done_callback_full");  // thrown in the coroutine
        }
        token_ = t;
    }
    T await_resume() { return ValueOf<T>::get(f_); }

private:
    Future f_;
    ResumeToken *token_ = nullptr;
};

struct PromiseBase;
// The `co_await task` in progress, linked both ways with the awaited task's
// promise, so whichever of the two coroutines is destroyed first unlinks
// itself (a destroyed awaiter is never resumed, a destroyed task never
// read).
struct TaskAwaiterBase {
    PromiseBase *awaited = nullptr;
};

struct PromiseBase : SpawnedNode {  // linked while spawned (detached)
    std::coroutine_handle<> continuation;   // a Task awaiting this one
    TaskAwaiterBase *awaiter = nullptr;     // its co_await
    tornado_future *done_future = nullptr;  // completed when it finishes (Task::as_future)
    std::exception_ptr error;

    PromiseBase() = default;
    PromiseBase(const PromiseBase &) = delete;
    ~PromiseBase() {
        if (awaiter) awaiter->awaited = nullptr;  // that coroutine stays suspended until destroyed
        if (done_future) {  // destroyed unfinished: whoever waits sees a cancel
            tornado_future_cancel(done_future);
            tornado_future_unref(done_future);
        }
    }
    // Eager, as a Tornado coroutine: the body runs up to its first
    // suspension when the coroutine function is called.
    std::suspend_never initial_suspend() noexcept { return {}; }
    struct FinalAwaiter {
        bool await_ready() noexcept { return false; }
        template <typename P>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
            PromiseBase &p = h.promise();
            if (tornado_future *f = std::exchange(p.done_future, nullptr)) {
                if (!tornado_future_done(f)) tornado_future_set_result(f, nullptr, nullptr);
                tornado_future_unref(f);
            }
            if (p.awaiter) {
                p.awaiter->awaited = nullptr;
                p.awaiter = nullptr;
            }
            if (p.linked()) {  // spawned: nobody owns it, it goes now
                p.unlink();
                std::exception_ptr error = std::move(p.error);
                h.destroy();
                if (error) capture(std::move(error));
                return std::noop_coroutine();
            }
            if (p.continuation) return std::exchange(p.continuation, nullptr);
            return std::noop_coroutine();
        }
        void await_resume() noexcept {}
    };
    FinalAwaiter final_suspend() noexcept { return {}; }
    void unhandled_exception() noexcept { error = std::current_exception(); }
    void rethrow_if_failed() {
        if (error) std::rethrow_exception(error);
    }
};

template <typename T>
struct Promise : PromiseBase {
    std::optional<T> value;
    Task<T> get_return_object() noexcept;
    template <typename U = T>
    void return_value(U &&v) {
        value.emplace(std::forward<U>(v));
    }
    T take() {
        rethrow_if_failed();
        return std::move(*value);
    }
};
template <>
struct Promise<void> : PromiseBase {
    Task<void> get_return_object() noexcept;
    void return_void() noexcept {}
    void take() { rethrow_if_failed(); }
};
}  // namespace detail

/// A C++20 coroutine returning T, driven by the loop (Tornado's
/// `async def`): it starts when called, runs up to its first `co_await`,
/// and resumes from the loop when what it awaits is done. `co_await` it
/// from another Task, Loop::run_sync(task) it, or Loop::spawn(task) it
/// detached. Take parameters by value (or references to what outlives
/// the task): the coroutine outlives the call's temporaries. An exception escaping
/// the body goes to its awaiter. The Task owns the coroutine: destroying
/// it unfinished destroys the coroutine (its locals, its pending awaits).
template <typename T>
class Task {
public:
    using promise_type = detail::Promise<T>;
    using handle_type = std::coroutine_handle<promise_type>;

    explicit Task(handle_type h) noexcept : h_(h) {}
    Task(Task &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    Task &operator=(Task &&o) noexcept {
        if (this != &o) {
            if (h_) h_.destroy();
            h_ = std::exchange(o.h_, nullptr);
        }
        return *this;
    }
    Task(const Task &) = delete;
    Task &operator=(const Task &) = delete;
    ~Task() {
        if (h_) h_.destroy();
    }

    bool done() const noexcept { return h_ && h_.done(); }
    /// Gives up the coroutine (the caller destroys it).
    handle_type release() noexcept { return std::exchange(h_, nullptr); }
    /// The value (moved out) or the body's exception, once done().
    T result() {
        if (!done()) throw Error(TORNADO_ERR_NOT_DONE, "tornado::Task::result: the task has not finished");
        return h_.promise().take();
    }
    /// A future of `loop` done (value NULL) when the task finishes; for
    /// Loop::multi, with_timeout, then(). Cancelled if the task is
    /// destroyed unfinished.
    Future as_future(Loop &loop) {
        Future f = Future::pending(loop);
        if (done()) {
            f.set_result();
        } else {
            auto &p = h_.promise();
            if (p.done_future) {  // one at a time: the new one replaces it
                tornado_future_cancel(p.done_future);
                tornado_future_unref(p.done_future);
            }
            p.done_future = f.share().release();
        }
        return f;
    }

    auto operator co_await() && noexcept { return Awaiter(h_); }
    auto operator co_await() & noexcept { return Awaiter(h_); }

private:
    struct Awaiter : detail::TaskAwaiterBase {
        explicit Awaiter(handle_type task) noexcept : h(task) {}
        Awaiter(const Awaiter &) = delete;
        Awaiter &operator=(const Awaiter &) = delete;
        ~Awaiter() {
            if (awaited && awaited->awaiter == this) {  // destroyed while waiting: unlink
                awaited->continuation = nullptr;
                awaited->awaiter = nullptr;
            }
        }
        bool await_ready() const noexcept { return h.done(); }
        void await_suspend(std::coroutine_handle<> awaiting) noexcept {
            awaited = &h.promise();
            awaited->continuation = awaiting;
            awaited->awaiter = this;
        }
        T await_resume() {
            if (!h || (awaited == nullptr && !h.done()))
                throw Error(TORNADO_ERR_CANCELLED, "co_await: the awaited tornado::Task was destroyed");
            return h.promise().take();
        }
        handle_type h;
    };
    handle_type h_;
};

namespace detail {
template <typename T>
Task<T> Promise<T>::get_return_object() noexcept {
    return Task<T>(std::coroutine_handle<Promise<T>>::from_promise(*this));
}
inline Task<void> Promise<void>::get_return_object() noexcept {
    return Task<void>(std::coroutine_handle<Promise<void>>::from_promise(*this));
}
}  // namespace detail

inline auto Future::operator co_await() const { return detail::FutureAwaiter<void>(share()); }
template <typename T>
auto FutureOf<T>::operator co_await() const {
    return detail::FutureAwaiter<T>(Future::share());
}

template <typename T>
T Loop::run_sync(Task<T> &task, double timeout_s) {
    if (!task.done()) {
        Future f = task.as_future(*this);
        tornado_code rc = run_sync(f, timeout_s);
        if (!task.done()) {
            throw Error(rc == TORNADO_OK ? TORNADO_ERR_NOT_DONE : rc,
                        std::string("tornado::Loop::run_sync: the task did not finish: ") + tornado_code_name(rc));
        }
    }
    return task.result();
}

template <typename T>
void Loop::spawn(Task<T> task) {
    if (task.done()) {
        task.result();  // rethrows its exception
        return;
    }
    if (!spawned_) spawned_ = std::make_unique<detail::SpawnedList>();
    typename Task<T>::handle_type h = task.release();
    h.promise().destroy = [](detail::SpawnedNode *n) {
        auto &p = static_cast<typename Task<T>::promise_type &>(*static_cast<detail::PromiseBase *>(n));
        Task<T>::handle_type::from_promise(p).destroy();
    };
    spawned_->push(&h.promise());
}

#endif  // TORNADO_RS_COROUTINES

}  // namespace tornado

#endif  // TORNADO_RS_HPP
