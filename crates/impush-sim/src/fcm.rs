//! The Google FCM personality: the OAuth2 token endpoint of a service account and the HTTP v1
//! send API, under `/fcm`.
//!
//! - `POST /fcm/token`: the jwt-bearer grant (RFC 7523) a service account makes. The
//!   assertion is an RS256 JWT whose `iss` is a trusted `client_email` and whose signature
//!   checks against that account's public key, with `aud` the token URI it was posted to (or
//!   Google's own, which google-auth always sends), `iat`/`exp` at most an hour apart and
//!   `exp` not past, and a `scope`. Answers and errors are Google's:
//!   `{"access_token","expires_in","token_type":"Bearer"}`, or 400
//!   `{"error":"invalid_grant"|"invalid_scope"|"unsupported_grant_type"|…,"error_description"}`.
//! - `POST /fcm/v1/projects/{project}/messages:send` with `Authorization: Bearer <access
//!   token>` issued here and not expired (else 401 `UNAUTHENTICATED` with a
//!   `google.rpc.ErrorInfo`), for the account's own project and with a scope that covers
//!   FCM (else 403 `PERMISSION_DENIED`). The body `{"validate_only"?, "message"}` is checked
//!   against the v1 `Message` schema (unknown fields, wrong types, enum values, durations,
//!   string-only data, reserved data keys, exactly one target, the 4096-byte payload limit):
//!   400 `INVALID_ARGUMENT` with a `google.rpc.BadRequest` naming the field, as Google does.
//!   Tokens starting `invalid-` get 404 `UNREGISTERED`. Success:
//!   `{"name":"projects/<p>/messages/<id>"}`.
//!
//! Sources: firebase.google.com/docs/reference/fcm/rest/v1/projects.messages and ErrorCode,
//! developers.google.com/identity/protocols/oauth2/service-account; error texts as Google
//! sends them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Form, Router};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::control::{FaultReply, Record, now_ms};
use crate::{FcmAccount, Personality, Shown, Sim, SimError, SimSettings};

pub(crate) const MAX_PAYLOAD_BYTES: usize = 4096;
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Audiences Google's token endpoint accepts besides the URI the assertion was posted to.
const GOOGLE_AUDIENCES: &[&str] = &[
    "https://oauth2.googleapis.com/token",
    "https://www.googleapis.com/oauth2/v4/token",
    "https://accounts.google.com/o/oauth2/token",
];
/// Scopes that allow `messages:send`.
const SEND_SCOPES: &[&str] = &[
    "https://www.googleapis.com/auth/firebase.messaging",
    "https://www.googleapis.com/auth/cloud-platform",
];
/// The longest an assertion may live (`exp - iat`), and how far ahead `iat` may be.
const MAX_ASSERTION_LIFETIME_S: i64 = 3600;
const IAT_SKEW_S: i64 = 300;
const READ_LIMIT: usize = 1024 * 1024;
const MAX_TTL_S: f64 = 2_419_200.0;
const FCM_ERROR: &str = "type.googleapis.com/google.firebase.fcm.v1.FcmError";
const BAD_REQUEST: &str = "type.googleapis.com/google.rpc.BadRequest";
const ERROR_INFO: &str = "type.googleapis.com/google.rpc.ErrorInfo";
const INVALID_CREDENTIALS: &str = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";
const MISSING_CREDENTIALS: &str = "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";
const BAD_TIMEFRAME: &str = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.";
/// FCM's own error codes (`FcmError.errorCode`), as opposed to google.rpc status names.
const FCM_ERROR_CODES: &[&str] = &[
    "UNSPECIFIED_ERROR",
    "INVALID_ARGUMENT",
    "UNREGISTERED",
    "SENDER_ID_MISMATCH",
    "QUOTA_EXCEEDED",
    "UNAVAILABLE",
    "INTERNAL",
    "THIRD_PARTY_AUTH_ERROR",
];

/// The FCM personality: the service accounts it trusts and the access tokens it issued.
pub(crate) struct Fcm {
    accounts: HashMap<String, TrustedAccount>,
    tokens: Mutex<HashMap<String, AccessToken>>,
    lifetime: Duration,
    messages: AtomicU64,
}

struct TrustedAccount {
    key: DecodingKey,
    /// The project of a `name@project.iam.gserviceaccount.com` account.
    project: Option<String>,
}

struct AccessToken {
    project: Option<String>,
    can_send: bool,
    expires_at: Instant,
    epoch: u64,
}

