//! The configuration file shared by every impush binary (`--config FILE`).
//!
//! - `[[credentials]]`: one vendor credential per business_id: its public profile (what
//!   payloads need), where to send (`base_url`) and its secrets, read from files or the
//!   environment, never from the file itself and never printed.
//! - `[templates]`: the notification texts per app.
//! - `[amqp]`, `[redis]`, `[router]`, `[sender]`, `[sim]`: the workers' settings.
//!
//! Any value can be overridden from the environment: `IMPUSH__AMQP__URL=amqp://…` sets
//! `[amqp] url` (sections and keys joined by double underscores, lower-cased).

mod recall;
mod secret;
mod show;
mod tls;
mod workers;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use impush_core::{CredentialProfile, TemplateSet, Templates};
use serde::Deserialize;

pub use secret::{Secret, SecretRef};
pub use show::{REDACTED, effective_toml};
pub use tls::{ClientIdentity, ClientTls};
pub use workers::{
    AmqpConfig, ApnsSecrets, FcmSecrets, FeedbackConfig, HarmonySecrets, LogConfig, LogFormat,
    OemSecrets, QueueType, ReceiptSecrets, ReceiptsConfig, RedisConfig, ReloadConfig, RouterConfig,
    SenderConfig, SimApnsKey, SimConfig, SimFcmAccount, SimHarmonyAccount, SimReceipts,
    VendorSettings,
};

/// The prefix of environment variables that override config values.
pub const ENV_PREFIX: &str = "IMPUSH__";

/// The local stack's configuration, also the built-in sample credentials of
/// `impush render` without `--config`.
pub const LOCAL_STACK_TOML: &str = include_str!("../../../deploy/local/impush.toml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("config {origin}: credentials[{index}] (business_id {business_id}): {message}")]
    Credential {
        origin: String,
        index: usize,
        business_id: u64,
        message: String,
    },
    #[error("{setting} {path}: {message}")]
    Tls {
        /// `amqp.tls_ca_file`, `redis.tls_key_file`, …
        setting: String,
        path: PathBuf,
        message: String,
    },
    #[error("config {origin}: templates.{key}: {message}")]
    Templates {
        origin: String,
        key: String,
        message: String,
    },
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    credentials: Vec<toml::Value>,
    #[serde(default)]
    templates: HashMap<String, Templates>,
    #[serde(default)]
    amqp: AmqpConfig,
    #[serde(default)]
    redis: RedisConfig,
    #[serde(default)]
    router: RouterConfig,
    #[serde(default)]
    sender: SenderConfig,
    #[serde(default)]
    sim: SimConfig,
    #[serde(default)]
    log: LogConfig,
    #[serde(default)]
    reload: ReloadConfig,
    #[serde(default)]
    feedback: FeedbackConfig,
    #[serde(default)]
    receipts: ReceiptsConfig,
}

