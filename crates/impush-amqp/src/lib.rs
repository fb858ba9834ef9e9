//! impush's RabbitMQ layer: the topology every worker declares, a confirming publisher, and
//! a consumer loop with manual acks, bounded prefetch, reconnection and graceful shutdown.
//!
//! Nothing here knows what a message means: the workers give a handler that decides, per
//! delivery, to ack, requeue, retry or dead-letter, and this crate makes that durable.

mod consumer;
mod depth;
mod events;
mod outcomes;
mod publisher;
mod settle;
mod topology;

pub use consumer::{ConsumeError, Handled, HandlerFn, RunOptions, run_consumer};
pub use depth::watch_queue_depths;
pub use events::{EventDeadLetter, check_event_size, dead_letter_event};
pub use impush_config::ClientTls;
pub use lapin::message::Delivery;
pub use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
pub use lapin::{BasicProperties, Channel, Connection, options};
pub use outcomes::Outcomes;

use std::time::Duration;

use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
pub use publisher::{Outgoing, Publisher};
pub use topology::{Topology, headers};

/// Errors of the broker connection. All of them but a bad URL are worth retrying after a
/// reconnect.
#[derive(Debug, thiserror::Error)]
pub enum AmqpError {
    #[error("RabbitMQ: {0}")]
    Broker(#[from] lapin::Error),
    #[error("RabbitMQ refused (nacked) a published message to {exchange}/{routing_key}")]
    Nacked {
        exchange: String,
        routing_key: String,
    },
    #[error("RabbitMQ returned an unroutable message to {exchange}/{routing_key}")]
    Unroutable {
        exchange: String,
        routing_key: String,
    },
    #[error("RabbitMQ node {node} did not complete the connection in time")]
    Timeout { node: String },
    #[error("no RabbitMQ address configured")]
    NoAddress,
    /// Not worth retrying: the config names a URL lapin cannot read.
    #[error("the RabbitMQ URL cannot be read: {0}")]
    BadUrl(String),
}

/// Opens a connection with the system's trust store and no client certificate; the caller
/// retries with backoff. Processes that read a config use [`connect_with_tls`].
pub async fn connect(url: &str) -> Result<Connection, AmqpError> {
    connect_with_tls(url, &ClientTls::default()).await
}

/// Opens a connection; with an `amqps://` URL, `tls`'s CA is trusted besides the system's
/// store and its client certificate is presented to a broker that asks for one. A failed
/// handshake is an error, never a plain-text fallback.
pub async fn connect_with_tls(url: &str, tls: &ClientTls) -> Result<Connection, AmqpError> {
    let properties = lapin::ConnectionProperties::default()
        .with_connection_name(format!("impush-{}", std::process::id()).into());
    let runtime = lapin::runtime::default_runtime()?;
    let uri = with_frame_max(url)?;
    Ok(Connection::connect_uri_with_config(uri, properties, lapin_tls(tls), runtime).await?)
}

/// The largest AMQP frame impush proposes unless the URL names one (`?frame_max=`). lapin
/// keeps 32 frames of buffer each way per connection: at RabbitMQ's default of 128 KiB that
/// is 8 MiB per connection, the bulk of a sender that serves ten vendor queues (one
/// connection each). A bigger message (a bundle of PushJobs is at most 256 KiB) goes out as
/// several frames.
pub const FRAME_MAX: u32 = 32 * 1024;

/// `url` parsed, with [`FRAME_MAX`] unless it names its own `frame_max`.
fn with_frame_max(url: &str) -> Result<lapin::uri::AMQPUri, AmqpError> {
    let mut uri: lapin::uri::AMQPUri = url.parse().map_err(AmqpError::BadUrl)?;
    if uri.query.frame_max.is_none() {
        uri.query.frame_max = Some(FRAME_MAX);
    }
    Ok(uri)
}

/// How long one node may take to accept a connection and finish the AMQP handshake. A node
/// that is paused or cut off still completes the TCP handshake (the kernel answers for it)
/// and then says nothing; without this bound the attempt would wait for ever.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens a connection to one of `urls`, the nodes of a RabbitMQ cluster: it starts at a node
/// picked at random (so that a pool of workers spreads over the cluster) and tries the
/// others in turn, each within [`CONNECT_TIMEOUT`], until one accepts. The error of the last
/// node tried is returned when none does; the caller retries with backoff.
pub async fn connect_any(urls: &[String], tls: &ClientTls) -> Result<Connection, AmqpError> {
    let start = if urls.len() > 1 {
        rand::random_range(0..urls.len())
    } else {
        0
    };
    let mut last = AmqpError::NoAddress;
    for url in urls.iter().cycle().skip(start).take(urls.len()) {
        match tokio::time::timeout(CONNECT_TIMEOUT, connect_with_tls(url, tls)).await {
            Ok(Ok(connection)) => return Ok(connection),
            Ok(Err(err)) => {
                tracing::debug!(error = %err, node = %node_of(url), "RabbitMQ node unavailable; trying the next");
                last = err;
            }
            Err(_) => {
                tracing::debug!(node = %node_of(url), "RabbitMQ node did not answer in time; trying the next");
                last = AmqpError::Timeout {
                    node: node_of(url).to_owned(),
                };
            }
        }
    }
    Err(last)
}

/// The `host:port` of an AMQP URL, without user name or password, for logs.
fn node_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    authority.rsplit('@').next().unwrap_or(authority)
}

