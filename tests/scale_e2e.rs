//! impush scaled out, end to end: the whole fleet on a Redis Cluster (presence, badges,
//! deduplication and token pruning hold with users spread over every primary), and several
//! routers and senders competing on the same queues (every notification reaches each
//! device exactly once). Each test runs its own fleet under a unique prefix.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fleet;
#[path = "../crates/impush-store/tests/common/slots.rs"]
mod slots;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use fleet::{APP, Fleet, FleetOptions, apns_token, now_ms, presence, register, text_message};
use impush_proto::Event;
use impush_proto::v1::{OfflineMessage, PresenceState, Vendor};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

/// Publishes, then gives the fleet a moment to do anything it should not.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(2000)).await;
}

/// The sum of a Prometheus counter over the series whose labels contain every `filter`.
/// Registers one APNs device ("iphone") per user, in the background, with `unread(i)`
/// unread messages, and waits for ingest to store them.
async fn register_offline_iphones(fleet: &Fleet, users: &[String], unread: impl Fn(usize) -> u32) {
    let t = now_ms() - 10_000;
    let mut events = Vec::new();
    for (i, user) in users.iter().enumerate() {
        events.push(register(
            user,
            "iphone",
            Vendor::Apns,
            &apns_token(i as u32),
            t,
        ));
        events.push(presence(
            user,
            "iphone",
            PresenceState::Background,
            unread(i),
            t + 1,
        ));
    }
    fleet.publish(events).await;
    settle().await;
}

