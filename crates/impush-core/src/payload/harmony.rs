//! Huawei Push Kit for HarmonyOS NEXT apps: the scenario-based REST API v3, whose message
//! format is its own (not the Android v1 `message.android` one).
//!
//! Request format ("Request Body Structure" and "Request Body Parameters",
//! https://developer.huawei.com/consumer/en/doc/harmonyos-references/push-scenariozed-api-request-struct
//! and https://developer.huawei.com/consumer/cn/doc/doccenter-references/api/push-scenariozed-api-request-param.md;
//! "Pushing Scenario-Specific Messages",
//! https://developer.huawei.com/consumer/en/doc/doccenter-capabilities/push-scenes-send/):
//! `POST /v3/<project_id>/messages:send`, header `push-type: 0` (alert message: the
//! notification this module builds; 1 widget, 2 text-to-speech, 6 background, 7 live view
//! and 10 in-app call are not sent by impush), body
//! `{"payload":{"notification":{…}},"target":{"token":[…]},"pushOptions":{…}}`. The
//! service-account JWT is added by the client.
//!
//! - `payload.notification.category`: `android_huawei_category` when set (the categories
//!   are shared: `IM`, `VOIP`, …), else `IM`, a service and communication message (needs
//!   Huawei's self-classification right; `MARKETING` is capped at a few a day).
//! - Title and body: required by the API; the title falls back like Huawei's.
//! - Click: `clickAction {actionType:0}` opens the app's home ability;
//!   a configured click action opens that page: `actionType:1` with `uri` when it has a
//!   scheme (`…://…`), else with `action` (an ability's skill action). `ext` goes in
//!   `clickAction.data` as `{"ext":"<ext>"}`, the parameters of the Want the tap starts,
//!   which the app reads in `onCreate`/`onNewWant`.
//! - Badge: `badge {addNum:1}`, one more on the app icon per notification (the app sets
//!   the number it wants when it runs). HarmonyOS has no per-device number in a batch.
//! - Sound: a file plays from the app's `resources/rawfile` (`sound: "<file>"`); `default`
//!   and silence send no `sound`: HarmonyOS has no per-message mute for IM notifications
//!   [unverified: `sound` and its rawfile location are from the Notification table of the
//!   request-param reference as summarised by third parties].
//! - `notifyId`: derived from the notification's `collapse_id` (one per message), so a
//!   repeat of the same message replaces the shown one instead of showing twice, and two
//!   messages never share one.
//! - `pushOptions.ttl`: seconds left until expiry, 1 s to 15 days (1 296 000, the documented
//!   maximum); without an expiry Push Kit's default of one day applies.
//! - Limits (function introduction, "使用约束"): the body at most 4096 bytes without the
//!   tokens (`80300008`), 1 to 1000 tokens (`80300010`).

use impush_proto::v1::{Notification, PushTarget, Vendor};
use serde::Serialize;
use serde::de::IgnoredAny;

use super::{
    Body, BuildError, ExtMap, Limits, Tokens, VendorPayload, VendorRequest, check_path_safe_token,
    json_member, required, stable_hash, ttl_seconds,
};
use crate::credential::{CredentialField, CredentialProfile};
use crate::render::DEFAULT_SOUND;

/// Message body limit, tokens excluded.
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// Tokens per request.
pub const MAX_TOKENS: usize = 1000;
/// The longest `pushOptions.ttl`: 15 days.
pub const MAX_TTL_SECONDS: u64 = 15 * 24 * 3600;
/// The category of instant-messaging notifications.
pub const IM_CATEGORY: &str = "IM";
/// The `push-type` header of an alert (notification) message.
pub const PUSH_TYPE_ALERT: &str = "0";

/// `clickAction.actionType`: open the app's home ability.
const OPEN_HOME: u8 = 0;
/// `clickAction.actionType`: open the page named by `uri` or `action`.
const OPEN_PAGE: u8 = 1;

pub struct Payload;

impl VendorPayload for Payload {
    const VENDOR: Vendor = Vendor::Harmony;
    const NAME: &'static str = "harmony";
    /// Tokens are base64 and travel only in the JSON body.
    const TOKENS: super::TokenRules = super::TokenRules {
        base64: true,
        ..super::TokenRules::DEFAULT
    };
    const IDENTITY: CredentialField = CredentialField::ProjectId;
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
        if targets.is_empty() {
            return Err(BuildError::NoTargets);
        }
        if targets.len() > MAX_TOKENS {
            return Err(BuildError::TooManyTargets {
                count: targets.len(),
                max: MAX_TOKENS,
            });
        }
        let project_id = required(credential, "project_id", &credential.project_id)?;
        for target in targets {
            check_path_safe_token(Vendor::Harmony, &target.token)?;
        }
        let category = if notification.android_huawei_category.is_empty() {
            IM_CATEGORY
        } else {
            &notification.android_huawei_category
        };
        let sound = match notification.sound.as_str() {
            "" | DEFAULT_SOUND => None,
            file => Some(file),
        };
        let request = Request {
            payload: PayloadBody {
                notification: AlertNotification {
                    badge: Badge { add_num: 1 },
                    body: &notification.body,
                    category,
                    click_action: click_action(notification, credential),
                    notify_id: notify_id(notification),
                    sound,
                    title: &notification.title,
                },
            },
            push_options: PushOptions {
                ttl: ttl_seconds(notification, 1).map(|ttl| ttl.min(MAX_TTL_SECONDS)),
            },
            target: Target {
                token: Tokens(targets),
            },
        };
        Ok(VendorRequest {
            path: format!("/v3/{project_id}/messages:send"),
            headers: vec![("push-type", PUSH_TYPE_ALERT.to_owned())],
            body: Body::json(&request),
        })
    }

    /// The body without `target.token`: the 4096 bytes exclude the tokens.
    fn measure(request: &VendorRequest) -> usize {
        match &request.body {
            Body::Json(json) => {
                let tokens = json_member::<IgnoredAny>(json, "token");
                json.len() - tokens.map_or(0, |(_, t)| t.len())
            }
            Body::Form(_) => request.body.to_bytes().len(),
        }
    }
}

