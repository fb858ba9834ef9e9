//! The FCM personality against real requests: the service account's OAuth2 grant, the v1
//! send API, and Google's error bodies for what Google refuses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use impush_sim::SimSettings;
use serde_json::{Value, json};

async fn status_and_json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, json_of(response).await)
}

#[tokio::test]
async fn jwt_bearer_grant_issues_a_bearer_access_token() {
    let sim = start().await;
    let client = h1();
    let response = grant(&client, &sim, &assertion(&sim, json!({}))).await;
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].as_str().unwrap().starts_with("ya29."));
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["token_type"], "Bearer");
}

#[tokio::test]
async fn google_audience_is_accepted_too() {
    let sim = start().await;
    let response = grant(
        &h1(),
        &sim,
        &assertion(&sim, json!({"aud": "https://oauth2.googleapis.com/token"})),
    )
    .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn bad_grants_get_googles_oauth_errors() {
    let sim = start().await;
    let client = h1();
    let good = assertion(&sim, json!({}));
    let (head_and_claims, _) = good.rsplit_once('.').unwrap();
    let other = assertion(
        &sim,
        json!({"scope": "https://www.googleapis.com/auth/cloud-platform"}),
    );
    let forged = format!("{head_and_claims}.{}", other.rsplit_once('.').unwrap().1);
    let now = now_s();
    let cases = [
        (forged, "invalid_grant", "Invalid JWT Signature."),
        (
            assertion(&sim, json!({"iss": "someone@else.iam.gserviceaccount.com"})),
            "invalid_grant",
            "Invalid grant: account not found",
        ),
        (
            assertion(&sim, json!({"aud": "http://elsewhere/token"})),
            "invalid_grant",
            "Invalid JWT: Failed audience check.",
        ),
        (
            assertion(&sim, json!({"iat": now - 7200, "exp": now - 3600})),
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
        ),
        (
            assertion(&sim, json!({"exp": now + 7200})),
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
        ),
        (
            assertion(&sim, json!({"scope": null})),
            "invalid_scope",
            "Invalid OAuth scope or ID token audience provided.",
        ),
    ];
    for (assertion, error, description) in cases {
        let (status, body) = status_and_json(grant(&client, &sim, &assertion).await).await;
        assert_eq!(status, 400);
        assert_eq!(
            body,
            json!({"error": error, "error_description": description})
        );
    }
    let wrong_grant = client
        .post(sim.fcm_token_uri())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_and_json(wrong_grant).await,
        (
            400,
            json!({"error": "unsupported_grant_type", "error_description": "Invalid grant_type: client_credentials"})
        )
    );
}

#[tokio::test]
async fn accepted_send_is_recorded_with_the_fields_a_device_shows() {
    let sim = start().await;
    let client = h2();
    let token = access_token(&client, &sim).await;
    let (status, body) =
        status_and_json(fcm_send(&client, &sim, &token, &fcm_message(FCM_TOKEN)).await).await;
    assert_eq!(status, 200, "{body}");
    let name = body["name"].as_str().unwrap();
    assert!(
        name.starts_with("projects/impush-demo/messages/0:"),
        "{name}"
    );

    let deliveries = sim_get(&client, &sim, "/sim/deliveries?vendor=fcm").await;
    assert_eq!(
        deliveries,
        json!([{
            "vendor": "fcm",
            "token": FCM_TOKEN,
            "title": "Team chat",
            "body": "Denny: see you at 5",
            "badge": null,
            "sound": "default",
            "ext": "{\"entity\":{\"chatType\":1}}",
            "payload": fcm_message(FCM_TOKEN),
            "received_at_ms": deliveries[0]["received_at_ms"],
        }])
    );
}

#[tokio::test]
async fn invalid_token_is_404_unregistered() {
    let sim = start().await;
    let client = h1();
    let token = access_token(&client, &sim).await;
    let response = fcm_send(&client, &sim, &token, &fcm_message("invalid-bob-phone")).await;
    assert_eq!(
        status_and_json(response).await,
        (
            404,
            json!({"error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND",
                "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"}]}})
        )
    );
    assert!(sim.deliveries(None).is_empty());
}

#[tokio::test]
async fn missing_or_unknown_access_token_is_401_unauthenticated() {
    let sim = start().await;
    let client = h1();
    let url = format!(
        "{}/v1/projects/{PROJECT}/messages:send",
        sim.base_url("fcm")
    );
    let missing = client
        .post(&url)
        .json(&fcm_message(FCM_TOKEN))
        .send()
        .await
        .unwrap();
    assert!(missing.headers().contains_key("www-authenticate"));
    let (status, body) = status_and_json(missing).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(body["error"]["details"][0]["reason"], "CREDENTIALS_MISSING");

    let unknown = fcm_send(&client, &sim, "ya29.made-up", &fcm_message(FCM_TOKEN)).await;
    let (status, body) = status_and_json(unknown).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], 401);
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
}

