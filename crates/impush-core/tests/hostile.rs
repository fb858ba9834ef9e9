//! Regression tests for what fuzzing found in the core: each named after the rule it broke.

use impush_core::ids::is_header_safe;
use impush_core::{Templates, Vendor, render_notification};
use impush_proto::v1::{Elem, OfflineMessage, TextElem, elem::Content};

fn message(msg_id: &str) -> OfflineMessage {
    OfflineMessage {
        msg_id: msg_id.into(),
        sender_id: "denny".into(),
        receiver_id: "vinson".into(),
        elems: vec![Elem {
            content: Some(Content::Text(TextElem { text: "hi".into() })),
        }],
        send_time_ms: 1_700_000_000_000,
        ..Default::default()
    }
}

#[test]
fn a_msg_id_that_cannot_be_a_header_value_collapses_by_its_digest() {
    let templates = Templates::english();
    for msg_id in ["m-1\r\napns-topic: evil", "m 1", "消息-1", "m\u{0}"] {
        let first = render_notification(&message(msg_id), Vendor::Apns, None, &templates);
        let again = render_notification(&message(msg_id), Vendor::Apns, None, &templates);
        assert!(is_header_safe(&first.collapse_id), "{msg_id:?}");
        assert_ne!(first.collapse_id, msg_id);
        assert_eq!(
            first.collapse_id, again.collapse_id,
            "copies still collapse"
        );
    }
    let plain = render_notification(&message("m-42"), Vendor::Apns, None, &templates);
    assert_eq!(
        plain.collapse_id, "m-42",
        "a header-safe msg_id is used as is"
    );
}
