//! Huawei Push Kit client (HMS Core, Android, REST API v1; <https://developer.huawei.com/consumer/en/doc/HMSCore-References/https-send-api-0000001050986197>): OAuth 2.0
//! client-credentials access tokens, batch sends of up to 1000 tokens, and the
//! classification of every Push Kit code per token.
//!
//! - **Endpoint**: `base_url` + the request's `/v1/<app_id>/messages:send` (empty
//!   `base_url`: `https://push-api.cloud.huawei.com`), JSON body as `impush-core` built it,
//!   `Authorization: Bearer <access token>` added here.
//! - **Access tokens**: form `grant_type=client_credentials&client_id=<app_id>&
//!   client_secret=<huawei.app_secret>` POSTed to `huawei.auth_url` (default
//!   `https://oauth-login.cloud.huawei.com/oauth2/v3/token`; Huawei's Go demo still uses
//!   `login.cloud.huawei.com`, both serve it). The reply `{"access_token","expires_in":3600}`
//!   is cached per (app_id, auth_url) until 5 minutes before it expires (half its life when
//!   shorter), shared by the credentials of that app; token requests are themselves
//!   flow-controlled (1000 per 5 minutes, anchors.md), hence the cache.
//! - **`80200003` (token expired) and `80200001` (OAuth error)**: the token is dropped, a
//!   new one fetched and the request sent once more, as the demo client does
//!   (HMS-Core/hms-push-serverdemo-go `src/push/core/pushclient.go`); a second refusal is
//!   `Rejected` (a wrong app secret or app id).
//! - **Answers** `{"code","msg","requestId"}`, classified on `code` (never on `msg`):
//!
//! | code | outcome |
//! |---|---|
//! | `80000000` | every token `Delivered` |
//! | `80100000` partial success | tokens in `msg`'s `illegal_tokens` `InvalidToken`, the others `Delivered` |
//! | `80300007` all tokens invalid | every token `InvalidToken` |
//! | `80200001`, `80200003` | refresh the access token, send once more |
//! | `80600003` OAuth server error, `81000001` internal error | `Retry` |
//! | `80100001`, `80100003`, `80100004`, `80100013`, `80100016`, `80300002`, `80300008`, `80300010`, `80300011` | `Rejected` |
//! | any other code | by HTTP status: 401 refresh; 429, 5xx `Retry` (503 is Push Kit's flow control); else `Rejected` |
//!
//! `Retry` keeps the `Retry-After` of the answer when there is one. Push Kit has no daily
//! quota code for the IM (service and communication) category impush sends, so none is
//! classified here. Codes `80100001`, `80200001`, `80200003`, `80300007`, `80300010` are
//! verified in Huawei's docs and demo; the others are [M] (third-party clients); the
//! `illegal_tokens` shape of `80100000` is [M] (parsed the way third-party clients do).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use impush_config::Config;
use impush_core::{CredentialProfile, PushTarget, Vendor, VendorRequest};

use crate::auth::TokenCache;
use crate::http;
use crate::oem::{self, Answer, BearerSend, OAuthClient, OAuthSettings, OAuthSources, Reply};
use crate::{ClientError, Outcome, SendResult};

pub(crate) const DEFAULT_BASE_URL: &str = "https://push-api.cloud.huawei.com";
/// Tokens per second per sender process by default: Push Kit's flow control, 3,000 QPS per app.
pub(crate) const DEFAULT_RATE_PER_S: Option<u32> = Some(3_000);
pub(crate) const DEFAULT_AUTH_URL: &str = "https://oauth-login.cloud.huawei.com/oauth2/v3/token";

/// One Huawei credential's client.
pub(crate) struct Client {
    business_id: u64,
    base_url: String,
    http: reqwest::Client,
    auth: Arc<TokenCache<OAuthClient>>,
}

