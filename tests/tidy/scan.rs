//! A small lexer for the tidy tests: strips comments, string and char literals from Rust
//! source (keeping line breaks, so line numbers stay true) and walks the result as tokens.
//! It understands only what the tidy checks need: identifiers, `::`, braces and `#[...]`.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, sorted (so failures list in a stable order).
pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// `src` with comments and the contents of string, byte-string and char literals replaced
/// by spaces (a literal becomes `""` or `' '`); newlines are kept.
pub fn strip(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &src[i..];
        if rest.starts_with("//") {
            let end = rest.find('\n').map_or(b.len(), |n| i + n);
            i = end;
        } else if rest.starts_with("/*") {
            i = skip_block_comment(src, i, &mut out);
        } else if let Some(end) = raw_string_end(src, i) {
            blank(&src[i..end], &mut out);
            i = end;
        } else if b[i] == b'"' {
            let end = quoted_end(b, i + 1, b'"');
            out.push('"');
            blank(&src[i + 1..end - 1], &mut out);
            out.push('"');
            i = end;
        } else if b[i] == b'\'' {
            match char_literal_end(b, i) {
                Some(end) => {
                    out.push_str("' '");
                    i = end;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            let ch = rest.chars().next().expect("non-empty");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn blank(s: &str, out: &mut String) {
    out.extend(s.chars().map(|c| if c == '\n' { '\n' } else { ' ' }));
}

fn skip_block_comment(src: &str, start: usize, out: &mut String) -> usize {
    let b = src.as_bytes();
    let (mut depth, mut i) = (0usize, start);
    while i < b.len() {
        if src[i..].starts_with("/*") {
            depth += 1;
            i += 2;
        } else if src[i..].starts_with("*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                break;
            }
        } else {
            i += 1;
        }
    }
    blank(&src[start..i.min(b.len())], out);
    i.min(b.len())
}

/// End (exclusive) of a raw string `r#"..."#` / `br"..."` starting at `i`, if one does.
fn raw_string_end(src: &str, i: usize) -> Option<usize> {
    let b = src.as_bytes();
    if i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_') {
        return None;
    }
    let mut j = i;
    if b.get(j) == Some(&b'b') {
        j += 1;
    }
    if b.get(j) != Some(&b'r') {
        return None;
    }
    j += 1;
    let hashes = b[j..].iter().take_while(|&&c| c == b'#').count();
    j += hashes;
    if b.get(j) != Some(&b'"') {
        return None;
    }
    let close = format!("\"{}", "#".repeat(hashes));
    src[j + 1..].find(&close).map(|n| j + 1 + n + close.len())
}

/// End (exclusive) of a literal opened at `start - 1` by `quote`, honouring backslashes.
fn quoted_end(b: &[u8], start: usize, quote: u8) -> usize {
    let mut i = start;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// End of a char literal at `i` (`'a'`, `'\n'`, `'\u{1F}'`, `'é'`), or None for a lifetime.
fn char_literal_end(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i + 1) == Some(&b'\\') {
        return Some(quoted_end(b, i + 1, b'\''));
    }
    let ch_len = match b.get(i + 1)? {
        c if *c < 0x80 => 1,
        c if *c >= 0xF0 => 4,
        c if *c >= 0xE0 => 3,
        _ => 2,
    };
    (b.get(i + 1 + ch_len) == Some(&b'\'')).then_some(i + 2 + ch_len)
}

/// A token of stripped source: an identifier (or keyword), or one punctuation character
/// (`::` is one token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub line: usize,
}

pub fn tokens(stripped: &str) -> Vec<Token> {
    let b = stripped.as_bytes();
    let (mut out, mut i, mut line) = (Vec::new(), 0, 1);
    while i < b.len() {
        let c = b[i];
        if c == b'\n' {
            line += 1;
            i += 1;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80 {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80) {
                i += 1;
            }
            out.push(Token {
                text: stripped[start..i].to_string(),
                line,
            });
        } else if stripped[i..].starts_with("::") {
            out.push(Token {
                text: "::".into(),
                line,
            });
            i += 2;
        } else {
            out.push(Token {
                text: (c as char).to_string(),
                line,
            });
            i += 1;
        }
    }
    out
}

/// Index of the token closing the bracket opened at `open` (`{`/`}`, `[`/`]`, `(`/`)`).
pub fn matching(toks: &[Token], open: usize) -> usize {
    let (o, c) = match toks[open].text.as_str() {
        "{" => ("{", "}"),
        "[" => ("[", "]"),
        _ => ("(", ")"),
    };
    let mut depth = 0usize;
    for (k, t) in toks.iter().enumerate().skip(open) {
        if t.text == o {
            depth += 1;
        } else if t.text == c {
            depth -= 1;
            if depth == 0 {
                return k;
            }
        }
    }
    toks.len() - 1
}

/// The outer attributes just before token `i` (each `#[...]` group's inner tokens joined
/// by spaces), nearest first.
pub fn attributes_before(toks: &[Token], mut i: usize) -> Vec<String> {
    let mut attrs = Vec::new();
    while i > 0 && toks[i - 1].text == "]" {
        let close = i - 1;
        let mut depth = 0usize;
        let mut k = close;
        loop {
            match toks[k].text.as_str() {
                "]" => depth += 1,
                "[" => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            if k == 0 {
                return attrs;
            }
            k -= 1;
        }
        if k == 0 || toks[k - 1].text != "#" {
            break;
        }
        let text: Vec<&str> = toks[k + 1..close].iter().map(|t| t.text.as_str()).collect();
        attrs.push(text.join(" "));
        i = k - 1;
    }
    attrs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_comments_strings_and_chars_but_not_lifetimes() {
        let s = strip("a // crate::x\n\"crate::y\" /* crate::z \n */ 'q' '\\'' &'a b r#\"k\"#\n");
        assert!(!s.contains("crate"), "{s}");
        assert_eq!(s.lines().count(), 3);
        assert!(s.contains("&'a b"), "{s}");
    }
}
