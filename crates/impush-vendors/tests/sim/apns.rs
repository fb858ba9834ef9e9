//! APNs: provider tokens over h2c, Apple's answers, token expiry, timeouts.

use std::time::Duration;

use impush_core::Vendor;
use impush_vendors::{Outcome, SendResult};

use crate::common::*;

/// A device token of the hex shape APNs gives out.
fn device(n: u32) -> String {
    format!("{n:08x}{}", "ab".repeat(28))
}

#[tokio::test]
async fn apns_push_is_delivered_once() {
    let stack = Stack::start().await;
    let clients = stack.clients(Vendor::Apns);
    let token = device(1);
    let result = stack.send(&clients, APNS, &token).await;
    assert_eq!(
        result,
        SendResult {
            status: 200,
            outcomes: vec![Outcome::Delivered]
        }
    );
    let deliveries = stack.sim.deliveries(Some("apns"));
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].token, token);
    assert_eq!(deliveries[0].title.as_deref(), Some("Team chat"));
}

#[tokio::test]
async fn apns_unregistered_token_is_invalid() {
    let stack = Stack::start().await;
    let clients = stack.clients(Vendor::Apns);
    let result = stack.send(&clients, APNS, "invalid-0001").await;
    assert_eq!(result.status, 410);
    assert_eq!(
        result.outcomes,
        vec![Outcome::InvalidToken {
            reason: "Unregistered".into()
        }]
    );
    assert!(stack.sim.deliveries(Some("apns")).is_empty());
}

#[tokio::test]
async fn apns_service_unavailable_is_retried_then_delivered() {
    let stack = Stack::start().await;
    let clients = stack.clients(Vendor::Apns);
    let token = device(2);
    stack.fault(impush_sim::Fault {
        status: Some(503),
        reason: Some("ServiceUnavailable".into()),
        ..fault("apns", &token)
    });
    let result = stack.send(&clients, APNS, &token).await;
    assert_eq!(result.status, 503);
    assert_eq!(
        result.outcomes,
        vec![Outcome::Retry {
            after: None,
            reason: "ServiceUnavailable".into()
        }]
    );
    assert_eq!(stack.deliveries_to("apns", &token), 0);
    let again = stack.send(&clients, APNS, &token).await;
    assert_eq!(again.outcomes, vec![Outcome::Delivered]);
    assert_eq!(stack.deliveries_to("apns", &token), 1);
}

#[tokio::test]
async fn apns_too_many_requests_keeps_a_retry_after_if_one_comes() {
    let stack = Stack::start().await;
    let clients = stack.clients(Vendor::Apns);
    let token = device(3);
    stack.fault(impush_sim::Fault {
        status: Some(429),
        reason: Some("TooManyRequests".into()),
        retry_after_s: Some(3),
        ..fault("apns", &token)
    });
    let result = stack.send(&clients, APNS, &token).await;
    assert_eq!(result.status, 429);
    assert_eq!(
        result.outcomes,
        vec![Outcome::Retry {
            after: Some(Duration::from_secs(3)),
            reason: "TooManyRequests".into()
        }]
    );
}

#[tokio::test]
async fn apns_payload_too_large_is_rejected() {
    let stack = Stack::start().await;
    let clients = stack.clients(Vendor::Apns);
    let token = device(4);
    stack.fault(impush_sim::Fault {
        status: Some(413),
        reason: Some("PayloadTooLarge".into()),
        ..fault("apns", &token)
    });
    let result = stack.send(&clients, APNS, &token).await;
    assert_eq!(
        result.outcomes,
        vec![Outcome::Rejected {
            reason: "PayloadTooLarge".into()
        }]
    );
}

#[tokio::test]
async fn apns_expired_provider_token_is_renewed_and_the_push_delivered_once() {
    let stack = Stack::start().await;
    let clients = stack.clients(Vendor::Apns);
    let (first, second) = (device(5), device(6));
    assert_eq!(
        stack.send(&clients, APNS, &first).await.outcomes,
        vec![Outcome::Delivered]
    );
    stack.sim.expire_auth();
    let result = stack.send(&clients, APNS, &second).await;
    assert_eq!(
        result,
        SendResult {
            status: 200,
            outcomes: vec![Outcome::Delivered]
        }
    );
    assert_eq!(stack.deliveries_to("apns", &first), 1);
    assert_eq!(stack.deliveries_to("apns", &second), 1);
    // The new token serves the next pushes too.
    let third = device(7);
    assert_eq!(
        stack.send(&clients, APNS, &third).await.outcomes,
        vec![Outcome::Delivered]
    );
}

#[tokio::test]
async fn apns_tokens_are_not_churned_when_apple_keeps_saying_expired() {
    let stack = Stack::start().await;
    let clients = stack.clients(Vendor::Apns);
    stack.send(&clients, APNS, &device(8)).await;
    stack.sim.expire_auth();
    // Apple's word wins once: a new token, delivered.
    assert_eq!(
        stack.send(&clients, APNS, &device(9)).await.outcomes,
        vec![Outcome::Delivered]
    );
    stack.sim.expire_auth();
    // Twice within 20 minutes means the clocks disagree: no new token, no storm.
    let token = device(10);
    let result = stack.send(&clients, APNS, &token).await;
    assert_eq!(result.status, 403);
    assert_eq!(
        result.outcomes,
        vec![Outcome::Rejected {
            reason: "ExpiredProviderToken".into()
        }]
    );
    assert_eq!(stack.deliveries_to("apns", &token), 0);
}

#[tokio::test]
async fn apns_timeout_is_retried() {
    let stack = Stack::start_with(
        |_| {},
        |config| config.sender.request_timeout_ms = SHORT_TIMEOUT_MS,
    )
    .await;
    let clients = stack.clients(Vendor::Apns);
    let token = device(11);
    stack.fault(impush_sim::Fault {
        delay_ms: Some(LONG_DELAY.as_millis() as u64),
        ..fault("apns", &token)
    });
    let result = stack.send(&clients, APNS, &token).await;
    assert_eq!(
        result,
        SendResult {
            status: 0,
            outcomes: vec![Outcome::Retry {
                after: None,
                reason: "timeout".into()
            }]
        }
    );
}

#[tokio::test]
async fn apns_unreachable_server_is_retried() {
    let stack = Stack::start_with(
        |_| {},
        |config| {
            config.vendors.get_mut(&APNS).unwrap().base_url = "http://127.0.0.1:9/apns".into();
        },
    )
    .await;
    let clients = stack.clients(Vendor::Apns);
    let result = stack.send(&clients, APNS, &device(12)).await;
    assert_eq!(result.status, 0);
    assert!(
        matches!(&result.outcomes[..], [Outcome::Retry { after: None, reason }] if reason.starts_with("connect")),
        "{result:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apns_concurrent_pushes_are_each_delivered_once() {
    let stack = Stack::start().await;
    let clients = std::sync::Arc::new(stack.clients(Vendor::Apns));
    let tokens: Vec<String> = (100..140).map(device).collect();
    let tasks: Vec<_> = tokens
        .iter()
        .map(|token| {
            let targets = [target(token)];
            let request = impush_core::build_payload(
                &notification(),
                &stack.config.credentials[&APNS],
                &targets,
            )
            .unwrap();
            let clients = std::sync::Arc::clone(&clients);
            // Spawned: the sender runs sends on many tasks, so the future must be Send.
            tokio::spawn(async move { clients.send(APNS, &request, &targets).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().outcomes, vec![Outcome::Delivered]);
    }
    for token in &tokens {
        assert_eq!(stack.deliveries_to("apns", token), 1);
    }
}
