//! The Meizu personality against raw requests: Meizu's form, signature and error codes, and
//! per-pushId answers in `value`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{Value, json};

const PATH: &str = "/garcia/api/server/push/varnished/pushByPushId";
const APP_ID: &str = "100007";
const MESSAGE: &str = r#"{"noticeBarInfo":{"noticeBarType":0,"title":"Team chat","content":"Denny: see you at 5"},"clickTypeInfo":{"clickType":0,"parameters":{"ext":"x"}}}"#;
const PUSH_IDS: &str = "RA50a,invalid-b,RA50c";
/// md5("appId=100007messageJson=<MESSAGE>pushIds=<PUSH_IDS>" + the local Meizu appSecret),
/// computed outside Rust (Python's hashlib) so the simulator is not checked against itself.
const SIGN: &str = "add8cc6422672fa5819386344abd73b4";

async fn post(sim: &impush_sim::RunningSim, form: &[(&str, &str)]) -> Value {
    let response = h1()
        .post(format!("{}{PATH}", sim.base_url("meizu")))
        .form(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "Meizu answers errors with HTTP 200");
    json_of(response).await
}

fn form(sign: &str) -> Vec<(&str, &str)> {
    vec![
        ("appId", APP_ID),
        ("pushIds", PUSH_IDS),
        ("messageJson", MESSAGE),
        ("sign", sign),
    ]
}

#[tokio::test]
async fn signed_push_answers_per_push_id_and_records_the_accepted_ones() {
    let sim = start().await;
    let body = post(&sim, &form(SIGN)).await;
    assert_eq!(body["code"], "200", "{body}");
    assert_eq!(body["value"], json!({"110002": ["invalid-b"]}));
    assert!(body["msgId"].as_str().is_some_and(|m| !m.is_empty()));
    let deliveries = sim.deliveries(Some("meizu"));
    let tokens: Vec<&str> = deliveries.iter().map(|d| d.token.as_str()).collect();
    assert_eq!(tokens, ["RA50a", "RA50c"]);
    assert_eq!(deliveries[0].title.as_deref(), Some("Team chat"));
    assert_eq!(deliveries[0].ext.as_deref(), Some("x"));
}

#[tokio::test]
async fn requests_meizu_refuses_get_its_codes() {
    let sim = start().await;
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (form("0123456789abcdef0123456789abcdef"), "1006"),
        (form(SIGN)[1..].to_vec(), "110004"),
        (
            {
                let mut f = form(SIGN);
                f[0].1 = "999";
                f
            },
            "110000",
        ),
    ];
    for (fields, code) in cases {
        let body = post(&sim, &fields).await;
        assert_eq!(body["code"], code, "{body}");
        assert_eq!(body["value"], "");
    }
    let response = h1()
        .post(format!("{}{PATH}", sim.base_url("meizu")))
        .json(&json!({"appId": APP_ID}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(response).await["code"], "1005", "not a form");
    assert!(sim.deliveries(Some("meizu")).is_empty());
}

#[tokio::test]
async fn faults_answer_with_meizu_codes() {
    let sim = start().await;
    let client = h1();
    let fault = json!({"vendor": "meizu", "token": "RA50c", "status": 500, "reason": "513"});
    assert_eq!(
        sim_post(&client, &sim, "/sim/faults", &fault)
            .await
            .status(),
        201
    );
    let body = post(&sim, &form(SIGN)).await;
    assert_eq!(
        body["value"],
        json!({"110002": ["invalid-b"], "513": ["RA50c"]})
    );

    let fault = json!({"vendor": "meizu", "status": 429, "reason": "110010", "retry_after_s": 9});
    assert_eq!(
        sim_post(&client, &sim, "/sim/faults", &fault)
            .await
            .status(),
        201
    );
    let response = client
        .post(format!("{}{PATH}", sim.base_url("meizu")))
        .form(&form(SIGN))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["retry-after"], "9");
    assert_eq!(json_of(response).await["code"], "110010");
}
