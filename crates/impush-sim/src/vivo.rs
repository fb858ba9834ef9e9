//! The vivo Push personality: the `/message/auth` handshake and the single-device
//! `/message/send`, under `/vivo`.
//!
//! - `POST /vivo/message/auth`, JSON `{appId, appKey, timestamp (ms), sign}` with `sign` =
//!   lowercase hex `md5(appId + appKey + timestamp + appSecret)`: `{"result":0,"desc":"请求成功",
//!   "authToken"}`, valid 24 h. An unknown app, a wrong key or sign, or a timestamp more than
//!   10 minutes off is refused with result 10000 (auth failure [S]; vivo's
//!   finer auth codes were not retrievable, and the 10-minute window is [M]).
//! - `POST /vivo/message/send`, JSON, header `authToken`: missing, unknown or expired
//!   (24 h, or `/sim/expire-auth`) 10000; `appId` not the token's app 10094 [V]; a body that
//!   is not a JSON object, or without `regId`, `title` or `content`, 10055 (parameter error,
//!   [M]: the simulator's stand-in for vivo's per-field "xxx不合法" codes).
//!   Success `{"result":0,"desc":"请求成功","taskId"}`. Errors come with HTTP 200 like vivo.
//! - `requestId`, vivo's unique id of a request ("用户请求唯一标识，最大64字符"): one longer
//!   than 64 characters, empty or not a string is 10055; a send repeating a `requestId` of
//!   the same app is answered as a success and not delivered again. [unverified]: that vivo
//!   drops such a repeat, and how it answers it; `DELETE /sim/deliveries` forgets them.
//! - Tokens starting `invalid-` get `{"result":10302,"desc":"regId不合法"}` (vivo's answer to
//!   an invalid regId).
//! - Faults: `reason` is vivo's result code (`"10070"`, `"10072"`…), answered with the fault's
//!   HTTP status and `{"result":<reason>,"desc"}`.
//!
//! Sources: vivo "PUSH-UPS-API接口文档" v2.9.2 (dev.vivo.com.cn/documentCenter/doc/362, read
//! through the mirror app.applebyme.cn/cloud/appshangjia/2017.html), curltech/go-push-sdk
//! `push/vivo_channel/auth_token.go`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::control::{FaultReply, Record, now_ms};
use crate::digest::md5_hex;
use crate::{Personality, Shown, Sim, SimError, SimSettings, VivoApp};

pub(crate) const AUTH_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);
const TIMESTAMP_SKEW_MS: u64 = 10 * 60 * 1000;
const READ_LIMIT: usize = 64 * 1024;
/// `requestId`: "最大64字符".
const MAX_REQUEST_ID: usize = 64;

/// vivo's result codes this personality answers with (vivo server API v2.9.2,
/// <https://dev.vivo.com.cn/documentCenter/doc/362>).
pub(crate) mod code {
    pub const SUCCESS: i64 = 0;
    pub const AUTH_FAILED: i64 = 10000;
    pub const BAD_PARAMETER: i64 = 10055;
    pub const APP_ID_MISMATCH: i64 = 10094;
    pub const INVALID_REG_ID: i64 = 10302;
}

fn desc_of(code: i64) -> &'static str {
    match code {
        0 => "请求成功",
        10000 => "权限认证失败",
        10055 => "参数不合法",
        10070 => "发送总量超过限制",
        10072 => "发送频率过快",
        10094 => "appId与authToken不匹配",
        10252 => "批量消息体超过限制",
        10254 => "全量推送超过限制",
        10302 => "regId不合法",
        _ => "系统错误",
    }
}

/// The vivo personality: the apps it trusts and the auth tokens it issued.
pub(crate) struct Vivo {
    /// (appKey, appSecret) by appId.
    apps: HashMap<String, (String, String)>,
    tokens: Mutex<HashMap<String, IssuedToken>>,
    tasks: AtomicU64,
}

struct IssuedToken {
    app_id: String,
    expires_at: Instant,
    epoch: u64,
}

impl Vivo {
    pub fn new(apps: &[VivoApp]) -> Vivo {
        Vivo {
            apps: apps
                .iter()
                .map(|a| (a.app_id.clone(), (a.app_key.clone(), a.app_secret.clone())))
                .collect(),
            tokens: Mutex::new(HashMap::new()),
            tasks: AtomicU64::new(0),
        }
    }

    fn tokens(&self) -> MutexGuard<'_, HashMap<String, IssuedToken>> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn issue(&self, app_id: &str, epoch: u64) -> String {
        let token = Uuid::new_v4().simple().to_string();
        let now = Instant::now();
        let mut tokens = self.tokens();
        if tokens.len() >= 1024 {
            tokens.retain(|_, t| t.expires_at > now);
        }
        tokens.insert(
            token.clone(),
            IssuedToken {
                app_id: app_id.to_owned(),
                expires_at: now + AUTH_TOKEN_LIFETIME,
                epoch,
            },
        );
        token
    }
}

impl Personality for Vivo {
    const NAME: &'static str = "vivo";

    fn routes() -> Router<Arc<Sim>> {
        Router::new()
            .route("/vivo", any(handle))
            .route("/vivo/{*path}", any(handle))
    }

    fn fault_response(fault: &FaultReply) -> Response {
        let code = fault.reason.trim().parse::<i64>().unwrap_or(-1);
        let mut response = vivo_json(fault.status, &error_body(code));
        if let Some((name, value)) = fault.retry_after()
            && let Ok(value) = HeaderValue::from_str(&value)
        {
            response.headers_mut().insert(name, value);
        }
        response
    }

