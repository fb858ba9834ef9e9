//! vivo Push client: `/message/send` (<https://dev.vivo.com.cn/documentCenter/doc/362>), a
//! cached `authToken`, and the
//! classification of vivo's result codes.
//!
//! - **Endpoint**: `base_url` (empty: `https://api-push.vivo.com.cn`) + `/message/send`, the
//!   JSON `impush_core::payload::vivo` builds (one `regId`), with the header
//!   `authToken: <token>` added here.
//! - **Auth**: `POST /message/auth` (or `vivo.auth_url`), JSON `{appId, appKey, timestamp (ms),
//!   sign}` with `sign` = lowercase hex `md5(appId + appKey + timestamp + appSecret)` →
//!   `authToken`, valid 24 h (vivo server API v2.9.2, dev.vivo.com.cn/documentCenter/doc/362;
//!   curltech/go-push-sdk `push/vivo_channel/auth_token.go`). The auth call itself is limited
//!   to 10/s per app, so one [`AuthCache`] per (appId, auth URL) is shared by the credentials
//!   of that app and concurrent sends wait for one fetch. vivo advises refreshing every 1–2 h
//!   from a central cache; the token is replaced after 2 h here (well inside its 24 h), and
//!   at once on result 10000 (auth failure), then the message is sent once more.
//! - **Answers**: HTTP 200 with `{"result","desc"}`; see [`classify_code`]. Unknown results
//!   fall back to the HTTP status (5xx/429 retry, else rejected). Result 10070 (the app's
//!   total daily quota) is `Retry` until the next midnight in China, when vivo resets it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use impush_config::Config;
use impush_core::{CredentialProfile, PushTarget, Vendor, VendorRequest};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{self, Attempt, AuthFailure, AuthToken, FetchToken, TokenCache};
use crate::http::{self, Answer};
use crate::util::{md5_hex, until_china_midnight};
use crate::{ClientError, Outcome, SendResult};

pub(crate) const DEFAULT_BASE_URL: &str = "https://api-push.vivo.com.cn";
/// Tokens per second per sender process by default: No public figure for system messages: conservative.
pub(crate) const DEFAULT_RATE_PER_S: Option<u32> = Some(500);
pub(crate) const AUTH_PATH: &str = "/message/auth";
/// How long a token is used before a new one is fetched (vivo: "refresh every 1–2 h").
pub(crate) const TOKEN_REUSE: Duration = Duration::from_secs(2 * 3600);

/// One vivo credential's client.
pub(crate) struct Client {
    business_id: u64,
    base_url: String,
    http: reqwest::Client,
    auth: Arc<TokenCache<AuthCall>>,
}

/// Clients for every vivo credential of the config.
pub(crate) fn clients(config: &Config) -> Result<HashMap<u64, Client>, ClientError> {
    let mut caches = HashMap::new();
    crate::build_clients(config, Vendor::Vivo, |profile| {
        client(config, profile, &mut caches)
    })
}

fn client(
    config: &Config,
    profile: &CredentialProfile,
    caches: &mut HashMap<(String, String), Arc<TokenCache<AuthCall>>>,
) -> Result<Client, ClientError> {
    let business_id = profile.business_id;
    let fail = |field, message: String| ClientError::Credential {
        business_id,
        field,
        message,
    };
    let (settings, base_url) = http::settings_and_base_url(config, business_id, DEFAULT_BASE_URL)?;
    let secrets = settings.vivo.as_ref().ok_or_else(|| {
        fail(
            "vivo",
            "missing: a vivo credential needs [credentials.vivo] with `app_key` and `app_secret`"
                .into(),
        )
    })?;
    let app_id = profile.app_id.trim();
    if app_id.is_empty() {
        return Err(fail("app_id", "missing: vivo's AppID".into()));
    }
    let app_key = secrets.app_key.trim();
    if app_key.is_empty() {
        return Err(fail("vivo.app_key", "missing".into()));
    }
    let app_secret = secrets
        .app_secret
        .as_ref()
        .ok_or_else(|| fail("vivo.app_secret", "missing".into()))?;
    let app_secret = config
        .secret(app_secret)
        .map_err(|e| fail("vivo.app_secret", e.to_string()))?;
    let app_secret = app_secret.expose().trim();
    if app_secret.is_empty() {
        return Err(fail("vivo.app_secret", "empty".into()));
    }
    let auth_url = match &secrets.auth_url {
        Some(url) => http::base_url(business_id, url).map_err(|_| {
            fail(
                "vivo.auth_url",
                format!("{url:?} is not an http:// or https:// URL"),
            )
        })?,
        None => format!("{base_url}{AUTH_PATH}"),
    };
    let http = http::builder(crate::request_timeout(config))
        .build()
        .map_err(|e| fail("base_url", format!("cannot build the HTTP client: {e}")))?;
    let id = (app_id.to_owned(), auth_url.clone());
    let auth = Arc::clone(caches.entry(id).or_insert_with(|| {
        Arc::new(TokenCache::new(AuthCall {
            app_id: app_id.to_owned(),
            app_key: app_key.to_owned(),
            app_secret: app_secret.to_owned(),
            auth_url,
            http: http.clone(),
        }))
    }));
    Ok(Client {
        business_id,
        base_url,
        http,
        auth,
    })
}

