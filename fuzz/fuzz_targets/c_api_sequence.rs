//! The C API driven by a fuzzer-chosen sequence of calls on one loop:
//! create, register, remove, complete, free, in any order, with bad
//! arguments. Every call must return (an error code at worst), never crash.
#![no_main]

use std::ffi::c_void;
use std::ptr;

use libfuzzer_sys::fuzz_target;
use tornado_rs::ffi::future::*;
use tornado_rs::ffi::loop_api::*;

unsafe extern "C" fn nothing(_: *mut c_void) {}
unsafe extern "C" fn on_fd(_: i32, _: u32, _: *mut c_void) {}

fuzz_target!(|data: &[u8]| {
    let lp = tornado_loop_new();
    assert!(!lp.is_null());
    let mut futures: Vec<*mut tornado_future> = Vec::new();
    let mut timeouts: Vec<u64> = Vec::new();
    let mut fds = [-1i32; 2];
    // SAFETY: a plain socketpair for handler registrations.
    unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) };
    for pair in data.chunks(2) {
        let op = pair[0];
        let arg = *pair.get(1).unwrap_or(&0);
        let pick = |n: usize| if n == 0 { None } else { Some(usize::from(arg) % n) };
        match op % 14 {
            0 => futures.push(tornado_future_new(lp)),
            1 => {
                if let Some(i) = pick(futures.len()) {
                    tornado_future_unref(futures.swap_remove(i));
                }
            }
            2 => {
                if let Some(i) = pick(futures.len()) {
                    tornado_future_set_result(futures[i], ptr::null_mut(), None);
                }
            }
            3 => {
                if let Some(i) = pick(futures.len()) {
                    tornado_future_set_error(futures[i], i32::from(arg), c"fuzz".as_ptr());
                }
            }
            4 => {
                if let Some(i) = pick(futures.len()) {
                    tornado_future_cancel(futures[i]);
                }
            }
            5 => timeouts.push(tornado_loop_call_later(lp, f64::from(arg) / 1000.0, Some(nothing), ptr::null_mut())),
            6 => {
                if let Some(i) = pick(timeouts.len()) {
                    tornado_loop_remove_timeout(lp, timeouts[i]);
                }
            }
            7 => {
                tornado_loop_add_callback(lp, Some(nothing), ptr::null_mut());
            }
            8 => {
                tornado_loop_add_handler(lp, fds[usize::from(arg) % 2], u32::from(arg), Some(on_fd), ptr::null_mut());
            }
            9 => {
                tornado_loop_remove_handler(lp, fds[usize::from(arg) % 2]);
            }
            10 => {
                tornado_loop_run_once(lp, 0.0);
            }
            11 => {
                // Bad arguments: NULLs, NaN, unknown flags.
                tornado_loop_add_callback(ptr::null_mut(), Some(nothing), ptr::null_mut());
                tornado_loop_call_later(lp, f64::NAN, Some(nothing), ptr::null_mut());
                tornado_loop_add_handler(lp, -1, 0xffff_ffff, None, ptr::null_mut());
                tornado_future_set_result(ptr::null_mut(), ptr::null_mut(), None);
            }
            12 => {
                if let Some(i) = pick(futures.len()) {
                    tornado_loop_run_sync(lp, futures[i], 0.001);
                }
            }
            _ => {
                tornado_loop_remove_timeout(lp, u64::from(arg) << 20 | 7);
            }
        }
    }
    for f in futures {
        tornado_future_unref(f);
    }
    assert_eq!(tornado_loop_free(lp), 0);
    // SAFETY: the fds made above; the loop never closes caller fds.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
});
