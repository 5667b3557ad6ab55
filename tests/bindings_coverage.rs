//! Every binding keeps up with the C header: each function
//! include/tornado_rs.h declares is either wrapped by the binding (its name
//! is in the binding's code, outside comments) or named, with the reason,
//! in the binding's list of functions deliberately left out.
//!
//! A list (`UNWRAPPED`, next to the binding) has one `name  reason` per
//! line; blank lines and lines starting with `#` are ignored. The list must
//! stay true: a name it gives that the binding does wrap, that the header
//! does not declare, that comes twice or that has no reason fails the test.
//!
//! A function added to the C API therefore fails this test until every
//! binding wraps it or says why not.

#[path = "common/source.rs"]
mod source;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// How a binding's sources are read.
#[derive(Clone, Copy)]
enum Language {
    /// C++: calls by name; comments and string literals are not code.
    Cpp,
    /// Go: the same, plus the cgo preamble, which is C code.
    Go,
    /// Ruby (ffi gem): a function is named by a symbol or a string.
    Ruby,
    /// Python (ctypes): a function is named by a string or an attribute.
    Python,
}

struct Binding {
    name: &'static str,
    language: Language,
    /// The binding's source files, or directories whose files ending in
    /// `ext`, at any depth, are its sources (Go's `_test.go` files
    /// excluded: cgo is not allowed in them, they use the package).
    sources: &'static [&'static str],
    ext: &'static str,
    /// The list of functions the binding leaves out on purpose.
    unwrapped: &'static str,
}

const BINDINGS: &[Binding] = &[
    Binding {
        name: "C++ wrapper",
        language: Language::Cpp,
        sources: &["include/tornado_rs.hpp"],
        ext: ".hpp",
        unwrapped: "tests/cpp/UNWRAPPED",
    },
    Binding {
        name: "Go",
        language: Language::Go,
        sources: &["c_examples/go/tornado"],
        ext: ".go",
        unwrapped: "c_examples/go/UNWRAPPED",
    },
    Binding {
        name: "Ruby",
        language: Language::Ruby,
        sources: &["c_examples/ruby/lib"],
        ext: ".rb",
        unwrapped: "c_examples/ruby/UNWRAPPED",
    },
    Binding {
        name: "Python (c_examples)",
        language: Language::Python,
        sources: &["c_examples/python/tornado_rs.py"],
        ext: ".py",
        unwrapped: "c_examples/python/UNWRAPPED",
    },
    Binding {
        name: "Python package",
        language: Language::Python,
        sources: &["python/tornado_rs"],
        ext: ".py",
        unwrapped: "python/UNWRAPPED",
    },
];

/// The source files of `binding`, sorted.
fn source_files(binding: &Binding) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for source in binding.sources {
        collect(&repo().join(source), binding.ext, &mut files);
    }
    files.sort();
    assert!(!files.is_empty(), "{}: no source files", binding.name);
    files
}

/// `path` if it is a file, else the files under it (at any depth) whose
/// names end in `ext`.
fn collect(path: &Path, ext: &str, files: &mut Vec<PathBuf>) {
    if !path.is_dir() {
        files.push(path.to_path_buf());
        return;
    }
    for entry in std::fs::read_dir(path).unwrap() {
        let entry = entry.unwrap().path();
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        if entry.is_dir() {
            collect(&entry, ext, files);
        } else if name.ends_with(ext) && !name.ends_with("_test.go") {
            files.push(entry);
        }
    }
}

/// Every word in the code of `binding`'s sources.
fn binding_words(binding: &Binding) -> BTreeSet<String> {
    let mut words = BTreeSet::new();
    for file in source_files(binding) {
        let text = read(&file);
        let code = match binding.language {
            Language::Cpp => source::strip_c(&text, false),
            Language::Go => source::strip_go(&text),
            Language::Ruby => source::strip_ruby(&text),
            Language::Python => source::strip_python(&text),
        };
        words.extend(source::identifiers(&code));
    }
    words
}

