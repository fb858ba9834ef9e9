//! Delivery receipts, sent the way Huawei, Honor, Xiaomi, OPPO and vivo send them: after
//! a vendor personality accepted a push that asked for a receipt, the simulator POSTs that
//! vendor's receipt format (signed as the vendor signs) to the callback address.
//!
//! Off by default; per vendor from the config (`[[sim.receipts]]`) or at run time:
//! `POST /sim/receipts` with `{vendor, url?, callback_user?, callback_key?, clicked?}`
//! turns one vendor on (or changes it), `GET /sim/receipts` lists them, `DELETE
//! /sim/receipts` turns them all off.
//!
//! Where the receipt goes and what it echoes, read from the accepted request:
//!
//! | vendor | address | echoed parameter |
//! |---|---|---|
//! | Huawei | the configured `url` (AppGallery Connect's receipt address) | `message.android.bi_tag` |
//! | Honor | the configured `url` | `android.biTag` |
//! | Xiaomi | `extra.callback` | `extra.callback.param` |
//! | OPPO | `notification.call_back_url` | `notification.call_back_parameter` |
//! | vivo | `extra.callback` | `extra.callback.param` |
//!
//! Each token gets its own receipt: `arrived`, then `clicked` when asked (Xiaomi, OPPO);
//! a token beginning `gone-` is accepted but its receipt says the token is dead (the app
//! was uninstalled after the send), the way a receipt brings news the send answer could
//! not. Huawei receipts carry `X-HUAWEI-CALLBACK-ID` when `callback_user` and
//! `callback_key` are set. The body formats are [`encode`]'s; `impush-receipts` documents
//! their sources.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use base64::Engine;
use hmac::{Hmac, Mac};
use impush_config::SimReceipts;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::Sim;

/// What a receipt says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptStatus {
    Arrived,
    Clicked,
    TokenInvalid,
}

/// The vendors that send receipts.
pub const RECEIPT_VENDORS: [&str; 5] = ["huawei", "honor", "xiaomi", "oppo", "vivo"];

/// A receipt body for `tokens` of one push with `param`, in `vendor`'s format, and its
/// content type; `None` for a vendor without receipts.
pub fn encode(
    vendor: &str,
    param: &str,
    tokens: &[&str],
    status: ReceiptStatus,
) -> Option<(Vec<u8>, &'static str)> {
    const JSON: &str = "application/json";
    let targets = tokens.join(",");
    let body = match vendor {
        "huawei" | "honor" => {
            // 0 delivered, 2 app not installed.
            let code = match status {
                ReceiptStatus::Arrived | ReceiptStatus::Clicked => 0,
                ReceiptStatus::TokenInvalid => 2,
            };
            let statuses: Vec<Value> = tokens
                .iter()
                .map(|token| {
                    json!({
                        "biTag": param, "appid": "", "token": token, "status": code,
                        "timestamp": crate::control::now_ms(), "requestId": ""
                    })
                })
                .collect();
            (json!({ "statuses": statuses }).to_string(), JSON)
        }
        "xiaomi" => {
            let kind = match status {
                ReceiptStatus::Arrived => 1,
                ReceiptStatus::Clicked => 2,
                ReceiptStatus::TokenInvalid => 16,
            };
            let data = json!({
                "sim-msg": { "param": param, "type": kind, "targets": targets, "jobkey": "",
                             "barStatus": "Enable", "timestamp": crate::control::now_ms() }
            });
            let form = serde_urlencoded::to_string([("data", data.to_string())]).ok()?;
            (form, "application/x-www-form-urlencoded")
        }
        "oppo" => {
            let event = match status {
                ReceiptStatus::Arrived => "push_arrive",
                ReceiptStatus::Clicked => "push_click",
                ReceiptStatus::TokenInvalid => "regid_invalid",
            };
            let body = json!([{
                "messageId": "sim-msg", "appId": "", "taskId": "sim-msg",
                "registrationIds": targets, "eventTime": crate::control::now_ms().to_string(),
                "param": param, "eventType": event
            }]);
            (body.to_string(), JSON)
        }
        "vivo" => (
            json!({ "sim-task": { "param": param, "targets": targets } }).to_string(),
            JSON,
        ),
        _ => return None,
    };
    Some((body.0.into_bytes(), body.1))
}

/// Huawei's `X-HUAWEI-CALLBACK-ID`: `timestamp=…;nonce=…;value=` Base64(HMAC-SHA256(key,
/// timestamp + nonce + user)).
pub fn huawei_callback_id(key: &str, timestamp: &str, nonce: &str, user: &str) -> Option<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).ok()?;
    mac.update(timestamp.as_bytes());
    mac.update(nonce.as_bytes());
    mac.update(user.as_bytes());
    let value = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    Some(format!("timestamp={timestamp};nonce={nonce};value={value}"))
}

/// The vendors sending receipts, and the client that sends them.
pub(crate) struct Receipts {
    settings: Mutex<BTreeMap<String, SimReceipts>>,
    client: reqwest::Client,
}

impl Receipts {
    pub fn new(list: &[SimReceipts]) -> Receipts {
        Receipts {
            settings: Mutex::new(list.iter().map(|r| (r.vendor.clone(), r.clone())).collect()),
            client: reqwest::Client::new(),
        }
    }

