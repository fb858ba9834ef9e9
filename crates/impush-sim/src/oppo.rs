//! The OPPO PUSH (HeyTap) personality: the server API v1 auth handshake and the notification
//! unicast and unicast_batch sends, under `/oppo`.
//!
//! - `POST /oppo/server/v1/auth`, form `app_key`, `timestamp` (ms), `sign` =
//!   lowercase hex `sha256(app_key + timestamp + master_secret)`. Success:
//!   `{"code":0,"message":"Success","data":{"auth_token","create_time"}}`; the token lives 24 h.
//!   Missing `app_key` 15, unknown 14, missing `sign` 17, wrong 16, missing `timestamp` 18,
//!   unreadable or more than 10 minutes off 19 (the skew window is [M]: OPPO documents the
//!   code, not the window).
//! - `POST /oppo/server/v1/message/notification/unicast`, form `auth_token` and
//!   `message=<JSON {target_type:2, target_value, notification{title, content, …}}>`:
//!   `{"code":0,"message":"Success","data":{"messageId"}}`.
//! - `POST /oppo/server/v1/message/notification/unicast_batch`, form `auth_token` and
//!   `messages=<JSON array of 1..=1000 such objects>`: `{"code":0,"message":"Success",
//!   "data":[{"messageId","registrationId"} | {"registrationId","errorCode","errorMessage"}]}`,
//!   one item per message in order: a bad token fails its own item, not the batch.
//! - The auth token is read from the form (OPPO's doc) or an `auth_token` header (what some
//!   production SDKs send): missing 29, unknown or expired (24 h, or `/sim/expire-auth`) 11.
//!   A body that is not a form has no fields, so it is 29 like at OPPO. Missing `message(s)`
//!   or notification `title`/`content`/`target_value` 40; bad JSON, `target_type` not 2 or 5,
//!   or more than 1000 messages 41.
//! - `notification.app_message_id`, when present, must be a non-empty string (41 otherwise);
//!   a message whose `app_message_id` was already pushed to the same registration id is
//!   answered as a success and not delivered again ("相同app_message_id的消息只会对同一个目标
//!   推送一次", OPPO's notification field table mirrored at
//!   https://www.yimenapp.com/kb-yimen/11080/). `DELETE /sim/deliveries` forgets them.
//! - Tokens starting `invalid-` get code 10000 "Invalid Registration_id" (OPPO's answer to an
//!   unregistered token):
//!   the whole answer of a unicast, the token's item of a batch.
//! - Faults: `reason` is OPPO's code (`"33"`, `"-2"`, `"10000"`…). Every error of OPPO comes
//!   with HTTP 200 in production; a fault answers with its own HTTP status and
//!   `{"code":<reason>,"message":…}`, so clients must read the code, not the status. In a
//!   batch each token strikes its own faults: a business code (10000–20000) becomes that
//!   token's item, any other code fails the whole request (it is about the app, not the token).
//!
//! Sources: OPPO open platform "调用地址，公共参数和返回码" and "单点推送"/"批量单推"
//! (open.oppomobile.com/new/developmentDoc/info?id=11234, 11236), curltech/go-push-sdk
//! `push/oppo_channel/{auth_token,message_push}.go`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Form, Router};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::control::{FaultReply, Record, now_ms};
use crate::digest::sha256_hex;
use crate::{OppoApp, Personality, Shown, Sim, SimError, SimSettings};

/// How long an auth_token lives at OPPO.
pub(crate) const AUTH_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Messages a unicast_batch takes.
const MAX_BATCH: usize = 1000;
/// How far the auth `timestamp` may be from the simulator's clock [M].
const TIMESTAMP_SKEW_MS: u64 = 10 * 60 * 1000;

/// OPPO's return codes this personality answers with ("调用地址，公共参数和返回码",
/// <https://open.oppomobile.com/new/developmentDoc/info?id=11234>).
pub(crate) mod code {
    pub const SUCCESS: i64 = 0;
    pub const INVALID_AUTH_TOKEN: i64 = 11;
    pub const INVALID_APP_KEY: i64 = 14;
    pub const MISSING_APP_KEY: i64 = 15;
    pub const INVALID_SIGNATURE: i64 = 16;
    pub const MISSING_SIGNATURE: i64 = 17;
    pub const MISSING_TIMESTAMP: i64 = 18;
    pub const INVALID_TIMESTAMP: i64 = 19;
    pub const MISSING_AUTH_TOKEN: i64 = 29;
    pub const MISSING_ARGUMENTS: i64 = 40;
    pub const INVALID_ARGUMENTS: i64 = 41;
    pub const INVALID_REGISTRATION_ID: i64 = 10000;
    /// OPPO's business errors, about one target.
    pub const BUSINESS: std::ops::RangeInclusive<i64> = 10000..=20000;
}

