//! The consume loop every worker runs: connect (waiting for RabbitMQ rather than crashing),
//! declare the topology, consume one queue with bounded prefetch, hand each delivery to the
//! worker's handler, ack or requeue as it says, reconnect with backoff when the connection
//! drops, and on shutdown stop consuming, let in-flight work finish, and close.
//!
//! Anything not acked when a connection drops is redelivered by RabbitMQ: the handlers only
//! say `Ack` once every consequence of a message is durable.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
};
use lapin::types::FieldTable;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::{AmqpError, ClientTls, Publisher, Topology, connect_with_tls};

/// What to do with a delivery once the handler is done with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Every consequence is durable (published and confirmed, stored): remove it.
    Ack,
    /// A dependency failed (Redis down, broker hiccup): give it back after a pause so it is
    /// tried again, by this or another worker.
    Requeue,
}

#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    #[error(transparent)]
    Amqp(#[from] AmqpError),
}

/// The handler of one delivery, given the publisher of the same connection.
pub type HandlerFn =
    Arc<dyn Fn(Delivery, Publisher) -> Pin<Box<dyn Future<Output = Handled> + Send>> + Send + Sync>;

pub struct RunOptions {
    pub url: String,
    /// `[amqp]`'s CA and client certificate (`Config::amqp_tls`).
    pub tls: ClientTls,
    pub queue: String,
    pub prefetch: u16,
    pub topology: Topology,
    /// How long in-flight deliveries may take to finish after a shutdown request.
    pub shutdown_grace: Duration,
    /// Pause before a `Requeue`d delivery is handed back.
    pub requeue_delay: Duration,
    /// Set while consuming; the worker's `/readyz`.
    pub ready: Arc<AtomicBool>,
    /// Set once the topology has been declared (and stays set).
    pub topology_ready: Arc<AtomicBool>,
}

/// Runs until `shutdown` is cancelled; returns after in-flight work finished or the grace
/// period ran out (unfinished deliveries are then requeued by RabbitMQ).
pub async fn run_consumer(options: RunOptions, handler: HandlerFn, shutdown: CancellationToken) {
    let mut backoff = Backoff::default();
    while !shutdown.is_cancelled() {
        match consume_once(&options, &handler, &shutdown).await {
            Ok(()) => backoff.reset(),
            Err(err) => {
                options.ready.store(false, Ordering::SeqCst);
                let pause = backoff.next();
                tracing::warn!(error = %err, queue = %options.queue, retry_in_ms = pause.as_millis() as u64, "RabbitMQ unavailable; reconnecting");
                metrics::counter!("impush_amqp_reconnects_total").increment(1);
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
    options.ready.store(false, Ordering::SeqCst);
}

async fn consume_once(
    options: &RunOptions,
    handler: &HandlerFn,
    shutdown: &CancellationToken,
) -> Result<(), AmqpError> {
    let connection = connect_with_tls(&options.url, &options.tls).await?;
    let setup = connection.create_channel().await?;
    options.topology.declare(&setup).await?;
    options.topology_ready.store(true, Ordering::SeqCst);
    let publisher = Publisher::open(&connection).await?;
    let channel = connection.create_channel().await?;
    channel
        .basic_qos(options.prefetch, BasicQosOptions::default())
        .await?;
    let tag = format!("impush-{}-{}", std::process::id(), options.queue);
    let mut consumer = channel
        .basic_consume(
            options.queue.as_str().into(),
            tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    options.ready.store(true, Ordering::SeqCst);
    tracing::info!(queue = %options.queue, prefetch = options.prefetch, "consuming");

    let mut in_flight = JoinSet::new();
    // Looked up once: a label string and a registry lookup per delivery would be waste.
    let in_flight_gauge = metrics::gauge!("impush_in_flight_messages", "queue" => options.topology.label(&options.queue));
    let outcome = loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                // Stop the flow first so nothing new arrives while in-flight work finishes.
                let _ = channel.basic_cancel(tag.as_str().into(), BasicCancelOptions::default()).await;
                break Ok(());
            }
            next = consumer.next() => match next {
                Some(Ok(delivery)) => {
                    let handler = Arc::clone(handler);
                    let publisher = publisher.clone();
                    let requeue_delay = options.requeue_delay;
                    let gauge = in_flight_gauge.clone();
                    gauge.increment(1.0);
                    in_flight.spawn(async move {
                        handle_one(handler, publisher, delivery, requeue_delay).await;
                        gauge.decrement(1.0);
                    });
                }
                Some(Err(err)) => break Err(AmqpError::Broker(err)),
                None => break Err(AmqpError::Broker(lapin::Error::from(lapin::ErrorKind::InvalidConnectionState(lapin::ConnectionState::Closed)))),
            },
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
        }
    };
    options.ready.store(false, Ordering::SeqCst);

    let drained = tokio::time::timeout(options.shutdown_grace, async {
        while in_flight.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = in_flight.len(),
            "grace period over; unfinished deliveries go back to the queue"
        );
        in_flight.abort_all();
    }
    let _ = connection.close(200, "impush worker stopping".into()).await;
    outcome
}

async fn handle_one(
    handler: HandlerFn,
    publisher: Publisher,
    delivery: Delivery,
    requeue_delay: Duration,
) {
    let acker = delivery.acker.clone();
    match handler(delivery, publisher).await {
        Handled::Ack => {
            if let Err(err) = acker.ack(BasicAckOptions::default()).await {
                // The connection is gone: the message will be redelivered, which the
                // deduplication makes harmless.
                tracing::warn!(error = %err, "ack failed; the message will be redelivered");
            }
        }
        Handled::Requeue => {
            tokio::time::sleep(requeue_delay).await;
            let requeue = BasicNackOptions {
                requeue: true,
                ..BasicNackOptions::default()
            };
            if let Err(err) = acker.nack(requeue).await {
                tracing::warn!(error = %err, "requeue failed; the message will be redelivered");
            }
        }
    }
}

/// Exponential backoff with jitter, 200 ms to 10 s.
#[derive(Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    fn next(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let base = 200u64.saturating_mul(1 << self.failures.min(6)).min(10_000);
        let jitter = rand::random_range(0..=base / 4);
        Duration::from_millis(base - base / 8 + jitter)
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}
