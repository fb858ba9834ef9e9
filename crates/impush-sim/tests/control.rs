//! The `/sim` control API: injected faults (times, Retry-After, delay, per token), the
//! deliveries list with its vendor filter, and clearing both.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use impush_sim::Fault;
use serde_json::{Value, json};

async fn add_fault(client: &reqwest::Client, sim: &impush_sim::RunningSim, fault: Value) {
    let response = sim_post(client, sim, "/sim/faults", &fault).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
}

#[tokio::test]
async fn apns_fault_fails_the_next_times_requests_with_its_reason_and_retry_after() {
    let sim = start().await;
    let client = h2();
    add_fault(
        &client,
        &sim,
        json!({"vendor": "apns", "status": 429, "reason": "TooManyRequests", "retry_after_s": 7, "times": 2}),
    )
    .await;
    let jwt = apns_jwt(now_s());
    for _ in 0..2 {
        let response = apns_request(&client, &sim, APNS_TOKEN, &jwt)
            .json(&alert_body())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "7");
        assert!(response.headers().contains_key("apns-id"));
        assert_eq!(
            json_of(response).await,
            json!({"reason": "TooManyRequests"})
        );
    }
    let third = apns_request(&client, &sim, APNS_TOKEN, &jwt)
        .json(&alert_body())
        .send()
        .await
        .unwrap();
    assert_eq!(third.status(), 200);
    assert_eq!(sim.deliveries(None).len(), 1);
    assert_eq!(sim_get(&client, &sim, "/sim/faults").await, json!([]));
}

