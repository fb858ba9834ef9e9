//! The failover suite: the machines under impush fail the way production clusters do while
//! the whole fleet streams, and nothing IM core handed over is lost. A three-node RabbitMQ
//! cluster with quorum queues replicated on all three and a Redis Cluster of 3 primaries
//! with a replica each run on loopback, private to each scenario; two processes of every
//! worker run on them with every broker node in `[amqp] urls`. Each scenario plays 10,000
//! notifications (`IMPUSH_FAILOVER=full`; 2,000 by default), C2C and group, to iPhones
//! (APNs) and Android phones (FCM), strikes mid-stream, and ends with the fault suite's
//! audit, a check of every iPhone's badges, and every worker still running.
//!
//! The three scenarios that boot the RabbitMQ cluster are ignored by a plain run (booting
//! three nodes takes minutes here); `make failover` runs all four in full. docs/faults.md
//! describes them and their results.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "failover/mod.rs"]
mod failover;
mod fleet;
#[allow(dead_code)]
#[path = "faults/mod.rs"]
mod harness;

use std::time::{Duration, Instant};

use failover::rabbit::RabbitCluster;
use failover::redis::RedisCluster;
use failover::{Badges, FailoverPublisher, FailoverStream, Size, VENDORS, start_fleet, user_key};
use fleet::{AMQP_URL, Fleet};
use harness::{Expect, Rng, SERIAL, assert_workers_running, audit, delivered_so_far, metric_sum};

async fn until(start: Instant, at: Duration) {
    tokio::time::sleep_until((start + at).into()).await;
}

async fn wait_all_ready(fleet: &Fleet) {
    for name in fleet.worker_names() {
        fleet
            .wait_ready_within(&name, Duration::from_secs(300))
            .await;
    }
}

/// How many notifications a scenario may repeat.
#[derive(Debug, Clone, Copy)]
enum Repeats {
    /// None: the broker's failures leave the deduplication records alone.
    None,
    /// One per push whose delivery record is missing: its write failed while the primary
    /// was away (the sender counts it, `impush_dedupe_record_failures_total`), or Redis
    /// acknowledged it and the failover lost it; such a push is sent again only if its job
    /// comes back (a bundle requeued whole because another of its jobs met the dead
    /// primary).
    MissingRecords,
}

/// The end of every scenario: the audit row (lost 0, unexpected 0, duplicates within
/// `repeats`), the badges, the records the primaries hold, every worker running.
async fn finish(
    fleet: &mut Fleet,
    redis: &RedisCluster,
    stream: &FailoverStream,
    scenario: &str,
    started: Instant,
    repeats: Repeats,
) {
    wait_all_ready(fleet).await;
    let row = audit(
        fleet,
        &stream.stream,
        &VENDORS,
        scenario,
        started,
        Expect {
            max_duplicates: match repeats {
                Repeats::None => 0,
                // Checked below, once the records are counted.
                Repeats::MissingRecords => usize::MAX,
            },
            dead: vec![],
        },
    )
    .await;
    let badges = Badges::read(fleet).await;
    // Records a failover lost: the primaries hold fewer delivery records than pairs
    // delivered (a write that failed outright is counted by the sender; a later repeat of
    // its job writes it after all), fewer badge records than iPhone pushes.
    let mut record_failures = 0;
    for name in fleet
        .worker_names()
        .iter()
        .filter(|n| n.starts_with("sender"))
    {
        let metrics = fleet.metrics(name).await;
        record_failures +=
            metric_sum(&metrics, "impush_dedupe_record_failures_total", &[]) as usize;
    }
    let held = redis.count_keys(&fleet.prefix, &[":sent:", ":b:"]);
    let records_missing = row.delivered.saturating_sub(held[0]);
    let bound = match repeats {
        Repeats::None => 0,
        Repeats::MissingRecords => record_failures + records_missing,
    };
    let note = format!(
        "{scenario}: {} duplicates (bound {bound}: {record_failures} delivery record writes \
         failed, {records_missing} records missing); {}; delivery records held {} of {} \
         delivered, badge records held {} of {}; every worker running",
        row.duplicates,
        badges.row(),
        held[0],
        row.delivered,
        held[1],
        badges.pushes,
    );
    eprintln!("{note}");
    if let Ok(path) = std::env::var("IMPUSH_FAILOVER_NOTES") {
        use std::io::Write;
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(file, "{note}");
        }
    }
    assert_eq!(
        badges.iphones, stream.size.users,
        "every iPhone got its pushes"
    );
    assert!(badges.all_exact(), "badges: {:?}", badges.examples);
    assert!(
        row.duplicates <= bound,
        "{} duplicates, at most {bound} allowed",
        row.duplicates
    );
    assert_workers_running(fleet);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "boots a three-node RabbitMQ cluster (minutes): make failover"]
