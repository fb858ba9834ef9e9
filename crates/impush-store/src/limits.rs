//! Each credential's sending limits, shared by every sender process of the fleet: the rate
//! (`rate_per_s` means the whole fleet, however many processes send) and the count of
//! pushes accepted today against the vendor's daily quota. One atomic script each, on the
//! credential's own hash tag, so a Redis Cluster keeps a credential's keys in one slot. Both
//! go through [`Store::run_batch`], so on one server they share round trips with the
//! process's other calls (`coalesce.rs`).

use std::time::Duration;

use crate::connection::evalsha;
use crate::{Store, StoreError, reply};

/// How long a day's quota count is kept: its day and the next.
const QUOTA_TTL_S: u64 = 2 * 24 * 3600;

impl Store {
    /// Takes `tokens` from the fleet-wide allowance of `business_id`, which refills at
    /// `rate_per_s` and holds at most `burst` tokens. `Duration::ZERO`: taken; otherwise
    /// nothing was taken and the caller asks again after the returned wait. More tokens
    /// than the burst are taken as a full burst (they pass once the allowance is full).
    pub async fn take_rate(
        &self,
        business_id: u64,
        tokens: u32,
        rate_per_s: u32,
        burst: u32,
    ) -> Result<Duration, StoreError> {
        if rate_per_s == 0 {
            return Err(StoreError::invalid("rate_per_s", "zero"));
        }
        let interval_us = (1_000_000 / u64::from(rate_per_s)).max(1);
        let burst = burst.max(1);
        let tokens = tokens.clamp(1, burst);
        let key = self.keys.credential(business_id).rate();
        let cmd = evalsha(&self.scripts.take_rate, &[&key], |cmd| {
            cmd.arg(interval_us)
                .arg(interval_us * u64::from(burst))
                .arg(tokens);
        });
        let reply = self.run_one("take_rate", &key, cmd).await?;
        let wait_us = reply::int("take_rate", &reply)?;
        Ok(Duration::from_micros(u64::try_from(wait_us).unwrap_or(0)))
    }

    /// Adds `accepted` pushes to the fleet's count for `business_id` on `day` and returns
    /// that day's total (with `accepted` 0, only reads it).
    pub async fn count_quota(
        &self,
        business_id: u64,
        day: i64,
        accepted: u64,
    ) -> Result<u64, StoreError> {
        let key = self.keys.credential(business_id).quota(day);
        let cmd = evalsha(&self.scripts.count_quota, &[&key], |cmd| {
            cmd.arg(accepted).arg(QUOTA_TTL_S);
        });
        let reply = self.run_one("count_quota", &key, cmd).await?;
        let used = reply::int("count_quota", &reply)?;
        Ok(u64::try_from(used).unwrap_or(0))
    }
}