impl Fcm {
    pub fn new(accounts: &[FcmAccount], lifetime: Duration) -> Result<Fcm, SimError> {
        let accounts = accounts
            .iter()
            .map(|a| {
                let key = DecodingKey::from_rsa_pem(a.public_pem.as_bytes()).map_err(|e| {
                    SimError::BadKey {
                        owner: format!("FCM service account {}", a.client_email),
                        message: format!("not an RSA public key PEM: {e}"),
                    }
                })?;
                let project = a
                    .client_email
                    .split_once('@')
                    .and_then(|(_, domain)| domain.strip_suffix(".iam.gserviceaccount.com"))
                    .map(str::to_owned);
                Ok((a.client_email.clone(), TrustedAccount { key, project }))
            })
            .collect::<Result<_, SimError>>()?;
        Ok(Fcm {
            accounts,
            tokens: Mutex::new(HashMap::new()),
            lifetime,
            messages: AtomicU64::new(0),
        })
    }

    fn tokens(&self) -> MutexGuard<'_, HashMap<String, AccessToken>> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn issue(&self, account: &TrustedAccount, scopes: &[&str], epoch: u64) -> String {
        let token = format!("ya29.sim-{}", Uuid::new_v4().simple());
        let now = Instant::now();
        let mut tokens = self.tokens();
        if tokens.len() >= 1024 {
            tokens.retain(|_, t| t.expires_at > now);
        }
        tokens.insert(
            token.clone(),
            AccessToken {
                project: account.project.clone(),
                can_send: scopes.iter().any(|s| SEND_SCOPES.contains(s)),
                expires_at: now + self.lifetime,
                epoch,
            },
        );
        token
    }

    fn next_message_id(&self) -> String {
        let n = self.messages.fetch_add(1, Ordering::Relaxed);
        format!("0:{}%{n:016x}", now_ms() * 1000)
    }
}

impl Personality for Fcm {
    const NAME: &'static str = "fcm";

    fn routes() -> Router<Arc<Sim>> {
        Router::new()
            .route("/fcm", any(handle))
            .route("/fcm/{*path}", any(handle))
    }

    fn fault_response(fault: &FaultReply) -> Response {
        let reason = fault.reason.as_str();
        let (rpc_status, details) = if FCM_ERROR_CODES.contains(&reason) {
            (
                rpc_status(fault.status),
                vec![json!({ "@type": FCM_ERROR, "errorCode": reason })],
            )
        } else if is_rpc_status(reason) {
            (reason, Vec::new())
        } else {
            (
                rpc_status(fault.status),
                vec![json!({ "@type": FCM_ERROR, "errorCode": reason })],
            )
        };
        let mut response = google_error(
            fault.status,
            rpc_status,
            fault_message(fault.status, reason),
            details,
        );
        if let Some((name, value)) = fault.retry_after()
            && let Ok(value) = HeaderValue::from_str(&value)
        {
            response.headers_mut().insert(name, value);
        }
        response
    }

    fn shown(payload: &Value) -> Shown {
        let message = &payload["message"];
        let android = &message["android"];
        let pick = |a: &Value, b: &Value| a.as_str().or(b.as_str()).map(str::to_owned);
        Shown {
            title: pick(
                &message["notification"]["title"],
                &android["notification"]["title"],
            ),
            body: pick(
                &message["notification"]["body"],
                &android["notification"]["body"],
            ),
            badge: None,
            sound: pick(&android["notification"]["sound"], &Value::Null),
            ext: pick(&message["data"]["ext"], &android["data"]["ext"]),
        }
    }

    fn from_settings(settings: &SimSettings) -> Result<Fcm, SimError> {
        Fcm::new(&settings.fcm_accounts, settings.fcm_token_lifetime)
    }
}

fn is_rpc_status(name: &str) -> bool {
    matches!(
        name,
        "CANCELLED"
            | "UNKNOWN"
            | "INVALID_ARGUMENT"
            | "DEADLINE_EXCEEDED"
            | "NOT_FOUND"
            | "ALREADY_EXISTS"
            | "PERMISSION_DENIED"
            | "RESOURCE_EXHAUSTED"
            | "FAILED_PRECONDITION"
            | "ABORTED"
            | "OUT_OF_RANGE"
            | "UNIMPLEMENTED"
            | "INTERNAL"
            | "UNAVAILABLE"
            | "DATA_LOSS"
            | "UNAUTHENTICATED"
    )
}

/// The google.rpc status Google's front end gives an HTTP status.
fn rpc_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        500 => "INTERNAL",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "UNKNOWN",
    }
}

