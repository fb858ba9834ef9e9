//! Huawei Push Kit (HMS Core, Android), REST API v1.
//!
//! Request format (developer.huawei.com/consumer/en/doc/HMS-References/push-sendapi, "Sending
//! Messages"; field names and types from HMS-Core/hms-push-serverdemo-go
//! `src/push/model/message.go`, `message_hm.go` and `verify/messaging_hm_verify.go`):
//! `POST /v1/<app_id>/messages:send` with a JSON body
//! `{"validate_only":false,"message":{"data","android":{…},"token":[…]}}`; the OAuth bearer
//! token is added by the client. One request carries 1–1000 tokens (`80300010` otherwise) and
//! "the message body cannot exceed 4096 bytes (excluding token)" (`80300008`), so
//! [`Payload::measure`] leaves the token list out.
//!
//! - Title: the notification's title, else `credential.default_title`, else the sender's
//!   name, else the group's name; Huawei refuses a notification without one, so with none of
//!   them the credential's `default_title` is reported missing.
//! - `ext` goes in `message.data` as `{"ext":"<ext>"}`: for a notification message Push Kit
//!   hands `data` to the activity a tap opens, one intent extra per key (NC 9.1.1+, guide
//!   "Customizing Actions to Be Triggered upon Notification Message Tapping",
//!   developer.huawei.com/consumer/cn/doc/HMSCore-Guides/andorid-basic-clickaction-0000001087554076),
//!   which is where the IM SDK reads `getIntent().getExtras().getString("ext")`.
//! - Classification: `android.category` = `android_huawei_category`, else `IM` (a service
//!   and communication message, not counted against the marketing quota; needs Huawei's
//!   self-classification right). `importance` is not sent: with self-classification the
//!   category decides the reminder level, and `LOW` would file the message as marketing.
//! - Click: `click_action {type:1, intent}` with the credential's intent URI, else
//!   `{type:3}` (open the app).
//! - Sound: `default` → `default_sound:true`; a file → `sound:"/raw/<name>"` with
//!   `default_sound:false` (the ringtone must sit in the app's `res/raw`; Huawei applies it
//!   when it creates the channel). Silence: neither field. Push Kit has no per-message mute
//!   for service and communication messages, so a silent push rings as the user's channel
//!   says.
//! - Expiry: `android.ttl` as `"<seconds>s"`, 1 s to 15 days (1 296 000 s, the documented
//!   maximum); without an expiry Huawei keeps the message for its default of one day.
//! - `android.collapse_key: -1` makes Push Kit keep every cached message of an offline
//!   device instead of only the newest (archived "push-server-send" reference), so
//!   different messages are never collapsed. Each message gets its own notification id
//!   (Huawei's default).
//! - Notify mode: `android_notify_mode` CUSTOM sends a data message: no
//!   `android.notification`, and `data` holds `{"body","ext","title"}` as a JSON string,
//!   which Push Kit hands to the app's `HmsMessageService.onMessageReceived` ("Sending
//!   Messages", data messages); the app shows it itself. The IM category is left out there.
//! - Badge: not sent. Huawei's badge needs the launcher class and a number per device,
//!   and a batch shares one payload.

use impush_proto::v1::{Notification, PushTarget, Vendor};
use serde::Serialize;

use super::{
    Body, BuildError, Limits, PassThrough, Seconds, Tokens, VendorPayload, VendorRequest,
    is_pass_through, json_string, message_key, raw_resource_name, required,
};
use super::oem::{self, ClickAction};
use crate::credential::CredentialProfile;
use crate::render::DEFAULT_SOUND;

/// Message body limit, token list excluded (push-sendapi "Restriction").
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// Tokens per request (push-sendapi; `80300010` beyond).
pub const MAX_TOKENS: usize = 1000;
/// The category of instant-messaging notifications.
pub const IM_CATEGORY: &str = "IM";

/// `collapse_key`: deliver every cached offline message.
const KEEP_ALL_CACHED: i32 = -1;

pub struct Payload;

impl VendorPayload for Payload {
    const VENDOR: Vendor = Vendor::Huawei;
    const NAME: &'static str = "huawei";
    const TOKENS: super::TokenRules = super::TokenRules {
        base64: true,
        ..super::TokenRules::DEFAULT
    };
    const MAX_BATCH: usize = MAX_TOKENS;
    const REQUIRES_TITLE: bool = true;

    fn limits(_notification: &Notification) -> Limits {
        Limits::bytes(MAX_MESSAGE_BYTES)
    }

