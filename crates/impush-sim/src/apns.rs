//! The Apple APNs personality: the HTTP/2 provider API, `POST /apns/3/device/<token>`.
//!
//! Checked like Apple (developer.apple.com "Sending notification requests to APNs" and
//! "Handling notification responses from APNs",
//! <https://developer.apple.com/documentation/usernotifications/sending-notification-requests-to-apns>,
//! <https://developer.apple.com/documentation/usernotifications/handling-notification-responses-from-apns>):
//! - HTTP/2 only: APNs has no HTTP/1.1, so a client that would not speak HTTP/2 to Apple is
//!   refused here too (505, not an Apple answer, since Apple would not answer at all);
//! - `POST` only (405 `MethodNotAllowed`), path `/3/device/<token>` (404 `BadPath`, 400
//!   `MissingDeviceToken`), no repeated `apns-*` or `authorization` header (400
//!   `DuplicateHeaders`);
//! - provider token: `authorization: bearer <JWT>`, ES256, header `kid` naming a trusted key,
//!   claim `iss` its team and `iat` at most an hour old (403 `MissingProviderToken`,
//!   `InvalidProviderToken`, `ExpiredProviderToken`); `/sim/expire-auth` expires every token
//!   seen or made before it;
//! - headers: `apns-id` a UUID (400 `BadMessageId`), `apns-topic` present (400
//!   `MissingTopic`), `apns-push-type` one of Apple's (400 `InvalidPushType`), `apns-priority`
//!   10, 5 or 1 (400 `BadPriority`), `apns-expiration` epoch seconds (400
//!   `BadExpirationDate`), `apns-collapse-id` at most 64 bytes (400 `BadCollapseId`);
//! - token hex (400 `BadDeviceToken`), except the simulator's `invalid-…` tokens, which are
//!   unregistered: 410 `{"reason":"Unregistered","timestamp":<ms>}`;
//! - body: a non-empty JSON object (400 `PayloadEmpty`) of at most 4096 bytes, 5120 for VoIP
//!   (413 `PayloadTooLarge`).
//!
//! Success is 200 with an empty body; every answer carries `apns-id` (the request's, or a new
//! UUID), and errors the body `{"reason":"…"}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::control::{FaultReply, Record, now_ms};
use crate::{ApnsKey, Personality, Shown, Sim, SimError, SimSettings};

pub(crate) const MAX_PAYLOAD_BYTES: usize = 4096;
pub(crate) const MAX_VOIP_PAYLOAD_BYTES: usize = 5120;
/// A provider token older than this is expired (Apple: "no less than once every 60 minutes").
const PROVIDER_TOKEN_LIFETIME_S: u64 = 3600;
/// How far in the future an `iat` may be before the token is refused: clock skew.
const IAT_SKEW_S: u64 = 60;
/// Bodies are read up to this; anything longer is too large whatever the push type.
const READ_LIMIT: usize = 64 * 1024;
const PUSH_TYPES: &[&str] = &[
    "alert",
    "background",
    "location",
    "voip",
    "complication",
    "fileprovider",
    "mdm",
    "liveactivity",
    "pushtotalk",
    "widgets",
];
/// The request headers a delivery record keeps.
const RECORDED_HEADERS: &[&str] = &[
    "apns-topic",
    "apns-push-type",
    "apns-priority",
    "apns-expiration",
    "apns-collapse-id",
];
const SINGLE_HEADERS: &[&str] = &[
    "authorization",
    "apns-id",
    "apns-topic",
    "apns-push-type",
    "apns-priority",
    "apns-expiration",
    "apns-collapse-id",
];

/// The APNs personality: the provider keys it trusts and the tokens it has seen.
pub(crate) struct Apns {
    keys: HashMap<String, TrustedKey>,
    seen: Mutex<HashMap<String, SeenToken>>,
}

struct TrustedKey {
    team_id: String,
    key: DecodingKey,
}

/// A provider token already verified: its signature is not checked again.
#[derive(Clone, Copy)]
struct SeenToken {
    iat: u64,
    epoch: u64,
}

/// An answer in Apple's error shape.
struct Rejection {
    status: StatusCode,
    reason: &'static str,
}

