//! The receipt endpoints, `POST /receipts/<vendor>/<business_id>`: each request is checked
//! (the vendor's signature or the URL's token), read ([`crate::formats`]), counted
//! (`impush_receipts_total{vendor,status}`), and acted on:
//!
//! - every receipt whose push's app opted in becomes a `feedback.push` outcome (`arrived`,
//!   `clicked`, or `invalid_token`/`skipped` with the vendor's status as reason);
//! - a receipt saying the token is dead prunes that registration if it still holds the
//!   token, and publishes `TokenInvalidated` on `feedback.token`, as the sender does.
//!
//! The receipt names the push by the parameter the sender put in the request
//! (`<sdk_app_id>:<msg_id>`) and the device by its token; the user and device ids are found
//! in the list of devices the message reached ([`Store::shown_pushes`]). A receipt for a push
//! no longer remembered is counted and answered, and nothing else happens.
//!
//! Answers: 200 once everything is done; 401 for a bad signature or token, 400 for a body
//! that cannot be read, 404 for an unknown vendor or credential (none of them worth a
//! retry); 503 when Redis or the broker failed, so that a vendor that retries does.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use impush_amqp::{ClientTls, Connection, Outcomes, Outgoing, Publisher, Topology};
use impush_config::Config;
use impush_core::payload::receipt::parse_param;
use impush_core::text::short_token;
use impush_core::vendor;
use impush_proto::v1::{PushOutcome, PushOutcomeKind, ShownPush, TokenInvalidated, Vendor};
use impush_runtime::now_ms;
use impush_store::Store;
use prost::Message;
use tokio::sync::Mutex;

use crate::formats::{self, Receipt, Rejection, Status};

/// The `status` of `impush_receipts_total` for a request answered 503 because Redis or the
/// broker failed (the vendor may send it again).
pub const FAILED: &str = "failed";

/// How one credential's receipts prove themselves.
#[derive(Default)]
pub struct Check {
    /// The receipt URL's `token` query parameter must be this.
    pub token: Option<String>,
    /// Huawei's callback user name and key (`X-HUAWEI-CALLBACK-ID`).
    pub huawei: Option<(String, Vec<u8>)>,
}

/// The checks of every credential, secrets resolved; an error names the credential.
pub fn checks(config: &Config) -> anyhow::Result<HashMap<u64, Check>> {
    let mut checks = HashMap::new();
    for (business_id, settings) in &config.vendors {
        let Some(receipt) = &settings.receipt else {
            continue;
        };
        let resolve = |reference: Option<&impush_config::SecretRef>| {
            reference
                .map(|r| config.secret(r).map(|s| s.expose().to_owned()))
                .transpose()
                .map_err(|e| anyhow::anyhow!("credential {business_id}: receipt secret: {e}"))
        };
        let key = resolve(receipt.callback_key.as_ref())?;
        let huawei = match (receipt.callback_user.is_empty(), key) {
            (false, Some(key)) => Some((receipt.callback_user.clone(), key.into_bytes())),
            _ => None,
        };
        checks.insert(
            *business_id,
            Check {
                token: resolve(receipt.token.as_ref())?,
                huawei,
            },
        );
    }
    Ok(checks)
}

/// Everything a receipt request needs.
pub struct Receipts {
    pub config: Arc<Config>,
    pub checks: HashMap<u64, Check>,
    pub store: Store,
    pub outcomes: Outcomes,
    pub feedback: FeedbackPublisher,
}

/// The routes, for `axum::serve`.
pub fn router(receipts: Arc<Receipts>) -> Router {
    let max_body = receipts.config.receipts.max_body_bytes;
    Router::new()
        .route("/receipts/{vendor}/{business_id}", post(receive))
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .with_state(receipts)
}

/// Publishes `TokenInvalidated` on a connection of its own, opened when first needed and
/// again after a failure.
pub struct FeedbackPublisher {
    urls: Vec<String>,
    tls: ClientTls,
    exchange: String,
    connection: Mutex<Option<(Connection, Publisher)>>,
}

impl FeedbackPublisher {
    pub fn new(urls: Vec<String>, tls: ClientTls, topology: &Topology) -> FeedbackPublisher {
        FeedbackPublisher {
            urls,
            tls,
            exchange: topology.events_exchange(),
            connection: Mutex::new(None),
        }
    }

