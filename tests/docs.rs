//! The documentation keeps up with the header: every function declared in
//! include/tornado_rs.h has a doc comment there and a row in
//! docs/reference.md; and every one is abused by a C test.

#[path = "common/source.rs"]
mod source;

use source::declared_functions;
use std::path::Path;

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).expect(path)
}

#[test]
fn every_function_is_documented_and_listed() {
    let header = read("include/tornado_rs.h");
    let reference = read("docs/reference.md");
    let names = declared_functions(&header);
    assert!(names.len() > 100, "found {} functions", names.len());
    let unlisted: Vec<&String> = names
        .iter()
        .filter(|n| !reference.contains(&format!("`{n}`")))
        .collect();
    assert!(
        unlisted.is_empty(),
        "missing from docs/reference.md: {unlisted:?}"
    );
    for name in &names {
        let at = header.find(&format!("{name}(")).unwrap();
        let before = header[..at].trim_end();
        let decl_start = before.rfind('\n').map_or(0, |i| i + 1);
        let above = header[..decl_start].trim_end();
        assert!(
            above.ends_with("*/"),
            "{name} has no doc comment in the header"
        );
    }
}

/// Issue 6's "abuse of the API": every function of the header is called
/// with bad arguments by one of the two C abuse tests. A new function fails
/// this test until its misuse is tested too. Only calls count: the files'
/// comments and string literals are taken out first, so a name in a
/// comment or a message is not a test.
#[test]
fn every_function_is_abused_by_a_c_test() {
    let header = read("include/tornado_rs.h");
    let abuse = read("tests/c/test_bad_input.c")
        + "\n"
        + &read("tests/c/test_api_abuse.c")
        + "\n"
        + &read("tests/c/test_websocket.c");
    let code = source::strip_c(&abuse, false);
    let untested: Vec<String> = declared_functions(&header)
        .into_iter()
        .filter(|name| !source::calls(&code, name))
        .collect();
    assert!(
        untested.is_empty(),
        "not called by tests/c/test_bad_input.c, test_api_abuse.c or test_websocket.c: {untested:?}"
    );
}
