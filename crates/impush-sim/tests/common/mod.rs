//! Helpers the simulator's tests share: a simulator trusting the local stack's test keys,
//! provider tokens and OAuth assertions signed with those keys, and HTTP clients.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use impush_sim::{RunningSim, SimSettings};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub const TEAM_ID: &str = "IMPUSHTEAM";
pub const KEY_ID: &str = "IMPUSHKEY1";
pub const TOPIC: &str = "com.example.impush";
pub const PROJECT: &str = "impush-demo";
pub const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// A token of 32 bytes in hex, the shape Apple's tokens have.
pub const APNS_TOKEN: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
pub const FCM_TOKEN: &str = "dYL5i6NYTMCiyxQ5H0md01:APA91bHsR2n7IdxTnIyr7CAZ_yx8lcUB5dPo";

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The settings `impush-sim --config deploy/local/impush.toml` runs with.
pub fn local_settings() -> SimSettings {
    let config =
        impush_config::Config::load(&repo().join("deploy/local/impush.toml")).expect("config");
    SimSettings::from_config(&config).expect("sim settings")
}

pub async fn start() -> RunningSim {
    impush_sim::spawn(local_settings()).await.expect("spawn")
}

pub fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An APNs provider token signed with the test `.p8` key.
pub fn apns_jwt(iat: u64) -> String {
    apns_jwt_with(KEY_ID, TEAM_ID, iat)
}

pub fn apns_jwt_with(key_id: &str, team_id: &str, iat: u64) -> String {
    let pem = std::fs::read(repo().join("deploy/local/keys/apns-test-key.p8")).unwrap();
    let key = EncodingKey::from_ec_pem(&pem).unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(key_id.to_owned());
    jsonwebtoken::encode(&header, &json!({ "iss": team_id, "iat": iat }), &key).unwrap()
}

/// A client that speaks HTTP/2 with prior knowledge, as APNs needs on a plain port.
pub fn h2() -> reqwest::Client {
    reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap()
}

pub fn h1() -> reqwest::Client {
    reqwest::Client::builder().http1_only().build().unwrap()
}

/// An alert push the way impush sends one.
pub fn apns_request(
    client: &reqwest::Client,
    sim: &RunningSim,
    token: &str,
    jwt: &str,
) -> reqwest::RequestBuilder {
    client
        .post(format!("{}/3/device/{token}", sim.base_url("apns")))
        .header("authorization", format!("bearer {jwt}"))
        .header("apns-topic", TOPIC)
        .header("apns-push-type", "alert")
        .header("apns-priority", "10")
}

pub fn alert_body() -> Value {
    json!({
        "aps": {"alert": {"title": "Team chat", "body": "Denny: see you at 5"}, "badge": 4, "sound": "default"},
        "ext": "{\"entity\":{\"chatType\":1}}"
    })
}

pub struct ServiceAccount {
    pub client_email: String,
    pub private_key: String,
}

pub fn service_account() -> ServiceAccount {
    let text =
        std::fs::read_to_string(repo().join("deploy/local/keys/fcm-test-service-account.json"))
            .unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    ServiceAccount {
        client_email: json["client_email"].as_str().unwrap().to_owned(),
        private_key: json["private_key"].as_str().unwrap().to_owned(),
    }
}

/// The claims of a service account's grant assertion, with `changes` merged in (a null
/// value removes a claim).
pub fn assertion(sim: &RunningSim, changes: Value) -> String {
    let account = service_account();
    let now = now_s();
    let mut claims = json!({
        "iss": account.client_email,
        "scope": FCM_SCOPE,
        "aud": sim.fcm_token_uri(),
        "iat": now,
        "exp": now + 3600,
    });
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    let key = EncodingKey::from_rsa_pem(account.private_key.as_bytes()).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key).unwrap()
}

pub async fn grant(
    client: &reqwest::Client,
    sim: &RunningSim,
    assertion: &str,
) -> reqwest::Response {
    client
        .post(sim.fcm_token_uri())
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion),
        ])
        .send()
        .await
        .unwrap()
}

/// A fresh access token from the simulator's token endpoint.
pub async fn access_token(client: &reqwest::Client, sim: &RunningSim) -> String {
    let response = grant(client, sim, &assertion(sim, json!({}))).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// A message the way impush sends one.
pub fn fcm_message(token: &str) -> Value {
    json!({
        "message": {
            "token": token,
            "notification": {"title": "Team chat", "body": "Denny: see you at 5"},
            "data": {"ext": "{\"entity\":{\"chatType\":1}}"},
            "android": {"priority": "HIGH", "notification": {"sound": "default", "channel_id": "im_messages"}}
        }
    })
}

pub async fn fcm_send(
    client: &reqwest::Client,
    sim: &RunningSim,
    access_token: &str,
    body: &Value,
) -> reqwest::Response {
    client
        .post(format!(
            "{}/v1/projects/{PROJECT}/messages:send",
            sim.base_url("fcm")
        ))
        .bearer_auth(access_token)
        .json(body)
        .send()
        .await
        .unwrap()
}

pub async fn json_of(response: reqwest::Response) -> Value {
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

pub async fn sim_get(client: &reqwest::Client, sim: &RunningSim, path: &str) -> Value {
    let response = client
        .get(format!("http://{}{path}", sim.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "GET {path}");
    json_of(response).await
}

pub async fn sim_post(
    client: &reqwest::Client,
    sim: &RunningSim,
    path: &str,
    body: &Value,
) -> reqwest::Response {
    client
        .post(format!("http://{}{path}", sim.addr))
        .json(body)
        .send()
        .await
        .unwrap()
}
