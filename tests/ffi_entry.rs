//! Every C function goes through the entry guard (`entry!` in src/ffi/mod.rs):
//! its body is one `entry!(...)`, or a call of another C function (which has
//! its own). A function that returns before the guard, or does work outside
//! it, is listed here as a failure.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The body of the function whose `{` is at `open`: up to its matching `}`
/// (braces in strings and comments do not occur in these bodies' first
/// statement, which is all the check reads).
fn body_after(text: &str, open: usize) -> &str {
    let mut depth = 0usize;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &text[open + 1..open + i];
                }
            }
            _ => {}
        }
    }
    &text[open + 1..]
}

/// The body without its comment lines, trimmed.
fn code_of(body: &str) -> String {
    body.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Helpers that a C function may hand its whole body to: each checks its
/// handle and runs the closure inside `entry!` (verified below).
const GUARDED_HELPERS: [&str; 2] = ["with_request(", "with_options("];

/// C functions that do not go through the guard, and why.
const UNGUARDED: [(&str, &str); 2] = [
    (
        "tornado_last_error",
        "a failure inside it would overwrite the text it returns; it cannot panic",
    ),
    (
        "tornado_loop_add_callback",
        "its fast path cannot panic and costs W1 13 % more instructions inside \
         catch_unwind; the rest goes through entry!",
    ),
];

fn is_guarded(code: &str) -> bool {
    // An out-value set to NULL first, for the guard's closure to fill.
    let code = match code.split_once('\n') {
        Some((first, rest))
            if first.starts_with("let mut ") && first.ends_with("= std::ptr::null();") =>
        {
            rest
        }
        _ => code,
    };
    // The whole body in the guard.
    if code.starts_with("entry!(") {
        return code.ends_with(')');
    }
    // The guard's outcome kept, then written to an out-parameter.
    if code.starts_with("let ") && code.lines().next().unwrap().contains("= entry!(") {
        return true;
    }
    // A NULL handle is nothing to do; everything else in the guard.
    if let Some(rest) = code
        .strip_prefix("if ")
        .filter(|_| code.lines().next().unwrap().ends_with(".is_null() {"))
    {
        let after_check = rest.split_once('\n').map_or("", |(_, after)| after);
        return after_check.starts_with("entry!(")
            || after_check.starts_with("return;\n}\nentry!(");
    }
    if GUARDED_HELPERS.iter().any(|h| code.starts_with(h)) {
        return code.ends_with(')');
    }
    // A delegation: `tornado_x(args)`, one expression and nothing else.
    code.starts_with("tornado_") && !code.contains(';') && code.ends_with(')')
}

#[test]
fn the_guarded_helpers_run_their_closures_in_the_guard() {
    let mut files = Vec::new();
    rust_files(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/ffi")
            .as_path(),
        &mut files,
    );
    let mut seen = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for helper in GUARDED_HELPERS {
            let name = helper.trim_end_matches('(');
            let mut from = 0;
            while let Some(at) = text[from..].find(&format!("fn {name}(")) {
                let start = from + at;
                let open = start
                    + text[start..]
                        .find(") -> tornado_code {")
                        .expect("returns a code")
                    + 18;
                let code = code_of(body_after(&text, open));
                assert!(
                    code.contains("entry!(code,"),
                    "{name} in {} does not run its closure in entry!: {code}",
                    file.display()
                );
                seen += 1;
                from = open;
            }
        }
    }
    assert!(
        seen >= 3,
        "found {seen} guarded helpers: is the scan broken?"
    );
}

#[test]
fn every_c_function_runs_inside_the_entry_guard() {
    let mut files = Vec::new();
    rust_files(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/ffi")
            .as_path(),
        &mut files,
    );
    let (mut checked, mut unguarded) = (0, Vec::new());
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut from = 0;
        while let Some(at) = text[from..].find("pub extern \"C\" fn ") {
            let start = from + at;
            let name: String = text[start + 18..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let open = start + text[start..].find('{').expect("a body");
            let code = code_of(body_after(&text, open));
            checked += 1;
            if !is_guarded(&code) && !UNGUARDED.iter().any(|(n, _)| *n == name) {
                unguarded.push(format!(
                    "{} in {}: {:?}",
                    name,
                    file.display(),
                    code.chars().take(60).collect::<String>()
                ));
            }
            from = open;
        }
    }
    assert!(
        checked > 150,
        "found only {checked} C functions: is the scan broken?"
    );
    assert!(
        unguarded.is_empty(),
        "C functions not inside entry!(...):\n{}",
        unguarded.join("\n")
    );
}
