//! Redis Cluster: redis-rs's async cluster client, plus what it does not do for impush's
//! batches. It sends a pipeline to one node and refuses one whose keys span slots, but a
//! router's chunk of 500 recipients spans hundreds of slots. So the store keeps its own copy
//! of the slot map (`CLUSTER SLOTS`), splits a batch into one pipeline per primary, and sends
//! them all at once: one round trip per node, whatever the number of users. When the slots
//! have moved (a MOVED reply inside a pipeline, which redis-rs hands back rather than
//! following), the map is read again and the batch rerun (`Store::run_batch`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{ErrorKind, RedisError, TlsCertificates, Value};

use crate::connection::Batch;

/// A cluster connection and the store's view of which primary serves which slot.
#[derive(Clone)]
pub(crate) struct Cluster {
    con: ClusterConnection,
    slots: Arc<RwLock<Arc<SlotMap>>>,
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
        if let Some(certificates) = tls {
            builder = builder.certs(certificates);
        }
        let client = builder.build()?;
        let con = client.get_async_connection().await?;
        let seed_host = seeds
            .first()
            .and_then(|seed| redis::parse_redis_url(seed))
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_else(|| "127.0.0.1".to_owned());
        let cluster = Cluster {
            con,
            slots: Arc::new(RwLock::new(Arc::new(SlotMap::default()))),
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

    /// One pipeline per primary, all in flight at once; replies put back in batch order.
    pub(crate) async fn run(&self, batch: &Batch) -> Result<Vec<Value>, RedisError> {
        let map = self.slot_map();
        let mut groups: Vec<(&Node, Vec<usize>)> = Vec::new();
        let mut group_of_node: HashMap<&Node, usize> = HashMap::new();
        for (position, &slot) in batch.slots.iter().enumerate() {
            let node = map.node_of(slot).ok_or_else(|| {
                RedisError::from((
                    ErrorKind::ClusterConnectionNotFound,
                    "no primary serves this slot",
                    slot.to_string(),
                ))
            })?;
            let group = *group_of_node.entry(node).or_insert_with(|| {
                groups.push((node, Vec::new()));
                groups.len() - 1
            });
            if let Some((_, positions)) = groups.get_mut(group) {
                positions.push(position);
            }
        }
        let requests = groups.iter().map(|(node, positions)| {
            let mut pipe = redis::pipe();
            for cmd in positions.iter().filter_map(|&p| batch.cmds.get(p)) {
                pipe.add_command(cmd.clone());
            }
            let mut con = self.con.clone();
            let route = SingleNodeRoutingInfo::ByAddress {
                host: node.host.clone(),
                port: node.port,
            };
            async move { con.route_pipeline(pipe, 0, positions.len(), route).await }
        });
        let replies = futures::future::try_join_all(requests).await?;
        let mut ordered = vec![Value::Nil; batch.len()];
        for ((_, positions), values) in groups.iter().zip(replies) {
            if values.len() != positions.len() {
                return Err(RedisError::from((
                    ErrorKind::UnexpectedReturnType,
                    "pipeline reply count",
                    format!("{} replies for {} commands", values.len(), positions.len()),
                )));
            }
            for (&position, value) in positions.iter().zip(values) {
                if let Some(slot) = ordered.get_mut(position) {
                    *slot = value;
                }
            }
        }
        Ok(ordered)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Node {
    host: String,
    port: u16,
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
