//! Tidy tests over the source tree (no broker needed):
//! - layers: every import between top-level modules of `src/` is allowed by the "may import"
//!   table in ARCHITECTURE.md (the table is this test's input, so the document stays true),
//!   and the modules form no cycle;
//! - length (`length.rs`): no function outside tests is longer than 70 lines.

mod length;
mod scan;

use scan::{attributes_before, matching, rust_files, strip, tokens, Token};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

pub struct SourceFile {
    /// Path relative to `src/`, with `/` separators.
    pub rel: String,
    /// The module path of the file (`["storage", "partition"]`); empty for lib.rs and main.rs.
    pub module: Vec<String>,
    pub toks: Vec<Token>,
}

pub fn load_sources() -> Vec<SourceFile> {
    let src = Path::new(ROOT).join("src");
    rust_files(&src)
        .into_iter()
        .map(|path| {
            let rel = path
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&path).unwrap();
            SourceFile {
                module: module_path(&rel),
                toks: tokens(&strip(&text)),
                rel,
            }
        })
        .collect()
}

fn module_path(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(String::from)
        .collect();
    if parts.last().is_some_and(|p| p == "mod") || matches!(rel, "lib.rs" | "main.rs") {
        parts.pop();
    }
    parts
}

/// Top-level modules declared in src/lib.rs.
fn crate_modules(files: &[SourceFile]) -> BTreeSet<String> {
    let lib = files
        .iter()
        .find(|f| f.rel == "lib.rs")
        .expect("src/lib.rs");
    let t = &lib.toks;
    (0..t.len().saturating_sub(2))
        .filter(|&i| t[i].text == "mod" && t[i + 2].text == ";")
        .map(|i| t[i + 1].text.clone())
        .collect()
}

/// `#[macro_export]` macros: they live at the crate root, so `crate::info!` names the
/// top-level module that defines `info`.
fn exported_macros(files: &[SourceFile]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for f in files.iter().filter(|f| !f.module.is_empty()) {
        let t = &f.toks;
        for i in 0..t.len().saturating_sub(2) {
            let is_macro = t[i].text == "macro_rules" && t[i + 1].text == "!";
            if is_macro && attributes_before(t, i).iter().any(|a| a == "macro_export") {
                out.insert(t[i + 2].text.clone(), f.module[0].clone());
            }
        }
    }
    out
}

/// One path from a module of `src/` to a top-level module.
#[derive(Debug)]
struct Import {
    file: String,
    line: usize,
    from: String,
    to: String,
}

/// Top-level modules named by the path starting at token `i` (just after `crate ::` or
/// the `super ::` chain that reached the crate root): one ident, or a `{a, b::c}` group.
fn path_heads(t: &[Token], i: usize) -> Vec<(String, usize)> {
    match t.get(i) {
        Some(tok) if tok.text == "{" => {
            let end = matching(t, i);
            let mut heads = Vec::new();
            let mut depth = 0usize;
            for k in i..end {
                match t[k].text.as_str() {
                    "{" => depth += 1,
                    "}" => depth -= 1,
                    _ => {}
                }
                let starts_item = depth == 1 && (t[k].text == "{" || t[k].text == ",");
                if starts_item && t[k + 1].text != "}" && t[k + 1].text != "*" {
                    heads.push((t[k + 1].text.clone(), t[k + 1].line));
                }
            }
            heads
        }
        Some(tok) if tok.text != "*" => vec![(tok.text.clone(), tok.line)],
        _ => Vec::new(),
    }
}

/// Every path in `f` that names a top-level module: `crate::x`, `$crate::x`, `crate::{..}`
/// and `super::` chains that climb to the crate root. Inline `mod m { }` blocks count
/// as one level of nesting for `super`.
fn imports_of(f: &SourceFile, macros: &BTreeMap<String, String>) -> Vec<Import> {
    let t = &f.toks;
    let mut out = Vec::new();
    let mut braces: Vec<bool> = Vec::new(); // true: the brace opened an inline module
    let mut i = 0;
    while i < t.len() {
        let text = t[i].text.as_str();
        let depth = f.module.len() + braces.iter().filter(|&&m| m).count();
        let mut heads = Vec::new();
        if text == "{" {
            braces.push(i >= 2 && t[i - 2].text == "mod");
        } else if text == "}" {
            braces.pop();
        } else if text == "crate" && t.get(i + 1).is_some_and(|n| n.text == "::") {
            heads = path_heads(t, i + 2);
        } else if text == "super" && (i < 2 || t[i - 2].text != "super") {
            let mut k = i;
            let mut ups = 0;
            while t.get(k).is_some_and(|x| x.text == "super") && t[k + 1].text == "::" {
                ups += 1;
                k += 2;
            }
            if ups >= depth {
                heads = path_heads(t, k);
            }
        }
        for (head, line) in heads {
            let head = macros.get(&head).cloned().unwrap_or(head);
            if let Some(from) = f.module.first().filter(|m| **m != head) {
                out.push(Import {
                    file: f.rel.clone(),
                    line,
                    from: from.clone(),
                    to: head,
                });
            }
        }
        i += 1;
    }
    out
}

