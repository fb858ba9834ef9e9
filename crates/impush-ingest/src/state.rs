//! The state handler: each state event from IM core is checked and written to Redis, last
//! write wins by `at_ms`; a bad one is dead-lettered to `impush.dlq.events` with its reason.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use impush_amqp::{
    Delivery, EventDeadLetter, Handled, Publisher, check_event_size, dead_letter_event,
};
use impush_core::{conversation, vendor};
use impush_proto::v1::Vendor;
use impush_proto::{Event, EventKind};
use impush_runtime::now_ms;
use impush_store::{Applied, Store};

/// Events stamped further ahead than this are refused: one would freeze its record until
/// the clock caught up, since older-or-equal `at_ms` never overwrites.
const MAX_CLOCK_SKEW_MS: i64 = 24 * 3600 * 1000;

pub struct Ingest {
    pub store: Store,
    pub queue: String,
    pub events_dlq: String,
    pub max_event_bytes: usize,
    pub redis_ready: Arc<AtomicBool>,
}

/// Why an event cannot be stored; each is a dead letter reason.
enum Refused {
    Undecodable(String),
    Unexpected(EventKind),
    Invalid(&'static str, String),
}

impl Ingest {
    pub async fn handle(&self, delivery: Delivery, publisher: Publisher) -> Handled {
        let type_name = delivery.properties.kind().as_ref().map(|t| t.as_str());
        if let Err(detail) = check_event_size(&delivery, self.max_event_bytes) {
            // The label is a known type name or `unknown`, never the publisher's raw text.
            let kind = type_name
                .and_then(|name| EventKind::from_type_name(name).ok())
                .map_or("unknown", EventKind::type_name);
            return self
                .dead_letter(&delivery, publisher, "too_large", &detail, kind)
                .await;
        }
        let outcome = match Event::decode(type_name, &delivery.data) {
            Ok(event) => self.apply(event).await,
            Err(err) => Err(Refused::Undecodable(err.to_string())),
        };
        match outcome {
            Ok(Ok((kind, applied))) => {
                self.redis_ready.store(true, Ordering::SeqCst);
                let outcome = match applied {
                    Applied::Applied => "applied",
                    Applied::Stale => "stale",
                };
                metrics::counter!("impush_events_consumed_total", "type" => kind.type_name(), "outcome" => outcome).increment(1);
                Handled::Ack
            }
            Ok(Err(err)) => {
                if err.is_transient() {
                    self.redis_ready.store(false, Ordering::SeqCst);
                    tracing::warn!(error = %err, "Redis unavailable; the event will be retried");
                    metrics::counter!("impush_events_requeued_total", "queue" => "state")
                        .increment(1);
                    Handled::Requeue
                } else {
                    self.dead_letter(
                        &delivery,
                        publisher,
                        "store_error",
                        &err.to_string(),
                        "unknown",
                    )
                    .await
                }
            }
            Err(Refused::Undecodable(detail)) => {
                self.dead_letter(&delivery, publisher, "undecodable", &detail, "unknown")
                    .await
            }
            Err(Refused::Unexpected(kind)) => {
                self.dead_letter(
                    &delivery,
                    publisher,
                    "unexpected_event",
                    "not a state event",
                    kind.type_name(),
                )
                .await
            }
            Err(Refused::Invalid(reason, detail)) => {
                let kind = type_name.unwrap_or("unknown").to_owned();
                self.dead_letter(&delivery, publisher, reason, &detail, &kind)
                    .await
            }
        }
    }

    async fn apply(
        &self,
        event: Event,
    ) -> Result<Result<(EventKind, Applied), impush_store::StoreError>, Refused> {
        let kind = event.kind();
        let now = now_ms();
        let check_at = |at_ms: i64| {
            if at_ms > now + MAX_CLOCK_SKEW_MS {
                Err(Refused::Invalid(
                    "future_at_ms",
                    format!("at_ms {at_ms} is more than a day ahead"),
                ))
            } else {
                Ok(())
            }
        };
        let need = |value: &str, field: &'static str| {
            if value.is_empty() {
                Err(Refused::Invalid(
                    "missing_field",
                    format!("{field} is empty"),
                ))
            } else {
                Ok(())
            }
        };
        let applied = match &event {
            Event::DeviceRegistered(e) => {
                need(&e.user_id, "user_id")?;
                need(&e.device_id, "device_id")?;
                check_at(e.at_ms)?;
                let vendor = Vendor::try_from(e.vendor).unwrap_or(Vendor::Unspecified);
                if vendor == Vendor::Unspecified {
                    return Err(Refused::Invalid(
                        "unknown_vendor",
                        format!("vendor {}", e.vendor),
                    ));
                }
                vendor::check_token(vendor, &e.token)
                    .map_err(|err| Refused::Invalid("invalid_token_format", err.to_string()))?;
                self.store.register_device(e).await
            }
            Event::DeviceUnregistered(e) => {
                need(&e.user_id, "user_id")?;
                need(&e.device_id, "device_id")?;
                check_at(e.at_ms)?;
                self.store.unregister_device(e).await
            }
            Event::PresenceChanged(e) => {
                need(&e.user_id, "user_id")?;
                need(&e.device_id, "device_id")?;
                check_at(e.at_ms)?;
                self.store.set_presence(e).await
            }
            Event::PushSettings(e) => {
                need(&e.user_id, "user_id")?;
                check_at(e.at_ms)?;
                self.store.set_settings(e).await
            }
            Event::ConversationPushOption(e) => {
                need(&e.user_id, "user_id")?;
                conversation::check(&e.conversation)
                    .map_err(|detail| Refused::Invalid("invalid_conversation", detail))?;
                check_at(e.at_ms)?;
                self.store.set_conversation_option(e).await
            }
            Event::OfflineMessage(_) | Event::TokenInvalidated(_) | Event::MessageRevoked(_) => {
                return Err(Refused::Unexpected(kind));
            }
        };
        Ok(applied.map(|applied| (kind, applied)))
    }

    async fn dead_letter(
        &self,
        delivery: &Delivery,
        publisher: Publisher,
        reason: &str,
        detail: &str,
        kind: &str,
    ) -> Handled {
        let to = EventDeadLetter {
            dlq: &self.events_dlq,
            source_queue: &self.queue,
            kind,
            now_ms: now_ms(),
        };
        dead_letter_event(&publisher, delivery, to, reason, detail).await
    }
}
