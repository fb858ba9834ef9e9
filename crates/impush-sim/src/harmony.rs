//! The HarmonyOS NEXT Push Kit personality (Huawei's scenario-based REST API v3), under
//! `/harmony`.
//!
//! - `POST /harmony/v3/<projectId>/messages:send`, `Authorization: Bearer <JWT>` where the
//!   JWT is the service account's own (no token exchange): header `alg` `PS256` and `kid`
//!   a trusted key id, signature checked with that account's public key, `iss` its
//!   `sub_account`, `aud` `https://oauth-login.cloud.huawei.com/oauth2/v3/token`, `iat` and
//!   `exp`. Every answer is `{"code","msg","requestId"}`:
//!   - 401 `80200001` missing or unverifiable JWT, or a project other than the account's;
//!     401 `80200005` expired JWT (`exp` passed, or made or first used before the last
//!     `/sim/expire-auth`); 400 `80300036` a JWT valid for more than a day;
//!   - 400 `80100001` a `push-type` header missing or not one of 0, 1, 2, 6, 7, 10, a
//!     notification without `category`, `title`, `body` or `clickAction`, a `ttl` that is
//!     not 1 to 1 296 000 seconds; 400 `80100003` no JSON object or no `payload`, or a
//!     push-type other than 0 (only alert messages are simulated); 400 `80300010` 0 or more
//!     than 1000 tokens; 400 `80300030` a test message to more than 10 tokens; 400
//!     `80300008` over 4096 bytes without the tokens;
//!   - 200 `80000000` success; 200 `80100000` when some tokens start `invalid-`, `msg`
//!     being the JSON string `{"success":N,"failure":M,"illegal_tokens":[…]}`; 400
//!     `80300007` when all of them do.
//! - `POST /harmony/v1/<clientId>/messages:revoke` (message revocation, API v1 under the
//!   app's client id): the same JWT (the simulator does not know the apps' client ids, so
//!   any clientId of digits is taken, and no project is checked), header `push-type` `0` or
//!   `2` (else 400 `80100003`), body `{"notifyId": <integer>, "token": [1..1000]}` (400
//!   `80100001` without an integer `notifyId`, `80300010` for the token count): each token's
//!   notification with that `notifyId` is withdrawn (`GET /sim/notifications`), answer 200
//!   `80000000`.
//! - Injected faults answer with their status and `{"code":<reason>,"msg","requestId"}`,
//!   plus `Retry-After` if given; a fault on any token of a batch fails the whole request.
//!
//! Sources: https://developer.huawei.com/consumer/cn/doc/harmonyos-guides/push-jwt-token
//! (the JWT), https://developer.huawei.com/consumer/en/doc/harmonyos-references/push-scenariozed-api-request-struct
//! (URL, headers, body), https://developer.huawei.com/consumer/cn/doc/doccenter-references/api/push-scenariozed-api-request-param.md
//! (pushOptions, target, notification) and
//! https://developer.huawei.com/consumer/en/doc/doccenter-references/api/push-scenariozed-api-response/
//! (codes and HTTP statuses), https://developer.huawei.com/consumer/cn/doc/harmonyos-references/push-msg-revoke/
//! (revocation). [unverified]: the shape of the `80100000` details and the
//! HTTP status that comes with `80300007`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use crate::control::{FaultReply, Record, now_ms};
use crate::{HarmonyAccount, Personality, Shown, Sim, SimError, SimSettings};

const AUDIENCE: &str = "https://oauth-login.cloud.huawei.com/oauth2/v3/token";
const MAX_MESSAGE_BYTES: usize = 4096;
const MAX_TOKENS: usize = 1000;
const MAX_TEST_TOKENS: usize = 10;
const MAX_TTL_S: u64 = 1_296_000;
/// The longest validity Push Kit accepts for a JWT (`80300036` beyond).
const MAX_JWT_VALIDITY_S: u64 = 24 * 3600;
/// How far in the future an `iat` may be: clock skew.
const IAT_SKEW_S: u64 = 60;
const READ_LIMIT: usize = 1024 * 1024;
const PUSH_TYPES: &[&str] = &["0", "1", "2", "6", "7", "10"];

const SUCCESS: &str = "80000000";
const PARTIAL_SUCCESS: &str = "80100000";
const PARAMETER_ERROR: &str = "80100001";
const BAD_STRUCTURE: &str = "80100003";
const AUTH_ERROR: &str = "80200001";
const JWT_EXPIRED: &str = "80200005";
const ALL_TOKENS_INVALID: &str = "80300007";
const TOO_LARGE: &str = "80300008";
const TOKEN_COUNT: &str = "80300010";
const TEST_TOKEN_COUNT: &str = "80300030";
const JWT_TOO_LONG: &str = "80300036";

