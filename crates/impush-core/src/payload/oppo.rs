//! OPPO PUSH (HeyTap), server API v1, notification messages.
//!
//! Request format (OPPO open platform "通知栏消息" and "单点推送"/"批量单推",
//! open.oppomobile.com/new/developmentDoc/info?id=11236, field table mirrored at
//! yimenapp.com/kb-yimen/11080; request shape as in curltech/go-push-sdk
//! `push/oppo_channel/message_push.go`): one device goes to
//! `POST /server/v1/message/notification/unicast` with the form field
//! `message=<JSON {target_type:2, target_value:<registration_id>, notification:{…}}>`; two to
//! 1000 go to `/server/v1/message/notification/unicast_batch` with
//! `messages=<JSON array of such objects>`, one per device, all with the same notification.
//! `auth_token` is added by the client.
//!
//! - Title (required): the notification's, else `credential.default_title`, else the
//!   sender's name, else the group's name; with none of them `default_title` is reported
//!   missing. Limits: title 50 characters and content 200 for the standard style (style 1,
//!   OPPO's default), every character counting 1, per OPPO's field table. Sources disagree:
//!   Alibaba mPaaS lists title 32, Tencent TPNS content 128 (the long-text style's limit).
//! - `ext` goes in `action_parameters` as `{"ext":"<ext>"}`: OPPO puts each key of that
//!   JSON object into the extras of the activity the tap opens ("传递参数放在键值对(即
//!   action_parameters)里,客户端通过intent.getExtras()获取"), where the IM SDK reads `ext`.
//! - Classification: `channel_id` = `android_oppo_channel_id`, else
//!   `credential.default_channel_id` (the private-message channel the app created and
//!   registered with OPPO; omitted when neither is set), plus the 2024 classification
//!   `category: "IM"` with `notify_level: 2` (notification bar and lock screen). Level 16
//!   (banner, vibration and ring) needs OPPO's separate approval and is refused (code 67)
//!   without it, so it is not sent.
//! - Click: `click_action_type: 4` with `click_action_activity` = the credential's activity
//!   class, else `click_action_type: 0` (launch the app).
//! - Sound: not sent. OPPO takes no per-message sound; the channel the app created decides.
//! - Expiry: `off_line_ttl` in seconds, clamped to OPPO's 1 hour to 10 days (getui/DCloud
//!   option docs mirroring OPPO [S]). A call that expires in 30 s can therefore still be
//!   delivered up to an hour late on OPPO.
//! - Size: OPPO publishes no byte limit we could verify; we keep each message's
//!   `notification` object within 4096 bytes [M] ([`Payload::measure`]).
//! - Notify mode: OPPO's server API sends notification-bar messages only, so
//!   `android_notify_mode` CUSTOM still goes out as a notification.
//! - Badge: not sent (ColorOS has no server-set badge). Each message gets its own
//!   notification (OPPO's default), so different messages are never collapsed.

use impush_proto::v1::{Notification, PushTarget, Vendor};
use serde::Serialize;
use serde_json::value::RawValue;

use super::{
    Body, BuildError, ExtMap, Limits, VendorPayload, VendorRequest, json_string, message_key,
    ttl_seconds,
};
use crate::credential::CredentialProfile;

pub const UNICAST_PATH: &str = "/server/v1/message/notification/unicast";
pub const UNICAST_BATCH_PATH: &str = "/server/v1/message/notification/unicast_batch";
/// Message objects per `unicast_batch` request.
pub const MAX_MESSAGES: usize = 1000;
/// The `notification` object of one message, in bytes (see the module doc).
pub const MAX_NOTIFICATION_BYTES: usize = 4096;
pub const MAX_TITLE_CHARS: usize = 50;
/// Content limit of the standard style.
pub const MAX_CONTENT_CHARS: usize = 200;
pub const MIN_OFFLINE_TTL_SECONDS: u64 = 3600;
pub const MAX_OFFLINE_TTL_SECONDS: u64 = 10 * 24 * 3600;
/// The 2024 classification of chat messages (communication and service).
pub const IM_CATEGORY: &str = "IM";

/// `target_type`: a registration id.
const TARGET_REGISTRATION_ID: u8 = 2;
/// `click_action_type`: launch the app.
const CLICK_LAUNCH_APP: u8 = 0;
/// `click_action_type`: open the activity named by `click_action_activity`.
const CLICK_ACTIVITY: u8 = 4;
/// `notify_level`: notification bar and lock screen.
const NOTIFY_LEVEL_BAR_AND_LOCK_SCREEN: u8 = 2;

