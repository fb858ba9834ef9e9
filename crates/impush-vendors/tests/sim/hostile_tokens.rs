//! Tokens with URL and form metacharacters never change where a request goes or which
//! fields it has. Requests pass through a recorder in front of the simulator that keeps the
//! raw HTTP/1.1 bytes, so the request line and body checked are what went on the wire.
//! APNs, the one vendor with the token in the URL path (and HTTP/2, which the recorder does
//! not read), is covered by its builder refusing every such token, dot segments included.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use impush_core::payload::Body;
use impush_core::{Vendor, build_payload, vendor};
use impush_vendors::Outcome;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::common::*;

/// Tokens no vendor issues, each able to change a URL or a form if pasted in unescaped.
const HOSTILE: &[&str] = &[
    "..",
    ".",
    "a?x=1",
    "a#frag",
    "a%2F..%2Fb",
    "a&token=b",
    "a b",
    "a\nb",
    "a\r\nX-Injected: 1",
    "tök",
    "a,b",
];

/// Base64 characters: in Xiaomi and Huawei tokens, which only travel in bodies; refused
/// for every other vendor.
const BASE64_ONLY: &[&str] = &["a/../../b", "a=b", "a+b", "a/b"];

/// Whether `vendor`'s tokens are standard base64 (see `impush_core::vendor::check_token`).
fn base64_tokens(vendor: Vendor) -> bool {
    matches!(
        vendor,
        Vendor::Xiaomi | Vendor::Huawei | Vendor::Honor | Vendor::Harmony
    )
}

/// The raw bytes clients sent through it, forwarded to `upstream` and answered from there.
struct Recorder {
    addr: SocketAddr,
    sent: Arc<Mutex<Vec<u8>>>,
}

impl Recorder {
    async fn start(upstream: SocketAddr) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&sent);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(upstream).await.unwrap();
                let record = Arc::clone(&record);
                tokio::spawn(async move {
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                    });
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = client_read.read(&mut buf).await {
                        if n == 0 || server_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        record.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                });
            }
        });
        Recorder { addr, sent }
    }

    /// Every request recorded so far: its request line and body.
    fn requests(&self) -> Vec<(String, Vec<u8>)> {
        let raw = self.sent.lock().unwrap().clone();
        let mut requests = Vec::new();
        let mut rest = &raw[..];
        while let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&rest[..end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().unwrap())
                })
                .unwrap_or(0);
            let body = rest[end + 4..end + 4 + length].to_vec();
            requests.push((head.lines().next().unwrap().to_owned(), body));
            rest = &rest[end + 4 + length..];
        }
        requests
    }
}

/// `application/x-www-form-urlencoded` decoded, as a vendor's server reads it.
fn form_decode(body: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 2;
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8(out).unwrap()
    };
    std::str::from_utf8(body)
        .unwrap()
        .split('&')
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap();
            (decode(k), decode(v))
        })
        .collect()
}

fn contains_string(value: &serde_json::Value, wanted: &str) -> bool {
    match value {
        serde_json::Value::String(s) => s == wanted,
        serde_json::Value::Array(items) => items.iter().any(|v| contains_string(v, wanted)),
        serde_json::Value::Object(map) => map.values().any(|v| contains_string(v, wanted)),
        _ => false,
    }
}

/// Sends one push to `token` through the recorder and checks the request the vendor got:
/// the request line is exactly the one built, the token is not in it, and the body holds
/// the token intact as one JSON string or one form value, with no field added.
async fn sends_token_verbatim(business_id: u64, name: &str, token: &str) {
    let vendor = vendor::parse(name).unwrap();
    let mut stack = Stack::start().await;
    let sim_base = stack.sim.base_url(name);
    let sim_addr: SocketAddr = sim_base
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let recorder = Recorder::start(sim_addr).await;
    let settings = stack.config.vendors.get_mut(&business_id).unwrap();
    settings.base_url = format!("http://{}/{name}", recorder.addr);
    if let Some(huawei) = settings.huawei.as_mut() {
        huawei.auth_url = Some(format!("{sim_base}/oauth2/v3/token"));
    }
    let clients = stack.clients(vendor);
    let targets = [target(token)];
    let request = build_payload(
        &notification(),
        &stack.config.credentials[&business_id],
        &targets,
    )
    .unwrap();
    assert!(!request.path.contains(token), "{name}: token in the path");
    let result = clients.send(business_id, &request, &targets).await;
    assert_eq!(
        result.outcomes,
        vec![Outcome::Delivered],
        "{name} {token:?}"
    );

    let expected_line = format!("POST /{name}{} HTTP/1.1", request.path);
    let sends: Vec<_> = recorder
        .requests()
        .into_iter()
        .filter(|(line, _)| *line == expected_line)
        .collect();
    assert_eq!(sends.len(), 1, "{name}: one send to {expected_line}");
    let body = &sends[0].1;
    match &request.body {
        Body::Json(_) => {
            let json: serde_json::Value = serde_json::from_slice(body).unwrap();
            assert!(contains_string(&json, token), "{name}: {token:?} intact");
        }
        Body::Form(built) => {
            let received = form_decode(body);
            for pair in built {
                assert!(received.contains(pair), "{name}: field {} as built", pair.0);
            }
            let added: Vec<_> = received.iter().filter(|p| !built.contains(p)).collect();
            assert!(
                added.iter().all(|(k, _)| k == "sign" || k == "auth_token"),
                "{name}: only authentication is added to the form, not {added:?}"
            );
        }
    }
    assert_eq!(stack.deliveries_to(name, token), 1, "{name}: {token:?}");
}

#[tokio::test]
async fn hostile_tokens_are_refused_at_registration_for_every_vendor() {
    for vendor in vendor::ALL {
        for token in HOSTILE {
            assert!(
                vendor::check_token(vendor, token).is_err(),
                "{vendor:?} would store {token:?}"
            );
        }
        for token in BASE64_ONLY {
            assert_eq!(
                vendor::check_token(vendor, token).is_ok(),
                base64_tokens(vendor),
                "{vendor:?} {token:?}"
            );
        }
    }
}

#[tokio::test]
async fn hostile_tokens_never_reach_a_vendor_request() {
    let config = impush_config::Config::sample().unwrap();
    for credential in config.credentials.values() {
        let refused = HOSTILE.iter().chain(if base64_tokens(credential.vendor) {
            &[]
        } else {
            BASE64_ONLY
        });
        for token in refused {
            let targets = [target(token)];
            let err = build_payload(&notification(), credential, &targets).unwrap_err();
            assert!(
                matches!(err, impush_core::BuildError::InvalidToken { .. }),
                "{:?} {token:?}: {err}",
                credential.vendor
            );
        }
    }
}

#[tokio::test]
async fn base64_tokens_travel_intact_in_the_xiaomi_form() {
    sends_token_verbatim(4, "xiaomi", "kQ2f+Bm/x=Zu..T7/y+Q==").await;
}

#[tokio::test]
async fn base64_tokens_stay_one_json_string_off_the_huawei_path() {
    for token in ["IQAAAA+x/y=", "a/../../b==", "..+/x"] {
        sends_token_verbatim(3, "huawei", token).await;
    }
}

#[tokio::test]
async fn odd_but_valid_tokens_keep_every_vendor_request_as_built() {
    for (business_id, name) in [
        (2, "fcm"),
        (5, "oppo"),
        (6, "vivo"),
        (7, "meizu"),
        (8, "tpns"),
    ] {
        sends_token_verbatim(business_id, name, "a.b:c~d-e_f").await;
    }
}