/// The HarmonyOS personality: trusted service accounts by key id, and the JWTs seen.
pub(crate) struct Harmony {
    accounts: HashMap<String, TrustedAccount>,
    /// The auth epoch each JWT was first seen in, by JWT.
    seen: Mutex<HashMap<String, u64>>,
    requests: AtomicU64,
}

struct TrustedAccount {
    sub_account: String,
    project_id: String,
    key: DecodingKey,
}

impl Harmony {
    pub fn new(accounts: &[HarmonyAccount]) -> Result<Harmony, SimError> {
        let accounts = accounts
            .iter()
            .map(|a| {
                let key = DecodingKey::from_rsa_pem(a.public_pem.as_bytes()).map_err(|e| {
                    SimError::BadKey {
                        owner: format!("HarmonyOS service account {}", a.sub_account),
                        message: format!("not an RSA public key PEM: {e}"),
                    }
                })?;
                Ok((
                    a.key_id.clone(),
                    TrustedAccount {
                        sub_account: a.sub_account.clone(),
                        project_id: a.project_id.clone(),
                        key,
                    },
                ))
            })
            .collect::<Result<_, SimError>>()?;
        Ok(Harmony {
            accounts,
            seen: Mutex::new(HashMap::new()),
            requests: AtomicU64::new(0),
        })
    }

    fn seen(&self) -> MutexGuard<'_, HashMap<String, u64>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn request_id(&self) -> String {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        format!("{}{n:011}", now_ms())
    }

    /// Checks the JWT of a request (a send: for `project_id`): the code to refuse with, if
    /// any.
    fn authenticate(
        &self,
        sim: &Sim,
        headers: &HeaderMap,
        project_id: Option<&str>,
    ) -> Result<(), &'static str> {
        let jwt = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, jwt)| jwt.trim())
            .filter(|jwt| !jwt.is_empty())
            .ok_or(AUTH_ERROR)?;
        let header = jsonwebtoken::decode_header(jwt).map_err(|_| AUTH_ERROR)?;
        if header.alg != Algorithm::PS256 {
            return Err(AUTH_ERROR);
        }
        let account = header
            .kid
            .as_deref()
            .and_then(|kid| self.accounts.get(kid))
            .ok_or(AUTH_ERROR)?;
        let mut validation = Validation::new(Algorithm::PS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.set_audience(&[AUDIENCE]);
        let claims = jsonwebtoken::decode::<Value>(jwt, &account.key, &validation)
            .map_err(|_| AUTH_ERROR)?
            .claims;
        if claims["iss"].as_str() != Some(account.sub_account.as_str())
            || project_id.is_some_and(|p| p != account.project_id)
        {
            return Err(AUTH_ERROR);
        }
        let (Some(iat), Some(exp)) = (claims["iat"].as_u64(), claims["exp"].as_u64()) else {
            return Err(AUTH_ERROR);
        };
        let now = now_ms() / 1000;
        if iat > now + IAT_SKEW_S || exp < iat {
            return Err(AUTH_ERROR);
        }
        if exp - iat > MAX_JWT_VALIDITY_S {
            return Err(JWT_TOO_LONG);
        }
        if exp <= now || iat < sim.control.auth_expired_before_s() {
            return Err(JWT_EXPIRED);
        }
        let epoch = sim.control.auth_epoch();
        let mut seen = self.seen();
        if seen.len() >= 4096 {
            seen.clear();
        }
        let first_seen = *seen.entry(jwt.to_owned()).or_insert(epoch);
        if first_seen < epoch {
            return Err(JWT_EXPIRED);
        }
        Ok(())
    }
}

impl Personality for Harmony {
    const NAME: &'static str = "harmony";

    fn routes() -> Router<Arc<Sim>> {
        Router::new()
            .route("/harmony", any(handle))
            .route("/harmony/{*path}", any(handle))
    }

    fn fault_response(fault: &FaultReply) -> Response {
        let mut response = push_kit_answer(
            fault.status,
            &fault.reason,
            "injected fault",
            &format!("{}{:011}", now_ms(), 0),
        );
        if let Some((name, value)) = fault.retry_after()
            && let Ok(value) = HeaderValue::from_str(&value)
        {
            response.headers_mut().insert(name, value);
        }
        response
    }

