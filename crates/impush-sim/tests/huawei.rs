//! The Huawei personality against real requests: the client-credentials grant, Push Kit's
//! send API and its codes, mixed batches, expiry, faults.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{Value, json};

const APP_ID: &str = "100000003";

fn app_secret() -> String {
    std::fs::read_to_string(repo().join("deploy/local/keys/huawei-test-app-secret.txt"))
        .unwrap()
        .trim()
        .to_owned()
}

async fn grant(client: &reqwest::Client, base: &str, id: &str, secret: &str) -> (u16, Value) {
    let response = client
        .post(format!("{base}/oauth2/v3/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), json_of(response).await)
}

async fn access_token(client: &reqwest::Client, base: &str) -> String {
    let (status, body) = grant(client, base, APP_ID, &app_secret()).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

fn message(tokens: &[&str]) -> Value {
    json!({"validate_only": false, "message": {
        "data": "{\"ext\":\"{}\"}",
        "android": {"category": "IM", "notification": {"title": "T", "body": "B", "click_action": {"type": 3}}},
        "token": tokens,
    }})
}

async fn send(client: &reqwest::Client, base: &str, token: &str, body: &Value) -> (u16, Value) {
    let response = client
        .post(format!("{base}/v1/{APP_ID}/messages:send"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), json_of(response).await)
}

#[tokio::test]
async fn client_credentials_grant_issues_a_bearer_token_and_refuses_bad_secrets() {
    let sim = start().await;
    let base = sim.base_url("huawei");
    let (status, body) = grant(&h1(), &base, APP_ID, &app_secret()).await;
    assert_eq!(status, 200);
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["token_type"], "Bearer");
    let (status, body) = grant(&h1(), &base, APP_ID, "wrong").await;
    assert_eq!(
        (status, body["error"].clone(), body["sub_error"].clone()),
        (400, json!(1101), json!(20186))
    );
    let (status, body) = grant(&h1(), &base, "999", "wrong").await;
    assert_eq!((status, body["sub_error"].clone()), (400, json!(20152)));
}

#[tokio::test]
async fn accepted_send_is_recorded_per_token_and_a_mixed_batch_is_80100000() {
    let sim = start().await;
    let base = sim.base_url("huawei");
    let client = h1();
    let token = access_token(&client, &base).await;
    let (status, body) = send(&client, &base, &token, &message(&["t1"])).await;
    assert_eq!((status, body["code"].clone()), (200, json!("80000000")));
    let (status, body) = send(&client, &base, &token, &message(&["t2", "invalid-x", "t3"])).await;
    assert_eq!((status, body["code"].clone()), (200, json!("80100000")));
    let details: Value = serde_json::from_str(body["msg"].as_str().unwrap()).unwrap();
    assert_eq!(
        details,
        json!({"success": 2, "failure": 1, "illegal_tokens": ["invalid-x"]})
    );
    let tokens: Vec<String> = sim
        .deliveries(Some("huawei"))
        .into_iter()
        .map(|d| d.token)
        .collect();
    assert_eq!(tokens, ["t1", "t2", "t3"]);
    let delivery = &sim.deliveries(Some("huawei"))[0];
    assert_eq!(
        (delivery.title.as_deref(), delivery.body.as_deref()),
        (Some("T"), Some("B"))
    );
    assert_eq!(delivery.ext.as_deref(), Some("{}"));
}

#[tokio::test]
async fn all_invalid_tokens_are_80300007() {
    let sim = start().await;
    let base = sim.base_url("huawei");
    let token = access_token(&h1(), &base).await;
    let (status, body) = send(&h1(), &base, &token, &message(&["invalid-a", "invalid-b"])).await;
    assert_eq!((status, body["code"].clone()), (200, json!("80300007")));
    assert!(sim.deliveries(Some("huawei")).is_empty());
}

#[tokio::test]
async fn missing_or_foreign_tokens_are_80200001_and_expired_ones_80200003() {
    let sim = start().await;
    let base = sim.base_url("huawei");
    let (status, body) = send(&h1(), &base, "made-up", &message(&["t"])).await;
    assert_eq!((status, body["code"].clone()), (401, json!("80200001")));
    let token = access_token(&h1(), &base).await;
    sim.expire_auth();
    let (status, body) = send(&h1(), &base, &token, &message(&["t"])).await;
    assert_eq!((status, body["code"].clone()), (401, json!("80200003")));
    let fresh = access_token(&h1(), &base).await;
    let (status, _) = send(&h1(), &base, &fresh, &message(&["t"])).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn malformed_sends_get_push_kit_codes() {
    let sim = start().await;
    let base = sim.base_url("huawei");
    let client = h1();
    let token = access_token(&client, &base).await;
    let response = client
        .post(format!("{base}/v1/{APP_ID}/messages:send"))
        .bearer_auth(&token)
        .form(&[("message", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(json_of(response).await["code"], "80100003");
    let (status, body) = send(&client, &base, &token, &message(&[])).await;
    assert_eq!((status, body["code"].clone()), (400, json!("80300010")));
    let mut no_title = message(&["t"]);
    no_title["message"]["android"]["notification"]
        .as_object_mut()
        .unwrap()
        .remove("title");
    let (status, body) = send(&client, &base, &token, &no_title).await;
    assert_eq!((status, body["code"].clone()), (400, json!("80100001")));
    assert!(sim.deliveries(Some("huawei")).is_empty());
}

#[tokio::test]
async fn faults_answer_with_the_huawei_code_and_retry_after() {
    let sim = start().await;
    let base = sim.base_url("huawei");
    let client = h1();
    let token = access_token(&client, &base).await;
    let response = sim_post(
        &client,
        &sim,
        "/sim/faults",
        &json!({"vendor": "huawei", "token": "t2", "status": 503, "reason": "81000001", "retry_after_s": 9}),
    )
    .await;
    assert!(response.status().is_success());
    let response = client
        .post(format!("{base}/v1/{APP_ID}/messages:send"))
        .bearer_auth(&token)
        .json(&message(&["t1", "t2"]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "9");
    assert_eq!(json_of(response).await["code"], "81000001");
    assert!(sim.deliveries(Some("huawei")).is_empty());
}
