//! What the SREs rely on, end to end on the real RabbitMQ and Redis: exact metric counts
//! after a known event stream, readiness, configuration reloads without a restart, and no
//! secret or full token in metrics, logs or `impush config show`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fleet;

use std::time::{Duration, Instant};

use fleet::{Fleet, FleetOptions, apns_token, now_ms, presence, register, text_message};
use impush_proto::Event;
use impush_proto::v1::{PresenceState, Vendor};

const WAIT: Duration = Duration::from_secs(20);

/// The value of the series `name{labels…}` whose labels include every `label="value"` given;
/// `None` when no such series is exported.
fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .find(|line| {
            labels
                .iter()
                .all(|(k, v)| line.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// Scrapes until `check` holds (gauges are polled, counters land after acks), or fails
/// with the last scrape.
async fn metrics_until(fleet: &Fleet, name: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let metrics = fleet.metrics(name).await;
        if check(&metrics) {
            return metrics;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: the expected series never came; last scrape:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_a_known_event_stream_exactly_per_label() {
    let fleet = Fleet::start(FleetOptions::default()).await;
    let t = now_ms() - 10_000;
    fleet
        .publish(vec![
            register("ana", "iphone", Vendor::Apns, &apns_token(1), t),
            presence("ana", "iphone", PresenceState::Background, 2, t + 1),
            register("ben", "pixel", Vendor::Fcm, "fcm-ben", t),
            presence("ben", "pixel", PresenceState::Background, 0, t + 1),
            register("cai", "pixel", Vendor::Fcm, "fcm-cai", t),
            presence("cai", "pixel", PresenceState::Foreground, 0, t + 1),
            register("dan", "pixel", Vendor::Fcm, "invalid-dan", t),
            presence("dan", "pixel", PresenceState::Background, 0, t + 1),
            // Older than the registration above: stale, changes nothing.
            presence("ben", "pixel", PresenceState::Foreground, 0, t - 5),
        ])
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut messages = Vec::new();
    for (i, to) in ["ana", "ben", "cai", "dan", "ana"].iter().enumerate() {
        let mut message = text_message(&format!("m{i}"), "zoe", to, "hello");
        message.send_time_ms = now_ms();
        messages.push(Event::OfflineMessage(message));
    }
    fleet.publish(messages).await;
    // ana twice (APNs), ben once (FCM); cai is in the foreground, dan's token is dead.
    fleet.wait_deliveries(WAIT, |d| d.len() == 3).await;

    let ingest = metrics_until(&fleet, "impush-ingest", |m| {
        sample(m, "impush_events_consumed_total", &[("outcome", "stale")]) == Some(1.0)
    })
    .await;
    let consumed = |kind, outcome| {
        sample(
            &ingest,
            "impush_events_consumed_total",
            &[("type", kind), ("outcome", outcome)],
        )
    };
    assert_eq!(consumed("DeviceRegistered", "applied"), Some(4.0));
    assert_eq!(consumed("PresenceChanged", "applied"), Some(4.0));
    assert_eq!(consumed("PresenceChanged", "stale"), Some(1.0));

    let router = metrics_until(&fleet, "impush-router", |m| {
        sample(
            m,
            "impush_events_consumed_total",
            &[("type", "OfflineMessage"), ("outcome", "routed")],
        ) == Some(5.0)
    })
    .await;
    assert_eq!(
        sample(&router, "impush_skips_total", &[("reason", "foreground")]),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &router,
            "impush_notifications_routed_total",
            &[("vendor", "apns")]
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &router,
            "impush_notifications_routed_total",
            &[("vendor", "fcm")]
        ),
        Some(2.0)
    );

    let apns = metrics_until(&fleet, "sender-apns", |m| {
        sample(m, "impush_pushes_total", &[("outcome", "delivered")]) == Some(2.0)
    })
    .await;
    let pushes = |m: &str, vendor, business_id, outcome| {
        sample(
            m,
            "impush_pushes_total",
            &[
                ("vendor", vendor),
                ("business_id", business_id),
                ("outcome", outcome),
            ],
        )
    };
    assert_eq!(pushes(&apns, "apns", "1", "delivered"), Some(2.0));
    assert_eq!(
        sample(
            &apns,
            "impush_vendor_responses_total",
            &[("vendor", "apns"), ("reason", "ok")]
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &apns,
            "impush_end_to_end_latency_seconds_count",
            &[("vendor", "apns")]
        ),
        Some(2.0)
    );
    assert!(
        sample(
            &apns,
            "impush_end_to_end_latency_seconds_bucket",
            &[("vendor", "apns"), ("le", "+Inf")]
        ) == Some(2.0),
        "latency is a histogram with buckets: {apns}"
    );
    assert_eq!(
        sample(
            &apns,
            "impush_vendor_request_duration_seconds_count",
            &[("vendor", "apns")]
        ),
        Some(2.0)
    );

    let fcm = metrics_until(&fleet, "sender-fcm", |m| {
        sample(m, "impush_tokens_pruned_total", &[("vendor", "fcm")]) == Some(1.0)
    })
    .await;
    assert_eq!(pushes(&fcm, "fcm", "2", "delivered"), Some(1.0));
    assert_eq!(pushes(&fcm, "fcm", "2", "invalid_token"), Some(1.0));
    // Every outcome of a configured credential is there from start-up, at 0 until it happens.
    assert_eq!(pushes(&fcm, "fcm", "2", "dead_lettered"), Some(0.0));
    assert_eq!(
        sample(
            &fcm,
            "impush_vendor_responses_total",
            &[("vendor", "fcm"), ("reason", "ok")]
        ),
        Some(1.0)
    );

    // Gauges: the queue depths are polled every 10 s; in-flight is back to zero.
    let fcm = metrics_until(&fleet, "sender-fcm", |m| {
        sample(m, "impush_queue_depth_messages", &[("queue", "dlq.fcm")]).is_some()
    })
    .await;
    assert_eq!(
        sample(
            &fcm,
            "impush_queue_depth_messages",
            &[("queue", "push.fcm")]
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(&fcm, "impush_queue_depth_messages", &[("queue", "dlq.fcm")]),
        Some(0.0)
    );
    assert!(
        sample(
            &fcm,
            "impush_queue_depth_messages",
            &[("queue", "retry.fcm.200")]
        )
        .is_some(),
        "every retry step is watched: {fcm}"
    );
    assert_eq!(
        sample(&fcm, "impush_in_flight_messages", &[("queue", "push.fcm")]),
        Some(0.0)
    );
    assert_eq!(sample(&fcm, "impush_build_info", &[]), Some(1.0));
    let rss = sample(&fcm, "process_resident_memory_bytes", &[]).unwrap_or(0.0);
    assert!(rss > 1_000_000.0, "process metrics exported: {rss}");
    assert!(
        fcm.contains("# HELP impush_pushes_total"),
        "metrics carry their help text"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_names_what_is_missing_and_healthz_only_says_alive() {
    let fleet = Fleet::start(FleetOptions {
        vendors: vec![Vendor::Fcm],
        ..FleetOptions::default()
    })
    .await;
    let http = reqwest::Client::new();
    for name in ["impush-ingest", "impush-router", "sender-fcm"] {
        let port = fleet.admin_port(name);
        let ready = http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 200, "{name}");
        assert_eq!(ready.text().await.unwrap(), "ready\n");
        let alive = http
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(alive.status(), 200, "{name}");
    }
}

/// Rewrites the fleet's config file with `edit` applied to its TOML table.
fn edit_config(fleet: &Fleet, edit: impl FnOnce(&mut toml::Table)) {
    let text = std::fs::read_to_string(&fleet.config_path).unwrap();
    let mut table: toml::Table = text.parse().unwrap();
    edit(&mut table);
    std::fs::write(&fleet.config_path, toml::to_string(&table).unwrap()).unwrap();
}

fn set_fcm_channel(table: &mut toml::Table, channel: &str) {
    let credentials = table["credentials"].as_array_mut().unwrap();
    let fcm = credentials
        .iter_mut()
        .find(|c| c["vendor"].as_str() == Some("fcm"))
        .unwrap()
        .as_table_mut()
        .unwrap();
    fcm.insert(
        "default_channel_id".into(),
        toml::Value::String(channel.into()),
    );
    fcm.insert("daily_quota".into(), toml::Value::Integer(100));
}

async fn push_to_ben(fleet: &Fleet, msg_id: &str, expected: usize) -> serde_json::Value {
    fleet
        .publish(vec![Event::OfflineMessage(text_message(
            msg_id, "zoe", "ben", "hello",
        ))])
        .await;
    let deliveries = fleet.wait_deliveries(WAIT, |d| d.len() == expected).await;
    deliveries
        .iter()
        .find(|d| d["payload"].to_string().contains(msg_id))
        .cloned()
        .unwrap_or_else(|| deliveries[expected - 1].clone())
}

fn channel_of(delivery: &serde_json::Value) -> String {
    delivery["payload"]["message"]["android"]["notification"]["channel_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_and_quotas_reload_on_sighup_and_a_broken_config_is_refused_while_work_goes_on()
{
    let mut fleet = Fleet::start(FleetOptions {
        vendors: vec![Vendor::Fcm],
        ..FleetOptions::default()
    })
    .await;
    let t = now_ms() - 10_000;
    fleet
        .publish(vec![
            register("ben", "pixel", Vendor::Fcm, "fcm-ben", t),
            presence("ben", "pixel", PresenceState::Background, 0, t + 1),
        ])
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let first = push_to_ben(&fleet, "before", 1).await;
    assert_eq!(channel_of(&first), "im_messages", "{first}");

    edit_config(&fleet, |table| set_fcm_channel(table, "reloaded"));
    let pid = fleet.pid("sender-fcm");
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    metrics_until(&fleet, "sender-fcm", |m| {
        sample(m, "impush_config_reloads_total", &[("outcome", "ok")]) == Some(1.0)
    })
    .await;
    let second = push_to_ben(&fleet, "after", 2).await;
    assert_eq!(channel_of(&second), "reloaded", "{second}");
    // The reload also brought a daily quota: one push of it is used.
    metrics_until(&fleet, "sender-fcm", |m| {
        sample(
            m,
            "impush_quota_remaining",
            &[("vendor", "fcm"), ("business_id", "2")],
        ) == Some(99.0)
    })
    .await;

    // A broken file is refused; the running credentials stay and pushes go on.
    std::fs::write(&fleet.config_path, "[[credentials]\nbroken").unwrap();
    metrics_until(&fleet, "sender-fcm", |m| {
        sample(m, "impush_config_reloads_total", &[("outcome", "error")]) == Some(1.0)
    })
    .await;
    let third = push_to_ben(&fleet, "broken", 3).await;
    assert_eq!(channel_of(&third), "reloaded", "{third}");
    metrics_until(&fleet, "sender-fcm", |m| {
        sample(
            m,
            "impush_quota_remaining",
            &[("vendor", "fcm"), ("business_id", "2")],
        ) == Some(98.0)
    })
    .await;
    assert!(
        fleet.terminate("sender-fcm").success(),
        "still a clean exit after reloads"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_metric_log_line_or_config_show_output_contains_a_secret_or_a_full_token() {
    let fleet = Fleet::start(FleetOptions {
        vendors: vec![Vendor::Apns, Vendor::Fcm, Vendor::Huawei, Vendor::Xiaomi],
        capture_logs: Some("debug,h2=info,hyper=info,lapin=info,reqwest=info,rustls=info"),
        ..FleetOptions::default()
    })
    .await;
    let t = now_ms() - 10_000;
    let apns = apns_token(7);
    let tokens = [
        apns.clone(),
        "fcm-secretive-device-token-0123456789".to_owned(),
        "invalid-fcm-token-abcdefghijklmnop".to_owned(),
        "huawei-device-token-0123456789abcdef".to_owned(),
        "xiaomi-device-token-0123456789abcdef".to_owned(),
    ];
    let vendors = [
        Vendor::Apns,
        Vendor::Fcm,
        Vendor::Fcm,
        Vendor::Huawei,
        Vendor::Xiaomi,
    ];
    let mut events = Vec::new();
    for (i, (token, vendor)) in tokens.iter().zip(vendors).enumerate() {
        let user = format!("u{i}");
        events.push(register(&user, "d", vendor, token, t));
        events.push(presence(&user, "d", PresenceState::Background, 0, t + 1));
    }
    fleet.publish(events).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let messages = (0..tokens.len())
        .map(|i| {
            Event::OfflineMessage(text_message(
                &format!("m{i}"),
                "zoe",
                &format!("u{i}"),
                "hi",
            ))
        })
        .collect();
    fleet.publish(messages).await;
    fleet
        .wait_deliveries(WAIT, |d| d.len() == tokens.len() - 1)
        .await;
    metrics_until(&fleet, "sender-fcm", |m| {
        sample(m, "impush_tokens_pruned_total", &[("vendor", "fcm")]) == Some(1.0)
    })
    .await;

    // Every secret the config points at, and a distinctive piece of each (a PEM body line).
    let mut secrets = Vec::new();
    for file in fleet.config.secret_files() {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let text = text.trim();
        if text.starts_with("-----BEGIN") {
            secrets.extend(
                text.lines()
                    .filter(|l| !l.starts_with("-----") && l.len() > 20)
                    .map(str::to_owned),
            );
        } else if let Ok(json) = serde_json::from_str::<serde_json::Value>(text) {
            if let Some(key) = json["private_key"].as_str() {
                secrets.extend(
                    key.lines()
                        .filter(|l| !l.starts_with("-----") && l.len() > 20)
                        .map(str::to_owned),
                );
            }
        } else if !text.is_empty() {
            secrets.push(text.to_owned());
        }
    }
    assert!(
        secrets.len() >= 4,
        "the fleet's config has secrets: {secrets:?}"
    );

    let shown = std::process::Command::new(fleet::binary("impush"))
        .args(["config", "show", "--config"])
        .arg(&fleet.config_path)
        .env(
            "IMPUSH__AMQP__URL",
            "amqp://guest:hunter2-amqp@127.0.0.1:5672/%2f",
        )
        .output()
        .expect("impush config show runs");
    let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(
        shown.contains("[amqp]"),
        "config show printed the config: {shown}"
    );
    assert!(!shown.contains("hunter2-amqp"), "{shown}");

    let mut outputs = vec![("impush config show".to_owned(), shown)];
    for name in [
        "impush-ingest",
        "impush-router",
        "sender-apns",
        "sender-fcm",
        "sender-huawei",
        "sender-xiaomi",
    ] {
        outputs.push((format!("{name} /metrics"), fleet.metrics(name).await));
        outputs.push((format!("{name} log"), fleet.logs(name)));
    }
    let debug_logs: usize = outputs
        .iter()
        .filter(|(what, _)| what.ends_with(" log"))
        .map(|(_, text)| text.lines().count())
        .sum();
    assert!(
        debug_logs > 20,
        "the workers logged at debug level: {debug_logs} lines"
    );
    for (what, text) in &outputs {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "{what} contains a secret");
        }
        for token in &tokens {
            assert!(
                !text.contains(token.as_str()),
                "{what} contains the full token {token}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_lines_about_a_push_carry_msg_id_vendor_business_id_and_a_short_token() {
    let mut fleet = Fleet::start(FleetOptions {
        vendors: vec![Vendor::Fcm],
        capture_logs: Some("info"),
        ..FleetOptions::default()
    })
    .await;
    edit_config(&fleet, |table| {
        let mut log = toml::Table::new();
        log.insert("format".into(), toml::Value::String("json".into()));
        table.insert("log".into(), toml::Value::Table(log));
    });
    assert!(fleet.terminate("sender-fcm").success());
    fleet.spawn_named("sender-fcm", "impush-sender", &["--vendor", "fcm"]);
    fleet.wait_ready("sender-fcm").await;

    let t = now_ms() - 10_000;
    let dead = "invalid-json-log-token-0123456789";
    fleet
        .publish(vec![
            register("eve", "pixel", Vendor::Fcm, dead, t),
            presence("eve", "pixel", PresenceState::Background, 0, t + 1),
        ])
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    fleet
        .publish(vec![Event::OfflineMessage(text_message(
            "m-json", "zoe", "eve", "hello",
        ))])
        .await;
    metrics_until(&fleet, "sender-fcm", |m| {
        sample(m, "impush_tokens_pruned_total", &[("vendor", "fcm")]) == Some(1.0)
    })
    .await;

    let logs = fleet.logs("sender-fcm");
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    assert!(
        !lines.is_empty(),
        "the restarted sender logs JSON lines: {logs}"
    );
    let about_the_push: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|line| line["fields"]["message"].as_str() == Some("token invalid"))
        .collect();
    assert_eq!(about_the_push.len(), 1, "{logs}");
    let line = about_the_push[0];
    let span = &line["span"];
    assert_eq!(span["msg_id"], "m-json", "{line}");
    assert_eq!(span["vendor"], "fcm", "{line}");
    assert_eq!(span["business_id"], 2, "{line}");
    assert_eq!(line["fields"]["token"], &dead[..8], "{line}");
    assert!(!logs.contains(dead), "the full token is never logged");
}
