//! Tencent Push Notification Service (TPNS, formerly Xinge), REST API v3.
//!
//! Request format (tencentcloud.com/document/api/1024/33764 "Push API", read in a stored
//! copy of the English page; field names cross-checked with TPNS's own server SDK examples,
//! tpns Python SDK tests, and xingePush/xinge-api-java `PushAppRequest.java`):
//! `POST /v3/push/app`, JSON `{audience_type, token_list, message_type, message, …}`.
//!
//! - One token: `audience_type: "token"`. Several: `"token_list"`, at most 1000 tokens,
//!   with `ignore_invalid_token: 1` so one dead token does not fail the whole batch (the
//!   reply then lists it in `invalid_targe_list`, sic).
//! - The platform is not a request field: a TPNS AccessID belongs to one platform. This
//!   module takes a credential with only a `bundle_id` as iOS and one with only a
//!   `package_name` as Android; one naming both serves both, and the device decides
//!   (`Notification.ios_device`: a TPNS token registered from an iPhone). It needs one of
//!   the two to know which message shape to send. An iPhone's push follows the iOS rules:
//!   `ios_sound`, the badge (the router renders it as for APNs). (The older Xinge v3 doc, xingePush/xinge-docs
//!   `server_api/rest-api-v3ban-ben-shi-yong-zhi-nan.md`, still had a required `platform`;
//!   the TPNS doc and SDK examples no longer send it.)
//! - `message_type: "notify"`, or `"message"` (TPNS's pass-through / silent message,
//!   cloud.tencent.com/document/product/548/39064) for Android's notify mode CUSTOM and for
//!   an iOS silent push (`ios_content_available`: `aps` holds only `content-available: 1`).
//!   `ios_mutable_content` sets `aps.mutable-content: 1` on an iOS notification. TPNS
//!   forwards `aps` to APNs; the two keys are Apple's own names, which we could not see
//!   confirmed in TPNS's own field table [unverified]. `title` and `content` are both
//!   required. The title falls back
//!   to the credential's `default_title`, then the sender's name, then the group's name.
//! - `ext` reaches the app as `custom_content`, a JSON string: TPNS's Android SDK hands it
//!   to the opened activity (intent extra `custom_content`, or the `customContent` query
//!   parameter when a vendor channel delivered it; `XGPushManager.getCustomContentFromIntent`),
//!   and TUIKit parses that value as the `{"entity": …}` container, i.e. `ext` itself. On
//!   iOS it arrives as the `custom` key the seeds' click handler reads. An `ext` that is not
//!   a JSON object is wrapped as `{"ext": …}`, since TPNS takes only serialized JSON there.
//! - Android goes out through the phone vendors' channels too, so the per-vendor IM
//!   settings ride along: `hw_category` (default `IM`), `vivo_ch_id` `"1"` (system message:
//!   vivo's operational messages, `"0"` and TPNS's default, are capped at a few a day),
//!   `oppo_ch_id` (the private-message channel), `xm_ch_id`, `fcm_ch_id`; `n_ch_id` is
//!   TPNS's own channel, the credential's `default_channel_id`.
//! - Click (Android `action`): the credential's activity class name (`action_type` 1), or,
//!   when it is a scheme URI, an intent (`action_type` 3, which TPNS recommends). Empty: no
//!   action, TPNS opens the app.
//! - Sound: Android `ring` 0/1 and `ring_raw` (a `res/raw` name, no extension); iOS
//!   `aps.sound`, left out for silence.
//! - Badge: iOS `aps.badge_type` set to the device's badge; Android badges are not sent.
//! - `expire_time` (seconds, at most 259200 = 72 h; below 800 TPNS stores it 800 s anyway,
//!   and 0 means "real-time, not stored"): the TTL when at least 800 s, else 0, so a call
//!   that times out in 30 s is never shown minutes late. The Xinge v3 doc says 0 means the
//!   3-day default; the TPNS doc is the current one.
//!
//! Size: "推送的消息体大小限制为4K，此限制适用于Push API中的message字段" (Xinge v3 doc): the
//! 4 KB counts the `message` object only, which is what [`Payload::measure`] measures.

use std::borrow::Cow;

use impush_proto::v1::{Notification, PushTarget, Vendor};
use serde::Serialize;
use serde::de::IgnoredAny;

