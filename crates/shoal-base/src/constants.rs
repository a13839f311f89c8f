//! Every limit and fixed number of the system, in one place, units last.

/// Number of partitions in the key space (Aerospike fixed value).
pub const PARTITIONS: usize = 4096;
/// Length of a RIPEMD-160 record digest.
pub const DIGEST_LEN_BYTES: usize = 20;
/// Longest bin name the wire protocol allows.
pub const BIN_NAME_LEN_MAX_BYTES: usize = 15;
/// Longest namespace name.
pub const NAMESPACE_NAME_LEN_MAX_BYTES: usize = 31;
/// Longest set name.
pub const SET_NAME_LEN_MAX_BYTES: usize = 63;
/// Most sets per namespace (Aerospike: 1023 user sets).
pub const SETS_PER_NAMESPACE_MAX: usize = 1023;
/// Most bins in one record (Aerospike's per-record bin limit).
pub const BINS_PER_RECORD_MAX: usize = 32_767;
/// Largest proto body the server accepts (Aerospike `PROTO_SIZE_MAX`).
pub const PROTO_BODY_MAX_BYTES: u64 = 128 * 1024 * 1024;
/// Largest info request body the server accepts.
pub const INFO_REQUEST_MAX_BYTES: u64 = 1024 * 1024;
/// Largest uncompressed size we inflate a type-4 message to.
pub const INFLATED_MAX_BYTES: u64 = PROTO_BODY_MAX_BYTES;
/// Largest TTL a client may ask for: ten years.
pub const TTL_MAX_S: u32 = 10 * 365 * 24 * 3600;
/// Default largest record (Aerospike 7+ `max-record-size` defaults to the 1 MiB write block).
pub const RECORD_SIZE_MAX_DEFAULT_BYTES: u64 = 1024 * 1024;
/// Most rows in one batch request (Aerospike `batch-max-requests` style guard).
pub const BATCH_ROWS_MAX: u32 = 100_000;
/// Default limit on open client connections.
pub const CLIENT_CONNECTIONS_MAX_DEFAULT: usize = 15_000;
/// Default idle time after which a client connection is reaped; longer than the
/// clients' 55 s pool idle so the client always closes first.
pub const CLIENT_IDLE_TIMEOUT_DEFAULT_S: u64 = 60;
/// Size at which a streamed (batch/scan) response group is flushed to the socket.
pub const STREAM_FLUSH_BYTES: usize = 128 * 1024;
