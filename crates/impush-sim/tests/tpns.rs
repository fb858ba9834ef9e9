//! The TPNS personality against raw requests: Basic auth, the JSON push, `ret_code`s and
//! `invalid_targe_list`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{Value, json};

const ACCESS_ID: &str = "1500000008";

fn secret_key() -> String {
    std::fs::read_to_string(repo().join("deploy/local/keys/tpns-test-secret-key.txt"))
        .unwrap()
        .trim_end()
        .to_owned()
}

fn push(tokens: &[&str], ignore_invalid: bool) -> Value {
    let mut body = json!({
        "audience_type": if tokens.len() == 1 { "token" } else { "token_list" },
        "token_list": tokens,
        "message_type": "notify",
        "message": {"title": "Team chat", "content": "Denny: see you at 5",
                    "android": {"ring": 1, "custom_content": "{\"a\":1}"}}
    });
    if ignore_invalid {
        body["ignore_invalid_token"] = json!(1);
    }
    body
}

async fn send(sim: &impush_sim::RunningSim, login: Option<(&str, &str)>, body: &Value) -> Value {
    let mut request = h1().post(format!("{}/v3/push/app", sim.base_url("tpns")));
    if let Some((user, password)) = login {
        request = request.basic_auth(user, Some(password));
    }
    let response = request.json(body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    json_of(response).await
}

#[tokio::test]
async fn batch_lists_invalid_tokens_and_delivers_the_others() {
    let sim = start().await;
    let key = secret_key();
    let body = push(&["t1", "invalid-2", "t3"], true);
    let answer = send(&sim, Some((ACCESS_ID, &key)), &body).await;
    assert_eq!(answer["ret_code"], 0, "{answer}");
    assert_eq!(answer["err_msg"], "NO_ERROR");
    assert_eq!(answer["invalid_targe_list"], json!(["invalid-2"]));
    let tokens: Vec<String> = sim
        .deliveries(Some("tpns"))
        .into_iter()
        .map(|d| d.token)
        .collect();
    assert_eq!(tokens, ["t1", "t3"]);
}

#[tokio::test]
async fn an_invalid_token_without_ignore_fails_the_request() {
    let sim = start().await;
    let key = secret_key();
    let answer = send(&sim, Some((ACCESS_ID, &key)), &push(&["invalid-1"], false)).await;
    assert_eq!(answer["ret_code"], 1_008_029);
    assert!(sim.deliveries(Some("tpns")).is_empty());
}

#[tokio::test]
async fn logins_and_bodies_tpns_refuses_get_its_codes() {
    let sim = start().await;
    let body = push(&["t1"], false);
    assert_eq!(send(&sim, None, &body).await["ret_code"], 1_008_003);
    assert_eq!(
        send(&sim, Some(("1500000099", "x")), &body).await["ret_code"],
        1_008_003
    );
    assert_eq!(
        send(&sim, Some((ACCESS_ID, "wrong")), &body).await["ret_code"],
        10_030_002
    );
    let key = secret_key();
    let mut no_title = body.clone();
    no_title["message"]["title"] = json!("");
    assert_eq!(
        send(&sim, Some((ACCESS_ID, &key)), &no_title).await["ret_code"],
        1_008_002
    );
    let mut tag = body.clone();
    tag["audience_type"] = json!("tag");
    assert_eq!(
        send(&sim, Some((ACCESS_ID, &key)), &tag).await["ret_code"],
        1_008_007
    );
    let response = h1()
        .post(format!("{}/v3/push/app", sim.base_url("tpns")))
        .basic_auth(ACCESS_ID, Some(&key))
        .form(&[("a", "b")])
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(response).await["ret_code"], 1_008_001);
    assert!(sim.deliveries(Some("tpns")).is_empty());
}

#[tokio::test]
async fn faults_answer_with_tpns_ret_codes() {
    let sim = start().await;
    let client = h1();
    let fault = json!({"vendor": "tpns", "status": 429, "reason": "1008028", "retry_after_s": 3});
    assert_eq!(
        sim_post(&client, &sim, "/sim/faults", &fault)
            .await
            .status(),
        201
    );
    let response = client
        .post(format!("{}/v3/push/app", sim.base_url("tpns")))
        .basic_auth(ACCESS_ID, Some(secret_key()))
        .json(&push(&["t1"], false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["retry-after"], "3");
    assert_eq!(json_of(response).await["ret_code"], 1_008_028);
    assert!(sim.deliveries(Some("tpns")).is_empty());
}