    fn shown(payload: &Value) -> Shown {
        let text = |v: &Value| v.as_str().map(str::to_owned);
        Shown {
            title: text(&payload["title"]),
            body: text(&payload["content"]),
            badge: None,
            sound: None,
            ext: text(&payload["clientCustomMap"]["ext"]),
        }
    }

    fn from_settings(settings: &SimSettings) -> Result<Vivo, SimError> {
        Ok(Vivo::new(&settings.vivo_apps))
    }
}

fn error_body(code: i64) -> Value {
    json!({ "result": code, "desc": desc_of(code) })
}

fn vivo_json(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [("content-type", "application/json;charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}

fn vivo_error(code: i64) -> Response {
    vivo_json(StatusCode::OK, &error_body(code))
}

async fn handle(State(sim): State<Arc<Sim>>, request: Request) -> Response {
    let path = request
        .uri()
        .path()
        .strip_prefix("/vivo")
        .unwrap_or_default()
        .to_owned();
    if !matches!(path.as_str(), "/message/auth" | "/message/send") {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    }
    if request.method() != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed").into_response();
    }
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, READ_LIMIT)
        .await
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .filter(Value::is_object);
    let Some(body) = body else {
        return vivo_error(code::BAD_PARAMETER);
    };
    if path == "/message/auth" {
        auth(&sim, &body)
    } else {
        send(&sim, &parts.headers, &body).await
    }
}

/// A JSON field as text: vivo's SDKs send `appId` and `timestamp` as numbers or strings.
fn text(body: &Value, name: &str) -> Option<String> {
    match &body[name] {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `POST /vivo/message/auth`.
fn auth(sim: &Sim, body: &Value) -> Response {
    let (Some(app_id), Some(app_key), Some(timestamp), Some(sign)) = (
        text(body, "appId"),
        text(body, "appKey"),
        text(body, "timestamp"),
        text(body, "sign"),
    ) else {
        return vivo_error(code::BAD_PARAMETER);
    };
    let Some((known_key, app_secret)) = sim.vivo.apps.get(&app_id) else {
        return vivo_error(code::AUTH_FAILED);
    };
    let fresh = timestamp
        .parse::<u64>()
        .is_ok_and(|ms| ms.abs_diff(now_ms()) <= TIMESTAMP_SKEW_MS);
    let expected = md5_hex(format!("{app_id}{app_key}{timestamp}{app_secret}").as_bytes());
    if *known_key != app_key || !fresh || !sign.eq_ignore_ascii_case(&expected) {
        return vivo_error(code::AUTH_FAILED);
    }
    let token = sim.vivo.issue(&app_id, sim.control.auth_epoch());
    vivo_json(
        StatusCode::OK,
        &json!({ "result": code::SUCCESS, "desc": desc_of(0), "authToken": token }),
    )
}

/// The app of a send's authToken, or vivo's code for refusing it.
fn authorize(sim: &Sim, headers: &HeaderMap) -> Result<String, i64> {
    let token = headers
        .get("authToken")
        .and_then(|v| v.to_str().ok())
        .filter(|t| !t.is_empty())
        .ok_or(code::AUTH_FAILED)?;
    let tokens = sim.vivo.tokens();
    let issued = tokens.get(token).ok_or(code::AUTH_FAILED)?;
    if issued.epoch < sim.control.auth_epoch() || issued.expires_at <= Instant::now() {
        return Err(code::AUTH_FAILED);
    }
    Ok(issued.app_id.clone())
}

/// `POST /vivo/message/send`.
async fn send(sim: &Sim, headers: &HeaderMap, body: &Value) -> Response {
    let app_id = match authorize(sim, headers) {
        Ok(app_id) => app_id,
        Err(code) => return vivo_error(code),
    };
    if text(body, "appId").is_some_and(|id| id != app_id) {
        return vivo_error(code::APP_ID_MISMATCH);
    }
    let (Some(reg_id), Some(_), Some(_)) = (
        text(body, "regId"),
        text(body, "title"),
        text(body, "content"),
    ) else {
        return vivo_error(code::BAD_PARAMETER);
    };
    if let Some(fault) = sim.control.strike(Vivo::NAME, &reg_id, &sim.shutdown).await {
        return Vivo::fault_response(&fault);
    }
    if reg_id.starts_with("invalid-") {
        return vivo_error(code::INVALID_REG_ID);
    }
    let request_id = match body.get("requestId") {
        None => None,
        Some(Value::String(id)) if !id.is_empty() && id.chars().count() <= MAX_REQUEST_ID => {
            Some(id.as_str())
        }
        Some(_) => return vivo_error(code::BAD_PARAMETER),
    };
    let repeat = request_id
        .is_some_and(|id| !sim.control.first_time(Vivo::NAME, format!("{app_id}\n{id}")));
    if repeat {
        tracing::debug!(reg_id, "vivo repeat of a requestId dropped");
    } else {
        sim.control.record(Record {
        vendor: Vivo::NAME,
        token: reg_id.into(),
        payload: body.to_string().into(),
        headers: Vec::new(),
        received_at_ms: now_ms(),
        shown: Vivo::shown,
        });
    }
    let task = sim.vivo.tasks.fetch_add(1, Ordering::Relaxed);
    vivo_json(
        StatusCode::OK,
        &json!({ "result": code::SUCCESS, "desc": desc_of(0), "taskId": format!("{task}") }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_the_rfc_1321_test_vectors() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            md5_hex(
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"
            ),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
    }
}