/// The click action: the configured page, else the home ability; `ext` rides along.
fn click_action<'a>(
    notification: &'a Notification,
    credential: &'a CredentialProfile,
) -> ClickAction<'a> {
    let page = credential.click_action.as_str();
    let (action_type, uri, action) = if page.is_empty() {
        (OPEN_HOME, "", "")
    } else if page.contains("://") {
        (OPEN_PAGE, page, "")
    } else {
        (OPEN_PAGE, "", page)
    };
    ClickAction {
        action,
        action_type,
        data: (!notification.ext.is_empty()).then_some(ExtMap {
            ext: &notification.ext,
        }),
        uri,
    }
}

/// A positive 31-bit id from the message's collapse id; none without one (Push Kit then
/// gives every notification its own).
pub(crate) fn notify_id(notification: &Notification) -> Option<i32> {
    if notification.collapse_id.is_empty() {
        return None;
    }
    let hash = stable_hash(&[b"harmony-notify-id", notification.collapse_id.as_bytes()]);
    i32::try_from(hash & 0x7fff_ffff).ok()
}

/// Fields in alphabetical order, like every payload struct (see [`super`]); `token` is
/// the only key so named, which [`Payload::measure`] relies on.
#[derive(Serialize)]
struct Request<'a> {
    payload: PayloadBody<'a>,
    #[serde(rename = "pushOptions")]
    push_options: PushOptions,
    target: Target<'a>,
}

#[derive(Serialize)]
struct PayloadBody<'a> {
    notification: AlertNotification<'a>,
}

#[derive(Serialize)]
struct AlertNotification<'a> {
    badge: Badge,
    body: &'a str,
    category: &'a str,
    #[serde(rename = "clickAction")]
    click_action: ClickAction<'a>,
    #[serde(rename = "notifyId", skip_serializing_if = "Option::is_none")]
    notify_id: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sound: Option<&'a str>,
    title: &'a str,
}

#[derive(Serialize)]
struct Badge {
    #[serde(rename = "addNum")]
    add_num: u32,
}

#[derive(Serialize)]
struct ClickAction<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    action: &'a str,
    #[serde(rename = "actionType")]
    action_type: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<ExtMap<'a>>,
    #[serde(skip_serializing_if = "str::is_empty")]
    uri: &'a str,
}

#[derive(Serialize)]
struct PushOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<u64>,
}

