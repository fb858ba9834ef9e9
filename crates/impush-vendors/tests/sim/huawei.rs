//! Huawei: OAuth client-credentials against the simulator's token endpoint, Push Kit batch
//! answers split per token, access-token expiry, flow control.

use std::time::Duration;

use impush_core::{Vendor, build_payload};
use impush_vendors::{Outcome, SendResult, VendorClients};

use crate::common::*;

const HUAWEI: u64 = 3;

/// The local stack with the Huawei credential's send and OAuth URLs on the simulator.
async fn stack() -> Stack {
    let mut stack = Stack::start().await;
    let base_url = stack.sim.base_url("huawei");
    let settings = stack.config.vendors.get_mut(&HUAWEI).unwrap();
    settings.base_url = base_url.clone();
    settings.huawei.as_mut().unwrap().auth_url = Some(format!("{base_url}/oauth2/v3/token"));
    stack
}

/// A token of the shape Push Kit gives out.
fn device(n: usize) -> String {
    format!("IQAAAACy0{n:05}kAABh5oBj6hTQ{}", "x".repeat(90))
}

async fn send_batch(stack: &Stack, clients: &VendorClients, tokens: &[String]) -> SendResult {
    let targets: Vec<_> = tokens.iter().map(|t| target(t)).collect();
    let request = build_payload(
        &notification(),
        &stack.config.credentials[&HUAWEI],
        &targets,
    )
    .unwrap();
    clients.send(HUAWEI, &request, &targets).await
}

fn illegal() -> Outcome {
    Outcome::InvalidToken {
        reason: "80100000 illegal_token".into(),
    }
}

#[tokio::test]
async fn huawei_push_is_delivered_once() {
    let stack = stack().await;
    let clients = stack.clients(Vendor::Huawei);
    let token = device(1);
    let result = stack.send(&clients, HUAWEI, &token).await;
    assert_eq!(
        result,
        SendResult {
            status: 200,
            outcomes: vec![Outcome::Delivered]
        }
    );
    let deliveries = stack.sim.deliveries(Some("huawei"));
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].token, token);
    assert_eq!(deliveries[0].title.as_deref(), Some("Team chat"));
    assert_eq!(deliveries[0].body.as_deref(), Some("Denny: see you at 5"));
    assert_eq!(
        deliveries[0].ext.as_deref(),
        Some(r#"{"chat":"c2c:denny"}"#)
    );
    assert_eq!(deliveries[0].sound.as_deref(), Some("default"));
}

#[tokio::test]
async fn huawei_invalid_token_alone_is_invalid() {
    let stack = stack().await;
    let clients = stack.clients(Vendor::Huawei);
    let result = stack.send(&clients, HUAWEI, "invalid-0001").await;
    assert_eq!(result.status, 200);
    assert_eq!(
        result.outcomes,
        vec![Outcome::InvalidToken {
            reason: "80300007".into()
        }]
    );
    assert!(stack.sim.deliveries(Some("huawei")).is_empty());
}

#[tokio::test]
async fn huawei_invalid_token_in_a_batch_fails_only_itself() {
    let stack = stack().await;
    let clients = stack.clients(Vendor::Huawei);
    let tokens = [device(1), "invalid-0002".to_owned(), device(3)];
    let result = send_batch(&stack, &clients, &tokens).await;
    assert_eq!(
        result.outcomes,
        vec![Outcome::Delivered, illegal(), Outcome::Delivered]
    );
    assert_eq!(stack.deliveries_to("huawei", &tokens[0]), 1);
    assert_eq!(stack.deliveries_to("huawei", &tokens[2]), 1);
    assert_eq!(stack.sim.deliveries(Some("huawei")).len(), 2);
}

