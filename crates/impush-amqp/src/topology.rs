//! Exchange and queue names, and their idempotent declaration.
//!
//! ```text
//! <p>.events (topic) ─ state.#   ─▶ <p>.state
//!                    ─ message.# ─▶ <p>.messages
//! <p>.push (direct)  ─ <vendor>  ─▶ <p>.push.<vendor>
//! <p>.retry.<vendor>.<ms>   delay queues: TTL <ms>, then dead-lettered back to <p>.push.<vendor>
//! <p>.dlq.<vendor>, <p>.dlq.events   dead letters, reason in headers
//! ```
//! With the prefix `impush` these are the names of the contract (DESIGN.md section 1).

use impush_config::{AmqpConfig, QueueType};
use impush_core::{Vendor, vendor};
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};

use crate::AmqpError;

/// Header names carried by dead letters and retries.
pub mod headers {
    /// Why the message was dead-lettered (snake_case, or the vendor's own reason).
    pub const REASON: &str = "x-impush-reason";
    /// The last HTTP status from the vendor, if any.
    pub const STATUS: &str = "x-impush-status";
    /// Delivery attempts made.
    pub const ATTEMPTS: &str = "x-impush-attempts";
    /// The queue the message was taken from.
    pub const SOURCE_QUEUE: &str = "x-impush-source-queue";
    /// When it was dead-lettered, ms since the epoch.
    pub const DEAD_AT_MS: &str = "x-impush-dead-at-ms";
    /// A human-readable detail (error text); never a secret or a full token.
    pub const DETAIL: &str = "x-impush-detail";
    /// When `impush dlq replay` put the message back to work, ms since the epoch.
    pub const REPLAYED_AT_MS: &str = "x-impush-replayed-at-ms";
}

/// The names and shape of impush's queues for one prefix.
#[derive(Debug, Clone)]
pub struct Topology {
    prefix: String,
    queue_type: QueueType,
    retry_delays_ms: Vec<u64>,
}

impl Topology {
    pub fn new(config: &AmqpConfig) -> Topology {
        Topology {
            prefix: config.prefix.clone(),
            queue_type: config.queue_type,
            retry_delays_ms: config.retry_delays_ms.clone(),
        }
    }

    /// A queue's name without the prefix (`push.apns`, `dlq.events`): the `queue` label of
    /// the metrics, the same on every fleet whatever its prefix.
    pub fn label(&self, queue: &str) -> String {
        queue
            .strip_prefix(self.prefix.as_str())
            .and_then(|rest| rest.strip_prefix('.'))
            .unwrap_or(queue)
            .to_owned()
    }

    /// The queues one vendor's sender pool works from: its work queue, every step of its
    /// retry ladder and its dead-letter queue.
    pub fn vendor_queues(&self, vendor: Vendor) -> Vec<String> {
        let mut queues = vec![self.push_queue(vendor)];
        queues.extend((0..self.retry_steps()).map(|step| self.retry_queue(vendor, step)));
        queues.push(self.dlq(vendor));
        queues
    }

    /// Every queue of the topology: state, messages and the events' dead letters, then each
    /// vendor's queues ([`Topology::vendor_queues`]). The router, always running, reports
    /// them all, so a queue whose whole consumer pool is gone still has its depth and its
    /// zero consumers reported.
    pub fn all_queues(&self) -> Vec<String> {
        let mut queues = vec![self.state_queue(), self.messages_queue(), self.events_dlq()];
        for vendor in vendor::ALL {
            queues.extend(self.vendor_queues(vendor));
        }
        queues
    }

    pub fn events_exchange(&self) -> String {
        format!("{}.events", self.prefix)
    }

    pub fn push_exchange(&self) -> String {
        format!("{}.push", self.prefix)
    }

    pub fn state_queue(&self) -> String {
        format!("{}.state", self.prefix)
    }

    pub fn messages_queue(&self) -> String {
        format!("{}.messages", self.prefix)
    }

