//! The Honor Push personality (server API v1, "downlink message"), under `/honor`.
//!
//! - `POST /honor/auth/token` (also under Honor's long Keycloak path
//!   `/honor/auth/realms/developer/protocol/openid-connect/token`): the OAuth 2.0
//!   client-credentials grant, form `grant_type=client_credentials&client_id&client_secret`,
//!   for the OAuth clients of the config's Honor credentials (`app_key` the client ID,
//!   `app_secret` its secret). Answer
//!   `{"access_token","expires_in","token_type":"Bearer"}`; a refusal is Keycloak's
//!   `{"error","error_description"}`: 400 `unsupported_grant_type`, 401 `invalid_client`.
//! - `POST /honor/api/v1/<appId>/sendMessage` with `Authorization: Bearer <token>` issued
//!   here to a client of that app, a `timestamp` header (ms) and a JSON body
//!   `{"android":{"notification":{…}},"data","token":[…]}`, or a data ("透传") message
//!   `{"data","token":[…]}` with no `android.notification` (`android` may carry a `ttl`):
//!   - 401 `{"code":80200001}` missing, unknown or other-app token; 401 `{"code":80200003}`
//!     expired token (its lifetime, or `/sim/expire-auth`);
//!   - 400 `80100001` no `timestamp`, a notification without title or body, a non-string
//!     `data`, a bad `ttl`; 400 `80100003` not a JSON object; 400 `80300010` 0 or more than
//!     1000 tokens; 400 `80300008` over 4096 bytes without the token list;
//!   - 200 `{"code":200,"message":"success","data":{"sendResult","requestId","failTokens":[],
//!     "expireTokens":[…]}}`: tokens starting `invalid-` are listed in `expireTokens`
//!     (Honor's "token expired / unregistered" list), the others accepted, one delivery
//!     record each.
//! - Injected faults answer with their status and `{"code":<reason>,"message"}`, a numeric
//!   reason as a number, plus `Retry-After` if given; a fault on any token of a batch fails
//!   the whole request.
//!
//! Sources: Honor's downlink-message reference,
//! https://developer.honor.com/cn/docs/11002/reference/downlink-message, and guide, as
//! Honor republished it at https://my.oschina.net/u/5873522/blog/10140231 (token request,
//! URL, headers, body). [unverified]: the answer's `data` lists and the error codes, which
//! follow Huawei Push Kit v1 (Honor's API descends from it); the Keycloak error shape of
//! the token endpoint.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Value, json};

use crate::control::FaultReply;
use crate::oem::{self, AccessTokens, BadGrant, BadTokens, Batch, Delivered, Refused, RequestIds};
use crate::{OemApp, Personality, Shown, Sim, SimError, SimSettings};

const MAX_MESSAGE_BYTES: usize = 4096;
const MAX_TOKENS: usize = 1000;
const READ_LIMIT: usize = 1024 * 1024;
/// How long the access tokens issued here live (Honor's `expires_in`).
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

const PARAMETER_ERROR: u32 = 80_100_001;
const BAD_STRUCTURE: u32 = 80_100_003;
const AUTH_ERROR: u32 = 80_200_001;
const AUTH_EXPIRED: u32 = 80_200_003;
const TOO_LARGE: u32 = 80_300_008;
const TOKEN_COUNT: u32 = 80_300_010;

/// The Honor personality: trusted OAuth clients and the access tokens issued to them.
pub(crate) struct Honor {
    /// Secret and the app ids it may send for, by client id.
    clients: HashMap<String, (String, HashSet<String>)>,
    tokens: AccessTokens,
    requests: RequestIds,
}

impl Honor {
    /// The OAuth clients of `apps`: an Honor app's `app_key` is its client ID.
    pub fn new(apps: &[OemApp], lifetime: Duration) -> Honor {
        let mut clients: HashMap<String, (String, HashSet<String>)> = HashMap::new();
        for app in apps {
            clients
                .entry(app.app_key.clone())
                .or_insert_with(|| (app.app_secret.clone(), HashSet::new()))
                .1
                .insert(app.app_id.clone());
        }
        Honor {
            clients,
            tokens: AccessTokens::new("honor-sim.", lifetime),
            requests: RequestIds::default(),
        }
    }
}

impl Personality for Honor {
    const NAME: &'static str = "honor";

    fn routes() -> Router<Arc<Sim>> {
        Router::new()
            .route("/honor", any(handle))
            .route("/honor/{*path}", any(handle))
    }