use super::{
    Body, BuildError, ExtMap, Limits, Tokens, VendorPayload, VendorRequest,
    is_pass_through, is_silent, json_member, json_string, raw_resource_name, ttl_seconds,
};
use crate::credential::{CredentialProfile, Environment};

/// The limit on the serialized `message` field.
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// The longest offline storage TPNS accepts: 72 hours.
pub const MAX_EXPIRE_SECONDS: u64 = 259_200;
/// Shorter storage than this is stored for this long anyway.
pub const MIN_STORED_EXPIRE_SECONDS: u64 = 800;

pub struct Payload;

impl VendorPayload for Payload {
    const VENDOR: Vendor = Vendor::Tpns;
    const NAME: &'static str = "tpns";
    const TOKENS: super::TokenRules = super::TokenRules {
        max_len: 256,
        base64: false,
    };
    const MAX_BATCH: usize = 1000;
    const REQUIRES_TITLE: bool = true;

    fn limits(_notification: &Notification) -> Limits {
        Limits::bytes(MAX_MESSAGE_BYTES)
    }

    fn build(
        notification: &Notification,
        credential: &CredentialProfile,
        targets: &[PushTarget],
    ) -> Result<VendorRequest, BuildError> {
        let platform = Platform::of(credential, notification)?;

        let (audience_type, ignore_invalid_token) = match targets {
            [_] => ("token", None),
            _ => ("token_list", Some(1)),
        };
        let (environment, message) = match platform {
            Platform::Android => (None, android_message(notification, credential)),
            Platform::Ios => (
                Some(match credential.environment {
                    Environment::Production => "product",
                    Environment::Sandbox => "dev",
                }),
                ios_message(notification, common_badge(targets)?),
            ),
        };
        // "message": TPNS's pass-through / silent message (Push API, `message_type`).
        let message_type = match platform {
            Platform::Android if is_pass_through(notification) => "message",
            Platform::Ios if is_silent(notification) => "message",
            Platform::Android | Platform::Ios => "notify",
        };
        let root = Push {
            audience_type,
            environment,
            expire_time: expire_time(notification),
            ignore_invalid_token,
            message,
            message_type,
            token_list: Tokens(targets),
        };

        Ok(VendorRequest {
            path: "/v3/push/app".to_owned(),
            headers: Vec::new(),
            body: Body::json(&root),
        })
    }

    /// TPNS's 4 KB applies to the `message` field, not to the token list around it.
    fn measure(request: &VendorRequest) -> usize {
        match &request.body {
            Body::Json(root) => {
                json_member::<IgnoredAny>(root, "message").map_or(0, |(_, message)| message.len())
            }
            Body::Form(_) => request.body.to_bytes().len(),
        }
    }
}

/// The `/v3/push/app` body. Fields in alphabetical order, like every payload struct (see
/// [`super`]). [`Payload::measure`] relies on `message` being the first key so named.
#[derive(Serialize)]
struct Push<'a> {
    audience_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    environment: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expire_time: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ignore_invalid_token: Option<u8>,
    message: Message<'a>,
    message_type: &'a str,
    token_list: Tokens<'a>,
}

#[derive(Serialize)]
struct Message<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    android: Option<Android<'a>>,
    content: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ios: Option<Ios<'a>>,
    #[serde(skip_serializing_if = "str::is_empty")]
    thread_id: &'a str,
    title: &'a str,
}

#[derive(Serialize)]
struct Android<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<Action<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    custom_content: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "str::is_empty")]
    fcm_ch_id: &'a str,
    hw_category: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    n_ch_id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    oppo_ch_id: &'a str,
    ring: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    ring_raw: Option<&'a str>,
    vivo_ch_id: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    xm_ch_id: &'a str,
}

#[derive(Serialize)]
struct Action<'a> {
    action_type: u8,
    #[serde(skip_serializing_if = "str::is_empty")]
    activity: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    intent: &'a str,
}

#[derive(Serialize)]
struct Ios<'a> {
    aps: Aps<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    custom_content: Option<Cow<'a, str>>,
}

