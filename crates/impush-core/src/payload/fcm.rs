//! Google Firebase Cloud Messaging, HTTP v1 API.
//!
//! Request format (firebase.google.com/docs/reference/fcm/rest/v1/projects.messages, the
//! `Message`, `AndroidConfig` and `AndroidNotification` resources, also generated as
//! docs.rs google-fcm1 `AndroidConfig` and hexdocs `GoogleApi.FCM.V1.Model.*`):
//! `POST /v1/projects/<project_id>/messages:send` with `{"message": {...}}` carrying exactly
//! one `token`. There is no multicast in v1: one device per request.
//!
//! - Title and body go in the cross-platform `notification`; FCM needs no title (Android
//!   shows the app name), so an empty one is left out rather than replaced.
//! - `ext` goes in `data` under the key `ext`. For a notification message tapped while the
//!   app is in the background, "the data payload is delivered in the extras of the intent of
//!   your launcher Activity" (firebase.google.com "Receive messages in an Android app"), which
//!   is where the IM SDK reads it with `getIntent().getExtras()` (seeds, "Google FCM: No need
//!   to configure … Launcher page"). So no click action is needed; a credential that does set
//!   one gets it as `click_action`, the intent action an activity's filter must match.
//! - `android.priority` is `HIGH`: chat messages must wake a dozing device now.
//! - `android.notification.channel_id` is the message's FCM channel, else the credential's.
//! - Sound: `"default"` as is, a file name as the `res/raw` resource name (its extension
//!   removed: Android resource names have none), silence by sending no sound, so the channel's
//!   own setting applies (on Android 8+ only the channel decides).
//! - Expiry: `android.ttl`, a duration string such as `"30s"`, 0 to 28 days; `"0s"` means
//!   "now or never", which is right for a call that has already expired.
//! - Notify mode: `android_notify_mode` CUSTOM sends a data-only message (no `notification`,
//!   no `android.notification`): `data` then holds `title`, `body` and `ext` as strings and
//!   the app's `FirebaseMessagingService.onMessageReceived` shows it itself, also in the
//!   background ("Firebase Cloud Messaging message types", firebase.google.com/docs/
//!   cloud-messaging/concept-options).
//! - No `collapse_key`: it would let one message replace another. `tag` is the message's
//!   own `collapse_id`, so only a second copy of the same message replaces the first.
//!
//! Size: "Maximum payload for both message types is 4096 bytes" (firebase.google.com
//! "Firebase Cloud Messaging message types"). FCM counts only what reaches the device; this
//! module measures the whole request body, a slight overestimate that keeps FCM from ever
//! answering `INVALID_ARGUMENT` "message is too big".
//!
//! The badge is ignored: `PushTarget.badge` is an iOS number and this credential is Android's.

use impush_proto::v1::{Notification, PushTarget, Vendor};
use serde::Serialize;

use super::{
    Body, BuildError, ExtMap, Limits, PassThrough, Seconds, VendorPayload, VendorRequest,
    is_pass_through, raw_resource_name, required, ttl_seconds,
};
use crate::credential::CredentialProfile;

pub const MAX_PAYLOAD_BYTES: usize = 4096;
/// The longest time FCM stores a message: 4 weeks.
pub const MAX_TTL_SECONDS: u64 = 2_419_200;

pub struct Payload;

impl VendorPayload for Payload {
    const VENDOR: Vendor = Vendor::Fcm;
    const NAME: &'static str = "fcm";
    const IDENTITY: crate::credential::CredentialField =
        crate::credential::CredentialField::ProjectId;
    const MAX_BATCH: usize = 1;

    fn limits(_notification: &Notification) -> Limits {
        Limits::bytes(MAX_PAYLOAD_BYTES)
    }

