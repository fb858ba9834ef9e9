//! The Meizu (Flyme) Push personality: notification-bar push by pushId, under `/meizu`.
//!
//! - `POST /meizu/garcia/api/server/push/varnished/pushByPushId`, form-urlencoded `appId`,
//!   `pushIds` (comma-separated, at most 1000), `messageJson`, `sign`. Checked as Meizu does:
//!   a missing or empty field is `110004`, an appId no credential has is `110000`, a `sign`
//!   that is not `md5(k=v… sorted by name, raw values + appSecret)` is `1006`, a body that is
//!   not a form, a `messageJson` that is not JSON, a notification without `noticeBarInfo`
//!   title (1–32) and content (1–100), an `advanceInfo.notifyKey` that is not at most 8
//!   characters of `[0-9a-zA-Z_-]`, or more than 1000 pushIds is `1005`.
//! - Answers are Meizu's: HTTP 200 `{"code","message","value","msgId","redirect"}`. On
//!   success `value` maps a per-pushId code to the pushIds that failed with it, and only
//!   those: pushIds starting `invalid-` are listed under `110002` (unsubscribed), every other
//!   one is recorded as a delivery.
//! - Faults (`reason` = a Meizu code) are taken per pushId: a per-pushId code (`201`, `501`,
//!   `513`, `518`, `519`, `520`, `110002`, `110003`, `110005`) lists that pushId in `value`;
//!   any other code answers the whole request with it as the top-level `code`, HTTP 200 as
//!   Meizu does (the fault's `status` is used only for a non-numeric reason, a gateway error).
//!   `retry_after_s` adds a `Retry-After` header, which real Meizu never sends.
//!
//! The trusted apps are the config's Meizu credentials (appId and `meizu.app_secret`).
//!
//! Sources: MEIZUPUSH/PushAPI `README.md` (signature, request, answers and code tables) and
//! MEIZUPUSH/JavaSdk `server/constant/{ErrorCode,PushResponseCode}.java`
//! (<https://github.com/MEIZUPUSH/PushAPI>, <https://github.com/MEIZUPUSH/JavaSdk>).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Form, Router};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::control::{FaultReply, Record, now_ms};
use crate::{OemApp, Personality, Shown, Sim, SimError, SimSettings};

pub(crate) const SEND_PATH: &str = "/garcia/api/server/push/varnished/pushByPushId";
const MAX_PUSH_IDS: usize = 1000;
const MAX_TITLE: usize = 32;
const MAX_CONTENT: usize = 100;
/// `advanceInfo.notifyKey`: "长度不大于8个字符".
const MAX_NOTIFY_KEY_LEN: usize = 8;
/// The per-pushId codes of `value` (README "map部分code定义", SDK `PushResponseCode`).
const PER_PUSH_ID_CODES: &[&str] = &[
    "201", "501", "513", "518", "519", "520", "110002", "110003", "110005",
];

/// The Meizu personality: the apps it trusts, appId → appSecret.
pub(crate) struct Meizu {
    apps: HashMap<String, String>,
}

impl Meizu {
    pub fn new(apps: &[OemApp]) -> Meizu {
        Meizu {
            apps: apps
                .iter()
                .map(|a| (a.app_id.clone(), a.app_secret.clone()))
                .collect(),
        }
    }
}

impl Personality for Meizu {
    const NAME: &'static str = "meizu";

    fn routes() -> Router<Arc<Sim>> {
        Router::new()
            .route("/meizu", any(handle))
            .route("/meizu/{*path}", any(handle))
    }

    fn fault_response(fault: &FaultReply) -> Response {
        let status = if fault.reason.parse::<u64>().is_ok() {
            StatusCode::OK
        } else {
            fault.status
        };
        let mut response = meizu_answer(status, &fault.reason, message(&fault.reason), "");
        if let Some((name, value)) = fault.retry_after()
            && let Ok(value) = HeaderValue::from_str(&value)
        {
            response.headers_mut().insert(name, value);
        }
        response
    }

