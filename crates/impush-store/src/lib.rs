//! impush's Redis schema: device registrations, presence, push settings, iOS badge counters
//! and the "already sent" records that deduplicate pushes.
//!
//! - impush-ingest writes state events with [`Store::register_device`],
//!   [`Store::unregister_device`], [`Store::set_presence`], [`Store::set_settings`] and
//!   [`Store::set_conversation_option`]: each
//!   is one atomic script, last write wins by the event's `at_ms`, so duplicated and
//!   reordered events converge (an event not newer than the stored state is [`Applied::Stale`]).
//! - impush-router reads recipients with [`Store::fetch_recipients`] (or, with the recipients'
//!   option for the message's conversation and whether it was recalled, with
//!   [`Store::fetch_chunk`]), counts badges with [`Store::bump_badges`], and remembers
//!   recalls with [`Store::remember_revoked`].
//! - impush-sender deduplicates with [`Store::already_sent`] / [`Store::mark_sent`] (claiming
//!   with [`Store::claim_unless_revoked`], which also says whether the message was recalled),
//!   prunes dead tokens with [`Store::remove_device_if_token`], and shares each credential's
//!   rate limit and daily quota count with the whole fleet ([`Store::take_rate`],
//!   [`Store::count_quota`]).
//!
//! Every batch call costs one round trip per Redis node (two for `fetch_recipients`). The
//! store runs on one Redis server or on a Redis Cluster ([`Endpoint`], `connection.rs` and
//! `cluster.rs`). The key layout is in `keys.rs`, the scripts and the device hash fields in
//! `scripts.rs`.

mod badges;
mod cluster;
mod coalesce;
mod connection;
mod dedupe;
mod error;
mod keys;
mod limits;
mod nodes;
mod receipts;
mod recipients;
mod redirect;
mod reply;
mod revoked;
mod scripts;
mod state;
mod tls;

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, RedisError, Script, ServerErrorKind, Value};

pub use connection::Endpoint;
pub use dedupe::SendClaim;
pub use error::StoreError;
pub use impush_config::ClientTls;
pub use recipients::{ChunkState, DeviceRecord, RecipientState};
pub use revoked::RecallTaken;

use connection::{Batch, Connection};
use keys::KeySpace;

/// A connection to impush's Redis state. Cheap to clone: clones share one multiplexed
/// connection (one per node on a cluster), which reconnects by itself after Redis restarts.
#[derive(Clone)]
pub struct Store {
    con: Connection,
    keys: Arc<KeySpace>,
    scripts: Arc<Scripts>,
    /// The value of this store's send claims: unique per connected process.
    claim_owner: Arc<str>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

/// Whether a state event changed the stored state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Applied,
    /// The stored state is as new as the event or newer (a repeat or a late arrival);
    /// nothing changed.
    Stale,
}

/// One device of one user, as the router and sender name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceRef<'a> {
    pub user_id: &'a str,
    pub device_id: &'a str,
}

/// The scripts, hashed once; `EVALSHA` with a reload when Redis has forgotten them.
struct Scripts {
    register_device: Script,
    unregister_device: Script,
    set_presence: Script,
    set_settings: Script,
    set_conversation_option: Script,
    bump_badges: Script,
    remove_device_if_token: Script,
    release_claims: Script,
    take_rate: Script,
    count_quota: Script,
}

impl Scripts {
    fn new() -> Scripts {
        Scripts {
            register_device: Script::new(scripts::REGISTER_DEVICE),
            unregister_device: Script::new(scripts::UNREGISTER_DEVICE),
            set_presence: Script::new(scripts::SET_PRESENCE),
            set_settings: Script::new(scripts::SET_SETTINGS),
            set_conversation_option: Script::new(scripts::SET_CONVERSATION_OPTION),
            bump_badges: Script::new(scripts::BUMP_BADGES),
            remove_device_if_token: Script::new(scripts::REMOVE_DEVICE_IF_TOKEN),
            release_claims: Script::new(scripts::RELEASE_CLAIMS),
            take_rate: Script::new(scripts::TAKE_RATE),
            count_quota: Script::new(scripts::COUNT_QUOTA),
        }
    }

    fn all(&self) -> [&Script; 10] {
        [
            &self.register_device,
            &self.unregister_device,
            &self.set_presence,
            &self.set_settings,
            &self.set_conversation_option,
            &self.bump_badges,
            &self.release_claims,
            &self.remove_device_if_token,
            &self.take_rate,
            &self.count_quota,
        ]
    }
}

/// A redis-rs client of one server with `[redis]`'s TLS settings, for tools that run their
/// own commands (the store's own connections are made the same way).
pub fn client(url: &str, tls: &ClientTls) -> Result<redis::Client, StoreError> {
    tls::install_crypto_provider();
    Ok(match tls::certificates(tls) {
        Some(certificates) => redis::Client::build_with_tls(url, certificates)?,
        None => redis::Client::open(url)?,
    })
}

