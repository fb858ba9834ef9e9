//! Vendor delivery receipts end to end on the real RabbitMQ and Redis: the sender asks
//! Huawei and Xiaomi for receipts, the simulators deliver and then post their receipts
//! (Huawei signed) to impush-receipts, which publishes `feedback.push` outcomes (arrived,
//! clicked), counts them, and prunes the token a receipt reports dead, telling IM core on
//! `feedback.token`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fleet;

use std::collections::BTreeSet;
use std::time::Duration;

use fleet::{APP, Fleet, FleetOptions, free_port, now_ms, presence, register, text_message};
use impush_proto::Event;
use impush_proto::v1::{PresenceState, PushOutcomeKind, PushOutcomes, TokenInvalidated, Vendor};
use prost::Message;

const WAIT: Duration = Duration::from_secs(30);
const XIAOMI_TOKEN: &str = "ZBfL1d4rX6y/RW+xiaomi=";
const HUAWEI_TOKEN: &str = "huawei-vinson";
/// Accepted by the simulator, then reported dead by its receipt.
const GONE_TOKEN: &str = "gone-huawei-mia";

/// A queue of the test's own bound to `routing_key` on `impush.events`.
async fn bind(fleet: &Fleet, routing_key: &str) -> String {
    let channel = fleet.connection().create_channel().await.unwrap();
    let queue = format!("{}.test.{routing_key}", fleet.prefix);
    channel
        .queue_declare(
            queue.as_str().into(),
            Default::default(),
            Default::default(),
        )
        .await
        .unwrap();
    channel
        .queue_bind(
            queue.as_str().into(),
            fleet.topology.events_exchange().as_str().into(),
            routing_key.into(),
            Default::default(),
            Default::default(),
        )
        .await
        .unwrap();
    queue
}

