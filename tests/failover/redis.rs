//! A Redis Cluster of the failover suite's own: 3 primaries with one replica each on free
//! loopback ports (`scripts/redis-cluster.sh` with a private directory), a
//! `cluster-node-timeout` of 3 s so that a dead primary's replica takes over within seconds,
//! and the means to `kill -9` a primary and start it again. Stopped and removed when
//! dropped; the shared Redis and the shared test cluster are never touched.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::fleet::{free_port, workspace_dir};

pub const NODE_TIMEOUT_MS: u64 = 3_000;

pub struct RedisCluster {
    pub ports: Vec<u16>,
    dir: PathBuf,
}

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone)]
pub struct ClusterNode {
    pub id: String,
    pub port: u16,
    pub primary: bool,
    /// The id of its primary, for a replica.
    pub primary_id: Option<String>,
    pub failed: bool,
    /// The slot ranges it serves, for a primary.
    pub slots: Vec<(u16, u16)>,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        let ports: Vec<u16> = (0..6).map(|_| free_port()).collect();
        let dir = std::env::temp_dir().join(format!(
            "impush-failover-redis-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        let cluster = RedisCluster { ports, dir };
        cluster.script(&["start"]);
        cluster.wait_stable();
        cluster
    }

    fn script(&self, args: &[&str]) {
        let ports: Vec<String> = self.ports.iter().map(u16::to_string).collect();
        let status = Command::new(workspace_dir().join("scripts/redis-cluster.sh"))
            .args(args)
            .env("IMPUSH_REDIS_CLUSTER_PORTS", ports.join(" "))
            .env("IMPUSH_REDIS_CLUSTER_REPLICAS", "1")
            .env(
                "IMPUSH_REDIS_CLUSTER_NODE_TIMEOUT",
                NODE_TIMEOUT_MS.to_string(),
            )
            .env("IMPUSH_REDIS_CLUSTER_DIR", &self.dir)
            .status()
            .expect("scripts/redis-cluster.sh runs");
        assert!(status.success(), "redis-cluster.sh {args:?}");
    }

    /// Every node, as seed URLs of the fleet's `[redis] urls`.
    pub fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|port| format!("redis://127.0.0.1:{port}"))
            .collect()
    }

    fn cli(port: u16, args: &[&str]) -> Option<String> {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
            .filter(|text| !text.starts_with("Could not connect"))
    }

    /// The cluster as one live node sees it.
    pub fn nodes(&self) -> Vec<ClusterNode> {
        for port in &self.ports {
            let Some(text) = RedisCluster::cli(*port, &["cluster", "nodes"]) else {
                continue;
            };
            let nodes: Vec<ClusterNode> = text
                .lines()
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let address = fields.get(1)?.split('@').next()?;
                    let port = address.rsplit(':').next()?.parse().ok()?;
                    let flags = fields.get(2)?;
                    Some(ClusterNode {
                        id: fields.first()?.to_string(),
                        port,
                        primary: flags.contains("master"),
                        primary_id: fields
                            .get(3)
                            .filter(|id| **id != "-")
                            .map(|s| s.to_string()),
                        failed: flags.contains("fail"),
                        slots: fields
                            .iter()
                            .skip(8)
                            .filter_map(|range| {
                                let (start, end) = range.split_once('-').unwrap_or((range, range));
                                Some((start.parse().ok()?, end.parse().ok()?))
                            })
                            .collect(),
                    })
                })
                .collect();
            if !nodes.is_empty() {
                return nodes;
            }
        }
        panic!("no node of the private Redis Cluster answers");
    }

    fn synced(port: u16) -> bool {
        RedisCluster::cli(port, &["info", "replication"])
            .is_some_and(|info| info.contains("master_link_status:up"))
    }

    /// Waits until 3 primaries serve every slot, each with a replica in sync.
    pub fn wait_stable(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let nodes = self.nodes();
            let ok_everywhere = self.ports.iter().all(|port| {
                RedisCluster::cli(*port, &["cluster", "info"])
                    .is_some_and(|info| info.contains("cluster_state:ok"))
            });
            let primaries = nodes.iter().filter(|n| n.primary && !n.failed).count();
            let replicas_synced = nodes
                .iter()
                .filter(|n| !n.primary && !n.failed)
                .filter(|n| RedisCluster::synced(n.port))
                .count();
            if ok_everywhere && primaries == 3 && replicas_synced == 3 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the private Redis Cluster never became stable: {nodes:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The primary serving `key`'s slot.
    pub fn primary_of(&self, key: &str) -> ClusterNode {
        let slot: u16 = RedisCluster::cli(self.ports[0], &["cluster", "keyslot", key])
            .and_then(|text| text.trim().parse().ok())
            .expect("CLUSTER KEYSLOT");
        if let Some(node) = self.nodes().into_iter().find(|n| {
            n.primary
                && !n.failed
                && n.slots
                    .iter()
                    .any(|(start, end)| (*start..=*end).contains(&slot))
        }) {
            return node;
        }
        panic!("no primary serves slot {slot}");
    }

    fn pid(&self, port: u16) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.dir.join(format!("redis-{port}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        String::from_utf8_lossy(&cmdline)
            .contains(&format!(":{port}"))
            .then_some(pid)
    }

    /// `kill -9` of the node on `port`.
    pub fn kill9(&self, port: u16) {
        let pid = self.pid(port).expect("the node's pid");
        let status = Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        while RedisCluster::cli(port, &["ping"]).is_some() {
            assert!(Instant::now() < deadline, "node {port} still answers");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the replica on `port` is a primary (the cluster promoted it).
    pub fn wait_promoted(&self, port: u16) -> Duration {
        let started = Instant::now();
        let deadline = started + Duration::from_secs(120);
        while !RedisCluster::cli(port, &["role"]).is_some_and(|role| role.starts_with("master")) {
            assert!(Instant::now() < deadline, "replica {port} never took over");
            std::thread::sleep(Duration::from_millis(50));
        }
        started.elapsed()
    }

    /// How many keys of `prefix` the primaries hold whose name contains each of `parts`.
    pub fn count_keys(&self, prefix: &str, parts: &[&str]) -> Vec<usize> {
        let mut counts = vec![0; parts.len()];
        for node in self.nodes().into_iter().filter(|n| n.primary && !n.failed) {
            let Ok(client) = ::redis::Client::open(format!("redis://127.0.0.1:{}", node.port))
            else {
                continue;
            };
            let Ok(mut con) = client.get_connection() else {
                continue;
            };
            let keys: Vec<String> = ::redis::cmd("KEYS")
                .arg(format!("{prefix}:*"))
                .query(&mut con)
                .unwrap_or_default();
            for key in keys {
                for (count, part) in counts.iter_mut().zip(parts) {
                    if key.contains(part) {
                        *count += 1;
                    }
                }
            }
        }
        counts
    }

    /// Starts the node on `port` again; it rejoins as a replica of the node that took over.
    pub fn restart(&self, port: u16) {
        self.script(&["node", &port.to_string()]);
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for port in &self.ports {
            if let Some(pid) = self.pid(*port) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        // The script's lock file sits beside the directory.
        let mut lock = self.dir.clone().into_os_string();
        lock.push(".lock");
        let _ = std::fs::remove_file(lock);
    }
}
