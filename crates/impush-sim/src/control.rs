//! The `/sim` control API and the state behind it: what each personality accepted
//! (deliveries), the faults waiting to be injected, and the auth epoch `expire-auth` moves.
//!
//! - `GET /sim/deliveries[?vendor=V][&token=T]`: accepted pushes, oldest first, one record
//!   per token; `DELETE /sim/deliveries` clears them.
//! - `POST /sim/faults` (a [`Fault`]), `GET /sim/faults`, `DELETE /sim/faults`. An
//!   `accepted` fault lets the request through and holds only its answer (the vendor has
//!   the push; the client times out).
//! - `POST /sim/expire-auth`: every access token and provider token issued so far is expired.
//! - `GET /sim/stats`: delivery counts and latency per vendor ([`crate::stats`]);
//!   `DELETE /sim/stats` resets them.
//! - `POST|GET|DELETE /sim/receipts`: vendors that send delivery receipts
//!   ([`crate::receipts`]).
//! - `GET /sim/notifications[?vendor=V][&token=T]`: what the devices' trays show, by
//!   notification id: replaced by a later push with the same id, or withdrawn by a revoke
//!   call ([`crate::tray`]); cleared with the deliveries.
//! - `GET /healthz`, `GET /readyz`.
//!
//! Everything is in memory behind one mutex, never held across an await.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::stats::{Stats, StatsReport};
use crate::tray::{Tray, TrayNotification, notification_id};
use crate::{Shown, Sim, VENDORS};

/// Deliveries kept; the oldest go first beyond this.
const MAX_DELIVERIES: usize = 1_000_000;

/// One accepted push to one token, as `GET /sim/deliveries` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub vendor: String,
    pub token: String,
    pub title: Option<String>,
    pub body: Option<String>,
    pub badge: Option<u64>,
    pub sound: Option<String>,
    pub ext: Option<String>,
    /// The whole request body the vendor received.
    pub payload: Value,
    /// The request headers that shape the push (APNs `apns-*`), when the vendor has any.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    pub received_at_ms: u64,
}

/// Makes the next `times` requests of `vendor` (to `token`, if given) fail with `status` and
/// the vendor's own error body carrying `reason`, after hanging `delay_ms`. A fault with a
/// delay and no status only slows those requests down.
///
/// With `accepted: true` (and a `delay_ms`, no `status`) the request is handled at once, so
/// the push is accepted and recorded, and only the answer waits `delay_ms`: past the
/// client's timeout the vendor has the push though the client never heard so, as a real
/// vendor may. A client that retries then delivers it twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub vendor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
    #[serde(default = "one")]
    pub times: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub accepted: bool,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    #[error("vendor `{0}` is not simulated (known: {known})", known = VENDORS.join(", "))]
    UnknownVendor(String),
    #[error("status {0} is not an HTTP error status (400-599)")]
    BadStatus(u16),
    #[error("a fault with a status needs the vendor's `reason`")]
    MissingReason,
    #[error("a fault needs a `status`, a `delay_ms`, or both")]
    NoEffect,
    #[error("`times` must be at least 1")]
    ZeroTimes,
    #[error("an `accepted` fault needs a `delay_ms` and no `status`: the request succeeds")]
    AcceptedNeedsDelayOnly,
}

impl Fault {
    fn validate(&self) -> Result<(), FaultError> {
        if !VENDORS.contains(&self.vendor.as_str()) {
            return Err(FaultError::UnknownVendor(self.vendor.clone()));
        }
        if self.times == 0 {
            return Err(FaultError::ZeroTimes);
        }
        if self.accepted && (self.status.is_some() || self.delay_ms.is_none()) {
            return Err(FaultError::AcceptedNeedsDelayOnly);
        }
        match self.status {
            Some(status) if !(400..=599).contains(&status) => Err(FaultError::BadStatus(status)),
            Some(_) if self.reason.as_deref().is_none_or(str::is_empty) => {
                Err(FaultError::MissingReason)
            }
            None if self.delay_ms.is_none() => Err(FaultError::NoEffect),
            _ => Ok(()),
        }
    }

    fn matches(&self, vendor: &str, token: &str) -> bool {
        self.vendor == vendor && self.token.as_deref().is_none_or(|t| t == token)
    }
}

/// How a personality must answer a request a fault struck.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FaultReply {
    pub status: StatusCode,
    pub reason: String,
    pub retry_after_s: Option<u64>,
}