/// OPPO's message for a code, as its doc words it.
fn message_of(code: i64) -> &'static str {
    match code {
        -2 => "Service in Flow Control",
        -1 => "Service Currently Unavailable",
        0 => "Success",
        11 => "Invalid AuthToken",
        12 => "Http Action Not Allowed",
        13 => "App Call Limited",
        14 => "Invalid App Key",
        15 => "Missing App Key",
        16 => "Invalid Signature",
        17 => "Missing Signature",
        18 => "Missing Timestamp",
        19 => "Invalid Timestamp",
        20 => "Invalid Method",
        21 => "Missing Method",
        22 => "Missing Version",
        23 => "Invalid Version",
        24 => "Unsupported Version",
        25 => "Invalid encoding",
        26 => "IP Black List",
        27 => "Access Denied",
        28 => "App Disabled",
        29 => "Missing Auth Token",
        30 => "Api Permission Denied",
        31 => "Data Not Exist",
        32 => "Data Duplicate",
        33 => "The number of messages exceeds the daily limit",
        34 => "The number of pictures exceeds the daily limit",
        40 => "Missing Required Arguments",
        41 => "Invalid Arguments",
        51 => "Invalid Picture",
        55 => "App Call Frequency Limited",
        59 => "No secondary action permission",
        67 => "Category error",
        10000 => "Invalid Registration_id",
        _ => "Business error",
    }
}

/// The OPPO personality: the apps it trusts and the auth tokens it issued.
pub(crate) struct Oppo {
    /// master_secret by app_key.
    apps: HashMap<String, String>,
    tokens: Mutex<HashMap<String, IssuedToken>>,
    messages: AtomicU64,
}

struct IssuedToken {
    expires_at: Instant,
    epoch: u64,
}

impl Oppo {
    pub fn new(apps: &[OppoApp]) -> Oppo {
        Oppo {
            apps: apps
                .iter()
                .map(|a| (a.app_key.clone(), a.master_secret.clone()))
                .collect(),
            tokens: Mutex::new(HashMap::new()),
            messages: AtomicU64::new(0),
        }
    }

    fn tokens(&self) -> MutexGuard<'_, HashMap<String, IssuedToken>> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn issue(&self, epoch: u64) -> String {
        let token = Uuid::new_v4().simple().to_string();
        let now = Instant::now();
        let mut tokens = self.tokens();
        if tokens.len() >= 1024 {
            tokens.retain(|_, t| t.expires_at > now);
        }
        tokens.insert(
            token.clone(),
            IssuedToken {
                expires_at: now + AUTH_TOKEN_LIFETIME,
                epoch,
            },
        );
        token
    }

    fn next_message_id(&self) -> String {
        let n = self.messages.fetch_add(1, Ordering::Relaxed);
        format!("sim-1-1-{n:016x}")
    }
}

impl Personality for Oppo {
    const NAME: &'static str = "oppo";

    fn routes() -> Router<Arc<Sim>> {
        Router::new()
            .route("/oppo", any(handle))
            .route("/oppo/{*path}", any(handle))
    }

    fn fault_response(fault: &FaultReply) -> Response {
        let code = fault.reason.trim().parse::<i64>().unwrap_or(-1);
        let mut response = oppo_json(fault.status, &error_body(code));
        if let Some((name, value)) = fault.retry_after()
            && let Ok(value) = HeaderValue::from_str(&value)
        {
            response.headers_mut().insert(name, value);
        }
        response
    }

    fn shown(payload: &Value) -> Shown {
        let notification = &payload["notification"];
        let text = |name: &str| notification[name].as_str().map(str::to_owned);
        // `action_parameters` is a JSON object in a string; impush puts `ext` in it.
        let ext = notification["action_parameters"]
            .as_str()
            .and_then(|p| serde_json::from_str::<Value>(p).ok())
            .and_then(|p| p["ext"].as_str().map(str::to_owned));
        Shown {
            title: text("title"),
            body: text("content"),
            badge: None,
            sound: None,
            ext,
        }
    }

    fn from_settings(settings: &SimSettings) -> Result<Oppo, SimError> {
        Ok(Oppo::new(&settings.oppo_apps))
    }
}

fn error_body(code: i64) -> Value {
    json!({ "code": code, "message": message_of(code) })
}

