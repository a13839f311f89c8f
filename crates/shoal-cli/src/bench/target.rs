//! The two kinds of server the benchmark drives, behind one `Session` per task: an Aerospike
//! server (shoald, or Aerospike itself) through the official `aerospike` crate, or a Redis
//! server through the RESP client beside this module.
//!
//! This module owns translating "read key K" and "write these bytes to key K" into each
//! protocol, and what counts as a miss. It must never time operations, count them or choose
//! keys: the phase runner does that identically for both targets, which is what makes their
//! figures comparable. Neither side retries: a failure is reported, not hidden.

use super::resp::RespConnection;
use super::{BenchArgs, TargetKind, ValueType};
use aerospike::{Bin, Bins, Client, Key, ReadPolicy, ResultCode, Value, WritePolicy};
use anyhow::{anyhow, Result};
use std::io::Write as _;
use std::sync::Arc;

/// Bin name the Aerospike side writes. One short name: the record then holds one bin, as
/// Redis holds one value.
pub const BIN_NAME: &str = "v";

/// What a read found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    Found,
    Missing,
}

/// Shared by every task of a run: the Aerospike client and its connection pool, or just the
/// address of the Redis server.
pub enum Connector {
    Aerospike(Arc<AerospikeShared>),
    Redis { addr: String, set: String },
}

pub struct AerospikeShared {
    client: Client,
    read_policy: ReadPolicy,
    write_policy: WritePolicy,
    namespace: String,
    set: String,
    value_type: ValueType,
}

impl Connector {
    pub async fn connect(args: &BenchArgs) -> Result<Connector> {
        let addr = args.server.addr();
        match args.target {
            TargetKind::Aerospike => {
                // One connection per task: the pool is exactly the concurrency, opened up front.
                let client = crate::common::connect(&addr, args.concurrency).await?;
                let mut read_policy = ReadPolicy::default();
                read_policy.base_policy.max_retries = 0;
                read_policy.base_policy.total_timeout = args.timeout_ms;
                let mut write_policy = WritePolicy::default();
                write_policy.base_policy.max_retries = 0;
                write_policy.base_policy.total_timeout = args.timeout_ms;
                Ok(Connector::Aerospike(Arc::new(AerospikeShared {
                    client,
                    read_policy,
                    write_policy,
                    namespace: args.namespace.clone(),
                    set: args.set.clone(),
                    value_type: args.value_type,
                })))
            }
            TargetKind::Redis => {
                // Check the address now, so a wrong port fails before any phase starts.
                RespConnection::connect(&addr).await?;
                Ok(Connector::Redis {
                    addr,
                    set: args.set.clone(),
                })
            }
        }
    }

    /// A session for one task. Redis sessions open their own connection.
    pub async fn session(&self) -> Result<Session> {
        match self {
            Connector::Aerospike(shared) => Ok(Session::Aerospike(shared.clone())),
            Connector::Redis { addr, set } => Ok(Session::Redis(RedisSession {
                conn: Some(RespConnection::connect(addr).await?),
                addr: addr.clone(),
                prefix: format!("{set}:"),
                key: Vec::with_capacity(64),
            })),
        }
    }

    /// Closes the Aerospike client's connections; Redis connections close with their sessions.
    pub async fn close(&self) -> Result<()> {
        match self {
            Connector::Aerospike(shared) => shared
                .client
                .close()
                .await
                .map_err(|e| anyhow!("closing the aerospike client: {e}")),
            Connector::Redis { .. } => Ok(()),
        }
    }
}

/// One task's way to the server.
pub enum Session {
    Aerospike(Arc<AerospikeShared>),
    Redis(RedisSession),
}

pub struct RedisSession {
    /// None after a connection failed; the next operation reconnects.
    conn: Option<RespConnection>,
    addr: String,
    /// `set:`: Redis keys are `set:N`, the Aerospike keys are (namespace, set, N).
    prefix: String,
    key: Vec<u8>,
}

impl RedisSession {
    /// The connection, reopened if the last command broke it.
    async fn conn(&mut self) -> Result<&mut RespConnection> {
        let conn = match self.conn.take() {
            Some(c) => c,
            None => RespConnection::connect(&self.addr).await?,
        };
        Ok(self.conn.insert(conn))
    }

    /// Writes `set:N` into the reusable key buffer, which is taken out of `self` while the
    /// connection is borrowed and put back after.
    fn take_key(&mut self, key: u64) -> Vec<u8> {
        let mut k = std::mem::take(&mut self.key);
        k.clear();
        k.extend_from_slice(self.prefix.as_bytes());
        // Writing into a Vec cannot fail.
        let _ = write!(k, "{key}");
        k
    }

    /// A failed command may leave a reply half read: drop the connection so the next
    /// operation starts on a clean one.
    async fn read(&mut self, key: u64) -> Result<ReadOutcome> {
        let k = self.take_key(key);
        let result = match self.conn().await {
            Ok(conn) => conn.get(&k).await,
            Err(e) => Err(e),
        };
        self.key = k;
        match result {
            Ok(Some(_)) => Ok(ReadOutcome::Found),
            Ok(None) => Ok(ReadOutcome::Missing),
            Err(e) => {
                self.conn = None;
                Err(e)
            }
        }
    }

    async fn write(&mut self, key: u64, value: &[u8]) -> Result<()> {
        let k = self.take_key(key);
        let result = match self.conn().await {
            Ok(conn) => conn.set(&k, value).await,
            Err(e) => Err(e),
        };
        self.key = k;
        if result.is_err() {
            self.conn = None;
        }
        result
    }
}

impl AerospikeShared {
    fn key(&self, key: u64) -> Result<Key> {
        let user_key = i64::try_from(key).map_err(|_| anyhow!("key {key} exceeds i64"))?;
        Key::new(
            self.namespace.as_str(),
            self.set.as_str(),
            Value::Int(user_key),
        )
        .map_err(|e| anyhow!("building key {key}: {e}"))
    }

    async fn read(&self, key: u64) -> Result<ReadOutcome> {
        let k = self.key(key)?;
        match self.client.get(&self.read_policy, &k, Bins::All).await {
            Ok(_) => Ok(ReadOutcome::Found),
            Err(e) if e.server_result_code() == Some(ResultCode::KeyNotFoundError) => {
                Ok(ReadOutcome::Missing)
            }
            Err(e) => Err(anyhow!("aerospike get: {e}")),
        }
    }

    async fn write(&self, key: u64, value: &[u8]) -> Result<()> {
        let k = self.key(key)?;
        let value = match self.value_type {
            ValueType::Blob => Value::Blob(value.to_vec()),
            ValueType::String => Value::String(String::from_utf8_lossy(value).into_owned()),
        };
        self.client
            .put(&self.write_policy, &k, &[Bin::new(BIN_NAME, value)])
            .await
            .map_err(|e| anyhow!("aerospike put: {e}"))
    }
}

impl Session {
    pub async fn read(&mut self, key: u64) -> Result<ReadOutcome> {
        match self {
            Session::Aerospike(s) => s.read(key).await,
            Session::Redis(s) => s.read(key).await,
        }
    }

    pub async fn write(&mut self, key: u64, value: &[u8]) -> Result<()> {
        match self {
            Session::Aerospike(s) => s.write(key, value).await,
            Session::Redis(s) => s.write(key, value).await,
        }
    }
}
