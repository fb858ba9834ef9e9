//! The Huawei Push Kit personality (HMS Core, Android, REST API v1), under `/huawei`.
//!
//! - `POST /huawei/oauth2/v3/token`: the OAuth 2.0 client-credentials grant, form
//!   `grant_type=client_credentials&client_id=<AppId>&client_secret=<AppSecret>`, for the
//!   apps of the config's Huawei credentials. Answer `{"access_token","expires_in":3600,
//!   "token_type":"Bearer"}`; a refusal is 400 `{"error":<int>,"sub_error":<int>,
//!   "error_description"}` (1101/20186 wrong secret, 1101/20152 unknown client, 1102
//!   unsupported grant type) [M: Huawei's OAuth error numbers are from developer-forum
//!   posts, not re-checked].
//! - `POST /huawei/v1/<appId>/messages:send` with `Authorization: Bearer <token>` issued here
//!   for that app (`src/push/constant/urlfmt.go` of HMS-Core/hms-push-serverdemo-go: format
//!   `"%s/v1/%s/messages:send"`). Every answer is `{"code":"<8 digits>","msg","requestId"}`
//!   (https://developer.huawei.com/consumer/en/doc/HMSCore-References/https-send-api-0000001050986197):
//!   - 401 `80200001` missing, unknown or other-app token; 401 `80200003` expired token
//!     (its lifetime or `/sim/expire-auth`);
//!   - 400 `80100003` not a JSON `{"message":{…}}` body, 400 `80100001` a notification
//!     without title or body, a `notify_id` that is not a 32-bit integer, a bad `ttl`, a
//!     non-string `data`; 400 `80300010` 0 or more
//!     than 1000 tokens; 400 `80300008` over 4096 bytes without the token list;
//!   - 200 `80000000` success; 200 `80100000` partial success whose `msg` is the JSON
//!     string `{"success":N,"failure":M,"illegal_tokens":[…]}`; 200 `80300007` when every
//!     token is invalid (tokens starting `invalid-`, the simulator's invalid tokens). The HTTP
//!     status of `80300007` is 200 as third-party clients report it; Huawei's v3 response page maps parameter
//!     errors to 400, so real servers may differ [M].
//! - Injected faults answer with their status and `{"code":<reason>,"msg","requestId"}`,
//!   the reason being a Huawei code (`80600003`, `81000001`…), plus `Retry-After` if given.
//!   A fault for any token of a batch fails the whole request, as Huawei's errors do.
//!
//! Sources: Huawei's Push Kit server API
//! (<https://developer.huawei.com/consumer/en/doc/HMSCore-References/https-send-api-0000001050986197>); HMS-Core/hms-push-serverdemo-go `src/push/core/pushclient.go`
//! (refresh and resend once on `80200001`/`80200003`), `src/push/constant/constants.go`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Value, json};

use crate::control::{FaultReply, now_ms};
use crate::oem::{
    self, AccessTokens, BadGrant, BadTokens, Batch, Delivered, Refused, RequestIds, push_kit_answer,
};
use crate::{OemApp, Personality, Shown, Sim, SimError, SimSettings};

/// Message body limit, token list excluded (push-sendapi "Restriction").
const MAX_MESSAGE_BYTES: usize = 4096;
const MAX_TOKENS: usize = 1000;
const READ_LIMIT: usize = 1024 * 1024;

pub(crate) const SUCCESS: &str = "80000000";
pub(crate) const PARTIAL_SUCCESS: &str = "80100000";
pub(crate) const PARAMETER_ERROR: &str = "80100001";
pub(crate) const BAD_STRUCTURE: &str = "80100003";
pub(crate) const OAUTH_ERROR: &str = "80200001";
pub(crate) const OAUTH_EXPIRED: &str = "80200003";
pub(crate) const ALL_TOKENS_INVALID: &str = "80300007";
pub(crate) const TOO_LARGE: &str = "80300008";
pub(crate) const TOKEN_COUNT: &str = "80300010";

/// The Huawei personality: trusted apps and the access tokens issued to them.
pub(crate) struct Huawei {
    /// Secret by app id.
    apps: HashMap<String, String>,
    /// Huawei's tokens are opaque base64-looking strings ("CgB6e3x9…"); so are these.
    tokens: AccessTokens,
    requests: RequestIds,
}