    fn build(
        notification: &Notification,
        credential: &CredentialProfile,
        targets: &[PushTarget],
    ) -> Result<VendorRequest, BuildError> {
        let app_id = required(credential, "app_id", &credential.app_id)?;

        let message = if is_pass_through(notification) {
            Message {
                android: data_android(notification, credential),
                data: Some(json_string(&PassThrough::of(notification))),
                token: Tokens(targets),
            }
        } else {
            Message {
                android: android(notification, credential),
                data: oem::ext_data(notification),
                token: Tokens(targets),
            }
        };
        let request = Request {
            message,
            validate_only: false,
        };
        Ok(VendorRequest {
            path: format!("/v1/{app_id}/messages:send"),
            headers: Vec::new(),
            body: Body::json(&request),
        })
    }

    /// The body without `message.token`: Huawei's 4096 bytes exclude the tokens.
    fn measure(request: &VendorRequest) -> usize {
        oem::measure_without_tokens(request)
    }
}

/// Fields in alphabetical order, like every payload struct (see [`super`]).
/// [`Payload::measure`] relies on `message.token` being the first key so named.
#[derive(Serialize)]
struct Request<'a> {
    message: Message<'a>,
    validate_only: bool,
}

#[derive(Serialize)]
struct Message<'a> {
    android: Android<'a>,
    /// `{"ext": <ext>}` as a JSON string: Push Kit's `data` is text.
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<String>,
    token: Tokens<'a>,
}

#[derive(Serialize)]
struct Android<'a> {
    /// Echoed in the delivery receipt (`biTag`), see [`super::receipt`].
    #[serde(skip_serializing_if = "str::is_empty")]
    bi_tag: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    category: &'a str,
    collapse_key: i32,
    /// Absent for a data message (notify mode CUSTOM).
    #[serde(skip_serializing_if = "Option::is_none")]
    notification: Option<AndroidNotification<'a>>,
    /// The AppGallery Connect receipt configuration the receipt goes to.
    #[serde(skip_serializing_if = "str::is_empty")]
    receipt_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<Seconds>,
}

#[derive(Serialize)]
struct AndroidNotification<'a> {
    body: &'a str,
    click_action: ClickAction<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    default_sound: Option<bool>,
    /// A notification with the `notify_id` of one already shown replaces it.
    #[serde(skip_serializing_if = "Option::is_none")]
    notify_id: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sound: Option<String>,
    title: &'a str,
}


fn android<'a>(notification: &'a Notification, credential: &'a CredentialProfile) -> Android<'a> {
    let category = if notification.android_huawei_category.is_empty() {
        IM_CATEGORY
    } else {
        &notification.android_huawei_category
    };
    let receipt = super::receipt::Receipt::of(notification, credential);
    Android {
        bi_tag: receipt.param,
        category,
        collapse_key: KEEP_ALL_CACHED,
        notification: Some(android_notification(notification, credential)),
        receipt_id: receipt.id,
        ttl: oem::android_ttl(notification),
    }
}

/// `android` of a data message: no notification; `category` only when the sender named one
/// (Push Kit takes `VOIP` and `PLAY_VOICE` for data messages, not the notification
/// categories such as `IM`).
fn data_android<'a>(
    notification: &'a Notification,
    credential: &'a CredentialProfile,
) -> Android<'a> {
    let receipt = super::receipt::Receipt::of(notification, credential);
    Android {
        bi_tag: receipt.param,
        category: &notification.android_huawei_category,
        collapse_key: KEEP_ALL_CACHED,
        notification: None,
        receipt_id: receipt.id,
        ttl: oem::android_ttl(notification),
    }
}

fn android_notification<'a>(
    notification: &'a Notification,
    credential: &'a CredentialProfile,
) -> AndroidNotification<'a> {
    let (sound, default_sound) = match notification.sound.as_str() {
        "" => (None, None),
        DEFAULT_SOUND => (None, Some(true)),
        file => (
            Some(format!("/raw/{}", raw_resource_name(file))),
            Some(false),
        ),
    };
    AndroidNotification {
        body: &notification.body,
        click_action: ClickAction::of(credential),
        default_sound,
        notify_id: notify_id(notification),
        sound,
        title: &notification.title,
    }
}

