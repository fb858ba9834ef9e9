//! Every metric impush exports, with its help text: described once at start so `/metrics`
//! carries `# HELP` and `# TYPE` lines, and the one list the README, the dashboard and the
//! alert rules are checked against.

/// What kind of series a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric: name, kind, labels and help.
#[derive(Debug, Clone, Copy)]
pub struct MetricInfo {
    pub name: &'static str,
    pub kind: Kind,
    pub labels: &'static str,
    pub help: &'static str,
}

const fn m(name: &'static str, kind: Kind, labels: &'static str, help: &'static str) -> MetricInfo {
    MetricInfo {
        name,
        kind,
        labels,
        help,
    }
}

/// The catalogue (process_* series come from the process collector and are not listed).
pub const METRICS: &[MetricInfo] = &[
    m(
        "impush_events_consumed_total",
        Kind::Counter,
        "type, outcome",
        "Events taken from the state and messages queues, by event type and what became of them.",
    ),
    m(
        "impush_events_requeued_total",
        Kind::Counter,
        "queue",
        "Events given back to their queue because Redis or the broker failed (tried again).",
    ),
    m(
        "impush_skips_total",
        Kind::Counter,
        "reason",
        "Recipient devices not pushed, by the rule that decided it (online, muted, logged out, conversation_muted, quiet_hours, revoked…).",
    ),
    m(
        "impush_recalls_total",
        Kind::Counter,
        "outcome",
        "MessageRevoked events: taken_in (remembered), repeated; devices whose shown notification was withdrawn through the vendor's revoke API, replaced by the recall text, or too_late to change.",
    ),
    m(
        "impush_notifications_routed_total",
        Kind::Counter,
        "vendor",
        "Device notifications the router published as push jobs.",
    ),
    m(
        "impush_push_messages_total",
        Kind::Counter,
        "vendor",
        "Broker messages the router published to impush.push (a PushJob, or a bundle of them).",
    ),
    m(
        "impush_push_jobs_total",
        Kind::Counter,
        "vendor",
        "PushJobs in those messages; jobs ÷ messages is the bundling factor.",
    ),
    m(
        "impush_pushes_total",
        Kind::Counter,
        "vendor, business_id, outcome",
        "Device notifications by final outcome: delivered, retried, invalid_token, rejected, dead_lettered, expired, duplicate, revoked.",
    ),
    m(
        "impush_vendor_responses_total",
        Kind::Counter,
        "vendor, reason",
        "Vendor answers per device token, by classified reason (`ok` on success).",
    ),
    m(
        "impush_retries_total",
        Kind::Counter,
        "vendor, attempt",
        "Jobs sent back through the retry ladder, by the attempt that failed.",
    ),
    m(
        "impush_dead_letters_total",
        Kind::Counter,
        "queue, reason",
        "Messages dead-lettered, by dead-letter queue (vendor or `events`) and reason.",
    ),
    m(
        "impush_tokens_pruned_total",
        Kind::Counter,
        "vendor",
        "Device registrations deleted because the vendor said the token is invalid.",
    ),
    m(
        "impush_push_outcomes_total",
        Kind::Counter,
        "result",
        "feedback.push outcomes for opted-in apps: published, or dropped (queue full, broker unreachable).",
    ),
    m(
        "impush_receipts_total",
        Kind::Counter,
        "vendor, status",
        "Vendor delivery receipts taken by impush-receipts, one per token: arrived, clicked, token_invalid, other; whole requests refused: rejected_signature, malformed; not acted on (Redis or broker down, answered 503): failed.",
    ),
    m(
        "impush_jobs_requeued_total",
        Kind::Counter,
        "vendor",
        "Push jobs given back to the work queue because Redis or the broker failed.",
    ),
    m(
        "impush_dedupe_record_failures_total",
        Kind::Counter,
        "vendor",
        "Deliveries whose \"already sent\" record could not be written (a redelivery may repeat them).",
    ),
    m(
        "impush_redis_round_trips_total",
        Kind::Counter,
        "",
        "Pipelined round trips to one Redis node made by the store's batch calls.",
    ),
    m(
        "impush_redis_commands_total",
        Kind::Counter,
        "",
        "Redis commands sent in those round trips.",
    ),
    m(
        "impush_amqp_reconnects_total",
        Kind::Counter,
        "",
        "Reconnections to RabbitMQ after the connection dropped or could not be made.",
    ),
    m(
        "impush_config_reloads_total",
        Kind::Counter,
        "outcome",
        "Configuration and credential reloads (SIGHUP or a changed file), `ok` or `error`.",
    ),
    m(
        "impush_end_to_end_latency_seconds",
        Kind::Histogram,
        "vendor",
        "From the message's send_time_ms to the vendor's acceptance of the push.",
    ),
    m(
        "impush_vendor_request_duration_seconds",
        Kind::Histogram,
        "vendor",
        "Duration of one vendor HTTP request (batch requests count once).",
    ),
    m(
        "impush_in_flight_messages",
        Kind::Gauge,
        "queue",
        "Deliveries taken from the queue and not yet acked or requeued by this process.",
    ),
    m(
        "impush_queue_depth_messages",
        Kind::Gauge,
        "queue",
        "Messages ready in the queue (work, retry ladder, dead letters), polled by the workers.",
    ),
    m(
        "impush_queue_consumers",
        Kind::Gauge,
        "queue",
        "Consumers attached to the queue.",
    ),
    m(
        "impush_credential_expiry_timestamp_seconds",
        Kind::Gauge,
        "vendor, business_id, kind",
        "When a credential stops working (an APNs p12 certificate's notAfter), Unix seconds.",
    ),
    m(
        "impush_quota_remaining",
        Kind::Gauge,
        "vendor, business_id",
        "Pushes left today under the credential's configured daily_quota (0 once the vendor says it is used up).",
    ),
    m(
        "impush_build_info",
        Kind::Gauge,
        "version",
        "Always 1; the version label tells which build runs.",
    ),
];

