//! vivo Push, server API ("PUSH-UPS-API接口文档" v2.9.2, dev.vivo.com.cn/documentCenter/doc/362;
//! read through its mirrors app.applebyme.cn/cloud/appshangjia/2017.html, ov.liuad.com/2304.html
//! and www.qro.cn/post/302611.html, and the field comments of modood/pushapi
//! `vivopush/message.go`, which quote the doc).
//!
//! `POST /message/send`, JSON, one device (`regId`) per request. The `authToken` header comes
//! from `/message/auth` and is added by the vendor client. Fields we send:
//! - `appId`: checked against the token's app since v2.9.2 (mismatch: 10094).
//! - `title` (≤ 40 units) and `content` (≤ 100 units), both required. The doc counts "a Chinese
//!   character as two English characters, an emoji as one"; we count every character above
//!   U+00FF as two (the common `[^\x00-\xff]` rule), which is exact for Chinese and errs on
//!   the short side for emoji, so vivo never rejects a cut text. The title falls back to
//!   `credential.default_title`, then `sender_name`, then `group_name`.
//! - `notifyType`: 1 nothing for a silent notification, else 4 (sound and vibration). vivo
//!   cannot play a custom sound file from the server API, so a file name gets the default.
//! - `timeToLive`: seconds left until `expires_at_ms`, clamped to 900 s – 7 days (doc v2.9.2;
//!   the older text quoted by modood/pushapi says "at least 60 s", we keep the stricter 900).
//!   Absent: vivo keeps the message one day.
//! - `skipType` 4 with `skipContent` = `credential.click_action` (an `intent://…;end` URI,
//!   ≤ 1024 characters) to open a page, or `skipType` 1 (open the launcher) when it is empty.
//!   skipType 3 is not used: vivo SDK 480+ dropped `onNotificationMessageClicked`.
//! - `classification` 1 (system message) and `category` "IM": operational messages (0) are
//!   capped at a few per user per day and held back between 23:00 and 07:00; IM is a system
//!   category (vivo doc 359). Sources disagree on the default when classification is absent
//!   (modood/pushapi: 0; docs.goeasy.io channel_category: 1), so we always send it. An absent
//!   `android_vivo_classification` means 1, the Tencent IM SDK's own default for
//!   `androidVIVOClassification`; an explicit value, 0 included, is passed through (0 without
//!   the IM category, which is a system category).
//! - `clientCustomMap` `{"ext": <ext>}`: vivo puts the pairs into the launched activity's
//!   intent extras, where the IM SDK reads `ext` with `getIntent().getExtras()`. At most 10
//!   pairs and 1024 characters for keys and values together: that is the size [`measure`]
//!   reports, so an oversized `ext` becomes [`BuildError::PayloadTooLarge`].
//! - `requestId` (≤ 64 characters, vivo's idempotency key): a 64-bit FNV-1a hash of the
//!   message's `collapse_id` (its `msg_id`) and the token, so two different messages of one
//!   conversation sent in the same millisecond never share one (vivo would drop the second
//!   as a duplicate), while a retry of the same message hashes to the same id and vivo drops
//!   the duplicate.
//! - Notify mode: vivo's server API sends notification messages only (its pass-through
//!   message was withdrawn), so `android_notify_mode` CUSTOM still goes out as a
//!   notification.
//!
//! No badge: vivo's API has none, and `PushTarget.badge` is an iOS number. `pushMode` (test
//! push) is left at production; the credential's environment only applies to APNs and TPNS.
//!
//! Batching (later issue): `/message/send` takes one `regId`. Pushing one payload to 2–1000
//! devices is two calls, `/message/saveListPayload` (the same content fields, returns a
//! `taskId`) then `/message/pushToList` `{regIds, taskId, requestId}`, as curltech/go-push-sdk
//! `push/vivo_channel/message_push.go` does; it needs client-side state, so `MAX_BATCH` is 1.
//!
//! [`measure`]: VendorPayload::measure

use std::fmt;

use impush_proto::v1::{Notification, PushTarget, Vendor};
use serde::{Deserialize, Deserializer, Serialize, de};

