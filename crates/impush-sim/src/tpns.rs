//! The Tencent TPNS personality: the REST API v3 push, under `/tpns`.
//!
//! - `POST /tpns/v3/push/app` with `Authorization: Basic base64(AccessID:SecretKey)`: an
//!   AccessID no credential has, or no Basic login at all, is `1008003` (auth failed); a known
//!   AccessID with the wrong SecretKey is `10030002` (AccessID and key mismatch).
//! - The body must be JSON (`1008001`, parse error) with `audience_type`, `message_type` and
//!   `message{title, content}` (`1008002`, missing parameter). Only the token audiences are
//!   simulated: `token` (the first token of `token_list` is used) and `token_list` (1 to 1000
//!   tokens of at most 36 characters); anything else is `1008007` (invalid parameter).
//! - Tokens starting `invalid-`: with `ignore_invalid_token: 1` they are left out and listed
//!   in `invalid_targe_list` (sic) of a success, the others delivered; without it the whole
//!   request fails with `1008029` (token is not valid, /1024/33763).
//! - Success: `{"seq","push_id","ret_code":0,"err_msg":"NO_ERROR","environment"}`, plus
//!   `invalid_targe_list` when `ignore_invalid_token` is 1 (even when empty, as the PHP SDK
//!   example shows it). Every answer is HTTP 200 with `ret_code`; a fault with a non-numeric
//!   reason (a gateway error) uses the fault's HTTP status.
//! - Faults (`reason` = a TPNS `ret_code`) are taken per token: `1008029` on a token of a
//!   request with `ignore_invalid_token: 1` lists it in `invalid_targe_list`; any other code
//!   fails the whole request (TPNS has no other per-token result).
//!
//! The trusted apps are the config's TPNS credentials (`app_id` = AccessID, `tpns.app_secret`
//! = SecretKey). Sources: tencentcloud.com/document/api/1024/33764 (push API and its answer),
//! /1024/33763 (error codes), xingePush/xinge-docs `server_api/rest-api-v3ban-ben-shi-yong-
//! zhi-nan.md` (Basic auth).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Value, json};

use crate::control::{FaultReply, Record, now_ms};
use crate::{OemApp, Personality, Shown, Sim, SimError, SimSettings};

pub(crate) const PUSH_PATH: &str = "/v3/push/app";
const MAX_TOKENS: usize = 1000;
const MAX_TOKEN_CHARS: usize = 36;
const READ_LIMIT: usize = 1024 * 1024;
const TOKEN_INVALID: &str = "1008029";

/// The TPNS personality: the apps it trusts (AccessID → SecretKey) and its push ids.
pub(crate) struct Tpns {
    apps: HashMap<String, String>,
    pushes: AtomicU64,
}

impl Tpns {
    pub fn new(apps: &[OemApp]) -> Tpns {
        Tpns {
            apps: apps
                .iter()
                .map(|a| (a.app_id.clone(), a.app_secret.clone()))
                .collect(),
            pushes: AtomicU64::new(570_000_000),
        }
    }
}

impl Personality for Tpns {
    const NAME: &'static str = "tpns";

    fn routes() -> Router<Arc<Sim>> {
        Router::new()
            .route("/tpns", any(handle))
            .route("/tpns/{*path}", any(handle))
    }

    fn fault_response(fault: &FaultReply) -> Response {
        let code: i64 = fault.reason.parse().unwrap_or(-1);
        let status = if code >= 0 {
            StatusCode::OK
        } else {
            fault.status
        };
        let mut response = answer(status, &json!({"ret_code": code, "err_msg": fault.reason}));
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
        let aps = &message["ios"]["aps"];
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let sound = if let Some(sound) = aps["sound"].as_str() {
            Some(sound.to_owned())
        } else if android["ring"].as_u64() == Some(1) {
            Some(android["ring_raw"].as_str().unwrap_or("default").to_owned())
        } else {
            None
        };
        Shown {
            title: text(&message["title"]),
            body: text(&message["content"]),
            badge: aps["badge_type"].as_u64(),
            sound,
            ext: text(&android["custom_content"])
                .or_else(|| text(&message["ios"]["custom_content"])),
        }
    }

    fn from_settings(settings: &SimSettings) -> Result<Tpns, SimError> {
        Ok(Tpns::new(settings.apps_of("tpns")))
    }
}

fn answer(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A failed request: HTTP 200 and the `ret_code` (the texts are TPNS's; clients ignore them).
fn error(code: i64, err_msg: &str) -> Response {
    answer(
        StatusCode::OK,
        &json!({"seq": 0, "ret_code": code, "err_msg": err_msg}),
    )
}

async fn handle(State(sim): State<Arc<Sim>>, request: Request) -> Response {
    let path = request
        .uri()
        .path()
        .strip_prefix("/tpns")
        .unwrap_or_default();
    if path != PUSH_PATH {
        return (StatusCode::NOT_FOUND, "").into_response();
    }
    if request.method() != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, "").into_response();
    }
    let (parts, body) = request.into_parts();
    if let Err(code) = authorize(&sim.tpns, &parts.headers) {
        tracing::debug!(code, "TPNS login refused");
        return match code {
            ACCESS_ID_KEY_MISMATCH => error(code, "AccessID and AccessKey mismatch"),
            _ => error(code, "authentication failed"),
        };
    }
    let is_json = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    let Ok(body) = axum::body::to_bytes(body, READ_LIMIT).await else {
        return error(1_008_007, "request too large");
    };
    if !is_json {
        return error(1_008_001, "parameter parse error: body is not JSON");
    }
    push(&sim, body).await
}