impl FaultReply {
    /// The `Retry-After` header to add, when the fault has one.
    pub fn retry_after(&self) -> Option<(&'static str, String)> {
        self.retry_after_s
            .map(|seconds| ("retry-after", seconds.to_string()))
    }
}

/// An accepted push, kept lean: the payload stays text until someone lists it.
pub(crate) struct Record {
    pub vendor: &'static str,
    pub token: Box<str>,
    pub payload: Arc<str>,
    pub headers: Vec<(&'static str, String)>,
    pub received_at_ms: u64,
    pub shown: fn(&Value) -> Shown,
}

#[derive(Default)]
struct Inner {
    deliveries: VecDeque<Record>,
    faults: Vec<Fault>,
    stats: Stats,
    /// Idempotency keys accepted so far, by vendor (see [`Control::first_time`]).
    seen_keys: HashSet<(&'static str, String)>,
    tray: Tray,
}

/// How many idempotency keys are remembered before the oldest memory is dropped whole.
const MAX_SEEN_KEYS: usize = 100_000;

pub(crate) struct Control {
    inner: Mutex<Inner>,
    max_deliveries: usize,
    /// Bumped by `expire-auth`: credentials first seen or issued in an older epoch are expired.
    auth_epoch: AtomicU64,
    /// When `expire-auth` was last called, in Unix seconds: credentials made before then are
    /// expired even if the simulator has not seen them yet.
    auth_expired_before_s: AtomicU64,
    /// The vendors that send delivery receipts after a push ([`crate::receipts`]).
    pub receipts: crate::receipts::Receipts,
}

impl Default for Control {
    fn default() -> Control {
        Control::keeping(MAX_DELIVERIES)
    }
}

impl Control {
    /// A control state that keeps delivery records, or (for long benchmark runs, so memory
    /// stays flat) only counts them in the stats.
    pub fn new(record_deliveries: bool) -> Control {
        Control::keeping(if record_deliveries { MAX_DELIVERIES } else { 0 })
    }

    /// A control state that keeps at most `max_deliveries` deliveries.
    fn keeping(max_deliveries: usize) -> Control {
        Control {
            inner: Mutex::default(),
            max_deliveries,
            auth_epoch: AtomicU64::new(0),
            auth_expired_before_s: AtomicU64::new(0),
            receipts: crate::receipts::Receipts::new(&[]),
        }
    }

