//! vivo: the authToken handshake against the simulator, `/message/send` answers, auth
//! expiry, rate limit and daily quota, credential errors.

use std::time::Duration;

use impush_core::Vendor;
use impush_vendors::{Outcome, SendResult, VendorClients};

use crate::common::*;

/// A regId of the shape vivo gives out.
fn device(n: u32) -> String {
    format!("1630{n:08}0101a2b3c4d5")
}

async fn vivo_stack() -> (Stack, VendorClients) {
    let stack = Stack::start_oem(VIVO, "vivo", |_| {}, |_| {}).await;
    let clients = stack.clients(Vendor::Vivo);
    (stack, clients)
}

#[tokio::test]
async fn vivo_push_is_delivered_once() {
    let (stack, clients) = vivo_stack().await;
    let token = device(1);
    let result = stack.send(&clients, VIVO, &token).await;
    assert_eq!(
        result,
        SendResult {
            status: 200,
            outcomes: vec![Outcome::Delivered]
        }
    );
    let deliveries = stack.sim.deliveries(Some("vivo"));
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].token, token);
    assert_eq!(deliveries[0].title.as_deref(), Some("Team chat"));
    assert_eq!(
        deliveries[0].ext.as_deref(),
        Some(r#"{"chat":"c2c:denny"}"#)
    );
}

#[tokio::test]
async fn vivo_invalid_reg_id_is_an_invalid_token() {
    let (stack, clients) = vivo_stack().await;
    let result = stack.send(&clients, VIVO, "invalid-0001").await;
    assert_eq!(
        result.outcomes,
        vec![Outcome::InvalidToken {
            reason: "10302".into()
        }]
    );
    assert!(stack.sim.deliveries(Some("vivo")).is_empty());
}

#[tokio::test]
async fn vivo_expired_auth_token_is_renewed_and_the_push_delivered_once() {
    let (stack, clients) = vivo_stack().await;
    let (first, second) = (device(2), device(3));
    assert_eq!(
        stack.send(&clients, VIVO, &first).await.outcomes,
        vec![Outcome::Delivered]
    );
    stack.sim.expire_auth();
    let result = stack.send(&clients, VIVO, &second).await;
    assert_eq!(result.outcomes, vec![Outcome::Delivered]);
    assert_eq!(stack.deliveries_to("vivo", &first), 1);
    assert_eq!(stack.deliveries_to("vivo", &second), 1);
}

#[tokio::test]
async fn vivo_too_fast_is_retried_after_retry_after() {
    let (stack, clients) = vivo_stack().await;
    let token = device(4);
    stack.fault(impush_sim::Fault {
        status: Some(429),
        reason: Some("10072".into()),
        retry_after_s: Some(6),
        ..fault("vivo", &token)
    });
    let result = stack.send(&clients, VIVO, &token).await;
    assert_eq!(
        result.outcomes,
        vec![Outcome::Retry {
            after: Some(Duration::from_secs(6)),
            reason: "10072".into()
        }]
    );
}

#[tokio::test]
async fn vivo_daily_quota_is_retried_until_midnight_in_china() {
    let (stack, clients) = vivo_stack().await;
    let token = device(5);
    stack.fault(impush_sim::Fault {
        status: Some(429),
        reason: Some("10070".into()),
        ..fault("vivo", &token)
    });
    let result = stack.send(&clients, VIVO, &token).await;
    match &result.outcomes[..] {
        [
            Outcome::Retry {
                after: Some(after),
                reason,
            },
        ] => {
            assert_eq!(reason, "10070");
            assert!(*after > Duration::ZERO && *after <= Duration::from_secs(86_400));
        }
        other => panic!("expected a retry until midnight, got {other:?}"),
    }
}

#[tokio::test]
async fn vivo_an_app_secret_the_simulator_does_not_know_is_rejected() {
    let stack = Stack::start_oem(
        VIVO,
        "vivo",
        |sim| {
            for app in &mut sim.vivo_apps {
                app.app_secret = "another-secret".into();
            }
        },
        |_| {},
    )
    .await;
    let clients = stack.clients(Vendor::Vivo);
    let result = stack.send(&clients, VIVO, &device(6)).await;
    assert_eq!(
        result.outcomes,
        vec![Outcome::Rejected {
            reason: "auth: 10000".into()
        }]
    );
}

#[tokio::test]
async fn vivo_malformed_credential_is_a_start_up_error_naming_the_field() {
    let stack = Stack::start_oem(
        VIVO,
        "vivo",
        |_| {},
        |config| {
            config
                .vendors
                .get_mut(&VIVO)
                .unwrap()
                .vivo
                .as_mut()
                .unwrap()
                .app_key
                .clear();
        },
    )
    .await;
    let err = VendorClients::from_config(&stack.config, Vendor::Vivo)
        .unwrap_err()
        .to_string();
    assert!(err.contains("credential 6"), "{err}");
    assert!(err.contains("`vivo.app_key`"), "{err}");
}
