//! TLS to RabbitMQ (`amqps://`) and Redis (`rediss://`) with a private CA and client
//! certificates, against a real RabbitMQ node with an SSL listener and a real redis-server
//! that speaks only TLS, both presenting a certificate of a CA made for the test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fleet;
#[allow(dead_code)]
#[path = "faults/services.rs"]
mod services;
mod tls;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fleet::{Fleet, FleetOptions, apns_token, binary, free_port, now_ms, presence, register};
use impush_config::{ClientTls, Config};
use impush_proto::Event;
use impush_proto::v1::{PresenceState, Vendor};
use impush_store::{Endpoint, Store};
use tls::{ClientCerts, Pki, TlsRabbit, TlsRedis, TlsRedisCluster};

/// A config of `[amqp]` and `[redis]` only, written next to the PKI's files.
fn write_config(pki: &Pki, name: &str, text: &str) -> std::path::PathBuf {
    let path = pki.path(name);
    std::fs::write(&path, text).expect("config written");
    path
}

/// The TLS settings as a worker would load them from a config naming these files.
fn client_tls(pki: &Pki, ca: &str, identity: bool) -> ClientTls {
    let mut text = format!(
        "[redis]\nurl = \"rediss://127.0.0.1:1\"\ntls_ca_file = \"{}\"\n",
        pki.path(ca).display()
    );
    if identity {
        text.push_str(&format!(
            "tls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n",
            pki.path("client.pem").display(),
            pki.path("client.key").display()
        ));
    }
    let tls = Config::load(&write_config(pki, "client.toml", &text))
        .expect("config loads")
        .redis_tls()
        .expect("TLS files load");
    assert_eq!(tls.identity.is_some(), identity);
    tls
}

