//! The offline-push rules of the IM documents, one named case per rule.
//!
//! Each table reads like the seed it comes from: "Users who have logged out normally or have
//! been forced offline will not receive any message notifications", "Nickname: content",
//! "Name (Group Name): content", "Custom Elem: display desc; if desc is not set, it will not
//! be pushed", and so on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use impush_core::{
    Channel, CredentialProfile, DeviceState, SkipReason, Templates, badge_for, channel, decide,
    render_notification,
};
use impush_proto::v1::{
    CallInvite, CallType, CustomElem, Elem, FaceElem, FileElem, ImageElem, IosPushType,
    LocationElem, MergerElem, OfflineMessage, OfflinePushInfo, OpenPush, PresenceState,
    PushSettings, SoundElem, TextElem, Vendor, VideoElem, elem::Content,
};

const NOW: i64 = 1_700_000_000_000;

fn text(s: &str) -> Elem {
    Elem {
        content: Some(Content::Text(TextElem { text: s.into() })),
    }
}

fn elem(content: Content) -> Elem {
    Elem {
        content: Some(content),
    }
}

fn custom(desc: &str, ext: &str) -> Elem {
    elem(Content::Custom(CustomElem {
        data: b"{\"kind\":\"order\"}".to_vec(),
        desc: desc.into(),
        ext: ext.into(),
        ..Default::default()
    }))
}

fn custom_with_sound(desc: &str, sound: &str) -> Elem {
    elem(Content::Custom(CustomElem {
        desc: desc.into(),
        sound: sound.into(),
        ..Default::default()
    }))
}

fn c2c(elems: Vec<Elem>) -> OfflineMessage {
    OfflineMessage {
        msg_id: "m-1".into(),
        sdk_app_id: 1400000001,
        sender_id: "denny".into(),
        sender_nickname: "Denny".into(),
        receiver_id: "vinson".into(),
        elems,
        send_time_ms: NOW - 1_000,
        ..Default::default()
    }
}

fn group(elems: Vec<Elem>) -> OfflineMessage {
    OfflineMessage {
        msg_id: "g-1".into(),
        sdk_app_id: 1400000001,
        sender_id: "denny".into(),
        sender_nickname: "Denny".into(),
        group_id: "@TGS#team".into(),
        group_name: "Team".into(),
        sender_name_card: "Boss Denny".into(),
        member_ids: vec!["vinson".into(), "denny".into()],
        elems,
        send_time_ms: NOW - 1_000,
        ..Default::default()
    }
}

fn with_info(mut m: OfflineMessage, info: OfflinePushInfo) -> OfflineMessage {
    m.push_info = Some(info);
    m
}

fn device(vendor: Vendor, presence: PresenceState) -> DeviceState {
    DeviceState {
        device_id: "phone".into(),
        vendor,
        business_id: 1,
        token: "abcdef0123".into(),
        presence,
        unread: 3,
    }
}

fn credential(vendor: Vendor) -> CredentialProfile {
    CredentialProfile::new(1, vendor)
}

fn body(m: &OfflineMessage) -> String {
    render_notification(m, Vendor::Apns, None, &Templates::english()).body
}

#[test]
fn presence_rules() {
    use PresenceState::*;
    let cases = [
        ("background devices get offline pushes", Background, Ok(())),
        (
            "disconnected (killed) apps get offline pushes",
            Disconnected,
            Ok(()),
        ),
        (
            "a device that never reported presence gets pushes",
            Unspecified,
            Ok(()),
        ),
        (
            "no push in the foreground: the app shows the message",
            Foreground,
            Err(SkipReason::Foreground),
        ),
        (
            "no push after an explicit logout",
            LoggedOut,
            Err(SkipReason::LoggedOut),
        ),
        (
            "no push after being kicked by another login",
            Kicked,
            Err(SkipReason::Kicked),
        ),
    ];
    let message = c2c(vec![text("hi")]);
    let cred = credential(Vendor::Apns);
    for (rule, presence, expected) in cases {
        let got = decide(
            &message,
            "vinson",
            &device(Vendor::Apns, presence),
            None,
            Some(&cred),
            NOW,
        );
        assert_eq!(got, expected, "{rule}");
    }
}