    fn fault_response(fault: &FaultReply) -> Response {
        let code = fault
            .reason
            .parse::<u64>()
            .map_or_else(|_| json!(fault.reason), |n| json!(n));
        let response = honor_answer(
            fault.status,
            json!({ "code": code, "message": "injected fault" }),
        );
        oem::with_retry_after(response, fault)
    }

    fn shown(payload: &Value) -> Shown {
        let notification = &payload["android"]["notification"];
        let text = |name: &str| notification[name].as_str().map(str::to_owned);
        let ext = payload["data"]
            .as_str()
            .and_then(|data| serde_json::from_str::<Value>(data).ok())
            .and_then(|data| data["ext"].as_str().map(str::to_owned));
        Shown {
            title: text("title"),
            body: text("body"),
            badge: notification["badge"]["setNum"].as_u64(),
            sound: None,
            ext,
        }
    }

    fn from_settings(settings: &SimSettings) -> Result<Honor, SimError> {
        Ok(Honor::new(settings.apps_of(Honor::NAME), TOKEN_LIFETIME))
    }
}

fn honor_answer(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/json;charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    honor_answer(status, json!({ "code": code, "message": message }))
}

async fn handle(State(sim): State<Arc<Sim>>, request: Request) -> Response {
    let path = request
        .uri()
        .path()
        .strip_prefix("/honor")
        .unwrap_or_default()
        .to_owned();
    let is_post = request.method() == Method::POST;
    if is_post
        && (path == "/auth/token" || path == "/auth/realms/developer/protocol/openid-connect/token")
    {
        return token(&sim, request).await;
    }
    let app_id = path
        .strip_prefix("/api/v1/")
        .and_then(|rest| rest.strip_suffix("/sendMessage"))
        .filter(|p| !p.is_empty() && !p.contains('/'));
    match app_id {
        Some(app_id) if is_post => {
            let app_id = app_id.to_owned();
            send(&sim, &app_id, request).await
        }
        _ => (StatusCode::NOT_FOUND, "Not Found").into_response(),
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    honor_answer(
        status,
        json!({ "error": error, "error_description": description }),
    )
}

/// `POST /honor/auth/token`: the client-credentials grant.
async fn token(sim: &Sim, request: Request) -> Response {
    let grant = match oem::read_grant(request).await {
        Ok(grant) => grant,
        Err(BadGrant::Form) => {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "bad form");
        }
        Err(BadGrant::Type) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Unsupported grant_type",
            );
        }
    };
    let client_id = grant.client_id.unwrap_or_default();
    let secret_ok = sim
        .honor
        .clients
        .get(&client_id)
        .is_some_and(|(secret, _)| grant.client_secret.as_deref() == Some(secret.as_str()));
    if !secret_ok {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Invalid client or Invalid client credentials",
        );
    }
    let access_token = sim.honor.tokens.issue(&client_id, sim.control.auth_epoch());
    honor_answer(
        StatusCode::OK,
        json!({
            "access_token": access_token,
            "expires_in": sim.honor.tokens.lifetime.as_secs(),
            "token_type": "Bearer",
        }),
    )
}

/// `POST /honor/api/v1/<appId>/sendMessage`.
async fn send(sim: &Sim, app_id: &str, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let epoch = sim.control.auth_epoch();
    let may_send = |client_id: &str| {
        (sim.honor.clients.get(client_id)).is_some_and(|(_, apps)| apps.contains(app_id))
    };
    if let Err(refused) = sim.honor.tokens.check(&parts.headers, epoch, may_send) {
        let (code, message) = match refused {
            Refused::Unknown => (AUTH_ERROR, "authentication failed"),
            Refused::Expired => (AUTH_EXPIRED, "access token expired"),
        };
        tracing::debug!(code, "Honor send refused");
        return error(StatusCode::UNAUTHORIZED, code, message);
    }
    let has_timestamp = parts
        .headers
        .get("timestamp")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
    if !has_timestamp {
        return error(
            StatusCode::BAD_REQUEST,
            PARAMETER_ERROR,
            "timestamp missing",
        );
    }
    let Ok(body) = axum::body::to_bytes(body, READ_LIMIT).await else {
        return error(StatusCode::BAD_REQUEST, TOO_LARGE, "message too large");
    };
    let Some(request) = serde_json::from_slice::<Value>(&body)
        .ok()
        .filter(Value::is_object)
    else {
        return error(StatusCode::BAD_REQUEST, BAD_STRUCTURE, "illegal message");
    };
    let tokens = match check_request(&request) {
        Ok(tokens) => tokens,
        Err(code) => return error(StatusCode::BAD_REQUEST, code, "illegal message"),
    };
    for token in &tokens {
        if let Some(fault) = sim.control.strike(Honor::NAME, token, &sim.shutdown).await {
            return Honor::fault_response(&fault);
        }
    }
    let delivered = Delivered {
        vendor: Honor::NAME,
        body: &body,
        headers: Vec::new(),
        shown: Honor::shown,
    };
    let batch = Batch::deliver(sim, &tokens, delivered);
    honor_answer(
        StatusCode::OK,
        json!({
            "code": 200,
            "message": "success",
            "data": {
                "sendResult": !batch.legal.is_empty(),
                "requestId": sim.honor.requests.next(8),
                "failTokens": [],
                "expireTokens": batch.illegal,
            }
        }),
    )
}

