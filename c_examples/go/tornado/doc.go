// Package tornado is a cgo binding of tornado_rs, Python Tornado's event
// loop and HTTP client in Rust, as ordinary Go code expects it:
//
//	client, err := tornado.NewClient(nil) // one loop on its own OS thread
//	defer client.Close()
//	resp, err := client.Do(ctx, &tornado.Request{URL: "http://127.0.0.1:8000/"})
//
//	hc := &http.Client{Transport: client} // net/http code over tornado_rs
//	r, err := hc.Get("http://127.0.0.1:8000/big") // r.Body streams
//
// A Client may be used from any goroutine. Its loop runs on a goroutine
// locked to its own OS thread (a tornado_rs loop belongs to one thread);
// requests reach it through a queue and the library's thread-safe
// add_callback, and completions come back in batches: the library's
// callbacks are C functions that record events, and the loop returns to Go
// once per batch instead of calling from C into Go once per event.
//
// Do's context is the fetch's deadline (it becomes the request and connect
// timeout) and its cancellation (the fetch is aborted and its connection
// closed before Do returns). Errors are *Error values: errors.Is(err,
// context.DeadlineExceeded) and errors.Is(err, context.Canceled) hold as
// they do for net/http, *Error is a net.Error (Timeout()), and an error
// the operating system reported unwraps to its syscall.Errno
// (errors.Is(err, syscall.ECONNREFUSED)).
//
// Building: the package links libtornado_rs through pkg-config (the
// tornado_rs.pc that `make install` writes). For the library built in a
// tornado_rs checkout instead, `make go-pkgconfig` writes a tornado_rs.pc
// that points into the tree (build/pkgconfig-intree); then
//
//	export PKG_CONFIG_PATH=$PWD/build/pkgconfig-intree
//	export LD_LIBRARY_PATH=$PWD/target/release   # nothing is baked into the binary
//
// Loop, Run, AddCallback and CallLater are the low-level loop, for code
// that schedules its own callbacks on the loop's thread.
package tornado

// #cgo pkg-config: tornado_rs
import "C"
