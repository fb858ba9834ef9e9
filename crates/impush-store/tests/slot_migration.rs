//! The store while a Redis Cluster slot moves between primaries (resharding), on the local
//! 3-primary test cluster: the slot of a test user is moved by hand (`common/slots.rs`)
//! and the store is used between the steps. A batch must follow ASK to keys already moved,
//! retry scripts whose keys the move has split (TRYAGAIN) until it ends, follow MOVED once
//! it has ended, and never run a command twice: badge bumps count once, claims are taken
//! once. The tests move slots, so they run one at a time (`.config/nextest.toml`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::slots::{SlotMove, errors_answered, owner_of, slot_of};
use common::*;
use impush_proto::v1::PresenceState;
use impush_store::{DeviceRef, SendClaim, Store};
use redis::AsyncCommands;

/// Under `cargo test` (threads, no nextest group) the moves still happen one at a time.
static ONE_MOVE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn dev<'a>(user_id: &'a str, device_id: &'a str) -> DeviceRef<'a> {
    DeviceRef { user_id, device_id }
}

fn seed_port() -> u16 {
    let url = cluster_urls().remove(0);
    url.rsplit(':').next().unwrap().parse().unwrap()
}

/// A user id no other test uses, so its slot holds only this test's keys of it.
fn fresh_user(name: &str) -> String {
    format!("{name}-{}", uuid::Uuid::new_v4().simple())
}

/// A fresh user whose slot the primary on `port` serves, other than `not_slot`.
fn fresh_user_on(name: &str, port: u16, not_slot: u16) -> String {
    loop {
        let user = fresh_user(name);
        let slot = slot_of(seed_port(), &format!("{{{APP}:{user}}}"));
        if slot != not_slot && owner_of(seed_port(), slot).port == port {
            return user;
        }
    }
}

/// The keys of one user, as `keys.rs` lays them out.
struct UserKeys {
    base: String,
}

impl UserKeys {
    fn new(t: &TestStore, user: &str) -> UserKeys {
        UserKeys {
            base: format!("{}:{{{APP}:{user}}}", t.prefix),
        }
    }
    fn slot(&self) -> u16 {
        slot_of(seed_port(), &self.base)
    }
    fn devices(&self) -> String {
        format!("{}:devs", self.base)
    }
    fn device(&self, device: &str) -> String {
        format!("{}:d:{device}", self.base)
    }
    fn settings(&self) -> String {
        format!("{}:s", self.base)
    }
    fn badge(&self, msg: &str, device: &str) -> String {
        format!("{}:b:{msg}:{device}", self.base)
    }
}

/// A user with these devices registered (APNs, token `<device>-tok`), in the background
/// with no unread messages.
async fn user_with_devices(store: &Store, user: &str, devices: &[&str]) {
    for device in devices {
        store
            .register_device(&registered(user, device, &format!("{device}-tok"), 1))
            .await
            .unwrap();
        store
            .set_presence(&presence(user, device, PresenceState::Background, 0, 2))
            .await
            .unwrap();
    }
}

async fn pushes_since(t: &TestStore, key: &str) -> Option<String> {
    let mut raw = t.raw.clone();
    raw.hget(key, "since").await.unwrap()
}

/// Whether the primary on `port` holds `key` itself (asked without a redirect).
fn holds(port: u16, key: &str) -> bool {
    let keys: Vec<String> = redis::cmd("CLUSTER")
        .arg("GETKEYSINSLOT")
        .arg(slot_of(port, key))
        .arg(10_000)
        .query(&mut common::slots::connect(port))
        .unwrap();
    keys.iter().any(|k| k == key)
}

