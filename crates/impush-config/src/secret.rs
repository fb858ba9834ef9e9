//! Secrets come from files or environment variables, never from the config text itself, and
//! never print: `Secret`'s Debug is `Secret(***)` and it has no Display.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// Where a secret is: `{ file = "keys/apns.p8" }` (relative to the config file) or
/// `{ env = "IMPUSH_APNS_KEY" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    #[serde(default)]
    pub file: Option<PathBuf>,
    #[serde(default)]
    pub env: Option<String>,
}

/// A secret value. Only [`Secret::expose`] gives it out.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl SecretRef {
    pub fn resolve(&self, base_dir: &Path) -> Result<Secret, ConfigError> {
        let fail = |message: String| ConfigError::Parse {
            origin: "secret".into(),
            message,
        };
        match (&self.file, &self.env) {
            (Some(file), None) => {
                let path = base_dir.join(file);
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                warn_if_readable_by_others(&path);
                Ok(Secret(text.trim_end().to_owned()))
            }
            (None, Some(var)) => std::env::var(var)
                .map(Secret)
                .map_err(|_| fail(format!("environment variable {var} is not set"))),
            _ => Err(fail("a secret needs exactly one of `file` or `env`".into())),
        }
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "impush: warning: secret file {} is readable by other users (chmod 600 it)",
            path.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}