fn secret_file(dir: &std::path::Path, name: &str, value: &str) -> toml::Value {
    let path = dir.join(name);
    std::fs::write(&path, value).unwrap();
    let mut table = toml::Table::new();
    table.insert(
        "file".into(),
        toml::Value::String(path.display().to_string()),
    );
    toml::Value::Table(table)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_receipt_becomes_an_arrived_outcome_and_a_dead_token_receipt_prunes_the_device() {
    let port = free_port();
    let receipts = format!("http://127.0.0.1:{port}/receipts");
    let secrets = std::env::temp_dir().join(format!("impush-receipts-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&secrets).unwrap();
    let xiaomi_token_file = secret_file(&secrets, "xiaomi-token", "xiaomi-receipt-token");
    let huawei_token_file = secret_file(&secrets, "huawei-token", "huawei-receipt-token");
    let huawei_key_file = secret_file(&secrets, "huawei-key", "huawei-callback-key");
    let listen = format!("127.0.0.1:{port}");
    let receipts_url = receipts.clone();
    let edit = move |table: &mut toml::Table| {
        use toml::Value as V;
        let credentials = table["credentials"].as_array_mut().unwrap();
        for credential in credentials {
            let credential = credential.as_table_mut().unwrap();
            let mut receipt = toml::Table::new();
            match credential["business_id"].as_integer() {
                Some(3) => {
                    credential.insert("receipt_id".into(), V::String("RCP-3".into()));
                    receipt.insert("callback_user".into(), V::String("impush".into()));
                    receipt.insert("callback_key".into(), huawei_key_file.clone());
                    receipt.insert("token".into(), huawei_token_file.clone());
                }
                Some(4) => {
                    credential.insert(
                        "receipt_url".into(),
                        V::String(format!(
                            "{receipts_url}/xiaomi/4?token=xiaomi-receipt-token"
                        )),
                    );
                    receipt.insert("token".into(), xiaomi_token_file.clone());
                }
                _ => continue,
            }
            credential.insert("receipt".into(), V::Table(receipt));
        }
        let sim = table["sim"].as_table_mut().unwrap();
        let mut xiaomi = toml::Table::new();
        xiaomi.insert("vendor".into(), V::String("xiaomi".into()));
        xiaomi.insert("clicked".into(), V::Boolean(true));
        let mut huawei = toml::Table::new();
        huawei.insert("vendor".into(), V::String("huawei".into()));
        huawei.insert(
            "url".into(),
            V::String(format!(
                "{receipts_url}/huawei/3?token=huawei-receipt-token"
            )),
        );
        huawei.insert("callback_user".into(), V::String("impush".into()));
        huawei.insert(
            "callback_key".into(),
            V::String("huawei-callback-key".into()),
        );
        sim.insert(
            "receipts".into(),
            V::Array(vec![V::Table(xiaomi), V::Table(huawei)]),
        );
        let mut feedback = toml::Table::new();
        feedback.insert(
            "push_outcomes".into(),
            V::Array(vec![V::Integer(APP.into())]),
        );
        feedback.insert("flush_interval_ms".into(), V::Integer(50));
        table.insert("feedback".into(), V::Table(feedback));
        let mut section = toml::Table::new();
        section.insert("listen".into(), V::String(listen.clone()));
        table.insert("receipts".into(), V::Table(section));
    };
    let mut fleet = Fleet::start(FleetOptions {
        vendors: vec![Vendor::Huawei, Vendor::Xiaomi],
        edit_config: Some(Box::new(edit)),
        ..FleetOptions::default()
    })
    .await;
    fleet.spawn_named("impush-receipts", "impush-receipts", &[]);
    fleet.wait_ready("impush-receipts").await;
    let outcomes_queue = bind(&fleet, "feedback.push").await;
    let tokens_queue = bind(&fleet, "feedback.token").await;

    let t = now_ms() - 10_000;
    fleet
        .publish(vec![
            register("vinson", "mi", Vendor::Xiaomi, XIAOMI_TOKEN, t),
            presence("vinson", "mi", PresenceState::Background, 0, t + 1),
            register("vinson", "mate", Vendor::Huawei, HUAWEI_TOKEN, t),
            presence("vinson", "mate", PresenceState::Background, 0, t + 1),
            // In the foreground: skipped by the router, which says so too.
            register("vinson", "pad", Vendor::Huawei, "huawei-vinson-pad", t),
            presence("vinson", "pad", PresenceState::Foreground, 0, t + 1),
            register("mia", "mate", Vendor::Huawei, GONE_TOKEN, t),
            presence("mia", "mate", PresenceState::Background, 0, t + 1),
        ])
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    fleet
        .publish(vec![
            Event::OfflineMessage(text_message("m-rcpt-1", "denny", "vinson", "hi")),
            Event::OfflineMessage(text_message("m-rcpt-2", "denny", "mia", "hi")),
        ])
        .await;

    // Every outcome of both messages, as IM core's queue sees them.
    let expected: BTreeSet<(String, String, i32)> = [
        ("m-rcpt-1", "mi", PushOutcomeKind::Delivered),
        ("m-rcpt-1", "mate", PushOutcomeKind::Delivered),
        ("m-rcpt-2", "mate", PushOutcomeKind::Delivered),
        ("m-rcpt-1", "mi", PushOutcomeKind::Arrived),
        ("m-rcpt-1", "mi", PushOutcomeKind::Clicked),
        ("m-rcpt-1", "mate", PushOutcomeKind::Arrived),
        ("m-rcpt-2", "mate", PushOutcomeKind::InvalidToken),
        ("m-rcpt-1", "pad", PushOutcomeKind::Skipped),
    ]
    .into_iter()
    .map(|(m, d, k)| (m.to_owned(), d.to_owned(), k as i32))
    .collect();
    let mut seen = BTreeSet::new();
    let mut batches = 0;
    let deadline = std::time::Instant::now() + WAIT;
    while !expected.is_subset(&seen) {
        for delivery in fleet.drain(&outcomes_queue).await {
            assert_eq!(
                delivery.properties.kind().as_ref().map(|t| t.as_str()),
                Some("PushOutcomes")
            );
            batches += 1;
            for outcome in PushOutcomes::decode(delivery.data.as_slice())
                .unwrap()
                .outcomes
            {
                assert_eq!(outcome.sdk_app_id, APP);
                if outcome.outcome == PushOutcomeKind::Skipped as i32 {
                    assert_eq!(outcome.reason, "foreground");
                    assert_eq!(outcome.vendor, Vendor::Huawei as i32);
                }
                if outcome.outcome == PushOutcomeKind::InvalidToken as i32 {
                    assert_eq!(outcome.reason, "2", "Huawei's receipt status");
                }
                seen.insert((outcome.msg_id, outcome.device_id, outcome.outcome));
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "outcomes missing: {:?}",
            expected.difference(&seen).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(batches >= 1);

    // The dead token was pruned, and IM core told, as the sender does.
    let deadline = std::time::Instant::now() + WAIT;
    let invalidated = loop {
        let got = fleet.drain(&tokens_queue).await;
        if let Some(first) = got.first() {
            break TokenInvalidated::decode(first.data.as_slice()).unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no feedback.token event"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(invalidated.token, GONE_TOKEN);
    assert_eq!(invalidated.user_id, "mia");
    assert_eq!(invalidated.device_id, "mate");
    assert_eq!(invalidated.vendor, Vendor::Huawei as i32);
    assert_eq!(invalidated.business_id, 3);
    assert_eq!(invalidated.reason, "2");
    let redis = redis::Client::open(fleet.redis_url.as_str()).unwrap();
    let mut con = redis.get_multiplexed_async_connection().await.unwrap();
    let devices: Vec<String> = redis::cmd("SMEMBERS")
        .arg(format!("{}:{{{APP}:mia}}:devs", fleet.prefix))
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(devices.is_empty(), "mia's dead device is gone: {devices:?}");
    let devices: Vec<String> = redis::cmd("SMEMBERS")
        .arg(format!("{}:{{{APP}:vinson}}:devs", fleet.prefix))
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(devices.len(), 3, "vinson's devices stay: {devices:?}");

    // A receipt without Huawei's signature is refused and counted.
    let refused = fleet
        .http()
        .post(format!("{receipts}/huawei/3?token=huawei-receipt-token"))
        .header("content-type", "application/json")
        .body(r#"{"statuses":[{"token":"huawei-vinson","biTag":"1:x","status":0}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let wrong_token = fleet
        .http()
        .post(format!("{receipts}/xiaomi/4?token=guess"))
        .body("data=%7B%7D")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_token.status(), 401);

    let metrics = fleet.metrics("impush-receipts").await;
    for series in [
        r#"impush_receipts_total{vendor="xiaomi",status="arrived"} 1"#,
        r#"impush_receipts_total{vendor="xiaomi",status="clicked"} 1"#,
        r#"impush_receipts_total{vendor="huawei",status="arrived"} 1"#,
        r#"impush_receipts_total{vendor="huawei",status="token_invalid"} 1"#,
        r#"impush_receipts_total{vendor="huawei",status="rejected_signature"} 1"#,
        r#"impush_receipts_total{vendor="xiaomi",status="rejected_signature"} 1"#,
        r#"impush_tokens_pruned_total{vendor="huawei"} 1"#,
    ] {
        assert!(metrics.contains(series), "{series} in\n{metrics}");
    }
    let _ = std::fs::remove_dir_all(&secrets);
    fleet.terminate("impush-receipts");
}
