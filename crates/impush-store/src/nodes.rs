//! The store's own connection to each Redis Cluster node, for batches. A batch goes to the
//! nodes as one pipeline per node, and following an ASK means sending `ASKING` and the
//! command back to back on one connection to the node named in the answer, which may be a
//! node the slot map does not route that slot to yet. So the store keeps one multiplexed
//! connection per node address: opened on first use, shared by every clone of the store, and
//! dropped when it fails, so that the next batch opens a fresh one.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{
    AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, Pipeline,
    RedisError, TlsCertificates, Value,
};

/// A node's address, as `CLUSTER SLOTS`, MOVED and ASK name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Node {
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl Node {
    /// Reads the `host:port` of a MOVED or ASK answer. An empty host (`:7102`) means "the
    /// host of the node that answered", which is `answered`'s.
    pub(crate) fn from_redirect(address: &str, answered: &Node) -> Option<Node> {
        let (host, port) = address.rsplit_once(':')?;
        let port = port.parse().ok()?;
        let host = if host.is_empty() {
            answered.host.clone()
        } else {
            host.to_owned()
        };
        Some(Node { host, port })
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// One connection per node address, opened lazily.
pub(crate) struct Nodes {
    /// The first seed's settings (TLS or not, user, password, protocol); only the address
    /// changes from node to node.
    template: ConnectionInfo,
    /// `[redis]`'s CA and client certificate, for every node alike.
    tls: Option<TlsCertificates>,
    config: AsyncConnectionConfig,
    open: Mutex<HashMap<Node, MultiplexedConnection>>,
}

impl Nodes {
    pub(crate) fn new(
        seed: &str,
        tls: Option<TlsCertificates>,
        connection_timeout: Duration,
        response_timeout: Duration,
    ) -> Result<Nodes, RedisError> {
        Ok(Nodes {
            template: seed.into_connection_info()?,
            tls,
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(connection_timeout))
                .set_response_timeout(Some(response_timeout)),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Sends `pipeline` (`count` commands) to `node` and returns one reply per command, a
    /// failed command's as a `Value::ServerError`. A connection that fails (I/O, timeout) is
    /// dropped: whether its commands ran is unknown, so the error goes back to the caller,
    /// and the next batch connects again.
    pub(crate) async fn send(
        &self,
        node: &Node,
        pipeline: &Pipeline,
        count: usize,
    ) -> Result<Vec<Value>, RedisError> {
        let mut con = self.connection(node).await?;
        let replies = con.req_packed_commands(pipeline, 0, count).await;
        if replies.is_err() {
            self.lock().remove(node);
        }
        replies
    }

    /// The nodes this store has a connection to: every node its batches went to lately.
    pub(crate) fn connected(&self) -> Vec<Node> {
        self.lock().keys().cloned().collect()
    }

    async fn connection(&self, node: &Node) -> Result<MultiplexedConnection, RedisError> {
        if let Some(con) = self.lock().get(node) {
            return Ok(con.clone());
        }
        let info = self.template.clone().set_addr(self.address(node));
        let client = match &self.tls {
            Some(certificates) => redis::Client::build_with_tls(info, certificates.clone())?,
            None => redis::Client::open(info)?,
        };
        let con = client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await?;
        // Two batches may have connected at once; keep one connection, drop the other.
        Ok(self.lock().entry(node.clone()).or_insert(con).clone())
    }

    /// `node`'s address with the seed's transport: TLS with the same settings when the
    /// seed is `rediss://`.
    fn address(&self, node: &Node) -> ConnectionAddr {
        match self.template.addr() {
            ConnectionAddr::TcpTls {
                insecure,
                tls_params,
                ..
            } => ConnectionAddr::TcpTls {
                host: node.host.clone(),
                port: node.port,
                insecure: *insecure,
                tls_params: tls_params.clone(),
            },
            _ => ConnectionAddr::Tcp(node.host.clone(), node.port),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Node, MultiplexedConnection>> {
        // The map only ever holds whole entries; a panic elsewhere cannot leave it torn.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(host: &str, port: u16) -> Node {
        Node {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn a_redirect_names_host_and_port_or_only_the_port_of_the_node_that_answered() {
        let answered = node("10.0.0.1", 7101);
        assert_eq!(
            Node::from_redirect("127.0.0.1:7102", &answered),
            Some(node("127.0.0.1", 7102))
        );
        assert_eq!(
            Node::from_redirect(":7103", &answered),
            Some(node("10.0.0.1", 7103))
        );
        assert_eq!(
            Node::from_redirect("::1:7104", &answered),
            Some(node("::1", 7104))
        );
        assert_eq!(Node::from_redirect("nonsense", &answered), None);
        assert_eq!(Node::from_redirect("h:99999", &answered), None);
    }

    #[test]
    fn a_tls_seed_makes_every_node_connection_tls() {
        let nodes = Nodes::new(
            "rediss://user:pw@seed:7101",
            None,
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
        .unwrap();
        assert!(matches!(
            nodes.address(&node("other", 7102)),
            ConnectionAddr::TcpTls { host, port: 7102, .. } if host == "other"
        ));
        let plain = Nodes::new(
            "redis://seed:7101",
            None,
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(
            plain.address(&node("other", 7102)),
            ConnectionAddr::Tcp("other".into(), 7102)
        );
    }
}
