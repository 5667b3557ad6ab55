//! Generates `include/tornado_rs.h` from the `extern "C"` layer in `src/ffi`,
//! and gives the shared library its SONAME.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libtornado_rs.so.0");

    link_soname_alias();
    ipv6_test_opt_out();

    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is valid");
    let header = crate_dir.join("include").join("tornado_rs.h");
    match cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .with_after_include(status_code_defines())
        .generate()
    {
        // write_to_file leaves the file untouched when the content is the same.
        Ok(bindings) => {
            bindings.write_to_file(&header);
        }
        Err(e) => panic!("cbindgen failed: {e}"),
    }
}

/// Tests that need an IPv6 loopback (`::1`) fail where it is missing,
/// unless `TORNADO_TEST_NO_IPV6=1` says so: then `cfg(tornado_no_ipv6)`
/// marks them ignored, with the reason (tests/common/ipv6.rs).
fn ipv6_test_opt_out() {
    println!("cargo:rerun-if-env-changed=TORNADO_TEST_NO_IPV6");
    println!("cargo:rustc-check-cfg=cfg(tornado_no_ipv6)");
    if std::env::var("TORNADO_TEST_NO_IPV6").is_ok_and(|v| !v.is_empty() && v != "0") {
        println!("cargo:rustc-cfg=tornado_no_ipv6");
    }
}

/// The header's `TORNADO_*` status codes, from the table in
/// `src/status_codes.rs` that the library's own constants come from (the
/// Rust side defines them with a macro, which cbindgen does not expand).
fn status_code_defines() -> String {
    macro_rules! status_codes {
        ($($name:ident = $value:literal, $c_name:ident, $doc:literal;)*) => {
            [$((stringify!($c_name), $value, $doc)),*]
        };
    }
    let rows: &[(&str, i32, &str)] = &include!("src/status_codes.rs");
    let mut text = String::new();
    for (name, value, doc) in rows {
        text.push_str(&format!("\n/**\n * {doc}\n */\n#define {name} {value}\n"));
    }
    text
}

/// The library's SONAME is `libtornado_rs.so.0`, so programs linked against
/// `libtornado_rs.so` look for that name at run time. Cargo only writes
/// `libtornado_rs.so`; this leaves a relative symlink beside it (in
/// `target/<profile>/`) so programs built in the tree run without an install.
fn link_soname_alias() {
    let Ok(out_dir) = std::env::var("OUT_DIR") else {
        return;
    };
    // OUT_DIR is target/<profile>/build/<pkg>-<hash>/out.
    let Some(profile_dir) = PathBuf::from(out_dir).ancestors().nth(3).map(PathBuf::from) else {
        return;
    };
    let alias = profile_dir.join("libtornado_rs.so.0");
    if alias.symlink_metadata().is_err() {
        let _ = std::os::unix::fs::symlink("libtornado_rs.so", &alias);
    }
}
