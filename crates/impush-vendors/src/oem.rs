//! What Huawei Push Kit and its descendants share on the client side, written once: Huawei
//! Push Kit v1 (Android), Honor Push v1 (Honor's API grew out of Push Kit v1 when Honor left
//! Huawei in 2020) and Push Kit v3 for HarmonyOS NEXT.
//!
//! - **OAuth client credentials** ([`OAuthClient`], [`oauth_source`]): Huawei and Honor
//!   exchange a client id and secret for a bearer token at their token endpoint; the secret
//!   is read from `[credentials.<vendor>]` (`app_secret`, `auth_url`).
//! - **One bearer send** ([`BearerSend`]): POST the body with `Authorization: Bearer …`
//!   through the shared "refresh once, then resend" step, then classify the answer.
//! - **Push Kit answers** ([`Reply`]): `{"code", "msg"|"message", …}` with the code as a
//!   string or a number, decided on the code (never on the text), else on the HTTP status;
//!   the `80100000` partial success that lists the illegal tokens in `msg`.
//!
//! What stays per vendor: the send URL and headers, how the token or JWT is had, and the
//! table that says what each code means to that vendor.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use impush_config::{Config, OemSecrets};
use impush_core::{PushTarget, VendorRequest};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::{self, Attempt, AuthFailure, AuthSource, AuthToken, FetchToken, TokenCache};
use crate::http;
use crate::{ClientError, Outcome, SendResult};

/// An access token is replaced this long before it expires.
pub(crate) const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// A Push Kit answer for a whole request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    /// One outcome per token, in order.
    Done(Vec<Outcome>),
    /// The access token (or JWT) was refused: get a fresh one and send once more; the reason
    /// is what to report if that does not help.
    RefreshAuth(String),
}

/// How a vendor classifies one answer: HTTP status, body, `Retry-After`, the targets.
pub(crate) type Classify = fn(u16, &[u8], Option<Duration>, &[PushTarget]) -> Answer;

/// A bearer credential's text, for `Authorization: Bearer …`.
pub(crate) trait Bearer {
    fn bearer(&self) -> &str;
}

impl Bearer for AuthToken {
    fn bearer(&self) -> &str {
        &self.value
    }
}

