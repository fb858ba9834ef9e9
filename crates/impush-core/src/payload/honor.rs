//! Honor Push (the channel of Honor phones since Honor split from Huawei in 2020; they no
//! longer receive Huawei Push Kit messages), server API v1 "downlink message".
//!
//! Request format (Honor's reference "下行消息",
//! https://developer.honor.com/cn/docs/11002/reference/downlink-message, and its guide
//! "发送下行消息" as Honor's developer account republished it,
//! https://my.oschina.net/u/5873522/blog/10140231):
//! `POST /api/v1/<app_id>/sendMessage` with a JSON body
//! `{"android":{"notification":{"title","body","clickAction":{"type":3}}},"token":[…]}`,
//! field names in camelCase. The OAuth bearer token and the `timestamp` header (ms) are added
//! by the client at send time.
//!
//! - Title: the notification's title, else `credential.default_title`, else the sender's
//!   name, else the group's name (Honor requires a title, like Huawei).
//! - `ext` goes in the top-level `data` as `{"ext":"<ext>"}`, the string Honor hands to the
//!   app; [unverified] that Honor passes `data` of a *notification* message to the activity
//!   the tap opens (Huawei's NC 9.1.1+ does; Honor's push SDK is its descendant).
//! - Classification: `android.notification.importance = "NORMAL"`, Honor's service and
//!   communication level (`LOW` files a message as marketing, which is capped per day)
//!   [unverified: from the notification field table of the reference page].
//! - Click: `clickAction {type:1, intent}` with the credential's intent URI, else
//!   `{type:3}` (open the app), as in Honor's example.
//! - Expiry: `android.ttl` as `"<seconds>s"`, 1 s to 15 days [unverified maximum: Huawei's
//!   value, which Honor's API inherited]; without an expiry Honor keeps the message for its
//!   default (one day).
//! - Sound: not sent. Honor plays the notification channel's sound; the reference page
//!   shows no per-message sound for notification messages [unverified].
//! - Badge: not sent. Honor's badge (`badge {addNum, setNum, badgeClass}`) needs the
//!   launcher activity class, which credentials do not carry, and a batch shares one payload.
//! - Notify mode: `android_notify_mode` CUSTOM sends a data ("透传") message: no
//!   `android.notification`, `data` = `{"title","body","ext"}` as a JSON string, which Honor
//!   hands to the app's `HonorMessageService.onMessageReceived` for the app to show itself
//!   (the guide's "透传消息体示例" `{"data","token"}`). `android.ttl` goes with it when the
//!   message expires [unverified for data messages: Huawei's v1 API, Honor's ancestor,
//!   takes it].
//! - Limits [unverified, Huawei's values]: at most 1000 tokens per request and 4096 bytes of
//!   message, the token list not counted.

use impush_proto::v1::{Notification, PushTarget, Vendor};
use serde::Serialize;

use super::{
    Body, BuildError, Limits, PassThrough, Seconds, Tokens, VendorPayload, VendorRequest,
    is_pass_through, json_string, required,
};
use super::oem::{self, ClickAction};
use crate::credential::CredentialProfile;

/// Message body limit, token list excluded.
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// Tokens per request.
pub const MAX_TOKENS: usize = 1000;
/// The importance of service and communication (IM) notifications.
pub const IM_IMPORTANCE: &str = "NORMAL";


pub struct Payload;

impl VendorPayload for Payload {
    const VENDOR: Vendor = Vendor::Honor;
    const NAME: &'static str = "honor";
    /// Tokens are base64 and travel only in the JSON body.
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
        let ttl = oem::android_ttl(notification);
        let receipt = super::receipt::Receipt::of(notification, credential);
        let request = if is_pass_through(notification) {
            Request {
                android: ttl.map(|ttl| Android {
                    bi_tag: "",
                    notification: None,
                    receipt_id: "",
                    ttl: Some(ttl),
                }),
                data: Some(json_string(&PassThrough::of(notification))),
                token: Tokens(targets),
            }
        } else {
            Request {
                android: Some(Android {
                    bi_tag: receipt.param,
                    receipt_id: receipt.id,
                    notification: Some(AndroidNotification {
                        body: &notification.body,
                        click_action: ClickAction::of(credential),
                        importance: IM_IMPORTANCE,
                        title: &notification.title,
                    }),
                    ttl,
                }),
                data: oem::ext_data(notification),
                token: Tokens(targets),
            }
        };
        Ok(VendorRequest {
            path: format!("/api/v1/{app_id}/sendMessage"),
            headers: Vec::new(),
            body: Body::json(&request),
        })
    }

    /// The body without `token`: the limit excludes the token list.
    fn measure(request: &VendorRequest) -> usize {
        oem::measure_without_tokens(request)
    }
}

