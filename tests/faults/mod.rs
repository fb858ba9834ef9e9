//! What every fault scenario shares: its size (`IMPUSH_FAULTS=full` for ≥ 10,000
//! notifications, a short form by default), a fixed event stream whose every expected
//! notification is known as (msg_id, token), a publisher that paces the stream like IM core
//! and publishes a batch again when the broker did not confirm it, and the final audit:
//! every expected notification delivered exactly once or dead-lettered with a reason.

pub mod services;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use impush_amqp::{Outgoing, Publisher, Topology, protobuf_properties};
use impush_proto::Event;
use impush_proto::v1::{OfflinePushInfo, PresenceState, PushJob, Vendor};
use prost::Message;

use crate::fleet::{Fleet, apns_token, now_ms, presence, register, text_message};

/// The scenarios run one at a time (they load the machine, and two of them stop services):
/// nextest's `faults` test group does it across processes, this lock under `cargo test`.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How big a scenario is.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub full: bool,
    pub users: usize,
    pub messages: usize,
}

/// Each user has an iPhone (APNs) and an Android phone (FCM), both in the background.
pub const DEVICES_PER_USER: usize = 2;

impl Scale {
    pub fn from_env() -> Scale {
        let full = std::env::var("IMPUSH_FAULTS").is_ok_and(|v| v == "full");
        let (users, notifications) = if full { (500, 10_000) } else { (100, 1_000) };
        Scale {
            full,
            users,
            messages: notifications / DEVICES_PER_USER,
        }
    }

    pub fn pick<T>(&self, short: T, full: T) -> T {
        if self.full { full } else { short }
    }

    /// How long the publisher spreads the stream over.
    pub fn pacing(&self) -> Pacing {
        self.pick(
            Pacing {
                chunk: 25,
                pause: Duration::from_millis(200),
            },
            Pacing {
                chunk: 100,
                pause: Duration::from_millis(400),
            },
        )
    }

    pub fn publish_window(&self) -> Duration {
        let pacing = self.pacing();
        pacing.pause * self.messages.div_ceil(pacing.chunk) as u32
    }

