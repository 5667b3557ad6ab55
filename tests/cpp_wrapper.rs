//! include/tornado_rs.hpp: compiles tests/cpp/test_wrapper.cpp with
//! `-std=c++17 -Wall -Wextra -Werror` (CXX, default g++) against the built
//! library and runs it (under valgrind with TORNADO_VALGRIND=1).

mod common;

use std::process::Command;

use common::c_build::{lib_dir, repo_dir, valgrind_enabled};

#[test]
fn cpp_wrapper() {
    let lib = lib_dir();
    let exe = lib.join("c-tests").join("test_wrapper_cpp");
    std::fs::create_dir_all(exe.parent().unwrap()).unwrap();
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "g++".into());
    let status = Command::new(&cxx)
        .args([
            "-std=c++17",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-g",
            "-pthread",
        ])
        .arg(format!("-I{}", repo_dir().join("include").display()))
        .arg(repo_dir().join("tests/cpp/test_wrapper.cpp"))
        .arg(format!("-L{}", lib.display()))
        .arg("-ltornado_rs")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-o")
        .arg(&exe)
        .status()
        .expect("run the C++ compiler");
    assert!(status.success(), "compiling test_wrapper.cpp failed");
    let mut cmd = if valgrind_enabled() {
        let mut c = Command::new("valgrind");
        c.args([
            "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect",
            "--error-exitcode=99",
            "-q",
        ])
        .arg(format!(
            "--suppressions={}",
            repo_dir().join("tests/valgrind.supp").display()
        ))
        .arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    let out = cmd.output().expect("run test_wrapper");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(" passed, 0 failed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