    fn shown(payload: &Value) -> Shown {
        let notification = &payload["payload"]["notification"];
        let text = |name: &str| notification[name].as_str().map(str::to_owned);
        let sound = text("sound").or_else(|| Some("default".to_owned()));
        Shown {
            title: text("title"),
            body: text("body"),
            badge: notification["badge"]["setNum"].as_u64(),
            sound,
            ext: notification["clickAction"]["data"]["ext"]
                .as_str()
                .map(str::to_owned),
        }
    }

    fn from_settings(settings: &SimSettings) -> Result<Harmony, SimError> {
        Harmony::new(&settings.harmony_accounts)
    }
}

/// The English `msg` of each code (clients must not read it).
fn message_of(code: &str) -> &'static str {
    match code {
        SUCCESS => "Success",
        PARAMETER_ERROR => "Check Parameter Error.",
        BAD_STRUCTURE => "Illegal payload",
        AUTH_ERROR => "Authentication Error.",
        JWT_EXPIRED => "Jwt token expired.",
        ALL_TOKENS_INVALID => "All the tokens are invalid.",
        TOO_LARGE => "Push message size is too long.",
        TOKEN_COUNT => "token count should within 1 and 1000.",
        TEST_TOKEN_COUNT => "When send test message, token count exceed limit.",
        JWT_TOO_LONG => "JWT expire period over threshold.",
        _ => "Unknown error",
    }
}

fn push_kit_answer(status: StatusCode, code: &str, msg: &str, request_id: &str) -> Response {
    (
        status,
        [("content-type", "application/json;charset=UTF-8")],
        json!({ "code": code, "msg": msg, "requestId": request_id }).to_string(),
    )
        .into_response()
}

fn answer(sim: &Sim, status: StatusCode, code: &str) -> Response {
    push_kit_answer(status, code, message_of(code), &sim.harmony.request_id())
}

async fn handle(State(sim): State<Arc<Sim>>, request: Request) -> Response {
    let path = request
        .uri()
        .path()
        .strip_prefix("/harmony")
        .unwrap_or_default()
        .to_owned();
    let project_id = path
        .strip_prefix("/v3/")
        .and_then(|rest| rest.strip_suffix("/messages:send"))
        .filter(|p| !p.is_empty() && !p.contains('/'));
    let client_id = path
        .strip_prefix("/v1/")
        .and_then(|rest| rest.strip_suffix("/messages:revoke"))
        .filter(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()));
    match (project_id, client_id) {
        (Some(project_id), _) if request.method() == Method::POST => {
            let project_id = project_id.to_owned();
            send(&sim, &project_id, request).await
        }
        (_, Some(_)) if request.method() == Method::POST => revoke(&sim, request).await,
        _ => (StatusCode::NOT_FOUND, "Not Found").into_response(),
    }
}

/// `POST /harmony/v1/<clientId>/messages:revoke`.
async fn revoke(sim: &Sim, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if let Err(code) = sim.harmony.authenticate(sim, &parts.headers, None) {
        let status = if code == JWT_TOO_LONG {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::UNAUTHORIZED
        };
        return answer(sim, status, code);
    }
    let push_type = parts
        .headers
        .get("push-type")
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    if !matches!(push_type, Some("0" | "2")) {
        return answer(sim, StatusCode::BAD_REQUEST, BAD_STRUCTURE);
    }
    let Ok(body) = axum::body::to_bytes(body, READ_LIMIT).await else {
        return answer(sim, StatusCode::BAD_REQUEST, TOO_LARGE);
    };
    let Some(request) = serde_json::from_slice::<Value>(&body)
        .ok()
        .filter(Value::is_object)
    else {
        return answer(sim, StatusCode::BAD_REQUEST, BAD_STRUCTURE);
    };
    let (notify_id, tokens) = match check_revoke(&request) {
        Ok(checked) => checked,
        Err(code) => return answer(sim, StatusCode::BAD_REQUEST, code),
    };
    for token in &tokens {
        if let Some(fault) = sim
            .control
            .strike(Harmony::NAME, token, &sim.shutdown)
            .await
        {
            return Harmony::fault_response(&fault);
        }
    }
    let notify_id = notify_id.to_string();
    for token in &tokens {
        sim.control.withdraw(Harmony::NAME, token, &notify_id);
    }
    answer(sim, StatusCode::OK, SUCCESS)
}