    async fn publish(&self, event: &TokenInvalidated) -> Result<(), impush_amqp::AmqpError> {
        let mut connection = self.connection.lock().await;
        if connection.is_none() {
            let opened = impush_amqp::connect_any(&self.urls, &self.tls).await?;
            let publisher = Publisher::open(&opened).await?;
            *connection = Some((opened, publisher));
        }
        let Some((_, publisher)) = connection.as_ref() else {
            return Err(impush_amqp::AmqpError::NoAddress);
        };
        let result = publisher
            .publish(Outgoing {
                exchange: self.exchange.clone(),
                routing_key: "feedback.token".into(),
                body: event.encode_to_vec(),
                properties: impush_amqp::protobuf_properties("TokenInvalidated"),
                // As the sender: with no queue bound there is nobody to tell.
                mandatory: false,
            })
            .await;
        if result.is_err() {
            *connection = None;
        }
        result
    }
}

async fn receive(
    State(receipts): State<Arc<Receipts>>,
    Path((vendor_name, business_id)): Path<(String, u64)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(vendor) = vendor::parse(&vendor_name).filter(|v| formats::RECEIPT_VENDORS.contains(v))
    else {
        return (StatusCode::NOT_FOUND, "no receipts for this vendor").into_response();
    };
    let name = vendor::name(vendor);
    let known = receipts
        .config
        .credentials
        .get(&business_id)
        .is_some_and(|c| c.vendor == vendor);
    if !known {
        return (StatusCode::NOT_FOUND, "no such credential for this vendor").into_response();
    }
    let parsed = check(&receipts, vendor, business_id, query.as_deref(), &headers)
        .and_then(|()| formats::parse(vendor, &body));
    let list = match parsed {
        Ok(list) => list,
        Err(rejection) => {
            tracing::warn!(vendor = name, business_id, error = %rejection, "receipt refused");
            metrics::counter!("impush_receipts_total", "vendor" => name, "status" => rejection.label())
                .increment(1);
            let status = match rejection {
                Rejection::BadSignature => StatusCode::UNAUTHORIZED,
                Rejection::Malformed(_) => StatusCode::BAD_REQUEST,
            };
            return (status, rejection.to_string()).into_response();
        }
    };
    for receipt in &list {
        metrics::counter!("impush_receipts_total", "vendor" => name, "status" => receipt.status.label())
            .increment(1);
    }
    match act_on(&receipts, vendor, business_id, list).await {
        Ok(()) => answer(vendor),
        Err(detail) => {
            tracing::warn!(
                vendor = name,
                business_id,
                detail,
                "receipt not acted on; the vendor may retry"
            );
            metrics::counter!("impush_receipts_total", "vendor" => name, "status" => FAILED)
                .increment(1);
            (StatusCode::SERVICE_UNAVAILABLE, "try again later").into_response()
        }
    }
}

/// The vendor's proof: Huawei's HMAC header when configured, the URL token when configured.
fn check(
    receipts: &Receipts,
    vendor: Vendor,
    business_id: u64,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<(), Rejection> {
    let Some(check) = receipts.checks.get(&business_id) else {
        // Nothing configured: the credential's receipts are taken unchecked (the
        // start-up log says so).
        return Ok(());
    };
    if let Some(token) = &check.token
        && !formats::token_matches(query, token)
    {
        return Err(Rejection::BadSignature);
    }
    if let (Vendor::Huawei, Some((user, key))) = (vendor, &check.huawei) {
        let header = headers
            .get("x-huawei-callback-id")
            .and_then(|v| v.to_str().ok());
        formats::check_huawei_header(header, user, key)?;
    }
    Ok(())
}

/// What the vendor expects back on success.
fn answer(vendor: Vendor) -> Response {
    match vendor {
        // "errno", "errmsg" (push-receiptapi, response parameters).
        Vendor::Huawei | Vendor::Honor => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"errno": "0", "errmsg": "success"})),
        )
            .into_response(),
        _ => (StatusCode::OK, "ok").into_response(),
    }
}

