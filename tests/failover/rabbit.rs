//! A three-node RabbitMQ cluster of the failover suite's own on loopback: private node
//! names, AMQP and Erlang distribution ports, data and log directories and one Erlang
//! cookie shared by the three (nothing of the machine's RabbitMQ, its `/etc/rabbitmq` or its
//! cookie), joined with `rabbitmqctl join_cluster`. Nodes can be killed with `kill -9`,
//! booted again, paused (SIGSTOP) and resumed (SIGCONT). Every node is stopped and its
//! files removed when the cluster is dropped.
//!
//! Settings, as a production cluster would be tuned: `cluster_partition_handling =
//! autoheal` (when nodes that lost each other see each other again, the side with fewer
//! clients restarts and rejoins; with `pause_minority` a node frozen and resumed, which
//! never saw itself in a minority, stayed partitioned from the other two for good) and an
//! Erlang `net_ticktime` of 10 s (a silent node is declared down after 10-15 s instead of
//! 60-75 s). Quorum queues do not depend on the partition mode: Raft keeps them consistent.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::fleet::free_port;

/// The erl flags of every node and of `rabbitmqctl` (a CLI with another tick time could
/// not talk to the nodes reliably).
const ERL_ARGS: &str = "-kernel inet_dist_use_interface {127,0,0,1} -kernel net_ticktime 10";

pub struct RabbitNode {
    pub name: String,
    pub port: u16,
    dist_port: u16,
    dir: PathBuf,
    home: PathBuf,
}

pub struct RabbitCluster {
    pub nodes: Vec<RabbitNode>,
    dir: PathBuf,
}

/// The Debian package's wrappers switch to the `rabbitmq` user and its cookie; the scripts
/// under /usr/lib run as the caller with the cookie of `HOME`.
fn rabbit_bin(name: &str) -> PathBuf {
    let packaged = Path::new("/usr/lib/rabbitmq/bin").join(name);
    if packaged.exists() {
        packaged
    } else {
        PathBuf::from(name)
    }
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    )
    .is_ok()
}

