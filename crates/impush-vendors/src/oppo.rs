//! OPPO PUSH (HeyTap) client: server API v1
//! (<https://open.oppomobile.com/new/developmentDoc/info?id=11234>), a cached `auth_token`, and the
//! classification of every OPPO return code, per registration id.
//!
//! - **Endpoints**: `base_url` (empty: `https://api.push.oppomobile.com`) + the request's
//!   path, `/server/v1/message/notification/unicast` (form `message`) or `/unicast_batch`
//!   (form `messages`, up to 1000), as `impush_core::payload::oppo` builds them. This client
//!   adds the form field `auth_token`, where OPPO's doc puts it (some SDKs, e.g.
//!   curltech/go-push-sdk, send it as an `auth_token` header instead; OPPO takes either).
//! - **Auth**: `POST /server/v1/auth` (or `oppo.auth_url`), form `app_key` (the credential's
//!   `app_id`), `timestamp` (ms) and `sign` = lowercase hex `sha256(app_key + timestamp +
//!   master_secret)` → `data.auth_token`, valid 24 h (OPPO doc "调用地址，公共参数和返回码",
//!   open.oppomobile.com/new/developmentDoc/info?id=11234; curltech/go-push-sdk
//!   `push/oppo_channel/auth_token.go`). One [`AuthCache`] per (app_key, auth URL), shared by
//!   the credentials using that app, replaces the token an hour before its 24 h are up.
//!   Code 11 (invalid AuthToken) or 29 (missing) on a send: the token is dropped (unless
//!   another request already replaced it), a new one fetched and the request sent once more.
//! - **Answers**: HTTP 200 with `{"code","message","data"}` whatever happened. A unicast's
//!   `code` is its target's outcome; a batch's non-zero `code` is every target's, else each
//!   target's item in `data[]` (matched by `registrationId`, else by position) decides:
//!   no `errorCode` is delivered, `errorCode` 10000 an invalid token. See [`classify_code`]
//!   for the table; unknown codes fall back to the HTTP status (5xx/429 retry, else rejected).
//! - **Daily quota (33)**: OPPO counts messages per calendar day in China (UTC+8), so it is
//!   `Retry` until the next midnight there (as third-party production clients handle it:
//!   "stop sending to OPPO for the rest of the day").

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use impush_config::Config;
use impush_core::{CredentialProfile, PushTarget, Vendor, VendorRequest};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::{self, Attempt, AuthFailure, AuthToken, FetchToken, TokenCache};
use crate::http::{self, Answer};
use crate::util::{sha256_hex, until_china_midnight};
use crate::{ClientError, Outcome, SendResult};

pub(crate) const DEFAULT_BASE_URL: &str = "https://api.push.oppomobile.com";
/// Tokens per second per sender process by default: The lowest tier of OPPO's QPS table (apps under 10 M users).
pub(crate) const DEFAULT_RATE_PER_S: Option<u32> = Some(5_000);
pub(crate) const AUTH_PATH: &str = "/server/v1/auth";
/// OPPO's auth_token lifetime.
pub(crate) const AUTH_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// A token is replaced this long before its lifetime is up.
pub(crate) const REFRESH_MARGIN: Duration = Duration::from_secs(3600);
const FORM: &str = "application/x-www-form-urlencoded";

/// One OPPO credential's client.
pub(crate) struct Client {
    business_id: u64,
    base_url: String,
    http: reqwest::Client,
    auth: Arc<TokenCache<AuthCall>>,
}

