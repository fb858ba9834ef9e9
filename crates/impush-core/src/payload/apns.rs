//! Apple Push Notification service, HTTP/2 provider API.
//!
//! Request format (developer.apple.com/documentation/usernotifications/
//! sending-notification-requests-to-apns, generating-a-remote-notification):
//! `POST /3/device/<token>`, headers `apns-topic` (bundle id, `<bundle>.voip` for VoIP),
//! `apns-push-type` (`alert` | `voip`), `apns-priority` (10: immediate), `apns-expiration`
//! (epoch seconds; absent: APNs stores and retries for a while), and a JSON body with the
//! `aps` dictionary plus custom keys outside it: ours is `ext`, the key the IM SDK reads in
//! `didReceiveRemoteNotification` (seeds, "Setting Custom Click-to-Redirect Logic").
//! Size: 4096 bytes, 5120 for VoIP (413 `PayloadTooLarge` beyond). One token per request.
//!
//! - `ios_content_available`: a silent background notification (developer.apple.com/
//!   documentation/usernotifications/pushing-background-updates-to-your-app): `aps` holds
//!   only `content-available: 1`, `apns-push-type: background`, `apns-priority: 5`; the
//!   text travels as the custom keys `title` and `body` beside `ext`. A VoIP push stays one.
//! - `ios_mutable_content`: `mutable-content: 1` on an alert, so the app's Notification
//!   Service Extension may change it before it is shown (developer.apple.com/documentation/
//!   usernotifications/modifying-content-in-newly-delivered-notifications).

use impush_proto::v1::{IosPushType, Notification, PushTarget, Vendor};
use serde::Serialize;

use super::{
    Body, BuildError, Limits, VendorPayload, VendorRequest, is_silent,
    required,
};
use crate::credential::CredentialProfile;
use crate::ids::is_header_safe;

pub const MAX_PAYLOAD_BYTES: usize = 4096;
pub const MAX_VOIP_PAYLOAD_BYTES: usize = 5120;

pub struct Payload;

impl VendorPayload for Payload {
    const VENDOR: Vendor = Vendor::Apns;
    const NAME: &'static str = "apns";
    const IS_IOS: bool = true;
    const TOKENS: super::TokenRules = super::TokenRules {
        max_len: 200,
        base64: false,
    };
    const IDENTITY: crate::credential::CredentialField =
        crate::credential::CredentialField::BundleId;
    const MAX_BATCH: usize = 1;

    fn limits(notification: &Notification) -> Limits {
        if is_voip(notification) {
            Limits::bytes(MAX_VOIP_PAYLOAD_BYTES)
        } else {
            Limits::bytes(MAX_PAYLOAD_BYTES)
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
        let bundle_id = required(credential, "bundle_id", &credential.bundle_id)?;
        let voip = is_voip(notification);
        let silent = is_silent(notification);

        let mut headers = vec![
            (
                "apns-topic",
                if voip {
                    format!("{bundle_id}.voip")
                } else {
                    bundle_id.to_owned()
                },
            ),
            (
                "apns-push-type",
                if voip {
                    "voip"
                } else if silent {
                    "background"
                } else {
                    "alert"
                }
                .to_owned(),
            ),
            // Apple: a background notification must have priority 5 (10 is refused).
            ("apns-priority", if silent { "5" } else { "10" }.to_owned()),
        ];
        if !notification.collapse_id.is_empty()
            && notification.collapse_id.len() <= 64
            && is_header_safe(&notification.collapse_id)
        {
            headers.push(("apns-collapse-id", notification.collapse_id.clone()));
        }
        if notification.expires_at_ms > 0 {
            let seconds = notification.expires_at_ms.div_euclid(1000).max(1);
            headers.push(("apns-expiration", seconds.to_string()));
        }

        Ok(VendorRequest {
            path: format!("/3/device/{}", target.token),
            headers,
            body: Body::json(&body(notification, target.badge)),
        })
    }
}

fn is_voip(notification: &Notification) -> bool {
    notification.ios_push_type() == IosPushType::Voip
}

/// Fields in alphabetical order, like every payload struct (see [`super`]).
#[derive(Serialize)]
struct ApnsBody<'a> {
    aps: Aps<'a>,
    /// A silent push's text, for the app to use when it wakes.
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    ext: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
}

