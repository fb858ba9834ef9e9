//! Recalled messages: the router remembers a `MessageRevoked` for as long as a push of that
//! message could still be queued or retried, and both the router (`fetch_chunk`) and the
//! sender ([`Store::claim_unless_revoked`]) look for the record before a push goes on, in a
//! round trip they make anyway. The sender also keeps, for as long, which devices a
//! message's push reached ([`Store::mark_sent_and_shown`], in the round trip of the delivery
//! records), so that a recall can replace what they show.

use impush_proto::v1::{PushTarget, ShownPush, Vendor};
use prost::Message;
use redis::Value;

use crate::connection::Batch;
use crate::dedupe::read_claims;
use crate::error::StoreError;
use crate::{Applied, DeviceRef, SendClaim, Store, reply};

/// What taking in a recall found.
#[derive(Debug, Clone, PartialEq)]
pub struct RecallTaken {
    /// `Stale`: the recall was already remembered (the first keeps its lifetime).
    pub applied: Applied,
    /// The devices the message's push had reached by then.
    pub shown: Vec<ShownPush>,
}

impl Store {
    /// Remembers that `msg_id` was recalled, for `ttl_s` seconds, and reads which devices
    /// its push reached, in one round trip (both keys share the message's slot).
    pub async fn remember_revoked(
        &self,
        sdk_app_id: u32,
        msg_id: &str,
        at_ms: i64,
        ttl_s: u64,
    ) -> Result<RecallTaken, StoreError> {
        const CALL: &str = "remember_revoked";
        if msg_id.is_empty() {
            return Err(StoreError::invalid(CALL, "empty msg_id"));
        }
        if ttl_s == 0 {
            return Err(StoreError::invalid(CALL, "ttl_s must be at least 1"));
        }
        let key = self.keys.revoked(sdk_app_id, msg_id);
        let mut remember = redis::cmd("SET");
        remember.arg(&key).arg(at_ms).arg("NX").arg("EX").arg(ttl_s);
        let shown_key = self.keys.shown(sdk_app_id, msg_id);
        let mut shown = redis::cmd("LRANGE");
        shown.arg(&shown_key).arg(0).arg(-1);
        let mut batch = Batch::new();
        batch.add(&key, remember);
        batch.add(&shown_key, shown);
        let mut replies = self.run_batch(&batch).await?.into_iter();
        let applied = match replies.next() {
            Some(Value::Okay) => Applied::Applied,
            Some(Value::Nil) => Applied::Stale,
            other => {
                return Err(StoreError::unexpected(
                    CALL,
                    format!("SET answered {other:?}"),
                ));
            }
        };
        let mut pushes = Vec::new();
        for entry in reply::array(CALL, replies.next().unwrap_or(Value::Nil))? {
            match entry {
                Value::BulkString(bytes) => match ShownPush::decode(bytes.as_slice()) {
                    Ok(push) => pushes.push(push),
                    Err(err) => {
                        tracing::warn!(key = %shown_key, error = %err, "skipping a corrupt shown push");
                    }
                },
                other => {
                    tracing::warn!(key = %shown_key, ?other, "skipping a shown push that is not bytes");
                }
            }
        }
        Ok(RecallTaken {
            applied,
            shown: pushes,
        })
    }

    /// [`Store::mark_sent`] for these targets, and (when `shown_ttl_s` is set) a note of
    /// each under the message for `shown_ttl_s` seconds, for a later recall: one round
    /// trip per Redis node.
    #[allow(clippy::too_many_arguments)]
    pub async fn mark_sent_and_shown(
        &self,
        sdk_app_id: u32,
        msg_id: &str,
        vendor: Vendor,
        business_id: u64,
        targets: &[PushTarget],
        ttl_s: u64,
        shown_ttl_s: Option<u64>,
    ) -> Result<(), StoreError> {
        if ttl_s == 0 || shown_ttl_s == Some(0) {
            return Err(StoreError::invalid(
                "mark_sent_and_shown",
                "ttl_s must be at least 1",
            ));
        }
        if targets.is_empty() {
            return Ok(());
        }
        let devices: Vec<DeviceRef<'_>> = targets
            .iter()
            .map(|t| DeviceRef {
                user_id: &t.user_id,
                device_id: &t.device_id,
            })
            .collect();
        let mut batch = Batch::new();
        self.add_sent(&mut batch, sdk_app_id, msg_id, &devices, ttl_s);
        if let Some(shown_ttl_s) = shown_ttl_s {
            let key = self.keys.shown(sdk_app_id, msg_id);
            let mut push = redis::cmd("RPUSH");
            push.arg(&key);
            for target in targets {
                let shown = ShownPush {
                    vendor: vendor as i32,
                    business_id,
                    target: Some(PushTarget {
                        badge: None,
                        ..target.clone()
                    }),
                };
                push.arg(shown.encode_to_vec());
            }
            batch.add(&key, push);
            let mut expire = redis::cmd("EXPIRE");
            expire.arg(&key).arg(shown_ttl_s);
            batch.add(&key, expire);
        }
        self.run_batch(&batch).await?;
        Ok(())
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
