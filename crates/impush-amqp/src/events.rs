//! What every worker that consumes IM core's events does with a bad one, written once: the
//! size check before decoding, and "dead-letter, then ack; requeue if the dead letter could
//! not be published".

use lapin::message::Delivery;

use crate::{DeadLetterReason, Handled, Publisher, dead_letter};

/// Refuses an event larger than `max_bytes` (`[amqp] max_event_bytes`) before it is decoded,
/// so an oversized body never costs its decoded size too: the detail to dead-letter it with.
pub fn check_event_size(delivery: &Delivery, max_bytes: usize) -> Result<(), String> {
    if delivery.data.len() > max_bytes {
        return Err(format!(
            "{} bytes, the limit is {max_bytes} ([amqp] max_event_bytes)",
            delivery.data.len()
        ));
    }
    Ok(())
}

/// Where a bad event goes and what it is counted as.
#[derive(Debug, Clone, Copy)]
pub struct EventDeadLetter<'a> {
    /// The dead-letter queue (`impush.dlq.events`).
    pub dlq: &'a str,
    /// The queue the event was consumed from.
    pub source_queue: &'a str,
    /// The event's type label for `impush_events_consumed_total` (a known type name or
    /// `unknown`, never the publisher's raw text).
    pub kind: &'a str,
    pub now_ms: i64,
}

/// Dead-letters `delivery` with `reason` and `detail`, then acks it; if the dead letter
/// cannot be published, the event is requeued instead, so it is never lost.
pub async fn dead_letter_event(
    publisher: &Publisher,
    delivery: &Delivery,
    to: EventDeadLetter<'_>,
    reason: &str,
    detail: &str,
) -> Handled {
    let message = dead_letter(
        to.dlq,
        delivery.data.clone(),
        &delivery.properties,
        to.source_queue,
        DeadLetterReason {
            reason,
            detail,
            ..DeadLetterReason::default()
        },
        to.now_ms,
    );
    match publisher.publish(message).await {
        Ok(()) => {
            tracing::warn!(reason, detail, "event dead-lettered");
            metrics::counter!("impush_events_consumed_total", "type" => to.kind.to_owned(), "outcome" => "dead_lettered").increment(1);
            metrics::counter!("impush_dead_letters_total", "queue" => "events", "reason" => reason.to_owned()).increment(1);
            Handled::Ack
        }
        Err(err) => {
            tracing::warn!(error = %err, "could not dead-letter; the event will be retried");
            Handled::Requeue
        }
    }
}