/// Clients for every Huawei credential of the config.
pub(crate) fn clients(config: &Config) -> Result<HashMap<u64, Client>, ClientError> {
    let mut sources = OAuthSources::new();
    crate::build_clients(config, Vendor::Huawei, |profile| {
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
    let app_id = profile.app_id.trim();
    if app_id.is_empty() {
        return Err(fail(
            "app_id",
            "missing: Huawei's AppId is the OAuth client_id".into(),
        ));
    }
    let secrets = settings.huawei.as_ref().ok_or_else(|| {
        fail(
            "huawei",
            "missing: a Huawei credential needs [credentials.huawei] with `app_secret`".into(),
        )
    })?;
    let http = http::builder(crate::request_timeout(config))
        .build()
        .map_err(|e| fail("base_url", format!("cannot build the HTTP client: {e}")))?;
    let oauth = OAuthSettings {
        vendor: "huawei",
        business_id,
        client_id: app_id,
        secrets,
        secret_field: "huawei.app_secret",
        auth_url_field: "huawei.auth_url",
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
    /// Sends one request for 1–1000 tokens.
    pub(crate) async fn send(&self, request: &VendorRequest, targets: &[PushTarget]) -> SendResult {
        let send = BearerSend {
            vendor: "huawei",
            business_id: self.business_id,
            http: &self.http,
            url: format!("{}{}", self.base_url, request.path),
            content_type: "application/json;charset=utf-8",
            stamp: oem::no_stamp,
            classify,
        };
        send.send(&*self.auth, request, targets).await
    }
}

/// A Push Kit answer for `targets`: the `code` decides (string or number), else the HTTP
/// status. Message texts are read only for `80100000`, whose `msg` carries the tokens.
pub(crate) fn classify(
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
    targets: &[PushTarget],
) -> Answer {
    let reply = Reply::read(status, body, retry_after, targets);
    match reply.code.as_str() {
        "80000000" => reply.all(Outcome::Delivered),
        "80100000" => reply.partial_success("huawei"),
        "80300007" => reply.all_invalid(),
        "80200001" | "80200003" => reply.refresh_auth(),
        "80600003" | "81000001" => reply.retry(),
        "80100001" | "80100003" | "80100004" | "80100013" | "80100016" | "80300002"
        | "80300008" | "80300010" | "80300011" => reply.rejected(),
        _ => reply.by_status(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::*;

    fn answer(status: u16, code: &str) -> Answer {
        let body = json!({"code": code, "msg": "whatever", "requestId": "1"}).to_string();
        classify(status, body.as_bytes(), None, &targets(&["a", "b"]))
    }

    fn both(outcome: Outcome) -> Answer {
        Answer::Done(vec![outcome.clone(), outcome])
    }

    #[test]
    fn huawei_80000000_delivers_every_token() {
        assert_eq!(answer(200, "80000000"), both(Outcome::Delivered));
    }

    #[test]
    fn huawei_80100000_splits_illegal_tokens_from_delivered_ones() {
        let msg = json!({"success": 2, "failure": 1, "illegal_tokens": ["b"]}).to_string();
        let body = json!({"code": "80100000", "msg": msg, "requestId": "1"}).to_string();
        let answer = classify(200, body.as_bytes(), None, &targets(&["a", "b", "c"]));
        let invalid = Outcome::InvalidToken {
            reason: "80100000 illegal_token".into(),
        };
        assert_eq!(
            answer,
            Answer::Done(vec![Outcome::Delivered, invalid, Outcome::Delivered])
        );
    }

    #[test]
    fn huawei_80300007_makes_every_token_invalid() {
        assert_eq!(
            answer(200, "80300007"),
            both(Outcome::InvalidToken {
                reason: "80300007".into()
            })
        );
    }

    #[test]
    fn huawei_oauth_errors_refresh_the_access_token() {
        for code in ["80200001", "80200003"] {
            assert_eq!(answer(401, code), Answer::RefreshAuth(code.into()));
        }
        assert_eq!(
            classify(401, b"", None, &targets(&["a"])),
            Answer::RefreshAuth("401".into())
        );
    }

    #[test]
    fn huawei_server_errors_are_retried_after_retry_after() {
        for code in ["80600003", "81000001"] {
            assert_eq!(
                answer(500, code),
                both(Outcome::Retry {
                    after: None,
                    reason: code.into()
                })
            );
        }
        let after = Some(Duration::from_secs(7));
        // 503 is Push Kit's flow control, its body not always Push Kit's JSON.
        assert_eq!(
            classify(503, b"<html>", after, &targets(&["a"])),
            Answer::Done(vec![Outcome::Retry {
                after,
                reason: "503".into()
            }])
        );
        assert_eq!(
            classify(429, b"", after, &targets(&["a"])),
            Answer::Done(vec![Outcome::Retry {
                after,
                reason: "429".into()
            }])
        );
    }

    #[test]
    fn huawei_request_errors_are_rejected() {
        for code in [
            "80100001", "80100003", "80100004", "80100013", "80100016", "80300002", "80300008",
            "80300010", "80300011",
        ] {
            assert_eq!(
                answer(400, code),
                both(Outcome::Rejected {
                    reason: code.into()
                }),
                "{code}"
            );
        }
    }

    #[test]
    fn huawei_unknown_codes_fall_back_to_the_http_status() {
        assert_eq!(
            answer(400, "89999999"),
            both(Outcome::Rejected {
                reason: "400 89999999".into()
            })
        );
        assert_eq!(
            answer(502, "89999999"),
            both(Outcome::Retry {
                after: None,
                reason: "502 89999999".into()
            })
        );
        // Numeric codes are read too.
        let body = br#"{"code":80000000,"msg":"Success"}"#;
        assert_eq!(
            classify(200, body, None, &targets(&["a"])),
            Answer::Done(vec![Outcome::Delivered])
        );
    }

    #[test]
    fn credentials_of_one_app_share_one_token_source() {
        let mut text = String::new();
        for id in [31, 32] {
            text.push_str(&format!(
                "[[credentials]]\nbusiness_id = {id}\nvendor = \"huawei\"\napp_id = \"1001\"\n\
                 [credentials.huawei]\napp_secret = {{ file = \"keys/huawei-test-app-secret.txt\" }}\n"
            ));
        }
        let clients = clients(&config_in(&local_dir(), &text)).unwrap();
        assert!(Arc::ptr_eq(&clients[&31].auth, &clients[&32].auth));
        assert_eq!(clients[&31].base_url, DEFAULT_BASE_URL);
        assert_eq!(clients[&31].auth.fetcher.auth_url, DEFAULT_AUTH_URL);
    }

    #[test]
    fn config_errors_name_the_business_id_and_field() {
        let dir = temp_dir("huawei-config");
        std::fs::write(dir.join("empty.txt"), "\n").unwrap();
        let cases = [
            ("app_id = \"1\"\n", "huawei"),
            (
                "app_id = \"1\"\n[credentials.huawei]\n",
                "huawei.app_secret",
            ),
            (
                "app_id = \"1\"\n[credentials.huawei]\napp_secret = { file = \"missing.txt\" }\n",
                "huawei.app_secret",
            ),
            (
                "app_id = \"1\"\n[credentials.huawei]\napp_secret = { file = \"empty.txt\" }\n",
                "huawei.app_secret",
            ),
        ];
        for (rest, field) in cases {
            let text = format!("[[credentials]]\nbusiness_id = 9\nvendor = \"huawei\"\n{rest}");
            let err = match clients(&config_in(&dir, &text)) {
                Ok(_) => panic!("accepted: {rest}"),
                Err(e) => e.to_string(),
            };
            assert!(err.contains("credential 9"), "{err}");
            assert!(err.contains(&format!("`{field}`")), "{field}: {err}");
        }
        std::fs::write(dir.join("secret.txt"), "s3cret\n").unwrap();
        let text = "[[credentials]]\nbusiness_id = 9\nvendor = \"huawei\"\napp_id = \"1\"\n\
                    [credentials.huawei]\napp_secret = { file = \"secret.txt\" }\nauth_url = \"login/token\"\n";
        let err = clients(&config_in(&dir, text)).err().unwrap().to_string();
        assert!(err.contains("`huawei.auth_url`"), "{err}");
        assert!(!err.contains("s3cret"), "no secret in errors: {err}");
    }
}