    /// Sends delivery receipts for these vendors.
    pub fn with_receipts(mut self, receipts: &[impush_config::SimReceipts]) -> Control {
        self.receipts = crate::receipts::Receipts::new(receipts);
        self
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves plain data behind; keep serving.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn record(&self, record: Record) {
        self.receipts
            .after_accept(record.vendor, &record.token, &record.payload);
        let mut inner = self.lock();
        inner
            .stats
            .count(record.vendor, &record.payload, record.received_at_ms);
        if self.max_deliveries == 0 {
            return;
        }
        if let Some(payload) = record_tracked(&record) {
            let id = notification_id(record.vendor, &payload, &record.headers);
            if let Some(id) = id {
                let shown = (record.shown)(&payload);
                inner.tray.show(
                    record.vendor,
                    &record.token,
                    id,
                    (shown.title, shown.body),
                    record.received_at_ms,
                );
            }
        }
        if inner.deliveries.len() >= self.max_deliveries {
            inner.deliveries.pop_front();
        }
        inner.deliveries.push_back(record);
    }

    pub fn deliveries(&self, vendor: Option<&str>, token: Option<&str>) -> Vec<Delivery> {
        let selected: Vec<_> = self
            .lock()
            .deliveries
            .iter()
            .filter(|r| vendor.is_none_or(|v| v == r.vendor))
            .filter(|r| token.is_none_or(|t| t == &*r.token))
            .map(|r| {
                (
                    r.vendor,
                    r.token.to_string(),
                    Arc::clone(&r.payload),
                    r.headers.clone(),
                    r.received_at_ms,
                    r.shown,
                )
            })
            .collect();
        selected
            .into_iter()
            .map(|(vendor, token, payload, headers, received_at_ms, shown)| {
                let payload = serde_json::from_str(&payload)
                    .unwrap_or_else(|_| Value::String(payload.to_string()));
                let Shown {
                    title,
                    body,
                    badge,
                    sound,
                    ext,
                } = shown(&payload);
                Delivery {
                    vendor: vendor.to_owned(),
                    token,
                    title,
                    body,
                    badge,
                    sound,
                    ext,
                    payload,
                    headers: headers
                        .into_iter()
                        .map(|(name, value)| (name.to_owned(), value))
                        .collect(),
                    received_at_ms,
                }
            })
            .collect()
    }

    pub fn clear_deliveries(&self) -> usize {
        let mut inner = self.lock();
        let count = inner.deliveries.len();
        inner.deliveries.clear();
        inner.seen_keys.clear();
        inner.tray.clear();
        count
    }

    /// Whether `key` is new for `vendor`, remembering it: vendors that drop a repeated
    /// idempotency key (OPPO's `app_message_id` per device, vivo's `requestId`) answer the
    /// repeat without delivering it again. Forgotten with the deliveries.
    pub fn first_time(&self, vendor: &'static str, key: String) -> bool {
        let mut inner = self.lock();
        if inner.seen_keys.len() >= MAX_SEEN_KEYS {
            inner.seen_keys.clear();
        }
        inner.seen_keys.insert((vendor, key))
    }

    /// A vendor's revoke call took notification `id` back from `token` (noted only while
    /// deliveries are recorded, like the tray it changes).
    pub fn withdraw(&self, vendor: &'static str, token: &str, id: &str) {
        if self.max_deliveries == 0 {
            return;
        }
        self.lock().tray.withdraw(vendor, token, id, now_ms());
    }

    pub fn notifications(
        &self,
        vendor: Option<&str>,
        token: Option<&str>,
    ) -> Vec<TrayNotification> {
        self.lock().tray.list(vendor, token)
    }

    pub fn stats(&self) -> StatsReport {
        self.lock().stats.report()
    }

    pub fn reset_stats(&self) {
        self.lock().stats.reset();
    }

    pub fn add_fault(&self, fault: Fault) -> Result<(), FaultError> {
        fault.validate()?;
        self.lock().faults.push(fault);
        Ok(())
    }

    pub fn faults(&self) -> Vec<Fault> {
        self.lock().faults.clone()
    }

    pub fn clear_faults(&self) -> usize {
        let mut inner = self.lock();
        let count = inner.faults.len();
        inner.faults.clear();
        count
    }

    /// Takes one use of the first fault matching this request, if any (`accepted` faults
    /// excepted: they act on the answer, see [`Control::hold_answer`]).
    fn take_fault(&self, vendor: &str, token: &str) -> Option<Fault> {
        let mut inner = self.lock();
        let index = inner
            .faults
            .iter()
            .position(|f| !f.accepted && f.matches(vendor, token))?;
        let fault = &mut inner.faults[index];
        fault.times -= 1;
        let struck = fault.clone();
        if fault.times == 0 {
            inner.faults.remove(index);
        }
        Some(struck)
    }

    /// Applies the first fault matching this request: hangs for its delay (cut short when
    /// the server stops), then gives the failure to answer with, if it has one.
    pub async fn strike(
        &self,
        vendor: &str,
        token: &str,
        shutdown: &watch::Receiver<bool>,
    ) -> Option<FaultReply> {
        let fault = self.take_fault(vendor, token)?;
        tracing::debug!(vendor, token, ?fault, "fault injected");
        if let Some(delay_ms) = fault.delay_ms {
            let mut shutdown = shutdown.clone();
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(delay_ms)) => {}
                _ = shutdown.wait_for(|stopped| *stopped) => {}
            }
        }
        let status = StatusCode::from_u16(fault.status?).ok()?;
        Some(FaultReply {
            status,
            reason: fault.reason.unwrap_or_default(),
            retry_after_s: fault.retry_after_s,
        })
    }

    /// Whether an `accepted` fault waits for `vendor`: only then is a request's body read
    /// twice to find its token.
    pub fn has_accepted_fault(&self, vendor: &str) -> bool {
        self.lock()
            .faults
            .iter()
            .any(|f| f.accepted && f.vendor == vendor)
    }

