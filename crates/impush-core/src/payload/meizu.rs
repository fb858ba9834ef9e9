//! Meizu Flyme Push, notification-bar push by pushId (MEIZUPUSH/PushAPI `README.md`, the
//! official doc repository: "pushId推送接口（通知栏消息）" and "接口签名规范").
//!
//! `POST /garcia/api/server/push/varnished/pushByPushId`, form-urlencoded, fields `appId`,
//! `pushIds` (comma-separated, at most 1000 per request) and `messageJson`, plus `sign`, which
//! the vendor client adds: the lowercase hex MD5 of every other field as `key=value` sorted by
//! key, with raw (not urlencoded) values, followed by the appSecret, i.e. of
//! `appId=<appId>messageJson=<messageJson>pushIds=<pushIds><appSecret>`. It must be computed
//! over the exact `messageJson` string in the body, so the client signs what we produce.
//!
//! `messageJson`:
//! - `noticeBarInfo{noticeBarType 0, title (1–32), content (1–100)}`, both required. Lengths
//!   are counted like Java's `String.length()` (UTF-16 units), which never undercounts what
//!   Meizu's Java server measures. The title falls back to `credential.default_title`, then
//!   `sender_name`, then `group_name`.
//! - `noticeBarInfo.noticeMsgType` 1: Meizu's 2025 message classification splits "public"
//!   (0, the default, quota-limited since 2025-05) from "private" (1, personal messages such
//!   as chats). The values come from the official Java SDK (MEIZUPUSH/JavaSdk
//!   `constant/NoticeMsgType.java`, `PUB_MSG(0)`, `PERSONAL_MSG(1)`) and Aliyun's push API
//!   (`Meizu.NoticeMsgType`, "0 public (default), 1 private"); the README does not document
//!   it yet, and its place inside `noticeBarInfo` is inferred, not verified.
//! - `clickTypeInfo`: `clickType` 1 with `activity` = `credential.click_action` (the class
//!   name, `pkg.Activity`) or 0 (open the app) when it is empty; clickType 3 is deprecated
//!   since Android 12 (README). `parameters` `{"ext": <ext>}` reaches the opened activity as
//!   intent extras, all as strings (Meizu push FAQ), where the IM SDK reads `ext`.
//! - `pushTimeInfo{offLine 1, validTime}`: hours until `expires_at_ms`, rounded down so an
//!   expired call is not shown late, within Meizu's 1–72; 24 (Meizu's default) when the
//!   notification never expires.
//! - `advanceInfo.notificationType{vibrate, lights, sound}`: all on, or sound and vibration
//!   off for a silent notification. A custom sound file cannot be named, so it plays the
//!   default. No `notifyKey`: it would replace earlier messages of a chat with the last one.
//! - Notify mode: Meizu's pass-through messages go to another endpoint
//!   (`/garcia/api/server/push/unvarnished/pushByPushId`) that impush does not call yet, so
//!   `android_notify_mode` CUSTOM still goes out as a notification.
//!
//! No badge (Meizu's API has none; `PushTarget.badge` is an iOS number). No documented size
//! limit on `messageJson` beyond the per-field ones, so [`Limits::max_bytes`] is unbounded.

use impush_proto::v1::{Notification, PushTarget, Vendor};
use serde::Serialize;

use super::{
    Body, BuildError, ExtMap, Limits, VendorPayload, VendorRequest, json_string, message_key,
    required, ttl_seconds,
};
use crate::credential::CredentialProfile;

pub const MAX_PUSH_IDS: usize = 1000;
pub const MAX_TITLE: usize = 32;
pub const MAX_CONTENT: usize = 100;
pub const MIN_VALID_HOURS: u64 = 1;
pub const MAX_VALID_HOURS: u64 = 72;
pub const DEFAULT_VALID_HOURS: u64 = 24;
/// `advanceInfo.notifyKey`: at most 8 characters of `[0-9a-zA-Z_-]`.
pub const NOTIFY_KEY_LEN: usize = 8;

const NOTICE_BAR_STANDARD: u8 = 0;
const NOTICE_MSG_PRIVATE: u8 = 1;
const CLICK_OPEN_APP: u8 = 0;
const CLICK_OPEN_ACTIVITY: u8 = 1;

pub struct Payload;

impl VendorPayload for Payload {
    const VENDOR: Vendor = Vendor::Meizu;
    const NAME: &'static str = "meizu";
    const MAX_BATCH: usize = MAX_PUSH_IDS;
    const REQUIRES_TITLE: bool = true;

