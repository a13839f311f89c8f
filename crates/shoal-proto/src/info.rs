//! The info text protocol: a request is `\n`-terminated command lines; the reply echoes each
//! line, a tab, its value, and a newline, in request order. Commands look like `name`,
//! `name/arg/arg` or `name:key=value;key=value`.

/// Splits a request body into its command lines. Only lines terminated by `\n` count, as in
/// the official server; empty lines are skipped.
pub fn request_lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    let complete = match body.iter().rposition(|b| *b == b'\n') {
        Some(i) => &body[..i],
        None => &body[..0],
    };
    complete
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter(move |_| !body.is_empty())
}

/// A parsed command line: its name and the text after the name's delimiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command<'a> {
    /// Everything before the first `:` or `/`.
    pub name: &'a str,
    /// Text after `:` (key=value list) or `/` (path), without the delimiter.
    pub args: &'a str,
    /// True when the arguments were introduced by `/`.
    pub path_style: bool,
}

impl<'a> Command<'a> {
    /// Parses one line (already UTF-8).
    pub fn parse(line: &'a str) -> Command<'a> {
        match line.find([':', '/']) {
            Some(i) => Command {
                name: &line[..i],
                args: &line[i + 1..],
                path_style: line.as_bytes()[i] == b'/',
            },
            None => Command {
                name: line,
                args: "",
                path_style: false,
            },
        }
    }

    /// Looks up `key` in a `key=value;key=value` argument list.
    pub fn param(&self, key: &str) -> Option<&'a str> {
        self.args.split(';').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k.trim() == key).then_some(v.trim())
        })
    }

    /// Iterates `key=value` pairs.
    pub fn params(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.args
            .split(';')
            .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.trim(), v.trim())))
    }
}

/// Appends one reply line: the request line echoed, a tab, the value, a newline. Tabs and
/// newlines inside the value are replaced so the reply stays parseable.
pub fn push_reply_line(out: &mut Vec<u8>, request_line: &[u8], value: &str) {
    out.extend(
        request_line
            .iter()
            .map(|b| if *b == b'\t' { b' ' } else { *b }),
    );
    out.push(b'\t');
    out.extend(value.bytes().map(|b| match b {
        b'\t' | b'\n' => b' ',
        other => other,
    }));
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_only_terminated_lines() {
        let lines: Vec<_> = request_lines(b"node\nbuild\n\npartial").collect();
        assert_eq!(lines, vec![&b"node"[..], &b"build"[..]]);
        assert_eq!(request_lines(b"").count(), 0);
        assert_eq!(request_lines(b"no-newline").count(), 0);
    }

    #[test]
    fn parses_commands() {
        let c = Command::parse("truncate:namespace=test;set=demo;lut=5");
        assert_eq!(c.name, "truncate");
        assert_eq!(c.param("set"), Some("demo"));
        assert_eq!(c.param("nope"), None);
        let c = Command::parse("namespace/test");
        assert_eq!(c.name, "namespace");
        assert_eq!(c.args, "test");
        assert!(c.path_style);
        let c = Command::parse("node");
        assert_eq!((c.name, c.args), ("node", ""));
    }

    #[test]
    fn reply_lines_echo_and_escape() {
        let mut out = Vec::new();
        push_reply_line(&mut out, b"node", "A\tB");
        assert_eq!(out, b"node\tA B\n");
    }
}
