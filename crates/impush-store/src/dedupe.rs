//! "This device already got this message": before calling the vendor the sender claims
//! each (message, device); after the vendor accepted, the claim becomes a delivery record.
//! A redelivered push job (at-least-once delivery) or a second job for the same device
//! running at the same moment (a message published twice) therefore never notifies a
//! device twice while the record lives: the second finds the record, or the claim in
//! progress and retries later. A claim of a process that died expires after its TTL.

use redis::Value;

use crate::connection::{Batch, evalsha};
use crate::error::StoreError;
use crate::{DeviceRef, Store, group_by_user};

/// The delivery record's value (a claim holds the claimer's value instead).
const DELIVERED: &str = "1";

/// What a sender may do with one (message, device).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendClaim {
    /// Ours: send it.
    Claimed,
    /// Delivered before: skip it.
    AlreadySent,
    /// Another sender is on it right now: try again later.
    InProgress,
}

impl Store {
    /// Which of these devices already got this message (one round trip); a claim in
    /// progress is not a delivery.
    pub async fn already_sent(
        &self,
        sdk_app_id: u32,
        msg_id: &str,
        devices: &[DeviceRef<'_>],
    ) -> Result<Vec<bool>, StoreError> {
        if devices.is_empty() {
            return Ok(Vec::new());
        }
        let mut batch = Batch::new();
        for device in devices {
            let key = self
                .keys
                .user(sdk_app_id, device.user_id)
                .sent(msg_id, device.device_id);
            let mut cmd = redis::cmd("GET");
            cmd.arg(&key);
            batch.add(&key, cmd);
        }
        let replies = self.run_batch(&batch).await?;
        if replies.len() != devices.len() {
            return Err(StoreError::unexpected(
                "already_sent",
                format!("{} replies for {} devices", replies.len(), devices.len()),
            ));
        }
        replies
            .iter()
            .map(|reply| match reply {
                Value::Nil => Ok(false),
                Value::BulkString(value) => Ok(value.as_slice() == DELIVERED.as_bytes()),
                other => Err(StoreError::unexpected(
                    "already_sent",
                    format!("GET answered {other:?}"),
                )),
            })
            .collect()
    }

    /// Claims these (message, device) pairs for sending, for `claim_ttl_s` seconds. Each
    /// claim is tried once per call: on a cluster, only a claim a node refused (its slot
    /// moving) is sent again, where the key now lives. If the call fails as a whole (a node
    /// unreachable) and the caller tries again, a claim the failed call took reads as
    /// [`SendClaim::InProgress`]: that push waits for the claim to expire, and is never
    /// sent twice. One round trip per Redis node.
    pub async fn claim_for_send(
        &self,
        sdk_app_id: u32,
        msg_id: &str,
        devices: &[DeviceRef<'_>],
        claim_ttl_s: u64,
    ) -> Result<Vec<SendClaim>, StoreError> {
        const CALL: &str = "claim_for_send";
        if claim_ttl_s == 0 {
            return Err(StoreError::invalid(CALL, "claim_ttl_s must be at least 1"));
        }
        if devices.is_empty() {
            return Ok(Vec::new());
        }
        let mut batch = Batch::new();
        self.add_claims(&mut batch, sdk_app_id, msg_id, devices, claim_ttl_s);
        let replies = self.run_batch(&batch).await?;
        read_claims(CALL, &replies, devices.len())
    }

    /// Adds a `SET NX GET EX` per device to `batch`: its claim of (message, device), which
    /// answers with what the key held when the claim was not taken (Redis 7.0 or later).
    pub(crate) fn add_claims(
        &self,
        batch: &mut Batch,
        sdk_app_id: u32,
        msg_id: &str,
        devices: &[DeviceRef<'_>],
        claim_ttl_s: u64,
    ) {
        for device in devices {
            let key = self
                .keys
                .user(sdk_app_id, device.user_id)
                .sent(msg_id, device.device_id);
            let mut claim = redis::cmd("SET");
            claim
                .arg(&key)
                .arg(&*self.claim_owner)
                .arg("NX")
                .arg("GET")
                .arg("EX")
                .arg(claim_ttl_s);
            batch.add(&key, claim);
        }
    }

    /// Gives back claims of pushes that were not delivered (retry, rejected, dead token), so
    /// a retry need not wait for them to expire (one round trip per Redis node).
    pub async fn release_claims(
        &self,
        sdk_app_id: u32,
        msg_id: &str,
        devices: &[DeviceRef<'_>],
    ) -> Result<(), StoreError> {
        if devices.is_empty() {
            return Ok(());
        }
        let groups = group_by_user(devices);
        let mut batch = Batch::new();
        for (user_id, positions) in &groups {
            let user = self.keys.user(sdk_app_id, user_id);
            let keys: Vec<String> = positions
                .iter()
                .filter_map(|&p| devices.get(p))
                .map(|device| user.sent(msg_id, device.device_id))
                .collect();
            let cmd = evalsha(&self.scripts.release_claims, &keys, |cmd| {
                cmd.arg(&*self.claim_owner);
            });
            batch.add(&user.devices(), cmd);
        }
        self.run_batch(&batch).await?;
        Ok(())
    }

    /// Records that the vendor accepted this message for these devices, for `ttl_s`
    /// seconds (one round trip per Redis node). The record replaces the claim.
    pub async fn mark_sent(
        &self,
        sdk_app_id: u32,
        msg_id: &str,
        devices: &[DeviceRef<'_>],
        ttl_s: u64,
    ) -> Result<(), StoreError> {
        if ttl_s == 0 {
            return Err(StoreError::invalid("mark_sent", "ttl_s must be at least 1"));
        }
        if devices.is_empty() {
            return Ok(());
        }
        let mut batch = Batch::new();
        self.add_sent(&mut batch, sdk_app_id, msg_id, devices, ttl_s);
        self.run_batch(&batch).await?;
        Ok(())
    }

    /// Adds the delivery records of these devices to `batch`.
    pub(crate) fn add_sent(
        &self,
        batch: &mut Batch,
        sdk_app_id: u32,
        msg_id: &str,
        devices: &[DeviceRef<'_>],
        ttl_s: u64,
    ) {
        for device in devices {
            let key = self
                .keys
                .user(sdk_app_id, device.user_id)
                .sent(msg_id, device.device_id);
            let mut cmd = redis::cmd("SET");
            cmd.arg(&key).arg(DELIVERED).arg("EX").arg(ttl_s);
            batch.add(&key, cmd);
        }
    }
}

/// Reads the replies of [`Store::add_claims`] for `devices` devices: nothing held the key
/// (claimed), a delivery record, or someone's claim.
pub(crate) fn read_claims(
    call: &'static str,
    replies: &[Value],
    devices: usize,
) -> Result<Vec<SendClaim>, StoreError> {
    if replies.len() != devices {
        return Err(StoreError::unexpected(
            call,
            format!("{} replies for {devices} devices", replies.len()),
        ));
    }
    replies
        .iter()
        .map(|reply| match reply {
            Value::Nil => Ok(SendClaim::Claimed),
            Value::BulkString(value) if value.as_slice() == DELIVERED.as_bytes() => {
                Ok(SendClaim::AlreadySent)
            }
            // Someone's claim, or a node that refused the command (a slot moving): try
            // again later, as for a claim in progress.
            Value::BulkString(_) | Value::ServerError(_) => Ok(SendClaim::InProgress),
            other => Err(StoreError::unexpected(
                call,
                format!("SET NX GET answered {other:?}"),
            )),
        })
        .collect()
}