    fn limits(_notification: &Notification) -> Limits {
        Limits {
            max_bytes: usize::MAX,
            max_title: Some(MAX_TITLE),
            max_body: Some(MAX_CONTENT),
            count: java_len,
        }
    }

    fn build(
        notification: &Notification,
        credential: &CredentialProfile,
        targets: &[PushTarget],
    ) -> Result<VendorRequest, BuildError> {
        let app_id = required(credential, "app_id", &credential.app_id)?;
        let push_ids = targets
            .iter()
            .map(|t| t.token.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let message = message_json(notification, credential);

        Ok(VendorRequest {
            path: "/garcia/api/server/push/varnished/pushByPushId".into(),
            headers: Vec::new(),
            body: Body::Form(vec![
                ("appId".into(), app_id.to_owned()),
                ("pushIds".into(), push_ids),
                ("messageJson".into(), json_string(&message)),
            ]),
        })
    }
}

/// Java `String.length()`: UTF-16 units, how Meizu's server counts title and content.
pub fn java_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// Fields in alphabetical order, like every payload struct (see [`super`]).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MessageJson<'a> {
    advance_info: AdvanceInfo,
    click_type_info: ClickTypeInfo<'a>,
    notice_bar_info: NoticeBarInfo<'a>,
    push_time_info: PushTimeInfo,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AdvanceInfo {
    notification_type: NotificationType,
    /// Meizu shows only the last notification that carries a given key.
    #[serde(skip_serializing_if = "Option::is_none")]
    notify_key: Option<String>,
}

#[derive(Serialize)]
struct NotificationType {
    lights: u8,
    sound: u8,
    vibrate: u8,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClickTypeInfo<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    activity: &'a str,
    click_type: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<ExtMap<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NoticeBarInfo<'a> {
    content: &'a str,
    notice_bar_type: u8,
    notice_msg_type: u8,
    title: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PushTimeInfo {
    off_line: u8,
    valid_time: u64,
}

fn message_json<'a>(
    notification: &'a Notification,
    credential: &'a CredentialProfile,
) -> MessageJson<'a> {
    let click_type = if credential.click_action.is_empty() {
        CLICK_OPEN_APP
    } else {
        CLICK_OPEN_ACTIVITY
    };
    let silent = notification.sound.is_empty();
    MessageJson {
        advance_info: AdvanceInfo {
            notification_type: NotificationType {
                lights: 1,
                sound: u8::from(!silent),
                vibrate: u8::from(!silent),
            },
            notify_key: notify_key(notification),
        },
        click_type_info: ClickTypeInfo {
            activity: &credential.click_action,
            click_type,
            parameters: (!notification.ext.is_empty()).then_some(ExtMap {
                ext: &notification.ext,
            }),
        },
        notice_bar_info: NoticeBarInfo {
            content: &notification.body,
            notice_bar_type: NOTICE_BAR_STANDARD,
            notice_msg_type: NOTICE_MSG_PRIVATE,
            title: &notification.title,
        },
        push_time_info: PushTimeInfo {
            off_line: 1,
            valid_time: valid_hours(notification),
        },
    }
}

/// `notifyKey` from the message's collapse id (its `msg_id`): 48 bits of its hash as 8
/// characters of `[0-9a-zA-Z_-]`. A repeat of one message replaces itself; two messages,
/// whatever their conversation and send time, keep a notification each. None without a
/// collapse id.
fn notify_key(notification: &Notification) -> Option<String> {
    const ALPHABET: &[u8; 64] =
        b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-";
    if notification.collapse_id.is_empty() {
        return None;
    }
    let hash = message_key(notification, None);
    let key = (0..NOTIFY_KEY_LEN)
        .map(|i| char::from(ALPHABET[((hash >> (6 * i)) & 63) as usize]))
        .collect();
    Some(key)
}

