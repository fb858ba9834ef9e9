//! The workers' sections of the config file, each with the defaults of a local stack.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::SecretRef;
use crate::tls::TlsSettings;

/// RabbitMQ queue type: quorum (replicated, the default) or classic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueType {
    #[default]
    Quorum,
    Classic,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmqpConfig {
    pub url: String,
    /// The nodes of a RabbitMQ cluster (`url` alone when empty): each (re)connection starts
    /// at one of them picked at random and tries the others in turn, so that a worker finds
    /// a surviving node when the one it was on goes away.
    pub urls: Vec<String>,
    /// Prefix of every exchange and queue name: `impush` gives the names of the contract
    /// (`impush.events`, `impush.push.apns`, …); tests use their own.
    pub prefix: String,
    pub queue_type: QueueType,
    /// Unacknowledged deliveries per consumer.
    pub prefetch: u16,
    /// The retry ladder: one delay queue per step, in milliseconds.
    pub retry_delays_ms: Vec<u64>,
    /// Deliveries tried before a push is dead-lettered (the first try included).
    pub max_attempts: u32,
    /// Events larger than this are dead-lettered as `too_large` without being decoded.
    pub max_event_bytes: usize,
    /// PEM file of the CA that signed the broker's certificate (`amqps://` only), trusted
    /// besides the system's store.
    pub tls_ca_file: Option<PathBuf>,
    /// PEM client certificate, for a broker that asks for one (mutual TLS).
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
}