impl RabbitNode {
    fn command(&self, name: &str) -> Command {
        let mut command = Command::new(rabbit_bin(name));
        command
            .env("HOME", &self.home)
            .env("RABBITMQ_CONF_ENV_FILE", self.dir.join("rabbitmq-env.conf"))
            .env("RABBITMQ_CONFIG_FILE", self.dir.join("rabbitmq.conf"))
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                self.dir.join("enabled_plugins"),
            )
            .env("RABBITMQ_NODENAME", &self.name)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", self.dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", self.dir.join("log"))
            .env("RABBITMQ_PID_FILE", self.dir.join("rabbit.pid"))
            .env("RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS", ERL_ARGS)
            .env("RABBITMQ_CTL_ERL_ARGS", "-kernel net_ticktime 10")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        command
    }

    pub fn ctl(&self, args: &[&str]) -> Output {
        self.command("rabbitmqctl")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .args(["-n", &self.name])
            .args(args)
            .output()
            .expect("rabbitmqctl runs")
    }

    fn ctl_ok(&self, args: &[&str]) {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "rabbitmqctl -n {} {args:?}: {}{}",
            self.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The AMQP URL of this node, with a 5 s heartbeat: a client notices a node that went
    /// silent (paused, cut off) within about 10 s.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f?heartbeat=5", self.port)
    }

    /// Starts the Erlang node in the background; `await_boot` waits for it.
    fn spawn(&self) {
        let status = self
            .command("rabbitmq-server")
            .arg("-detached")
            .status()
            .expect("rabbitmq-server starts (scripts/ensure-services.sh installs it)");
        assert!(status.success(), "rabbitmq-server -detached: {status}");
    }

    fn await_boot(&self) {
        // Until the node has registered with epmd, await_startup fails at once.
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut spawned = Instant::now();
        let mut respawns = 0;
        loop {
            let out = self.ctl(&["await_startup", "--timeout", "60"]);
            if out.status.success() {
                break;
            }
            // On a loaded machine a booting node now and then stops with its quorum queue
            // system failing to start: it is started again (twice at most).
            if self.pid().is_none() && spawned.elapsed() > Duration::from_secs(20) && respawns < 2 {
                eprintln!(
                    "RabbitMQ node {} stopped while booting; starting it again:\n{}",
                    self.name,
                    self.log_tail()
                );
                respawns += 1;
                self.spawn();
                spawned = Instant::now();
                continue;
            }
            assert!(
                Instant::now() < deadline,
                "RabbitMQ node {} never started: {}\n{}",
                self.name,
                String::from_utf8_lossy(&out.stderr),
                self.log_tail()
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// Boots the node (again, after a kill: it rejoins the cluster from its data) and
    /// waits until it takes AMQP connections.
    pub fn boot(&self) {
        self.spawn();
        self.await_boot();
        let deadline = Instant::now() + Duration::from_secs(120);
        while !port_open(self.port) {
            assert!(
                Instant::now() < deadline,
                "{}: AMQP port never opened",
                self.name
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The pid of this node's Erlang VM while it runs (checked against its command line,
    /// so that a stale pid file never names another process).
    fn pid(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.dir.join("rabbit.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        // The VM's command line names its HOME (`-home`), which is this cluster's own.
        String::from_utf8_lossy(&cmdline)
            .contains(&self.home.display().to_string())
            .then_some(pid)
    }

    fn signal(&self, signal: &str) {
        let pid = self.pid().expect("the node's pid file");
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// `kill -9` of the node's Erlang VM: no goodbye to clients or peers.
    pub fn kill9(&self) {
        self.signal("-KILL");
        let deadline = Instant::now() + Duration::from_secs(30);
        while port_open(self.port) {
            assert!(Instant::now() < deadline, "{} still listens", self.name);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGSTOP: the node is frozen with its sockets open, as one cut off by a partition
    /// looks to its peers and clients (they hear nothing, and nothing is refused).
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(entries) = std::fs::read_dir(self.dir.join("log")) {
            for entry in entries.flatten() {
                let log = std::fs::read_to_string(entry.path()).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                text.push_str(&lines[lines.len().saturating_sub(30)..].join("\n"));
            }
        }
        text
    }
}

impl RabbitCluster {
    /// Boots three nodes side by side and joins the second and third to the first.
    pub fn start() -> RabbitCluster {
        let id = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let dir = std::env::temp_dir().join(format!("impush-failover-rabbit-{id}"));
        let home = dir.join("home");
        std::fs::create_dir_all(&home).expect("cluster dir");
        // One cookie for the three nodes and their CLI, and for nobody else.
        let cookie = home.join(".erlang.cookie");
        std::fs::write(&cookie, format!("IMPUSHFAILOVER{id}").to_uppercase()).expect("cookie");
        std::fs::set_permissions(&cookie, std::fs::Permissions::from_mode(0o400))
            .expect("cookie mode");
        let nodes: Vec<RabbitNode> = (1..=3)
            .map(|n| {
                let node_dir = dir.join(format!("node{n}"));
                std::fs::create_dir_all(&node_dir).expect("node dir");
                let node = RabbitNode {
                    name: format!("impush-failover-{id}-{n}@localhost"),
                    port: free_port(),
                    dist_port: free_port(),
                    dir: node_dir,
                    home: home.clone(),
                };
                let write = |name: &str, text: String| {
                    std::fs::write(node.dir.join(name), text).expect("node config file");
                };
                write("rabbitmq-env.conf", "ERL_EPMD_ADDRESS=127.0.0.1\n".into());
                write(
                    "rabbitmq.conf",
                    format!(
                        "listeners.tcp.local = 127.0.0.1:{}\n\
                         cluster_partition_handling = autoheal\n",
                        node.port
                    ),
                );
                write("enabled_plugins", "[].\n".into());
                node
            })
            .collect();
        let cluster = RabbitCluster { nodes, dir };
        for node in &cluster.nodes {
            node.spawn();
        }
        for node in &cluster.nodes {
            node.await_boot();
        }
        let first = cluster.nodes[0].name.clone();
        for node in &cluster.nodes[1..] {
            node.ctl_ok(&["stop_app"]);
            node.ctl_ok(&["join_cluster", &first]);
            node.ctl_ok(&["start_app"]);
            node.ctl_ok(&["await_startup", "--timeout", "300"]);
        }
        let status = cluster.nodes[0].ctl(&["cluster_status", "--formatter", "json"]);
        let status: serde_json::Value =
            serde_json::from_slice(&status.stdout).expect("cluster_status JSON");
        let running = status["running_nodes"].as_array().map_or(0, Vec::len);
        assert_eq!(running, 3, "three nodes running: {status}");
        cluster
    }

    /// Every node's URL, in node order: the `[amqp] urls` of the fleet.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RabbitNode::url).collect()
    }

    /// The node that leads quorum queue `queue`, and how many members (replicas) it has.
    pub fn leader_of(&self, queue: &str) -> (usize, usize) {
        for asked in &self.nodes {
            let out = asked.ctl(&[
                "list_queues",
                "name",
                "leader",
                "members",
                "--formatter",
                "json",
            ]);
            if !out.status.success() {
                continue;
            }
            let Ok(queues) = serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout) else {
                continue;
            };
            let Some(entry) = queues.iter().find(|q| q["name"] == queue) else {
                continue;
            };
            let leader = entry["leader"].as_str().unwrap_or_default();
            let members = entry["members"].as_array().map_or(0, Vec::len);
            if let Some(index) = self.nodes.iter().position(|n| n.name == leader) {
                return (index, members);
            }
        }
        panic!("no node knows the leader of {queue}");
    }

    /// Waits until every node runs again, sees the other two running and takes AMQP
    /// connections (after a kill or a pause).
    pub fn wait_whole(&self) {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let statuses: Vec<String> = self
                .nodes
                .iter()
                .map(|node| {
                    let out = node.ctl(&["cluster_status", "--formatter", "json"]);
                    String::from_utf8_lossy(&out.stdout).into_owned()
                })
                .collect();
            let whole = self.nodes.iter().zip(&statuses).all(|(node, status)| {
                port_open(node.port)
                    && serde_json::from_str::<serde_json::Value>(status).is_ok_and(|status| {
                        status["running_nodes"].as_array().map_or(0, Vec::len) == 3
                    })
            });
            if whole {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster never became whole: {statuses:#?}\n{}",
                self.nodes
                    .iter()
                    .map(RabbitNode::log_tail)
                    .collect::<Vec<_>>()
                    .join("\n----\n")
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

impl Drop for RabbitCluster {
    fn drop(&mut self) {
        for node in &self.nodes {
            // A paused node would never stop.
            if let Some(pid) = node.pid() {
                let _ = Command::new("kill")
                    .args(["-CONT", &pid.to_string()])
                    .status();
            }
        }
        for node in &self.nodes {
            if !node.ctl(&["stop"]).status.success()
                && let Some(pid) = node.pid()
            {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