fn fault_message(status: StatusCode, reason: &str) -> &'static str {
    match (status.as_u16(), reason) {
        (_, "SENDER_ID_MISMATCH") => "SenderId mismatch",
        (_, "THIRD_PARTY_AUTH_ERROR") => "Auth error from APNS or Web Push Service",
        (400, _) => "Request contains an invalid argument.",
        (401, _) => INVALID_CREDENTIALS,
        (403, _) => "The caller does not have permission",
        (404, _) => "Requested entity was not found.",
        (429, _) => {
            "Quota exceeded for quota metric 'Send requests' and limit 'Send requests per minute'."
        }
        (500, _) => "Internal error encountered.",
        (503, _) => "The service is currently unavailable.",
        _ => "Unknown error.",
    }
}

/// A google.rpc error body: `{"error":{"code","message","status","details"?}}`.
fn google_error(
    status: StatusCode,
    rpc_status: &str,
    message: &str,
    details: Vec<Value>,
) -> Response {
    let mut error = json!({
        "code": status.as_u16(),
        "message": message,
        "status": rpc_status,
    });
    if !details.is_empty() {
        error["details"] = Value::Array(details);
    }
    json_response(status, &json!({ "error": error }))
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [("content-type", "application/json; charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}

/// Google's OAuth2 error: 400 `{"error","error_description"}`.
fn oauth_error(error: &str, description: &str) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({ "error": error, "error_description": description }),
    )
}

fn not_found() -> Response {
    google_error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "Requested entity was not found.",
        Vec::new(),
    )
}

async fn handle(State(sim): State<Arc<Sim>>, request: Request) -> Response {
    let path = request
        .uri()
        .path()
        .strip_prefix("/fcm")
        .unwrap_or_default()
        .to_owned();
    if path == "/token" {
        if request.method() != Method::POST {
            return json_response(
                StatusCode::METHOD_NOT_ALLOWED,
                &json!({ "error": "invalid_request", "error_description": "Only POST is allowed." }),
            );
        }
        return token(&sim, request).await;
    }
    let project = path
        .strip_prefix("/v1/projects/")
        .and_then(|rest| rest.strip_suffix("/messages:send"))
        .filter(|p| !p.is_empty() && !p.contains('/'));
    match project {
        Some(project) if request.method() == Method::POST => send(&sim, project, request).await,
        _ => not_found(),
    }
}

#[derive(Deserialize)]
struct TokenRequest {
    grant_type: Option<String>,
    assertion: Option<String>,
}

/// `POST /fcm/token`: the service account's jwt-bearer grant.
async fn token(sim: &Sim, request: Request) -> Response {
    let authority = request
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            request
                .headers()
                .get("host")
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let own_uri = format!("http://{authority}{}", request.uri().path());
    let form = match Form::<TokenRequest>::from_request(request, &()).await {
        Ok(Form(form)) => form,
        Err(rejection) => return oauth_error("invalid_request", &rejection.body_text()),
    };
    let grant_type = form.grant_type.unwrap_or_default();
    if grant_type != JWT_BEARER {
        return oauth_error(
            "unsupported_grant_type",
            &format!("Invalid grant_type: {grant_type}"),
        );
    }
    let Some(assertion) = form.assertion.filter(|a| !a.is_empty()) else {
        return oauth_error("invalid_request", "Missing required parameter: assertion");
    };
    match grant(sim, &assertion, &own_uri) {
        Ok((access_token, expires_in)) => json_response(
            StatusCode::OK,
            &json!({
                "access_token": access_token,
                "expires_in": expires_in,
                "token_type": "Bearer",
            }),
        ),
        Err((error, description)) => {
            tracing::debug!(error, description, "FCM token grant refused");
            oauth_error(error, description)
        }
    }
}

type GrantError = (&'static str, &'static str);

