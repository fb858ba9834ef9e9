//! Taking in a `MessageRevoked`: the recall is remembered in Redis for as long as a push of
//! the message could still be queued or retried, so the router (before rendering) and the
//! senders (before a push leaves) find it, whichever of the message and its recall came
//! first.

use impush_config::Config;
use impush_proto::v1::MessageRevoked;
use impush_store::Applied;

use crate::route::{Failure, Router};

/// How long a recall is remembered, in seconds: as long as a push of the message can still
/// leave. A push is dropped once `[router] max_age_s` has passed since the message was sent
/// (quota pauses and retries included), and the retry ladder (`[amqp] retry_delays_ms`, the
/// last step repeating, `max_attempts` tries) bounds how long its retries can wait; the
/// longer of the two, plus one longest step for a job already taken from a queue.
pub fn remember_for_s(config: &Config) -> u64 {
    let delays = &config.amqp.retry_delays_ms;
    let longest_step_ms = delays.iter().copied().max().unwrap_or(0);
    let retries = config.amqp.max_attempts.saturating_sub(1) as usize;
    let ladder_ms: u64 = (0..retries)
        .map(|step| {
            delays
                .get(step)
                .or(delays.last())
                .copied()
                .unwrap_or_default()
        })
        .fold(0u64, u64::saturating_add);
    let ladder_s = ladder_ms.div_ceil(1000);
    ladder_s
        .max(config.router.max_age_s)
        .saturating_add(longest_step_ms.div_ceil(1000))
        .max(1)
}

impl Router {
    /// Remembers the recall; the metrics outcome of the event.
    pub(crate) async fn take_recall(
        &self,
        revoked: &MessageRevoked,
    ) -> Result<&'static str, Failure> {
        if revoked.msg_id.is_empty() {
            return Err(Failure::Bad(
                "missing_field",
                "a MessageRevoked needs msg_id".into(),
            ));
        }
        let ttl_s = remember_for_s(&self.config.load());
        let applied = self
            .store
            .remember_revoked(revoked.sdk_app_id, &revoked.msg_id, revoked.at_ms, ttl_s)
            .await?;
        let outcome = match applied {
            Applied::Applied => "taken_in",
            Applied::Stale => "repeated",
        };
        tracing::info!(msg_id = %revoked.msg_id, sdk_app_id = revoked.sdk_app_id, outcome, "recall");
        metrics::counter!("impush_recalls_total", "outcome" => outcome).increment(1);
        Ok(match applied {
            Applied::Applied => "recalled",
            Applied::Stale => "stale",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recall_outlives_the_longest_a_push_can_wait() {
        let mut config = Config::default();
        config.router.max_age_s = 60;
        config.amqp.retry_delays_ms = vec![1_000, 5_000, 30_000];
        config.amqp.max_attempts = 6;
        // Five retries: 1 + 5 + 30 + 30 + 30 s = 96 s of ladder, longer than max_age_s,
        // plus one longest step.
        assert_eq!(remember_for_s(&config), 96 + 30);
        config.router.max_age_s = 24 * 3600;
        assert_eq!(remember_for_s(&config), 24 * 3600 + 30);
    }
}
