//! The Xiaomi MiPush personality (server API v3), under `/xiaomi`.
//!
//! - `POST /xiaomi/v3/message/regid` (and `/v2/message/regid`), form-urlencoded, with
//!   `Authorization: key=<AppSecret>` of an app of the config's Xiaomi credentials; no token
//!   exchange, so `/sim/expire-auth` has nothing to expire here.
//! - Every answer is HTTP 200 with Xiaomi's body:
//!   - success `{"result":"ok","code":0,"data":{"id":"<msgid>","bad_regids":"r1,r2"},
//!     "description":"成功","info":"Received push messages for N REGID","trace_id"}`;
//!     regids starting `invalid-` (the simulator's invalid tokens) are listed in `bad_regids`, even when
//!     all are, and the others recorded;
//!   - error `{"result":"error","code":<int>,"reason","description","trace_id"}`: `21301`
//!     wrong or missing key [S: third-party clients]; `10007` not a form body; `10016` a
//!     missing `registration_id`, `restricted_package_name`, or `title`/`description` of a
//!     notification (`payload` of a pass-through); `10017` more than 1000 regids or a bad
//!     `notify_type`/`pass_through`/`time_to_live`; `22022` a package other than the
//!     app's. Codes from the official SDK's `ErrorCode.java`.
//! - Injected faults whose reason is a Xiaomi code (`10027`, `200001`…) answer 200 with that
//!   code, as Xiaomi reports every API error; a non-numeric reason (say `Bad Gateway`)
//!   answers the fault's own status, like a failing front end. `Retry-After` if given. A
//!   fault for any regid of a batch fails the whole request.
//!
//! - `POST /xiaomi/v1/message/regid/revoke`, the same key and form: `registration_ids`
//!   (comma-separated), `restricted_package_name` and `notify_id` withdraw that
//!   notification from those regids (`GET /sim/notifications`); the answer is the success
//!   body without `data.id`, or `10016` / `10017` / `22022` as for a send. Faults apply as
//!   to a send. [unverified: the endpoint and fields are the official SDK's
//!   `revokeRegIdMessage`; its answers are taken to be a send's.]
//!
//! Sources: Xiaomi's server API (<https://dev.mi.com/xiaomihyperos/documentation/detail?pId=1696>);
//! the official Java SDK (ggg17226/xmpush-server-api-http2, `Constants.java`, `ErrorCode.java`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Form, Router};
use serde_json::{Map, Value, json};

use crate::control::{FaultReply, Record, now_ms};
use crate::{OemApp, Personality, Shown, Sim, SimError, SimSettings};

const MAX_REGIDS: usize = 1000;

pub(crate) const UNSUPPORTED_MIME: i64 = 10007;
pub(crate) const MISSING_PARAMETER: i64 = 10016;
pub(crate) const INVALID_PARAMETER: i64 = 10017;
pub(crate) const AUTH_FAILED: i64 = 21301;
pub(crate) const INVALID_PACKAGE: i64 = 22022;

/// The Xiaomi personality: trusted apps by secret.
pub(crate) struct Xiaomi {
    /// Package name by AppSecret.
    apps: HashMap<String, String>,
    messages: AtomicU64,
}

impl Xiaomi {
    pub fn new(apps: &[OemApp]) -> Xiaomi {
        Xiaomi {
            apps: apps
                .iter()
                .map(|a| (a.app_secret.clone(), a.package_name.clone()))
                .collect(),
            messages: AtomicU64::new(0),
        }
    }

    fn next_id(&self) -> u64 {
        self.messages.fetch_add(1, Ordering::Relaxed)
    }
}

impl Personality for Xiaomi {
    const NAME: &'static str = "xiaomi";

    fn routes() -> Router<Arc<Sim>> {
        Router::new()
            .route("/xiaomi", any(handle))
            .route("/xiaomi/{*path}", any(handle))
    }