/// Outcomes and pruning for the receipts of one request, one Redis read per message.
async fn act_on(
    receipts: &Receipts,
    vendor: Vendor,
    business_id: u64,
    list: Vec<Receipt>,
) -> Result<(), String> {
    let mut by_param: Vec<(String, Vec<Receipt>)> = Vec::new();
    for receipt in list {
        match by_param.iter_mut().find(|(p, _)| *p == receipt.param) {
            Some((_, group)) => group.push(receipt),
            None => by_param.push((receipt.param.clone(), vec![receipt])),
        }
    }
    for (param, group) in by_param {
        let Some((sdk_app_id, msg_id)) = parse_param(&param) else {
            tracing::debug!(param, "receipt without impush's parameter; counted only");
            continue;
        };
        let wants_outcomes = receipts.outcomes.wants(sdk_app_id);
        let prunes = group.iter().any(|r| r.status == Status::TokenInvalid);
        if !wants_outcomes && !prunes {
            continue;
        }
        let shown = shown_with_all(receipts, sdk_app_id, msg_id, business_id, &group).await?;
        for receipt in &group {
            let Some(device) = device_of(&shown, business_id, &receipt.token) else {
                tracing::debug!(
                    msg_id,
                    token = short_token(&receipt.token),
                    "receipt for a push no longer remembered"
                );
                continue;
            };
            if wants_outcomes {
                receipts.outcomes.record(outcome(
                    sdk_app_id,
                    msg_id,
                    vendor,
                    &device.user_id,
                    &device.device_id,
                    receipt,
                ));
            }
            if receipt.status == Status::TokenInvalid {
                prune(receipts, sdk_app_id, vendor, business_id, device, receipt).await?;
            }
        }
    }
    Ok(())
}

/// How long to wait before looking again for devices a receipt names but the message's
/// list does not hold yet: a vendor may post its receipt before the sender, which has just
/// had the vendor's answer, has written that list.
const LOOK_AGAIN_AFTER: [std::time::Duration; 2] = [
    std::time::Duration::from_millis(250),
    std::time::Duration::from_millis(1000),
];

/// The devices `msg_id` reached, looked up again (twice at most) while some receipt of
/// `group` names a token not among them.
async fn shown_with_all(
    receipts: &Receipts,
    sdk_app_id: u32,
    msg_id: &str,
    business_id: u64,
    group: &[Receipt],
) -> Result<Vec<ShownPush>, String> {
    let mut waits = LOOK_AGAIN_AFTER.iter();
    loop {
        let shown = receipts
            .store
            .shown_pushes(sdk_app_id, msg_id)
            .await
            .map_err(|e| e.to_string())?;
        let complete = group
            .iter()
            .all(|r| device_of(&shown, business_id, &r.token).is_some());
        match waits.next() {
            Some(wait) if !complete => tokio::time::sleep(*wait).await,
            _ => return Ok(shown),
        }
    }
}

/// The user and device a token of this credential belonged to when the push reached it.
fn device_of<'a>(
    shown: &'a [ShownPush],
    business_id: u64,
    token: &str,
) -> Option<&'a impush_proto::v1::PushTarget> {
    shown
        .iter()
        .filter(|push| push.business_id == business_id)
        .filter_map(|push| push.target.as_ref())
        .find(|target| target.token == token)
}

fn outcome(
    sdk_app_id: u32,
    msg_id: &str,
    vendor: Vendor,
    user_id: &str,
    device_id: &str,
    receipt: &Receipt,
) -> PushOutcome {
    let (kind, reason) = match receipt.status {
        Status::Arrived => (PushOutcomeKind::Arrived, String::new()),
        Status::Clicked => (PushOutcomeKind::Clicked, String::new()),
        Status::TokenInvalid => (PushOutcomeKind::InvalidToken, receipt.vendor_status.clone()),
        Status::Other => (
            PushOutcomeKind::Skipped,
            format!("vendor_receipt_{}", receipt.vendor_status),
        ),
    };
    PushOutcome {
        msg_id: msg_id.to_owned(),
        sdk_app_id,
        user_id: user_id.to_owned(),
        device_id: device_id.to_owned(),
        vendor: vendor as i32,
        outcome: kind as i32,
        reason,
        at_ms: now_ms(),
    }
}

/// The sender's invalid-token path: delete the registration if it still holds this token,
/// then tell IM core.
async fn prune(
    receipts: &Receipts,
    sdk_app_id: u32,
    vendor: Vendor,
    business_id: u64,
    device: &impush_proto::v1::PushTarget,
    receipt: &Receipt,
) -> Result<(), String> {
    let removed = receipts
        .store
        .remove_device_if_token(
            sdk_app_id,
            &device.user_id,
            &device.device_id,
            &device.token,
        )
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(device_id = %device.device_id, token = short_token(&device.token), status = %receipt.vendor_status, removed, "receipt: token invalid");
    if removed {
        metrics::counter!("impush_tokens_pruned_total", "vendor" => vendor::name(vendor))
            .increment(1);
    }
    let event = TokenInvalidated {
        sdk_app_id,
        user_id: device.user_id.clone(),
        device_id: device.device_id.clone(),
        vendor: vendor as i32,
        business_id,
        token: device.token.clone(),
        reason: receipt.vendor_status.clone(),
        at_ms: now_ms(),
    };
    receipts
        .feedback
        .publish(&event)
        .await
        .map_err(|e| e.to_string())
}
