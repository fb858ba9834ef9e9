//! Conversation receive options, @ mentions and quiet hours, one named case per rule:
//! `NOT_NOTIFY` mutes a conversation (mentions too), `NOT_NOTIFY_EXCEPT_AT` lets mentions
//! through, the quiet window (which may cross midnight) does the same for the whole account
//! and a conversation's `NOTIFY` does not lift it, and a mentioned recipient's body starts
//! with `[@me] ` or `[@all] ` on every vendor.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use impush_core::conversation::{conversation_of, in_quiet_window};
use impush_core::{
    Mention, Renders, SkipReason, Templates, decide_conversation, mention_of, render_for_recipient,
    vendor,
};
use impush_proto::v1::{
    Elem, OfflineMessage, PushSettings, ReceiveOption, TextElem, Vendor, elem::Content,
};

const HOUR_S: u32 = 3600;
const HOUR_MS: i64 = 3600 * 1000;
/// 2023-11-14 00:00:00 UTC.
const MIDNIGHT: i64 = 1_699_920_000_000;

fn text(s: &str) -> Elem {
    Elem {
        content: Some(Content::Text(TextElem { text: s.into() })),
    }
}

fn group_message(at_user_ids: &[&str], at_all: bool) -> OfflineMessage {
    OfflineMessage {
        msg_id: "g-1".into(),
        sdk_app_id: 1400000001,
        sender_id: "denny".into(),
        sender_nickname: "Denny".into(),
        group_id: "@TGS#team".into(),
        group_name: "Team".into(),
        member_ids: vec!["vinson".into(), "alice".into()],
        elems: vec![text("lunch?")],
        at_user_ids: at_user_ids.iter().map(|s| (*s).to_owned()).collect(),
        at_all,
        send_time_ms: MIDNIGHT,
        ..Default::default()
    }
}

fn c2c_message() -> OfflineMessage {
    OfflineMessage {
        msg_id: "m-1".into(),
        sdk_app_id: 1400000001,
        sender_id: "denny".into(),
        sender_nickname: "Denny".into(),
        receiver_id: "vinson".into(),
        elems: vec![text("hi")],
        send_time_ms: MIDNIGHT,
        ..Default::default()
    }
}

fn quiet(start_s: u32, duration_s: u32, option: ReceiveOption) -> PushSettings {
    PushSettings {
        quiet_start_s: start_s,
        quiet_duration_s: duration_s,
        quiet_option: option as i32,
        at_ms: 1,
        ..Default::default()
    }
}

#[test]
fn the_conversation_of_a_message_is_its_group_or_for_c2c_its_sender() {
    assert_eq!(
        conversation_of(&group_message(&[], false)),
        "group:@TGS#team"
    );
    assert_eq!(
        conversation_of(&c2c_message()),
        "c2c:denny",
        "the recipient's peer is the sender"
    );
}

#[test]
fn receive_options_per_conversation() {
    use ReceiveOption::*;
    let plain = group_message(&[], false);
    let named = group_message(&["vinson"], false);
    let other_named = group_message(&["alice"], false);
    let everyone = group_message(&[], true);
    let muted = Err(SkipReason::ConversationMuted);
    let cases = [
        ("no option means NOTIFY", Unspecified, &plain, Ok(())),
        ("NOTIFY pushes", Notify, &plain, Ok(())),
        ("NOT_NOTIFY mutes", NotNotify, &plain, muted),
        ("NOT_NOTIFY mutes mentions too", NotNotify, &named, muted),
        ("NOT_NOTIFY mutes @all too", NotNotify, &everyone, muted),
        (
            "NOT_NOTIFY_EXCEPT_AT mutes an unmentioned message",
            NotNotifyExceptAt,
            &plain,
            muted,
        ),
        (
            "NOT_NOTIFY_EXCEPT_AT lets a mention by name through",
            NotNotifyExceptAt,
            &named,
            Ok(()),
        ),
        (
            "NOT_NOTIFY_EXCEPT_AT lets @all through",
            NotNotifyExceptAt,
            &everyone,
            Ok(()),
        ),
        (
            "a mention of another member does not break through",
            NotNotifyExceptAt,
            &other_named,
            muted,
        ),
    ];
    for (rule, option, message, expected) in cases {
        assert_eq!(
            decide_conversation(message, "vinson", option, None, MIDNIGHT),
            expected,
            "{rule}"
        );
    }
}

