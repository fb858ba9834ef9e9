//! The simulated user base: who exists, on which vendor, online or not. It is a pure function
//! of the user count and the vendor list, so `register` and every later `run` (another
//! process) agree on it without sharing any state.
//!
//! User `i` is `lg<i>` with one device `d0` of vendor `vendors[i % n]`. Users alternate in
//! blocks of `n` between offline (BACKGROUND: pushed) and online (FOREGROUND: skipped), so
//! every vendor has as many offline users as online ones and a window of 1,000 consecutive
//! users (a group) is half offline.

use futures::StreamExt;
use impush_core::vendor;
use impush_proto::v1::{DeviceRegistered, PresenceChanged, PresenceState, Vendor};
use impush_store::Store;
use indicatif::{ProgressBar, ProgressStyle};

/// The loadgen's users live in their own app, apart from any other traffic.
pub const SDK_APP_ID: u32 = 1_400_000_900;
/// Registrations in flight at once: enough to keep Redis busy over one connection.
const IN_FLIGHT: usize = 256;

#[derive(Debug, Clone)]
pub struct Population {
    pub users: usize,
    pub vendors: Vec<Vendor>,
}

impl Population {
    pub fn user_id(i: usize) -> String {
        format!("lg{i}")
    }

    pub fn vendor(&self, i: usize) -> Vendor {
        self.vendors
            .get(i % self.vendors.len().max(1))
            .copied()
            .unwrap_or(Vendor::Apns)
    }

    pub fn online(&self, i: usize) -> bool {
        (i / self.vendors.len().max(1)) % 2 == 1
    }

    /// A 32-hex token, unique per user, accepted by every vendor's format check (TPNS takes
    /// at most 36 characters).
    pub fn token(i: usize) -> String {
        format!(
            "{:016x}{:016x}",
            i,
            (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        )
    }

    /// Offline users of the given vendors: the receivers of a C2C stream, each one push.
    pub fn offline_of(&self, vendors: &[Vendor]) -> Vec<usize> {
        (0..self.users)
            .filter(|&i| !self.online(i) && vendors.contains(&self.vendor(i)))
            .collect()
    }

    /// Registers every user's device and presence straight into Redis through impush-store,
    /// the same writes impush-ingest makes: an order of magnitude faster than through the
    /// broker, and it leaves the broker and the fleet idle for the measurement.
    pub async fn register(
        &self,
        store: &Store,
        business_ids: &dyn Fn(Vendor) -> Option<u64>,
        at_ms: i64,
    ) -> anyhow::Result<()> {
        let bar = ProgressBar::new(self.users as u64).with_style(bar_style());
        bar.set_message("registering devices");
        let mut writes = futures::stream::iter(0..self.users)
            .map(|i| {
                let vendor = self.vendor(i);
                let online = self.online(i);
                let business_id = business_ids(vendor);
                async move {
                    let business_id = business_id.ok_or_else(|| {
                        anyhow::anyhow!("the config has no {} credential", vendor::name(vendor))
                    })?;
                    let user_id = Population::user_id(i);
                    store
                        .register_device(&DeviceRegistered {
                            sdk_app_id: SDK_APP_ID,
                            user_id: user_id.clone(),
                            device_id: "d0".into(),
                            vendor: vendor as i32,
                            business_id,
                            token: Population::token(i),
                            is_tpns_token: false,
                            at_ms,
                        })
                        .await?;
                    let state = if online {
                        PresenceState::Foreground
                    } else {
                        PresenceState::Background
                    };
                    store
                        .set_presence(&PresenceChanged {
                            sdk_app_id: SDK_APP_ID,
                            user_id,
                            device_id: "d0".into(),
                            state: state as i32,
                            unread: 0,
                            at_ms,
                        })
                        .await?;
                    anyhow::Ok(())
                }
            })
            .buffer_unordered(IN_FLIGHT);
        while let Some(result) = writes.next().await {
            result?;
            bar.inc(1);
        }
        bar.finish_and_clear();
        Ok(())
    }
}

pub fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg:24} [{elapsed_precise}] {wide_bar} {pos}/{len} {per_sec}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn population() -> Population {
        Population {
            users: 16_000,
            vendors: vendor::ALL.to_vec(),
        }
    }

    #[test]
    fn every_vendor_has_as_many_offline_users_as_online() {
        let p = population();
        for v in vendor::ALL {
            let of_vendor: Vec<usize> = (0..p.users).filter(|&i| p.vendor(i) == v).collect();
            let offline = of_vendor.iter().filter(|&&i| !p.online(i)).count();
            assert_eq!(offline * 2, of_vendor.len(), "{v:?}");
        }
    }

    #[test]
    fn a_group_of_consecutive_users_is_half_offline_within_one_block_of_vendors() {
        let p = population();
        let offline = (3_000..4_000).filter(|&i| !p.online(i)).count();
        assert!((492..=508).contains(&offline), "{offline}");
    }

    #[test]
    fn tokens_are_unique_and_pass_every_vendor_check() {
        let a = Population::token(1);
        assert_ne!(a, Population::token(2));
        assert!(a.len() <= 36, "TPNS's limit");
        for v in vendor::ALL {
            assert_eq!(vendor::check_token(v, &a), Ok(()), "{v:?}");
        }
    }
}
