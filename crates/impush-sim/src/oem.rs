//! What the Huawei Push Kit family's personalities share, written once: Huawei Push Kit v1,
//! Honor Push v1 (which grew out of it) and HarmonyOS NEXT Push Kit v3. The access tokens
//! an OAuth client-credentials endpoint issues and checks, the bearer header, the request
//! ids, the checks of a token list and a `ttl`, and the delivery of a batch in which tokens
//! starting `invalid-` are refused as unregistered.
//!
//! The simulator is the vendors' side: none of this is shared with the clients.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Form;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::Sim;
use crate::control::{FaultReply, Record, now_ms};

/// Access tokens issued to OAuth clients, each for an owner (Huawei: the app id; Honor:
/// the client id) and the auth epoch it was issued in (`/sim/expire-auth` ends an epoch).
pub(crate) struct AccessTokens {
    /// What issued tokens start with, so they look like the vendor's.
    prefix: &'static str,
    pub lifetime: Duration,
    tokens: Mutex<HashMap<String, Issued>>,
}

struct Issued {
    owner: String,
    expires_at: Instant,
    epoch: u64,
}

/// Why a bearer token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Missing, unknown, or issued for another owner.
    Unknown,
    /// Its lifetime is over, or it was issued before the last `/sim/expire-auth`.
    Expired,
}

impl AccessTokens {
    pub fn new(prefix: &'static str, lifetime: Duration) -> AccessTokens {
        AccessTokens {
            prefix,
            lifetime,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    fn tokens(&self) -> MutexGuard<'_, HashMap<String, Issued>> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new token for `owner`.
    pub fn issue(&self, owner: &str, epoch: u64) -> String {
        let token = format!("{}{}", self.prefix, Uuid::new_v4().simple());
        let now = Instant::now();
        let mut tokens = self.tokens();
        if tokens.len() >= 1024 {
            tokens.retain(|_, t| t.expires_at > now);
        }
        tokens.insert(
            token.clone(),
            Issued {
                owner: owner.to_owned(),
                expires_at: now + self.lifetime,
                epoch,
            },
        );
        token
    }

    /// Checks the bearer token of `headers`: `may_send(owner)` says whether its owner may
    /// send this request.
    pub fn check(
        &self,
        headers: &HeaderMap,
        epoch: u64,
        may_send: impl FnOnce(&str) -> bool,
    ) -> Result<(), Refused> {
        let token = bearer(headers).ok_or(Refused::Unknown)?;
        let tokens = self.tokens();
        let issued = tokens.get(token).ok_or(Refused::Unknown)?;
        if !may_send(&issued.owner) {
            return Err(Refused::Unknown);
        }
        if issued.epoch < epoch || issued.expires_at <= Instant::now() {
            return Err(Refused::Expired);
        }
        Ok(())
    }
}

/// A Push Kit answer (Huawei v1 and HarmonyOS v3): `{"code","msg","requestId"}`.
pub(crate) fn push_kit_answer(
    status: StatusCode,
    code: &str,
    msg: &str,
    request_id: &str,
) -> Response {
    (
        status,
        [("content-type", "application/json;charset=UTF-8")],
        json!({ "code": code, "msg": msg, "requestId": request_id }).to_string(),
    )
        .into_response()
}

/// `response` with the fault's `Retry-After`, when it has one.
pub(crate) fn with_retry_after(mut response: Response, fault: &FaultReply) -> Response {
    if let Some((name, value)) = fault.retry_after()
        && let Ok(value) = HeaderValue::from_str(&value)
    {
        response.headers_mut().insert(name, value);
    }
    response
}

/// The token of an `Authorization: Bearer <token>` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
}

/// A client-credentials grant, as its form arrived.
#[derive(Deserialize)]
pub(crate) struct Grant {
    grant_type: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// Why a token request is refused before its client is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadGrant {
    /// Not a form.
    Form,
    /// A `grant_type` other than `client_credentials`.
    Type,
}

/// Reads a client-credentials grant from a token request.
pub(crate) async fn read_grant(request: Request) -> Result<Grant, BadGrant> {
    let Form(grant) = Form::<Grant>::from_request(request, &())
        .await
        .map_err(|_| BadGrant::Form)?;
    if grant.grant_type.as_deref() != Some("client_credentials") {
        return Err(BadGrant::Type);
    }
    Ok(grant)
}

/// Request ids of Push Kit's shape: digits, the time first.
#[derive(Default)]
pub(crate) struct RequestIds(AtomicU64);

impl RequestIds {
    pub fn next(&self, digits: usize) -> String {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        format!("{}{n:0digits$}", now_ms())
    }
}

/// Why a token list is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadTokens {
    /// Not a list of strings (a parameter error).
    NotStrings,
    /// Empty or over `max` (the token-count error).
    Count,
}