    pub fn push_queue(&self, vendor: Vendor) -> String {
        format!("{}.push.{}", self.prefix, vendor::name(vendor))
    }

    pub fn retry_queue(&self, vendor: Vendor, step: usize) -> String {
        let delay = self.retry_delay_ms(step);
        format!("{}.retry.{}.{delay}", self.prefix, vendor::name(vendor))
    }

    pub fn dlq(&self, vendor: Vendor) -> String {
        format!("{}.dlq.{}", self.prefix, vendor::name(vendor))
    }

    pub fn events_dlq(&self) -> String {
        format!("{}.dlq.events", self.prefix)
    }

    pub fn retry_steps(&self) -> usize {
        self.retry_delays_ms.len()
    }

    /// The delay of a step of the ladder (the last step repeats).
    pub fn retry_delay_ms(&self, step: usize) -> u64 {
        let last = self.retry_delays_ms.len().saturating_sub(1);
        self.retry_delays_ms
            .get(step.min(last))
            .copied()
            .unwrap_or(1_000)
    }

    /// The ladder step for a retry after `attempt` failed deliveries (1 = the first try
    /// failed): the step's own delay, or the first step at least as long as the vendor's
    /// Retry-After.
    pub fn retry_step(&self, attempt: u32, retry_after_ms: Option<u64>) -> usize {
        let by_attempt = (attempt.max(1) - 1) as usize;
        let by_vendor = retry_after_ms.map_or(0, |wanted| {
            self.retry_delays_ms
                .iter()
                .position(|d| *d >= wanted)
                .unwrap_or(self.retry_delays_ms.len().saturating_sub(1))
        });
        by_attempt
            .max(by_vendor)
            .min(self.retry_delays_ms.len().saturating_sub(1))
    }

    /// Declares everything, idempotently (same arguments every time).
    pub async fn declare(&self, channel: &Channel) -> Result<(), AmqpError> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        channel
            .exchange_declare(
                self.events_exchange().into(),
                ExchangeKind::Topic,
                durable,
                FieldTable::default(),
            )
            .await?;
        channel
            .exchange_declare(
                self.push_exchange().into(),
                ExchangeKind::Direct,
                durable,
                FieldTable::default(),
            )
            .await?;

        self.declare_queue(channel, &self.state_queue(), self.base_arguments())
            .await?;
        self.bind(
            channel,
            &self.state_queue(),
            &self.events_exchange(),
            "state.#",
        )
        .await?;
        self.declare_queue(channel, &self.messages_queue(), self.base_arguments())
            .await?;
        self.bind(
            channel,
            &self.messages_queue(),
            &self.events_exchange(),
            "message.#",
        )
        .await?;
        self.declare_queue(channel, &self.events_dlq(), self.base_arguments())
            .await?;

