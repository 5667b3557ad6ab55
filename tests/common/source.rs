//! Reading sources for the checks of tests/docs.rs and
//! tests/bindings_coverage.rs: the functions include/tornado_rs.h declares,
//! and the code of a C, C++, Go, Ruby or Python file with its comments (and,
//! where asked, its string literals) taken out, so that a name written in a
//! comment never counts as a call.
//!
//! Each `strip_*` keeps the text's line structure (a removed comment or
//! literal leaves a space, its newlines stay) and never joins two words.
//! The scanners are small, not full lexers: where they could misread (a
//! Ruby regular expression holding a quote, say) they err towards dropping
//! code, so a check built on them fails loudly rather than passing wrongly.

// Each test crate that includes this file uses part of it.
#![allow(dead_code)]

use std::collections::BTreeSet;

/// Names of the functions the header declares, in header order.
pub fn declared_functions(header: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in strip_c(header, false).lines() {
        let line = line.trim_start();
        if line.starts_with("typedef") || line.starts_with('#') {
            continue;
        }
        for (at, _) in line.match_indices("tornado_") {
            let rest = &line[at..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if rest[name.len()..].starts_with('(') {
                names.push(name);
                break;
            }
        }
    }
    names
}

/// C or C++ (or Go, which shares their comment and literal syntax; Go's
/// backquoted raw strings are literals too) without its `//` and `/* */`
/// comments; string and character literals are removed too unless
/// `keep_strings`.
pub fn strip_c(source: &str, keep_strings: bool) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            out.push(' ');
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                if chars[i] == '\n' {
                    out.push('\n');
                }
                i += 1;
            }
            i += 2;
            out.push(' ');
        } else if c == '"' || c == '\'' || c == '`' {
            // A backquote is a raw string in Go (no escapes); in C and C++
            // it does not occur outside comments and literals.
            let escapes = c != '`';
            let end = literal_end(&chars, i, c, escapes);
            if keep_strings {
                out.extend(&chars[i..end]);
            } else {
                out.push(' ');
                out.extend(chars[i..end].iter().filter(|&&ch| ch == '\n'));
            }
            i = end;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The index just past the literal opened by `quote` at `start` (the end of
/// the text when it is never closed).
fn literal_end(chars: &[char], start: usize, quote: char, escapes: bool) -> usize {
    let mut i = start + 1;
    while i < chars.len() {
        if escapes && chars[i] == '\\' {
            i += 2;
            continue;
        }
        if chars[i] == quote {
            return i + 1;
        }
        i += 1;
    }
    chars.len()
}

/// A Go file's code: the file without comments and string literals, plus the
/// cgo preamble (the `/* */` comment right before `import "C"`, which is C
/// code the package compiles) without its own comments and literals.
pub fn strip_go(source: &str) -> String {
    let mut code = strip_c(source, false);
    if let Some(import) = source.find("import \"C\"") {
        let before = source[..import].trim_end();
        if let Some(body) = before.strip_suffix("*/") {
            if let Some(open) = body.rfind("/*") {
                code.push('\n');
                code.push_str(&strip_c(&body[open + 2..], false));
            }
        }
    }
    code
}

/// Ruby without its `#` comments and `=begin`/`=end` blocks. String
/// literals stay: the ffi gem finds a C function by the name written as a
/// symbol or a string.
pub fn strip_ruby(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut in_block = false;
    for line in source.split_inclusive('\n') {
        if in_block {
            in_block = !line.starts_with("=end");
            out.push('\n');
            continue;
        }
        if line.starts_with("=begin") {
            in_block = true;
            out.push('\n');
            continue;
        }
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '#' {
                if line.ends_with('\n') {
                    out.push('\n');
                }
                break;
            }
            if c == '"' || c == '\'' {
                let end = literal_end(&chars, i, c, true);
                out.extend(&chars[i..end]);
                i = end;
            } else {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Python without its `#` comments and triple-quoted strings (docstrings).
/// Other string literals stay: ctypes finds a C function by the name
/// written as a string or an attribute.
pub fn strip_python(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            out.push(' ');
        } else if (c == '"' || c == '\'')
            && chars.get(i + 1) == Some(&c)
            && chars.get(i + 2) == Some(&c)
        {
            let mut j = i + 3;
            while j < chars.len()
                && !(chars[j] == c && chars.get(j + 1) == Some(&c) && chars.get(j + 2) == Some(&c))
            {
                if chars[j] == '\\' {
                    j += 1;
                }
                j += 1;
            }
            let end = (j + 3).min(chars.len());
            out.push(' ');
            out.extend(chars[i..end].iter().filter(|&&ch| ch == '\n'));
            i = end;
        } else if c == '"' || c == '\'' {
            let end = literal_end(&chars, i, c, true);
            out.extend(&chars[i..end]);
            i = end;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Every word of `code` (a run of letters, digits and `_`).
pub fn identifiers(code: &str) -> BTreeSet<String> {
    code.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|word| !word.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether `code` calls `name`: the whole word `name`, then `(` (spaces
/// between allowed).
pub fn calls(code: &str, name: &str) -> bool {
    code.match_indices(name).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let word_start = !before.is_some_and(|c| c.is_alphanumeric() || c == '_');
        word_start && code[at + name.len()..].trim_start().starts_with('(')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_comments_and_literals_go() {
        let code = strip_c(
            "a(); // b()\n/* c()\n d() */ e(\"f()\", 'g'); /* \"*/ h();",
            false,
        );
        assert!(calls(&code, "a") && calls(&code, "e") && calls(&code, "h"));
        for gone in ["b", "c", "d", "f", "g"] {
            assert!(!identifiers(&code).contains(gone), "{gone} in {code:?}");
        }
        assert_eq!(code.lines().count(), 3, "{code:?}");
        assert!(strip_c("x(\"y\")", true).contains("\"y\""));
        // An escaped quote does not end a literal.
        assert!(!identifiers(&strip_c(r#"s("a\" b()");"#, false)).contains("b"));
    }

    #[test]
    fn calls_needs_the_whole_word() {
        assert!(calls("x = tornado_a (1);", "tornado_a"));
        assert!(!calls("tornado_a_full(1);", "tornado_a"));
        assert!(!calls("my_tornado_a(1);", "tornado_a"));
        assert!(!calls("f(tornado_a);", "tornado_a"));
    }

    #[test]
    fn go_keeps_the_cgo_preamble() {
        let go = "// Package p wraps tornado_a.\npackage p\n\n/*\n#include \"t.h\"\n// tornado_b\nstatic int f(void) { return tornado_c(); }\n*/\nimport \"C\"\n\nfunc g() { C.tornado_d(); s := \"tornado_e\" } // tornado_f\n";
        let words = identifiers(&strip_go(go));
        assert!(words.contains("tornado_c") && words.contains("tornado_d"));
        for gone in ["tornado_a", "tornado_b", "tornado_e", "tornado_f"] {
            assert!(!words.contains(gone), "{gone}");
        }
    }

    #[test]
    fn ruby_and_python_keep_names_in_strings() {
        let rb = "# tornado_a\nattach_function :tornado_b, [], :int # tornado_c\nx = \"#{tornado_d}\"\n=begin\ntornado_e\n=end\n";
        let words = identifiers(&strip_ruby(rb));
        assert!(words.contains("tornado_b") && words.contains("tornado_d"));
        for gone in ["tornado_a", "tornado_c", "tornado_e"] {
            assert!(!words.contains(gone), "{gone}");
        }
        let py =
            "\"\"\"tornado_a\n\"\"\"\n_sig(\"tornado_b\", x)  # tornado_c\nlib.tornado_d('#')\n";
        let words = identifiers(&strip_python(py));
        assert!(words.contains("tornado_b") && words.contains("tornado_d"));
        assert!(!words.contains("tornado_a") && !words.contains("tornado_c"));
    }
}