#[derive(Serialize)]
struct Aps<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    alert: Option<EmptyObject>,
    #[serde(skip_serializing_if = "Option::is_none")]
    badge_type: Option<u32>,
    #[serde(rename = "content-available", skip_serializing_if = "Option::is_none")]
    content_available: Option<u8>,
    #[serde(rename = "mutable-content", skip_serializing_if = "Option::is_none")]
    mutable_content: Option<u8>,
    #[serde(skip_serializing_if = "str::is_empty")]
    sound: &'a str,
}

/// Serialises as `{}`.
#[derive(Serialize)]
struct EmptyObject {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Platform {
    Android,
    Ios,
}

impl Platform {
    /// The credential's platform; one naming both serves both, and the device decides
    /// (`ios_device`, set for a TPNS token registered from an iPhone).
    fn of(
        credential: &CredentialProfile,
        notification: &Notification,
    ) -> Result<Platform, BuildError> {
        match (credential.serves_ios(), credential.serves_android()) {
            (true, true) if notification.ios_device => Ok(Platform::Ios),
            (true, true) => Ok(Platform::Android),
            (true, false) => Ok(Platform::Ios),
            (false, true) => Ok(Platform::Android),
            (false, false) => Err(BuildError::MissingCredentialField {
                business_id: credential.business_id,
                vendor: <Payload as VendorPayload>::NAME,
                field: "bundle_id or package_name",
            }),
        }
    }
}

/// The one badge every iOS target of this request shows. A token list carries a single
/// payload, so targets with different badges must go in separate requests.
fn common_badge(targets: &[PushTarget]) -> Result<Option<u32>, BuildError> {
    let badge = targets.first().and_then(|t| t.badge);
    if targets.iter().all(|t| t.badge == badge) {
        Ok(badge)
    } else {
        Err(BuildError::TooManyTargets {
            count: targets.len(),
            max: 1,
        })
    }
}

fn android_message<'a>(
    notification: &'a Notification,
    credential: &'a CredentialProfile,
) -> Message<'a> {
    let hw_category = match notification.android_huawei_category.as_str() {
        "" => "IM",
        category => category,
    };
    // Unset takes the IM default, 1 (system); an explicit 0 (operational) is passed on.
    let vivo = notification.android_vivo_classification.unwrap_or(1);
    let (ring, ring_raw) = match notification.sound.as_str() {
        "" => (0, None),
        "default" => (1, None),
        file => (1, Some(raw_resource_name(file))),
    };
    Message {
        android: Some(Android {
            action: click_action(&credential.click_action),
            custom_content: custom_content(&notification.ext),
            fcm_ch_id: &notification.android_fcm_channel_id,
            hw_category,
            n_ch_id: &credential.default_channel_id,
            oppo_ch_id: &notification.android_oppo_channel_id,
            ring,
            ring_raw,
            vivo_ch_id: vivo.to_string(),
            xm_ch_id: &notification.android_xiaomi_channel_id,
        }),
        content: &notification.body,
        ios: None,
        thread_id: "",
        title: &notification.title,
    }
}

fn ios_message(notification: &Notification, badge: Option<u32>) -> Message<'_> {
    let silent = is_silent(notification);
    let aps = if silent {
        Aps {
            alert: None,
            badge_type: None,
            content_available: Some(1),
            mutable_content: None,
            sound: "",
        }
    } else {
        // `alert` is required; TPNS fills its title and body from the message's own.
        Aps {
            alert: Some(EmptyObject {}),
            badge_type: badge,
            content_available: None,
            mutable_content: notification.ios_mutable_content.then_some(1),
            sound: &notification.sound,
        }
    };
    Message {
        android: None,
        content: &notification.body,
        ios: Some(Ios {
            aps,
            custom_content: custom_content(&notification.ext),
        }),
        thread_id: &notification.conversation,
        title: &notification.title,
    }
}

fn click_action(click_action: &str) -> Option<Action<'_>> {
    if click_action.is_empty() {
        None
    } else if click_action.contains("://") || click_action.starts_with("intent:") {
        Some(Action {
            action_type: 3,
            activity: "",
            intent: click_action,
        })
    } else {
        Some(Action {
            action_type: 1,
            activity: click_action,
            intent: "",
        })
    }
}