/// `name -> reason` from the list at `path` (its text is `text`), or the
/// list's own errors.
fn parse_list(path: &str, text: &str) -> Result<BTreeMap<String, String>, Vec<String>> {
    let mut entries = BTreeMap::new();
    let mut errors = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, reason) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let reason = reason.trim();
        if reason.is_empty() {
            errors.push(format!("{path}:{}: {name} has no reason", n + 1));
        }
        if entries.insert(name.to_owned(), reason.to_owned()).is_some() {
            errors.push(format!("{path}:{}: {name} is listed twice", n + 1));
        }
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(errors)
    }
}

/// What is wrong with a binding whose code holds `words`, against the
/// header's `declared` functions and its list at `list_path` (text
/// `list_text`); empty when nothing.
fn problems(
    declared: &[String],
    words: &BTreeSet<String>,
    list_path: &str,
    list_text: &str,
) -> Vec<String> {
    let list = match parse_list(list_path, list_text) {
        Ok(list) => list,
        Err(errors) => return errors,
    };
    let mut problems = Vec::new();
    let missing: Vec<&str> = declared
        .iter()
        .filter(|name| !words.contains(*name) && !list.contains_key(*name))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "neither wrapped nor listed in {list_path} (wrap them, or add `name  reason` lines): {}",
            missing.join(" ")
        ));
    }
    for name in list.keys() {
        if !declared.contains(name) {
            problems.push(format!(
                "{list_path}: {name} is not a function of include/tornado_rs.h"
            ));
        } else if words.contains(name) {
            problems.push(format!(
                "{list_path}: {name} is wrapped: take it off the list"
            ));
        }
    }
    problems
}

#[test]
fn every_binding_wraps_or_lists_every_c_function() {
    let declared = source::declared_functions(&read(Path::new("include/tornado_rs.h")));
    assert!(declared.len() > 100, "found {} functions", declared.len());
    let mut report = String::new();
    for binding in BINDINGS {
        let words = binding_words(binding);
        let list = read(Path::new(binding.unwrapped));
        let problems = problems(&declared, &words, binding.unwrapped, &list);
        if !problems.is_empty() {
            report.push_str(&format!(
                "\n{}:\n  {}\n",
                binding.name,
                problems.join("\n  ")
            ));
        }
    }
    assert!(
        report.is_empty(),
        "bindings out of step with the header:{report}"
    );
}

/// Each binding wraps something: a source path that moved (and so reads as
/// a binding that wraps nothing, every function "missing") is reported as
/// that, not as a hundred missing functions.
#[test]
fn every_binding_is_found() {
    let declared = source::declared_functions(&read(Path::new("include/tornado_rs.h")));
    for binding in BINDINGS {
        let words = binding_words(binding);
        let wrapped = declared.iter().filter(|name| words.contains(*name)).count();
        assert!(
            wrapped >= 10,
            "{}: only {wrapped} functions wrapped: are its sources {:?}?",
            binding.name,
            binding.sources
        );
    }
}

/// The check itself fails on each way a binding or its list can be wrong.
#[test]
fn the_check_catches_each_kind_of_mistake() {
    let declared: Vec<String> = ["tornado_a", "tornado_b", "tornado_c"]
        .map(String::from)
        .to_vec();
    let words: BTreeSet<String> = ["tornado_a", "other"].map(String::from).into();
    let check = |list: &str| problems(&declared, &words, "LIST", list);
    assert!(check("# comment\n\ntornado_b  why\ntornado_c\tbecause\n").is_empty());
    let one = |list: &str, expect: &str| {
        let found = check(list);
        assert!(
            found.len() == 1 && found[0].contains(expect),
            "{list:?}: expected one problem with {expect:?}, got {found:?}"
        );
    };
    one(
        "tornado_b  why\n",
        "neither wrapped nor listed in LIST (wrap them, or add `name  reason` lines): tornado_c",
    );
    one(
        "tornado_b  why\ntornado_c  why\ntornado_a  why\n",
        "tornado_a is wrapped",
    );
    one(
        "tornado_b  why\ntornado_c  why\ntornado_z  why\n",
        "tornado_z is not a function",
    );
    one(
        "tornado_b  why\ntornado_c\n",
        "LIST:2: tornado_c has no reason",
    );
    one(
        "tornado_b  why\ntornado_c  why\ntornado_b  again\n",
        "LIST:3: tornado_b is listed twice",
    );
}
