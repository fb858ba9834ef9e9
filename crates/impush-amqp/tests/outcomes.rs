//! Push outcomes on the real RabbitMQ: only opted-in apps get them, and they travel in
//! batches (`PushOutcomes` on `feedback.push`), flushed by count and at shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use impush_amqp::options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions};
use impush_amqp::{Channel, FieldTable, Outcomes, Topology, connect};
use impush_config::{AmqpConfig, FeedbackConfig, QueueType};
use impush_proto::v1::{PushOutcome, PushOutcomeKind, PushOutcomes};
use prost::Message;
use tokio_util::sync::CancellationToken;

const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

fn outcome(sdk_app_id: u32, msg_id: &str) -> PushOutcome {
    PushOutcome {
        msg_id: msg_id.into(),
        sdk_app_id,
        user_id: "u".into(),
        device_id: "d".into(),
        outcome: PushOutcomeKind::Delivered as i32,
        at_ms: 1,
        ..PushOutcome::default()
    }
}

/// The batches that reached `queue`, waiting until `want` outcomes arrived in all.
async fn batches(channel: &Channel, queue: &str, want: usize) -> Vec<PushOutcomes> {
    let mut got = Vec::new();
    for _ in 0..600 {
        while let Some(message) = channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            assert_eq!(
                message.properties.kind().as_ref().map(|t| t.as_str()),
                Some("PushOutcomes")
            );
            got.push(PushOutcomes::decode(message.data.as_slice()).unwrap());
        }
        if got.iter().map(|b| b.outcomes.len()).sum::<usize>() >= want {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {want} outcomes; got {got:?}");
}

#[tokio::test]
async fn outcomes_go_only_to_opted_in_apps_in_batches_flushed_by_count_and_at_shutdown() {
    // Classic queues: cheap to declare and delete; only the events exchange matters here.
    let topology = Topology::new(&AmqpConfig {
        prefix: format!("impush-outcomes-{}", uuid::Uuid::new_v4().simple()),
        queue_type: QueueType::Classic,
        ..AmqpConfig::default()
    });
    let connection = connect(URL).await.expect("RabbitMQ on loopback");
    let channel = connection.create_channel().await.unwrap();
    topology.declare(&channel).await.unwrap();
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .queue_bind(
            queue.name().as_str().into(),
            topology.events_exchange().as_str().into(),
            "feedback.push".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();

    let shutdown = CancellationToken::new();
    let outcomes = Outcomes::start(
        &FeedbackConfig {
            push_outcomes: vec![7],
            batch_max: 3,
            // Long enough never to fire here: batches leave by count or at shutdown.
            flush_interval_ms: 3_600_000,
            queue_max: 100,
        },
        vec![URL.into()],
        Default::default(),
        &topology,
        shutdown.clone(),
    );
    assert!(outcomes.wants(7));
    assert!(!outcomes.wants(8));
    for i in 0..4 {
        outcomes.record(outcome(7, &format!("m{i}")));
        outcomes.record(outcome(8, &format!("other{i}")));
    }
    // Three for app 7 fill one batch; the fourth waits for the next flush.
    let first = batches(&channel, queue.name().as_str(), 3).await;
    assert_eq!(first.len(), 1, "{first:?}");
    let ids: Vec<&str> = first[0]
        .outcomes
        .iter()
        .map(|o| o.msg_id.as_str())
        .collect();
    assert_eq!(ids, ["m0", "m1", "m2"]);

    shutdown.cancel();
    let last = batches(&channel, queue.name().as_str(), 1).await;
    let ids: Vec<&str> = last
        .iter()
        .flat_map(|b| &b.outcomes)
        .map(|o| o.msg_id.as_str())
        .collect();
    assert_eq!(ids, ["m3"], "app 8 did not opt in");
    let _ = topology.delete(&channel).await;
}

#[test]
fn a_disabled_recorder_wants_nothing() {
    let outcomes = Outcomes::disabled();
    assert!(!outcomes.wants(7));
    outcomes.record(outcome(7, "m"));
}
