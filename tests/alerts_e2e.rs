//! The alert rules and the dashboard against what a running fleet really exposes: every
//! worker of a fleet is scraped, every metric name an alert or a dashboard panel queries
//! must be among the series, and every alert's expression is evaluated by promtool on those
//! series. The fleet runs without most sender pools, as after losing them: the router,
//! which always runs, must report their queues with no consumers, so that
//! `ImpushQueueNoConsumers` fires for exactly those queues.
//!
//! Needs promtool on the PATH (`scripts/check-deploy.sh` installs it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fleet;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fleet::{
    Fleet, FleetOptions, apns_token, binary, free_port, now_ms, presence, register, text_message,
    workspace_dir,
};
use impush_proto::Event;
use impush_proto::v1::{PresenceState, Vendor};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

/// Metrics that exist only under a configuration the test fleet does not have.
const CONDITIONAL: [(&str, &str); 1] = [(
    "impush_credential_expiry_timestamp_seconds",
    "reported for APNs p12 certificates only; the local stack signs with a p8 key",
)];

/// One scraped series: metric name, labels as written (`a="b",c="d"`), value.
#[derive(Debug, Clone)]
struct Series {
    name: String,
    labels: String,
    value: f64,
}

fn parse_exposition(text: &str) -> Vec<Series> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (name, labels, value) = match line.find('{') {
            Some(open) => {
                let close = line.rfind('}').expect("a closing brace");
                (
                    &line[..open],
                    &line[open + 1..close],
                    line[close + 1..].trim(),
                )
            }
            None => {
                let (name, value) = line.split_once(' ').expect("name and value");
                (name, "", value.trim())
            }
        };
        let value: f64 = value
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("a value in {line:?}"));
        if value.is_finite() {
            out.push(Series {
                name: name.to_owned(),
                labels: labels.to_owned(),
                value,
            });
        }
    }
    out
}

/// Whether a metric `name` with its labels holds `value`.
fn has(series: &[Series], name: &str, labels: &[(&str, &str)], value: f64) -> bool {
    series.iter().any(|s| {
        s.name == name
            && labels
                .iter()
                .all(|(k, v)| s.labels.contains(&format!("{k}=\"{v}\"")))
            && s.value == value
    })
}

/// The metric names (`impush_…`, `process_…`) a PromQL text refers to, histogram series
/// suffixes kept (they are series names too).
fn queried_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for prefix in ["impush_", "process_"] {
        for (start, _) in text.match_indices(prefix) {
            let glued = text[..start]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '.');
            if glued {
                continue;
            }
            let name: String = text[start..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            names.insert(name);
        }
    }
    names
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(workspace_dir().join(relative)).expect(relative)
}

/// The dashboard's queries, one text.
fn dashboard_queries() -> String {
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/impush-dashboard.json")).unwrap();
    let mut exprs = Vec::new();
    fn walk(panels: &serde_json::Value, exprs: &mut Vec<String>) {
        for panel in panels.as_array().into_iter().flatten() {
            walk(&panel["panels"], exprs);
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    exprs.push(expr.to_owned());
                }
            }
        }
    }
    walk(&dashboard["panels"], &mut exprs);
    exprs.join("\n")
}

/// `(alert name, expression)` of every rule of alerts.yml.
fn alert_rules() -> Vec<(String, String)> {
    let docs =
        yaml_rust2::YamlLoader::load_from_str(&read("deploy/prometheus/alerts.yml")).unwrap();
    let mut rules = Vec::new();
    for group in docs[0]["groups"].as_vec().unwrap() {
        for rule in group["rules"].as_vec().unwrap() {
            if let (Some(alert), Some(expr)) = (rule["alert"].as_str(), rule["expr"].as_str()) {
                rules.push((alert.to_owned(), expr.to_owned()));
            }
        }
    }
    rules
}

/// A sender started by the test on its own config; killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `/metrics` of the worker on `port`, `None` while it does not answer yet.
async fn try_scrape(fleet: &Fleet, port: u16) -> Option<String> {
    let response = fleet
        .http()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .ok()?;
    response.text().await.ok()
}

