//! A whole impush fleet for one test: impush-sim, impush-ingest, impush-router and one
//! impush-sender per vendor, as real processes on the real RabbitMQ and Redis of this
//! machine, isolated by a unique queue and key prefix and removed at the end.
//!
//! `FleetOptions` can put the fleet on the local Redis Cluster and run several routers and
//! senders per vendor on the same queues.
//!
//! The binaries are the workspace's own (`cargo build --workspace --bins`, which
//! `make test` runs first); `IMPUSH_BIN_DIR` points elsewhere.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use impush_amqp::{Outgoing, Publisher, Topology, protobuf_properties};
use impush_proto::Event;
use impush_proto::v1::{
    DeviceRegistered, Elem, OfflineMessage, PresenceChanged, PresenceState, TextElem, Vendor,
    elem::Content,
};
use serde_json::Value;

pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// The primaries of the local test cluster (`scripts/redis-cluster.sh`, ports 7101-7103).
pub fn redis_cluster_urls() -> Vec<String> {
    (7101..=7103)
        .map(|port| format!("redis://127.0.0.1:{port}"))
        .collect()
}

/// Starts the local test cluster unless it runs already; safe from concurrent tests.
pub fn ensure_redis_cluster() {
    let script = workspace_dir().join("scripts/redis-cluster.sh");
    let status = Command::new(&script)
        .arg("start")
        .status()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(status.success(), "{} start failed", script.display());
}

pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn bin_dir() -> PathBuf {
    std::env::var_os("IMPUSH_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| workspace_dir().join("target"))
                .join("debug")
        })
}

pub fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (make test does)",
        path.display()
    );
    path
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A change a test makes to the fleet's config table before it is written.
pub type ConfigEdit = Box<dyn Fn(&mut toml::Table)>;

/// Settings a test may change before the fleet starts.
pub struct FleetOptions {
    pub vendors: Vec<Vendor>,
    pub retry_delays_ms: Vec<u64>,
    pub max_attempts: u32,
    pub sender_concurrency: usize,
    pub queue_type: &'static str,
    /// Write each process's log to a file at this level instead of the test's output
    /// (`Fleet::logs` reads it).
    pub capture_logs: Option<&'static str>,
    /// The broker and Redis the fleet runs on (the fault suite gives it its own).
    pub amqp_url: String,
    pub redis_url: String,
    pub request_timeout_ms: u64,
    /// False: RabbitMQ and Redis are not up yet, and the workers start before them (the
    /// fleet neither connects nor waits for readiness; `reconnect` once they are up).
    pub services_up: bool,
    /// Run on the local Redis Cluster (`scripts/redis-cluster.sh`) instead of `REDIS_URL`.
    pub redis_cluster: bool,
    /// Processes competing on the messages queue, and on each vendor's push queue.
    pub routers: usize,
    pub senders_per_vendor: usize,
    /// More `(section, key, value)` settings, written last (the TLS files of `[amqp]` and
    /// `[redis]`, …).
    pub settings: Vec<(&'static str, &'static str, toml::Value)>,
    /// How long impush-sim holds every vendor answer (`--latency-ms`): a vendor's round
    /// trip, so that senders are bound by latency as in production, not by loopback speed.
    pub sim_latency_ms: u64,
    /// Any other change to the config, made last (credentials' receipt settings, …).
    pub edit_config: Option<ConfigEdit>,
}

impl Default for FleetOptions {
    fn default() -> FleetOptions {
        FleetOptions {
            vendors: vec![Vendor::Apns, Vendor::Fcm],
            retry_delays_ms: vec![200, 400, 800],
            max_attempts: 4,
            sender_concurrency: 16,
            queue_type: "classic",
            capture_logs: None,
            amqp_url: AMQP_URL.to_owned(),
            redis_url: REDIS_URL.to_owned(),
            request_timeout_ms: 2_000,
            services_up: true,
            redis_cluster: false,
            routers: 1,
            senders_per_vendor: 1,
            settings: Vec::new(),
            sim_latency_ms: 0,
            edit_config: None,
        }
    }
}

