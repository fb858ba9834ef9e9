//! The vivo personality against real requests: the md5-signed auth, `/message/send` with
//! the `authToken` header, and vivo's result codes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{Value, json};

const APP_ID: &str = "100006";
const APP_KEY: &str = "impush-vivo-app-key-6";

fn app_secret() -> String {
    std::fs::read_to_string(repo().join("deploy/local/keys/vivo-test-app-secret.txt"))
        .unwrap()
        .trim()
        .to_owned()
}

async fn post(
    sim: &impush_sim::RunningSim,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> Value {
    let mut request = h1()
        .post(format!("{}{path}", sim.base_url("vivo")))
        .json(body);
    if let Some(token) = token {
        request = request.header("authToken", token);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    json_of(response).await
}

fn auth_body(secret: &str) -> Value {
    let timestamp = now_s() * 1000;
    let sign = impush_sim::md5_hex(format!("{APP_ID}{APP_KEY}{timestamp}{secret}").as_bytes());
    json!({"appId": APP_ID, "appKey": APP_KEY, "timestamp": timestamp, "sign": sign})
}

fn message(reg_id: &str) -> Value {
    json!({"appId": APP_ID, "regId": reg_id, "notifyType": 4, "title": "Team chat",
        "content": "Denny: see you at 5", "clientCustomMap": {"ext": "{\"chat\":1}"},
        "requestId": "r1"})
}

#[tokio::test]
async fn auth_then_send_is_recorded_and_bad_signs_get_10000() {
    let sim = start().await;
    let refused = post(&sim, "/message/auth", None, &auth_body("wrong")).await;
    assert_eq!(refused["result"], 10000);
    let body = post(&sim, "/message/auth", None, &auth_body(&app_secret())).await;
    assert_eq!(body["result"], 0, "{body}");
    let token = body["authToken"].as_str().unwrap().to_owned();

    let sent = post(&sim, "/message/send", Some(&token), &message("reg-1")).await;
    assert_eq!(sent["result"], 0, "{sent}");
    let deliveries = sim.deliveries(Some("vivo"));
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].body.as_deref(), Some("Denny: see you at 5"));
    assert_eq!(deliveries[0].ext.as_deref(), Some("{\"chat\":1}"));

    let invalid = post(&sim, "/message/send", Some(&token), &message("invalid-1")).await;
    assert_eq!(invalid["result"], 10302);
    let mut other_app = message("reg-2");
    other_app["appId"] = json!("999");
    let mismatch = post(&sim, "/message/send", Some(&token), &other_app).await;
    assert_eq!(mismatch["result"], 10094);

    let missing = post(&sim, "/message/send", None, &message("reg-3")).await;
    assert_eq!(missing["result"], 10000);
    sim.expire_auth();
    let expired = post(&sim, "/message/send", Some(&token), &message("reg-4")).await;
    assert_eq!(expired["result"], 10000);
    assert_eq!(sim.deliveries(Some("vivo")).len(), 1);
}

#[tokio::test]
async fn a_repeated_request_id_is_answered_but_delivered_once() {
    let sim = start().await;
    let body = post(&sim, "/message/auth", None, &auth_body(&app_secret())).await;
    let token = body["authToken"].as_str().unwrap().to_owned();
    let with_id = |reg: &str, id: Value| {
        let mut message = message(reg);
        message["requestId"] = id;
        message
    };
    // (message, result): the repeat is answered like the first; a requestId that is not
    // at most 64 characters is a parameter error.
    let sends = [
        (with_id("reg-1", json!("impush-1")), 0),
        (with_id("reg-1", json!("impush-1")), 0),
        (with_id("reg-1", json!("impush-2")), 0),
        (with_id("reg-1", json!("x".repeat(65))), 10055),
        (with_id("reg-1", json!(7)), 10055),
    ];
    for (message, result) in sends {
        let sent = post(&sim, "/message/send", Some(&token), &message).await;
        assert_eq!(sent["result"], result, "{message}: {sent}");
    }
    let ids: Vec<Value> = sim
        .deliveries(Some("vivo"))
        .into_iter()
        .map(|d| d.payload["requestId"].clone())
        .collect();
    assert_eq!(ids, [json!("impush-1"), json!("impush-2")]);

    sim.clear_deliveries();
    let again = post(
        &sim,
        "/message/send",
        Some(&token),
        &with_id("reg-1", json!("impush-1")),
    )
    .await;
    assert_eq!(again["result"], 0);
    assert_eq!(
        sim.deliveries(Some("vivo")).len(),
        1,
        "forgotten with the deliveries"
    );
}
