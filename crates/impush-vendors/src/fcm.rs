//! Google FCM client: HTTP v1 API
//! (<https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages/send>, errors
//! <https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode>), OAuth2 access tokens from a service
//! account, and the classification of every FCM error.
//!
//! - **Endpoint**: `base_url` + `/v1/projects/<p>/messages:send` (empty `base_url`:
//!   `https://fcm.googleapis.com`); HTTP/2 by ALPN over TLS, HTTP/1.1 on `http://`.
//! - **Access tokens**: an RS256 JWT assertion `{iss: client_email, scope, aud: token_uri,
//!   iat, exp: iat+3600}` is POSTed form-encoded (jwt-bearer grant) to `token_uri` (the
//!   config's override, else the service account's, else Google's). One [`TokenSource`] per
//!   (client_email, token_uri), shared by every credential using that account, caches the
//!   token until 5 minutes before its `expires_in` (half its lifetime when that is shorter);
//!   concurrent requests wait for one fetch instead of each fetching.
//! - **401 `UNAUTHENTICATED`**: the cached token is dropped (unless another request already
//!   replaced it), a new one fetched, and the request sent once more; a second 401 is
//!   `Rejected`. A token endpoint that refuses (`invalid_grant`…) is `Rejected`; one that is
//!   down (5xx, 429, transport) is `Retry`.
//! - **Errors**: classified on `error.details[].errorCode` (FcmError), falling back to
//!   `error.status` and then the HTTP status; `Retry-After` (seconds or HTTP date) is kept.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use impush_config::Config;
use impush_core::{CredentialProfile, PushTarget, Vendor, VendorRequest};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use crate::auth::{self, Attempt, AuthFailure, AuthToken, FetchToken, TokenCache};
use crate::http::{self, Answer};
use crate::{ClientError, Outcome, SendResult};

