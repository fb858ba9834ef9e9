//! A stream of OfflineMessage events published the way IM core publishes them (exchange
//! `<prefix>.events`, key `message.offline`, protobuf, persistent, publisher confirms), with
//! many publishes in flight rather than one confirm awaited at a time, at a fixed rate or as
//! fast as the broker confirms. Every message carries its send time in `send_time_ms` and,
//! for the simulator's latency histogram, in `push_info.ext` ([`impush_sim::SENT_MS_MARKER`]).

use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use impush_amqp::{Topology, protobuf_properties};
use impush_proto::v1::elem::Content;
use impush_proto::v1::{
    CustomElem, Elem, FaceElem, FileElem, ImageElem, LocationElem, OfflineMessage, OfflinePushInfo,
    SoundElem, TextElem, VideoElem,
};
use indicatif::ProgressBar;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use prost::Message;

use crate::population::{Population, SDK_APP_ID};

/// What a stream sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// One receiver per message, among the offline users of the stream's vendors.
    C2c,
    /// A group message to `group_size` consecutive users (half of them online).
    Group,
}

/// The elements messages cycle through, so rendering sees every kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ElemKind {
    Text,
    Image,
    Sound,
    File,
    Video,
    Location,
    Face,
    Custom,
}

pub struct StreamPlan {
    pub kind: Kind,
    pub messages: usize,
    /// Messages per second; none: as fast as the broker confirms.
    pub rate: Option<f64>,
    /// Publishes awaiting their confirm at once.
    pub window: usize,
    pub group_size: usize,
    pub elems: Vec<ElemKind>,
    /// Makes msg_ids unique across runs.
    pub run_id: String,
}

/// Which users each message goes to, and how many pushes that makes.
pub struct Audience {
    /// C2C: the receivers to cycle through. Group: unused.
    pub receivers: Vec<usize>,
    pub population: Population,
}

impl Audience {
    fn group_start(&self, k: usize, size: usize) -> usize {
        // A stride coprime with most user counts spreads groups over the whole base.
        let span = self.population.users.saturating_sub(size).max(1);
        (k.wrapping_mul(7_919)) % span
    }

    /// The pushes the fleet must deliver for the plan.
    pub fn expected(&self, plan: &StreamPlan) -> u64 {
        match plan.kind {
            Kind::C2c => plan.messages as u64,
            Kind::Group => (0..plan.messages)
                .map(|k| {
                    let start = self.group_start(k, plan.group_size);
                    (start..start + plan.group_size)
                        .filter(|&i| i < self.population.users && !self.population.online(i))
                        .count() as u64
                })
                .sum(),
        }
    }

    fn message(&self, plan: &StreamPlan, k: usize, now_ms: i64) -> OfflineMessage {
        let elem = plan.elems.get(k % plan.elems.len().max(1)).copied();
        let mut message = OfflineMessage {
            msg_id: format!("{}-{k}", plan.run_id),
            sdk_app_id: SDK_APP_ID,
            sender_id: "lg-sender".into(),
            sender_nickname: "Load".into(),
            elems: vec![self::elem(elem.unwrap_or(ElemKind::Text), k)],
            push_info: Some(OfflinePushInfo {
                ext: format!("chat/{k} {}{now_ms}", impush_sim::SENT_MS_MARKER),
                ..OfflinePushInfo::default()
            }),
            send_time_ms: now_ms,
            ..OfflineMessage::default()
        };
        match plan.kind {
            Kind::C2c => {
                let receiver = self
                    .receivers
                    .get(k % self.receivers.len().max(1))
                    .copied()
                    .unwrap_or(0);
                message.receiver_id = Population::user_id(receiver);
            }
            Kind::Group => {
                let start = self.group_start(k, plan.group_size);
                message.group_id = format!("lg-group-{start}");
                message.group_name = "Load group".into();
                message.member_ids = (start..(start + plan.group_size).min(self.population.users))
                    .map(Population::user_id)
                    .collect();
            }
        }
        message
    }
}

fn elem(kind: ElemKind, k: usize) -> Elem {
    let url = || format!("https://example.com/media/{k}");
    let content = match kind {
        ElemKind::Text => Content::Text(TextElem {
            text: format!("message {k}: are we still on for lunch tomorrow?"),
        }),
        ElemKind::Image => Content::Image(ImageElem { url: url() }),
        ElemKind::Sound => Content::Sound(SoundElem {
            url: url(),
            seconds: 7,
        }),
        ElemKind::File => Content::File(FileElem {
            name: "report.pdf".into(),
            url: url(),
        }),
        ElemKind::Video => Content::Video(VideoElem {
            url: url(),
            seconds: 30,
        }),
        ElemKind::Location => Content::Location(LocationElem {
            desc: "Office".into(),
            latitude: 22.54,
            longitude: 114.06,
        }),
        ElemKind::Face => Content::Face(FaceElem {
            index: 3,
            data: Vec::new(),
        }),
        ElemKind::Custom => Content::Custom(CustomElem {
            data: b"{}".to_vec(),
            desc: "[order update]".into(),
            ext: String::new(),
            sound: String::new(),
        }),
    };
    Elem {
        content: Some(content),
    }
}

/// The size of one message of the plan, for the relay reference to use the same.
pub fn message_bytes(audience: &Audience, plan: &StreamPlan) -> usize {
    audience.message(plan, 0, now_ms()).encoded_len()
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Amqp(#[from] impush_amqp::AmqpError),
    #[error(transparent)]
    Broker(#[from] lapin::Error),
    #[error("RabbitMQ refused (nacked) a message")]
    Nacked,
    #[error("a message reached no queue: is the fleet's topology declared?")]
    Unroutable,
}

/// Publishes the whole plan; returns how long publishing took.
pub async fn publish(
    url: &str,
    tls: &impush_amqp::ClientTls,
    topology: &Topology,
    audience: &Audience,
    plan: &StreamPlan,
    bar: &ProgressBar,
) -> Result<Duration, PublishError> {
    let connection = impush_amqp::connect_with_tls(url, tls).await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let exchange = topology.events_exchange();
    let properties = protobuf_properties("OfflineMessage");
    let started = Instant::now();
    let mut in_flight = FuturesUnordered::new();
    for k in 0..plan.messages {
        if let Some(rate) = plan.rate {
            let due = started + Duration::from_secs_f64(k as f64 / rate.max(0.001));
            tokio::time::sleep_until(due.into()).await;
        }
        while in_flight.len() >= plan.window.max(1) {
            settle(in_flight.next().await, bar)?;
        }
        let body = audience.message(plan, k, now_ms()).encode_to_vec();
        let confirm = channel
            .basic_publish(
                exchange.as_str().into(),
                "message.offline".into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &body,
                properties.clone(),
            )
            .await?;
        in_flight.push(confirm);
    }
    while let Some(done) = in_flight.next().await {
        settle(Some(done), bar)?;
    }
    let elapsed = started.elapsed();
    let _ = connection.close(200, "loadgen done".into()).await;
    Ok(elapsed)
}

fn settle(
    done: Option<Result<lapin::Confirmation, lapin::Error>>,
    bar: &ProgressBar,
) -> Result<(), PublishError> {
    let Some(confirmation) = done else {
        return Ok(());
    };
    let confirmation = confirmation?;
    if confirmation.is_nack() {
        return Err(PublishError::Nacked);
    }
    if confirmation.take_message().is_some() {
        return Err(PublishError::Unroutable);
    }
    bar.inc(1);
    Ok(())
}
