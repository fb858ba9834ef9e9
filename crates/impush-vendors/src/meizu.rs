//! Meizu (Flyme) Push client: notification-bar push by pushId, signed per request
//! (<https://github.com/MEIZUPUSH/PushAPI>).
//!
//! Sources: the official API doc, MEIZUPUSH/PushAPI `README.md` ("接口签名规范", "pushId推送接口
//! （通知栏消息）", the return-code tables), and the official Java SDK, MEIZUPUSH/JavaSdk
//! (`server/constant/ErrorCode.java`, `server/constant/PushResponseCode.java`).
//!
//! - **Endpoint**: `base_url` + the request's path (`/garcia/api/server/push/varnished/
//!   pushByPushId`); empty `base_url`: `https://server-api-push.meizu.com`.
//! - **Auth**: none to fetch. Every request carries `sign`, the lowercase hex MD5 of all other
//!   form fields as `key=value` sorted by key, raw (not urlencoded) values, followed by the
//!   appSecret. The doc's own vector (`appId=10000`, its `messageJson` and pushId, secret
//!   `<APP_SECRET>`) gives `ac076ff25d9900015a681cb5172aa53b`: a unit test checks it. A refused
//!   signature (`1006`) is a configuration error: `Rejected`, never retried.
//! - **Answer**: always JSON `{"code","message","value","msgId","redirect"}`, normally HTTP
//!   200. `code` `200` means the request was taken; `value` then maps a per-pushId code to
//!   the pushIds that failed with it, and every pushId not listed was accepted. Any other
//!   top-level `code` is the answer for every target. Codes are classified explicitly
//!   ([`top_level`], [`per_push_id`]); an unknown code is `Rejected` (never retried blindly).
//! - **Where the sources disagree**:
//!   - Per-pushId `520`: the README says "消息折叠（1分钟内同一设备同一应用消息收到多次，默认5次）"
//!     (more than 5 messages to the device within a minute were folded); the SDK says the
//!     same device got the same message several times. Either way the device already shows
//!     the app's notification and a resend would be folded again, so it is `Delivered`
//!     (neither retried nor an error): a folded message is dropped, never retried.
//!   - `110010` is "app requests too fast" at the top level (README, SDK `ErrorCode`), but
//!     "pushId失效(消息开关关闭)" (pushId dead, notifications switched off) per pushId (SDK
//!     `PushResponseCode`). Both are honoured in their own place.
//!   - The SDK knows codes the README does not: top-level `110019` (daily push limit),
//!     `110031`–`110033` (bad package name, taskId, appSecret), per-pushId `518` (speed
//!     limit). They are classified too.
//! - **Rate limits and quotas**: `Retry` with `after` = the answer's `Retry-After`, else
//!   [`RATE_LIMIT_BACKOFF`] for "too fast" and the time until the next midnight in Beijing
//!   (UTC+8, when Meizu's daily counters reset) for the daily limit.

use std::collections::HashMap;
use std::time::Duration;

use impush_config::{Config, Secret};
use impush_core::{Body, CredentialProfile, PushTarget, Vendor, VendorRequest};
use serde::Deserialize;
use serde_json::Value;

use crate::http;
use crate::util::{md5_hex, until_china_midnight};
use crate::{ClientError, Outcome, SendResult};

pub(crate) const DEFAULT_BASE_URL: &str = "https://server-api-push.meizu.com";
/// Tokens per second per sender process by default: No public figure: conservative.
pub(crate) const DEFAULT_RATE_PER_S: Option<u32> = Some(500);
const FORM: &str = "application/x-www-form-urlencoded;charset=UTF-8";
/// How long to wait after "too fast" when Meizu gives no `Retry-After` (it never does):
/// its limits are per second.
pub(crate) const RATE_LIMIT_BACKOFF: Duration = Duration::from_secs(1);

/// One Meizu credential's client.
pub(crate) struct Client {
    business_id: u64,
    base_url: String,
    app_secret: Secret,
    http: reqwest::Client,
}

/// Clients for every Meizu credential of the config.
pub(crate) fn clients(config: &Config) -> Result<HashMap<u64, Client>, ClientError> {
    crate::build_clients(config, Vendor::Meizu, |profile| client(config, profile))
}