/// Redis answers in well under a millisecond; these bound how long a worker waits when it
/// does not (a 500-user fetch pipeline included), so a stalled Redis surfaces as a transient
/// error instead of a hung consumer.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

impl Store {
    /// Connects to one Redis server or to a Redis Cluster, as `[redis]` says; `tls` is
    /// `[redis]`'s CA and client certificate (`Config::redis_tls`), for `rediss://` URLs.
    pub async fn connect_to(
        endpoint: &Endpoint,
        tls: &ClientTls,
        prefix: &str,
    ) -> Result<Store, StoreError> {
        match endpoint {
            Endpoint::Server(url) => Store::connect_server(url, tls, prefix).await,
            Endpoint::Cluster(seeds) => Store::connect_cluster_with_tls(seeds, tls, prefix).await,
        }
    }

    /// Connects to `url` (e.g. `redis://127.0.0.1:6379`) and loads the scripts. Every key
    /// starts with `prefix`, which must not contain braces (they would break the hash tags).
    /// A `rediss://` URL trusts the system's store; [`Store::connect_to`] takes a CA.
    pub async fn connect(url: &str, prefix: &str) -> Result<Store, StoreError> {
        Store::connect_server(url, &ClientTls::default(), prefix).await
    }

    async fn connect_server(url: &str, tls: &ClientTls, prefix: &str) -> Result<Store, StoreError> {
        let keys = KeySpace::new(prefix)?;
        let client = client(url, tls)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECTION_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let con = ConnectionManager::new_with_config(client, config).await?;
        Store::with_connection(Connection::server(con), keys).await
    }

    /// Connects to a Redis Cluster through any of its `seeds` (e.g.
    /// `redis://127.0.0.1:7101`), reads its slot map and loads the scripts on every node.
    pub async fn connect_cluster(seeds: &[String], prefix: &str) -> Result<Store, StoreError> {
        Store::connect_cluster_with_tls(seeds, &ClientTls::default(), prefix).await
    }

    async fn connect_cluster_with_tls(
        seeds: &[String],
        tls: &ClientTls,
        prefix: &str,
    ) -> Result<Store, StoreError> {
        let keys = KeySpace::new(prefix)?;
        if seeds.is_empty() {
            return Err(StoreError::invalid("redis cluster", "no seed node"));
        }
        tls::install_crypto_provider();
        let cluster = cluster::Cluster::connect(
            seeds,
            tls::certificates(tls),
            CONNECTION_TIMEOUT,
            RESPONSE_TIMEOUT,
        )
        .await?;
        Store::with_connection(Connection::Cluster(cluster), keys).await
    }

    async fn with_connection(con: Connection, keys: KeySpace) -> Result<Store, StoreError> {
        let store = Store {
            con,
            keys: Arc::new(keys),
            scripts: Arc::new(Scripts::new()),
            claim_owner: claim_owner().into(),
        };
        store.check_version().await?;
        store.load_scripts().await?;
        Ok(store)
    }

    /// Refuses a Redis older than [`MIN_REDIS`], on every node of a cluster; once, at
    /// connect (not again when a node that forgot the scripts gets them back).
    async fn check_version(&self) -> Result<(), StoreError> {
        let mut con = self.con.clone();
        // One text from a server; a map of node to text from a cluster (every node).
        let info: Value = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut con)
            .await?;
        match info {
            Value::Map(nodes) => {
                for (_, text) in nodes {
                    check_version(&info_text(text)?)?;
                }
            }
            text => check_version(&info_text(text)?)?,
        }
        Ok(())
    }

    /// Whether Redis answers (every node, on a cluster); for `/readyz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut con = self.con.clone();
        let reply: Value = redis::cmd("PING").query_async(&mut con).await?;
        match reply {
            Value::SimpleString(_) | Value::Okay | Value::BulkString(_) => Ok(()),
            other => Err(StoreError::unexpected("PING", format!("{other:?}"))),
        }
    }

    /// Loads every script up front, so that batches of `EVALSHA`, which redis-rs does not
    /// reload on its own, normally find them. On a cluster, `SCRIPT LOAD` goes to every node
    /// redis-rs knows and to every primary of the store's slot map.
    async fn load_scripts(&self) -> Result<(), StoreError> {
        let mut con = self.con.clone();
        for script in self.scripts.all() {
            script.load_async(&mut con).await?;
        }
        if let Connection::Cluster(cluster) = &self.con {
            cluster.load_scripts(&scripts::ALL).await?;
        }
        Ok(())
    }

    /// Runs a batch and returns its replies in order. On a cluster, commands refused
    /// with a redirect (a slot being migrated or moved, `cluster.rs`) are sent where they
    /// belong; a node that forgot a script (a restart, `SCRIPT FLUSH`, a node added to the
    /// cluster) gets the scripts again and the commands it refused are sent again. Either
    /// way only refused commands are sent again, and a refused command did not run, so a
    /// script with side effects (a badge bump, a claim) runs once per call.
    async fn run_batch(&self, batch: &Batch) -> Result<Vec<Value>, StoreError> {
        const SCRIPT_RELOADS: usize = 2;
        let mut replies = self.con.run(batch).await?;
        for _ in 0..SCRIPT_RELOADS {
            let forgotten: Vec<usize> = replies
                .iter()
                .enumerate()
                .filter(|(_, reply)| {
                    matches!(reply, Value::ServerError(e) if e.kind() == Some(ServerErrorKind::NoScript))
                })
                .map(|(position, _)| position)
                .collect();
            if forgotten.is_empty() {
                break;
            }
            self.load_scripts().await?;
            let again = self.con.run(&batch.only(&forgotten)).await?;
            for (position, reply) in forgotten.into_iter().zip(again) {
                if let Some(slot) = replies.get_mut(position) {
                    *slot = reply;
                }
            }
        }
        if let Some(error) = replies.iter().find_map(|reply| match reply {
            Value::ServerError(error) => Some(error.clone()),
            _ => None,
        }) {
            return Err(RedisError::from(error).into());
        }
        Ok(replies)
    }

    /// Runs one command (all its keys in the slot of `key`) as a batch of one: its round
    /// trip shared like any batch's, a forgotten script loaded again.
    async fn run_one(
        &self,
        call: &'static str,
        key: &str,
        cmd: redis::Cmd,
    ) -> Result<Value, StoreError> {
        let mut batch = Batch::new();
        batch.add(key, cmd);
        self.run_batch(&batch)
            .await?
            .pop()
            .ok_or_else(|| StoreError::unexpected(call, "no reply"))
    }
}