use super::{
    Body, BuildError, ExtMap, Limits, VendorPayload, VendorRequest,
    json_member, message_key, required, ttl_seconds,
};
use crate::credential::CredentialProfile;

pub const MAX_TITLE: usize = 40;
pub const MAX_CONTENT: usize = 100;
/// `clientCustomMap`: keys and values together, in characters.
pub const MAX_CUSTOM_MAP_CHARS: usize = 1024;
pub const MIN_TTL_SECONDS: u64 = 900;
pub const MAX_TTL_SECONDS: u64 = 7 * 24 * 3600;

const NOTIFY_NONE: u8 = 1;
const NOTIFY_SOUND_AND_VIBRATE: u8 = 4;
const SKIP_OPEN_APP: u8 = 1;
const SKIP_INTENT: u8 = 4;
const CLASSIFICATION_SYSTEM: i32 = 1;
const CATEGORY_IM: &str = "IM";

pub struct Payload;

impl VendorPayload for Payload {
    const VENDOR: Vendor = Vendor::Vivo;
    const NAME: &'static str = "vivo";
    const MAX_BATCH: usize = 1;
    const REQUIRES_TITLE: bool = true;

    fn limits(_notification: &Notification) -> Limits {
        Limits {
            max_bytes: MAX_CUSTOM_MAP_CHARS,
            max_title: Some(MAX_TITLE),
            max_body: Some(MAX_CONTENT),
            count: vivo_units,
        }
    }

    fn build(
        notification: &Notification,
        credential: &CredentialProfile,
        targets: &[PushTarget],
    ) -> Result<VendorRequest, BuildError> {
        let [target] = targets else {
            return Err(BuildError::TooManyTargets {
                count: targets.len(),
                max: 1,
            });
        };
        let app_id = required(credential, "app_id", &credential.app_id)?;

        let classification = notification
            .android_vivo_classification
            .unwrap_or(CLASSIFICATION_SYSTEM);
        let receipt = super::receipt::Receipt::of(notification, credential);
        let body = Send {
            app_id,
            category: if classification == CLASSIFICATION_SYSTEM {
                CATEGORY_IM
            } else {
                ""
            },
            classification,
            client_custom_map: (!notification.ext.is_empty()).then_some(ExtMap {
                ext: &notification.ext,
            }),
            content: &notification.body,
            extra: receipt.has_url().then_some(Extra {
                callback: receipt.url,
                callback_param: receipt.param,
            }),
            notify_type: notify_type(notification),
            reg_id: &target.token,
            request_id: request_id(notification, &target.token),
            skip_content: &credential.click_action,
            skip_type: if credential.click_action.is_empty() {
                SKIP_OPEN_APP
            } else {
                SKIP_INTENT
            },
            time_to_live: ttl_seconds(notification, MIN_TTL_SECONDS)
                .map(|ttl| ttl.min(MAX_TTL_SECONDS)),
            title: &notification.title,
        };

        Ok(VendorRequest {
            path: "/message/send".into(),
            headers: Vec::new(),
            body: Body::json(&body),
        })
    }

    /// vivo limits only `clientCustomMap` (title and content have their own limits); the
    /// rest of the body has no documented cap.
    fn measure(request: &VendorRequest) -> usize {
        let Body::Json(body) = &request.body else {
            return 0;
        };
        json_member::<CustomMapUnits>(body, "clientCustomMap").map_or(0, |(units, _)| units.0)
    }
}

/// The `/message/send` body. Fields in alphabetical order, like every payload struct (see
/// [`super`]). [`Payload::measure`] relies on `clientCustomMap` being the first key so named.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Send<'a> {
    app_id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    category: &'a str,
    classification: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_custom_map: Option<ExtMap<'a>>,
    content: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    extra: Option<Extra<'a>>,
    notify_type: u8,
    reg_id: &'a str,
    request_id: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    skip_content: &'a str,
    skip_type: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_to_live: Option<u64>,
    title: &'a str,
}

