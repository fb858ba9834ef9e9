//! The OPPO personality against real requests: the auth handshake with OPPO's codes, form
//! unicast and unicast_batch with per-token results, auth expiry and faults.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{Value, json};

const APP_KEY: &str = "impush-oppo-app-key-5";

fn master_secret() -> String {
    std::fs::read_to_string(repo().join("deploy/local/keys/oppo-test-master-secret.txt"))
        .unwrap()
        .trim()
        .to_owned()
}

fn now_ms() -> u64 {
    now_s() * 1000
}

async fn auth_with(sim: &impush_sim::RunningSim, form: &[(&str, String)]) -> Value {
    let response = h1()
        .post(format!("{}/server/v1/auth", sim.base_url("oppo")))
        .form(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    json_of(response).await
}

fn signed(app_key: &str, timestamp: u64, secret: &str) -> Vec<(&'static str, String)> {
    let sign = impush_sim::sha256_hex(format!("{app_key}{timestamp}{secret}").as_bytes());
    vec![
        ("app_key", app_key.to_owned()),
        ("timestamp", timestamp.to_string()),
        ("sign", sign),
    ]
}

async fn auth_token(sim: &impush_sim::RunningSim) -> String {
    let body = auth_with(sim, &signed(APP_KEY, now_ms(), &master_secret())).await;
    assert_eq!(body["code"], 0, "{body}");
    body["data"]["auth_token"].as_str().unwrap().to_owned()
}

fn message(token: &str) -> Value {
    json!({"target_type": 2, "target_value": token, "notification": {
        "title": "Team chat", "content": "Denny: see you at 5",
        "action_parameters": "{\"ext\":\"{\\\"chat\\\":1}\"}"}})
}

async fn post_form(
    sim: &impush_sim::RunningSim,
    path: &str,
    form: &[(&str, String)],
) -> (u16, Value) {
    let response = h1()
        .post(format!("{}{path}", sim.base_url("oppo")))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, json_of(response).await)
}

const UNICAST: &str = "/server/v1/message/notification/unicast";
const BATCH: &str = "/server/v1/message/notification/unicast_batch";

#[tokio::test]
async fn auth_checks_app_key_timestamp_and_sha256_sign_with_oppos_codes() {
    let sim = start().await;
    let secret = master_secret();
    let now = now_ms();
    let mut unsigned = signed(APP_KEY, now, &secret);
    unsigned.pop();
    let cases = [
        (vec![], 15),
        (signed("unknown-app", now, &secret), 14),
        (unsigned, 17),
        (signed(APP_KEY, now, "wrong-secret"), 16),
        (signed(APP_KEY, now - 3_600_000, &secret), 19),
    ];
    for (form, code) in cases {
        let body = auth_with(&sim, &form).await;
        assert_eq!(body["code"], code, "{form:?}: {body}");
    }
    assert!(!auth_token(&sim).await.is_empty());
}

#[tokio::test]
async fn unicast_is_recorded_and_answers_a_message_id() {
    let sim = start().await;
    let token = auth_token(&sim).await;
    let (status, body) = post_form(
        &sim,
        UNICAST,
        &[
            ("auth_token", token),
            ("message", message("reg-1").to_string()),
        ],
    )
    .await;
    assert_eq!((status, body["code"].clone()), (200, json!(0)), "{body}");
    assert!(body["data"]["messageId"].is_string());
    let deliveries = sim.deliveries(Some("oppo"));
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].token, "reg-1");
    assert_eq!(deliveries[0].title.as_deref(), Some("Team chat"));
    assert_eq!(deliveries[0].ext.as_deref(), Some("{\"chat\":1}"));
}

#[tokio::test]
async fn sends_without_or_with_an_expired_auth_token_get_29_and_11() {
    let sim = start().await;
    let msg = message("reg-1").to_string();
    let (_, body) = post_form(&sim, UNICAST, &[("message", msg.clone())]).await;
    assert_eq!(body["code"], 29);
    let (_, body) = post_form(
        &sim,
        UNICAST,
        &[("auth_token", "forged".into()), ("message", msg.clone())],
    )
    .await;
    assert_eq!(body["code"], 11);
    let token = auth_token(&sim).await;
    sim.expire_auth();
    let (_, body) = post_form(&sim, UNICAST, &[("auth_token", token), ("message", msg)]).await;
    assert_eq!(body["code"], 11);
    assert!(sim.deliveries(Some("oppo")).is_empty());
}

