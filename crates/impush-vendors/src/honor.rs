//! Honor Push client (server API v1, "downlink message"): OAuth 2.0 client-credentials
//! access tokens, batch sends of up to 1000 tokens with per-token results, and the
//! classification of Honor's answers.
//!
//! Sources: Honor's reference https://developer.honor.com/cn/docs/11002/reference/downlink-message
//! and its guide as Honor republished it, https://my.oschina.net/u/5873522/blog/10140231
//! (token request, send URL, `timestamp` header, message examples).
//!
//! - **Endpoint**: `base_url` + the request's `/api/v1/<app_id>/sendMessage` (empty
//!   `base_url`: `https://push-api.cloud.honor.com`), the JSON body `impush-core` built,
//!   `Authorization: Bearer <access token>` and `timestamp: <ms since the epoch>` added here.
//! - **Access tokens**: form `grant_type=client_credentials&client_id=<honor.app_key>&
//!   client_secret=<honor.app_secret>` (the app's OAuth client in Honor's console) POSTed
//!   to `honor.auth_url` (default
//!   `https://iam.developer.honor.com/auth/token`, the short form of the guide's
//!   `/auth/realms/developer/protocol/openid-connect/token`, a Keycloak realm). The reply
//!   `{"access_token","expires_in","token_type":"Bearer"}` is kept in the shared token
//!   cache (`crate::auth`, single-flight refresh) per (client id, auth URL) until 5 minutes
//!   before it expires (half its life when shorter), shared by every credential of that
//!   client. A refusal is `{"error","error_description"}`: 4xx is
//!   `Rejected` (a wrong client secret), 429 and 5xx `Retry`.
//! - **Auth refused on send** (HTTP 401, or code `80200001`/`80200003`): the token is
//!   dropped, a new one fetched and the request sent once more; a second refusal is
//!   `Rejected`.
//! - **Answers** `{"code","message","data":{"sendResult","requestId","failTokens",
//!   "expireTokens"}}`, classified on `code` (a number or a string, never the message):
//!
//! | code | outcome |
//! |---|---|
//! | `200`, `80000000` | tokens in `data.expireTokens` `InvalidToken` (the device unregistered), tokens in `data.failTokens` `Retry`, every other token `Delivered` |
//! | `80300007` all tokens invalid | every token `InvalidToken` |
//! | `80200001`, `80200003` | refresh the access token, send once more |
//! | `80600003`, `81000001` | `Retry` |
//! | `80100001`, `80100003`, `80100004`, `80100016`, `80300002`, `80300008`, `80300010` | `Rejected` |
//! | any other code | by HTTP status: 401 refresh; 429, 5xx `Retry` (honouring `Retry-After`); else `Rejected` |
//!
//! [unverified]: the answer's `data` lists and the error codes are not in the pages above
//! (Honor publishes them on its response-code page, which could not be read); the codes
//! are the ones Honor's API inherited from Huawei Push Kit v1, whose meanings are kept.
//! A token in `failTokens` failed for a reason Honor does not give per token, so it is
//! retried (and dead-lettered after the last attempt), never pruned.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use impush_config::Config;
use impush_core::{CredentialProfile, PushTarget, Vendor, VendorRequest};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::{self, Attempt, AuthFailure, AuthToken, FetchToken, TokenCache};
use crate::http;
use crate::{ClientError, Outcome, SendResult};

pub(crate) const DEFAULT_BASE_URL: &str = "https://push-api.cloud.honor.com";
pub(crate) const DEFAULT_AUTH_URL: &str = "https://iam.developer.honor.com/auth/token";
/// Tokens per second per sender process by default: no public figure, conservative.
pub(crate) const DEFAULT_RATE_PER_S: Option<u32> = Some(500);
/// An access token is replaced this long before it expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// One Honor credential's client.
pub(crate) struct Client {
    business_id: u64,
    base_url: String,
    http: reqwest::Client,
    auth: Arc<TokenCache<OAuthClient>>,
}

/// Clients for every Honor credential of the config.
pub(crate) fn clients(config: &Config) -> Result<HashMap<u64, Client>, ClientError> {
    let mut sources = HashMap::new();
    crate::build_clients(config, Vendor::Honor, |profile| {
        client(config, profile, &mut sources)
    })
}

