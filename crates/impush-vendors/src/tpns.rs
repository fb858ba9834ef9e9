//! Tencent TPNS client: REST API v3 `POST /v3/push/app` with HTTP Basic auth
//! (<https://www.tencentcloud.com/document/api/1024/33764>).
//!
//! Sources: tencentcloud.com/document/api/1024/33764 (Push API: `invalid_targe_list`, sic, "is
//! returned only when the push target is a token list or a single token and the value of
//! `ignore_invalid_token` is 1"), /1024/33763 and cloud.tencent.com/document/product/548/39080
//! (error codes), /1024/38517 (service URLs), and xingePush/xinge-docs
//! `server_api/rest-api-v3ban-ben-shi-yong-zhi-nan.md` (Basic auth).
//!
//! - **Endpoint**: `base_url` + `/v3/push/app`; empty `base_url`: `https://api.tpns.tencent.com`
//!   (Guangzhou). Data is isolated per cluster, so other clusters go in `base_url`.
//! - **Auth**: `Authorization: Basic base64(AccessID:SecretKey)`, the credential's `app_id`
//!   and `tpns.app_secret`; nothing to refresh. A refused login (`1008003`, `10030002`) is a
//!   configuration error: `Rejected`.
//! - **Answer**: `{"seq","push_id","ret_code","err_msg","environment","invalid_targe_list"?}`.
//!   `ret_code` 0: every token not in `invalid_targe_list` was taken, listed ones are
//!   `InvalidToken`. Any other `ret_code` answers the whole request. impush sends one token as
//!   `audience_type: token` (a dead one gets `1008029`) and several with
//!   `ignore_invalid_token: 1`, so a token error for a *batch* cannot name its token: it is
//!   `Rejected` (with the code) rather than deleting every registration of the batch.
//! - **HTTP status**: business errors come back as HTTP 200; a third-party guide reports 403
//!   with `1008003` for bad logins, so the code is read whatever the status, and only an
//!   answer without `ret_code` is judged by its HTTP status.
//! - **Rate limit** `1008028`: `Retry` after `Retry-After`, else [`RATE_LIMIT_BACKOFF`].

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use base64::Engine;
use impush_config::{Config, Secret};
use impush_core::{Body, CredentialProfile, PushTarget, Vendor, VendorRequest};
use serde::Deserialize;

use crate::http;
use crate::{ClientError, Outcome, SendResult};

pub(crate) const DEFAULT_BASE_URL: &str = "https://api.tpns.tencent.com";
/// Tokens per second per sender process by default: No public figure: conservative.
pub(crate) const DEFAULT_RATE_PER_S: Option<u32> = Some(500);
/// How long to wait after "request too fast" when TPNS gives no `Retry-After`.
pub(crate) const RATE_LIMIT_BACKOFF: Duration = Duration::from_secs(1);

/// One TPNS credential's client.
pub(crate) struct Client {
    business_id: u64,
    base_url: String,
    /// `Basic base64(AccessID:SecretKey)`, built once.
    authorization: Secret,
    http: reqwest::Client,
}

/// Clients for every TPNS credential of the config.
pub(crate) fn clients(config: &Config) -> Result<HashMap<u64, Client>, ClientError> {
    crate::build_clients(config, Vendor::Tpns, |profile| client(config, profile))
}

fn client(config: &Config, profile: &CredentialProfile) -> Result<Client, ClientError> {
    let business_id = profile.business_id;
    let fail = |field, message: String| ClientError::Credential {
        business_id,
        field,
        message,
    };
    let (settings, base_url) = http::settings_and_base_url(config, business_id, DEFAULT_BASE_URL)?;
    let access_id = profile.app_id.trim();
    if access_id.is_empty() || access_id.contains(':') {
        return Err(fail(
            "app_id",
            "missing or not an AccessID: TPNS logs in with AccessID:SecretKey".into(),
        ));
    }
    let secrets = settings.tpns.as_ref().ok_or_else(|| {
        fail(
            "tpns",
            "missing: a TPNS credential needs [credentials.tpns] with `app_secret` (SecretKey)"
                .into(),
        )
    })?;
    let reference = secrets
        .app_secret
        .as_ref()
        .ok_or_else(|| fail("tpns.app_secret", "missing".into()))?;
    let secret_key = config
        .secret(reference)
        .map_err(|e| fail("tpns.app_secret", e.to_string()))?;
    if secret_key.expose().trim().is_empty() {
        return Err(fail("tpns.app_secret", "empty".into()));
    }
    let login = base64::engine::general_purpose::STANDARD
        .encode(format!("{access_id}:{}", secret_key.expose()));
    let http = http::builder(crate::request_timeout(config))
        .build()
        .map_err(|e| fail("base_url", format!("cannot build the HTTP client: {e}")))?;
    Ok(Client {
        business_id,
        base_url,
        authorization: Secret::new(format!("Basic {login}")),
        http,
    })
}

