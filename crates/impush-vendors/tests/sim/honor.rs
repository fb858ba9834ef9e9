//! Honor: OAuth client-credentials against the simulator's token endpoint, per-token
//! results of a batch, access-token expiry, flow control.

use std::time::Duration;

use impush_core::Vendor;
use impush_vendors::{Outcome, SendResult};

use crate::common::*;

const HONOR: u64 = 9;

/// The local stack with the Honor credential's send and token URLs on the simulator.
async fn stack() -> Stack {
    let mut stack = Stack::start().await;
    let base_url = stack.sim.base_url("honor");
    let settings = stack.config.vendors.get_mut(&HONOR).unwrap();
    settings.base_url = base_url.clone();
    settings.honor.as_mut().unwrap().auth_url = Some(format!("{base_url}/auth/token"));
    stack
}

/// A token of the shape Honor gives out.
fn device(n: usize) -> String {
    format!("AFcqpT0n{n:05}Ci6yHj0DAgGJ{}", "z".repeat(60))
}

#[tokio::test]
async fn honor_push_is_delivered_once_with_title_body_and_ext() {
    let stack = stack().await;
    let clients = stack.clients(Vendor::Honor);
    let token = device(1);
    let result = stack.send(&clients, HONOR, &token).await;
    assert_eq!(
        result,
        SendResult {
            status: 200,
            outcomes: vec![Outcome::Delivered]
        }
    );
    let deliveries = stack.sim.deliveries(Some("honor"));
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].token, token);
    assert_eq!(deliveries[0].title.as_deref(), Some("Team chat"));
    assert_eq!(deliveries[0].body.as_deref(), Some("Denny: see you at 5"));
    assert_eq!(
        deliveries[0].ext.as_deref(),
        Some(r#"{"chat":"c2c:denny"}"#)
    );
}

#[tokio::test]
async fn honor_expired_tokens_in_a_batch_are_invalid_and_the_others_delivered() {
    let stack = stack().await;
    let clients = stack.clients(Vendor::Honor);
    let tokens = [device(1), "invalid-0002".to_owned(), device(3)];
    let result = stack.send_many(&clients, HONOR, &tokens).await;
    let expired = Outcome::InvalidToken {
        reason: "expireTokens".into(),
    };
    assert_eq!(
        result.outcomes,
        vec![Outcome::Delivered, expired, Outcome::Delivered]
    );
    assert_eq!(stack.sim.deliveries(Some("honor")).len(), 2);
    assert_eq!(stack.deliveries_to("honor", "invalid-0002"), 0);
}

#[tokio::test]
async fn honor_expired_access_token_is_renewed_and_the_push_delivered_once() {
    let stack = stack().await;
    let clients = stack.clients(Vendor::Honor);
    let first = stack.send(&clients, HONOR, &device(1)).await;
    assert_eq!(first.outcomes, vec![Outcome::Delivered]);
    stack.sim.expire_auth();
    let token = device(2);
    let result = stack.send(&clients, HONOR, &token).await;
    assert_eq!(result.outcomes, vec![Outcome::Delivered]);
    assert_eq!(stack.deliveries_to("honor", &token), 1);
}

#[tokio::test]
async fn honor_flow_control_is_retried_after_retry_after() {
    let stack = stack().await;
    let clients = stack.clients(Vendor::Honor);
    let token = device(4);
    stack.fault(impush_sim::Fault {
        status: Some(503),
        reason: Some("81000001".into()),
        retry_after_s: Some(30),
        ..fault("honor", &token)
    });
    let result = stack.send(&clients, HONOR, &token).await;
    assert_eq!(result.status, 503);
    assert_eq!(
        result.outcomes,
        vec![Outcome::Retry {
            after: Some(Duration::from_secs(30)),
            reason: "81000001".into()
        }]
    );
    assert_eq!(stack.deliveries_to("honor", &token), 0);
    let again = stack.send(&clients, HONOR, &token).await;
    assert_eq!(again.outcomes, vec![Outcome::Delivered]);
}

#[tokio::test]
async fn honor_wrong_client_secret_is_rejected_by_the_token_endpoint() {
    let dir = std::env::temp_dir().join(format!("impush-honor-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wrong = dir.join("wrong.txt");
    std::fs::write(&wrong, "not-the-secret").unwrap();
    let mut stack = stack().await;
    let secrets = stack
        .config
        .vendors
        .get_mut(&HONOR)
        .unwrap()
        .honor
        .as_mut()
        .unwrap();
    secrets.app_secret.as_mut().unwrap().file = Some(wrong);
    let clients = stack.clients(Vendor::Honor);
    let result = stack.send(&clients, HONOR, &device(5)).await;
    assert_eq!(result.status, 401);
    assert_eq!(
        result.outcomes,
        vec![Outcome::Rejected {
            reason: "auth: 401 invalid_client".into()
        }]
    );
    assert!(stack.sim.deliveries(Some("honor")).is_empty());
}

#[tokio::test]
async fn honor_notify_mode_custom_is_a_data_message_the_app_shows_itself() {
    let stack = stack().await;
    let clients = stack.clients(Vendor::Honor);
    let token = "honor-token-1".to_owned();
    let result = stack
        .send_notification(&clients, HONOR, &data_notification(), &token)
        .await;
    assert_eq!(result.outcomes, vec![Outcome::Delivered]);
    let deliveries = stack.sim.deliveries(Some("honor"));
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].title, None, "nothing shown by the vendor");
    assert_eq!(
        deliveries[0].ext.as_deref(),
        Some(r#"{"chat":"c2c:denny"}"#)
    );
    assert!(
        deliveries[0]
            .payload
            .pointer("/android/notification")
            .is_none()
    );
    let data = deliveries[0].payload["data"].as_str().unwrap();
    let data: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(data["title"], "Team chat");
    assert_eq!(data["body"], "Denny: see you at 5");
}
