//! impush's vendor clients: they send the requests `impush-core` builds
//! ([`VendorRequest`]) to the vendors' servers, authenticate them, and turn every answer
//! into an [`Outcome`] per target device.
//!
//! One module per vendor, all shaped alike:
//! - **config → client**: `clients(&Config)` reads every credential of the vendor and checks
//!   its secrets at start-up, so a bad one is an error naming its business_id and field;
//! - **auth with a token cache**: one cached token per signing key (APNs), service account
//!   (FCM) or app (Huawei, OPPO, vivo), shared by all credentials that use it, in the one
//!   [`auth`] cache with single-flight refresh;
//! - **send**: one request, and one more when the vendor says our auth token expired (the
//!   one "refresh once, then resend" step of [`auth`]);
//! - **classify**: the vendor's status and reason or code → [`Outcome`], never on message text.
//!
//! `http` (requests and answers), `auth` (tokens), `oem` (what Huawei Push Kit, Honor and
//! HarmonyOS NEXT share: OAuth client credentials, the bearer send, Push Kit answer codes)
//! and `util` (China time, digests, token shortening) hold what they share; no vendor
//! module imports another. A transport error or timeout is `Retry` for every target;
//! nothing here panics on a vendor's answer. Tokens are logged as their first 8 characters
//! and secrets never.

mod auth;
mod http;
mod oem;
mod util;

pub use util::{china_day, until_china_midnight};

use std::collections::HashMap;
use std::time::Duration;

use impush_config::Config;
use impush_core::{PushTarget, Vendor, VendorRequest};

/// What the vendor said about one target token.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Delivered,
    /// Try again later; `after` from Retry-After when the vendor gave one.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// The token is dead: delete the registration (vendor's own reason, e.g. "Unregistered").
    InvalidToken {
        reason: String,
    },
    /// Will never succeed as sent (bad request, bad credential, payload too large…).
    Rejected {
        reason: String,
    },
}

/// The answer to one [`VendorClients::send`].
#[derive(Debug, Clone, PartialEq)]
pub struct SendResult {
    /// The last HTTP status the vendor answered with, 0 if none (transport error, unknown
    /// business_id).
    pub status: u16,
    /// One per target, in the order of the targets.
    pub outcomes: Vec<Outcome>,
}

/// Why the clients could not be built: always a configuration problem.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("credential {business_id}: `{field}`: {message}")]
    Credential {
        business_id: u64,
        field: &'static str,
        message: String,
    },
    #[error("impush-vendors has no {vendor} client yet")]
    UnsupportedVendor { vendor: &'static str },
}

/// Declares each vendor's client module and the [`Client`] enum over them; each line is
/// `Variant => module` with the `impush_core::Vendor` variant the module serves. Every
/// module has a `Client` with `async fn send`, `fn clients(&Config)` and
/// `DEFAULT_RATE_PER_S`.
macro_rules! vendors {
    ($($variant:ident => $module:ident),+ $(,)?) => {
        $(mod $module;)+

        /// One credential's client, whichever the vendor.
        enum Client {
            $($variant($module::Client),)+
        }

        /// The vendors that have a client here.
        pub const CLIENTS: &[Vendor] = &[$(Vendor::$variant),+];

        /// Every credential's client of `vendor`, by business_id.
        fn clients_of(
            config: &Config,
            vendor: Vendor,
        ) -> Result<HashMap<u64, Client>, ClientError> {
            match vendor {
                $(Vendor::$variant => Ok($module::clients(config)?
                    .into_iter()
                    .map(|(id, c)| (id, Client::$variant(c)))
                    .collect()),)+
                other => Err(ClientError::UnsupportedVendor {
                    vendor: impush_core::vendor::name(other),
                }),
            }
        }

        impl Client {
            async fn send(&self, request: &VendorRequest, targets: &[PushTarget]) -> SendResult {
                match self {
                    $(Client::$variant(client) => client.send(request, targets).await,)+
                }
            }
        }

        /// The default rate of a vendor's credentials in tokens per second, per sender
        /// process (the vendor's published limit, else a conservative figure); `None`:
        /// unlimited.
        pub fn default_rate_per_s(vendor: Vendor) -> Option<u32> {
            match vendor {
                $(Vendor::$variant => $module::DEFAULT_RATE_PER_S,)+
                _ => None,
            }
        }
    };
}

vendors! {
    Apns => apns,
    Fcm => fcm,
    Huawei => huawei,
    Xiaomi => xiaomi,
    Oppo => oppo,
    Vivo => vivo,
    Meizu => meizu,
    Tpns => tpns,
    Honor => honor,
    Harmony => harmony,
}

/// One client per business_id of one vendor.
pub struct VendorClients {
    vendor: Vendor,
    clients: HashMap<u64, Client>,
}

impl VendorClients {
    /// Clients for every credential of `vendor` in the config; a malformed credential is an
    /// error naming its business_id and the field (missing key file, bad PEM, missing team_id…).
    pub fn from_config(config: &Config, vendor: Vendor) -> Result<VendorClients, ClientError> {
        let clients = clients_of(config, vendor)?;
        tracing::info!(
            vendor = impush_core::vendor::name(vendor),
            credentials = clients.len(),
            "vendor clients ready"
        );
        Ok(VendorClients { vendor, clients })
    }

