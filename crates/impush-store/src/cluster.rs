//! Redis Cluster: redis-rs's async cluster client, plus what it does not do for impush's
//! batches. It sends a pipeline to one node and refuses one whose keys span slots, but a
//! router's chunk of 500 recipients spans hundreds of slots. So the store keeps its own copy
//! of the slot map (`CLUSTER SLOTS`), splits a batch into one pipeline per primary, and sends
//! them all at once on its own connection per node (`nodes.rs`): one round trip per node,
//! whatever the number of users. Redirects inside those pipelines (slots being migrated or
//! moved by a reshard, a failover), which redis-rs hands back rather than following, are
//! followed command by command (`Cluster::run`, `redirect.rs`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{ErrorKind, RedisError, TlsCertificates, Value};

use crate::connection::Batch;
use crate::nodes::{Node, Nodes};
use crate::redirect::{Answer, Backoff, MovedSlots, classify};

/// Rounds of redirects one batch follows at most: a few ASK and MOVED hops, and about 7 s
/// of TRYAGAIN waits (10 ms doubling to 250 ms), longer than moving one slot's keys takes.
const MAX_ROUNDS: usize = 32;

/// A cluster connection and the store's view of which primary serves which slot.
#[derive(Clone)]
pub(crate) struct Cluster {
    con: ClusterConnection,
    slots: Arc<RwLock<Arc<SlotMap>>>,
    /// Owners of slots that MOVED answers named, believed over `slots` for a while.
    moved: Arc<MovedSlots>,
    /// The store's own connection to each node, for batches.
    nodes: Arc<Nodes>,
    /// Host of the first seed: `CLUSTER SLOTS` may leave a node's host empty, meaning "the
    /// host you asked", and the asked node is a random one.
    seed_host: String,
}

impl Cluster {
    pub(crate) async fn connect(
        seeds: &[String],
        tls: Option<TlsCertificates>,
        connection_timeout: Duration,
        response_timeout: Duration,
    ) -> Result<Cluster, RedisError> {
        let mut builder = ClusterClient::builder(seeds.iter().map(String::as_str))
            .connection_timeout(connection_timeout)
            .response_timeout(response_timeout);
        if let Some(certificates) = tls.clone() {
            builder = builder.certs(certificates);
        }
        let client = builder.build()?;
        let con = client.get_async_connection().await?;
        let seed_host = seeds
            .first()
            .and_then(|seed| redis::parse_redis_url(seed))
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_else(|| "127.0.0.1".to_owned());
        let seed = seeds.first().map_or("redis://127.0.0.1", String::as_str);
        let cluster = Cluster {
            con,
            slots: Arc::new(RwLock::new(Arc::new(SlotMap::default()))),
            moved: Arc::new(MovedSlots::default()),
            nodes: Arc::new(Nodes::new(seed, tls, connection_timeout, response_timeout)?),
            seed_host,
        };
        cluster.refresh_slots().await?;
        Ok(cluster)
    }

    pub(crate) fn connection(&mut self) -> &mut ClusterConnection {
        &mut self.con
    }

    /// Reads the slot map again from any node.
    pub(crate) async fn refresh_slots(&self) -> Result<(), RedisError> {
        let mut con = self.con.clone();
        let reply = con
            .route_command(
                redis::cmd("CLUSTER").arg("SLOTS").clone(),
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
            )
            .await?;
        let map = SlotMap::parse(reply, &self.seed_host)?;
        self.moved
            .settle(|slot, node| map.node_of(slot) == Some(node), Instant::now());
        if let Ok(mut slots) = self.slots.write() {
            *slots = Arc::new(map);
        }
        Ok(())
    }

