//! Shared helpers of the integration tests: a [`Store`] on the real Redis, or on a local
//! 3-primary Redis Cluster (`scripts/redis-cluster.sh`, started on first use), under a
//! fresh, unique prefix; a raw connection to look at the keys; event builders; cleanup; and
//! [`store_test!`], which runs one test on both.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod slots;

use impush_proto::v1::{
    DeviceRegistered, DeviceUnregistered, OpenPush, PresenceChanged, PresenceState, PushSettings,
    Vendor,
};
use impush_store::{ClientTls, Endpoint, Store};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{AsyncCommands, Cmd, Pipeline, RedisFuture, Value};

pub const APP: u32 = 1400000001;

pub fn redis_url() -> String {
    std::env::var("IMPUSH_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The test cluster's primaries, from `IMPUSH_TEST_REDIS_CLUSTER_URLS` (comma-separated) or
/// the ports `scripts/redis-cluster.sh` uses.
pub fn cluster_urls() -> Vec<String> {
    match std::env::var("IMPUSH_TEST_REDIS_CLUSTER_URLS") {
        Ok(urls) => urls.split(',').map(str::to_owned).collect(),
        Err(_) => (7101..=7103)
            .map(|port| format!("redis://127.0.0.1:{port}"))
            .collect(),
    }
}

/// Starts the local test cluster unless it runs already (once per test process; the script
/// itself serialises concurrent callers). With `IMPUSH_TEST_REDIS_CLUSTER_URLS` set, the
/// cluster is someone else's and is left alone.
pub fn ensure_cluster() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        if std::env::var_os("IMPUSH_TEST_REDIS_CLUSTER_URLS").is_some() {
            return;
        }
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/redis-cluster.sh");
        let status = std::process::Command::new(&script)
            .arg("start")
            .status()
            .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
        assert!(status.success(), "{} start failed", script.display());
    });
}

/// Which Redis a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Server,
    Cluster,
}

impl Target {
    pub fn endpoint(self) -> Endpoint {
        match self {
            Target::Server => Endpoint::Server(redis_url()),
            Target::Cluster => {
                ensure_cluster();
                Endpoint::Cluster(cluster_urls())
            }
        }
    }
}

/// A raw connection to look at and tamper with keys, on either target.
#[derive(Clone)]
pub enum Raw {
    Server(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Raw {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Raw::Server(con) => con.req_packed_command(cmd),
            Raw::Cluster(con) => con.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Raw::Server(con) => con.req_packed_commands(pipeline, offset, count),
            Raw::Cluster(con) => con.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        0
    }
}

pub struct TestStore {
    pub store: Store,
    pub prefix: String,
    pub raw: Raw,
    pub target: Target,
}

impl TestStore {
    pub async fn new(target: Target) -> TestStore {
        let prefix = format!("impush-test-{}", uuid::Uuid::new_v4());
        let store = Store::connect_to(&target.endpoint(), &ClientTls::default(), &prefix)
            .await
            .unwrap_or_else(|e| panic!("Redis ({target:?}) must run: {e}"));
        let raw = match target {
            Target::Server => Raw::Server(
                redis::Client::open(redis_url())
                    .unwrap()
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap(),
            ),
            Target::Cluster => Raw::Cluster(
                redis::cluster::ClusterClient::new(cluster_urls())
                    .unwrap()
                    .get_async_connection()
                    .await
                    .unwrap(),
            ),
        };
        TestStore {
            store,
            prefix,
            raw,
            target,
        }
    }

    /// A second store on the same Redis and prefix: another process of the fleet.
    pub async fn connect_another(&self) -> Store {
        Store::connect_to(&self.target.endpoint(), &ClientTls::default(), &self.prefix)
            .await
            .unwrap()
    }