#[tokio::test]
async fn access_token_past_its_lifetime_is_401_access_token_expired() {
    let sim = impush_sim::spawn(SimSettings {
        fcm_token_lifetime: Duration::from_millis(300),
        ..local_settings()
    })
    .await
    .unwrap();
    let client = h1();
    let token = access_token(&client, &sim).await;
    assert_eq!(
        fcm_send(&client, &sim, &token, &fcm_message(FCM_TOKEN))
            .await
            .status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, body) =
        status_and_json(fcm_send(&client, &sim, &token, &fcm_message(FCM_TOKEN)).await).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(
        body["error"]["details"][0]["reason"],
        "ACCESS_TOKEN_EXPIRED"
    );

    let fresh = access_token(&client, &sim).await;
    assert_eq!(
        fcm_send(&client, &sim, &fresh, &fcm_message(FCM_TOKEN))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn expire_auth_makes_issued_access_tokens_401_until_refreshed() {
    let sim = start().await;
    let client = h1();
    let token = access_token(&client, &sim).await;
    assert_eq!(
        fcm_send(&client, &sim, &token, &fcm_message(FCM_TOKEN))
            .await
            .status(),
        200
    );
    sim.expire_auth();
    assert_eq!(
        fcm_send(&client, &sim, &token, &fcm_message(FCM_TOKEN))
            .await
            .status(),
        401
    );
    let fresh = access_token(&client, &sim).await;
    assert_eq!(
        fcm_send(&client, &sim, &fresh, &fcm_message(FCM_TOKEN))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn malformed_message_is_400_invalid_argument_naming_the_field() {
    let sim = start().await;
    let client = h1();
    let token = access_token(&client, &sim).await;

    let no_target = json!({"message": {"notification": {"body": "hi"}}});
    let (status, body) = status_and_json(fcm_send(&client, &sim, &token, &no_target).await).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": {"code": 400, "message": "Recipient of the message is not set.", "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": "message", "description": "Recipient of the message is not set."}]}]}})
    );

    let mut unknown_field = fcm_message(FCM_TOKEN);
    unknown_field["message"]["android"]["priority"] = json!("URGENT");
    let (status, body) =
        status_and_json(fcm_send(&client, &sim, &token, &unknown_field).await).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(
        body["error"]["details"][0]["fieldViolations"][0]["field"],
        "message.android.priority"
    );

    let bad_token = fcm_message("has spaces in it");
    let (status, body) = status_and_json(fcm_send(&client, &sim, &token, &bad_token).await).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["details"][0]["errorCode"], "INVALID_ARGUMENT");
    assert_eq!(
        body["error"]["details"][1]["fieldViolations"][0]["field"],
        "message.token"
    );

    let not_json = client
        .post(format!(
            "{}/v1/projects/{PROJECT}/messages:send",
            sim.base_url("fcm")
        ))
        .bearer_auth(&token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    assert!(sim.deliveries(None).is_empty());
}

#[tokio::test]
async fn payload_over_4096_bytes_is_400_invalid_argument() {
    let sim = start().await;
    let client = h1();
    let token = access_token(&client, &sim).await;
    let mut big = fcm_message(FCM_TOKEN);
    big["message"]["notification"]["body"] = json!("x".repeat(4096));
    let (status, body) = status_and_json(fcm_send(&client, &sim, &token, &big).await).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
}

#[tokio::test]
async fn another_projects_send_or_a_narrow_scope_is_403_permission_denied() {
    let sim = start().await;
    let client = h1();
    let token = access_token(&client, &sim).await;
    let other = client
        .post(format!(
            "{}/v1/projects/someone-else/messages:send",
            sim.base_url("fcm")
        ))
        .bearer_auth(&token)
        .json(&fcm_message(FCM_TOKEN))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(other).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED");

    let narrow = grant(
        &client,
        &sim,
        &assertion(
            &sim,
            json!({"scope": "https://www.googleapis.com/auth/userinfo.email"}),
        ),
    )
    .await;
    let narrow = json_of(narrow).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) =
        status_and_json(fcm_send(&client, &sim, &narrow, &fcm_message(FCM_TOKEN)).await).await;
    assert_eq!(status, 403);
    assert_eq!(
        body["error"]["details"][0]["reason"],
        "ACCESS_TOKEN_SCOPE_INSUFFICIENT"
    );
    assert!(sim.deliveries(None).is_empty());
}

#[tokio::test]
async fn validate_only_answers_without_delivering() {
    let sim = start().await;
    let client = h1();
    let token = access_token(&client, &sim).await;
    let mut dry = fcm_message(FCM_TOKEN);
    dry["validate_only"] = json!(true);
    let (status, body) = status_and_json(fcm_send(&client, &sim, &token, &dry).await).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["name"],
        "projects/impush-demo/messages/fake_message_id"
    );
    assert!(sim.deliveries(None).is_empty());
}
