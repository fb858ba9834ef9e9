//! `impush config show`: the configuration a worker would run with (the file, the
//! environment overrides, and the defaults of every worker section), with anything secret
//! replaced by `***`. Secrets themselves never appear in the file (they are `{ file = … }` or
//! `{ env = … }` references), but URLs can carry passwords and keys can be misnamed, so the
//! output is redacted by shape as well.

use crate::{ConfigError, RawConfig};

/// What replaces a secret in the output.
pub const REDACTED: &str = "***";

/// The effective configuration as TOML, redacted.
pub fn effective_toml(
    text: &str,
    origin: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<String, ConfigError> {
    let parse_error = |message: String| ConfigError::Parse {
        origin: origin.to_owned(),
        message,
    };
    let merged = crate::merged_table(text, origin, env)?;
    // Validate exactly as a worker would, so `show` never prints a config that won't start.
    crate::Config::from_table(merged.clone(), origin)?;
    let raw: RawConfig = toml::Value::Table(merged.clone())
        .try_into()
        .map_err(|e: toml::de::Error| parse_error(e.to_string()))?;
    let mut effective = merged;
    let sections = [
        ("amqp", toml::Value::try_from(&raw.amqp)),
        ("redis", toml::Value::try_from(&raw.redis)),
        ("router", toml::Value::try_from(&raw.router)),
        ("sender", toml::Value::try_from(&raw.sender)),
        ("sim", toml::Value::try_from(&raw.sim)),
        ("log", toml::Value::try_from(&raw.log)),
        ("reload", toml::Value::try_from(&raw.reload)),
        ("feedback", toml::Value::try_from(&raw.feedback)),
        ("receipts", toml::Value::try_from(&raw.receipts)),
    ];
    for (name, value) in sections {
        let value = value.map_err(|e| parse_error(format!("{name}: {e}")))?;
        effective.insert(name.to_owned(), value);
    }
    redact_table(&mut effective);
    toml::to_string_pretty(&effective).map_err(|e| parse_error(e.to_string()))
}

fn redact_table(table: &mut toml::Table) {
    for (key, value) in table.iter_mut() {
        redact_value(key, value);
    }
}

fn redact_value(key: &str, value: &mut toml::Value) {
    match value {
        toml::Value::String(text) => {
            if secret_like_key(key) {
                *text = REDACTED.to_owned();
            } else if let Some(redacted) = redact_url_password(text) {
                *text = redacted;
            } else if let Some((base, _)) = text.split_once("?token=") {
                // A receipt URL proves a receipt by its `token` query parameter.
                *text = format!("{base}?token={REDACTED}");
            }
        }
        toml::Value::Table(table) => redact_table(table),
        toml::Value::Array(items) => {
            for item in items {
                redact_value(key, item);
            }
        }
        _ => {}
    }
}

/// A plain string under a name like these is a secret written where a reference belongs.
fn secret_like_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("secret")
        || key.contains("password")
        || key == "private_key"
        || key == "callback_key"
        || key == "token"
        || key.ends_with("_token")
}

/// `amqp://user:pass@host/` → `amqp://user:***@host/`; `None` when there is no password.
fn redact_url_password(text: &str) -> Option<String> {
    let scheme_end = text.find("://")? + 3;
    let rest = &text[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..authority_end].rfind('@')?;
    let colon = rest[..at].find(':')?;
    Some(format!(
        "{}{}:{REDACTED}{}",
        &text[..scheme_end],
        &rest[..colon],
        &rest[at..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_redacted_and_the_rest_kept() {
        assert_eq!(
            redact_url_password("amqps://svc:s3cr3t@mq.internal:5671/%2f").as_deref(),
            Some("amqps://svc:***@mq.internal:5671/%2f")
        );
        assert_eq!(
            redact_url_password("redis://:pw@redis:6379").as_deref(),
            Some("redis://:***@redis:6379")
        );
        assert_eq!(redact_url_password("redis://redis:6379"), None);
        assert_eq!(redact_url_password("http://h/p?a=b@c"), None);
    }

    #[test]
    fn receipt_url_tokens_and_sim_callback_keys_are_redacted() {
        let mut table: toml::Table = toml::from_str(
            "receipt_url = \"https://r.example/receipts/xiaomi/4?token=abc\"\ncallback_key = \"k\"\n",
        )
        .unwrap();
        redact_table(&mut table);
        assert_eq!(
            table["receipt_url"].as_str(),
            Some("https://r.example/receipts/xiaomi/4?token=***")
        );
        assert_eq!(table["callback_key"].as_str(), Some(REDACTED));
    }

    #[test]
    fn only_secret_names_are_redacted_by_name() {
        for key in [
            "app_secret",
            "p12_password",
            "private_key",
            "api_token",
            "token",
        ] {
            assert!(secret_like_key(key), "{key}");
        }
        for key in ["token_uri", "app_key", "key_id", "url", "auth_url"] {
            assert!(!secret_like_key(key), "{key}");
        }
    }

    #[test]
    fn show_includes_defaults_env_overrides_and_hides_secrets() {
        let text = "[amqp]\nprefix = \"x\"\n[[credentials]]\nbusiness_id = 2\nvendor = \"fcm\"\n\
                    project_id = \"p\"\n";
        let env = [(
            "IMPUSH__REDIS__URL".to_owned(),
            "redis://:hunter2@cache:6379".to_owned(),
        )];
        // A secret written in plain under a key of its own is refused, and not echoed.
        let err = effective_toml(
            &format!("{text}api_token = \"plain-oops\"\n"),
            "t",
            env.clone(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("api_token") && !err.contains("plain-oops"),
            "{err}"
        );
        let shown = effective_toml(text, "t", env).unwrap();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("prefix = \"x\""), "{shown}");
        assert!(
            shown.contains("max_attempts = 6"),
            "defaults shown: {shown}"
        );
        assert!(shown.contains("redis://:***@cache:6379"), "{shown}");
    }
}
