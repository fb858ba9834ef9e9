//! The APNs personality against real HTTP/2 requests: what Apple accepts is recorded, what
//! Apple refuses is refused with Apple's status and reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{Value, json};

async fn reason_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, json_of(response).await)
}

#[tokio::test]
async fn accepted_push_is_recorded_with_the_fields_a_device_shows() {
    let sim = start().await;
    let client = h2();
    let apns_id = "123e4567-e89b-12d3-a456-426614174000";
    let response = apns_request(&client, &sim, APNS_TOKEN, &apns_jwt(now_s()))
        .header("apns-id", apns_id)
        .header("apns-expiration", "1700000030")
        .json(&alert_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.headers()["apns-id"], apns_id);
    assert_eq!(response.text().await.unwrap(), "");

    let deliveries = sim_get(&client, &sim, "/sim/deliveries?vendor=apns").await;
    assert_eq!(
        deliveries,
        json!([{
            "vendor": "apns",
            "token": APNS_TOKEN,
            "title": "Team chat",
            "body": "Denny: see you at 5",
            "badge": 4,
            "sound": "default",
            "ext": "{\"entity\":{\"chatType\":1}}",
            "payload": alert_body(),
            "headers": {
                "apns-topic": TOPIC,
                "apns-push-type": "alert",
                "apns-priority": "10",
                "apns-expiration": "1700000030"
            },
            "received_at_ms": deliveries[0]["received_at_ms"],
        }])
    );
    assert!(deliveries[0]["received_at_ms"].as_u64().unwrap() > 1_700_000_000_000);
}

