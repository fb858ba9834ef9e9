//! What can go wrong talking to the store, classified so a worker knows what to do next:
//! a transient error means "retry later (requeue)", anything else means "this event or this
//! stored record is bad (dead-letter it, or skip it)".

use redis::{ErrorKind, RedisError, ServerErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis could not be reached or answered with an error.
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
    /// The caller passed something the store refuses to write (an empty id, an unknown enum
    /// value, a timestamp Lua cannot compare exactly, a zero TTL, a prefix with braces).
    #[error("invalid {what}: {reason}")]
    InvalidInput { what: &'static str, reason: String },
    /// A stored value that impush did not write in this shape; nothing was changed.
    #[error("corrupt stored value in {key} ({field}): {detail}")]
    Corrupt {
        key: String,
        field: &'static str,
        detail: String,
    },
    /// Redis answered in a shape the script does not produce: scripts and code out of step.
    #[error("unexpected reply to {call}: {detail}")]
    UnexpectedReply { call: &'static str, detail: String },
}

impl StoreError {
    /// Whether trying the same call again later may succeed: Redis down, restarting, busy,
    /// failing over or slow. Bad input and corrupt data fail the same way every time.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Redis(e) => is_transient_redis_error(e),
            StoreError::InvalidInput { .. }
            | StoreError::Corrupt { .. }
            | StoreError::UnexpectedReply { .. } => false,
        }
    }

    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> StoreError {
        StoreError::InvalidInput {
            what,
            reason: reason.into(),
        }
    }

    pub(crate) fn unexpected(call: &'static str, detail: impl Into<String>) -> StoreError {
        StoreError::UnexpectedReply {
            call,
            detail: detail.into(),
        }
    }
}

fn is_transient_redis_error(e: &RedisError) -> bool {
    if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal() {
        return true;
    }
    match e.kind() {
        // A garbled reply means a broken connection; the manager reconnects.
        ErrorKind::Parse | ErrorKind::ClusterConnectionNotFound => true,
        // Slots moving between nodes (resharding, failover): the next try finds them.
        ErrorKind::Server(
            ServerErrorKind::Moved
            | ServerErrorKind::Ask
            | ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::MasterDown
            | ServerErrorKind::BusyLoading
            | ServerErrorKind::ReadOnly,
        ) => true,
        // A node that has not got the scripts (restarted, just promoted): the next try
        // loads them.
        ErrorKind::Server(ServerErrorKind::NoScript) => true,
        // Codes redis-rs has no kind for: out of memory and a long-running script pass.
        ErrorKind::Extension => matches!(e.code(), Some("OOM" | "BUSY" | "LOADING")),
        _ => false,
    }
}