/// `ext` as is when it is a JSON object, else wrapped as `{"ext": <ext>}`.
fn custom_content(ext: &str) -> Option<Cow<'_, str>> {
    if ext.is_empty() {
        None
    } else if is_json_object(ext) {
        Some(Cow::Borrowed(ext))
    } else {
        Some(Cow::Owned(json_string(&ExtMap { ext })))
    }
}

/// Whether `text` is a JSON object, judged exactly as parsing it into a `serde_json::Value`
/// would (the same parser calls, so the same depth limit, number range and escape rules)
/// but without building the tree.
fn is_json_object(text: &str) -> bool {
    matches!(
        serde_json::from_str::<Parsed>(text),
        Ok(Parsed { object: true })
    )
}

/// A JSON value read and dropped, remembering only whether it was an object.
struct Parsed {
    object: bool,
}

impl<'de> serde::Deserialize<'de> for Parsed {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Parsed, D::Error> {
        deserializer.deserialize_any(ParsedVisitor)
    }
}

struct ParsedVisitor;

impl<'de> serde::de::Visitor<'de> for ParsedVisitor {
    type Value = Parsed;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Parsed, E> {
        Ok(Parsed { object: false })
    }

    fn visit_i64<E>(self, _: i64) -> Result<Parsed, E> {
        Ok(Parsed { object: false })
    }

    fn visit_u64<E>(self, _: u64) -> Result<Parsed, E> {
        Ok(Parsed { object: false })
    }

    fn visit_f64<E>(self, _: f64) -> Result<Parsed, E> {
        Ok(Parsed { object: false })
    }

    fn visit_str<E>(self, _: &str) -> Result<Parsed, E> {
        Ok(Parsed { object: false })
    }