    fn settings(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, SimReceipts>> {
        self.settings
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// After `vendor` accepted a push to `token` (its request `payload`): sends the
    /// receipts, in the background, if that vendor sends them and the push asked for one.
    pub fn after_accept(&self, vendor: &str, token: &str, payload: &str) {
        let Some(settings) = self.settings().get(vendor).cloned() else {
            return;
        };
        let Ok(payload) = serde_json::from_str::<Value>(payload) else {
            return;
        };
        let Some((url, param)) = callback_of(vendor, &payload, &settings.url) else {
            return;
        };
        let mut statuses = vec![if token.starts_with("gone-") {
            ReceiptStatus::TokenInvalid
        } else {
            ReceiptStatus::Arrived
        }];
        if settings.clicked && statuses[0] == ReceiptStatus::Arrived {
            statuses.push(ReceiptStatus::Clicked);
        }
        let client = self.client.clone();
        let vendor = vendor.to_owned();
        let token = token.to_owned();
        // Outside any request: a handler's task may end before the receipt is sent.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            for status in statuses {
                let Some((body, content_type)) = encode(&vendor, &param, &[&token], status) else {
                    return;
                };
                let mut request = client
                    .post(&url)
                    .header("content-type", content_type)
                    .body(body);
                if vendor == "huawei"
                    && !settings.callback_user.is_empty()
                    && !settings.callback_key.is_empty()
                {
                    let timestamp = crate::control::now_ms().to_string();
                    let nonce = uuid::Uuid::new_v4().to_string();
                    if let Some(header) = huawei_callback_id(
                        &settings.callback_key,
                        &timestamp,
                        &nonce,
                        &settings.callback_user,
                    ) {
                        request = request.header("x-huawei-callback-id", header);
                    }
                }
                match request.send().await {
                    Ok(answer) if answer.status().is_success() => {}
                    Ok(answer) => {
                        tracing::warn!(vendor, status = %answer.status(), "receipt refused");
                    }
                    Err(err) => tracing::warn!(vendor, error = %err, "receipt not sent"),
                }
            }
        });
    }
}

/// Where the receipt for this accepted request goes and the parameter it echoes.
fn callback_of(vendor: &str, payload: &Value, configured_url: &str) -> Option<(String, String)> {
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    let configured = || Some(configured_url.to_owned()).filter(|u| !u.is_empty());
    match vendor {
        "huawei" => Some((
            configured()?,
            text(&payload["message"]["android"]["bi_tag"])?,
        )),
        "honor" => Some((configured()?, text(&payload["android"]["biTag"])?)),
        "xiaomi" => Some((
            text(&payload["extra.callback"])?,
            text(&payload["extra.callback.param"])?,
        )),
        "oppo" => Some((
            text(&payload["notification"]["call_back_url"])?,
            text(&payload["notification"]["call_back_parameter"])?,
        )),
        "vivo" => Some((
            text(&payload["extra"]["callback"])?,
            text(&payload["extra"]["callback.param"])?,
        )),
        _ => None,
    }
}

pub(crate) fn routes() -> Router<Arc<Sim>> {
    Router::new().route(
        "/sim/receipts",
        axum::routing::get(list).post(set).delete(clear),
    )
}

async fn list(State(sim): State<Arc<Sim>>) -> Json<Vec<SimReceipts>> {
    Json(sim.control.receipts.settings().values().cloned().collect())
}

async fn set(State(sim): State<Arc<Sim>>, Json(receipts): Json<SimReceipts>) -> Response {
    if !RECEIPT_VENDORS.contains(&receipts.vendor.as_str()) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": format!("no receipts for vendor {:?}; one of {RECEIPT_VENDORS:?}", receipts.vendor) })),
        )
            .into_response();
    }
    sim.control
        .receipts
        .settings()
        .insert(receipts.vendor.clone(), receipts);
    StatusCode::NO_CONTENT.into_response()
}

async fn clear(State(sim): State<Arc<Sim>>) -> StatusCode {
    sim.control.receipts.settings().clear();
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callback_is_read_from_each_vendor_request_as_the_payload_builders_write_it() {
        let url = "http://127.0.0.1:1/receipts/x/1?token=t";
        let table = [
            (
                "huawei",
                json!({"message":{"android":{"bi_tag":"7:m"}}}),
                Some((url, "7:m")),
            ),
            (
                "honor",
                json!({"android":{"biTag":"7:m"}}),
                Some((url, "7:m")),
            ),
            (
                "xiaomi",
                json!({"extra.callback": url, "extra.callback.param": "7:m"}),
                Some((url, "7:m")),
            ),
            (
                "oppo",
                json!({"notification":{"call_back_url": url, "call_back_parameter": "7:m"}}),
                Some((url, "7:m")),
            ),
            (
                "vivo",
                json!({"extra":{"callback": url, "callback.param": "7:m"}}),
                Some((url, "7:m")),
            ),
            ("vivo", json!({"title":"no receipt asked"}), None),
            ("apns", json!({"aps":{}}), None),
        ];
        for (vendor, payload, expected) in table {
            let got = callback_of(vendor, &payload, url);
            assert_eq!(
                got.as_ref().map(|(u, p)| (u.as_str(), p.as_str())),
                expected,
                "{vendor}"
            );
        }
    }
}
