//! `impush dlq` as the on-call engineer runs it, against the real RabbitMQ: every test
//! declares the topology under a prefix of its own, fills dead-letter queues the way the
//! workers do (`impush_amqp::dead_letter`), runs the `impush` binary, and removes its
//! queues at the end.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use impush_amqp::options::BasicGetOptions;
use impush_amqp::{
    BasicProperties, DeadLetterHeaders, DeadLetterReason, Outgoing, Publisher, Topology,
    dead_letter, headers, protobuf_properties,
};
use impush_proto::v1::{OfflineMessage, PushJob, PushTarget, Vendor};
use prost::Message;
use serde_json::Value;

const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const TOKEN: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

/// One test's topology, deleted on drop.
struct Stack {
    prefix: String,
    topology: Topology,
    runtime: tokio::runtime::Runtime,
    connection: impush_amqp::Connection,
    publisher: Publisher,
}

/// A message as it sits in a queue.
struct Held {
    body: Vec<u8>,
    properties: BasicProperties,
}

impl Held {
    fn job(&self) -> PushJob {
        PushJob::decode(self.body.as_slice()).expect("a PushJob")
    }
}

fn config_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/local/impush.toml")
}

impl Stack {
    fn new() -> Stack {
        let prefix = format!("tdlq{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let mut config = impush_config::Config::load(&config_path()).expect("config loads");
        config.amqp.url = AMQP_URL.to_owned();
        config.amqp.prefix = prefix.clone();
        let topology = Topology::new(&config.amqp);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (connection, publisher) = runtime.block_on(async {
            let connection = impush_amqp::connect(AMQP_URL).await.expect("RabbitMQ");
            let channel = connection.create_channel().await.unwrap();
            topology.declare(&channel).await.unwrap();
            let publisher = Publisher::open(&connection).await.unwrap();
            (connection, publisher)
        });
        Stack {
            prefix,
            topology,
            runtime,
            connection,
            publisher,
        }
    }

    fn apns_dlq(&self) -> String {
        self.topology.dlq(impush_core::Vendor::Apns)
    }

    fn apns_work(&self) -> String {
        self.topology.push_queue(impush_core::Vendor::Apns)
    }

    fn publish(&self, messages: Vec<Outgoing>) {
        self.runtime.block_on(async {
            for chunk in messages.chunks(500) {
                self.publisher.publish_all(chunk.to_vec()).await.unwrap();
            }
        });
    }

    fn length(&self, queue: &str) -> u32 {
        self.runtime
            .block_on(impush_amqp::queue_length(&self.connection, queue))
            .unwrap()
            .expect("queue exists")
    }

    /// Empties a queue and returns what it held, in order.
    fn take_all(&self, queue: &str) -> Vec<Held> {
        self.runtime.block_on(async {
            let channel = self.connection.create_channel().await.unwrap();
            let mut out = Vec::new();
            while let Some(message) = channel
                .basic_get(queue.into(), BasicGetOptions { no_ack: true })
                .await
                .unwrap()
            {
                out.push(Held {
                    body: message.delivery.data,
                    properties: message.delivery.properties,
                });
            }
            out
        })
    }

    /// Waits until RabbitMQ has given back what a killed process held unacknowledged: it
    /// does so only once it notices the connection is gone.
    fn wait_until_nothing_is_held(&self, queue: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let listed = Command::new("rabbitmqctl")
                .args([
                    "list_queues",
                    "-q",
                    "--no-table-headers",
                    "name",
                    "messages_unacknowledged",
                ])
                .output()
                .expect("rabbitmqctl runs");
            let text = String::from_utf8_lossy(&listed.stdout);
            let held = text
                .lines()
                .filter_map(|line| line.split_once(char::is_whitespace))
                .find(|(name, _)| *name == queue)
                .map(|(_, n)| n.trim().to_owned());
            if held.as_deref() == Some("0") {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{queue} still held: {held:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    fn impush(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_impush"));
        command
            .env_remove("IMPUSH_CONFIG")
            .env("IMPUSH__AMQP__URL", AMQP_URL)
            .env("IMPUSH__AMQP__PREFIX", &self.prefix)
            .arg("dlq");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, "")
    }

    fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .impush()
            .args(args)
            .args(["--config", config_path().to_str().unwrap()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("impush starts");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.runtime.block_on(async {
            if let Ok(channel) = self.connection.create_channel().await {
                let _ = self.topology.delete(&channel).await;
            }
        });
    }
}

/// A PushJob dead-lettered by an apns sender, as `impush-sender` writes it.
fn dead_job(stack: &Stack, msg_id: &str, reason: &str, dead_at_ms: i64) -> Outgoing {
    let job = PushJob {
        msg_id: msg_id.to_owned(),
        sdk_app_id: 1_400_000_001,
        vendor: Vendor::Apns as i32,
        business_id: 1,
        targets: vec![PushTarget {
            user_id: "vinson".into(),
            device_id: "iphone".into(),
            token: TOKEN.into(),
            badge: Some(2),
        }],
        attempt: 6,
        ..PushJob::default()
    };
    dead_letter(
        &stack.apns_dlq(),
        job.encode_to_vec(),
        &protobuf_properties("PushJob").with_message_id(msg_id.into()),
        &stack.apns_work(),
        DeadLetterReason {
            reason,
            detail: "the vendor said so",
            status: Some(503),
            attempts: Some(6),
        },
        dead_at_ms,
    )
}

fn lines(output: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(output)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

fn msg_ids(held: &[Held]) -> Vec<String> {
    held.iter().map(|h| h.job().msg_id).collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// m01…m10: odd ones `retries_exhausted`, even ones `BadTopic`; m<i> died at i × 1000 ms.
fn ten_dead_jobs(stack: &Stack) {
    stack.publish(
        (1..=10)
            .map(|i| {
                let reason = if i % 2 == 1 {
                    "retries_exhausted"
                } else {
                    "BadTopic"
                };
                dead_job(stack, &format!("m{i:02}"), reason, i * 1000)
            })
            .collect(),
    );
}

#[test]
fn list_counts_dead_letters_exactly_per_vendor_and_reason() {
    let stack = Stack::new();
    ten_dead_jobs(&stack);
    let fcm_dlq = stack.topology.dlq(impush_core::Vendor::Fcm);
    stack.publish(vec![dead_letter(
        &fcm_dlq,
        b"junk".to_vec(),
        &protobuf_properties("PushJob"),
        "somewhere",
        DeadLetterReason {
            reason: "undecodable",
            ..DeadLetterReason::default()
        },
        77,
    )]);
    stack.publish(vec![dead_letter(
        &stack.topology.events_dlq(),
        b"junk".to_vec(),
        &protobuf_properties("OfflineMessage"),
        &stack.topology.messages_queue(),
        DeadLetterReason {
            reason: "undecodable",
            ..DeadLetterReason::default()
        },
        88,
    )]);

    let output = stack.run(&["list", "--format", "json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let counts: BTreeMap<(String, String), u64> = lines(&output.stdout)
        .iter()
        .map(|l| {
            (
                (
                    l["vendor"].as_str().unwrap().to_owned(),
                    l["reason"].as_str().unwrap().to_owned(),
                ),
                l["count"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected: BTreeMap<(String, String), u64> = [
        (("apns", "BadTopic"), 5),
        (("apns", "retries_exhausted"), 5),
        (("events", "undecodable"), 1),
        (("fcm", "undecodable"), 1),
    ]
    .into_iter()
    .map(|((v, r), n)| ((v.to_owned(), r.to_owned()), n))
    .collect();
    assert_eq!(counts, expected);

    let table = stack.run(&["list", "--vendor", "apns", "--reason", "BadTopic"]);
    assert!(table.status.success(), "{}", stderr(&table));
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("BadTopic"), "{text}");
    assert!(
        !text.contains("retries_exhausted"),
        "the filter holds: {text}"
    );
    assert!(text.contains("5 dead letter(s) in 1 queue(s)"), "{text}");

    assert_eq!(
        stack.length(&stack.apns_dlq()),
        10,
        "listing removes nothing"
    );
    assert_eq!(msg_ids(&stack.take_all(&stack.apns_dlq()))[0], "m01");
}

#[test]
fn inspect_shows_the_decoded_job_and_headers_with_short_tokens_and_changes_nothing() {
    let stack = Stack::new();
    ten_dead_jobs(&stack);
    stack.publish(vec![dead_letter(
        &stack.apns_dlq(),
        vec![0xff, 0xff, 0xff],
        &protobuf_properties("PushJob"),
        &stack.apns_work(),
        DeadLetterReason {
            reason: "undecodable",
            ..DeadLetterReason::default()
        },
        11_000,
    )]);

    let output = stack.run(&["inspect", "--vendor", "apns", "--limit", "20"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(!text.contains(TOKEN), "no full token is ever shown");
    let shown = lines(&output.stdout);
    assert_eq!(shown.len(), 11);
    let first = &shown[0];
    assert_eq!(first["msg_id"], "m01");
    assert_eq!(first["job"]["msgId"], "m01");
    assert_eq!(first["job"]["vendor"], "VENDOR_APNS");
    assert_eq!(first["job"]["attempt"], 6);
    assert_eq!(first["job"]["targets"][0]["token"], &TOKEN[..8]);
    assert_eq!(first["headers"][headers::REASON], "retries_exhausted");
    assert_eq!(first["headers"][headers::STATUS], 503);
    assert_eq!(first["headers"][headers::DEAD_AT_MS], 1000);
    assert_eq!(first["headers"][headers::SOURCE_QUEUE], stack.apns_work());
    assert_eq!(first["dead_at"], "1970-01-01T00:00:01Z");
    let junk = &shown[10];
    assert_eq!(junk["body_base64"], "////");
    assert!(junk["note"].as_str().unwrap().starts_with("not a PushJob"));

    let filtered = stack.run(&[
        "inspect", "--vendor", "apns", "--reason", "BadTopic", "--limit", "2",
    ]);
    let ids: Vec<Value> = lines(&filtered.stdout)
        .iter()
        .map(|l| l["msg_id"].clone())
        .collect();
    assert_eq!(ids, ["m02", "m04"]);

    let after = stack.take_all(&stack.apns_dlq());
    assert_eq!(after.len(), 11, "inspect removes nothing");
    let expected: Vec<String> = (1..=10).map(|i| format!("m{i:02}")).collect();
    assert_eq!(
        after[..10]
            .iter()
            .map(|h| h.job().msg_id)
            .collect::<Vec<_>>(),
        expected,
        "and keeps the order"
    );
}

#[test]
fn replay_moves_exactly_the_selected_messages_and_the_rest_stay_in_order() {
    let stack = Stack::new();
    ten_dead_jobs(&stack);

    // retries_exhausted dead in [3000, 9000): m03, m05, m07; the limit takes the first two.
    let output = stack.run(&[
        "replay",
        "--vendor",
        "apns",
        "--reason",
        "retries_exhausted",
        "--since",
        "1970-01-01T00:00:03Z",
        "--until",
        "9000",
        "--limit",
        "2",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let reported: Vec<Value> = lines(&output.stdout)
        .iter()
        .map(|l| l["msg_id"].clone())
        .collect();
    assert_eq!(reported, ["m03", "m05"]);

    let work = stack.take_all(&stack.apns_work());
    assert_eq!(msg_ids(&work), ["m03", "m05"]);
    for held in &work {
        let job = held.job();
        assert_eq!(job.attempt, 0, "a fresh retry budget");
        assert_eq!(job.targets[0].token, TOKEN, "the body is otherwise kept");
        assert_eq!(
            held.properties.message_id().as_ref().map(|v| v.to_string()),
            Some(job.msg_id.clone()),
            "msg_id kept, so deduplication still holds"
        );
        assert!(impush_amqp::header_u64(&held.properties, headers::REPLAYED_AT_MS).is_some());
        assert_eq!(
            DeadLetterHeaders::read(&held.properties).reason.as_deref(),
            Some("retries_exhausted")
        );
    }
    let rest = msg_ids(&stack.take_all(&stack.apns_dlq()));
    assert_eq!(
        rest,
        ["m01", "m02", "m04", "m06", "m07", "m08", "m09", "m10"]
    );
}

#[test]
fn a_dry_run_shows_what_would_move_and_changes_nothing() {
    let stack = Stack::new();
    ten_dead_jobs(&stack);
    let output = stack.run(&[
        "replay",
        "--vendor",
        "apns",
        "--reason",
        "BadTopic",
        "--dry-run",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let shown = lines(&output.stdout);
    assert_eq!(shown.len(), 5);
    assert!(shown.iter().all(|l| l["action"] == "would_replay"));
    assert_eq!(shown[0]["to"], format!("{}.push/apns", stack.prefix));
    assert_eq!(stack.length(&stack.apns_work()), 0);
    let expected: Vec<String> = (1..=10).map(|i| format!("m{i:02}")).collect();
    assert_eq!(msg_ids(&stack.take_all(&stack.apns_dlq())), expected);
}

/// Starts a replay of `total` dead letters, stops it with `signal` once `after` messages
/// were reported moved, and returns the exit status code.
fn interrupt_replay(stack: &Stack, signal: &str, after: usize) -> Option<i32> {
    let mut child = stack
        .impush()
        .args([
            "replay",
            "--vendor",
            "apns",
            "--config",
            config_path().to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    for _ in 0..after {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "the replay ended early"
        );
    }
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let _ = std::io::copy(&mut reader, &mut std::io::sink());
    child.wait().unwrap().code()
}

fn many_dead_jobs(stack: &Stack, total: usize) -> Vec<String> {
    let ids: Vec<String> = (0..total).map(|i| format!("bulk-{i:05}")).collect();
    stack.publish(
        ids.iter()
            .map(|id| dead_job(stack, id, "retries_exhausted", 1))
            .collect(),
    );
    ids
}

#[test]
fn a_replay_stopped_by_sigint_and_run_again_moves_every_message_exactly_once() {
    let stack = Stack::new();
    let total = 3000;
    let ids = many_dead_jobs(&stack, total);

    let code = interrupt_replay(&stack, "-INT", 100);
    assert_eq!(code, Some(130), "an interrupted run says so");
    let moved = stack.length(&stack.apns_work()) as usize;
    let left = stack.length(&stack.apns_dlq()) as usize;
    assert!(
        moved >= 100 && moved < total,
        "stopped halfway: {moved} moved"
    );
    assert_eq!(moved + left, total, "nothing lost, nothing doubled");
    let inspected = stack.run(&["inspect", "--vendor", "apns", "--limit", "5000"]);
    let still_dead: Vec<String> = lines(&inspected.stdout)
        .iter()
        .map(|l| l["msg_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(still_dead.len(), left);
    let out_of_order = still_dead.windows(2).position(|pair| pair[0] > pair[1]);
    assert_eq!(
        out_of_order,
        None,
        "what was not replayed stays in order: {:?}",
        out_of_order.map(|i| &still_dead[i.saturating_sub(2)..(i + 3).min(still_dead.len())])
    );

    let again = stack.run(&["replay", "--vendor", "apns"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(stack.length(&stack.apns_dlq()), 0);
    let mut arrived = msg_ids(&stack.take_all(&stack.apns_work()));
    arrived.sort();
    assert_eq!(arrived, ids, "every message exactly once");
}

#[test]
fn a_replay_killed_outright_loses_nothing_and_doubles_at_most_the_batch_in_flight() {
    let stack = Stack::new();
    let total = 3000;
    let ids = many_dead_jobs(&stack, total);

    let code = interrupt_replay(&stack, "-KILL", 100);
    assert_eq!(code, None, "killed by a signal");
    stack.wait_until_nothing_is_held(&stack.apns_dlq());
    let again = stack.run(&["replay", "--vendor", "apns"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(stack.length(&stack.apns_dlq()), 0);

    let mut seen: HashMap<String, usize> = HashMap::new();
    for id in msg_ids(&stack.take_all(&stack.apns_work())) {
        *seen.entry(id).or_default() += 1;
    }
    let mut arrived: Vec<String> = seen.keys().cloned().collect();
    arrived.sort();
    assert_eq!(arrived, ids, "every message arrived");
    let doubled = seen.values().filter(|n| **n > 1).count();
    assert!(
        doubled <= 64,
        "only copies confirmed but not yet acked can repeat: {doubled}"
    );
}

#[test]
fn events_go_back_to_the_queue_they_came_from_and_unknown_sources_stay() {
    let stack = Stack::new();
    let event = OfflineMessage {
        msg_id: "e1".into(),
        receiver_id: "vinson".into(),
        ..OfflineMessage::default()
    };
    let dead = |source: &str| {
        dead_letter(
            &stack.topology.events_dlq(),
            event.encode_to_vec(),
            &protobuf_properties("OfflineMessage"),
            source,
            DeadLetterReason {
                reason: "unknown_business_id",
                ..DeadLetterReason::default()
            },
            5,
        )
    };
    stack.publish(vec![
        dead(&stack.topology.messages_queue()),
        dead("elsewhere"),
    ]);

    let output = stack.run(&["replay", "--vendor", "events"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let back = stack.take_all(&stack.topology.messages_queue());
    assert_eq!(back.len(), 1);
    assert_eq!(
        OfflineMessage::decode(back[0].body.as_slice())
            .unwrap()
            .msg_id,
        "e1"
    );
    let kept = stack.take_all(&stack.topology.events_dlq());
    assert_eq!(kept.len(), 1, "{}", stderr(&output));
    assert_eq!(
        impush_amqp::header_str(&kept[0].properties, headers::SOURCE_QUEUE),
        Some("elsewhere")
    );
}

#[test]
fn purge_without_yes_or_the_typed_queue_name_removes_nothing() {
    let stack = Stack::new();
    ten_dead_jobs(&stack);
    for typed in ["", "yes\n", "apns\n"] {
        let output = stack.run_with_stdin(&["purge", "--vendor", "apns"], typed);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{typed:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains("nothing purged"),
            "{}",
            stderr(&output)
        );
        assert_eq!(
            stack.length(&stack.apns_dlq()),
            10,
            "{typed:?} is no confirmation"
        );
    }
    let dry = stack.run(&["purge", "--vendor", "apns", "--dry-run", "--yes"]);
    assert!(dry.status.success());
    assert_eq!(lines(&dry.stdout).len(), 10);
    assert_eq!(
        stack.length(&stack.apns_dlq()),
        10,
        "a dry run removes nothing"
    );
}

#[test]
fn purge_removes_the_selected_messages_once_confirmed() {
    let stack = Stack::new();
    ten_dead_jobs(&stack);
    let output = stack.run(&["purge", "--vendor", "apns", "--reason", "BadTopic", "--yes"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("purged 5 message(s)"),
        "{}",
        stderr(&output)
    );

    let typed = format!("{}\n", stack.apns_dlq());
    let output = stack.run_with_stdin(&["purge", "--vendor", "apns", "--until", "2000"], &typed);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("purged 1 message(s)"),
        "{}",
        stderr(&output)
    );

    let rest = msg_ids(&stack.take_all(&stack.apns_dlq()));
    assert_eq!(rest, ["m03", "m05", "m07", "m09"]);
}

#[test]
fn bad_input_and_missing_queues_exit_2_with_one_line() {
    let stack = Stack::new();
    let check = |output: Output, says: &str| {
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        let text = stderr(&output);
        assert_eq!(text.trim_end().lines().count(), 1, "{text}");
        assert!(text.contains(says), "{text}");
    };
    check(
        stack.run(&["inspect", "--vendor", "nokia"]),
        "unknown vendor \"nokia\"",
    );
    check(
        stack.run(&["replay", "--vendor", "apns", "--since", "last week"]),
        "--since",
    );
    let absent = stack
        .impush()
        .env("IMPUSH__AMQP__PREFIX", format!("{}-absent", stack.prefix))
        .args(["list", "--config", config_path().to_str().unwrap()])
        .output()
        .unwrap();
    check(absent, "does not exist");
    let unreachable = stack
        .impush()
        .env("IMPUSH__AMQP__URL", "amqp://guest:guest@127.0.0.1:1/%2f")
        .args(["list", "--config", config_path().to_str().unwrap()])
        .output()
        .unwrap();
    check(
        unreachable,
        "cannot reach RabbitMQ at amqp://127.0.0.1:1/%2f",
    );
}
