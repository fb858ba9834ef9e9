//! The configuration file shared by every impush binary (`--config FILE`).
//!
//! This part of the schema holds what rendering needs: the credentials' public profiles
//! (`[[credentials]]`, keyed by business_id) and the notification templates (`[templates]`).
//! Unknown sections are left to the binaries that own them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use impush_core::{CredentialProfile, TemplateSet, Templates, Vendor};
use serde::Deserialize;

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
    #[error("config {origin}: templates.{key}: {message}")]
    Templates {
        origin: String,
        key: String,
        message: String,
    },
}

#[derive(Debug, Deserialize, Default)]
struct RawConfig {
    #[serde(default)]
    credentials: Vec<CredentialProfile>,
    #[serde(default)]
    templates: HashMap<String, Templates>,
}

/// The rendering part of the configuration, validated.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub credentials: HashMap<u64, CredentialProfile>,
    pub templates: TemplateSet,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// The local stack's credentials (business_id 1 APNs … 8 TPNS) and default templates.
    pub fn sample() -> Result<Config, ConfigError> {
        Config::parse(LOCAL_STACK_TOML, "deploy/local/impush.toml (built in)")
    }

    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        let mut credentials = HashMap::new();
        for (index, credential) in raw.credentials.into_iter().enumerate() {
            let fail = |message: String| ConfigError::Credential {
                origin: origin.to_owned(),
                index,
                business_id: credential.business_id,
                message,
            };
            if credential.business_id == 0 {
                return Err(fail("business_id must be a positive certificate ID".into()));
            }
            if let Some(missing) = missing_identity_field(&credential) {
                return Err(fail(format!(
                    "`{missing}` is required for {} credentials",
                    impush_core::vendor::name(credential.vendor)
                )));
            }
            if credentials.contains_key(&credential.business_id) {
                return Err(fail("business_id is used by an earlier credential".into()));
            }
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
        Ok(Config {
            credentials,
            templates,
        })
    }
}

/// The identity field each vendor's payload cannot do without, checked at start so a bad
/// credential is an error naming its business_id and field, not a failure per message.
fn missing_identity_field(c: &CredentialProfile) -> Option<&'static str> {
    let needs = |field: &'static str, value: &str| value.is_empty().then_some(field);
    match c.vendor {
        Vendor::Apns => needs("bundle_id", &c.bundle_id),
        Vendor::Fcm => needs("project_id", &c.project_id),
        Vendor::Huawei | Vendor::Vivo | Vendor::Meizu | Vendor::Tpns => needs("app_id", &c.app_id),
        Vendor::Xiaomi | Vendor::Oppo => needs("package_name", &c.package_name),
        Vendor::Unspecified => Some("vendor"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