    fn build(
        notification: &Notification,
        credential: &CredentialProfile,
        targets: &[PushTarget],
    ) -> Result<VendorRequest, BuildError> {
        let [target] = targets else {
            return Err(BuildError::TooManyTargets {
                count: targets.len(),
                max: Self::MAX_BATCH,
            });
        };
        let project_id = required(credential, "project_id", &credential.project_id)?;

        Ok(VendorRequest {
            path: format!("/v1/projects/{project_id}/messages:send"),
            headers: Vec::new(),
            body: Body::json(&Request {
                message: message(notification, credential, &target.token),
            }),
        })
    }
}

/// Fields in alphabetical order, like every payload struct (see [`super`]).
#[derive(Serialize)]
struct Request<'a> {
    message: Message<'a>,
}

#[derive(Serialize)]
struct Message<'a> {
    android: Android<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Data<'a>>,
    /// Absent for a data-only message (notify mode CUSTOM).
    #[serde(skip_serializing_if = "Option::is_none")]
    notification: Option<Display<'a>>,
    token: &'a str,
}

/// `data`: only `ext` beside a notification; the text too in a data-only message.
#[derive(Serialize)]
#[serde(untagged)]
enum Data<'a> {
    Ext(ExtMap<'a>),
    PassThrough(PassThrough<'a>),
}

#[derive(Serialize)]
struct Display<'a> {
    body: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    title: &'a str,
}

#[derive(Serialize)]
struct Android<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    notification: Option<AndroidNotification<'a>>,
    priority: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    restricted_package_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<Seconds>,
}

#[derive(Serialize)]
struct AndroidNotification<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    channel_id: Option<&'a str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    click_action: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sound: Option<&'a str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    tag: &'a str,
}

impl AndroidNotification<'_> {
    /// Nothing to say: the whole object is left out, not sent as `{}`.
    fn is_empty(&self) -> bool {
        self.channel_id.is_none()
            && self.sound.is_none()
            && self.click_action.is_empty()
            && self.tag.is_empty()
    }
}

fn message<'a>(
    notification: &'a Notification,
    credential: &'a CredentialProfile,
    token: &'a str,
) -> Message<'a> {
    if is_pass_through(notification) {
        return Message {
            android: android(notification, credential, false),
            data: Some(Data::PassThrough(PassThrough::of(notification))),
            notification: None,
            token,
        };
    }
    Message {
        android: android(notification, credential, true),
        data: (!notification.ext.is_empty()).then_some(Data::Ext(ExtMap {
            ext: &notification.ext,
        })),
        notification: Some(Display {
            body: &notification.body,
            title: &notification.title,
        }),
        token,
    }
}

fn android<'a>(
    notification: &'a Notification,
    credential: &'a CredentialProfile,
    shown: bool,
) -> Android<'a> {
    let display = AndroidNotification {
        channel_id: first_non_empty(&[
            &notification.android_fcm_channel_id,
            &credential.default_channel_id,
        ]),
        click_action: &credential.click_action,
        sound: sound(&notification.sound),
        tag: &notification.collapse_id,
    };
    Android {
        notification: (shown && !display.is_empty()).then_some(display),
        priority: "HIGH",
        // FCM then refuses tokens of another app instead of showing our text in it.
        restricted_package_name: &credential.package_name,
        ttl: ttl_seconds(notification, 0).map(|ttl| Seconds(ttl.min(MAX_TTL_SECONDS))),
    }
}

/// The `sound` value FCM takes, or `None` for silence.
fn sound(sound: &str) -> Option<&str> {
    match sound {
        "" => None,
        "default" => Some("default"),
        file => Some(raw_resource_name(file)),
    }
}

