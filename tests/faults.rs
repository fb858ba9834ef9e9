//! The fault suite: impush's promise, "a notification IM core handed over is delivered once
//! or is in a dead-letter queue with its reason", held through worker crashes and
//! restarts, broker and Redis outages and misbehaving vendors. Each scenario plays a fixed
//! stream (1,000 notifications, or 10,000 with `IMPUSH_FAULTS=full`), strikes while it
//! flows, and ends with an audit row. docs/faults.md describes every scenario.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fleet;
#[path = "faults/mod.rs"]
mod harness;

use std::time::{Duration, Instant};

use fleet::{Fleet, FleetOptions};
use harness::services::{DedicatedRabbit, DedicatedRedis};
use harness::{
    Expect, PacedPublisher, Rng, SERIAL, Scale, Stream, assert_workers_running, audit,
    delivered_so_far, duplicates_by_kill, metric_sum, write_note,
};
use impush_proto::v1::Vendor;
use serde_json::json;

const VENDORS: [Vendor; 2] = [Vendor::Apns, Vendor::Fcm];
const SENDER_CONCURRENCY: usize = 16;

fn options() -> FleetOptions {
    FleetOptions {
        vendors: VENDORS.to_vec(),
        sender_concurrency: SENDER_CONCURRENCY,
        // The production default: replicated, durable queues.
        queue_type: "quorum",
        ..FleetOptions::default()
    }
}

/// Until `at` after `start`.
async fn until(start: Instant, at: Duration) {
    tokio::time::sleep_until((start + at).into()).await;
}

