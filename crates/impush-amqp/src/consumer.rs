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

use std::collections::HashMap;
use std::time::Instant;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use lapin::Channel;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
};
use lapin::types::FieldTable;
use tokio::task::JoinSet;
use tokio::time::sleep_until;
use tokio_util::sync::CancellationToken;

use crate::settle::{Settle, Settler};
use crate::{AmqpError, ClientTls, Publisher, Topology, connect_any};

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
    /// The broker's addresses (`AmqpConfig::addresses`): each reconnection tries them in
    /// turn ([`connect_any`]).
    pub urls: Vec<String>,
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
    let connection = connect_any(&options.urls, &options.tls).await?;
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
    let mut tags = HashMap::new();
    let mut settler = Settler::new(ACK_MAX_WAIT);
    let mut sending = FuturesUnordered::new();
    // Looked up once: a label string and a registry lookup per delivery would be waste.
    let in_flight_gauge = metrics::gauge!("impush_in_flight_messages", "queue" => options.topology.label(&options.queue));
    let outcome = loop {
        let deadline = settler.next_deadline();
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
                    settler.received(delivery.delivery_tag, delivery.delivery_tag);
                    let delivery_tag = delivery.delivery_tag;
                    let task = in_flight.spawn(async move {
                        let handled = handler(delivery, publisher).await;
                        if handled == Handled::Requeue {
                            tokio::time::sleep(requeue_delay).await;
                        }
                        gauge.decrement(1.0);
                        handled
                    });
                    tags.insert(task.id(), delivery_tag);
                }
                Some(Err(err)) => break Err(AmqpError::Broker(err)),
                None => break Err(AmqpError::Broker(lapin::Error::from(lapin::ErrorKind::InvalidConnectionState(lapin::ConnectionState::Closed)))),
            },
            Some(done) = in_flight.join_next_with_id(), if !in_flight.is_empty() => {
                let mut settles: Vec<_> = finish(done, &mut tags, &mut settler).into_iter().collect();
                // Take every other handler that is done too, so that their acks coalesce.
                while let Some(done) = in_flight.try_join_next_with_id() {
                    settles.extend(finish(done, &mut tags, &mut settler));
                }
                settles.extend(settler.settle(Instant::now(), false));
                send(&channel, settles, &mut sending).await;
            }
            _ = sleep_until(tokio::time::Instant::from_std(deadline.unwrap_or_else(Instant::now))), if deadline.is_some() => {
                send(&channel, settler.settle(Instant::now(), false), &mut sending).await;
            }
            Some(()) = sending.next(), if !sending.is_empty() => {}
        }
    };
    options.ready.store(false, Ordering::SeqCst);

    let drained = tokio::time::timeout(options.shutdown_grace, async {
        while let Some(done) = in_flight.join_next_with_id().await {
            let mut settles: Vec<_> = finish(done, &mut tags, &mut settler).into_iter().collect();
            settles.extend(settler.settle(Instant::now(), false));
            send(&channel, settles, &mut sending).await;
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = in_flight.len(),
            "grace period over; unfinished deliveries go back to the queue"
        );
        in_flight.abort_all();
    }
    // Whatever finished is acked before the connection closes; unfinished deliveries go
    // back to the queue when it does.
    send(&channel, settler.settle(Instant::now(), true), &mut sending).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while sending.next().await.is_some() {}
    })
    .await;
    let _ = connection.close(200, "impush worker stopping".into()).await;
    outcome
}

/// How long a finished delivery may wait for the ones before it, so that they are acked
/// together, before it is acked on its own.
const ACK_MAX_WAIT: Duration = Duration::from_millis(20);

type Sending = FuturesUnordered<Pin<Box<dyn Future<Output = ()> + Send>>>;

/// Records a handler's verdict; a requeue is returned to be sent at once. A handler that
/// panicked is requeued like a `Requeue`.
fn finish(
    done: Result<(tokio::task::Id, Handled), tokio::task::JoinError>,
    tags: &mut HashMap<tokio::task::Id, u64>,
    settler: &mut Settler<u64>,
) -> Option<Settle<u64>> {
    let (id, handled) = match done {
        Ok((id, handled)) => (id, handled),
        Err(err) => {
            tracing::error!(error = %err, "a handler failed; the delivery goes back to the queue");
            (err.id(), Handled::Requeue)
        }
    };
    let delivery_tag = tags.remove(&id)?;
    match handled {
        Handled::Ack => {
            settler.finished(delivery_tag, Instant::now());
            None
        }
        Handled::Requeue => settler.requeue(delivery_tag),
    }
}

/// Sends settlements in the order given. The order matters (an ack of one delivery after a
/// multiple ack that covered it is a protocol error that closes the channel), and lapin
/// settles a delivery's `Acker` on a task of its own, in no particular order; the channel's
/// `basic_ack`/`basic_nack` instead queue their frame when first polled. So each is polled
/// once here, in turn, and what is left of it (waiting for the frame to be written) runs
/// beside the consume loop in `sending`.
async fn send(channel: &Channel, settles: Vec<Settle<u64>>, sending: &mut Sending) {
    for settle in settles {
        let channel = channel.clone();
        let mut settling: Pin<Box<dyn Future<Output = ()> + Send>> = match settle {
            Settle::Ack {
                acker: delivery_tag,
                multiple,
                count,
            } => Box::pin(async move {
                if let Err(err) = channel
                    .basic_ack(delivery_tag, BasicAckOptions { multiple })
                    .await
                {
                    // The connection is gone: the messages will be redelivered, which the
                    // deduplication makes harmless.
                    tracing::warn!(error = %err, count, "ack failed; the messages will be redelivered");
                }
            }),
            Settle::Requeue {
                acker: delivery_tag,
            } => Box::pin(async move {
                let requeue = BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                };
                if let Err(err) = channel.basic_nack(delivery_tag, requeue).await {
                    tracing::warn!(error = %err, "requeue failed; the message will be redelivered");
                }
            }),
        };
        if futures::poll!(settling.as_mut()).is_pending() {
            sending.push(settling);
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
