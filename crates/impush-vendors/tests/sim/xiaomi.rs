//! Xiaomi: the static `key=` header, MiPush batch answers split per regid (`bad_regids`),
//! rate and daily-quota codes, a refused key.

use std::time::Duration;

use impush_core::{Vendor, build_payload};
use impush_vendors::{Outcome, SendResult, VendorClients};

use crate::common::*;

const XIAOMI: u64 = 4;

/// The local stack with the Xiaomi credential's base URL on the simulator.
async fn stack() -> Stack {
    let mut stack = Stack::start().await;
    stack.config.vendors.get_mut(&XIAOMI).unwrap().base_url = stack.sim.base_url("xiaomi");
    stack
}

/// A regid of the shape MiPush gives out (without the `+` and `/` real ones may hold,
/// which `impush-core` refuses today).
fn device(n: usize) -> String {
    format!("kQ2fBm{n:05}xZuT7yQnUyC4GZ8y0T5UlYYq0dE9cR1sVgN")
}

async fn send_batch(stack: &Stack, clients: &VendorClients, tokens: &[String]) -> SendResult {
    let targets: Vec<_> = tokens.iter().map(|t| target(t)).collect();
    let request = build_payload(
        &notification(),
        &stack.config.credentials[&XIAOMI],
        &targets,
    )
    .unwrap();
    clients.send(XIAOMI, &request, &targets).await
}

fn bad_regid() -> Outcome {
    Outcome::InvalidToken {
        reason: "bad_regids".into(),
    }
}

#[tokio::test]
async fn xiaomi_push_is_delivered_once() {
    let stack = stack().await;
    let clients = stack.clients(Vendor::Xiaomi);
    let token = device(1);
    let result = stack.send(&clients, XIAOMI, &token).await;
    assert_eq!(
        result,
        SendResult {
            status: 200,
            outcomes: vec![Outcome::Delivered]
        }
    );
    let deliveries = stack.sim.deliveries(Some("xiaomi"));
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
async fn xiaomi_invalid_regid_alone_is_invalid() {
    let stack = stack().await;
    let clients = stack.clients(Vendor::Xiaomi);
    let result = stack.send(&clients, XIAOMI, "invalid-0001").await;
    assert_eq!(result.status, 200);
    assert_eq!(result.outcomes, vec![bad_regid()]);
    assert!(stack.sim.deliveries(Some("xiaomi")).is_empty());
}

#[tokio::test]
async fn xiaomi_invalid_regid_in_a_batch_fails_only_itself() {
    let stack = stack().await;
    let clients = stack.clients(Vendor::Xiaomi);
    let tokens = [device(1), "invalid-0002".to_owned(), device(3)];
    let result = send_batch(&stack, &clients, &tokens).await;
    assert_eq!(
        result.outcomes,
        vec![Outcome::Delivered, bad_regid(), Outcome::Delivered]
    );
    assert_eq!(stack.deliveries_to("xiaomi", &tokens[0]), 1);
    assert_eq!(stack.deliveries_to("xiaomi", &tokens[2]), 1);
    assert_eq!(stack.sim.deliveries(Some("xiaomi")).len(), 2);
}

#[tokio::test]
async fn xiaomi_1000_regids_with_10_invalid_give_990_delivered_and_10_invalid() {
    let stack = stack().await;
    let clients = stack.clients(Vendor::Xiaomi);
    let tokens: Vec<String> = (0..1000)
        .map(|i| {
            if i % 100 == 42 {
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
            assert_eq!(*outcome, bad_regid(), "{token}");
        } else {
            assert_eq!(*outcome, Outcome::Delivered, "{token}");
        }
    }
    assert_eq!(stack.sim.deliveries(Some("xiaomi")).len(), 990);
}

#[tokio::test]
async fn xiaomi_too_frequent_is_retried_after_retry_after() {
    let stack = stack().await;
    let clients = stack.clients(Vendor::Xiaomi);
    let token = device(4);
    stack.fault(impush_sim::Fault {
        status: Some(429),
        reason: Some("10027".into()),
        retry_after_s: Some(20),
        ..fault("xiaomi", &token)
    });
    let result = stack.send(&clients, XIAOMI, &token).await;
    // MiPush reports its codes with HTTP 200.
    assert_eq!(result.status, 200);
    assert_eq!(
        result.outcomes,
        vec![Outcome::Retry {
            after: Some(Duration::from_secs(20)),
            reason: "10027".into()
        }]
    );
    let again = stack.send(&clients, XIAOMI, &token).await;
    assert_eq!(again.outcomes, vec![Outcome::Delivered]);
    assert_eq!(stack.deliveries_to("xiaomi", &token), 1);
}

#[tokio::test]
async fn xiaomi_daily_quota_is_retried_after_beijing_midnight() {
    let stack = stack().await;
    let clients = stack.clients(Vendor::Xiaomi);
    let token = device(5);
    stack.fault(impush_sim::Fault {
        status: Some(429),
        reason: Some("200001".into()),
        ..fault("xiaomi", &token)
    });
    let result = stack.send(&clients, XIAOMI, &token).await;
    let [
        Outcome::Retry {
            after: Some(after),
            reason,
        },
    ] = result.outcomes.as_slice()
    else {
        panic!("{result:?}");
    };
    assert_eq!(reason, "200001");
    assert!(
        *after > Duration::ZERO && *after <= Duration::from_secs(24 * 3600),
        "{after:?}"
    );
}

#[tokio::test]
async fn xiaomi_a_static_key_survives_expire_auth() {
    let stack = stack().await;
    let clients = stack.clients(Vendor::Xiaomi);
    stack.sim.expire_auth();
    let token = device(6);
    let result = stack.send(&clients, XIAOMI, &token).await;
    assert_eq!(result.outcomes, vec![Outcome::Delivered]);
    assert_eq!(stack.deliveries_to("xiaomi", &token), 1);
}

#[tokio::test]
async fn xiaomi_wrong_app_secret_is_rejected_with_21301() {
    let dir = std::env::temp_dir().join(format!("impush-xiaomi-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wrong = dir.join("wrong.txt");
    std::fs::write(&wrong, "not-the-secret").unwrap();
    let mut stack = stack().await;
    let secrets = stack
        .config
        .vendors
        .get_mut(&XIAOMI)
        .unwrap()
        .xiaomi
        .as_mut()
        .unwrap();
    secrets.app_secret.as_mut().unwrap().file = Some(wrong);
    let clients = stack.clients(Vendor::Xiaomi);
    let result = stack.send(&clients, XIAOMI, &device(7)).await;
    assert_eq!(
        result.outcomes,
        vec![Outcome::Rejected {
            reason: "21301".into()
        }]
    );
    assert!(stack.sim.deliveries(Some("xiaomi")).is_empty());
}

#[tokio::test]
async fn xiaomi_malformed_credential_fails_at_start_naming_business_id_and_field() {
    let mut stack = stack().await;
    stack.config.vendors.get_mut(&XIAOMI).unwrap().xiaomi = None;
    let err = VendorClients::from_config(&stack.config, Vendor::Xiaomi)
        .unwrap_err()
        .to_string();
    assert!(err.contains("credential 4"), "{err}");
    assert!(err.contains("`xiaomi`"), "{err}");
}
