//! Receipts from the simulator: switched on through `/sim/receipts`, a push that asks for a
//! receipt is followed by that vendor's receipt POSTed to the callback address (the
//! formats themselves are read back by impush-receipts' tests).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use common::*;
use serde_json::{Value, json};

/// A callback server that keeps every body it is sent.
async fn collector() -> (String, Arc<Mutex<Vec<String>>>) {
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let kept = Arc::clone(&got);
    let app = Router::new().route(
        "/r",
        post(move |body: String| {
            let kept = Arc::clone(&kept);
            async move {
                kept.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/r", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

fn xiaomi_secret() -> String {
    std::fs::read_to_string(repo().join("deploy/local/keys/xiaomi-test-app-secret.txt"))
        .unwrap()
        .trim()
        .to_owned()
}

#[tokio::test]
async fn a_push_asking_for_a_receipt_is_followed_by_the_vendor_receipt_once_switched_on() {
    let sim = start().await;
    let client = h1();
    let (url, got) = collector().await;
    let refused = sim_post(&client, &sim, "/sim/receipts", &json!({"vendor": "apns"})).await;
    assert_eq!(refused.status(), 400);
    let on = sim_post(
        &client,
        &sim,
        "/sim/receipts",
        &json!({"vendor": "xiaomi", "clicked": true}),
    )
    .await;
    assert_eq!(on.status(), 204);
    assert_eq!(
        sim_get(&client, &sim, "/sim/receipts").await[0]["vendor"],
        "xiaomi"
    );
    let fields = [
        ("restricted_package_name", "com.example.impush"),
        ("title", "T"),
        ("description", "B"),
        ("notify_type", "-1"),
        ("pass_through", "0"),
        ("extra.callback", url.as_str()),
        ("extra.callback.param", "7:m-1"),
        ("extra.callback.type", "19"),
        ("registration_id", "r1"),
    ];
    let sent = client
        .post(format!("{}/v3/message/regid", sim.base_url("xiaomi")))
        .header("authorization", format!("key={}", xiaomi_secret()))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);

    let mut waited = 0;
    while got.lock().unwrap().len() < 2 {
        assert!(
            waited < 200,
            "receipts not received: {:?}",
            got.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    let bodies = got.lock().unwrap().clone();
    let types: Vec<i64> = bodies
        .iter()
        .map(|body| {
            let form: Vec<(String, String)> = serde_urlencoded::from_str(body).unwrap();
            let data: Value = serde_json::from_str(&form[0].1).unwrap();
            let entry = data.as_object().unwrap().values().next().unwrap().clone();
            assert_eq!(entry["param"], "7:m-1");
            assert_eq!(entry["targets"], "r1");
            entry["type"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(types, [1, 2], "arrived, then clicked");

    let off = client
        .delete(format!("http://{}/sim/receipts", sim.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), 204);
    assert_eq!(sim_get(&client, &sim, "/sim/receipts").await, json!([]));
}
