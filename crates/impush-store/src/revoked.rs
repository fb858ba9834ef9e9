//! Recalled messages: the router remembers a `MessageRevoked` for as long as a push of that
//! message could still be queued or retried, and both the router (`fetch_chunk`) and the
//! sender ([`Store::claim_unless_revoked`]) look for the record before a push goes on, in a
//! round trip they make anyway.

use redis::Value;

use crate::connection::Batch;
use crate::dedupe::read_claims;
use crate::error::StoreError;
use crate::{Applied, DeviceRef, SendClaim, Store, reply};

impl Store {
    /// Remembers that `msg_id` was recalled, for `ttl_s` seconds. A recall already
    /// remembered is [`Applied::Stale`] (the first keeps its timestamp and lifetime).
    pub async fn remember_revoked(
        &self,
        sdk_app_id: u32,
        msg_id: &str,
        at_ms: i64,
        ttl_s: u64,
    ) -> Result<Applied, StoreError> {
        const CALL: &str = "remember_revoked";
        if msg_id.is_empty() {
            return Err(StoreError::invalid(CALL, "empty msg_id"));
        }
        if ttl_s == 0 {
            return Err(StoreError::invalid(CALL, "ttl_s must be at least 1"));
        }
        let key = self.keys.revoked(sdk_app_id, msg_id);
        let mut cmd = redis::cmd("SET");
        cmd.arg(&key).arg(at_ms).arg("NX").arg("EX").arg(ttl_s);
        let mut batch = Batch::new();
        batch.add(&key, cmd);
        match self.run_batch(&batch).await?.as_slice() {
            [Value::Okay] => Ok(Applied::Applied),
            [Value::Nil] => Ok(Applied::Stale),
            other => Err(StoreError::unexpected(
                CALL,
                format!("SET answered {other:?}"),
            )),
        }
    }

    /// Whether `msg_id` was recalled (one round trip).
    pub async fn is_revoked(&self, sdk_app_id: u32, msg_id: &str) -> Result<bool, StoreError> {
        let key = self.keys.revoked(sdk_app_id, msg_id);
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(&key);
        let mut batch = Batch::new();
        batch.add(&key, cmd);
        match self.run_batch(&batch).await?.as_slice() {
            [reply] => Ok(reply::int("is_revoked", reply)? > 0),
            other => Err(StoreError::unexpected(
                "is_revoked",
                format!("{} replies", other.len()),
            )),
        }
    }

    /// [`Store::claim_for_send`], and whether the message was recalled, in the same round
    /// trip. `None`: recalled; the claims this call took are given back and nothing may be
    /// sent.
    pub async fn claim_unless_revoked(
        &self,
        sdk_app_id: u32,
        msg_id: &str,
        devices: &[DeviceRef<'_>],
        claim_ttl_s: u64,
    ) -> Result<Option<Vec<SendClaim>>, StoreError> {
        const CALL: &str = "claim_unless_revoked";
        if claim_ttl_s == 0 {
            return Err(StoreError::invalid(CALL, "claim_ttl_s must be at least 1"));
        }
        let key = self.keys.revoked(sdk_app_id, msg_id);
        let mut batch = Batch::new();
        let mut exists = redis::cmd("EXISTS");
        exists.arg(&key);
        batch.add(&key, exists);
        self.add_claims(&mut batch, sdk_app_id, msg_id, devices, claim_ttl_s);
        let mut replies = self.run_batch(&batch).await?;
        if replies.is_empty() {
            return Err(StoreError::unexpected(CALL, "no reply to EXISTS"));
        }
        let claims = read_claims(CALL, &replies.split_off(1), devices.len())?;
        let revoked = replies
            .first()
            .map_or(Ok(0), |reply| reply::int(CALL, reply))?
            > 0;
        if !revoked {
            return Ok(Some(claims));
        }
        let taken: Vec<DeviceRef<'_>> = devices
            .iter()
            .zip(&claims)
            .filter(|(_, claim)| **claim == SendClaim::Claimed)
            .map(|(device, _)| *device)
            .collect();
        if let Err(err) = self.release_claims(sdk_app_id, msg_id, &taken).await {
            tracing::warn!(error = %err, "could not release the claims of a recalled message; they will expire");
        }
        Ok(None)
    }
}
