//! Queue depth gauges: every worker reports the queues it works from, so the dashboard and
//! the alerts see backlog, retry ladders and dead letters without the management plugin.
//! A passive declare reads a queue's ready-message and consumer counts without changing it.

use std::time::Duration;

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use tokio_util::sync::CancellationToken;

use crate::{ClientTls, Topology, connect_any};

/// Sets `impush_queue_depth_messages{queue}` and `impush_queue_consumers{queue}` for each of
/// `queues` every `every`, until `shutdown`; reconnects when the broker goes away.
pub async fn watch_queue_depths(
    urls: Vec<String>,
    tls: ClientTls,
    topology: Topology,
    queues: Vec<String>,
    every: Duration,
    shutdown: CancellationToken,
) {
    while !shutdown.is_cancelled() {
        if let Err(err) = poll_until_error(&urls, &tls, &topology, &queues, every, &shutdown).await
        {
            tracing::debug!(error = %err, "queue depth poll failed; retrying");
        }
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(every) => {}
        }
    }
}

async fn poll_until_error(
    urls: &[String],
    tls: &ClientTls,
    topology: &Topology,
    queues: &[String],
    every: Duration,
    shutdown: &CancellationToken,
) -> Result<(), crate::AmqpError> {
    let connection = connect_any(urls, tls).await?;
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let mut channel = connection.create_channel().await?;
    loop {
        for queue in queues {
            // A passive declare of a missing queue closes the channel: open a new one and
            // report nothing for that queue until the topology exists.
            match channel
                .queue_declare(queue.as_str().into(), passive, FieldTable::default())
                .await
            {
                Ok(declared) => {
                    let label = topology.label(queue);
                    metrics::gauge!("impush_queue_depth_messages", "queue" => label.clone())
                        .set(f64::from(declared.message_count()));
                    metrics::gauge!("impush_queue_consumers", "queue" => label)
                        .set(f64::from(declared.consumer_count()));
                }
                Err(_) if connection.status().connected() => {
                    channel = connection.create_channel().await?;
                }
                Err(err) => return Err(err.into()),
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
    let _ = connection.close(200, "impush worker stopping".into()).await;
    Ok(())
}