/// `notify_id` from the message's collapse id (its `msg_id`), 1 to 2^31 - 1: a repeat of one
/// message replaces its own notification, two messages keep one each whatever their
/// conversation and send time. None without a collapse id (Push Kit then gives every
/// notification its own id; `-1` and no value mean the same).
fn notify_id(notification: &Notification) -> Option<i32> {
    if notification.collapse_id.is_empty() {
        return None;
    }
    let id = message_key(notification, None) % (i32::MAX as u64) + 1;
    i32::try_from(id).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use impush_proto::v1::AndroidNotifyMode;

    #[test]
    fn notify_mode_custom_is_a_data_message() {
        // (notify mode, android.notification sent?, category)
        let table = [
            (AndroidNotifyMode::Unspecified, true, Some("IM")),
            (AndroidNotifyMode::Normal, true, Some("IM")),
            (AndroidNotifyMode::Custom, false, None),
        ];
        for (mode, shown, category) in table {
            let mut n = notification();
            n.set_android_notify_mode(mode);
            let message =
                body(&build_payload(&n, &credential(), &[target("tok-1")]).unwrap())["message"]
                    .clone();
            assert_eq!(
                message["android"].get("notification").is_some(),
                shown,
                "{mode:?}"
            );
            assert_eq!(message["android"]["category"].as_str(), category);
            let data: Value = serde_json::from_str(message["data"].as_str().unwrap()).unwrap();
            assert_eq!(data["ext"], n.ext.as_str());
            if !shown {
                assert_eq!(data["title"], "Team chat");
                assert_eq!(data["body"], "Denny: see you at 5");
            }
        }
    }
    use crate::payload::build_payload;
    use crate::payload::testing::{key_follows_msg_id, keyed_notification, notification, target};
    use serde_json::{Value, json};

    const INTENT: &str = "intent://com.tencent.qcloud/detail#Intent;scheme=pushscheme;\
        launchFlags=0x4000000;component=com.example.im/com.example.im.MainActivity;end";

    fn credential() -> CredentialProfile {
        CredentialProfile {
            app_id: "104123456".into(),
            ..CredentialProfile::new(3, Vendor::Huawei)
        }
    }

    fn body(req: &VendorRequest) -> Value {
        let Body::Json(body) = &req.body else {
            panic!("Huawei takes JSON")
        };
        serde_json::from_str(body).unwrap()
    }

    #[test]
    fn notification_has_title_body_im_category_ext_data_and_tokens() {
        let req = build_payload(&notification(), &credential(), &[target("tok-1")]).unwrap();
        assert_eq!(req.path, "/v1/104123456/messages:send");
        assert!(req.headers.is_empty());
        assert_eq!(
            body(&req),
            json!({
                "validate_only": false,
                "message": {
                    "data": r#"{"ext":"{\"entity\":{\"action\":1,\"chatType\":1,\"sender\":\"denny\"}}"}"#,
                    "android": {
                        "collapse_key": -1,
                        "category": "IM",
                        "notification": {
                            "title": "Team chat",
                            "body": "Denny: see you at 5",
                            "click_action": {"type": 3},
                            "default_sound": true
                        }
                    },
                    "token": ["tok-1"]
                }
            })
        );
    }

    #[test]
    fn ext_reaches_the_app_unchanged_as_the_ext_extra() {
        let req = build_payload(&notification(), &credential(), &[target("tok-1")]).unwrap();
        let data: Value =
            serde_json::from_str(body(&req)["message"]["data"].as_str().unwrap()).unwrap();
        assert_eq!(data, json!({ "ext": notification().ext }));

        let mut n = notification();
        n.ext.clear();
        let req = build_payload(&n, &credential(), &[target("tok-1")]).unwrap();
        assert!(body(&req)["message"].get("data").is_none());
    }

    #[test]
    fn im_messages_use_the_configured_category_else_im() {
        let mut n = notification();
        n.android_huawei_category = "VOIP".into();
        let req = build_payload(&n, &credential(), &[target("tok-1")]).unwrap();
        assert_eq!(body(&req)["message"]["android"]["category"], "VOIP");
    }

    #[test]
    fn click_opens_the_configured_intent() {
        let cred = CredentialProfile {
            click_action: INTENT.into(),
            ..credential()
        };
        let req = build_payload(&notification(), &cred, &[target("tok-1")]).unwrap();
        assert_eq!(
            body(&req)["message"]["android"]["notification"]["click_action"],
            json!({"type": 1, "intent": INTENT})
        );
    }

    #[test]
    fn a_sound_file_plays_from_res_raw_and_silence_sends_no_sound() {
        let mut n = notification();
        n.sound = "ring.mp3".into();
        let req = build_payload(&n, &credential(), &[target("tok-1")]).unwrap();
        let android_notification = &body(&req)["message"]["android"]["notification"];
        assert_eq!(android_notification["sound"], "/raw/ring");
        assert_eq!(android_notification["default_sound"], false);

        n.sound.clear();
        let req = build_payload(&n, &credential(), &[target("tok-1")]).unwrap();
        let android_notification = &body(&req)["message"]["android"]["notification"];
        assert!(android_notification.get("sound").is_none());
        assert!(android_notification.get("default_sound").is_none());
    }

    #[test]
    fn expiry_becomes_a_ttl_clamped_to_fifteen_days() {
        let mut n = notification();
        n.expires_at_ms = n.send_time_ms + 30_000;
        let req = build_payload(&n, &credential(), &[target("tok-1")]).unwrap();
        assert_eq!(body(&req)["message"]["android"]["ttl"], "30s");

        n.expires_at_ms = n.send_time_ms + 40 * 24 * 3600 * 1000;
        let req = build_payload(&n, &credential(), &[target("tok-1")]).unwrap();
        assert_eq!(body(&req)["message"]["android"]["ttl"], "1296000s");
    }

    #[test]
    fn missing_title_falls_back_to_default_title_then_sender() {
        let mut n = notification();
        n.title.clear();
        let cred = CredentialProfile {
            default_title: "ExampleIM".into(),
            ..credential()
        };
        let req = build_payload(&n, &cred, &[target("tok-1")]).unwrap();
        assert_eq!(
            body(&req)["message"]["android"]["notification"]["title"],
            "ExampleIM"
        );
        let req = build_payload(&n, &credential(), &[target("tok-1")]).unwrap();
        assert_eq!(
            body(&req)["message"]["android"]["notification"]["title"],
            "Denny"
        );
    }

    #[test]
    fn no_title_anywhere_names_default_title() {
        let mut n = notification();
        n.title.clear();
        n.sender_name.clear();
        let err = build_payload(&n, &credential(), &[target("tok-1")]).unwrap_err();
        assert_eq!(
            err,
            BuildError::MissingCredentialField {
                business_id: 3,
                vendor: "huawei",
                field: "default_title"
            }
        );
    }

    #[test]
    fn batch_lists_up_to_1000_tokens() {
        let targets: Vec<_> = (0..1000).map(|i| target(&format!("tok-{i}"))).collect();
        let req = build_payload(&notification(), &credential(), &targets).unwrap();
        let tokens = body(&req)["message"]["token"].as_array().unwrap().clone();
        assert_eq!(tokens.len(), 1000);
        assert_eq!(tokens[999], "tok-999");

        let targets: Vec<_> = (0..1001).map(|i| target(&format!("tok-{i}"))).collect();
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
    fn tokens_that_could_break_the_request_are_refused() {
        let err = build_payload(&notification(), &credential(), &[target("a,b")]).unwrap_err();
        assert!(matches!(err, BuildError::InvalidToken { .. }));
        assert!(build_payload(&notification(), &credential(), &[target("invalid-abc")]).is_ok());
    }

    #[test]
    fn long_content_is_cut_to_4096_bytes_not_counting_tokens() {
        let mut n = notification();
        n.body = "消息".repeat(3000);
        let targets: Vec<_> = (0..500).map(|i| target(&format!("tok-{i}"))).collect();
        let req = build_payload(&n, &credential(), &targets).unwrap();
        let size = Payload::measure(&req);
        assert!(size <= MAX_MESSAGE_BYTES, "{size}");
        assert!(size > MAX_MESSAGE_BYTES - 16, "cut far too much: {size}");
        assert!(
            req.body.to_bytes().len() > MAX_MESSAGE_BYTES,
            "tokens are extra"
        );
        let body = body(&req);
        let cut = body["message"]["android"]["notification"]["body"]
            .as_str()
            .unwrap();
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn missing_app_id_names_the_field() {
        let cred = CredentialProfile::new(3, Vendor::Huawei);
        let err = build_payload(&notification(), &cred, &[target("tok-1")]).unwrap_err();
        assert_eq!(
            err,
            BuildError::MissingCredentialField {
                business_id: 3,
                vendor: "huawei",
                field: "app_id"
            }
        );
    }

    #[test]
    fn measure_is_the_body_without_the_token_list() {
        let targets: Vec<_> = (0..3).map(|i| target(&format!("tok-{i}"))).collect();
        let req = build_payload(&notification(), &credential(), &targets).unwrap();
        let mut without_tokens = body(&req);
        without_tokens["message"]
            .as_object_mut()
            .unwrap()
            .remove("token");
        assert_eq!(Payload::measure(&req), without_tokens.to_string().len());
    }

    #[test]
    fn notify_id_comes_from_msg_id_so_a_repeat_replaces_itself_and_others_do_not() {
        key_follows_msg_id(notify_id);
        let first = keyed_notification();
        let id = notify_id(&first).unwrap();
        assert!(id >= 1, "{id}: -1 and 0 are not ids");
        let req = build_payload(&first, &credential(), &[target("tok-1")]).unwrap();
        assert_eq!(
            body(&req)["message"]["android"]["notification"]["notify_id"],
            json!(id)
        );
    }
}