pub(crate) const DEFAULT_BASE_URL: &str = "https://fcm.googleapis.com";
/// Tokens per second per sender process by default: 600,000 messages per minute per project
/// (<https://firebase.google.com/docs/cloud-messaging/throttling-and-quotas>).
pub(crate) const DEFAULT_RATE_PER_S: Option<u32> = Some(10_000);
pub(crate) const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
pub(crate) const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The lifetime of the JWT assertion (Google's maximum).
const ASSERTION_LIFETIME_S: u64 = 3600;
/// An access token is replaced this long before it expires.
pub(crate) const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// One FCM credential's client.
pub(crate) struct Client {
    business_id: u64,
    base_url: String,
    http: reqwest::Client,
    auth: Arc<TokenCache<TokenSource>>,
}

/// The service-account JSON fields we use.
#[derive(Deserialize)]
struct ServiceAccount {
    #[serde(default)]
    client_email: String,
    #[serde(default)]
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
}

/// Clients for every FCM credential of the config.
pub(crate) fn clients(config: &Config) -> Result<HashMap<u64, Client>, ClientError> {
    let mut sources = HashMap::new();
    crate::build_clients(config, Vendor::Fcm, |profile| {
        client(config, profile, &mut sources)
    })
}

fn client(
    config: &Config,
    profile: &CredentialProfile,
    sources: &mut HashMap<(String, String), Arc<TokenCache<TokenSource>>>,
) -> Result<Client, ClientError> {
    let business_id = profile.business_id;
    let fail = |field, message: String| ClientError::Credential {
        business_id,
        field,
        message,
    };
    let (settings, base_url) = http::settings_and_base_url(config, business_id, DEFAULT_BASE_URL)?;
    let secrets = settings.fcm.as_ref().ok_or_else(|| {
        fail(
            "fcm",
            "missing: an FCM credential needs [credentials.fcm] with `service_account`".into(),
        )
    })?;
    let json = config
        .secret(&secrets.service_account)
        .map_err(|e| fail("fcm.service_account", e.to_string()))?;
    let account: ServiceAccount = serde_json::from_str(json.expose()).map_err(|e| {
        fail(
            "fcm.service_account",
            format!("not a service account JSON: {e}"),
        )
    })?;
    if account.client_email.trim().is_empty() {
        return Err(fail(
            "fcm.service_account.client_email",
            "missing from the service account JSON".into(),
        ));
    }
    if account.private_key.trim().is_empty() {
        return Err(fail(
            "fcm.service_account.private_key",
            "missing from the service account JSON".into(),
        ));
    }
    let (token_uri, token_uri_field) = match (&secrets.token_uri, &account.token_uri) {
        (Some(uri), _) => (uri.as_str(), "fcm.token_uri"),
        (None, Some(uri)) => (uri.as_str(), "fcm.service_account.token_uri"),
        (None, None) => (DEFAULT_TOKEN_URI, "fcm.token_uri"),
    };
    let token_uri = http::base_url(business_id, token_uri).map_err(|_| {
        fail(
            token_uri_field,
            format!("{token_uri:?} is not an http:// or https:// URL"),
        )
    })?;
    let http = http::builder(crate::request_timeout(config))
        .build()
        .map_err(|e| fail("base_url", format!("cannot build the HTTP client: {e}")))?;
    let id = (account.client_email.clone(), token_uri.clone());
    let auth = match sources.get(&id) {
        Some(source) => Arc::clone(source),
        None => {
            let source = TokenSource::new(&account, token_uri, http.clone())
                .map_err(|m| fail("fcm.service_account.private_key", m))?;
            let source = Arc::new(TokenCache::new(source));
            sources.insert(id, Arc::clone(&source));
            source
        }
    };
    Ok(Client {
        business_id,
        base_url,
        http,
        auth,
    })
}

impl Client {
    /// Sends one message (FCM v1 takes exactly one device per request).
    pub(crate) async fn send(&self, request: &VendorRequest, targets: &[PushTarget]) -> SendResult {
        let [target] = targets else {
            return http::all(
                0,
                targets.len(),
                Outcome::Rejected {
                    reason: format!("fcm takes one target per request, got {}", targets.len()),
                },
            );
        };
        let url = format!("{}{}", self.base_url, request.path);
        let body = request.body.to_bytes();
        let sent = auth::send_refreshing(&*self.auth, "fcm", self.business_id, |token| {
            self.send_with(&url, request, body.clone(), token)
        })
        .await;
        let (status, outcome) = sent.unwrap_or_else(|failure| (failure.status, failure.outcome));
        http::log_outcome("fcm", self.business_id, &target.token, status, &outcome);
        SendResult {
            status,
            outcomes: vec![outcome],
        }
    }

    /// One request with `token` as its bearer.
    async fn send_with(
        &self,
        url: &str,
        request: &VendorRequest,
        body: Vec<u8>,
        token: AuthToken,
    ) -> Attempt<(u16, Outcome)> {
        let authorization = format!("Bearer {}", token.value);
        match http::post(
            &self.http,
            url,
            "application/json",
            &request.headers,
            Some(&authorization),
            body,
        )
        .await
        {
            Ok(exchange) => classify(exchange.status, &exchange.body, exchange.retry_after)
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

/// One service account at one token endpoint: the JWT-bearer grant that gets its access
/// tokens.
pub(crate) struct TokenSource {
    client_email: String,
    private_key_id: Option<String>,
    token_uri: String,
    key: EncodingKey,
    http: reqwest::Client,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct AssertionClaims {
    pub iss: String,
    pub scope: String,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize, Default)]
struct TokenError {
    #[serde(default)]
    error: String,
}

impl TokenSource {
    /// Reads the account's RSA key and checks that it signs.
    fn new(
        account: &ServiceAccount,
        token_uri: String,
        http: reqwest::Client,
    ) -> Result<TokenSource, String> {
        let key = EncodingKey::from_rsa_pem(account.private_key.as_bytes())
            .map_err(|e| format!("not an RSA private key PEM: {e}"))?;
        let source = TokenSource {
            client_email: account.client_email.clone(),
            private_key_id: account.private_key_id.clone(),
            token_uri,
            key,
            http,
        };
        source
            .assertion(0)
            .map_err(|e| format!("cannot sign RS256 with this key: {e}"))?;
        Ok(source)
    }

    /// The signed JWT assertion issued at `iat`.
    pub(crate) fn assertion(&self, iat: u64) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.private_key_id.clone();
        let claims = AssertionClaims {
            iss: self.client_email.clone(),
            scope: SCOPE.to_owned(),
            aud: self.token_uri.clone(),
            iat,
            exp: iat + ASSERTION_LIFETIME_S,
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
    }
}

impl FetchToken for TokenSource {
    /// Exchanges a fresh assertion for an access token at `token_uri`.
    async fn fetch(&self) -> Result<AuthToken, AuthFailure> {
        let fail = |status, outcome| AuthFailure { status, outcome };
        let assertion = self.assertion(http::unix_now()).map_err(|e| {
            fail(
                0,
                Outcome::Rejected {
                    reason: format!("auth: cannot sign the assertion: {e}"),
                },
            )
        })?;
        let form = [
            ("grant_type", GRANT_TYPE),
            ("assertion", assertion.as_str()),
        ];
        let body =
            impush_core::payload::form_urlencode(&form.map(|(k, v)| (k.to_owned(), v.to_owned())));
        let exchange = http::post(
            &self.http,
            &self.token_uri,
            "application/x-www-form-urlencoded",
            &[],
            None,
            body.into_bytes(),
        )
        .await
        .map_err(|reason| AuthFailure::transport(&reason))?;
        let received = Instant::now();
        let status = exchange.status;
        if (200..300).contains(&status) {
            let response: TokenResponse = serde_json::from_slice(&exchange.body).map_err(|_| {
                fail(
                    status,
                    Outcome::Rejected {
                        reason: "auth: token endpoint answered without an access_token".into(),
                    },
                )
            })?;
            tracing::debug!(
                client_email = %self.client_email,
                expires_in = ?response.expires_in,
                "fcm: new access token"
            );
            let lifetime = Duration::from_secs(response.expires_in.unwrap_or(3600));
            return Ok(AuthToken {
                value: response.access_token.into(),
                refresh_at: auth::refresh_at(received, lifetime, REFRESH_MARGIN),
            });
        }
        let code = serde_json::from_slice::<TokenError>(&exchange.body)
            .unwrap_or_default()
            .error;
        let reason = format!("auth: {status} {code}").trim_end().to_owned();
        tracing::warn!(client_email = %self.client_email, %reason, "fcm: no access token");
        Err(AuthFailure::by_status(status, exchange.retry_after, reason))
    }
}

/// The FCM error codes (`google.firebase.fcm.v1.FcmError.errorCode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorCode {
    UnspecifiedError,
    InvalidArgument,
    Unregistered,
    SenderIdMismatch,
    QuotaExceeded,
    Unavailable,
    Internal,
    ThirdPartyAuthError,
}

impl ErrorCode {
    pub(crate) const ALL: [ErrorCode; 8] = [
        ErrorCode::UnspecifiedError,
        ErrorCode::InvalidArgument,
        ErrorCode::Unregistered,
        ErrorCode::SenderIdMismatch,
        ErrorCode::QuotaExceeded,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
        ErrorCode::ThirdPartyAuthError,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ErrorCode::UnspecifiedError => "UNSPECIFIED_ERROR",
            ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
            ErrorCode::Unregistered => "UNREGISTERED",
            ErrorCode::SenderIdMismatch => "SENDER_ID_MISMATCH",
            ErrorCode::QuotaExceeded => "QUOTA_EXCEEDED",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::Internal => "INTERNAL",
            ErrorCode::ThirdPartyAuthError => "THIRD_PARTY_AUTH_ERROR",
        }
    }

    pub(crate) fn parse(code: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == code)
    }
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    error: ErrorInfo,
}

#[derive(Deserialize, Default)]
struct ErrorInfo {
    /// The google.rpc status name (`NOT_FOUND`, `UNAUTHENTICATED`…).
    #[serde(default)]
    status: String,
    #[serde(default)]
    details: Vec<Detail>,
}

/// One entry of `error.details`: an FcmError (`errorCode`) or a BadRequest
/// (`fieldViolations`); other kinds leave both empty.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Detail {
    error_code: String,
    field_violations: Vec<FieldViolation>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FieldViolation {
    field: String,
}

/// An FCM answer: 2xx is delivered; otherwise the first known `errorCode` decides, else the
/// google.rpc `status`, else the HTTP status. Message texts are never read.
pub(crate) fn classify(status: u16, body: &[u8], retry_after: Option<Duration>) -> Answer {
    if (200..300).contains(&status) {
        return Answer::Done(Outcome::Delivered);
    }
    let error = serde_json::from_slice::<ErrorBody>(body)
        .unwrap_or_default()
        .error;
    let token_violation = error
        .details
        .iter()
        .flat_map(|d| &d.field_violations)
        .any(|v| v.field == "message.token");
    let retry = |reason: &str| Outcome::Retry {
        after: retry_after,
        reason: reason.to_owned(),
    };
    let rejected = |reason: &str| Outcome::Rejected {
        reason: reason.to_owned(),
    };
    let invalid = |reason: &str| Outcome::InvalidToken {
        reason: reason.to_owned(),
    };
    let invalid_argument = || {
        if token_violation {
            invalid("INVALID_ARGUMENT message.token")
        } else {
            rejected("INVALID_ARGUMENT")
        }
    };
    if let Some(code) = error
        .details
        .iter()
        .find_map(|d| ErrorCode::parse(&d.error_code))
    {
        let name = code.as_str();
        return Answer::Done(match code {
            ErrorCode::Unregistered | ErrorCode::SenderIdMismatch => invalid(name),
            ErrorCode::InvalidArgument => invalid_argument(),
            ErrorCode::QuotaExceeded
            | ErrorCode::Unavailable
            | ErrorCode::Internal
            | ErrorCode::UnspecifiedError => retry(name),
            ErrorCode::ThirdPartyAuthError => rejected(name),
        });
    }
    let outcome = match error.status.as_str() {
        "UNAUTHENTICATED" => return Answer::RefreshAuth("UNAUTHENTICATED".into()),
        "INVALID_ARGUMENT" => invalid_argument(),
        "RESOURCE_EXHAUSTED" | "UNAVAILABLE" | "INTERNAL" | "DEADLINE_EXCEEDED" => {
            retry(&error.status)
        }
        // Without an FcmError a NOT_FOUND is the project or path, not the token.
        "PERMISSION_DENIED" | "NOT_FOUND" | "FAILED_PRECONDITION" | "UNIMPLEMENTED" => {
            rejected(&error.status)
        }
        _ => match status {
            401 => return Answer::RefreshAuth("401".into()),
            429 | 500..=599 => retry(&status.to_string()),
            _ => rejected(&status.to_string()),
        },
    };
    Answer::Done(outcome)
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation};
    use serde_json::json;

    use super::*;
    use crate::testing::*;

    /// A real-shaped FCM error body.
    fn body(http: u16, status: &str, code: Option<&str>, field: Option<&str>) -> Vec<u8> {
        let mut details = Vec::new();
        if let Some(code) = code {
            details.push(json!({
                "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                "errorCode": code,
            }));
        }
        if let Some(field) = field {
            details.push(json!({
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field, "description": "whatever it says"}],
            }));
        }
        serde_json::to_vec(&json!({"error": {
            "code": http, "message": "Requested entity was not found.", "status": status,
            "details": details,
        }}))
        .unwrap()
    }

    fn answer(http: u16, status: &str, code: &str) -> Answer {
        classify(http, &body(http, status, Some(code), None), None)
    }

    fn invalid(reason: &str) -> Answer {
        Answer::Done(Outcome::InvalidToken {
            reason: reason.into(),
        })
    }

    fn retry(after: Option<Duration>, reason: &str) -> Answer {
        Answer::Done(Outcome::Retry {
            after,
            reason: reason.into(),
        })
    }

    fn rejected(reason: &str) -> Answer {
        Answer::Done(Outcome::Rejected {
            reason: reason.into(),
        })
    }

    #[test]
    fn fcm_200_is_delivered() {
        let ok = br#"{"name":"projects/p/messages/0:1"}"#;
        assert_eq!(classify(200, ok, None), Answer::Done(Outcome::Delivered));
    }

    #[test]
    fn fcm_404_unregistered_is_an_invalid_token() {
        assert_eq!(
            answer(404, "NOT_FOUND", "UNREGISTERED"),
            invalid("UNREGISTERED")
        );
    }

    #[test]
    fn fcm_403_sender_id_mismatch_is_an_invalid_token() {
        assert_eq!(
            answer(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH"),
            invalid("SENDER_ID_MISMATCH")
        );
    }

    #[test]
    fn fcm_400_invalid_argument_on_message_token_is_an_invalid_token() {
        let b = body(
            400,
            "INVALID_ARGUMENT",
            Some("INVALID_ARGUMENT"),
            Some("message.token"),
        );
        assert_eq!(
            classify(400, &b, None),
            invalid("INVALID_ARGUMENT message.token")
        );
        // The same with the BadRequest detail only.
        let b = body(400, "INVALID_ARGUMENT", None, Some("message.token"));
        assert_eq!(
            classify(400, &b, None),
            invalid("INVALID_ARGUMENT message.token")
        );
    }

    #[test]
    fn fcm_400_invalid_argument_on_other_fields_is_rejected() {
        let b = body(
            400,
            "INVALID_ARGUMENT",
            Some("INVALID_ARGUMENT"),
            Some("message.android.ttl"),
        );
        assert_eq!(classify(400, &b, None), rejected("INVALID_ARGUMENT"));
        assert_eq!(
            answer(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"),
            rejected("INVALID_ARGUMENT")
        );
    }

    #[test]
    fn fcm_invalid_argument_is_never_judged_by_its_message() {
        let b = br#"{"error":{"code":400,"status":"INVALID_ARGUMENT",
            "message":"The registration token is not a valid FCM registration token"}}"#;
        assert_eq!(classify(400, b, None), rejected("INVALID_ARGUMENT"));
    }

    #[test]
    fn fcm_429_quota_exceeded_is_retried_after_retry_after() {
        let after = Some(Duration::from_secs(30));
        let b = body(429, "RESOURCE_EXHAUSTED", Some("QUOTA_EXCEEDED"), None);
        assert_eq!(classify(429, &b, after), retry(after, "QUOTA_EXCEEDED"));
    }

    #[test]
    fn fcm_503_unavailable_is_retried_after_retry_after() {
        let after = Some(Duration::from_secs(5));
        let b = body(503, "UNAVAILABLE", Some("UNAVAILABLE"), None);
        assert_eq!(classify(503, &b, after), retry(after, "UNAVAILABLE"));
        assert_eq!(
            answer(503, "UNAVAILABLE", "UNAVAILABLE"),
            retry(None, "UNAVAILABLE")
        );
    }

    #[test]
    fn fcm_500_internal_is_retried() {
        assert_eq!(answer(500, "INTERNAL", "INTERNAL"), retry(None, "INTERNAL"));
    }

    #[test]
    fn fcm_unspecified_error_is_retried() {
        assert_eq!(
            answer(500, "UNKNOWN", "UNSPECIFIED_ERROR"),
            retry(None, "UNSPECIFIED_ERROR")
        );
    }

    #[test]
    fn fcm_401_third_party_auth_error_is_rejected() {
        assert_eq!(
            answer(401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR"),
            rejected("THIRD_PARTY_AUTH_ERROR")
        );
    }

    #[test]
    fn fcm_401_unauthenticated_refreshes_the_access_token() {
        let b = body(401, "UNAUTHENTICATED", None, None);
        assert_eq!(
            classify(401, &b, None),
            Answer::RefreshAuth("UNAUTHENTICATED".into())
        );
        assert_eq!(classify(401, b"", None), Answer::RefreshAuth("401".into()));
    }

    #[test]
    fn fcm_403_permission_denied_is_rejected() {
        let b = body(403, "PERMISSION_DENIED", None, None);
        assert_eq!(classify(403, &b, None), rejected("PERMISSION_DENIED"));
    }

    #[test]
    fn fcm_error_code_names_round_trip() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
    }

    #[test]
    fn fcm_falls_back_to_status_then_http_status() {
        let after = Some(Duration::from_secs(2));
        let b = body(429, "RESOURCE_EXHAUSTED", Some("SOMETHING_NEW"), None);
        assert_eq!(classify(429, &b, after), retry(after, "RESOURCE_EXHAUSTED"));
        let b = body(404, "NOT_FOUND", None, None);
        assert_eq!(classify(404, &b, None), rejected("NOT_FOUND"));
        assert_eq!(classify(502, b"<html>", after), retry(after, "502"));
        assert_eq!(classify(429, b"", None), retry(None, "429"));
        assert_eq!(classify(413, b"", None), rejected("413"));
    }

    fn source(token_uri: &str) -> TokenSource {
        let json = read_key("fcm-test-service-account.json");
        let account: ServiceAccount = serde_json::from_str(&json).unwrap();
        TokenSource::new(&account, token_uri.into(), reqwest::Client::new()).unwrap()
    }

    fn cache(token_uri: &str) -> TokenCache<TokenSource> {
        TokenCache::new(source(token_uri))
    }

    #[test]
    fn assertion_is_rs256_with_the_grant_claims() {
        let jwt = source("https://oauth2.example/token")
            .assertion(1_700_000_000)
            .unwrap();
        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.kid.as_deref(), Some("impush-test-key-1"));
        let public = read_key("fcm-test-service-account.pub.pem");
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.set_audience(&["https://oauth2.example/token"]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(
            &jwt,
            &DecodingKey::from_rsa_pem(public.as_bytes()).unwrap(),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(
            claims,
            json!({
                "iss": "impush-sender@impush-demo.iam.gserviceaccount.com",
                "scope": "https://www.googleapis.com/auth/firebase.messaging",
                "aud": "https://oauth2.example/token",
                "iat": 1_700_000_000,
                "exp": 1_700_003_600,
            })
        );
    }

    #[test]
    fn access_tokens_are_replaced_five_minutes_before_they_expire() {
        let t0 = Instant::now();
        let at = |s| auth::refresh_at(t0, Duration::from_secs(s), REFRESH_MARGIN);
        assert_eq!(at(3599), t0 + Duration::from_secs(3299));
        // Short-lived tokens (simulators) are used for half their life.
        assert_eq!(at(60), t0 + Duration::from_secs(30));
        assert_eq!(at(0), t0);
    }

    #[tokio::test]
    async fn a_cached_access_token_is_reused() {
        // The endpoint does not exist: any fetch would fail.
        let source = cache("http://127.0.0.1:9/token");
        let cached = AuthToken {
            value: "ya29.cached".into(),
            refresh_at: Instant::now() + Duration::from_secs(600),
        };
        source.set_cached(Some(cached.clone())).await;
        assert_eq!(source.token().await.unwrap(), cached);
        // Another request already replaced the token FCM refused: use that one.
        let refused = AuthToken {
            value: "ya29.old".into(),
            ..cached.clone()
        };
        assert_eq!(source.refused(&refused).await.unwrap(), cached);
        // The cached one itself refused: it is dropped and a new one fetched (and the
        // unreachable endpoint makes that a Retry).
        let failure = source.refused(&cached).await.unwrap_err();
        assert!(
            matches!(failure.outcome, Outcome::Retry { .. }),
            "{:?}",
            failure.outcome
        );
        assert_eq!(source.cached().await, None);
    }

    #[test]
    fn credentials_with_the_same_account_share_one_token_source() {
        let mut text = String::new();
        for id in [21, 22] {
            text.push_str(&format!(
                "[[credentials]]\nbusiness_id = {id}\nvendor = \"fcm\"\nproject_id = \"p{id}\"\n\
                 [credentials.fcm]\nservice_account = {{ file = \"keys/fcm-test-service-account.json\" }}\n"
            ));
        }
        let clients = clients(&config_in(&local_dir(), &text)).unwrap();
        assert!(Arc::ptr_eq(&clients[&21].auth, &clients[&22].auth));
        assert_eq!(clients[&21].base_url, DEFAULT_BASE_URL);
        assert_eq!(
            clients[&21].auth.fetcher.token_uri,
            "http://127.0.0.1:8700/fcm/token"
        );
    }

    #[test]
    fn the_config_token_uri_overrides_the_accounts() {
        let text = "[[credentials]]\nbusiness_id = 5\nvendor = \"fcm\"\nproject_id = \"p\"\n\
                    [credentials.fcm]\nservice_account = { file = \"keys/fcm-test-service-account.json\" }\n\
                    token_uri = \"http://10.0.0.1/token\"\n";
        let clients = clients(&config_in(&local_dir(), text)).unwrap();
        assert_eq!(clients[&5].auth.fetcher.token_uri, "http://10.0.0.1/token");
    }

    #[test]
    fn config_errors_name_the_business_id_and_field() {
        let dir = temp_dir("fcm-config");
        let account: serde_json::Value =
            serde_json::from_str(&read_key("fcm-test-service-account.json")).unwrap();
        let with = |key: &str, value: serde_json::Value| {
            let mut a = account.clone();
            a[key] = value;
            a.to_string()
        };
        let without = |key: &str| {
            let mut a = account.clone();
            a.as_object_mut().unwrap().remove(key);
            a.to_string()
        };
        std::fs::write(dir.join("no-email.json"), without("client_email")).unwrap();
        std::fs::write(dir.join("no-key.json"), without("private_key")).unwrap();
        std::fs::write(
            dir.join("bad-key.json"),
            with(
                "private_key",
                json!("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("ec-key.json"),
            with("private_key", json!(read_key("apns-test-key.p8"))),
        )
        .unwrap();
        std::fs::write(
            dir.join("bad-uri.json"),
            with("token_uri", json!("oauth2/token")),
        )
        .unwrap();
        std::fs::write(dir.join("not.json"), "{").unwrap();
        let cases = [
            ("", "fcm"),
            (
                "[credentials.fcm]\nservice_account = { file = \"missing.json\" }\n",
                "fcm.service_account",
            ),
            (
                "[credentials.fcm]\nservice_account = { file = \"not.json\" }\n",
                "fcm.service_account",
            ),
            (
                "[credentials.fcm]\nservice_account = { file = \"no-email.json\" }\n",
                "fcm.service_account.client_email",
            ),
            (
                "[credentials.fcm]\nservice_account = { file = \"no-key.json\" }\n",
                "fcm.service_account.private_key",
            ),
            (
                "[credentials.fcm]\nservice_account = { file = \"bad-key.json\" }\n",
                "fcm.service_account.private_key",
            ),
            (
                "[credentials.fcm]\nservice_account = { file = \"ec-key.json\" }\n",
                "fcm.service_account.private_key",
            ),
            (
                "[credentials.fcm]\nservice_account = { file = \"bad-uri.json\" }\n",
                "fcm.service_account.token_uri",
            ),
        ];
        for (fcm, field) in cases {
            let text = format!(
                "[[credentials]]\nbusiness_id = 9\nvendor = \"fcm\"\nproject_id = \"p\"\n{fcm}"
            );
            let err = match clients(&config_in(&dir, &text)) {
                Ok(_) => panic!("accepted: {fcm}"),
                Err(e) => e.to_string(),
            };
            assert!(err.contains("credential 9"), "{err}");
            assert!(err.contains(&format!("`{field}`")), "{field}: {err}");
            assert!(!err.contains("BEGIN"), "no key material in errors: {err}");
        }
    }
}