fn reject(status: StatusCode, reason: &'static str) -> Rejection {
    Rejection { status, reason }
}

impl Apns {
    pub fn new(keys: &[ApnsKey]) -> Result<Apns, SimError> {
        let keys = keys
            .iter()
            .map(|k| {
                let key = DecodingKey::from_ec_pem(k.public_pem.as_bytes()).map_err(|e| {
                    SimError::BadKey {
                        owner: format!("APNs key {} of team {}", k.key_id, k.team_id),
                        message: format!("not an EC public key PEM: {e}"),
                    }
                })?;
                Ok((
                    k.key_id.clone(),
                    TrustedKey {
                        team_id: k.team_id.clone(),
                        key,
                    },
                ))
            })
            .collect::<Result<_, SimError>>()?;
        Ok(Apns {
            keys,
            seen: Mutex::new(HashMap::new()),
        })
    }

    /// Checks the `authorization` header the way APNs checks provider tokens.
    fn authenticate(&self, headers: &HeaderMap, sim: &Sim) -> Result<(), Rejection> {
        let invalid = || reject(StatusCode::FORBIDDEN, "InvalidProviderToken");
        let expired = || reject(StatusCode::FORBIDDEN, "ExpiredProviderToken");
        let missing = || reject(StatusCode::FORBIDDEN, "MissingProviderToken");

        let value = headers.get("authorization").ok_or_else(missing)?;
        let value = value.to_str().map_err(|_| invalid())?.trim();
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ if value.eq_ignore_ascii_case("bearer") || value.is_empty() => "",
            _ => return Err(invalid()),
        };
        if token.is_empty() {
            return Err(missing());
        }

        let epoch = sim.control.auth_epoch();
        let cached = self.seen_lock().get(token).copied();
        let seen = match cached {
            Some(seen) => seen,
            None => {
                let iat = self.verify(token).ok_or_else(invalid)?;
                // Made before the last expire-auth but never used: expired as well.
                if iat < sim.control.auth_expired_before_s() {
                    return Err(expired());
                }
                let seen = SeenToken { iat, epoch };
                self.remember(token, seen);
                seen
            }
        };
        let now_s = now_ms() / 1000;
        if seen.iat > now_s + IAT_SKEW_S {
            return Err(invalid());
        }
        if seen.epoch < epoch || now_s.saturating_sub(seen.iat) > PROVIDER_TOKEN_LIFETIME_S {
            return Err(expired());
        }
        Ok(())
    }

    /// The token's `iat` when its signature, key id and team check out.
    fn verify(&self, token: &str) -> Option<u64> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.alg != Algorithm::ES256 {
            return None;
        }
        let trusted = self.keys.get(header.kid.as_deref()?)?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_aud = false;
        let claims = jsonwebtoken::decode::<Value>(token, &trusted.key, &validation)
            .ok()?
            .claims;
        if claims.get("iss").and_then(Value::as_str) != Some(trusted.team_id.as_str()) {
            return None;
        }
        claims.get("iat").and_then(Value::as_u64)
    }

    fn seen_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SeenToken>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn remember(&self, token: &str, seen: SeenToken) {
        let mut map = self.seen_lock();
        if map.len() >= 4096 {
            // Tokens past their hour are refused on age alone; forget them.
            let oldest = (now_ms() / 1000).saturating_sub(PROVIDER_TOKEN_LIFETIME_S + IAT_SKEW_S);
            map.retain(|_, s| s.iat >= oldest);
        }
        map.insert(token.to_owned(), seen);
    }
}

impl Personality for Apns {
    const NAME: &'static str = "apns";

    fn routes() -> Router<Arc<Sim>> {
        Router::new()
            .route("/apns", any(handle))
            .route("/apns/{*path}", any(handle))
    }

    fn fault_response(fault: &FaultReply) -> Response {
        let mut body = json!({ "reason": fault.reason });
        if fault.status == StatusCode::GONE {
            body["timestamp"] = now_ms().into();
        }
        let mut response = answer(fault.status, &new_apns_id(), Some(body));
        if let Some((name, value)) = fault.retry_after()
            && let Ok(value) = HeaderValue::from_str(&value)
        {
            response.headers_mut().insert(name, value);
        }
        response
    }

