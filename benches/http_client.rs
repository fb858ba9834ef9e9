//! What one vendor request costs the sender's HTTP client: reqwest, as impush sends, against
//! hyper's own HTTP/2 connection (`hyper::client::conn::http2`, no pool, no URL parsing), each
//! sending the same APNs-shaped request (`POST /3/device/<token>`, five headers, a 200-byte
//! JSON body) to an h2c server on another thread, 64 in flight like `[sender] concurrency`.
//!
//! Reports CPU time per request of the client's thread only (the server runs on its own
//! thread, not counted), from `/proc/thread-self/schedstat`, and the ratio of the two measured
//! in the same run. `cargo bench -p impush-benches --bench http_client`; `make bench` runs it.

// A failure here is a bug in the fixture (no port, no server): panicking is the right report.
#![allow(clippy::expect_used)]

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};

const REQUESTS: usize = 20_000;
const IN_FLIGHT: usize = 64;
const ROUNDS: usize = 3;

fn main() {
    let addr = start_server();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let body = Bytes::from(format!(
        "{{\"aps\":{{\"alert\":{{\"title\":\"Denny\",\"body\":\"{}\"}},\"badge\":3,\"sound\":\"default\"}}}}",
        "x".repeat(140)
    ));
    println!(
        "HTTP/2 client CPU per request, {REQUESTS} requests, {IN_FLIGHT} in flight, client thread only"
    );
    let mut ratios = Vec::new();
    for round in 1..=ROUNDS {
        let reqwest_us = runtime.block_on(with_reqwest(addr, body.clone()));
        let hyper_us = runtime.block_on(with_hyper(addr, body.clone()));
        let ratio = hyper_us / reqwest_us;
        ratios.push(ratio);
        println!(
            "round {round}: reqwest {reqwest_us:.1} µs, hyper http2 connection {hyper_us:.1} µs, hyper / reqwest {ratio:.2}"
        );
    }
    ratios.sort_by(f64::total_cmp);
    println!("median hyper / reqwest: {:.2}", ratios[ratios.len() / 2]);
}

/// An h2c server answering every request 200 with an `apns-id`, on a thread of its own.
fn start_server() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("a port");
            tx.send(listener.local_addr().expect("its address"))
                .expect("the bench waits");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let service =
                        service_fn(|request: Request<hyper::body::Incoming>| async move {
                            let _ = request.into_body().collect().await;
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .header("apns-id", "5e2b9a6c-9a1f-4c39-9d3e-1d2a4b5c6d7e")
                                    .body(Full::new(Bytes::new()))
                                    .expect("a response"),
                            )
                        });
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .max_concurrent_streams(1000)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    rx.recv().expect("the server's address")
}

fn token(i: usize) -> String {
    format!("{i:064x}")
}

/// As `impush_vendors::http::post` sends: a URL string per request, headers by name.
async fn with_reqwest(addr: SocketAddr, body: Bytes) -> f64 {
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("a client");
    let base = format!("http://{addr}");
    // Warm the connection up.
    let _ = client
        .post(format!("{base}/3/device/{}", token(0)))
        .send()
        .await;
    let started = thread_cpu_ns();
    futures::stream::iter(0..REQUESTS)
        .map(|i| {
            let client = &client;
            let url = format!("{base}/3/device/{}", token(i));
            let body = body.clone();
            async move {
                let response = client
                    .post(url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header("apns-topic", "com.example.chat")
                    .header("apns-push-type", "alert")
                    .header("apns-priority", "10")
                    .header("apns-expiration", "1796700000")
                    .header("apns-collapse-id", "m-123")
                    .body(body)
                    .send()
                    .await
                    .expect("an answer");
                assert_eq!(response.status(), 200);
                let _ = response.bytes().await.expect("a body");
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<()>>()
        .await;
    per_request(started)
}

/// One HTTP/2 connection driven by hyper directly: the request built from a `Uri` and
/// static header names, sent on a cloned `SendRequest`.
async fn with_hyper(addr: SocketAddr, body: Bytes) -> f64 {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connected");
    stream.set_nodelay(true).expect("nodelay");
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("an HTTP/2 connection");
    tokio::spawn(connection);
    let authority = addr.to_string();
    let started = thread_cpu_ns();
    futures::stream::iter(0..REQUESTS)
        .map(|i| {
            let mut sender = sender.clone();
            let uri = hyper::Uri::builder()
                .scheme("http")
                .authority(authority.as_str())
                .path_and_query(format!("/3/device/{}", token(i)))
                .build()
                .expect("a uri");
            let body = body.clone();
            async move {
                let request = Request::post(uri)
                    .header(hyper::header::CONTENT_TYPE, "application/json")
                    .header("apns-topic", "com.example.chat")
                    .header("apns-push-type", "alert")
                    .header("apns-priority", "10")
                    .header("apns-expiration", "1796700000")
                    .header("apns-collapse-id", "m-123")
                    .body(Full::new(body))
                    .expect("a request");
                let response = sender.send_request(request).await.expect("an answer");
                assert_eq!(response.status(), 200);
                let _ = response.into_body().collect().await.expect("a body");
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<()>>()
        .await;
    per_request(started)
}

fn per_request(started_ns: u64) -> f64 {
    let used_ns = thread_cpu_ns().saturating_sub(started_ns);
    used_ns as f64 / 1000.0 / REQUESTS as f64
}

/// Time this thread has spent on a CPU, in ns (`/proc/thread-self/schedstat`, first field;
/// proc(5)).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .expect("/proc/thread-self/schedstat")
}