    /// Takes one use of the first `accepted` fault of `vendor` whose token the request names
    /// (`names_token`: in its path or body; a fault without a token matches any), and
    /// returns how long to hold the answer.
    pub fn hold_answer(
        &self,
        vendor: &str,
        names_token: impl Fn(&str) -> bool,
    ) -> Option<Duration> {
        let mut inner = self.lock();
        let index = inner.faults.iter().position(|f| {
            f.accepted && f.vendor == vendor && f.token.as_deref().is_none_or(&names_token)
        })?;
        let fault = &mut inner.faults[index];
        fault.times -= 1;
        let delay = Duration::from_millis(fault.delay_ms.unwrap_or(0));
        if fault.times == 0 {
            inner.faults.remove(index);
        }
        Some(delay)
    }

    pub fn expire_auth(&self) {
        self.auth_expired_before_s
            .store(now_ms() / 1000, Ordering::SeqCst);
        self.auth_epoch.fetch_add(1, Ordering::SeqCst);
    }

    pub fn auth_epoch(&self) -> u64 {
        self.auth_epoch.load(Ordering::SeqCst)
    }

    pub fn auth_expired_before_s(&self) -> u64 {
        self.auth_expired_before_s.load(Ordering::SeqCst)
    }
}

/// Milliseconds since the Unix epoch.
/// The payload of a push whose vendor's notifications have ids, parsed.
fn record_tracked(record: &Record) -> Option<Value> {
    matches!(record.vendor, "apns" | "fcm" | "harmony" | "xiaomi")
        .then(|| serde_json::from_str(&record.payload).ok())
        .flatten()
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

pub(crate) fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route(
            "/sim/deliveries",
            get(list_deliveries).delete(clear_deliveries),
        )
        .route(
            "/sim/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/sim/notifications", get(list_notifications))
        .route("/sim/expire-auth", post(expire_auth))
        .route("/sim/stats", get(stats).delete(reset_stats))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
}

fn bad_request(message: impl ToString) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": message.to_string() })),
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveryFilter {
    vendor: Option<String>,
    token: Option<String>,
}

async fn list_deliveries(
    State(sim): State<Arc<Sim>>,
    filter: Result<Query<DeliveryFilter>, QueryRejection>,
) -> Response {
    let Query(filter) = match filter {
        Ok(filter) => filter,
        Err(rejection) => return bad_request(rejection.body_text()),
    };
    if let Some(vendor) = &filter.vendor
        && !VENDORS.contains(&vendor.as_str())
    {
        return bad_request(FaultError::UnknownVendor(vendor.clone()));
    }
    Json(
        sim.control
            .deliveries(filter.vendor.as_deref(), filter.token.as_deref()),
    )
    .into_response()
}

async fn list_notifications(
    State(sim): State<Arc<Sim>>,
    filter: Result<Query<DeliveryFilter>, QueryRejection>,
) -> Response {
    let Query(filter) = match filter {
        Ok(filter) => filter,
        Err(rejection) => return bad_request(rejection.body_text()),
    };
    if let Some(vendor) = &filter.vendor
        && !VENDORS.contains(&vendor.as_str())
    {
        return bad_request(FaultError::UnknownVendor(vendor.clone()));
    }
    Json(
        sim.control
            .notifications(filter.vendor.as_deref(), filter.token.as_deref()),
    )
    .into_response()
}

async fn clear_deliveries(State(sim): State<Arc<Sim>>) -> Response {
    Json(json!({ "cleared": sim.control.clear_deliveries() })).into_response()
}

async fn stats(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.control.stats()).into_response()
}

async fn reset_stats(State(sim): State<Arc<Sim>>) -> Response {
    sim.control.reset_stats();
    Json(json!({ "reset": true })).into_response()
}

async fn list_faults(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.control.faults()).into_response()
}

async fn add_fault(
    State(sim): State<Arc<Sim>>,
    fault: Result<Json<Fault>, JsonRejection>,
) -> Response {
    let Json(fault) = match fault {
        Ok(fault) => fault,
        Err(rejection) => return bad_request(rejection.body_text()),
    };
    match sim.control.add_fault(fault.clone()) {
        Ok(()) => (StatusCode::CREATED, Json(fault)).into_response(),
        Err(e) => bad_request(e),
    }
}

async fn clear_faults(State(sim): State<Arc<Sim>>) -> Response {
    Json(json!({ "cleared": sim.control.clear_faults() })).into_response()
}