/// One request of a Push Kit family vendor: where it goes and how its answer is read.
pub(crate) struct BearerSend<'a> {
    pub vendor: &'static str,
    pub business_id: u64,
    pub http: &'a reqwest::Client,
    pub url: String,
    pub content_type: &'static str,
    /// Adds what each attempt carries besides the request's headers (Honor's `timestamp`).
    pub stamp: fn(&mut Vec<(&'static str, String)>),
    pub classify: Classify,
}

/// No header beyond the request's own.
pub(crate) fn no_stamp(_: &mut Vec<(&'static str, String)>) {}

impl BearerSend<'_> {
    /// Sends `request` for 1–1000 `targets` with `auth`'s bearer, once more with a fresh
    /// one when the vendor refuses it, and logs each token's outcome.
    pub(crate) async fn send<S>(
        &self,
        auth: &S,
        request: &VendorRequest,
        targets: &[PushTarget],
    ) -> SendResult
    where
        S: AuthSource,
        S::Token: Bearer,
    {
        let body = request.body.to_bytes();
        let sent = auth::send_refreshing(auth, self.vendor, self.business_id, |token| {
            self.attempt(request, body.clone(), targets, token)
        })
        .await;
        let (status, outcomes) =
            sent.unwrap_or_else(|failure| (failure.status, vec![failure.outcome; targets.len()]));
        for (target, outcome) in targets.iter().zip(&outcomes) {
            http::log_outcome(
                self.vendor,
                self.business_id,
                &target.token,
                status,
                outcome,
            );
        }
        SendResult { status, outcomes }
    }

    /// One request with `token` as its bearer.
    async fn attempt<T: Bearer>(
        &self,
        request: &VendorRequest,
        body: Vec<u8>,
        targets: &[PushTarget],
        token: T,
    ) -> Attempt<(u16, Vec<Outcome>)> {
        let authorization = format!("Bearer {}", token.bearer());
        let mut headers = request.headers.clone();
        (self.stamp)(&mut headers);
        let exchange = match http::post(
            self.http,
            &self.url,
            self.content_type,
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
        match (self.classify)(status, &exchange.body, exchange.retry_after, targets) {
            Answer::Done(outcomes) => Attempt::Done((status, outcomes)),
            Answer::RefreshAuth(reason) => {
                let outcome = Outcome::Rejected { reason };
                Attempt::TokenRefused((status, vec![outcome; targets.len()]))
            }
        }
    }
}

/// An OAuth 2.0 client-credentials grant for one client at one token endpoint.
pub(crate) struct OAuthClient {
    vendor: &'static str,
    client_id: String,
    client_secret: String,
    pub(crate) auth_url: String,
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
            tracing::debug!(vendor = self.vendor, client_id = %self.client_id, expires_in = ?response.expires_in, "new access token");
            let lifetime = Duration::from_secs(response.expires_in.unwrap_or(3600));
            return Ok(AuthToken {
                value: response.access_token.into(),
                refresh_at: auth::refresh_at(received, lifetime, REFRESH_MARGIN),
            });
        }
        // Huawei: `{"error":1101,"sub_error":20186,"error_description"}`; Honor (Keycloak):
        // `{"error":"invalid_client","error_description"}`.
        let error = serde_json::from_slice::<Value>(&exchange.body).unwrap_or_default();
        let reason = format!(
            "auth: {status} {} {}",
            code_text(&error["error"]),
            code_text(&error["sub_error"])
        )
        .trim_end()
        .to_owned();
        tracing::warn!(vendor = self.vendor, client_id = %self.client_id, %reason, "no access token");
        Err(AuthFailure::by_status(status, exchange.retry_after, reason))
    }
}

/// The token sources of one vendor's credentials, by (client id, token URL).
pub(crate) type OAuthSources = HashMap<(String, String), Arc<TokenCache<OAuthClient>>>;

/// Where one credential's OAuth client is configured.
pub(crate) struct OAuthSettings<'a> {
    pub vendor: &'static str,
    pub business_id: u64,
    pub client_id: &'a str,
    pub secrets: &'a OemSecrets,
    /// The config fields errors name: `<vendor>.app_secret`, `<vendor>.auth_url`.
    pub secret_field: &'static str,
    pub auth_url_field: &'static str,
    pub default_auth_url: &'static str,
}

/// The token source of `settings`' client, shared with every credential of the same client
/// at the same token URL, so they fetch one token between them (vendors limit token
/// requests: Huawei 1000 per 5 minutes).
pub(crate) fn oauth_source(
    config: &Config,
    settings: OAuthSettings<'_>,
    http: &reqwest::Client,
    sources: &mut OAuthSources,
) -> Result<Arc<TokenCache<OAuthClient>>, ClientError> {
    let fail = |field, message: String| ClientError::Credential {
        business_id: settings.business_id,
        field,
        message,
    };
    let reference = settings
        .secrets
        .app_secret
        .as_ref()
        .ok_or_else(|| fail(settings.secret_field, "missing".into()))?;
    let client_secret = config
        .secret(reference)
        .map_err(|e| fail(settings.secret_field, e.to_string()))?
        .expose()
        .trim()
        .to_owned();
    if client_secret.is_empty() {
        return Err(fail(settings.secret_field, "empty".into()));
    }
    let auth_url = (settings.secrets.auth_url.as_deref()).unwrap_or(settings.default_auth_url);
    let auth_url = http::base_url(settings.business_id, auth_url).map_err(|_| {
        fail(
            settings.auth_url_field,
            format!("{auth_url:?} is not an http:// or https:// URL"),
        )
    })?;
    let id = (settings.client_id.to_owned(), auth_url.clone());
    Ok(Arc::clone(sources.entry(id).or_insert_with(|| {
        Arc::new(TokenCache::new(OAuthClient {
            vendor: settings.vendor,
            client_id: settings.client_id.to_owned(),
            client_secret,
            auth_url,
            http: http.clone(),
        }))
    })))
}

/// A code as text, whether the vendor sent it as a string or a number.
fn code_text(value: &Value) -> String {
    match value {
        Value::String(code) => code.clone(),
        Value::Number(code) => code.to_string(),
        _ => String::new(),
    }
}

/// The `80100000` partial-success details, a JSON string in `msg` (Push Kit v1 writes
/// `illegal_tokens`; v3 is read with `illegalTokens` too).
#[derive(Deserialize, Default)]
struct PartialSuccess {
    #[serde(default, alias = "illegalTokens")]
    illegal_tokens: Vec<String>,
}

