//! A minimal RESP2 client: one TCP connection, one command in flight, GET and SET only.
//!
//! Why not the `redis` crate: every 1.x and 2.x release needs Rust 1.88 while the workspace
//! promises 1.87, it brings a large dependency tree to compile on a 2-core machine, and its
//! async connection types steer towards multiplexing, while the benchmark wants exactly one
//! plain connection per task, as the Aerospike side has. GET and SET over RESP are a few
//! dozen lines, and a lean client keeps the generator's own cost per operation low, which is
//! what lets it saturate the server under test from one core.
//!
//! This module owns encoding commands and decoding the four scalar reply kinds. It must never
//! pipeline, retry, or reconnect (the caller decides), and never allocates for a reply before
//! its length is checked against `REPLY_LEN_MAX_BYTES`.

use anyhow::{anyhow, bail, Context, Result};
use std::io::Write as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest bulk reply or status line accepted. The benchmark's values are far smaller; a
/// longer one means the stream is not what we think it is.
const REPLY_LEN_MAX_BYTES: usize = 64 << 20;

/// One decoded reply. A bulk reply's bytes are not copied out: only its length is kept,
/// which is all the benchmark checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK` and the like.
    Status(String),
    /// `-ERR ...`: the server refused the command; the connection stays usable.
    Error(String),
    /// `:123`.
    Integer(i64),
    /// `$N` followed by N bytes, or `$-1` (None) for a missing key.
    Bulk(Option<usize>),
}

/// One connection to a Redis server.
pub struct RespConnection {
    stream: TcpStream,
    /// The command being sent, encoded.
    out: Vec<u8>,
    /// Bytes received and not yet decoded.
    input: Vec<u8>,
}

impl RespConnection {
    pub async fn connect(addr: &str) -> Result<RespConnection> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to redis at {addr}"))?;
        stream.set_nodelay(true).context("setting TCP_NODELAY")?;
        Ok(RespConnection {
            stream,
            out: Vec::with_capacity(256),
            input: Vec::with_capacity(4096),
        })
    }

    /// `GET key`: Some(value length) or None when the key is absent.
    pub async fn get(&mut self, key: &[u8]) -> Result<Option<usize>> {
        match self.command(&[b"GET", key]).await? {
            Reply::Bulk(len) => Ok(len),
            Reply::Error(e) => bail!("redis GET: {e}"),
            other => bail!("redis GET: unexpected reply {other:?}"),
        }
    }

    /// `SET key value`.
    pub async fn set(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        match self.command(&[b"SET", key, value]).await? {
            Reply::Status(s) if s == "OK" => Ok(()),
            Reply::Error(e) => bail!("redis SET: {e}"),
            other => bail!("redis SET: unexpected reply {other:?}"),
        }
    }

    /// Sends one command and waits for its reply.
    pub async fn command(&mut self, args: &[&[u8]]) -> Result<Reply> {
        self.out.clear();
        encode_command(&mut self.out, args);
        self.stream
            .write_all(&self.out)
            .await
            .context("sending to redis")?;
        loop {
            if let Some((reply, used)) = decode_reply(&self.input)? {
                self.input.drain(..used);
                return Ok(reply);
            }
            let n = self
                .stream
                .read_buf(&mut self.input)
                .await
                .context("reading from redis")?;
            if n == 0 {
                bail!("redis closed the connection");
            }
        }
    }
}

/// Encodes a command as a RESP array of bulk strings.
pub fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    // Writing into a Vec cannot fail.
    let _ = write!(out, "*{}\r\n", args.len());
    for arg in args {
        let _ = write!(out, "${}\r\n", arg.len());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// Decodes one reply from the front of `buf`: `Ok(None)` when more bytes are needed, else
/// the reply and how many bytes it used.
pub fn decode_reply(buf: &[u8]) -> Result<Option<(Reply, usize)>> {
    let Some(line_end) = find_crlf(buf) else {
        if buf.len() > REPLY_LEN_MAX_BYTES {
            bail!("redis reply line longer than {REPLY_LEN_MAX_BYTES} bytes");
        }
        return Ok(None);
    };
    let Some((&kind, line)) = buf[..line_end].split_first() else {
        bail!("redis sent an empty line");
    };
    let line_str = || String::from_utf8_lossy(line).into_owned();
    let after_line = line_end + 2;
    let reply = match kind {
        b'+' => Reply::Status(line_str()),
        b'-' => Reply::Error(line_str()),
        b':' => Reply::Integer(parse_int(line)?),
        b'$' => {
            let n = parse_int(line)?;
            if n < 0 {
                return Ok(Some((Reply::Bulk(None), after_line)));
            }
            let len = usize::try_from(n).map_err(|_| anyhow!("bulk length {n} out of range"))?;
            if len > REPLY_LEN_MAX_BYTES {
                bail!("redis bulk reply of {len} bytes exceeds {REPLY_LEN_MAX_BYTES}");
            }
            let end = after_line + len + 2;
            if buf.len() < end {
                return Ok(None);
            }
            if &buf[end - 2..end] != b"\r\n" {
                bail!("redis bulk reply not terminated by CRLF");
            }
            return Ok(Some((Reply::Bulk(Some(len)), end)));
        }
        other => bail!("redis reply type `{}` is not supported here", other as char),
    };
    Ok(Some((reply, after_line)))
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

fn parse_int(digits: &[u8]) -> Result<i64> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| {
            anyhow!(
                "redis sent `{}` where a number belongs",
                String::from_utf8_lossy(digits)
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        encode_command(&mut out, &[b"SET", b"bench:7", b"xy"]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$7\r\nbench:7\r\n$2\r\nxy\r\n");
    }

    #[test]
    fn replies_decode_only_when_complete() {
        assert_eq!(decode_reply(b"").expect("ok"), None);
        assert_eq!(decode_reply(b"+O").expect("ok"), None);
        assert_eq!(
            decode_reply(b"+OK\r\n+OK\r\n").expect("ok"),
            Some((Reply::Status("OK".into()), 5))
        );
        assert_eq!(
            decode_reply(b"-ERR wrong\r\n").expect("ok"),
            Some((Reply::Error("ERR wrong".into()), 12))
        );
        assert_eq!(
            decode_reply(b":-3\r\n").expect("ok"),
            Some((Reply::Integer(-3), 5))
        );
        assert_eq!(
            decode_reply(b"$-1\r\n").expect("ok"),
            Some((Reply::Bulk(None), 5))
        );
        // A bulk reply split across reads waits for its end, CRLF included.
        assert_eq!(decode_reply(b"$5\r\nhel").expect("ok"), None);
        assert_eq!(decode_reply(b"$5\r\nhello\r").expect("ok"), None);
        assert_eq!(
            decode_reply(b"$5\r\nhello\r\n").expect("ok"),
            Some((Reply::Bulk(Some(5)), 11))
        );
    }

    #[test]
    fn malformed_replies_are_refused() {
        assert!(decode_reply(b"$5\r\nhelloXX").is_err());
        assert!(decode_reply(b"$abc\r\n").is_err());
        assert!(decode_reply(b"$99999999999\r\n").is_err());
        assert!(decode_reply(b"*2\r\n").is_err());
        assert!(decode_reply(b"\r\n").is_err());
    }
}