pub struct Payload;

impl VendorPayload for Payload {
    const VENDOR: Vendor = Vendor::Oppo;
    const NAME: &'static str = "oppo";
    const IDENTITY: crate::credential::CredentialField =
        crate::credential::CredentialField::PackageName;
    const MAX_BATCH: usize = MAX_MESSAGES;
    const REQUIRES_TITLE: bool = true;

    fn limits(_notification: &Notification) -> Limits {
        Limits {
            max_title: Some(MAX_TITLE_CHARS),
            max_body: Some(MAX_CONTENT_CHARS),
            ..Limits::bytes(MAX_NOTIFICATION_BYTES)
        }
    }

    fn build(
        notification: &Notification,
        credential: &CredentialProfile,
        targets: &[PushTarget],
    ) -> Result<VendorRequest, BuildError> {
        // The notification is identical for every target: serialise it once and copy its
        // text into each message, instead of serialising it again per token. Serialising a
        // struct of strings and numbers cannot fail.
        let content = serde_json::value::to_raw_value(&oppo_notification(notification, credential))
            .unwrap_or_default();
        let message = |target| Message::new(target, &content);
        let (path, field, value) = match targets {
            [target] => (UNICAST_PATH, "message", json_string(&message(target))),
            _ => (
                UNICAST_BATCH_PATH,
                "messages",
                json_string(&targets.iter().map(message).collect::<Vec<_>>()),
            ),
        };
        Ok(VendorRequest {
            path: path.to_owned(),
            headers: Vec::new(),
            body: Body::Form(vec![(field.to_owned(), value)]),
        })
    }

    /// The bytes of one message: the limit applies to its `notification`, the same in every
    /// message of a batch; counting the ~60 bytes of target with it errs on the safe side.
    fn measure(request: &VendorRequest) -> usize {
        // The first message of the batch, all of which carry the same notification: it ends
        // where the next one starts. `},{"target_type"` cannot occur inside a JSON string
        // (its quotes would be escaped), so the first match is the boundary.
        let first_message = |value: &str| {
            let value = value.strip_prefix('[').unwrap_or(value);
            value
                .find(r#"},{"target_type""#)
                .map_or(value.trim_end_matches(']').len(), |end| end + 1)
        };
        request
            .body
            .form_field("message")
            .or_else(|| request.body.form_field("messages"))
            .map_or_else(|| request.body.to_bytes().len(), first_message)
    }
}

/// One message of `message(s)`, in the order OPPO has always been sent, not alphabetical:
/// [`Payload::measure`] finds where the next message starts by `target_type`.
#[derive(Serialize)]
struct Message<'a> {
    target_type: u8,
    target_value: &'a str,
    notification: &'a RawValue,
}

impl<'a> Message<'a> {
    fn new(target: &'a PushTarget, notification: &'a RawValue) -> Message<'a> {
        Message {
            target_type: TARGET_REGISTRATION_ID,
            target_value: &target.token,
            notification,
        }
    }
}

/// Fields in alphabetical order, like every payload struct (see [`super`]).
#[derive(Serialize)]
struct OppoNotification<'a> {
    /// `{"ext": <ext>}` as a JSON string, the form OPPO takes.
    #[serde(skip_serializing_if = "Option::is_none")]
    action_parameters: Option<String>,
    /// OPPO's deduplication key: a unicast with an `app_message_id` already pushed to the
    /// same device is not pushed again.
    #[serde(skip_serializing_if = "Option::is_none")]
    app_message_id: Option<String>,
    /// Where OPPO posts the delivery receipt, and what it echoes (see [`super::receipt`]).
    #[serde(skip_serializing_if = "str::is_empty")]
    call_back_parameter: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    call_back_url: &'a str,
    category: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    channel_id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    click_action_activity: &'a str,
    click_action_type: u8,
    content: &'a str,
    notify_level: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    off_line_ttl: Option<u64>,
    title: &'a str,
}