#[derive(Serialize)]
struct Aps<'a> {
    /// Absent in a silent push, whose text travels outside `aps` (see [`ApnsBody`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    alert: Option<Alert<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    badge: Option<u32>,
    #[serde(rename = "content-available", skip_serializing_if = "Option::is_none")]
    content_available: Option<u8>,
    #[serde(rename = "mutable-content", skip_serializing_if = "Option::is_none")]
    mutable_content: Option<u8>,
    #[serde(skip_serializing_if = "str::is_empty")]
    sound: &'a str,
    #[serde(rename = "thread-id", skip_serializing_if = "str::is_empty")]
    thread_id: &'a str,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Alert<'a> {
    /// Without a title, the alert is the body text alone.
    Body(&'a str),
    Titled {
        body: &'a str,
        title: &'a str,
    },
}

fn body(notification: &Notification, badge: Option<u32>) -> ApnsBody<'_> {
    if is_silent(notification) {
        // "include only the content-available key" in `aps`: no alert, sound or badge.
        return ApnsBody {
            aps: Aps {
                alert: None,
                badge: None,
                content_available: Some(1),
                mutable_content: None,
                sound: "",
                thread_id: "",
            },
            body: Some(&notification.body),
            ext: &notification.ext,
            title: (!notification.title.is_empty()).then_some(notification.title.as_str()),
        };
    }
    let alert = if notification.title.is_empty() {
        Alert::Body(&notification.body)
    } else {
        Alert::Titled {
            body: &notification.body,
            title: &notification.title,
        }
    };
    ApnsBody {
        aps: Aps {
            alert: Some(alert),
            badge,
            content_available: None,
            mutable_content: notification.ios_mutable_content.then_some(1),
            sound: &notification.sound,
            thread_id: &notification.conversation,
        },
        body: None,
        ext: &notification.ext,
        title: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ios_content_available_is_a_silent_background_push_and_mutable_content_marks_the_alert() {
        // (content-available, mutable-content, push type, priority, aps keys)
        let table = [
            (
                false,
                false,
                "alert",
                "10",
                vec!["alert", "badge", "sound", "thread-id"],
            ),
            (
                false,
                true,
                "alert",
                "10",
                vec!["alert", "badge", "mutable-content", "sound", "thread-id"],
            ),
            (true, false, "background", "5", vec!["content-available"]),
            (true, true, "background", "5", vec!["content-available"]),
        ];
        for (available, mutable, push_type, priority, keys) in table {
            let mut n = notification();
            n.ios_content_available = available;
            n.ios_mutable_content = mutable;
            let req = build_payload(&n, &credential(), &[target("abcd01")]).unwrap();
            assert_eq!(req.header("apns-push-type"), Some(push_type));
            assert_eq!(req.header("apns-priority"), Some(priority));
            let Body::Json(body) = &req.body else {
                panic!("APNs takes JSON")
            };
            let body: serde_json::Value = serde_json::from_str(body).unwrap();
            let mut sent: Vec<&str> = body["aps"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            sent.sort_unstable();
            assert_eq!(sent, keys, "{available} {mutable}");
            for key in ["content-available", "mutable-content"] {
                if keys.contains(&key) {
                    assert_eq!(body["aps"][key], 1);
                }
            }
            assert_eq!(body["ext"], n.ext.as_str());
            if available {
                assert_eq!(body["body"], "Denny: see you at 5");
                assert_eq!(body["title"], "Team chat");
            }
        }
    }
    use crate::payload::build_payload;
    use crate::payload::testing::{notification, target};
    use serde_json::json;

    fn credential() -> CredentialProfile {
        CredentialProfile {
            bundle_id: "com.example.im".into(),
            ..CredentialProfile::new(1, Vendor::Apns)
        }
    }

    #[test]
    fn alert_has_title_body_badge_sound_thread_and_ext_outside_aps() {
        let req = build_payload(&notification(), &credential(), &[target("abcd01")]).unwrap();
        assert_eq!(req.path, "/3/device/abcd01");
        assert_eq!(req.header("apns-topic"), Some("com.example.im"));
        assert_eq!(req.header("apns-push-type"), Some("alert"));
        assert_eq!(req.header("apns-priority"), Some("10"));
        assert_eq!(req.header("apns-expiration"), None);
        let Body::Json(body) = &req.body else {
            panic!("APNs takes JSON")
        };
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(body).unwrap(),
            json!({
                "aps": {
                    "alert": {"title": "Team chat", "body": "Denny: see you at 5"},
                    "badge": 4,
                    "sound": "default",
                    "thread-id": "c2c:denny"
                },
                "ext": r#"{"entity":{"action":1,"chatType":1,"sender":"denny"}}"#
            })
        );
    }

    #[test]
    fn no_title_sends_the_body_as_the_alert_string_and_silence_omits_sound() {
        let mut n = notification();
        n.title.clear();
        n.sound.clear();
        let mut t = target("abcd01");
        t.badge = None;
        let req = build_payload(&n, &credential(), &[t]).unwrap();
        let body = req.body.to_json_value();
        assert_eq!(body["aps"]["alert"], "Denny: see you at 5");
        assert!(body["aps"].get("sound").is_none());
        assert!(body["aps"].get("badge").is_none());
    }

    #[test]
    fn a_collapse_id_that_is_not_a_header_value_is_left_out() {
        for bad in ["m-1\r\nx-evil: 1", "m 1", "m-\u{e9}", ""] {
            let mut n = notification();
            n.collapse_id = bad.into();
            let req = build_payload(&n, &credential(), &[target("abcd01")]).unwrap();
            assert_eq!(req.header("apns-collapse-id"), None, "{bad:?}");
        }
    }

    #[test]
    fn a_message_collapses_only_with_copies_of_itself() {
        let mut n = notification();
        n.collapse_id = "m-42".into();
        let req = build_payload(&n, &credential(), &[target("abcd01")]).unwrap();
        assert_eq!(req.header("apns-collapse-id"), Some("m-42"));
        n.collapse_id = "x".repeat(65);
        let req = build_payload(&n, &credential(), &[target("abcd01")]).unwrap();
        assert_eq!(
            req.header("apns-collapse-id"),
            None,
            "APNs refuses ids over 64 bytes"
        );
    }

    #[test]
    fn voip_uses_the_voip_topic_type_and_expiration() {
        let mut n = notification();
        n.ios_push_type = IosPushType::Voip as i32;
        n.expires_at_ms = 1_700_000_030_000;
        let req = build_payload(&n, &credential(), &[target("abcd01")]).unwrap();
        assert_eq!(req.header("apns-topic"), Some("com.example.im.voip"));
        assert_eq!(req.header("apns-push-type"), Some("voip"));
        assert_eq!(req.header("apns-expiration"), Some("1700000030"));
    }

    #[test]
    fn long_body_is_cut_to_4096_bytes() {
        let mut n = notification();
        n.body = "消息".repeat(3000);
        let req = build_payload(&n, &credential(), &[target("abcd01")]).unwrap();
        let bytes = req.body.to_bytes();
        assert!(bytes.len() <= MAX_PAYLOAD_BYTES, "{}", bytes.len());
        assert!(bytes.len() > MAX_PAYLOAD_BYTES - 16, "cut far too much");
        let body = req.body.to_json_value();
        assert!(
            body["aps"]["alert"]["body"]
                .as_str()
                .unwrap()
                .ends_with('…')
        );
    }

    #[test]
    fn missing_bundle_id_names_the_field() {
        let cred = CredentialProfile::new(1, Vendor::Apns);
        let err = build_payload(&notification(), &cred, &[target("ab")]).unwrap_err();
        assert_eq!(
            err,
            BuildError::MissingCredentialField {
                business_id: 1,
                vendor: "apns",
                field: "bundle_id"
            }
        );
    }

    #[test]
    fn an_oversized_ext_is_a_typed_error_not_a_rejected_request() {
        let mut n = notification();
        n.ext = "x".repeat(5000);
        let err = build_payload(&n, &credential(), &[target("ab")]).unwrap_err();
        assert!(matches!(
            err,
            BuildError::PayloadTooLarge { limit: 4096, .. }
        ));
    }
}