#[test]
fn push_switch_rules() {
    let cred = credential(Vendor::Fcm);
    let dev = device(Vendor::Fcm, PresenceState::Background);
    let settings = |open_push: OpenPush| PushSettings {
        open_push: open_push as i32,
        ..Default::default()
    };
    type Case = (
        &'static str,
        OfflineMessage,
        Option<PushSettings>,
        Result<(), SkipReason>,
    );
    let cases: [Case; 7] = [
        (
            "no settings: push is on",
            c2c(vec![text("hi")]),
            None,
            Ok(()),
        ),
        (
            "open_push unset: push is on",
            c2c(vec![text("hi")]),
            Some(settings(OpenPush::Unset)),
            Ok(()),
        ),
        (
            "open_push enabled: push is on",
            c2c(vec![text("hi")]),
            Some(settings(OpenPush::Enabled)),
            Ok(()),
        ),
        (
            "the user turned push off",
            c2c(vec![text("hi")]),
            Some(settings(OpenPush::Disabled)),
            Err(SkipReason::DisabledByUser),
        ),
        (
            "the sender disabled push for this message",
            with_info(
                c2c(vec![text("hi")]),
                OfflinePushInfo {
                    disable_push: true,
                    ..Default::default()
                },
            ),
            None,
            Err(SkipReason::DisabledByMessage),
        ),
        (
            "online-only messages are never pushed offline",
            OfflineMessage {
                online_user_only: true,
                ..c2c(vec![text("hi")])
            },
            None,
            Err(SkipReason::OnlineUserOnly),
        ),
        (
            "a message within its TTL is pushed",
            with_info(
                c2c(vec![text("hi")]),
                OfflinePushInfo {
                    ttl_seconds: 60,
                    ..Default::default()
                },
            ),
            None,
            Ok(()),
        ),
    ];
    for (rule, message, settings, expected) in cases {
        let got = decide(
            &message,
            "vinson",
            &dev,
            settings.as_ref(),
            Some(&cred),
            NOW,
        );
        assert_eq!(got, expected, "{rule}");
    }
    let stale = with_info(
        OfflineMessage {
            send_time_ms: NOW - 5_000,
            ..c2c(vec![text("hi")])
        },
        OfflinePushInfo {
            ttl_seconds: 2,
            ..Default::default()
        },
    );
    assert_eq!(
        decide(&stale, "vinson", &dev, None, Some(&cred), NOW),
        Err(SkipReason::Expired),
        "a message past its TTL is not pushed"
    );
}

#[test]
fn device_and_credential_rules() {
    let message = group(vec![text("hi")]);
    let dev = device(Vendor::Huawei, PresenceState::Background);
    let cred = CredentialProfile::new(1, Vendor::Huawei);
    assert_eq!(
        decide(&message, "denny", &dev, None, Some(&cred), NOW),
        Err(SkipReason::OwnMessage),
        "the sender is not notified of their own group message"
    );
    assert_eq!(
        decide(&message, "vinson", &dev, None, None, NOW),
        Err(SkipReason::NoCredential),
        "a device whose business_id has no credential"
    );
    let other = CredentialProfile::new(1, Vendor::Xiaomi);
    assert_eq!(
        decide(&message, "vinson", &dev, None, Some(&other), NOW),
        Err(SkipReason::NoCredential),
        "a credential of another vendor does not serve the device"
    );
    let no_token = DeviceState {
        token: String::new(),
        ..dev.clone()
    };
    assert_eq!(
        decide(&message, "vinson", &no_token, None, Some(&cred), NOW),
        Err(SkipReason::NoToken)
    );
}

#[test]
fn element_texts() {
    let cases = [
        (
            "text elem: the content directly",
            text("See you at 5"),
            "Denny: See you at 5",
        ),
        (
            "image elem: [image]",
            elem(Content::Image(ImageElem { url: "u".into() })),
            "Denny: [image]",
        ),
        (
            "voice elem: [voice]",
            elem(Content::Sound(SoundElem {
                url: "u".into(),
                seconds: 3,
            })),
            "Denny: [voice]",
        ),
        (
            "file elem: [file]",
            elem(Content::File(FileElem {
                name: "a.pdf".into(),
                url: "u".into(),
            })),
            "Denny: [file]",
        ),
        (
            "video elem: [video]",
            elem(Content::Video(VideoElem {
                url: "u".into(),
                seconds: 9,
            })),
            "Denny: [video]",
        ),
        (
            "location elem: [location]",
            elem(Content::Location(LocationElem {
                desc: "Office".into(),
                latitude: 1.0,
                longitude: 2.0,
            })),
            "Denny: [location]",
        ),
        (
            "face elem: [emoji]",
            elem(Content::Face(FaceElem {
                index: 3,
                data: vec![1],
            })),
            "Denny: [emoji]",
        ),
        (
            "merger elem: [chat history]",
            elem(Content::Merger(MergerElem { title: "t".into() })),
            "Denny: [chat history]",
        ),
        (
            "custom elem: its desc",
            custom("New order #5", ""),
            "Denny: New order #5",
        ),
    ];
    for (rule, e, expected) in cases {
        assert_eq!(body(&c2c(vec![e])), expected, "{rule}");
    }
}