/// Gives every metric of the catalogue its help text.
pub fn describe_all() {
    for info in METRICS {
        match info.kind {
            Kind::Counter => metrics::describe_counter!(info.name, info.help),
            Kind::Gauge => metrics::describe_gauge!(info.name, info.help),
            Kind::Histogram => {
                metrics::describe_histogram!(info.name, metrics::Unit::Seconds, info.help)
            }
        }
    }
}

/// Which worker a process is: what decides the label sets its counters start with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Ingest,
    Router,
    Sender(impush_core::Vendor),
}

/// The outcomes of `impush_pushes_total`.
pub const PUSH_OUTCOMES: [&str; 8] = [
    "delivered",
    "retried",
    "invalid_token",
    "rejected",
    "dead_lettered",
    "expired",
    "duplicate",
    "revoked",
];

/// The outcomes of `impush_recalls_total` the router counts (senders count `replaced` and
/// `withdrawn`).
pub const ROUTER_RECALL_OUTCOMES: [&str; 3] = ["taken_in", "repeated", "too_late"];

/// The counter series a worker of `role` can know before anything happens, as
/// `(name, labels)`: `increase()` and `rate()` only see an event on a series that existed
/// before it, so a counter first written at its first event hides that event (and the
/// first config reload error, the first dead letter, are exactly the ones that matter).
pub fn known_counters(
    role: Role,
    config: &impush_config::Config,
) -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    let mut series: Vec<(&'static str, Vec<(&'static str, String)>)> = vec![
        ("impush_amqp_reconnects_total", vec![]),
        (
            "impush_config_reloads_total",
            vec![("outcome", "ok".into())],
        ),
        (
            "impush_config_reloads_total",
            vec![("outcome", "error".into())],
        ),
    ];
    match role {
        Role::Ingest => {
            series.push((
                "impush_events_requeued_total",
                vec![("queue", "state".into())],
            ));
        }
        Role::Router => {
            series.push((
                "impush_events_requeued_total",
                vec![("queue", "messages".into())],
            ));
            for reason in impush_core::SkipReason::ALL {
                series.push((
                    "impush_skips_total",
                    vec![("reason", reason.as_str().into())],
                ));
            }
            for outcome in ROUTER_RECALL_OUTCOMES {
                series.push(("impush_recalls_total", vec![("outcome", outcome.into())]));
            }
            for counter in [
                "impush_redis_round_trips_total",
                "impush_redis_commands_total",
            ] {
                series.push((counter, vec![]));
            }
            for vendor in impush_core::vendor::ALL {
                let name = impush_core::vendor::name(vendor);
                for counter in [
                    "impush_notifications_routed_total",
                    "impush_push_messages_total",
                    "impush_push_jobs_total",
                ] {
                    series.push((counter, vec![("vendor", name.into())]));
                }
            }
        }
        Role::Sender(vendor) => {
            let name = impush_core::vendor::name(vendor);
            let mut business_ids: Vec<u64> = config
                .credentials
                .values()
                .filter(|c| c.vendor == vendor)
                .map(|c| c.business_id)
                .collect();
            business_ids.sort_unstable();
            for business_id in business_ids {
                for outcome in PUSH_OUTCOMES {
                    series.push((
                        "impush_pushes_total",
                        vec![
                            ("vendor", name.into()),
                            ("business_id", business_id.to_string()),
                            ("outcome", outcome.into()),
                        ],
                    ));
                }
            }
            series.push((
                "impush_vendor_responses_total",
                vec![("vendor", name.into()), ("reason", "ok".into())],
            ));
            for attempt in 1..config.amqp.max_attempts.max(1) {
                series.push((
                    "impush_retries_total",
                    vec![("vendor", name.into()), ("attempt", attempt.to_string())],
                ));
            }
            series.push((
                "impush_dead_letters_total",
                vec![
                    ("queue", name.into()),
                    ("reason", "retries_exhausted".into()),
                ],
            ));
            for counter in [
                "impush_tokens_pruned_total",
                "impush_jobs_requeued_total",
                "impush_dedupe_record_failures_total",
            ] {
                series.push((counter, vec![("vendor", name.into())]));
            }
            for outcome in ["replaced", "withdrawn"] {
                series.push(("impush_recalls_total", vec![("outcome", outcome.into())]));
            }
            for counter in [
                "impush_redis_round_trips_total",
                "impush_redis_commands_total",
            ] {
                series.push((counter, vec![]));
            }
        }
    }
    series
}

