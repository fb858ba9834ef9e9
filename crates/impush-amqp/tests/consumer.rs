//! The consume loop against the real RabbitMQ: acks are coalesced (one `basic.ack multiple`
//! for a run of finished deliveries), but a delivery is only ever acknowledged after its
//! own handler said `Ack`, and a requeued one comes back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use impush_amqp::options::{BasicGetOptions, BasicPublishOptions};
use impush_amqp::{
    Channel, Connection, Handled, HandlerFn, RunOptions, Topology, connect, protobuf_properties,
    run_consumer,
};
use impush_config::{AmqpConfig, QueueType};
use tokio_util::sync::CancellationToken;

const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

fn topology(queue_type: QueueType) -> Topology {
    Topology::new(&AmqpConfig {
        url: URL.into(),
        prefix: format!("impush-consumer-{}", uuid::Uuid::new_v4().simple()),
        queue_type,
        ..AmqpConfig::default()
    })
}

/// Declares the topology and puts `count` messages with bodies "0", "1", ... on the
/// messages queue (with publisher confirms).
async fn fill(topology: &Topology, count: usize) -> (Connection, Channel) {
    let connection = connect(URL).await.expect("RabbitMQ on loopback");
    let channel = connection.create_channel().await.expect("channel");
    channel
        .confirm_select(Default::default())
        .await
        .expect("confirms");
    topology.declare(&channel).await.expect("topology");
    for i in 0..count {
        channel
            .basic_publish(
                "".into(),
                topology.messages_queue().as_str().into(),
                BasicPublishOptions::default(),
                i.to_string().as_bytes(),
                protobuf_properties("Test"),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
    }
    (connection, channel)
}

fn options(topology: &Topology, prefetch: u16, grace: Duration) -> RunOptions {
    RunOptions {
        urls: vec![URL.into()],
        queue: topology.messages_queue(),
        prefetch,
        topology: topology.clone(),
        tls: Default::default(),
        shutdown_grace: grace,
        requeue_delay: Duration::from_millis(10),
        ready: Arc::new(AtomicBool::new(false)),
        topology_ready: Arc::new(AtomicBool::new(false)),
    }
}

async fn wait_for(what: &str, done: impl Fn() -> bool) {
    for _ in 0..600 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Every message left on the queue, by body.
async fn left_on(channel: &Channel, queue: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    // The consumer's connection has closed; its unacked deliveries are back shortly.
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Some(message) = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .expect("basic.get")
    {
        bodies.push(String::from_utf8_lossy(&message.delivery.data).into_owned());
    }
    bodies.sort();
    bodies
}

async fn cleanup(channel: &Channel, topology: &Topology) {
    let _ = topology.delete(channel).await;
}

#[tokio::test]
async fn a_delivery_still_being_handled_is_not_acked_with_the_finished_ones_after_it() {
    for queue_type in [QueueType::Quorum, QueueType::Classic] {
        let topology = topology(queue_type);
        let (_connection, channel) = fill(&topology, 60).await;
        let acked = Arc::new(Mutex::new(Vec::new()));
        let release = CancellationToken::new();
        let handler: HandlerFn = {
            let acked = Arc::clone(&acked);
            let release = release.clone();
            Arc::new(move |delivery, _publisher| {
                let acked = Arc::clone(&acked);
                let release = release.clone();
                Box::pin(async move {
                    let body = String::from_utf8_lossy(&delivery.data).into_owned();
                    if body == "0" || body == "30" {
                        // Holds the front (and the middle) of the prefetch window.
                        release.cancelled().await;
                    }
                    acked.lock().expect("lock").push(body);
                    Handled::Ack
                })
            })
        };
        let shutdown = CancellationToken::new();
        let running = tokio::spawn(run_consumer(
            options(&topology, 100, Duration::from_millis(200)),
            handler,
            shutdown.clone(),
        ));
        wait_for("58 handlers", || acked.lock().expect("lock").len() == 58).await;
        // Longer than a finished delivery waits for the ones before it.
        tokio::time::sleep(Duration::from_millis(200)).await;
        shutdown.cancel();
        running.await.expect("consumer ends");
        // The two held deliveries never finished: they, and only they, are back.
        assert_eq!(
            left_on(&channel, &topology.messages_queue()).await,
            vec!["0".to_owned(), "30".to_owned()],
            "{queue_type:?}"
        );
        release.cancel();
        cleanup(&channel, &topology).await;
    }
}

/// Handlers finish out of order, some after the ack wait, so single acks, multiple acks and
/// requeues interleave on the channel; one ack that covered a tag already acked would close
/// the channel and bring deliveries back a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_handlers_and_requeues_leave_every_message_handled_and_acked_once() {
    let topology = topology(QueueType::Quorum);
    let (_connection, channel) = fill(&topology, 1200).await;
    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let acked: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let handler: HandlerFn = {
        let seen = Arc::clone(&seen);
        let acked = Arc::clone(&acked);
        Arc::new(move |delivery, _publisher| {
            let seen = Arc::clone(&seen);
            let acked = Arc::clone(&acked);
            Box::pin(async move {
                let body = String::from_utf8_lossy(&delivery.data).into_owned();
                let n: usize = body.parse().unwrap_or(0);
                let tries = {
                    let mut seen = seen.lock().expect("lock");
                    let tries = seen.entry(body.clone()).or_default();
                    *tries += 1;
                    *tries
                };
                // Uneven handling times, some longer than the ack wait, so that handlers
                // finish out of order.
                tokio::time::sleep(Duration::from_millis(((n * 7) % 45) as u64)).await;
                if n.is_multiple_of(3) && tries == 1 {
                    return Handled::Requeue;
                }
                *acked.lock().expect("lock").entry(body).or_default() += 1;
                Handled::Ack
            })
        })
    };
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(run_consumer(
        options(&topology, 64, Duration::from_secs(5)),
        handler,
        shutdown.clone(),
    ));
    wait_for("1200 acks", || acked.lock().expect("lock").len() == 1200).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    shutdown.cancel();
    running.await.expect("consumer ends");
    assert!(
        left_on(&channel, &topology.messages_queue())
            .await
            .is_empty(),
        "every message was acked"
    );
    let acked = acked.lock().expect("lock").clone();
    assert!(acked.values().all(|&n| n == 1), "each handled to Ack once");
    let seen = seen.lock().expect("lock").clone();
    for (body, &tries) in seen.iter() {
        let n: usize = body.parse().unwrap_or(0);
        let expected = if n.is_multiple_of(3) { 2 } else { 1 };
        assert_eq!(
            tries, expected,
            "message {body}: handled once, or twice when its first try was requeued"
        );
    }
    cleanup(&channel, &topology).await;
}
