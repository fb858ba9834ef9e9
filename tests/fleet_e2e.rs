//! The fleet end to end on the real RabbitMQ and Redis: state events in, offline messages
//! in, and what the vendor simulators received out. Each test runs its own fleet of
//! processes under a unique queue and key prefix.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fleet;

use std::collections::HashMap;
use std::time::Duration;

use fleet::{APP, Fleet, FleetOptions, apns_token, now_ms, presence, register, text_message};
use impush_proto::Event;
use impush_proto::v1::{OpenPush, PresenceState, PushSettings, TokenInvalidated, Vendor};
use prost::Message;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

fn tokens(deliveries: &[Value]) -> Vec<String> {
    let mut tokens: Vec<String> = deliveries
        .iter()
        .map(|d| d["token"].as_str().unwrap_or_default().to_owned())
        .collect();
    tokens.sort();
    tokens
}

/// Publishes, then gives the fleet a moment to do anything it should not.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_rules_decide_which_devices_get_the_push() {
    let fleet = Fleet::start(FleetOptions::default()).await;
    let t = now_ms() - 10_000;
    let cases = [
        ("background", PresenceState::Background, true),
        ("disconnected", PresenceState::Disconnected, true),
        ("foreground", PresenceState::Foreground, false),
        ("logged-out", PresenceState::LoggedOut, false),
        ("kicked", PresenceState::Kicked, false),
    ];
    let mut events = Vec::new();
    for (i, (device, state, _)) in cases.iter().enumerate() {
        events.push(register(
            "vinson",
            device,
            Vendor::Apns,
            &apns_token(i as u32),
            t,
        ));
        events.push(presence("vinson", device, *state, 0, t + 1));
    }
    // A second user turned push off entirely.
    events.push(register("mia", "phone", Vendor::Fcm, "fcm-token-mia", t));
    events.push(Event::PushSettings(PushSettings {
        sdk_app_id: APP,
        user_id: "mia".into(),
        open_push: OpenPush::Disabled as i32,
        at_ms: t,
        ..Default::default()
    }));
    fleet.publish(events).await;
    settle().await;
    fleet
        .publish(vec![
            Event::OfflineMessage(text_message("m-presence", "denny", "vinson", "hi")),
            Event::OfflineMessage(text_message("m-off", "denny", "mia", "hi")),
        ])
        .await;

    let expected: Vec<String> = cases
        .iter()
        .enumerate()
        .filter(|(_, c)| c.2)
        .map(|(i, _)| apns_token(i as u32))
        .collect();
    fleet
        .wait_deliveries(WAIT, |d| d.len() >= expected.len())
        .await;
    settle().await;
    let deliveries = fleet.deliveries(None).await;
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    assert_eq!(
        tokens(&deliveries),
        expected_sorted,
        "only background and disconnected devices"
    );
    assert_eq!(deliveries[0]["body"], "DENNY: hi");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_badge_counts_unread_plus_pushes_since_background() {
    let fleet = Fleet::start(FleetOptions::default()).await;
    let t = now_ms() - 10_000;
    let token = apns_token(7);
    fleet
        .publish(vec![
            register("vinson", "iphone", Vendor::Apns, &token, t),
            presence("vinson", "iphone", PresenceState::Background, 3, t + 1),
        ])
        .await;
    settle().await;
    for i in 0..3 {
        fleet
            .publish(vec![Event::OfflineMessage(text_message(
                &format!("m-badge-{i}"),
                "denny",
                "vinson",
                "hi",
            ))])
            .await;
        fleet.wait_deliveries(WAIT, |d| d.len() > i).await;
    }
    let badges: Vec<i64> = fleet
        .deliveries(Some("apns"))
        .await
        .iter()
        .map(|d| d["badge"].as_i64().unwrap())
        .collect();
    assert_eq!(badges, [4, 5, 6]);

    // A new BACKGROUND report starts the count again from the reported unread.
    fleet
        .publish(vec![presence(
            "vinson",
            "iphone",
            PresenceState::Background,
            1,
            t + 2,
        )])
        .await;
    settle().await;
    fleet
        .publish(vec![Event::OfflineMessage(text_message(
            "m-badge-3",
            "denny",
            "vinson",
            "hi",
        ))])
        .await;
    let deliveries = fleet.wait_deliveries(WAIT, |d| d.len() == 4).await;
    assert_eq!(deliveries[3]["badge"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_message_fans_out_to_every_member_but_the_sender() {
    let fleet = Fleet::start(FleetOptions::default()).await;
    let t = now_ms() - 10_000;
    let mut events = Vec::new();
    let members: Vec<String> = (0..60).map(|i| format!("member-{i}")).collect();
    for (i, member) in members.iter().enumerate() {
        let (vendor, token) = if i % 2 == 0 {
            (Vendor::Apns, apns_token(1000 + i as u32))
        } else {
            (Vendor::Fcm, format!("fcm-{i}"))
        };
        events.push(register(member, "phone", vendor, &token, t));
        events.push(presence(
            member,
            "phone",
            PresenceState::Background,
            0,
            t + 1,
        ));
    }
    fleet.publish(events).await;
    settle().await;
    let mut message = text_message("m-group", "member-0", "", "lunch?");
    message.group_id = "@TGS#team".into();
    message.group_name = "Team".into();
    message.sender_name_card = "Boss".into();
    message.member_ids = members.clone();
    fleet.publish(vec![Event::OfflineMessage(message)]).await;
    fleet.wait_deliveries(WAIT, |d| d.len() >= 59).await;
    settle().await;
    let deliveries = fleet.deliveries(None).await;
    assert_eq!(deliveries.len(), 59, "everyone but the sender, once");
    assert!(
        !tokens(&deliveries).contains(&apns_token(1000)),
        "the sender is not notified"
    );
    assert!(
        deliveries
            .iter()
            .all(|d| d["body"] == "Boss (Team): lunch?")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_events_out_of_order_and_repeated_keep_the_newest() {
    let fleet = Fleet::start(FleetOptions::default()).await;
    let t = now_ms() - 10_000;
    let old = apns_token(1);
    let new = apns_token(2);
    fleet
        .publish(vec![
            register("vinson", "iphone", Vendor::Apns, &new, t + 20),
            register("vinson", "iphone", Vendor::Apns, &old, t + 10),
            register("vinson", "iphone", Vendor::Apns, &new, t + 20),
            presence("vinson", "iphone", PresenceState::Background, 0, t + 30),
            presence("vinson", "iphone", PresenceState::Foreground, 0, t + 25),
        ])
        .await;
    settle().await;
    fleet
        .publish(vec![Event::OfflineMessage(text_message(
            "m-order", "denny", "vinson", "hi",
        ))])
        .await;
    let deliveries = fleet.wait_deliveries(WAIT, |d| !d.is_empty()).await;
    settle().await;
    assert_eq!(
        tokens(&fleet.deliveries(None).await),
        vec![new],
        "{deliveries:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_token_removes_the_device_and_tells_im_core() {
    let fleet = Fleet::start(FleetOptions::default()).await;
    // IM core's own queue for token feedback.
    let channel = fleet.connection().create_channel().await.unwrap();
    let feedback = format!("{}.test.feedback", fleet.prefix);
    channel
        .queue_declare(
            feedback.as_str().into(),
            Default::default(),
            Default::default(),
        )
        .await
        .unwrap();
    channel
        .queue_bind(
            feedback.as_str().into(),
            fleet.topology.events_exchange().as_str().into(),
            "feedback.token".into(),
            Default::default(),
            Default::default(),
        )
        .await
        .unwrap();

    let t = now_ms() - 10_000;
    fleet
        .publish(vec![
            register("vinson", "android", Vendor::Fcm, "invalid-dead-token", t),
            presence("vinson", "android", PresenceState::Background, 0, t + 1),
            register("vinson", "iphone", Vendor::Apns, &apns_token(9), t),
            presence("vinson", "iphone", PresenceState::Background, 0, t + 1),
        ])
        .await;
    settle().await;
    fleet
        .publish(vec![Event::OfflineMessage(text_message(
            "m-inv-1", "denny", "vinson", "hi",
        ))])
        .await;
    fleet.wait_deliveries(WAIT, |d| d.len() == 1).await;

    let deadline = std::time::Instant::now() + WAIT;
    let feedback_events = loop {
        let got = fleet.drain(&feedback).await;
        if !got.is_empty() {
            break got;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no feedback.token event"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let event = TokenInvalidated::decode(feedback_events[0].data.as_slice()).unwrap();
    assert_eq!(event.token, "invalid-dead-token");
    assert_eq!(event.device_id, "android");
    assert_eq!(event.vendor, Vendor::Fcm as i32);
    assert_eq!(event.business_id, 2);
    assert_eq!(event.reason, "UNREGISTERED");

    // The registration is gone: the next message goes to the iPhone only, and the router
    // does not even build a job for the dead token.
    fleet
        .publish(vec![Event::OfflineMessage(text_message(
            "m-inv-2", "denny", "vinson", "again",
        ))])
        .await;
    fleet.wait_deliveries(WAIT, |d| d.len() == 2).await;
    settle().await;
    assert!(
        fleet.drain(&feedback).await.is_empty(),
        "the dead token was not tried again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_vendor_failures_are_retried_then_delivered_once() {
    let fleet = Fleet::start(FleetOptions {
        // The retry ladder on quorum queues (the default type): per-message TTL and
        // at-least-once dead-lettering back to the work queue.
        queue_type: "quorum",
        ..FleetOptions::default()
    })
    .await;
    let t = now_ms() - 10_000;
    let token = apns_token(3);
    fleet
        .publish(vec![
            register("vinson", "iphone", Vendor::Apns, &token, t),
            presence("vinson", "iphone", PresenceState::Background, 0, t + 1),
            register("vinson", "android", Vendor::Fcm, "fcm-retry", t),
            presence("vinson", "android", PresenceState::Background, 0, t + 1),
        ])
        .await;
    settle().await;
    fleet
        .fault(json!({"vendor": "apns", "status": 503, "reason": "ServiceUnavailable", "times": 2}))
        .await;
    fleet.fault(json!({"vendor": "fcm", "status": 429, "reason": "QUOTA_EXCEEDED", "retry_after_s": 1, "times": 1})).await;
    fleet
        .publish(vec![Event::OfflineMessage(text_message(
            "m-retry", "denny", "vinson", "hi",
        ))])
        .await;
    fleet.wait_deliveries(WAIT, |d| d.len() >= 2).await;
    settle().await;
    let deliveries = fleet.deliveries(None).await;
    let mut expected = vec!["fcm-retry".to_owned(), token];
    expected.sort();
    assert_eq!(tokens(&deliveries), expected, "each delivered exactly once");
    let metrics = fleet.metrics("sender-apns").await;
    assert!(metrics.contains("impush_retries_total"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_error_dead_letters_the_push_with_its_reason() {
    let fleet = Fleet::start(FleetOptions::default()).await;
    let t = now_ms() - 10_000;
    let token = apns_token(4);
    fleet
        .publish(vec![
            register("vinson", "iphone", Vendor::Apns, &token, t),
            presence("vinson", "iphone", PresenceState::Background, 0, t + 1),
        ])
        .await;
    settle().await;
    fleet
        .fault(json!({"vendor": "apns", "status": 400, "reason": "BadTopic", "times": 1}))
        .await;
    fleet
        .publish(vec![Event::OfflineMessage(text_message(
            "m-dlq", "denny", "vinson", "hi",
        ))])
        .await;

    let dlq = fleet.topology.dlq(Vendor::Apns);
    let dead = fleet.wait_drain(&dlq, WAIT).await;
    assert_eq!(dead.len(), 1);
    let properties = &dead[0].properties;
    assert_eq!(
        impush_amqp::header_str(properties, impush_amqp::headers::REASON),
        Some("BadTopic")
    );
    assert_eq!(
        impush_amqp::header_u64(properties, impush_amqp::headers::STATUS),
        Some(400)
    );
    assert_eq!(
        impush_amqp::header_u64(properties, impush_amqp::headers::ATTEMPTS),
        Some(1)
    );
    let job = impush_proto::v1::PushJob::decode(dead[0].data.as_slice()).unwrap();
    assert_eq!(job.msg_id, "m-dlq");
    assert_eq!(job.targets[0].token, token);
    assert!(fleet.deliveries(None).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_event_is_dead_lettered_and_the_worker_keeps_going() {
    let fleet = Fleet::start(FleetOptions::default()).await;
    let t = now_ms() - 10_000;
    fleet
        .publish(vec![
            register("vinson", "iphone", Vendor::Apns, &apns_token(5), t),
            presence("vinson", "iphone", PresenceState::Background, 0, t + 1),
        ])
        .await;
    settle().await;
    fleet
        .publish_raw(
            "message.offline",
            "OfflineMessage",
            vec![0xff, 0xff, 0xff, 0x01],
        )
        .await;
    fleet
        .publish_raw("state.device", "NoSuchEvent", b"junk".to_vec())
        .await;
    fleet
        .publish(vec![Event::OfflineMessage(text_message(
            "m-after-junk",
            "denny",
            "vinson",
            "still here",
        ))])
        .await;
    fleet.wait_deliveries(WAIT, |d| d.len() == 1).await;

    let deadline = std::time::Instant::now() + WAIT;
    let mut dead = Vec::new();
    while dead.len() < 2 {
        dead.extend(fleet.drain(&fleet.topology.events_dlq()).await);
        assert!(
            std::time::Instant::now() < deadline,
            "expected two dead letters, got {}",
            dead.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut reasons: Vec<&str> = dead
        .iter()
        .map(|d| impush_amqp::header_str(&d.properties, impush_amqp::headers::REASON).unwrap())
        .collect();
    reasons.sort();
    assert_eq!(reasons, ["undecodable", "undecodable"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_event_published_twice_notifies_once() {
    let fleet = Fleet::start(FleetOptions::default()).await;
    let t = now_ms() - 10_000;
    fleet
        .publish(vec![
            register("vinson", "iphone", Vendor::Apns, &apns_token(6), t),
            presence("vinson", "iphone", PresenceState::Background, 2, t + 1),
            register("vinson", "android", Vendor::Fcm, "fcm-dup", t),
            presence("vinson", "android", PresenceState::Background, 0, t + 1),
        ])
        .await;
    settle().await;
    let message = Event::OfflineMessage(text_message("m-dup", "denny", "vinson", "once"));
    fleet.publish(vec![message.clone()]).await;
    fleet.publish(vec![message]).await;
    fleet.wait_deliveries(WAIT, |d| d.len() >= 2).await;
    settle().await;
    let deliveries = fleet.deliveries(None).await;
    assert_eq!(deliveries.len(), 2, "{deliveries:#?}");
    let apns = deliveries.iter().find(|d| d["vendor"] == "apns").unwrap();
    assert_eq!(apns["badge"], 3, "the badge counted the message once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_killed_mid_batch_and_restarted_loses_nothing() {
    let concurrency = 8;
    let mut fleet = Fleet::start(FleetOptions {
        vendors: vec![Vendor::Fcm],
        sender_concurrency: concurrency,
        ..FleetOptions::default()
    })
    .await;
    let t = now_ms() - 10_000;
    let users = 300;
    let mut events = Vec::new();
    for i in 0..users {
        let user = format!("user-{i}");
        events.push(register(
            &user,
            "phone",
            Vendor::Fcm,
            &format!("fcm-{i}"),
            t,
        ));
        events.push(presence(
            &user,
            "phone",
            PresenceState::Background,
            0,
            t + 1,
        ));
    }
    fleet.publish(events).await;
    settle().await;
    // Slow the vendor down so the kill lands mid-stream.
    fleet
        .fault(json!({"vendor": "fcm", "delay_ms": 50, "times": 1_000_000}))
        .await;
    let messages: Vec<Event> = (0..users)
        .map(|i| {
            Event::OfflineMessage(text_message(
                &format!("m-kill-{i}"),
                "denny",
                &format!("user-{i}"),
                "hi",
            ))
        })
        .collect();
    fleet.publish(messages).await;
    fleet.wait_deliveries(WAIT, |d| d.len() >= 30).await;
    fleet.kill9("sender-fcm");
    let at_kill = fleet.deliveries(None).await.len();
    assert!(
        at_kill < users,
        "the kill should land mid-stream ({at_kill} of {users} delivered)"
    );
    fleet.spawn_named("sender-fcm", "impush-sender", &["--vendor", "fcm"]);
    fleet.wait_ready("sender-fcm").await;
    fleet
        .wait_deliveries(Duration::from_secs(60), |d| {
            let distinct: std::collections::HashSet<&str> =
                d.iter().filter_map(|x| x["token"].as_str()).collect();
            distinct.len() >= users
        })
        .await;
    settle().await;
    let deliveries = fleet.deliveries(None).await;
    let mut per_token: HashMap<String, usize> = HashMap::new();
    for d in &deliveries {
        *per_token
            .entry(d["token"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(per_token.len(), users, "every device got its notification");
    let duplicates: usize = per_token.values().map(|n| n - 1).sum();
    // The documented window: a push the vendor accepted just before the kill, whose
    // deduplication record was not yet written, is sent again; at most one per job in flight.
    assert!(
        duplicates <= concurrency,
        "{duplicates} duplicates exceed the {concurrency} jobs in flight"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_work_and_exits_cleanly() {
    let mut fleet = Fleet::start(FleetOptions {
        vendors: vec![Vendor::Fcm],
        ..FleetOptions::default()
    })
    .await;
    let t = now_ms() - 10_000;
    let mut events = Vec::new();
    for i in 0..40 {
        let user = format!("user-{i}");
        events.push(register(
            &user,
            "phone",
            Vendor::Fcm,
            &format!("fcm-{i}"),
            t,
        ));
        events.push(presence(
            &user,
            "phone",
            PresenceState::Background,
            0,
            t + 1,
        ));
    }
    fleet.publish(events).await;
    settle().await;
    fleet
        .fault(json!({"vendor": "fcm", "delay_ms": 100, "times": 1_000_000}))
        .await;
    let messages: Vec<Event> = (0..40)
        .map(|i| {
            Event::OfflineMessage(text_message(
                &format!("m-term-{i}"),
                "denny",
                &format!("user-{i}"),
                "hi",
            ))
        })
        .collect();
    fleet.publish(messages).await;
    fleet.wait_deliveries(WAIT, |d| !d.is_empty()).await;
    let status = fleet.terminate("sender-fcm");
    assert!(status.success(), "exit status {status:?}");
    fleet.spawn_named("sender-fcm", "impush-sender", &["--vendor", "fcm"]);
    let deliveries = fleet
        .wait_deliveries(Duration::from_secs(60), |d| d.len() >= 40)
        .await;
    settle().await;
    assert_eq!(
        fleet.deliveries(None).await.len(),
        40,
        "all delivered, none twice: {}",
        deliveries.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_thousand_member_group_is_routed_in_chunks() {
    let fleet = Fleet::start(FleetOptions {
        vendors: vec![Vendor::Fcm],
        ..FleetOptions::default()
    })
    .await;
    let t = now_ms() - 10_000;
    // Every 50th member has a phone in the background; the others have none registered.
    let members: Vec<String> = (0..10_000).map(|i| format!("member-{i}")).collect();
    let mut events = Vec::new();
    for member in members.iter().step_by(50) {
        events.push(register(
            member,
            "phone",
            Vendor::Fcm,
            &format!("fcm-{member}"),
            t,
        ));
        events.push(presence(
            member,
            "phone",
            PresenceState::Background,
            0,
            t + 1,
        ));
    }
    fleet.publish(events).await;
    settle().await;
    let mut message = text_message("m-big-group", "founder", "", "all hands at 10");
    message.group_id = "@TGS#company".into();
    message.group_name = "Company".into();
    message.member_ids = members;
    fleet.publish(vec![Event::OfflineMessage(message)]).await;
    fleet.wait_deliveries(WAIT, |d| d.len() >= 200).await;
    settle().await;
    assert_eq!(fleet.deliveries(None).await.len(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_token_with_nobody_listening_for_feedback_does_not_block_the_push() {
    let fleet = Fleet::start(FleetOptions {
        vendors: vec![Vendor::Fcm],
        ..FleetOptions::default()
    })
    .await;
    let t = now_ms() - 10_000;
    fleet
        .publish(vec![
            register("vinson", "old", Vendor::Fcm, "invalid-old", t),
            presence("vinson", "old", PresenceState::Background, 0, t + 1),
            register("vinson", "new", Vendor::Fcm, "fcm-new", t),
            presence("vinson", "new", PresenceState::Background, 0, t + 1),
        ])
        .await;
    settle().await;
    fleet
        .publish(vec![Event::OfflineMessage(text_message(
            "m-nobody", "denny", "vinson", "hi",
        ))])
        .await;
    fleet.wait_deliveries(WAIT, |d| d.len() == 1).await;
    settle().await;
    let metrics = fleet.metrics("sender-fcm").await;
    let invalid = metrics
        .lines()
        .find(|l| l.starts_with("impush_pushes_total") && l.contains("outcome=\"invalid_token\""))
        .unwrap_or_default()
        .to_owned();
    assert!(
        invalid.ends_with(" 1"),
        "the dead token was tried exactly once: {invalid}"
    );
    assert_eq!(
        fleet
            .queue_len(&fleet.topology.push_queue(Vendor::Fcm))
            .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_vendor_channel_delivers_through_its_own_api() {
    let vendors = [
        (Vendor::Apns, apns_token(42)),
        (Vendor::Fcm, "fcm:every-vendor-token".to_owned()),
        (
            Vendor::Huawei,
            "IQAAAACy0kYkAAC0fJ1Wg6xd+h9b/huawei=".to_owned(),
        ),
        (Vendor::Xiaomi, "ZBfL1d4rX6y/RW+xiaomi=".to_owned()),
        (Vendor::Oppo, "CN_oppo_regid_5b7e".to_owned()),
        (Vendor::Vivo, "16000000000000000006".to_owned()),
        (Vendor::Meizu, "MZ-pushid-7a1c".to_owned()),
        (Vendor::Tpns, "0608d1d2c1b5e7f3a9e0b1c2d3e4f5a6".to_owned()),
        (Vendor::Honor, "AFcqpT0nCi6yHj0DAgGJhonor".to_owned()),
        (Vendor::Harmony, "MAMzLgEAAAZBx/r4Gt8fI+harmony".to_owned()),
    ];
    let fleet = Fleet::start(FleetOptions {
        vendors: vendors.iter().map(|(v, _)| *v).collect(),
        ..FleetOptions::default()
    })
    .await;
    let t = now_ms() - 10_000;
    let mut events = Vec::new();
    for (vendor, token) in &vendors {
        let user = format!("user-{}", impush_core::vendor::name(*vendor));
        events.push(register(&user, "phone", *vendor, token, t));
        events.push(presence(
            &user,
            "phone",
            PresenceState::Background,
            1,
            t + 1,
        ));
    }
    fleet.publish(events).await;
    settle().await;
    let messages = vendors
        .iter()
        .map(|(vendor, _)| {
            let name = impush_core::vendor::name(*vendor);
            Event::OfflineMessage(text_message(
                &format!("m-{name}"),
                "denny",
                &format!("user-{name}"),
                "hello",
            ))
        })
        .collect();
    fleet.publish(messages).await;
    fleet
        .wait_deliveries(WAIT, |d| d.len() >= vendors.len())
        .await;
    settle().await;
    let deliveries = fleet.deliveries(None).await;
    let mut got: Vec<(String, String)> = deliveries
        .iter()
        .map(|d| {
            (
                d["vendor"].as_str().unwrap().to_owned(),
                d["token"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort();
    let mut expected: Vec<(String, String)> = vendors
        .iter()
        .map(|(v, t)| (impush_core::vendor::name(*v).to_owned(), t.clone()))
        .collect();
    expected.sort();
    assert_eq!(got, expected, "one delivery per vendor, to its token");
    for d in &deliveries {
        assert_eq!(d["body"], "DENNY: hello", "{d}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_up_quota_pauses_the_credential_and_delivers_later_without_using_attempts() {
    // The ladder waits at most 800 ms and allows 2 attempts: a vendor asking for 2 s is
    // saying its quota is used up, which must pause, not burn attempts into the DLQ.
    let fleet = Fleet::start(FleetOptions {
        vendors: vec![Vendor::Fcm],
        max_attempts: 2,
        ..FleetOptions::default()
    })
    .await;
    let t = now_ms() - 10_000;
    fleet
        .publish(vec![
            register("vinson", "pixel", Vendor::Fcm, "fcm-quota", t),
            presence("vinson", "pixel", PresenceState::Background, 0, t + 1),
        ])
        .await;
    settle().await;
    fleet
        .fault(json!({"vendor": "fcm", "status": 429, "reason": "QUOTA_EXCEEDED", "retry_after_s": 2, "times": 2}))
        .await;
    fleet
        .publish(vec![Event::OfflineMessage(text_message(
            "m-quota", "denny", "vinson", "hi",
        ))])
        .await;
    fleet
        .wait_deliveries(Duration::from_secs(30), |d| !d.is_empty())
        .await;
    settle().await;
    assert_eq!(fleet.deliveries(None).await.len(), 1, "delivered once");
    assert!(
        fleet
            .drain(&fleet.topology.dlq(Vendor::Fcm))
            .await
            .is_empty(),
        "nothing dead-lettered"
    );
    let metrics = fleet.metrics("sender-fcm").await;
    assert!(metrics.contains("outcome=\"quota_paused\""), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_1000_with_10_dead_tokens_delivers_990_once_and_prunes_10() {
    let fleet = Fleet::start(FleetOptions {
        vendors: vec![Vendor::Huawei],
        ..FleetOptions::default()
    })
    .await;
    let t = now_ms() - 10_000;
    let members: Vec<String> = (0..1000).map(|i| format!("member-{i}")).collect();
    let mut events = Vec::new();
    for (i, member) in members.iter().enumerate() {
        let token = if i % 100 == 7 {
            format!("invalid-huawei-{i}")
        } else {
            format!("IQAAAACy0kYk{i:06}")
        };
        events.push(register(member, "phone", Vendor::Huawei, &token, t));
        events.push(presence(
            member,
            "phone",
            PresenceState::Background,
            0,
            t + 1,
        ));
    }
    fleet.publish(events).await;
    settle().await;
    let mut message = text_message("m-batch", "founder", "", "all hands");
    message.group_id = "@TGS#all".into();
    message.group_name = "All".into();
    message.member_ids = members;
    fleet.publish(vec![Event::OfflineMessage(message)]).await;
    fleet.wait_deliveries(WAIT, |d| d.len() >= 990).await;
    settle().await;
    let deliveries = fleet.deliveries(Some("huawei")).await;
    assert_eq!(deliveries.len(), 990, "each live token once");
    let metrics = fleet.metrics("sender-huawei").await;
    let pruned = metrics
        .lines()
        .find(|l| l.starts_with("impush_tokens_pruned_total"))
        .unwrap_or_default()
        .to_owned();
    assert!(pruned.ends_with(" 10"), "10 registrations pruned: {pruned}");
}

/// The value of a counter line `name{labels} value` in a metrics page (0 when absent).
fn counter(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c2c_messages_ready_together_share_broker_messages_and_each_arrives_once() {
    let fleet = Fleet::start(FleetOptions::default()).await;
    let t = now_ms() - 10_000;
    let users: Vec<String> = (0..300).map(|i| format!("user-{i}")).collect();
    let mut events = Vec::new();
    for (i, user) in users.iter().enumerate() {
        events.push(register(
            user,
            "iphone",
            Vendor::Apns,
            &apns_token(1000 + i as u32),
            t,
        ));
        events.push(presence(
            user,
            "iphone",
            PresenceState::Background,
            0,
            t + 1,
        ));
    }
    fleet.publish(events).await;
    settle().await;
    let messages = users
        .iter()
        .enumerate()
        .map(|(i, user)| {
            let mut message = text_message(&format!("m-{i}"), "boss", user, "hi");
            message.push_info = Some(impush_proto::v1::OfflinePushInfo {
                ext: format!("m-{i}"),
                ..Default::default()
            });
            Event::OfflineMessage(message)
        })
        .collect();
    fleet.publish(messages).await;
    fleet.wait_deliveries(WAIT, |d| d.len() >= 300).await;
    settle().await;

    let deliveries = fleet.deliveries(Some("apns")).await;
    let mut got = tokens(&deliveries);
    let mut want: Vec<String> = (0..300).map(|i| apns_token(1000 + i)).collect();
    want.sort();
    got.dedup();
    assert_eq!(deliveries.len(), 300, "every message once");
    assert_eq!(got, want, "each device its own message");
    let device_of: HashMap<String, usize> =
        (0..300).map(|i| (apns_token(1000 + i as u32), i)).collect();
    for d in &deliveries {
        // Each message's ext (its msg_id) reached its own receiver's device.
        let i = device_of[d["token"].as_str().unwrap()];
        assert_eq!(d["ext"].as_str(), Some(format!("m-{i}").as_str()), "{d}");
    }
    let router = fleet.metrics("impush-router").await;
    let jobs = counter(&router, "impush_push_jobs_total{vendor=\"apns\"}");
    let sent = counter(&router, "impush_push_messages_total{vendor=\"apns\"}");
    assert_eq!(jobs, 300.0, "one job per message");
    assert!(
        sent < jobs,
        "jobs ready together went out in shared broker messages: {sent} messages for {jobs} jobs"
    );
    assert_eq!(fleet.queue_len(&fleet.topology.dlq(Vendor::Apns)).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_job_of_a_bundle_has_its_own_outcome() {
    let fleet = Fleet::start(FleetOptions::default()).await;
    let job = |msg_id: &str, business_id: u64, token: String| impush_proto::v1::PushJob {
        msg_id: msg_id.into(),
        sdk_app_id: APP,
        vendor: Vendor::Apns as i32,
        business_id,
        targets: vec![impush_proto::v1::PushTarget {
            user_id: format!("u-{msg_id}"),
            device_id: "iphone".into(),
            token,
            badge: Some(1),
        }],
        notification: Some(impush_proto::v1::Notification {
            title: "boss".into(),
            body: "hi".into(),
            ext: msg_id.into(),
            send_time_ms: now_ms(),
            conversation: "c2c:boss".into(),
            collapse_id: msg_id.into(),
            ..Default::default()
        }),
        attempt: 0,
        deadline_ms: now_ms() + 60_000,
        recall_replacement: false,
        recall_withdrawal: false,
    };
    let bundle = impush_proto::v1::PushJobs {
        jobs: vec![
            job("b-1", 1, apns_token(1)),
            // No credential has this id: this job alone is dead-lettered.
            job("b-2", 999_999, apns_token(2)),
            job("b-3", 1, apns_token(3)),
        ],
    };
    fleet
        .publisher()
        .publish(impush_amqp::Outgoing {
            mandatory: true,
            exchange: fleet.topology.push_exchange(),
            routing_key: "apns".into(),
            body: bundle.encode_to_vec(),
            properties: impush_amqp::protobuf_properties(impush_proto::PUSH_JOBS_TYPE),
        })
        .await
        .unwrap();
    fleet.wait_deliveries(WAIT, |d| d.len() >= 2).await;
    let dlq = fleet.topology.dlq(Vendor::Apns);
    let dead = fleet.wait_drain(&dlq, WAIT).await;
    settle().await;
    let deliveries = fleet.deliveries(Some("apns")).await;
    let mut want = vec![apns_token(1), apns_token(3)];
    want.sort();
    assert_eq!(tokens(&deliveries), want, "the two good jobs, once each");
    assert_eq!(dead.len(), 1, "only the bad job, as a PushJob of its own");
    assert_eq!(
        impush_amqp::header_str(&dead[0].properties, impush_amqp::headers::REASON),
        Some("unknown_business_id")
    );
    let dead_job = impush_proto::v1::PushJob::decode(dead[0].data.as_slice()).unwrap();
    assert_eq!(dead_job.msg_id, "b-2");
    assert_eq!(dead_job.targets.len(), 1);
    assert_eq!(
        fleet
            .queue_len(&fleet.topology.push_queue(Vendor::Apns))
            .await,
        0
    );
}

/// The sum of every series of counter `name` in a metrics page (0 when absent).
fn counter_sum(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A token of `vendor`'s shape for the new-channel tests, numbered.
fn new_channel_token(vendor: Vendor, n: u32) -> String {
    match vendor {
        Vendor::Honor => format!("AFcqpT0n{n:05}Ci6yHj0DAgGJhonor"),
        _ => format!("MAMzLgEAAA{n:05}ZBx/r4Gt8fI+harmony"),
    }
}

/// The fleet with only `vendor`'s sender, and `user`'s one device of that vendor in the
/// background.
async fn new_channel_fleet(vendor: Vendor, user: &str, token: &str) -> Fleet {
    let fleet = Fleet::start(FleetOptions {
        vendors: vec![vendor],
        ..FleetOptions::default()
    })
    .await;
    let t = now_ms() - 10_000;
    fleet
        .publish(vec![
            register(user, "phone", vendor, token, t),
            presence(user, "phone", PresenceState::Background, 0, t + 1),
        ])
        .await;
    settle().await;
    fleet
}

async fn channel_delivers_once(vendor: Vendor) {
    let name = impush_core::vendor::name(vendor);
    let token = new_channel_token(vendor, 1);
    let fleet = new_channel_fleet(vendor, "vinson", &token).await;
    fleet
        .publish(vec![Event::OfflineMessage(text_message(
            &format!("m-{name}-once"),
            "denny",
            "vinson",
            "hi",
        ))])
        .await;
    fleet.wait_deliveries(WAIT, |d| !d.is_empty()).await;
    settle().await;
    let deliveries = fleet.deliveries(Some(name)).await;
    assert_eq!(tokens(&deliveries), vec![token], "delivered exactly once");
    assert_eq!(deliveries[0]["body"], "DENNY: hi");
}

async fn channel_prunes_an_invalid_token_with_feedback(vendor: Vendor, reason: &str) {
    let name = impush_core::vendor::name(vendor);
    let good = new_channel_token(vendor, 2);
    let fleet = new_channel_fleet(vendor, "vinson", &good).await;
    let channel = fleet.connection().create_channel().await.unwrap();
    let feedback = format!("{}.test.feedback", fleet.prefix);
    channel
        .queue_declare(
            feedback.as_str().into(),
            Default::default(),
            Default::default(),
        )
        .await
        .unwrap();
    channel
        .queue_bind(
            feedback.as_str().into(),
            fleet.topology.events_exchange().as_str().into(),
            "feedback.token".into(),
            Default::default(),
            Default::default(),
        )
        .await
        .unwrap();
    let dead = format!("invalid-{name}-dead");
    let t = now_ms() - 5_000;
    fleet
        .publish(vec![
            register("vinson", "old-phone", vendor, &dead, t),
            presence("vinson", "old-phone", PresenceState::Background, 0, t + 1),
        ])
        .await;
    settle().await;
    fleet
        .publish(vec![Event::OfflineMessage(text_message(
            &format!("m-{name}-inv-1"),
            "denny",
            "vinson",
            "hi",
        ))])
        .await;
    let got = fleet.wait_drain(&feedback, WAIT).await;
    let event = TokenInvalidated::decode(got[0].data.as_slice()).unwrap();
    assert_eq!(event.token, dead);
    assert_eq!(event.device_id, "old-phone");
    assert_eq!(event.vendor, vendor as i32);
    assert_eq!(
        event.business_id,
        if vendor == Vendor::Honor { 9 } else { 10 }
    );
    assert_eq!(event.reason, reason);
    fleet.wait_deliveries(WAIT, |d| d.len() == 1).await;

    // The registration is gone: the next message goes to the good phone only.
    fleet
        .publish(vec![Event::OfflineMessage(text_message(
            &format!("m-{name}-inv-2"),
            "denny",
            "vinson",
            "again",
        ))])
        .await;
    fleet.wait_deliveries(WAIT, |d| d.len() == 2).await;
    settle().await;
    assert!(
        fleet.drain(&feedback).await.is_empty(),
        "the dead token was not tried again"
    );
    let deliveries = fleet.deliveries(Some(name)).await;
    assert_eq!(tokens(&deliveries), vec![good.clone(), good]);
}

async fn channel_retries_503_and_429_honouring_retry_after(vendor: Vendor) {
    let name = impush_core::vendor::name(vendor);
    let token = new_channel_token(vendor, 3);
    let fleet = new_channel_fleet(vendor, "vinson", &token).await;
    fleet
        .fault(json!({"vendor": name, "status": 503, "reason": "81000001", "times": 1}))
        .await;
    fleet
        .fault(json!({"vendor": name, "status": 429, "reason": "81000001", "retry_after_s": 1, "times": 1}))
        .await;
    let published_ms = now_ms();
    fleet
        .publish(vec![Event::OfflineMessage(text_message(
            &format!("m-{name}-retry"),
            "denny",
            "vinson",
            "hi",
        ))])
        .await;
    fleet.wait_deliveries(WAIT, |d| !d.is_empty()).await;
    settle().await;
    let deliveries = fleet.deliveries(Some(name)).await;
    assert_eq!(tokens(&deliveries), vec![token], "delivered exactly once");
    let received_ms = deliveries[0]["received_at_ms"].as_i64().unwrap();
    assert!(
        received_ms >= published_ms + 1000,
        "the 429's Retry-After of 1 s was waited out"
    );
    let metrics = fleet.metrics(&format!("sender-{name}")).await;
    let failed = format!("impush_vendor_responses_total{{vendor=\"{name}\",reason=\"81000001\"}}");
    assert_eq!(counter(&metrics, &failed), 2.0, "503 then 429: {metrics}");
    // The 503 goes back through the retry ladder; the 429 asks for longer than its longest
    // step, so the credential pauses for the Retry-After instead.
    assert!(
        counter_sum(&metrics, "impush_retries_total") >= 1.0,
        "{metrics}"
    );
}

async fn channel_refreshes_auth_expired_mid_stream_and_delivers_once(vendor: Vendor) {
    let name = impush_core::vendor::name(vendor);
    let token = new_channel_token(vendor, 4);
    let fleet = new_channel_fleet(vendor, "vinson", &token).await;
    fleet
        .publish(vec![Event::OfflineMessage(text_message(
            &format!("m-{name}-auth-1"),
            "denny",
            "vinson",
            "first",
        ))])
        .await;
    fleet.wait_deliveries(WAIT, |d| d.len() == 1).await;
    // Every access token (Honor) or JWT (HarmonyOS) the sender holds is now expired.
    let expired = fleet
        .http()
        .post(format!("{}/sim/expire-auth", fleet.sim_url))
        .send()
        .await
        .unwrap();
    assert!(expired.status().is_success());
    fleet
        .publish(vec![Event::OfflineMessage(text_message(
            &format!("m-{name}-auth-2"),
            "denny",
            "vinson",
            "second",
        ))])
        .await;
    fleet.wait_deliveries(WAIT, |d| d.len() == 2).await;
    settle().await;
    let deliveries = fleet.deliveries(Some(name)).await;
    let bodies: Vec<&str> = deliveries
        .iter()
        .map(|d| d["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["DENNY: first", "DENNY: second"], "each once");
    let metrics = fleet.metrics(&format!("sender-{name}")).await;
    assert_eq!(
        counter_sum(&metrics, "impush_retries_total"),
        0.0,
        "refreshed within the send, not retried: {metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honor_push_is_delivered_once() {
    channel_delivers_once(Vendor::Honor).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honor_expired_token_is_pruned_and_im_core_told() {
    channel_prunes_an_invalid_token_with_feedback(Vendor::Honor, "expireTokens").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honor_503_and_429_are_retried_honouring_retry_after() {
    channel_retries_503_and_429_honouring_retry_after(Vendor::Honor).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honor_access_token_expired_mid_stream_is_refreshed_and_delivered_once() {
    channel_refreshes_auth_expired_mid_stream_and_delivers_once(Vendor::Honor).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harmony_push_is_delivered_once() {
    channel_delivers_once(Vendor::Harmony).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harmony_invalid_token_is_pruned_and_im_core_told() {
    channel_prunes_an_invalid_token_with_feedback(Vendor::Harmony, "80100000 illegal_token").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harmony_503_and_429_are_retried_honouring_retry_after() {
    channel_retries_503_and_429_honouring_retry_after(Vendor::Harmony).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harmony_jwt_expired_mid_stream_is_replaced_and_delivered_once() {
    channel_refreshes_auth_expired_mid_stream_and_delivers_once(Vendor::Harmony).await;
}

/// The seconds of a Google-style duration (`"20s"`) or a number of seconds.
fn seconds_of(value: &Value) -> u64 {
    match value {
        Value::String(text) => text.trim_end_matches('s').parse().unwrap(),
        other => other.as_u64().unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tpns_token_registered_with_business_id_0_goes_through_tpns_with_the_ios_rules() {
    let fleet = Fleet::start(FleetOptions {
        vendors: vec![Vendor::Apns, Vendor::Tpns],
        ..FleetOptions::default()
    })
    .await;
    let t = now_ms() - 10_000;
    let tpns_token = "0608d1d2c1b5e7f3a9e0b1c2d3e4f5a6";
    // As the seeds' TPNS integration reports it: setAPNS with businessID 0, isTPNSToken YES.
    let mut iphone = register("vinson", "iphone", Vendor::Apns, tpns_token, t);
    if let Event::DeviceRegistered(device) = &mut iphone {
        device.business_id = 0;
        device.is_tpns_token = true;
    }
    fleet
        .publish(vec![
            iphone,
            presence("vinson", "iphone", PresenceState::Background, 2, t + 1),
        ])
        .await;
    settle().await;
    let mut message = text_message("m-tpns-ios", "denny", "vinson", "hello");
    message.push_info = Some(impush_proto::v1::OfflinePushInfo {
        ios_sound: "ring.caf".into(),
        android_sound: "beep.mp3".into(),
        ..Default::default()
    });
    fleet.publish(vec![Event::OfflineMessage(message)]).await;
    fleet.wait_deliveries(WAIT, |d| !d.is_empty()).await;
    settle().await;
    let deliveries = fleet.deliveries(None).await;
    assert_eq!(deliveries.len(), 1, "{deliveries:#?}");
    let delivery = &deliveries[0];
    assert_eq!(delivery["vendor"], "tpns");
    assert_eq!(delivery["token"], tpns_token);
    assert_eq!(
        delivery["sound"], "ring.caf",
        "the iOS sound, not Android's"
    );
    assert_eq!(delivery["badge"], 3, "unread 2 plus this push");
    assert!(delivery["payload"]["message"].get("ios").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_push_carries_the_ring_time_left_when_the_request_leaves() {
    let fleet = Fleet::start(FleetOptions {
        vendors: vec![Vendor::Fcm, Vendor::Huawei, Vendor::Xiaomi],
        ..FleetOptions::default()
    })
    .await;
    let t = now_ms() - 20_000;
    let devices = [
        ("pixel", Vendor::Fcm, "fcm:ring-left"),
        (
            "mate",
            Vendor::Huawei,
            "IQAAAACy0kYkAAC0fJ1Wg6xd+ring/left=",
        ),
        ("mi", Vendor::Xiaomi, "ZBfL1d4rX6y/RW+ringleft="),
    ];
    let mut events = Vec::new();
    for (device, vendor, token) in devices {
        events.push(register("vinson", device, vendor, token, t));
        events.push(presence(
            "vinson",
            device,
            PresenceState::Background,
            0,
            t + 1,
        ));
    }
    fleet.publish(events).await;
    settle().await;
    // Sent 10 s ago, ringing for 30 s: at most 20 s are left by the time any request leaves.
    let mut call = text_message("m-call-left", "denny", "vinson", "");
    call.elems.clear();
    call.send_time_ms = now_ms() - 10_000;
    call.call = Some(impush_proto::v1::CallInvite {
        call_id: "call-1".into(),
        timeout_s: 30,
        ..Default::default()
    });
    fleet.publish(vec![Event::OfflineMessage(call)]).await;
    let deliveries = fleet.wait_deliveries(WAIT, |d| d.len() >= 3).await;
    let ttl_of = |vendor: &str| {
        let payload = &deliveries
            .iter()
            .find(|d| d["vendor"] == vendor)
            .unwrap_or_else(|| panic!("no {vendor} delivery"))["payload"];
        match vendor {
            "fcm" => seconds_of(&payload["message"]["android"]["ttl"]),
            "huawei" => seconds_of(&payload["message"]["android"]["ttl"]),
            _ => {
                payload["time_to_live"]
                    .as_str()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap()
                    / 1000
            }
        }
    };
    for vendor in ["fcm", "huawei", "xiaomi"] {
        let ttl = ttl_of(vendor);
        assert!(
            (1..=20).contains(&ttl),
            "{vendor}: {ttl} s, the ring had at most 20 s left"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_timed_out_but_was_accepted_is_retried_and_delivered_again() {
    let fleet = Fleet::start(FleetOptions {
        vendors: vec![Vendor::Fcm],
        request_timeout_ms: 1_000,
        ..FleetOptions::default()
    })
    .await;
    let t = now_ms() - 10_000;
    fleet
        .publish(vec![
            register("vinson", "pixel", Vendor::Fcm, "fcm:late-answer", t),
            presence("vinson", "pixel", PresenceState::Background, 0, t + 1),
        ])
        .await;
    settle().await;
    // FCM takes the push, but answers only after the sender gave up on the request.
    fleet
        .fault(
            json!({"vendor": "fcm", "token": "fcm:late-answer", "accepted": true,
            "delay_ms": 4_000, "times": 1}),
        )
        .await;
    fleet
        .publish(vec![Event::OfflineMessage(text_message(
            "m-late", "denny", "vinson", "hi",
        ))])
        .await;
    fleet.wait_deliveries(WAIT, |d| d.len() >= 2).await;
    settle().await;
    let deliveries = fleet.deliveries(None).await;
    assert_eq!(
        tokens(&deliveries),
        vec!["fcm:late-answer".to_owned(); 2],
        "accepted once by the vendor, then again by the retry"
    );
    // The duplicate replaces the first on the device: both carry the message's tag.
    let tag = |d: &Value| d["payload"]["message"]["android"]["notification"]["tag"].clone();
    assert_eq!(tag(&deliveries[0]), json!("m-late"));
    assert_eq!(tag(&deliveries[0]), tag(&deliveries[1]));
    let metrics = fleet.metrics("sender-fcm").await;
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("impush_vendor_responses_total{")
                && line.contains("reason=\"timeout\"")
                && line.contains("vendor=\"fcm\"")),
        "the first request timed out: {metrics}"
    );
}
