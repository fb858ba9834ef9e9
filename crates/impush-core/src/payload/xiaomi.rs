//! Xiaomi MiPush, server API v3 (`/v3/message/regid`).
//!
//! Request format (dev.mi.com/xiaomihyperos/documentation/detail?pId=1559, "服务端API地址和
//! 参数"; field names and order from Xiaomi's Java server SDK, ggg17226/xmpush-server-api-http2
//! `Constants.java` and `Sender.buildFormDataFromMessage`): `POST /v3/message/regid`, form
//! fields, the `Authorization: key=<AppSecret>` header added by the client. Many devices share
//! one request as a comma-separated `registration_id` (up to 1000 [M]: the SDK's `unionSend`
//! joins with `,`; <https://dev.mi.com/xiaomihyperos/documentation/detail?pId=1696>).
//!
//! - Title and description are required and may not be blank. Title: the notification's,
//!   else `credential.default_title`, else the sender's name, else the group's name; with
//!   none of them `default_title` is reported missing. Limits: the doc says title "长度小于50"
//!   and description "长度小于128", every character counting 1; TPNS and mPaaS tables write
//!   50 and 128. We take the doc literally (49 and 127): one character less can never be
//!   refused.
//! - `ext` goes in `extra.ext`: MiPush hands the custom `extra.*` keys to the app as
//!   `MiPushMessage.getExtra()`, which the IM SDK reads on click (TUIKit
//!   `OfflineMessageDispatcher.getXiaomiMessage`: `getExtra().get("ext")`).
//! - Classification: `extra.channel_id` = `android_xiaomi_channel_id`, else
//!   `credential.default_channel_id` — the private-message (私信) channel the app registered
//!   with Xiaomi, which has no quota. With neither, no channel is sent and Xiaomi applies its
//!   default category (a low daily cap); the build does not fail, because apps not yet moved
//!   to the 2023 classification still deliver that way.
//! - Click: `extra.notify_effect=2` with `extra.intent_uri` (the credential's intent URI),
//!   else `extra.notify_effect=1` (the launcher activity).
//! - Sound: `default` → `notify_type=-1` (default sound, vibration and light); a file →
//!   also `extra.sound_uri=android.resource://<package>/raw/<name>`; silence →
//!   `notify_type=6` (vibration and light, no sound). On Android 8+ the channel's own
//!   settings win, as everywhere.
//! - Expiry: `time_to_live` in milliseconds, 1 s to 10 days (private messages are cached at
//!   most 10 days since 2024-09-03, dev.mi.com pId=1854).
//! - `notify_id`: MiPush shows one notification per app unless messages carry different
//!   notify ids ("相同notify_id的通知栏消息会覆盖之前的", default 0). Each message gets a
//!   stable id hashed from its `collapse_id` (its `msg_id`), so different messages never
//!   replace each other, even in one conversation at one send time, and a redelivered one
//!   replaces itself.
//! - Notify mode: `android_notify_mode` CUSTOM sends `pass_through=1` with `payload`, a JSON
//!   string `{"body","ext","title"}` the app's `PushMessageReceiver.onReceivePassThroughMessage`
//!   reads (`MiPushMessage.getContent()`); the title and description stay, as the API
//!   requires them.
//! - Size: Xiaomi publishes no byte limit we could verify (error 10018 "request body too
//!   long" exists). We keep the message fields, `registration_id` excluded, within 4096 raw
//!   bytes, the figure Tencent's push service gives for every Android channel [S]; see
//!   [`Payload::measure`].
//! - Badge: not sent (MIUI counts notifications itself).

use impush_proto::v1::{Notification, PushTarget, Vendor};

use super::{
    Body, BuildError, Limits, PassThrough, VendorPayload, VendorRequest,
    is_pass_through, json_string, message_key, raw_resource_name, required, ttl_seconds,
};
use crate::credential::CredentialProfile;
use crate::render::DEFAULT_SOUND;

pub const PATH: &str = "/v3/message/regid";
/// Registration ids per request.
pub const MAX_REGIDS: usize = 1000;
/// Message fields, `registration_id` excluded, in raw bytes (see the module doc).
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// "长度小于50": at most 49 characters.
pub const MAX_TITLE_CHARS: usize = 49;
/// "长度小于128": at most 127 characters.
pub const MAX_DESCRIPTION_CHARS: usize = 127;
/// Private messages are cached 10 days at most.
pub const MAX_TTL_MS: u64 = 10 * 24 * 3600 * 1000;