/// Fields in alphabetical order, like every payload struct (see [`super`]);
/// [`Payload::measure`] relies on `token` being the only key so named.
#[derive(Serialize)]
struct Request<'a> {
    /// Absent from a data message without an expiry.
    #[serde(skip_serializing_if = "Option::is_none")]
    android: Option<Android<'a>>,
    /// `{"ext": <ext>}` as a JSON string (Honor's `data` is text); a data message's
    /// `{"title","body","ext"}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<String>,
    token: Tokens<'a>,
}

#[derive(Serialize)]
struct Android<'a> {
    /// Echoed in the delivery receipt (see [`super::receipt`]); Honor's field names for the
    /// receipt tag and configuration are modelled on Huawei's (unverified).
    #[serde(rename = "biTag", skip_serializing_if = "str::is_empty")]
    bi_tag: &'a str,
    /// Absent from a data message (notify mode CUSTOM).
    #[serde(skip_serializing_if = "Option::is_none")]
    notification: Option<AndroidNotification<'a>>,
    #[serde(rename = "receiptId", skip_serializing_if = "str::is_empty")]
    receipt_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<Seconds>,
}

#[derive(Serialize)]
struct AndroidNotification<'a> {
    body: &'a str,
    #[serde(rename = "clickAction")]
    click_action: ClickAction<'a>,
    importance: &'static str,
    title: &'a str,
}