#[derive(Serialize)]
struct Target<'a> {
    token: Tokens<'a>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::build_payload;
    use crate::payload::testing::{notification, target};
    use serde_json::{Value, json};

    fn credential() -> CredentialProfile {
        CredentialProfile {
            project_id: "388421841222199046".into(),
            ..CredentialProfile::new(10, Vendor::Harmony)
        }
    }

    fn body(req: &VendorRequest) -> Value {
        let Body::Json(body) = &req.body else {
            panic!("Push Kit takes JSON")
        };
        serde_json::from_str(body).unwrap()
    }

    #[test]
    fn an_alert_message_has_category_im_title_body_ext_and_the_push_type_header() {
        let req = build_payload(&notification(), &credential(), &[target("tok-1")]).unwrap();
        assert_eq!(req.path, "/v3/388421841222199046/messages:send");
        assert_eq!(req.header("push-type"), Some("0"));
        assert_eq!(
            body(&req),
            json!({
                "payload": {
                    "notification": {
                        "category": "IM",
                        "title": "Team chat",
                        "body": "Denny: see you at 5",
                        "badge": {"addNum": 1},
                        "clickAction": {
                            "actionType": 0,
                            "data": {"ext": notification().ext}
                        }
                    }
                },
                "pushOptions": {},
                "target": {"token": ["tok-1"]}
            })
        );
    }

    #[test]
    fn a_configured_click_action_opens_that_page_by_uri_or_action() {
        let cred = CredentialProfile {
            click_action: "impush://chat/detail".into(),
            ..credential()
        };
        let req = build_payload(&notification(), &cred, &[target("tok-1")]).unwrap();
        let click = &body(&req)["payload"]["notification"]["clickAction"];
        assert_eq!(click["actionType"], 1);
        assert_eq!(click["uri"], "impush://chat/detail");
        assert!(click.get("action").is_none());

        let cred = CredentialProfile {
            click_action: "com.example.impush.action.CHAT".into(),
            ..credential()
        };
        let req = build_payload(&notification(), &cred, &[target("tok-1")]).unwrap();
        let click = &body(&req)["payload"]["notification"]["clickAction"];
        assert_eq!(click["action"], "com.example.impush.action.CHAT");
        assert!(click.get("uri").is_none());
    }

    #[test]
    fn no_ext_sends_no_click_data() {
        let mut n = notification();
        n.ext.clear();
        let req = build_payload(&n, &credential(), &[target("tok-1")]).unwrap();
        assert_eq!(
            body(&req)["payload"]["notification"]["clickAction"],
            json!({"actionType": 0})
        );
    }

    #[test]
    fn the_configured_category_wins_over_im() {
        let mut n = notification();
        n.android_huawei_category = "VOIP".into();
        let req = build_payload(&n, &credential(), &[target("tok-1")]).unwrap();
        assert_eq!(body(&req)["payload"]["notification"]["category"], "VOIP");
    }

    #[test]
    fn a_sound_file_is_named_and_default_or_silence_send_none() {
        let mut n = notification();
        n.sound = "ring.mp3".into();
        let req = build_payload(&n, &credential(), &[target("tok-1")]).unwrap();
        assert_eq!(body(&req)["payload"]["notification"]["sound"], "ring.mp3");
        for sound in ["default", ""] {
            n.sound = sound.into();
            let req = build_payload(&n, &credential(), &[target("tok-1")]).unwrap();
            assert!(body(&req)["payload"]["notification"].get("sound").is_none());
        }
    }

    #[test]
    fn expiry_becomes_push_options_ttl_clamped_to_fifteen_days() {
        let mut n = notification();
        n.expires_at_ms = n.send_time_ms + 30_000;
        let req = build_payload(&n, &credential(), &[target("tok-1")]).unwrap();
        assert_eq!(body(&req)["pushOptions"]["ttl"], 30);

        n.expires_at_ms = n.send_time_ms + 40 * 24 * 3600 * 1000;
        let req = build_payload(&n, &credential(), &[target("tok-1")]).unwrap();
        assert_eq!(body(&req)["pushOptions"]["ttl"], 1_296_000);
    }

    #[test]
    fn notify_id_follows_the_collapse_id_so_a_repeat_replaces_and_others_do_not() {
        let mut a = notification();
        a.collapse_id = "msg-a".into();
        let mut b = notification();
        b.collapse_id = "msg-b".into();
        let id = |n: &Notification| {
            let req = build_payload(n, &credential(), &[target("tok-1")]).unwrap();
            body(&req)["payload"]["notification"]["notifyId"].as_i64()
        };
        assert_eq!(id(&a), id(&a.clone()));
        assert_ne!(id(&a), id(&b));
        assert!(id(&a).unwrap() >= 0);
        assert_eq!(id(&notification()), None, "no collapse id, no notifyId");
    }

    #[test]
    fn batch_lists_up_to_1000_tokens_and_measure_leaves_them_out() {
        let targets: Vec<_> = (0..1000).map(|i| target(&format!("tok-{i}"))).collect();
        let req = build_payload(&notification(), &credential(), &targets).unwrap();
        assert_eq!(
            body(&req)["target"]["token"].as_array().unwrap().len(),
            1000
        );
        let mut without_tokens = body(&req);
        without_tokens["target"]
            .as_object_mut()
            .unwrap()
            .remove("token");
        // The measured size keeps `"token":` itself; the tokens are what it leaves out.
        assert_eq!(
            Payload::measure(&req),
            without_tokens.to_string().len() + r#""token":"#.len()
        );

        let targets: Vec<_> = (0..1001).map(|i| target(&format!("tok-{i}"))).collect();
        assert!(matches!(
            build_payload(&notification(), &credential(), &targets),
            Err(BuildError::TooManyTargets { .. })
        ));
    }

    #[test]
    fn long_content_is_cut_to_4096_bytes_not_counting_tokens() {
        let mut n = notification();
        n.body = "消息".repeat(3000);
        let targets: Vec<_> = (0..200).map(|i| target(&format!("tok-{i}"))).collect();
        let req = build_payload(&n, &credential(), &targets).unwrap();
        let size = Payload::measure(&req);
        assert!(size <= MAX_MESSAGE_BYTES, "{size}");
        assert!(size > MAX_MESSAGE_BYTES - 16, "cut far too much: {size}");
        assert!(
            body(&req)["payload"]["notification"]["body"]
                .as_str()
                .unwrap()
                .ends_with('…')
        );
    }

    #[test]
    fn missing_project_id_names_the_field() {
        let cred = CredentialProfile::new(10, Vendor::Harmony);
        let err = build_payload(&notification(), &cred, &[target("tok-1")]).unwrap_err();
        assert_eq!(
            err,
            BuildError::MissingCredentialField {
                business_id: 10,
                vendor: "harmony",
                field: "project_id"
            }
        );
    }
}
