//! The iOS badge counter: per device, the pushes since its last BACKGROUND (or FOREGROUND)
//! report. The router adds this to the unread count of that report (`badge_for`).

use redis::Value;

use crate::connection::{Batch, evalsha};
use crate::error::StoreError;
use crate::{DeviceRef, Store, group_by_user, reply};

const CALL: &str = "bump_badges";

impl Store {
    /// Counts this message once per device towards its badge and returns, per device, the
    /// number of pushes since its last BACKGROUND report, this one included (>= 1).
    /// Idempotent per (msg_id, device): a redelivered message gets the same numbers and
    /// does not count twice, for `ttl_s` seconds. One round trip per Redis node for the whole
    /// slice.
    pub async fn bump_badges(
        &self,
        sdk_app_id: u32,
        msg_id: &str,
        devices: &[DeviceRef<'_>],
        ttl_s: u64,
    ) -> Result<Vec<u32>, StoreError> {
        if ttl_s == 0 {
            return Err(StoreError::invalid(CALL, "ttl_s must be at least 1"));
        }
        if devices.is_empty() {
            return Ok(Vec::new());
        }
        let groups = group_by_user(devices);
        let mut batch = Batch::new();
        for (user_id, positions) in &groups {
            let user = self.keys.user(sdk_app_id, user_id);
            let mut keys = Vec::with_capacity(positions.len() * 2);
            for device in positions.iter().filter_map(|&p| devices.get(p)) {
                keys.push(user.device(device.device_id));
                keys.push(user.badge(msg_id, device.device_id));
            }
            let cmd = evalsha(&self.scripts.bump_badges, &keys, |cmd| {
                cmd.arg(ttl_s);
            });
            batch.add(&user.devices(), cmd);
        }
        let replies = self.run_batch(&batch).await?;
        if replies.len() != groups.len() {
            return Err(StoreError::unexpected(
                CALL,
                format!("{} replies for {} users", replies.len(), groups.len()),
            ));
        }
        let mut counts = vec![1u32; devices.len()];
        for ((user_id, positions), reply) in groups.iter().zip(replies) {
            let per_device = reply::array(CALL, reply)?;
            if per_device.len() != positions.len() {
                return Err(StoreError::unexpected(
                    CALL,
                    format!(
                        "{} counts for {} devices",
                        per_device.len(),
                        positions.len()
                    ),
                ));
            }
            for (&position, entry) in positions.iter().zip(per_device) {
                let (count, corrupt) = read_count(entry)?;
                if corrupt {
                    tracing::warn!(
                        sdk_app_id,
                        user_id,
                        device_id = devices.get(position).map(|d| d.device_id),
                        "badge counter was not a number and restarted"
                    );
                }
                if let Some(slot) = counts.get_mut(position) {
                    *slot = count;
                }
            }
        }
        Ok(counts)
    }
}

/// One `{pushes_since, corrupt}` pair of BUMP_BADGES.
fn read_count(entry: Value) -> Result<(u32, bool), StoreError> {
    let pair = reply::array(CALL, entry)?;
    let [count, corrupt] = <[Value; 2]>::try_from(pair)
        .map_err(|p| StoreError::unexpected(CALL, format!("{} values per device", p.len())))?;
    let count = reply::int(CALL, &count)?;
    let corrupt = reply::int(CALL, &corrupt)? == 1;
    // At least this push; a counter beyond u32 would only come from corrupt data.
    let count = u32::try_from(count.max(1)).unwrap_or(u32::MAX);
    Ok((count, corrupt))
}