fn client(config: &Config, profile: &CredentialProfile) -> Result<Client, ClientError> {
    let business_id = profile.business_id;
    let fail = |field, message: String| ClientError::Credential {
        business_id,
        field,
        message,
    };
    let (settings, base_url) = http::settings_and_base_url(config, business_id, DEFAULT_BASE_URL)?;
    if profile.app_id.trim().is_empty() {
        return Err(fail(
            "app_id",
            "missing: Meizu's appId signs every push".into(),
        ));
    }
    let secrets = settings.meizu.as_ref().ok_or_else(|| {
        fail(
            "meizu",
            "missing: a Meizu credential needs [credentials.meizu] with `app_secret`".into(),
        )
    })?;
    let reference = secrets
        .app_secret
        .as_ref()
        .ok_or_else(|| fail("meizu.app_secret", "missing".into()))?;
    let app_secret = config
        .secret(reference)
        .map_err(|e| fail("meizu.app_secret", e.to_string()))?;
    if app_secret.expose().trim().is_empty() {
        return Err(fail("meizu.app_secret", "empty".into()));
    }
    let http = http::builder(crate::request_timeout(config))
        .build()
        .map_err(|e| fail("base_url", format!("cannot build the HTTP client: {e}")))?;
    Ok(Client {
        business_id,
        base_url,
        app_secret,
        http,
    })
}