/// The "may import" table of ARCHITECTURE.md: module -> modules it may import.
fn layer_table() -> BTreeMap<String, BTreeSet<String>> {
    let doc = std::fs::read_to_string(Path::new(ROOT).join("ARCHITECTURE.md")).unwrap();
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with("Modules and the direction of imports"))
        .expect("ARCHITECTURE.md has a section 'Modules and the direction of imports'");
    let mut rows: Vec<(String, String)> = Vec::new();
    for line in section.lines().filter(|l| l.trim_start().starts_with('|')) {
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        let name = cells[0].trim_matches('`');
        if cells.len() < 3 || name == "module" || name.starts_with('-') {
            continue;
        }
        rows.push((name.to_string(), cells[cells.len() - 1].replace('`', "")));
    }
    let names: BTreeSet<String> = rows.iter().map(|(n, _)| n.clone()).collect();
    rows.into_iter()
        .map(|(name, cell)| {
            let allowed = parse_allowed(&cell, &name, &names);
            (name, allowed)
        })
        .collect()
}

/// `—`, `a, b (note), c` or `everything except a, b`.
fn parse_allowed(cell: &str, me: &str, all: &BTreeSet<String>) -> BTreeSet<String> {
    let mut text = String::new();
    let mut parens = 0usize;
    for c in cell.chars() {
        match c {
            '(' => parens += 1,
            ')' => parens = parens.saturating_sub(1),
            _ if parens == 0 => text.push(c),
            _ => {}
        }
    }
    let list = |s: &str| -> BTreeSet<String> {
        s.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty() && *s != "—" && *s != "-")
            .map(String::from)
            .collect()
    };
    match text.trim().strip_prefix("everything except") {
        Some(rest) => {
            let except = list(rest);
            all.iter()
                .filter(|m| *m != me && !except.contains(*m))
                .cloned()
                .collect()
        }
        None => list(&text),
    }
}

/// A cycle in `graph` as a path `a -> b -> ... -> a`, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(2) => return None,
            Some(1) => {
                let at = path.iter().position(|p| p == n).unwrap();
                let mut cycle = path[at..].to_vec();
                cycle.push(n.to_string());
                return Some(cycle);
            }
            _ => {}
        }
        state.insert(n.to_string(), 1);
        path.push(n.to_string());
        for next in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(next, g, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut state, &mut Vec::new()))
}

#[test]
fn layer_table_is_complete_and_acyclic() {
    let files = load_sources();
    let table = layer_table();
    let missing: Vec<_> = crate_modules(&files)
        .into_iter()
        .filter(|m| !table.contains_key(m))
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a row in ARCHITECTURE.md: {missing:?}"
    );
    for (m, allowed) in &table {
        let unknown: Vec<_> = allowed.iter().filter(|a| !table.contains_key(*a)).collect();
        assert!(
            unknown.is_empty(),
            "row {m} names modules that have no row: {unknown:?}"
        );
    }
    assert_eq!(find_cycle(&table), None, "the table of layers has a cycle");
}

#[test]
fn imports_follow_the_layer_table() {
    let files = load_sources();
    let table = layer_table();
    let modules = crate_modules(&files);
    let macros = exported_macros(&files);
    let mut bad = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for imp in files.iter().flat_map(|f| imports_of(f, &macros)) {
        if !modules.contains(&imp.to) {
            bad.push(format!(
                "src/{}:{}: crate::{} is not a module",
                imp.file, imp.line, imp.to
            ));
            continue;
        }
        graph
            .entry(imp.from.clone())
            .or_default()
            .insert(imp.to.clone());
        if !table.get(&imp.from).is_some_and(|a| a.contains(&imp.to)) {
            let (f, l, from, to) = (&imp.file, imp.line, &imp.from, &imp.to);
            bad.push(format!("src/{f}:{l}: {from} imports {to}, not in its row"));
        }
    }
    assert!(
        bad.is_empty(),
        "imports ARCHITECTURE.md's table does not allow:\n{}",
        bad.join("\n")
    );
    assert_eq!(
        find_cycle(&graph),
        None,
        "the modules import each other in a cycle"
    );
}

#[cfg(test)]
mod checker_tests {
    use super::*;

    fn file(rel: &str, src: &str) -> SourceFile {
        SourceFile {
            rel: rel.into(),
            module: module_path(rel),
            toks: tokens(&strip(src)),
        }
    }

    fn targets(rel: &str, src: &str) -> Vec<String> {
        let macros = BTreeMap::from([("info".to_string(), "base".to_string())]);
        imports_of(&file(rel, src), &macros)
            .into_iter()
            .map(|i| i.to)
            .collect()
    }

    #[test]
    fn finds_every_form_of_import() {
        let src = "use crate::model::Offset;\nuse crate::{io::Disk, router, protocol::{a, b}};\n\
                   fn f() { crate::info!(\"crate::x\"); super::super::shard::go(); }\n\
                   use super::sibling; // crate::cluster\nmod inner { use super::super::m; use super::super::super::metrics; }";
        assert_eq!(
            targets("storage/partition.rs", src),
            ["model", "io", "router", "protocol", "base", "shard", "metrics"]
        );
        // In a top-level file, `super::` is already the crate root; `self` paths never are.
        assert_eq!(
            targets(
                "storage.rs",
                "use super::io; use self::x; mod t { use super::y; }"
            ),
            ["io"]
        );
    }

    #[test]
    fn parses_rows_and_finds_cycles() {
        let all: BTreeSet<String> = ["a", "b", "c"].map(String::from).into();
        let a = parse_allowed("everything except b", "a", &all);
        assert_eq!(a, BTreeSet::from(["c".to_string()]));
        let b = parse_allowed("a, c (types), —", "b", &all);
        assert_eq!(b, BTreeSet::from(["a".to_string(), "c".to_string()]));
        let mut g = BTreeMap::from([("a".to_string(), a), ("b".to_string(), b)]);
        assert_eq!(find_cycle(&g), None);
        g.insert("c".into(), BTreeSet::from(["b".to_string()]));
        assert_eq!(find_cycle(&g).unwrap(), ["a", "c", "b", "a"]);
    }
}