    /// Credentials that expire, as (business_id, kind, Unix seconds): the
    /// `impush_credential_expiry_timestamp_seconds` gauge.
    pub fn expiries(&self) -> Vec<(u64, &'static str, i64)> {
        let mut expiries: Vec<_> = self
            .clients
            .iter()
            .filter_map(|(id, client)| match client {
                Client::Apns(apns) => apns
                    .certificate_expiry_s()
                    .map(|at| (*id, "certificate", at)),
                _ => None,
            })
            .collect();
        expiries.sort_unstable();
        expiries
    }

    pub fn has(&self, business_id: u64) -> bool {
        self.clients.contains_key(&business_id)
    }

    /// Sends `request` (built for `targets` by `impush_core::build_payload`) with the
    /// credential `business_id`: one outcome per target, in order.
    pub async fn send(
        &self,
        business_id: u64,
        request: &VendorRequest,
        targets: &[PushTarget],
    ) -> SendResult {
        match self.clients.get(&business_id) {
            Some(client) => client.send(request, targets).await,
            None => http::all(
                0,
                targets.len(),
                Outcome::Rejected {
                    reason: "unknown_business_id".into(),
                },
            ),
        }
    }
}

impl std::fmt::Debug for VendorClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<u64> = self.clients.keys().copied().collect();
        ids.sort_unstable();
        f.debug_struct("VendorClients")
            .field("vendor", &impush_core::vendor::name(self.vendor))
            .field("business_ids", &ids)
            .finish()
    }
}

/// One client per credential of `vendor`, lowest business_id first, made by `make`; the
/// first malformed credential stops it with an error naming it.
fn build_clients<C>(
    config: &Config,
    vendor: Vendor,
    mut make: impl FnMut(&impush_core::CredentialProfile) -> Result<C, ClientError>,
) -> Result<HashMap<u64, C>, ClientError> {
    let mut profiles: Vec<_> = config
        .credentials
        .values()
        .filter(|c| c.vendor == vendor)
        .collect();
    profiles.sort_unstable_by_key(|c| c.business_id);
    profiles
        .into_iter()
        .map(|profile| Ok((profile.business_id, make(profile)?)))
        .collect()
}

/// `sender.request_timeout_ms` as a duration (at least 1 ms).
fn request_timeout(config: &Config) -> Duration {
    Duration::from_millis(config.sender.request_timeout_ms.max(1))
}

#[cfg(test)]
pub(crate) mod testing {
    //! Fixtures shared by the vendor modules' tests.
    use std::path::{Path, PathBuf};

    use impush_config::Config;

    /// `deploy/local`, where the local stack's config and test keys live.
    pub fn local_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/local")
    }

    pub fn local_config() -> Config {
        Config::load(&local_dir().join("impush.toml")).unwrap()
    }

    /// `text` parsed as a config whose relative paths resolve in `dir`.
    pub fn config_in(dir: &Path, text: &str) -> Config {
        let mut config = Config::parse(text, "test.toml").unwrap();
        config.base_dir = dir.to_owned();
        config
    }

    /// A fresh directory for this test's files.
    pub fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("impush-vendors-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    pub fn read_key(name: &str) -> String {
        std::fs::read_to_string(local_dir().join("keys").join(name)).unwrap()
    }

    /// Targets with these tokens, for classification tables.
    pub fn targets(tokens: &[&str]) -> Vec<impush_core::PushTarget> {
        tokens
            .iter()
            .map(|t| impush_core::PushTarget {
                user_id: "u".into(),
                device_id: "d".into(),
                token: (*t).into(),
                badge: None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(token: &str) -> PushTarget {
        PushTarget {
            user_id: "u".into(),
            device_id: "d".into(),
            token: token.into(),
            badge: None,
        }
    }

    #[tokio::test]
    async fn an_unknown_business_id_is_rejected_for_every_target() {
        let clients = VendorClients::from_config(&testing::local_config(), Vendor::Apns).unwrap();
        assert!(clients.has(1));
        assert!(!clients.has(2), "business_id 2 is FCM");
        let request = VendorRequest {
            path: "/3/device/ab".into(),
            headers: Vec::new(),
            body: impush_core::Body::json(&serde_json::json!({})),
        };
        let result = clients
            .send(99, &request, &[target("a"), target("b")])
            .await;
        let rejected = Outcome::Rejected {
            reason: "unknown_business_id".into(),
        };
        assert_eq!(result.status, 0);
        assert_eq!(result.outcomes, vec![rejected.clone(), rejected]);
    }

    #[test]
    fn clients_can_be_shared_by_the_senders_tasks() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<VendorClients>();
    }

    #[test]
    fn every_vendor_has_a_client() {
        let mut clients = CLIENTS.to_vec();
        clients.sort();
        let mut vendors = impush_core::vendor::ALL.to_vec();
        vendors.sort();
        assert_eq!(
            clients, vendors,
            "a vendor of impush_core::vendor::ALL has no client"
        );
        // And every one builds from the local stack's config.
        let config = testing::local_config();
        for vendor in impush_core::vendor::ALL {
            let clients = VendorClients::from_config(&config, vendor).unwrap();
            assert_eq!(clients.vendor, vendor);
        }
    }

    #[test]
    fn vendors_without_a_client_are_an_error() {
        let err = VendorClients::from_config(&testing::local_config(), Vendor::Unspecified)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unspecified"), "{err}");
    }

    #[test]
    fn debug_shows_no_secret() {
        let clients = VendorClients::from_config(&testing::local_config(), Vendor::Fcm).unwrap();
        assert_eq!(
            format!("{clients:?}"),
            r#"VendorClients { vendor: "fcm", business_ids: [2] }"#
        );
    }
}