    fn fault_response(fault: &FaultReply) -> Response {
        let mut response = match fault.reason.parse::<i64>() {
            Ok(code) => error_answer(code, &trace_id(0)),
            Err(_) => (fault.status, fault.reason.clone()).into_response(),
        };
        if let Some((name, value)) = fault.retry_after()
            && let Ok(value) = HeaderValue::from_str(&value)
        {
            response.headers_mut().insert(name, value);
        }
        response
    }

    /// The payload is recorded as a JSON object of the form's fields.
    fn shown(payload: &Value) -> Shown {
        let text = |name: &str| payload[name].as_str().map(str::to_owned);
        // notify_type: -1 all, else a bitmask whose bit 1 is the default sound.
        let rings = payload["notify_type"]
            .as_str()
            .and_then(|t| t.parse::<i64>().ok())
            .is_some_and(|t| t == -1 || t & 1 == 1);
        let sound = text("extra.sound_uri").or_else(|| rings.then(|| "default".to_owned()));
        Shown {
            title: text("title"),
            body: text("description"),
            badge: None,
            sound,
            ext: text("extra.ext"),
        }
    }

    fn from_settings(settings: &SimSettings) -> Result<Xiaomi, SimError> {
        Ok(Xiaomi::new(settings.apps_of("xiaomi")))
    }
}

fn reason_of(code: i64) -> (&'static str, &'static str) {
    match code {
        UNSUPPORTED_MIME => ("Unsupported mime type", "不支持的MIME类型"),
        MISSING_PARAMETER => ("Missing required parameter", "缺少必填参数"),
        INVALID_PARAMETER => ("Invalid parameter value", "参数值非法"),
        AUTH_FAILED => ("Invalid Authorization.", "认证失败"),
        INVALID_PACKAGE => ("Invalid package name", "非法的包名"),
        10002 => ("Service paused", "服务暂停"),
        10003 => ("Remote service error", "远程服务错误"),
        10009 => ("System busy", "系统繁忙"),
        10027 => ("App API calls too frequent", "应用调用API频率过高"),
        10028 => ("App total API calls too frequent", "应用调用API总量过高"),
        20301 => ("All the regids are invalid", "发送失败, 目标设备无效"),
        200001 => ("Daily push quota exceeded", "超出每日推送额度"),
        _ => ("Error", "错误"),
    }
}

fn trace_id(n: u64) -> String {
    format!("Xcm{:013}{n:08}", now_ms())
}

fn json_answer(body: &Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json;charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}

fn error_answer(code: i64, trace_id: &str) -> Response {
    let (reason, description) = reason_of(code);
    json_answer(&json!({
        "result": "error",
        "code": code,
        "reason": reason,
        "description": description,
        "trace_id": trace_id,
    }))
}

async fn handle(State(sim): State<Arc<Sim>>, request: Request) -> Response {
    let path = request
        .uri()
        .path()
        .strip_prefix("/xiaomi")
        .unwrap_or_default();
    let post = request.method() == Method::POST;
    match path {
        "/v3/message/regid" | "/v2/message/regid" if post => send(&sim, request).await,
        "/v1/message/regid/revoke" if post => revoke(&sim, request).await,
        _ => (StatusCode::NOT_FOUND, "Not Found").into_response(),
    }
}

/// The app's package and the form of a request with a trusted key; the code to refuse with
/// otherwise.
async fn authorized_form(
    sim: &Sim,
    request: Request,
) -> Result<(String, Vec<(String, String)>), i64> {
    let headers = request.headers();
    let package = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("key="))
        .and_then(|key| sim.xiaomi.apps.get(key.trim()))
        .cloned()
        .ok_or(AUTH_FAILED)?;
    let is_form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(UNSUPPORTED_MIME);
    }
    match Form::<Vec<(String, String)>>::from_request(request, &()).await {
        Ok(Form(fields)) => Ok((package, fields)),
        Err(_) => Err(INVALID_PARAMETER),
    }
}