async fn expire_auth(State(sim): State<Arc<Sim>>) -> Response {
    sim.control.expire_auth();
    Json(json!({ "expired": true })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(vendor: &str) -> Fault {
        Fault {
            vendor: vendor.into(),
            token: None,
            status: Some(503),
            reason: Some("ServiceUnavailable".into()),
            retry_after_s: None,
            times: 2,
            delay_ms: None,
            accepted: false,
        }
    }

    #[test]
    fn an_accepted_fault_holds_only_the_answer_of_requests_naming_its_token() {
        let control = Control::default();
        let late = Fault {
            token: Some("aa".into()),
            status: None,
            reason: None,
            times: 1,
            delay_ms: Some(5_000),
            accepted: true,
            ..fault("fcm")
        };
        control.add_fault(late).unwrap();
        assert!(control.has_accepted_fault("fcm"));
        assert!(!control.has_accepted_fault("apns"));
        // The request itself is not struck: it is handled, and recorded, as usual.
        assert!(control.take_fault("fcm", "aa").is_none());
        assert_eq!(control.hold_answer("fcm", |t| t == "bb"), None);
        assert_eq!(
            control.hold_answer("fcm", |t| t == "aa"),
            Some(Duration::from_millis(5_000))
        );
        assert_eq!(control.hold_answer("fcm", |t| t == "aa"), None, "used up");
    }

    #[test]
    fn an_accepted_fault_needs_a_delay_and_no_status() {
        let control = Control::default();
        let with_status = Fault {
            delay_ms: Some(10),
            accepted: true,
            ..fault("fcm")
        };
        let without_delay = Fault {
            status: None,
            reason: None,
            accepted: true,
            ..fault("fcm")
        };
        for bad in [with_status, without_delay] {
            assert_eq!(
                control.add_fault(bad),
                Err(FaultError::AcceptedNeedsDelayOnly)
            );
        }
    }

    #[test]
    fn a_fault_is_used_up_after_its_times() {
        let control = Control::default();
        control.add_fault(fault("apns")).unwrap();
        assert!(control.take_fault("fcm", "t").is_none());
        assert!(control.take_fault("apns", "t").is_some());
        assert!(control.take_fault("apns", "t").is_some());
        assert!(control.take_fault("apns", "t").is_none());
    }

    #[test]
    fn a_fault_for_one_token_spares_the_others() {
        let control = Control::default();
        let mut f = fault("apns");
        f.token = Some("aa".into());
        control.add_fault(f).unwrap();
        assert!(control.take_fault("apns", "bb").is_none());
        assert!(control.take_fault("apns", "aa").is_some());
    }

    #[test]
    fn bad_faults_are_refused_with_the_reason() {
        let control = Control::default();
        let mut f = fault("nokia");
        assert!(matches!(
            control.add_fault(f.clone()),
            Err(FaultError::UnknownVendor(_))
        ));
        f.vendor = "fcm".into();
        f.status = Some(200);
        assert_eq!(
            control.add_fault(f.clone()),
            Err(FaultError::BadStatus(200))
        );
        f.status = Some(500);
        f.reason = None;
        assert_eq!(control.add_fault(f.clone()), Err(FaultError::MissingReason));
        f.status = None;
        assert_eq!(control.add_fault(f.clone()), Err(FaultError::NoEffect));
        f.delay_ms = Some(10);
        f.times = 0;
        assert_eq!(control.add_fault(f), Err(FaultError::ZeroTimes));
    }

    #[test]
    fn deliveries_keep_the_newest_when_full() {
        let control = Control::keeping(3);
        let record = |token: &str| Record {
            vendor: "apns",
            token: token.into(),
            payload: Arc::from("{}"),
            headers: Vec::new(),
            received_at_ms: 1,
            shown: |_| Shown::default(),
        };
        for token in ["1", "2", "3", "4"] {
            control.record(record(token));
        }
        let tokens: Vec<String> = control
            .deliveries(None, None)
            .into_iter()
            .map(|d| d.token)
            .collect();
        assert_eq!(tokens, ["2", "3", "4"]);
    }

    #[test]
    fn without_records_deliveries_are_only_counted() {
        let control = Control::new(false);
        control.record(Record {
            vendor: "fcm",
            token: "t".into(),
            payload: Arc::from(r#"{"ext":"impush_sent_ms_100"}"#),
            headers: Vec::new(),
            received_at_ms: 105,
            shown: |_| Shown::default(),
        });
        assert!(control.deliveries(None, None).is_empty());
        let stats = control.stats();
        assert_eq!(stats.total.count, 1);
        assert_eq!(stats.total.latency_ms.map(|l| l.max), Some(5));
    }
}
