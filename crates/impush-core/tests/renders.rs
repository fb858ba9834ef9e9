//! `Renders`: one render per distinct (vendor, user sound) of a message, never a different
//! notification than rendering each device on its own would give.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use impush_core::{Renders, Templates, render_notification, vendor};
use impush_proto::v1::elem::Content;
use impush_proto::v1::{Elem, OfflineMessage, OfflinePushInfo, PushSettings, TextElem, Vendor};

const VENDORS: [Vendor; vendor::ALL.len()] = vendor::ALL;

fn message(group: bool, push_info: Option<OfflinePushInfo>) -> OfflineMessage {
    OfflineMessage {
        msg_id: "m-1".into(),
        sdk_app_id: 1400000001,
        sender_id: "denny".into(),
        sender_nickname: "Denny".into(),
        receiver_id: if group {
            String::new()
        } else {
            "vinson".into()
        },
        group_id: if group {
            "@TGS#team".into()
        } else {
            String::new()
        },
        group_name: "Team".into(),
        elems: vec![Elem {
            content: Some(Content::Text(TextElem {
                text: "hello".into(),
            })),
        }],
        push_info,
        ..Default::default()
    }
}

fn settings(c2c_sound: &str, group_sound: &str) -> Option<PushSettings> {
    Some(PushSettings {
        c2c_sound: c2c_sound.into(),
        group_sound: group_sound.into(),
        at_ms: 5,
        ..Default::default()
    })
}

fn all_settings() -> Vec<Option<PushSettings>> {
    vec![
        None,
        settings("", ""),
        settings("ring.caf", ""),
        settings("", "bell.caf"),
        settings("ring.caf", "bell.caf"),
        settings("push.no_sound", "push.no_sound"),
    ]
}

#[test]
fn a_shared_render_equals_rendering_the_device_on_its_own() {
    let templates = Templates::english();
    let infos = [
        None,
        Some(OfflinePushInfo {
            ios_sound: "call.caf".into(),
            android_sound: "call".into(),
            ..Default::default()
        }),
    ];
    for group in [false, true] {
        for info in &infos {
            let m = message(group, info.clone());
            let mut renders = Renders::new(&m, &templates);
            // Twice over, so the second pass reads from what the first one rendered.
            for _ in 0..2 {
                for vendor in VENDORS {
                    for s in all_settings() {
                        let i = renders.index(vendor, s.as_ref());
                        let own = render_notification(&m, vendor, s.as_ref(), &templates);
                        assert_eq!(renders.get(i), Some(&own), "{vendor:?} {s:?} group={group}");
                    }
                }
            }
        }
    }
}

#[test]
fn devices_share_an_index_exactly_when_their_notifications_are_equal() {
    let templates = Templates::english();
    let m = message(true, None);
    let mut renders = Renders::new(&m, &templates);
    let mut seen = Vec::new();
    for vendor in VENDORS {
        for s in all_settings() {
            let own = render_notification(&m, vendor, s.as_ref(), &templates);
            seen.push((renders.index(vendor, s.as_ref()), own));
        }
    }
    for (i, a) in &seen {
        for (j, b) in &seen {
            assert_eq!(
                i == j,
                a == b,
                "index equality follows notification equality"
            );
        }
    }
    // The group sound matters to a group message; the c2c sound does not.
    assert_eq!(
        renders.index(Vendor::Fcm, settings("ring.caf", "").as_ref()),
        renders.index(Vendor::Fcm, None)
    );
    assert_ne!(
        renders.index(Vendor::Fcm, settings("", "bell.caf").as_ref()),
        renders.index(Vendor::Fcm, None)
    );
}
