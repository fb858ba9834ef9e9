//! "This device already got this message": the sender checks before calling the vendor and
//! records after the vendor accepted, so a redelivered push job (at-least-once delivery)
//! never notifies the same device twice while the record lives.

use redis::Value;

use crate::error::StoreError;
use crate::{DeviceRef, Store};

impl Store {
    /// Which of these devices already got this message (one round trip).
    pub async fn already_sent(
        &self,
        sdk_app_id: u32,
        msg_id: &str,
        devices: &[DeviceRef<'_>],
    ) -> Result<Vec<bool>, StoreError> {
        if devices.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for device in devices {
            let user = self.keys.user(sdk_app_id, device.user_id);
            pipe.exists(user.sent(msg_id, device.device_id));
        }
        let mut con = self.con.clone();
        let replies: Vec<Value> = pipe.query_async(&mut con).await?;
        if replies.len() != devices.len() {
            return Err(StoreError::unexpected(
                "already_sent",
                format!("{} replies for {} devices", replies.len(), devices.len()),
            ));
        }
        replies
            .iter()
            .map(|reply| match reply {
                Value::Int(n) => Ok(*n > 0),
                Value::Boolean(b) => Ok(*b),
                other => Err(StoreError::unexpected(
                    "already_sent",
                    format!("EXISTS answered {other:?}"),
                )),
            })
            .collect()
    }

    /// Records that the vendor accepted this message for these devices, for `ttl_s`
    /// seconds (one round trip).
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
        let mut pipe = redis::pipe();
        for device in devices {
            let user = self.keys.user(sdk_app_id, device.user_id);
            pipe.set_ex(user.sent(msg_id, device.device_id), 1, ttl_s)
                .ignore();
        }
        let mut con = self.con.clone();
        pipe.query_async::<()>(&mut con).await?;
        Ok(())
    }
}