/// Checks a revoke body: its notifyId and tokens, or the code to refuse with.
fn check_revoke(request: &Value) -> Result<(i64, Vec<String>), &'static str> {
    let notify_id = request
        .get("notifyId")
        .and_then(Value::as_i64)
        .ok_or(PARAMETER_ERROR)?;
    let tokens: Vec<String> = match request.get("token") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| t.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or(PARAMETER_ERROR)?,
        Some(_) => return Err(PARAMETER_ERROR),
        None => Vec::new(),
    };
    if tokens.is_empty() || tokens.len() > MAX_TOKENS {
        return Err(TOKEN_COUNT);
    }
    Ok((notify_id, tokens))
}

/// `POST /harmony/v3/<projectId>/messages:send`.
async fn send(sim: &Sim, project_id: &str, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if let Err(code) = sim
        .harmony
        .authenticate(sim, &parts.headers, Some(project_id))
    {
        tracing::debug!(code, "HarmonyOS send refused");
        let status = if code == JWT_TOO_LONG {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::UNAUTHORIZED
        };
        return answer(sim, status, code);
    }
    let push_type = parts
        .headers
        .get("push-type")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or_default();
    if !PUSH_TYPES.contains(&push_type) {
        return answer(sim, StatusCode::BAD_REQUEST, PARAMETER_ERROR);
    }
    if push_type != "0" {
        return answer(sim, StatusCode::BAD_REQUEST, BAD_STRUCTURE);
    }
    let Ok(body) = axum::body::to_bytes(body, READ_LIMIT).await else {
        return answer(sim, StatusCode::BAD_REQUEST, TOO_LARGE);
    };
    let Some(request) = serde_json::from_slice::<Value>(&body)
        .ok()
        .filter(Value::is_object)
    else {
        return answer(sim, StatusCode::BAD_REQUEST, BAD_STRUCTURE);
    };
    let tokens = match check_request(&request) {
        Ok(tokens) => tokens,
        Err(code) => return answer(sim, StatusCode::BAD_REQUEST, code),
    };
    for token in &tokens {
        if let Some(fault) = sim
            .control
            .strike(Harmony::NAME, token, &sim.shutdown)
            .await
        {
            return Harmony::fault_response(&fault);
        }
    }
    let (illegal, legal): (Vec<&String>, Vec<&String>) =
        tokens.iter().partition(|t| t.starts_with("invalid-"));
    if legal.is_empty() {
        return answer(sim, StatusCode::BAD_REQUEST, ALL_TOKENS_INVALID);
    }
    let payload: Arc<str> = String::from_utf8_lossy(&body).into();
    let received_at_ms = now_ms();
    for token in &legal {
        sim.control.record(Record {
            vendor: Harmony::NAME,
            token: token.as_str().into(),
            payload: Arc::clone(&payload),
            headers: vec![("push-type", push_type.to_owned())],
            received_at_ms,
            shown: Harmony::shown,
        });
    }
    if illegal.is_empty() {
        return answer(sim, StatusCode::OK, SUCCESS);
    }
    let msg = json!({
        "success": legal.len(),
        "failure": illegal.len(),
        "illegal_tokens": illegal,
    })
    .to_string();
    push_kit_answer(
        StatusCode::OK,
        PARTIAL_SUCCESS,
        &msg,
        &sim.harmony.request_id(),
    )
}

