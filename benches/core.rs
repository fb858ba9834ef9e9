//! decide + render + build per device, for every vendor: a one-line C2C text message and a
//! 10-element group message. Goal: under 5 µs per device.

// Start-up failures in a benchmark are bugs in the fixtures: panicking is the right report.
#![allow(clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use impush_config::Config;
use impush_core::{
    DeviceState, Templates, badge_for, build_payload, decide, render_notification, vendor,
};
use impush_proto::v1::{
    Elem, ImageElem, OfflineMessage, OfflinePushInfo, PresenceState, PushTarget, SoundElem,
    TextElem, elem::Content,
};

const NOW: i64 = 1_700_000_000_000;

fn text(s: &str) -> Elem {
    Elem {
        content: Some(Content::Text(TextElem { text: s.into() })),
    }
}

fn c2c_text() -> OfflineMessage {
    OfflineMessage {
        msg_id: "m-1".into(),
        sdk_app_id: 1400000001,
        sender_id: "denny".into(),
        sender_nickname: "Denny".into(),
        receiver_id: "vinson".into(),
        elems: vec![text("Are we still on for lunch at 12?")],
        push_info: Some(OfflinePushInfo {
            ext: r#"{"entity":{"action":1,"chatType":1,"sender":"denny"}}"#.into(),
            ..Default::default()
        }),
        send_time_ms: NOW,
        ..Default::default()
    }
}

fn group_ten_elems() -> OfflineMessage {
    let mut elems = Vec::new();
    for i in 0..10 {
        elems.push(match i % 3 {
            0 => text("Here is the plan for the offsite, see the pictures"),
            1 => Elem {
                content: Some(Content::Image(ImageElem {
                    url: "https://cdn.example/p.jpg".into(),
                })),
            },
            _ => Elem {
                content: Some(Content::Sound(SoundElem {
                    url: "https://cdn.example/v.m4a".into(),
                    seconds: 4,
                })),
            },
        });
    }
    OfflineMessage {
        msg_id: "g-1".into(),
        sdk_app_id: 1400000001,
        sender_id: "denny".into(),
        sender_nickname: "Denny".into(),
        group_id: "@TGS#team".into(),
        group_name: "Team".into(),
        sender_name_card: "Boss Denny".into(),
        elems,
        send_time_ms: NOW,
        ..Default::default()
    }
}

fn bench(c: &mut Criterion) {
    let config = Config::sample().expect("built-in sample config parses");
    let templates = Templates::english();
    for (label, message) in [
        ("c2c_text", c2c_text()),
        ("group_10_elems", group_ten_elems()),
    ] {
        let mut group = c.benchmark_group(format!("decide_render_build/{label}"));
        for vendor in vendor::ALL {
            let credential = config
                .credentials
                .values()
                .find(|c| c.vendor == vendor)
                .expect("a sample credential per vendor");
            let device = DeviceState {
                device_id: "phone-1".into(),
                vendor,
                business_id: credential.business_id,
                token: "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9".into(),
                presence: PresenceState::Background,
                unread: 3,
            };
            group.bench_function(vendor::name(vendor), |b| {
                b.iter(|| {
                    let message = black_box(&message);
                    decide(message, "vinson", &device, None, Some(credential), NOW)
                        .expect("the bench message is pushable");
                    let notification = render_notification(message, vendor, None, &templates);
                    let target = PushTarget {
                        user_id: "vinson".into(),
                        device_id: device.device_id.clone(),
                        token: device.token.clone(),
                        badge: badge_for(vendor, message, device.unread, 1),
                    };
                    black_box(build_payload(&notification, credential, &[target]))
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