/// Polls a worker's `/readyz` until it answers 503 naming exactly `failing`.
async fn wait_not_ready(fleet: &Fleet, name: &str, failing: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let expected = format!("not ready: {failing}");
    loop {
        if let Some((503, body)) = fleet.readyz(name).await
            && body.trim() == expected
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never reported {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_all_ready(fleet: &Fleet) {
    for name in fleet.worker_names() {
        fleet
            .wait_ready_within(&name, Duration::from_secs(120))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_router_and_senders_under_load_loses_nothing_and_repeats_at_most_the_in_flight() {
    let _serial = SERIAL.lock().await;
    let scenario = "kill -9 router and senders, restarted";
    let scale = Scale::from_env();
    let mut rng = Rng::from_env(scenario);
    let mut fleet = Fleet::start(options()).await;
    let stream = Stream::new("kill", scale);
    stream.load_state(&fleet).await;

    let started = Instant::now();
    let publisher = PacedPublisher::start(&fleet, stream.message_events(), scale.pacing());
    let window = scale.publish_window();
    let rounds = scale.pick(1, 2);
    let mut victims = Vec::new();
    for _ in 0..rounds {
        victims.extend(["impush-router", "sender-apns", "sender-fcm"]);
    }
    // Random moments spread over the publishing window, in order.
    let mut moments: Vec<Duration> = victims
        .iter()
        .map(|_| rng.between(window / 10, window * 9 / 10))
        .collect();
    moments.sort();
    let mut sender_kills_ms = Vec::new();
    for (victim, at) in victims.iter().zip(moments) {
        until(started, at).await;
        fleet.kill9(victim);
        let killed_at_ms = fleet::now_ms();
        let so_far = delivered_so_far(&fleet).await;
        eprintln!(
            "{scenario}: kill -9 {victim} at {} ms, {so_far} delivered",
            at.as_millis()
        );
        assert!(so_far < stream.expected.len(), "the kill landed mid-stream");
        if victim.starts_with("sender") {
            sender_kills_ms.push(killed_at_ms);
        }
        tokio::time::sleep(rng.between(Duration::ZERO, Duration::from_secs(1))).await;
        fleet.restart(victim);
    }
    publisher.finish().await;
    wait_all_ready(&fleet).await;
    // The documented window: one repeat per job in flight at a sender's kill (one target
    // per APNs and FCM job); a router's repeats are deduplicated.
    audit(
        &fleet,
        &stream,
        &VENDORS,
        scenario,
        started,
        Expect {
            max_duplicates: sender_kills_ms.len() * SENDER_CONCURRENCY,
            dead: vec![],
        },
    )
    .await;
    // The window, kill by kill (docs/faults.md): pushes the vendor accepted whose delivery
    // records the killed sender had not written yet.
    let by_kill = duplicates_by_kill(&fleet, &sender_kills_ms).await;
    let note = by_kill.note(scenario);
    eprintln!("{note}");
    write_note(&note);
    assert!(by_kill.max_per_kill() <= SENDER_CONCURRENCY, "{note}");
    assert_workers_running(&mut fleet);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_stopped_and_started_under_load_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let scenario = "RabbitMQ stop_app / start_app";
    let scale = Scale::from_env();
    let mut rng = Rng::from_env(scenario);
    let rabbit = DedicatedRabbit::start();
    let mut fleet = Fleet::start(FleetOptions {
        amqp_url: rabbit.url(),
        ..options()
    })
    .await;
    let stream = Stream::new("rabbit", scale);
    stream.load_state(&fleet).await;

    let started = Instant::now();
    let publisher = PacedPublisher::start(&fleet, stream.message_events(), scale.pacing());
    let window = scale.publish_window();
    until(started, rng.between(window / 5, window * 3 / 5)).await;
    rabbit.stop_app();
    eprintln!(
        "{scenario}: broker stopped at {} ms, {} delivered",
        started.elapsed().as_millis(),
        delivered_so_far(&fleet).await
    );
    let down_since = Instant::now();
    for name in fleet.worker_names() {
        wait_not_ready(&fleet, &name, "rabbitmq").await;
    }
    until(
        down_since,
        scale.pick(Duration::from_secs(5), Duration::from_secs(15)),
    )
    .await;
    rabbit.start_app();
    eprintln!(
        "{scenario}: broker started again after {} ms",
        down_since.elapsed().as_millis()
    );
    fleet.reconnect().await;
    wait_all_ready(&fleet).await;
    let republished = publisher.finish().await;
    eprintln!("{scenario}: IM core published {republished} unconfirmed events again");
    audit(
        &fleet,
        &stream,
        &VENDORS,
        scenario,
        started,
        Expect {
            max_duplicates: 0,
            dead: vec![],
        },
    )
    .await;
    assert_workers_running(&mut fleet);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_for_ten_seconds_under_load_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let scenario = "Redis killed and restarted";
    let scale = Scale::from_env();
    let mut rng = Rng::from_env(scenario);
    let mut redis = DedicatedRedis::start();
    let mut fleet = Fleet::start(FleetOptions {
        redis_url: redis.url(),
        ..options()
    })
    .await;
    let stream = Stream::new("redis", scale);
    stream.load_state(&fleet).await;

    let started = Instant::now();
    let publisher = PacedPublisher::start(&fleet, stream.message_events(), scale.pacing());
    let window = scale.publish_window();
    until(started, rng.between(window / 5, window * 3 / 5)).await;
    redis.kill();
    let down_since = Instant::now();
    eprintln!(
        "{scenario}: Redis killed at {} ms, {} delivered",
        started.elapsed().as_millis(),
        delivered_so_far(&fleet).await
    );
    until(down_since, Duration::from_secs(10)).await;
    redis.restart();
    publisher.finish().await;
    wait_all_ready(&fleet).await;
    audit(
        &fleet,
        &stream,
        &VENDORS,
        scenario,
        started,
        Expect {
            max_duplicates: 0,
            dead: vec![],
        },
    )
    .await;
    let requeued: f64 = {
        let mut sum = 0.0;
        for name in ["impush-router", "sender-apns", "sender-fcm"] {
            let metrics = fleet.metrics(name).await;
            sum += metric_sum(&metrics, "impush_events_requeued_total", &[])
                + metric_sum(&metrics, "impush_jobs_requeued_total", &[]);
        }
        sum
    };
    eprintln!("{scenario}: {requeued} deliveries given back while Redis was away");
    assert!(requeued > 0.0, "the outage struck while work was flowing");
    assert_workers_running(&mut fleet);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_answering_503_for_a_while_then_healthy_delivers_everything_once() {
    let _serial = SERIAL.lock().await;
    let scenario = "FCM answers 503, then healthy";
    let scale = Scale::from_env();
    let outage = scale.pick(Duration::from_secs(8), Duration::from_secs(30));
    // A ladder that outlasts the outage: nothing runs out of attempts.
    let mut fleet = Fleet::start(FleetOptions {
        retry_delays_ms: scale.pick(vec![500, 2_000, 5_000], vec![1_000, 5_000, 10_000]),
        max_attempts: 10,
        ..options()
    })
    .await;
    let stream = Stream::new("outage", scale);
    stream.load_state(&fleet).await;
    fleet
        .fault(
            json!({"vendor": "fcm", "status": 503, "reason": "UNAVAILABLE", "times": 100_000_000}),
        )
        .await;

    let started = Instant::now();
    let publisher = PacedPublisher::start(&fleet, stream.message_events(), scale.pacing());
    until(started, outage).await;
    let response = fleet
        .http()
        .delete(format!("{}/sim/faults", fleet.sim_url))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    eprintln!(
        "{scenario}: FCM healthy again after {} ms, {} delivered",
        started.elapsed().as_millis(),
        delivered_so_far(&fleet).await
    );
    publisher.finish().await;
    audit(
        &fleet,
        &stream,
        &VENDORS,
        scenario,
        started,
        Expect {
            max_duplicates: 0,
            dead: vec![],
        },
    )
    .await;
    let metrics = fleet.metrics("sender-fcm").await;
    let unavailable = metric_sum(
        &metrics,
        "impush_vendor_responses_total",
        &["fcm", "UNAVAILABLE"],
    );
    eprintln!("{scenario}: {unavailable} answers 503 UNAVAILABLE");
    assert!(unavailable > 0.0, "the outage was felt");
    assert_workers_running(&mut fleet);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_answering_429_with_retry_after_is_honoured_and_refusals_are_dead_lettered() {
    let _serial = SERIAL.lock().await;
    let scenario = "APNs answers 429 with Retry-After; refuses 2 devices";
    let scale = Scale::from_env();
    let mut fleet = Fleet::start(FleetOptions {
        // Retry-After (1 s) fits in the ladder: a retry, not a quota pause.
        retry_delays_ms: vec![200, 1_000, 2_000],
        max_attempts: 10,
        ..options()
    })
    .await;
    let stream = Stream::new("throttle", scale);
    stream.load_state(&fleet).await;
    // Two iPhones the vendor refuses for good (the first matching fault strikes, so these
    // come before the throttling): their notifications must be dead letters.
    let mut refused = 0;
    for user in [3, 7] {
        fleet
            .fault(
                json!({"vendor": "apns", "token": stream.iphone_token(user), "status": 400,
                "reason": "BadExpirationDate", "times": 1_000_000}),
            )
            .await;
        refused += stream.messages_per_user(user);
    }
    // One request in five is told to slow down for a second.
    let throttled = scale.messages / 5;
    fleet
        .fault(
            json!({"vendor": "apns", "status": 429, "reason": "TooManyRequests",
            "retry_after_s": 1, "times": throttled}),
        )
        .await;

    let started = Instant::now();
    let publisher = PacedPublisher::start(&fleet, stream.message_events(), scale.pacing());
    publisher.finish().await;
    audit(
        &fleet,
        &stream,
        &VENDORS,
        scenario,
        started,
        Expect {
            max_duplicates: 0,
            dead: vec![("BadExpirationDate", refused)],
        },
    )
    .await;
    let metrics = fleet.metrics("sender-apns").await;
    let answered = metric_sum(
        &metrics,
        "impush_vendor_responses_total",
        &["apns", "TooManyRequests"],
    );
    assert_eq!(answered, throttled as f64, "every 429 was seen and retried");
    assert!(metric_sum(&metrics, "impush_retries_total", &["apns"]) > 0.0);
    assert_workers_running(&mut fleet);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_vendor_times_out_and_the_work_is_retried() {
    let _serial = SERIAL.lock().await;
    let scenario = "FCM hangs past the request timeout";
    let scale = Scale::from_env();
    let mut fleet = Fleet::start(FleetOptions {
        max_attempts: 10,
        ..options()
    })
    .await;
    let stream = Stream::new("hang", scale);
    stream.load_state(&fleet).await;
    // These requests would answer after ten minutes: only the sender's 2 s timeout ends them.
    let hanging = scale.pick(40, 200);
    fleet
        .fault(json!({"vendor": "fcm", "delay_ms": 600_000, "times": hanging}))
        .await;

    let started = Instant::now();
    let publisher = PacedPublisher::start(&fleet, stream.message_events(), scale.pacing());
    publisher.finish().await;
    audit(
        &fleet,
        &stream,
        &VENDORS,
        scenario,
        started,
        Expect {
            max_duplicates: 0,
            dead: vec![],
        },
    )
    .await;
    let metrics = fleet.metrics("sender-fcm").await;
    let timeouts = metric_sum(
        &metrics,
        "impush_vendor_responses_total",
        &["fcm", "timeout"],
    );
    assert_eq!(timeouts, hanging as f64, "every hanging request timed out");
    assert_workers_running(&mut fleet);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_exits_cleanly_and_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let scenario = "SIGTERM router and senders, restarted";
    let scale = Scale::from_env();
    let mut rng = Rng::from_env(scenario);
    let mut fleet = Fleet::start(options()).await;
    let stream = Stream::new("term", scale);
    stream.load_state(&fleet).await;

    let started = Instant::now();
    let publisher = PacedPublisher::start(&fleet, stream.message_events(), scale.pacing());
    let window = scale.publish_window();
    let victims = ["impush-router", "sender-apns", "sender-fcm"];
    let mut moments: Vec<Duration> = victims
        .iter()
        .map(|_| rng.between(window / 10, window * 9 / 10))
        .collect();
    moments.sort();
    for (victim, at) in victims.iter().zip(moments) {
        until(started, at).await;
        let status = fleet.terminate(victim);
        eprintln!(
            "{scenario}: SIGTERM {victim} at {} ms: {status}, {} delivered",
            at.as_millis(),
            delivered_so_far(&fleet).await
        );
        assert_eq!(status.code(), Some(0), "{victim} exits 0 on SIGTERM");
        fleet.restart(victim);
    }
    publisher.finish().await;
    wait_all_ready(&fleet).await;
    audit(
        &fleet,
        &stream,
        &VENDORS,
        scenario,
        started,
        Expect {
            max_duplicates: 0,
            dead: vec![],
        },
    )
    .await;
    assert_workers_running(&mut fleet);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_started_before_rabbitmq_and_redis_wait_without_crashing_then_work() {
    let _serial = SERIAL.lock().await;
    let scenario = "workers started before RabbitMQ and Redis";
    let scale = Scale::from_env();
    let rabbit = DedicatedRabbit::reserve();
    let mut redis = DedicatedRedis::reserve();
    let started = Instant::now();
    let mut fleet = Fleet::start(FleetOptions {
        amqp_url: rabbit.url(),
        redis_url: redis.url(),
        services_up: false,
        ..options()
    })
    .await;
    let workers = fleet.worker_names();
    // Credentials load without the services; the topology needs the broker.
    for name in &workers {
        wait_not_ready(&fleet, name, "rabbitmq, topology, redis").await;
    }
    // Long enough for several reconnection attempts: nobody gives up or crashes.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_workers_running(&mut fleet);
    redis.restart();
    for name in &workers {
        wait_not_ready(&fleet, name, "rabbitmq, topology").await;
    }
    // The workers keep trying while the node boots (10 to 45 s here).
    rabbit.boot();
    assert_workers_running(&mut fleet);
    fleet.reconnect().await;
    wait_all_ready(&fleet).await;
    eprintln!(
        "{scenario}: every worker ready {} ms after it started",
        started.elapsed().as_millis()
    );

    let stream = Stream::new("boot", scale);
    stream.load_state(&fleet).await;
    let publisher = PacedPublisher::start(&fleet, stream.message_events(), scale.pacing());
    publisher.finish().await;
    audit(
        &fleet,
        &stream,
        &VENDORS,
        scenario,
        started,
        Expect {
            max_duplicates: 0,
            dead: vec![],
        },
    )
    .await;
    assert_workers_running(&mut fleet);
}