/// `POST /xiaomi/v1/message/regid/revoke`.
async fn revoke(sim: &Sim, request: Request) -> Response {
    let trace = trace_id(sim.xiaomi.next_id());
    let (package, fields) = match authorized_form(sim, request).await {
        Ok(form) => form,
        Err(code) => return error_answer(code, &trace),
    };
    let (regids, notify_id) = match check_revoke_form(&fields, &package) {
        Ok(checked) => checked,
        Err(code) => return error_answer(code, &trace),
    };
    for regid in &regids {
        if let Some(fault) = sim.control.strike(Xiaomi::NAME, regid, &sim.shutdown).await {
            return Xiaomi::fault_response(&fault);
        }
    }
    for regid in &regids {
        sim.control.withdraw(Xiaomi::NAME, regid, notify_id);
    }
    json_answer(&json!({
        "result": "ok",
        "code": 0,
        "data": {},
        "description": "成功",
        "trace_id": trace,
    }))
}

/// Checks a revoke form: the regids and the notify id, or the code to refuse with.
fn check_revoke_form<'a>(
    fields: &'a [(String, String)],
    package: &str,
) -> Result<(Vec<&'a str>, &'a str), i64> {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let regids: Vec<&str> = field("registration_ids")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .collect();
    let restricted = field("restricted_package_name").unwrap_or_default();
    let notify_id = field("notify_id").unwrap_or_default();
    if regids.is_empty() || restricted.is_empty() || notify_id.is_empty() {
        return Err(MISSING_PARAMETER);
    }
    if regids.len() > MAX_REGIDS || notify_id.parse::<i64>().is_err() {
        return Err(INVALID_PARAMETER);
    }
    if !package.is_empty() && restricted.split(',').all(|p| p.trim() != package) {
        return Err(INVALID_PACKAGE);
    }
    Ok((regids, notify_id))
}

/// `POST /xiaomi/v3/message/regid`.
async fn send(sim: &Sim, request: Request) -> Response {
    let n = sim.xiaomi.next_id();
    let trace = trace_id(n);
    let (package, fields) = match authorized_form(sim, request).await {
        Ok(form) => form,
        Err(code) => return error_answer(code, &trace),
    };
    let package = package.as_str();
    let regids = match check_form(&fields, package) {
        Ok(regids) => regids,
        Err(code) => return error_answer(code, &trace),
    };
    for regid in &regids {
        if let Some(fault) = sim.control.strike(Xiaomi::NAME, regid, &sim.shutdown).await {
            return Xiaomi::fault_response(&fault);
        }
    }
    let (bad, good): (Vec<&str>, Vec<&str>) =
        regids.iter().partition(|r| r.starts_with("invalid-"));
    let object: Map<String, Value> = fields
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let payload: Arc<str> = Value::Object(object).to_string().into();
    let received_at_ms = now_ms();
    for regid in &good {
        sim.control.record(Record {
            vendor: Xiaomi::NAME,
            token: (*regid).into(),
            payload: Arc::clone(&payload),
            headers: Vec::new(),
            received_at_ms,
            shown: Xiaomi::shown,
        });
    }
    let mut data = json!({ "id": format!("scm{:013}{n:08}", now_ms()) });
    if !bad.is_empty() {
        data["bad_regids"] = bad.join(",").into();
    }
    json_answer(&json!({
        "result": "ok",
        "code": 0,
        "data": data,
        "description": "成功",
        "info": format!("Received push messages for {} REGID", regids.len()),
        "trace_id": trace,
    }))
}