#[test]
fn several_elements_are_joined_in_order() {
    let m = c2c(vec![
        text("Look"),
        elem(Content::Image(ImageElem::default())),
        text("!"),
    ]);
    assert_eq!(body(&m), "Denny: Look[image]!");
}

#[test]
fn c2c_and_group_formats() {
    let cases = [
        ("C2C: Nickname: content", c2c(vec![text("hi")]), "Denny: hi"),
        (
            "C2C without nickname: content alone",
            OfflineMessage {
                sender_nickname: String::new(),
                ..c2c(vec![text("hi")])
            },
            "hi",
        ),
        (
            "group: the name card comes first",
            group(vec![text("hi")]),
            "Boss Denny (Team): hi",
        ),
        (
            "group without name card: the nickname",
            OfflineMessage {
                sender_name_card: String::new(),
                ..group(vec![text("hi")])
            },
            "Denny (Team): hi",
        ),
        (
            "group with neither: no name is displayed",
            OfflineMessage {
                sender_name_card: String::new(),
                sender_nickname: String::new(),
                ..group(vec![text("hi")])
            },
            "(Team): hi",
        ),
    ];
    for (rule, m, expected) in cases {
        assert_eq!(body(&m), expected, "{rule}");
    }
}

#[test]
fn push_info_overrides() {
    let m = with_info(
        c2c(vec![text("secret text")]),
        OfflinePushInfo {
            title: "New message".into(),
            desc: "You have a message".into(),
            ..Default::default()
        },
    );
    let n = render_notification(&m, Vendor::Apns, None, &Templates::english());
    assert_eq!(n.title, "New message", "push_info.title sets the title");
    assert_eq!(
        n.body, "Denny: You have a message",
        "push_info.desc replaces the content"
    );

    let plain = render_notification(
        &c2c(vec![text("hi")]),
        Vendor::Apns,
        None,
        &Templates::english(),
    );
    assert_eq!(plain.title, "", "no title unless the sender sets one");
}

#[test]
fn custom_element_rules() {
    let cred = credential(Vendor::Apns);
    let dev = device(Vendor::Apns, PresenceState::Background);
    let only_custom = c2c(vec![custom("", "")]);
    assert_eq!(
        decide(&only_custom, "vinson", &dev, None, Some(&cred), NOW),
        Err(SkipReason::CustomWithoutDesc),
        "a custom-only message with no desc is not pushed"
    );
    let with_push_desc = with_info(
        only_custom.clone(),
        OfflinePushInfo {
            desc: "Order shipped".into(),
            ..Default::default()
        },
    );
    assert_eq!(
        decide(&with_push_desc, "vinson", &dev, None, Some(&cred), NOW),
        Ok(())
    );
    assert_eq!(
        body(&with_push_desc),
        "Denny: Order shipped",
        "custom elem shows push_info.desc first"
    );
    let with_own_desc = c2c(vec![custom("Order placed", "")]);
    assert_eq!(
        decide(&with_own_desc, "vinson", &dev, None, Some(&cred), NOW),
        Ok(())
    );
    assert_eq!(
        body(&with_own_desc),
        "Denny: Order placed",
        "else its own desc"
    );
    let mixed = c2c(vec![text("see"), custom("", "")]);
    assert_eq!(
        decide(&mixed, "vinson", &dev, None, Some(&cred), NOW),
        Ok(()),
        "text next to a silent custom elem"
    );
    assert_eq!(body(&mixed), "Denny: see");
    assert_eq!(
        decide(&c2c(vec![]), "vinson", &dev, None, Some(&cred), NOW),
        Err(SkipReason::EmptyContent),
        "nothing to show, nothing pushed"
    );
}