#[tokio::test]
async fn huawei_1000_tokens_with_10_invalid_give_990_delivered_and_10_invalid() {
    let stack = stack().await;
    let clients = stack.clients(Vendor::Huawei);
    let tokens: Vec<String> = (0..1000)
        .map(|i| {
            if i % 100 == 7 {
                format!("invalid-{i:04}")
            } else {
                device(i)
            }
        })
        .collect();
    let result = send_batch(&stack, &clients, &tokens).await;
    assert_eq!(result.outcomes.len(), 1000);
    for (token, outcome) in tokens.iter().zip(&result.outcomes) {
        if token.starts_with("invalid-") {
            assert_eq!(*outcome, illegal(), "{token}");
        } else {
            assert_eq!(*outcome, Outcome::Delivered, "{token}");
        }
    }
    assert_eq!(stack.sim.deliveries(Some("huawei")).len(), 990);
}

#[tokio::test]
async fn huawei_expired_access_token_is_renewed_and_the_push_delivered_once() {
    let stack = stack().await;
    let clients = stack.clients(Vendor::Huawei);
    let first = stack.send(&clients, HUAWEI, &device(1)).await;
    assert_eq!(first.outcomes, vec![Outcome::Delivered]);
    // The cached token now answers 80200003 until the client fetches a new one.
    stack.sim.expire_auth();
    let token = device(2);
    let result = stack.send(&clients, HUAWEI, &token).await;
    assert_eq!(
        result,
        SendResult {
            status: 200,
            outcomes: vec![Outcome::Delivered]
        }
    );
    assert_eq!(stack.deliveries_to("huawei", &token), 1);
}

#[tokio::test]
async fn huawei_flow_control_is_retried_after_retry_after() {
    let stack = stack().await;
    let clients = stack.clients(Vendor::Huawei);
    let token = device(4);
    stack.fault(impush_sim::Fault {
        status: Some(503),
        reason: Some("81000001".into()),
        retry_after_s: Some(30),
        ..fault("huawei", &token)
    });
    let result = stack.send(&clients, HUAWEI, &token).await;
    assert_eq!(result.status, 503);
    assert_eq!(
        result.outcomes,
        vec![Outcome::Retry {
            after: Some(Duration::from_secs(30)),
            reason: "81000001".into()
        }]
    );
    assert_eq!(stack.deliveries_to("huawei", &token), 0);
    let again = stack.send(&clients, HUAWEI, &token).await;
    assert_eq!(again.outcomes, vec![Outcome::Delivered]);
}

#[tokio::test]
async fn huawei_wrong_app_secret_is_rejected_by_the_token_endpoint() {
    let dir = std::env::temp_dir().join(format!("impush-huawei-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wrong = dir.join("wrong.txt");
    std::fs::write(&wrong, "not-the-secret").unwrap();
    let mut stack = stack().await;
    let secrets = stack
        .config
        .vendors
        .get_mut(&HUAWEI)
        .unwrap()
        .huawei
        .as_mut()
        .unwrap();
    secrets.app_secret.as_mut().unwrap().file = Some(wrong);
    let clients = stack.clients(Vendor::Huawei);
    let result = stack.send(&clients, HUAWEI, &device(5)).await;
    assert_eq!(result.status, 400);
    assert_eq!(
        result.outcomes,
        vec![Outcome::Rejected {
            reason: "auth: 400 1101 20186".into()
        }]
    );
    assert!(stack.sim.deliveries(Some("huawei")).is_empty());
}

#[tokio::test]
async fn huawei_malformed_credential_fails_at_start_naming_business_id_and_field() {
    let mut stack = stack().await;
    stack
        .config
        .vendors
        .get_mut(&HUAWEI)
        .unwrap()
        .huawei
        .as_mut()
        .unwrap()
        .app_secret = None;
    let err = VendorClients::from_config(&stack.config, Vendor::Huawei)
        .unwrap_err()
        .to_string();
    assert!(err.contains("credential 3"), "{err}");
    assert!(err.contains("`huawei.app_secret`"), "{err}");
}