#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::build_payload;
    use crate::payload::testing::{notification, target};
    use serde_json::{Value, json};

    const INTENT: &str = "intent://com.example.im/chat#Intent;scheme=impush;\
        launchFlags=0x4000000;component=com.example.im/com.example.im.MainActivity;end";

    fn credential() -> CredentialProfile {
        CredentialProfile {
            app_id: "104400009".into(),
            ..CredentialProfile::new(9, Vendor::Honor)
        }
    }

    fn body(req: &VendorRequest) -> Value {
        let Body::Json(body) = &req.body else {
            panic!("Honor takes JSON")
        };
        serde_json::from_str(body).unwrap()
    }

    #[test]
    fn notification_has_title_body_normal_importance_ext_data_and_tokens() {
        let req = build_payload(&notification(), &credential(), &[target("tok-1")]).unwrap();
        assert_eq!(req.path, "/api/v1/104400009/sendMessage");
        assert!(
            req.headers.is_empty(),
            "auth and timestamp come at send time"
        );
        assert_eq!(
            body(&req),
            json!({
                "data": r#"{"ext":"{\"entity\":{\"action\":1,\"chatType\":1,\"sender\":\"denny\"}}"}"#,
                "android": {
                    "notification": {
                        "title": "Team chat",
                        "body": "Denny: see you at 5",
                        "clickAction": {"type": 3},
                        "importance": "NORMAL"
                    }
                },
                "token": ["tok-1"]
            })
        );
    }

    #[test]
    fn ext_reaches_the_app_unchanged_in_data() {
        let req = build_payload(&notification(), &credential(), &[target("tok-1")]).unwrap();
        let data: Value = serde_json::from_str(body(&req)["data"].as_str().unwrap()).unwrap();
        assert_eq!(data, json!({ "ext": notification().ext }));

        let mut n = notification();
        n.ext.clear();
        let req = build_payload(&n, &credential(), &[target("tok-1")]).unwrap();
        assert!(body(&req).get("data").is_none());
    }

    #[test]
    fn click_opens_the_configured_intent_else_the_app() {
        let cred = CredentialProfile {
            click_action: INTENT.into(),
            ..credential()
        };
        let req = build_payload(&notification(), &cred, &[target("tok-1")]).unwrap();
        assert_eq!(
            body(&req)["android"]["notification"]["clickAction"],
            json!({"type": 1, "intent": INTENT})
        );
    }

    #[test]
    fn expiry_becomes_a_ttl_clamped_to_fifteen_days() {
        let mut n = notification();
        n.expires_at_ms = n.send_time_ms + 30_000;
        let req = build_payload(&n, &credential(), &[target("tok-1")]).unwrap();
        assert_eq!(body(&req)["android"]["ttl"], "30s");

        n.expires_at_ms = n.send_time_ms + 40 * 24 * 3600 * 1000;
        let req = build_payload(&n, &credential(), &[target("tok-1")]).unwrap();
        assert_eq!(body(&req)["android"]["ttl"], "1296000s");
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
        assert_eq!(body(&req)["android"]["notification"]["title"], "ExampleIM");
        let req = build_payload(&n, &credential(), &[target("tok-1")]).unwrap();
        assert_eq!(body(&req)["android"]["notification"]["title"], "Denny");
    }

    #[test]
    fn batch_lists_up_to_1000_tokens() {
        let targets: Vec<_> = (0..1000).map(|i| target(&format!("tok-{i}"))).collect();
        let req = build_payload(&notification(), &credential(), &targets).unwrap();
        assert_eq!(body(&req)["token"].as_array().unwrap().len(), 1000);

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
    fn long_content_is_cut_to_4096_bytes_not_counting_tokens() {
        let mut n = notification();
        n.body = "消息".repeat(3000);
        let targets: Vec<_> = (0..500).map(|i| target(&format!("tok-{i}"))).collect();
        let req = build_payload(&n, &credential(), &targets).unwrap();
        let size = Payload::measure(&req);
        assert!(size <= MAX_MESSAGE_BYTES, "{size}");
        assert!(size > MAX_MESSAGE_BYTES - 16, "cut far too much: {size}");
        let cut = body(&req)["android"]["notification"]["body"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn measure_is_the_body_without_the_token_list() {
        let targets: Vec<_> = (0..3).map(|i| target(&format!("tok-{i}"))).collect();
        let req = build_payload(&notification(), &credential(), &targets).unwrap();
        let mut without_tokens = body(&req);
        without_tokens.as_object_mut().unwrap().remove("token");
        assert_eq!(Payload::measure(&req), without_tokens.to_string().len());
    }

    #[test]
    fn missing_app_id_names_the_field() {
        let cred = CredentialProfile::new(9, Vendor::Honor);
        let err = build_payload(&notification(), &cred, &[target("tok-1")]).unwrap_err();
        assert_eq!(
            err,
            BuildError::MissingCredentialField {
                business_id: 9,
                vendor: "honor",
                field: "app_id"
            }
        );
    }

    #[test]
    fn tokens_that_could_break_the_request_are_refused() {
        let err = build_payload(&notification(), &credential(), &[target("a,b")]).unwrap_err();
        assert!(matches!(err, BuildError::InvalidToken { .. }));
    }

    #[test]
    fn notify_mode_custom_is_a_data_message_the_app_shows_itself() {
        use impush_proto::v1::AndroidNotifyMode;
        // (notify mode, android.notification sent?)
        let table = [
            (AndroidNotifyMode::Unspecified, true),
            (AndroidNotifyMode::Normal, true),
            (AndroidNotifyMode::Custom, false),
        ];
        for (mode, shown) in table {
            let mut n = notification();
            n.set_android_notify_mode(mode);
            let sent = body(&build_payload(&n, &credential(), &[target("tok-1")]).unwrap());
            assert_eq!(
                sent.pointer("/android/notification").is_some(),
                shown,
                "{mode:?}"
            );
            let data: Value = serde_json::from_str(sent["data"].as_str().unwrap()).unwrap();
            assert_eq!(data["ext"], n.ext.as_str());
            if !shown {
                assert_eq!(data["title"], "Team chat");
                assert_eq!(data["body"], "Denny: see you at 5");
                assert!(sent.get("android").is_none(), "no expiry, no android: {sent}");
            }
        }
        let mut expiring = notification();
        expiring.set_android_notify_mode(AndroidNotifyMode::Custom);
        expiring.expires_at_ms = expiring.send_time_ms + 30_000;
        let sent = body(&build_payload(&expiring, &credential(), &[target("tok-1")]).unwrap());
        assert_eq!(sent["android"], json!({"ttl": "30s"}));
    }
}
