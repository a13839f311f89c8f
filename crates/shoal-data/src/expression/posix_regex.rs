//! POSIX regular expressions (what the official server compiles with `regcomp`) translated
//! to the `regex` crate's syntax.
//!
//! Flags as the clients send them: 1 EXTENDED (ERE; without it the pattern is a basic RE),
//! 2 ICASE, 4 NOSUB (no effect on a match test), 8 NEWLINE (`.` stops at newlines and `^`/`$`
//! match at line boundaries). The match is a search: the pattern may match anywhere.
//! GNU extensions the server's glibc accepts are kept: `\w \W \s \S \b \B \< \>` and, in basic
//! REs, `\+ \? \|`. Back-references are refused (the `regex` crate has none).

use regex::bytes::{Regex, RegexBuilder};

pub const FLAG_EXTENDED: i64 = 1;
pub const FLAG_ICASE: i64 = 2;
pub const FLAG_NEWLINE: i64 = 8;

/// Compiled-program size cap, so a hostile pattern cannot eat memory.
const REGEX_SIZE_MAX_BYTES: usize = 1 << 20;

/// Compiles a POSIX pattern; `None` when it is invalid or unsupported.
pub fn compile(pattern: &[u8], flags: i64) -> Option<Regex> {
    // regcomp reads a C string: the pattern ends at its first NUL.
    let end = pattern
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(pattern.len());
    let pattern = std::str::from_utf8(&pattern[..end]).ok()?;
    let body = translate(pattern, flags & FLAG_EXTENDED != 0)?;
    let mut full = String::with_capacity(body.len() + 8);
    if flags & FLAG_ICASE != 0 {
        full.push_str("(?i)");
    }
    full.push_str(if flags & FLAG_NEWLINE != 0 {
        "(?m)"
    } else {
        "(?s)"
    });
    full.push_str(&body);
    RegexBuilder::new(&full)
        .size_limit(REGEX_SIZE_MAX_BYTES)
        .dfa_size_limit(REGEX_SIZE_MAX_BYTES)
        .nest_limit(64)
        .build()
        .ok()
}

fn push_literal(out: &mut String, c: char) {
    let mut buf = [0u8; 4];
    out.push_str(&regex::escape(c.encode_utf8(&mut buf)));
}

fn translate(p: &str, extended: bool) -> Option<String> {
    let chars: Vec<char> = p.chars().collect();
    let mut out = String::with_capacity(p.len() * 2);
    let mut i = 0;
    // True where a `*` (BRE) would be literal and `^` an anchor: at the start of a (sub)pattern.
    let mut at_start = true;
    while i < chars.len() {
        let c = chars[i];
        let was_start = at_start;
        at_start = false;
        match c {
            '\\' => {
                let n = *chars.get(i + 1)?;
                i += 2;
                match n {
                    'w' | 'W' | 's' | 'S' | 'b' | 'B' => {
                        out.push('\\');
                        out.push(n);
                    }
                    '<' => out.push_str(r"\b{start}"),
                    '>' => out.push_str(r"\b{end}"),
                    '`' => out.push_str(r"\A"),
                    '\'' => out.push_str(r"\z"),
                    '1'..='9' => return None,
                    '(' | ')' | '{' | '}' | '|' | '+' | '?' if !extended => {
                        out.push(n);
                        at_start = n == '(' || n == '|';
                    }
                    _ => push_literal(&mut out, n),
                }
                continue;
            }
            '[' => {
                i = bracket(&chars, i + 1, &mut out)?;
                continue;
            }
            '*' if !extended && was_start => push_literal(&mut out, c),
            '^' if !extended && !was_start => push_literal(&mut out, c),
            '^' => {
                out.push('^');
                at_start = true;
            }
            '$' if !extended => {
                let next = chars.get(i + 1).copied();
                let next2 = chars.get(i + 2).copied();
                let anchors = next.is_none()
                    || (next == Some('\\') && matches!(next2, Some(')') | Some('|')));
                if anchors {
                    out.push('$');
                } else {
                    push_literal(&mut out, c);
                }
            }
            '(' | ')' | '{' | '}' | '|' | '+' | '?' if !extended => push_literal(&mut out, c),
            '(' | '|' => {
                out.push(c);
                at_start = true;
            }
            '.' | '*' | '+' | '?' | '{' | '}' | ')' | '$' => out.push(c),
            _ => push_literal(&mut out, c),
        }
        i += 1;
    }
    Some(out)
}

