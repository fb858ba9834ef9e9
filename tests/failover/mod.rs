//! What the failover scenarios share: their size (`IMPUSH_FAILOVER=full` for 10,000
//! notifications, a short form of 2,000 by default), a stream of C2C and group messages to
//! users with an iPhone (APNs) and an Android phone (FCM) each, the fleet on the private
//! clusters with several processes of every worker, an IM core publisher that fails over
//! between the broker's nodes, and the badge audit: each iPhone's badges are exactly
//! 1, 2, …, n over the n messages it was pushed.

pub mod rabbit;
pub mod redis;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use impush_amqp::{Outgoing, Publisher, Topology, protobuf_properties};
use impush_proto::Event;
use impush_proto::v1::{OfflinePushInfo, PresenceState, Vendor};

use crate::fleet::{APP, Fleet, FleetOptions, now_ms, presence, register, text_message};
use crate::harness::{Pacing, Scale, Stream, metric_sum};

pub const VENDORS: [Vendor; 2] = [Vendor::Apns, Vendor::Fcm];
/// Pushes in flight per sender process.
pub const SENDER_CONCURRENCY: usize = 16;
/// Processes of each worker: ingest, router, and sender per vendor.
pub const PROCESSES: usize = 2;

/// How big a scenario is and how its stream is paced.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    pub full: bool,
    pub users: usize,
    /// C2C messages (each reaches both devices of one user).
    pub c2c: usize,
    /// Group messages, each to `members` users.
    pub groups: usize,
    pub members: usize,
    pub pacing: Pacing,
}

impl Size {
    pub fn from_env() -> Size {
        if std::env::var("IMPUSH_FAILOVER").is_ok_and(|v| v == "full") {
            // 2,500 C2C × 2 devices + 125 groups × 20 members × 2 devices = 10,000.
            Size {
                full: true,
                users: 500,
                c2c: 2_500,
                groups: 125,
                members: 20,
                pacing: Pacing {
                    chunk: 40,
                    pause: Duration::from_millis(500),
                },
            }
        } else {
            // 500 × 2 + 50 × 10 × 2 = 2,000.
            Size {
                full: false,
                users: 100,
                c2c: 500,
                groups: 50,
                members: 10,
                pacing: Pacing {
                    chunk: 10,
                    pause: Duration::from_millis(250),
                },
            }
        }
    }

    pub fn pick<T>(&self, short: T, full: T) -> T {
        if self.full { full } else { short }
    }

    fn events(&self) -> usize {
        self.c2c + self.groups
    }

    /// How long the publisher takes to play the stream (when nothing slows it down).
    pub fn publish_window(&self) -> Duration {
        self.pacing.pause * self.events().div_ceil(self.pacing.chunk) as u32
    }
}

/// The stream of one scenario: the expected (msg_id, token) pairs in the fault suite's
/// `Stream` (so that its audit counts them), and the message events in publishing order.
pub struct FailoverStream {
    pub stream: Stream,
    pub size: Size,
    pub events: Vec<Event>,
}

impl FailoverStream {
    pub fn new(tag: &str, size: Size) -> FailoverStream {
        let scale = Scale {
            full: size.full,
            users: size.users,
            messages: size.c2c + size.groups,
        };
        let mut stream = Stream {
            tag: tag.to_owned(),
            scale,
            expected: BTreeSet::new(),
        };
        let mut events = Vec::new();
        let every = size.c2c / size.groups.max(1);
        let (mut c2c, mut group) = (0, 0);
        while c2c < size.c2c || group < size.groups {
            if c2c < size.c2c {
                let user = c2c % size.users;
                let msg_id = format!("{tag}-c{c2c}");
                let mut message = text_message(&msg_id, "denny", &user_name(tag, user), "hi");
                message.push_info = Some(ext(&msg_id));
                for token in [stream.iphone_token(user), stream.android_token(user)] {
                    stream.expected.insert((msg_id.clone(), token));
                }
                events.push(Event::OfflineMessage(message));
                c2c += 1;
            }
            if group < size.groups && (c2c % every.max(1) == 0 || c2c >= size.c2c) {
                let msg_id = format!("{tag}-g{group}");
                let users: Vec<usize> = (0..size.members)
                    .map(|m| (group * size.members + m) % size.users)
                    .collect();
                let mut message = text_message(&msg_id, "denny", "", "lunch?");
                message.group_id = format!("@TGS#{tag}-{}", group % 7);
                message.group_name = "Team".into();
                message.member_ids = users.iter().map(|u| user_name(tag, *u)).collect();
                message.push_info = Some(ext(&msg_id));
                for user in users {
                    for token in [stream.iphone_token(user), stream.android_token(user)] {
                        stream.expected.insert((msg_id.clone(), token));
                    }
                }
                events.push(Event::OfflineMessage(message));
                group += 1;
            }
        }
        FailoverStream {
            stream,
            size,
            events,
        }
    }