    /// This test's keys on each node: one list for a server, one per primary on a cluster.
    pub async fn keys_per_node(&self) -> Vec<Vec<String>> {
        let urls = match self.target {
            Target::Server => vec![redis_url()],
            Target::Cluster => cluster_urls(),
        };
        let mut per_node = Vec::new();
        for url in urls {
            let mut con = redis::Client::open(url)
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap();
            let mut keys = Vec::new();
            let mut cursor: u64 = 0;
            loop {
                let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(format!("{}:*", self.prefix))
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut con)
                    .await
                    .unwrap();
                keys.extend(batch);
                if next == 0 {
                    break;
                }
                cursor = next;
            }
            per_node.push(keys);
        }
        per_node
    }

    /// Every key this test wrote.
    pub async fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.keys_per_node().await.into_iter().flatten().collect();
        keys.sort();
        keys
    }

    /// The one key of this test that ends with `suffix` (`":d:iphone"`: that device's hash).
    pub async fn key_ending(&self, suffix: &str) -> String {
        self.keys()
            .await
            .into_iter()
            .find(|k| k.ends_with(suffix))
            .unwrap_or_else(|| panic!("no key ending {suffix:?}"))
    }

    pub async fn ttl_of_key_containing(&self, needle: &str) -> i64 {
        let key = self
            .keys()
            .await
            .into_iter()
            .find(|k| k.contains(needle))
            .unwrap_or_else(|| panic!("no key containing {needle:?}"));
        let mut raw = self.raw.clone();
        raw.ttl(key).await.unwrap()
    }

    /// Deletes every key of this test and checks none is left.
    pub async fn cleanup(self) {
        let keys = self.keys().await;
        let mut raw = self.raw.clone();
        for key in keys {
            let _: () = raw.del(key).await.unwrap();
        }
        assert!(
            self.keys().await.is_empty(),
            "keys left under {}",
            self.prefix
        );
    }
}

/// One test, run twice: `<name>::server` on the single Redis and `<name>::cluster` on the
/// Redis Cluster, each with its own [`TestStore`] bound to `$t`.
#[macro_export]
macro_rules! store_test {
    ($(#[$attr:meta])* async fn $name:ident($t:ident) $body:block) => {
        mod $name {
            use super::*;

            $(#[$attr])*
            async fn run($t: TestStore) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn server() {
                run(TestStore::new(Target::Server).await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn cluster() {
                run(TestStore::new(Target::Cluster).await).await
            }
        }
    };
}

pub fn registered(user: &str, device: &str, token: &str, at_ms: i64) -> DeviceRegistered {
    DeviceRegistered {
        sdk_app_id: APP,
        user_id: user.into(),
        device_id: device.into(),
        vendor: Vendor::Apns as i32,
        business_id: 1,
        token: token.into(),
        is_tpns_token: false,
        at_ms,
    }
}

pub fn unregistered(user: &str, device: &str, at_ms: i64) -> DeviceUnregistered {
    DeviceUnregistered {
        sdk_app_id: APP,
        user_id: user.into(),
        device_id: device.into(),
        at_ms,
    }
}

pub fn presence(
    user: &str,
    device: &str,
    state: PresenceState,
    unread: u32,
    at_ms: i64,
) -> PresenceChanged {
    PresenceChanged {
        sdk_app_id: APP,
        user_id: user.into(),
        device_id: device.into(),
        state: state as i32,
        unread,
        at_ms,
    }
}

pub fn settings(user: &str, open_push: OpenPush, c2c_sound: &str, at_ms: i64) -> PushSettings {
    PushSettings {
        sdk_app_id: APP,
        user_id: user.into(),
        open_push: open_push as i32,
        c2c_sound: c2c_sound.into(),
        group_sound: String::new(),
        at_ms,
        ..Default::default()
    }
}

/// The tokens of a user's fetched devices, by device id order.
pub async fn tokens_of(store: &Store, user: &str) -> Vec<(String, String)> {
    let recipients = store
        .fetch_recipients(APP, &[user.to_owned()])
        .await
        .unwrap();
    recipients[0]
        .devices
        .iter()
        .map(|d| (d.state.device_id.clone(), d.state.token.clone()))
        .collect()
}