fn valid_hours(notification: &Notification) -> u64 {
    match ttl_seconds(notification, 0) {
        None => DEFAULT_VALID_HOURS,
        Some(seconds) => (seconds / 3600).clamp(MIN_VALID_HOURS, MAX_VALID_HOURS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::build_payload;
    use crate::payload::testing::{key_follows_msg_id, keyed_notification, notification, target};
    use serde_json::{Value, json};

    const PUSH_ID: &str = "RA50c6348036344485d01776773577c64740465480a6b";

    fn credential() -> CredentialProfile {
        CredentialProfile {
            app_id: "10000".into(),
            package_name: "com.example.im".into(),
            ..CredentialProfile::new(9, Vendor::Meizu)
        }
    }

    fn message_of(req: &VendorRequest) -> Value {
        let json = req
            .body
            .form_field("messageJson")
            .expect("messageJson field");
        serde_json::from_str(json).expect("messageJson is JSON")
    }

    #[test]
    fn notification_bar_push_has_every_field_meizu_needs() {
        let req = build_payload(&notification(), &credential(), &[target(PUSH_ID)]).unwrap();
        assert_eq!(req.path, "/garcia/api/server/push/varnished/pushByPushId");
        assert!(req.headers.is_empty());
        let Body::Form(fields) = &req.body else {
            panic!("Meizu takes a form")
        };
        let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["appId", "pushIds", "messageJson"]);
        assert_eq!(req.body.form_field("appId"), Some("10000"));
        assert_eq!(req.body.form_field("pushIds"), Some(PUSH_ID));
        assert_eq!(
            message_of(&req),
            json!({
                "noticeBarInfo": {
                    "noticeBarType": 0,
                    "noticeMsgType": 1,
                    "title": "Team chat",
                    "content": "Denny: see you at 5"
                },
                "clickTypeInfo": {
                    "clickType": 0,
                    "parameters": {
                        "ext": r#"{"entity":{"action":1,"chatType":1,"sender":"denny"}}"#
                    }
                },
                "pushTimeInfo": {"offLine": 1, "validTime": 24},
                "advanceInfo": {
                    "notificationType": {"vibrate": 1, "lights": 1, "sound": 1}
                }
            })
        );
    }

    #[test]
    fn sign_is_left_to_the_vendor_client() {
        let req = build_payload(&notification(), &credential(), &[target(PUSH_ID)]).unwrap();
        assert_eq!(req.body.form_field("sign"), None);
    }

    #[test]
    fn im_messages_are_private_messages() {
        let req = build_payload(&notification(), &credential(), &[target(PUSH_ID)]).unwrap();
        assert_eq!(message_of(&req)["noticeBarInfo"]["noticeMsgType"], 1);
    }

    #[test]
    fn batch_joins_push_ids_with_commas() {
        let targets = [target("id-1"), target("id-2"), target("invalid-abc")];
        let req = build_payload(&notification(), &credential(), &targets).unwrap();
        assert_eq!(
            req.body.form_field("pushIds"),
            Some("id-1,id-2,invalid-abc")
        );
    }

    #[test]
    fn a_batch_holds_at_most_1000_push_ids() {
        assert_eq!(Payload::MAX_BATCH, 1000);
        let targets: Vec<PushTarget> = (0..1000).map(|i| target(&format!("id{i}"))).collect();
        assert!(build_payload(&notification(), &credential(), &targets).is_ok());
        let targets: Vec<PushTarget> = (0..1001).map(|i| target(&format!("id{i}"))).collect();
        let err = build_payload(&notification(), &credential(), &targets).unwrap_err();
        assert_eq!(
            err,
            BuildError::TooManyTargets {
                count: 1001,
                max: 1000
            }
        );
    }

    #[test]
    fn a_token_that_would_split_the_list_is_refused() {
        let targets = [target("id-1"), target("id-2,id-3")];
        let err = build_payload(&notification(), &credential(), &targets).unwrap_err();
        assert!(matches!(
            err,
            BuildError::InvalidToken {
                vendor: "meizu",
                ..
            }
        ));
    }

    #[test]
    fn click_opens_the_configured_activity() {
        let cred = CredentialProfile {
            click_action: "com.example.im.ChatActivity".into(),
            ..credential()
        };
        let req = build_payload(&notification(), &cred, &[target(PUSH_ID)]).unwrap();
        let click = &message_of(&req)["clickTypeInfo"];
        assert_eq!(click["clickType"], 1);
        assert_eq!(click["activity"], "com.example.im.ChatActivity");
        assert_eq!(
            click["parameters"]["ext"],
            r#"{"entity":{"action":1,"chatType":1,"sender":"denny"}}"#
        );
    }

    #[test]
    fn no_ext_sends_no_parameters() {
        let mut n = notification();
        n.ext.clear();
        let req = build_payload(&n, &credential(), &[target(PUSH_ID)]).unwrap();
        assert_eq!(message_of(&req)["clickTypeInfo"], json!({"clickType": 0}));
    }

    #[test]
    fn silent_notification_has_no_sound() {
        let mut n = notification();
        n.sound.clear();
        let req = build_payload(&n, &credential(), &[target(PUSH_ID)]).unwrap();
        assert_eq!(
            message_of(&req)["advanceInfo"]["notificationType"],
            json!({"vibrate": 0, "lights": 1, "sound": 0})
        );
    }

    #[test]
    fn expiry_becomes_valid_hours_within_meizus_range() {
        let mut n = notification();
        let hours = |n: &Notification| {
            let req = build_payload(n, &credential(), &[target(PUSH_ID)]).unwrap();
            message_of(&req)["pushTimeInfo"]["validTime"]
                .as_u64()
                .unwrap()
        };
        assert_eq!(hours(&n), 24, "no expiry: Meizu's default");
        n.expires_at_ms = n.send_time_ms + 30_000;
        assert_eq!(hours(&n), 1, "a call's 30 s is below Meizu's 1 h minimum");
        n.expires_at_ms = n.send_time_ms + 150 * 60_000;
        assert_eq!(hours(&n), 2, "rounded down, never shown after it expired");
        n.expires_at_ms = n.send_time_ms + 10 * 24 * 3_600_000;
        assert_eq!(hours(&n), 72);
    }

    #[test]
    fn long_content_is_cut_to_the_vendor_limit() {
        let mut n = notification();
        n.title = "群聊".repeat(20);
        n.body = "消息".repeat(100);
        let req = build_payload(&n, &credential(), &[target(PUSH_ID)]).unwrap();
        let bar = &message_of(&req)["noticeBarInfo"];
        let title = bar["title"].as_str().unwrap();
        let content = bar["content"].as_str().unwrap();
        assert_eq!(java_len(title), MAX_TITLE);
        assert_eq!(java_len(content), MAX_CONTENT);
        assert!(content.ends_with('…'));
    }

    #[test]
    fn emoji_count_as_two_units_like_java() {
        assert_eq!(java_len("a消"), 2);
        assert_eq!(java_len("😀"), 2);
        let mut n = notification();
        n.body = "😀".repeat(60);
        let req = build_payload(&n, &credential(), &[target(PUSH_ID)]).unwrap();
        let content = message_of(&req)["noticeBarInfo"]["content"].clone();
        assert!(java_len(content.as_str().unwrap()) <= MAX_CONTENT);
    }

    #[test]
    fn empty_title_falls_back_to_the_default_title_then_the_sender() {
        let mut n = notification();
        n.title.clear();
        let cred = CredentialProfile {
            default_title: "ExampleIM".into(),
            ..credential()
        };
        let req = build_payload(&n, &cred, &[target(PUSH_ID)]).unwrap();
        assert_eq!(message_of(&req)["noticeBarInfo"]["title"], "ExampleIM");
        let req = build_payload(&n, &credential(), &[target(PUSH_ID)]).unwrap();
        assert_eq!(message_of(&req)["noticeBarInfo"]["title"], "Denny");
    }

    #[test]
    fn no_title_anywhere_names_the_default_title_field() {
        let mut n = notification();
        n.title.clear();
        n.sender_name.clear();
        let err = build_payload(&n, &credential(), &[target(PUSH_ID)]).unwrap_err();
        assert_eq!(
            err,
            BuildError::MissingCredentialField {
                business_id: 9,
                vendor: "meizu",
                field: "default_title"
            }
        );
    }

    #[test]
    fn missing_app_id_names_the_field() {
        let cred = CredentialProfile::new(9, Vendor::Meizu);
        let err = build_payload(&notification(), &cred, &[target(PUSH_ID)]).unwrap_err();
        assert_eq!(
            err,
            BuildError::MissingCredentialField {
                business_id: 9,
                vendor: "meizu",
                field: "app_id"
            }
        );
    }

    #[test]
    fn badge_is_not_sent() {
        let req = build_payload(&notification(), &credential(), &[target(PUSH_ID)]).unwrap();
        assert!(!message_of(&req).to_string().contains("badge"));
    }

    #[test]
    fn notify_key_comes_from_msg_id_so_a_repeat_replaces_itself_and_others_do_not() {
        key_follows_msg_id(notify_key);
        let first = keyed_notification();
        let key = notify_key(&first).unwrap();
        assert_eq!(key.len(), NOTIFY_KEY_LEN);
        assert!(
            key.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            "{key}"
        );
    }
}