/// One Push Kit answer, read for classification.
pub(crate) struct Reply<'a> {
    /// The body as JSON (`Null` when it is not JSON).
    pub answer: Value,
    /// `code`, as text; empty when there is none.
    pub code: String,
    pub status: u16,
    retry_after: Option<Duration>,
    targets: &'a [PushTarget],
}

impl<'a> Reply<'a> {
    pub(crate) fn read(
        status: u16,
        body: &[u8],
        retry_after: Option<Duration>,
        targets: &'a [PushTarget],
    ) -> Reply<'a> {
        let answer = serde_json::from_slice::<Value>(body).unwrap_or_default();
        let code = code_text(&answer["code"]);
        Reply {
            answer,
            code,
            status,
            retry_after,
            targets,
        }
    }

    /// `outcome` for every token.
    pub(crate) fn all(&self, outcome: Outcome) -> Answer {
        Answer::Done(vec![outcome; self.targets.len()])
    }

    /// Each token's outcome by `of(token)`.
    pub(crate) fn each(&self, of: impl Fn(&str) -> Outcome) -> Answer {
        Answer::Done(self.targets.iter().map(|t| of(&t.token)).collect())
    }

    /// Every token invalid, the code as the reason.
    pub(crate) fn all_invalid(&self) -> Answer {
        self.all(Outcome::InvalidToken {
            reason: self.code.clone(),
        })
    }

    /// Retried after `Retry-After` when given, the code as the reason.
    pub(crate) fn retry(&self) -> Answer {
        self.retry_because(&self.code)
    }

    /// Rejected, the code as the reason.
    pub(crate) fn rejected(&self) -> Answer {
        self.all(Outcome::Rejected {
            reason: self.code.clone(),
        })
    }

    /// Refresh the access token or JWT and send once more.
    pub(crate) fn refresh_auth(&self) -> Answer {
        Answer::RefreshAuth(self.code.clone())
    }

    /// Retry after `Retry-After` when given: the outcome for a token that may go through later.
    pub(crate) fn retry_outcome(&self, reason: &str) -> Outcome {
        Outcome::Retry {
            after: self.retry_after,
            reason: reason.to_owned(),
        }
    }

    fn retry_because(&self, reason: &str) -> Answer {
        self.all(self.retry_outcome(reason))
    }

    /// `80100000`: the tokens `msg` lists as illegal are `InvalidToken`, the others
    /// `Delivered`. Unreadable details deliver every token: the accepted ones must not be
    /// sent twice, and the illegal ones will be reported again next time.
    pub(crate) fn partial_success(&self, vendor: &'static str) -> Answer {
        let details: PartialSuccess = self.answer["msg"]
            .as_str()
            .and_then(|msg| serde_json::from_str(msg).ok())
            .unwrap_or_default();
        if details.illegal_tokens.is_empty() {
            tracing::warn!(vendor, "80100000 without readable illegal tokens");
        }
        let illegal: HashSet<&str> = details.illegal_tokens.iter().map(String::as_str).collect();
        self.each(|token| {
            if illegal.contains(token) {
                Outcome::InvalidToken {
                    reason: "80100000 illegal_token".into(),
                }
            } else {
                Outcome::Delivered
            }
        })
    }

    /// A code the vendor's table does not know (or none): the HTTP status decides. 401
    /// refreshes the auth, 429 and 5xx retry (503 is Push Kit's flow control), the rest is
    /// rejected.
    pub(crate) fn by_status(&self) -> Answer {
        let reason = if self.code.is_empty() {
            self.status.to_string()
        } else {
            format!("{} {}", self.status, self.code)
        };
        match self.status {
            401 => Answer::RefreshAuth(reason),
            429 | 500..=599 => self.retry_because(&reason),
            _ => self.all(Outcome::Rejected { reason }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_tokens_are_replaced_five_minutes_before_they_expire() {
        let t0 = Instant::now();
        let at = |s| auth::refresh_at(t0, Duration::from_secs(s), REFRESH_MARGIN);
        assert_eq!(at(3600), t0 + Duration::from_secs(3300));
        assert_eq!(at(60), t0 + Duration::from_secs(30));
    }
}
