//! The info protocol's bytes, without I/O: the request body, the proto header, the reply
//! lines, and the `peers-clear-std` list (Aerospike: `cf/src/cf_info.c` on the server,
//! `as_info.c` in the C client).
//!
//! This module owns the encoding and decoding only. It must never open a socket, sleep or
//! read a clock, so every rule here is tested on bytes; `common::info_request` is the thin
//! shell that moves these bytes over TCP.

use anyhow::{bail, Result};

/// Proto version 2, the only one Aerospike servers speak.
const PROTO_VERSION: u8 = 2;
/// Proto type of an info message.
const PROTO_TYPE_INFO: u8 = 1;
/// Length of the proto header.
pub const HEADER_BYTES: usize = 8;
/// Largest info reply we accept; a bigger size field is a corrupt or foreign stream, and is
/// refused before anything is allocated.
pub const REPLY_MAX_BYTES: u64 = 64 << 20;

/// The whole request: proto header then one `\n`-terminated line per command. No commands
/// gives the empty body, which servers answer with a summary.
pub fn encode_request(commands: &[&str]) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    for c in commands {
        if c.contains('\n') || c.contains('\t') {
            bail!("an info command cannot contain a newline or a tab: {c:?}");
        }
        body.extend_from_slice(c.as_bytes());
        body.push(b'\n');
    }
    let mut out = Vec::with_capacity(HEADER_BYTES + body.len());
    out.extend_from_slice(&encode_header(body.len() as u64));
    out.extend_from_slice(&body);
    Ok(out)
}

fn encode_header(len: u64) -> [u8; HEADER_BYTES] {
    let mut h = len.to_be_bytes();
    h[0] = PROTO_VERSION;
    h[1] = PROTO_TYPE_INFO;
    h
}

/// The body length announced by a reply's proto header, checked against the limits.
pub fn decode_header(h: [u8; HEADER_BYTES]) -> Result<usize> {
    if h[0] != PROTO_VERSION || h[1] != PROTO_TYPE_INFO {
        bail!(
            "not an info reply (proto version {}, type {}); is this an Aerospike service port?",
            h[0],
            h[1]
        );
    }
    let mut len = h;
    len[0] = 0;
    len[1] = 0;
    let len = u64::from_be_bytes(len);
    if len > REPLY_MAX_BYTES {
        bail!("info reply of {len} bytes exceeds the {REPLY_MAX_BYTES}-byte limit");
    }
    Ok(len as usize)
}

/// The reply lines as (name, value): each line is the request line echoed, a tab, the
/// value. A line without a tab (the server's `ERROR:80:not authenticated`) comes back with
/// an empty name and the whole line as value.
pub fn decode_reply(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('\n')
        .filter(|l| !l.is_empty())
        .map(|line| match line.split_once('\t') {
            Some((name, value)) => (name.to_string(), value.to_string()),
            None => (String::new(), line.to_string()),
        })
        .collect()
}

/// True when a value is an error answer (`ERROR:<code>:<message>`, or `FAIL:` from old
/// servers).
pub fn is_error(value: &str) -> bool {
    value.starts_with("ERROR") || value.starts_with("FAIL")
}

/// `k=v;k=v` (statistics, namespace/<ns>) into pairs in order; pieces without `=` are
/// skipped.
pub fn parse_pairs(value: &str) -> Vec<(String, String)> {
    value
        .split(';')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// One peer of `peers-clear-std`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub node_id: String,
    /// `host:port` addresses, the default port filled in where the server left it out.
    pub addresses: Vec<String>,
}

