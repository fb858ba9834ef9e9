//! What a push request carries so that the vendor sends a delivery receipt back, and how
//! the receipt names the push again.
//!
//! The sender sets `Notification.receipt_param` to [`param`] (`<sdk_app_id>:<msg_id>`) for
//! credentials that ask for receipts ([`CredentialProfile::wants_receipts`]); the vendor
//! echoes it in each receipt, and `impush-receipts` reads it back with [`parse_param`]. The
//! device is found from the receipt's token. Per vendor (the payload modules add them):
//!
//! | vendor | request fields | echoed as |
//! |---|---|---|
//! | Huawei | `android.bi_tag`, `android.receipt_id` | `biTag` |
//! | Honor | `android.biTag`, `android.receiptId` (unverified) | `biTag` |
//! | Xiaomi | `extra.callback`, `extra.callback.param`, `extra.callback.type` | `param` |
//! | OPPO | `call_back_url`, `call_back_parameter` | `param` |
//! | vivo | `extra.callback`, `extra.callback.param` | `param` |
//!
//! Xiaomi and vivo take at most 64 characters of parameter
//! (<https://pkg.go.dev/github.com/iswangwenbin/pushapi/xiaomipush>, "最大长度64字节";
//! vivo server API 2.9.2 "高级特性extra": "callback.param … 最大长度64个字符"), so a longer
//! one is not sent and that message gets no receipt: [`param`] returns `None`.

use impush_proto::v1::Notification;

use crate::credential::CredentialProfile;

/// The longest parameter every vendor echoes back.
pub const MAX_PARAM_CHARS: usize = 64;

/// Xiaomi `extra.callback.type`: delivered (1) + clicked (2) + invalid target device (16),
/// a bit mask (<https://blog.csdn.net/zhou_Tian/article/details/108751167> quotes Xiaomi
/// support on summing the bits; the values are those of Xiaomi's server SDK guide,
/// <https://dev.mi.com/xiaomihyperos/documentation/detail?pId=1558>, "消息回执").
pub const XIAOMI_CALLBACK_TYPE: &str = "19";

/// The parameter a push of `msg_id` for `sdk_app_id` carries, `None` when it would be too
/// long for the vendors to echo.
pub fn param(sdk_app_id: u32, msg_id: &str) -> Option<String> {
    let param = format!("{sdk_app_id}:{msg_id}");
    (param.chars().count() <= MAX_PARAM_CHARS && !msg_id.is_empty()).then_some(param)
}

/// The `(sdk_app_id, msg_id)` a receipt's echoed parameter names.
pub fn parse_param(param: &str) -> Option<(u32, &str)> {
    let (app, msg_id) = param.split_once(':')?;
    let app = app.parse().ok()?;
    (!msg_id.is_empty()).then_some((app, msg_id))
}

/// The receipt fields of one request; all empty when no receipt is asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Receipt<'a> {
    /// Echoed back in the receipt.
    pub param: &'a str,
    /// The callback address, for vendors that take it per request.
    pub url: &'a str,
    /// The console's receipt configuration, for vendors that pick it per request.
    pub id: &'a str,
}