fn first_non_empty<'a>(candidates: &[&'a str]) -> Option<&'a str> {
    candidates.iter().copied().find(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::build_payload;
    use crate::payload::testing::{notification, target};
    use impush_proto::v1::AndroidNotifyMode;
    use serde_json::{Value, json};

    const TOKEN: &str = "fcm:APA91b_x-y.z";

    fn credential() -> CredentialProfile {
        CredentialProfile {
            project_id: "impush-demo".into(),
            ..CredentialProfile::new(2, Vendor::Fcm)
        }
    }

    fn body(request: &VendorRequest) -> Value {
        let Body::Json(body) = &request.body else {
            panic!("FCM takes JSON")
        };
        serde_json::from_str(body).unwrap()
    }

    #[test]
    fn message_has_token_notification_ext_in_data_and_high_priority() {
        let req = build_payload(&notification(), &credential(), &[target(TOKEN)]).unwrap();
        assert_eq!(req.path, "/v1/projects/impush-demo/messages:send");
        assert!(req.headers.is_empty());
        assert_eq!(
            body(&req),
            json!({
                "message": {
                    "token": TOKEN,
                    "notification": {"title": "Team chat", "body": "Denny: see you at 5"},
                    "data": {"ext": r#"{"entity":{"action":1,"chatType":1,"sender":"denny"}}"#},
                    "android": {
                        "priority": "HIGH",
                        "notification": {"sound": "default"}
                    }
                }
            })
        );
    }

    #[test]
    fn channel_package_and_click_action_come_from_message_then_credential() {
        let cred = CredentialProfile {
            package_name: "com.example.im".into(),
            default_channel_id: "chat_default".into(),
            click_action: "com.example.im.OPEN_CHAT".into(),
            ..credential()
        };
        let req = build_payload(&notification(), &cred, &[target(TOKEN)]).unwrap();
        assert_eq!(
            body(&req)["message"]["android"],
            json!({
                "priority": "HIGH",
                "restricted_package_name": "com.example.im",
                "notification": {
                    "channel_id": "chat_default",
                    "sound": "default",
                    "click_action": "com.example.im.OPEN_CHAT"
                }
            })
        );

        let mut n = notification();
        n.android_fcm_channel_id = "chat_im".into();
        let req = build_payload(&n, &cred, &[target(TOKEN)]).unwrap();
        assert_eq!(
            body(&req)["message"]["android"]["notification"]["channel_id"],
            "chat_im"
        );
    }

    #[test]
    fn silent_notification_has_no_sound_and_a_file_sound_is_a_raw_resource() {
        let mut n = notification();
        n.sound.clear();
        let req = build_payload(&n, &credential(), &[target(TOKEN)]).unwrap();
        assert!(
            body(&req)["message"]["android"]
                .get("notification")
                .is_none()
        );

        n.sound = "ding.mp3".into();
        let req = build_payload(&n, &credential(), &[target(TOKEN)]).unwrap();
        assert_eq!(
            body(&req)["message"]["android"]["notification"]["sound"],
            "ding"
        );
    }

    #[test]
    fn no_title_and_no_ext_leave_their_fields_out() {
        let mut n = notification();
        n.title.clear();
        n.ext.clear();
        let req = build_payload(&n, &credential(), &[target(TOKEN)]).unwrap();
        let message = &body(&req)["message"];
        assert_eq!(
            message["notification"],
            json!({"body": "Denny: see you at 5"})
        );
        assert!(message.get("data").is_none());
    }

    #[test]
    fn expiry_becomes_a_ttl_clamped_to_four_weeks() {
        let mut n = notification();
        n.expires_at_ms = n.send_time_ms + 30_500;
        let req = build_payload(&n, &credential(), &[target(TOKEN)]).unwrap();
        assert_eq!(body(&req)["message"]["android"]["ttl"], "31s");

        n.expires_at_ms = n.send_time_ms - 1;
        let req = build_payload(&n, &credential(), &[target(TOKEN)]).unwrap();
        assert_eq!(body(&req)["message"]["android"]["ttl"], "0s");

        n.expires_at_ms = n.send_time_ms + 90 * 24 * 3600 * 1000;
        let req = build_payload(&n, &credential(), &[target(TOKEN)]).unwrap();
        assert_eq!(body(&req)["message"]["android"]["ttl"], "2419200s");
    }

    #[test]
    fn ttl_is_what_is_left_of_the_ring_when_the_request_leaves() {
        // (ms after the send time the request leaves, ttl sent)
        for (after_ms, ttl) in [(0, "30s"), (10_000, "20s"), (29_001, "1s")] {
            let mut n = notification();
            n.expires_at_ms = n.send_time_ms + 30_000;
            n.request_at_ms = n.send_time_ms + after_ms;
            let req = build_payload(&n, &credential(), &[target(TOKEN)]).unwrap();
            assert_eq!(body(&req)["message"]["android"]["ttl"], ttl, "{after_ms}");
        }
    }

    #[test]
    fn notify_mode_custom_is_a_data_only_message() {
        // (notify mode, notification shown by the system?)
        let table = [
            (AndroidNotifyMode::Unspecified, true),
            (AndroidNotifyMode::Normal, true),
            (AndroidNotifyMode::Custom, false),
        ];
        for (mode, shown) in table {
            let mut n = notification();
            n.set_android_notify_mode(mode);
            let message =
                body(&build_payload(&n, &credential(), &[target(TOKEN)]).unwrap())["message"]
                    .clone();
            assert_eq!(message.get("notification").is_some(), shown, "{mode:?}");
            assert_eq!(
                message["android"].get("notification").is_some(),
                shown,
                "{mode:?}"
            );
            assert_eq!(message["data"]["ext"], n.ext.as_str());
            if !shown {
                assert_eq!(
                    message["data"],
                    json!({"title": "Team chat", "body": "Denny: see you at 5", "ext": n.ext})
                );
                assert_eq!(message["android"]["priority"], "HIGH");
            }
        }
    }

    #[test]
    fn the_ios_badge_is_not_sent() {
        let req = build_payload(&notification(), &credential(), &[target(TOKEN)]).unwrap();
        assert!(
            !String::from_utf8(req.body.to_bytes())
                .unwrap()
                .contains("badge")
        );
    }

    #[test]
    fn one_token_per_request() {
        assert_eq!(Payload::MAX_BATCH, 1);
        let err = build_payload(
            &notification(),
            &credential(),
            &[target("a1"), target("a2")],
        )
        .unwrap_err();
        assert_eq!(err, BuildError::TooManyTargets { count: 2, max: 1 });
    }

    #[test]
    fn tokens_that_could_escape_the_json_or_url_are_refused() {
        let err = build_payload(&notification(), &credential(), &[target("a\"b")]).unwrap_err();
        assert!(matches!(
            err,
            BuildError::InvalidToken { vendor: "fcm", .. }
        ));
        assert!(build_payload(&notification(), &credential(), &[target("invalid-abc")]).is_ok());
    }

    #[test]
    fn long_body_is_cut_to_4096_bytes() {
        let mut n = notification();
        n.body = "消息".repeat(3000);
        let req = build_payload(&n, &credential(), &[target(TOKEN)]).unwrap();
        let bytes = req.body.to_bytes().len();
        assert!(bytes <= MAX_PAYLOAD_BYTES, "{bytes}");
        assert!(bytes > MAX_PAYLOAD_BYTES - 16, "cut far too much: {bytes}");
        let cut = body(&req)["message"]["notification"]["body"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn an_oversized_ext_is_a_typed_error_not_a_rejected_request() {
        let mut n = notification();
        n.ext = "x".repeat(5000);
        let err = build_payload(&n, &credential(), &[target(TOKEN)]).unwrap_err();
        assert!(matches!(
            err,
            BuildError::PayloadTooLarge { limit: 4096, .. }
        ));
    }

    #[test]
    fn missing_project_id_names_the_field() {
        let cred = CredentialProfile::new(2, Vendor::Fcm);
        let err = build_payload(&notification(), &cred, &[target(TOKEN)]).unwrap_err();
        assert_eq!(
            err,
            BuildError::MissingCredentialField {
                business_id: 2,
                vendor: "fcm",
                field: "project_id"
            }
        );
    }
}
