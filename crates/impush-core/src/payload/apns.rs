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

use impush_proto::v1::{IosPushType, Notification, PushTarget, Vendor};
use serde::Serialize;

use super::{
    Body, BuildError, Limits, VendorPayload, VendorRequest, check_path_safe_token, required,
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
        check_path_safe_token(Vendor::Apns, &target.token)?;
        let bundle_id = required(credential, "bundle_id", &credential.bundle_id)?;
        let voip = is_voip(notification);

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
                if voip { "voip" } else { "alert" }.to_owned(),
            ),
            ("apns-priority", "10".to_owned()),
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
    #[serde(skip_serializing_if = "str::is_empty")]
    ext: &'a str,
}

#[derive(Serialize)]
struct Aps<'a> {
    alert: Alert<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    badge: Option<u32>,
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
            alert,
            badge,
            sound: &notification.sound,
            thread_id: &notification.conversation,
        },
        ext: &notification.ext,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