/// Clients for every OPPO credential of the config.
pub(crate) fn clients(config: &Config) -> Result<HashMap<u64, Client>, ClientError> {
    let mut caches = HashMap::new();
    crate::build_clients(config, Vendor::Oppo, |profile| {
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
    let secrets = settings.oppo.as_ref().ok_or_else(|| {
        fail(
            "oppo",
            "missing: an OPPO credential needs [credentials.oppo] with `master_secret`".into(),
        )
    })?;
    let app_key = profile.app_id.trim();
    if app_key.is_empty() {
        return Err(fail(
            "app_id",
            "missing: OPPO's AppKey goes in the credential's `app_id`".into(),
        ));
    }
    let master_secret = secrets
        .master_secret
        .as_ref()
        .ok_or_else(|| fail("oppo.master_secret", "missing".into()))?;
    let master_secret = config
        .secret(master_secret)
        .map_err(|e| fail("oppo.master_secret", e.to_string()))?;
    let master_secret = master_secret.expose().trim();
    if master_secret.is_empty() {
        return Err(fail("oppo.master_secret", "empty".into()));
    }
    let auth_url = match &secrets.auth_url {
        Some(url) => http::base_url(business_id, url).map_err(|_| {
            fail(
                "oppo.auth_url",
                format!("{url:?} is not an http:// or https:// URL"),
            )
        })?,
        None => format!("{base_url}{AUTH_PATH}"),
    };
    let http = http::builder(crate::request_timeout(config))
        .build()
        .map_err(|e| fail("base_url", format!("cannot build the HTTP client: {e}")))?;
    let id = (app_key.to_owned(), auth_url.clone());
    let auth = Arc::clone(caches.entry(id).or_insert_with(|| {
        Arc::new(TokenCache::new(AuthCall {
            app_key: app_key.to_owned(),
            master_secret: master_secret.to_owned(),
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
    /// Sends one unicast or unicast_batch: one outcome per target, in order.
    pub(crate) async fn send(&self, request: &VendorRequest, targets: &[PushTarget]) -> SendResult {
        if targets.is_empty() {
            return http::all(0, 0, Outcome::Delivered);
        }
        let impush_core::Body::Form(fields) = &request.body else {
            let outcome = Outcome::Rejected {
                reason: "oppo takes a form body".into(),
            };
            return self.finish(targets, 0, vec![outcome; targets.len()]);
        };
        let url = format!("{}{}", self.base_url, request.path);
        let sent = auth::send_refreshing(&*self.auth, "oppo", self.business_id, |token| {
            self.send_with(&url, fields, &request.headers, targets, token)
        })
        .await;
        match sent {
            Ok((status, outcomes)) => self.finish(targets, status, outcomes),
            Err(failure) => {
                let outcomes = vec![failure.outcome; targets.len()];
                self.finish(targets, failure.status, outcomes)
            }
        }
    }

    /// One request with `token` in the form's `auth_token` field.
    async fn send_with(
        &self,
        url: &str,
        fields: &[(String, String)],
        headers: &[(&'static str, String)],
        targets: &[PushTarget],
        token: AuthToken,
    ) -> Attempt<(u16, Vec<Outcome>)> {
        let mut form = fields.to_vec();
        form.push(("auth_token".to_owned(), token.value.to_string()));
        let body = impush_core::payload::form_urlencode(&form).into_bytes();
        let exchange = match http::post(&self.http, url, FORM, headers, None, body).await {
            Ok(exchange) => exchange,
            Err(reason) => {
                let outcome = Outcome::Retry {
                    after: None,
                    reason,
                };
                return Attempt::Done((0, vec![outcome; targets.len()]));
            }
        };
        let answers = classify(
            exchange.status,
            &exchange.body,
            exchange.retry_after,
            targets,
            http::unix_now(),
        );
        let refused = answers.iter().any(|a| matches!(a, Answer::RefreshAuth(_)));
        let outcomes = answers.into_iter().map(Answer::into_outcome).collect();
        if refused {
            Attempt::TokenRefused((exchange.status, outcomes))
        } else {
            Attempt::Done((exchange.status, outcomes))
        }
    }

    fn finish(&self, targets: &[PushTarget], status: u16, outcomes: Vec<Outcome>) -> SendResult {
        for (target, outcome) in targets.iter().zip(&outcomes) {
            http::log_outcome("oppo", self.business_id, &target.token, status, outcome);
        }
        SendResult { status, outcomes }
    }
}

/// OPPO's auth call for one app at one auth endpoint.
pub(crate) struct AuthCall {
    app_key: String,
    master_secret: String,
    auth_url: String,
    http: reqwest::Client,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Reply {
    code: Option<i64>,
    data: Value,
}

impl AuthCall {
    /// The auth form for `timestamp_ms`.
    pub(crate) fn auth_form(&self, timestamp_ms: u64) -> Vec<(String, String)> {
        let timestamp = timestamp_ms.to_string();
        let sign =
            sha256_hex(format!("{}{timestamp}{}", self.app_key, self.master_secret).as_bytes());
        vec![
            ("app_key".to_owned(), self.app_key.clone()),
            ("timestamp".to_owned(), timestamp),
            ("sign".to_owned(), sign),
        ]
    }
}

impl FetchToken for AuthCall {
    async fn fetch(&self) -> Result<AuthToken, AuthFailure> {
        let body = impush_core::payload::form_urlencode(&self.auth_form(http::unix_now_ms()));
        let exchange = http::post(
            &self.http,
            &self.auth_url,
            FORM,
            &[],
            None,
            body.into_bytes(),
        )
        .await
        .map_err(|reason| AuthFailure::transport(&reason))?;
        let received = Instant::now();
        let status = exchange.status;
        let reply = serde_json::from_slice::<Reply>(&exchange.body).unwrap_or_default();
        let token = reply.data["auth_token"].as_str().filter(|t| !t.is_empty());
        if let (Some(0), Some(token)) = (reply.code, token) {
            tracing::debug!(app_key = %self.app_key, "oppo: new auth_token");
            return Ok(AuthToken {
                value: token.into(),
                refresh_at: auth::refresh_at(received, AUTH_TOKEN_LIFETIME, REFRESH_MARGIN),
            });
        }
        let reason = match reply.code {
            Some(code) => format!("auth: {code}"),
            None => format!("auth: {status}"),
        };
        tracing::warn!(app_key = %self.app_key, %reason, "oppo: no auth_token");
        // The auth call has the same codes as a send; an auth-refresh code here cannot be
        // fixed by asking again, so it is rejected like a bad signature.
        let Some(code) = reply.code else {
            return Err(AuthFailure::by_status(status, exchange.retry_after, reason));
        };
        let outcome = match classify_code(code, exchange.retry_after, http::unix_now()) {
            Some(Answer::Done(Outcome::Retry { after, .. })) => Outcome::Retry { after, reason },
            Some(Answer::Done(_) | Answer::RefreshAuth(_)) | None => Outcome::Rejected { reason },
        };
        Err(AuthFailure { status, outcome })
    }
}

/// One OPPO return code ("调用地址，公共参数和返回码"), whoever it is about; `None` for a code OPPO's
/// table does not have.
pub(crate) fn classify_code(
    code: i64,
    retry_after: Option<Duration>,
    now_unix_s: u64,
) -> Option<Answer> {
    let reason = code.to_string();
    let retry = |after| {
        Answer::Done(Outcome::Retry {
            after,
            reason: reason.clone(),
        })
    };
    let rejected = || {
        Answer::Done(Outcome::Rejected {
            reason: reason.clone(),
        })
    };
    Some(match code {
        0 => Answer::Done(Outcome::Delivered),
        // -2 flow control, -1 unavailable, 13 app call limit, 55 call frequency limit.
        -2 | -1 | 13 | 55 => retry(retry_after),
        // 11 invalid AuthToken (expired), 29 missing auth token.
        11 | 29 => Answer::RefreshAuth(reason.clone()),
        // The app's daily message quota: nothing goes through until the day ends in China.
        33 => retry(Some(until_china_midnight(now_unix_s))),
        10000 => Answer::Done(Outcome::InvalidToken {
            reason: reason.clone(),
        }),
        // 12 HTTP action, 14–19 app key/sign/timestamp, 20–25 method/version/encoding,
        // 26 IP blacklist, 27 access denied, 28 app disabled, 30 no API permission,
        // 31 data missing, 32 duplicate, 34 picture quota, 40/41 arguments, 51 picture,
        // 59 secondary action, 67 category/notify_level: none fixed by sending again.
        12 | 14..=28 | 30 | 31 | 32 | 34 | 40 | 41 | 51 | 59 | 67 => rejected(),
        // Other business errors (10001–20000) are about the message or target.
        10001..=20000 => rejected(),
        _ => return None,
    })
}

/// An OPPO answer for `targets`: one answer per target, in order.
pub(crate) fn classify(
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
    targets: &[PushTarget],
    now_unix_s: u64,
) -> Vec<Answer> {
    let same = |answer: Answer| vec![answer; targets.len()];
    let reply = serde_json::from_slice::<Reply>(body).unwrap_or_default();
    let Some(code) = reply.code else {
        return same(by_status(status, retry_after));
    };
    let answer = known_or_status(code, status, retry_after, now_unix_s);
    if code != 0 || targets.len() == 1 {
        return same(answer);
    }
    let Some(items) = reply.data.as_array() else {
        return same(Answer::Done(Outcome::Retry {
            after: retry_after,
            reason: "batch reply without data".into(),
        }));
    };
    let by_token: HashMap<&str, &Value> = items
        .iter()
        .filter_map(|item| Some((item["registrationId"].as_str()?, item)))
        .collect();
    targets
        .iter()
        .enumerate()
        .map(|(i, target)| {
            let item = by_token
                .get(target.token.as_str())
                .copied()
                .or_else(|| items.get(i));
            match item {
                Some(item) => match item["errorCode"].as_i64() {
                    None | Some(0) => Answer::Done(Outcome::Delivered),
                    Some(code) => known_or_status(code, status, retry_after, now_unix_s),
                },
                // Not in OPPO's answer: we cannot know it went out, so try again.
                None => Answer::Done(Outcome::Retry {
                    after: retry_after,
                    reason: "no result in batch reply".into(),
                }),
            }
        })
        .collect()
}

/// `code` classified, or by the HTTP status when OPPO's table does not know it.
fn known_or_status(
    code: i64,
    status: u16,
    retry_after: Option<Duration>,
    now_unix_s: u64,
) -> Answer {
    if let Some(answer) = classify_code(code, retry_after, now_unix_s) {
        return answer;
    }
    let reason = code.to_string();
    Answer::Done(match status {
        429 | 500..=599 => Outcome::Retry {
            after: retry_after,
            reason,
        },
        _ => Outcome::Rejected { reason },
    })
}

/// An answer without an OPPO code: a gateway's or a proxy's.
fn by_status(status: u16, retry_after: Option<Duration>) -> Answer {
    let reason = status.to_string();
    match status {
        429 | 500..=599 => Answer::Done(Outcome::Retry {
            after: retry_after,
            reason,
        }),
        _ => Answer::Done(Outcome::Rejected { reason }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    const NOW: u64 = 1_700_000_000;

    fn target(token: &str) -> PushTarget {
        PushTarget {
            user_id: "u".into(),
            device_id: "d".into(),
            token: token.into(),
            badge: None,
        }
    }

    fn done(outcome: Outcome) -> Answer {
        Answer::Done(outcome)
    }

    fn retry(after: Option<Duration>, reason: &str) -> Answer {
        done(Outcome::Retry {
            after,
            reason: reason.into(),
        })
    }

    fn rejected(reason: &str) -> Answer {
        done(Outcome::Rejected {
            reason: reason.into(),
        })
    }

    #[test]
    fn oppo_every_known_code_is_classified_by_the_rule() {
        let after = Some(Duration::from_secs(3));
        let quota = Some(until_china_midnight(NOW));
        let mut cases = vec![
            (0, done(Outcome::Delivered)),
            (-2, retry(after, "-2")),
            (-1, retry(after, "-1")),
            (13, retry(after, "13")),
            (55, retry(after, "55")),
            (11, Answer::RefreshAuth("11".into())),
            (29, Answer::RefreshAuth("29".into())),
            (33, retry(quota, "33")),
            (
                10000,
                done(Outcome::InvalidToken {
                    reason: "10000".into(),
                }),
            ),
            (10001, rejected("10001")),
        ];
        for code in [
            12, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28,
        ] {
            cases.push((code, rejected(&code.to_string())));
        }
        for code in [30, 31, 32, 34, 40, 41, 51, 59, 67] {
            cases.push((code, rejected(&code.to_string())));
        }
        for (code, expected) in cases {
            let body = format!(r#"{{"code":{code},"message":"whatever"}}"#);
            let answers = classify(200, body.as_bytes(), after, &[target("r1")], NOW);
            assert_eq!(answers, vec![expected], "code {code}");
        }
    }

    #[test]
    fn oppo_unknown_codes_and_bodies_fall_back_to_the_http_status() {
        let t = [target("r1")];
        assert_eq!(
            classify(200, br#"{"code":77}"#, None, &t, NOW),
            vec![rejected("77")]
        );
        assert_eq!(
            classify(503, br#"{"code":77}"#, None, &t, NOW),
            vec![retry(None, "77")]
        );
        assert_eq!(
            classify(502, b"<html>", None, &t, NOW),
            vec![retry(None, "502")]
        );
        assert_eq!(classify(404, b"", None, &t, NOW), vec![rejected("404")]);
    }

    #[test]
    fn oppo_daily_quota_is_retried_at_the_next_midnight_in_china() {
        // 2023-11-14T22:13:20Z is 06:13:20 on the 15th in China: 17h46m40s to midnight.
        assert_eq!(
            until_china_midnight(NOW),
            Duration::from_secs(17 * 3600 + 46 * 60 + 40)
        );
        // Exactly midnight in China (16:00 UTC): a whole day.
        assert_eq!(until_china_midnight(16 * 3600), Duration::from_secs(86_400));
    }

    #[test]
    fn oppo_batch_results_are_split_per_target() {
        let targets = [target("a"), target("invalid-b"), target("c"), target("d")];
        let body = br#"{"code":0,"message":"Success","data":[
            {"messageId":"m1","registrationId":"a"},
            {"registrationId":"invalid-b","errorCode":10000,"errorMessage":"Invalid Registration_id"},
            {"registrationId":"c","errorCode":-2,"errorMessage":"flow control"}
        ]}"#;
        assert_eq!(
            classify(200, body, None, &targets, NOW),
            vec![
                done(Outcome::Delivered),
                done(Outcome::InvalidToken {
                    reason: "10000".into()
                }),
                retry(None, "-2"),
                retry(None, "no result in batch reply"),
            ]
        );
        // A request-level code is every target's.
        let body = br#"{"code":11,"message":"Invalid AuthToken"}"#;
        assert_eq!(
            classify(200, body, None, &targets[..2], NOW),
            vec![Answer::RefreshAuth("11".into()); 2]
        );
    }

    #[test]
    fn oppo_sign_is_sha256_of_app_key_timestamp_and_master_secret() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let call = AuthCall {
            app_key: "key".into(),
            master_secret: "secret".into(),
            auth_url: "http://x".into(),
            http: reqwest::Client::new(),
        };
        let form = call.auth_form(1_700_000_000_000);
        assert_eq!(form[0], ("app_key".into(), "key".into()));
        assert_eq!(form[1], ("timestamp".into(), "1700000000000".into()));
        assert_eq!(form[2].1, sha256_hex(b"key1700000000000secret"));
    }

    #[test]
    fn oppo_config_errors_name_the_business_id_and_field() {
        let dir = temp_dir("oppo-config");
        std::fs::write(dir.join("empty.txt"), "\n").unwrap();
        let cases = [
            ("app_id = \"k\"\n", "oppo"),
            ("app_id = \"k\"\n[credentials.oppo]\n", "oppo.master_secret"),
            (
                "app_id = \"k\"\n[credentials.oppo]\nmaster_secret = { file = \"missing.txt\" }\n",
                "oppo.master_secret",
            ),
            (
                "app_id = \"k\"\n[credentials.oppo]\nmaster_secret = { file = \"empty.txt\" }\n",
                "oppo.master_secret",
            ),
            (
                "[credentials.oppo]\nmaster_secret = { file = \"empty.txt\" }\n",
                "app_id",
            ),
            (
                "app_id = \"k\"\nbase_url = \"ftp://x\"\n[credentials.oppo]\nmaster_secret = { file = \"empty.txt\" }\n",
                "base_url",
            ),
        ];
        for (rest, field) in cases {
            let text = format!(
                "[[credentials]]\nbusiness_id = 9\nvendor = \"oppo\"\npackage_name = \"com.x\"\n{rest}"
            );
            let err = match clients(&config_in(&dir, &text)) {
                Ok(_) => panic!("accepted: {rest}"),
                Err(e) => e.to_string(),
            };
            assert!(err.contains("credential 9"), "{err}");
            assert!(err.contains(&format!("`{field}`")), "{field}: {err}");
        }
    }

    #[test]
    fn oppo_local_credential_builds_and_shares_its_auth_cache() {
        let clients = clients(&local_config()).unwrap();
        assert_eq!(clients[&5].auth.fetcher.app_key, "impush-oppo-app-key-5");
        assert_eq!(
            clients[&5].auth.fetcher.auth_url,
            "http://127.0.0.1:8700/oppo/server/v1/auth"
        );
    }
}