#[test]
fn options_are_per_c2c_peer_and_per_group() {
    // The store hands the router the option of the message's own conversation; the same
    // recipient muting one peer or group leaves the others alone.
    let options = [
        ("c2c:denny", ReceiveOption::NotNotify),
        ("group:@TGS#team", ReceiveOption::Notify),
    ];
    let option_for = |message: &OfflineMessage| {
        let conversation = conversation_of(message);
        options
            .iter()
            .find(|(c, _)| *c == conversation)
            .map_or(ReceiveOption::Unspecified, |(_, o)| *o)
    };
    let c2c = c2c_message();
    let group = group_message(&[], false);
    let mut from_eve = c2c_message();
    from_eve.sender_id = "eve".into();
    assert_eq!(
        decide_conversation(&c2c, "vinson", option_for(&c2c), None, MIDNIGHT),
        Err(SkipReason::ConversationMuted),
        "denny is muted"
    );
    assert_eq!(
        decide_conversation(&from_eve, "vinson", option_for(&from_eve), None, MIDNIGHT),
        Ok(()),
        "eve is not"
    );
    assert_eq!(
        decide_conversation(&group, "vinson", option_for(&group), None, MIDNIGHT),
        Ok(()),
        "the group is not"
    );
}

#[test]
fn quiet_window_with_an_injected_clock() {
    let at = |hours: i64, minutes: i64| MIDNIGHT + hours * HOUR_MS + minutes * 60_000;
    let cases = [
        (
            "09:00 for 8 h holds 12:00",
            9 * HOUR_S,
            8 * HOUR_S,
            at(12, 0),
            true,
        ),
        (
            "its start is inside",
            9 * HOUR_S,
            8 * HOUR_S,
            at(9, 0),
            true,
        ),
        (
            "its end is outside",
            9 * HOUR_S,
            8 * HOUR_S,
            at(17, 0),
            false,
        ),
        (
            "before it is outside",
            9 * HOUR_S,
            8 * HOUR_S,
            at(8, 59),
            false,
        ),
        (
            "22:00 for 8 h crosses midnight: 23:30 is inside",
            22 * HOUR_S,
            8 * HOUR_S,
            at(23, 30),
            true,
        ),
        (
            "22:00 for 8 h crosses midnight: 03:00 next day is inside",
            22 * HOUR_S,
            8 * HOUR_S,
            at(27, 0),
            true,
        ),
        (
            "22:00 for 8 h: 06:00 is its end, outside",
            22 * HOUR_S,
            8 * HOUR_S,
            at(6, 0),
            false,
        ),
        (
            "22:00 for 8 h: 12:00 is outside",
            22 * HOUR_S,
            8 * HOUR_S,
            at(12, 0),
            false,
        ),
        ("a duration of 0 is no window", 0, 0, at(0, 0), false),
        (
            "a whole day always holds",
            5 * HOUR_S,
            24 * HOUR_S,
            at(3, 0),
            true,
        ),
        (
            "a start past a day wraps to the same time of day",
            (24 + 22) * HOUR_S,
            HOUR_S,
            at(22, 30),
            true,
        ),
    ];
    for (rule, start_s, duration_s, now_ms, inside) in cases {
        assert_eq!(
            in_quiet_window(start_s, duration_s, now_ms),
            inside,
            "{rule}"
        );
    }
}

