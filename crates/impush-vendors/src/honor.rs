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
use std::time::Duration;

use impush_config::Config;
use impush_core::{CredentialProfile, PushTarget, Vendor, VendorRequest};
use serde::Deserialize;

use crate::auth::TokenCache;
use crate::http;
use crate::oem::{self, Answer, BearerSend, OAuthClient, OAuthSettings, OAuthSources, Reply};
use crate::{ClientError, Outcome, SendResult};

pub(crate) const DEFAULT_BASE_URL: &str = "https://push-api.cloud.honor.com";
pub(crate) const DEFAULT_AUTH_URL: &str = "https://iam.developer.honor.com/auth/token";
/// Tokens per second per sender process by default: no public figure, conservative.
pub(crate) const DEFAULT_RATE_PER_S: Option<u32> = Some(500);

/// One Honor credential's client.
pub(crate) struct Client {
    business_id: u64,
    base_url: String,
    http: reqwest::Client,
    auth: Arc<TokenCache<OAuthClient>>,
}

/// Clients for every Honor credential of the config.
pub(crate) fn clients(config: &Config) -> Result<HashMap<u64, Client>, ClientError> {
    let mut sources = OAuthSources::new();
    crate::build_clients(config, Vendor::Honor, |profile| {
        client(config, profile, &mut sources)
    })
}

fn client(
    config: &Config,
    profile: &CredentialProfile,
    sources: &mut OAuthSources,
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
    let http = http::builder(crate::request_timeout(config))
        .build()
        .map_err(|e| fail("base_url", format!("cannot build the HTTP client: {e}")))?;
    let oauth = OAuthSettings {
        vendor: "honor",
        business_id,
        client_id,
        secrets,
        secret_field: "honor.app_secret",
        auth_url_field: "honor.auth_url",
        default_auth_url: DEFAULT_AUTH_URL,
    };
    let auth = oem::oauth_source(config, oauth, &http, sources)?;
    Ok(Client {
        business_id,
        base_url,
        http,
        auth,
    })
}

impl Client {
    /// Sends one request for 1–1000 tokens, each attempt stamped with the current time.
    pub(crate) async fn send(&self, request: &VendorRequest, targets: &[PushTarget]) -> SendResult {
        let send = BearerSend {
            vendor: "honor",
            business_id: self.business_id,
            http: &self.http,
            url: format!("{}{}", self.base_url, request.path),
            content_type: "application/json; charset=UTF-8",
            stamp: |headers| headers.push(("timestamp", http::unix_now_ms().to_string())),
            classify,
        };
        send.send(&*self.auth, request, targets).await
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
    let reply = Reply::read(status, body, retry_after, targets);
    match reply.code.as_str() {
        "200" | "80000000" if (200..300).contains(&status) => {
            let data: SendData =
                serde_json::from_value(reply.answer["data"].clone()).unwrap_or_default();
            let expired: HashSet<&str> = data.expire_tokens.iter().map(String::as_str).collect();
            let failed: HashSet<&str> = data.fail_tokens.iter().map(String::as_str).collect();
            reply.each(|token| {
                if expired.contains(token) {
                    Outcome::InvalidToken {
                        reason: "expireTokens".into(),
                    }
                } else if failed.contains(token) {
                    reply.retry_outcome("failTokens")
                } else {
                    Outcome::Delivered
                }
            })
        }
        "80300007" => reply.all_invalid(),
        "80200001" | "80200003" => reply.refresh_auth(),
        "80600003" | "81000001" => reply.retry(),
        "80100001" | "80100003" | "80100004" | "80100016" | "80300002" | "80300008"
        | "80300010" => reply.rejected(),
        _ => reply.by_status(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::testing::*;

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
