//! `shoal shell`: an interactive query shell like aql: get, put, delete by key, scan a set
//! with a limit, truncate, info; with history (`~/.shoal_history`) and tab completion of
//! commands, namespaces and sets. `-c "cmd; cmd"` runs commands without a terminal and
//! stops at the first failure with a non-zero exit.
//!
//! This module owns the command language (tokens, typed values, keys) and how results are
//! shown (one JSON object per record). Data commands go through the official client. It
//! must never run anything the user did not type (no implicit truncate, no retry of a
//! write) and never print user values anywhere but the user's own output.

use crate::common::{connect, hex, info_request, parse_value, value_to_json, ServerArgs};
use crate::infoproto::is_error;
use aerospike::{
    AdminPolicy, Bin, Bins, Client, Key, PartitionFilter, QueryPolicy, ReadPolicy, Record,
    ResultCode, Statement, Value, WritePolicy,
};
use anyhow::{anyhow, bail, ensure, Result};
use clap::Args;
use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Editor, Helper};
use serde_json::json;
use std::sync::{Arc, Mutex};

/// Records a scan returns when no `--limit` is given.
const SCAN_LIMIT_DEFAULT: u64 = 100;

const COMMANDS: &[&str] = &[
    "get", "put", "delete", "scan", "truncate", "info", "help", "quit", "exit",
];