/// `claim:<pid>:<nanos>`: tells this process's claims apart from any other's.
fn claim_owner() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("claim:{}:{nanos}", std::process::id())
}

/// The devices of a batch grouped by user, in order of first appearance, each with the
/// positions of its devices in the batch: one script call (or key group) per user, and the
/// answers put back in the caller's order.
fn group_by_user<'d>(devices: &[DeviceRef<'d>]) -> Vec<(&'d str, Vec<usize>)> {
    let mut groups: Vec<(&'d str, Vec<usize>)> = Vec::new();
    let mut group_of_user: std::collections::HashMap<&'d str, usize> =
        std::collections::HashMap::new();
    for (position, device) in devices.iter().enumerate() {
        let group = *group_of_user.entry(device.user_id).or_insert_with(|| {
            groups.push((device.user_id, Vec::new()));
            groups.len() - 1
        });
        if let Some((_, positions)) = groups.get_mut(group) {
            positions.push(position);
        }
    }
    groups
}

/// The oldest Redis impush runs on: a send claim is `SET … NX GET`, which 7.0 introduced.
const MIN_REDIS: (u32, u32) = (7, 0);

/// The text of one node's `INFO` reply.
fn info_text(reply: Value) -> Result<String, StoreError> {
    String::from_redis_value(reply)
        .map_err(|e| StoreError::unexpected("INFO server", e.to_string()))
}

/// Refuses a server older than [`MIN_REDIS`], named by `INFO server`'s `redis_version`
/// (Valkey reports the Redis version it is compatible with there too).
fn check_version(info: &str) -> Result<(), StoreError> {
    const WHAT: &str = "redis version";
    let version = info
        .lines()
        .find_map(|line| line.strip_prefix("redis_version:"))
        .map(str::trim)
        .ok_or_else(|| StoreError::invalid(WHAT, "INFO server names no redis_version"))?;
    let mut parts = version.split('.').map(str::parse::<u32>);
    let (Some(Ok(major)), Some(Ok(minor))) = (parts.next(), parts.next()) else {
        return Err(StoreError::invalid(
            WHAT,
            format!("cannot read redis_version {version:?}"),
        ));
    };
    if (major, minor) < MIN_REDIS {
        return Err(StoreError::invalid(
            WHAT,
            format!(
                "Redis {version} is too old: impush needs {}.{} or later",
                MIN_REDIS.0, MIN_REDIS.1
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redis_older_than_7_0_is_refused_at_connect() {
        let info = |v: &str| format!("# Server\r\nredis_version:{v}\r\nredis_mode:standalone\r\n");
        assert!(check_version(&info("7.0.15")).is_ok());
        assert!(check_version(&info("8.2.1")).is_ok());
        let old = check_version(&info("6.2.14")).unwrap_err().to_string();
        assert!(
            old.contains("6.2.14 is too old") && old.contains("7.0"),
            "{old}"
        );
        assert!(check_version(&info("seven")).is_err());
        assert!(check_version("# Server\r\n").is_err());
    }

    #[test]
    fn grouping_by_user_keeps_first_appearance_order_and_positions() {
        let devices = [
            DeviceRef {
                user_id: "b",
                device_id: "1",
            },
            DeviceRef {
                user_id: "a",
                device_id: "2",
            },
            DeviceRef {
                user_id: "b",
                device_id: "3",
            },
        ];
        assert_eq!(
            group_by_user(&devices),
            vec![("b", vec![0, 2]), ("a", vec![1])]
        );
    }
}