fn prefix() -> String {
    format!("tls{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_delivers_end_to_end_over_amqps_and_rediss_when_tls_ca_file_names_the_ca() {
    let pki = Pki::generate();
    let rabbit = TlsRabbit::start(&pki, ClientCerts::NotAsked);
    let redis = TlsRedis::start(&pki, ClientCerts::NotAsked);
    let ca = toml::Value::String(pki.path("ca.pem").display().to_string());
    let fleet = Fleet::start(FleetOptions {
        vendors: vec![Vendor::Apns],
        amqp_url: rabbit.url(),
        redis_url: redis.url(),
        settings: vec![
            ("amqp", "tls_ca_file", ca.clone()),
            ("redis", "tls_ca_file", ca),
        ],
        ..FleetOptions::default()
    })
    .await;
    let t = now_ms() - 10_000;
    fleet
        .publish(vec![
            register("vinson", "iphone", Vendor::Apns, &apns_token(7), t),
            presence("vinson", "iphone", PresenceState::Background, 2, t + 1),
        ])
        .await;
    // The router reads what ingest wrote: wait until the device is in (TLS) Redis.
    let store = Store::connect_to(
        &Endpoint::Server(redis.url()),
        &fleet.config.redis_tls().unwrap(),
        &fleet.prefix,
    )
    .await
    .expect("the test reaches the TLS Redis with the same settings");
    let deadline = Instant::now() + Duration::from_secs(60);
    while store
        .fetch_recipients(fleet::APP, &["vinson".to_owned()])
        .await
        .expect("fetch")
        .iter()
        .all(|r| r.devices.is_empty())
    {
        assert!(Instant::now() < deadline, "ingest never stored the device");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    fleet
        .publish(vec![Event::OfflineMessage(fleet::text_message(
            "m-tls", "denny", "vinson", "over TLS",
        ))])
        .await;
    let deliveries = fleet
        .wait_deliveries(Duration::from_secs(60), |d| !d.is_empty())
        .await;
    assert_eq!(deliveries.len(), 1, "{deliveries:#?}");
    assert_eq!(deliveries[0]["token"], apns_token(7).as_str());
    assert!(
        deliveries[0].to_string().contains("over TLS"),
        "{deliveries:#?}"
    );
}

/// Runs impush-ingest with `config` until its log shows `needle`, then stops it; returns
/// the log and what `/readyz` answered meanwhile.
async fn ingest_until_logged(config: &Path, needle: &str) -> (String, Option<u16>) {
    let log_path = config.with_extension("log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let port = free_port();
    let mut child = Command::new(binary("impush-ingest"))
        .arg("--config")
        .arg(config)
        .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .expect("impush-ingest starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    let text = loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if text.contains(needle) {
            break text;
        }
        if Instant::now() > deadline || child.try_wait().expect("status").is_some() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("impush-ingest never logged {needle:?}:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let ready = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .ok()
        .map(|r| r.status().as_u16());
    let _ = child.kill();
    let _ = child.wait();
    (text, ready)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_given_the_wrong_ca_refuses_to_connect_and_says_so() {
    let pki = Pki::generate();
    let rabbit = TlsRabbit::start(&pki, ClientCerts::NotAsked);
    let redis = TlsRedis::start(&pki, ClientCerts::NotAsked);
    let section = |name: &str, url: &str, ca: &str| {
        format!(
            "[{name}]\nurl = \"{url}\"\nprefix = \"{}\"\ntls_ca_file = \"{}\"\n",
            prefix(),
            pki.path(ca).display()
        )
    };

    // Redis first (ingest connects to it before RabbitMQ).
    let config = write_config(
        &pki,
        "wrong-redis-ca.toml",
        &format!(
            "{}{}",
            section("amqp", &rabbit.url(), "ca.pem"),
            section("redis", &redis.url(), "wrong-ca.pem")
        ),
    );
    let (log, ready) = ingest_until_logged(&config, "Redis unavailable").await;
    assert!(log.contains("UnknownIssuer"), "says why: {log}");
    assert_eq!(ready, Some(503), "not ready: {log}");

    // Then RabbitMQ, with Redis reachable.
    let config = write_config(
        &pki,
        "wrong-amqp-ca.toml",
        &format!(
            "{}{}",
            section("amqp", &rabbit.url(), "wrong-ca.pem"),
            section("redis", &redis.url(), "ca.pem")
        ),
    );
    let (log, ready) = ingest_until_logged(&config, "RabbitMQ unavailable").await;
    assert!(log.contains("UnknownIssuer"), "says why: {log}");
    assert!(!log.contains("Redis unavailable"), "{log}");
    assert_eq!(ready, Some(503), "not ready: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_connects_with_the_client_certificate_and_is_refused_without_it() {
    let pki = Pki::generate();
    let rabbit = TlsRabbit::start(&pki, ClientCerts::Required);
    let redis = TlsRedis::start(&pki, ClientCerts::Required);
    let with_certificate = client_tls(&pki, "ca.pem", true);
    let without_certificate = client_tls(&pki, "ca.pem", false);
    let endpoint = Endpoint::Server(redis.url());

    let connection = impush_amqp::connect_with_tls(&rabbit.url(), &with_certificate)
        .await
        .expect("RabbitMQ takes the client certificate");
    let channel = connection.create_channel().await.expect("channel");
    let _ = channel.close(200, "done".into()).await;
    let _ = connection.close(200, "done".into()).await;
    let store = Store::connect_to(&endpoint, &with_certificate, &prefix())
        .await
        .expect("Redis takes the client certificate");
    store.ping().await.expect("PING over mutual TLS");

    let refused = impush_amqp::connect_with_tls(&rabbit.url(), &without_certificate).await;
    assert!(
        refused.is_err(),
        "RabbitMQ refuses a client without a certificate"
    );
    let refused = tokio::time::timeout(
        Duration::from_secs(120),
        Store::connect_to(&endpoint, &without_certificate, &prefix()),
    )
    .await
    .expect("a refused handshake ends");
    assert!(
        refused.is_err(),
        "Redis refuses a client without a certificate; its log: {}",
        redis.log()
    );
}

#[test]
fn a_missing_tls_file_is_a_start_up_error_naming_the_setting_and_the_path() {
    let pki = Pki::generate();
    let missing = pki.path("no-such-dir/ca.pem");
    let config = write_config(
        &pki,
        "missing.toml",
        &format!(
            "[amqp]\nurl = \"amqps://127.0.0.1:1/%2f\"\n\
             [redis]\nurl = \"rediss://127.0.0.1:1\"\ntls_ca_file = \"{}\"\n",
            missing.display()
        ),
    );
    for (bin, args) in [
        ("impush-ingest", vec!["--config"]),
        ("impush-router", vec!["--config"]),
        ("impush", vec!["config", "check", "--config"]),
    ] {
        let out = Command::new(binary(bin))
            .args(&args)
            .arg(&config)
            .stdin(Stdio::null())
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bin} started: {stderr}");
        assert!(stderr.contains("redis.tls_ca_file"), "{bin}: {stderr}");
        assert!(
            stderr.contains(&missing.display().to_string()),
            "{bin}: {stderr}"
        );
    }
}

#[test]
fn tls_settings_next_to_a_plain_url_are_refused_when_the_config_loads() {
    let pki = Pki::generate();
    let config = write_config(
        &pki,
        "plain.toml",
        &format!(
            "[amqp]\nurl = \"amqp://guest:hunter2@127.0.0.1:5672/%2f\"\ntls_ca_file = \"{}\"\n",
            pki.path("ca.pem").display()
        ),
    );
    for (bin, args) in [
        ("impush-sender", vec!["--vendor", "apns", "--config"]),
        ("impush", vec!["config", "show", "--config"]),
    ] {
        let out = Command::new(binary(bin))
            .args(&args)
            .arg(&config)
            .stdin(Stdio::null())
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bin} accepted it: {stderr}");
        assert!(stderr.contains("`tls_ca_file`"), "{bin}: {stderr}");
        assert!(stderr.contains("amqps://"), "{bin}: {stderr}");
        assert!(!stderr.contains("hunter2"), "{bin}: {stderr}");
    }
}

#[test]
fn config_show_names_the_tls_files_and_never_prints_the_key() {
    let pki = Pki::generate();
    let key = std::fs::read_to_string(pki.path("client.key")).unwrap();
    let config = write_config(
        &pki,
        "show.toml",
        &format!(
            "[redis]\nurl = \"rediss://cache:6380\"\ntls_ca_file = \"{}\"\n\
             tls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n",
            pki.path("ca.pem").display(),
            pki.path("client.pem").display(),
            pki.path("client.key").display()
        ),
    );
    let out = Command::new(binary("impush"))
        .args(["config", "show", "--config"])
        .arg(&config)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("tls_key_file"), "{stdout}");
    let key_body = key.lines().nth(1).unwrap();
    assert!(!stdout.contains(key_body), "{stdout}");
    let tls = Config::load(&config).unwrap().redis_tls().unwrap();
    assert!(tls.identity.is_some());
    assert!(!format!("{tls:?}").contains(key_body), "{tls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_redis_cluster_takes_the_ca_and_the_client_certificate_on_every_node() {
    let pki = Pki::generate();
    let cluster = TlsRedisCluster::start(&pki, ClientCerts::Required);
    let endpoint = Endpoint::Cluster(cluster.urls());
    let with_certificate = client_tls(&pki, "ca.pem", true);
    let store = Store::connect_to(&endpoint, &with_certificate, &prefix())
        .await
        .expect("the cluster takes the client certificate");
    // Users spread over the slots of all three primaries: one batch reaches every node.
    let users: Vec<String> = (0..30).map(|i| format!("user-{i}")).collect();
    let t = now_ms();
    for (i, user) in users.iter().enumerate() {
        let Event::DeviceRegistered(device) =
            register(user, "phone", Vendor::Apns, &apns_token(i as u32), t)
        else {
            unreachable!("register makes a DeviceRegistered");
        };
        store.register_device(&device).await.expect("register");
    }
    let recipients = store
        .fetch_recipients(fleet::APP, &users)
        .await
        .expect("one batch over every node");
    assert_eq!(recipients.len(), users.len());
    assert!(recipients.iter().all(|r| r.devices.len() == 1));

    let wrong_ca = client_tls(&pki, "wrong-ca.pem", true);
    let err = Store::connect_to(&endpoint, &wrong_ca, &prefix())
        .await
        .expect_err("a cluster signed by another CA is refused");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
}
