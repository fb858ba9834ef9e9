//! The reference every fleet figure is divided by: the bare broker relay, one hop of the
//! pipeline with nothing else in it. Queue A is filled, then each delivery from A is
//! published to B with a confirm and only then acked on A, all deliveries of the prefetch in
//! flight at once, consumer and publisher on separate connections (as measured in the
//! project's reference limits). Same broker, same queue type and same message size as the
//! fleet run it is compared with.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use impush_amqp::{AMQPValue, FieldTable, protobuf_properties};
use impush_config::QueueType;
use indicatif::ProgressBar;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::{Channel, Connection};

use crate::stream::PublishError;

pub struct RelayPlan {
    pub url: String,
    pub tls: impush_amqp::ClientTls,
    /// Queues are `<prefix>.relay.a` and `<prefix>.relay.b`, deleted afterwards.
    pub prefix: String,
    pub queue_type: QueueType,
    pub messages: usize,
    pub message_bytes: usize,
    pub prefetch: u16,
}

/// Relayed messages per second.
pub async fn relay(plan: &RelayPlan, bar: &ProgressBar) -> Result<f64, PublishError> {
    let a = format!("{}.relay.a", plan.prefix);
    let b = format!("{}.relay.b", plan.prefix);
    let publishing = impush_amqp::connect_with_tls(&plan.url, &plan.tls).await?;
    let consuming = impush_amqp::connect_with_tls(&plan.url, &plan.tls).await?;
    let publisher = publishing.create_channel().await?;
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    for queue in [&a, &b] {
        // Start empty whatever an interrupted run left.
        publisher
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await?;
        publisher
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                queue_arguments(plan.queue_type),
            )
            .await?;
    }
    let result = run(plan, &publisher, &consuming, &a, &b, bar).await;
    for queue in [&a, &b] {
        let _ = publisher
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    let _ = publishing.close(200, "relay done".into()).await;
    let _ = consuming.close(200, "relay done".into()).await;
    result
}

fn queue_arguments(queue_type: QueueType) -> FieldTable {
    let mut arguments = FieldTable::default();
    if queue_type == QueueType::Quorum {
        arguments.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
    }
    arguments
}

async fn run(
    plan: &RelayPlan,
    publisher: &Channel,
    consuming: &Connection,
    a: &str,
    b: &str,
    bar: &ProgressBar,
) -> Result<f64, PublishError> {
    let body = vec![b'x'; plan.message_bytes];
    bar.set_message("relay: filling A");
    let mut fills = FuturesUnordered::new();
    for _ in 0..plan.messages {
        if fills.len() >= 1_000 {
            confirmed(fills.next().await)?;
        }
        let confirm = publisher
            .basic_publish(
                "".into(),
                a.into(),
                BasicPublishOptions::default(),
                &body,
                protobuf_properties("Relay"),
            )
            .await?;
        fills.push(confirm);
    }
    while let Some(done) = fills.next().await {
        confirmed(Some(done))?;
    }

    bar.set_message("relay: A → B");
    bar.set_length(plan.messages as u64);
    let channel = consuming.create_channel().await?;
    channel
        .basic_qos(plan.prefetch, BasicQosOptions::default())
        .await?;
    let mut consumer = channel
        .basic_consume(
            a.into(),
            "impush-loadgen-relay".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let publisher = Arc::new(publisher.clone());
    let b: Arc<str> = b.into();
    let started = Instant::now();
    let mut in_flight = FuturesUnordered::new();
    let mut relayed = 0usize;
    let mut received = 0usize;
    while relayed < plan.messages {
        tokio::select! {
            next = consumer.next(), if received < plan.messages => {
                let Some(delivery) = next else { break };
                let delivery = delivery?;
                received += 1;
                let publisher = Arc::clone(&publisher);
                let b = Arc::clone(&b);
                in_flight.push(async move {
                    let confirm = publisher
                        .basic_publish(
                            "".into(),
                            b.as_ref().into(),
                            BasicPublishOptions::default(),
                            &delivery.data,
                            delivery.properties.clone(),
                        )
                        .await?;
                    if confirm.await?.is_nack() {
                        return Err(PublishError::Nacked);
                    }
                    delivery.acker.ack(BasicAckOptions::default()).await?;
                    Ok::<(), PublishError>(())
                });
            }
            Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                done?;
                relayed += 1;
                bar.inc(1);
            }
        }
    }
    let seconds = started
        .elapsed()
        .max(Duration::from_millis(1))
        .as_secs_f64();
    Ok(relayed as f64 / seconds)
}

fn confirmed(done: Option<Result<lapin::Confirmation, lapin::Error>>) -> Result<(), PublishError> {
    match done {
        Some(Ok(confirmation)) if confirmation.is_nack() => Err(PublishError::Nacked),
        Some(result) => result.map(drop).map_err(PublishError::from),
        None => Ok(()),
    }
}