#[test]
fn ext_reaches_the_app_unchanged() {
    let ext = r#"{"entity":{"action":1,"chatType":1,"sender":"denny","nickname":"Denny"}}"#;
    let m = with_info(
        c2c(vec![text("hi")]),
        OfflinePushInfo {
            ext: ext.into(),
            ..Default::default()
        },
    );
    assert_eq!(
        render_notification(&m, Vendor::Fcm, None, &Templates::english()).ext,
        ext
    );
    let from_custom = c2c(vec![custom("Order", "jump to order 5")]);
    assert_eq!(
        render_notification(&from_custom, Vendor::Apns, None, &Templates::english()).ext,
        "jump to order 5",
        "the custom elem's ext when push_info has none"
    );
}

#[test]
fn sound_rules() {
    let settings = PushSettings {
        c2c_sound: "c2c.caf".into(),
        group_sound: "group.caf".into(),
        ..Default::default()
    };
    let info = |ios: &str, android: &str| OfflinePushInfo {
        ios_sound: ios.into(),
        android_sound: android.into(),
        ..Default::default()
    };
    let cases = [
        (
            "the message's iOS sound first",
            with_info(c2c(vec![text("x")]), info("ring.caf", "")),
            Vendor::Apns,
            Some(&settings),
            "ring.caf",
        ),
        (
            "the message's Android sound on Android",
            with_info(c2c(vec![text("x")]), info("ring.caf", "ding")),
            Vendor::Xiaomi,
            Some(&settings),
            "ding",
        ),
        (
            "else the user's C2C sound",
            c2c(vec![text("x")]),
            Vendor::Apns,
            Some(&settings),
            "c2c.caf",
        ),
        (
            "else the user's group sound for groups",
            group(vec![text("x")]),
            Vendor::Apns,
            Some(&settings),
            "group.caf",
        ),
        (
            "else the default sound",
            c2c(vec![text("x")]),
            Vendor::Apns,
            None,
            "default",
        ),
        (
            "push.no_sound mutes",
            with_info(c2c(vec![text("x")]), info("push.no_sound", "")),
            Vendor::Apns,
            Some(&settings),
            "",
        ),
    ];
    for (rule, m, vendor, settings, expected) in cases {
        assert_eq!(
            render_notification(&m, vendor, settings, &Templates::english()).sound,
            expected,
            "{rule}"
        );
    }
}

#[test]
fn custom_elem_sound_rules() {
    let settings = PushSettings {
        c2c_sound: "c2c.caf".into(),
        ..Default::default()
    };
    let ios_sound = OfflinePushInfo {
        ios_sound: "ring.caf".into(),
        ..Default::default()
    };
    let cases = [
        (
            "a custom element's own sound is the message's sound",
            c2c(vec![custom_with_sound("order shipped", "order.caf")]),
            Vendor::Apns,
            "order.caf",
        ),
        (
            "on Android too",
            c2c(vec![custom_with_sound("order shipped", "order.mp3")]),
            Vendor::Huawei,
            "order.mp3",
        ),
        (
            "before the user's own sound",
            c2c(vec![
                text("x"),
                custom_with_sound("order shipped", "order.caf"),
            ]),
            Vendor::Apns,
            "order.caf",
        ),
        (
            "after push_info's sound for the platform",
            with_info(
                c2c(vec![custom_with_sound("order shipped", "order.caf")]),
                ios_sound.clone(),
            ),
            Vendor::Apns,
            "ring.caf",
        ),
        (
            "push_info's iOS sound does not apply on Android: the element's does",
            with_info(
                c2c(vec![custom_with_sound("order shipped", "order.mp3")]),
                ios_sound,
            ),
            Vendor::Xiaomi,
            "order.mp3",
        ),
        (
            "push.no_sound in the element mutes",
            c2c(vec![custom_with_sound("order shipped", "push.no_sound")]),
            Vendor::Apns,
            "",
        ),
        (
            "a custom element without a sound leaves the user's",
            c2c(vec![custom("order shipped", "")]),
            Vendor::Apns,
            "c2c.caf",
        ),
    ];
    for (rule, m, vendor, expected) in cases {
        assert_eq!(
            render_notification(&m, vendor, Some(&settings), &Templates::english()).sound,
            expected,
            "{rule}"
        );
    }
}

fn tpns(
    business_id: u64,
    sdk_app_id: u32,
    bundle_id: &str,
    package_name: &str,
) -> CredentialProfile {
    CredentialProfile {
        sdk_app_id,
        bundle_id: bundle_id.into(),
        package_name: package_name.into(),
        ..CredentialProfile::new(business_id, Vendor::Tpns)
    }
}