#[test]
fn quiet_hours_and_their_precedence() {
    use ReceiveOption::*;
    let night = quiet(22 * HOUR_S, 8 * HOUR_S, NotNotify);
    let night_except_at = quiet(22 * HOUR_S, 8 * HOUR_S, NotNotifyExceptAt);
    let night_unset = quiet(22 * HOUR_S, 8 * HOUR_S, Unspecified);
    let at_night = MIDNIGHT + HOUR_MS;
    let at_noon = MIDNIGHT + 12 * HOUR_MS;
    let plain = group_message(&[], false);
    let named = group_message(&["vinson"], false);
    let everyone = group_message(&[], true);
    let quiet_hours = Err(SkipReason::QuietHours);
    let cases = [
        (
            "inside the window nothing is pushed",
            &plain,
            Unspecified,
            &night,
            at_night,
            quiet_hours,
        ),
        (
            "outside the window all is pushed",
            &plain,
            Unspecified,
            &night,
            at_noon,
            Ok(()),
        ),
        (
            "a NOT_NOTIFY window mutes mentions",
            &named,
            Unspecified,
            &night,
            at_night,
            quiet_hours,
        ),
        (
            "a NOT_NOTIFY_EXCEPT_AT window lets a mention through",
            &named,
            Unspecified,
            &night_except_at,
            at_night,
            Ok(()),
        ),
        (
            "a NOT_NOTIFY_EXCEPT_AT window lets @all through",
            &everyone,
            Unspecified,
            &night_except_at,
            at_night,
            Ok(()),
        ),
        (
            "a NOT_NOTIFY_EXCEPT_AT window keeps the rest",
            &plain,
            Unspecified,
            &night_except_at,
            at_night,
            quiet_hours,
        ),
        (
            "a window set without an option silences everything",
            &named,
            Unspecified,
            &night_unset,
            at_night,
            quiet_hours,
        ),
        (
            "a conversation's NOTIFY does not lift quiet hours",
            &plain,
            Notify,
            &night,
            at_night,
            quiet_hours,
        ),
        (
            "when both block, the conversation's reason is given",
            &plain,
            NotNotify,
            &night,
            at_night,
            Err(SkipReason::ConversationMuted),
        ),
        (
            "a mention let through by the conversation is still kept by a NOT_NOTIFY window",
            &named,
            NotNotifyExceptAt,
            &night,
            at_night,
            quiet_hours,
        ),
    ];
    for (rule, message, option, settings, now_ms, expected) in cases {
        assert_eq!(
            decide_conversation(message, "vinson", option, Some(settings), now_ms),
            expected,
            "{rule}"
        );
    }
}

#[test]
fn mentions_put_a_marker_before_the_body_on_every_vendor() {
    let templates = Templates::english();
    let cases = [
        (
            "named: [@me]",
            group_message(&["vinson"], false),
            Some(Mention::Me),
            "[@me] Denny (Team): lunch?",
        ),
        (
            "@all: [@all]",
            group_message(&[], true),
            Some(Mention::All),
            "[@all] Denny (Team): lunch?",
        ),
        (
            "named and @all: [@me]",
            group_message(&["vinson"], true),
            Some(Mention::Me),
            "[@me] Denny (Team): lunch?",
        ),
        (
            "another member named: no marker",
            group_message(&["alice"], false),
            None,
            "Denny (Team): lunch?",
        ),
    ];
    for (rule, message, mention, body) in cases {
        assert_eq!(mention_of(&message, "vinson"), mention, "{rule}");
        for vendor in vendor::ALL {
            let n = render_for_recipient(&message, vendor, None, &templates, mention);
            assert_eq!(n.body, body, "{rule} ({vendor:?})");
        }
    }
}

#[test]
fn the_chinese_templates_carry_their_own_markers() {
    let zh = Templates::chinese();
    let n = render_for_recipient(
        &group_message(&["vinson"], false),
        Vendor::Huawei,
        None,
        &zh,
        Some(Mention::Me),
    );
    assert_eq!(n.body, "[有人@我]Denny（Team）：lunch?");
    assert_eq!(Templates::english().recalled, "[message recalled]");
    assert!(!zh.recalled.is_empty());
}

#[test]
fn mentioned_and_unmentioned_members_do_not_share_a_render() {
    let message = group_message(&["vinson"], false);
    let templates = Templates::english();
    let mut renders = Renders::new(&message, &templates);
    let mentioned = renders.index_for(Vendor::Apns, None, Some(Mention::Me));
    let plain = renders.index_for(Vendor::Apns, None, None);
    assert_ne!(mentioned, plain);
    assert_eq!(renders.index(Vendor::Apns, None), plain);
    assert!(renders.get(mentioned).unwrap().body.starts_with("[@me] "));
}