/// Writes every [`known_counters`] series at 0, so `/metrics` shows them from start-up.
pub fn start_counters_at_zero(role: Role, config: &impush_config::Config) {
    for (name, labels) in known_counters(role, config) {
        let labels: Vec<metrics::Label> = labels
            .into_iter()
            .map(|(key, value)| metrics::Label::new(key, value))
            .collect();
        metrics::counter!(name, labels).increment(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counters_started_at_zero_are_counters_of_the_catalogue() {
        let config = impush_config::Config::sample().unwrap();
        let roles = [
            Role::Ingest,
            Role::Router,
            Role::Sender(impush_core::Vendor::Apns),
        ];
        for role in roles {
            for (name, _) in known_counters(role, &config) {
                let info = METRICS.iter().find(|i| i.name == name);
                assert!(
                    info.is_some_and(|i| i.kind == Kind::Counter),
                    "{name} is not a counter of the catalogue"
                );
            }
        }
        let apns = known_counters(Role::Sender(impush_core::Vendor::Apns), &config);
        assert!(
            apns.iter()
                .any(|(name, labels)| *name == "impush_pushes_total"
                    && labels.contains(&("business_id", "1".into()))
                    && labels.contains(&("outcome", "delivered".into())))
        );
    }

    #[test]
    fn metric_names_follow_prometheus_conventions() {
        for info in METRICS {
            assert!(info.name.starts_with("impush_"), "{}", info.name);
            match info.kind {
                Kind::Counter => assert!(info.name.ends_with("_total"), "{}", info.name),
                Kind::Histogram => assert!(info.name.ends_with("_seconds"), "{}", info.name),
                Kind::Gauge => assert!(!info.name.ends_with("_total"), "{}", info.name),
            }
        }
        let mut names: Vec<_> = METRICS.iter().map(|i| i.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METRICS.len(), "no metric listed twice");
    }
}
