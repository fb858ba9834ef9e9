//! Xiaomi MiPush client (server API v3,
//! <https://dev.mi.com/xiaomihyperos/documentation/detail?pId=1696>): a static app-secret header, batch
//! sends of up to 1000 regids, and the classification of every MiPush code per regid.
//!
//! - **Endpoint**: `base_url` + the request's `/v3/message/regid` (empty `base_url`:
//!   `https://api.xmpush.xiaomi.com`; global apps set `https://api.xmpush.global.xiaomi.com`
//!   or a regional host), form-urlencoded body as `impush-core` built it, with
//!   `Authorization: key=<xiaomi.app_secret>` added here. There is no token exchange, so
//!   nothing to cache or refresh: a refused key (`21301`) is `Rejected`.
//! - **Answers** (HTTP 200 for every API error) `{"result","code","data"?,"reason"}`,
//!   classified on `code`, never on `reason`/`description`:
//!
//! | code | outcome |
//! |---|---|
//! | `0` | regids in `data.bad_regids` `InvalidToken`, the others `Delivered` [S] |
//! | `20301` every target invalid [S] | every regid `InvalidToken` |
//! | `10001` system error, `10002` service paused, `10003` remote service error, `10009` system busy, `10011` RPC error, `10027`/`10028` app calls too frequent, `10037` [S] | `Retry` (with `Retry-After` if given) |
//! | `10022` IP quota, `10023` user quota, `10024` special-API quota | `Retry` (window undocumented: sender's backoff) |
//! | `200001` daily quota exceeded [S] | `Retry` with `after` until the next midnight, Beijing time (UTC+8), when MiPush's daily counters reset [M] |
//! | `-1`, `100`, `10004`–`10008`, `10010`, `10012`–`10014`, `10016`–`10018`, `10020`, `10021`, `10025`, `10026`, `10029`, `21301`, `22000`–`22008`, `22020`–`22022`, `22100`–`22103` | `Rejected` |
//! | any other code | `Rejected` |
//! | non-200 HTTP status | 429, 5xx `Retry`; else `Rejected` |
//!
//! Sources: the official Java SDK's `ErrorCode.java` and `Constants.java`
//! (ggg17226/xmpush-server-api-http2); `20301`, `21301`, `200001`, `10037` and `bad_regids`
//! from third-party PHP/Node/Go clients [S]. The SDK itself
//! retries on none of the codes; the retry set is the third-party consensus (10002, 10003,
//! 10027, 10037) widened by the SDK's own "system busy/error" meanings.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use impush_config::Config;
use impush_core::{CredentialProfile, PushTarget, Vendor, VendorRequest};
use serde_json::Value;

use crate::http;
use crate::util::until_china_midnight;
use crate::{ClientError, Outcome, SendResult};

pub(crate) const DEFAULT_BASE_URL: &str = "https://api.xmpush.xiaomi.com";
/// Tokens per second per sender process by default: No public figure; the same order as Huawei's.
pub(crate) const DEFAULT_RATE_PER_S: Option<u32> = Some(3_000);

/// One Xiaomi credential's client.
pub(crate) struct Client {
    business_id: u64,
    base_url: String,
    http: reqwest::Client,
    /// `key=<AppSecret>`.
    authorization: String,
}

/// Clients for every Xiaomi credential of the config.
pub(crate) fn clients(config: &Config) -> Result<HashMap<u64, Client>, ClientError> {
    crate::build_clients(config, Vendor::Xiaomi, |profile| client(config, profile))
}

fn client(config: &Config, profile: &CredentialProfile) -> Result<Client, ClientError> {
    let business_id = profile.business_id;
    let fail = |field, message: String| ClientError::Credential {
        business_id,
        field,
        message,
    };
    let (settings, base_url) = http::settings_and_base_url(config, business_id, DEFAULT_BASE_URL)?;
    let secrets = settings.xiaomi.as_ref().ok_or_else(|| {
        fail(
            "xiaomi",
            "missing: a Xiaomi credential needs [credentials.xiaomi] with `app_secret`".into(),
        )
    })?;
    let reference = secrets
        .app_secret
        .as_ref()
        .ok_or_else(|| fail("xiaomi.app_secret", "missing".into()))?;
    let secret = config
        .secret(reference)
        .map_err(|e| fail("xiaomi.app_secret", e.to_string()))?;
    let secret = secret.expose().trim();
    if secret.is_empty() {
        return Err(fail("xiaomi.app_secret", "empty".into()));
    }
    // It goes in a header: a line break or control character would break the request.
    if secret.bytes().any(|b| b.is_ascii_control()) {
        return Err(fail(
            "xiaomi.app_secret",
            "contains control characters".into(),
        ));
    }
    let http = http::builder(crate::request_timeout(config))
        .build()
        .map_err(|e| fail("base_url", format!("cannot build the HTTP client: {e}")))?;
    Ok(Client {
        business_id,
        base_url,
        http,
        authorization: format!("key={secret}"),
    })
}