fn lapin_tls(tls: &ClientTls) -> OwnedTLSConfig {
    OwnedTLSConfig {
        // PEM is ASCII; anything else in the file is text around the blocks, which the
        // parser skips as it would have in the bytes.
        cert_chain: tls
            .ca_pem
            .as_ref()
            .map(|pem| String::from_utf8_lossy(pem).into_owned()),
        identity: tls.identity.as_ref().map(|identity| OwnedIdentity::PKCS8 {
            pem: identity.cert_chain_pem.clone(),
            key: identity.key_pem().to_vec(),
        }),
    }
}

/// Persistent protobuf message properties, with the message name in `type`.
pub fn protobuf_properties(type_name: &str) -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/x-protobuf".into())
        .with_type(type_name.into())
}

/// Why a message is dead-lettered, written to its headers.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeadLetterReason<'a> {
    /// snake_case, or the vendor's own code; written through
    /// [`impush_core::reason::label`], so error text becomes `other` (keep it in `detail`).
    pub reason: &'a str,
    /// Free text for people; never a secret or a full token.
    pub detail: &'a str,
    /// The vendor's last HTTP status, if one answered.
    pub status: Option<u16>,
    pub attempts: Option<u32>,
}

/// A dead letter: the original body and properties, sent to `queue` through the default
/// exchange, with why in headers.
pub fn dead_letter(
    queue: &str,
    body: Vec<u8>,
    original: &BasicProperties,
    source_queue: &str,
    why: DeadLetterReason<'_>,
    now_ms: i64,
) -> Outgoing {
    let mut table = original.headers().clone().unwrap_or_default();
    // `impush dlq --reason` filters by it: a bounded label, never an error's text.
    table.insert(
        headers::REASON.into(),
        AMQPValue::LongString(impush_core::reason::label(why.reason).as_ref().into()),
    );
    table.insert(
        headers::DETAIL.into(),
        AMQPValue::LongString(why.detail.into()),
    );
    table.insert(
        headers::SOURCE_QUEUE.into(),
        AMQPValue::LongString(source_queue.into()),
    );
    table.insert(headers::DEAD_AT_MS.into(), AMQPValue::LongLongInt(now_ms));
    if let Some(status) = why.status {
        table.insert(
            headers::STATUS.into(),
            AMQPValue::LongLongInt(i64::from(status)),
        );
    }
    if let Some(attempts) = why.attempts {
        table.insert(
            headers::ATTEMPTS.into(),
            AMQPValue::LongLongInt(i64::from(attempts)),
        );
    }
    Outgoing {
        mandatory: true,
        exchange: String::new(),
        routing_key: queue.to_owned(),
        body,
        properties: original.clone().with_delivery_mode(2).with_headers(table),
    }
}

/// The dead-letter headers of a message, as [`dead_letter`] wrote them; a header that is
/// absent or of another type reads as `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadLetterHeaders {
    pub reason: Option<String>,
    pub detail: Option<String>,
    pub status: Option<u64>,
    pub attempts: Option<u64>,
    pub source_queue: Option<String>,
    pub dead_at_ms: Option<u64>,
}

impl DeadLetterHeaders {
    pub fn read(properties: &BasicProperties) -> DeadLetterHeaders {
        let text = |name| header_str(properties, name).map(str::to_owned);
        DeadLetterHeaders {
            reason: text(headers::REASON),
            detail: text(headers::DETAIL),
            status: header_u64(properties, headers::STATUS),
            attempts: header_u64(properties, headers::ATTEMPTS),
            source_queue: text(headers::SOURCE_QUEUE),
            dead_at_ms: header_u64(properties, headers::DEAD_AT_MS),
        }
    }
}