impl Huawei {
    pub fn new(apps: &[OemApp], lifetime: Duration) -> Huawei {
        Huawei {
            apps: apps
                .iter()
                .map(|a| (a.app_id.clone(), a.app_secret.clone()))
                .collect(),
            tokens: AccessTokens::new("CgB6e3x9sim", lifetime),
            requests: RequestIds::default(),
        }
    }

    /// A request id of Huawei's shape: digits, time first.
    fn request_id(&self) -> String {
        self.requests.next(11)
    }
}

impl Personality for Huawei {
    const NAME: &'static str = "huawei";

    fn routes() -> Router<Arc<Sim>> {
        Router::new()
            .route("/huawei", any(handle))
            .route("/huawei/{*path}", any(handle))
    }

    fn fault_response(fault: &FaultReply) -> Response {
        let response = push_kit_answer(
            fault.status,
            &fault.reason,
            message_of(&fault.reason),
            &format!("{}{:011}", now_ms(), 0),
        );
        oem::with_retry_after(response, fault)
    }

    fn shown(payload: &Value) -> Shown {
        let message = &payload["message"];
        let notification = &message["android"]["notification"];
        let text = |a: &Value, b: &Value| a.as_str().or(b.as_str()).map(str::to_owned);
        let sound = if notification["default_sound"].as_bool() == Some(true) {
            Some("default".to_owned())
        } else {
            notification["sound"].as_str().map(str::to_owned)
        };
        // `message.data` is a string; impush puts `{"ext":"…"}` in it.
        let ext = message["data"]
            .as_str()
            .and_then(|data| serde_json::from_str::<Value>(data).ok())
            .and_then(|data| data["ext"].as_str().map(str::to_owned));
        Shown {
            title: text(&notification["title"], &message["notification"]["title"]),
            body: text(&notification["body"], &message["notification"]["body"]),
            badge: notification["badge"]["set_num"].as_u64(),
            sound,
            ext,
        }
    }

    fn from_settings(settings: &SimSettings) -> Result<Huawei, SimError> {
        Ok(Huawei::new(
            settings.apps_of("huawei"),
            settings.huawei_token_lifetime,
        ))
    }
}

/// The English `msg` Huawei gives each code (clients must not read it).
fn message_of(code: &str) -> &'static str {
    match code {
        SUCCESS => "Success",
        PARTIAL_SUCCESS => "Some tokens are right, others are illegal",
        PARAMETER_ERROR => "Some request parameters are incorrect",
        BAD_STRUCTURE => "Incorrect message structure",
        "80100004" => "The message expiration time is earlier than the current time",
        "80100013" => "The collapse_key message field is invalid",
        "80100016" => "The message contains sensitive information",
        OAUTH_ERROR => "Oauth authentication error",
        OAUTH_EXPIRED => "Oauth Token expired",
        "80300002" => "The current app does not have the permission to send messages",
        ALL_TOKENS_INVALID => "All the tokens are invalid",
        TOO_LARGE => "The message body size exceeds the default value",
        TOKEN_COUNT => "The number of tokens in the message body exceeds the default value",
        "80300011" => "No permission to send high-level notification messages",
        "80600003" => "Request OAuth service failed",
        "81000001" => "System inner error",
        _ => "Unknown error",
    }
}

fn answer(sim: &Sim, status: StatusCode, code: &str) -> Response {
    push_kit_answer(status, code, message_of(code), &sim.huawei.request_id())
}

async fn handle(State(sim): State<Arc<Sim>>, request: Request) -> Response {
    let path = request
        .uri()
        .path()
        .strip_prefix("/huawei")
        .unwrap_or_default()
        .to_owned();
    if path == "/oauth2/v3/token" && request.method() == Method::POST {
        return token(&sim, request).await;
    }
    let app_id = path
        .strip_prefix("/v1/")
        .and_then(|rest| rest.strip_suffix("/messages:send"))
        .filter(|p| !p.is_empty() && !p.contains('/'));
    match app_id {
        Some(app_id) if request.method() == Method::POST => {
            let app_id = app_id.to_owned();
            send(&sim, &app_id, request).await
        }
        _ => (StatusCode::NOT_FOUND, "Not Found").into_response(),
    }
}

