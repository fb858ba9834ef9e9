//! The Xiaomi personality against real requests: the `key=` header, the form body, MiPush's
//! codes, `bad_regids` in mixed batches, faults.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{Value, json};

fn app_secret() -> String {
    std::fs::read_to_string(repo().join("deploy/local/keys/xiaomi-test-app-secret.txt"))
        .unwrap()
        .trim()
        .to_owned()
}

fn form(regids: &str) -> Vec<(&'static str, String)> {
    vec![
        ("restricted_package_name", "com.example.impush".into()),
        ("title", "T".into()),
        ("description", "B".into()),
        ("notify_type", "-1".into()),
        ("pass_through", "0".into()),
        ("extra.ext", "{}".into()),
        ("registration_id", regids.into()),
    ]
}

async fn send(sim: &impush_sim::RunningSim, key: &str, fields: &[(&str, String)]) -> (u16, Value) {
    let response = h1()
        .post(format!("{}/v3/message/regid", sim.base_url("xiaomi")))
        .header("authorization", format!("key={key}"))
        .form(fields)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), json_of(response).await)
}

#[tokio::test]
async fn accepted_send_is_recorded_per_regid_with_bad_regids_listed() {
    let sim = start().await;
    let (status, body) = send(&sim, &app_secret(), &form("r1,invalid-2,r3")).await;
    assert_eq!(status, 200);
    assert_eq!(
        (body["result"].clone(), body["code"].clone()),
        (json!("ok"), json!(0))
    );
    assert_eq!(body["data"]["bad_regids"], "invalid-2");
    let tokens: Vec<String> = sim
        .deliveries(Some("xiaomi"))
        .into_iter()
        .map(|d| d.token)
        .collect();
    assert_eq!(tokens, ["r1", "r3"]);
    let delivery = &sim.deliveries(Some("xiaomi"))[0];
    assert_eq!(
        (delivery.title.as_deref(), delivery.body.as_deref()),
        (Some("T"), Some("B"))
    );
    assert_eq!(delivery.sound.as_deref(), Some("default"));
    assert_eq!(delivery.ext.as_deref(), Some("{}"));
}

#[tokio::test]
async fn a_wrong_key_is_21301() {
    let sim = start().await;
    let (status, body) = send(&sim, "wrong", &form("r1")).await;
    assert_eq!(
        (status, body["result"].clone(), body["code"].clone()),
        (200, json!("error"), json!(21301))
    );
    assert!(sim.deliveries(Some("xiaomi")).is_empty());
}

#[tokio::test]
async fn malformed_sends_get_mipush_codes() {
    let sim = start().await;
    let response = h1()
        .post(format!("{}/v3/message/regid", sim.base_url("xiaomi")))
        .header("authorization", format!("key={}", app_secret()))
        .json(&json!({"registration_id": "r1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(response).await["code"], 10007);
    let (_, body) = send(&sim, &app_secret(), &form("")).await;
    assert_eq!(body["code"], 10016);
    let mut other_package = form("r1");
    other_package[0].1 = "com.other".into();
    let (_, body) = send(&sim, &app_secret(), &other_package).await;
    assert_eq!(body["code"], 22022);
    assert!(sim.deliveries(Some("xiaomi")).is_empty());
}

#[tokio::test]
async fn faults_answer_200_with_the_mipush_code_and_retry_after() {
    let sim = start().await;
    let response = sim_post(
        &h1(),
        &sim,
        "/sim/faults",
        &json!({"vendor": "xiaomi", "token": "r2", "status": 429, "reason": "10027", "retry_after_s": 4}),
    )
    .await;
    assert!(response.status().is_success());
    let response = h1()
        .post(format!("{}/v3/message/regid", sim.base_url("xiaomi")))
        .header("authorization", format!("key={}", app_secret()))
        .form(&form("r1,r2"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["retry-after"], "4");
    let body = json_of(response).await;
    assert_eq!(
        (body["result"].clone(), body["code"].clone()),
        (json!("error"), json!(10027))
    );
    assert!(sim.deliveries(Some("xiaomi")).is_empty());
}