/// Parses `peers-clear-std`: `<generation>,<default port>,[[<node id>,<tls name>,[<addr>,
/// <addr:port>...]],...]`. IPv6 addresses come in brackets (`[::1]:3000`).
pub fn parse_peers(value: &str) -> Result<Vec<Peer>> {
    let mut parts = value.splitn(3, ',');
    let (Some(_generation), Some(port), Some(list)) = (parts.next(), parts.next(), parts.next())
    else {
        bail!("peers reply `{value}` is not `generation,port,[...]`");
    };
    let default_port: u16 = port
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("peers reply: bad default port `{port}`"))?;
    let list = list.trim();
    let Some(inner) = list.strip_prefix('[').and_then(|l| l.strip_suffix(']')) else {
        bail!("peers reply: the peer list `{list}` is not bracketed");
    };
    let mut peers = Vec::new();
    for entry in split_top_level(inner) {
        let Some(e) = entry.strip_prefix('[').and_then(|l| l.strip_suffix(']')) else {
            bail!("peers reply: entry `{entry}` is not bracketed");
        };
        let fields = split_top_level(e);
        let (Some(id), Some(addrs)) = (fields.first(), fields.get(2)) else {
            bail!("peers reply: entry `{entry}` has fewer than three fields");
        };
        let Some(addrs) = addrs.strip_prefix('[').and_then(|l| l.strip_suffix(']')) else {
            bail!("peers reply: address list `{addrs}` is not bracketed");
        };
        let addresses = split_top_level(addrs)
            .into_iter()
            .map(|a| with_port(a, default_port))
            .collect();
        peers.push(Peer {
            node_id: id.to_string(),
            addresses,
        });
    }
    Ok(peers)
}

/// Splits at commas that are not inside brackets; empty input gives no pieces.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if !s[start..].trim().is_empty() {
        out.push(s[start..].trim());
    }
    out
}

/// `host` -> `host:port`; `[v6]` -> `[v6]:port`; an address with a port is kept.
fn with_port(addr: &str, default_port: u16) -> String {
    let has_port = if addr.starts_with('[') {
        addr.contains("]:")
    } else {
        addr.contains(':')
    };
    if has_port {
        addr.to_string()
    } else {
        format!("{addr}:{default_port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_header_then_lines() {
        let r = encode_request(&["node", "build"]).expect("encodes");
        assert_eq!(&r[..8], &[2, 1, 0, 0, 0, 0, 0, 11]);
        assert_eq!(&r[8..], b"node\nbuild\n");
        assert_eq!(
            encode_request(&[]).expect("encodes"),
            vec![2, 1, 0, 0, 0, 0, 0, 0]
        );
        assert!(encode_request(&["a\nb"]).is_err());
    }

    #[test]
    fn header_is_checked() {
        assert_eq!(decode_header([2, 1, 0, 0, 0, 0, 1, 0]).expect("ok"), 256);
        assert!(decode_header([2, 3, 0, 0, 0, 0, 1, 0]).is_err());
        assert!(decode_header([2, 1, 0, 0, 0xff, 0, 0, 0]).is_err());
    }

    #[test]
    fn reply_lines_split_at_the_first_tab() {
        let r = decode_reply(
            b"node\tBB9\nnamespace/test\tobjects=1;a=b\tc\nERROR:80:not authenticated\n",
        );
        assert_eq!(r[0], ("node".into(), "BB9".into()));
        assert_eq!(r[1], ("namespace/test".into(), "objects=1;a=b\tc".into()));
        assert_eq!(r[2], (String::new(), "ERROR:80:not authenticated".into()));
        assert!(is_error(&r[2].1));
        assert!(!is_error("ok"));
    }

    #[test]
    fn pairs_parse_in_order() {
        let p = parse_pairs("objects=3;stop_writes=false;junk");
        assert_eq!(p.len(), 2);
        assert_eq!(p[1], ("stop_writes".into(), "false".into()));
    }

    #[test]
    fn peers_parse() {
        assert!(parse_peers("0,3000,[]").expect("empty").is_empty());
        let p = parse_peers("5,3000,[[BB9,,[10.0.0.1,10.0.0.2:4000]],[CC1,tls,[[::1]]]]")
            .expect("parses");
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].node_id, "BB9");
        assert_eq!(p[0].addresses, vec!["10.0.0.1:3000", "10.0.0.2:4000"]);
        assert_eq!(p[1].addresses, vec!["[::1]:3000"]);
        assert!(parse_peers("garbage").is_err());
    }
}
