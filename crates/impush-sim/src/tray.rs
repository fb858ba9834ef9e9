//! What the simulated devices' notification trays show, for the vendors whose notifications
//! have an id a later request can name: a push with an id the device already shows replaces
//! that notification, and a vendor's revoke call withdraws it. Tests ask
//! `GET /sim/notifications[?vendor=V][&token=T]` whether notification X was withdrawn or
//! replaced with text Y.
//!
//! The id of a notification, per vendor, is what the vendor replaces by:
//! - APNs: the `apns-collapse-id` header;
//! - FCM: `message.android.notification.tag`;
//! - HarmonyOS: `payload.notification.notifyId` (what `messages:revoke` names);
//! - Xiaomi: the `notify_id` form field (what `/v1/message/regid/revoke` names).
//!
//! Pushes without one are not tracked (every such push is a notification of its own). Only a
//! simulator that records deliveries keeps a tray; it is cleared with them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Notifications kept; beyond this new ones are not tracked.
const MAX_NOTIFICATIONS: usize = 100_000;

/// One notification on one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrayNotification {
    pub vendor: String,
    pub token: String,
    /// The vendor's id of the notification (collapse id, tag, notify id).
    pub id: String,
    /// What it shows now (after replacements); `None` when it was withdrawn before any
    /// push of it arrived.
    pub title: Option<String>,
    pub body: Option<String>,
    /// How many later pushes with its id replaced it.
    pub replaced: u32,
    /// Taken back by the vendor's revoke call.
    pub withdrawn: bool,
    /// When it last changed, Unix milliseconds.
    pub updated_at_ms: u64,
}

#[derive(Default)]
pub(crate) struct Tray {
    shown: BTreeMap<(&'static str, String, String), TrayNotification>,
}

impl Tray {
    /// A push with notification id `id` reached `token`: shown, or in place of the one it
    /// already shows with that id.
    pub fn show(
        &mut self,
        vendor: &'static str,
        token: &str,
        id: String,
        (title, body): (Option<String>, Option<String>),
        at_ms: u64,
    ) {
        let key = (vendor, token.to_owned(), id);
        if let Some(shown) = self.shown.get_mut(&key) {
            if !shown.withdrawn {
                shown.replaced += 1;
            }
            shown.withdrawn = false;
            shown.title = title;
            shown.body = body;
            shown.updated_at_ms = at_ms;
            return;
        }
        if self.shown.len() >= MAX_NOTIFICATIONS {
            return;
        }
        let notification = TrayNotification {
            vendor: vendor.to_owned(),
            token: key.1.clone(),
            id: key.2.clone(),
            title,
            body,
            replaced: 0,
            withdrawn: false,
            updated_at_ms: at_ms,
        };
        self.shown.insert(key, notification);
    }

    /// The vendor's revoke call named notification `id` on `token`. One not shown yet is
    /// noted withdrawn too (the vendors also drop a push still on its way).
    pub fn withdraw(&mut self, vendor: &'static str, token: &str, id: &str, at_ms: u64) {
        let key = (vendor, token.to_owned(), id.to_owned());
        if let Some(shown) = self.shown.get_mut(&key) {
            shown.withdrawn = true;
            shown.updated_at_ms = at_ms;
            return;
        }
        if self.shown.len() >= MAX_NOTIFICATIONS {
            return;
        }
        self.shown.insert(
            key,
            TrayNotification {
                vendor: vendor.to_owned(),
                token: token.to_owned(),
                id: id.to_owned(),
                title: None,
                body: None,
                replaced: 0,
                withdrawn: true,
                updated_at_ms: at_ms,
            },
        );
    }

    pub fn list(&self, vendor: Option<&str>, token: Option<&str>) -> Vec<TrayNotification> {
        self.shown
            .values()
            .filter(|n| vendor.is_none_or(|v| v == n.vendor))
            .filter(|n| token.is_none_or(|t| t == n.token))
            .cloned()
            .collect()
    }

    pub fn clear(&mut self) {
        self.shown.clear();
    }
}

/// The id a push of `vendor` gives its notification, read from its payload and headers; `None`
/// for vendors not tracked and pushes without one.
pub(crate) fn notification_id(
    vendor: &str,
    payload: &Value,
    headers: &[(&'static str, String)],
) -> Option<String> {
    let text = |value: &Value| match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match vendor {
        "apns" => headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("apns-collapse-id"))
            .map(|(_, value)| value.clone())
            .filter(|id| !id.is_empty()),
        "fcm" => text(&payload["message"]["android"]["notification"]["tag"]),
        "harmony" => text(&payload["payload"]["notification"]["notifyId"]),
        "xiaomi" => text(&payload["notify_id"]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn text(body: &str) -> (Option<String>, Option<String>) {
        (None, Some(body.into()))
    }

    #[test]
    fn a_push_with_a_shown_id_replaces_it_and_a_revoke_withdraws_it() {
        let mut tray = Tray::default();
        tray.show("xiaomi", "r1", "42".into(), text("hello"), 1);
        tray.show("xiaomi", "r2", "42".into(), text("hello"), 1);
        tray.show("xiaomi", "r1", "43".into(), text("other"), 2);
        tray.show("xiaomi", "r1", "42".into(), text("[message recalled]"), 3);
        tray.withdraw("xiaomi", "r2", "42", 4);
        tray.withdraw("harmony", "t9", "7", 5);
        let r1 = tray.list(Some("xiaomi"), Some("r1"));
        assert_eq!(r1.len(), 2);
        assert_eq!(
            (
                r1[0].id.as_str(),
                r1[0].body.as_deref(),
                r1[0].replaced,
                r1[0].withdrawn
            ),
            ("42", Some("[message recalled]"), 1, false)
        );
        assert_eq!((r1[1].id.as_str(), r1[1].replaced), ("43", 0));
        let r2 = &tray.list(None, Some("r2"))[0];
        assert_eq!((r2.body.as_deref(), r2.withdrawn), (Some("hello"), true));
        let early = &tray.list(Some("harmony"), None)[0];
        assert_eq!((early.body.as_deref(), early.withdrawn), (None, true));
        tray.clear();
        assert!(tray.list(None, None).is_empty());
    }

    #[test]
    fn each_vendor_names_its_notifications_by_what_it_replaces_by() {
        type Headers<'a> = &'a [(&'static str, String)];
        let headers = [("apns-collapse-id", "msg-1".to_owned())];
        // (vendor, payload, headers, id)
        let table: [(&str, Value, Headers, Option<&str>); 7] = [
            ("apns", json!({}), &headers, Some("msg-1")),
            ("apns", json!({}), &[], None),
            (
                "fcm",
                json!({"message": {"android": {"notification": {"tag": "msg-1"}}}}),
                &[],
                Some("msg-1"),
            ),
            (
                "harmony",
                json!({"payload": {"notification": {"notifyId": 123}}}),
                &[],
                Some("123"),
            ),
            ("xiaomi", json!({"notify_id": "456"}), &[], Some("456")),
            ("xiaomi", json!({"notify_id": ""}), &[], None),
            ("vivo", json!({"notifyId": 1}), &[], None),
        ];
        for (vendor, payload, headers, id) in table {
            assert_eq!(
                notification_id(vendor, &payload, headers).as_deref(),
                id,
                "{vendor} {payload}"
            );
        }
    }
}