    fn slot_map(&self) -> Arc<SlotMap> {
        match self.slots.read() {
            Ok(slots) => Arc::clone(&slots),
            // A writer only swaps an Arc; a poisoned lock still holds a whole map.
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Loads these scripts (their sources) on every primary of the slot map and every node
    /// the store has a connection to, through the store's own connections: the nodes its
    /// batches go to, including one a MOVED named before the map shows it (a replica just
    /// promoted, which never had the scripts: `SCRIPT LOAD` is not replicated). A node that
    /// cannot be reached is skipped; a command sent to it fails on its own.
    pub(crate) async fn load_scripts(&self, sources: &[&str]) -> Result<(), RedisError> {
        let map = self.slot_map();
        let mut nodes: Vec<Node> = map.ranges.iter().map(|(_, _, node)| node.clone()).collect();
        nodes.extend(self.nodes.connected());
        nodes.sort_by(|a, b| (&a.host, a.port).cmp(&(&b.host, b.port)));
        nodes.dedup();
        let mut pipe = redis::pipe();
        for source in sources {
            pipe.add_command(redis::cmd("SCRIPT").arg("LOAD").arg(*source).clone());
        }
        let answers = futures::future::join_all(
            nodes
                .iter()
                .map(|node| self.nodes.send(node, &pipe, sources.len())),
        )
        .await;
        for (node, answer) in nodes.iter().zip(answers) {
            let refusal = match answer {
                Ok(values) => values
                    .into_iter()
                    .find(|value| matches!(value, Value::ServerError(_))),
                Err(error) => {
                    tracing::warn!(%node, %error, "loading the scripts");
                    continue;
                }
            };
            if let Some(Value::ServerError(error)) = refusal {
                return Err(error.into());
            }
        }
        Ok(())
    }

    /// The node that serves `slot`: the one a recent MOVED named, else the slot map's.
    fn node_of(&self, map: &SlotMap, slot: u16) -> Result<Node, RedisError> {
        if let Some(node) = self.moved.node_of(slot, Instant::now()) {
            return Ok(node);
        }
        map.node_of(slot).cloned().ok_or_else(|| {
            RedisError::from((
                ErrorKind::ClusterConnectionNotFound,
                "no primary serves this slot",
                slot.to_string(),
            ))
        })
    }

    /// Runs `batch` and returns its replies in batch order, a failed command's as a
    /// `Value::ServerError`. Each round sends one pipeline per node, all at once, with the
    /// commands still to run; a command refused with a redirect is sent again in the next
    /// round, alone with the other refused ones, and a command that ran is never sent
    /// again (`redirect.rs`):
    /// - ASK: `ASKING` and the command, on the node named;
    /// - MOVED: the slot map is read again, the node named is believed for that slot for a
    ///   while, and the command goes there;
    /// - TRYAGAIN: the same command to the same node after a wait (10 ms doubling to
    ///   250 ms);
    /// - READONLY (a failover made the node a replica): the slot map is read again.
    ///
    /// After [`MAX_ROUNDS`] the commands still refused keep their last refusal, a transient
    /// error. A node that cannot be reached fails the whole call (whether its commands ran
    /// is unknown) after the slot map is read again for the next call.
    pub(crate) async fn run(&self, batch: &Batch) -> Result<Vec<Value>, RedisError> {
        let mut replies = vec![Value::Nil; batch.len()];
        let mut pending: Vec<(usize, Route)> = (0..batch.len()).map(|p| (p, Route::Slot)).collect();
        let mut backoff = Backoff::new();
        for round in 1..=MAX_ROUNDS {
            let map = self.slot_map();
            let mut sends: Vec<(Node, Vec<(usize, bool)>)> = Vec::new();
            let mut send_of_node: HashMap<Node, usize> = HashMap::new();
            for (position, route) in pending {
                let (node, asking) = match route {
                    Route::Slot => {
                        let slot = batch.slots.get(position).copied().unwrap_or_default();
                        (self.node_of(&map, slot)?, false)
                    }
                    Route::Node { node, asking } => (node, asking),
                };
                let send = *send_of_node.entry(node.clone()).or_insert_with(|| {
                    sends.push((node, Vec::new()));
                    sends.len() - 1
                });
                if let Some((_, commands)) = sends.get_mut(send) {
                    commands.push((position, asking));
                }
            }
            for (_, commands) in &sends {
                crate::connection::count_round_trip(commands.len());
            }
            let answers = futures::future::join_all(
                sends
                    .iter()
                    .map(|(node, commands)| self.send(node, batch, commands)),
            )
            .await;
            pending = Vec::new();
            let (mut refresh, mut wait) = (false, false);
            for ((node, commands), answer) in sends.iter().zip(answers) {
                let values = match answer {
                    Ok(values) => values,
                    Err(error) => {
                        if let Err(refresh_error) = self.refresh_slots().await {
                            tracing::warn!(%refresh_error, "reading the cluster's slot map again");
                        }
                        return Err(error);
                    }
                };
                for (&(position, asking), value) in commands.iter().zip(values) {
                    let answer = classify(&value, node);
                    // A refused command keeps its refusal if its rounds run out.
                    if let Some(reply) = replies.get_mut(position) {
                        *reply = value;
                    }
                    let retry = match answer {
                        Answer::Done => continue,
                        Answer::Ask { node } => Route::Node { node, asking: true },
                        Answer::Moved { slot, node } => {
                            self.moved.record(slot, node.clone(), Instant::now());
                            refresh = true;
                            Route::Node {
                                node,
                                asking: false,
                            }
                        }
                        Answer::TryAgain => {
                            wait = true;
                            Route::Node {
                                node: node.clone(),
                                asking,
                            }
                        }
                        Answer::ReadOnly => {
                            refresh = true;
                            Route::Slot
                        }
                    };
                    pending.push((position, retry));
                }
            }
            if pending.is_empty() || round == MAX_ROUNDS {
                break;
            }
            if refresh {
                self.refresh_slots().await?;
            }
            if wait {
                tokio::time::sleep(backoff.next_wait()).await;
            }
        }
        Ok(replies)
    }

    /// One pipeline of `commands` (batch positions, each with whether to send `ASKING`
    /// before it) to `node`; one reply per command, the `ASKING` replies left out.
    async fn send(
        &self,
        node: &Node,
        batch: &Batch,
        commands: &[(usize, bool)],
    ) -> Result<Vec<Value>, RedisError> {
        let mut pipe = redis::pipe();
        let mut count = 0;
        for &(position, asking) in commands {
            if asking {
                pipe.add_command(redis::cmd("ASKING"));
                count += 1;
            }
            if let Some(cmd) = batch.cmds.get(position) {
                pipe.add_command(cmd.clone());
                count += 1;
            }
        }
        let values = self.nodes.send(node, &pipe, count).await?;
        if values.len() != count {
            return Err(RedisError::from((
                ErrorKind::UnexpectedReturnType,
                "pipeline reply count",
                format!("{} replies for {count} commands to {node}", values.len()),
            )));
        }
        let mut values = values.into_iter();
        let mut replies = Vec::with_capacity(commands.len());
        for &(_, asking) in commands {
            if asking {
                values.next();
            }
            replies.push(values.next().unwrap_or(Value::Nil));
        }
        Ok(replies)
    }
}

/// Where the next round sends a command that was refused.
#[derive(Debug)]
enum Route {
    /// To the node that serves its slot.
    Slot,
    /// To this node, after `ASKING` when an ASK sent it there.
    Node { node: Node, asking: bool },
}

/// Which primary serves which slot range, sorted by range start.
#[derive(Debug, Default)]
struct SlotMap {
    ranges: Vec<(u16, u16, Node)>,
}

impl SlotMap {
    /// Reads a `CLUSTER SLOTS` reply: `[[start, end, [host, port, id, ...], replicas...], ...]`.
    fn parse(reply: Value, seed_host: &str) -> Result<SlotMap, RedisError> {
        let malformed = |detail: String| {
            RedisError::from((
                ErrorKind::UnexpectedReturnType,
                "malformed CLUSTER SLOTS reply",
                detail,
            ))
        };
        let Value::Array(entries) = reply else {
            return Err(malformed(format!("{reply:?}")));
        };
        let mut ranges = Vec::with_capacity(entries.len());
        for entry in entries {
            let Value::Array(parts) = entry else {
                return Err(malformed(format!("{entry:?}")));
            };
            let (Some(Value::Int(start)), Some(Value::Int(end)), Some(Value::Array(primary))) =
                (parts.first(), parts.get(1), parts.get(2))
            else {
                return Err(malformed(format!("{parts:?}")));
            };
            let host = match primary.first() {
                Some(Value::BulkString(host)) if !host.is_empty() => {
                    String::from_utf8_lossy(host).into_owned()
                }
                _ => seed_host.to_owned(),
            };
            let Some(Value::Int(port)) = primary.get(1) else {
                return Err(malformed(format!("{primary:?}")));
            };
            let (Ok(start), Ok(end), Ok(port)) = (
                u16::try_from(*start),
                u16::try_from(*end),
                u16::try_from(*port),
            ) else {
                return Err(malformed(format!("{start} {end} {port}")));
            };
            ranges.push((start, end, Node { host, port }));
        }
        ranges.sort_by_key(|(start, _, _)| *start);
        Ok(SlotMap { ranges })
    }

    fn node_of(&self, slot: u16) -> Option<&Node> {
        let after = self.ranges.partition_point(|(start, _, _)| *start <= slot);
        let (_, end, node) = self.ranges.get(after.checked_sub(1)?)?;
        (slot <= *end).then_some(node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn range(start: i64, end: i64, host: &str, port: i64) -> Value {
        Value::Array(vec![
            Value::Int(start),
            Value::Int(end),
            Value::Array(vec![bulk(host), Value::Int(port), bulk("id")]),
        ])
    }

    #[test]
    fn every_slot_maps_to_the_primary_whose_range_holds_it() {
        let reply = Value::Array(vec![
            range(10923, 16383, "127.0.0.1", 7103),
            range(0, 5460, "127.0.0.1", 7101),
            range(5461, 10922, "", 7102),
        ]);
        let map = SlotMap::parse(reply, "seed").unwrap();
        let port = |slot| map.node_of(slot).map(|n| n.port);
        assert_eq!(port(0), Some(7101));
        assert_eq!(port(5460), Some(7101));
        assert_eq!(port(5461), Some(7102));
        assert_eq!(port(16383), Some(7103));
        assert_eq!(map.node_of(6000).map(|n| n.host.as_str()), Some("seed"));
    }

    #[test]
    fn a_slot_no_primary_serves_has_no_node() {
        let map = SlotMap::parse(Value::Array(vec![range(100, 200, "h", 1)]), "seed").unwrap();
        assert_eq!(map.node_of(99), None);
        assert_eq!(map.node_of(201), None);
        assert!(map.node_of(150).is_some());
    }

    #[test]
    fn a_malformed_slots_reply_is_an_error_not_a_panic() {
        assert!(SlotMap::parse(Value::Nil, "s").is_err());
        assert!(SlotMap::parse(Value::Array(vec![Value::Int(1)]), "s").is_err());
        assert!(SlotMap::parse(Value::Array(vec![range(0, 70000, "h", 1)]), "s").is_err());
    }
}
