//! How long a recall must be remembered: as long as a push of the recalled message can still
//! leave impush, derived from the router's maximum age and the retry ladder.

use crate::Config;

impl Config {
    /// How long a `MessageRevoked` is remembered, and a delivered push kept for a recall to
    /// replace, in seconds. A push is dropped once `[router] max_age_s` has passed since its
    /// message was sent (retries and quota pauses included), and the retry ladder
    /// (`[amqp] retry_delays_ms`, the last step repeating, `max_attempts` tries) bounds how
    /// long its retries wait; the longer of the two, plus one longest step for a job already
    /// taken from a queue.
    pub fn recall_memory_s(&self) -> u64 {
        let delays = &self.amqp.retry_delays_ms;
        let longest_step_ms = delays.iter().copied().max().unwrap_or(0);
        let retries = self.amqp.max_attempts.saturating_sub(1) as usize;
        let ladder_ms: u64 = (0..retries)
            .map(|step| {
                delays
                    .get(step)
                    .or(delays.last())
                    .copied()
                    .unwrap_or_default()
            })
            .fold(0u64, u64::saturating_add);
        ladder_ms
            .div_ceil(1000)
            .max(self.router.max_age_s)
            .saturating_add(longest_step_ms.div_ceil(1000))
            .max(1)
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
        assert_eq!(config.recall_memory_s(), 96 + 30);
        config.router.max_age_s = 24 * 3600;
        assert_eq!(config.recall_memory_s(), 24 * 3600 + 30);
    }
}