impl Client {
    /// Sends one push to every token of `targets` (at most 1000, one request).
    pub(crate) async fn send(&self, request: &VendorRequest, targets: &[PushTarget]) -> SendResult {
        let outcomes = if let Body::Json(_) = &request.body {
            let url = format!("{}{}", self.base_url, request.path);
            match http::post(
                &self.http,
                &url,
                "application/json",
                &request.headers,
                Some(self.authorization.expose()),
                request.body.to_bytes(),
            )
            .await
            {
                Ok(exchange) => {
                    let outcomes = classify(
                        exchange.status,
                        &exchange.body,
                        exchange.retry_after,
                        targets,
                    );
                    return self.finish(targets, exchange.status, outcomes);
                }
                Err(reason) => vec![
                    Outcome::Retry {
                        after: None,
                        reason
                    };
                    targets.len()
                ],
            }
        } else {
            vec![
                Outcome::Rejected {
                    reason: "tpns takes a JSON body".into(),
                };
                targets.len()
            ]
        };
        self.finish(targets, 0, outcomes)
    }

    fn finish(&self, targets: &[PushTarget], status: u16, outcomes: Vec<Outcome>) -> SendResult {
        for (target, outcome) in targets.iter().zip(&outcomes) {
            http::log_outcome("tpns", self.business_id, &target.token, status, outcome);
        }
        SendResult { status, outcomes }
    }
}

#[derive(Deserialize)]
struct Answer {
    ret_code: i64,
    #[serde(default)]
    invalid_targe_list: Vec<serde_json::Value>,
}

/// One outcome per target from TPNS's answer.
pub(crate) fn classify(
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
    targets: &[PushTarget],
) -> Vec<Outcome> {
    let every = |outcome: Outcome| vec![outcome; targets.len()];
    let Ok(answer) = serde_json::from_slice::<Answer>(body) else {
        let reason = format!("http {status}");
        return every(if status == 429 || status >= 500 {
            Outcome::Retry {
                after: retry_after,
                reason,
            }
        } else if (200..300).contains(&status) {
            Outcome::Retry {
                after: retry_after,
                reason: "tpns: unreadable answer".into(),
            }
        } else {
            Outcome::Rejected { reason }
        });
    };
    if answer.ret_code != OK {
        return every(ret_code(answer.ret_code, retry_after, targets.len()));
    }
    let invalid: HashSet<&str> = answer
        .invalid_targe_list
        .iter()
        .filter_map(serde_json::Value::as_str)
        .collect();
    targets
        .iter()
        .map(|t| {
            if invalid.contains(t.token.as_str()) {
                Outcome::InvalidToken {
                    reason: "invalid_targe_list".into(),
                }
            } else {
                Outcome::Delivered
            }
        })
        .collect()
}

// TPNS server codes (tencentcloud.com/document/api/1024/33763).
const OK: i64 = 0;
const PARSE_ERROR: i64 = 1_008_001;
const MISSING_PARAMETER: i64 = 1_008_002;
const AUTH_FAILED: i64 = 1_008_003;
const INTERNAL_CALL_FAILED: i64 = 1_008_004;
const TOKEN_INVALID_TAG_ACCOUNT: i64 = 1_008_006;
const INVALID_PARAMETER: i64 = 1_008_007;
const FILE_UPLOAD_FAILED: i64 = 1_008_011;
const FILE_EMPTY: i64 = 1_008_012;
const CERT_PARSE_FAILED: i64 = 1_008_013;
const PUSH_ID_NOT_FOUND: i64 = 1_008_015;
const DATE_FORMAT: i64 = 1_008_016;
const CONTENT_REJECTED: i64 = 1_008_019;
const CERT_CHECK_20: i64 = 1_008_020;
const CERT_CHECK_21: i64 = 1_008_021;
const CERT_CHECK_22: i64 = 1_008_022;
const IOS_CERT_EXPIRED: i64 = 1_008_023;
const APP_OPERATION_25: i64 = 1_008_025;
const APP_OPERATION_26: i64 = 1_008_026;
const BATCH_OPERATION_27: i64 = 1_008_027;
const TOO_FAST: i64 = 1_008_028;
const TOKEN_INVALID: i64 = 1_008_029;
const APP_NOT_PAID: i64 = 1_008_030;
const APP_DESTROYED: i64 = 1_008_031;
const NO_RESOURCES: i64 = 1_010_001;
const TARGET_NOT_FOUND: i64 = 10_010_005;
const BAD_SEND_TIME: i64 = 10_010_012;
const DUPLICATE_PUSH: i64 = 10_010_018;
const ACCESS_ID_KEY_MISMATCH: i64 = 10_030_002;
const TOKEN_NOT_FOUND: i64 = 10_110_008;