/// The whole configuration, validated.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The public profile of each credential, by business_id.
    pub credentials: HashMap<u64, CredentialProfile>,
    /// Where each credential sends and which secrets it uses, by business_id.
    pub vendors: HashMap<u64, VendorSettings>,
    pub templates: TemplateSet,
    pub amqp: AmqpConfig,
    pub redis: RedisConfig,
    pub router: RouterConfig,
    pub sender: SenderConfig,
    pub sim: SimConfig,
    pub log: LogConfig,
    pub reload: ReloadConfig,
    pub feedback: FeedbackConfig,
    pub receipts: ReceiptsConfig,
    /// The directory relative secret and key file paths are resolved against.
    pub base_dir: PathBuf,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config =
            Config::parse_with_env(&text, &path.display().to_string(), std::env::vars())?;
        config.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(config)
    }

    /// The local stack's credentials (business_id 1 APNs … 8 TPNS) and default templates.
    pub fn sample() -> Result<Config, ConfigError> {
        Config::parse(LOCAL_STACK_TOML, "deploy/local/impush.toml (built in)")
    }

    /// Parses `text` as is, without environment overrides.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        Config::parse_with_env(text, origin, std::iter::empty())
    }

    /// Parses `text` with `IMPUSH__SECTION__KEY` overrides taken from `env`.
    pub fn parse_with_env(
        text: &str,
        origin: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        Config::from_table(merged_table(text, origin, env)?, origin)
    }

    fn from_table(value: toml::Table, origin: &str) -> Result<Config, ConfigError> {
        let parse_error = |message: String| ConfigError::Parse {
            origin: origin.to_owned(),
            message,
        };
        let raw: RawConfig = toml::Value::Table(value)
            .try_into()
            .map_err(|e: toml::de::Error| parse_error(e.to_string()))?;
        let mut credentials = HashMap::new();
        let mut vendors = HashMap::new();
        for (index, entry) in raw.credentials.into_iter().enumerate() {
            // One entry, two views (the public profile and the sending settings), each
            // reading its own keys: a key is unknown when neither view reads it.
            let mut unread_by_profile = BTreeSet::new();
            let credential: CredentialProfile = serde_ignored::deserialize(entry.clone(), |path| {
                unread_by_profile.insert(path.to_string());
            })
            .map_err(|e: toml::de::Error| parse_error(format!("credentials[{index}]: {e}")))?;
            let mut unread_by_settings = BTreeSet::new();
            let settings: VendorSettings = serde_ignored::deserialize(entry, |path| {
                unread_by_settings.insert(path.to_string());
            })
            .map_err(|e: toml::de::Error| ConfigError::Credential {
                origin: origin.to_owned(),
                index,
                business_id: credential.business_id,
                message: e.to_string(),
            })?;
            let fail = |message: String| ConfigError::Credential {
                origin: origin.to_owned(),
                index,
                business_id: credential.business_id,
                message,
            };
            if let Some(key) = unread_by_settings
                .iter()
                .find(|key| read_by_neither(key, &unread_by_profile))
            {
                return Err(fail(format!("unknown key `{key}`")));
            }
            if credential.business_id == 0 {
                return Err(fail("business_id must be a positive certificate ID".into()));
            }
            if let Some(missing) = missing_identity_field(&credential) {
                return Err(fail(format!(
                    "`{missing}` is required for {} credentials",
                    impush_core::vendor::name(credential.vendor)
                )));
            }
            if let Some(problem) = receipt_url_problem(&credential) {
                return Err(fail(problem));
            }
            if credentials.contains_key(&credential.business_id) {
                return Err(fail("business_id is used by an earlier credential".into()));
            }
            vendors.insert(credential.business_id, settings);
            credentials.insert(credential.business_id, credential);
        }
        let mut templates = TemplateSet::default();
        for (key, set) in raw.templates {
            if key == "default" {
                templates.default = set;
                continue;
            }
            let sdk_app_id = key.parse::<u32>().map_err(|_| ConfigError::Templates {
                origin: origin.to_owned(),
                key: key.clone(),
                message: "expected `default` or an sdk_app_id".into(),
            })?;
            templates.per_app.insert(sdk_app_id, set);
        }
        let sets = std::iter::once(("default".to_owned(), &templates.default)).chain(
            templates
                .per_app
                .iter()
                .map(|(app, set)| (app.to_string(), set)),
        );
        for (key, set) in sets {
            if let Some(unknown) = set.unknown_placeholder() {
                return Err(ConfigError::Templates {
                    origin: origin.to_owned(),
                    key,
                    message: unknown.to_string(),
                });
            }
        }
        raw.amqp
            .validate()
            .map_err(|m| parse_error(format!("amqp: {m}")))?;
        raw.redis
            .validate()
            .map_err(|m| parse_error(format!("redis: {m}")))?;
        raw.feedback
            .validate()
            .map_err(|m| parse_error(format!("feedback: {m}")))?;
        Ok(Config {
            credentials,
            vendors,
            templates,
            amqp: raw.amqp,
            redis: raw.redis,
            router: raw.router,
            sender: raw.sender,
            sim: raw.sim,
            log: raw.log,
            reload: raw.reload,
            feedback: raw.feedback,
            receipts: raw.receipts,
            base_dir: PathBuf::new(),
        })
    }

    /// Resolves a secret of this config (relative files against the config's directory).
    pub fn secret(&self, reference: &SecretRef) -> Result<Secret, ConfigError> {
        reference.resolve(&self.base_dir)
    }

    /// The files this config reads secrets and certificates from (resolved), the ones a
    /// worker watches for changes besides the config file itself.
    pub fn secret_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        let mut add = |reference: Option<&SecretRef>| {
            if let Some(file) = reference.and_then(|r| r.file.as_ref()) {
                files.push(file.clone());
            }
        };
        for settings in self.vendors.values() {
            if let Some(apns) = &settings.apns {
                add(apns.private_key.as_ref());
                add(apns.p12_password.as_ref());
                if let Some(p12) = &apns.p12 {
                    add(Some(&SecretRef {
                        file: Some(p12.clone()),
                        env: None,
                    }));
                }
            }
            if let Some(fcm) = &settings.fcm {
                add(Some(&fcm.service_account));
            }
            if let Some(harmony) = &settings.harmony {
                add(Some(&harmony.service_account));
            }
            for (_, oem) in settings.oem_secrets() {
                add(oem.app_secret.as_ref());
                add(oem.master_secret.as_ref());
            }
            if let Some(receipt) = &settings.receipt {
                add(receipt.callback_key.as_ref());
                add(receipt.token.as_ref());
            }
        }
        let mut files: Vec<PathBuf> = files.iter().map(|f| self.path(f)).collect();
        files.sort();
        files.dedup();
        files
    }

    /// A path from the config, relative to the config's directory.
    pub fn path(&self, path: &Path) -> PathBuf {
        self.base_dir.join(path)
    }
}