fn oppo_notification<'a>(
    notification: &'a Notification,
    credential: &'a CredentialProfile,
) -> OppoNotification<'a> {
    let channel_id = if notification.android_oppo_channel_id.is_empty() {
        &credential.default_channel_id
    } else {
        &notification.android_oppo_channel_id
    };
    let receipt = super::receipt::Receipt::of(notification, credential);
    let (call_back_url, call_back_parameter) = if receipt.has_url() {
        (receipt.url, receipt.param)
    } else {
        ("", "")
    };
    OppoNotification {
        call_back_parameter,
        call_back_url,
        action_parameters: (!notification.ext.is_empty()).then(|| {
            json_string(&ExtMap {
                ext: &notification.ext,
            })
        }),
        app_message_id: app_message_id(notification),
        category: IM_CATEGORY,
        channel_id,
        click_action_activity: &credential.click_action,
        click_action_type: if credential.click_action.is_empty() {
            CLICK_LAUNCH_APP
        } else {
            CLICK_ACTIVITY
        },
        content: &notification.body,
        notify_level: NOTIFY_LEVEL_BAR_AND_LOCK_SCREEN,
        off_line_ttl: ttl_seconds(notification, MIN_OFFLINE_TTL_SECONDS)
            .map(|ttl| ttl.min(MAX_OFFLINE_TTL_SECONDS)),
        title: &notification.title,
    }
}