impl Default for AmqpConfig {
    fn default() -> AmqpConfig {
        AmqpConfig {
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            urls: Vec::new(),
            prefix: "impush".into(),
            queue_type: QueueType::Quorum,
            prefetch: 64,
            retry_delays_ms: vec![1_000, 5_000, 30_000, 120_000, 600_000],
            max_attempts: 6,
            max_event_bytes: 1 << 20,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

impl AmqpConfig {
    /// The broker addresses to connect to: `urls`, or `url` alone when `urls` is empty.
    pub fn addresses(&self) -> Vec<String> {
        if self.urls.is_empty() {
            vec![self.url.clone()]
        } else {
            self.urls.clone()
        }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.retry_delays_ms.is_empty() || self.retry_delays_ms.contains(&0) {
            return Err("retry_delays_ms needs at least one positive delay".into());
        }
        if self.max_attempts == 0 {
            return Err("max_attempts must be at least 1".into());
        }
        if self.max_event_bytes == 0 {
            return Err("max_event_bytes must be at least 1".into());
        }
        if self.prefetch == 0 {
            return Err("prefetch must be at least 1".into());
        }
        if self.prefix.is_empty() || self.prefix.contains(char::is_whitespace) {
            return Err("prefix must be a non-empty name".into());
        }
        if self.urls.iter().any(|url| url.trim().is_empty()) {
            return Err("urls may not hold an empty address".into());
        }
        let addresses = self.addresses();
        self.tls_settings()
            .validate("amqps", addresses.iter().map(String::as_str))
    }

    pub(crate) fn tls_settings(&self) -> TlsSettings<'_> {
        TlsSettings {
            section: "amqp",
            ca_file: self.tls_ca_file.as_deref(),
            cert_file: self.tls_cert_file.as_deref(),
            key_file: self.tls_key_file.as_deref(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    pub url: String,
    /// A Redis Cluster: `urls` are its seed nodes (`url` alone when empty).
    pub cluster: bool,
    pub urls: Vec<String>,
    /// Prefix of every key; tests use their own.
    pub prefix: String,
    /// How long a "this device got this message" record is kept, in seconds.
    pub dedupe_ttl_s: u64,
    /// PEM file of the CA that signed the servers' certificates (`rediss://` only), trusted
    /// instead of the system's store.
    pub tls_ca_file: Option<PathBuf>,
    /// PEM client certificate, for servers that ask for one (mutual TLS).
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
}

impl Default for RedisConfig {
    fn default() -> RedisConfig {
        RedisConfig {
            url: "redis://127.0.0.1:6379".into(),
            cluster: false,
            urls: Vec::new(),
            prefix: "impush".into(),
            dedupe_ttl_s: 7 * 24 * 3600,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

impl RedisConfig {
    pub(crate) fn validate(&self) -> Result<(), String> {
        let urls: Vec<&str> = if self.cluster && !self.urls.is_empty() {
            self.urls.iter().map(String::as_str).collect()
        } else {
            vec![self.url.as_str()]
        };
        self.tls_settings().validate("rediss", urls)
    }

    pub(crate) fn tls_settings(&self) -> TlsSettings<'_> {
        TlsSettings {
            section: "redis",
            ca_file: self.tls_ca_file.as_deref(),
            cert_file: self.tls_cert_file.as_deref(),
            key_file: self.tls_key_file.as_deref(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouterConfig {
    /// Recipients fetched from Redis and fanned out per step of a group message.
    pub chunk_size: usize,
    /// A push not delivered this long after the message was sent is dropped, in seconds
    /// (unless the message's own TTL is shorter).
    pub max_age_s: u64,
    /// Most PushJobs in one broker message to a sender: jobs for a vendor that are ready
    /// while the previous publish to that vendor waits for its confirm go out together.
    /// 1 publishes every job on its own.
    pub bundle_max_jobs: usize,
}

impl Default for RouterConfig {
    fn default() -> RouterConfig {
        RouterConfig {
            chunk_size: 500,
            max_age_s: 24 * 3600,
            bundle_max_jobs: 64,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SenderConfig {
    /// Jobs in flight per sender process.
    pub concurrency: usize,
    /// Timeout of one vendor request, in milliseconds.
    pub request_timeout_ms: u64,
}

impl Default for SenderConfig {
    fn default() -> SenderConfig {
        SenderConfig {
            concurrency: 64,
            request_timeout_ms: 10_000,
        }
    }
}

/// `[log]`: how workers write their logs (to standard error).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter (`info`, `impush_sender=debug,info`, …); `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            format: LogFormat::Pretty,
            level: "info".into(),
        }
    }
}

/// `pretty` for people at a terminal, `json` (one object a line) for log pipelines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

/// `[reload]`: when workers re-read the config file and the secret files it names.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReloadConfig {
    /// How often the files are checked for changes, in seconds; 0: only on SIGHUP.
    pub poll_s: u64,
}

impl Default for ReloadConfig {
    fn default() -> ReloadConfig {
        ReloadConfig { poll_s: 5 }
    }
}

/// Declares [`VendorSettings`] with one `[credentials.<vendor>]` app-secret section per
/// vendor listed (the vendors whose secrets are an [`OemSecrets`]), and
/// [`VendorSettings::oem_secrets`] over the same list.
macro_rules! vendor_settings {
    ($($oem:ident),+ $(,)?) => {
        /// Where one credential sends and the secrets it signs with (`[[credentials]]`
        /// entries).
        #[derive(Debug, Clone, Default, Deserialize, Serialize)]
        pub struct VendorSettings {
            /// The vendor's API root; empty means the vendor's production host.
            #[serde(default)]
            pub base_url: String,
            /// Tokens per second this credential may send, for the whole fleet of sender
            /// processes (shared through Redis; default: the vendor's published limit, see
            /// `impush-sender`'s `limits` module).
            #[serde(default)]
            pub rate_per_s: Option<u32>,
            /// The vendor's daily push quota for this app, if it has one (Xiaomi, OPPO,
            /// vivo…): only reported, as `impush_quota_remaining` (the fleet's count, kept
            /// in Redis); the vendor's own answers enforce it.
            #[serde(default)]
            pub daily_quota: Option<u64>,
            #[serde(default)]
            pub apns: Option<ApnsSecrets>,
            #[serde(default)]
            pub fcm: Option<FcmSecrets>,
            #[serde(default)]
            pub harmony: Option<HarmonySecrets>,
            /// `[credentials.receipt]`: how `impush-receipts` checks this credential's
            /// delivery receipts.
            #[serde(default)]
            pub receipt: Option<ReceiptSecrets>,
            $(
                #[doc = concat!("`[credentials.", stringify!($oem), "]`")]
                #[serde(default)]
                pub $oem: Option<OemSecrets>,
            )+
        }

        impl VendorSettings {
            /// The app-secret sections this credential has, with their vendor's name.
            pub fn oem_secrets(&self) -> impl Iterator<Item = (&'static str, &OemSecrets)> {
                [$((stringify!($oem), self.$oem.as_ref()),)+]
                    .into_iter()
                    .filter_map(|(vendor, secrets)| Some((vendor, secrets?)))
            }
        }
    };
}

vendor_settings! { huawei, xiaomi, oppo, vivo, meizu, tpns, honor }

/// `[credentials.huawei]`, `[credentials.xiaomi]`, … : the app secrets of the Android OEM
/// channels and TPNS. The app's public id is the credential's `app_id`.
///
/// | vendor | app_key | app_secret | master_secret |
/// |---|---|---|---|
/// | Huawei | – | AppSecret (OAuth client secret) | – |
/// | Xiaomi | – | AppSecret (`Authorization: key=…`) | – |
/// | OPPO | – | – | MasterSecret (auth sign) |
/// | vivo | AppKey | AppSecret (auth sign) | – |
/// | Meizu | – | AppSecret (request sign) | – |
/// | TPNS | – | SecretKey (Basic auth with the AccessID) | – |
/// | Honor | OAuth client ID | OAuth client secret | – |
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OemSecrets {
    #[serde(default)]
    pub app_key: String,
    #[serde(default)]
    pub app_secret: Option<SecretRef>,
    #[serde(default)]
    pub master_secret: Option<SecretRef>,
    /// Overrides the vendor's OAuth/auth endpoint (Huawei, Honor token URL), e.g. for the
    /// simulator.
    #[serde(default)]
    pub auth_url: Option<String>,
}

/// `[credentials.receipt]`: what a receipt for this credential must prove.
///
/// - Huawei: `callback_user` and `callback_key` as set in AppGallery Connect's receipt
///   settings; the receipt's `X-HUAWEI-CALLBACK-ID` header must carry their HMAC.
/// - Every vendor: `token`, which the receipt URL must carry as its `token` query
///   parameter. Xiaomi, OPPO, vivo and Honor sign nothing we could check (unverified for
///   Honor), so the URL is the only proof: give them an unguessable one.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptSecrets {
    #[serde(default)]
    pub callback_user: String,
    #[serde(default)]
    pub callback_key: Option<SecretRef>,
    #[serde(default)]
    pub token: Option<SecretRef>,
}

/// `[credentials.harmony]`: the service-account key file of a HarmonyOS NEXT Push Kit
/// project, as Huawei's API Console hands it out (`key_id`, `sub_account`, `private_key`,
/// `project_id`); the credential's `project_id` is the one in the send URL.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HarmonySecrets {
    pub service_account: SecretRef,
}

/// `[credentials.apns]`: a p8 provider-token key, or a p12 client certificate.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApnsSecrets {
    #[serde(default)]
    pub team_id: String,
    #[serde(default)]
    pub key_id: String,
    /// The `.p8` PKCS#8 P-256 key.
    #[serde(default)]
    pub private_key: Option<SecretRef>,
    /// A `.p12` client certificate instead of a key.
    #[serde(default)]
    pub p12: Option<PathBuf>,
    #[serde(default)]
    pub p12_password: Option<SecretRef>,
}

/// `[credentials.fcm]`: the service account JSON (with its `token_uri`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FcmSecrets {
    pub service_account: SecretRef,
    /// Overrides the service account's `token_uri`.
    #[serde(default)]
    pub token_uri: Option<String>,
}

/// `[sim]`: the vendor simulators.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    pub listen: String,
    /// APNs provider keys the simulator accepts.
    pub apns_keys: Vec<SimApnsKey>,
    /// FCM service accounts the simulator accepts.
    pub fcm_accounts: Vec<SimFcmAccount>,
    /// HarmonyOS Push Kit service accounts the simulator accepts.
    pub harmony_accounts: Vec<SimHarmonyAccount>,
    /// Vendors whose simulator sends delivery receipts after accepting a push (none by
    /// default); also switched at run time through `POST /sim/receipts`.
    pub receipts: Vec<SimReceipts>,
}

/// `[[sim.receipts]]`: one vendor simulator that posts a receipt, in that vendor's format
/// and signed as it signs, after it accepted a push that asked for one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SimReceipts {
    /// `huawei`, `honor`, `xiaomi`, `oppo` or `vivo`.
    pub vendor: String,
    /// Where receipts go for vendors whose receipt address lives in their console, not in
    /// the push request (Huawei, Honor). Xiaomi, OPPO and vivo take it from the request.
    #[serde(default)]
    pub url: String,
    /// Huawei's "callback user name" and "callback key" of the console's receipt settings:
    /// with both set, receipts carry the `X-HUAWEI-CALLBACK-ID` HMAC header.
    #[serde(default)]
    pub callback_user: String,
    #[serde(default)]
    pub callback_key: String,
    /// Also send a `clicked` receipt (vendors that report clicks: Xiaomi).
    #[serde(default)]
    pub clicked: bool,
}

/// `[feedback]`: push outcomes for IM core (`feedback.push` on `impush.events`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedbackConfig {
    /// The sdk_app_ids that receive `feedback.push` outcomes; none by default.
    pub push_outcomes: Vec<u32>,
    /// Outcomes per broker message at most; a full batch is published at once.
    pub batch_max: usize,
    /// A batch that is not full is published after this long, in milliseconds.
    pub flush_interval_ms: u64,
    /// Outcomes waiting to be published at most; more are dropped and counted
    /// (`impush_push_outcomes_total{result="dropped"}`), never slowing pushes down.
    pub queue_max: usize,
}

impl Default for FeedbackConfig {
    fn default() -> FeedbackConfig {
        FeedbackConfig {
            push_outcomes: Vec::new(),
            batch_max: 500,
            flush_interval_ms: 200,
            queue_max: 50_000,
        }
    }
}

impl FeedbackConfig {
    /// Whether any app asked for outcomes.
    pub fn enabled(&self) -> bool {
        !self.push_outcomes.is_empty()
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.batch_max == 0 || self.flush_interval_ms == 0 || self.queue_max == 0 {
            return Err("batch_max, flush_interval_ms and queue_max must be at least 1".into());
        }
        Ok(())
    }
}

/// `[receipts]`: the `impush-receipts` process that takes the vendors' delivery receipts.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReceiptsConfig {
    /// Where the receipt endpoints (`POST /receipts/<vendor>/<business_id>`) listen.
    pub listen: String,
    /// Largest receipt body accepted, in bytes.
    pub max_body_bytes: usize,
}

impl Default for ReceiptsConfig {
    fn default() -> ReceiptsConfig {
        ReceiptsConfig {
            listen: "127.0.0.1:8790".into(),
            max_body_bytes: 1 << 20,
        }
    }
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            listen: "127.0.0.1:8700".into(),
            apns_keys: Vec::new(),
            fcm_accounts: Vec::new(),
            harmony_accounts: Vec::new(),
            receipts: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SimApnsKey {
    pub team_id: String,
    pub key_id: String,
    /// PEM of the public half.
    pub public_key: PathBuf,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SimHarmonyAccount {
    /// The service account's `sub_account`, the JWT's `iss`.
    pub sub_account: String,
    /// The Push Kit project the account sends for (the `<projectId>` of the send URL).
    pub project_id: String,
    /// Its `key_id`, the JWT header's `kid`.
    pub key_id: String,
    /// PEM of the public half.
    pub public_key: PathBuf,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SimFcmAccount {
    pub client_email: String,
    /// PEM of the public half.
    pub public_key: PathBuf,
}