/// Checks an alert message body; the tokens, or the code to refuse with.
fn check_request(request: &Value) -> Result<Vec<String>, &'static str> {
    let notification = request
        .get("payload")
        .filter(|p| p.is_object())
        .ok_or(BAD_STRUCTURE)?
        .get("notification")
        .filter(|n| n.is_object())
        .ok_or(BAD_STRUCTURE)?;
    let text = |name: &str| {
        notification
            .get(name)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    if !text("category") || !text("title") || !text("body") {
        return Err(PARAMETER_ERROR);
    }
    let action_type_ok = notification
        .get("clickAction")
        .and_then(|c| c.get("actionType"))
        .and_then(Value::as_u64)
        .is_some_and(|t| t <= 1);
    if !action_type_ok {
        return Err(PARAMETER_ERROR);
    }
    let tokens: Vec<String> = match request.get("target").and_then(|t| t.get("token")) {
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| t.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or(PARAMETER_ERROR)?,
        Some(_) => return Err(PARAMETER_ERROR),
        None => Vec::new(),
    };
    if tokens.is_empty() || tokens.len() > MAX_TOKENS {
        return Err(TOKEN_COUNT);
    }
    let options = request.get("pushOptions");
    if let Some(ttl) = options.and_then(|o| o.get("ttl"))
        && !ttl.as_u64().is_some_and(|t| (1..=MAX_TTL_S).contains(&t))
    {
        return Err(PARAMETER_ERROR);
    }
    let test_message = options
        .and_then(|o| o.get("testMessage"))
        .and_then(Value::as_bool)
        == Some(true);
    if test_message && tokens.len() > MAX_TEST_TOKENS {
        return Err(TEST_TOKEN_COUNT);
    }
    let mut without_tokens = request.clone();
    if let Some(target) = without_tokens
        .get_mut("target")
        .and_then(Value::as_object_mut)
    {
        target.remove("token");
    }
    if without_tokens.to_string().len() > MAX_MESSAGE_BYTES {
        return Err(TOO_LARGE);
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(tokens: Value) -> Value {
        json!({
            "payload": {"notification": {"category": "IM", "title": "T", "body": "B",
                "clickAction": {"actionType": 0, "data": {"ext": "x"}}, "badge": {"addNum": 1}}},
            "pushOptions": {"ttl": 30},
            "target": {"token": tokens}
        })
    }

    #[test]
    fn what_a_push_kit_client_sends_passes() {
        assert_eq!(
            check_request(&alert(json!(["a", "invalid-b"]))),
            Ok(vec!["a".into(), "invalid-b".into()])
        );
    }

    #[test]
    fn revoke_bodies_get_push_kit_codes() {
        assert_eq!(
            check_revoke(&json!({"notifyId": 7, "token": ["a", "b"]})),
            Ok((7, vec!["a".to_owned(), "b".to_owned()]))
        );
        // (body, code)
        let many: Vec<String> = (0..1001).map(|i| format!("t{i}")).collect();
        let table = [
            (json!({"token": ["a"]}), PARAMETER_ERROR),
            (json!({"notifyId": "7", "token": ["a"]}), PARAMETER_ERROR),
            (json!({"notifyId": 7, "token": "a"}), PARAMETER_ERROR),
            (json!({"notifyId": 7, "token": [1]}), PARAMETER_ERROR),
            (json!({"notifyId": 7}), TOKEN_COUNT),
            (json!({"notifyId": 7, "token": []}), TOKEN_COUNT),
            (json!({"notifyId": 7, "token": many}), TOKEN_COUNT),
        ];
        for (body, code) in table {
            assert_eq!(check_revoke(&body), Err(code), "{body}");
        }
    }

    #[test]
    fn malformed_requests_get_push_kit_codes() {
        assert_eq!(check_request(&json!({})), Err(BAD_STRUCTURE));
        assert_eq!(check_request(&alert(json!([]))), Err(TOKEN_COUNT));
        let many: Vec<String> = (0..1001).map(|i| format!("t{i}")).collect();
        assert_eq!(check_request(&alert(json!(many))), Err(TOKEN_COUNT));
        let mut no_category = alert(json!(["a"]));
        no_category["payload"]["notification"]
            .as_object_mut()
            .unwrap()
            .remove("category");
        assert_eq!(check_request(&no_category), Err(PARAMETER_ERROR));
        let mut no_click = alert(json!(["a"]));
        no_click["payload"]["notification"]
            .as_object_mut()
            .unwrap()
            .remove("clickAction");
        assert_eq!(check_request(&no_click), Err(PARAMETER_ERROR));
        let mut long_ttl = alert(json!(["a"]));
        long_ttl["pushOptions"]["ttl"] = json!(MAX_TTL_S + 1);
        assert_eq!(check_request(&long_ttl), Err(PARAMETER_ERROR));
        let mut test = alert(json!((0..11).map(|i| format!("t{i}")).collect::<Vec<_>>()));
        test["pushOptions"]["testMessage"] = json!(true);
        assert_eq!(check_request(&test), Err(TEST_TOKEN_COUNT));
        let mut big = alert(json!(["a"]));
        big["payload"]["notification"]["body"] = json!("x".repeat(MAX_MESSAGE_BYTES));
        assert_eq!(check_request(&big), Err(TOO_LARGE));
    }

    #[test]
    fn shown_reads_the_notification_and_the_ext_in_click_data() {
        let shown = Harmony::shown(&alert(json!(["a"])));
        assert_eq!(
            shown,
            Shown {
                title: Some("T".into()),
                body: Some("B".into()),
                badge: None,
                sound: Some("default".into()),
                ext: Some("x".into()),
            }
        );
    }
}