/// Checks an assertion and issues an access token for it.
fn grant(sim: &Sim, assertion: &str, own_uri: &str) -> Result<(String, u64), GrantError> {
    let bad_signature = ("invalid_grant", "Invalid JWT Signature.");
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| bad_signature)?;
    if header.alg != Algorithm::RS256 {
        return Err(bad_signature);
    }
    let unverified = jsonwebtoken::dangerous::insecure_decode::<Value>(assertion)
        .map_err(|_| bad_signature)?
        .claims;
    let issuer = unverified["iss"]
        .as_str()
        .filter(|iss| !iss.is_empty())
        .ok_or(("invalid_grant", "Invalid email or User ID."))?;
    let account = sim
        .fcm
        .accounts
        .get(issuer)
        .ok_or(("invalid_grant", "Invalid grant: account not found"))?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Value>(assertion, &account.key, &validation)
        .map_err(|_| bad_signature)?
        .claims;

    let audience_ok = claims["aud"]
        .as_str()
        .is_some_and(|aud| aud == own_uri || GOOGLE_AUDIENCES.contains(&aud));
    if !audience_ok {
        return Err(("invalid_grant", "Invalid JWT: Failed audience check."));
    }
    let now = i64::try_from(now_ms() / 1000).unwrap_or(i64::MAX);
    let (Some(iat), Some(exp)) = (claims["iat"].as_i64(), claims["exp"].as_i64()) else {
        return Err(("invalid_grant", BAD_TIMEFRAME));
    };
    if exp <= now || iat > now + IAT_SKEW_S || exp < iat || exp - iat > MAX_ASSERTION_LIFETIME_S {
        return Err(("invalid_grant", BAD_TIMEFRAME));
    }
    let scopes: Vec<&str> = claims["scope"]
        .as_str()
        .map(|s| s.split_whitespace().collect())
        .unwrap_or_default();
    if scopes.is_empty() {
        return Err((
            "invalid_scope",
            "Invalid OAuth scope or ID token audience provided.",
        ));
    }
    let token = sim.fcm.issue(account, &scopes, sim.control.auth_epoch());
    Ok((token, sim.fcm.lifetime.as_secs()))
}

/// A 401 as Google's front end gives it, with the ErrorInfo reason clients may read.
fn unauthenticated(message: &str, reason: &str) -> Response {
    let mut response = google_error(
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
        message,
        vec![json!({
            "@type": ERROR_INFO,
            "reason": reason,
            "domain": "googleapis.com",
            "metadata": {
                "service": "fcm.googleapis.com",
                "method": "google.firebase.fcm.v1.FcmService.SendMessage",
            },
        })],
    );
    response.headers_mut().insert(
        "www-authenticate",
        HeaderValue::from_static("Bearer realm=\"https://accounts.google.com/\""),
    );
    response
}

fn permission_denied(message: &str, reason: &str) -> Response {
    google_error(
        StatusCode::FORBIDDEN,
        "PERMISSION_DENIED",
        message,
        vec![json!({
            "@type": ERROR_INFO,
            "reason": reason,
            "domain": "googleapis.com",
            "metadata": {
                "service": "fcm.googleapis.com",
                "method": "google.firebase.fcm.v1.FcmService.SendMessage",
            },
        })],
    )
}

/// Why a send's bearer access token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthFailure {
    Missing,
    NotIssuedHere,
    Expired,
    ScopeTooNarrow,
    OtherProject,
}

impl AuthFailure {
    fn response(self, project: &str) -> Response {
        match self {
            AuthFailure::Missing => unauthenticated(MISSING_CREDENTIALS, "CREDENTIALS_MISSING"),
            AuthFailure::NotIssuedHere => {
                unauthenticated(INVALID_CREDENTIALS, "ACCESS_TOKEN_TYPE_UNSUPPORTED")
            }
            AuthFailure::Expired => unauthenticated(INVALID_CREDENTIALS, "ACCESS_TOKEN_EXPIRED"),
            AuthFailure::ScopeTooNarrow => permission_denied(
                "Request had insufficient authentication scopes.",
                "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
            ),
            AuthFailure::OtherProject => permission_denied(
                &format!(
                    "Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/{project}' (or it may not exist)."
                ),
                "IAM_PERMISSION_DENIED",
            ),
        }
    }
}

/// Checks the bearer access token of a send to `project`.
fn authorize(sim: &Sim, headers: &HeaderMap, project: &str) -> Result<(), AuthFailure> {
    let value = headers.get("authorization").ok_or(AuthFailure::Missing)?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or(AuthFailure::NotIssuedHere)?;
    let epoch = sim.control.auth_epoch();
    let tokens = sim.fcm.tokens();
    let issued = tokens.get(token).ok_or(AuthFailure::NotIssuedHere)?;
    if issued.epoch < epoch || issued.expires_at <= Instant::now() {
        return Err(AuthFailure::Expired);
    }
    if !issued.can_send {
        return Err(AuthFailure::ScopeTooNarrow);
    }
    if issued.project.as_deref().is_some_and(|p| p != project) {
        return Err(AuthFailure::OtherProject);
    }
    Ok(())
}

