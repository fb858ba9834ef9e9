//! Push outcomes for IM core: what became of each push (delivered, dead-lettered, expired,
//! skipped, invalid token; later arrived or clicked from vendor receipts), published as
//! `PushOutcomes` batches on `impush.events` with routing key `feedback.push`, only for the
//! sdk_app_ids that opted in (`[feedback] push_outcomes`).
//!
//! The workers' hook is one call, [`Outcomes::record`], which never waits: it hands the
//! outcome to a background task through a bounded queue. The task publishes a batch when
//! `batch_max` outcomes wait or `flush_interval_ms` after the first one, on a connection of
//! its own opened at the first batch. Outcomes are statistics, not deliveries: a full queue,
//! a broker outage or a crash loses some (counted as `impush_push_outcomes_total{result=
//! "dropped"}`), and pushes never slow down or fail for them.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use impush_config::{ClientTls, FeedbackConfig};
use impush_proto::v1::{PushOutcome, PushOutcomes};
use impush_proto::{FEEDBACK_PUSH_KEY, PUSH_OUTCOMES_TYPE};
use prost::Message;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{Connection, Outgoing, Publisher, Topology, connect_any, protobuf_properties};

/// The recording end, cheap to clone; one per worker process.
#[derive(Clone)]
pub struct Outcomes {
    apps: Arc<RwLock<Arc<HashSet<u32>>>>,
    queue: Option<mpsc::Sender<PushOutcome>>,
}

impl Outcomes {
    /// Records nothing (tools, tests, workers started without a broker).
    pub fn disabled() -> Outcomes {
        Outcomes {
            apps: Arc::default(),
            queue: None,
        }
    }

    /// Starts the publishing task; it stops, after a last flush, on `shutdown`.
    pub fn start(
        config: &FeedbackConfig,
        urls: Vec<String>,
        tls: ClientTls,
        topology: &Topology,
        shutdown: CancellationToken,
    ) -> Outcomes {
        let (queue, receiver) = mpsc::channel(config.queue_max.max(1));
        let publishing = Publishing {
            urls,
            tls,
            exchange: topology.events_exchange(),
            batch_max: config.batch_max.max(1),
            interval: Duration::from_millis(config.flush_interval_ms.max(1)),
            connection: None,
        };
        tokio::spawn(publishing.run(receiver, shutdown));
        let outcomes = Outcomes {
            apps: Arc::default(),
            queue: Some(queue),
        };
        outcomes.set_apps(config);
        outcomes
    }

    /// Takes the opted-in apps of a reloaded config.
    pub fn set_apps(&self, config: &FeedbackConfig) {
        let apps: HashSet<u32> = config.push_outcomes.iter().copied().collect();
        if let Ok(mut current) = self.apps.write() {
            *current = Arc::new(apps);
        }
    }

    /// Whether `sdk_app_id` gets outcomes: callers building many outcomes ask first.
    pub fn wants(&self, sdk_app_id: u32) -> bool {
        self.queue.is_some()
            && self
                .apps
                .read()
                .map(|apps| apps.contains(&sdk_app_id))
                .unwrap_or(false)
    }

    /// Queues one outcome if its app opted in; never waits.
    pub fn record(&self, outcome: PushOutcome) {
        if !self.wants(outcome.sdk_app_id) {
            return;
        }
        let Some(queue) = &self.queue else {
            return;
        };
        if queue.try_send(outcome).is_err() {
            metrics::counter!("impush_push_outcomes_total", "result" => "dropped").increment(1);
        }
    }
}

/// The task's side: batches and publishes.
struct Publishing {
    urls: Vec<String>,
    tls: ClientTls,
    exchange: String,
    batch_max: usize,
    interval: Duration,
    connection: Option<(Connection, Publisher)>,
}

impl Publishing {
    async fn run(mut self, mut receiver: mpsc::Receiver<PushOutcome>, shutdown: CancellationToken) {
        let mut batch = Vec::with_capacity(self.batch_max);
        // The first tick one interval from now, not at once.
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + self.interval, self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                got = receiver.recv() => match got {
                    Some(outcome) => {
                        batch.push(outcome);
                        if batch.len() >= self.batch_max {
                            self.flush(&mut batch).await;
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => {
                    if !batch.is_empty() {
                        self.flush(&mut batch).await;
                    }
                }
                () = shutdown.cancelled() => break,
            }
        }
        // What was recorded before the end goes out with the last batches.
        while let Ok(outcome) = receiver.try_recv() {
            batch.push(outcome);
            if batch.len() >= self.batch_max {
                self.flush(&mut batch).await;
            }
        }
        if !batch.is_empty() {
            self.flush(&mut batch).await;
        }
    }

    async fn flush(&mut self, batch: &mut Vec<PushOutcome>) {
        let outcomes = std::mem::take(batch);
        let count = outcomes.len() as u64;
        let message = Outgoing {
            exchange: self.exchange.clone(),
            routing_key: FEEDBACK_PUSH_KEY.into(),
            body: PushOutcomes { outcomes }.encode_to_vec(),
            properties: protobuf_properties(PUSH_OUTCOMES_TYPE),
            // IM core binds its own queue; with none bound nobody listens, which is fine.
            mandatory: false,
        };
        match self.publish(message).await {
            Ok(()) => {
                metrics::counter!("impush_push_outcomes_total", "result" => "published")
                    .increment(count);
            }
            Err(err) => {
                tracing::warn!(error = %err, outcomes = count, "push outcomes not published; dropped");
                metrics::counter!("impush_push_outcomes_total", "result" => "dropped")
                    .increment(count);
                self.connection = None;
            }
        }
    }

    async fn publish(&mut self, message: Outgoing) -> Result<(), crate::AmqpError> {
        if self.connection.is_none() {
            let connection = connect_any(&self.urls, &self.tls).await?;
            let publisher = Publisher::open(&connection).await?;
            self.connection = Some((connection, publisher));
        }
        match &self.connection {
            Some((_, publisher)) => publisher.publish(message).await,
            None => Err(crate::AmqpError::NoAddress),
        }
    }
}
