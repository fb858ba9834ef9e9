//! `impush config show|check`: what a worker would run with, and whether it would start.

use std::path::Path;
use std::process::ExitCode;

use impush_core::vendor;

/// Prints the effective configuration (file, environment overrides, defaults), redacted.
pub fn show(path: &Path) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", path.display()))?;
    let shown =
        impush_config::effective_toml(&text, &path.display().to_string(), std::env::vars())?;
    print!("{shown}");
    Ok(ExitCode::SUCCESS)
}

/// Loads the config as a worker would (TLS files included) and builds every vendor's
/// clients, so a missing key file, a bad PEM or a wrong p12 password is found before a
/// deploy, not after.
pub fn check(path: &Path) -> anyhow::Result<ExitCode> {
    let config = impush_config::Config::load(path)?;
    // The CA and client certificate files of `[amqp]` and `[redis]`, read as a worker would.
    config.amqp_tls()?;
    config.redis_tls()?;
    // The `[credentials.receipt]` secrets impush-receipts reads.
    for (business_id, settings) in &config.vendors {
        if let Some(receipt) = &settings.receipt {
            for secret in [&receipt.callback_key, &receipt.token]
                .into_iter()
                .flatten()
            {
                config.secret(secret).map_err(|e| {
                    anyhow::anyhow!("credential {business_id}: [credentials.receipt]: {e}")
                })?;
            }
        }
    }
    let mut summary = Vec::new();
    for v in vendor::ALL {
        let count = config
            .credentials
            .values()
            .filter(|c| c.vendor == v)
            .count();
        if count == 0 {
            continue;
        }
        let clients = impush_vendors::VendorClients::from_config(&config, v)?;
        for (business_id, kind, expires_at_s) in clients.expiries() {
            let days = (expires_at_s - now_s()) / 86_400;
            println!(
                "credential {business_id} ({}): {kind} expires in {days} days",
                vendor::name(v)
            );
        }
        summary.push(format!("{} {}", count, vendor::name(v)));
    }
    println!(
        "{}: ok ({} credentials: {})",
        path.display(),
        config.credentials.len(),
        if summary.is_empty() {
            "none".to_owned()
        } else {
            summary.join(", ")
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