/// Waits until the two primaries of a move have answered TRYAGAIN more often than
/// `before` (a call of the test is being refused and retried).
async fn wait_for_tryagain(moving: &SlotMove, before: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while errors_answered(moving.from.port, "TRYAGAIN")
        + errors_answered(moving.to.port, "TRYAGAIN")
        <= before
    {
        assert!(Instant::now() < deadline, "the call never met TRYAGAIN");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn tryagain_count(moving: &SlotMove) -> u64 {
    errors_answered(moving.from.port, "TRYAGAIN") + errors_answered(moving.to.port, "TRYAGAIN")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_of_a_user_whose_keys_are_half_migrated_follow_ask_to_the_keys_moved() {
    let _one = ONE_MOVE_AT_A_TIME.lock().await;
    let t = TestStore::new(Target::Cluster).await;
    let s = &t.store;
    let user = fresh_user("half");
    let keys = UserKeys::new(&t, &user);
    user_with_devices(s, &user, &["a", "b", "c"]).await;
    s.set_settings(&settings(
        &user,
        impush_proto::v1::OpenPush::Enabled,
        "ding.caf",
        1,
    ))
    .await
    .unwrap();
    let other = fresh_user("other");
    user_with_devices(s, &other, &["x"]).await;
    let before = s
        .fetch_recipients(APP, &[other.clone(), user.clone()])
        .await
        .unwrap();

    // The set of devices and one device hash move; two device hashes and the settings stay.
    let moving = SlotMove::begin(seed_port(), keys.slot());
    moving.migrate(&[keys.devices(), keys.device("a")]);
    assert!(holds(moving.to.port, &keys.devices()));
    assert!(holds(moving.from.port, &keys.device("b")));
    assert!(holds(moving.from.port, &keys.settings()));

    let during = s
        .fetch_recipients(APP, &[other.clone(), user.clone()])
        .await
        .unwrap();
    assert_eq!(during, before, "the same data, wherever each key is");
    assert_eq!(during[1].devices.len(), 3);
    assert_eq!(during[1].devices[0].state.token, "a-tok");
    assert!(during[1].settings.is_some());
    drop(moving);
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_script_whose_keys_a_migration_has_split_is_retried_until_the_migration_ends() {
    let _one = ONE_MOVE_AT_A_TIME.lock().await;
    let t = TestStore::new(Target::Cluster).await;
    let s = t.store.clone();
    let user = fresh_user("split");
    let keys = UserKeys::new(&t, &user);
    user_with_devices(&s, &user, &["a", "b"]).await;

    let mut moving = SlotMove::begin(seed_port(), keys.slot());
    moving.migrate(&[keys.device("a")]);
    let before = tryagain_count(&moving);
    let bump = {
        let (s, user) = (s.clone(), user.clone());
        tokio::spawn(async move {
            s.bump_badges(APP, "m1", &[dev(&user, "a"), dev(&user, "b")], 60)
                .await
        })
    };
    // Device a's hash is on the target, b's on the source: neither node can run the script.
    wait_for_tryagain(&moving, before).await;
    moving.finish();
    assert_eq!(bump.await.unwrap().unwrap(), vec![1, 1]);
    assert_eq!(
        pushes_since(&t, &keys.device("a")).await.as_deref(),
        Some("1")
    );
    assert_eq!(
        pushes_since(&t, &keys.device("b")).await.as_deref(),
        Some("1")
    );
    drop(moving);
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn badge_bumps_during_a_migration_count_each_message_once_per_device() {
    let _one = ONE_MOVE_AT_A_TIME.lock().await;
    let t = TestStore::new(Target::Cluster).await;
    let s = t.store.clone();
    let user = fresh_user("bumped");
    let keys = UserKeys::new(&t, &user);
    user_with_devices(&s, &user, &["a", "b"]).await;
    let source = owner_of(seed_port(), keys.slot()).port;
    // A second user on the same primary: its commands share pipelines with the first's.
    let neighbour = fresh_user_on("neighbour", source, keys.slot());
    user_with_devices(&s, &neighbour, &["x"]).await;
    let devices = [dev(&user, "a"), dev(&user, "b"), dev(&neighbour, "x")];
    assert_eq!(
        s.bump_badges(APP, "m0", &devices, 60).await.unwrap(),
        vec![1, 1, 1]
    );

    // Device a and its badge record of m0 move; b and its record stay.
    let mut moving = SlotMove::begin(seed_port(), keys.slot());
    assert_eq!(moving.from.port, source);
    moving.migrate(&[keys.device("a"), keys.badge("m0", "a")]);
    let before = tryagain_count(&moving);
    // m0 again (a redelivery) and three new messages, all at once.
    let calls: Vec<_> = ["m0", "m1", "m2", "m3"]
        .into_iter()
        .map(|msg| {
            let (s, user, neighbour) = (s.clone(), user.clone(), neighbour.clone());
            tokio::spawn(async move {
                let devices = [dev(&user, "a"), dev(&user, "b"), dev(&neighbour, "x")];
                s.bump_badges(APP, msg, &devices, 60).await
            })
        })
        .collect();
    wait_for_tryagain(&moving, before).await;
    moving.finish();
    let mut counts = Vec::new();
    for call in calls {
        counts.push(call.await.unwrap().unwrap());
    }
    assert_eq!(
        counts[0],
        vec![1, 1, 1],
        "a redelivery gets its numbers back"
    );
    for device in 0..3 {
        let mut numbers: Vec<u32> = counts[1..].iter().map(|c| c[device]).collect();
        numbers.sort();
        assert_eq!(
            numbers,
            vec![2, 3, 4],
            "device {device}: each message counted once"
        );
    }
    for key in [keys.device("a"), keys.device("b")] {
        assert_eq!(pushes_since(&t, &key).await.as_deref(), Some("4"), "{key}");
    }
    let neighbour_keys = UserKeys::new(&t, &neighbour);
    assert_eq!(
        pushes_since(&t, &neighbour_keys.device("x"))
            .await
            .as_deref(),
        Some("4")
    );

    // After the move the store's slot map is stale: MOVED, and still the same numbers.
    assert_eq!(
        s.bump_badges(APP, "m2", &devices, 60).await.unwrap(),
        counts[2]
    );
    drop(moving);
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn send_claims_during_a_migration_are_taken_exactly_once() {
    let _one = ONE_MOVE_AT_A_TIME.lock().await;
    let t = TestStore::new(Target::Cluster).await;
    let s = t.store.clone();
    let other_process = t.connect_another().await;
    let user = fresh_user("claimed");
    let keys = UserKeys::new(&t, &user);
    user_with_devices(&s, &user, &["a", "b"]).await;
    let mut moving = SlotMove::begin(seed_port(), keys.slot());
    let neighbour = fresh_user_on("neighbour", moving.from.port, keys.slot());
    moving.migrate(&[keys.devices(), keys.device("a")]);
    let devices = [dev(&user, "a"), dev(&user, "b"), dev(&neighbour, "x")];

    // The user's claims are new keys of a migrating slot: the source sends them to the
    // target (ASK); the neighbour's, in the same pipeline, are taken on the first try and
    // must not be tried again (a second try would find its own claim: InProgress).
    assert_eq!(
        s.claim_for_send(APP, "m1", &devices, 60).await.unwrap(),
        vec![SendClaim::Claimed; 3]
    );
    assert!(holds(moving.to.port, &format!("{}:sent:m1:a", keys.base)));
    assert_eq!(
        other_process
            .claim_for_send(APP, "m1", &devices, 60)
            .await
            .unwrap(),
        vec![SendClaim::InProgress; 3],
        "another process finds every claim taken"
    );
    s.mark_sent(APP, "m1", &devices, 60).await.unwrap();
    assert_eq!(
        s.already_sent(APP, "m1", &devices).await.unwrap(),
        vec![true; 3]
    );
    moving.finish();
    assert_eq!(
        other_process
            .claim_for_send(APP, "m1", &devices, 60)
            .await
            .unwrap(),
        vec![SendClaim::AlreadySent; 3]
    );
    drop(moving);
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_finished_migration_is_followed_through_moved_with_a_stale_slot_map() {
    let _one = ONE_MOVE_AT_A_TIME.lock().await;
    let t = TestStore::new(Target::Cluster).await;
    let s = &t.store;
    let user = fresh_user("moved");
    let keys = UserKeys::new(&t, &user);
    user_with_devices(s, &user, &["a"]).await;
    let before = s
        .fetch_recipients(APP, std::slice::from_ref(&user))
        .await
        .unwrap();

    let mut moving = SlotMove::begin(seed_port(), keys.slot());
    moving.finish();
    assert_eq!(owner_of(seed_port(), keys.slot()), moving.to);
    let moved_before = errors_answered(moving.from.port, "MOVED");
    assert_eq!(
        s.fetch_recipients(APP, std::slice::from_ref(&user))
            .await
            .unwrap(),
        before
    );
    assert!(
        errors_answered(moving.from.port, "MOVED") > moved_before,
        "the store asked the old owner first"
    );
    assert_eq!(
        s.bump_badges(APP, "m1", &[dev(&user, "a")], 60)
            .await
            .unwrap(),
        vec![1]
    );
    drop(moving);
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_migration_target_that_forgot_the_scripts_gets_them_and_runs_each_script_once() {
    let _one = ONE_MOVE_AT_A_TIME.lock().await;
    let t = TestStore::new(Target::Cluster).await;
    let s = &t.store;
    let user = fresh_user("noscript");
    let keys = UserKeys::new(&t, &user);
    user_with_devices(s, &user, &["a"]).await;
    assert_eq!(
        s.bump_badges(APP, "m1", &[dev(&user, "a")], 60)
            .await
            .unwrap(),
        vec![1]
    );
    let moving = SlotMove::begin(seed_port(), keys.slot());
    moving.migrate(&[keys.devices(), keys.device("a"), keys.badge("m1", "a")]);
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query(&mut common::slots::connect(moving.to.port))
        .unwrap();

    // ASK to the target, NOSCRIPT there, the scripts loaded, ASK again: the number of m1.
    assert_eq!(
        s.bump_badges(APP, "m1", &[dev(&user, "a")], 60)
            .await
            .unwrap(),
        vec![1]
    );
    assert_eq!(
        pushes_since(&t, &keys.device("a")).await.as_deref(),
        Some("1")
    );
    drop(moving);
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_script_split_by_a_migration_that_does_not_end_is_a_transient_error_not_a_hang() {
    let _one = ONE_MOVE_AT_A_TIME.lock().await;
    let t = TestStore::new(Target::Cluster).await;
    let s = &t.store;
    let user = fresh_user("stuck");
    let keys = UserKeys::new(&t, &user);
    user_with_devices(s, &user, &["a", "b"]).await;
    let moving = SlotMove::begin(seed_port(), keys.slot());
    moving.migrate(&[keys.device("a")]);

    // The move stays half done: the store gives up after its rounds, and the caller
    // requeues the message rather than waiting for ever.
    let err = s
        .bump_badges(APP, "m1", &[dev(&user, "a"), dev(&user, "b")], 60)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(
        pushes_since(&t, &keys.device("a")).await.as_deref(),
        Some("0")
    );
    assert_eq!(
        pushes_since(&t, &keys.device("b")).await.as_deref(),
        Some("0")
    );
    drop(moving);
    t.cleanup().await;
}
