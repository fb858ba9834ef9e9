//! What the Huawei Push Kit v1 and Honor Push v1 request bodies share, written once (Honor's
//! API grew out of Push Kit v1 when Honor left Huawei in 2020): the click action, the
//! `android.ttl`, the 4096-byte limit that leaves the token list out, and `ext` in the
//! string `data`.

use impush_proto::v1::Notification;
use serde::Serialize;
use serde::de::IgnoredAny;

use super::{Body, ExtMap, Seconds, VendorRequest, json_member, json_string, ttl_seconds};
use crate::credential::CredentialProfile;

/// The longest `android.ttl` accepted: 15 days (1 296 000 s).
pub const MAX_TTL_SECONDS: u64 = 15 * 24 * 3600;

/// `click_action.type`: open a page of the app by intent URI.
const CLICK_INTENT: u8 = 1;
/// `click_action.type`: open the app's launcher page.
const CLICK_OPEN_APP: u8 = 3;

/// Where a tap leads: `{type:1, intent}` with the credential's intent URI, else `{type:3}`
/// (open the app).
#[derive(Serialize)]
pub struct ClickAction<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    intent: &'a str,
    #[serde(rename = "type")]
    kind: u8,
}

impl<'a> ClickAction<'a> {
    pub fn of(credential: &'a CredentialProfile) -> ClickAction<'a> {
        let kind = if credential.click_action.is_empty() {
            CLICK_OPEN_APP
        } else {
            CLICK_INTENT
        };
        ClickAction {
            intent: &credential.click_action,
            kind,
        }
    }
}

/// `android.ttl`: what is left of the message's time to live as `"<seconds>s"`, 1 s to 15
/// days; none without an expiry (the vendor's default, one day).
pub fn android_ttl(notification: &Notification) -> Option<Seconds> {
    ttl_seconds(notification, 1).map(|ttl| Seconds(ttl.min(MAX_TTL_SECONDS)))
}

/// `data` of a notification message: `{"ext":"<ext>"}` as a JSON string (the vendors'
/// `data` is text); none without `ext`.
pub fn ext_data(notification: &Notification) -> Option<String> {
    (!notification.ext.is_empty()).then(|| {
        json_string(&ExtMap {
            ext: &notification.ext,
        })
    })
}

/// The body without `"token":[…]` and the comma that joins it to its neighbour: "the
/// message body cannot exceed 4096 bytes (excluding token)". The body must have one key
/// named `token`, the token list.
pub fn measure_without_tokens(request: &VendorRequest) -> usize {
    match &request.body {
        Body::Json(json) => {
            let tokens = json_member::<IgnoredAny>(json, "token");
            json.len() - tokens.map_or(0, |(_, t)| t.len() + r#""token":,"#.len())
        }
        Body::Form(_) => request.body.to_bytes().len(),
    }
}
