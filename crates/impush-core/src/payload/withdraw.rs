//! Taking back a recalled message's notification from the devices that already show it:
//! what each vendor allows ([`recall_action`]) and, where its server API withdraws a shown
//! notification, the exact request ([`build_withdrawal`]).
//!
//! Both withdrawal APIs impush uses name the notification by the notify id the push carried
//! and the devices by their tokens, so nothing has to be remembered from the vendor's answer
//! to the push: the id is derived again from the message's collapse id, as when it was sent.
//!
//! - **HarmonyOS NEXT** (Push Kit "消息撤回", <https://developer.huawei.com/consumer/cn/doc/harmonyos-references/push-msg-revoke/>,
//!   <https://developer.huawei.com/consumer/en/doc/harmonyOS-guides/push-revoke-alert/>):
//!   `POST /v1/<clientId>/messages:revoke` (API v1 and the app's **client id**, not the v3
//!   send's project id), header `push-type: 0` (a notification), JSON
//!   `{"notifyId": <the push's notifyId>, "token": [...]}`, at most 1000 tokens and 4096
//!   bytes without them; the answer is Push Kit's `{"code","msg","requestId"}`
//!   (`80000000` success). It takes back a notification not yet delivered, or shown and not
//!   yet tapped. The client id is the credential's `app_id`; a HarmonyOS credential without
//!   one gets the replacement instead (a push with the same `notifyId`, which Push Kit shows
//!   in place of the old one).
//! - **Xiaomi** (MiPush server SDK `Sender.revokeRegIdMessage`, Xiaomi's Java server SDK as
//!   published in ggg17226/xmpush-server-api-http2, `Constants.XmPushRequestPath.V1_REVOKE_REGID_MESSAGE`):
//!   `POST /v1/message/regid/revoke`, form fields `registration_ids`, `restricted_package_name`
//!   and `notify_id` (the push's), the `Authorization: key=<AppSecret>` header added by the
//!   client; the answer is MiPush's `{"result","code",…}` (`0` success). [unverified: the
//!   SDK hands `registration_ids` a list; impush joins the regids with `,` as the send's
//!   `registration_id` does. Xiaomi's own pages read do not describe this endpoint.]
//! - **APNs, FCM**: no withdrawal API; a push with the same collapse id (APNs
//!   `apns-collapse-id`, FCM `android.notification.tag`) replaces the shown notification.
//! - **Others**: vivo's recall by task id and Huawei's, Honor's, OPPO's and Meizu's
//!   replacement by notify id are described only by third parties (Getui, mPaaS) and not in
//!   the vendors' pages read; TPNS recalls only pushes to all devices, accounts or tags. Their
//!   notifications stay.

use impush_proto::v1::{Notification, PushTarget, Vendor};
use serde::Serialize;

use super::{
    Body, BuildError, Tokens, VendorRequest, check_path_safe_token, harmony, required, xiaomi,
};
use crate::credential::CredentialProfile;

/// What a recall does to a notification a device of this vendor already shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecallAction {
    /// The vendor's server API takes it back ([`build_withdrawal`]).
    Withdraw,
    /// A silent push with the recall text under the same collapse id or notify id shows in
    /// its place.
    Replace,
    /// Nothing impush can do reaches it: it stays.
    Stays,
}

/// What a recall does on a device of `vendor` pushed with `credential` (`None`: the
/// credential is no longer configured).
pub fn recall_action(vendor: Vendor, credential: Option<&CredentialProfile>) -> RecallAction {
    match vendor {
        Vendor::Xiaomi => RecallAction::Withdraw,
        Vendor::Harmony if credential.is_some_and(|c| !c.app_id.is_empty()) => {
            RecallAction::Withdraw
        }
        Vendor::Apns | Vendor::Fcm | Vendor::Harmony => RecallAction::Replace,
        _ => RecallAction::Stays,
    }
}

/// How many devices one withdrawal request may name.
pub fn max_withdrawal_batch(vendor: Vendor) -> usize {
    match vendor {
        Vendor::Harmony => harmony::MAX_TOKENS,
        Vendor::Xiaomi => xiaomi::MAX_REGIDS,
        _ => 1,
    }
}

/// The request that withdraws, from `targets`, the notification a push of `notification`
/// (the recall's, which carries the message's collapse id) showed; `None` for a vendor
/// without a withdrawal API.
pub fn build_withdrawal(
    notification: &Notification,
    credential: &CredentialProfile,
    targets: &[PushTarget],
) -> Option<Result<VendorRequest, BuildError>> {
    let build = match credential.vendor {
        Vendor::Harmony => harmony_revoke,
        Vendor::Xiaomi => xiaomi_revoke,
        _ => return None,
    };
    Some(
        check_batch(credential.vendor, targets)
            .and_then(|()| build(notification, credential, targets)),
    )
}

