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

/// Warns, naming the file and never its content, when a secret file can be read by others
/// or written by its group: anyone with an account on the host could then sign as the app,
/// or replace the key.
///
/// Reading by the group is allowed: a Kubernetes Secret volume gives its files to root and
/// the pod's `fsGroup` (mode 0440 here), and the group is the pod's own; a process that
/// runs as neither root nor the file's owner can read them no other way.
pub(crate) fn warn_if_readable_by_others(path: &Path) {
    if let Some(mode) = loose_permissions(path) {
        tracing::warn!(
            file = %path.display(),
            mode = format_args!("{mode:o}"),
            "secret file is readable by others or writable by its group; chmod 600 (or 440) it"
        );
    }
}

/// The file's permission bits when they let others in or the group write
/// (`mode & 0o027`).
#[cfg(unix)]
fn loose_permissions(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o027 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn loose_permissions(_path: &Path) -> Option<u32> {
    None
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Collects what the subscriber writes, to check the warning's text.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn secret_file(name: &str, mode: u32) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("impush-secret-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, "s3cr3t-value\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn resolve_logged(path: &Path) -> (Secret, String) {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let reference = SecretRef {
            file: Some(path.to_owned()),
            env: None,
        };
        let secret = tracing::subscriber::with_default(subscriber, || {
            reference.resolve(Path::new("/")).unwrap()
        });
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        (secret, log)
    }

    #[test]
    fn a_secret_file_readable_by_others_is_warned_about_by_name_not_content() {
        for mode in [0o644, 0o604, 0o660, 0o666] {
            let path = secret_file(&format!("loose-{mode:o}.key"), mode);
            let (secret, log) = resolve_logged(&path);
            assert_eq!(secret.expose(), "s3cr3t-value", "still usable");
            assert!(log.contains("WARN"), "{log}");
            assert!(log.contains(&path.display().to_string()), "{log}");
            assert!(log.contains(&format!("{mode:o}")), "{log}");
            assert!(
                !log.contains("s3cr3t"),
                "the content never reaches the log: {log}"
            );
        }
    }

    #[test]
    fn a_secret_file_only_its_owner_can_read_is_not_warned_about() {
        let path = secret_file("tight.key", 0o600);
        let (_, log) = resolve_logged(&path);
        assert_eq!(log, "");
    }

    #[test]
    fn a_secret_file_as_kubernetes_mounts_it_with_fs_group_is_not_warned_about() {
        // A Secret volume with defaultMode 0440: root's file, readable by the pod's fsGroup.
        for mode in [0o440, 0o640, 0o400] {
            let path = secret_file(&format!("mounted-{mode:o}.key"), mode);
            let (_, log) = resolve_logged(&path);
            assert_eq!(log, "", "mode {mode:o}");
        }
    }
}