/// `notify_type`: default sound, vibration and lights.
const NOTIFY_ALL: &str = "-1";
/// `notify_type`: vibration (2) and lights (4), no sound (1).
const NOTIFY_SILENT: &str = "6";
/// `extra.notify_effect`: open the launcher activity.
const EFFECT_LAUNCHER: &str = "1";
/// `extra.notify_effect`: open the activity of `extra.intent_uri`.
const EFFECT_ACTIVITY: &str = "2";

pub struct Payload;

impl VendorPayload for Payload {
    const VENDOR: Vendor = Vendor::Xiaomi;
    const NAME: &'static str = "xiaomi";
    const TOKENS: super::TokenRules = super::TokenRules {
        base64: true,
        ..super::TokenRules::DEFAULT
    };
    const IDENTITY: crate::credential::CredentialField =
        crate::credential::CredentialField::PackageName;
    const MAX_BATCH: usize = MAX_REGIDS;
    const REQUIRES_TITLE: bool = true;

    fn limits(_notification: &Notification) -> Limits {
        Limits {
            max_title: Some(MAX_TITLE_CHARS),
            max_body: Some(MAX_DESCRIPTION_CHARS),
            ..Limits::bytes(MAX_MESSAGE_BYTES)
        }
    }

    fn build(
        notification: &Notification,
        credential: &CredentialProfile,
        targets: &[PushTarget],
    ) -> Result<VendorRequest, BuildError> {
        let package = required(credential, "package_name", &credential.package_name)?;
        let title = notification.title.as_str();

        let mut form = Form::default();
        form.add("restricted_package_name", package);
        if let Some(ttl) = ttl_seconds(notification, 1) {
            form.add(
                "time_to_live",
                ttl.saturating_mul(1000).min(MAX_TTL_MS).to_string(),
            );
        }
        form.add("title", title);
        form.add("description", notification.body.as_str());
        form.add(
            "notify_type",
            if notification.sound.is_empty() {
                NOTIFY_SILENT
            } else {
                NOTIFY_ALL
            },
        );
        if is_pass_through(notification) {
            // Handed to the app's `onReceivePassThroughMessage`, never shown by MIUI.
            form.add("pass_through", "1");
            form.add("payload", json_string(&PassThrough::of(notification)));
        } else {
            form.add("pass_through", "0");
        }
        form.add("notify_id", notify_id(notification).to_string());
        let channel = if notification.android_xiaomi_channel_id.is_empty() {
            &credential.default_channel_id
        } else {
            &notification.android_xiaomi_channel_id
        };
        if !channel.is_empty() {
            form.add("extra.channel_id", channel.as_str());
        }
        if credential.click_action.is_empty() {
            form.add("extra.notify_effect", EFFECT_LAUNCHER);
        } else {
            form.add("extra.notify_effect", EFFECT_ACTIVITY);
            form.add("extra.intent_uri", credential.click_action.as_str());
        }
        if !notification.sound.is_empty() && notification.sound != DEFAULT_SOUND {
            form.add(
                "extra.sound_uri",
                format!(
                    "android.resource://{package}/raw/{}",
                    raw_resource_name(&notification.sound)
                ),
            );
        }
        if !notification.ext.is_empty() {
            form.add("extra.ext", notification.ext.as_str());
        }
        let receipt = super::receipt::Receipt::of(notification, credential);
        if receipt.has_url() {
            form.add("extra.callback", receipt.url);
            form.add("extra.callback.param", receipt.param);
            form.add("extra.callback.type", super::receipt::XIAOMI_CALLBACK_TYPE);
        }
        let regids: Vec<&str> = targets.iter().map(|t| t.token.as_str()).collect();
        form.add("registration_id", regids.join(","));

        Ok(VendorRequest {
            path: PATH.to_owned(),
            headers: Vec::new(),
            body: Body::Form(form.0),
        })
    }

    /// Raw bytes of every field but `registration_id`: the limit is on the message, and a
    /// thousand regids must not squeeze its text.
    fn measure(request: &VendorRequest) -> usize {
        match &request.body {
            Body::Form(fields) => fields
                .iter()
                .filter(|(name, _)| name != "registration_id")
                .map(|(name, value)| name.len() + value.len() + 2)
                .sum(),
            Body::Json(_) => request.body.to_bytes().len(),
        }
    }
}

#[derive(Default)]
struct Form(Vec<(String, String)>);

impl Form {
    fn add(&mut self, name: &str, value: impl Into<String>) {
        self.0.push((name.to_owned(), value.into()));
    }
}

