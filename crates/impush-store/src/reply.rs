//! Reading script replies by hand, so that a reply of the wrong shape becomes a
//! non-transient [`StoreError::UnexpectedReply`] (redis-rs would report a conversion failure
//! as a parse error, indistinguishable from a broken connection).

use redis::Value;

use crate::error::StoreError;

pub(crate) fn array(call: &'static str, value: Value) -> Result<Vec<Value>, StoreError> {
    match value {
        Value::Array(items) | Value::Set(items) => Ok(items),
        other => Err(StoreError::unexpected(
            call,
            format!("expected an array, got {other:?}"),
        )),
    }
}

pub(crate) fn int(call: &'static str, value: &Value) -> Result<i64, StoreError> {
    match value {
        Value::Int(n) => Ok(*n),
        other => Err(StoreError::unexpected(
            call,
            format!("expected an integer, got {other:?}"),
        )),
    }
}

/// A string field as Redis returned it: `Ok(None)` when missing, `Err` with the raw bytes
/// shown lossily when it is not text.
pub(crate) fn text(value: Value) -> Result<Option<String>, String> {
    let bytes = match value {
        Value::Nil => return Ok(None),
        Value::BulkString(bytes) => bytes,
        Value::SimpleString(s) => return Ok(Some(s)),
        Value::VerbatimString { text, .. } => return Ok(Some(text)),
        Value::Okay => return Ok(Some("OK".to_owned())),
        Value::Int(n) => return Ok(Some(n.to_string())),
        other => return Err(format!("not a string: {other:?}")),
    };
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|e| format!("not UTF-8: {:?}", String::from_utf8_lossy(e.as_bytes())))
}