impl<'a> Receipt<'a> {
    pub fn of(notification: &'a Notification, credential: &'a CredentialProfile) -> Receipt<'a> {
        if notification.receipt_param.is_empty() || !credential.wants_receipts() {
            return Receipt::default();
        }
        Receipt {
            param: &notification.receipt_param,
            url: &credential.receipt_url,
            id: &credential.receipt_id,
        }
    }

    /// Whether the vendor is to post receipts to a URL given in the request.
    pub fn has_url(&self) -> bool {
        !self.param.is_empty() && !self.url.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parameter_names_app_and_message_and_is_never_longer_than_vendors_echo() {
        assert_eq!(param(1400000001, "m-1").as_deref(), Some("1400000001:m-1"));
        assert_eq!(parse_param("1400000001:m-1"), Some((1400000001, "m-1")));
        // A msg_id may itself hold colons: only the first separates.
        assert_eq!(parse_param("7:a:b"), Some((7, "a:b")));
        assert_eq!(param(7, &"x".repeat(70)), None);
        assert_eq!(param(7, ""), None);
        for bad in ["", "7", "x:m", "7:", ":m"] {
            assert_eq!(parse_param(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn receipts_are_asked_for_only_with_a_parameter_and_a_configured_credential() {
        let mut credential = CredentialProfile::new(4, impush_proto::v1::Vendor::Xiaomi);
        let mut notification = Notification::default();
        assert_eq!(Receipt::of(&notification, &credential), Receipt::default());
        notification.receipt_param = "7:m".into();
        assert_eq!(Receipt::of(&notification, &credential), Receipt::default());
        credential.receipt_url = "https://r.example/receipts/xiaomi/4?token=t".into();
        let receipt = Receipt::of(&notification, &credential);
        assert!(receipt.has_url());
        assert_eq!(receipt.param, "7:m");
    }

    /// Where each vendor's request carries the receipt fields, read back from the built
    /// request: (vendor, credential receipt_url, receipt_id, where to look, expected).
    #[test]
    fn each_vendor_request_carries_its_receipt_fields_when_a_receipt_is_configured() {
        use crate::payload::build_payload;
        use crate::payload::testing::{notification, target};
        use impush_proto::v1::Vendor;
        use serde_json::Value;

        const URL: &str = "https://r.example/receipts/v/1?token=t";
        let json = |request: &crate::payload::VendorRequest, field: Option<&str>| -> Value {
            let text = match field {
                Some(name) => request.body.form_field(name).unwrap_or_default().to_owned(),
                None => String::from_utf8(request.body.to_bytes()).unwrap(),
            };
            serde_json::from_str(&text).unwrap()
        };
        let mut n = notification();
        n.receipt_param = "7:m-1".into();
        let profile = |vendor, url: &str, id: &str| CredentialProfile {
            app_id: "app".into(),
            package_name: "com.example.im".into(),
            default_title: "IM".into(),
            receipt_url: url.into(),
            receipt_id: id.into(),
            ..CredentialProfile::new(1, vendor)
        };
        let targets = [target("tok-1")];

        let huawei = build_payload(&n, &profile(Vendor::Huawei, "", "RCP1"), &targets).unwrap();
        let android = &json(&huawei, None)["message"]["android"];
        assert_eq!(android["bi_tag"], "7:m-1");
        assert_eq!(android["receipt_id"], "RCP1");

        let honor = build_payload(&n, &profile(Vendor::Honor, "", "RCP2"), &targets).unwrap();
        let android = &json(&honor, None)["android"];
        assert_eq!(android["biTag"], "7:m-1");
        assert_eq!(android["receiptId"], "RCP2");

        let xiaomi = build_payload(&n, &profile(Vendor::Xiaomi, URL, ""), &targets).unwrap();
        assert_eq!(xiaomi.body.form_field("extra.callback"), Some(URL));
        assert_eq!(
            xiaomi.body.form_field("extra.callback.param"),
            Some("7:m-1")
        );
        assert_eq!(xiaomi.body.form_field("extra.callback.type"), Some("19"));

        let oppo = build_payload(&n, &profile(Vendor::Oppo, URL, ""), &targets).unwrap();
        let message = json(&oppo, Some("message"));
        assert_eq!(message["notification"]["call_back_url"], URL);
        assert_eq!(message["notification"]["call_back_parameter"], "7:m-1");

        let vivo = build_payload(&n, &profile(Vendor::Vivo, URL, ""), &targets).unwrap();
        let body = json(&vivo, None);
        assert_eq!(body["extra"]["callback"], URL);
        assert_eq!(body["extra"]["callback.param"], "7:m-1");

        // Without a receipt parameter (or without configuration) nothing is added.
        n.receipt_param.clear();
        for vendor in [
            Vendor::Huawei,
            Vendor::Honor,
            Vendor::Xiaomi,
            Vendor::Oppo,
            Vendor::Vivo,
        ] {
            let request = build_payload(&n, &profile(vendor, URL, "RCP"), &targets).unwrap();
            let text = String::from_utf8(request.body.to_bytes()).unwrap();
            for field in ["bi_tag", "biTag", "receipt", "call_back", "callback"] {
                assert!(!text.contains(field), "{vendor:?} sent {field}: {text}");
            }
        }
    }
}