fn client(
    config: &Config,
    profile: &CredentialProfile,
    sources: &mut HashMap<(String, String), Arc<TokenCache<OAuthClient>>>,
) -> Result<Client, ClientError> {
    let business_id = profile.business_id;
    let fail = |field, message: String| ClientError::Credential {
        business_id,
        field,
        message,
    };
    let (settings, base_url) = http::settings_and_base_url(config, business_id, DEFAULT_BASE_URL)?;
    if profile.app_id.trim().is_empty() {
        return Err(fail(
            "app_id",
            "missing: Honor's APP ID is in the send URL".into(),
        ));
    }
    let secrets = settings.honor.as_ref().ok_or_else(|| {
        fail(
            "honor",
            "missing: an Honor credential needs [credentials.honor] with `app_key` (the OAuth \
             client ID) and `app_secret` (its secret)"
                .into(),
        )
    })?;
    let client_id = secrets.app_key.trim();
    if client_id.is_empty() {
        return Err(fail("honor.app_key", "missing: the OAuth client ID".into()));
    }
    let reference = secrets
        .app_secret
        .as_ref()
        .ok_or_else(|| fail("honor.app_secret", "missing".into()))?;
    let client_secret = config
        .secret(reference)
        .map_err(|e| fail("honor.app_secret", e.to_string()))?
        .expose()
        .trim()
        .to_owned();
    if client_secret.is_empty() {
        return Err(fail("honor.app_secret", "empty".into()));
    }
    let auth_url = secrets.auth_url.as_deref().unwrap_or(DEFAULT_AUTH_URL);
    let auth_url = http::base_url(business_id, auth_url).map_err(|_| {
        fail(
            "honor.auth_url",
            format!("{auth_url:?} is not an http:// or https:// URL"),
        )
    })?;
    let http = http::builder(crate::request_timeout(config))
        .build()
        .map_err(|e| fail("base_url", format!("cannot build the HTTP client: {e}")))?;
    let id = (client_id.to_owned(), auth_url.clone());
    let auth = Arc::clone(sources.entry(id).or_insert_with(|| {
        Arc::new(TokenCache::new(OAuthClient {
            client_id: client_id.to_owned(),
            client_secret,
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

/// An Honor answer for a whole request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    /// One outcome per token, in order.
    Done(Vec<Outcome>),
    /// The access token was refused: refresh it and send once more; the reason is what to
    /// report if that does not help.
    RefreshAuth(String),
}

impl Client {
    /// Sends one request for 1–1000 tokens.
    pub(crate) async fn send(&self, request: &VendorRequest, targets: &[PushTarget]) -> SendResult {
        let url = format!("{}{}", self.base_url, request.path);
        let body = request.body.to_bytes();
        let sent = auth::send_refreshing(&*self.auth, "honor", self.business_id, |token| {
            self.send_with(&url, request, body.clone(), targets, token)
        })
        .await;
        let (status, outcomes) =
            sent.unwrap_or_else(|failure| (failure.status, vec![failure.outcome; targets.len()]));
        for (target, outcome) in targets.iter().zip(&outcomes) {
            http::log_outcome("honor", self.business_id, &target.token, status, outcome);
        }
        SendResult { status, outcomes }
    }

    /// One request with `token` as its bearer and the current time as `timestamp`.
    async fn send_with(
        &self,
        url: &str,
        request: &VendorRequest,
        body: Vec<u8>,
        targets: &[PushTarget],
        token: AuthToken,
    ) -> Attempt<(u16, Vec<Outcome>)> {
        let authorization = format!("Bearer {}", token.value);
        let mut headers = request.headers.clone();
        headers.push(("timestamp", http::unix_now_ms().to_string()));
        let exchange = match http::post(
            &self.http,
            url,
            "application/json; charset=UTF-8",
            &headers,
            Some(&authorization),
            body,
        )
        .await
        {
            Ok(exchange) => exchange,
            Err(reason) => {
                let outcome = Outcome::Retry {
                    after: None,
                    reason,
                };
                return Attempt::Done((0, vec![outcome; targets.len()]));
            }
        };
        let status = exchange.status;
        match classify(status, &exchange.body, exchange.retry_after, targets) {
            Answer::Done(outcomes) => Attempt::Done((status, outcomes)),
            Answer::RefreshAuth(reason) => {
                let outcome = Outcome::Rejected { reason };
                Attempt::TokenRefused((status, vec![outcome; targets.len()]))
            }
        }
    }
}

/// Honor's OAuth client-credentials grant for one client at one token endpoint.
pub(crate) struct OAuthClient {
    client_id: String,
    client_secret: String,
    auth_url: String,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl FetchToken for OAuthClient {
    /// The client-credentials grant at `auth_url`.
    async fn fetch(&self) -> Result<AuthToken, AuthFailure> {
        let form = [
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            ("client_id".to_owned(), self.client_id.clone()),
            ("client_secret".to_owned(), self.client_secret.clone()),
        ];
        let body = impush_core::payload::form_urlencode(&form);
        let exchange = http::post(
            &self.http,
            &self.auth_url,
            "application/x-www-form-urlencoded",
            &[],
            None,
            body.into_bytes(),
        )
        .await
        .map_err(|reason| AuthFailure::transport(&reason))?;
        let received = Instant::now();
        let status = exchange.status;
        if (200..300).contains(&status)
            && let Ok(response) = serde_json::from_slice::<TokenResponse>(&exchange.body)
        {
            tracing::debug!(client_id = %self.client_id, expires_in = ?response.expires_in, "honor: new access token");
            let lifetime = Duration::from_secs(response.expires_in.unwrap_or(3600));
            return Ok(AuthToken {
                value: response.access_token.into(),
                refresh_at: auth::refresh_at(received, lifetime, REFRESH_MARGIN),
            });
        }
        // OAuth errors: `{"error":"invalid_client","error_description":…}`.
        let error = serde_json::from_slice::<Value>(&exchange.body).unwrap_or_default();
        let reason = format!("auth: {status} {}", error["error"].as_str().unwrap_or(""))
            .trim_end()
            .to_owned();
        tracing::warn!(client_id = %self.client_id, %reason, "honor: no access token");
        Err(AuthFailure::by_status(status, exchange.retry_after, reason))
    }
}

/// The per-token results of a successful send.
#[derive(Deserialize, Default)]
struct SendData {
    #[serde(default, rename = "failTokens")]
    fail_tokens: Vec<String>,
    #[serde(default, rename = "expireTokens")]
    expire_tokens: Vec<String>,
}

/// An Honor answer for `targets`: the `code` decides (number or string), else the HTTP
/// status.
pub(crate) fn classify(
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
    targets: &[PushTarget],
) -> Answer {
    let answer = serde_json::from_slice::<Value>(body).unwrap_or_default();
    let code = match &answer["code"] {
        Value::String(code) => code.clone(),
        Value::Number(code) => code.to_string(),
        _ => String::new(),
    };
    let all = |outcome: Outcome| Answer::Done(vec![outcome; targets.len()]);
    let retry = |reason: &str| {
        all(Outcome::Retry {
            after: retry_after,
            reason: reason.to_owned(),
        })
    };
    let rejected = |reason: &str| {
        all(Outcome::Rejected {
            reason: reason.to_owned(),
        })
    };
    match code.as_str() {
        "200" | "80000000" if (200..300).contains(&status) => {
            let data: SendData = serde_json::from_value(answer["data"].clone()).unwrap_or_default();
            let expired: HashSet<&str> = data.expire_tokens.iter().map(String::as_str).collect();
            let failed: HashSet<&str> = data.fail_tokens.iter().map(String::as_str).collect();
            Answer::Done(
                targets
                    .iter()
                    .map(|t| {
                        if expired.contains(t.token.as_str()) {
                            Outcome::InvalidToken {
                                reason: "expireTokens".into(),
                            }
                        } else if failed.contains(t.token.as_str()) {
                            Outcome::Retry {
                                after: retry_after,
                                reason: "failTokens".into(),
                            }
                        } else {
                            Outcome::Delivered
                        }
                    })
                    .collect(),
            )
        }
        "80300007" => all(Outcome::InvalidToken {
            reason: "80300007".into(),
        }),
        "80200001" | "80200003" => Answer::RefreshAuth(code),
        "80600003" | "81000001" => retry(&code),
        "80100001" | "80100003" | "80100004" | "80100016" | "80300002" | "80300008"
        | "80300010" => rejected(&code),
        _ => {
            let reason = if code.is_empty() {
                status.to_string()
            } else {
                format!("{status} {code}")
            };
            match status {
                401 => Answer::RefreshAuth(reason),
                429 | 500..=599 => retry(&reason),
                _ => rejected(&reason),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::*;

    fn targets(tokens: &[&str]) -> Vec<PushTarget> {
        tokens
            .iter()
            .map(|t| PushTarget {
                user_id: "u".into(),
                device_id: "d".into(),
                token: (*t).into(),
                badge: None,
            })
            .collect()
    }

    fn answer(status: u16, code: Value) -> Answer {
        let body = json!({"code": code, "message": "whatever"}).to_string();
        classify(status, body.as_bytes(), None, &targets(&["a", "b"]))
    }

    fn both(outcome: Outcome) -> Answer {
        Answer::Done(vec![outcome.clone(), outcome])
    }

    #[test]
    fn honor_200_delivers_every_token_not_listed() {
        assert_eq!(answer(200, json!(200)), both(Outcome::Delivered));
        assert_eq!(answer(200, json!("80000000")), both(Outcome::Delivered));
    }

    #[test]
    fn honor_expire_tokens_are_invalid_and_fail_tokens_are_retried() {
        let body = json!({
            "code": 200,
            "message": "success",
            "data": {"sendResult": true, "requestId": "1", "expireTokens": ["b"], "failTokens": ["c"]}
        })
        .to_string();
        let after = Some(Duration::from_secs(3));
        let answer = classify(200, body.as_bytes(), after, &targets(&["a", "b", "c"]));
        assert_eq!(
            answer,
            Answer::Done(vec![
                Outcome::Delivered,
                Outcome::InvalidToken {
                    reason: "expireTokens".into()
                },
                Outcome::Retry {
                    after,
                    reason: "failTokens".into()
                },
            ])
        );
    }

    #[test]
    fn honor_80300007_makes_every_token_invalid() {
        assert_eq!(
            answer(200, json!(80300007)),
            both(Outcome::InvalidToken {
                reason: "80300007".into()
            })
        );
    }

    #[test]
    fn honor_auth_errors_refresh_the_access_token() {
        for code in ["80200001", "80200003"] {
            assert_eq!(answer(401, json!(code)), Answer::RefreshAuth(code.into()));
        }
        assert_eq!(
            classify(401, b"", None, &targets(&["a"])),
            Answer::RefreshAuth("401".into())
        );
    }

    #[test]
    fn honor_flow_control_and_server_errors_are_retried_after_retry_after() {
        let after = Some(Duration::from_secs(7));
        for status in [429, 503] {
            assert_eq!(
                classify(status, b"<html>", after, &targets(&["a"])),
                Answer::Done(vec![Outcome::Retry {
                    after,
                    reason: status.to_string()
                }])
            );
        }
        for code in ["80600003", "81000001"] {
            assert_eq!(
                answer(500, json!(code)),
                both(Outcome::Retry {
                    after: None,
                    reason: code.into()
                })
            );
        }
    }

    #[test]
    fn honor_request_errors_are_rejected() {
        for code in [
            "80100001", "80100003", "80100004", "80100016", "80300002", "80300008", "80300010",
        ] {
            assert_eq!(
                answer(400, json!(code)),
                both(Outcome::Rejected {
                    reason: code.into()
                }),
                "{code}"
            );
        }
        assert_eq!(
            answer(400, json!(89999999)),
            both(Outcome::Rejected {
                reason: "400 89999999".into()
            })
        );
    }

    #[test]
    fn honor_code_200_on_an_http_error_is_judged_by_the_status() {
        assert_eq!(
            answer(502, json!(200)),
            both(Outcome::Retry {
                after: None,
                reason: "502 200".into()
            })
        );
    }

    #[test]
    fn credentials_of_one_client_share_one_token_source() {
        let mut text = String::new();
        for id in [91, 92] {
            text.push_str(&format!(
                "[[credentials]]\nbusiness_id = {id}\nvendor = \"honor\"\napp_id = \"10{id}\"\n\
                 [credentials.honor]\napp_key = \"c1\"\n\
                 app_secret = {{ file = \"keys/honor-test-client-secret.txt\" }}\n"
            ));
        }
        let clients = clients(&config_in(&local_dir(), &text)).unwrap();
        assert!(Arc::ptr_eq(&clients[&91].auth, &clients[&92].auth));
        assert_eq!(clients[&91].base_url, DEFAULT_BASE_URL);
        assert_eq!(clients[&91].auth.fetcher.auth_url, DEFAULT_AUTH_URL);
    }

    #[test]
    fn config_errors_name_the_business_id_and_field() {
        let dir = temp_dir("honor-config");
        std::fs::write(dir.join("empty.txt"), "\n").unwrap();
        std::fs::write(dir.join("secret.txt"), "s3cret\n").unwrap();
        let cases = [
            ("", "honor"),
            (
                "[credentials.honor]\napp_secret = { file = \"secret.txt\" }\n",
                "honor.app_key",
            ),
            ("[credentials.honor]\napp_key = \"c\"\n", "honor.app_secret"),
            (
                "[credentials.honor]\napp_key = \"c\"\napp_secret = { file = \"missing.txt\" }\n",
                "honor.app_secret",
            ),
            (
                "[credentials.honor]\napp_key = \"c\"\napp_secret = { file = \"empty.txt\" }\n",
                "honor.app_secret",
            ),
            (
                "[credentials.honor]\napp_key = \"c\"\napp_secret = { file = \"secret.txt\" }\nauth_url = \"iam/token\"\n",
                "honor.auth_url",
            ),
        ];
        for (rest, field) in cases {
            let text = format!(
                "[[credentials]]\nbusiness_id = 9\nvendor = \"honor\"\napp_id = \"1\"\n{rest}"
            );
            let err = match clients(&config_in(&dir, &text)) {
                Ok(_) => panic!("accepted: {rest}"),
                Err(e) => e.to_string(),
            };
            assert!(err.contains("credential 9"), "{err}");
            assert!(err.contains(&format!("`{field}`")), "{field}: {err}");
            assert!(!err.contains("s3cret"), "no secret in errors: {err}");
        }
    }
}