impl Client {
    /// Sends one request for 1–1000 regids.
    pub(crate) async fn send(&self, request: &VendorRequest, targets: &[PushTarget]) -> SendResult {
        let url = format!("{}{}", self.base_url, request.path);
        let (status, outcomes) = match http::post(
            &self.http,
            &url,
            "application/x-www-form-urlencoded;charset=UTF-8",
            &request.headers,
            Some(&self.authorization),
            request.body.to_bytes(),
        )
        .await
        {
            Ok(exchange) => (
                exchange.status,
                classify(
                    exchange.status,
                    &exchange.body,
                    exchange.retry_after,
                    targets,
                    SystemTime::now(),
                ),
            ),
            Err(reason) => (
                0,
                vec![
                    Outcome::Retry {
                        after: None,
                        reason
                    };
                    targets.len()
                ],
            ),
        };
        for (target, outcome) in targets.iter().zip(&outcomes) {
            http::log_outcome("xiaomi", self.business_id, &target.token, status, outcome);
        }
        SendResult { status, outcomes }
    }
}

/// The time left until the next midnight in Beijing, when MiPush's daily counters reset.
fn until_beijing_midnight(now: SystemTime) -> Duration {
    until_china_midnight(now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

/// A MiPush answer for `targets`, one outcome per regid in order.
pub(crate) fn classify(
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
    targets: &[PushTarget],
    now: SystemTime,
) -> Vec<Outcome> {
    let all = |outcome: Outcome| vec![outcome; targets.len()];
    let retry = |after: Option<Duration>, reason: String| all(Outcome::Retry { after, reason });
    if status != 200 {
        return match status {
            429 | 500..=599 => retry(retry_after, status.to_string()),
            _ => all(Outcome::Rejected {
                reason: status.to_string(),
            }),
        };
    }
    let answer = serde_json::from_slice::<Value>(body).unwrap_or_default();
    let code = match &answer["code"] {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    let Some(code) = code else {
        return all(Outcome::Rejected {
            reason: "200 without a code".into(),
        });
    };
    let reason = code.to_string();
    match code {
        0 => {
            let bad: HashSet<&str> = answer["data"]["bad_regids"]
                .as_str()
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .collect();
            targets
                .iter()
                .map(|t| {
                    if bad.contains(t.token.as_str()) {
                        Outcome::InvalidToken {
                            reason: "bad_regids".into(),
                        }
                    } else {
                        Outcome::Delivered
                    }
                })
                .collect()
        }
        20301 => all(Outcome::InvalidToken { reason }),
        10001 | 10002 | 10003 | 10009 | 10011 | 10027 | 10028 | 10037 => retry(retry_after, reason),
        10022..=10024 => retry(retry_after, reason),
        200001 => retry(Some(until_beijing_midnight(now)), reason),
        -1
        | 100
        | 10004..=10008
        | 10010
        | 10012..=10014
        | 10016..=10018
        | 10020
        | 10021
        | 10025
        | 10026
        | 10029
        | 21301
        | 22000..=22008
        | 22020..=22022
        | 22100..=22103 => all(Outcome::Rejected { reason }),
        _ => all(Outcome::Rejected { reason }),
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

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn error(code: i64) -> Vec<Outcome> {
        let body = json!({"result": "error", "code": code, "reason": "x", "description": "y"});
        classify(
            200,
            body.to_string().as_bytes(),
            None,
            &targets(&["a"]),
            at(0),
        )
    }

    #[test]
    fn xiaomi_ok_splits_bad_regids_from_delivered_ones() {
        let body = json!({"result": "ok", "code": 0,
            "data": {"id": "scm1", "bad_regids": "b,c"}, "description": "成功"});
        let outcomes = classify(
            200,
            body.to_string().as_bytes(),
            None,
            &targets(&["a", "b", "c", "d"]),
            at(0),
        );
        let invalid = Outcome::InvalidToken {
            reason: "bad_regids".into(),
        };
        assert_eq!(
            outcomes,
            vec![
                Outcome::Delivered,
                invalid.clone(),
                invalid,
                Outcome::Delivered
            ]
        );
        let body = br#"{"result":"ok","code":0,"data":{"id":"scm1"}}"#;
        assert_eq!(
            classify(200, body, None, &targets(&["a"]), at(0)),
            vec![Outcome::Delivered]
        );
    }

    #[test]
    fn xiaomi_20301_makes_every_regid_invalid() {
        assert_eq!(
            error(20301),
            vec![Outcome::InvalidToken {
                reason: "20301".into()
            }]
        );
    }

    #[test]
    fn xiaomi_busy_and_rate_codes_are_retried() {
        for code in [
            10001, 10002, 10003, 10009, 10011, 10027, 10028, 10037, 10022, 10023, 10024,
        ] {
            assert_eq!(
                error(code),
                vec![Outcome::Retry {
                    after: None,
                    reason: code.to_string()
                }],
                "{code}"
            );
        }
        let body = br#"{"result":"error","code":10027}"#;
        let after = Some(Duration::from_secs(3));
        assert_eq!(
            classify(200, body, after, &targets(&["a"]), at(0)),
            vec![Outcome::Retry {
                after,
                reason: "10027".into()
            }]
        );
    }

    #[test]
    fn xiaomi_200001_daily_quota_is_retried_after_beijing_midnight() {
        // 2023-11-14T22:13:20Z is 06:13:20 on the 15th in Beijing: 17h46m40s to midnight.
        let now = at(1_700_000_000);
        let body = br#"{"result":"error","code":200001}"#;
        assert_eq!(
            classify(200, body, None, &targets(&["a"]), now),
            vec![Outcome::Retry {
                after: Some(Duration::from_secs(17 * 3600 + 46 * 60 + 40)),
                reason: "200001".into()
            }]
        );
        // Exactly at Beijing midnight (16:00 UTC), a whole day.
        assert_eq!(
            until_beijing_midnight(at(16 * 3600)),
            Duration::from_secs(86_400)
        );
    }

    #[test]
    fn xiaomi_request_and_app_errors_are_rejected() {
        let mut codes = vec![-1, 100, 10010, 10020, 10021, 10025, 10026, 10029, 21301];
        codes.extend(10004..=10008);
        codes.extend(10012..=10014);
        codes.extend(10016..=10018);
        codes.extend(22000..=22008);
        codes.extend(22020..=22022);
        codes.extend(22100..=22103);
        codes.push(99999);
        for code in codes {
            assert_eq!(
                error(code),
                vec![Outcome::Rejected {
                    reason: code.to_string()
                }],
                "{code}"
            );
        }
    }

    #[test]
    fn xiaomi_http_errors_fall_back_to_the_status() {
        let after = Some(Duration::from_secs(9));
        assert_eq!(
            classify(503, b"", after, &targets(&["a"]), at(0)),
            vec![Outcome::Retry {
                after,
                reason: "503".into()
            }]
        );
        assert_eq!(
            classify(404, b"", None, &targets(&["a"]), at(0)),
            vec![Outcome::Rejected {
                reason: "404".into()
            }]
        );
        assert_eq!(
            classify(200, b"<html>", None, &targets(&["a"]), at(0)),
            vec![Outcome::Rejected {
                reason: "200 without a code".into()
            }]
        );
    }

    #[test]
    fn config_errors_name_the_business_id_and_field() {
        let dir = temp_dir("xiaomi-config");
        std::fs::write(dir.join("empty.txt"), " \n").unwrap();
        let cases = [
            ("", "xiaomi"),
            ("[credentials.xiaomi]\n", "xiaomi.app_secret"),
            (
                "[credentials.xiaomi]\napp_secret = { file = \"missing.txt\" }\n",
                "xiaomi.app_secret",
            ),
            (
                "[credentials.xiaomi]\napp_secret = { file = \"empty.txt\" }\n",
                "xiaomi.app_secret",
            ),
        ];
        for (rest, field) in cases {
            let text = format!(
                "[[credentials]]\nbusiness_id = 9\nvendor = \"xiaomi\"\npackage_name = \"com.x\"\n{rest}"
            );
            let err = match clients(&config_in(&dir, &text)) {
                Ok(_) => panic!("accepted: {rest}"),
                Err(e) => e.to_string(),
            };
            assert!(err.contains("credential 9"), "{err}");
            assert!(err.contains(&format!("`{field}`")), "{field}: {err}");
        }
    }

    #[test]
    fn the_local_credential_sends_its_key() {
        let clients = clients(&local_config()).unwrap();
        let client = &clients[&4];
        assert_eq!(client.base_url, "http://127.0.0.1:8700/xiaomi");
        assert!(client.authorization.starts_with("key="));
    }
}