    fn visit_unit<E>(self) -> Result<Parsed, E> {
        Ok(Parsed { object: false })
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Parsed, A::Error> {
        while seq.next_element::<Parsed>()?.is_some() {}
        Ok(Parsed { object: false })
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Parsed, A::Error> {
        while map.next_entry::<Parsed, Parsed>()?.is_some() {}
        Ok(Parsed { object: true })
    }
}

fn expire_time(notification: &Notification) -> Option<u64> {
    let ttl = ttl_seconds(notification, 0)?;
    Some(if ttl < MIN_STORED_EXPIRE_SECONDS {
        0
    } else {
        ttl.min(MAX_EXPIRE_SECONDS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::build_payload;
    use crate::payload::testing::{notification, target};
    use impush_proto::v1::AndroidNotifyMode;
    use serde_json::{Value, json};

    const TOKEN: &str = "005c28bf60e29f9a1c2052ce96f43019a0b7";
    const EXT: &str = r#"{"entity":{"action":1,"chatType":1,"sender":"denny"}}"#;

    fn android_credential() -> CredentialProfile {
        CredentialProfile {
            app_id: "1500001533".into(),
            package_name: "com.example.im".into(),
            ..CredentialProfile::new(8, Vendor::Tpns)
        }
    }

    fn ios_credential() -> CredentialProfile {
        CredentialProfile {
            app_id: "1600001061".into(),
            bundle_id: "com.example.im".into(),
            ..CredentialProfile::new(8, Vendor::Tpns)
        }
    }

    fn body(request: &VendorRequest) -> Value {
        let Body::Json(body) = &request.body else {
            panic!("TPNS takes JSON")
        };
        serde_json::from_str(body).unwrap()
    }

    #[test]
    fn tpns_on_an_iphone_follows_the_ios_rules() {
        let both = CredentialProfile {
            package_name: "com.example.im".into(),
            ..ios_credential()
        };
        // (credential, ios_device, platform object sent)
        let table = [
            (&both, true, "ios"),
            (&both, false, "android"),
            (&ios_credential(), false, "ios"),
            (&android_credential(), true, "android"),
        ];
        for (credential, ios_device, platform) in table {
            let mut n = notification();
            n.ios_device = ios_device;
            n.sound = "ring.caf".into();
            let message =
                body(&build_payload(&n, credential, &[target(TOKEN)]).unwrap())["message"].clone();
            assert!(message.get(platform).is_some(), "{ios_device} {message}");
            if platform == "ios" {
                assert_eq!(message["ios"]["aps"]["sound"], "ring.caf");
                assert_eq!(message["ios"]["aps"]["badge_type"], 4);
            }
        }
    }

    #[test]
    fn notify_mode_and_silent_pushes_are_tpns_messages() {
        // (credential, notify mode, content-available, mutable-content, message_type, aps)
        let table = [
            (
                android_credential(),
                AndroidNotifyMode::Normal,
                false,
                false,
                "notify",
                None,
            ),
            (
                android_credential(),
                AndroidNotifyMode::Custom,
                false,
                false,
                "message",
                None,
            ),
            (
                ios_credential(),
                AndroidNotifyMode::Custom,
                false,
                false,
                "notify",
                Some(json!({"alert": {}, "badge_type": 4, "sound": "default"})),
            ),
            (
                ios_credential(),
                AndroidNotifyMode::Unspecified,
                false,
                true,
                "notify",
                Some(
                    json!({"alert": {}, "badge_type": 4, "sound": "default", "mutable-content": 1}),
                ),
            ),
            (
                ios_credential(),
                AndroidNotifyMode::Unspecified,
                true,
                false,
                "message",
                Some(json!({"content-available": 1})),
            ),
        ];
        for (credential, mode, available, mutable, message_type, aps) in table {
            let mut n = notification();
            n.set_android_notify_mode(mode);
            n.ios_content_available = available;
            n.ios_mutable_content = mutable;
            let sent = body(&build_payload(&n, &credential, &[target(TOKEN)]).unwrap());
            assert_eq!(sent["message_type"], message_type, "{mode:?} {available}");
            if let Some(aps) = aps {
                assert_eq!(sent["message"]["ios"]["aps"], aps);
            }
        }
    }

    #[test]
    fn vivo_classification_0_is_passed_to_tpns() {
        // (android_vivo_classification, vivo_ch_id)
        for (asked, sent) in [(None, "1"), (Some(0), "0"), (Some(1), "1")] {
            let mut n = notification();
            n.android_vivo_classification = asked;
            let body = body(&build_payload(&n, &android_credential(), &[target(TOKEN)]).unwrap());
            assert_eq!(body["message"]["android"]["vivo_ch_id"], sent, "{asked:?}");
        }
    }

    #[test]
    fn android_push_carries_ext_as_custom_content_and_the_im_categories() {
        let req = build_payload(&notification(), &android_credential(), &[target(TOKEN)]).unwrap();
        assert_eq!(req.path, "/v3/push/app");
        assert!(req.headers.is_empty());
        assert_eq!(
            body(&req),
            json!({
                "audience_type": "token",
                "token_list": [TOKEN],
                "message_type": "notify",
                "message": {
                    "title": "Team chat",
                    "content": "Denny: see you at 5",
                    "android": {
                        "hw_category": "IM",
                        "vivo_ch_id": "1",
                        "ring": 1,
                        "custom_content": EXT
                    }
                }
            })
        );
    }

    #[test]
    fn ios_push_has_environment_badge_sound_thread_and_custom_content() {
        let req = build_payload(&notification(), &ios_credential(), &[target(TOKEN)]).unwrap();
        assert_eq!(
            body(&req),
            json!({
                "audience_type": "token",
                "token_list": [TOKEN],
                "message_type": "notify",
                "environment": "product",
                "message": {
                    "title": "Team chat",
                    "content": "Denny: see you at 5",
                    "thread_id": "c2c:denny",
                    "ios": {
                        "aps": {"alert": {}, "badge_type": 4, "sound": "default"},
                        "custom_content": EXT
                    }
                }
            })
        );

        let sandbox = CredentialProfile {
            environment: Environment::Sandbox,
            ..ios_credential()
        };
        let req = build_payload(&notification(), &sandbox, &[target(TOKEN)]).unwrap();
        assert_eq!(body(&req)["environment"], "dev");
    }

    #[test]
    fn im_messages_use_each_vendors_private_message_channel() {
        let mut n = notification();
        n.android_oppo_channel_id = "tuikit".into();
        n.android_xiaomi_channel_id = "high_system".into();
        n.android_fcm_channel_id = "fcm_im".into();
        n.android_huawei_category = "VOIP".into();
        let cred = CredentialProfile {
            default_channel_id: "tpns_im".into(),
            ..android_credential()
        };
        let req = build_payload(&n, &cred, &[target(TOKEN)]).unwrap();
        let android = &body(&req)["message"]["android"];
        assert_eq!(android["n_ch_id"], "tpns_im");
        assert_eq!(android["oppo_ch_id"], "tuikit");
        assert_eq!(android["xm_ch_id"], "high_system");
        assert_eq!(android["fcm_ch_id"], "fcm_im");
        assert_eq!(android["hw_category"], "VOIP");
        assert_eq!(android["vivo_ch_id"], "1");
    }

    #[test]
    fn batch_uses_a_token_list_that_skips_invalid_tokens() {
        let targets: Vec<_> = ["t1", "t2", "invalid-abc"].map(target).into();
        let req = build_payload(&notification(), &android_credential(), &targets).unwrap();
        let body = body(&req);
        assert_eq!(body["audience_type"], "token_list");
        assert_eq!(body["token_list"], json!(["t1", "t2", "invalid-abc"]));
        assert_eq!(body["ignore_invalid_token"], 1);
    }

    #[test]
    fn batch_is_limited_to_1000_tokens() {
        assert_eq!(Payload::MAX_BATCH, 1000);
        let targets: Vec<_> = (0..1001).map(|i| target(&format!("t{i}"))).collect();
        let err = build_payload(&notification(), &android_credential(), &targets).unwrap_err();
        assert_eq!(
            err,
            BuildError::TooManyTargets {
                count: 1001,
                max: 1000
            }
        );
    }

    #[test]
    fn ios_batch_needs_one_badge_for_all_its_devices() {
        let mut other = target("t2");
        other.badge = Some(9);
        let err =
            build_payload(&notification(), &ios_credential(), &[target("t1"), other]).unwrap_err();
        assert_eq!(err, BuildError::TooManyTargets { count: 2, max: 1 });

        let req = build_payload(
            &notification(),
            &ios_credential(),
            &[target("t1"), target("t2")],
        )
        .unwrap();
        assert_eq!(body(&req)["message"]["ios"]["aps"]["badge_type"], 4);
    }

    #[test]
    fn click_opens_the_configured_activity_or_intent() {
        let activity = CredentialProfile {
            click_action: "com.tencent.qcloud.tim.demo.main.MainActivity".into(),
            ..android_credential()
        };
        let req = build_payload(&notification(), &activity, &[target(TOKEN)]).unwrap();
        assert_eq!(
            body(&req)["message"]["android"]["action"],
            json!({
                "action_type": 1,
                "activity": "com.tencent.qcloud.tim.demo.main.MainActivity"
            })
        );

        let intent = CredentialProfile {
            click_action: "pushscheme://com.tencent.qcloud/detail".into(),
            ..android_credential()
        };
        let req = build_payload(&notification(), &intent, &[target(TOKEN)]).unwrap();
        assert_eq!(
            body(&req)["message"]["android"]["action"],
            json!({"action_type": 3, "intent": "pushscheme://com.tencent.qcloud/detail"})
        );
    }

    #[test]
    fn silent_notification_has_no_sound() {
        let mut n = notification();
        n.sound.clear();
        let req = build_payload(&n, &android_credential(), &[target(TOKEN)]).unwrap();
        let android = &body(&req)["message"]["android"];
        assert_eq!(android["ring"], 0);
        assert!(android.get("ring_raw").is_none());

        let req = build_payload(&n, &ios_credential(), &[target(TOKEN)]).unwrap();
        assert!(body(&req)["message"]["ios"]["aps"].get("sound").is_none());
    }

    #[test]
    fn a_sound_file_plays_as_a_raw_resource_on_android_and_as_is_on_ios() {
        let mut n = notification();
        n.sound = "ding.mp3".into();
        let req = build_payload(&n, &android_credential(), &[target(TOKEN)]).unwrap();
        let android = &body(&req)["message"]["android"];
        assert_eq!(android["ring"], 1);
        assert_eq!(android["ring_raw"], "ding");

        let req = build_payload(&n, &ios_credential(), &[target(TOKEN)]).unwrap();
        assert_eq!(body(&req)["message"]["ios"]["aps"]["sound"], "ding.mp3");
    }

    #[test]
    fn missing_title_falls_back_to_app_name_then_sender() {
        let mut n = notification();
        n.title.clear();
        let req = build_payload(&n, &android_credential(), &[target(TOKEN)]).unwrap();
        assert_eq!(body(&req)["message"]["title"], "Denny");

        let cred = CredentialProfile {
            default_title: "Example IM".into(),
            ..android_credential()
        };
        let req = build_payload(&n, &cred, &[target(TOKEN)]).unwrap();
        assert_eq!(body(&req)["message"]["title"], "Example IM");
    }

    #[test]
    fn ext_that_is_not_a_json_object_is_wrapped_and_no_ext_sends_none() {
        let mut n = notification();
        n.ext = "plain text".into();
        let req = build_payload(&n, &android_credential(), &[target(TOKEN)]).unwrap();
        assert_eq!(
            body(&req)["message"]["android"]["custom_content"],
            r#"{"ext":"plain text"}"#
        );

        n.ext.clear();
        let req = build_payload(&n, &ios_credential(), &[target(TOKEN)]).unwrap();
        assert!(body(&req)["message"]["ios"].get("custom_content").is_none());
    }

    #[test]
    fn expiry_is_stored_no_longer_than_the_ttl() {
        let mut n = notification();
        n.expires_at_ms = n.send_time_ms + 30_000;
        let req = build_payload(&n, &android_credential(), &[target(TOKEN)]).unwrap();
        assert_eq!(
            body(&req)["expire_time"],
            0,
            "a short TTL is sent real-time"
        );

        n.expires_at_ms = n.send_time_ms + 3_600_000;
        let req = build_payload(&n, &android_credential(), &[target(TOKEN)]).unwrap();
        assert_eq!(body(&req)["expire_time"], 3600);

        n.expires_at_ms = n.send_time_ms + 10 * 24 * 3_600_000;
        let req = build_payload(&n, &android_credential(), &[target(TOKEN)]).unwrap();
        assert_eq!(body(&req)["expire_time"], 259_200);

        let req = build_payload(&notification(), &android_credential(), &[target(TOKEN)]).unwrap();
        assert!(body(&req).get("expire_time").is_none());
    }

    #[test]
    fn long_content_is_cut_so_the_message_field_fits_4_kb() {
        let mut n = notification();
        n.body = "消息".repeat(3000);
        let targets: Vec<_> = (0..200).map(|i| target(&format!("{TOKEN}{i}"))).collect();
        let req = build_payload(&n, &android_credential(), &targets).unwrap();
        let message = body(&req)["message"].to_string().len();
        assert!(message <= MAX_MESSAGE_BYTES, "{message}");
        assert!(
            message > MAX_MESSAGE_BYTES - 16,
            "cut far too much: {message}"
        );
        assert!(
            req.body.to_bytes().len() > MAX_MESSAGE_BYTES,
            "the token list is not counted"
        );
        assert!(
            body(&req)["message"]["content"]
                .as_str()
                .unwrap()
                .ends_with('…')
        );
    }

    #[test]
    fn an_oversized_ext_is_a_typed_error_not_a_rejected_request() {
        let mut n = notification();
        n.ext = "x".repeat(5000);
        let err = build_payload(&n, &android_credential(), &[target(TOKEN)]).unwrap_err();
        assert!(matches!(
            err,
            BuildError::PayloadTooLarge { limit: 4096, .. }
        ));
    }

    #[test]
    fn missing_platform_identity_names_the_fields() {
        let cred = CredentialProfile::new(8, Vendor::Tpns);
        let err = build_payload(&notification(), &cred, &[target(TOKEN)]).unwrap_err();
        assert_eq!(
            err,
            BuildError::MissingCredentialField {
                business_id: 8,
                vendor: "tpns",
                field: "bundle_id or package_name"
            }
        );
    }

    #[test]
    fn tokens_that_could_escape_the_list_are_refused() {
        let err = build_payload(
            &notification(),
            &android_credential(),
            &[target("ok"), target("a,b")],
        )
        .unwrap_err();
        assert!(matches!(
            err,
            BuildError::InvalidToken { vendor: "tpns", .. }
        ));
    }

    #[test]
    fn measure_is_the_message_field_alone() {
        for credential in [android_credential(), ios_credential()] {
            let targets = [target("t1"), target("t2")];
            let req = build_payload(&notification(), &credential, &targets).unwrap();
            let message = body(&req)["message"].to_string();
            assert_eq!(Payload::measure(&req), message.len());
        }
    }
}