fn counter(metrics: &str, name: &str, filters: &[&str]) -> f64 {
    metrics
        .lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|line| filters.iter().all(|f| line.contains(f)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// How many times each (token, body) pair was delivered.
fn delivery_counts(deliveries: &[Value]) -> BTreeMap<(String, String), usize> {
    let mut counts = BTreeMap::new();
    for d in deliveries {
        let key = (
            d["token"].as_str().unwrap_or_default().to_owned(),
            d["body"].as_str().unwrap_or_default().to_owned(),
        );
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

fn group_message(msg_id: &str, text: &str, members: &[String]) -> OfflineMessage {
    let mut message = text_message(msg_id, "denny", "", text);
    message.group_id = "@TGS#team".into();
    message.group_name = "Team".into();
    message.member_ids = members.to_vec();
    message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_presence_badges_dedupe_and_pruning_all_hold() {
    let fleet = Fleet::start(FleetOptions {
        redis_cluster: true,
        ..FleetOptions::default()
    })
    .await;
    let t = now_ms() - 10_000;
    // u0..u10 in the background with i unread; u11 in the foreground; vinson has an
    // iPhone and an Android phone whose token the vendor declares dead.
    let users: Vec<String> = (0..12).map(|i| format!("u{i}")).collect();
    let mut events = Vec::new();
    for (i, user) in users.iter().enumerate() {
        events.push(register(
            user,
            "iphone",
            Vendor::Apns,
            &apns_token(i as u32),
            t,
        ));
        let state = if i == 11 {
            PresenceState::Foreground
        } else {
            PresenceState::Background
        };
        events.push(presence(user, "iphone", state, i as u32, t + 1));
    }
    events.push(register(
        "vinson",
        "iphone",
        Vendor::Apns,
        &apns_token(100),
        t,
    ));
    events.push(presence(
        "vinson",
        "iphone",
        PresenceState::Background,
        0,
        t + 1,
    ));
    events.push(register(
        "vinson",
        "android",
        Vendor::Fcm,
        "invalid-dead",
        t,
    ));
    events.push(presence(
        "vinson",
        "android",
        PresenceState::Background,
        0,
        t + 1,
    ));
    fleet.publish(events).await;
    settle().await;

    // The users' keys are spread over every primary of the cluster.
    for url in &fleet.redis_urls {
        let mut node = redis::Client::open(url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", fleet.prefix))
            .query_async(&mut node)
            .await
            .unwrap();
        assert!(!keys.is_empty(), "no user of the test on {url}");
    }

    let c2c: Vec<Event> = users
        .iter()
        .enumerate()
        .map(|(i, user)| {
            Event::OfflineMessage(text_message(
                &format!("m-c2c-{i}"),
                "denny",
                user,
                &format!("hi {i}"),
            ))
        })
        .collect();
    fleet.publish(c2c).await;
    fleet.wait_deliveries(WAIT, |d| d.len() >= 11).await;

    // The same message published again, then a group message to everyone.
    let mut members = users.clone();
    members.push("vinson".into());
    fleet
        .publish(vec![
            Event::OfflineMessage(text_message("m-c2c-0", "denny", "u0", "hi 0")),
            Event::OfflineMessage(group_message("m-group", "lunch?", &members)),
        ])
        .await;
    fleet.wait_deliveries(WAIT, |d| d.len() >= 23).await;
    settle().await;

    let deliveries = fleet.deliveries(None).await;
    let counts = delivery_counts(&deliveries);
    assert!(
        counts.values().all(|&n| n == 1),
        "a device got a notification twice: {counts:?}"
    );
    assert_eq!(deliveries.len(), 23, "{deliveries:#?}");
    let badge_of = |token: &str, body: &str| {
        deliveries
            .iter()
            .find(|d| d["token"] == token && d["body"] == body)
            .and_then(|d| d["badge"].as_i64())
    };
    for i in 0..11u32 {
        let token = apns_token(i);
        assert_eq!(
            badge_of(&token, &format!("DENNY: hi {i}")),
            Some(i as i64 + 1),
            "u{i}: unread + this push"
        );
        assert_eq!(
            badge_of(&token, "DENNY (Team): lunch?"),
            Some(i as i64 + 2),
            "u{i}: the group message is one more"
        );
    }
    assert!(
        !deliveries.iter().any(|d| d["token"] == apns_token(11)),
        "a device in the foreground gets nothing"
    );
    assert_eq!(badge_of(&apns_token(100), "DENNY (Team): lunch?"), Some(1));

    // The dead token was pruned: the registration is gone from the cluster.
    let pruned = counter(
        &fleet.metrics("sender-fcm").await,
        "impush_tokens_pruned_total",
        &[],
    );
    assert_eq!(pruned, 1.0);
    let mut cluster = redis::cluster::ClusterClient::new(fleet.redis_urls.clone())
        .unwrap()
        .get_async_connection()
        .await
        .unwrap();
    let devices: BTreeSet<String> = redis::cmd("SMEMBERS")
        .arg(format!("{}:{{{APP}:vinson}}:devs", fleet.prefix))
        .query_async(&mut cluster)
        .await
        .unwrap();
    assert_eq!(devices, BTreeSet::from(["iphone".to_owned()]));
}

/// Publishes a round of notifications to `users` every few milliseconds until `stop`:
/// one C2C message to each, every fourth round a group message to all, and each round the
/// first message of the round before published again (IM core retrying). Returns every
/// distinct (token, body) that must be delivered, and the number of them per user.
async fn stream_until(
    fleet: &Fleet,
    users: &[String],
    stop: tokio::sync::watch::Receiver<bool>,
) -> (BTreeSet<(String, String)>, Vec<u32>) {
    let mut expected = BTreeSet::new();
    let mut per_user = vec![0u32; users.len()];
    let mut round = 0;
    while !*stop.borrow() {
        let mut events = Vec::new();
        for (i, user) in users.iter().enumerate() {
            let text = format!("r{round}-{i}");
            events.push(Event::OfflineMessage(text_message(
                &format!("m-{text}"),
                "denny",
                user,
                &text,
            )));
            expected.insert((apns_token(i as u32), format!("DENNY: {text}")));
            per_user[i] += 1;
        }
        if round % 4 == 0 {
            events.push(Event::OfflineMessage(group_message(
                &format!("g-{round}"),
                &format!("g{round}"),
                users,
            )));
            for (i, count) in per_user.iter_mut().enumerate() {
                expected.insert((apns_token(i as u32), format!("DENNY (Team): g{round}")));
                *count += 1;
            }
        }
        if round > 0 {
            let text = format!("r{}-0", round - 1);
            events.push(Event::OfflineMessage(text_message(
                &format!("m-{text}"),
                "denny",
                &users[0],
                &text,
            )));
        }
        fleet.publish(events).await;
        round += 1;
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    (expected, per_user)
}

/// Waits until the primaries on `ports` have answered `code` (ASK, TRYAGAIN) more often
/// than `before` in all: impush's traffic has met the slot move.
async fn wait_for_errors(ports: &[u16], code: &str, before: u64) {
    let deadline = std::time::Instant::now() + WAIT;
    while ports
        .iter()
        .map(|&port| slots::errors_answered(port, code))
        .sum::<u64>()
        <= before
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no {code} while a slot was half moved"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_redis_cluster_resharding_under_load_delivers_each_notification_once_with_exact_badges()
 {
    let fleet = Fleet::start(FleetOptions {
        vendors: vec![Vendor::Apns],
        redis_cluster: true,
        routers: 2,
        senders_per_vendor: 2,
        ..FleetOptions::default()
    })
    .await;
    let seed = 7101;
    // Users of this test only, so that the slots moved hold no other test's users.
    let users: Vec<String> = (0..24).map(|i| format!("{}-r{i}", fleet.prefix)).collect();
    register_offline_iphones(&fleet, &users, |i| (i % 4) as u32).await;

    // The slots of six users move while notifications stream to everyone.
    let base = |user: &str| format!("{}:{{{APP}:{user}}}", fleet.prefix);
    let mut moving_users = Vec::new();
    let mut slots_taken = BTreeSet::new();
    for user in &users {
        let slot = slots::slot_of(seed, &base(user));
        if moving_users.len() < 6 && slots_taken.insert(slot) {
            moving_users.push((user.clone(), slot));
        }
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let load = stream_until(&fleet, &users, stopped);
    let reshard = async {
        let mut moves = Vec::new();
        for (user, slot) in &moving_users {
            let mut moving = slots::SlotMove::begin(seed, *slot);
            let ports = [moving.from.port, moving.to.port];
            let asks = slots::errors_answered(moving.from.port, "ASK");
            let tries: u64 = ports
                .iter()
                .map(|&p| slots::errors_answered(p, "TRYAGAIN"))
                .sum();
            // Half moved: the device set and hash on the target, the badge and delivery
            // records on the source, until the routers have met both ASK and TRYAGAIN.
            moving.migrate(&[
                format!("{}:devs", base(user)),
                format!("{}:d:iphone", base(user)),
            ]);
            wait_for_errors(&ports[..1], "ASK", asks).await;
            wait_for_errors(&ports, "TRYAGAIN", tries).await;
            // The rest a key at a time, as a reshard of a busy slot goes.
            while let Some(key) = moving.keys_left(1).pop() {
                moving.migrate(&[key]);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            moving.finish();
            moves.push(moving);
        }
        // Every slot goes back where it was, still under load (stale maps: MOVED).
        for moving in moves {
            drop(moving);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stop.send(true).unwrap();
    };
    let ((expected, per_user), ()) = tokio::join!(load, reshard);
    fleet
        .wait_deliveries(WAIT, |d| d.len() >= expected.len())
        .await;
    settle().await;

    let deliveries = fleet.deliveries(None).await;
    let counts = delivery_counts(&deliveries);
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    let delivered: BTreeSet<(String, String)> = counts.into_keys().collect();
    assert_eq!(delivered, expected, "every notification, none else");
    // Each user's badges are its unread count plus 1, 2, ... n: every push counted once.
    for (i, n) in per_user.iter().enumerate() {
        let token = apns_token(i as u32);
        let mut badges: Vec<i64> = deliveries
            .iter()
            .filter(|d| d["token"] == token)
            .filter_map(|d| d["badge"].as_i64())
            .collect();
        badges.sort();
        let unread = (i % 4) as i64;
        let exact: Vec<i64> = (1..=i64::from(*n)).map(|k| unread + k).collect();
        assert_eq!(badges, exact, "badges of {}", users[i]);
    }
    assert_eq!(fleet.queue_len(&fleet.topology.dlq(Vendor::Apns)).await, 0);
    assert_eq!(fleet.queue_len(&fleet.topology.events_dlq()).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_routers_and_three_senders_on_one_queue_deliver_each_notification_exactly_once() {
    let fleet = Fleet::start(FleetOptions {
        vendors: vec![Vendor::Apns],
        routers: 3,
        senders_per_vendor: 3,
        ..FleetOptions::default()
    })
    .await;
    let users: Vec<String> = (0..40).map(|i| format!("member-{i}")).collect();
    register_offline_iphones(&fleet, &users, |_| 0).await;

    // 60 C2C messages, 6 group messages to all 40 members, and 10 C2C messages published
    // a second time (IM core retrying): 60 + 240 distinct notifications.
    let mut messages = Vec::new();
    let mut expected = BTreeSet::new();
    for k in 0..60 {
        let to = &users[k % users.len()];
        messages.push(Event::OfflineMessage(text_message(
            &format!("m-{k}"),
            "denny",
            to,
            &format!("c2c {k}"),
        )));
        expected.insert((
            apns_token((k % users.len()) as u32),
            format!("DENNY: c2c {k}"),
        ));
    }
    for g in 0..6 {
        messages.push(Event::OfflineMessage(group_message(
            &format!("g-{g}"),
            &format!("group {g}"),
            &users,
        )));
        for i in 0..users.len() {
            expected.insert((apns_token(i as u32), format!("DENNY (Team): group {g}")));
        }
    }
    for k in 0..10 {
        let to = &users[k % users.len()];
        messages.push(Event::OfflineMessage(text_message(
            &format!("m-{k}"),
            "denny",
            to,
            &format!("c2c {k}"),
        )));
    }
    fleet.publish(messages).await;
    fleet
        .wait_deliveries(WAIT, |d| d.len() >= expected.len())
        .await;
    settle().await;

    let deliveries = fleet.deliveries(None).await;
    let counts = delivery_counts(&deliveries);
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    let delivered: BTreeSet<(String, String)> = counts.into_keys().collect();
    assert_eq!(delivered, expected, "every notification, none else");

    // The work really was shared: every process of both pools took part.
    for name in ["impush-router", "impush-router-2", "impush-router-3"] {
        let routed = counter(
            &fleet.metrics(name).await,
            "impush_notifications_routed_total",
            &[],
        );
        assert!(routed > 0.0, "{name} routed nothing");
    }
    for name in ["sender-apns", "sender-apns-2", "sender-apns-3"] {
        let delivered = counter(
            &fleet.metrics(name).await,
            "impush_pushes_total",
            &["outcome=\"delivered\""],
        );
        assert!(delivered > 0.0, "{name} delivered nothing");
    }
}

/// CPU seconds (user + system) a process has used so far, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on Linux.
    Some(ticks / 100.0)
}

/// Every process of a given command name on the machine (the shared broker and Redis).
fn pids_named(name: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == name)
        })
        .collect()
}

/// CPU seconds used so far by each process of the run, by pid with its component: impush's
/// own processes by role, RabbitMQ and Redis (the shared servers, so other users' load on
/// them counts too), and `machine`: every core's busy time (`/proc/stat`).
fn cpu_sample(fleet: &Fleet) -> BTreeMap<(String, u32), f64> {
    let mut cpu = BTreeMap::new();
    for (name, pid) in fleet.pids() {
        let component = if name.starts_with("impush-router") {
            "routers"
        } else if name.starts_with("sender-") {
            "senders"
        } else if name == "impush-sim" {
            "sim"
        } else {
            "ingest"
        };
        if let Some(used) = cpu_seconds(pid) {
            cpu.insert((component.to_owned(), pid), used);
        }
    }
    for (component, comm) in [("rabbitmq", "beam.smp"), ("redis", "redis-server")] {
        for pid in pids_named(comm) {
            if let Some(used) = cpu_seconds(pid) {
                cpu.insert((component.to_owned(), pid), used);
            }
        }
    }
    if let Some(busy) = machine_busy_seconds() {
        cpu.insert(("machine".to_owned(), 0), busy);
    }
    cpu
}

/// Busy time of all cores together (everything but idle and iowait), from `/proc/stat`.
fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<f64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    let total: f64 = ticks.iter().sum();
    let idle = ticks.get(3)? + ticks.get(4)?;
    Some((total - idle) / 100.0)
}

/// Cores each component used between two samples, counting only processes in both.
fn cores_used(
    before: &BTreeMap<(String, u32), f64>,
    after: &BTreeMap<(String, u32), f64>,
    seconds: f64,
) -> BTreeMap<String, f64> {
    let mut cores = BTreeMap::new();
    for (key, used) in after {
        if let Some(was) = before.get(key) {
            *cores.entry(key.0.clone()).or_insert(0.0) += (used - was) / seconds;
        }
    }
    cores
}

/// A setting of the scale benchmark from the environment, or its default.
fn bench_setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// A run's notifications per second and the cores each component used meanwhile.
type ScaleRun = (f64, BTreeMap<String, f64>);

/// One run of the scale benchmark: a fresh fleet of `processes` routers and as many APNs
/// senders, the load published at once, timed until the senders have delivered all of it.
/// Returns notifications per second and the cores each component used meanwhile.
async fn scale_run(processes: usize, total: usize, latency_ms: u64, in_flight: usize) -> ScaleRun {
    let users: Vec<String> = (0..200).map(|i| format!("member-{i}")).collect();
    let fleet = Fleet::start(FleetOptions {
        vendors: vec![Vendor::Apns],
        routers: processes,
        senders_per_vendor: processes,
        sender_concurrency: in_flight,
        queue_type: "quorum",
        redis_cluster: std::env::var_os("IMPUSH_BENCH_REDIS_CLUSTER").is_some(),
        sim_latency_ms: latency_ms,
        ..FleetOptions::default()
    })
    .await;
    register_offline_iphones(&fleet, &users, |_| 0).await;

    // Half the notifications from C2C messages, half from 200-member group messages.
    let mut messages = Vec::new();
    for k in 0..total / 2 {
        let to = &users[k % users.len()];
        messages.push(Event::OfflineMessage(text_message(
            &format!("m-{k}"),
            "denny",
            to,
            &format!("c2c {k}"),
        )));
    }
    for g in 0..(total / 2).div_ceil(users.len()) {
        messages.push(Event::OfflineMessage(group_message(
            &format!("g-{g}"),
            &format!("group {g}"),
            &users,
        )));
    }
    let expected = (total / 2 + (total / 2).div_ceil(users.len()) * users.len()) as f64;
    let senders: Vec<String> = std::iter::once("sender-apns".to_owned())
        .chain((2..=processes).map(|n| format!("sender-apns-{n}")))
        .collect();

    let cpu_before = cpu_sample(&fleet);
    let started = std::time::Instant::now();
    fleet.publish(messages).await;
    let published = started.elapsed();
    let deadline = started + Duration::from_secs(600);
    loop {
        let mut delivered = 0.0;
        for name in &senders {
            delivered += counter(
                &fleet.metrics(name).await,
                "impush_pushes_total",
                &["outcome=\"delivered\""],
            );
        }
        if delivered >= expected {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {delivered} of {expected} delivered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cores = cores_used(&cpu_before, &cpu_sample(&fleet), elapsed);
    println!(
        "{processes} router(s) + {processes} sender(s): {expected} notifications in \
         {elapsed:.2} s (published in {:.2} s), cores used: {cores:?}",
        published.as_secs_f64()
    );
    (expected / elapsed, cores)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Throughput with 1, 2, 4 and 8 routers and senders on one queue, until something
/// saturates: a measurement, not a check (`make scale-bench`). impush-sim holds every vendor
/// answer for a round trip (`IMPUSH_BENCH_LATENCY_MS`, default 40) and each sender keeps
/// `IMPUSH_BENCH_IN_FLIGHT` pushes in flight (its prefetch, default 16), so one sender is
/// bound by latency as in production and more processes can add throughput until the CPU or
/// the broker saturates. The fleet sizes (`IMPUSH_BENCH_PROCESSES`, default `1,2,4,8`) are
/// run `IMPUSH_BENCH_REPETITIONS` times (default 3) interleaved, so that a change in the
/// machine's other load spreads over all of them; the table gives the median of each,
/// notifications per second, the ratio to the first size, and the cores each component
/// used. `IMPUSH_BENCH_NOTIFICATIONS` sets the load of one run (default 6000).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with make scale-bench"]
async fn scale_bench() {
    let total: usize = bench_setting("IMPUSH_BENCH_NOTIFICATIONS", 6000);
    let latency_ms: u64 = bench_setting("IMPUSH_BENCH_LATENCY_MS", 40);
    let in_flight: usize = bench_setting("IMPUSH_BENCH_IN_FLIGHT", 16);
    let repetitions: usize = bench_setting("IMPUSH_BENCH_REPETITIONS", 3);
    let sizes: Vec<usize> = bench_setting("IMPUSH_BENCH_PROCESSES", "1,2,4,8".to_owned())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    println!(
        "scale bench: {total} notifications a run, vendor latency {latency_ms} ms, \
         {in_flight} pushes in flight per sender, sizes {sizes:?} x {repetitions}, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut runs: BTreeMap<usize, Vec<ScaleRun>> = BTreeMap::new();
    for repetition in 1..=repetitions {
        for &processes in &sizes {
            print!("repetition {repetition}: ");
            let run = scale_run(processes, total, latency_ms, in_flight).await;
            runs.entry(processes).or_default().push(run);
        }
    }

    let components = [
        "routers", "senders", "sim", "ingest", "rabbitmq", "redis", "machine",
    ];
    let base = sizes
        .first()
        .and_then(|n| runs.get(n))
        .map(|r| median(r.iter().map(|(rate, _)| *rate).collect()))
        .unwrap_or(1.0);
    println!(
        "\n| routers + senders | notifications/s (median) | runs | ratio to {} | cores: routers | senders | sim | ingest | rabbitmq | redis | whole machine |",
        sizes.first().map_or(1, |n| *n)
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for &processes in &sizes {
        let Some(runs) = runs.get(&processes) else {
            continue;
        };
        let rate = median(runs.iter().map(|(rate, _)| *rate).collect());
        let each: Vec<String> = runs.iter().map(|(rate, _)| format!("{rate:.0}")).collect();
        let cores: Vec<String> = components
            .iter()
            .map(|component| {
                let used = median(
                    runs.iter()
                        .map(|(_, cores)| cores.get(*component).copied().unwrap_or(0.0))
                        .collect(),
                );
                format!("{used:.2}")
            })
            .collect();
        println!(
            "| {processes} + {processes} | {rate:.0} | {} | {:.2} | {} |",
            each.join(", "),
            rate / base,
            cores.join(" | "),
        );
    }
}