    fn shown(payload: &Value) -> Shown {
        let message: Value = payload["messageJson"]
            .as_str()
            .and_then(|m| serde_json::from_str(m).ok())
            .unwrap_or_default();
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let bar = &message["noticeBarInfo"];
        let sound_on = message["advanceInfo"]["notificationType"]["sound"]
            .as_u64()
            .is_none_or(|s| s == 1);
        Shown {
            title: text(&bar["title"]),
            body: text(&bar["content"]),
            badge: None,
            // Meizu plays the default sound or none: it cannot name a sound file.
            sound: sound_on.then(|| "default".to_owned()),
            ext: text(&message["clickTypeInfo"]["parameters"]["ext"]),
        }
    }

    fn from_settings(settings: &SimSettings) -> Result<Meizu, SimError> {
        Ok(Meizu::new(settings.apps_of("meizu")))
    }
}

/// The texts Meizu sends with its codes (README, SDK `ErrorCode`); clients must not read them.
fn message(code: &str) -> &'static str {
    match code {
        "200" => "",
        "1001" => "系统错误",
        "1003" => "服务器忙",
        "1005" => "参数错误，请参考API文档",
        "1006" => "签名认证失败",
        "110000" => "appId不合法",
        "110001" => "appKey不合法",
        "110004" => "参数不能为空",
        "110009" => "应用被加入黑名单",
        "110010" => "应用请求频率超过限制",
        "110019" => "超过该应用每天推送次数限制",
        "110053" => "透传超过限制",
        _ => "其他异常",
    }
}

