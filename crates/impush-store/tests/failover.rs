//! The store while a Redis Cluster primary hands its slots over to its replica (`CLUSTER
//! FAILOVER`), under a steady stream of badge bumps and send claims. The local test cluster
//! has no replicas, and a failover would disturb every other test on it, so this test
//! starts a private cluster of 3 primaries with a replica each on ports 7111-7116
//! (`scripts/redis-cluster.sh` with `IMPUSH_REDIS_CLUSTER_REPLICAS=1`) and stops it after.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::slots::{connect, owner_of, slot_of};
use common::*;
use impush_proto::v1::PresenceState;
use impush_store::{DeviceRef, SendClaim, Store};

const PORTS: [u16; 6] = [7111, 7112, 7113, 7114, 7115, 7116];
const DIR: &str = "/tmp/impush-failover-cluster";

/// The private cluster, stopped when dropped.
struct PrivateCluster;

impl PrivateCluster {
    fn start() -> PrivateCluster {
        PrivateCluster::script("start");
        PrivateCluster
    }

    fn script(action: &str) {
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/redis-cluster.sh");
        let ports: Vec<String> = PORTS.iter().map(u16::to_string).collect();
        let status = std::process::Command::new(&script)
            .arg(action)
            .env("IMPUSH_REDIS_CLUSTER_PORTS", ports.join(" "))
            .env("IMPUSH_REDIS_CLUSTER_REPLICAS", "1")
            .env("IMPUSH_REDIS_CLUSTER_DIR", DIR)
            .status()
            .unwrap();
        assert!(status.success(), "redis-cluster.sh {action}");
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        PrivateCluster::script("stop");
    }
}

/// The port of the replica of the primary `primary_id`, once it is in sync with it.
async fn synced_replica_of(primary_id: &str) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let nodes: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query(&mut connect(PORTS[0]))
            .unwrap();
        let replica = nodes.lines().find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.get(2)?.contains("slave") && *fields.get(3)? == primary_id).then(|| {
                let address = fields[1].split('@').next().unwrap();
                address.rsplit(':').next().unwrap().parse::<u16>().unwrap()
            })
        });
        if let Some(port) = replica {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query(&mut connect(port))
                .unwrap();
            if info.contains("master_link_status:up") {
                return port;
            }
        }
        assert!(Instant::now() < deadline, "no replica in sync");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn is_primary(port: u16) -> bool {
    let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut connect(port)).unwrap();
    matches!(role.first(), Some(redis::Value::BulkString(r)) if r == b"master")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_primary_handing_over_to_its_replica_under_load_counts_each_badge_once_and_claims_once() {
    let _cluster = PrivateCluster::start();
    let seeds: Vec<String> = PORTS[..3]
        .iter()
        .map(|port| format!("redis://127.0.0.1:{port}"))
        .collect();
    let prefix = format!("impush-test-{}", uuid::Uuid::new_v4());
    let store = Store::connect_cluster(&seeds, &prefix).await.unwrap();
    let user = format!("failover-{}", uuid::Uuid::new_v4().simple());
    let primary = owner_of(PORTS[0], slot_of(PORTS[0], &format!("{{{APP}:{user}}}")));
    let replica = synced_replica_of(&primary.id).await;
    store
        .register_device(&registered(&user, "a", "a-tok", 1))
        .await
        .unwrap();
    store
        .set_presence(&presence(&user, "a", PresenceState::Background, 0, 2))
        .await
        .unwrap();

    // One message after another to the user's device: its badge number, then its claim.
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (store, user, done, stop) = (store.clone(), user.clone(), done.clone(), stop.clone());
        tokio::spawn(async move {
            let device = [DeviceRef {
                user_id: &user,
                device_id: "a",
            }];
            let mut transient = 0;
            let mut n = 0u32;
            while !stop.load(Ordering::SeqCst) {
                let msg = format!("m{n}");
                // A transient error is what a worker requeues: the same call again.
                let count = loop {
                    match store.bump_badges(APP, &msg, &device, 60).await {
                        Ok(counts) => break counts[0],
                        Err(e) if e.is_transient() => transient += 1,
                        Err(e) => panic!("{e}"),
                    }
                };
                assert_eq!(count, n + 1, "{msg} counted once, after every earlier one");
                let claim = loop {
                    match store.claim_for_send(APP, &msg, &device, 60).await {
                        Ok(claims) => break claims[0],
                        Err(e) if e.is_transient() => transient += 1,
                        Err(e) => panic!("{e}"),
                    }
                };
                assert_eq!(claim, SendClaim::Claimed, "{msg} claimed on its first try");
                n += 1;
                done.store(n.into(), Ordering::SeqCst);
            }
            (n, transient)
        })
    };
    let wait_for = |target: u64| {
        let done = done.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while done.load(Ordering::SeqCst) < target {
                assert!(Instant::now() < deadline, "the load stopped");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    wait_for(10).await;
    // Redis gives a manual failover 5 s to complete (CLUSTER_MF_TIMEOUT) and drops it
    // after that: on a loaded machine the replica may not catch up in time, so it is asked
    // again until it has taken over.
    let deadline = Instant::now() + Duration::from_secs(90);
    'failover: loop {
        // An error (one still in progress) is answered by the next look at the roles.
        let _ = redis::cmd("CLUSTER")
            .arg("FAILOVER")
            .query::<()>(&mut connect(replica));
        let asked = Instant::now();
        while asked.elapsed() < Duration::from_secs(10) {
            if is_primary(replica) {
                break 'failover;
            }
            assert!(Instant::now() < deadline, "the replica never took over");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let at_switch = done.load(Ordering::SeqCst);
    wait_for(at_switch + 10).await;
    stop.store(true, Ordering::SeqCst);
    let (n, transient) = load.await.unwrap();
    assert_eq!(
        owner_of(replica, slot_of(replica, &format!("{{{APP}:{user}}}"))).port,
        replica
    );
    let mut on_new_primary = connect(replica);
    let since: String = redis::cmd("HGET")
        .arg(format!("{prefix}:{{{APP}:{user}}}:d:a"))
        .arg("since")
        .query(&mut on_new_primary)
        .unwrap();
    assert_eq!(since, n.to_string(), "every message counted once");
    assert!(
        common::slots::errors_answered(primary.port, "MOVED") > 0,
        "the store's first batches after the switch went to the old primary"
    );
    println!("{n} messages, {transient} transient errors");
}