    /// Registers every user's two devices in the background (unread 0, so an iPhone's
    /// badges count from 1) and waits until the ingest processes applied all of it.
    pub async fn load_state(&self, fleet: &Fleet) {
        let t = now_ms() - 60_000;
        let mut events = Vec::new();
        for user in 0..self.size.users {
            let name = user_name(&self.stream.tag, user);
            for (device, vendor, token) in [
                ("iphone", Vendor::Apns, self.stream.iphone_token(user)),
                ("android", Vendor::Fcm, self.stream.android_token(user)),
            ] {
                events.push(register(&name, device, vendor, &token, t));
                events.push(presence(&name, device, PresenceState::Background, 0, t + 1));
            }
        }
        let count = events.len() as f64;
        fleet.publish(events).await;
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let mut applied = 0.0;
            for name in ingest_names() {
                let metrics = fleet.metrics(&name).await;
                applied += metric_sum(&metrics, "impush_events_consumed_total", &["applied"]);
            }
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

fn user_name(tag: &str, user: usize) -> String {
    format!("{tag}-user-{user}")
}

fn ext(msg_id: &str) -> OfflinePushInfo {
    OfflinePushInfo {
        ext: msg_id.to_owned(),
        ..OfflinePushInfo::default()
    }
}

fn ingest_names() -> Vec<String> {
    let mut names = vec!["impush-ingest".to_owned()];
    names.extend((2..=PROCESSES).map(|n| format!("impush-ingest-{n}")));
    names
}

/// The whole fleet on the given broker nodes and Redis Cluster nodes: the simulator and
/// `PROCESSES` ingest, router and sender-per-vendor processes, quorum queues. The test's
/// own connection (publishing the state, reading queue lengths) is on the first broker
/// node; the workers get every node in `[amqp] urls`.
pub async fn start_fleet(amqp_urls: &[String], redis_urls: &[String]) -> Fleet {
    use toml::Value as V;
    let list = |urls: &[String]| V::Array(urls.iter().cloned().map(V::String).collect());
    let mut fleet = Fleet::start(FleetOptions {
        vendors: VENDORS.to_vec(),
        sender_concurrency: SENDER_CONCURRENCY,
        queue_type: "quorum",
        amqp_url: amqp_urls[0].clone(),
        redis_url: redis_urls[0].clone(),
        routers: PROCESSES,
        senders_per_vendor: PROCESSES,
        // A ladder long enough that no push runs out of attempts while a node is away.
        retry_delays_ms: vec![500, 2_000, 5_000],
        max_attempts: 20,
        settings: vec![
            ("amqp", "urls", list(amqp_urls)),
            ("redis", "cluster", V::Boolean(true)),
            ("redis", "urls", list(redis_urls)),
        ],
        ..FleetOptions::default()
    })
    .await;
    for name in ingest_names().into_iter().skip(1) {
        fleet.spawn_named(&name, "impush-ingest", &[]);
        fleet
            .wait_ready_within(&name, Duration::from_secs(60))
            .await;
    }
    fleet
}

/// IM core's side: publishes the stream a chunk at a time with pauses; a chunk the broker
/// did not confirm is published again on a new connection to whichever node answers.
pub struct FailoverPublisher {
    pub republished: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FailoverPublisher {
    pub fn start(
        urls: Vec<String>,
        topology: Topology,
        events: Vec<Event>,
        pacing: Pacing,
    ) -> FailoverPublisher {
        let republished = Arc::new(AtomicUsize::new(0));
        let task = {
            let republished = Arc::clone(&republished);
            tokio::spawn(async move {
                let mut open: Option<(impush_amqp::Connection, Publisher)> = None;
                let deadline = Instant::now() + Duration::from_secs(900);
                for chunk in events.chunks(pacing.chunk) {
                    loop {
                        assert!(Instant::now() < deadline, "no broker node came back");
                        if open.is_none() {
                            open = open_publisher(&urls).await;
                        }
                        let Some((_, publisher)) = &open else {
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            continue;
                        };
                        let messages = chunk.iter().map(|e| outgoing(&topology, e)).collect();
                        // A node that went silent would leave the confirms pending for ever.
                        let published = tokio::time::timeout(
                            Duration::from_secs(15),
                            publisher.publish_all(messages),
                        )
                        .await;
                        match published {
                            Ok(Ok(())) => break,
                            _ => {
                                open = None;
                                republished.fetch_add(chunk.len(), Ordering::SeqCst);
                                tokio::time::sleep(Duration::from_millis(500)).await;
                            }
                        }
                    }
                    tokio::time::sleep(pacing.pause).await;
                }
            })
        };
        FailoverPublisher { republished, task }
    }

    /// Waits until every event was confirmed; returns how many were published again.
    pub async fn finish(self) -> usize {
        self.task.await.expect("the publisher finished");
        self.republished.load(Ordering::SeqCst)
    }
}

async fn open_publisher(urls: &[String]) -> Option<(impush_amqp::Connection, Publisher)> {
    let connection = impush_amqp::connect_any(urls, &Default::default())
        .await
        .ok()?;
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

/// The badges the iPhones showed, against what they should be.
#[derive(Debug, Default)]
pub struct Badges {
    pub iphones: usize,
    /// Distinct (message, iPhone) pairs delivered.
    pub pushes: usize,
    /// Badge numbers shown once and within 1..=n, n the messages an iPhone got: when all
    /// are, its n messages showed 1, 2, …, n in some order (the router numbers them as it
    /// takes them).
    pub exact: usize,
    /// A badge number an iPhone got for two different messages (a count that went back).
    pub repeated: usize,
    /// A badge number above the count of messages the iPhone got (or 0).
    pub out_of_range: usize,
    /// A message delivered more than once with different badges.
    pub inconsistent: usize,
    pub examples: Vec<String>,
}

impl Badges {
    pub async fn read(fleet: &Fleet) -> Badges {
        let mut per_token: BTreeMap<String, BTreeMap<String, BTreeSet<u64>>> = BTreeMap::new();
        for record in fleet.deliveries(Some("apns")).await {
            let token = record["token"].as_str().unwrap_or_default().to_owned();
            let msg_id = record["ext"].as_str().unwrap_or_default().to_owned();
            let badge = record["badge"].as_u64().unwrap_or(0);
            per_token
                .entry(token)
                .or_default()
                .entry(msg_id)
                .or_default()
                .insert(badge);
        }
        let mut badges = Badges {
            iphones: per_token.len(),
            ..Badges::default()
        };
        for (token, messages) in &per_token {
            let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
            for (msg_id, numbers) in messages {
                if numbers.len() > 1 {
                    badges.inconsistent += 1;
                    badges.example(format!("{msg_id} to {token}: badges {numbers:?}"));
                }
                if let Some(number) = numbers.first() {
                    *seen.entry(*number).or_default() += 1;
                }
            }
            badges.pushes += messages.len();
            let n = messages.len() as u64;
            for (number, times) in seen {
                if times > 1 {
                    badges.repeated += times - 1;
                    badges.example(format!("{token}: badge {number} for {times} messages"));
                }
                if (1..=n).contains(&number) {
                    badges.exact += 1;
                } else {
                    badges.out_of_range += times;
                    badges.example(format!("{token}: badge {number} of {n} messages"));
                }
            }
        }
        badges
    }

    fn example(&mut self, text: String) {
        if self.examples.len() < 10 {
            self.examples.push(text);
        }
    }

    /// Every badge was right: no number twice, none out of range, one per message.
    pub fn all_exact(&self) -> bool {
        self.repeated == 0 && self.out_of_range == 0 && self.inconsistent == 0
    }

    pub fn row(&self) -> String {
        format!(
            "{} iPhones: {} badges exact, {} repeated, {} out of range, {} inconsistent",
            self.iphones, self.exact, self.repeated, self.out_of_range, self.inconsistent
        )
    }
}

/// The (sdk_app_id, user) hash tag of a stream's user, to find the primary holding it.
pub fn user_key(tag: &str, user: usize) -> String {
    format!("{{{APP}:{}}}", user_name(tag, user))
}
