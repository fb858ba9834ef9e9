//! Sending within each credential's limits: a rate (one token per device token sent), a
//! count of the pushes accepted today against a configured `daily_quota`, and pauses when a
//! vendor says its quota is used up.
//!
//! The rate and the day's count are the fleet's: they live in Redis
//! (`Store::take_rate`, a GCRA on Redis's clock, and `Store::count_quota`), so `rate_per_s`
//! is what all sender processes of a vendor send together, however many there are, and
//! `impush_quota_remaining` is the fleet's figure on every process. While Redis cannot be
//! reached, each process falls back to a bucket of its own at the same rate (the fleet may
//! then send up to N times the rate for that while) and to its own count. Defaults are the
//! vendors' published figures where there is one, conservative otherwise (configurable,
//! because OEM quotas depend on the app's user count and change often):
//!
//! | vendor | default tokens/s | source |
//! |---|---|---|
//! | APNs | unlimited | Apple publishes none; HTTP/2 concurrency is the limit |
//! | FCM | 10,000 | 600,000 per minute per project (firebase.google.com throttling-and-quotas) |
//! | Huawei | 3,000 | Push Kit flow control, 3,000 QPS |
//! | Xiaomi | 3,000 | no public figure; same order as Huawei |
//! | OPPO | 5,000 | the lowest tier of OPPO's QPS table (< 10 M users) |
//! | vivo | 500 | no public figure for system messages; conservative |
//! | Meizu | 500 | no public figure; conservative |
//! | TPNS | 500 | no public figure; conservative |

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use impush_config::Config;
use impush_core::Vendor;
use impush_store::Store;

/// The default rate of a vendor's credentials, tokens per second; `None`: unlimited. Each
/// vendor's client module states its own (`DEFAULT_RATE_PER_S`).
pub fn default_rate_per_s(vendor: Vendor) -> Option<u32> {
    impush_vendors::default_rate_per_s(vendor)
}

pub struct Limits {
    /// Where the fleet's rates and counts are kept; `None`: this process's own only.
    store: Option<Store>,
    /// The fleet-wide rate and burst of each rate-limited credential.
    rates: HashMap<u64, (u32, u32)>,
    /// This process's own buckets, used while Redis cannot be reached.
    buckets: HashMap<u64, DefaultDirectRateLimiter>,
    paused_until: Mutex<HashMap<u64, Instant>>,
    /// Pushes accepted today per credential with a configured `daily_quota`.
    quotas: HashMap<u64, DailyQuota>,
    vendor: Vendor,
}

/// A vendor's daily quota as impush sees it: the configured size and what was used today.
/// Days turn at midnight Beijing time (UTC+8), when the Chinese vendors reset theirs.
struct DailyQuota {
    limit: u64,
    state: Mutex<(i64, u64)>,
}

/// The quota day `now_ms` falls in: days turn at midnight in China.
fn quota_day(now_ms: i64) -> i64 {
    impush_vendors::china_day(now_ms)
}

impl Limits {
    pub fn new(config: &Config, vendor: Vendor) -> Limits {
        let mut buckets = HashMap::new();
        let mut rates = HashMap::new();
        for (business_id, credential) in &config.credentials {
            if credential.vendor != vendor {
                continue;
            }
            let rate = config
                .vendors
                .get(business_id)
                .and_then(|v| v.rate_per_s)
                .or_else(|| default_rate_per_s(vendor))
                .and_then(NonZeroU32::new);
            if let Some(rate) = rate {
                // The fleet's burst: one second's worth (a larger batch waits for a full
                // allowance, then passes).
                rates.insert(*business_id, (rate.get(), rate.get()));
                // A burst of at least one full batch, so a 1000-token request can pass.
                let burst = NonZeroU32::new(rate.get().max(1_000)).unwrap_or(rate);
                buckets.insert(
                    *business_id,
                    RateLimiter::direct(Quota::per_second(rate).allow_burst(burst)),
                );
            }
        }
        let quotas = config
            .vendors
            .iter()
            .filter(|(id, _)| {
                config
                    .credentials
                    .get(id)
                    .is_some_and(|c| c.vendor == vendor)
            })
            .filter_map(|(id, settings)| {
                settings.daily_quota.map(|limit| {
                    (
                        *id,
                        DailyQuota {
                            limit,
                            state: Mutex::new((quota_day(impush_runtime::now_ms()), 0)),
                        },
                    )
                })
            })
            .collect();
        Limits {
            store: None,
            rates,
            buckets,
            paused_until: Mutex::new(HashMap::new()),
            quotas,
            vendor,
        }
    }

