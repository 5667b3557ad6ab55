package tornado

// The low-level event loop, for code that schedules its own callbacks and
// timers: a loop belongs to one OS thread, so Run locks the calling
// goroutine's thread, creates the loop there and runs it until Stop. Only
// AddCallback and Stop may be used from other goroutines.
//
// Go values are never handed to C: each callback is a runtime/cgo.Handle
// stored in C memory, deleted exactly once, when the library calls the
// callback's drop function. (The HTTP Client does not use these: see
// client.go.)

/*
#include <stdint.h>
#include <stdlib.h>
#include "tornado_rs.h"

extern void goRunCallback(void *ud);
extern void goDropCallback(void *ud);

static tornado_code add_callback(tornado_loop *l, void *ud) {
    return tornado_loop_add_callback_full(l, goRunCallback, ud, goDropCallback);
}
static uint64_t call_later(tornado_loop *l, double delay, void *ud) {
    return tornado_loop_call_later_full(l, delay, goRunCallback, ud, goDropCallback);
}
*/
import "C"

import (
	"runtime"
	"runtime/cgo"
	"sync/atomic"
	"time"
	"unsafe"
)

func lastError(what string, code C.tornado_code) error {
	msg := C.tornado_last_error()
	text := "(no message)"
	if msg != nil {
		text = C.GoString(msg)
	}
	return &Error{Code: int(code), Message: what + ": " + text}
}

// Version is the loaded library's version.
func Version() string { return C.GoString(C.tornado_version()) }

// VersionNumber is the loaded library's MAJOR*10000 + MINOR*100 + PATCH;
// HeaderVersionNumber is that of the header the package was built with.
func VersionNumber() int { return int(C.tornado_version_number()) }

// HeaderVersionNumber: see VersionNumber.
const HeaderVersionNumber = C.TORNADO_VERSION_NUMBER

func codeName(code int) string { return C.GoString(C.tornado_code_name(C.tornado_code(code))) }

// liveSlots counts handles not yet released (for the tests).
var liveSlots int64

// handleSlot puts a cgo.Handle in C memory, so that C holds no Go pointer.
func handleSlot(v any) unsafe.Pointer {
	slot := (*C.uintptr_t)(C.malloc(C.size_t(unsafe.Sizeof(C.uintptr_t(0)))))
	*slot = C.uintptr_t(cgo.NewHandle(v))
	atomic.AddInt64(&liveSlots, 1)
	return unsafe.Pointer(slot)
}

func slotHandle(ud unsafe.Pointer) cgo.Handle { return cgo.Handle(*(*C.uintptr_t)(ud)) }

// releaseSlot deletes the handle and frees its slot: exactly once per slot.
func releaseSlot(ud unsafe.Pointer) {
	slotHandle(ud).Delete()
	C.free(ud)
	atomic.AddInt64(&liveSlots, -1)
}

//export goRunCallback
func goRunCallback(ud unsafe.Pointer) {
	slotHandle(ud).Value().(func())()
}

//export goDropCallback
func goDropCallback(ud unsafe.Pointer) { releaseSlot(ud) }

// Loop is an event loop bound to the OS thread that runs it.
type Loop struct {
	ptr *C.tornado_loop
}

// Run locks the goroutine to its OS thread, creates a loop, calls setup on
// the loop thread, and runs the loop until Stop; then frees it.
func Run(setup func(*Loop)) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ptr := C.tornado_loop_new()
	if ptr == nil {
		return lastError("tornado_loop_new", 1)
	}
	l := &Loop{ptr: ptr}
	if err := l.AddCallback(func() { setup(l) }); err != nil {
		C.tornado_loop_free(ptr)
		return err
	}
	if rc := C.tornado_loop_start(ptr); rc != 0 {
		C.tornado_loop_free(ptr)
		return lastError("tornado_loop_start", rc)
	}
	if rc := C.tornado_loop_free(ptr); rc != 0 {
		return lastError("tornado_loop_free", rc)
	}
	return nil
}

// Stop makes Start/Run return. Any goroutine.
func (l *Loop) Stop() { C.tornado_loop_stop(l.ptr) }

// AddCallback runs fn on the loop's thread, on the next iteration. Any goroutine.
func (l *Loop) AddCallback(fn func()) error {
	ud := handleSlot(fn)
	if rc := C.add_callback(l.ptr, ud); rc != 0 {
		releaseSlot(ud) // refused: the drop function will not run
		return lastError("add_callback", rc)
	}
	return nil
}

// CallLater runs fn after d on the loop's thread (loop thread only).
func (l *Loop) CallLater(d time.Duration, fn func()) (uint64, error) {
	ud := handleSlot(fn)
	id := C.call_later(l.ptr, C.double(d.Seconds()), ud)
	if id == 0 {
		releaseSlot(ud)
		return 0, lastError("call_later", 1)
	}
	return uint64(id), nil
}

// RemoveTimeout cancels a CallLater (loop thread only).
func (l *Loop) RemoveTimeout(id uint64) error {
	if rc := C.tornado_loop_remove_timeout(l.ptr, C.uint64_t(id)); rc != 0 {
		return lastError("remove_timeout", rc)
	}
	return nil
}
