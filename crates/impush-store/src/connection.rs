//! The connection under a [`crate::Store`]: one Redis server (a `ConnectionManager`) or a
//! Redis Cluster (`cluster.rs`), and the one way both run a [`Batch`] of commands.
//!
//! Single commands and single script calls go through [`ConnectionLike`], which redis-rs
//! routes by key on a cluster (following MOVED and ASK itself). Batches are where the two
//! differ: a server takes the whole batch as one pipeline; redis-rs refuses a cluster
//! pipeline that spans slots, so the cluster side splits it into one pipeline per primary
//! and follows redirects itself.

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::{Cmd, RedisError, RedisFuture, Value};

use crate::cluster::Cluster;
use crate::coalesce::Coalescer;
use crate::keys;

/// Where impush's Redis lives, as `[redis]` in the config says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// One Redis server (or a primary behind a failover address).
    Server(String),
    /// A Redis Cluster, found through these seed nodes (any one of them will do).
    Cluster(Vec<String>),
}

impl Endpoint {
    /// `[redis] cluster`, `url` and `urls`: a cluster's seeds are `urls`, or `url` alone
    /// when `urls` is empty.
    pub fn from_config(cluster: bool, url: &str, urls: &[String]) -> Endpoint {
        match (cluster, urls.is_empty()) {
            (false, _) => Endpoint::Server(url.to_owned()),
            (true, true) => Endpoint::Cluster(vec![url.to_owned()]),
            (true, false) => Endpoint::Cluster(urls.to_vec()),
        }
    }
}

#[derive(Clone)]
pub(crate) enum Connection {
    /// One server: single commands straight through the manager, batches through the
    /// coalescer (`coalesce.rs`), which shares round trips between concurrent callers.
    Server(ConnectionManager, Coalescer),
    Cluster(Cluster),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Server(con, _) => con.req_packed_command(cmd),
            Connection::Cluster(cluster) => cluster.connection().req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Server(con, _) => con.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(cluster) => cluster
                .connection()
                .req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Server(con, _) => con.get_db(),
            Connection::Cluster(_) => 0,
        }
    }
}

impl Connection {
    /// A server connection whose batches share round trips.
    pub(crate) fn server(con: ConnectionManager) -> Connection {
        let coalescer = Coalescer::start(con.clone());
        Connection::Server(con, coalescer)
    }

    /// Runs every command of `batch` and returns their replies in the batch's order, a
    /// failed command's as a `Value::ServerError` (the caller decides whether to reload
    /// scripts and send it again). On a server, in the round trip it shares with other
    /// callers' batches; on a cluster, redirects are followed first.
    pub(crate) async fn run(&self, batch: &Batch) -> Result<Vec<Value>, RedisError> {
        match self {
            Connection::Server(_, coalescer) => coalescer.run(batch.cmds.clone()).await,
            Connection::Cluster(cluster) => cluster.run(batch).await,
        }
    }
}

/// Counts one round trip to one Redis node carrying `commands` commands: the store's cost,
/// which the router's reads (one chunk of recipients, whatever state they hold) keep flat.
pub(crate) fn count_round_trip(commands: usize) {
    metrics::counter!("impush_redis_round_trips_total").increment(1);
    metrics::counter!("impush_redis_commands_total").increment(commands as u64);
}

/// Commands to run together, each with the cluster slot all its keys hash to.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) cmds: Vec<Cmd>,
    pub(crate) slots: Vec<u16>,
}

impl Batch {
    pub(crate) fn new() -> Batch {
        Batch::default()
    }

    /// Adds `cmd`, every key of which is in the slot of `key` (the same user's hash tag).
    pub(crate) fn add(&mut self, key: &str, cmd: Cmd) {
        self.slots.push(keys::slot(key));
        self.cmds.push(cmd);
    }

    pub(crate) fn len(&self) -> usize {
        self.cmds.len()
    }

    /// The commands at `positions`, to send again.
    pub(crate) fn only(&self, positions: &[usize]) -> Batch {
        let mut batch = Batch::new();
        for &position in positions {
            if let (Some(cmd), Some(&slot)) = (self.cmds.get(position), self.slots.get(position)) {
                batch.cmds.push(cmd.clone());
                batch.slots.push(slot);
            }
        }
        batch
    }
}

/// `EVALSHA` of `script` with these keys and arguments, for a [`Batch`]; the keys must share
/// one hash tag. A script Redis has forgotten answers NOSCRIPT, which `Store::run_batch`
/// handles.
pub(crate) fn evalsha<K: AsRef<str>>(
    script: &redis::Script,
    keys: &[K],
    args: impl FnOnce(&mut Cmd),
) -> Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(script.get_hash()).arg(keys.len());
    for key in keys {
        cmd.arg(key.as_ref());
    }
    args(&mut cmd);
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_picks_a_server_or_a_cluster_with_url_as_the_fallback_seed() {
        let urls = vec!["redis://a:7001".to_owned(), "redis://b:7002".to_owned()];
        assert_eq!(
            Endpoint::from_config(false, "redis://one:6379", &urls),
            Endpoint::Server("redis://one:6379".into())
        );
        assert_eq!(
            Endpoint::from_config(true, "redis://one:6379", &urls),
            Endpoint::Cluster(urls.clone())
        );
        assert_eq!(
            Endpoint::from_config(true, "redis://one:6379", &[]),
            Endpoint::Cluster(vec!["redis://one:6379".into()])
        );
    }
}