/// The file's table with the environment's overrides applied.
fn merged_table(
    text: &str,
    origin: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<toml::Table, ConfigError> {
    let parse_error = |message: String| ConfigError::Parse {
        origin: origin.to_owned(),
        message,
    };
    let mut value: toml::Table = toml::from_str(text).map_err(|e| parse_error(e.to_string()))?;
    let mut overrides: Vec<(String, String)> = env
        .into_iter()
        .filter(|(name, _)| name.starts_with(ENV_PREFIX))
        .collect();
    overrides.sort();
    // Each override is checked against the sections' types as it is applied, so that an
    // error names its variable; that holds only if the file is sound without them (else
    // the file's own error is reported by the full parse that follows).
    let checked = !overrides.is_empty() && sections_accept(&value).is_ok();
    for (name, raw) in overrides {
        let path = &name[ENV_PREFIX.len()..];
        let env_error =
            |message: String| parse_error(format!("environment variable {name}: {message}"));
        if !checked {
            apply_override(&mut value, path, typed_value(&raw)).map_err(env_error)?;
            continue;
        }
        // `123` is a number for a number field and stays a string for a string field.
        let mut candidates = vec![typed_value(&raw)];
        if !candidates[0].is_str() {
            candidates.push(toml::Value::String(raw.clone()));
        }
        let mut first_error = None;
        for candidate in candidates {
            let mut trial = value.clone();
            apply_override(&mut trial, path, candidate).map_err(&env_error)?;
            match sections_accept(&trial) {
                Ok(()) => {
                    value = trial;
                    first_error = None;
                    break;
                }
                Err(message) => {
                    first_error.get_or_insert(message);
                }
            }
        }
        if let Some(message) = first_error {
            return Err(env_error(message));
        }
    }
    Ok(value)
}

/// What is wrong with a credential's `receipt_url`, if anything: the vendors cap its length
/// (OPPO `call_back_url` 200 characters, <https://www.yimenapp.com/kb-yimen/11083>; vivo
/// `callback` 128, <https://www.yimenapp.com/kb-yimen/12123/>), and it must be an HTTP(S)
/// URL.
fn receipt_url_problem(c: &CredentialProfile) -> Option<String> {
    use impush_core::Vendor;
    let url = &c.receipt_url;
    if url.is_empty() {
        return None;
    }
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Some("`receipt_url` must be an http(s) URL".into());
    }
    let max = match c.vendor {
        Vendor::Oppo => 200,
        Vendor::Vivo => 128,
        _ => usize::MAX,
    };
    (url.chars().count() > max).then(|| {
        format!(
            "`receipt_url` is longer than the {max} characters {} takes",
            impush_core::vendor::name(c.vendor)
        )
    })
}