fn check_batch(vendor: Vendor, targets: &[PushTarget]) -> Result<(), BuildError> {
    if targets.is_empty() {
        return Err(BuildError::NoTargets);
    }
    let max = max_withdrawal_batch(vendor);
    if targets.len() > max {
        return Err(BuildError::TooManyTargets {
            count: targets.len(),
            max,
        });
    }
    for target in targets {
        check_path_safe_token(vendor, &target.token)?;
    }
    Ok(())
}

/// The body of a Push Kit revoke; fields in alphabetical order like every payload struct.
#[derive(Serialize)]
struct HarmonyRevoke<'a> {
    #[serde(rename = "notifyId")]
    notify_id: i32,
    token: Tokens<'a>,
}

fn harmony_revoke(
    notification: &Notification,
    credential: &CredentialProfile,
    targets: &[PushTarget],
) -> Result<VendorRequest, BuildError> {
    let client_id = required(credential, "app_id", &credential.app_id)?;
    // A message always has a collapse id; without one its push carried no notifyId and
    // there is nothing to name.
    let notify_id = harmony::notify_id(notification).ok_or(BuildError::NoTargets)?;
    Ok(VendorRequest {
        path: format!("/v1/{client_id}/messages:revoke"),
        headers: vec![("push-type", harmony::PUSH_TYPE_ALERT.to_owned())],
        body: Body::json(&HarmonyRevoke {
            notify_id,
            token: Tokens(targets),
        }),
    })
}