const HELP: &str = "\
commands (keys: 42 is an integer key, \"42\" or abc a string key):
  get <ns> <set> <key> [bin...]          read a record (all bins, or the ones named)
  put <ns> <set> <key> bin=value ...     write bins; values: 42, 1.5, \"text\", text,
                                          [1,\"a\"], {\"k\":1}, true, 0xCAFE (blob)
  delete <ns> <set> <key>                delete a record
  scan <ns> <set> [--limit N]            records of a set (default limit 100; 0 = all)
  truncate <ns> [set]                    delete every record of a namespace or set
  info <command>                         a raw info command
  help                                   this text
  quit                                   leave (also exit, Ctrl-D)
several commands on one line are separated by `;`";

/// Options of `shoal shell`.
#[derive(Debug, Clone, Args)]
pub struct ShellArgs {
    /// Run these commands (separated by `;`) and exit; non-zero at the first failure.
    #[arg(short = 'c', long = "command")]
    pub command: Option<String>,
}

/// A parsed command.
#[derive(Debug, Clone, PartialEq)]
pub enum Cmd {
    Get {
        ns: String,
        set: String,
        key: Value,
        bins: Vec<String>,
    },
    Put {
        ns: String,
        set: String,
        key: Value,
        bins: Vec<(String, Value)>,
    },
    Delete {
        ns: String,
        set: String,
        key: Value,
    },
    Scan {
        ns: String,
        set: String,
        limit: u64,
    },
    Truncate {
        ns: String,
        set: Option<String>,
    },
    Info(String),
    Help,
    Quit,
}

/// Splits a script into commands at `;` outside quotes and brackets.
pub fn split_commands(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quote, mut depth) = (None::<char>, 0i32);
    let mut escaped = false;
    for c in script.chars() {
        if let Some(q) = quote {
            cur.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '[' | '{' => depth += 1,
            ']' | '}' => depth -= 1,
            ';' if depth <= 0 => {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_string());
                }
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// Splits a command into tokens at whitespace outside quotes and brackets; quotes stay in
/// the token so that `"42"` stays a string.
pub fn tokenize(line: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quote, mut depth) = (None::<char>, 0i32);
    let mut escaped = false;
    for c in line.chars() {
        if let Some(q) = quote {
            cur.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '[' | '{' => depth += 1,
            ']' | '}' => depth -= 1,
            c if c.is_whitespace() && depth <= 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    ensure!(quote.is_none(), "unterminated quote");
    ensure!(depth == 0, "unbalanced brackets");
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

/// A quoted token without its quotes (`'x'` and `"x"`; JSON escapes apply to `"x"`).
fn unquote(t: &str) -> Option<String> {
    if t.len() >= 2 && t.starts_with('"') && t.ends_with('"') {
        return serde_json::from_str::<String>(t).ok();
    }
    if t.len() >= 2 && t.starts_with('\'') && t.ends_with('\'') {
        return Some(t[1..t.len() - 1].to_string());
    }
    None
}

/// A user key: an integer when the token is one, else a string.
fn parse_key(t: &str) -> Value {
    if let Some(s) = unquote(t) {
        return Value::String(s);
    }
    match t.parse::<i64>() {
        Ok(i) => Value::Int(i),
        Err(_) => Value::String(t.to_string()),
    }
}

fn parse_bin_value(t: &str) -> Value {
    match t.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        Some(s) => Value::String(s.to_string()),
        None => parse_value(t),
    }
}

pub fn parse_command(line: &str) -> Result<Cmd> {
    let tokens = tokenize(line)?;
    let Some(name) = tokens.first() else {
        bail!("empty command");
    };
    let args = &tokens[1..];
    let need = |n: usize, usage: &str| -> Result<()> {
        ensure!(args.len() >= n, "usage: {usage}");
        Ok(())
    };
    Ok(match name.to_ascii_lowercase().as_str() {
        "get" => {
            need(3, "get <ns> <set> <key> [bin...]")?;
            Cmd::Get {
                ns: args[0].clone(),
                set: args[1].clone(),
                key: parse_key(&args[2]),
                bins: args[3..].to_vec(),
            }
        }
        "put" => {
            need(4, "put <ns> <set> <key> bin=value ...")?;
            let mut bins = Vec::new();
            for t in &args[3..] {
                let Some((n, v)) = t.split_once('=') else {
                    bail!("`{t}` is not bin=value");
                };
                ensure!(!n.is_empty(), "`{t}` has no bin name");
                bins.push((n.to_string(), parse_bin_value(v)));
            }
            Cmd::Put {
                ns: args[0].clone(),
                set: args[1].clone(),
                key: parse_key(&args[2]),
                bins,
            }
        }
        "delete" | "del" => {
            need(3, "delete <ns> <set> <key>")?;
            ensure!(args.len() == 3, "usage: delete <ns> <set> <key>");
            Cmd::Delete {
                ns: args[0].clone(),
                set: args[1].clone(),
                key: parse_key(&args[2]),
            }
        }
        "scan" => {
            need(2, "scan <ns> <set> [--limit N]")?;
            let mut limit = SCAN_LIMIT_DEFAULT;
            let mut rest = args[2..].iter();
            while let Some(t) = rest.next() {
                let value = match t.strip_prefix("--limit=") {
                    Some(v) => v.to_string(),
                    None if t == "--limit" => rest
                        .next()
                        .cloned()
                        .ok_or_else(|| anyhow!("--limit needs a number"))?,
                    None => bail!("unexpected `{t}`; usage: scan <ns> <set> [--limit N]"),
                };
                limit = value
                    .parse()
                    .map_err(|_| anyhow!("--limit `{value}` is not a number"))?;
            }
            Cmd::Scan {
                ns: args[0].clone(),
                set: args[1].clone(),
                limit,
            }
        }
        "truncate" => {
            need(1, "truncate <ns> [set]")?;
            ensure!(args.len() <= 2, "usage: truncate <ns> [set]");
            Cmd::Truncate {
                ns: args[0].clone(),
                set: args.get(1).cloned(),
            }
        }
        "info" => {
            need(1, "info <command>")?;
            Cmd::Info(args.join(" "))
        }
        "help" | "?" => Cmd::Help,
        "quit" | "exit" => Cmd::Quit,
        other => bail!("unknown command `{other}`; try `help`"),
    })
}

/// A record as one JSON line.
fn record_json(key: serde_json::Value, r: &Record) -> String {
    let bins: serde_json::Map<String, serde_json::Value> = r
        .bins
        .iter()
        .map(|(k, v)| (k.clone(), value_to_json(v)))
        .collect();
    json!({
        "key": key,
        "generation": r.generation,
        "ttl": r.time_to_live().map(|d| d.as_secs()),
        "bins": bins,
    })
    .to_string()
}

/// A connected shell: the official client for data, raw info for `info`.
struct Session {
    rt: tokio::runtime::Runtime,
    client: Client,
    addr: String,
}

/// What running a command asks of the loop.
enum Next {
    Continue,
    Quit,
}

impl Session {
    fn exec(&self, cmd: Cmd) -> Result<Next> {
        match cmd {
            Cmd::Quit => return Ok(Next::Quit),
            Cmd::Help => println!("{HELP}"),
            Cmd::Info(c) => {
                let reply = info_request(&self.addr, &[c.as_str()])?;
                let value = reply.into_iter().next().map(|(_, v)| v).unwrap_or_default();
                println!("{value}");
                if is_error(&value) {
                    bail!("the server answered with an error");
                }
            }
            Cmd::Get { ns, set, key, bins } => {
                let k = make_key(&ns, &set, key.clone())?;
                let selector = if bins.is_empty() {
                    Bins::All
                } else {
                    Bins::Some(bins)
                };
                match self
                    .rt
                    .block_on(self.client.get(&ReadPolicy::default(), &k, selector))
                {
                    Ok(r) => println!("{}", record_json(value_to_json(&key), &r)),
                    Err(e) if e.server_result_code() == Some(ResultCode::KeyNotFoundError) => {
                        bail!("record not found")
                    }
                    Err(e) => bail!("get: {e}"),
                }
            }
            Cmd::Put { ns, set, key, bins } => {
                let k = make_key(&ns, &set, key)?;
                let bins: Vec<Bin> = bins.into_iter().map(|(n, v)| Bin::new(n, v)).collect();
                self.rt
                    .block_on(self.client.put(&WritePolicy::default(), &k, &bins))
                    .map_err(|e| anyhow!("put: {e}"))?;
                println!("ok");
            }
            Cmd::Delete { ns, set, key } => {
                let k = make_key(&ns, &set, key)?;
                let existed = self
                    .rt
                    .block_on(self.client.delete(&WritePolicy::default(), &k))
                    .map_err(|e| anyhow!("delete: {e}"))?;
                ensure!(existed, "record not found");
                println!("ok");
            }
            Cmd::Scan { ns, set, limit } => {
                let n = self.scan(&ns, &set, limit)?;
                eprintln!("({n} record{})", if n == 1 { "" } else { "s" });
            }
            Cmd::Truncate { ns, set } => {
                self.rt
                    .block_on(self.client.truncate(
                        &AdminPolicy::default(),
                        &ns,
                        set.as_deref().unwrap_or(""),
                        0,
                    ))
                    .map_err(|e| anyhow!("truncate: {e}"))?;
                println!("ok");
            }
        }
        Ok(Next::Continue)
    }

    /// Prints up to `limit` records of a set (0: all) and returns how many.
    fn scan(&self, ns: &str, set: &str, limit: u64) -> Result<u64> {
        let seen: Arc<Mutex<(u64, Option<String>)>> = Arc::new(Mutex::new((0, None)));
        let sink = seen.clone();
        let policy = QueryPolicy {
            max_records: limit,
            ..QueryPolicy::default()
        };
        let statement = Statement::new(ns, set, Bins::All);
        self.rt.block_on(async {
            let mut handle = self
                .client
                .query_foreach(&policy, PartitionFilter::all(), statement, move |result| {
                    let sink = sink.clone();
                    async move {
                        let Ok(mut g) = sink.lock() else {
                            return false;
                        };
                        if limit > 0 && g.0 >= limit {
                            return false;
                        }
                        match result {
                            Ok(r) => {
                                let key = match r.key.as_ref() {
                                    Some(k) => match k.user_key() {
                                        Some(u) => value_to_json(u),
                                        None => json!({ "digest": hex(&k.digest()) }),
                                    },
                                    None => serde_json::Value::Null,
                                };
                                println!("{}", record_json(key, &r));
                                g.0 += 1;
                                limit == 0 || g.0 < limit
                            }
                            Err(e) => {
                                g.1.get_or_insert(e.to_string());
                                false
                            }
                        }
                    }
                })
                .await
                .map_err(|e| anyhow!("scan: {e}"))?;
            handle.wait().await.map_err(|e| anyhow!("scan: {e}"))
        })?;
        let g = seen
            .lock()
            .map_err(|_| anyhow!("scan: a callback panicked"))?;
        if let Some(e) = &g.1 {
            bail!("scan: {e}");
        }
        Ok(g.0)
    }
}

fn make_key(ns: &str, set: &str, key: Value) -> Result<Key> {
    Key::new(ns, set, key).map_err(|e| anyhow!("bad key: {e}"))
}

/// Tab completion: command names first, then namespaces, then sets.
struct ShellHelper {
    namespaces: Vec<String>,
    sets: Vec<String>,
}

impl Completer for ShellHelper {
    type Candidate = String;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let before = &line[..pos];
        let start = before
            .rfind(|c: char| c.is_whitespace() || c == ';')
            .map_or(0, |i| i + 1);
        let word = &before[start..];
        let index = before[..start]
            .rsplit(';')
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .count();
        let pool: Vec<&str> = match index {
            0 => COMMANDS.to_vec(),
            1 => self.namespaces.iter().map(String::as_str).collect(),
            2 => self.sets.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        };
        let matches = pool
            .into_iter()
            .filter(|c| c.starts_with(word))
            .map(|c| format!("{c} "))
            .collect();
        Ok((start, matches))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}
impl Highlighter for ShellHelper {}
impl Validator for ShellHelper {}
impl Helper for ShellHelper {}

/// Namespaces and set names, for completion; empty when the server does not say.
fn names(addr: &str) -> (Vec<String>, Vec<String>) {
    let Ok(reply) = info_request(addr, &["namespaces", "sets"]) else {
        return (Vec::new(), Vec::new());
    };
    let get = |n: &str| {
        reply
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let namespaces = get("namespaces")
        .split(';')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let mut sets: Vec<String> = get("sets")
        .split(';')
        .flat_map(|entry| entry.split(':'))
        .filter_map(|kv| kv.strip_prefix("set="))
        .map(str::to_string)
        .collect();
    sets.sort();
    sets.dedup();
    (namespaces, sets)
}

pub fn main(server: &ServerArgs, args: ShellArgs) -> Result<()> {
    let addr = server.addr();
    let rt = crate::common::runtime()?;
    let client = rt.block_on(connect(&addr, 2))?;
    let session = Session { rt, client, addr };
    let result = match &args.command {
        Some(script) => run_script(&session, script),
        None => interactive(&session),
    };
    let _ = session.rt.block_on(session.client.close());
    result
}

fn run_script(session: &Session, script: &str) -> Result<()> {
    for (i, line) in split_commands(script).iter().enumerate() {
        let cmd = parse_command(line).map_err(|e| anyhow!("command {} `{line}`: {e}", i + 1))?;
        match session
            .exec(cmd)
            .map_err(|e| anyhow!("command {} `{line}`: {e:#}", i + 1))?
        {
            Next::Continue => {}
            Next::Quit => break,
        }
    }
    Ok(())
}

fn interactive(session: &Session) -> Result<()> {
    let mut editor: Editor<ShellHelper, DefaultHistory> =
        Editor::new().map_err(|e| anyhow!("starting the line editor: {e}"))?;
    let (namespaces, sets) = names(&session.addr);
    editor.set_helper(Some(ShellHelper { namespaces, sets }));
    let history =
        std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".shoal_history"));
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    println!(
        "shoal shell connected to {}; `help` lists the commands",
        session.addr
    );
    let prompt = "shoal> ";
    loop {
        let line = match editor.readline(prompt) {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(anyhow!("reading a line: {e}")),
        };
        if line.trim().is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(line.as_str());
        let mut quit = false;
        for c in split_commands(&line) {
            match parse_command(&c).and_then(|cmd| session.exec(cmd)) {
                Ok(Next::Continue) => {}
                Ok(Next::Quit) => quit = true,
                Err(e) => eprintln!("error: {e:#}"),
            }
        }
        if quit {
            break;
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_split_outside_quotes_and_brackets() {
        assert_eq!(
            split_commands("put test s k a=\"x;y\" ; get test s k;scan test s"),
            vec!["put test s k a=\"x;y\"", "get test s k", "scan test s"]
        );
        assert_eq!(
            split_commands("put t s k m={\"a\":1;}"),
            vec!["put t s k m={\"a\":1;}"]
        );
    }

    #[test]
    fn commands_parse_with_typed_values() {
        let c = parse_command(
            r#"put test demo 7 n=42 f=1.5 s="a b" t=plain l=[1, "x"] m={"k": 2} b=0xff"#,
        )
        .expect("parses");
        let Cmd::Put { key, bins, .. } = c else {
            panic!("not a put: {c:?}");
        };
        assert_eq!(key, Value::Int(7));
        assert_eq!(bins[0], ("n".into(), Value::Int(42)));
        assert_eq!(bins[1], ("f".into(), Value::from(1.5)));
        assert_eq!(bins[2], ("s".into(), Value::String("a b".into())));
        assert_eq!(bins[3], ("t".into(), Value::String("plain".into())));
        assert_eq!(
            bins[4],
            (
                "l".into(),
                Value::List(vec![Value::Int(1), Value::String("x".into())])
            )
        );
        assert_eq!(bins[6], ("b".into(), Value::Blob(vec![0xff])));
        assert_eq!(
            parse_command("get test demo \"7\" a b").expect("parses"),
            Cmd::Get {
                ns: "test".into(),
                set: "demo".into(),
                key: Value::String("7".into()),
                bins: vec!["a".into(), "b".into()]
            }
        );
        assert_eq!(
            parse_command("scan test demo --limit 5").expect("parses"),
            Cmd::Scan {
                ns: "test".into(),
                set: "demo".into(),
                limit: 5
            }
        );
        assert!(parse_command("get test").is_err());
        assert!(parse_command("put test demo k nobin").is_err());
        assert!(parse_command("frobnicate").is_err());
        assert!(parse_command("put t s k a=\"open").is_err());
    }
}