/// `POST /fcm/v1/projects/{project}/messages:send`.
async fn send(sim: &Sim, project: &str, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if let Err(failure) = authorize(sim, &parts.headers, project) {
        tracing::debug!(?failure, "FCM send refused");
        return failure.response(project);
    }
    let Ok(body) = axum::body::to_bytes(body, READ_LIMIT).await else {
        return google_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "INVALID_ARGUMENT",
            "Request payload size exceeds the limit: 1048576 bytes.",
            Vec::new(),
        );
    };
    let request: Value = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return invalid(&Violation {
                field: String::new(),
                description: format!("Invalid JSON payload received. {e}"),
            });
        }
    };
    let checked = match check_request(&request) {
        Ok(checked) => checked,
        Err(Invalid::Field(violation)) => return invalid(&violation),
        Err(Invalid::Token) => return invalid_token(),
        Err(Invalid::TooBig) => {
            return google_error(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                "Request contains an invalid argument.",
                Vec::new(),
            );
        }
    };
    if checked.validate_only {
        return json_response(
            StatusCode::OK,
            &json!({ "name": format!("projects/{project}/messages/fake_message_id") }),
        );
    }

    if let Some(fault) = sim
        .control
        .strike(Fcm::NAME, &checked.target, &sim.shutdown)
        .await
    {
        return Fcm::fault_response(&fault);
    }
    if checked.target.starts_with("invalid-") {
        return google_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "Requested entity was not found.",
            vec![json!({ "@type": FCM_ERROR, "errorCode": "UNREGISTERED" })],
        );
    }
    sim.control.record(Record {
        vendor: Fcm::NAME,
        token: checked.target.into(),
        payload: String::from_utf8_lossy(&body).into(),
        headers: Vec::new(),
        received_at_ms: now_ms(),
        shown: Fcm::shown,
    });
    json_response(
        StatusCode::OK,
        &json!({ "name": format!("projects/{project}/messages/{}", sim.fcm.next_message_id()) }),
    )
}

struct Violation {
    field: String,
    description: String,
}

enum Invalid {
    Field(Violation),
    Token,
    TooBig,
}

/// 400 `INVALID_ARGUMENT` with the `google.rpc.BadRequest` naming the field.
fn invalid(violation: &Violation) -> Response {
    let mut field_violation = json!({ "description": violation.description });
    if !violation.field.is_empty() {
        field_violation["field"] = violation.field.clone().into();
    }
    google_error(
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
        &violation.description,
        vec![json!({ "@type": BAD_REQUEST, "fieldViolations": [field_violation] })],
    )
}

fn invalid_token() -> Response {
    let description = "The registration token is not a valid FCM registration token";
    google_error(
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
        description,
        vec![
            json!({ "@type": FCM_ERROR, "errorCode": "INVALID_ARGUMENT" }),
            json!({
                "@type": BAD_REQUEST,
                "fieldViolations": [{ "field": "message.token", "description": description }],
            }),
        ],
    )
}

/// A send request that passed the checks.
struct Checked {
    validate_only: bool,
    /// The token, or `/topics/<t>` / `condition:<c>` for the other targets.
    target: String,
}

fn check_request(request: &Value) -> Result<Checked, Invalid> {
    check_object(request, "", SEND_REQUEST).map_err(Invalid::Field)?;
    let validate_only = field(request, "validate_only")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let message = field(request, "message").unwrap_or(&Value::Null);
    let non_empty = |name| {
        field(message, name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let targets: Vec<(&str, &str)> = ["token", "topic", "condition"]
        .into_iter()
        .filter_map(|name| non_empty(name).map(|value| (name, value)))
        .collect();
    let target = match targets.as_slice() {
        [] => {
            let description = "Recipient of the message is not set.";
            return Err(Invalid::Field(Violation {
                field: "message".into(),
                description: description.into(),
            }));
        }
        [("token", token)] => {
            let plausible = token.len() <= 4096
                && token
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\\' | b'/'));
            if !plausible {
                return Err(Invalid::Token);
            }
            (*token).to_owned()
        }
        [("topic", topic)] => format!("/topics/{topic}"),
        [(_, condition)] => format!("condition:{condition}"),
        [_, (second, _), ..] => {
            return Err(Invalid::Field(Violation {
                field: "message".into(),
                description: format!(
                    "Invalid value at 'message' (oneof), oneof field 'target' is already set. Cannot set '{second}'"
                ),
            }));
        }
    };
    for (path, data) in [
        ("message.data", field(message, "data")),
        (
            "message.android.data",
            field(message, "android").and_then(|a| field(a, "data")),
        ),
    ] {
        if let Some(key) = data
            .and_then(Value::as_object)
            .and_then(|d| d.keys().find(|k| is_reserved_data_key(k)))
        {
            return Err(Invalid::Field(Violation {
                field: path.into(),
                description: format!("Invalid data payload key: {key}"),
            }));
        }
    }
    if payload_size(message) > MAX_PAYLOAD_BYTES {
        return Err(Invalid::TooBig);
    }
    Ok(Checked {
        validate_only,
        target,
    })
}

fn is_reserved_data_key(key: &str) -> bool {
    matches!(key, "from" | "notification" | "message_type")
        || key.starts_with("google.")
        || key.starts_with("gcm.")
}

/// What counts against FCM's 4096-byte limit: what reaches the device (texts and data).
fn payload_size(message: &Value) -> usize {
    let android = field(message, "android");
    [
        field(message, "notification"),
        field(message, "data"),
        android.and_then(|a| field(a, "notification")),
        android.and_then(|a| field(a, "data")),
    ]
    .into_iter()
    .flatten()
    .map(|part| part.to_string().len())
    .sum()
}

/// A field of a proto3 JSON object under its proto name or its lowerCamelCase JSON name.
fn field<'a>(object: &'a Value, proto_name: &str) -> Option<&'a Value> {
    let object = object.as_object()?;
    object
        .get(proto_name)
        .or_else(|| object.get(&camel_case(proto_name)))
        .filter(|v| !v.is_null())
}