impl Client {
    /// Sends one message (`/message/send` takes exactly one `regId`).
    pub(crate) async fn send(&self, request: &VendorRequest, targets: &[PushTarget]) -> SendResult {
        let [target] = targets else {
            return http::all(
                0,
                targets.len(),
                Outcome::Rejected {
                    reason: format!("vivo takes one target per request, got {}", targets.len()),
                },
            );
        };
        let url = format!("{}{}", self.base_url, request.path);
        let body = request.body.to_bytes();
        let sent = auth::send_refreshing(&*self.auth, "vivo", self.business_id, |token| {
            self.send_with(&url, request, body.clone(), token)
        })
        .await;
        let (status, outcome) = sent.unwrap_or_else(|failure| (failure.status, failure.outcome));
        http::log_outcome("vivo", self.business_id, &target.token, status, &outcome);
        SendResult {
            status,
            outcomes: vec![outcome],
        }
    }

    /// One request with `token` in the `authToken` header.
    async fn send_with(
        &self,
        url: &str,
        request: &VendorRequest,
        body: Vec<u8>,
        token: AuthToken,
    ) -> Attempt<(u16, Outcome)> {
        let mut headers = request.headers.clone();
        headers.push(("authToken", token.value.to_string()));
        match http::post(&self.http, url, "application/json", &headers, None, body).await {
            Ok(exchange) => classify(
                exchange.status,
                &exchange.body,
                exchange.retry_after,
                http::unix_now(),
            )
            .into_attempt(exchange.status),
            Err(reason) => Attempt::Done((
                0,
                Outcome::Retry {
                    after: None,
                    reason,
                },
            )),
        }
    }
}