/// A stable id per message (FNV-1a of its `collapse_id`, i.e. its `msg_id`, in 31 bits): a
/// repeat of the message always gets the same id, different messages almost never share
/// one, whatever their conversation, send time and text.
pub(crate) fn notify_id(notification: &Notification) -> u32 {
    let hash = message_key(notification, None);
    ((hash ^ (hash >> 32)) as u32) & 0x7fff_ffff
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::build_payload;
    use crate::payload::testing::{notification, target};
    use crate::text;
    use impush_proto::v1::AndroidNotifyMode;
    use serde_json::json;

    const INTENT: &str = "intent://com.tencent.qcloud/detail#Intent;scheme=pushscheme;\
        launchFlags=0x4000000;component=com.example.im/com.example.im.MainActivity;end";

    fn credential() -> CredentialProfile {
        CredentialProfile {
            package_name: "com.example.im".into(),
            app_id: "2882303761517000000".into(),
            default_channel_id: "im_private".into(),
            ..CredentialProfile::new(4, Vendor::Xiaomi)
        }
    }

    #[test]
    fn notification_is_a_form_with_package_text_channel_click_and_ext() {
        let req = build_payload(&notification(), &credential(), &[target("regid-1")]).unwrap();
        assert_eq!(req.path, "/v3/message/regid");
        assert!(req.headers.is_empty());
        let notify_id = notify_id(&notification()).to_string();
        assert_eq!(
            req.body.to_json_value(),
            json!({
                "restricted_package_name": "com.example.im",
                "title": "Team chat",
                "description": "Denny: see you at 5",
                "notify_type": "-1",
                "pass_through": "0",
                "notify_id": notify_id,
                "extra.channel_id": "im_private",
                "extra.notify_effect": "1",
                "extra.ext": r#"{"entity":{"action":1,"chatType":1,"sender":"denny"}}"#,
                "registration_id": "regid-1"
            })
        );
    }

    #[test]
    fn batch_joins_tokens_with_commas() {
        let targets = [target("regid-1"), target("regid-2"), target("invalid-abc")];
        let req = build_payload(&notification(), &credential(), &targets).unwrap();
        assert_eq!(
            req.body.form_field("registration_id"),
            Some("regid-1,regid-2,invalid-abc")
        );
        let err = build_payload(&notification(), &credential(), &[target("a,b")]).unwrap_err();
        assert!(matches!(err, BuildError::InvalidToken { .. }));

        let targets: Vec<_> = (0..1001).map(|i| target(&format!("r{i}"))).collect();
        let err = build_payload(&notification(), &credential(), &targets).unwrap_err();
        assert!(matches!(err, BuildError::TooManyTargets { max: 1000, .. }));
    }

    #[test]
    fn im_messages_use_the_private_message_channel() {
        let mut n = notification();
        n.android_xiaomi_channel_id = "chat_channel".into();
        let req = build_payload(&n, &credential(), &[target("regid-1")]).unwrap();
        assert_eq!(
            req.body.form_field("extra.channel_id"),
            Some("chat_channel")
        );

        let cred = CredentialProfile {
            default_channel_id: String::new(),
            ..credential()
        };
        let req = build_payload(&notification(), &cred, &[target("regid-1")]).unwrap();
        assert_eq!(req.body.form_field("extra.channel_id"), None);
    }

    #[test]
    fn click_opens_the_configured_activity() {
        let cred = CredentialProfile {
            click_action: INTENT.into(),
            ..credential()
        };
        let req = build_payload(&notification(), &cred, &[target("regid-1")]).unwrap();
        assert_eq!(req.body.form_field("extra.notify_effect"), Some("2"));
        assert_eq!(req.body.form_field("extra.intent_uri"), Some(INTENT));
    }

    #[test]
    fn a_sound_file_is_a_raw_resource_of_the_app() {
        let mut n = notification();
        n.sound = "ring.mp3".into();
        let req = build_payload(&n, &credential(), &[target("regid-1")]).unwrap();
        assert_eq!(
            req.body.form_field("extra.sound_uri"),
            Some("android.resource://com.example.im/raw/ring")
        );
        assert_eq!(req.body.form_field("notify_type"), Some("-1"));
    }

    #[test]
    fn silent_notification_has_no_sound() {
        let mut n = notification();
        n.sound.clear();
        let req = build_payload(&n, &credential(), &[target("regid-1")]).unwrap();
        assert_eq!(req.body.form_field("notify_type"), Some("6"));
        assert_eq!(req.body.form_field("extra.sound_uri"), None);
    }

    #[test]
    fn expiry_becomes_time_to_live_in_milliseconds_clamped_to_ten_days() {
        let mut n = notification();
        n.expires_at_ms = n.send_time_ms + 30_000;
        let req = build_payload(&n, &credential(), &[target("regid-1")]).unwrap();
        assert_eq!(req.body.form_field("time_to_live"), Some("30000"));

        n.expires_at_ms = n.send_time_ms + 30 * 24 * 3600 * 1000;
        let req = build_payload(&n, &credential(), &[target("regid-1")]).unwrap();
        assert_eq!(req.body.form_field("time_to_live"), Some("864000000"));
    }

    #[test]
    fn notify_id_comes_from_msg_id() {
        let first = Notification {
            collapse_id: "msg-1".into(),
            ..notification()
        };
        // Same conversation, same send time, same text: only the message id differs.
        let second = Notification {
            collapse_id: "msg-2".into(),
            ..first.clone()
        };
        let repeat_later = Notification {
            request_at_ms: first.send_time_ms + 60_000,
            ..first.clone()
        };
        // (other notification, same notify_id?)
        for (other, same) in [(&second, false), (&repeat_later, true), (&first, true)] {
            assert_eq!(notify_id(&first) == notify_id(other), same, "{other:?}");
        }
        assert!(notify_id(&first) <= i32::MAX as u32);
    }

    #[test]
    fn notify_mode_custom_is_a_pass_through_message() {
        // (notify mode, pass_through, payload present)
        let table = [
            (AndroidNotifyMode::Unspecified, "0", false),
            (AndroidNotifyMode::Normal, "0", false),
            (AndroidNotifyMode::Custom, "1", true),
        ];
        for (mode, pass_through, payload) in table {
            let mut n = notification();
            n.set_android_notify_mode(mode);
            let req = build_payload(&n, &credential(), &[target("regid-1")]).unwrap();
            assert_eq!(req.body.form_field("pass_through"), Some(pass_through));
            let sent = req.body.form_field("payload");
            assert_eq!(sent.is_some(), payload, "{mode:?}");
            if let Some(sent) = sent {
                let sent: serde_json::Value = serde_json::from_str(sent).unwrap();
                assert_eq!(sent["body"], "Denny: see you at 5");
                assert_eq!(sent["title"], "Team chat");
                assert_eq!(sent["ext"], n.ext.as_str());
            }
        }
    }

    #[test]
    fn long_content_is_cut_to_the_vendor_limit() {
        let mut n = notification();
        n.title = "标题".repeat(40);
        n.body = "消息".repeat(100);
        let req = build_payload(&n, &credential(), &[target("regid-1")]).unwrap();
        let title = req.body.form_field("title").unwrap();
        let description = req.body.form_field("description").unwrap();
        assert_eq!(text::char_count(title), MAX_TITLE_CHARS);
        assert_eq!(text::char_count(description), MAX_DESCRIPTION_CHARS);
        assert!(description.ends_with('…'));
    }

    #[test]
    fn a_large_ext_cuts_the_description_to_fit_4096_bytes() {
        let mut n = notification();
        n.ext = "x".repeat(3900);
        n.body = "消息".repeat(100);
        let targets: Vec<_> = (0..1000).map(|i| target(&format!("regid-{i}"))).collect();
        let req = build_payload(&n, &credential(), &targets).unwrap();
        let size = Payload::measure(&req);
        assert!(size <= MAX_MESSAGE_BYTES, "{size}");
        assert!(size > MAX_MESSAGE_BYTES - 16, "cut far too much: {size}");

        n.ext = "x".repeat(5000);
        let err = build_payload(&n, &credential(), &[target("regid-1")]).unwrap_err();
        assert!(matches!(
            err,
            BuildError::PayloadTooLarge { limit: 4096, .. }
        ));
    }

    #[test]
    fn a_fallback_title_is_cut_too() {
        let mut n = notification();
        n.title.clear();
        n.sender_name = "名".repeat(80);
        let req = build_payload(&n, &credential(), &[target("regid-1")]).unwrap();
        assert_eq!(
            text::char_count(req.body.form_field("title").unwrap()),
            MAX_TITLE_CHARS
        );
    }

    #[test]
    fn missing_package_name_names_the_field() {
        let cred = CredentialProfile::new(4, Vendor::Xiaomi);
        let err = build_payload(&notification(), &cred, &[target("regid-1")]).unwrap_err();
        assert_eq!(
            err,
            BuildError::MissingCredentialField {
                business_id: 4,
                vendor: "xiaomi",
                field: "package_name"
            }
        );
    }

    #[test]
    fn no_title_anywhere_names_default_title() {
        let mut n = notification();
        n.title.clear();
        n.sender_name.clear();
        let err = build_payload(&n, &credential(), &[target("regid-1")]).unwrap_err();
        assert!(matches!(
            err,
            BuildError::MissingCredentialField {
                field: "default_title",
                ..
            }
        ));
    }
}