    /// Shares the rates and the day's counts with the other processes through `store`.
    pub fn shared_through(mut self, store: Store) -> Limits {
        self.store = Some(store);
        self
    }

    /// Takes over the pauses and today's counts of the limits this one replaces.
    pub fn carry_over(&self, old: &Limits) {
        if let (Ok(mut mine), Ok(theirs)) = (self.paused_until.lock(), old.paused_until.lock()) {
            mine.extend(theirs.iter().map(|(id, until)| (*id, *until)));
        }
        for (id, quota) in &self.quotas {
            if let (Some(previous), Ok(mut mine)) = (old.quotas.get(id), quota.state.lock())
                && let Ok(theirs) = previous.state.lock()
            {
                *mine = *theirs;
            }
        }
    }

    /// Sets `impush_quota_remaining` for every credential with a daily quota: this
    /// process's count at once, the fleet's as soon as Redis answers.
    pub fn report_quotas(&self, config: &Config) {
        for (id, quota) in &self.quotas {
            if !config.credentials.contains_key(id) {
                continue;
            }
            self.set_remaining(*id, impush_runtime::now_ms());
            let Some(store) = self.store.clone() else {
                continue;
            };
            let (id, limit, vendor) = (*id, quota.limit, self.vendor);
            tokio::spawn(async move {
                let day = quota_day(impush_runtime::now_ms());
                if let Ok(used) = store.count_quota(id, day, 0).await {
                    report_remaining(vendor, id, limit.saturating_sub(used));
                }
            });
        }
    }

    /// Counts `n` pushes the vendor accepted with this credential, in the fleet's count
    /// (and this process's own, the fallback).
    pub async fn used(&self, business_id: u64, n: usize) {
        let Some(quota) = self.quotas.get(&business_id) else {
            return;
        };
        let now = impush_runtime::now_ms();
        let day = quota_day(now);
        if let Ok(mut state) = quota.state.lock() {
            if state.0 != day {
                *state = (day, 0);
            }
            state.1 = state.1.saturating_add(n as u64);
        }
        if let Some(store) = &self.store {
            match store.count_quota(business_id, day, n as u64).await {
                Ok(used) => {
                    if self.paused_for(business_id).is_none() {
                        report_remaining(
                            self.vendor,
                            business_id,
                            quota.limit.saturating_sub(used),
                        );
                    }
                    return;
                }
                Err(err) => {
                    tracing::warn!(error = %err, business_id, "fleet quota count unavailable; reporting this process's count");
                }
            }
        }
        self.set_remaining(business_id, now);
    }

    fn set_remaining(&self, business_id: u64, now: i64) {
        let Some(quota) = self.quotas.get(&business_id) else {
            return;
        };
        let Ok(state) = quota.state.lock() else {
            return;
        };
        let used_today = if state.0 == quota_day(now) {
            state.1
        } else {
            0
        };
        let paused = self.paused_for(business_id).is_some();
        let remaining = if paused {
            0
        } else {
            quota.limit.saturating_sub(used_today)
        };
        report_remaining(self.vendor, business_id, remaining);
    }