/// The number of ready messages in `queue`, or `None` if it does not exist. A passive
/// declare of an absent queue closes its channel, so this one uses a channel of its own.
pub async fn queue_length(connection: &Connection, queue: &str) -> Result<Option<u32>, AmqpError> {
    let channel = connection.create_channel().await?;
    let declared = channel
        .queue_declare(
            queue.into(),
            options::QueueDeclareOptions {
                passive: true,
                ..options::QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await;
    match declared {
        Ok(declared) => {
            let _ = channel.close(200, "done".into()).await;
            Ok(Some(declared.message_count()))
        }
        Err(err) if is_not_found(&err) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

fn is_not_found(err: &lapin::Error) -> bool {
    matches!(
        err.kind(),
        lapin::ErrorKind::ProtocolError(amqp) if amqp.kind()
            == &lapin::protocol::AMQPErrorKind::Soft(lapin::protocol::AMQPSoftError::NOTFOUND)
    )
}

/// A header value as text, for string-ish AMQP values.
pub fn header_str<'a>(properties: &'a BasicProperties, name: &str) -> Option<&'a str> {
    let headers = properties.headers().as_ref()?;
    match headers.inner().get(name)? {
        AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok(),
        AMQPValue::ShortString(s) => Some(s.as_str()),
        _ => None,
    }
}

/// A numeric header value.
pub fn header_u64(properties: &BasicProperties, name: &str) -> Option<u64> {
    let headers = properties.headers().as_ref()?;
    match headers.inner().get(name)? {
        AMQPValue::LongLongInt(n) => u64::try_from(*n).ok(),
        AMQPValue::LongInt(n) => u64::try_from(*n).ok(),
        AMQPValue::LongUInt(n) => Some(u64::from(*n)),
        AMQPValue::ShortInt(n) => u64::try_from(*n).ok(),
        AMQPValue::ShortUInt(n) => Some(u64::from(*n)),
        AMQPValue::Timestamp(n) => Some(*n),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_propose_a_32_kib_frame_unless_the_url_names_one() {
        let uri = with_frame_max("amqp://guest:guest@127.0.0.1:5672/%2f").unwrap();
        assert_eq!(uri.query.frame_max, Some(FRAME_MAX));
        let own = with_frame_max("amqp://127.0.0.1:5672/%2f?frame_max=131072").unwrap();
        assert_eq!(own.query.frame_max, Some(131_072));
        assert!(with_frame_max("http://not-amqp").is_err());
    }

    #[test]
    fn dead_letter_headers_read_back_what_dead_letter_wrote() {
        let outgoing = dead_letter(
            "impush.dlq.apns",
            b"body".to_vec(),
            &protobuf_properties("PushJob"),
            "impush.push.apns",
            DeadLetterReason {
                reason: "BadTopic",
                detail: "topic mismatch",
                status: Some(400),
                attempts: Some(1),
            },
            1_700_000_000_000,
        );
        assert_eq!(
            DeadLetterHeaders::read(&outgoing.properties),
            DeadLetterHeaders {
                reason: Some("BadTopic".into()),
                detail: Some("topic mismatch".into()),
                status: Some(400),
                attempts: Some(1),
                source_queue: Some("impush.push.apns".into()),
                dead_at_ms: Some(1_700_000_000_000),
            }
        );
    }

    #[test]
    fn node_names_in_logs_carry_no_credentials() {
        assert_eq!(
            node_of("amqp://guest:s3cr3t@10.0.0.1:5672/%2f?heartbeat=10"),
            "10.0.0.1:5672"
        );
        assert_eq!(node_of("amqps://mq.internal"), "mq.internal");
    }

    #[tokio::test]
    async fn connecting_to_a_list_with_no_node_up_fails_with_the_last_error() {
        let closed = |port| format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
        let err = connect_any(&[closed(1), closed(2)], &ClientTls::default())
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("RabbitMQ"), "{err}");
        assert!(matches!(
            connect_any(&[], &ClientTls::default()).await,
            Err(AmqpError::NoAddress)
        ));
    }

    #[test]
    fn a_message_without_dead_letter_headers_reads_as_empty() {
        assert_eq!(
            DeadLetterHeaders::read(&protobuf_properties("PushJob")),
            DeadLetterHeaders::default()
        );
    }
}