fn oauth_error(error: u32, sub_error: u32, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "application/json;charset=UTF-8")],
        json!({ "error": error, "sub_error": sub_error, "error_description": description })
            .to_string(),
    )
        .into_response()
}

/// `POST /huawei/oauth2/v3/token`: the client-credentials grant.
async fn token(sim: &Sim, request: Request) -> Response {
    let grant = match oem::read_grant(request).await {
        Ok(grant) => grant,
        Err(BadGrant::Form) => return oauth_error(1102, 20001, "invalid request"),
        Err(BadGrant::Type) => return oauth_error(1102, 20003, "unsupported grant_type"),
    };
    let client_id = grant.client_id.unwrap_or_default();
    let Some(secret) = sim.huawei.apps.get(&client_id) else {
        return oauth_error(1101, 20152, "invalid client_id");
    };
    if grant.client_secret.as_deref() != Some(secret.as_str()) {
        return oauth_error(1101, 20186, "invalid client_secret");
    }
    let access_token = sim.huawei.tokens.issue(&client_id, sim.control.auth_epoch());
    (
        StatusCode::OK,
        [("content-type", "application/json;charset=UTF-8")],
        json!({
            "access_token": access_token,
            "expires_in": sim.huawei.tokens.lifetime.as_secs(),
            "token_type": "Bearer",
        })
        .to_string(),
    )
        .into_response()
}

/// `POST /huawei/v1/<appId>/messages:send`.
async fn send(sim: &Sim, app_id: &str, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let epoch = sim.control.auth_epoch();
    if let Err(refused) = (sim.huawei.tokens).check(&parts.headers, epoch, |owner| owner == app_id)
    {
        let code = match refused {
            Refused::Unknown => OAUTH_ERROR,
            Refused::Expired => OAUTH_EXPIRED,
        };
        tracing::debug!(code, "Huawei send refused");
        return answer(sim, StatusCode::UNAUTHORIZED, code);
    }
    let is_json = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    let Ok(body) = axum::body::to_bytes(body, READ_LIMIT).await else {
        return answer(sim, StatusCode::BAD_REQUEST, TOO_LARGE);
    };
    let Some(request) = is_json
        .then(|| serde_json::from_slice::<Value>(&body).ok())
        .flatten()
    else {
        return answer(sim, StatusCode::BAD_REQUEST, BAD_STRUCTURE);
    };
    let tokens = match check_request(&request) {
        Ok(tokens) => tokens,
        Err(code) => return answer(sim, StatusCode::BAD_REQUEST, code),
    };
    if request["validate_only"].as_bool() == Some(true) {
        return answer(sim, StatusCode::OK, SUCCESS);
    }
    for token in &tokens {
        if let Some(fault) = sim.control.strike(Huawei::NAME, token, &sim.shutdown).await {
            return Huawei::fault_response(&fault);
        }
    }
    let delivered = Delivered {
        vendor: Huawei::NAME,
        body: &body,
        headers: Vec::new(),
        shown: Huawei::shown,
    };
    let batch = Batch::deliver(sim, &tokens, delivered);
    if batch.legal.is_empty() {
        return answer(sim, StatusCode::OK, ALL_TOKENS_INVALID);
    }
    if batch.illegal.is_empty() {
        return answer(sim, StatusCode::OK, SUCCESS);
    }
    push_kit_answer(
        StatusCode::OK,
        PARTIAL_SUCCESS,
        &batch.partial_success_msg(),
        &sim.huawei.request_id(),
    )
}

