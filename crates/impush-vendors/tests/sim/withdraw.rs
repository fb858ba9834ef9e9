//! Recall withdrawals (HarmonyOS `messages:revoke`, Xiaomi `regid/revoke`) sent by the vendor
//! clients like pushes: the simulator takes back the notification the push showed, and its
//! refusals are classified like a push's.

use impush_core::payload::withdraw::build_withdrawal;
use impush_core::{Notification, PushTarget, Vendor, build_payload};
use impush_vendors::{Outcome, SendResult, VendorClients};

use crate::common::*;

const XIAOMI: u64 = 4;
const HARMONY: u64 = 10;

/// The pushed message and its recall's notification: they share the collapse id.
fn pushed_and_recalled() -> (Notification, Notification) {
    let push = Notification {
        collapse_id: "m-oops".into(),
        ..notification()
    };
    let recall = Notification {
        body: "[message recalled]".into(),
        collapse_id: "m-oops".into(),
        ..Notification::default()
    };
    (push, recall)
}

async fn push_then_withdraw(
    stack: &Stack,
    clients: &VendorClients,
    business_id: u64,
    targets: &[PushTarget],
) -> SendResult {
    let (push, recall) = pushed_and_recalled();
    let credential = &stack.config.credentials[&business_id];
    let request = build_payload(&push, credential, targets).unwrap();
    let pushed = clients.send(business_id, &request, targets).await;
    assert!(
        pushed.outcomes.iter().all(|o| *o == Outcome::Delivered),
        "{pushed:?}"
    );
    let withdrawal = build_withdrawal(&recall, credential, targets)
        .unwrap()
        .unwrap();
    clients.send(business_id, &withdrawal, targets).await
}

#[tokio::test]
async fn a_harmony_withdrawal_takes_back_the_notification_its_push_showed() {
    let stack = Stack::start_oem(HARMONY, "harmony", |_| {}, |_| {}).await;
    let clients = stack.clients(Vendor::Harmony);
    let targets = [target("MAMzLgEAAA00001ZBx"), target("MAMzLgEAAA00002ZBx")];
    let result = push_then_withdraw(&stack, &clients, HARMONY, &targets).await;
    assert_eq!(
        result,
        SendResult {
            status: 200,
            outcomes: vec![Outcome::Delivered, Outcome::Delivered]
        }
    );
    let tray = stack.sim.notifications(Some("harmony"));
    assert_eq!(tray.len(), 2, "{tray:#?}");
    assert!(
        tray.iter().all(|n| n.withdrawn && n.replaced == 0),
        "{tray:#?}"
    );
    assert_eq!(
        stack.sim.deliveries(Some("harmony")).len(),
        2,
        "no push was sent"
    );
}

#[tokio::test]
async fn a_xiaomi_withdrawal_takes_back_the_notification_its_push_showed() {
    let stack = Stack::start_oem(XIAOMI, "xiaomi", |_| {}, |_| {}).await;
    let clients = stack.clients(Vendor::Xiaomi);
    let targets = [target("ZBfL1d4rX6y/RWxiaomi=")];
    let result = push_then_withdraw(&stack, &clients, XIAOMI, &targets).await;
    assert_eq!(result.outcomes, vec![Outcome::Delivered]);
    let tray = stack.sim.notifications(Some("xiaomi"));
    assert_eq!(tray.len(), 1, "{tray:#?}");
    assert!(tray[0].withdrawn, "{tray:#?}");
    assert_eq!(tray[0].body.as_deref(), Some("Denny: see you at 5"));
}

#[tokio::test]
async fn a_withdrawal_the_vendor_cannot_take_now_is_retried_and_a_refused_one_rejected() {
    // (business_id, personality, token, fault status, fault reason, outcome is a retry?)
    let table = [
        (
            HARMONY,
            "harmony",
            "MAMzLgEAAA00003ZBx",
            500,
            "81000001",
            true,
        ),
        (
            HARMONY,
            "harmony",
            "MAMzLgEAAA00004ZBx",
            400,
            "80100001",
            false,
        ),
        (XIAOMI, "xiaomi", "ZBfL1d4rX6y/RWbusy=", 429, "10027", true),
        (XIAOMI, "xiaomi", "ZBfL1d4rX6y/RWpkg=", 400, "22022", false),
    ];
    for (business_id, vendor, token, status, reason, retry) in table {
        let stack = Stack::start_oem(business_id, vendor, |_| {}, |_| {}).await;
        let clients = stack.clients(if vendor == "harmony" {
            Vendor::Harmony
        } else {
            Vendor::Xiaomi
        });
        let (push, recall) = pushed_and_recalled();
        let targets = [target(token)];
        let credential = &stack.config.credentials[&business_id];
        let request = build_payload(&push, credential, &targets).unwrap();
        clients.send(business_id, &request, &targets).await;
        stack.fault(impush_sim::Fault {
            status: Some(status),
            reason: Some(reason.into()),
            ..fault(vendor, token)
        });
        let withdrawal = build_withdrawal(&recall, credential, &targets)
            .unwrap()
            .unwrap();
        let result = clients.send(business_id, &withdrawal, &targets).await;
        match &result.outcomes[..] {
            [Outcome::Retry { .. }] => assert!(retry, "{vendor} {reason}: {result:?}"),
            [Outcome::Rejected { .. }] => assert!(!retry, "{vendor} {reason}: {result:?}"),
            other => panic!("{vendor} {reason}: {other:?}"),
        }
        let tray = stack.sim.notifications(Some(vendor));
        assert!(tray.iter().all(|n| !n.withdrawn), "{vendor}: {tray:#?}");
    }
}
