//! Meizu: signed form pushes against the simulator's `pushByPushId`, per-pushId answers,
//! signature failures, rate limits and a full batch of 1000.

use std::time::Duration;

use impush_config::SecretRef;
use impush_core::Vendor;
use impush_vendors::{Outcome, SendResult, VendorClients};

use crate::common::*;

/// A pushId of the shape Meizu gives out.
fn push_id(n: u32) -> String {
    format!("RA50c6348036344485d0177677{n:04}577c64740465480a6b")
}

async fn stack() -> (Stack, VendorClients) {
    let stack = Stack::start_pointing(MEIZU, "meizu").await;
    let clients = stack.clients(Vendor::Meizu);
    (stack, clients)
}

#[tokio::test]
async fn meizu_push_is_delivered_once() {
    let (stack, clients) = stack().await;
    let token = push_id(1);
    let result = stack.send(&clients, MEIZU, &token).await;
    assert_eq!(
        result,
        SendResult {
            status: 200,
            outcomes: vec![Outcome::Delivered]
        }
    );
    let deliveries = stack.sim.deliveries(Some("meizu"));
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
async fn meizu_unsubscribed_push_id_is_invalid() {
    let (stack, clients) = stack().await;
    let result = stack.send(&clients, MEIZU, "invalid-0001").await;
    assert_eq!(result.status, 200);
    assert_eq!(
        result.outcomes,
        vec![Outcome::InvalidToken {
            reason: "110002".into()
        }]
    );
    assert!(stack.sim.deliveries(Some("meizu")).is_empty());
}

#[tokio::test]
async fn meizu_one_invalid_push_id_does_not_fail_the_batch() {
    let (stack, clients) = stack().await;
    let tokens = [push_id(1), "invalid-0002".into(), push_id(3)];
    let result = stack.send_batch(&clients, MEIZU, &tokens).await;
    assert_eq!(
        result.outcomes,
        vec![
            Outcome::Delivered,
            Outcome::InvalidToken {
                reason: "110002".into()
            },
            Outcome::Delivered,
        ]
    );
    assert_eq!(stack.deliveries_to("meizu", &tokens[0]), 1);
    assert_eq!(stack.deliveries_to("meizu", &tokens[1]), 0);
    assert_eq!(stack.deliveries_to("meizu", &tokens[2]), 1);
}

#[tokio::test]
async fn meizu_wrong_app_secret_is_rejected_as_a_bad_signature() {
    let dir = std::env::temp_dir().join(format!("impush-meizu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wrong = dir.join("wrong-secret.txt");
    std::fs::write(&wrong, "not-the-app-secret\n").unwrap();
    let (mut stack, _) = stack().await;
    let meizu = stack.config.vendors.get_mut(&MEIZU).unwrap();
    meizu.meizu.as_mut().unwrap().app_secret = Some(SecretRef {
        file: Some(wrong),
        env: None,
    });
    let clients = stack.clients(Vendor::Meizu);
    let result = stack.send(&clients, MEIZU, &push_id(1)).await;
    assert_eq!(
        result.outcomes,
        vec![Outcome::Rejected {
            reason: "1006".into()
        }]
    );
    assert!(stack.sim.deliveries(Some("meizu")).is_empty());
}

#[tokio::test]
async fn meizu_too_fast_is_retried_after_retry_after_or_a_second() {
    let (stack, clients) = stack().await;
    let token = push_id(4);
    stack.fault(impush_sim::Fault {
        status: Some(429),
        reason: Some("110010".into()),
        retry_after_s: Some(30),
        ..fault("meizu", &token)
    });
    let result = stack.send(&clients, MEIZU, &token).await;
    assert_eq!(result.status, 200, "Meizu reports errors in the body");
    assert_eq!(
        result.outcomes,
        vec![Outcome::Retry {
            after: Some(Duration::from_secs(30)),
            reason: "110010".into()
        }]
    );
    stack.fault(impush_sim::Fault {
        status: Some(429),
        reason: Some("110010".into()),
        ..fault("meizu", &token)
    });
    let result = stack.send(&clients, MEIZU, &token).await;
    assert_eq!(
        result.outcomes,
        vec![Outcome::Retry {
            after: Some(Duration::from_secs(1)),
            reason: "110010".into()
        }]
    );
    assert_eq!(stack.deliveries_to("meizu", &token), 0);
    let again = stack.send(&clients, MEIZU, &token).await;
    assert_eq!(again.outcomes, vec![Outcome::Delivered]);
}

#[tokio::test]
async fn meizu_per_push_id_failures_touch_only_their_push_id() {
    let (stack, clients) = stack().await;
    let tokens = [push_id(5), push_id(6), push_id(7)];
    for (token, code) in [(&tokens[0], "513"), (&tokens[2], "520")] {
        stack.fault(impush_sim::Fault {
            status: Some(500),
            reason: Some(code.into()),
            ..fault("meizu", token)
        });
    }
    let result = stack.send_batch(&clients, MEIZU, &tokens).await;
    assert_eq!(
        result.outcomes,
        vec![
            Outcome::Retry {
                after: None,
                reason: "513".into()
            },
            Outcome::Delivered,
            Outcome::Delivered,
        ],
        "520 (collapsed) is neither retried nor an error"
    );
}

#[tokio::test]
async fn meizu_malformed_credential_is_a_start_up_error_naming_the_field() {
    let (mut stack, _) = stack().await;
    stack
        .config
        .vendors
        .get_mut(&MEIZU)
        .unwrap()
        .meizu
        .as_mut()
        .unwrap()
        .app_secret = None;
    let err = VendorClients::from_config(&stack.config, Vendor::Meizu)
        .unwrap_err()
        .to_string();
    assert!(err.contains("credential 7"), "{err}");
    assert!(err.contains("`meizu.app_secret`"), "{err}");

    stack.config.vendors.get_mut(&MEIZU).unwrap().meizu = None;
    let err = VendorClients::from_config(&stack.config, Vendor::Meizu)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("credential 7") && err.contains("`meizu`"),
        "{err}"
    );
}

#[tokio::test]
async fn meizu_1000_push_ids_with_10_invalid_give_990_delivered_and_10_invalid() {
    let (stack, clients) = stack().await;
    let tokens: Vec<String> = (0..1000)
        .map(|i| {
            if i % 100 == 0 {
                format!("invalid-{i:04}")
            } else {
                push_id(i)
            }
        })
        .collect();
    let result = stack.send_batch(&clients, MEIZU, &tokens).await;
    assert_eq!(result.status, 200);
    assert_eq!(result.outcomes.len(), 1000);
    for (token, outcome) in tokens.iter().zip(&result.outcomes) {
        let expected = if token.starts_with("invalid-") {
            Outcome::InvalidToken {
                reason: "110002".into(),
            }
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
    assert_eq!(stack.sim.deliveries(Some("meizu")).len(), 990);
}