/// A non-zero `ret_code`: the answer for all `count` targets of the request.
pub(crate) fn ret_code(code: i64, retry_after: Option<Duration>, count: usize) -> Outcome {
    let reason = code.to_string();
    match code {
        TOKEN_INVALID | TARGET_NOT_FOUND | TOKEN_NOT_FOUND | TOKEN_INVALID_TAG_ACCOUNT => {
            if count == 1 {
                Outcome::InvalidToken { reason }
            } else {
                // Which token of the batch is unknown: never delete them all.
                Outcome::Rejected {
                    reason: format!("{reason} for a batch"),
                }
            }
        }
        INTERNAL_CALL_FAILED => Outcome::Retry {
            after: retry_after,
            reason,
        },
        TOO_FAST => Outcome::Retry {
            after: Some(retry_after.unwrap_or(RATE_LIMIT_BACKOFF)),
            reason,
        },
        PARSE_ERROR
        | MISSING_PARAMETER
        | AUTH_FAILED
        | INVALID_PARAMETER
        | FILE_UPLOAD_FAILED
        | FILE_EMPTY
        | CERT_PARSE_FAILED
        | PUSH_ID_NOT_FOUND
        | DATE_FORMAT
        | CONTENT_REJECTED
        | CERT_CHECK_20
        | CERT_CHECK_21
        | CERT_CHECK_22
        | IOS_CERT_EXPIRED
        | APP_OPERATION_25
        | APP_OPERATION_26
        | BATCH_OPERATION_27
        | APP_NOT_PAID
        | APP_DESTROYED
        | NO_RESOURCES
        | BAD_SEND_TIME
        | DUPLICATE_PUSH
        | ACCESS_ID_KEY_MISMATCH => Outcome::Rejected { reason },
        _ => Outcome::Rejected {
            reason: format!("unknown {reason}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::*;

    fn targets(tokens: &[&str]) -> Vec<PushTarget> {
        tokens
            .iter()
            .map(|t| PushTarget {
                user_id: "u".into(),
                device_id: "d".into(),
                token: (*t).into(),
                badge: None,
            })
            .collect()
    }

    fn retry(after: Option<Duration>, reason: &str) -> Outcome {
        Outcome::Retry {
            after,
            reason: reason.into(),
        }
    }

    fn invalid(reason: &str) -> Outcome {
        Outcome::InvalidToken {
            reason: reason.into(),
        }
    }

    fn rejected(reason: &str) -> Outcome {
        Outcome::Rejected {
            reason: reason.into(),
        }
    }

    #[test]
    fn tpns_ret_code_0_delivers_all_but_the_invalid_targe_list() {
        let body = serde_json::to_vec(&json!({
            "seq": 0, "push_id": "572728156", "ret_code": 0, "err_msg": "NO_ERROR",
            "environment": "product", "invalid_targe_list": ["b"]
        }))
        .unwrap();
        assert_eq!(
            classify(200, &body, None, &targets(&["a", "b", "c"])),
            vec![
                Outcome::Delivered,
                invalid("invalid_targe_list"),
                Outcome::Delivered
            ]
        );
    }

    #[test]
    fn tpns_every_ret_code_is_classified() {
        let after = Some(Duration::from_secs(4));
        let cases = [
            (1_008_029, 1, None, invalid("1008029")),
            (10_010_005, 1, None, invalid("10010005")),
            (10_110_008, 1, None, invalid("10110008")),
            (1_008_006, 1, None, invalid("1008006")),
            (1_008_029, 3, None, rejected("1008029 for a batch")),
            (10_010_005, 2, None, rejected("10010005 for a batch")),
            (1_008_004, 1, after, retry(after, "1008004")),
            (
                1_008_028,
                1,
                None,
                retry(Some(RATE_LIMIT_BACKOFF), "1008028"),
            ),
            (1_008_028, 1, after, retry(after, "1008028")),
            (1_008_001, 1, None, rejected("1008001")),
            (1_008_002, 1, None, rejected("1008002")),
            (1_008_003, 1, None, rejected("1008003")),
            (1_008_007, 1, None, rejected("1008007")),
            (1_008_011, 1, None, rejected("1008011")),
            (1_008_012, 1, None, rejected("1008012")),
            (1_008_013, 1, None, rejected("1008013")),
            (1_008_015, 1, None, rejected("1008015")),
            (1_008_016, 1, None, rejected("1008016")),
            (1_008_019, 1, None, rejected("1008019")),
            (1_008_020, 1, None, rejected("1008020")),
            (1_008_021, 1, None, rejected("1008021")),
            (1_008_022, 1, None, rejected("1008022")),
            (1_008_023, 1, None, rejected("1008023")),
            (1_008_025, 1, None, rejected("1008025")),
            (1_008_026, 1, None, rejected("1008026")),
            (1_008_027, 1, None, rejected("1008027")),
            (1_008_030, 1, None, rejected("1008030")),
            (1_008_031, 1, None, rejected("1008031")),
            (1_010_001, 1, None, rejected("1010001")),
            (10_010_012, 1, None, rejected("10010012")),
            (10_010_018, 1, None, rejected("10010018")),
            (10_030_002, 1, None, rejected("10030002")),
            (4242, 1, None, rejected("unknown 4242")),
        ];
        for (code, count, after, expected) in cases {
            assert_eq!(ret_code(code, after, count), expected, "{code}");
            let tokens: Vec<String> = (0..count).map(|i| format!("t{i}")).collect();
            let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
            let body =
                serde_json::to_vec(&json!({"ret_code": code, "err_msg": "whatever"})).unwrap();
            assert_eq!(
                classify(200, &body, after, &targets(&tokens)),
                vec![expected; count],
                "{code} for every target"
            );
        }
    }

    #[test]
    fn tpns_auth_failure_is_read_from_the_body_whatever_the_status() {
        let body = br#"{"ret_code":1008003,"err_msg":"authentication failed"}"#;
        assert_eq!(
            classify(403, body, None, &targets(&["a"])),
            vec![rejected("1008003")]
        );
    }

    #[test]
    fn tpns_answers_without_ret_code_fall_back_to_the_http_status() {
        let after = Some(Duration::from_secs(2));
        let t = targets(&["a"]);
        assert_eq!(
            classify(503, b"", after, &t),
            vec![retry(after, "http 503")]
        );
        assert_eq!(classify(401, b"", None, &t), vec![rejected("http 401")]);
        assert_eq!(
            classify(200, b"<html>", None, &t),
            vec![retry(None, "tpns: unreadable answer")]
        );
    }

    #[test]
    fn tpns_basic_auth_is_access_id_and_secret_key() {
        let clients = clients(&local_config()).unwrap();
        let client = &clients[&8];
        assert_eq!(client.base_url, "http://127.0.0.1:8700/tpns");
        let expected = base64::engine::general_purpose::STANDARD
            .encode("1500000008:impush-test-tpns-08206bbe748a6b473897a736");
        assert_eq!(client.authorization.expose(), format!("Basic {expected}"));
    }

    #[test]
    fn tpns_config_errors_name_the_business_id_and_field() {
        let dir = temp_dir("tpns-config");
        std::fs::write(dir.join("empty.txt"), "\n").unwrap();
        std::fs::write(dir.join("key.txt"), "k\n").unwrap();
        let cases = [
            ("app_id = \"1\"\n", "tpns"),
            ("app_id = \"1\"\n[credentials.tpns]\n", "tpns.app_secret"),
            (
                "app_id = \"1\"\n[credentials.tpns]\napp_secret = { file = \"missing.txt\" }\n",
                "tpns.app_secret",
            ),
            (
                "app_id = \"1\"\n[credentials.tpns]\napp_secret = { file = \"empty.txt\" }\n",
                "tpns.app_secret",
            ),
            (
                "app_id = \"1\"\nbase_url = \"tpns\"\n[credentials.tpns]\napp_secret = { file = \"key.txt\" }\n",
                "base_url",
            ),
        ];
        for (rest, field) in cases {
            let text = format!("[[credentials]]\nbusiness_id = 9\nvendor = \"tpns\"\n{rest}");
            let err = match clients(&config_in(&dir, &text)) {
                Ok(_) => panic!("accepted: {rest}"),
                Err(e) => e.to_string(),
            };
            assert!(err.contains("credential 9"), "{err}");
            assert!(err.contains(&format!("`{field}`")), "{field}: {err}");
        }
    }
}