/// `app_message_id` from the message's collapse id (its `msg_id`): the same for a repeat of
/// one message, so OPPO drops the repeat, and different for two messages, whatever their
/// conversation and send time. None without a collapse id.
fn app_message_id(notification: &Notification) -> Option<String> {
    (!notification.collapse_id.is_empty())
        .then(|| format!("impush-{:016x}", message_key(notification, None)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::build_payload;
    use crate::payload::testing::{key_follows_msg_id, keyed_notification, notification, target};
    use crate::text;
    use serde_json::{Value, json};

    const ACTIVITY: &str = "com.example.im.MainActivity";

    fn credential() -> CredentialProfile {
        CredentialProfile {
            app_id: "oppo-app-key".into(),
            default_channel_id: "im_private".into(),
            ..CredentialProfile::new(5, Vendor::Oppo)
        }
    }

    /// The JSON inside the form field `name`.
    fn field_json(req: &VendorRequest, name: &str) -> Value {
        serde_json::from_str(req.body.form_field(name).unwrap()).unwrap()
    }

    fn expected_notification() -> Value {
        json!({
            "title": "Team chat",
            "content": "Denny: see you at 5",
            "click_action_type": 0,
            "action_parameters": r#"{"ext":"{\"entity\":{\"action\":1,\"chatType\":1,\"sender\":\"denny\"}}"}"#,
            "channel_id": "im_private",
            "category": "IM",
            "notify_level": 2
        })
    }

    #[test]
    fn one_device_is_a_unicast_with_one_message() {
        let req = build_payload(&notification(), &credential(), &[target("reg-1")]).unwrap();
        assert_eq!(req.path, "/server/v1/message/notification/unicast");
        assert!(req.headers.is_empty());
        let Body::Form(fields) = &req.body else {
            panic!("OPPO takes a form")
        };
        assert_eq!(fields.len(), 1, "auth_token is the client's");
        assert_eq!(
            field_json(&req, "message"),
            json!({
                "target_type": 2,
                "target_value": "reg-1",
                "notification": expected_notification()
            })
        );
    }

    #[test]
    fn batch_is_a_unicast_batch_with_one_message_per_device() {
        let targets = [target("reg-1"), target("invalid-abc")];
        let req = build_payload(&notification(), &credential(), &targets).unwrap();
        assert_eq!(req.path, "/server/v1/message/notification/unicast_batch");
        assert_eq!(req.body.form_field("message"), None);
        assert_eq!(
            field_json(&req, "messages"),
            json!([
                {"target_type": 2, "target_value": "reg-1", "notification": expected_notification()},
                {"target_type": 2, "target_value": "invalid-abc", "notification": expected_notification()}
            ])
        );

        let targets: Vec<_> = (0..1001).map(|i| target(&format!("r{i}"))).collect();
        let err = build_payload(&notification(), &credential(), &targets).unwrap_err();
        assert!(matches!(err, BuildError::TooManyTargets { max: 1000, .. }));
        let err = build_payload(&notification(), &credential(), &[target("a/b")]).unwrap_err();
        assert!(matches!(err, BuildError::InvalidToken { .. }));
    }

    #[test]
    fn im_messages_use_the_private_message_channel() {
        let mut n = notification();
        n.android_oppo_channel_id = "tuikit".into();
        let req = build_payload(&n, &credential(), &[target("reg-1")]).unwrap();
        let sent = &field_json(&req, "message")["notification"];
        assert_eq!(sent["channel_id"], "tuikit");
        assert_eq!(sent["category"], "IM");
        assert_eq!(sent["notify_level"], 2);

        let cred = CredentialProfile {
            default_channel_id: String::new(),
            ..credential()
        };
        let req = build_payload(&notification(), &cred, &[target("reg-1")]).unwrap();
        assert!(
            field_json(&req, "message")["notification"]
                .get("channel_id")
                .is_none()
        );
    }

    #[test]
    fn click_opens_the_configured_activity_with_ext_as_a_parameter() {
        let cred = CredentialProfile {
            click_action: ACTIVITY.into(),
            ..credential()
        };
        let req = build_payload(&notification(), &cred, &[target("reg-1")]).unwrap();
        let sent = &field_json(&req, "message")["notification"];
        assert_eq!(sent["click_action_type"], 4);
        assert_eq!(sent["click_action_activity"], ACTIVITY);
        let parameters: Value =
            serde_json::from_str(sent["action_parameters"].as_str().unwrap()).unwrap();
        assert_eq!(parameters, json!({ "ext": notification().ext }));
    }

    #[test]
    fn expiry_becomes_an_offline_ttl_within_one_hour_and_ten_days() {
        let mut n = notification();
        n.expires_at_ms = n.send_time_ms + 30_000;
        let req = build_payload(&n, &credential(), &[target("reg-1")]).unwrap();
        assert_eq!(
            field_json(&req, "message")["notification"]["off_line_ttl"],
            3600
        );

        n.expires_at_ms = n.send_time_ms + 2 * 24 * 3600 * 1000;
        let req = build_payload(&n, &credential(), &[target("reg-1")]).unwrap();
        assert_eq!(
            field_json(&req, "message")["notification"]["off_line_ttl"],
            172_800
        );

        n.expires_at_ms = n.send_time_ms + 30 * 24 * 3600 * 1000;
        let req = build_payload(&n, &credential(), &[target("reg-1")]).unwrap();
        assert_eq!(
            field_json(&req, "message")["notification"]["off_line_ttl"],
            864_000
        );
    }

    #[test]
    fn long_content_is_cut_to_the_vendor_limit() {
        let mut n = notification();
        n.title = "标题".repeat(40);
        n.body = "消息".repeat(150);
        let req = build_payload(&n, &credential(), &[target("reg-1")]).unwrap();
        let sent = &field_json(&req, "message")["notification"];
        let title = sent["title"].as_str().unwrap();
        let content = sent["content"].as_str().unwrap();
        assert_eq!(text::char_count(title), MAX_TITLE_CHARS);
        assert_eq!(text::char_count(content), MAX_CONTENT_CHARS);
        assert!(content.ends_with('…'));
    }

    #[test]
    fn a_large_ext_cuts_the_content_to_fit_each_notification() {
        let mut n = notification();
        n.ext = "x".repeat(3700);
        n.body = "消息".repeat(100);
        let targets: Vec<_> = (0..3).map(|i| target(&format!("reg-{i}"))).collect();
        let req = build_payload(&n, &credential(), &targets).unwrap();
        let size = Payload::measure(&req);
        assert!(size <= MAX_NOTIFICATION_BYTES, "{size}");
        assert!(
            size > MAX_NOTIFICATION_BYTES - 16,
            "cut far too much: {size}"
        );

        n.ext = "x".repeat(5000);
        let err = build_payload(&n, &credential(), &[target("reg-1")]).unwrap_err();
        assert!(matches!(
            err,
            BuildError::PayloadTooLarge { limit: 4096, .. }
        ));
    }

    #[test]
    fn missing_title_falls_back_and_none_names_default_title() {
        let mut n = notification();
        n.title.clear();
        n.sender_name.clear();
        n.group_name = "Weekend hikers".into();
        let req = build_payload(&n, &credential(), &[target("reg-1")]).unwrap();
        assert_eq!(
            field_json(&req, "message")["notification"]["title"],
            "Weekend hikers"
        );

        n.group_name.clear();
        let err = build_payload(&n, &credential(), &[target("reg-1")]).unwrap_err();
        assert_eq!(
            err,
            BuildError::MissingCredentialField {
                business_id: 5,
                vendor: "oppo",
                field: "default_title"
            }
        );
    }

    #[test]
    fn app_message_id_comes_from_msg_id_so_a_repeat_is_dropped_and_others_are_not() {
        key_follows_msg_id(app_message_id);
        let first = keyed_notification();
        let key = app_message_id(&first);
        let req = build_payload(&first, &credential(), &[target("r1"), target("r2")]).unwrap();
        let messages: Value =
            serde_json::from_str(req.body.form_field("messages").unwrap()).unwrap();
        for message in messages.as_array().unwrap() {
            assert_eq!(
                message["notification"]["app_message_id"].as_str(),
                key.as_deref()
            );
        }
    }
}