fn xiaomi_revoke(
    notification: &Notification,
    credential: &CredentialProfile,
    targets: &[PushTarget],
) -> Result<VendorRequest, BuildError> {
    let package = required(credential, "package_name", &credential.package_name)?;
    let regids: Vec<&str> = targets.iter().map(|t| t.token.as_str()).collect();
    Ok(VendorRequest {
        path: "/v1/message/regid/revoke".into(),
        headers: Vec::new(),
        body: Body::Form(vec![
            ("registration_ids".into(), regids.join(",")),
            ("restricted_package_name".into(), package.to_owned()),
            (
                "notify_id".into(),
                xiaomi::notify_id(notification).to_string(),
            ),
        ]),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::payload::build_payload;

    fn targets(tokens: &[&str]) -> Vec<PushTarget> {
        tokens
            .iter()
            .map(|t| PushTarget {
                user_id: "u".into(),
                device_id: format!("d-{t}"),
                token: (*t).into(),
                badge: None,
            })
            .collect()
    }

    fn credential(vendor: Vendor) -> CredentialProfile {
        let mut c = CredentialProfile::new(7, vendor);
        c.app_id = "6917000000000000007".into();
        c.project_id = "388421841222199007".into();
        c.package_name = "com.example.im".into();
        c.default_title = "IM".into();
        c
    }

    /// The message's push and its recall's notification share the collapse id.
    fn pushed_and_recalled(msg_id: &str) -> (Notification, Notification) {
        let push = Notification {
            title: "Alice".into(),
            body: "hello".into(),
            collapse_id: msg_id.into(),
            ..Notification::default()
        };
        let recall = Notification {
            body: "[message recalled]".into(),
            collapse_id: msg_id.into(),
            ..Notification::default()
        };
        (push, recall)
    }

    #[test]
    fn a_recall_withdraws_on_xiaomi_and_harmony_replaces_on_apns_and_fcm_and_leaves_the_rest() {
        let mut harmony_without_client_id = credential(Vendor::Harmony);
        harmony_without_client_id.app_id.clear();
        // (vendor, credential's client id known?, action)
        let table = [
            (
                Vendor::Xiaomi,
                Some(credential(Vendor::Xiaomi)),
                RecallAction::Withdraw,
            ),
            (
                Vendor::Harmony,
                Some(credential(Vendor::Harmony)),
                RecallAction::Withdraw,
            ),
            (
                Vendor::Harmony,
                Some(harmony_without_client_id),
                RecallAction::Replace,
            ),
            (Vendor::Harmony, None, RecallAction::Replace),
            (Vendor::Apns, None, RecallAction::Replace),
            (Vendor::Fcm, None, RecallAction::Replace),
            (Vendor::Huawei, None, RecallAction::Stays),
            (Vendor::Honor, None, RecallAction::Stays),
            (Vendor::Oppo, None, RecallAction::Stays),
            (Vendor::Vivo, None, RecallAction::Stays),
            (Vendor::Meizu, None, RecallAction::Stays),
            (Vendor::Tpns, None, RecallAction::Stays),
        ];
        for (vendor, credential, action) in table {
            assert_eq!(
                recall_action(vendor, credential.as_ref()),
                action,
                "{vendor:?}"
            );
        }
    }

    #[test]
    fn a_harmony_withdrawal_names_the_pushes_notify_id_and_tokens_under_the_client_id() {
        let (push, recall) = pushed_and_recalled("msg-1");
        let credential = credential(Vendor::Harmony);
        let sent = build_payload(&push, &credential, &targets(&["t1"])).unwrap();
        let sent_notify_id =
            sent.body.to_json_value()["payload"]["notification"]["notifyId"].clone();
        let request = build_withdrawal(&recall, &credential, &targets(&["t1", "t2"]))
            .unwrap()
            .unwrap();
        assert_eq!(request.path, "/v1/6917000000000000007/messages:revoke");
        assert_eq!(request.header("push-type"), Some("0"));
        assert_eq!(
            request.body.to_json_value(),
            json!({"notifyId": sent_notify_id, "token": ["t1", "t2"]})
        );
    }

    #[test]
    fn a_xiaomi_withdrawal_names_the_pushes_notify_id_regids_and_package() {
        let (push, recall) = pushed_and_recalled("msg-1");
        let credential = credential(Vendor::Xiaomi);
        let sent = build_payload(&push, &credential, &targets(&["r1"])).unwrap();
        let request = build_withdrawal(&recall, &credential, &targets(&["r1", "r2"]))
            .unwrap()
            .unwrap();
        assert_eq!(request.path, "/v1/message/regid/revoke");
        assert_eq!(request.body.form_field("registration_ids"), Some("r1,r2"));
        assert_eq!(
            request.body.form_field("restricted_package_name"),
            Some("com.example.im")
        );
        assert_eq!(
            request.body.form_field("notify_id"),
            sent.body.form_field("notify_id")
        );
    }

    #[test]
    fn another_messages_withdrawal_names_another_notification() {
        let (_, first) = pushed_and_recalled("msg-1");
        let (_, second) = pushed_and_recalled("msg-2");
        for vendor in [Vendor::Harmony, Vendor::Xiaomi] {
            let credential = credential(vendor);
            let build = |n| {
                build_withdrawal(n, &credential, &targets(&["t"]))
                    .unwrap()
                    .unwrap()
            };
            assert_ne!(build(&first).body, build(&second).body, "{vendor:?}");
        }
    }

    #[test]
    fn withdrawals_refuse_what_the_vendor_would() {
        let (_, recall) = pushed_and_recalled("msg-1");
        let mut no_client_id = credential(Vendor::Harmony);
        no_client_id.app_id.clear();
        let mut no_package = credential(Vendor::Xiaomi);
        no_package.package_name.clear();
        let too_many: Vec<String> = (0..1001).map(|i| format!("t{i}")).collect();
        let too_many: Vec<&str> = too_many.iter().map(String::as_str).collect();
        type Expected = fn(&BuildError) -> bool;
        // (credential, tokens, error)
        let table: [(CredentialProfile, Vec<&str>, Expected); 5] = [
            (no_client_id, vec!["t"], |e| {
                matches!(
                    e,
                    BuildError::MissingCredentialField {
                        field: "app_id",
                        ..
                    }
                )
            }),
            (no_package, vec!["t"], |e| {
                matches!(
                    e,
                    BuildError::MissingCredentialField {
                        field: "package_name",
                        ..
                    }
                )
            }),
            (credential(Vendor::Harmony), vec![], |e| {
                matches!(e, BuildError::NoTargets)
            }),
            (credential(Vendor::Xiaomi), too_many, |e| {
                matches!(e, BuildError::TooManyTargets { max: 1000, .. })
            }),
            (credential(Vendor::Xiaomi), vec!["a,b"], |e| {
                matches!(e, BuildError::InvalidToken { .. })
            }),
        ];
        for (credential, tokens, expected) in table {
            let err = build_withdrawal(&recall, &credential, &targets(&tokens))
                .unwrap()
                .unwrap_err();
            assert!(expected(&err), "{err:?}");
        }
        for vendor in [Vendor::Apns, Vendor::Fcm, Vendor::Vivo, Vendor::Huawei] {
            assert!(
                build_withdrawal(&recall, &credential(vendor), &targets(&["t"])).is_none(),
                "{vendor:?} has no withdrawal API"
            );
        }
    }
}
