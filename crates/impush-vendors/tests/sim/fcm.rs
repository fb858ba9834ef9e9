//! FCM: service-account OAuth2 against the simulator's token endpoint, FCM v1 answers,
//! access-token expiry, timeouts.

use std::time::Duration;

use impush_core::Vendor;
use impush_vendors::{Outcome, SendResult};

use crate::common::*;

/// A registration token of the shape FCM gives out.
fn device(n: u32) -> String {
    format!("fcm{n:04}:APA91b{}", "x_Y-z".repeat(20))
}

#[tokio::test]
async fn fcm_push_is_delivered_once() {
    let stack = Stack::start().await;
    let clients = stack.clients(Vendor::Fcm);
    let token = device(1);
    let result = stack.send(&clients, FCM, &token).await;
    assert_eq!(
        result,
        SendResult {
            status: 200,
            outcomes: vec![Outcome::Delivered]
        }
    );
    let deliveries = stack.sim.deliveries(Some("fcm"));
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].token, token);
    assert_eq!(deliveries[0].body.as_deref(), Some("Denny: see you at 5"));
}

#[tokio::test]
async fn fcm_unregistered_token_is_invalid() {
    let stack = Stack::start().await;
    let clients = stack.clients(Vendor::Fcm);
    let result = stack.send(&clients, FCM, "invalid-0001").await;
    assert_eq!(result.status, 404);
    assert_eq!(
        result.outcomes,
        vec![Outcome::InvalidToken {
            reason: "UNREGISTERED".into()
        }]
    );
    assert!(stack.sim.deliveries(Some("fcm")).is_empty());
}

#[tokio::test]
async fn fcm_unavailable_is_retried_after_retry_after_then_delivered() {
    let stack = Stack::start().await;
    let clients = stack.clients(Vendor::Fcm);
    let token = device(2);
    stack.fault(impush_sim::Fault {
        status: Some(503),
        reason: Some("UNAVAILABLE".into()),
        retry_after_s: Some(5),
        ..fault("fcm", &token)
    });
    let result = stack.send(&clients, FCM, &token).await;
    assert_eq!(result.status, 503);
    assert_eq!(
        result.outcomes,
        vec![Outcome::Retry {
            after: Some(Duration::from_secs(5)),
            reason: "UNAVAILABLE".into()
        }]
    );
    assert_eq!(stack.deliveries_to("fcm", &token), 0);
    let again = stack.send(&clients, FCM, &token).await;
    assert_eq!(again.outcomes, vec![Outcome::Delivered]);
    assert_eq!(stack.deliveries_to("fcm", &token), 1);
}

#[tokio::test]
async fn fcm_quota_exceeded_is_retried_after_retry_after() {
    let stack = Stack::start().await;
    let clients = stack.clients(Vendor::Fcm);
    let token = device(3);
    stack.fault(impush_sim::Fault {
        status: Some(429),
        reason: Some("QUOTA_EXCEEDED".into()),
        retry_after_s: Some(30),
        ..fault("fcm", &token)
    });
    let result = stack.send(&clients, FCM, &token).await;
    assert_eq!(result.status, 429);
    assert_eq!(
        result.outcomes,
        vec![Outcome::Retry {
            after: Some(Duration::from_secs(30)),
            reason: "QUOTA_EXCEEDED".into()
        }]
    );
}

#[tokio::test]
async fn fcm_sender_id_mismatch_is_an_invalid_token() {
    let stack = Stack::start().await;
    let clients = stack.clients(Vendor::Fcm);
    let token = device(4);
    stack.fault(impush_sim::Fault {
        status: Some(403),
        reason: Some("SENDER_ID_MISMATCH".into()),
        ..fault("fcm", &token)
    });
    let result = stack.send(&clients, FCM, &token).await;
    assert_eq!(
        result.outcomes,
        vec![Outcome::InvalidToken {
            reason: "SENDER_ID_MISMATCH".into()
        }]
    );
}

#[tokio::test]
async fn fcm_expired_access_token_is_renewed_and_the_push_delivered_once() {
    let stack = Stack::start().await;
    let clients = stack.clients(Vendor::Fcm);
    let (first, second) = (device(5), device(6));
    assert_eq!(
        stack.send(&clients, FCM, &first).await.outcomes,
        vec![Outcome::Delivered]
    );
    stack.sim.expire_auth();
    let result = stack.send(&clients, FCM, &second).await;
    assert_eq!(
        result,
        SendResult {
            status: 200,
            outcomes: vec![Outcome::Delivered]
        }
    );
    assert_eq!(stack.deliveries_to("fcm", &first), 1);
    assert_eq!(stack.deliveries_to("fcm", &second), 1);
}

#[tokio::test]
async fn fcm_short_lived_access_tokens_are_replaced_in_time() {
    let stack = Stack::start_with(
        |sim| sim.fcm_token_lifetime = Duration::from_secs(2),
        |_| {},
    )
    .await;
    let clients = stack.clients(Vendor::Fcm);
    for n in 0..3 {
        let token = device(10 + n);
        assert_eq!(
            stack.send(&clients, FCM, &token).await.outcomes,
            vec![Outcome::Delivered]
        );
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
}

#[tokio::test]
async fn fcm_an_account_the_token_endpoint_refuses_is_rejected() {
    // The simulator trusts no service account: the grant is refused.
    let stack = Stack::start_with(|sim| sim.fcm_accounts.clear(), |_| {}).await;
    let clients = stack.clients(Vendor::Fcm);
    let result = stack.send(&clients, FCM, &device(20)).await;
    assert_eq!(result.status, 400);
    assert!(
        matches!(&result.outcomes[..], [Outcome::Rejected { reason }] if reason.starts_with("auth: 400")),
        "{result:?}"
    );
}

#[tokio::test]
async fn fcm_timeout_is_retried() {
    let stack = Stack::start_with(
        |_| {},
        |config| config.sender.request_timeout_ms = SHORT_TIMEOUT_MS,
    )
    .await;
    let clients = stack.clients(Vendor::Fcm);
    let token = device(21);
    stack.fault(impush_sim::Fault {
        delay_ms: Some(LONG_DELAY.as_millis() as u64),
        ..fault("fcm", &token)
    });
    let result = stack.send(&clients, FCM, &token).await;
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
async fn fcm_unreachable_token_endpoint_is_retried() {
    let stack = Stack::start_with(
        |_| {},
        |config| {
            let fcm = config.vendors.get_mut(&FCM).unwrap().fcm.as_mut().unwrap();
            fcm.token_uri = Some("http://127.0.0.1:9/token".into());
        },
    )
    .await;
    let clients = stack.clients(Vendor::Fcm);
    let result = stack.send(&clients, FCM, &device(22)).await;
    assert_eq!(result.status, 0);
    assert!(
        matches!(&result.outcomes[..], [Outcome::Retry { after: None, reason }] if reason.starts_with("auth: connect")),
        "{result:?}"
    );
}