/// Checks a send body the way Push Kit does; the tokens, or the code to refuse with.
fn check_request(request: &Value) -> Result<Vec<String>, &'static str> {
    let message = request
        .get("message")
        .filter(|m| m.is_object())
        .ok_or(BAD_STRUCTURE)?;
    let tokens = oem::token_list(message.get("token"), MAX_TOKENS).map_err(|bad| match bad {
        BadTokens::NotStrings => PARAMETER_ERROR,
        BadTokens::Count => TOKEN_COUNT,
    })?;
    if message.get("data").is_some_and(|d| !d.is_string()) {
        return Err(PARAMETER_ERROR);
    }
    let android = message.get("android");
    if let Some(android) = android {
        if !android.is_object() {
            return Err(BAD_STRUCTURE);
        }
        if android.get("ttl").is_some_and(|ttl| !oem::is_ttl(ttl)) {
            return Err(PARAMETER_ERROR);
        }
        if let Some(notification) = android.get("notification") {
            let text = |name: &str| {
                notification
                    .get(name)
                    .or_else(|| message.get("notification").and_then(|n| n.get(name)))
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty())
            };
            // The demo's verifier (`messaging_hm_verify.go`) needs both for a notification.
            if !text("title") || !text("body") {
                return Err(PARAMETER_ERROR);
            }
            // `notify_id`: an Integer.
            let notify_id_ok = notification
                .get("notify_id")
                .is_none_or(|id| id.as_i64().and_then(|id| i32::try_from(id).ok()).is_some());
            if !notify_id_ok {
                return Err(PARAMETER_ERROR);
            }
        }
    }
    let mut without_tokens = request.clone();
    if let Some(m) = without_tokens
        .get_mut("message")
        .and_then(Value::as_object_mut)
    {
        m.remove("token");
    }
    if without_tokens.to_string().len() > MAX_MESSAGE_BYTES {
        return Err(TOO_LARGE);
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(message: Value) -> Value {
        json!({ "validate_only": false, "message": message })
    }

    #[test]
    fn what_impush_sends_passes() {
        let body = request(json!({
            "data": "{\"ext\":\"x\"}",
            "android": {"collapse_key": -1, "category": "IM", "ttl": "30s",
                "notification": {"title": "T", "body": "B", "click_action": {"type": 3}, "default_sound": true}},
            "token": ["a", "invalid-b"]
        }));
        assert_eq!(
            check_request(&body),
            Ok(vec!["a".into(), "invalid-b".into()])
        );
    }

    #[test]
    fn malformed_requests_get_huawei_codes() {
        let notification = json!({"title": "T", "body": "B"});
        assert_eq!(check_request(&json!({})), Err(BAD_STRUCTURE));
        assert_eq!(
            check_request(&request(json!({"token": []}))),
            Err(TOKEN_COUNT)
        );
        let many: Vec<String> = (0..1001).map(|i| format!("t{i}")).collect();
        assert_eq!(
            check_request(&request(json!({"token": many}))),
            Err(TOKEN_COUNT)
        );
        assert_eq!(
            check_request(&request(
                json!({"token": ["a"], "android": {"notification": {"title": "T"}}})
            )),
            Err(PARAMETER_ERROR)
        );
        assert_eq!(
            check_request(&request(
                json!({"token": ["a"], "android": {"ttl": "1 day", "notification": notification}})
            )),
            Err(PARAMETER_ERROR)
        );
        assert_eq!(
            check_request(&request(json!({"token": ["a"], "data": {"ext": "x"}}))),
            Err(PARAMETER_ERROR)
        );
        for notify_id in [json!("7"), json!(1.5), json!(1_i64 << 40)] {
            let notification = json!({"title": "T", "body": "B", "notify_id": notify_id});
            assert_eq!(
                check_request(&request(
                    json!({"token": ["a"], "android": {"notification": notification}})
                )),
                Err(PARAMETER_ERROR),
                "{notify_id}"
            );
        }
        let big = "x".repeat(MAX_MESSAGE_BYTES);
        assert_eq!(
            check_request(&request(json!({"token": ["a"], "data": big}))),
            Err(TOO_LARGE)
        );
    }

    #[test]
    fn shown_reads_the_android_notification_and_the_ext_in_data() {
        let shown = Huawei::shown(&request(json!({
            "data": "{\"ext\":\"{\\\"a\\\":1}\"}",
            "android": {"notification": {"title": "T", "body": "B", "default_sound": true}},
            "token": ["a"]
        })));
        assert_eq!(
            shown,
            Shown {
                title: Some("T".into()),
                body: Some("B".into()),
                badge: None,
                sound: Some("default".into()),
                ext: Some("{\"a\":1}".into()),
            }
        );
    }
}
