//! `rate_per_s` is the fleet's: two sender processes of one vendor, against the real Redis,
//! together send no faster than the credential's rate, and both report the fleet's count of
//! today's pushes in `impush_quota_remaining`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fleet;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fleet::{
    Fleet, FleetOptions, binary, free_port, now_ms, presence, register, text_message, workspace_dir,
};
use impush_proto::Event;
use impush_proto::v1::{PresenceState, Vendor};

const RATE_PER_S: u64 = 5;
const NOTIFICATIONS: u64 = 30;
const DAILY_QUOTA: u64 = 1_000;

/// A sender started by the test on its own config; killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics
        .lines()
        .filter(|line| line.starts_with(name) && !line.starts_with('#'))
        .find(|line| {
            labels
                .iter()
                .all(|(k, v)| line.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

async fn scrape(fleet: &Fleet, port: u16) -> String {
    match fleet
        .http()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
    {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_senders_together_stay_within_the_credentials_rate() {
    // One job a broker message, so that the two senders share the work.
    let fleet = Fleet::start(FleetOptions {
        vendors: Vec::new(),
        settings: vec![("router", "bundle_max_jobs", toml::Value::Integer(1))],
        ..FleetOptions::default()
    })
    .await;
    let mut table: toml::Table = std::fs::read_to_string(&fleet.config_path)
        .unwrap()
        .parse()
        .unwrap();
    for credential in table["credentials"].as_array_mut().unwrap() {
        let credential = credential.as_table_mut().unwrap();
        if credential["business_id"].as_integer() == Some(2) {
            credential.insert("rate_per_s".into(), toml::Value::Integer(RATE_PER_S as i64));
            credential.insert(
                "daily_quota".into(),
                toml::Value::Integer(DAILY_QUOTA as i64),
            );
        }
    }
    let config = fleet.config_path.with_file_name("impush-rate.toml");
    std::fs::write(&config, toml::to_string(&table).unwrap()).unwrap();
    let mut senders = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..2 {
        let port = free_port();
        senders.push(Process(
            Command::new(binary("impush-sender"))
                .args(["--vendor", "fcm", "--config"])
                .arg(&config)
                .arg("--metrics-addr")
                .arg(format!("127.0.0.1:{port}"))
                .current_dir(workspace_dir())
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .spawn()
                .expect("impush-sender starts"),
        ));
        ports.push(port);
    }
    for port in &ports {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !scrape(&fleet, *port).await.contains("impush_build_info") {
            assert!(
                Instant::now() < deadline,
                "the sender on {port} never came up"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    let t = now_ms() - 10_000;
    let mut state = Vec::new();
    for i in 0..NOTIFICATIONS {
        let user = format!("u{i}");
        state.push(register(
            &user,
            "pixel",
            Vendor::Fcm,
            &format!("fcm-rate-{i}"),
            t,
        ));
        state.push(presence(
            &user,
            "pixel",
            PresenceState::Background,
            0,
            t + 1,
        ));
    }
    fleet.publish(state).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Nothing can be granted before the messages exist.
    let published_ms = now_ms();
    let messages = (0..NOTIFICATIONS)
        .map(|i| {
            let mut message = text_message(&format!("rate-{i}"), "zoe", &format!("u{i}"), "hi");
            message.send_time_ms = now_ms();
            Event::OfflineMessage(message)
        })
        .collect();
    fleet.publish(messages).await;

    let deliveries = fleet
        .wait_deliveries(Duration::from_secs(60), |d| d.len() as u64 == NOTIFICATIONS)
        .await;
    let last_ms = deliveries
        .iter()
        .map(|d| d["received_at_ms"].as_i64().unwrap())
        .max()
        .unwrap();
    // The burst (one second's worth) passes at once, the rest at the rate, whoever sends:
    // the last token is granted at least (30 − 5) / 5 = 5 s after the first, which came
    // after the publish. Two processes with a rate each would be done in half that. (A
    // lower bound: a slow machine only adds to it.)
    let at_least_ms = ((NOTIFICATIONS - RATE_PER_S) * 1000 / RATE_PER_S) as i64;
    let took_ms = last_ms - published_ms;
    assert!(
        took_ms >= at_least_ms,
        "{NOTIFICATIONS} pushes within {took_ms} ms of their publish: faster than \
         {RATE_PER_S}/s for the fleet"
    );

    // Both processes sent, and the quota left is the fleet's: the sender that counted last
    // knows the total of both (the other learns it with its own next count).
    let expected_remaining = (DAILY_QUOTA - NOTIFICATIONS) as f64;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut reported = Vec::new();
        for port in &ports {
            let metrics = scrape(&fleet, *port).await;
            let delivered = sample(
                &metrics,
                "impush_pushes_total",
                &[("business_id", "2"), ("outcome", "delivered")],
            );
            assert!(
                delivered.is_some_and(|n| n > 0.0 && n < NOTIFICATIONS as f64),
                "each sender took a share of the work: {delivered:?}"
            );
            reported.push(sample(
                &metrics,
                "impush_quota_remaining",
                &[("business_id", "2")],
            ));
        }
        let lowest = reported
            .iter()
            .flatten()
            .cloned()
            .fold(f64::INFINITY, f64::min);
        if lowest == expected_remaining {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "quota left {reported:?}: not the fleet's {expected_remaining}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