/// `extra`: where vivo posts the delivery receipt and what it echoes (server API 2.9.2,
/// "高级特性extra": `callback` at most 128 characters, `callback.param` at most 64; receipts
/// only for single pushes, which is all impush sends). See [`super::receipt`].
#[derive(Serialize)]
struct Extra<'a> {
    callback: &'a str,
    #[serde(rename = "callback.param")]
    callback_param: &'a str,
}

/// The size of `clientCustomMap` as vivo counts it, the [`java_len`] of every key and value
/// (all strings: [`ExtMap`]), read from the body without building the map.
struct CustomMapUnits(usize);

impl<'de> Deserialize<'de> for CustomMapUnits {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = CustomMapUnits;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object of strings")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut units = 0;
                while let Some((key, value)) = map.next_entry::<JavaLen, JavaLen>()? {
                    units += key.0 + value.0;
                }
                Ok(CustomMapUnits(units))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// The [`java_len`] of a JSON string.
struct JavaLen(usize);

impl<'de> Deserialize<'de> for JavaLen {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = JavaLen;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON string")
            }
            fn visit_str<E>(self, s: &str) -> Result<JavaLen, E> {
                Ok(JavaLen(java_len(s)))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// vivo's length unit: two for a Chinese (any non-Latin-1) character, one otherwise.
pub fn vivo_units(s: &str) -> usize {
    s.chars()
        .map(|c| if u32::from(c) <= 0xFF { 1 } else { 2 })
        .sum()
}

/// Java's `String.length()` (UTF-16 units): never less than the characters vivo's doc
/// counts for `clientCustomMap`, whatever its server actually does with emoji.
fn java_len(s: &str) -> usize {
    s.encode_utf16().count()
}

fn notify_type(notification: &Notification) -> u8 {
    if notification.sound.is_empty() {
        NOTIFY_NONE
    } else {
        NOTIFY_SOUND_AND_VIBRATE
    }
}

fn request_id(notification: &Notification, token: &str) -> String {
    format!("impush-{:016x}", message_key(notification, Some(token)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::build_payload;
    use crate::payload::testing::{notification, target};
    use serde_json::{Value, json};

    const INTENT: &str = "intent://im/chat#Intent;scheme=impush;launchFlags=0x4000000;\
                          component=com.example.im/com.example.im.ChatActivity;end";

    fn credential() -> CredentialProfile {
        CredentialProfile {
            app_id: "10004".into(),
            package_name: "com.example.im".into(),
            ..CredentialProfile::new(7, Vendor::Vivo)
        }
    }

    fn body_of(req: &VendorRequest) -> Value {
        let Body::Json(body) = &req.body else {
            panic!("vivo takes JSON")
        };
        serde_json::from_str(body).unwrap()
    }

    #[test]
    fn single_push_has_every_field_vivo_needs() {
        let req =
            build_payload(&notification(), &credential(), &[target("15638535410301")]).unwrap();
        assert_eq!(req.path, "/message/send");
        assert!(req.headers.is_empty(), "authToken is the client's job");
        assert_eq!(
            body_of(&req),
            json!({
                "appId": "10004",
                "regId": "15638535410301",
                "notifyType": 4,
                "title": "Team chat",
                "content": "Denny: see you at 5",
                "skipType": 1,
                "classification": 1,
                "category": "IM",
                "clientCustomMap": {
                    "ext": r#"{"entity":{"action":1,"chatType":1,"sender":"denny"}}"#
                },
                // Pinned: a new hash would defeat dedupe for jobs retried across a deploy.
                "requestId": "impush-5cb2503b5211b975",
            })
        );
    }

    #[test]
    fn vivo_classification_0_is_expressible_and_absent_means_system() {
        // (android_vivo_classification, classification sent, category sent)
        let table = [
            (None, 1, Some("IM")),
            (Some(1), 1, Some("IM")),
            (Some(0), 0, None),
            (Some(2), 2, None),
        ];
        for (asked, classification, category) in table {
            let mut n = notification();
            n.android_vivo_classification = asked;
            let body = body_of(&build_payload(&n, &credential(), &[target("r1")]).unwrap());
            assert_eq!(body["classification"], classification, "{asked:?}");
            assert_eq!(body["category"].as_str(), category, "{asked:?}");
        }
    }

    #[test]
    fn click_opens_the_configured_intent() {
        let cred = CredentialProfile {
            click_action: INTENT.into(),
            ..credential()
        };
        let body = body_of(&build_payload(&notification(), &cred, &[target("r1")]).unwrap());
        assert_eq!(body["skipType"], 4);
        assert_eq!(body["skipContent"], INTENT);
    }

    #[test]
    fn no_click_action_opens_the_launcher() {
        let body =
            body_of(&build_payload(&notification(), &credential(), &[target("r1")]).unwrap());
        assert_eq!(body["skipType"], 1);
        assert!(body.get("skipContent").is_none());
    }

    #[test]
    fn silent_notification_has_no_sound() {
        let mut n = notification();
        n.sound.clear();
        let body = body_of(&build_payload(&n, &credential(), &[target("r1")]).unwrap());
        assert_eq!(body["notifyType"], 1);
    }

    #[test]
    fn a_custom_sound_file_falls_back_to_the_default_sound() {
        let mut n = notification();
        n.sound = "ring.mp3".into();
        let body = body_of(&build_payload(&n, &credential(), &[target("r1")]).unwrap());
        assert_eq!(body["notifyType"], 4);
    }

    #[test]
    fn expiry_becomes_time_to_live_within_vivos_range() {
        let mut n = notification();
        let body = body_of(&build_payload(&n, &credential(), &[target("r1")]).unwrap());
        assert!(
            body.get("timeToLive").is_none(),
            "no expiry: vivo's default"
        );

        n.expires_at_ms = n.send_time_ms + 30_000;
        let body = body_of(&build_payload(&n, &credential(), &[target("r1")]).unwrap());
        assert_eq!(body["timeToLive"], 900);

        n.expires_at_ms = n.send_time_ms + 3_600_000;
        let body = body_of(&build_payload(&n, &credential(), &[target("r1")]).unwrap());
        assert_eq!(body["timeToLive"], 3600);

        n.expires_at_ms = n.send_time_ms + 30 * 24 * 3_600_000;
        let body = body_of(&build_payload(&n, &credential(), &[target("r1")]).unwrap());
        assert_eq!(body["timeToLive"], 604_800);
    }

    #[test]
    fn no_ext_sends_no_client_custom_map() {
        let mut n = notification();
        n.ext.clear();
        let body = body_of(&build_payload(&n, &credential(), &[target("r1")]).unwrap());
        assert!(body.get("clientCustomMap").is_none());
    }

    #[test]
    fn request_id_comes_from_msg_id_and_device() {
        let n = Notification {
            collapse_id: "msg-1".into(),
            ..notification()
        };
        let id = request_id(&n, "r1");
        assert!(id.len() <= 64);
        // (the other notification, the other device, same requestId?)
        let mut second_same_time = n.clone();
        second_same_time.collapse_id = "msg-2".into();
        let mut repeat_later = n.clone();
        repeat_later.request_at_ms = n.send_time_ms + 60_000;
        let table = [
            (n.clone(), "r1", true),
            (n.clone(), "r2", false),
            (second_same_time, "r1", false),
            (repeat_later, "r1", true),
        ];
        for (other, token, same) in table {
            assert_eq!(id == request_id(&other, token), same, "{other:?} {token}");
        }
    }

    #[test]
    fn chinese_characters_count_double() {
        assert_eq!(vivo_units("abc"), 3);
        assert_eq!(vivo_units("消息"), 4);
        assert_eq!(vivo_units("é"), 1);
        assert_eq!(vivo_units("…"), 2);
    }

    #[test]
    fn long_content_is_cut_to_the_vendor_limit() {
        let mut n = notification();
        n.title = "群".repeat(30);
        n.body = "消息".repeat(100);
        let body = body_of(&build_payload(&n, &credential(), &[target("r1")]).unwrap());
        let title = body["title"].as_str().unwrap();
        let content = body["content"].as_str().unwrap();
        assert!(vivo_units(title) <= MAX_TITLE, "{title}");
        assert!(vivo_units(content) <= MAX_CONTENT, "{content}");
        assert!(vivo_units(content) >= MAX_CONTENT - 2, "cut far too much");
        assert!(content.ends_with('…'));
        assert!(title.ends_with('…'));
    }

    #[test]
    fn empty_title_falls_back_to_the_default_title_then_the_sender() {
        let mut n = notification();
        n.title.clear();
        let cred = CredentialProfile {
            default_title: "ExampleIM".into(),
            ..credential()
        };
        let body = body_of(&build_payload(&n, &cred, &[target("r1")]).unwrap());
        assert_eq!(body["title"], "ExampleIM");

        let body = body_of(&build_payload(&n, &credential(), &[target("r1")]).unwrap());
        assert_eq!(body["title"], "Denny");

        n.sender_name.clear();
        n.group_name = "Weekend hikers".into();
        let body = body_of(&build_payload(&n, &credential(), &[target("r1")]).unwrap());
        assert_eq!(body["title"], "Weekend hikers");
    }

    #[test]
    fn a_long_default_title_is_cut_too() {
        let mut n = notification();
        n.title.clear();
        let cred = CredentialProfile {
            default_title: "应用".repeat(30),
            ..credential()
        };
        let body = body_of(&build_payload(&n, &cred, &[target("r1")]).unwrap());
        assert!(vivo_units(body["title"].as_str().unwrap()) <= MAX_TITLE);
    }

    #[test]
    fn no_title_anywhere_names_the_default_title_field() {
        let mut n = notification();
        n.title.clear();
        n.sender_name.clear();
        let err = build_payload(&n, &credential(), &[target("r1")]).unwrap_err();
        assert_eq!(
            err,
            BuildError::MissingCredentialField {
                business_id: 7,
                vendor: "vivo",
                field: "default_title"
            }
        );
    }

    #[test]
    fn missing_app_id_names_the_field() {
        let cred = CredentialProfile::new(7, Vendor::Vivo);
        let err = build_payload(&notification(), &cred, &[target("r1")]).unwrap_err();
        assert_eq!(
            err,
            BuildError::MissingCredentialField {
                business_id: 7,
                vendor: "vivo",
                field: "app_id"
            }
        );
    }

    #[test]
    fn one_device_per_request() {
        let err = build_payload(
            &notification(),
            &credential(),
            &[target("r1"), target("r2")],
        )
        .unwrap_err();
        assert_eq!(err, BuildError::TooManyTargets { count: 2, max: 1 });
    }

    #[test]
    fn tokens_are_checked_and_test_tokens_stay_allowed() {
        let err = build_payload(&notification(), &credential(), &[target("a,b")]).unwrap_err();
        assert!(matches!(
            err,
            BuildError::InvalidToken { vendor: "vivo", .. }
        ));
        assert!(build_payload(&notification(), &credential(), &[target("invalid-abc")]).is_ok());
    }

    #[test]
    fn badge_is_not_sent() {
        let body =
            body_of(&build_payload(&notification(), &credential(), &[target("r1")]).unwrap());
        assert!(!body.to_string().contains("badge"));
    }

    #[test]
    fn an_oversized_ext_is_a_typed_error_not_a_rejected_request() {
        let mut n = notification();
        n.ext = "x".repeat(MAX_CUSTOM_MAP_CHARS);
        let err = build_payload(&n, &credential(), &[target("r1")]).unwrap_err();
        assert_eq!(
            err,
            BuildError::PayloadTooLarge {
                bytes: MAX_CUSTOM_MAP_CHARS + 3,
                limit: MAX_CUSTOM_MAP_CHARS
            }
        );

        n.ext = "x".repeat(MAX_CUSTOM_MAP_CHARS - 3);
        assert!(build_payload(&n, &credential(), &[target("r1")]).is_ok());
    }

    #[test]
    fn measure_counts_the_custom_map_text_not_its_json_escapes() {
        let mut n = notification();
        n.ext = "{\"a\":\"\\\\\n\t\u{1}😀消\"}".into();
        let req = build_payload(&n, &credential(), &[target("r1")]).unwrap();
        assert_eq!(Payload::measure(&req), java_len("ext") + java_len(&n.ext));
    }
}