    /// Waits until `tokens` more may be sent with this credential, by the fleet's rate
    /// (this process's own bucket while Redis cannot be reached).
    pub async fn acquire(&self, business_id: u64, tokens: usize) {
        if let (Some(store), Some((rate, burst))) = (&self.store, self.rates.get(&business_id)) {
            // A bundle's tokens may exceed one burst: taken a burst at a time, so the rate
            // holds for them too.
            let mut left = u32::try_from(tokens).unwrap_or(u32::MAX).max(1);
            let mut fleet_rate = true;
            while left > 0 && fleet_rate {
                let part = left.min((*burst).max(1));
                loop {
                    match store.take_rate(business_id, part, *rate, *burst).await {
                        Ok(wait) if wait.is_zero() => break,
                        Ok(wait) => tokio::time::sleep(wait).await,
                        Err(err) => {
                            tracing::warn!(error = %err, business_id, "fleet rate limit unavailable; limiting this process alone");
                            fleet_rate = false;
                            break;
                        }
                    }
                }
                left -= part;
            }
            if fleet_rate {
                return;
            }
        }
        let Some(bucket) = self.buckets.get(&business_id) else {
            return;
        };
        let Some(n) = u32::try_from(tokens).ok().and_then(NonZeroU32::new) else {
            return;
        };
        // More than the burst can never pass at once; such a batch waits for a full bucket.
        if bucket.until_n_ready(n).await.is_err() {
            bucket.until_ready().await;
        }
    }

    /// How long this credential is still paused, if it is.
    pub fn paused_for(&self, business_id: u64) -> Option<Duration> {
        let now = Instant::now();
        let mut paused = self.paused_until.lock().ok()?;
        match paused.get(&business_id) {
            Some(until) if *until > now => Some(*until - now),
            Some(_) => {
                paused.remove(&business_id);
                None
            }
            None => None,
        }
    }

    /// The vendor said this credential's quota is used up for `for_`: hold its sends.
    pub fn pause(&self, business_id: u64, for_: Duration) {
        if let Ok(mut paused) = self.paused_until.lock() {
            let until = Instant::now() + for_;
            let entry = paused.entry(business_id).or_insert(until);
            *entry = (*entry).max(until);
        }
        // The vendor says the quota is used up, whatever impush counted.
        self.set_remaining(business_id, impush_runtime::now_ms());
    }
}

/// Sets `impush_quota_remaining` of one credential.
fn report_remaining(vendor: Vendor, business_id: u64, remaining: u64) {
    metrics::gauge!("impush_quota_remaining", "vendor" => impush_core::vendor::name(vendor), "business_id" => business_id.to_string())
        .set(remaining as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quota_pause_holds_until_its_time_and_then_lifts() {
        let limits = Limits::new(&Config::default(), Vendor::Fcm);
        assert_eq!(limits.paused_for(2), None);
        limits.pause(2, Duration::from_millis(50));
        assert!(limits.paused_for(2).is_some());
        assert_eq!(limits.paused_for(3), None, "other credentials go on");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(limits.paused_for(2), None);
    }

    #[test]
    fn a_longer_pause_is_never_shortened() {
        let limits = Limits::new(&Config::default(), Vendor::Fcm);
        limits.pause(2, Duration::from_secs(60));
        limits.pause(2, Duration::from_millis(1));
        assert!(limits.paused_for(2).unwrap() > Duration::from_secs(50));
    }

    #[tokio::test]
    async fn the_bucket_holds_sends_to_the_configured_rate() {
        let config = impush_config::Config::parse(
            "[[credentials]]\nbusiness_id = 2\nvendor = \"fcm\"\nproject_id = \"p\"\nrate_per_s = 1000\n",
            "t",
        )
        .unwrap();
        let limits = Limits::new(&config, Vendor::Fcm);
        // A full burst passes at once; right after it, the next 500 tokens are not there.
        limits.acquire(2, 1000).await;
        let bucket = &limits.buckets[&2];
        let n = NonZeroU32::new(500).unwrap();
        assert!(bucket.check_n(n).unwrap().is_err(), "the bucket is empty");
        assert!(
            !limits.buckets.contains_key(&1),
            "no bucket for unknown credentials"
        );
    }

    #[test]
    fn defaults_follow_the_vendors_published_limits() {
        assert_eq!(default_rate_per_s(Vendor::Fcm), Some(10_000));
        assert_eq!(default_rate_per_s(Vendor::Huawei), Some(3_000));
        assert_eq!(default_rate_per_s(Vendor::Apns), None);
    }
}