/// Translates a bracket expression starting after its `[`; returns the index after its `]`.
fn bracket(chars: &[char], mut i: usize, out: &mut String) -> Option<usize> {
    out.push('[');
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    let first = i;
    loop {
        let c = *chars.get(i)?;
        if c == ']' && i != first {
            out.push(']');
            return Some(i + 1);
        }
        if c == '[' {
            if let Some(&kind @ (':' | '=' | '.')) = chars.get(i + 1) {
                // [:class:], [=x=], [.x.]: find the matching terminator.
                let mut j = i + 2;
                while j + 1 < chars.len() && !(chars[j] == kind && chars[j + 1] == ']') {
                    j += 1;
                }
                if j + 1 >= chars.len() {
                    return None;
                }
                let inner: String = chars[i + 2..j].iter().collect();
                if kind == ':' {
                    out.push_str("[:");
                    out.push_str(&inner);
                    out.push_str(":]");
                } else {
                    let mut it = inner.chars();
                    let (Some(one), None) = (it.next(), it.next()) else {
                        return None;
                    };
                    escape_in_class(out, one);
                }
                i = j + 2;
                continue;
            }
        }
        if c == '-' {
            let is_edge = i == first || chars.get(i + 1) == Some(&']');
            if is_edge {
                out.push_str(r"\-");
            } else {
                out.push('-');
            }
            i += 1;
            continue;
        }
        escape_in_class(out, c);
        i += 1;
    }
}

fn escape_in_class(out: &mut String, c: char) {
    if matches!(c, '\\' | '[' | ']' | '^' | '&' | '~' | '-') {
        out.push('\\');
    }
    out.push(c);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is(p: &str, flags: i64, s: &str) -> bool {
        compile(p.as_bytes(), flags)
            .map(|r| r.is_match(s.as_bytes()))
            .unwrap_or_else(|| panic!("pattern {p:?} must compile"))
    }

    #[test]
    fn search_semantics_and_classes() {
        assert!(is("[1-5]", FLAG_ICASE, "17"));
        assert!(!is("[1-5]", 0, "67"));
        assert!(is("^pre.*suf$", 0, "pre-x-suf"));
        assert!(is("[[:digit:]]", 0, "a1"));
        assert!(is("[]a]", 0, "]"));
        assert!(is("[a-]", 0, "-"));
        assert!(is(r"[\]", 0, r"\"));
    }

    #[test]
    fn basic_versus_extended() {
        // In a basic RE, `+` and `(` are literals; `\(` groups.
        assert!(is("a+", 0, "a+"));
        assert!(!is("a+", 0, "aa"));
        assert!(is("a+", FLAG_EXTENDED, "aa"));
        assert!(is(r"\(ab\)*c", 0, "ababc"));
        assert!(is("(ab)", 0, "(ab)"));
        assert!(is("*a", 0, "*a"));
        assert!(is("a|b", FLAG_EXTENDED, "b"));
        assert!(!is("a|b", 0, "b"));
    }

    #[test]
    fn flags() {
        assert!(is("ABC", FLAG_ICASE, "xabcx"));
        assert!(!is("ABC", 0, "abc"));
        assert!(is("a.b", 0, "a\nb"));
        assert!(!is("a.b", FLAG_NEWLINE, "a\nb"));
        assert!(is("^b", FLAG_NEWLINE, "a\nb"));
    }

    #[test]
    fn refused_patterns() {
        assert!(compile(br"\(a\)\1", 0).is_none());
        assert!(compile(b"[abc", 0).is_none());
        assert!(compile(b"\\", 0).is_none());
    }
}