    /// How long the fleet may take to settle after the last fault.
    pub fn deadline(&self) -> Duration {
        self.pick(Duration::from_secs(240), Duration::from_secs(1200))
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    pub chunk: usize,
    pub pause: Duration,
}

/// A small deterministic generator for the moments faults strike: the seed is printed, and
/// `IMPUSH_FAULTS_SEED` replays it.
pub struct Rng(u64);

impl Rng {
    pub fn from_env(scenario: &str) -> Rng {
        let seed = std::env::var("IMPUSH_FAULTS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| uuid::Uuid::new_v4().as_u64_pair().0 | 1);
        eprintln!("{scenario}: IMPUSH_FAULTS_SEED={seed}");
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A duration between `low` and `high`.
    pub fn between(&mut self, low: Duration, high: Duration) -> Duration {
        let span = high.saturating_sub(low).as_millis() as u64;
        low + Duration::from_millis(self.next_u64() % span.max(1))
    }
}

/// The fixed stream of one scenario: the users' devices and presence, then `messages` C2C
/// messages round-robin over the users, each carrying its msg_id as `ext` so that a
/// vendor's record names the message it delivered.
pub struct Stream {
    pub tag: String,
    pub scale: Scale,
    /// (msg_id, token) of every notification that must arrive.
    pub expected: BTreeSet<(String, String)>,
}

impl Stream {
    pub fn new(tag: &str, scale: Scale) -> Stream {
        let mut stream = Stream {
            tag: tag.to_owned(),
            scale,
            expected: BTreeSet::new(),
        };
        for i in 0..scale.messages {
            let user = i % scale.users;
            for token in stream.tokens(user) {
                stream.expected.insert((stream.msg_id(i), token));
            }
        }
        stream
    }

    pub fn msg_id(&self, i: usize) -> String {
        format!("{}-m{i}", self.tag)
    }

    fn user(&self, user: usize) -> String {
        format!("{}-user-{user}", self.tag)
    }

    pub fn iphone_token(&self, user: usize) -> String {
        apns_token(user as u32 + 1)
    }

    pub fn android_token(&self, user: usize) -> String {
        format!("fcm-{}-{user}", self.tag)
    }

    fn tokens(&self, user: usize) -> [String; DEVICES_PER_USER] {
        [self.iphone_token(user), self.android_token(user)]
    }

    /// How many notifications go to one user's devices each.
    pub fn messages_per_user(&self, user: usize) -> usize {
        (0..self.scale.messages)
            .filter(|i| i % self.scale.users == user)
            .count()
    }

    pub fn state_events(&self) -> Vec<Event> {
        let t = now_ms() - 60_000;
        let mut events = Vec::new();
        for user in 0..self.scale.users {
            let name = self.user(user);
            for (device, vendor, token) in [
                ("iphone", Vendor::Apns, self.iphone_token(user)),
                ("android", Vendor::Fcm, self.android_token(user)),
            ] {
                events.push(register(&name, device, vendor, &token, t));
                events.push(presence(&name, device, PresenceState::Background, 0, t + 1));
            }
        }
        events
    }

    pub fn message_events(&self) -> Vec<Event> {
        (0..self.scale.messages)
            .map(|i| {
                let msg_id = self.msg_id(i);
                let mut message = text_message(
                    &msg_id,
                    "denny",
                    &self.user(i % self.scale.users),
                    "are you there?",
                );
                message.push_info = Some(OfflinePushInfo {
                    ext: msg_id,
                    ..OfflinePushInfo::default()
                });
                Event::OfflineMessage(message)
            })
            .collect()
    }

    /// Publishes the state events and waits until ingest applied every one of them.
    pub async fn load_state(&self, fleet: &Fleet) {
        let events = self.state_events();
        let count = events.len() as f64;
        fleet.publish(events).await;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let metrics = fleet.metrics("impush-ingest").await;
            let applied = metric_sum(&metrics, "impush_events_consumed_total", &["applied"]);
            if applied >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "ingest applied {applied} of {count} state events"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// The sum of a metric's samples whose labels contain every one of `labels`.
pub fn metric_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|line| labels.iter().all(|l| line.contains(&format!("\"{l}\""))))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// IM core's side: publishes the stream a chunk at a time with pauses, on its own
/// connection; a chunk the broker did not confirm is published again once it is back
/// (the repeats are what deduplication is for).
pub struct PacedPublisher {
    pub republished: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl PacedPublisher {
    pub fn start(fleet: &Fleet, events: Vec<Event>, pacing: Pacing) -> PacedPublisher {
        let republished = Arc::new(AtomicUsize::new(0));
        let url = fleet.amqp_url.clone();
        let topology = fleet.topology.clone();
        let task = {
            let republished = Arc::clone(&republished);
            tokio::spawn(async move {
                let mut publisher: Option<(impush_amqp::Connection, Publisher)> = None;
                let deadline = Instant::now() + Duration::from_secs(600);
                for chunk in events.chunks(pacing.chunk) {
                    loop {
                        assert!(Instant::now() < deadline, "the broker never came back");
                        if publisher.is_none() {
                            publisher = open_publisher(&url).await;
                        }
                        let Some((_, open)) = &publisher else {
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            continue;
                        };
                        let messages = chunk.iter().map(|e| outgoing(&topology, e)).collect();
                        match open.publish_all(messages).await {
                            Ok(()) => break,
                            Err(_) => {
                                publisher = None;
                                republished.fetch_add(chunk.len(), Ordering::SeqCst);
                                tokio::time::sleep(Duration::from_millis(500)).await;
                            }
                        }
                    }
                    tokio::time::sleep(pacing.pause).await;
                }
            })
        };
        PacedPublisher { republished, task }
    }

    /// Waits until every event was confirmed.
    pub async fn finish(self) -> usize {
        self.task.await.expect("the publisher finished");
        self.republished.load(Ordering::SeqCst)
    }
}

async fn open_publisher(url: &str) -> Option<(impush_amqp::Connection, Publisher)> {
    let connection = impush_amqp::connect(url).await.ok()?;
    let publisher = Publisher::open(&connection).await.ok()?;
    Some((connection, publisher))
}

fn outgoing(topology: &Topology, event: &Event) -> Outgoing {
    Outgoing {
        mandatory: true,
        exchange: topology.events_exchange(),
        routing_key: event.kind().routing_key().to_owned(),
        body: event.encode_to_vec(),
        properties: protobuf_properties(event.kind().type_name()),
    }
}

/// What a scenario expects beyond "every notification once": how many duplicates its
/// faults may cause, and exactly which dead letters (reason, count).
pub struct Expect {
    pub max_duplicates: usize,
    pub dead: Vec<(&'static str, usize)>,
}

/// One row of the fault report.
#[derive(Debug, Default)]
pub struct Audit {
    pub scenario: String,
    pub sent: usize,
    pub delivered: usize,
    pub duplicates: usize,
    pub dead: BTreeMap<String, usize>,
    pub lost: usize,
    pub unexpected: usize,
    pub seconds: u64,
    /// A few examples of whatever went wrong, for the failure message.
    pub problems: Vec<String>,
}

impl Audit {
    pub fn dead_total(&self) -> usize {
        self.dead.values().sum()
    }

    pub fn row(&self) -> String {
        let dead = if self.dead.is_empty() {
            "0".to_owned()
        } else {
            let reasons: Vec<String> = self.dead.iter().map(|(r, n)| format!("{r} {n}")).collect();
            format!("{} ({})", self.dead_total(), reasons.join(", "))
        };
        format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            self.scenario,
            self.sent,
            self.delivered,
            self.duplicates,
            dead,
            self.lost,
            self.unexpected,
            self.seconds
        )
    }
}

pub const REPORT_HEADER: &str = "| scenario | sent | delivered | duplicates | dead-lettered (reasons) | lost | unexpected | seconds |";
const REPORT_RULE: &str = "|---|---:|---:|---:|---|---:|---:|---:|";

/// The fleet's queues a notification can still be waiting in.
fn work_queues(fleet: &Fleet, vendors: &[Vendor]) -> Vec<String> {
    let topology = &fleet.topology;
    let mut queues = vec![topology.state_queue(), topology.messages_queue()];
    for vendor in vendors {
        queues.push(topology.push_queue(*vendor));
        for step in 0..topology.retry_steps() {
            queues.push(topology.retry_queue(*vendor, step));
        }
    }
    queues
}

/// Dead letters taken out of the fleet's queues: (msg_id, token) → reasons.
type DeadLetters = HashMap<(String, String), Vec<String>>;

async fn drain_dead_letters(fleet: &Fleet, vendors: &[Vendor], dead: &mut DeadLetters) -> usize {
    for vendor in vendors {
        for message in fleet.drain(&fleet.topology.dlq(*vendor)).await {
            let reason = impush_amqp::header_str(&message.properties, impush_amqp::headers::REASON)
                .unwrap_or_default()
                .to_owned();
            match PushJob::decode(message.data.as_slice()) {
                Ok(job) => {
                    for target in job.targets {
                        dead.entry((job.msg_id.clone(), target.token))
                            .or_default()
                            .push(reason.clone());
                    }
                }
                Err(_) => dead
                    .entry(("undecodable".into(), String::new()))
                    .or_default()
                    .push(reason),
            }
        }
    }
    fleet.drain(&fleet.topology.events_dlq()).await.len()
}

/// (msg_id, token) → how many times the simulator accepted it.
async fn delivered_counts(fleet: &Fleet) -> HashMap<(String, String), usize> {
    let mut counts = HashMap::new();
    for record in fleet.deliveries(None).await {
        let msg_id = record["ext"].as_str().unwrap_or_default().to_owned();
        let token = record["token"].as_str().unwrap_or_default().to_owned();
        *counts.entry((msg_id, token)).or_default() += 1;
    }
    counts
}

/// Waits until every expected notification was delivered or dead-lettered and the fleet's
/// queues are empty (or the deadline passed), then counts, prints the report row (also
/// appended to `IMPUSH_FAULTS_REPORT` when set) and asserts.
pub async fn audit(
    fleet: &Fleet,
    stream: &Stream,
    vendors: &[Vendor],
    scenario: &str,
    started: Instant,
    expect: Expect,
) -> Audit {
    let queues = work_queues(fleet, vendors);
    let mut dead = DeadLetters::new();
    let mut dead_events = 0;
    let deadline = Instant::now() + stream.scale.deadline();
    loop {
        dead_events += drain_dead_letters(fleet, vendors, &mut dead).await;
        let mut idle = true;
        for queue in &queues {
            if fleet.queue_len(queue).await > 0 {
                idle = false;
                break;
            }
        }
        if idle {
            let delivered = delivered_counts(fleet).await;
            let covered = stream
                .expected
                .iter()
                .filter(|pair| delivered.contains_key(*pair) || dead.contains_key(*pair))
                .count();
            if covered == stream.expected.len() {
                break;
            }
        }
        if Instant::now() > deadline {
            eprintln!("{scenario}: the deadline passed before everything arrived");
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Anything still in flight that would repeat a notification shows up by now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    dead_events += drain_dead_letters(fleet, vendors, &mut dead).await;
    let delivered = delivered_counts(fleet).await;

    let mut audit = Audit {
        scenario: scenario.to_owned(),
        sent: stream.expected.len(),
        seconds: started.elapsed().as_secs(),
        ..Audit::default()
    };
    let problem = |audit: &mut Audit, text: String| {
        if audit.problems.len() < 10 {
            audit.problems.push(text);
        }
    };
    for pair in &stream.expected {
        let times = delivered.get(pair).copied().unwrap_or(0);
        let reasons = dead.get(pair);
        if times > 0 {
            audit.delivered += 1;
            audit.duplicates += times - 1;
            if reasons.is_some() {
                audit.unexpected += 1;
                problem(&mut audit, format!("{pair:?} delivered and dead-lettered"));
            }
        } else if let Some(reasons) = reasons {
            for reason in reasons {
                *audit.dead.entry(reason.clone()).or_default() += 1;
            }
            if reasons.len() > 1 || reasons.iter().any(String::is_empty) {
                audit.unexpected += 1;
                problem(&mut audit, format!("{pair:?} dead letters {reasons:?}"));
            }
        } else {
            audit.lost += 1;
            problem(&mut audit, format!("{pair:?} lost"));
        }
    }
    for pair in delivered.keys().chain(dead.keys()) {
        if !stream.expected.contains(pair) {
            audit.unexpected += 1;
            problem(&mut audit, format!("{pair:?} was not expected"));
        }
    }
    if dead_events > 0 {
        audit.unexpected += dead_events;
        problem(&mut audit, format!("{dead_events} events dead-lettered"));
    }

    let row = audit.row();
    eprintln!("{REPORT_HEADER}\n{row}");
    if let Ok(path) = std::env::var("IMPUSH_FAULTS_REPORT") {
        use std::io::Write;
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            if file.metadata().is_ok_and(|m| m.len() == 0) {
                let _ = writeln!(file, "{REPORT_HEADER}\n{REPORT_RULE}");
            }
            let _ = writeln!(file, "{row}");
        }
    }
    assert_eq!(audit.lost, 0, "lost notifications: {:?}", audit.problems);
    assert_eq!(audit.unexpected, 0, "unexpected: {:?}", audit.problems);
    assert!(
        audit.duplicates <= expect.max_duplicates,
        "{} duplicates, at most {} allowed",
        audit.duplicates,
        expect.max_duplicates
    );
    let expected_dead: BTreeMap<String, usize> = expect
        .dead
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| ((*r).to_owned(), *n))
        .collect();
    assert_eq!(audit.dead, expected_dead, "dead letters by reason");
    audit
}

/// The duplicates a run's sender kills caused, kill by kill: each repeated notification is
/// put on the first sender kill at or after its first copy's acceptance (that kill lost
/// its delivery record), with how long before the kill the vendor accepted it.
#[derive(Debug, Default)]
pub struct DuplicatesByKill {
    /// Per kill, in order: repeats, and the earliest and latest first copy (ms before it).
    pub kills: Vec<(usize, Option<(i64, i64)>)>,
    /// Repeats with no sender kill after their first copy.
    pub unattributed: usize,
}

impl DuplicatesByKill {
    pub fn max_per_kill(&self) -> usize {
        self.kills.iter().map(|(n, _)| *n).max().unwrap_or(0)
    }

    /// One line for the report: the count per kill and the accepted-before window.
    pub fn note(&self, scenario: &str) -> String {
        let counts: Vec<String> = self.kills.iter().map(|(n, _)| n.to_string()).collect();
        let (earliest, latest) = self
            .kills
            .iter()
            .filter_map(|(_, window)| *window)
            .fold((i64::MIN, i64::MAX), |(hi, lo), (a, b)| {
                (hi.max(a), lo.min(b))
            });
        let window = if earliest == i64::MIN {
            "no repeats".to_owned()
        } else {
            format!("first copies accepted {latest}–{earliest} ms before their kill")
        };
        format!(
            "{scenario}: {} sender kills, duplicates per kill {} (max {}); {window}; {} not after a kill",
            self.kills.len(),
            counts.join(", "),
            self.max_per_kill(),
            self.unattributed,
        )
    }
}

/// Sorts the simulator's repeated deliveries by the sender kill (Unix ms, ascending)
/// that followed their first copy.
pub async fn duplicates_by_kill(fleet: &Fleet, kills_ms: &[i64]) -> DuplicatesByKill {
    let mut copies: HashMap<(String, String), Vec<i64>> = HashMap::new();
    for record in fleet.deliveries(None).await {
        let msg_id = record["ext"].as_str().unwrap_or_default().to_owned();
        let token = record["token"].as_str().unwrap_or_default().to_owned();
        let at = record["received_at_ms"].as_i64().unwrap_or_default();
        copies.entry((msg_id, token)).or_default().push(at);
    }
    let mut result = DuplicatesByKill {
        kills: vec![(0, None); kills_ms.len()],
        unattributed: 0,
    };
    for times in copies.values().filter(|t| t.len() > 1) {
        let first = times.iter().copied().min().unwrap_or_default();
        let repeats = times.len() - 1;
        match kills_ms.iter().position(|kill| *kill >= first) {
            Some(i) => {
                let before = kills_ms[i] - first;
                let (n, window) = &mut result.kills[i];
                *n += repeats;
                *window = Some(match *window {
                    Some((earliest, latest)) => (earliest.max(before), latest.min(before)),
                    None => (before, before),
                });
            }
            None => result.unattributed += repeats,
        }
    }
    result
}

/// Appends `note` to `IMPUSH_FAULTS_REPORT` + `.notes` when set.
pub fn write_note(note: &str) {
    if let Ok(path) = std::env::var("IMPUSH_FAULTS_REPORT") {
        use std::io::Write;
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(format!("{path}.notes"))
        {
            let _ = writeln!(file, "{note}");
        }
    }
}

/// Every worker is still running: none crashed, none gave up.
pub fn assert_workers_running(fleet: &mut Fleet) {
    for name in fleet.worker_names() {
        assert_eq!(fleet.exited(&name), None, "{name} exited");
    }
}

/// How many notifications the simulator has accepted so far.
pub async fn delivered_so_far(fleet: &Fleet) -> usize {
    fleet.deliveries(None).await.len()
}