async fn scrape(fleet: &Fleet, port: u16) -> String {
    try_scrape(fleet, port).await.expect("metrics")
}

/// Scrapes until `check` holds on the parsed series, or fails with the last scrape.
async fn scrape_until(
    fleet: &Fleet,
    port: u16,
    what: &str,
    check: impl Fn(&[Series]) -> bool,
) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = try_scrape(fleet, port).await.unwrap_or_default();
        if check(&parse_exposition(&text)) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{what} never held; last scrape:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_alert_expression_evaluates_on_the_series_a_running_fleet_exposes() {
    let promtool = Command::new("promtool").arg("--version").output();
    assert!(
        promtool.is_ok_and(|o| o.status.success()),
        "promtool is not installed: run scripts/check-deploy.sh, which installs it"
    );
    // The fleet without sender pools; one APNs sender of our own, with a daily quota so
    // that impush_quota_remaining is reported.
    let fleet = Fleet::start(FleetOptions {
        vendors: Vec::new(),
        ..FleetOptions::default()
    })
    .await;
    let mut table: toml::Table = std::fs::read_to_string(&fleet.config_path)
        .unwrap()
        .parse()
        .unwrap();
    for credential in table["credentials"].as_array_mut().unwrap() {
        let credential = credential.as_table_mut().unwrap();
        if credential["business_id"].as_integer() == Some(1) {
            credential.insert("daily_quota".into(), toml::Value::Integer(100_000));
        }
    }
    let sender_config = fleet.config_path.with_file_name("impush-sender-apns.toml");
    std::fs::write(&sender_config, toml::to_string(&table).unwrap()).unwrap();
    let sender_port = free_port();
    let _sender = Process(
        Command::new(binary("impush-sender"))
            .args(["--vendor", "apns", "--config"])
            .arg(&sender_config)
            .arg("--metrics-addr")
            .arg(format!("127.0.0.1:{sender_port}"))
            .current_dir(workspace_dir())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .expect("impush-sender starts"),
    );
    let ingest_port = fleet.admin_port("impush-ingest");
    let router_port = fleet.admin_port("impush-router");

    // A fresh sender shows its counters at zero before any push.
    let fresh = parse_exposition(
        &scrape_until(&fleet, sender_port, "the sender's counters", |s| {
            has(
                s,
                "impush_pushes_total",
                &[("business_id", "1"), ("outcome", "rejected")],
                0.0,
            )
        })
        .await,
    );
    for outcome in impush_runtime::catalog::PUSH_OUTCOMES {
        assert!(
            has(
                &fresh,
                "impush_pushes_total",
                &[
                    ("vendor", "apns"),
                    ("business_id", "1"),
                    ("outcome", outcome)
                ],
                0.0
            ),
            "impush_pushes_total{{outcome=\"{outcome}\"}} is not at 0 from start-up"
        );
    }
    assert!(has(
        &fresh,
        "impush_config_reloads_total",
        &[("outcome", "error")],
        0.0
    ));

    let t = now_ms() - 10_000;
    fleet
        .publish(vec![
            register("ana", "iphone", Vendor::Apns, &apns_token(1), t),
            presence("ana", "iphone", PresenceState::Background, 0, t + 1),
            register("ben", "pixel", Vendor::Fcm, "fcm-ben", t),
            presence("ben", "pixel", PresenceState::Background, 0, t + 1),
        ])
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut messages = Vec::new();
    for (i, to) in ["ana", "ben"].iter().enumerate() {
        let mut message = text_message(&format!("alerts-{i}"), "zoe", to, "hello");
        message.send_time_ms = now_ms();
        messages.push(Event::OfflineMessage(message));
    }
    fleet.publish(messages).await;
    fleet.wait_deliveries(WAIT, |d| d.len() == 1).await;

    // The router reports the FCM queue: one job waiting, nobody consuming it.
    let router = scrape_until(
        &fleet,
        router_port,
        "push.fcm reported by the router",
        |s| {
            has(s, "impush_queue_consumers", &[("queue", "push.fcm")], 0.0)
                && has(
                    s,
                    "impush_queue_depth_messages",
                    &[("queue", "push.fcm")],
                    1.0,
                )
                && has(s, "impush_queue_consumers", &[("queue", "push.apns")], 1.0)
        },
    )
    .await;
    let sender = scrape_until(&fleet, sender_port, "the delivery counted", |s| {
        has(s, "impush_pushes_total", &[("outcome", "delivered")], 1.0)
    })
    .await;
    let ingest = scrape(&fleet, ingest_port).await;

    let mut series: Vec<(String, Series)> = Vec::new();
    for (instance, text) in [
        ("ingest", &ingest),
        ("router", &router),
        ("sender-apns", &sender),
    ] {
        for s in parse_exposition(text) {
            series.push((instance.to_owned(), s));
        }
        series.push((
            instance.to_owned(),
            Series {
                name: "up".into(),
                labels: String::new(),
                value: 1.0,
            },
        ));
    }

    // process_cpu_seconds_total in fractions of a second: a gauge, not an integer counter.
    assert!(
        sender.contains("# TYPE process_cpu_seconds_total gauge"),
        "process_cpu_seconds_total is not exported with sub-second resolution"
    );

    // 1. Every metric the alerts and the dashboard query is exposed by some worker.
    let exposed: BTreeSet<&str> = series.iter().map(|(_, s)| s.name.as_str()).collect();
    let mut missing = BTreeMap::new();
    for (file, text) in [
        (
            "deploy/prometheus/alerts.yml",
            read("deploy/prometheus/alerts.yml"),
        ),
        ("deploy/grafana/impush-dashboard.json", dashboard_queries()),
    ] {
        for name in queried_names(&text) {
            let conditional = CONDITIONAL.iter().any(|(n, _)| *n == name);
            if !exposed.contains(name.as_str()) && !conditional {
                missing.entry(name).or_insert_with(Vec::new).push(file);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "queried but exposed by no worker of a running fleet: {missing:#?}"
    );

    // 2. Every alert's expression on those series, held for half an hour, by promtool.
    let input_series: Vec<serde_json::Value> = series
        .iter()
        .map(|(instance, s)| {
            let mut labels = format!("job=\"impush/impush-workers\",instance=\"{instance}\"");
            if !s.labels.is_empty() {
                labels = format!("{labels},{}", s.labels);
            }
            json!({"series": format!("{}{{{labels}}}", s.name), "values": format!("{}x30", s.value)})
        })
        .collect();
    // With no sender pool, a vendor's queue has no consumer; APNs has ours.
    let unconsumed: Vec<serde_json::Value> = impush_core::vendor::ALL
        .into_iter()
        .filter(|v| *v != Vendor::Apns)
        .map(|v| json!({"labels": format!("{{queue=\"push.{}\"}}", impush_core::vendor::name(v)), "value": 0}))
        .collect();
    let rules = alert_rules();
    assert!(rules.len() >= 10, "{rules:?}");
    let expr_tests: Vec<serde_json::Value> = rules
        .iter()
        .map(|(alert, expr)| {
            let expected = if alert == "ImpushQueueNoConsumers" {
                unconsumed.clone()
            } else {
                Vec::new()
            };
            json!({"expr": expr, "eval_time": "20m", "exp_samples": expected})
        })
        .collect();
    let test_file = json!({
        "rule_files": [workspace_dir().join("deploy/prometheus/alerts.yml")],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": input_series,
            "promql_expr_test": expr_tests,
        }],
    });
    let path = fleet
        .config_path
        .with_file_name("alerts-on-fleet-series.yml");
    std::fs::write(&path, serde_json::to_string_pretty(&test_file).unwrap()).unwrap();
    let output = Command::new("promtool")
        .args(["test", "rules"])
        .arg(&path)
        .output()
        .expect("promtool runs");
    assert!(
        output.status.success(),
        "promtool on the fleet's series:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