/// Checks a send body; the tokens, or the code to refuse with.
fn check_request(request: &Value) -> Result<Vec<String>, u32> {
    let tokens = oem::token_list(request.get("token"), MAX_TOKENS).map_err(|bad| match bad {
        BadTokens::NotStrings => PARAMETER_ERROR,
        BadTokens::Count => TOKEN_COUNT,
    })?;
    if request.get("data").is_some_and(|d| !d.is_string()) {
        return Err(PARAMETER_ERROR);
    }
    if let Some(android) = request.get("android") {
        if !android.is_object() {
            return Err(BAD_STRUCTURE);
        }
        if android.get("ttl").is_some_and(|ttl| !oem::is_ttl(ttl)) {
            return Err(PARAMETER_ERROR);
        }
        if let Some(notification) = android.get("notification")
            && (!oem::has_text(notification, "title") || !oem::has_text(notification, "body"))
        {
            return Err(PARAMETER_ERROR);
        }
    } else if request.get("data").is_none() {
        // Neither a notification nor a data message.
        return Err(BAD_STRUCTURE);
    }
    let mut without_tokens = request.clone();
    if let Some(object) = without_tokens.as_object_mut() {
        object.remove("token");
    }
    if without_tokens.to_string().len() > MAX_MESSAGE_BYTES {
        return Err(TOO_LARGE);
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_an_honor_client_sends_passes() {
        let body = json!({
            "data": "{\"ext\":\"x\"}",
            "android": {"ttl": "30s", "notification": {"title": "T", "body": "B",
                "clickAction": {"type": 3}, "importance": "NORMAL"}},
            "token": ["a", "invalid-b"]
        });
        assert_eq!(
            check_request(&body),
            Ok(vec!["a".into(), "invalid-b".into()])
        );
    }

    #[test]
    fn malformed_requests_get_honor_codes() {
        assert_eq!(check_request(&json!({"token": []})), Err(TOKEN_COUNT));
        let many: Vec<String> = (0..1001).map(|i| format!("t{i}")).collect();
        assert_eq!(check_request(&json!({"token": many})), Err(TOKEN_COUNT));
        assert_eq!(
            check_request(&json!({"token": ["a"], "android": {"notification": {"title": "T"}}})),
            Err(PARAMETER_ERROR)
        );
        assert_eq!(
            check_request(&json!({"token": ["a"], "data": {"ext": "x"}})),
            Err(PARAMETER_ERROR)
        );
        assert_eq!(
            check_request(&json!({"token": ["a"], "android": {"ttl": 30}})),
            Err(PARAMETER_ERROR)
        );
        assert_eq!(check_request(&json!({"token": ["a"]})), Err(BAD_STRUCTURE));
        let big = "x".repeat(MAX_MESSAGE_BYTES);
        assert_eq!(
            check_request(&json!({"token": ["a"], "data": big})),
            Err(TOO_LARGE)
        );
    }

    #[test]
    fn shown_reads_the_android_notification_and_the_ext_in_data() {
        let shown = Honor::shown(&json!({
            "data": "{\"ext\":\"{\\\"a\\\":1}\"}",
            "android": {"notification": {"title": "T", "body": "B"}},
            "token": ["a"]
        }));
        assert_eq!(
            shown,
            Shown {
                title: Some("T".into()),
                body: Some("B".into()),
                badge: None,
                sound: None,
                ext: Some("{\"a\":1}".into()),
            }
        );
    }
}
