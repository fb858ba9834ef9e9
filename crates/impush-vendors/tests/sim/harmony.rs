//! HarmonyOS NEXT Push Kit: the service-account JWT checked by the simulator, batch answers
//! split per token, JWT expiry, flow control.

use std::time::Duration;

use impush_core::Vendor;
use impush_vendors::{Outcome, SendResult};

use crate::common::*;

const HARMONY: u64 = 10;

/// The local stack with the HarmonyOS credential sending to the simulator.
async fn stack() -> Stack {
    Stack::start_oem(HARMONY, "harmony", |_| {}, |_| {}).await
}

/// A token of the shape Push Kit gives HarmonyOS NEXT apps.
fn device(n: usize) -> String {
    format!("MAMzLgEAAA{n:05}ZBx/r4Gt8fI+{}", "q".repeat(80))
}

#[tokio::test]
async fn harmony_push_is_delivered_once_with_title_body_ext_and_push_type() {
    let stack = stack().await;
    let clients = stack.clients(Vendor::Harmony);
    let token = device(1);
    let result = stack.send(&clients, HARMONY, &token).await;
    assert_eq!(
        result,
        SendResult {
            status: 200,
            outcomes: vec![Outcome::Delivered]
        }
    );
    let deliveries = stack.sim.deliveries(Some("harmony"));
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].token, token);
    assert_eq!(deliveries[0].title.as_deref(), Some("Team chat"));
    assert_eq!(deliveries[0].body.as_deref(), Some("Denny: see you at 5"));
    assert_eq!(
        deliveries[0].ext.as_deref(),
        Some(r#"{"chat":"c2c:denny"}"#)
    );
    assert_eq!(deliveries[0].headers["push-type"], "0");
}

#[tokio::test]
async fn harmony_invalid_tokens_alone_or_in_a_batch_are_invalid() {
    let stack = stack().await;
    let clients = stack.clients(Vendor::Harmony);
    let alone = stack.send(&clients, HARMONY, "invalid-0001").await;
    assert_eq!(
        alone.outcomes,
        vec![Outcome::InvalidToken {
            reason: "80300007".into()
        }]
    );
    let tokens = [device(1), "invalid-0002".to_owned(), device(3)];
    let result = stack.send_many(&clients, HARMONY, &tokens).await;
    let illegal = Outcome::InvalidToken {
        reason: "80100000 illegal_token".into(),
    };
    assert_eq!(
        result.outcomes,
        vec![Outcome::Delivered, illegal, Outcome::Delivered]
    );
    assert_eq!(stack.sim.deliveries(Some("harmony")).len(), 2);
}

#[tokio::test]
async fn harmony_expired_jwt_is_replaced_and_the_push_delivered_once() {
    let stack = stack().await;
    let clients = stack.clients(Vendor::Harmony);
    let first = stack.send(&clients, HARMONY, &device(1)).await;
    assert_eq!(first.outcomes, vec![Outcome::Delivered]);
    stack.sim.expire_auth();
    let token = device(2);
    let result = stack.send(&clients, HARMONY, &token).await;
    assert_eq!(result.outcomes, vec![Outcome::Delivered]);
    assert_eq!(stack.deliveries_to("harmony", &token), 1);
}

#[tokio::test]
async fn harmony_flow_control_is_retried_after_retry_after() {
    let stack = stack().await;
    let clients = stack.clients(Vendor::Harmony);
    let token = device(4);
    stack.fault(impush_sim::Fault {
        status: Some(503),
        reason: Some("81000001".into()),
        retry_after_s: Some(20),
        ..fault("harmony", &token)
    });
    let result = stack.send(&clients, HARMONY, &token).await;
    assert_eq!(result.status, 503);
    assert_eq!(
        result.outcomes,
        vec![Outcome::Retry {
            after: Some(Duration::from_secs(20)),
            reason: "81000001".into()
        }]
    );
    let again = stack.send(&clients, HARMONY, &token).await;
    assert_eq!(again.outcomes, vec![Outcome::Delivered]);
}

#[tokio::test]
async fn harmony_a_jwt_the_simulator_cannot_verify_is_rejected_after_one_new_jwt() {
    // The simulator trusts another public key under the account's key id.
    let other_key = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/local/keys/fcm-test-service-account.pub.pem"),
    )
    .unwrap();
    let stack = Stack::start_oem(
        HARMONY,
        "harmony",
        |sim| sim.harmony_accounts[0].public_pem = other_key,
        |_| {},
    )
    .await;
    let clients = stack.clients(Vendor::Harmony);
    let result = stack.send(&clients, HARMONY, &device(6)).await;
    assert_eq!(
        result,
        SendResult {
            status: 401,
            outcomes: vec![Outcome::Rejected {
                reason: "80200001".into()
            }]
        }
    );
    assert!(stack.sim.deliveries(Some("harmony")).is_empty());
}

#[tokio::test]
async fn harmony_notify_mode_custom_is_a_background_message_the_app_gets() {
    let stack = stack().await;
    let clients = stack.clients(Vendor::Harmony);
    let token = device(1);
    let result = stack
        .send_notification(&clients, HARMONY, &data_notification(), &token)
        .await;
    assert_eq!(result.outcomes, vec![Outcome::Delivered]);
    let deliveries = stack.sim.deliveries(Some("harmony"));
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].title, None, "nothing shown by the vendor");
    assert_eq!(
        deliveries[0].ext.as_deref(),
        Some(r#"{"chat":"c2c:denny"}"#)
    );
    assert_eq!(deliveries[0].headers["push-type"], "6");
    let data = deliveries[0].payload["payload"]["extraData"]
        .as_str()
        .unwrap();
    let data: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(data["title"], "Team chat");
    assert_eq!(data["body"], "Denny: see you at 5");
}