/// Meizu's answer envelope.
fn meizu_answer(
    status: StatusCode,
    code: &str,
    message: &str,
    value: impl Into<Value>,
) -> Response {
    let body = json!({ "code": code, "message": message, "value": value.into(), "redirect": "" });
    (
        status,
        [("content-type", "application/json;charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}

fn error(code: &str) -> Response {
    meizu_answer(StatusCode::OK, code, message(code), "")
}

/// Java `String.length()`, how Meizu counts title and content.
fn java_len(s: &str) -> usize {
    s.encode_utf16().count()
}

async fn handle(State(sim): State<Arc<Sim>>, request: Request) -> Response {
    let path = request
        .uri()
        .path()
        .strip_prefix("/meizu")
        .unwrap_or_default();
    if path != SEND_PATH {
        return (StatusCode::NOT_FOUND, "").into_response();
    }
    if request.method() != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, "").into_response();
    }
    let fields = match Form::<Vec<(String, String)>>::from_request(request, &()).await {
        Ok(Form(fields)) => fields,
        Err(rejection) => {
            tracing::debug!(%rejection, "Meizu push without a form");
            return error("1005");
        }
    };
    push(&sim, fields).await
}

/// `pushByPushId`: checks the form, then answers per pushId.
async fn push(sim: &Sim, fields: Vec<(String, String)>) -> Response {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let (Some(app_id), Some(push_ids), Some(message_json), Some(sign)) = (
        field("appId"),
        field("pushIds"),
        field("messageJson"),
        field("sign"),
    ) else {
        return error("110004");
    };
    let Some(app_secret) = sim.meizu.apps.get(app_id) else {
        return error("110000");
    };
    if !sign.eq_ignore_ascii_case(&expected_sign(&fields, app_secret)) {
        tracing::debug!(app_id, "Meizu signature refused");
        return error("1006");
    }
    let Ok(message) = serde_json::from_str::<Value>(message_json) else {
        return error("1005");
    };
    let length_ok =
        |v: &Value, max: usize| v.as_str().is_some_and(|s| (1..=max).contains(&java_len(s)));
    let bar = &message["noticeBarInfo"];
    if !length_ok(&bar["title"], MAX_TITLE) || !length_ok(&bar["content"], MAX_CONTENT) {
        return error("1005");
    }
    if !is_notify_key(&message["advanceInfo"]["notifyKey"]) {
        return error("1005");
    }
    let ids: Vec<&str> = push_ids.split(',').filter(|id| !id.is_empty()).collect();
    if ids.is_empty() {
        return error("110004");
    }
    if ids.len() > MAX_PUSH_IDS {
        return error("1005");
    }

    let mut failed: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let mut accepted = Vec::with_capacity(ids.len());
    for id in &ids {
        if let Some(fault) = sim.control.strike(Meizu::NAME, id, &sim.shutdown).await {
            if PER_PUSH_ID_CODES.contains(&fault.reason.as_str()) {
                failed.entry(fault.reason).or_default().push(id);
                continue;
            }
            return Meizu::fault_response(&fault);
        }
        if id.starts_with("invalid-") {
            failed.entry("110002".into()).or_default().push(id);
        } else {
            accepted.push(*id);
        }
    }

    // One copy of the form for every record: the payload stays shared text.
    let payload: Arc<str> = json!({
        "appId": app_id,
        "pushIds": push_ids,
        "messageJson": message_json,
    })
    .to_string()
    .into();
    let received_at_ms = now_ms();
    for id in accepted {
        sim.control.record(Record {
            vendor: Meizu::NAME,
            token: id.into(),
            payload: Arc::clone(&payload),
            headers: Vec::new(),
            received_at_ms,
            shown: Meizu::shown,
        });
    }
    let body = json!({
        "code": "200",
        "message": "",
        "value": failed,
        "msgId": Uuid::new_v4().simple().to_string(),
        "redirect": "",
    });
    (
        StatusCode::OK,
        [("content-type", "application/json;charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}

/// `advanceInfo.notifyKey`, when there is one: at most 8 characters of `[0-9a-zA-Z_-]`.
fn is_notify_key(key: &Value) -> bool {
    match key {
        Value::Null => true,
        Value::String(key) => {
            key.len() <= MAX_NOTIFY_KEY_LEN
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        }
        _ => false,
    }
}

/// What `sign` must be: md5 of every other field as `k=v` sorted by name, then the secret.
fn expected_sign(fields: &[(String, String)], app_secret: &str) -> String {
    let mut sorted: Vec<&(String, String)> = fields.iter().filter(|(k, _)| k != "sign").collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut text = String::new();
    for (key, value) in sorted {
        text.push_str(key);
        text.push('=');
        text.push_str(value);
    }
    text.push_str(app_secret);
    crate::digest::md5_hex(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_the_rfc_1321_test_suite() {
        for (input, expected) in [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ] {
            assert_eq!(
                crate::digest::md5_hex(input.as_bytes()),
                expected,
                "{input:?}"
            );
        }
    }

    #[test]
    fn sign_matches_the_vector_of_meizus_doc() {
        let fields = [
            ("appId", "10000"),
            ("pushIds", "RA50c6348036344485d01776773577c64740465480a6b"),
            (
                "messageJson",
                r#"{"title":"title","content":"content","pushTimeInfo":{"offLine":1,"validTime":24}}"#,
            ),
            ("sign", "ignored"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(
            expected_sign(&fields, "<APP_SECRET>"),
            "ac076ff25d9900015a681cb5172aa53b"
        );
    }

    #[test]
    fn shown_reads_the_notice_bar_sound_and_ext() {
        let message = json!({
            "noticeBarInfo": {"title": "T", "content": "B"},
            "clickTypeInfo": {"clickType": 0, "parameters": {"ext": "{\"a\":1}"}},
            "advanceInfo": {"notificationType": {"vibrate": 0, "lights": 1, "sound": 0}}
        });
        let shown = Meizu::shown(&json!({"messageJson": message.to_string()}));
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

    #[test]
    fn a_notify_key_is_at_most_8_characters_of_letters_digits_underscore_and_dash() {
        // (notifyKey, accepted)
        let table = [
            (json!(null), true),
            (json!("vufj2qNK"), true),
            (json!("a_-9"), true),
            (json!("vufj2qNKx"), false),
            (json!("a b"), false),
            (json!("键"), false),
            (json!(12345678), false),
        ];
        for (key, accepted) in table {
            assert_eq!(is_notify_key(&key), accepted, "{key}");
        }
    }
}