/// vivo's auth call for one app at one auth endpoint.
pub(crate) struct AuthCall {
    app_id: String,
    app_key: String,
    app_secret: String,
    auth_url: String,
    http: reqwest::Client,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Reply {
    result: Option<i64>,
    auth_token: Option<String>,
}

impl AuthCall {
    /// The auth request body for `timestamp_ms`.
    pub(crate) fn auth_body(&self, timestamp_ms: u64) -> serde_json::Value {
        let sign = md5_hex(
            format!(
                "{}{}{timestamp_ms}{}",
                self.app_id, self.app_key, self.app_secret
            )
            .as_bytes(),
        );
        json!({
            "appId": self.app_id,
            "appKey": self.app_key,
            "timestamp": timestamp_ms,
            "sign": sign,
        })
    }
}

impl FetchToken for AuthCall {
    async fn fetch(&self) -> Result<AuthToken, AuthFailure> {
        let body = self.auth_body(http::unix_now_ms()).to_string().into_bytes();
        let exchange = http::post(
            &self.http,
            &self.auth_url,
            "application/json",
            &[],
            None,
            body,
        )
        .await
        .map_err(|reason| AuthFailure::transport(&reason))?;
        let received = Instant::now();
        let status = exchange.status;
        let reply = serde_json::from_slice::<Reply>(&exchange.body).unwrap_or_default();
        if let (Some(0), Some(token)) = (reply.result, reply.auth_token.filter(|t| !t.is_empty())) {
            tracing::debug!(app_id = %self.app_id, "vivo: new authToken");
            return Ok(AuthToken {
                value: token.into(),
                refresh_at: received + TOKEN_REUSE,
            });
        }
        let reason = match reply.result {
            Some(code) => format!("auth: {code}"),
            None => format!("auth: {status}"),
        };
        tracing::warn!(app_id = %self.app_id, %reason, "vivo: no authToken");
        // 10000 from the auth call is a wrong key or sign: asking again will not help.
        let Some(code) = reply.result else {
            return Err(AuthFailure::by_status(status, exchange.retry_after, reason));
        };
        let outcome = match classify_code(code, exchange.retry_after, http::unix_now()) {
            Some(Answer::Done(Outcome::Retry { .. })) => Outcome::Retry {
                after: exchange.retry_after,
                reason,
            },
            _ => Outcome::Rejected { reason },
        };
        Err(AuthFailure { status, outcome })
    }
}

/// One vivo result code (vivo server API v2.9.2); `None` for a code not in its table.
pub(crate) fn classify_code(
    code: i64,
    retry_after: Option<Duration>,
    now_unix_s: u64,
) -> Option<Answer> {
    let reason = code.to_string();
    Some(match code {
        0 => Answer::Done(Outcome::Delivered),
        // Auth failure: the authToken is invalid or expired [S].
        10000 => Answer::RefreshAuth(reason),
        // Sending too fast [S].
        10072 => Answer::Done(Outcome::Retry {
            after: retry_after,
            reason,
        }),
        // The app's total daily send quota [V]: vivo says not to call /send again today.
        10070 => Answer::Done(Outcome::Retry {
            after: Some(until_china_midnight(now_unix_s)),
            reason,
        }),
        // regId invalid [S].
        10302 => Answer::Done(Outcome::InvalidToken { reason }),
        // 10094 appId not the token's [V], 10252 batch body quota [V], 10254 broadcast
        // count [V] (neither used by /send, so a bug on our side if seen), 10055 parameter.
        10055 | 10094 | 10252 | 10254 => Answer::Done(Outcome::Rejected { reason }),
        _ => return None,
    })
}

/// A vivo answer to `/message/send`.
pub(crate) fn classify(
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
    now_unix_s: u64,
) -> Answer {
    let reply = serde_json::from_slice::<Reply>(body).unwrap_or_default();
    let retry_or_reject = |reason: String| {
        Answer::Done(match status {
            429 | 500..=599 => Outcome::Retry {
                after: retry_after,
                reason,
            },
            _ => Outcome::Rejected { reason },
        })
    };
    match reply.result {
        Some(code) => classify_code(code, retry_after, now_unix_s)
            .unwrap_or_else(|| retry_or_reject(code.to_string())),
        None => retry_or_reject(status.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    const NOW: u64 = 1_700_000_000;

    #[test]
    fn vivo_every_known_result_is_classified_by_the_rule() {
        let after = Some(Duration::from_secs(4));
        let retry = |after, reason: &str| {
            Answer::Done(Outcome::Retry {
                after,
                reason: reason.into(),
            })
        };
        let rejected = |reason: &str| {
            Answer::Done(Outcome::Rejected {
                reason: reason.into(),
            })
        };
        let cases = [
            (0, Answer::Done(Outcome::Delivered)),
            (10000, Answer::RefreshAuth("10000".into())),
            (10072, retry(after, "10072")),
            (10070, retry(Some(until_china_midnight(NOW)), "10070")),
            (
                10302,
                Answer::Done(Outcome::InvalidToken {
                    reason: "10302".into(),
                }),
            ),
            (10055, rejected("10055")),
            (10094, rejected("10094")),
            (10252, rejected("10252")),
            (10254, rejected("10254")),
        ];
        for (code, expected) in cases {
            let body = format!(r#"{{"result":{code},"desc":"whatever"}}"#);
            assert_eq!(
                classify(200, body.as_bytes(), after, NOW),
                expected,
                "{code}"
            );
        }
        assert_eq!(
            classify(200, br#"{"result":19999}"#, None, NOW),
            rejected("19999")
        );
        assert_eq!(classify(500, b"oops", None, NOW), retry(None, "500"));
    }

    #[test]
    fn vivo_sign_is_md5_of_app_id_key_timestamp_and_secret() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
        let call = AuthCall {
            app_id: "100".into(),
            app_key: "key".into(),
            app_secret: "secret".into(),
            auth_url: "http://x".into(),
            http: reqwest::Client::new(),
        };
        let body = call.auth_body(1_700_000_000_000);
        assert_eq!(body["sign"], md5_hex(b"100key1700000000000secret"));
        assert_eq!(body["appId"], "100");
        assert_eq!(body["timestamp"], 1_700_000_000_000u64);
    }

    #[test]
    fn vivo_config_errors_name_the_business_id_and_field() {
        let dir = temp_dir("vivo-config");
        std::fs::write(dir.join("secret.txt"), "s\n").unwrap();
        let cases = [
            ("app_id = \"1\"\n", "vivo"),
            (
                "app_id = \"1\"\n[credentials.vivo]\napp_secret = { file = \"secret.txt\" }\n",
                "vivo.app_key",
            ),
            (
                "app_id = \"1\"\n[credentials.vivo]\napp_key = \"k\"\n",
                "vivo.app_secret",
            ),
            (
                "app_id = \"1\"\n[credentials.vivo]\napp_key = \"k\"\napp_secret = { file = \"missing.txt\" }\n",
                "vivo.app_secret",
            ),
        ];
        for (rest, field) in cases {
            let text = format!(
                "[[credentials]]\nbusiness_id = 9\nvendor = \"vivo\"\npackage_name = \"com.x\"\n{rest}"
            );
            let err = match clients(&config_in(&dir, &text)) {
                Ok(_) => panic!("accepted: {rest}"),
                Err(e) => e.to_string(),
            };
            assert!(err.contains("credential 9"), "{err}");
            assert!(err.contains(&format!("`{field}`")), "{field}: {err}");
        }
    }
}