    fn shown(payload: &Value) -> Shown {
        let aps = &payload["aps"];
        let (title, body) = match &aps["alert"] {
            Value::String(body) => (None, Some(body.clone())),
            alert => (text(&alert["title"]), text(&alert["body"])),
        };
        let sound = match &aps["sound"] {
            Value::Object(critical) => text(&critical["name"]),
            sound => text(sound),
        };
        Shown {
            title,
            body,
            badge: aps["badge"].as_u64(),
            sound,
            ext: match &payload["ext"] {
                Value::Null => None,
                Value::String(ext) => Some(ext.clone()),
                other => Some(other.to_string()),
            },
        }
    }

    fn from_settings(settings: &SimSettings) -> Result<Apns, SimError> {
        Apns::new(&settings.apns_keys)
    }
}

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

fn new_apns_id() -> String {
    Uuid::new_v4().hyphenated().to_string()
}

/// An APNs answer: the status, `apns-id`, and for errors the JSON body.
fn answer(status: StatusCode, apns_id: &str, body: Option<Value>) -> Response {
    let mut response = match body {
        Some(body) => (
            status,
            [("content-type", "application/json")],
            body.to_string(),
        )
            .into_response(),
        None => (status, Body::empty()).into_response(),
    };
    if let Ok(value) = HeaderValue::from_str(apns_id) {
        response.headers_mut().insert("apns-id", value);
    }
    response
}

fn error(rejection: &Rejection, apns_id: &str) -> Response {
    answer(
        rejection.status,
        apns_id,
        Some(json!({ "reason": rejection.reason })),
    )
}