pub struct Fleet {
    pub prefix: String,
    /// Every Redis node holding this fleet's keys (one, or each primary of the cluster).
    pub redis_urls: Vec<String>,
    pub config_path: PathBuf,
    pub sim_url: String,
    pub topology: Topology,
    pub config: impush_config::Config,
    pub amqp_url: String,
    pub redis_url: String,
    processes: HashMap<String, Child>,
    /// What each process was started as, so that it can be started again after a kill.
    commands: HashMap<String, (String, Vec<String>)>,
    admin: HashMap<String, u16>,
    capture_logs: Option<&'static str>,
    dir: PathBuf,
    http: reqwest::Client,
    connection: Option<impush_amqp::Connection>,
    publisher: Option<Publisher>,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Fleet {
    pub async fn start(options: FleetOptions) -> Fleet {
        let prefix = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let dir = std::env::temp_dir().join(format!("impush-{prefix}"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let sim_port = free_port();
        let sim_url = format!("http://127.0.0.1:{sim_port}");
        let keys = workspace_dir().join("deploy/local/keys");
        let base = std::fs::read_to_string(workspace_dir().join("deploy/local/impush.toml"))
            .expect("the local stack config")
            .replace("http://127.0.0.1:8700", &sim_url)
            .replace("\"keys/", &format!("\"{}/", keys.display()))
            .replace(
                "listen = \"127.0.0.1:8700\"",
                &format!("listen = \"127.0.0.1:{sim_port}\""),
            );
        let mut table: toml::Table = base.parse().expect("config parses");
        let set = |table: &mut toml::Table, section: &str, key: &str, value: toml::Value| {
            table
                .entry(section)
                .or_insert_with(|| toml::Value::Table(Default::default()))
                .as_table_mut()
                .expect("a section")
                .insert(key.into(), value);
        };
        use toml::Value as V;
        set(&mut table, "amqp", "prefix", V::String(prefix.clone()));
        set(
            &mut table,
            "amqp",
            "url",
            V::String(options.amqp_url.clone()),
        );
        set(
            &mut table,
            "redis",
            "url",
            V::String(options.redis_url.clone()),
        );
        set(
            &mut table,
            "amqp",
            "queue_type",
            V::String(options.queue_type.into()),
        );
        set(
            &mut table,
            "amqp",
            "retry_delays_ms",
            V::Array(
                options
                    .retry_delays_ms
                    .iter()
                    .map(|d| V::Integer(*d as i64))
                    .collect(),
            ),
        );
        set(
            &mut table,
            "amqp",
            "max_attempts",
            V::Integer(options.max_attempts.into()),
        );
        set(&mut table, "amqp", "prefetch", V::Integer(32));
        set(&mut table, "redis", "prefix", V::String(prefix.clone()));
        let redis_urls = if options.redis_cluster {
            ensure_redis_cluster();
            let urls = redis_cluster_urls();
            set(&mut table, "redis", "cluster", V::Boolean(true));
            set(
                &mut table,
                "redis",
                "urls",
                V::Array(urls.iter().cloned().map(V::String).collect()),
            );
            urls
        } else {
            vec![options.redis_url.clone()]
        };
        set(
            &mut table,
            "sender",
            "concurrency",
            V::Integer(options.sender_concurrency as i64),
        );
        set(
            &mut table,
            "sender",
            "request_timeout_ms",
            V::Integer(options.request_timeout_ms as i64),
        );
        for (section, key, value) in &options.settings {
            set(&mut table, section, key, value.clone());
        }
        if let Some(edit) = &options.edit_config {
            edit(&mut table);
        }
        let config_path = dir.join("impush.toml");
        std::fs::write(
            &config_path,
            toml::to_string(&table).expect("config serialises"),
        )
        .expect("config written");
        let config = impush_config::Config::load(&config_path).expect("test config loads");
        let topology = Topology::new(&config.amqp);

        let (connection, publisher) = if options.services_up {
            let tls = config.amqp_tls().expect("the test config's TLS files");
            let connection = impush_amqp::connect_with_tls(&options.amqp_url, &tls)
                .await
                .expect("RabbitMQ is running");
            let channel = connection.create_channel().await.expect("channel");
            topology.declare(&channel).await.expect("topology");
            let publisher = Publisher::open(&connection).await.expect("publisher");
            (Some(connection), Some(publisher))
        } else {
            (None, None)
        };

        let mut fleet = Fleet {
            prefix,
            redis_urls,
            config_path,
            sim_url,
            topology,
            config,
            amqp_url: options.amqp_url.clone(),
            redis_url: options.redis_url.clone(),
            processes: HashMap::new(),
            commands: HashMap::new(),
            admin: HashMap::new(),
            capture_logs: options.capture_logs,
            dir: dir.clone(),
            http: reqwest::Client::new(),
            connection,
            publisher,
            _dir: TempDir(dir),
        };
        let latency = options.sim_latency_ms.to_string();
        let sim_args: &[&str] = if options.sim_latency_ms > 0 {
            &["--latency-ms", &latency]
        } else {
            &[]
        };
        fleet.spawn("impush-sim", sim_args);
        fleet
            .wait_http(&format!("{}/sim/deliveries", fleet.sim_url))
            .await;
        fleet.spawn("impush-ingest", &[]);
        fleet.spawn("impush-router", &[]);
        for n in 2..=options.routers {
            fleet.spawn_named(&format!("impush-router-{n}"), "impush-router", &[]);
        }
        for vendor in &options.vendors {
            let name = impush_core::vendor::name(*vendor);
            fleet.spawn_named(
                &format!("sender-{name}"),
                "impush-sender",
                &["--vendor", name],
            );
            for n in 2..=options.senders_per_vendor {
                fleet.spawn_named(
                    &format!("sender-{name}-{n}"),
                    "impush-sender",
                    &["--vendor", name],
                );
            }
        }
        if options.services_up {
            for name in fleet.worker_names() {
                fleet.wait_ready(&name).await;
            }
        }
        fleet
    }

    fn spawn(&mut self, binary_name: &str, args: &[&str]) {
        self.spawn_named(binary_name, binary_name, args);
    }

    /// Starts (or restarts) a process of the fleet.
    pub fn spawn_named(&mut self, name: &str, binary_name: &str, args: &[&str]) {
        let mut command = Command::new(binary(binary_name));
        command
            .arg("--config")
            .arg(&self.config_path)
            .args(args)
            .current_dir(workspace_dir())
            .env(
                "RUST_LOG",
                std::env::var("IMPUSH_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null());
        if let Some(level) = self.capture_logs {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join(format!("{name}.log")))
                .expect("log file");
            command
                .env("RUST_LOG", level)
                .stdout(file.try_clone().expect("log file"))
                .stderr(file);
        }
        if binary_name != "impush-sim" {
            let port = free_port();
            command
                .arg("--metrics-addr")
                .arg(format!("127.0.0.1:{port}"));
            self.admin.insert(name.to_owned(), port);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {binary_name}: {e}"));
        self.processes.insert(name.to_owned(), child);
        self.commands.insert(
            name.to_owned(),
            (
                binary_name.to_owned(),
                args.iter().map(|a| (*a).to_owned()).collect(),
            ),
        );
    }

    /// Starts a process again as it was first started (after `kill9` or `terminate`).
    pub fn restart(&mut self, name: &str) {
        let (binary_name, args) = self.commands[name].clone();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.spawn_named(name, &binary_name, &args);
    }

    /// The exit status of a process that ended by itself; `None` while it runs.
    pub fn exited(&mut self, name: &str) -> Option<std::process::ExitStatus> {
        self.processes
            .get_mut(name)
            .and_then(|child| child.try_wait().ok().flatten())
    }

    /// The names of the fleet's worker processes (the simulator excluded).
    pub fn worker_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.admin.keys().cloned().collect();
        names.sort();
        names
    }

    /// `/readyz` of a worker: its status code and body, or `None` when it does not answer.
    pub async fn readyz(&self, name: &str) -> Option<(u16, String)> {
        let url = format!("http://127.0.0.1:{}/readyz", self.admin[name]);
        let response = self.http.get(url).send().await.ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.unwrap_or_default()))
    }

    /// A new connection and publisher, after the broker went away and came back.
    pub async fn reconnect(&mut self) {
        let tls = self.config.amqp_tls().expect("the test config's TLS files");
        let connection = impush_amqp::connect_with_tls(&self.amqp_url, &tls)
            .await
            .expect("RabbitMQ is running");
        self.publisher = Some(Publisher::open(&connection).await.expect("publisher"));
        self.connection = Some(connection);
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub async fn wait_ready(&self, name: &str) {
        self.wait_ready_within(name, Duration::from_secs(30)).await;
    }

    pub async fn wait_ready_within(&self, name: &str, timeout: Duration) {
        let port = self.admin[name];
        self.wait_http_within(&format!("http://127.0.0.1:{port}/readyz"), timeout)
            .await;
    }

    async fn wait_http(&self, url: &str) {
        self.wait_http_within(url, Duration::from_secs(30)).await;
    }

    async fn wait_http_within(&self, url: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(response) = self.http.get(url).send().await
                && response.status().is_success()
            {
                return;
            }
            assert!(Instant::now() < deadline, "{url} never became ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill9(&mut self, name: &str) {
        if let Some(mut child) = self.processes.remove(name) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then wait for the exit status.
    pub fn terminate(&mut self, name: &str) -> std::process::ExitStatus {
        let mut child = self.processes.remove(name).expect("a running process");
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        child.wait().expect("exit status")
    }

    /// What a process logged so far (with `FleetOptions::capture_logs`).
    pub fn logs(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    pub fn pid(&self, name: &str) -> u32 {
        self.processes[name].id()
    }

    /// The process ids of the fleet, by name (for CPU accounting in the scale benchmark).
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.processes
            .iter()
            .map(|(name, child)| (name.clone(), child.id()))
            .collect()
    }

    pub fn admin_port(&self, name: &str) -> u16 {
        self.admin[name]
    }

    pub async fn metrics(&self, name: &str) -> String {
        let url = format!("http://127.0.0.1:{}/metrics", self.admin[name]);
        self.http
            .get(url)
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    pub async fn publish(&self, events: Vec<Event>) {
        let messages = events
            .into_iter()
            .map(|event| Outgoing {
                mandatory: true,
                exchange: self.topology.events_exchange(),
                routing_key: event.kind().routing_key().to_owned(),
                body: event.encode_to_vec(),
                properties: protobuf_properties(event.kind().type_name()),
            })
            .collect();
        self.publisher()
            .publish_all(messages)
            .await
            .expect("published");
    }

    pub async fn publish_raw(&self, routing_key: &str, type_name: &str, body: Vec<u8>) {
        self.publisher()
            .publish(Outgoing {
                mandatory: true,
                exchange: self.topology.events_exchange(),
                routing_key: routing_key.into(),
                body,
                properties: protobuf_properties(type_name),
            })
            .await
            .expect("published");
    }

    pub fn publisher(&self) -> &Publisher {
        self.publisher
            .as_ref()
            .expect("connected to RabbitMQ (reconnect once it is up)")
    }

    pub fn connection(&self) -> &impush_amqp::Connection {
        self.connection
            .as_ref()
            .expect("connected to RabbitMQ (reconnect once it is up)")
    }

    pub async fn deliveries(&self, vendor: Option<&str>) -> Vec<Value> {
        let mut url = format!("{}/sim/deliveries", self.sim_url);
        if let Some(vendor) = vendor {
            url.push_str(&format!("?vendor={vendor}"));
        }
        self.http
            .get(url)
            .send()
            .await
            .expect("sim")
            .json()
            .await
            .expect("deliveries JSON")
    }

    /// Waits until `check` holds for the deliveries, or fails with them.
    pub async fn wait_deliveries(
        &self,
        timeout: Duration,
        check: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let deliveries = self.deliveries(None).await;
            if check(&deliveries) {
                return deliveries;
            }
            if Instant::now() > deadline {
                panic!(
                    "deliveries never matched; got {}: {deliveries:#?}",
                    deliveries.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn fault(&self, fault: Value) {
        let response = self
            .http
            .post(format!("{}/sim/faults", self.sim_url))
            .json(&fault)
            .send()
            .await
            .expect("sim");
        assert!(
            response.status().is_success(),
            "fault refused: {}",
            response.status()
        );
    }

    /// Messages currently in a queue of this fleet.
    pub async fn queue_len(&self, queue: &str) -> u32 {
        let channel = self.connection().create_channel().await.expect("channel");
        let declared = channel
            .queue_declare(
                queue.into(),
                impush_amqp_options::passive(),
                impush_amqp::FieldTable::default(),
            )
            .await
            .expect("queue exists");
        declared.message_count()
    }

    /// Takes every message out of a queue (acking them), with their headers.
    /// Drains `queue` until something is there; panics if nothing arrives within `timeout`.
    pub async fn wait_drain(&self, queue: &str, timeout: Duration) -> Vec<impush_amqp::Delivery> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let got = self.drain(queue).await;
            if !got.is_empty() {
                return got;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "nothing arrived in {queue}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn drain(&self, queue: &str) -> Vec<impush_amqp::Delivery> {
        let channel = self.connection().create_channel().await.expect("channel");
        let mut out = Vec::new();
        while let Some(message) = channel
            .basic_get(queue.into(), impush_amqp_options::get_ack())
            .await
            .expect("basic.get")
        {
            out.push(message.delivery);
        }
        out
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for (_, mut child) in self.processes.drain() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Queues and keys of this prefix go; nothing of other tests is touched.
        let topology = self.topology.clone();
        let prefix = self.prefix.clone();
        let amqp_url = self.amqp_url.clone();
        let redis_urls = self.redis_urls.clone();
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(connection) = impush_amqp::connect(&amqp_url).await
                    && let Ok(channel) = connection.create_channel().await
                {
                    let _ = topology.delete(&channel).await;
                }
                // Key by key: on a cluster node, one DEL of keys in several slots is refused.
                for url in redis_urls {
                    if let Ok(client) = redis::Client::open(url)
                        && let Ok(mut con) = client.get_multiplexed_async_connection().await
                    {
                        let keys: Vec<String> = redis::cmd("KEYS")
                            .arg(format!("{prefix}:*"))
                            .query_async(&mut con)
                            .await
                            .unwrap_or_default();
                        for chunk in keys.chunks(500) {
                            let mut pipe = redis::pipe();
                            for key in chunk {
                                pipe.del(key).ignore();
                            }
                            let _: Result<(), _> = pipe.query_async(&mut con).await;
                        }
                    }
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// lapin option values the tests use.
mod impush_amqp_options {
    use impush_amqp::options::{BasicGetOptions, QueueDeclareOptions};

    pub fn passive() -> QueueDeclareOptions {
        QueueDeclareOptions {
            passive: true,
            ..Default::default()
        }
    }

    pub fn get_ack() -> BasicGetOptions {
        BasicGetOptions { no_ack: true }
    }
}

// ---- event builders -------------------------------------------------------------------

pub const APP: u32 = 1400000001;

pub fn register(user: &str, device: &str, vendor: Vendor, token: &str, at_ms: i64) -> Event {
    let business_id = match vendor {
        Vendor::Apns => 1,
        Vendor::Fcm => 2,
        Vendor::Huawei => 3,
        Vendor::Xiaomi => 4,
        Vendor::Oppo => 5,
        Vendor::Vivo => 6,
        Vendor::Meizu => 7,
        Vendor::Tpns => 8,
        Vendor::Honor => 9,
        Vendor::Harmony => 10,
        Vendor::Unspecified => 0,
    };
    Event::DeviceRegistered(DeviceRegistered {
        sdk_app_id: APP,
        user_id: user.into(),
        device_id: device.into(),
        vendor: vendor as i32,
        business_id,
        token: token.into(),
        is_tpns_token: false,
        at_ms,
    })
}

pub fn presence(user: &str, device: &str, state: PresenceState, unread: u32, at_ms: i64) -> Event {
    Event::PresenceChanged(PresenceChanged {
        sdk_app_id: APP,
        user_id: user.into(),
        device_id: device.into(),
        state: state as i32,
        unread,
        at_ms,
    })
}

pub fn text_message(msg_id: &str, from: &str, to: &str, text: &str) -> OfflineMessage {
    OfflineMessage {
        msg_id: msg_id.into(),
        sdk_app_id: APP,
        sender_id: from.into(),
        sender_nickname: from.to_uppercase(),
        receiver_id: to.into(),
        elems: vec![Elem {
            content: Some(Content::Text(TextElem { text: text.into() })),
        }],
        send_time_ms: now_ms(),
        ..Default::default()
    }
}

/// A 64-hex-character APNs-looking token, distinct per seed.
pub fn apns_token(seed: u32) -> String {
    format!("{seed:08x}").repeat(8)
}