#[tokio::test]
async fn a_json_body_is_not_read_as_a_form() {
    let sim = start().await;
    let token = auth_token(&sim).await;
    let response = h1()
        .post(format!("{}{UNICAST}", sim.base_url("oppo")))
        .json(&json!({"auth_token": token, "message": message("reg-1")}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(response).await["code"], 29);
}

#[tokio::test]
async fn bad_messages_get_40_and_41() {
    let sim = start().await;
    let token = auth_token(&sim).await;
    let mut no_title = message("reg-1");
    no_title["notification"]["title"] = Value::Null;
    let mut bad_type = message("reg-1");
    bad_type["target_type"] = json!(9);
    let cases = [
        (UNICAST, "message", no_title.to_string(), 40),
        (UNICAST, "message", bad_type.to_string(), 41),
        (UNICAST, "message", "{not json".to_owned(), 41),
        (BATCH, "messages", message("reg-1").to_string(), 41),
        (
            BATCH,
            "messages",
            Value::Array(vec![message("r"); 1001]).to_string(),
            41,
        ),
    ];
    for (path, field, value, code) in cases {
        let (_, body) =
            post_form(&sim, path, &[("auth_token", token.clone()), (field, value)]).await;
        assert_eq!(body["code"], code, "{path} {body}");
    }
}

#[tokio::test]
async fn invalid_tokens_get_10000_alone_and_inside_a_batch() {
    let sim = start().await;
    let token = auth_token(&sim).await;
    let (_, body) = post_form(
        &sim,
        UNICAST,
        &[
            ("auth_token", token.clone()),
            ("message", message("invalid-1").to_string()),
        ],
    )
    .await;
    assert_eq!(body["code"], 10000);
    let batch = json!([message("reg-a"), message("invalid-2"), message("reg-b")]);
    let (_, body) = post_form(
        &sim,
        BATCH,
        &[("auth_token", token), ("messages", batch.to_string())],
    )
    .await;
    assert_eq!(body["code"], 0, "{body}");
    let items = body["data"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert!(items[0]["messageId"].is_string());
    assert_eq!(items[1]["registrationId"], "invalid-2");
    assert_eq!(items[1]["errorCode"], 10000);
    assert!(items[2]["errorCode"].is_null());
    let tokens: Vec<String> = sim
        .deliveries(Some("oppo"))
        .into_iter()
        .map(|d| d.token)
        .collect();
    assert_eq!(tokens, ["reg-a", "reg-b"]);
}

#[tokio::test]
async fn faults_answer_with_oppos_code_per_token_or_for_the_request() {
    let sim = start().await;
    let token = auth_token(&sim).await;
    let fault = |token: &str, code: &str| impush_sim::Fault {
        vendor: "oppo".into(),
        token: Some(token.into()),
        status: Some(503),
        reason: Some(code.into()),
        retry_after_s: Some(9),
        times: 1,
        delay_ms: None,
        accepted: false,
    };
    sim.inject_fault(fault("reg-x", "10001")).unwrap();
    let batch = json!([message("reg-x"), message("reg-y")]);
    let (status, body) = post_form(
        &sim,
        BATCH,
        &[
            ("auth_token", token.clone()),
            ("messages", batch.to_string()),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"][0]["errorCode"], 10001);
    assert!(body["data"][1]["messageId"].is_string());

    sim.inject_fault(fault("reg-y", "-2")).unwrap();
    let response = h1()
        .post(format!("{}{BATCH}", sim.base_url("oppo")))
        .form(&[("auth_token", token), ("messages", batch.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "9");
    assert_eq!(json_of(response).await["code"], -2);
    assert_eq!(
        sim.deliveries(Some("oppo")).len(),
        1,
        "only reg-y's first push"
    );
}

#[tokio::test]
async fn a_repeated_app_message_id_reaches_each_device_once() {
    let sim = start().await;
    let token = auth_token(&sim).await;
    let with_id = |reg: &str, id: &str| {
        let mut message = message(reg);
        message["notification"]["app_message_id"] = json!(id);
        message
    };
    // (message, what the batch holds) sent in turn; a repeat to the same device is answered
    // as a success but not delivered again.
    let sends = [
        json!([with_id("reg-1", "impush-1"), with_id("reg-2", "impush-1")]),
        json!([with_id("reg-1", "impush-1"), with_id("reg-1", "impush-2")]),
    ];
    for messages in sends {
        let (status, body) = post_form(
            &sim,
            BATCH,
            &[
                ("auth_token", token.clone()),
                ("messages", messages.to_string()),
            ],
        )
        .await;
        assert_eq!((status, body["code"].clone()), (200, json!(0)), "{body}");
        assert!(body["data"][0]["messageId"].is_string(), "{body}");
    }
    let mut delivered: Vec<(String, String)> = sim
        .deliveries(Some("oppo"))
        .into_iter()
        .map(|d| {
            let id = d.payload["notification"]["app_message_id"]
                .as_str()
                .unwrap();
            (d.token, id.to_owned())
        })
        .collect();
    delivered.sort();
    let expected = [
        ("reg-1", "impush-1"),
        ("reg-1", "impush-2"),
        ("reg-2", "impush-1"),
    ];
    assert_eq!(
        delivered,
        expected.map(|(t, i)| (t.to_owned(), i.to_owned())).to_vec()
    );
}

#[tokio::test]
async fn an_app_message_id_that_is_not_a_string_gets_41() {
    let sim = start().await;
    let token = auth_token(&sim).await;
    let mut message = message("reg-1");
    message["notification"]["app_message_id"] = json!(42);
    let (_, body) = post_form(
        &sim,
        UNICAST,
        &[("auth_token", token), ("message", message.to_string())],
    )
    .await;
    assert_eq!(body["code"], 41, "{body}");
    assert!(sim.deliveries(Some("oppo")).is_empty());
}