/// Checks a send form as MiPush does; the regids, or the code to refuse with.
fn check_form<'a>(fields: &'a [(String, String)], package: &str) -> Result<Vec<&'a str>, i64> {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let regids: Vec<&str> = field("registration_id")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .collect();
    if regids.is_empty() {
        return Err(MISSING_PARAMETER);
    }
    if regids.len() > MAX_REGIDS {
        return Err(INVALID_PARAMETER);
    }
    let restricted = field("restricted_package_name").unwrap_or_default();
    if restricted.is_empty() {
        return Err(MISSING_PARAMETER);
    }
    // An app configured without a package accepts any (the config may not name one).
    if !package.is_empty() && restricted.split(',').all(|p| p.trim() != package) {
        return Err(INVALID_PACKAGE);
    }
    let pass_through = field("pass_through").unwrap_or("0");
    let non_empty = |name: &str| field(name).is_some_and(|v| !v.is_empty());
    match pass_through {
        "0" if !non_empty("title") || !non_empty("description") => {
            return Err(MISSING_PARAMETER);
        }
        "1" if !non_empty("payload") => return Err(MISSING_PARAMETER),
        "0" | "1" => {}
        _ => return Err(INVALID_PARAMETER),
    }
    let integer = |name: &str| field(name).is_none_or(|v| v.parse::<i64>().is_ok());
    if !integer("notify_type") || !integer("time_to_live") || !integer("notify_id") {
        return Err(INVALID_PARAMETER);
    }
    Ok(regids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn impush_form(regids: &str) -> Vec<(String, String)> {
        form(&[
            ("restricted_package_name", "com.x"),
            ("title", "T"),
            ("description", "B"),
            ("notify_type", "-1"),
            ("pass_through", "0"),
            ("notify_id", "42"),
            ("extra.ext", "{}"),
            ("registration_id", regids),
        ])
    }

    #[test]
    fn what_impush_sends_passes() {
        let fields = impush_form("r1,invalid-2");
        assert_eq!(check_form(&fields, "com.x"), Ok(vec!["r1", "invalid-2"]));
    }

    #[test]
    fn revoke_forms_get_xiaomi_codes() {
        let revoke = |regids: &str, package: &str, notify_id: &str| {
            form(&[
                ("registration_ids", regids),
                ("restricted_package_name", package),
                ("notify_id", notify_id),
            ])
        };
        assert_eq!(
            check_revoke_form(&revoke("r1,r2", "com.x", "42"), "com.x"),
            Ok((vec!["r1", "r2"], "42"))
        );
        let many: Vec<String> = (0..1001).map(|i| format!("r{i}")).collect();
        let many = many.join(",");
        // (form, code)
        let table = [
            (revoke("", "com.x", "42"), MISSING_PARAMETER),
            (revoke("r1", "", "42"), MISSING_PARAMETER),
            (revoke("r1", "com.x", ""), MISSING_PARAMETER),
            (revoke("r1", "com.x", "soon"), INVALID_PARAMETER),
            (revoke(&many, "com.x", "42"), INVALID_PARAMETER),
            (revoke("r1", "com.other", "42"), INVALID_PACKAGE),
        ];
        for (fields, code) in table {
            assert_eq!(check_revoke_form(&fields, "com.x"), Err(code), "{fields:?}");
        }
    }

    #[test]
    fn malformed_forms_get_xiaomi_codes() {
        assert_eq!(
            check_form(&impush_form(""), "com.x"),
            Err(MISSING_PARAMETER)
        );
        assert_eq!(
            check_form(&impush_form("r1"), "com.other"),
            Err(INVALID_PACKAGE)
        );
        let many: Vec<String> = (0..1001).map(|i| format!("r{i}")).collect();
        assert_eq!(
            check_form(&impush_form(&many.join(",")), "com.x"),
            Err(INVALID_PARAMETER)
        );
        let mut no_title = impush_form("r1");
        no_title.retain(|(k, _)| k != "title");
        assert_eq!(check_form(&no_title, "com.x"), Err(MISSING_PARAMETER));
        let mut bad_ttl = impush_form("r1");
        bad_ttl.push(("time_to_live".into(), "soon".into()));
        assert_eq!(check_form(&bad_ttl, "com.x"), Err(INVALID_PARAMETER));
    }

    #[test]
    fn shown_reads_title_description_sound_and_ext() {
        let shown = Xiaomi::shown(&json!({
            "title": "T", "description": "B", "notify_type": "-1", "extra.ext": "{\"a\":1}"
        }));
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
        let silent = Xiaomi::shown(&json!({"title": "T", "notify_type": "6"}));
        assert_eq!(silent.sound, None);
    }
}