/// Whether the sections of `table` have the keys and types they must (credentials are
/// checked later, entry by entry).
fn sections_accept(table: &toml::Table) -> Result<(), String> {
    toml::Value::Table(table.clone())
        .try_into::<RawConfig>()
        .map(drop)
        .map_err(|e| e.to_string())
}

/// An override's text as a TOML value when it parses as one (numbers, booleans, arrays),
/// else as a string.
fn typed_value(text: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_owned()))
}

/// Sets `a.b.c` (from `A__B__C`) in `table` to `value`.
fn apply_override(table: &mut toml::Table, path: &str, value: toml::Value) -> Result<(), String> {
    let keys: Vec<String> = path.split("__").map(str::to_lowercase).collect();
    let Some((last, sections)) = keys.split_last() else {
        return Err("empty key".into());
    };
    let mut current = table;
    for key in sections {
        let entry = current
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{key}` is not a section"))?;
    }
    current.insert(last.clone(), value);
    Ok(())
}

/// Whether a key one view of a credential left unread (`apns.team`, `nick`) was left
/// unread by the other too, itself or through its table (`apns`).
fn read_by_neither(key: &str, unread_by_other: &BTreeSet<String>) -> bool {
    let mut prefix = String::new();
    for part in key.split('.') {
        if !prefix.is_empty() {
            prefix.push('.');
        }
        prefix.push_str(part);
        if unread_by_other.contains(&prefix) {
            return true;
        }
    }
    false
}

/// The identity field each vendor's payload cannot do without, checked at start so a bad
/// credential is an error naming its business_id and field, not a failure per message.
fn missing_identity_field(c: &CredentialProfile) -> Option<&'static str> {
    match impush_core::payload::spec(c.vendor) {
        Some(spec) => c
            .field(spec.identity)
            .is_empty()
            .then_some(spec.identity.name()),
        None => Some("vendor"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use impush_core::Vendor;

    #[test]
    fn the_local_stack_has_one_credential_per_vendor() {
        let config = Config::sample().unwrap();
        let expected = [
            (1, Vendor::Apns),
            (2, Vendor::Fcm),
            (3, Vendor::Huawei),
            (4, Vendor::Xiaomi),
            (5, Vendor::Oppo),
            (6, Vendor::Vivo),
            (7, Vendor::Meizu),
            (8, Vendor::Tpns),
            (9, Vendor::Honor),
            (10, Vendor::Harmony),
        ];
        for (business_id, vendor) in expected {
            assert_eq!(config.credentials[&business_id].vendor, vendor);
        }
    }

    #[test]
    fn a_credential_without_its_identity_field_names_business_id_and_field() {
        let err = Config::parse(
            "[[credentials]]\nbusiness_id = 9\nvendor = \"apns\"\n",
            "test.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("business_id 9"), "{err}");
        assert!(err.contains("bundle_id"), "{err}");
    }

    #[test]
    fn a_receipt_url_longer_than_its_vendor_takes_is_refused_naming_the_field() {
        let credential = |vendor: &str, url: &str| {
            format!(
                "[[credentials]]\nbusiness_id = 6\nvendor = \"{vendor}\"\napp_id = \"a\"\npackage_name = \"p\"\nreceipt_url = \"{url}\"\n"
            )
        };
        let long = format!("https://r.example/{}", "x".repeat(120));
        let err = Config::parse(&credential("vivo", &long), "t").unwrap_err();
        assert!(err.to_string().contains("`receipt_url`"), "{err}");
        Config::parse(&credential("oppo", &long), "t").unwrap();
        let err = Config::parse(&credential("xiaomi", "ftp://r"), "t").unwrap_err();
        assert!(err.to_string().contains("http(s)"), "{err}");
    }

    #[test]
    fn duplicate_business_ids_are_refused() {
        let one = "[[credentials]]\nbusiness_id = 2\nvendor = \"fcm\"\nproject_id = \"p\"\n";
        let err = Config::parse(&format!("{one}{one}"), "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("earlier credential"), "{err}");
    }

    #[test]
    fn unknown_vendors_are_refused_with_the_list() {
        let err = Config::parse(
            "[[credentials]]\nbusiness_id = 2\nvendor = \"nokia\"\n",
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("apns, fcm"), "{err}");
    }

    #[test]
    fn environment_overrides_config_values() {
        let env = [
            (
                "IMPUSH__AMQP__URL".to_owned(),
                "amqp://other:5672/%2f".to_owned(),
            ),
            ("IMPUSH__SENDER__CONCURRENCY".to_owned(), "7".to_owned()),
            ("OTHER__AMQP__URL".to_owned(), "ignored".to_owned()),
        ];
        let config = Config::parse_with_env(LOCAL_STACK_TOML, "t", env).unwrap();
        assert_eq!(config.amqp.url, "amqp://other:5672/%2f");
        assert_eq!(config.sender.concurrency, 7);
    }

    #[test]
    fn amqp_urls_list_the_cluster_nodes_and_url_alone_serves_without_them() {
        let config = Config::parse("[amqp]\nurl = \"amqp://one:5672/%2f\"\n", "t").unwrap();
        assert_eq!(config.amqp.addresses(), vec!["amqp://one:5672/%2f"]);
        let config = Config::parse(
            "[amqp]\nurls = [\"amqp://a:5672/%2f\", \"amqp://b:5672/%2f\"]\n",
            "t",
        )
        .unwrap();
        assert_eq!(
            config.amqp.addresses(),
            vec!["amqp://a:5672/%2f", "amqp://b:5672/%2f"]
        );
        let env = [(
            "IMPUSH__AMQP__URLS".to_owned(),
            "[\"amqp://c:5672/%2f\", \"amqp://d:5672/%2f\"]".to_owned(),
        )];
        let config = Config::parse_with_env("", "t", env).unwrap();
        assert_eq!(config.amqp.addresses().len(), 2);
        let err = Config::parse("[amqp]\nurls = [\"amqp://a\", \" \"]\n", "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("urls"), "{err}");
    }

    #[test]
    fn tls_settings_apply_to_every_node_of_amqp_urls() {
        let err = Config::parse(
            "[amqp]\nurls = [\"amqps://a:5671/%2f\", \"amqp://b:5672/%2f\"]\ntls_ca_file = \"ca.pem\"\n",
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("not TLS"), "{err}");
    }

    #[test]
    fn the_local_stack_reads_its_secrets_from_key_files() {
        let config = Config::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../deploy/local/impush.toml"),
        )
        .unwrap();
        let apns = config.vendors[&1].apns.as_ref().unwrap();
        let key = config.secret(apns.private_key.as_ref().unwrap()).unwrap();
        assert!(key.expose().contains("BEGIN PRIVATE KEY"));
        assert_eq!(format!("{key:?}"), "Secret(***)", "secrets never print");
        assert_eq!(config.vendors[&1].base_url, "http://127.0.0.1:8700/apns");
    }

    #[test]
    fn an_unknown_section_or_key_is_an_error_naming_it() {
        let err = Config::parse("[sendr]\nconcurrency = 3\n", "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("sendr"), "{err}");
        let err = Config::parse("[sender]\nconcurency = 3\n", "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("concurency"), "{err}");
    }

    #[test]
    fn an_unknown_key_inside_a_credential_is_an_error_naming_it() {
        let one = "[[credentials]]\nbusiness_id = 2\nvendor = \"fcm\"\nproject_id = \"p\"\n";
        Config::parse(one, "t").unwrap();
        let err = Config::parse(&format!("{one}projet_id = \"p\"\n"), "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown key `projet_id`"), "{err}");
        assert!(err.contains("business_id 2"), "{err}");
        let err = Config::parse(
            &format!(
                "{one}[credentials.fcm]\nservice_account = {{ env = \"X\" }}\ntoken_url = \"u\"\n"
            ),
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("token_url"), "{err}");
    }

    #[test]
    fn every_credential_of_the_shipped_configs_reads_every_key() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for file in ["deploy/local/impush.toml", "deploy/compose/impush.toml"] {
            let text = std::fs::read_to_string(root.join(file)).unwrap();
            Config::parse(&text, file).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn an_unknown_template_placeholder_is_refused_at_load() {
        let err = Config::parse("[templates.1400000002]\nc2c = \"{nick}: {content}\"\n", "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("templates.1400000002"), "{err}");
        assert!(err.contains("{nick}"), "{err}");
        let err = Config::parse("[templates.default]\ngroup = \"{name}: {contents}\"\n", "t")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("templates.default") && err.contains("{contents}"),
            "{err}"
        );
    }

    #[test]
    fn an_override_of_the_wrong_type_names_its_variable() {
        let env = [("IMPUSH__SENDER__CONCURRENCY".to_owned(), "lots".to_owned())];
        let err = Config::parse_with_env(LOCAL_STACK_TOML, "t", env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("IMPUSH__SENDER__CONCURRENCY"), "{err}");
        let env = [("IMPUSH__SENDER__CONCURENCY".to_owned(), "3".to_owned())];
        let err = Config::parse_with_env(LOCAL_STACK_TOML, "t", env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("IMPUSH__SENDER__CONCURENCY"), "{err}");
    }

    #[test]
    fn an_override_that_looks_like_a_number_stays_a_string_for_a_string_field() {
        let env = [
            ("IMPUSH__AMQP__PREFIX".to_owned(), "123".to_owned()),
            ("IMPUSH__REDIS__PREFIX".to_owned(), "true".to_owned()),
            ("IMPUSH__SENDER__CONCURRENCY".to_owned(), "7".to_owned()),
        ];
        let config = Config::parse_with_env(LOCAL_STACK_TOML, "t", env).unwrap();
        assert_eq!(config.amqp.prefix, "123");
        assert_eq!(config.redis.prefix, "true");
        assert_eq!(config.sender.concurrency, 7);
    }

    #[test]
    fn the_log_format_is_set_from_the_environment() {
        let env = [("IMPUSH__LOG__FORMAT".to_owned(), "json".to_owned())];
        let config = Config::parse_with_env(LOCAL_STACK_TOML, "t", env).unwrap();
        assert_eq!(config.log.format, LogFormat::Json);
    }

    #[test]
    fn the_secret_files_of_the_local_stack_are_all_found() {
        let config = Config::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../deploy/local/impush.toml"),
        )
        .unwrap();
        let files = config.secret_files();
        assert!(files.len() >= 8, "{files:?}");
        assert!(files.iter().all(|f| f.exists()), "{files:?}");
    }

    #[test]
    fn templates_per_app() {
        let config = Config::parse(
            "[templates.1400000002]\nimage = \"[图片]\"\n[templates.default]\nimage = \"[photo]\"\n",
            "t",
        )
        .unwrap();
        assert_eq!(config.templates.for_app(1400000002).image, "[图片]");
        assert_eq!(config.templates.for_app(1).image, "[photo]");
        assert!(Config::parse("[templates.abc]\n", "t").is_err());
    }
}