#[test]
fn tpns_token_routing_rules() {
    let credentials: HashMap<u64, CredentialProfile> = [
        CredentialProfile::new(1, Vendor::Apns),
        CredentialProfile::new(4, Vendor::Xiaomi),
        tpns(8, 1400000001, "com.example.im", ""),
        tpns(18, 1400000001, "", "com.example.im"),
        tpns(28, 1400000002, "com.example.other", "com.example.other"),
        tpns(38, 0, "com.example.unbound", ""),
    ]
    .into_iter()
    .map(|c| (c.business_id, c))
    .collect();
    let registered = |vendor: Vendor, business_id: u64| DeviceState {
        business_id,
        ..device(vendor, PresenceState::Background)
    };
    // (rule, sdk_app_id, device vendor, device business_id, is_tpns_token,
    //  channel vendor, business_id, platform)
    let cases = [
        (
            "a vendor token goes through its own vendor",
            1400000001,
            Vendor::Apns,
            1,
            false,
            Vendor::Apns,
            1,
            Vendor::Apns,
        ),
        (
            "an iPhone's TPNS token with business_id 0: the app's iOS TPNS credential, iOS rules",
            1400000001,
            Vendor::Apns,
            0,
            true,
            Vendor::Tpns,
            8,
            Vendor::Apns,
        ),
        (
            "an Android TPNS token with business_id 0: the app's Android TPNS credential",
            1400000001,
            Vendor::Xiaomi,
            0,
            true,
            Vendor::Tpns,
            18,
            Vendor::Tpns,
        ),
        (
            "whatever the device's vendor business_id names, a TPNS token goes through TPNS",
            1400000001,
            Vendor::Xiaomi,
            4,
            true,
            Vendor::Tpns,
            18,
            Vendor::Tpns,
        ),
        (
            "a business_id naming a TPNS credential is that credential",
            1400000001,
            Vendor::Apns,
            28,
            true,
            Vendor::Tpns,
            28,
            Vendor::Apns,
        ),
        (
            "a credential serving both platforms serves either",
            1400000002,
            Vendor::Oppo,
            0,
            true,
            Vendor::Tpns,
            28,
            Vendor::Tpns,
        ),
        (
            "an app without a TPNS credential: none (skipped as no_credential)",
            1400000003,
            Vendor::Apns,
            0,
            true,
            Vendor::Tpns,
            0,
            Vendor::Apns,
        ),
    ];
    for (rule, app, vendor, business_id, is_tpns, channel_vendor, channel_id, platform) in cases {
        let device = registered(vendor, business_id);
        let got = channel(app, &device, is_tpns, &credentials);
        assert_eq!(
            got,
            Channel {
                vendor: channel_vendor,
                business_id: channel_id,
                platform,
            },
            "{rule}"
        );
        let routed = DeviceState {
            vendor: got.vendor,
            business_id: got.business_id,
            ..device
        };
        let decided = decide(
            &c2c(vec![text("x")]),
            "vinson",
            &routed,
            None,
            credentials.get(&got.business_id),
            NOW,
        );
        let expected = if channel_id == 0 {
            Err(SkipReason::NoCredential)
        } else {
            Ok(())
        };
        assert_eq!(decided, expected, "{rule}");
    }
}

#[test]
fn tpns_on_an_iphone_follows_the_ios_rules() {
    let m = with_info(
        c2c(vec![text("x")]),
        OfflinePushInfo {
            ios_sound: "ring.caf".into(),
            android_sound: "beep.mp3".into(),
            ..Default::default()
        },
    );
    // (platform of the TPNS device, sound, badge, ios_device)
    let cases = [
        (Vendor::Apns, "ring.caf", Some(4), true),
        (Vendor::Tpns, "beep.mp3", None, false),
    ];
    for (platform, sound, badge, ios_device) in cases {
        let n = render_notification(&m, platform, None, &Templates::english());
        assert_eq!(n.sound, sound, "{platform:?}");
        assert_eq!(n.ios_device, ios_device, "{platform:?}");
        assert_eq!(badge_for(platform, &m, 3, 1), badge, "{platform:?}");
    }
}