#[tokio::test]
async fn alert_string_is_the_body_and_a_new_apns_id_is_generated() {
    let sim = start().await;
    let response = apns_request(&h2(), &sim, APNS_TOKEN, &apns_jwt(now_s()))
        .json(&json!({"aps": {"alert": "just text"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let id = response.headers()["apns-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "{id}");
    let delivery = &sim.deliveries(Some("apns"))[0];
    assert_eq!(delivery.title, None);
    assert_eq!(delivery.body.as_deref(), Some("just text"));
    assert_eq!(delivery.badge, None);
    assert_eq!(delivery.sound, None);
    assert_eq!(delivery.ext, None);
}

#[tokio::test]
async fn invalid_token_is_unregistered_410_with_a_timestamp() {
    let sim = start().await;
    let response = apns_request(&h2(), &sim, "invalid-alice-phone", &apns_jwt(now_s()))
        .json(&alert_body())
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("apns-id"));
    let (status, body) = reason_of(response).await;
    assert_eq!(status, 410);
    assert_eq!(body["reason"], "Unregistered");
    assert!(body["timestamp"].as_u64().unwrap() > 1_700_000_000_000);
    assert!(sim.deliveries(None).is_empty());
}

#[tokio::test]
async fn missing_provider_token_is_403_missing_provider_token() {
    let sim = start().await;
    let response = h2()
        .post(format!("{}/3/device/{APNS_TOKEN}", sim.base_url("apns")))
        .header("apns-topic", TOPIC)
        .json(&alert_body())
        .send()
        .await
        .unwrap();
    assert_eq!(
        reason_of(response).await,
        (403, json!({"reason": "MissingProviderToken"}))
    );
}

#[tokio::test]
async fn unknown_key_wrong_team_or_bad_signature_is_403_invalid_provider_token() {
    let sim = start().await;
    let client = h2();
    let good = apns_jwt(now_s());
    let (head, rest) = good.split_once('.').unwrap();
    let (claims, _signature) = rest.split_once('.').unwrap();
    let other_claims = apns_jwt(now_s() - 5);
    let other_signature = other_claims.rsplit_once('.').unwrap().1;
    for jwt in [
        apns_jwt_with("NOSUCHKEY1", TEAM_ID, now_s()),
        apns_jwt_with(KEY_ID, "OTHERTEAM1", now_s()),
        format!("{head}.{claims}.{other_signature}"),
        "not-a-jwt".to_owned(),
    ] {
        let response = apns_request(&client, &sim, APNS_TOKEN, &jwt)
            .json(&alert_body())
            .send()
            .await
            .unwrap();
        assert_eq!(
            reason_of(response).await,
            (403, json!({"reason": "InvalidProviderToken"})),
            "{jwt}"
        );
    }
    assert!(sim.deliveries(None).is_empty());
}

#[tokio::test]
async fn provider_token_older_than_an_hour_is_403_expired_provider_token() {
    let sim = start().await;
    let response = apns_request(&h2(), &sim, APNS_TOKEN, &apns_jwt(now_s() - 3601))
        .json(&alert_body())
        .send()
        .await
        .unwrap();
    assert_eq!(
        reason_of(response).await,
        (403, json!({"reason": "ExpiredProviderToken"}))
    );
}

#[tokio::test]
async fn expire_auth_expires_the_provider_token_in_use_until_a_new_one_is_made() {
    let sim = start().await;
    let client = h2();
    let old = apns_jwt(now_s() - 10);
    let send = |jwt: String| {
        apns_request(&client, &sim, APNS_TOKEN, &jwt)
            .json(&alert_body())
            .send()
    };
    assert_eq!(send(old.clone()).await.unwrap().status(), 200);

    let expired = sim_post(&client, &sim, "/sim/expire-auth", &json!({})).await;
    assert_eq!(expired.status(), 200);
    assert_eq!(
        reason_of(send(old).await.unwrap()).await,
        (403, json!({"reason": "ExpiredProviderToken"}))
    );
    assert_eq!(send(apns_jwt(now_s())).await.unwrap().status(), 200);
    assert_eq!(sim.deliveries(Some("apns")).len(), 2);
}

#[tokio::test]
async fn headers_are_checked_like_apple() {
    let sim = start().await;
    let client = h2();
    let jwt = apns_jwt(now_s());
    let cases: [(&str, &str, &str); 6] = [
        ("apns-push-type", "banner", "InvalidPushType"),
        ("apns-priority", "7", "BadPriority"),
        ("apns-id", "not-a-uuid", "BadMessageId"),
        ("apns-expiration", "tomorrow", "BadExpirationDate"),
        ("apns-collapse-id", &"c".repeat(65), "BadCollapseId"),
        ("apns-topic", "", "MissingTopic"),
    ];
    for (name, value, reason) in cases {
        let mut request = client
            .post(format!("{}/3/device/{APNS_TOKEN}", sim.base_url("apns")))
            .header("authorization", format!("bearer {jwt}"));
        if name != "apns-topic" {
            request = request.header("apns-topic", TOPIC);
        }
        let response = request
            .header(name, value)
            .json(&alert_body())
            .send()
            .await
            .unwrap();
        assert_eq!(
            reason_of(response).await,
            (400, json!({"reason": reason})),
            "{name}: {value}"
        );
    }
    assert!(sim.deliveries(None).is_empty());
}

#[tokio::test]
async fn non_hex_token_is_400_bad_device_token() {
    let sim = start().await;
    let response = apns_request(&h2(), &sim, "not-hex-at-all", &apns_jwt(now_s()))
        .json(&alert_body())
        .send()
        .await
        .unwrap();
    assert_eq!(
        reason_of(response).await,
        (400, json!({"reason": "BadDeviceToken"}))
    );
}

/// A body of exactly `size` bytes.
fn body_of_size(size: usize) -> String {
    let skeleton = r#"{"aps":{"alert":""}}"#;
    format!(
        r#"{{"aps":{{"alert":"{}"}}}}"#,
        "x".repeat(size - skeleton.len())
    )
}

#[tokio::test]
async fn payload_over_4096_bytes_is_413_and_voip_may_have_5120() {
    let sim = start().await;
    let client = h2();
    let jwt = apns_jwt(now_s());
    let send = |push_type: &str, size: usize| {
        client
            .post(format!("{}/3/device/{APNS_TOKEN}", sim.base_url("apns")))
            .header("authorization", format!("bearer {jwt}"))
            .header("apns-topic", format!("{TOPIC}.voip"))
            .header("apns-push-type", push_type)
            .body(body_of_size(size))
            .send()
    };
    assert_eq!(send("alert", 4096).await.unwrap().status(), 200);
    assert_eq!(
        reason_of(send("alert", 4097).await.unwrap()).await,
        (413, json!({"reason": "PayloadTooLarge"}))
    );
    assert_eq!(send("voip", 5120).await.unwrap().status(), 200);
    assert_eq!(
        reason_of(send("voip", 5121).await.unwrap()).await,
        (413, json!({"reason": "PayloadTooLarge"}))
    );
    assert_eq!(
        reason_of(send("voip", 100_000).await.unwrap()).await,
        (413, json!({"reason": "PayloadTooLarge"}))
    );
    assert_eq!(sim.deliveries(None).len(), 2);
}

#[tokio::test]
async fn empty_or_non_json_payload_is_400_payload_empty() {
    let sim = start().await;
    for body in ["", "   ", "not json", "[1,2]"] {
        let response = apns_request(&h2(), &sim, APNS_TOKEN, &apns_jwt(now_s()))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            reason_of(response).await,
            (400, json!({"reason": "PayloadEmpty"})),
            "{body:?}"
        );
    }
}

#[tokio::test]
async fn wrong_method_path_or_missing_token_is_refused_like_apple() {
    let sim = start().await;
    let client = h2();
    let jwt = apns_jwt(now_s());
    let get = client
        .get(format!("{}/3/device/{APNS_TOKEN}", sim.base_url("apns")))
        .header("authorization", format!("bearer {jwt}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        reason_of(get).await,
        (405, json!({"reason": "MethodNotAllowed"}))
    );
    let bad_path = client
        .post(format!("{}/2/device/{APNS_TOKEN}", sim.base_url("apns")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        reason_of(bad_path).await,
        (404, json!({"reason": "BadPath"}))
    );
    let no_token = client
        .post(format!("{}/3/device/", sim.base_url("apns")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        reason_of(no_token).await,
        (400, json!({"reason": "MissingDeviceToken"}))
    );
}

#[tokio::test]
async fn http1_is_refused_because_apns_is_http2_only() {
    let sim = start().await;
    let response = apns_request(&h1(), &sim, APNS_TOKEN, &apns_jwt(now_s()))
        .json(&alert_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 505);
    assert!(sim.deliveries(None).is_empty());
}