fn camel_case(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The v1 schema, as much of it as a server-side sender uses, field by proto name.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Bool,
    Int,
    Enum(&'static str, &'static [&'static str]),
    Duration,
    Timestamp,
    StrMap,
    StrList,
    DurationList,
    Object(&'static str, &'static [(&'static str, Kind)]),
    /// A message this simulator does not look into (webpush, apns payload, …).
    AnyObject(&'static str),
}

const SEND_REQUEST: &[(&str, Kind)] = &[
    ("validate_only", Kind::Bool),
    ("message", Kind::Object("Message", MESSAGE)),
];
const MESSAGE: &[(&str, Kind)] = &[
    ("name", Kind::Str),
    ("data", Kind::StrMap),
    ("notification", Kind::Object("Notification", NOTIFICATION)),
    ("android", Kind::Object("AndroidConfig", ANDROID)),
    ("webpush", Kind::AnyObject("WebpushConfig")),
    ("apns", Kind::Object("ApnsConfig", APNS)),
    ("fcm_options", Kind::Object("FcmOptions", FCM_OPTIONS)),
    ("token", Kind::Str),
    ("topic", Kind::Str),
    ("condition", Kind::Str),
];
const NOTIFICATION: &[(&str, Kind)] = &[
    ("title", Kind::Str),
    ("body", Kind::Str),
    ("image", Kind::Str),
];
const FCM_OPTIONS: &[(&str, Kind)] = &[("analytics_label", Kind::Str)];
const ANDROID: &[(&str, Kind)] = &[
    ("collapse_key", Kind::Str),
    (
        "priority",
        Kind::Enum("AndroidMessagePriority", &["NORMAL", "HIGH"]),
    ),
    ("ttl", Kind::Duration),
    ("restricted_package_name", Kind::Str),
    ("data", Kind::StrMap),
    (
        "notification",
        Kind::Object("AndroidNotification", ANDROID_NOTIFICATION),
    ),
    (
        "fcm_options",
        Kind::Object("AndroidFcmOptions", FCM_OPTIONS),
    ),
    ("direct_boot_ok", Kind::Bool),
    ("bandwidth_constrained_ok", Kind::Bool),
    ("restricted_satellite_ok", Kind::Bool),
];
const ANDROID_NOTIFICATION: &[(&str, Kind)] = &[
    ("title", Kind::Str),
    ("body", Kind::Str),
    ("icon", Kind::Str),
    ("color", Kind::Str),
    ("sound", Kind::Str),
    ("tag", Kind::Str),
    ("click_action", Kind::Str),
    ("body_loc_key", Kind::Str),
    ("body_loc_args", Kind::StrList),
    ("title_loc_key", Kind::Str),
    ("title_loc_args", Kind::StrList),
    ("channel_id", Kind::Str),
    ("ticker", Kind::Str),
    ("sticky", Kind::Bool),
    ("event_time", Kind::Timestamp),
    ("local_only", Kind::Bool),
    (
        "notification_priority",
        Kind::Enum(
            "NotificationPriority",
            &[
                "PRIORITY_UNSPECIFIED",
                "PRIORITY_MIN",
                "PRIORITY_LOW",
                "PRIORITY_DEFAULT",
                "PRIORITY_HIGH",
                "PRIORITY_MAX",
            ],
        ),
    ),
    ("default_sound", Kind::Bool),
    ("default_vibrate_timings", Kind::Bool),
    ("default_light_settings", Kind::Bool),
    ("vibrate_timings", Kind::DurationList),
    (
        "visibility",
        Kind::Enum(
            "Visibility",
            &["VISIBILITY_UNSPECIFIED", "PRIVATE", "PUBLIC", "SECRET"],
        ),
    ),
    ("notification_count", Kind::Int),
    ("light_settings", Kind::AnyObject("LightSettings")),
    ("image", Kind::Str),
    ("bypass_proxy_notification", Kind::Bool),
    (
        "proxy",
        Kind::Enum(
            "Proxy",
            &["PROXY_UNSPECIFIED", "ALLOW", "DENY", "IF_PRIORITY_LOWERED"],
        ),
    ),
];
const APNS: &[(&str, Kind)] = &[
    ("headers", Kind::StrMap),
    ("payload", Kind::AnyObject("Struct")),
    ("fcm_options", Kind::AnyObject("ApnsFcmOptions")),
    ("live_activity_token", Kind::Str),
];

fn type_name(kind: Kind) -> String {
    match kind {
        Kind::Str | Kind::StrList | Kind::StrMap => "TYPE_STRING".into(),
        Kind::Bool => "TYPE_BOOL".into(),
        Kind::Int => "TYPE_INT32".into(),
        Kind::Duration | Kind::DurationList => {
            "type.googleapis.com/google.protobuf.Duration".into()
        }
        Kind::Timestamp => "type.googleapis.com/google.protobuf.Timestamp".into(),
        Kind::Enum(name, _) | Kind::Object(name, _) | Kind::AnyObject(name) => {
            format!("type.googleapis.com/google.firebase.fcm.v1.{name}")
        }
    }
}

fn bad_value(path: &str, kind: Kind, value: &Value) -> Violation {
    let description = format!("Invalid value at '{path}' ({}), {value}", type_name(kind));
    Violation {
        field: path.to_owned(),
        description,
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// Checks an object against its schema the way Google's JSON parser does.
fn check_object(value: &Value, path: &str, fields: &[(&str, Kind)]) -> Result<(), Violation> {
    let Some(object) = value.as_object() else {
        let description = if path.is_empty() {
            "Invalid JSON payload received. Root element must be a message.".to_owned()
        } else {
            format!("Invalid JSON payload received. Expected an object at '{path}'.")
        };
        return Err(Violation {
            field: path.to_owned(),
            description,
        });
    };
    for (name, value) in object {
        let proto_name = snake_case(name);
        let Some((_, kind)) = fields.iter().find(|(n, _)| *n == proto_name) else {
            let at = if path.is_empty() {
                String::new()
            } else {
                format!(" at '{path}'")
            };
            return Err(Violation {
                field: path.to_owned(),
                description: format!(
                    "Invalid JSON payload received. Unknown name \"{name}\"{at}: Cannot find field."
                ),
            });
        };
        if value.is_null() {
            continue;
        }
        check_value(value, &join(path, &proto_name), *kind)?;
    }
    Ok(())
}

fn check_value(value: &Value, path: &str, kind: Kind) -> Result<(), Violation> {
    let ok = match kind {
        Kind::Str => value.is_string(),
        Kind::Bool => value.is_boolean(),
        Kind::Int => {
            value.as_i64().is_some_and(|n| i32::try_from(n).is_ok())
                || value.as_str().is_some_and(|s| s.parse::<i32>().is_ok())
        }
        Kind::Enum(_, names) => {
            value.as_str().is_some_and(|s| names.contains(&s))
                || value
                    .as_u64()
                    .is_some_and(|n| usize::try_from(n).is_ok_and(|n| n < names.len()))
        }
        Kind::Duration => value.as_str().is_some_and(is_duration),
        Kind::Timestamp => value.is_string(),
        Kind::StrMap => return check_map(value, path),
        Kind::StrList | Kind::DurationList => {
            let item = if matches!(kind, Kind::StrList) {
                Kind::Str
            } else {
                Kind::Duration
            };
            let Some(items) = value.as_array() else {
                return Err(bad_value(path, kind, value));
            };
            for (i, v) in items.iter().enumerate() {
                check_value(v, &format!("{path}[{i}]"), item)?;
            }
            true
        }
        Kind::Object(_, fields) => {
            if !value.is_object() {
                return Err(bad_value(path, kind, value));
            }
            return check_object(value, path, fields);
        }
        Kind::AnyObject(_) => value.is_object(),
    };
    if ok {
        Ok(())
    } else {
        Err(bad_value(path, kind, value))
    }
}

/// A `map<string, string>`: Google names a bad entry by its index.
fn check_map(value: &Value, path: &str) -> Result<(), Violation> {
    let Some(map) = value.as_object() else {
        return Err(bad_value(path, Kind::StrMap, value));
    };
    for (i, (_, v)) in map.iter().enumerate() {
        if !v.is_string() {
            return Err(bad_value(&format!("{path}[{i}].value"), Kind::Str, v));
        }
    }
    Ok(())
}

/// A protobuf Duration in JSON: `"3.5s"`, seconds with up to nine decimals, 0 to 4 weeks
/// for a TTL.
fn is_duration(text: &str) -> bool {
    let Some(number) = text.strip_suffix('s') else {
        return false;
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(whole)
        && digits(fraction)
        && fraction.len() <= 9
        && number.parse::<f64>().is_ok_and(|s| s <= MAX_TTL_S)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(message: Value) -> Value {
        json!({ "message": message })
    }

    fn violation(request: Value) -> String {
        match check_request(&request) {
            Err(Invalid::Field(v)) => format!("{} | {}", v.field, v.description),
            Err(Invalid::Token) => "token".into(),
            Err(Invalid::TooBig) => "too big".into(),
            Ok(_) => "ok".into(),
        }
    }

    #[test]
    fn what_impush_sends_passes() {
        let request = message(json!({
            "token": "fcm:APA91b_x-y.z",
            "notification": {"title": "T", "body": "B"},
            "data": {"ext": "{}"},
            "android": {"priority": "HIGH", "ttl": "30s", "restricted_package_name": "com.x",
                        "notification": {"channel_id": "im", "sound": "default", "click_action": "OPEN"}}
        }));
        assert_eq!(violation(request), "ok");
    }

    #[test]
    fn camel_case_names_are_accepted_like_google_does() {
        let request = json!({"validateOnly": true, "message": {"token": "t",
            "android": {"restrictedPackageName": "com.x", "notification": {"channelId": "c"}}}});
        let checked = check_request(&request).ok().unwrap();
        assert!(checked.validate_only);
    }

    #[test]
    fn schema_violations_name_the_field() {
        assert_eq!(
            violation(message(
                json!({"token": "t", "android": {"priority": "URGENT"}})
            )),
            "message.android.priority | Invalid value at 'message.android.priority' (type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority), \"URGENT\""
        );
        assert_eq!(
            violation(message(json!({"token": "t", "android": {"colour": 1}}))),
            "message.android | Invalid JSON payload received. Unknown name \"colour\" at 'message.android': Cannot find field."
        );
        assert_eq!(
            violation(message(json!({"token": "t", "data": {"ext": "x", "n": 1}}))),
            "message.data[1].value | Invalid value at 'message.data[1].value' (TYPE_STRING), 1"
        );
        assert_eq!(
            violation(message(json!({"token": "t", "android": {"ttl": "1 day"}}))),
            "message.android.ttl | Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration), \"1 day\""
        );
        assert_eq!(
            violation(message(json!({"token": "t", "data": {"from": "x"}}))),
            "message.data | Invalid data payload key: from"
        );
    }

    #[test]
    fn exactly_one_target() {
        assert_eq!(
            violation(message(json!({"notification": {"body": "b"}}))),
            "message | Recipient of the message is not set."
        );
        assert_eq!(
            violation(message(json!({"token": "t", "topic": "news"}))),
            "message | Invalid value at 'message' (oneof), oneof field 'target' is already set. Cannot set 'topic'"
        );
        assert_eq!(violation(message(json!({"token": "a b"}))), "token");
    }

    #[test]
    fn payload_over_4096_bytes_is_refused() {
        let big = "x".repeat(MAX_PAYLOAD_BYTES);
        assert_eq!(
            violation(message(
                json!({"token": "t", "notification": {"body": big}})
            )),
            "too big"
        );
    }

    #[test]
    fn durations() {
        assert!(is_duration("0s"));
        assert!(is_duration("3.5s"));
        assert!(is_duration("2419200s"));
        assert!(!is_duration("2419201s"));
        assert!(!is_duration("-1s"));
        assert!(!is_duration("s"));
        assert!(!is_duration("10"));
    }

    #[test]
    fn shown_reads_notification_sound_and_data_ext() {
        let shown = Fcm::shown(&message(json!({
            "token": "t",
            "notification": {"title": "T", "body": "B"},
            "data": {"ext": "{\"a\":1}"},
            "android": {"notification": {"sound": "ring"}}
        })));
        assert_eq!(
            shown,
            Shown {
                title: Some("T".into()),
                body: Some("B".into()),
                badge: None,
                sound: Some("ring".into()),
                ext: Some("{\"a\":1}".into()),
            }
        );
    }
}