#[test]
fn badge_rules() {
    let m = c2c(vec![text("x")]);
    assert_eq!(
        badge_for(Vendor::Apns, &m, 3, 1),
        Some(4),
        "reported unread plus this push"
    );
    assert_eq!(
        badge_for(Vendor::Apns, &m, 3, 3),
        Some(6),
        "plus one per push since the report"
    );
    assert_eq!(
        badge_for(Vendor::Apns, &m, u32::MAX, 2),
        Some(u32::MAX),
        "never overflows"
    );
    assert_eq!(
        badge_for(Vendor::Fcm, &m, 3, 1),
        None,
        "Android devices carry no badge number"
    );
    let ignore = with_info(
        m,
        OfflinePushInfo {
            ignore_ios_badge: true,
            ..Default::default()
        },
    );
    assert_eq!(
        badge_for(Vendor::Apns, &ignore, 3, 1),
        None,
        "ignore_ios_badge leaves the badge out"
    );
}

#[test]
fn call_invitation_rules() {
    let call = |timeout_s: u32, call_type: CallType| CallInvite {
        call_id: "call-1".into(),
        timeout_s,
        room_id: "42".into(),
        call_type: call_type as i32,
    };
    let cred = credential(Vendor::Apns);
    let dev = device(Vendor::Apns, PresenceState::Background);
    let ringing = OfflineMessage {
        call: Some(call(30, CallType::Video)),
        ..c2c(vec![])
    };
    assert_eq!(
        decide(&ringing, "vinson", &dev, None, Some(&cred), NOW),
        Ok(())
    );
    let n = render_notification(&ringing, Vendor::Apns, None, &Templates::english());
    assert_eq!(
        n.ios_push_type(),
        IosPushType::Voip,
        "calls go as VoIP pushes"
    );
    assert_eq!(
        n.expires_at_ms,
        ringing.send_time_ms + 30_000,
        "a call push expires with its ring time"
    );
    assert_eq!(n.body, "Denny: [video call]");
    assert!(n.is_call);

    let late = OfflineMessage {
        send_time_ms: NOW - 31_000,
        ..ringing.clone()
    };
    assert_eq!(
        decide(&late, "vinson", &dev, None, Some(&cred), NOW),
        Err(SkipReason::CallExpired),
        "a call is never delivered after it stopped ringing"
    );
    let plain = with_info(
        ringing,
        OfflinePushInfo {
            ios_push_type: IosPushType::Apns as i32,
            ..Default::default()
        },
    );
    assert_eq!(
        render_notification(&plain, Vendor::Apns, None, &Templates::english()).ios_push_type(),
        IosPushType::Apns,
        "the sender may ask for a plain alert"
    );
}

#[test]
fn chinese_templates() {
    let zh = Templates::chinese();
    let m = group(vec![
        text("你好"),
        elem(Content::Image(ImageElem::default())),
    ]);
    assert_eq!(
        render_notification(&m, Vendor::Huawei, None, &zh).body,
        "Boss Denny（Team）：你好[图片]"
    );
    let c = c2c(vec![elem(Content::Sound(SoundElem::default()))]);
    assert_eq!(
        render_notification(&c, Vendor::Huawei, None, &zh).body,
        "Denny：[语音]"
    );
    let loc = c2c(vec![elem(Content::Location(LocationElem::default()))]);
    assert_eq!(
        render_notification(&loc, Vendor::Huawei, None, &zh).body,
        "Denny：[位置]"
    );
}

#[test]
fn conversation_keys_group_threads() {
    let c = render_notification(
        &c2c(vec![text("x")]),
        Vendor::Apns,
        None,
        &Templates::english(),
    );
    assert_eq!(c.conversation, "c2c:denny");
    let g = render_notification(
        &group(vec![text("x")]),
        Vendor::Apns,
        None,
        &Templates::english(),
    );
    assert_eq!(g.conversation, "group:@TGS#team");
    assert!(g.is_group);
}

#[test]
fn only_copies_of_one_message_share_a_collapse_id() {
    let render =
        |m: &OfflineMessage| render_notification(m, Vendor::Apns, None, &Templates::english());
    let a = c2c(vec![text("x")]);
    let b = OfflineMessage {
        msg_id: "m-2".into(),
        ..a.clone()
    };
    assert_eq!(render(&a).collapse_id, "m-1");
    assert_ne!(render(&a).collapse_id, render(&b).collapse_id);
    let long = OfflineMessage {
        msg_id: "x".repeat(100),
        ..a.clone()
    };
    let id = render(&long).collapse_id;
    assert!(id.len() <= 64, "APNs takes at most 64 bytes: {id}");
    assert_eq!(id, render(&long).collapse_id, "stable");
}
