//! Configuration reloads: on SIGHUP, or when the config file or one of the secret files it
//! names changes (checked every `[reload] poll_s`), the config is read and validated again
//! and handed to the worker, which swaps in what it can change live (credentials, templates,
//! rates) while in-flight work finishes with the old. A config that fails to load or
//! validate is refused, logged and counted; the running one stays.
//!
//! Files are compared by content, not modification time, so an atomic symlink swap (how
//! Kubernetes updates a mounted Secret) and an in-place edit are both seen.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use impush_config::Config;
use tokio_util::sync::CancellationToken;

/// What a worker does with a newly loaded config; `Err` refuses it (the old one stays).
pub type ApplyFn = Box<dyn Fn(Config) -> Result<(), String> + Send + Sync>;

/// Settings that only take effect when the process starts again.
fn restart_only_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if old.amqp.url != new.amqp.url {
        changed.push("amqp.url");
    }
    if old.amqp.urls != new.amqp.urls {
        changed.push("amqp.urls");
    }
    if old.amqp.prefix != new.amqp.prefix {
        changed.push("amqp.prefix");
    }
    if old.amqp.queue_type != new.amqp.queue_type {
        changed.push("amqp.queue_type");
    }
    if old.amqp.retry_delays_ms != new.amqp.retry_delays_ms {
        changed.push("amqp.retry_delays_ms");
    }
    if old.amqp.prefetch != new.amqp.prefetch {
        changed.push("amqp.prefetch");
    }
    if old.redis.url != new.redis.url {
        changed.push("redis.url");
    }
    if old.redis.prefix != new.redis.prefix {
        changed.push("redis.prefix");
    }
    if old.sender.concurrency != new.sender.concurrency {
        changed.push("sender.concurrency");
    }
    // The paths only: TLS files are read when a process starts.
    let amqp_tls = |c: &Config| {
        (
            c.amqp.tls_ca_file.clone(),
            c.amqp.tls_cert_file.clone(),
            c.amqp.tls_key_file.clone(),
        )
    };
    if amqp_tls(old) != amqp_tls(new) {
        changed.push("amqp.tls_*");
    }
    let redis_tls = |c: &Config| {
        (
            c.redis.tls_ca_file.clone(),
            c.redis.tls_cert_file.clone(),
            c.redis.tls_key_file.clone(),
        )
    };
    if redis_tls(old) != redis_tls(new) {
        changed.push("redis.tls_*");
    }
    changed
}

/// Runs until `shutdown`: reloads `path` on SIGHUP and on file changes, calling `apply`.
pub async fn watch_config(
    path: PathBuf,
    initial: Config,
    apply: ApplyFn,
    shutdown: CancellationToken,
) {
    let poll = Duration::from_secs(initial.reload.poll_s);
    let mut current = initial;
    let mut seen = fingerprint(&path, &current);
    let mut hangup = hangup_signal();
    loop {
        let reason = tokio::select! {
            _ = shutdown.cancelled() => return,
            () = next_hangup(&mut hangup) => "SIGHUP",
            () = tokio::time::sleep(poll), if !poll.is_zero() => {
                let now = fingerprint(&path, &current);
                if now == seen {
                    continue;
                }
                "a changed file"
            }
        };
        match Config::load(&path) {
            Ok(new) => {
                let restart = restart_only_changes(&current, &new);
                if !restart.is_empty() {
                    tracing::warn!(settings = ?restart, "these settings take effect only after a restart");
                }
                match apply(new.clone()) {
                    Ok(()) => {
                        tracing::info!(reason, "configuration reloaded");
                        metrics::counter!("impush_config_reloads_total", "outcome" => "ok")
                            .increment(1);
                        current = new;
                    }
                    Err(err) => {
                        tracing::error!(reason, error = %err, "new configuration refused; the running one stays");
                        metrics::counter!("impush_config_reloads_total", "outcome" => "error")
                            .increment(1);
                    }
                }
            }
            Err(err) => {
                tracing::error!(reason, error = %err, "new configuration refused; the running one stays");
                metrics::counter!("impush_config_reloads_total", "outcome" => "error").increment(1);
            }
        }
        // A refused config is not retried until a file changes again.
        seen = fingerprint(&path, &current);
    }
}

/// A hash of the contents of the config file and of every secret file it names (a missing
/// file hashes as missing, so its reappearance is a change too).
fn fingerprint(path: &Path, config: &Config) -> u64 {
    let mut hasher = DefaultHasher::new();
    for file in std::iter::once(path.to_path_buf()).chain(config.secret_files()) {
        file.hash(&mut hasher);
        std::fs::read(&file).ok().hash(&mut hasher);
    }
    hasher.finish()
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = ();

#[cfg(unix)]
fn hangup_signal() -> Hangup {
    use tokio::signal::unix::{SignalKind, signal};
    signal(SignalKind::hangup()).ok()
}

#[cfg(not(unix))]
fn hangup_signal() -> Hangup {}

#[cfg(unix)]
async fn next_hangup(hangup: &mut Hangup) {
    match hangup {
        Some(signal) => {
            if signal.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

#[cfg(not(unix))]
async fn next_hangup(_hangup: &mut Hangup) {
    std::future::pending::<()>().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_settings_are_reported_as_needing_a_restart() {
        let old = Config::default();
        let mut new = Config::default();
        new.amqp.url = "amqp://elsewhere".into();
        new.sender.request_timeout_ms = 1;
        assert_eq!(restart_only_changes(&old, &new), vec!["amqp.url"]);
    }

    #[test]
    fn tls_files_are_reported_as_needing_a_restart() {
        let old = Config::default();
        let mut new = Config::default();
        new.redis.tls_ca_file = Some("ca.pem".into());
        assert_eq!(restart_only_changes(&old, &new), vec!["redis.tls_*"]);
    }

    #[test]
    fn a_changed_secret_file_changes_the_fingerprint() {
        let dir = std::env::temp_dir().join(format!("impush-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("secret"), "one").unwrap();
        let toml = "[[credentials]]\nbusiness_id = 4\nvendor = \"xiaomi\"\npackage_name = \"p\"\n\
                    [credentials.xiaomi]\napp_secret = { file = \"secret\" }\n";
        std::fs::write(dir.join("impush.toml"), toml).unwrap();
        let path = dir.join("impush.toml");
        let config = Config::load(&path).unwrap();
        let before = fingerprint(&path, &config);
        assert_eq!(
            before,
            fingerprint(&path, &config),
            "stable when nothing changed"
        );
        std::fs::write(dir.join("secret"), "two").unwrap();
        assert_ne!(before, fingerprint(&path, &config));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
