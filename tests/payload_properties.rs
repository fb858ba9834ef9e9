//! Properties that hold for any message, however long or odd its text (emoji, combining
//! marks, CJK, control characters): rendering and payload building never panic, the payload
//! is valid UTF-8, and it fits the vendor's size limit, for every vendor.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use impush_config::Config;
use impush_core::{Templates, badge_for, build_payload, payload, render_notification, vendor};
use impush_proto::v1::{
    AndroidNotifyMode, CallInvite, CustomElem, Elem, ImageElem, OfflineMessage, OfflinePushInfo,
    PushTarget, TextElem, elem::Content,
};
use proptest::prelude::*;

/// Text that stresses cutting: multi-code-point emoji, combining marks, CJK, RTL, controls.
fn odd_text(max: usize) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-zA-Z0-9 ]{1,8}",
        Just("👨\u{200d}👩\u{200d}👧".to_owned()),
        Just("e\u{301}\u{302}".to_owned()),
        Just("🇨🇳".to_owned()),
        "[\u{4e00}-\u{9fff}]{1,6}",
        "[\u{0600}-\u{06ff}]{1,4}",
        Just("\"\\\n\t&=%+,".to_owned()),
    ];
    prop::collection::vec(piece, 0..max).prop_map(|parts| parts.concat())
}

fn elem() -> impl Strategy<Value = Elem> {
    prop_oneof![
        odd_text(600).prop_map(|text| Content::Text(TextElem { text })),
        Just(Content::Image(ImageElem {
            url: "https://x/y.png".into()
        })),
        (odd_text(40), odd_text(40), odd_text(8)).prop_map(|(desc, ext, sound)| Content::Custom(
            CustomElem {
                data: vec![0xff, 0x00],
                desc,
                ext,
                sound,
            }
        )),
    ]
    .prop_map(|content| Elem {
        content: Some(content),
    })
}

fn message() -> impl Strategy<Value = OfflineMessage> {
    (
        odd_text(20),
        odd_text(20),
        odd_text(10),
        prop::bool::ANY,
        prop::collection::vec(elem(), 1..6),
        odd_text(30),
        odd_text(40),
        prop::option::of(0u32..120),
        prop::bool::ANY,
        prop::bool::ANY,
        (prop::bool::ANY, prop::bool::ANY),
    )
        .prop_map(
            |(
                nickname,
                card,
                group_name,
                is_group,
                elems,
                title,
                ext,
                ttl,
                call,
                pass_through,
                (content_available, mutable_content),
            )| OfflineMessage {
                msg_id: "m".into(),
                sdk_app_id: 1,
                sender_id: "s".into(),
                sender_nickname: nickname,
                receiver_id: if is_group { String::new() } else { "r".into() },
                group_id: if is_group { "g".into() } else { String::new() },
                group_name,
                sender_name_card: card,
                elems,
                push_info: Some(OfflinePushInfo {
                    title,
                    ext,
                    ttl_seconds: ttl.unwrap_or(0),
                    android_notify_mode: if pass_through {
                        AndroidNotifyMode::Custom
                    } else {
                        AndroidNotifyMode::Unspecified
                    } as i32,
                    ios_content_available: content_available,
                    ios_mutable_content: mutable_content,
                    ..Default::default()
                }),
                send_time_ms: 1_700_000_000_000,
                call: call.then(|| CallInvite {
                    call_id: "c".into(),
                    timeout_s: 30,
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_message_renders_to_a_payload_within_every_vendor_limit(
        message in message(),
        chinese in prop::bool::ANY,
        batch in 1usize..4,
    ) {
        let config = Config::sample().expect("sample config parses");
        let templates = if chinese { Templates::chinese() } else { Templates::english() };
        for vendor in vendor::ALL {
            let credential = config.credentials.values().find(|c| c.vendor == vendor)
                .expect("a sample credential per vendor");
            let notification = render_notification(&message, vendor, None, &templates);
            let count = batch.min(payload::max_batch(vendor));
            let targets: Vec<PushTarget> = (0..count).map(|i| PushTarget {
                user_id: format!("u{i}"),
                device_id: format!("d{i}"),
                token: format!("tok{i:060}"),
                badge: badge_for(vendor, &message, 7, 1),
            }).collect();
            let request = build_payload(&notification, credential, &targets);
            let request = match request {
                Ok(request) => request,
                Err(e) => return Err(TestCaseError::fail(format!("{}: {e}", vendor::name(vendor)))),
            };
            let bytes = request.body.to_bytes();
            prop_assert!(std::str::from_utf8(&bytes).is_ok());
            let limit = payload::limits(vendor, &notification).expect("a real vendor").max_bytes;
            let size = payload::measured_size(vendor, &request);
            prop_assert!(size <= limit, "{}: {} > {}", vendor::name(vendor), size, limit);
        }
    }
}