        for vendor in vendor::ALL {
            let work = self.push_queue(vendor);
            self.declare_queue(channel, &work, self.base_arguments())
                .await?;
            self.bind(channel, &work, &self.push_exchange(), vendor::name(vendor))
                .await?;
            self.declare_queue(channel, &self.dlq(vendor), self.base_arguments())
                .await?;
            for step in 0..self.retry_steps() {
                let mut arguments = self.base_arguments();
                arguments.insert(
                    "x-message-ttl".into(),
                    AMQPValue::LongLongInt(self.retry_delay_ms(step) as i64),
                );
                // Expired retries go back to the work queue through the default exchange.
                arguments.insert(
                    "x-dead-letter-exchange".into(),
                    AMQPValue::LongString("".into()),
                );
                arguments.insert(
                    "x-dead-letter-routing-key".into(),
                    AMQPValue::LongString(work.clone().into()),
                );
                if self.queue_type == QueueType::Quorum {
                    // Move a message out only once it is safely in the work queue.
                    arguments.insert(
                        "x-dead-letter-strategy".into(),
                        AMQPValue::LongString("at-least-once".into()),
                    );
                    arguments.insert(
                        "x-overflow".into(),
                        AMQPValue::LongString("reject-publish".into()),
                    );
                }
                self.declare_queue(channel, &self.retry_queue(vendor, step), arguments)
                    .await?;
            }
        }
        Ok(())
    }

    /// Deletes every queue and exchange of this prefix (tests and `impush setup --reset`).
    pub async fn delete(&self, channel: &Channel) -> Result<(), AmqpError> {
        let mut queues = vec![self.state_queue(), self.messages_queue(), self.events_dlq()];
        for vendor in vendor::ALL {
            queues.push(self.push_queue(vendor));
            queues.push(self.dlq(vendor));
            for step in 0..self.retry_steps() {
                queues.push(self.retry_queue(vendor, step));
            }
        }
        for queue in queues {
            channel
                .queue_delete(queue.into(), lapin::options::QueueDeleteOptions::default())
                .await?;
        }
        for exchange in [self.events_exchange(), self.push_exchange()] {
            channel
                .exchange_delete(
                    exchange.into(),
                    lapin::options::ExchangeDeleteOptions::default(),
                )
                .await?;
        }
        Ok(())
    }

    fn base_arguments(&self) -> FieldTable {
        let mut arguments = FieldTable::default();
        if self.queue_type == QueueType::Quorum {
            arguments.insert(
                "x-queue-type".into(),
                AMQPValue::LongString("quorum".into()),
            );
        }
        arguments
    }

    async fn declare_queue(
        &self,
        channel: &Channel,
        name: &str,
        arguments: FieldTable,
    ) -> Result<(), AmqpError> {
        channel
            .queue_declare(name.into(), QueueDeclareOptions::durable(), arguments)
            .await?;
        Ok(())
    }

    async fn bind(
        &self,
        channel: &Channel,
        queue: &str,
        exchange: &str,
        key: &str,
    ) -> Result<(), AmqpError> {
        channel
            .queue_bind(
                queue.into(),
                exchange.into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology() -> Topology {
        Topology::new(&AmqpConfig::default())
    }

    #[test]
    fn the_default_prefix_gives_the_contract_names() {
        let t = topology();
        assert_eq!(t.events_exchange(), "impush.events");
        assert_eq!(t.push_exchange(), "impush.push");
        assert_eq!(t.state_queue(), "impush.state");
        assert_eq!(t.messages_queue(), "impush.messages");
        assert_eq!(t.push_queue(Vendor::Apns), "impush.push.apns");
        assert_eq!(t.dlq(Vendor::Fcm), "impush.dlq.fcm");
        assert_eq!(t.events_dlq(), "impush.dlq.events");
        assert_eq!(t.retry_queue(Vendor::Apns, 0), "impush.retry.apns.1000");
    }

    #[test]
    fn all_queues_holds_every_work_queue_and_dead_letter_queue_of_every_vendor() {
        let t = topology();
        let all = t.all_queues();
        for queue in [t.state_queue(), t.messages_queue(), t.events_dlq()] {
            assert!(all.contains(&queue), "{queue}");
        }
        for v in vendor::ALL {
            for queue in t.vendor_queues(v) {
                assert!(all.contains(&queue), "{queue}");
            }
        }
    }

    #[test]
    fn retries_climb_the_ladder_and_honour_retry_after() {
        let t = topology(); // 1 s, 5 s, 30 s, 2 min, 10 min
        assert_eq!(t.retry_step(1, None), 0);
        assert_eq!(t.retry_step(2, None), 1);
        assert_eq!(t.retry_step(9, None), 4, "the last step repeats");
        assert_eq!(t.retry_step(1, Some(3_000)), 1, "Retry-After 3 s waits 5 s");
        assert_eq!(t.retry_step(1, Some(5_000)), 1);
        assert_eq!(
            t.retry_step(1, Some(3_600_000)),
            4,
            "capped at the longest delay"
        );
        assert_eq!(
            t.retry_step(3, Some(500)),
            2,
            "never shorter than the attempt's step"
        );
    }
}