/// The token list at `tokens` (missing: none): 1 to `max` strings.
pub(crate) fn token_list(tokens: Option<&Value>, max: usize) -> Result<Vec<String>, BadTokens> {
    let tokens: Vec<String> = match tokens {
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| t.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or(BadTokens::NotStrings)?,
        Some(_) => return Err(BadTokens::NotStrings),
        // Topic and condition sends are not simulated: a token list is what impush sends.
        None => Vec::new(),
    };
    if tokens.is_empty() || tokens.len() > max {
        return Err(BadTokens::Count);
    }
    Ok(tokens)
}

/// A TTL as Push Kit v1 and Honor take it: seconds with an optional fraction and an `s`
/// suffix.
pub(crate) fn is_ttl(ttl: &Value) -> bool {
    let Some(number) = ttl.as_str().and_then(|t| t.strip_suffix('s')) else {
        return false;
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && digits(fraction)
}

/// Whether `object.name` is a non-empty string.
pub(crate) fn has_text(object: &Value, name: &str) -> bool {
    object
        .get(name)
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
}

/// A batch's tokens split as the personality answers them: `illegal` start `invalid-`
/// (unregistered), `legal` the others, each of them recorded as a delivery.
pub(crate) struct Batch<'a> {
    pub legal: Vec<&'a String>,
    pub illegal: Vec<&'a String>,
}

/// What a delivery record of this batch carries besides its token.
pub(crate) struct Delivered<'a> {
    pub vendor: &'static str,
    pub body: &'a [u8],
    pub headers: Vec<(&'static str, String)>,
    pub shown: fn(&Value) -> crate::Shown,
}

impl<'a> Batch<'a> {
    /// Splits `tokens` and records a delivery of `delivered` for each legal one.
    pub fn deliver(sim: &Sim, tokens: &'a [String], delivered: Delivered<'_>) -> Batch<'a> {
        let (illegal, legal): (Vec<&String>, Vec<&String>) =
            tokens.iter().partition(|t| t.starts_with("invalid-"));
        let payload: Arc<str> = String::from_utf8_lossy(delivered.body).into();
        let received_at_ms = now_ms();
        for token in &legal {
            sim.control.record(Record {
                vendor: delivered.vendor,
                token: token.as_str().into(),
                payload: Arc::clone(&payload),
                headers: delivered.headers.clone(),
                received_at_ms,
                shown: delivered.shown,
            });
        }
        Batch { legal, illegal }
    }

    /// Push Kit's `80100000` details: the JSON string in `msg`.
    pub fn partial_success_msg(&self) -> String {
        json!({
            "success": self.legal.len(),
            "failure": self.illegal.len(),
            "illegal_tokens": self.illegal,
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_are_seconds_with_an_s() {
        for good in ["30s", "1.5s", "1296000s"] {
            assert!(is_ttl(&json!(good)), "{good}");
        }
        for bad in [
            json!("30"),
            json!("s"),
            json!("1.s"),
            json!(30),
            json!("-1s"),
        ] {
            assert!(!is_ttl(&bad), "{bad}");
        }
    }

    #[test]
    fn token_lists_are_1_to_max_strings() {
        assert_eq!(token_list(Some(&json!(["a"])), 2), Ok(vec!["a".into()]));
        assert_eq!(token_list(Some(&json!([])), 2), Err(BadTokens::Count));
        assert_eq!(token_list(None, 2), Err(BadTokens::Count));
        assert_eq!(
            token_list(Some(&json!(["a", "b", "c"])), 2),
            Err(BadTokens::Count)
        );
        assert_eq!(token_list(Some(&json!([1])), 2), Err(BadTokens::NotStrings));
        assert_eq!(token_list(Some(&json!("a")), 2), Err(BadTokens::NotStrings));
    }
}
