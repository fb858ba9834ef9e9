//! OPPO: the auth_token handshake against the simulator, unicast and unicast_batch answers
//! split per registration id, auth expiry, flow control and the daily quota.

use std::time::Duration;

use impush_core::Vendor;
use impush_vendors::{Outcome, SendResult, VendorClients};

use crate::common::*;

/// A registration id of the shape OPPO gives out.
fn device(n: u32) -> String {
    format!("OPPO_CN_{n:08}a1b2c3d4e5f6")
}

async fn oppo_stack() -> (Stack, VendorClients) {
    let stack = Stack::start_oem(OPPO, "oppo", |_| {}, |_| {}).await;
    let clients = stack.clients(Vendor::Oppo);
    (stack, clients)
}

fn invalid() -> Outcome {
    Outcome::InvalidToken {
        reason: "10000".into(),
    }
}

#[tokio::test]
async fn oppo_push_is_delivered_once() {
    let (stack, clients) = oppo_stack().await;
    let token = device(1);
    let result = stack.send(&clients, OPPO, &token).await;
    assert_eq!(
        result,
        SendResult {
            status: 200,
            outcomes: vec![Outcome::Delivered]
        }
    );
    let deliveries = stack.sim.deliveries(Some("oppo"));
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
async fn oppo_invalid_registration_id_is_an_invalid_token() {
    let (stack, clients) = oppo_stack().await;
    let result = stack.send(&clients, OPPO, "invalid-0001").await;
    assert_eq!(result.outcomes, vec![invalid()]);
    assert!(stack.sim.deliveries(Some("oppo")).is_empty());
}

#[tokio::test]
async fn oppo_batch_with_one_invalid_token_delivers_the_others() {
    let (stack, clients) = oppo_stack().await;
    let tokens = vec![device(2), "invalid-0002".to_owned(), device(3)];
    let result = stack.send_many(&clients, OPPO, &tokens).await;
    assert_eq!(
        result.outcomes,
        vec![Outcome::Delivered, invalid(), Outcome::Delivered]
    );
    assert_eq!(stack.deliveries_to("oppo", &tokens[0]), 1);
    assert_eq!(stack.deliveries_to("oppo", &tokens[2]), 1);
    assert_eq!(stack.sim.deliveries(Some("oppo")).len(), 2);
}

#[tokio::test]
async fn oppo_batch_of_1000_with_10_invalid_tokens() {
    let (stack, clients) = oppo_stack().await;
    let tokens: Vec<String> = (0..1000)
        .map(|n| {
            if n % 100 == 7 {
                format!("invalid-{n:04}")
            } else {
                device(n)
            }
        })
        .collect();
    let result = stack.send_many(&clients, OPPO, &tokens).await;
    assert_eq!(result.outcomes.len(), 1000);
    for (token, outcome) in tokens.iter().zip(&result.outcomes) {
        let expected = if token.starts_with("invalid-") {
            invalid()
        } else {
            Outcome::Delivered
        };
        assert_eq!(outcome, &expected, "{token}");
    }
    let delivered = result
        .outcomes
        .iter()
        .filter(|o| **o == Outcome::Delivered)
        .count();
    assert_eq!(delivered, 990);
    assert_eq!(stack.sim.deliveries(Some("oppo")).len(), 990);
}

#[tokio::test]
async fn oppo_expired_auth_token_is_renewed_and_the_push_delivered_once() {
    let (stack, clients) = oppo_stack().await;
    let (first, second) = (device(10), device(11));
    assert_eq!(
        stack.send(&clients, OPPO, &first).await.outcomes,
        vec![Outcome::Delivered]
    );
    stack.sim.expire_auth();
    let result = stack.send(&clients, OPPO, &second).await;
    assert_eq!(result.outcomes, vec![Outcome::Delivered]);
    assert_eq!(stack.deliveries_to("oppo", &first), 1);
    assert_eq!(stack.deliveries_to("oppo", &second), 1);
}

#[tokio::test]
async fn oppo_flow_control_is_retried_after_retry_after() {
    let (stack, clients) = oppo_stack().await;
    let token = device(12);
    stack.fault(impush_sim::Fault {
        status: Some(503),
        reason: Some("-2".into()),
        retry_after_s: Some(7),
        ..fault("oppo", &token)
    });
    let result = stack.send(&clients, OPPO, &token).await;
    assert_eq!(
        result.outcomes,
        vec![Outcome::Retry {
            after: Some(Duration::from_secs(7)),
            reason: "-2".into()
        }]
    );
    assert_eq!(stack.deliveries_to("oppo", &token), 0);
}

#[tokio::test]
async fn oppo_daily_quota_in_a_batch_is_retried_until_midnight_in_china() {
    let (stack, clients) = oppo_stack().await;
    let tokens = vec![device(13), device(14)];
    stack.fault(impush_sim::Fault {
        status: Some(429),
        reason: Some("33".into()),
        ..fault("oppo", &tokens[0])
    });
    let result = stack.send_many(&clients, OPPO, &tokens).await;
    assert_eq!(result.outcomes.len(), 2);
    for outcome in &result.outcomes {
        match outcome {
            Outcome::Retry {
                after: Some(after),
                reason,
            } => {
                assert_eq!(reason, "33");
                assert!(*after > Duration::ZERO && *after <= Duration::from_secs(86_400));
            }
            other => panic!("expected a retry until midnight, got {other:?}"),
        }
    }
    assert!(stack.sim.deliveries(Some("oppo")).is_empty());
}

#[tokio::test]
async fn oppo_a_master_secret_the_simulator_does_not_know_is_rejected() {
    let stack = Stack::start_oem(
        OPPO,
        "oppo",
        |sim| {
            for app in &mut sim.oppo_apps {
                app.master_secret = "another-secret".into();
            }
        },
        |_| {},
    )
    .await;
    let clients = stack.clients(Vendor::Oppo);
    let result = stack.send(&clients, OPPO, &device(15)).await;
    assert_eq!(
        result.outcomes,
        vec![Outcome::Rejected {
            reason: "auth: 16".into()
        }]
    );
}

#[tokio::test]
async fn oppo_malformed_credential_is_a_start_up_error_naming_the_field() {
    let stack = Stack::start_oem(
        OPPO,
        "oppo",
        |_| {},
        |config| {
            config
                .vendors
                .get_mut(&OPPO)
                .unwrap()
                .oppo
                .as_mut()
                .unwrap()
                .master_secret = None;
        },
    )
    .await;
    let err = VendorClients::from_config(&stack.config, Vendor::Oppo)
        .unwrap_err()
        .to_string();
    assert!(err.contains("credential 5"), "{err}");
    assert!(err.contains("`oppo.master_secret`"), "{err}");
}