const AUTH_FAILED: i64 = 1_008_003;
const ACCESS_ID_KEY_MISMATCH: i64 = 10_030_002;

/// Checks the Basic login against the trusted apps.
fn authorize(tpns: &Tpns, headers: &HeaderMap) -> Result<(), i64> {
    let login = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, login)| login.trim())
        .ok_or(AUTH_FAILED)?;
    for (access_id, secret_key) in &tpns.apps {
        if login == base64(format!("{access_id}:{secret_key}").as_bytes()) {
            return Ok(());
        }
        // Same AccessID, other key: TPNS names the mismatch.
        if base64_prefix_matches(login, access_id) {
            return Err(ACCESS_ID_KEY_MISMATCH);
        }
    }
    Err(AUTH_FAILED)
}

/// Whether the Basic `login` is `access_id:` followed by anything.
fn base64_prefix_matches(login: &str, access_id: &str) -> bool {
    decode_base64(login).is_some_and(|raw| raw.starts_with(format!("{access_id}:").as_bytes()))
}

/// `POST /tpns/v3/push/app` after the login: checks the body, then answers per token.
async fn push(sim: &Sim, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error(1_008_001, "parameter parse error");
    };
    let (Some(audience), Some(_), Some(title), Some(content)) = (
        request["audience_type"].as_str(),
        request["message_type"].as_str(),
        request["message"]["title"].as_str(),
        request["message"]["content"].as_str(),
    ) else {
        return error(1_008_002, "missing parameter");
    };
    if title.is_empty() || content.is_empty() {
        return error(1_008_002, "missing parameter: title or content");
    }
    let Some(list) = request["token_list"].as_array() else {
        return error(1_008_002, "missing parameter: token_list");
    };
    let mut tokens: Vec<&str> = Vec::with_capacity(list.len());
    for token in list {
        match token.as_str() {
            Some(t) if !t.is_empty() && t.chars().count() <= MAX_TOKEN_CHARS => tokens.push(t),
            _ => return error(1_008_007, "invalid parameter: token_list"),
        }
    }
    match audience {
        // "With audience_type=token, only the first token of a list is used."
        "token" => tokens.truncate(1),
        "token_list" => {}
        _ => return error(1_008_007, "invalid parameter: audience_type"),
    }
    if tokens.is_empty() || tokens.len() > MAX_TOKENS {
        return error(1_008_007, "invalid parameter: token_list");
    }
    let ignore_invalid = request["ignore_invalid_token"].as_u64() == Some(1);

    let mut invalid = Vec::new();
    let mut accepted = Vec::with_capacity(tokens.len());
    for token in tokens {
        let faulted = sim.control.strike(Tpns::NAME, token, &sim.shutdown).await;
        let dead = match faulted {
            Some(fault) if fault.reason == TOKEN_INVALID && ignore_invalid => true,
            Some(fault) => return Tpns::fault_response(&fault),
            None => token.starts_with("invalid-"),
        };
        if !dead {
            accepted.push(token);
        } else if ignore_invalid {
            invalid.push(token);
        } else {
            return error(1_008_029, "token is not valid");
        }
    }

    let payload: Arc<str> = String::from_utf8_lossy(&body).into();
    let received_at_ms = now_ms();
    for token in accepted {
        sim.control.record(Record {
            vendor: Tpns::NAME,
            token: token.into(),
            payload: Arc::clone(&payload),
            headers: Vec::new(),
            received_at_ms,
            shown: Tpns::shown,
        });
    }
    let mut reply = json!({
        "seq": request["seq"].as_i64().unwrap_or(0),
        "push_id": sim.tpns.pushes.fetch_add(1, Ordering::Relaxed).to_string(),
        "ret_code": 0,
        "err_msg": "NO_ERROR",
        "environment": request["environment"].as_str().unwrap_or("product"),
    });
    if ignore_invalid {
        reply["invalid_targe_list"] = json!(invalid);
    }
    answer(StatusCode::OK, &reply)
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 §4): the simulator has no base64 crate.
fn base64(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(BASE64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        let value = BASE64.iter().position(|&b| b == c)?;
        acc = (acc << 6) | u32::try_from(value).ok()?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_rfc_4648_vectors() {
        for (raw, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(raw.as_bytes()), encoded);
            assert_eq!(decode_base64(encoded).unwrap(), raw.as_bytes());
        }
        assert_eq!(decode_base64("Zm9v!"), None);
    }

    #[test]
    fn shown_reads_android_and_ios_messages() {
        let android = json!({"message": {"title": "T", "content": "B",
            "android": {"ring": 1, "ring_raw": "ding", "custom_content": "{\"a\":1}"}}});
        assert_eq!(
            Tpns::shown(&android),
            Shown {
                title: Some("T".into()),
                body: Some("B".into()),
                badge: None,
                sound: Some("ding".into()),
                ext: Some("{\"a\":1}".into()),
            }
        );
        let ios = json!({"message": {"title": "T", "content": "B",
            "ios": {"aps": {"alert": {}, "badge_type": 4, "sound": "default"}, "custom_content": "x"}}});
        let shown = Tpns::shown(&ios);
        assert_eq!(shown.badge, Some(4));
        assert_eq!(shown.sound.as_deref(), Some("default"));
        assert_eq!(shown.ext.as_deref(), Some("x"));
    }
}
