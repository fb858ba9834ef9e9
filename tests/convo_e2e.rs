//! Conversation push options, @ mentions, quiet hours and recall, end to end on the real
//! RabbitMQ and Redis: state events in, messages and recalls in, and what the vendor
//! simulators received out. Every wait is for a count the workers report (metrics) or for
//! the deliveries themselves, never for a length of time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fleet;

use std::time::{Duration, Instant};

use fleet::{APP, Fleet, FleetOptions, apns_token, now_ms, presence, register, text_message};
use impush_proto::Event;
use impush_proto::v1::{
    ConversationPushOption, MessageRevoked, OfflineMessage, OpenPush, PresenceState, PushSettings,
    ReceiveOption, Vendor,
};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// The sum of every series of `name` whose labels contain all of `labels`.
fn metric(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|line| labels.iter().all(|label| line.contains(label)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits until a worker's metric reaches `at_least`, and returns its value.
async fn wait_metric(
    fleet: &Fleet,
    worker: &str,
    name: &str,
    labels: &[&str],
    at_least: f64,
) -> f64 {
    let deadline = Instant::now() + WAIT;
    loop {
        let value = metric(&fleet.metrics(worker).await, name, labels);
        if value >= at_least {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{worker}: {name}{labels:?} stayed at {value}, expected {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Publishes state events and waits until the ingest worker has taken every one in.
async fn publish_state(fleet: &Fleet, events: Vec<Event>) {
    let before = metric(
        &fleet.metrics("impush-ingest").await,
        "impush_events_consumed_total",
        &[],
    );
    let n = events.len() as f64;
    fleet.publish(events).await;
    wait_metric(
        fleet,
        "impush-ingest",
        "impush_events_consumed_total",
        &[],
        before + n,
    )
    .await;
}

/// Publishes messages and recalls and waits until the router has handled them all.
async fn publish_messages(fleet: &Fleet, events: Vec<Event>) {
    let before = metric(
        &fleet.metrics("impush-router").await,
        "impush_events_consumed_total",
        &[],
    );
    let n = events.len() as f64;
    fleet.publish(events).await;
    wait_metric(
        fleet,
        "impush-router",
        "impush_events_consumed_total",
        &[],
        before + n,
    )
    .await;
}

/// Waits until the sender has settled every notification the router published for FCM
/// (delivered or dropped as recalled), then returns the deliveries as (token, body).
async fn settled_deliveries(fleet: &Fleet) -> Vec<(String, String)> {
    let routed = metric(
        &fleet.metrics("impush-router").await,
        "impush_notifications_routed_total",
        &["vendor=\"fcm\""],
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let sender = fleet.metrics("sender-fcm").await;
        let settled = metric(&sender, "impush_pushes_total", &["outcome=\"delivered\""])
            + metric(&sender, "impush_pushes_total", &["outcome=\"revoked\""]);
        if settled >= routed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{settled} of {routed} pushes settled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut deliveries: Vec<(String, String)> = fleet
        .deliveries(None)
        .await
        .iter()
        .map(|d: &Value| {
            (
                d["token"].as_str().unwrap_or_default().to_owned(),
                d["body"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    deliveries.sort();
    deliveries
}

fn conversation_option(user: &str, conversation: &str, option: ReceiveOption, at_ms: i64) -> Event {
    Event::ConversationPushOption(ConversationPushOption {
        sdk_app_id: APP,
        user_id: user.into(),
        conversation: conversation.into(),
        option: option as i32,
        at_ms,
    })
}

fn quiet_hours(
    user: &str,
    start_s: u32,
    duration_s: u32,
    option: ReceiveOption,
    at_ms: i64,
) -> Event {
    Event::PushSettings(PushSettings {
        sdk_app_id: APP,
        user_id: user.into(),
        open_push: OpenPush::Enabled as i32,
        quiet_start_s: start_s,
        quiet_duration_s: duration_s,
        quiet_option: option as i32,
        at_ms,
        ..Default::default()
    })
}

fn recall(msg_id: &str, at_ms: i64) -> Event {
    Event::MessageRevoked(MessageRevoked {
        sdk_app_id: APP,
        msg_id: msg_id.into(),
        sender_id: "denny".into(),
        at_ms,
    })
}

fn group_message(msg_id: &str, text: &str, members: &[&str]) -> OfflineMessage {
    let mut message = text_message(msg_id, "denny", "", text);
    message.group_id = "g".into();
    message.group_name = "G".into();
    message.member_ids = members.iter().map(|m| (*m).to_owned()).collect();
    message
}

/// An FCM phone in the background for each user, token `fcm-<user>`.
fn phones(users: &[&str], at_ms: i64) -> Vec<Event> {
    users
        .iter()
        .flat_map(|user| {
            [
                register(user, "phone", Vendor::Fcm, &format!("fcm-{user}"), at_ms),
                presence(user, "phone", PresenceState::Background, 0, at_ms + 1),
            ]
        })
        .collect()
}

fn fcm_fleet() -> FleetOptions {
    FleetOptions {
        vendors: vec![Vendor::Fcm],
        ..FleetOptions::default()
    }
}

fn pair(token: &str, body: &str) -> (String, String) {
    (token.to_owned(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversation_options_mentions_and_quiet_hours_decide_who_is_notified() {
    let fleet = Fleet::start(fcm_fleet()).await;
    let t = now_ms() - 10_000;
    let now_of_day_s = ((now_ms() / 1000) % 86_400) as u32;
    let window_around_now = (now_of_day_s + 86_400 - 3600) % 86_400;
    let window_later = (now_of_day_s + 3 * 3600) % 86_400;
    use ReceiveOption::*;
    let users = ["alice", "bob", "carol", "dave", "erin", "frank"];
    let mut state = phones(&users, t);
    state.extend([
        // alice mutes the group; an older NOTIFY arriving later and a repeat change nothing.
        conversation_option("alice", "group:g", Notify, t + 10),
        conversation_option("alice", "group:g", NotNotify, t + 20),
        conversation_option("alice", "group:g", Notify, t + 5),
        conversation_option("alice", "group:g", NotNotify, t + 20),
        conversation_option("bob", "group:g", NotNotifyExceptAt, t + 10),
        conversation_option("carol", "group:g", NotNotifyExceptAt, t + 10),
        // dave is in his quiet hours; older settings without them arrive afterwards.
        quiet_hours("dave", window_around_now, 2 * 3600, NotNotify, t + 20),
        quiet_hours("dave", 0, 0, Unspecified, t + 10),
        // erin's quiet hours are later today.
        quiet_hours("erin", window_later, 3600, NotNotify, t + 20),
        // frank mutes denny's one-to-one chat, not the group.
        conversation_option("frank", "c2c:denny", NotNotify, t + 10),
    ]);
    publish_state(&fleet, state).await;

    let mut members: Vec<&str> = users.to_vec();
    members.push("denny");
    let mut named = group_message("m-named", "lunch?", &members);
    named.at_user_ids = vec!["bob".into()];
    let mut everyone = group_message("m-all", "meeting", &members);
    everyone.at_all = true;
    publish_messages(
        &fleet,
        vec![
            Event::OfflineMessage(named),
            Event::OfflineMessage(everyone),
            Event::OfflineMessage(text_message("m-c2c-denny", "denny", "frank", "psst")),
            Event::OfflineMessage(text_message("m-c2c-eve", "eve", "frank", "hey")),
        ],
    )
    .await;

    let mut expected = vec![
        // Mentioned by name through NOT_NOTIFY_EXCEPT_AT: the marker starts the body.
        pair("fcm-bob", "[@me] DENNY (G): lunch?"),
        pair("fcm-erin", "DENNY (G): lunch?"),
        pair("fcm-frank", "DENNY (G): lunch?"),
        // @all lets carol and bob through; alice's NOT_NOTIFY and dave's quiet hours hold.
        pair("fcm-bob", "[@all] DENNY (G): meeting"),
        pair("fcm-carol", "[@all] DENNY (G): meeting"),
        pair("fcm-erin", "[@all] DENNY (G): meeting"),
        pair("fcm-frank", "[@all] DENNY (G): meeting"),
        // frank muted denny, not eve.
        pair("fcm-frank", "EVE: hey"),
    ];
    expected.sort();
    assert_eq!(settled_deliveries(&fleet).await, expected);
    let router = fleet.metrics("impush-router").await;
    // alice twice, carol once (not mentioned), frank's c2c from denny.
    assert_eq!(
        metric(
            &router,
            "impush_skips_total",
            &["reason=\"conversation_muted\""]
        ),
        4.0
    );
    assert_eq!(
        metric(&router, "impush_skips_total", &["reason=\"quiet_hours\""]),
        2.0
    );
    let ingest = fleet.metrics("impush-ingest").await;
    // Ingest takes events concurrently, so how many of the older ones came after the newest
    // varies; the repeat of the newest is always stale, and the deliveries above show the
    // newest option won.
    let stale = metric(
        &ingest,
        "impush_events_consumed_total",
        &["ConversationPushOption", "outcome=\"stale\""],
    );
    assert!((1.0..=3.0).contains(&stale), "{stale} stale options");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recall_that_arrives_before_its_message_stops_it() {
    let fleet = Fleet::start(fcm_fleet()).await;
    let t = now_ms() - 10_000;
    publish_state(&fleet, phones(&["vinson"], t)).await;
    publish_messages(
        &fleet,
        vec![recall("m-early", t + 100), recall("m-early", t + 100)],
    )
    .await;
    let router = fleet.metrics("impush-router").await;
    assert_eq!(
        metric(&router, "impush_recalls_total", &["outcome=\"taken_in\""]),
        1.0
    );
    assert_eq!(
        metric(&router, "impush_recalls_total", &["outcome=\"repeated\""]),
        1.0
    );

    publish_messages(
        &fleet,
        vec![
            Event::OfflineMessage(text_message("m-early", "denny", "vinson", "recalled")),
            Event::OfflineMessage(text_message("m-kept", "denny", "vinson", "kept")),
        ],
    )
    .await;
    assert_eq!(
        settled_deliveries(&fleet).await,
        vec![pair("fcm-vinson", "DENNY: kept")]
    );
    let router = fleet.metrics("impush-router").await;
    assert_eq!(
        metric(&router, "impush_skips_total", &["reason=\"revoked\""]),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_waiting_in_the_retry_ladder_is_never_delivered_after_its_recall() {
    let fleet = Fleet::start(FleetOptions {
        // Long enough a step for the recall to be taken in while the push waits in it.
        retry_delays_ms: vec![5_000],
        max_attempts: 3,
        ..fcm_fleet()
    })
    .await;
    let t = now_ms() - 10_000;
    publish_state(&fleet, phones(&["vinson"], t)).await;
    fleet
        .fault(json!({"vendor": "fcm", "status": 503, "reason": "UNAVAILABLE", "times": 1}))
        .await;
    publish_messages(
        &fleet,
        vec![Event::OfflineMessage(text_message(
            "m-retry", "denny", "vinson", "oops",
        ))],
    )
    .await;
    // The first try failed: the push now sits in the retry ladder.
    wait_metric(&fleet, "sender-fcm", "impush_retries_total", &[], 1.0).await;
    publish_messages(&fleet, vec![recall("m-retry", now_ms())]).await;
    // When it comes back, the sender finds the recall and drops it.
    wait_metric(
        &fleet,
        "sender-fcm",
        "impush_pushes_total",
        &["outcome=\"revoked\""],
        1.0,
    )
    .await;
    assert_eq!(settled_deliveries(&fleet).await, vec![]);
    assert_eq!(fleet.deliveries(None).await.len(), 0, "never delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recall_after_delivery_replaces_the_notification_where_the_vendor_can() {
    let fleet = Fleet::start(FleetOptions {
        vendors: vec![Vendor::Apns, Vendor::Fcm, Vendor::Huawei],
        ..FleetOptions::default()
    })
    .await;
    let t = now_ms() - 10_000;
    let iphone = apns_token(7);
    let mut state = phones(&["vinson"], t);
    state.extend([
        register("vinson", "iphone", Vendor::Apns, &iphone, t),
        presence("vinson", "iphone", PresenceState::Background, 0, t + 1),
        register("vinson", "mate", Vendor::Huawei, "huawei-vinson", t),
        presence("vinson", "mate", PresenceState::Background, 0, t + 1),
    ]);
    publish_state(&fleet, state).await;
    let shown = || Event::OfflineMessage(text_message("m-shown", "denny", "vinson", "shown"));
    publish_messages(&fleet, vec![shown()]).await;
    fleet.wait_deliveries(WAIT, |d| d.len() >= 3).await;
    for sender in ["sender-apns", "sender-fcm", "sender-huawei"] {
        wait_metric(
            &fleet,
            sender,
            "impush_pushes_total",
            &["outcome=\"delivered\""],
            1.0,
        )
        .await;
    }

    publish_messages(&fleet, vec![recall("m-shown", now_ms())]).await;
    // APNs and FCM replace by collapse id: each device gets the recall text under the
    // message's own collapse id. Huawei is not replaced: too late there.
    for sender in ["sender-apns", "sender-fcm"] {
        wait_metric(
            &fleet,
            sender,
            "impush_recalls_total",
            &["outcome=\"replaced\""],
            1.0,
        )
        .await;
    }
    let router = fleet.metrics("impush-router").await;
    assert_eq!(
        metric(&router, "impush_recalls_total", &["outcome=\"too_late\""]),
        1.0
    );

    let deliveries = fleet.deliveries(None).await;
    let of = |token: &str| -> Vec<&Value> {
        deliveries.iter().filter(|d| d["token"] == token).collect()
    };
    let apns = of(&iphone);
    assert_eq!(apns.len(), 2, "{deliveries:#?}");
    assert_eq!(apns[1]["body"], "[message recalled]");
    assert_eq!(apns[0]["headers"]["apns-collapse-id"], "m-shown");
    assert_eq!(apns[1]["headers"]["apns-collapse-id"], "m-shown");
    let fcm = of("fcm-vinson");
    assert_eq!(fcm.len(), 2, "{deliveries:#?}");
    assert_eq!(fcm[1]["body"], "[message recalled]");
    let tag = |d: &Value| d["payload"]["message"]["android"]["notification"]["tag"].clone();
    assert_eq!(tag(fcm[0]), json!("m-shown"));
    assert_eq!(tag(fcm[1]), tag(fcm[0]), "the same tag replaces");
    assert_eq!(of("huawei-vinson").len(), 1);

    // The recall again and the message again: nothing more reaches any device.
    publish_messages(&fleet, vec![recall("m-shown", now_ms()), shown()]).await;
    for sender in ["sender-apns", "sender-fcm"] {
        wait_metric(
            &fleet,
            sender,
            "impush_pushes_total",
            &["outcome=\"duplicate\""],
            1.0,
        )
        .await;
    }
    assert_eq!(fleet.deliveries(None).await.len(), 5);
    let router = fleet.metrics("impush-router").await;
    assert_eq!(
        metric(&router, "impush_recalls_total", &["outcome=\"repeated\""]),
        1.0
    );
    assert_eq!(
        metric(&router, "impush_skips_total", &["reason=\"revoked\""]),
        1.0
    );
}

/// What the simulated devices' trays show (`GET /sim/notifications`), by token.
async fn tray(fleet: &Fleet) -> Vec<Value> {
    fleet
        .http()
        .get(format!("{}/sim/notifications", fleet.sim_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recall_after_delivery_is_withdrawn_on_harmony_and_xiaomi_and_replaced_on_fcm() {
    let fleet = Fleet::start(FleetOptions {
        vendors: vec![Vendor::Fcm, Vendor::Harmony, Vendor::Xiaomi, Vendor::Vivo],
        ..FleetOptions::default()
    })
    .await;
    let t = now_ms() - 10_000;
    let mut state = phones(&["vinson"], t);
    for (device, vendor, token) in [
        ("pura", Vendor::Harmony, "harmony-vinson"),
        ("redmi", Vendor::Xiaomi, "xiaomi-vinson"),
        ("x100", Vendor::Vivo, "vivo-vinson"),
    ] {
        state.extend([
            register("vinson", device, vendor, token, t),
            presence("vinson", device, PresenceState::Background, 0, t + 1),
        ]);
    }
    publish_state(&fleet, state).await;
    let gone = || Event::OfflineMessage(text_message("m-gone", "denny", "vinson", "oops"));
    publish_messages(&fleet, vec![gone()]).await;
    fleet.wait_deliveries(WAIT, |d| d.len() >= 4).await;
    for sender in [
        "sender-fcm",
        "sender-harmony",
        "sender-xiaomi",
        "sender-vivo",
    ] {
        wait_metric(
            &fleet,
            sender,
            "impush_pushes_total",
            &["outcome=\"delivered\""],
            1.0,
        )
        .await;
    }

    publish_messages(&fleet, vec![recall("m-gone", now_ms())]).await;
    // HarmonyOS and Xiaomi take the notification back through their revoke APIs; FCM
    // replaces it with the recall text; vivo keeps it (too late).
    for (sender, outcome) in [
        ("sender-harmony", "withdrawn"),
        ("sender-xiaomi", "withdrawn"),
        ("sender-fcm", "replaced"),
    ] {
        wait_metric(
            &fleet,
            sender,
            "impush_recalls_total",
            &[&format!("outcome=\"{outcome}\"")],
            1.0,
        )
        .await;
    }
    let router = fleet.metrics("impush-router").await;
    assert_eq!(
        metric(&router, "impush_recalls_total", &["outcome=\"too_late\""]),
        1.0
    );

    let tray = tray(&fleet).await;
    let of = |token: &str| -> Vec<&Value> { tray.iter().filter(|n| n["token"] == token).collect() };
    for token in ["harmony-vinson", "xiaomi-vinson"] {
        let shown = of(token);
        assert_eq!(shown.len(), 1, "{tray:#?}");
        assert_eq!(shown[0]["withdrawn"], true, "{token}: {tray:#?}");
        assert_eq!(shown[0]["replaced"], 0, "{token}: withdrawn, not replaced");
        assert!(
            shown[0]["body"].as_str().unwrap().contains("oops"),
            "{token}: {tray:#?}"
        );
    }
    let fcm = of("fcm-vinson");
    assert_eq!(fcm.len(), 1, "{tray:#?}");
    assert_eq!(fcm[0]["id"], "m-gone");
    assert_eq!(fcm[0]["body"], "[message recalled]");
    assert_eq!(
        (fcm[0]["replaced"].clone(), fcm[0]["withdrawn"].clone()),
        (json!(1), json!(false))
    );
    assert!(
        of("vivo-vinson").is_empty(),
        "vivo notifications have no tracked id"
    );
    // A withdrawal sends no push: HarmonyOS and Xiaomi received the message once.
    let deliveries = fleet.deliveries(None).await;
    for token in ["harmony-vinson", "xiaomi-vinson", "vivo-vinson"] {
        let n = deliveries.iter().filter(|d| d["token"] == token).count();
        assert_eq!(n, 1, "{token}: {deliveries:#?}");
    }

    // The recall again: the withdrawals are deduplicated like pushes.
    publish_messages(&fleet, vec![recall("m-gone", now_ms())]).await;
    for sender in ["sender-harmony", "sender-xiaomi", "sender-fcm"] {
        wait_metric(
            &fleet,
            sender,
            "impush_pushes_total",
            &["outcome=\"duplicate\""],
            1.0,
        )
        .await;
    }
    for sender in ["sender-harmony", "sender-xiaomi"] {
        let metrics = fleet.metrics(sender).await;
        assert_eq!(
            metric(&metrics, "impush_recalls_total", &["outcome=\"withdrawn\""]),
            1.0,
            "{sender}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_thousand_member_group_half_muted_costs_no_more_redis_round_trips() {
    let fleet = Fleet::start(fcm_fleet()).await;
    let t = now_ms() - 10_000;
    let members: Vec<String> = (0..10_000).map(|i| format!("member-{i}")).collect();
    // Every 50th member has a phone in the background.
    let with_phones: Vec<&str> = members.iter().step_by(50).map(String::as_str).collect();
    publish_state(&fleet, phones(&with_phones, t)).await;
    let group = |msg_id: &str| {
        let mut message = text_message(msg_id, "founder", "", "all hands");
        message.group_id = "company".into();
        message.group_name = "Company".into();
        message.member_ids = members.clone();
        Event::OfflineMessage(message)
    };
    let redis_cost = |text: &str| {
        (
            metric(text, "impush_redis_round_trips_total", &[]),
            metric(text, "impush_redis_commands_total", &[]),
        )
    };

    let before = redis_cost(&fleet.metrics("impush-router").await);
    publish_messages(&fleet, vec![group("m-unmuted")]).await;
    let unmuted = redis_cost(&fleet.metrics("impush-router").await);
    assert_eq!(settled_deliveries(&fleet).await.len(), 200);

    // Half the group mutes it (every member i with i % 100 < 50: half of the phones too),
    // and a tenth have quiet hours that do not hold now.
    let mut settings: Vec<Event> = members
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 100 < 50)
        .map(|(_, m)| conversation_option(m, "group:company", ReceiveOption::NotNotify, t + 10))
        .collect();
    settings.extend(
        members
            .iter()
            .step_by(10)
            .map(|m| quiet_hours(m, 0, 0, ReceiveOption::NotNotify, t + 10)),
    );
    publish_state(&fleet, settings).await;

    let idle = redis_cost(&fleet.metrics("impush-router").await);
    publish_messages(&fleet, vec![group("m-half-muted")]).await;
    let muted = redis_cost(&fleet.metrics("impush-router").await);
    assert_eq!(settled_deliveries(&fleet).await.len(), 200 + 100);

    let round_trips = (unmuted.0 - before.0, muted.0 - idle.0);
    let commands = (unmuted.1 - before.1, muted.1 - idle.1);
    assert!(round_trips.0 > 0.0, "the router's round trips are counted");
    assert_eq!(
        round_trips.1, round_trips.0,
        "no more round trips with settings than without"
    );
    assert_eq!(commands.1, commands.0, "no more commands either");
    let router = fleet.metrics("impush-router").await;
    assert_eq!(
        metric(
            &router,
            "impush_skips_total",
            &["reason=\"conversation_muted\""]
        ),
        100.0
    );
}
