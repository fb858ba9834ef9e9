//! TPNS: Basic-auth JSON pushes against the simulator's `/v3/push/app`, `invalid_targe_list`
//! in batches, login failures, rate limits and a full batch of 1000.

use std::time::Duration;

use impush_config::SecretRef;
use impush_core::Vendor;
use impush_vendors::{Outcome, SendResult, VendorClients};

use crate::common::*;

/// A token of the shape TPNS gives out (36 characters).
fn device(n: u32) -> String {
    format!("005c28bf60e29f9a1c2052ce96f4{n:08}")
}

async fn stack() -> (Stack, VendorClients) {
    let stack = Stack::start_pointing(TPNS, "tpns").await;
    let clients = stack.clients(Vendor::Tpns);
    (stack, clients)
}

#[tokio::test]
async fn tpns_push_is_delivered_once() {
    let (stack, clients) = stack().await;
    let token = device(1);
    // To an iPhone (the local credential serves both platforms): the badge is shown.
    let targets = [target(&token)];
    let iphone = impush_core::Notification {
        ios_device: true,
        ..notification()
    };
    let request =
        impush_core::build_payload(&iphone, &stack.config.credentials[&TPNS], &targets).unwrap();
    let result = clients.send(TPNS, &request, &targets).await;
    assert_eq!(
        result,
        SendResult {
            status: 200,
            outcomes: vec![Outcome::Delivered]
        }
    );
    let deliveries = stack.sim.deliveries(Some("tpns"));
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].token, token);
    assert_eq!(deliveries[0].title.as_deref(), Some("Team chat"));
    assert_eq!(deliveries[0].body.as_deref(), Some("Denny: see you at 5"));
    assert_eq!(deliveries[0].badge, Some(2));
}

#[tokio::test]
async fn tpns_invalid_single_token_is_invalid() {
    let (stack, clients) = stack().await;
    let result = stack.send(&clients, TPNS, "invalid-0001").await;
    assert_eq!(
        result.outcomes,
        vec![Outcome::InvalidToken {
            reason: "1008029".into()
        }]
    );
    assert!(stack.sim.deliveries(Some("tpns")).is_empty());
}

#[tokio::test]
async fn tpns_one_invalid_token_does_not_fail_the_batch() {
    let (stack, clients) = stack().await;
    let tokens = [device(1), "invalid-0002".into(), device(3)];
    let result = stack.send_batch(&clients, TPNS, &tokens).await;
    assert_eq!(
        result.outcomes,
        vec![
            Outcome::Delivered,
            Outcome::InvalidToken {
                reason: "invalid_targe_list".into()
            },
            Outcome::Delivered,
        ]
    );
    assert_eq!(stack.deliveries_to("tpns", &tokens[0]), 1);
    assert_eq!(stack.deliveries_to("tpns", &tokens[1]), 0);
    assert_eq!(stack.deliveries_to("tpns", &tokens[2]), 1);
}

#[tokio::test]
async fn tpns_wrong_secret_key_is_rejected() {
    let dir = std::env::temp_dir().join(format!("impush-tpns-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wrong = dir.join("wrong-secret.txt");
    std::fs::write(&wrong, "not-the-secret-key\n").unwrap();
    let (mut stack, _) = stack().await;
    let tpns = stack.config.vendors.get_mut(&TPNS).unwrap();
    tpns.tpns.as_mut().unwrap().app_secret = Some(SecretRef {
        file: Some(wrong),
        env: None,
    });
    let clients = stack.clients(Vendor::Tpns);
    let result = stack.send(&clients, TPNS, &device(1)).await;
    assert_eq!(
        result.outcomes,
        vec![Outcome::Rejected {
            reason: "10030002".into()
        }]
    );

    // An AccessID TPNS does not know.
    let (mut stack, _) = self::stack().await;
    let profile = stack.config.credentials.get_mut(&TPNS).unwrap();
    profile.app_id = "1500009999".into();
    let clients = stack.clients(Vendor::Tpns);
    let result = stack.send(&clients, TPNS, &device(1)).await;
    assert_eq!(
        result.outcomes,
        vec![Outcome::Rejected {
            reason: "1008003".into()
        }]
    );
    assert!(stack.sim.deliveries(Some("tpns")).is_empty());
}

#[tokio::test]
async fn tpns_too_fast_is_retried_after_retry_after_or_a_second() {
    let (stack, clients) = stack().await;
    let token = device(4);
    stack.fault(impush_sim::Fault {
        status: Some(429),
        reason: Some("1008028".into()),
        retry_after_s: Some(20),
        ..fault("tpns", &token)
    });
    let result = stack.send(&clients, TPNS, &token).await;
    assert_eq!(
        result.outcomes,
        vec![Outcome::Retry {
            after: Some(Duration::from_secs(20)),
            reason: "1008028".into()
        }]
    );
    stack.fault(impush_sim::Fault {
        status: Some(429),
        reason: Some("1008028".into()),
        ..fault("tpns", &token)
    });
    let result = stack.send(&clients, TPNS, &token).await;
    assert_eq!(
        result.outcomes,
        vec![Outcome::Retry {
            after: Some(Duration::from_secs(1)),
            reason: "1008028".into()
        }]
    );
    let again = stack.send(&clients, TPNS, &token).await;
    assert_eq!(again.outcomes, vec![Outcome::Delivered]);
    assert_eq!(stack.deliveries_to("tpns", &token), 1);
}

#[tokio::test]
async fn tpns_malformed_credential_is_a_start_up_error_naming_the_field() {
    let (mut stack, _) = stack().await;
    stack
        .config
        .vendors
        .get_mut(&TPNS)
        .unwrap()
        .tpns
        .as_mut()
        .unwrap()
        .app_secret = None;
    let err = VendorClients::from_config(&stack.config, Vendor::Tpns)
        .unwrap_err()
        .to_string();
    assert!(err.contains("credential 8"), "{err}");
    assert!(err.contains("`tpns.app_secret`"), "{err}");
}

#[tokio::test]
async fn tpns_1000_tokens_with_10_invalid_give_990_delivered_and_10_invalid() {
    let (stack, clients) = stack().await;
    let tokens: Vec<String> = (0..1000)
        .map(|i| {
            if i % 100 == 0 {
                format!("invalid-{i:04}")
            } else {
                device(i)
            }
        })
        .collect();
    let result = stack.send_batch(&clients, TPNS, &tokens).await;
    assert_eq!(result.outcomes.len(), 1000);
    for (token, outcome) in tokens.iter().zip(&result.outcomes) {
        let expected = if token.starts_with("invalid-") {
            Outcome::InvalidToken {
                reason: "invalid_targe_list".into(),
            }
        } else {
            Outcome::Delivered
        };
        assert_eq!(outcome, &expected, "{token}");
    }
    assert_eq!(stack.sim.deliveries(Some("tpns")).len(), 990);
}