/// A request that passed every check, ready to be answered.
struct Push {
    token: String,
    payload: String,
    headers: Vec<(&'static str, String)>,
}

async fn handle(State(sim): State<Arc<Sim>>, request: Request) -> Response {
    if request.version() != Version::HTTP_2 {
        return (
            StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            "APNs speaks HTTP/2 only (use HTTP/2 prior knowledge on this plain-text port)\n",
        )
            .into_response();
    }
    let requested_id = request
        .headers()
        .get("apns-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Uuid::try_parse(v).ok())
        .map(|id| id.hyphenated().to_string());
    let apns_id = requested_id.clone().unwrap_or_else(new_apns_id);
    let push = match check(&sim, request, requested_id.is_some()).await {
        Ok(push) => push,
        Err(rejection) => {
            tracing::debug!(reason = rejection.reason, "APNs request refused");
            return error(&rejection, &apns_id);
        }
    };

    if let Some(fault) = sim
        .control
        .strike(Apns::NAME, &push.token, &sim.shutdown)
        .await
    {
        let mut response = Apns::fault_response(&fault);
        if let Ok(value) = HeaderValue::from_str(&apns_id) {
            response.headers_mut().insert("apns-id", value);
        }
        return response;
    }
    if push.token.starts_with("invalid-") {
        return answer(
            StatusCode::GONE,
            &apns_id,
            Some(json!({ "reason": "Unregistered", "timestamp": now_ms() })),
        );
    }
    sim.control.record(Record {
        vendor: Apns::NAME,
        token: push.token.into(),
        payload: push.payload.into(),
        headers: push.headers,
        received_at_ms: now_ms(),
        shown: Apns::shown,
    });
    answer(StatusCode::OK, &apns_id, None)
}

/// Every check APNs makes of a request, in the order the module doc lists them.
async fn check(sim: &Sim, request: Request, valid_apns_id: bool) -> Result<Push, Rejection> {
    let (parts, body) = request.into_parts();
    if parts.method != Method::POST {
        return Err(reject(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"));
    }
    let path = parts.uri.path().strip_prefix("/apns").unwrap_or_default();
    let token = match path.strip_prefix("/3/device") {
        Some("" | "/") => return Err(reject(StatusCode::BAD_REQUEST, "MissingDeviceToken")),
        Some(rest) => match rest.strip_prefix('/') {
            Some(token) if !token.contains('/') => token.to_owned(),
            _ => return Err(reject(StatusCode::NOT_FOUND, "BadPath")),
        },
        None => return Err(reject(StatusCode::NOT_FOUND, "BadPath")),
    };
    let headers = &parts.headers;
    if SINGLE_HEADERS
        .iter()
        .any(|name| headers.get_all(*name).iter().count() > 1)
    {
        return Err(reject(StatusCode::BAD_REQUEST, "DuplicateHeaders"));
    }

    sim.apns.authenticate(headers, sim)?;

    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"));
    if header("apns-id").is_some() && !valid_apns_id {
        return Err(reject(StatusCode::BAD_REQUEST, "BadMessageId"));
    }
    if header("apns-topic").is_none_or(str::is_empty) {
        return Err(reject(StatusCode::BAD_REQUEST, "MissingTopic"));
    }
    let push_type = header("apns-push-type");
    if push_type.is_some_and(|t| !PUSH_TYPES.contains(&t)) {
        return Err(reject(StatusCode::BAD_REQUEST, "InvalidPushType"));
    }
    if header("apns-priority").is_some_and(|p| !matches!(p, "10" | "5" | "1")) {
        return Err(reject(StatusCode::BAD_REQUEST, "BadPriority"));
    }
    if header("apns-expiration").is_some_and(|e| e.parse::<u64>().is_err()) {
        return Err(reject(StatusCode::BAD_REQUEST, "BadExpirationDate"));
    }
    if header("apns-collapse-id").is_some_and(|c| c.len() > 64) {
        return Err(reject(StatusCode::BAD_REQUEST, "BadCollapseId"));
    }
    let hex =
        !token.is_empty() && token.len() <= 200 && token.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex && !token.starts_with("invalid-") {
        return Err(reject(StatusCode::BAD_REQUEST, "BadDeviceToken"));
    }

    let too_large = || reject(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge");
    let body = axum::body::to_bytes(body, READ_LIMIT)
        .await
        .map_err(|_| too_large())?;
    let limit = if push_type == Some("voip") {
        MAX_VOIP_PAYLOAD_BYTES
    } else {
        MAX_PAYLOAD_BYTES
    };
    if body.len() > limit {
        return Err(too_large());
    }
    let payload = String::from_utf8(body.to_vec())
        .map_err(|_| reject(StatusCode::BAD_REQUEST, "PayloadEmpty"))?;
    if payload.trim().is_empty() {
        return Err(reject(StatusCode::BAD_REQUEST, "PayloadEmpty"));
    }
    // Apple documents no reason for a body that is not a JSON dictionary; PayloadEmpty is
    // the nearest of its own.
    if !serde_json::from_str::<Value>(&payload).is_ok_and(|v| v.is_object()) {
        return Err(reject(StatusCode::BAD_REQUEST, "PayloadEmpty"));
    }

    let recorded = RECORDED_HEADERS
        .iter()
        .filter_map(|name| header(name).map(|value| (*name, value.to_owned())))
        .collect();
    Ok(Push {
        token,
        payload,
        headers: recorded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_reads_alert_dictionary_badge_sound_and_ext() {
        let shown = Apns::shown(&json!({
            "aps": {"alert": {"title": "T", "body": "B"}, "badge": 3, "sound": "default"},
            "ext": "{\"a\":1}"
        }));
        assert_eq!(
            shown,
            Shown {
                title: Some("T".into()),
                body: Some("B".into()),
                badge: Some(3),
                sound: Some("default".into()),
                ext: Some("{\"a\":1}".into()),
            }
        );
    }

    #[test]
    fn shown_reads_an_alert_string_as_the_body_and_a_critical_sound_by_name() {
        let shown = Apns::shown(&json!({
            "aps": {"alert": "just text", "sound": {"critical": 1, "name": "bell.caf"}}
        }));
        assert_eq!(shown.title, None);
        assert_eq!(shown.body.as_deref(), Some("just text"));
        assert_eq!(shown.sound.as_deref(), Some("bell.caf"));
        assert_eq!(shown.badge, None);
        assert_eq!(shown.ext, None);
    }
}