#[tokio::test]
async fn fcm_fault_carries_the_fcm_error_code_and_retry_after() {
    let sim = start().await;
    let client = h1();
    let token = access_token(&client, &sim).await;
    add_fault(
        &client,
        &sim,
        json!({"vendor": "fcm", "status": 503, "reason": "UNAVAILABLE", "retry_after_s": 3, "times": 1}),
    )
    .await;
    let response = fcm_send(&client, &sim, &token, &fcm_message(FCM_TOKEN)).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "3");
    assert_eq!(
        json_of(response).await,
        json!({"error": {"code": 503, "message": "The service is currently unavailable.", "status": "UNAVAILABLE",
            "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNAVAILABLE"}]}})
    );

    add_fault(
        &client,
        &sim,
        json!({"vendor": "fcm", "status": 429, "reason": "QUOTA_EXCEEDED", "times": 1}),
    )
    .await;
    let quota = json_of(fcm_send(&client, &sim, &token, &fcm_message(FCM_TOKEN)).await).await;
    assert_eq!(quota["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(quota["error"]["details"][0]["errorCode"], "QUOTA_EXCEEDED");

    add_fault(
        &client,
        &sim,
        json!({"vendor": "fcm", "status": 401, "reason": "UNAUTHENTICATED"}),
    )
    .await;
    let unauthenticated =
        json_of(fcm_send(&client, &sim, &token, &fcm_message(FCM_TOKEN)).await).await;
    assert_eq!(unauthenticated["error"]["status"], "UNAUTHENTICATED");
    assert!(unauthenticated["error"].get("details").is_none());

    assert_eq!(
        fcm_send(&client, &sim, &token, &fcm_message(FCM_TOKEN))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn fault_for_one_token_spares_the_others() {
    let sim = start().await;
    let client = h2();
    let other = "ff".repeat(32);
    add_fault(
        &client,
        &sim,
        json!({"vendor": "apns", "token": APNS_TOKEN, "status": 500, "reason": "InternalServerError"}),
    )
    .await;
    let jwt = apns_jwt(now_s());
    let spared = apns_request(&client, &sim, &other, &jwt)
        .json(&alert_body())
        .send()
        .await
        .unwrap();
    assert_eq!(spared.status(), 200);
    let struck = apns_request(&client, &sim, APNS_TOKEN, &jwt)
        .json(&alert_body())
        .send()
        .await
        .unwrap();
    assert_eq!(struck.status(), 500);
}

#[tokio::test]
async fn delay_fault_hangs_before_answering() {
    let sim = start().await;
    let client = h2();
    let jwt = apns_jwt(now_s());
    sim.inject_fault(Fault {
        vendor: "apns".into(),
        token: None,
        status: None,
        reason: None,
        retry_after_s: None,
        times: 1,
        delay_ms: Some(300),
        accepted: false,
    })
    .unwrap();
    let started = Instant::now();
    let slow = apns_request(&client, &sim, APNS_TOKEN, &jwt)
        .json(&alert_body())
        .send()
        .await
        .unwrap();
    assert_eq!(slow.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));

    add_fault(
        &client,
        &sim,
        json!({"vendor": "apns", "status": 503, "reason": "ServiceUnavailable", "delay_ms": 300}),
    )
    .await;
    let started = Instant::now();
    let timed_out = apns_request(&client, &sim, APNS_TOKEN, &jwt)
        .json(&alert_body())
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    assert!(timed_out.is_err_and(|e| e.is_timeout()));
    assert!(started.elapsed() < Duration::from_millis(300));
    assert_eq!(sim.deliveries(None).len(), 1);
}

#[tokio::test]
async fn an_accepted_fault_records_the_push_and_answers_after_the_client_gave_up() {
    let sim = start().await;
    let client = h2();
    let jwt = apns_jwt(now_s());
    add_fault(
        &h1(),
        &sim,
        json!({"vendor": "apns", "token": APNS_TOKEN, "accepted": true, "delay_ms": 60_000}),
    )
    .await;
    let gave_up = apns_request(&client, &sim, APNS_TOKEN, &jwt)
        .json(&alert_body())
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(gave_up.is_err_and(|e| e.is_timeout()));
    let accepted = sim.deliveries(None);
    assert_eq!(
        accepted.len(),
        1,
        "the vendor has the push the client gave up on"
    );
    assert_eq!(accepted[0].token, APNS_TOKEN);

    // The fault is used up: the client's retry is answered at once and recorded again.
    let retry = apns_request(&client, &sim, APNS_TOKEN, &jwt)
        .json(&alert_body())
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 200);
    assert_eq!(sim.deliveries(None).len(), 2);
}

#[tokio::test]
async fn bad_faults_are_refused_with_400() {
    let sim = start().await;
    let client = h1();
    for fault in [
        json!({"vendor": "nokia", "status": 500, "reason": "x"}),
        json!({"vendor": "apns", "status": 200, "reason": "x"}),
        json!({"vendor": "apns", "status": 500}),
        json!({"vendor": "apns"}),
        json!({"vendor": "apns", "status": 500, "reason": "x", "retry_after": 3}),
    ] {
        let response = sim_post(&client, &sim, "/sim/faults", &fault).await;
        assert_eq!(response.status(), 400, "{fault}");
        assert!(json_of(response).await["error"].is_string());
    }
    assert_eq!(sim_get(&client, &sim, "/sim/faults").await, json!([]));
}

#[tokio::test]
async fn delete_faults_clears_them() {
    let sim = start().await;
    let client = h1();
    add_fault(
        &client,
        &sim,
        json!({"vendor": "apns", "status": 500, "reason": "InternalServerError", "times": 5}),
    )
    .await;
    assert_eq!(sim_get(&client, &sim, "/sim/faults").await[0]["times"], 5);
    let cleared = client
        .delete(format!("http://{}/sim/faults", sim.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(cleared).await, json!({"cleared": 1}));
    let response = apns_request(&h2(), &sim, APNS_TOKEN, &apns_jwt(now_s()))
        .json(&alert_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn deliveries_filter_by_vendor_and_clear() {
    let sim = start().await;
    let client = h2();
    let apns = apns_request(&client, &sim, APNS_TOKEN, &apns_jwt(now_s()))
        .json(&alert_body())
        .send()
        .await
        .unwrap();
    assert_eq!(apns.status(), 200);
    let token = access_token(&client, &sim).await;
    assert_eq!(
        fcm_send(&client, &sim, &token, &fcm_message(FCM_TOKEN))
            .await
            .status(),
        200
    );

    let all = sim_get(&client, &sim, "/sim/deliveries").await;
    let vendors: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["vendor"].as_str().unwrap())
        .collect();
    assert_eq!(vendors, ["apns", "fcm"]);
    for vendor in ["apns", "fcm"] {
        let only = sim_get(&client, &sim, &format!("/sim/deliveries?vendor={vendor}")).await;
        assert_eq!(only.as_array().unwrap().len(), 1);
        assert_eq!(only[0]["vendor"], vendor);
    }
    let by_token = sim_get(&client, &sim, &format!("/sim/deliveries?token={FCM_TOKEN}")).await;
    assert_eq!(by_token[0]["vendor"], "fcm");
    let unknown = client
        .get(format!("http://{}/sim/deliveries?vendor=nokia", sim.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);

    let cleared = client
        .delete(format!("http://{}/sim/deliveries", sim.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(cleared).await, json!({"cleared": 2}));
    assert_eq!(sim_get(&client, &sim, "/sim/deliveries").await, json!([]));
}

#[tokio::test]
async fn shutdown_ends_the_server_and_a_hanging_request() {
    let sim = start().await;
    let addr = sim.addr;
    sim.inject_fault(Fault {
        vendor: "apns".into(),
        token: None,
        status: Some(503),
        reason: Some("Shutdown".into()),
        retry_after_s: None,
        times: 1,
        delay_ms: Some(60_000),
        accepted: false,
    })
    .unwrap();
    let client = h2();
    let hanging = tokio::spawn(
        apns_request(&client, &sim, APNS_TOKEN, &apns_jwt(now_s()))
            .json(&alert_body())
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), sim.shutdown())
        .await
        .expect("shutdown in time")
        .unwrap();
    let answer = hanging.await.unwrap().unwrap();
    assert_eq!(answer.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        reqwest::Client::new()
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn with_a_vendor_latency_a_push_is_answered_after_the_round_trip_and_delivered() {
    let latency = Duration::from_millis(300);
    let sim = impush_sim::spawn(impush_sim::SimSettings {
        vendor_latency: latency,
        ..local_settings()
    })
    .await
    .unwrap();
    let client = h2();
    let started = Instant::now();
    let response = apns_request(&client, &sim, APNS_TOKEN, &apns_jwt(now_s()))
        .json(&alert_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        started.elapsed() >= latency,
        "answered after {:?}",
        started.elapsed()
    );
    assert_eq!(sim.deliveries(Some("apns")).len(), 1);
}