impl Client {
    /// Sends one signed form to every pushId of `targets` (at most 1000, one request).
    pub(crate) async fn send(&self, request: &VendorRequest, targets: &[PushTarget]) -> SendResult {
        let Body::Form(fields) = &request.body else {
            return self.finish(
                targets,
                0,
                http::all(
                    0,
                    targets.len(),
                    Outcome::Rejected {
                        reason: "meizu takes a form body".into(),
                    },
                )
                .outcomes,
            );
        };
        let mut signed = fields.clone();
        signed.push(("sign".into(), sign(fields, self.app_secret.expose())));
        let body = impush_core::payload::form_urlencode(&signed).into_bytes();
        let url = format!("{}{}", self.base_url, request.path);
        let outcomes = match http::post(&self.http, &url, FORM, &request.headers, None, body).await
        {
            Ok(exchange) => {
                let outcomes = classify(
                    exchange.status,
                    &exchange.body,
                    exchange.retry_after,
                    targets,
                    http::unix_now(),
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
        };
        self.finish(targets, 0, outcomes)
    }

    fn finish(&self, targets: &[PushTarget], status: u16, outcomes: Vec<Outcome>) -> SendResult {
        for (target, outcome) in targets.iter().zip(&outcomes) {
            http::log_outcome("meizu", self.business_id, &target.token, status, outcome);
        }
        SendResult { status, outcomes }
    }
}

/// Meizu's signature: `md5(k1=v1k2=v2…appSecret)` over the fields sorted by name, raw values,
/// lowercase hex.
pub(crate) fn sign(fields: &[(String, String)], app_secret: &str) -> String {
    let mut sorted: Vec<&(String, String)> = fields.iter().filter(|(k, _)| k != "sign").collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut text = String::new();
    for (key, value) in sorted {
        text.push_str(key);
        text.push('=');
        text.push_str(value);
    }
    text.push_str(app_secret);
    md5_hex(text.as_bytes())
}

/// Meizu's answer. `code` is a string in the doc and a number in some SDKs' tests, so
/// both are read; `value` is a map on success and `""` on errors.
#[derive(Deserialize)]
struct Answer {
    code: Value,
    #[serde(default)]
    value: Value,
}

fn code_of(value: &Value) -> Option<u64> {
    match value {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// One outcome per target from Meizu's answer (`now_s`: Unix seconds, for the daily quota).
pub(crate) fn classify(
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
    targets: &[PushTarget],
    now_s: u64,
) -> Vec<Outcome> {
    let every = |outcome: Outcome| vec![outcome; targets.len()];
    let Some((answer, code)) = serde_json::from_slice::<Answer>(body)
        .ok()
        .and_then(|a| code_of(&a.code).map(|code| (a, code)))
    else {
        // No Meizu answer at all: a proxy or gateway spoke.
        let reason = format!("http {status}");
        return every(if status == 429 || status >= 500 {
            Outcome::Retry {
                after: retry_after,
                reason,
            }
        } else if (200..300).contains(&status) {
            // Taken or not is unknown; Meizu folds a resend of the same message (520).
            Outcome::Retry {
                after: retry_after,
                reason: "meizu: unreadable answer".into(),
            }
        } else {
            Outcome::Rejected { reason }
        });
    };
    if code != OK {
        return every(top_level(code, retry_after, now_s));
    }
    let mut failed: HashMap<&str, u64> = HashMap::new();
    if let Value::Object(groups) = &answer.value {
        for (group, ids) in groups {
            let Ok(per_id) = group.trim().parse::<u64>() else {
                continue;
            };
            for id in ids.as_array().into_iter().flatten() {
                if let Some(id) = id.as_str() {
                    failed.insert(id, per_id);
                }
            }
        }
    }
    targets
        .iter()
        .map(|t| match failed.get(t.token.as_str()) {
            None => Outcome::Delivered,
            Some(&code) => per_push_id(code, retry_after),
        })
        .collect()
}

// Top-level codes (README "Api returnCode定义", SDK `ErrorCode`).
const OK: u64 = 200;
const OTHER_ERROR: u64 = 500;
const SYSTEM_ERROR: u64 = 1001;
const SERVER_BUSY: u64 = 1003;
const PARAMETER_ERROR: u64 = 1005;
const SIGNATURE_FAILED: u64 = 1006;
const APP_ID_ILLEGAL: u64 = 110_000;
const APP_KEY_ILLEGAL: u64 = 110_001;
const PARAMETER_EMPTY: u64 = 110_004;
const APP_BLACKLISTED: u64 = 110_009;
const TOO_FAST: u64 = 110_010;
const DAILY_LIMIT: u64 = 110_019;
const PACKAGE_NAME_ILLEGAL: u64 = 110_031;
const TASK_ID_ILLEGAL: u64 = 110_032;
const APP_SECRET_ILLEGAL: u64 = 110_033;
const PASS_THROUGH_LIMIT: u64 = 110_053;

// Per-pushId codes in `value` (README "map部分code定义", SDK `PushResponseCode`).
const NO_PERMISSION: u64 = 201;
const DB_ERROR: u64 = 501;
const PUSH_FAILED: u64 = 513;
const SPEED_LIMIT: u64 = 518;
const OVERLOADED: u64 = 519;
const COLLAPSED: u64 = 520;
const PUSH_ID_UNSUBSCRIBED: u64 = 110_002;
const PUSH_ID_ILLEGAL: u64 = 110_003;
const ALIAS_UNSUBSCRIBED: u64 = 110_005;
const PUSH_ID_SWITCHED_OFF: u64 = 110_010;

/// A top-level error code: the answer for every target of the request.
pub(crate) fn top_level(code: u64, retry_after: Option<Duration>, now_s: u64) -> Outcome {
    let reason = code.to_string();
    match code {
        // 500 is "其他异常", a server-side exception like 1001.
        OTHER_ERROR | SYSTEM_ERROR | SERVER_BUSY => Outcome::Retry {
            after: retry_after,
            reason,
        },
        TOO_FAST => Outcome::Retry {
            after: Some(retry_after.unwrap_or(RATE_LIMIT_BACKOFF)),
            reason,
        },
        DAILY_LIMIT => Outcome::Retry {
            after: Some(retry_after.unwrap_or_else(|| until_china_midnight(now_s))),
            reason,
        },
        PARAMETER_ERROR | SIGNATURE_FAILED | APP_ID_ILLEGAL | APP_KEY_ILLEGAL | PARAMETER_EMPTY
        | APP_BLACKLISTED | PACKAGE_NAME_ILLEGAL | TASK_ID_ILLEGAL | APP_SECRET_ILLEGAL
        | PASS_THROUGH_LIMIT => Outcome::Rejected { reason },
        // `200` is handled by the caller; anything else is unknown: do not guess a retry.
        _ => Outcome::Rejected {
            reason: format!("unknown {reason}"),
        },
    }
}

/// A per-pushId code from `value`.
pub(crate) fn per_push_id(code: u64, retry_after: Option<Duration>) -> Outcome {
    let reason = code.to_string();
    match code {
        PUSH_ID_UNSUBSCRIBED | PUSH_ID_ILLEGAL | ALIAS_UNSUBSCRIBED | PUSH_ID_SWITCHED_OFF => {
            Outcome::InvalidToken { reason }
        }
        DB_ERROR | PUSH_FAILED | OVERLOADED => Outcome::Retry {
            after: retry_after,
            reason,
        },
        SPEED_LIMIT => Outcome::Retry {
            after: Some(retry_after.unwrap_or(RATE_LIMIT_BACKOFF)),
            reason,
        },
        COLLAPSED => Outcome::Delivered,
        NO_PERMISSION => Outcome::Rejected { reason },
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

    fn answer(body: Value) -> Vec<u8> {
        serde_json::to_vec(&body).unwrap()
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
    fn md5_matches_the_rfc_1321_test_suite() {
        for (input, expected) in [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ] {
            assert_eq!(md5_hex(input.as_bytes()), expected, "{input:?}");
        }
    }

    #[test]
    fn sign_matches_the_vector_of_meizus_doc() {
        // PushAPI README "接口签名规范": the Java example's parameters, secret `<APP_SECRET>`.
        let fields = [
            ("appId", "10000"),
            ("pushIds", "RA50c6348036344485d01776773577c64740465480a6b"),
            (
                "messageJson",
                r#"{"title":"title","content":"content","pushTimeInfo":{"offLine":1,"validTime":24}}"#,
            ),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(
            sign(&fields, "<APP_SECRET>"),
            "ac076ff25d9900015a681cb5172aa53b"
        );
        // The order of the form does not matter, and a stale `sign` is not signed.
        let mut shuffled = fields.to_vec();
        shuffled.reverse();
        shuffled.push(("sign".into(), "stale".into()));
        assert_eq!(
            sign(&shuffled, "<APP_SECRET>"),
            "ac076ff25d9900015a681cb5172aa53b"
        );
    }

    #[test]
    fn meizu_200_with_an_empty_value_delivers_every_push_id() {
        let body = answer(json!({"code":"200","message":"","value":{},"msgId":"m1"}));
        assert_eq!(
            classify(200, &body, None, &targets(&["a", "b"]), 0),
            vec![Outcome::Delivered, Outcome::Delivered]
        );
    }

    #[test]
    fn meizu_value_map_is_split_per_push_id() {
        let body = answer(json!({"code":"200","message":"","msgId":"m1","value":{
            "110002": ["b"], "110003": ["c"], "513": ["d"], "520": ["e"]
        }}));
        assert_eq!(
            classify(200, &body, None, &targets(&["a", "b", "c", "d", "e"]), 0),
            vec![
                Outcome::Delivered,
                invalid("110002"),
                invalid("110003"),
                retry(None, "513"),
                Outcome::Delivered,
            ]
        );
    }

    #[test]
    fn meizu_codes_as_numbers_are_read_too() {
        let body = answer(json!({"code":200,"value":{"110003":["b"]}}));
        assert_eq!(
            classify(200, &body, None, &targets(&["a", "b"]), 0),
            vec![Outcome::Delivered, invalid("110003")]
        );
    }

    #[test]
    fn meizu_every_per_push_id_code_is_classified() {
        let after = Some(Duration::from_secs(3));
        let cases = [
            (110_002, None, invalid("110002")),
            (110_003, None, invalid("110003")),
            (110_005, None, invalid("110005")),
            (110_010, None, invalid("110010")),
            (501, after, retry(after, "501")),
            (513, None, retry(None, "513")),
            (519, None, retry(None, "519")),
            (518, None, retry(Some(RATE_LIMIT_BACKOFF), "518")),
            (518, after, retry(after, "518")),
            (520, None, Outcome::Delivered),
            (201, None, rejected("201")),
            (999, None, rejected("unknown 999")),
        ];
        for (code, after, expected) in cases {
            assert_eq!(per_push_id(code, after), expected, "{code}");
        }
    }

    #[test]
    fn meizu_every_top_level_code_is_classified() {
        let after = Some(Duration::from_secs(7));
        // 2023-11-14T22:13:20Z is 06:13:20 in Beijing: 17h46m40s to midnight there.
        let now = 1_700_000_000;
        let cases = [
            (500, None, retry(None, "500")),
            (1001, None, retry(None, "1001")),
            (1003, after, retry(after, "1003")),
            (110_010, None, retry(Some(RATE_LIMIT_BACKOFF), "110010")),
            (110_010, after, retry(after, "110010")),
            (
                110_019,
                None,
                retry(Some(Duration::from_secs(64_000)), "110019"),
            ),
            (1005, None, rejected("1005")),
            (1006, None, rejected("1006")),
            (110_000, None, rejected("110000")),
            (110_001, None, rejected("110001")),
            (110_004, None, rejected("110004")),
            (110_009, None, rejected("110009")),
            (110_031, None, rejected("110031")),
            (110_032, None, rejected("110032")),
            (110_033, None, rejected("110033")),
            (110_053, None, rejected("110053")),
            (4242, None, rejected("unknown 4242")),
        ];
        for (code, after, expected) in cases {
            assert_eq!(top_level(code, after, now), expected, "{code}");
            let body = answer(json!({"code": code.to_string(), "message": "x", "value": ""}));
            assert_eq!(
                classify(200, &body, after, &targets(&["a", "b"]), now),
                vec![expected.clone(), expected],
                "{code} for every target"
            );
        }
    }

    #[test]
    fn meizu_daily_limit_waits_for_midnight_in_beijing() {
        assert_eq!(until_china_midnight(16 * 3600), Duration::from_secs(86_400));
        assert_eq!(until_china_midnight(16 * 3600 - 1), Duration::from_secs(1));
    }

    #[test]
    fn meizu_answers_without_a_code_fall_back_to_the_http_status() {
        let after = Some(Duration::from_secs(2));
        let t = targets(&["a"]);
        assert_eq!(
            classify(502, b"<html>", after, &t, 0),
            vec![retry(after, "http 502")]
        );
        assert_eq!(
            classify(429, b"", None, &t, 0),
            vec![retry(None, "http 429")]
        );
        assert_eq!(classify(404, b"", None, &t, 0), vec![rejected("http 404")]);
        assert_eq!(
            classify(200, b"{}", None, &t, 0),
            vec![retry(None, "meizu: unreadable answer")]
        );
    }

    #[test]
    fn meizu_config_errors_name_the_business_id_and_field() {
        let dir = temp_dir("meizu-config");
        std::fs::write(dir.join("empty.txt"), "\n").unwrap();
        std::fs::write(dir.join("key.txt"), "k\n").unwrap();
        let cases = [
            ("app_id = \"1\"\n", "meizu"),
            ("app_id = \"1\"\n[credentials.meizu]\n", "meizu.app_secret"),
            (
                "app_id = \"1\"\n[credentials.meizu]\napp_secret = { file = \"missing.txt\" }\n",
                "meizu.app_secret",
            ),
            (
                "app_id = \"1\"\n[credentials.meizu]\napp_secret = { file = \"empty.txt\" }\n",
                "meizu.app_secret",
            ),
            (
                "app_id = \"1\"\nbase_url = \"ftp://x\"\n[credentials.meizu]\napp_secret = { file = \"key.txt\" }\n",
                "base_url",
            ),
        ];
        for (rest, field) in cases {
            let text = format!("[[credentials]]\nbusiness_id = 9\nvendor = \"meizu\"\n{rest}");
            let err = match clients(&config_in(&dir, &text)) {
                Ok(_) => panic!("accepted: {rest}"),
                Err(e) => e.to_string(),
            };
            assert!(err.contains("credential 9"), "{err}");
            assert!(err.contains(&format!("`{field}`")), "{field}: {err}");
        }
    }

    #[test]
    fn meizu_local_credential_loads() {
        let clients = clients(&local_config()).unwrap();
        assert_eq!(clients[&7].base_url, "http://127.0.0.1:8700/meizu");
    }
}