fn oppo_json(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [("content-type", "application/json;charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}

/// OPPO answers its errors with HTTP 200 and the code in the body.
fn oppo_error(code: i64) -> Response {
    oppo_json(StatusCode::OK, &error_body(code))
}

async fn handle(State(sim): State<Arc<Sim>>, request: Request) -> Response {
    let path = request
        .uri()
        .path()
        .strip_prefix("/oppo")
        .unwrap_or_default()
        .to_owned();
    let known = matches!(
        path.as_str(),
        "/server/v1/auth"
            | "/server/v1/message/notification/unicast"
            | "/server/v1/message/notification/unicast_batch"
    );
    if !known {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    }
    if request.method() != Method::POST {
        return oppo_error(12);
    }
    let headers = request.headers().clone();
    let form = read_form(request).await;
    match path.as_str() {
        "/server/v1/auth" => auth(&sim, &form),
        "/server/v1/message/notification/unicast" => unicast(&sim, &headers, &form).await,
        _ => unicast_batch(&sim, &headers, &form).await,
    }
}

/// The form fields of the body; none when it is not a form (OPPO reads only forms).
async fn read_form(request: Request) -> HashMap<String, String> {
    let is_form = request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return HashMap::new();
    }
    match Form::<HashMap<String, String>>::from_request(request, &()).await {
        Ok(Form(fields)) => fields,
        Err(_) => HashMap::new(),
    }
}

/// `POST /oppo/server/v1/auth`.
fn auth(sim: &Sim, form: &HashMap<String, String>) -> Response {
    let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let Some(app_key) = field("app_key") else {
        return oppo_error(code::MISSING_APP_KEY);
    };
    let Some(master_secret) = sim.oppo.apps.get(app_key) else {
        return oppo_error(code::INVALID_APP_KEY);
    };
    let Some(timestamp) = field("timestamp") else {
        return oppo_error(code::MISSING_TIMESTAMP);
    };
    let Some(sign) = field("sign") else {
        return oppo_error(code::MISSING_SIGNATURE);
    };
    let fresh = timestamp
        .parse::<u64>()
        .is_ok_and(|ms| ms.abs_diff(now_ms()) <= TIMESTAMP_SKEW_MS);
    if !fresh {
        return oppo_error(code::INVALID_TIMESTAMP);
    }
    let expected = sha256_hex(format!("{app_key}{timestamp}{master_secret}").as_bytes());
    if !sign.eq_ignore_ascii_case(&expected) {
        return oppo_error(code::INVALID_SIGNATURE);
    }
    let token = sim.oppo.issue(sim.control.auth_epoch());
    oppo_json(
        StatusCode::OK,
        &json!({
            "code": code::SUCCESS,
            "message": "Success",
            "data": { "auth_token": token, "create_time": now_ms() },
        }),
    )
}

/// Checks the auth_token of a send: `Err(code)` when OPPO refuses it.
fn authorize(sim: &Sim, headers: &HeaderMap, form: &HashMap<String, String>) -> Result<(), i64> {
    let token = form
        .get("auth_token")
        .map(String::as_str)
        .or_else(|| headers.get("auth_token").and_then(|v| v.to_str().ok()))
        .filter(|t| !t.is_empty())
        .ok_or(code::MISSING_AUTH_TOKEN)?;
    let tokens = sim.oppo.tokens();
    let issued = tokens.get(token).ok_or(code::INVALID_AUTH_TOKEN)?;
    if issued.epoch < sim.control.auth_epoch() || issued.expires_at <= Instant::now() {
        return Err(code::INVALID_AUTH_TOKEN);
    }
    Ok(())
}

/// One message object checked: its registration id, or OPPO's code for what is wrong.
fn check_message(message: &Value) -> Result<String, i64> {
    let target_type = message["target_type"]
        .as_i64()
        .or_else(|| message["targetType"].as_i64());
    match target_type {
        Some(2 | 5) => {}
        Some(_) => return Err(code::INVALID_ARGUMENTS),
        None => return Err(code::MISSING_ARGUMENTS),
    }
    let target = message["target_value"]
        .as_str()
        .or_else(|| message["targetValue"].as_str())
        .filter(|t| !t.is_empty())
        .ok_or(code::MISSING_ARGUMENTS)?;
    let notification = &message["notification"];
    if !notification.is_object() {
        return Err(code::MISSING_ARGUMENTS);
    }
    for name in ["title", "content"] {
        match &notification[name] {
            Value::String(text) if !text.is_empty() => {}
            Value::Null => return Err(code::MISSING_ARGUMENTS),
            _ => return Err(code::INVALID_ARGUMENTS),
        }
    }
    // OPPO's field table: `app_message_id` is a String.
    match &notification["app_message_id"] {
        Value::Null => {}
        Value::String(id) if !id.is_empty() => {}
        _ => return Err(code::INVALID_ARGUMENTS),
    }
    Ok(target.to_owned())
}

/// Records the delivery of `message` to `token`, unless its `app_message_id` was already
/// pushed to that device: OPPO pushes a unicast with one `app_message_id` to one target once
/// (the repeat is answered as a success, not delivered).
fn record(sim: &Sim, token: &str, message: &Value) {
    if let Some(id) = message["notification"]["app_message_id"].as_str()
        && !sim.control.first_time(Oppo::NAME, format!("{id}\n{token}"))
    {
        tracing::debug!(token, "OPPO repeat of an app_message_id dropped");
        return;
    }
    sim.control.record(Record {
        vendor: Oppo::NAME,
        token: token.into(),
        payload: message.to_string().into(),
        headers: Vec::new(),
        received_at_ms: now_ms(),
        shown: Oppo::shown,
    });
}

/// `POST /oppo/server/v1/message/notification/unicast`.
async fn unicast(sim: &Sim, headers: &HeaderMap, form: &HashMap<String, String>) -> Response {
    if let Err(code) = authorize(sim, headers, form) {
        return oppo_error(code);
    }
    let Some(text) = form.get("message").filter(|m| !m.is_empty()) else {
        return oppo_error(code::MISSING_ARGUMENTS);
    };
    let Ok(message) = serde_json::from_str::<Value>(text) else {
        return oppo_error(code::INVALID_ARGUMENTS);
    };
    let token = match check_message(&message) {
        Ok(token) => token,
        Err(code) => return oppo_error(code),
    };
    if let Some(fault) = sim.control.strike(Oppo::NAME, &token, &sim.shutdown).await {
        return Oppo::fault_response(&fault);
    }
    if token.starts_with("invalid-") {
        return oppo_error(code::INVALID_REGISTRATION_ID);
    }
    record(sim, &token, &message);
    oppo_json(
        StatusCode::OK,
        &json!({
            "code": code::SUCCESS,
            "message": "Success",
            "data": { "messageId": sim.oppo.next_message_id() },
        }),
    )
}

/// `POST /oppo/server/v1/message/notification/unicast_batch`.
async fn unicast_batch(sim: &Sim, headers: &HeaderMap, form: &HashMap<String, String>) -> Response {
    if let Err(code) = authorize(sim, headers, form) {
        return oppo_error(code);
    }
    let Some(text) = form.get("messages").filter(|m| !m.is_empty()) else {
        return oppo_error(code::MISSING_ARGUMENTS);
    };
    let Ok(Value::Array(messages)) = serde_json::from_str::<Value>(text) else {
        return oppo_error(code::INVALID_ARGUMENTS);
    };
    if messages.is_empty() || messages.len() > MAX_BATCH {
        return oppo_error(code::INVALID_ARGUMENTS);
    }
    let mut checked = Vec::with_capacity(messages.len());
    for message in &messages {
        match check_message(message) {
            Ok(token) => checked.push(token),
            Err(code) => return oppo_error(code),
        }
    }
    // Faults first, so one about the app fails the request before anything is recorded.
    let mut token_errors: Vec<Option<i64>> = Vec::with_capacity(checked.len());
    for token in &checked {
        let error = match sim.control.strike(Oppo::NAME, token, &sim.shutdown).await {
            Some(fault) => {
                let code = fault.reason.trim().parse::<i64>().unwrap_or(-1);
                if !code::BUSINESS.contains(&code) {
                    return Oppo::fault_response(&fault);
                }
                Some(code)
            }
            None if token.starts_with("invalid-") => Some(code::INVALID_REGISTRATION_ID),
            None => None,
        };
        token_errors.push(error);
    }
    let mut items = Vec::with_capacity(checked.len());
    for ((token, message), error) in checked.iter().zip(&messages).zip(token_errors) {
        items.push(match error {
            Some(code) => json!({
                "registrationId": token,
                "errorCode": code,
                "errorMessage": message_of(code),
            }),
            None => {
                record(sim, token, message);
                json!({ "registrationId": token, "messageId": sim.oppo.next_message_id() })
            }
        });
    }
    oppo_json(
        StatusCode::OK,
        &json!({ "code": code::SUCCESS, "message": "Success", "data": items }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_fips_test_vectors() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sha256_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
    }

    #[test]
    fn message_checks_give_oppos_codes() {
        let ok = json!({"target_type": 2, "target_value": "r1",
            "notification": {"title": "T", "content": "C"}});
        assert_eq!(check_message(&ok), Ok("r1".into()));
        let mut m = ok.clone();
        m["target_type"] = json!(7);
        assert_eq!(check_message(&m), Err(41));
        let mut m = ok.clone();
        m["notification"]["title"] = Value::Null;
        assert_eq!(check_message(&m), Err(40));
        let mut m = ok;
        m["target_value"] = json!("");
        assert_eq!(check_message(&m), Err(40));
    }

    #[test]
    fn shown_reads_title_content_and_ext_from_action_parameters() {
        let shown = Oppo::shown(&json!({"notification": {"title": "T", "content": "C",
            "action_parameters": "{\"ext\":\"{\\\"a\\\":1}\"}"}}));
        assert_eq!(shown.title.as_deref(), Some("T"));
        assert_eq!(shown.body.as_deref(), Some("C"));
        assert_eq!(shown.ext.as_deref(), Some("{\"a\":1}"));
    }
}