async fn the_quorum_leaders_node_killed_mid_stream_loses_nothing_and_workers_move_to_the_survivors()
{
    let _serial = SERIAL.lock().await;
    let scenario = "kill -9 of the quorum leaders' RabbitMQ node, booted again";
    let size = Size::from_env();
    let mut rng = Rng::from_env(scenario);
    let rabbit = RabbitCluster::start();
    let redis = RedisCluster::start();
    let mut fleet = start_fleet(&rabbit.urls(), &redis.urls()).await;
    let (leader, members) = rabbit.leader_of(&fleet.topology.messages_queue());
    assert_eq!(members, 3, "the quorum queue has a replica on every node");
    let stream = FailoverStream::new("rkill", size);
    stream.load_state(&fleet).await;

    let started = Instant::now();
    let publisher = FailoverPublisher::start(
        rabbit.urls(),
        fleet.topology.clone(),
        stream.events.clone(),
        size.pacing,
    );
    let window = size.publish_window();
    until(started, rng.between(window / 4, window / 2)).await;
    rabbit.nodes[leader].kill9();
    let so_far = delivered_so_far(&fleet).await;
    eprintln!(
        "{scenario}: kill -9 of node {} at {} ms, {so_far} delivered",
        rabbit.nodes[leader].name,
        started.elapsed().as_millis()
    );
    assert!(
        so_far < stream.stream.expected.len(),
        "the kill landed mid-stream"
    );
    let down_since = Instant::now();
    // The survivors elect new leaders and the workers move to them while it is down.
    tokio::time::sleep(size.pick(Duration::from_secs(10), Duration::from_secs(15))).await;
    let (new_leader, _) = rabbit.leader_of(&fleet.topology.messages_queue());
    assert_ne!(new_leader, leader, "a survivor leads the queue");
    eprintln!(
        "{scenario}: {} delivered while the node was down",
        delivered_so_far(&fleet).await - so_far
    );
    rabbit.nodes[leader].boot();
    rabbit.wait_whole();
    eprintln!(
        "{scenario}: node back after {} ms",
        down_since.elapsed().as_millis()
    );
    fleet.reconnect().await;
    let republished = publisher.finish().await;
    eprintln!("{scenario}: IM core published {republished} unconfirmed events again");
    finish(
        &mut fleet,
        &redis,
        &stream,
        scenario,
        started,
        Repeats::None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "boots a three-node RabbitMQ cluster (minutes): make failover"]
async fn a_broker_node_cut_off_and_healed_mid_stream_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let scenario = "RabbitMQ leaders' node paused (partition), then healed";
    let size = Size::from_env();
    let mut rng = Rng::from_env(scenario);
    let rabbit = RabbitCluster::start();
    let redis = RedisCluster::start();
    let mut fleet = start_fleet(&rabbit.urls(), &redis.urls()).await;
    let (leader, members) = rabbit.leader_of(&fleet.topology.messages_queue());
    assert_eq!(members, 3, "the quorum queue has a replica on every node");
    let stream = FailoverStream::new("rpart", size);
    stream.load_state(&fleet).await;

    let started = Instant::now();
    let publisher = FailoverPublisher::start(
        rabbit.urls(),
        fleet.topology.clone(),
        stream.events.clone(),
        size.pacing,
    );
    let window = size.publish_window();
    until(started, rng.between(window / 4, window / 2)).await;
    rabbit.nodes[leader].pause();
    let so_far = delivered_so_far(&fleet).await;
    eprintln!(
        "{scenario}: SIGSTOP of node {} at {} ms, {so_far} delivered",
        rabbit.nodes[leader].name,
        started.elapsed().as_millis()
    );
    assert!(
        so_far < stream.stream.expected.len(),
        "the cut landed mid-stream"
    );
    // Longer than the peers' net_ticktime (10 s): they declare it down and move on.
    tokio::time::sleep(Duration::from_secs(25)).await;
    eprintln!(
        "{scenario}: {} delivered while the node was cut off",
        delivered_so_far(&fleet).await - so_far
    );
    rabbit.nodes[leader].resume();
    rabbit.wait_whole();
    eprintln!(
        "{scenario}: healed, cluster whole after {} ms",
        started.elapsed().as_millis()
    );
    fleet.reconnect().await;
    let republished = publisher.finish().await;
    eprintln!("{scenario}: IM core published {republished} unconfirmed events again");
    finish(
        &mut fleet,
        &redis,
        &stream,
        scenario,
        started,
        Repeats::None,
    )
    .await;
}

