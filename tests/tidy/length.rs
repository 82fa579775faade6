//! The length check: no function outside tests is longer than [`MAX_FN_LINES`] lines
//! (TigerBeetle's tidy test keeps the same limit), so every function fits on one screen.

use crate::scan::{attributes_before, matching, Token};
use crate::{load_sources, SourceFile};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Longest function allowed outside tests, in lines from `fn` to its closing brace.
const MAX_FN_LINES: usize = 70;

/// Files included only under `#[cfg(test)] mod name;` (and everything below them).
fn test_only_files(files: &[SourceFile]) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for f in files {
        let t = &f.toks;
        let dir = match Path::new(&f.rel) {
            p if p.ends_with("mod.rs") || f.module.is_empty() => p.parent().unwrap().to_path_buf(),
            p => p.with_extension(""),
        };
        for i in 0..t.len().saturating_sub(2) {
            if t[i].text == "mod" && t[i + 2].text == ";" {
                let start = item_start(t, i);
                if attributes_before(t, start).iter().any(|a| is_test_attr(a)) {
                    out.insert(dir.join(&t[i + 1].text));
                }
            }
        }
    }
    out
}

/// Walks back from a `fn`/`mod` keyword over `pub(..)`, `async`, `const`, `unsafe`, `extern ""`.
fn item_start(t: &[Token], mut i: usize) -> usize {
    loop {
        let prev = if i > 0 { t[i - 1].text.as_str() } else { "" };
        match prev {
            "pub" | "async" | "const" | "unsafe" | "extern" | "default" => i -= 1,
            ")" if i >= 3 && t[i - 3].text == "(" && t[i - 4].text == "pub" => i -= 4,
            "\"" if i >= 3 && t[i - 3].text == "extern" => i -= 3,
            _ => return i,
        }
    }
}

/// (name, first line, lines) of every function in `f` outside test code.
fn long_functions(f: &SourceFile) -> Vec<(String, usize, usize)> {
    let t = &f.toks;
    let mut out = Vec::new();
    let mut i = 0;
    while i < t.len() {
        let is_item = matches!(t[i].text.as_str(), "fn" | "mod");
        if is_item && t.get(i + 1).is_some_and(|n| n.text != "(") {
            let test = attributes_before(t, item_start(t, i))
                .iter()
                .any(|a| is_test_attr(a));
            let Some(open) = body_start(t, i) else {
                i += 1;
                continue;
            };
            if test {
                i = matching(t, open) + 1;
                continue;
            }
            if t[i].text == "fn" {
                let lines = t[matching(t, open)].line - t[i].line + 1;
                if lines > MAX_FN_LINES {
                    out.push((t[i + 1].text.clone(), t[i].line, lines));
                }
            }
        }
        i += 1;
    }
    out
}

/// The `{` opening the body of the item at `i`, or None if it ends with `;` first.
fn body_start(t: &[Token], i: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (k, tok) in t.iter().enumerate().skip(i) {
        match tok.text.as_str() {
            "(" | "[" => depth += 1,
            ")" | "]" => depth -= 1,
            "{" if depth == 0 => return Some(k),
            ";" if depth == 0 => return None,
            _ => {}
        }
    }
    None
}

#[test]
fn functions_fit_on_one_screen() {
    let files = load_sources();
    let test_only = test_only_files(&files);
    let mut too_long = Vec::new();
    for f in &files {
        let rel = Path::new(&f.rel);
        if test_only
            .iter()
            .any(|t| rel.with_extension("").starts_with(t))
        {
            continue;
        }
        for (name, line, lines) in long_functions(f) {
            too_long.push(format!("src/{}:{line}: fn {name} is {lines} lines", f.rel));
        }
    }
    assert!(
        too_long.is_empty(),
        "functions longer than {MAX_FN_LINES} lines (split them):\n{}",
        too_long.join("\n")
    );
}

/// True for `#[test]` and `#[cfg(test)]` (not `cfg(not(test))`).
pub fn is_test_attr(attr: &str) -> bool {
    attr == "test" || attr.ends_with(":: test") || attr == "cfg ( test )"
}

#[cfg(test)]
mod checker_tests {
    use super::*;
    use crate::scan::{strip, tokens};

    #[test]
    fn counts_from_fn_to_closing_brace_and_skips_tests() {
        let body = |n: usize| "    x();\n".repeat(n);
        let src = format!(
            "pub(crate) async fn long() {{\n{}}}\nfn short() {{\n{}}}\n\
             trait T {{ fn decl(&self); }}\n#[test]\nfn a_test() {{\n{}}}\n\
             #[cfg(test)]\nmod tests {{\n    fn helper() {{\n{}}}\n}}\n",
            body(69),
            body(68),
            body(90),
            body(90)
        );
        let f = SourceFile {
            rel: "x.rs".into(),
            module: vec!["x".into()],
            toks: tokens(&strip(&src)),
        };
        assert_eq!(long_functions(&f), [("long".to_string(), 1, 71)]);
    }
}