/// The short form of this scenario runs with every test (on the shared broker); the full
/// form (`make failover`) runs it on the three-node RabbitMQ cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_primary_killed_mid_stream_is_replaced_by_its_replica_and_nothing_is_lost() {
    let _serial = SERIAL.lock().await;
    let scenario = "kill -9 of a Redis primary, replica promoted";
    let size = Size::from_env();
    let mut rng = Rng::from_env(scenario);
    let rabbit = size.full.then(RabbitCluster::start);
    let amqp_urls = rabbit
        .as_ref()
        .map_or_else(|| vec![AMQP_URL.to_owned()], RabbitCluster::urls);
    let redis = RedisCluster::start();
    let mut fleet = start_fleet(&amqp_urls, &redis.urls()).await;
    let stream = FailoverStream::new("dkill", size);
    stream.load_state(&fleet).await;
    let primary = redis.primary_of(&user_key(&stream.stream.tag, 0));
    let replica = redis
        .nodes()
        .into_iter()
        .find(|n| n.primary_id.as_deref() == Some(primary.id.as_str()))
        .expect("the primary has a replica");

    let started = Instant::now();
    let publisher = FailoverPublisher::start(
        amqp_urls.clone(),
        fleet.topology.clone(),
        stream.events.clone(),
        size.pacing,
    );
    let window = size.publish_window();
    until(started, rng.between(window / 4, window / 2)).await;
    redis.kill9(primary.port);
    let so_far = delivered_so_far(&fleet).await;
    eprintln!(
        "{scenario}: kill -9 of primary :{} at {} ms, {so_far} delivered",
        primary.port,
        started.elapsed().as_millis()
    );
    assert!(
        so_far < stream.stream.expected.len(),
        "the kill landed mid-stream"
    );
    let took = redis.wait_promoted(replica.port);
    eprintln!(
        "{scenario}: replica :{} promoted after {} ms",
        replica.port,
        took.as_millis()
    );
    redis.restart(primary.port);
    let republished = publisher.finish().await;
    eprintln!("{scenario}: IM core published {republished} unconfirmed events again");
    redis.wait_stable();
    finish(
        &mut fleet,
        &redis,
        &stream,
        scenario,
        started,
        Repeats::MissingRecords,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "boots a three-node RabbitMQ cluster (minutes): make failover"]
async fn a_broker_node_and_a_redis_primary_killed_at_once_lose_nothing() {
    let _serial = SERIAL.lock().await;
    let scenario = "kill -9 of the leaders' RabbitMQ node and a Redis primary at once";
    let size = Size::from_env();
    let mut rng = Rng::from_env(scenario);
    let rabbit = RabbitCluster::start();
    let redis = RedisCluster::start();
    let mut fleet = start_fleet(&rabbit.urls(), &redis.urls()).await;
    let (leader, members) = rabbit.leader_of(&fleet.topology.messages_queue());
    assert_eq!(members, 3, "the quorum queue has a replica on every node");
    let stream = FailoverStream::new("both", size);
    stream.load_state(&fleet).await;
    let primary = redis.primary_of(&user_key(&stream.stream.tag, 0));
    let replica = redis
        .nodes()
        .into_iter()
        .find(|n| n.primary_id.as_deref() == Some(primary.id.as_str()))
        .expect("the primary has a replica");

    let started = Instant::now();
    let publisher = FailoverPublisher::start(
        rabbit.urls(),
        fleet.topology.clone(),
        stream.events.clone(),
        size.pacing,
    );
    let window = size.publish_window();
    until(started, rng.between(window / 4, window / 2)).await;
    rabbit.nodes[leader].kill9();
    redis.kill9(primary.port);
    let so_far = delivered_so_far(&fleet).await;
    eprintln!(
        "{scenario}: kill -9 of node {} and primary :{} at {} ms, {so_far} delivered",
        rabbit.nodes[leader].name,
        primary.port,
        started.elapsed().as_millis()
    );
    assert!(
        so_far < stream.stream.expected.len(),
        "the kills landed mid-stream"
    );
    let down_since = Instant::now();
    let took = redis.wait_promoted(replica.port);
    eprintln!(
        "{scenario}: replica :{} promoted after {} ms",
        replica.port,
        took.as_millis()
    );
    redis.restart(primary.port);
    until(
        down_since,
        size.pick(Duration::from_secs(10), Duration::from_secs(15)),
    )
    .await;
    rabbit.nodes[leader].boot();
    rabbit.wait_whole();
    eprintln!(
        "{scenario}: broker node back after {} ms",
        down_since.elapsed().as_millis()
    );
    fleet.reconnect().await;
    let republished = publisher.finish().await;
    eprintln!("{scenario}: IM core published {republished} unconfirmed events again");
    redis.wait_stable();
    finish(
        &mut fleet,
        &redis,
        &stream,
        scenario,
        started,
        Repeats::MissingRecords,
    )
    .await;
}
