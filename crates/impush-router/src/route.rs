//! Routing one OfflineMessage: recipients, decision per device (conversation options,
//! mentions and quiet hours included), badges, and the PushJobs; a MessageRevoked is taken in
//! by recall.rs.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;

use impush_amqp::{
    Delivery, EventDeadLetter, Handled, Outcomes, Outgoing, Publisher, Topology, check_event_size,
    dead_letter_event, protobuf_properties,
};
use impush_config::Config;
use impush_core::conversation::conversation_of;
use impush_core::payload::max_batch;
use impush_core::{
    DeviceState, Renders, SkipReason, badge_for, channel, decide, decide_conversation,
    decide_message, mention_of, vendor,
};
use impush_proto::v1::{OfflineMessage, PushJob, PushOutcome, PushOutcomeKind, PushTarget, Vendor};
use impush_proto::{Event, EventKind};
use impush_runtime::now_ms;
use impush_store::{DeviceRef, Store, StoreError};
use prost::Message;
use tracing::Instrument;

use crate::bundle::Bundler;

pub struct Router {
    pub(crate) store: Store,
    /// Swapped on a config reload (templates, credentials' profiles, limits).
    pub(crate) config: ArcSwap<Config>,
    pub(crate) topology: Topology,
    redis_ready: Arc<AtomicBool>,
    bundler: Arc<Bundler>,
    /// `feedback.push` outcomes (skips) for the apps that opted in.
    outcomes: Outcomes,
}

/// Why a message could not be routed at all.
pub(crate) enum Failure {
    /// Redis or RabbitMQ failed: try the whole message again later (idempotent).
    Transient(String),
    /// The event itself is bad: dead-letter it.
    Bad(&'static str, String),
}

impl From<StoreError> for Failure {
    fn from(err: StoreError) -> Failure {
        if err.is_transient() {
            Failure::Transient(err.to_string())
        } else {
            Failure::Bad("store_error", err.to_string())
        }
    }
}

/// Devices share a request when they share a credential and an identical notification
/// (the index of its render).
type BatchKey = (u64, usize);

/// Devices of one chunk that get a push, before badges and batching.
struct Pending {
    user_id: String,
    device_id: String,
    token: String,
    /// The vendor API that sends (TPNS for a TPNS token).
    vendor: Vendor,
    /// The platform whose rules apply: APNs for an iPhone, also one reached through TPNS.
    platform: Vendor,
    business_id: u64,
    unread: u32,
    /// Its notification, in the message's `Renders`.
    render: usize,
}

impl Router {
    pub fn new(
        store: Store,
        config: Arc<Config>,
        topology: Topology,
        redis_ready: Arc<AtomicBool>,
    ) -> Router {
        let bundler = Bundler::new(config.router.bundle_max_jobs);
        Router {
            store,
            bundler,
            config: ArcSwap::new(config),
            topology,
            redis_ready,
            outcomes: Outcomes::disabled(),
        }
    }

    /// Publishes skip outcomes through `outcomes` (`[feedback] push_outcomes`).
    pub fn with_outcomes(mut self, outcomes: Outcomes) -> Router {
        self.outcomes = outcomes;
        self
    }

    /// A `feedback.push` skip outcome, when the message's app opted in; `device_id` empty
    /// when the whole message was skipped for the user.
    fn skipped(
        &self,
        message: &OfflineMessage,
        user_id: &str,
        device: Option<(&str, Vendor)>,
        reason: SkipReason,
    ) {
        if !self.outcomes.wants(message.sdk_app_id) {
            return;
        }
        let (device_id, vendor) = device.unwrap_or(("", Vendor::Unspecified));
        self.outcomes.record(PushOutcome {
            msg_id: message.msg_id.clone(),
            sdk_app_id: message.sdk_app_id,
            user_id: user_id.to_owned(),
            device_id: device_id.to_owned(),
            vendor: vendor as i32,
            outcome: PushOutcomeKind::Skipped as i32,
            reason: reason.as_str().to_owned(),
            at_ms: now_ms(),
        });
    }

    /// Takes a reloaded config (templates, credentials): messages being routed finish
    /// with the one they started with.
    pub fn reload(&self, config: Config) {
        self.bundler.set_max_jobs(config.router.bundle_max_jobs);
        self.outcomes.set_apps(&config.feedback);
        self.config.store(Arc::new(config));
    }

    pub async fn handle(&self, delivery: Delivery, publisher: Publisher) -> Handled {
        let outcome = self.route(&delivery, &publisher).await;
        match outcome {
            Ok(outcome) => {
                self.redis_ready.store(true, Ordering::SeqCst);
                // Decoded, so the type is a known one: a recall or a message.
                let kind = delivery
                    .properties
                    .kind()
                    .as_ref()
                    .and_then(|t| EventKind::from_type_name(t.as_str()).ok())
                    .map_or("OfflineMessage", EventKind::type_name);
                metrics::counter!("impush_events_consumed_total", "type" => kind, "outcome" => outcome).increment(1);
                Handled::Ack
            }
            Err(Failure::Transient(detail)) => {
                tracing::warn!(
                    detail,
                    "routing failed for now; the message will be retried"
                );
                metrics::counter!("impush_events_requeued_total", "queue" => "messages")
                    .increment(1);
                Handled::Requeue
            }
            Err(Failure::Bad(reason, detail)) => {
                let to = EventDeadLetter {
                    dlq: &self.topology.events_dlq(),
                    source_queue: &self.topology.messages_queue(),
                    kind: "OfflineMessage",
                    now_ms: now_ms(),
                };
                dead_letter_event(&publisher, &delivery, to, reason, &detail).await
            }
        }
    }

    /// Routes the message; the result names the outcome for the metrics.
    async fn route(
        &self,
        delivery: &Delivery,
        publisher: &Publisher,
    ) -> Result<&'static str, Failure> {
        // Checked before decoding: a huge body would cost its size again in decoded form,
        // times the prefetch, before anything could refuse it.
        check_event_size(delivery, self.config.load().amqp.max_event_bytes)
            .map_err(|detail| Failure::Bad("too_large", detail))?;
        let type_name = delivery.properties.kind().as_ref().map(|t| t.as_str());
        let message = match Event::decode(type_name, &delivery.data) {
            Ok(Event::OfflineMessage(message)) => message,
            Ok(Event::MessageRevoked(revoked)) => {
                return self.take_recall(&revoked, publisher).await;
            }
            Ok(other) => {
                return Err(Failure::Bad(
                    "unexpected_event",
                    format!("{} is not an OfflineMessage", other.kind().type_name()),
                ));
            }
            Err(err) => return Err(Failure::Bad("undecodable", err.to_string())),
        };
        let recipients = recipients(&message)?;
        let now = now_ms();
        if let Err(reason) = decide_message(&message, now) {
            metrics::counter!("impush_skips_total", "reason" => reason.as_str())
                .increment(recipients.len() as u64);
            for user_id in &recipients {
                self.skipped(&message, user_id, None, reason);
            }
            return Ok("skipped");
        }
        let span =
            tracing::info_span!("route", msg_id = %message.msg_id, sdk_app_id = message.sdk_app_id);
        let chunk_size = self.config.load().router.chunk_size.max(1);
        // Bounded memory for huge groups: one chunk of recipients at a time, each published
        // and confirmed before the next is fetched.
        let conversation = conversation_of(&message);
        async {
            for (index, chunk) in recipients.chunks(chunk_size).enumerate() {
                let Some(jobs) = self
                    .route_chunk(&message, &conversation, chunk, now)
                    .await?
                else {
                    // Recalled: this chunk and the ones after it get nothing.
                    let left = recipients.len() - index * chunk_size;
                    metrics::counter!("impush_skips_total", "reason" => SkipReason::Revoked.as_str())
                        .increment(left as u64);
                    return Ok("revoked");
                };
                if jobs.is_empty() {
                    continue;
                }
                self.bundler
                    .publish(publisher, jobs)
                    .await
                    .map_err(Failure::Transient)?;
            }
            Ok("routed")
        }
        .instrument(span)
        .await
    }

    /// The jobs of one chunk of recipients; `None` when the message was recalled.
    async fn route_chunk(
        &self,
        message: &OfflineMessage,
        conversation: &str,
        users: &[String],
        now: i64,
    ) -> Result<Option<Vec<Outgoing>>, Failure> {
        let config = self.config.load_full();
        let chunk = self
            .store
            .fetch_chunk(message.sdk_app_id, &message.msg_id, conversation, users)
            .await?;
        if chunk.revoked {
            return Ok(None);
        }
        let states = chunk.recipients;
        let templates = config.templates.for_app(message.sdk_app_id);
        let mut renders = Renders::new(message, templates);
        let mut skips = Skips::default();
        let mut pending = Vec::new();
        for recipient in &states {
            // The recipient's own wishes for this conversation and this moment.
            let wanted = decide_conversation(
                message,
                &recipient.user_id,
                recipient.conversation_option,
                recipient.settings.as_ref(),
                now,
            );
            let mention = mention_of(message, &recipient.user_id);
            for device in &recipient.devices {
                let channel = channel(
                    message.sdk_app_id,
                    &device.state,
                    device.is_tpns_token,
                    &config.credentials,
                );
                // A TPNS token is decided as a device of its channel and credential.
                let state = if device.is_tpns_token {
                    Cow::Owned(DeviceState {
                        vendor: channel.vendor,
                        business_id: channel.business_id,
                        ..device.state.clone()
                    })
                } else {
                    Cow::Borrowed(&device.state)
                };
                let credential = config.credentials.get(&state.business_id);
                if let Err(reason) = decide(
                    message,
                    &recipient.user_id,
                    &state,
                    recipient.settings.as_ref(),
                    credential,
                    now,
                )
                .and(wanted)
                {
                    skips.add(reason.as_str());
                    self.skipped(
                        message,
                        &recipient.user_id,
                        Some((&state.device_id, channel.vendor)),
                        reason,
                    );
                    continue;
                }
                pending.push(Pending {
                    user_id: recipient.user_id.clone(),
                    device_id: state.device_id.clone(),
                    token: state.token.clone(),
                    vendor: channel.vendor,
                    platform: channel.platform,
                    business_id: channel.business_id,
                    unread: state.unread,
                    render: renders.index_for(
                        channel.platform,
                        recipient.settings.as_ref(),
                        mention,
                    ),
                });
            }
        }
        skips.record();
        let badges = self.badges(message, &pending).await?;
        Ok(Some(self.jobs(message, &renders, pending, badges, now)))
    }

    /// The iOS badge of every pending device that shows one, counted once per message.
    async fn badges(
        &self,
        message: &OfflineMessage,
        pending: &[Pending],
    ) -> Result<Vec<Option<u32>>, Failure> {
        let counted: Vec<usize> = (0..pending.len())
            .filter(|&i| badge_for(pending[i].platform, message, 0, 1).is_some())
            .collect();
        let mut badges = vec![None; pending.len()];
        if counted.is_empty() {
            return Ok(badges);
        }
        let refs: Vec<DeviceRef<'_>> = counted
            .iter()
            .map(|&i| DeviceRef {
                user_id: &pending[i].user_id,
                device_id: &pending[i].device_id,
            })
            .collect();
        let ttl_s = self.config.load().redis.dedupe_ttl_s;
        let since = self
            .store
            .bump_badges(message.sdk_app_id, &message.msg_id, &refs, ttl_s)
            .await?;
        for (&i, pushes_since) in counted.iter().zip(since) {
            let p = &pending[i];
            badges[i] = badge_for(p.platform, message, p.unread, pushes_since);
        }
        Ok(badges)
    }

    /// Groups devices that can share a request (same credential, same notification) into
    /// jobs of at most the vendor's batch size.
    fn jobs(
        &self,
        message: &OfflineMessage,
        renders: &Renders<'_>,
        pending: Vec<Pending>,
        badges: Vec<Option<u32>>,
        now: i64,
    ) -> Vec<Outgoing> {
        let mut groups: Vec<(BatchKey, Vendor, Vec<PushTarget>)> = Vec::new();
        for (p, badge) in pending.into_iter().zip(badges) {
            let key = (p.business_id, p.render);
            let target = PushTarget {
                user_id: p.user_id,
                device_id: p.device_id,
                token: p.token,
                badge,
            };
            // Few groups per chunk (credentials × distinct notifications): a scan is cheaper
            // than hashing every device.
            match groups.iter_mut().find(|(k, _, _)| *k == key) {
                Some((_, _, targets)) => targets.push(target),
                None => groups.push((key, p.vendor, vec![target])),
            }
        }
        let default_deadline = if message.send_time_ms > 0 {
            message.send_time_ms
        } else {
            now
        } + (self.config.load().router.max_age_s as i64)
            .saturating_mul(1000);
        let mut jobs = Vec::new();
        for ((business_id, render), vendor, targets) in groups {
            let Some(notification) = renders.get(render) else {
                continue;
            };
            let deadline_ms = if notification.expires_at_ms > 0 {
                notification.expires_at_ms.min(default_deadline)
            } else {
                default_deadline
            };
            let batch_size = max_batch(vendor).max(1);
            metrics::counter!("impush_notifications_routed_total", "vendor" => vendor::name(vendor))
                .increment(targets.len() as u64);
            let mut targets = targets.into_iter().peekable();
            while targets.peek().is_some() {
                let job = PushJob {
                    msg_id: message.msg_id.clone(),
                    sdk_app_id: message.sdk_app_id,
                    vendor: vendor as i32,
                    business_id,
                    targets: targets.by_ref().take(batch_size).collect(),
                    notification: Some(notification.clone()),
                    attempt: 0,
                    deadline_ms,
                    recall_replacement: false,
                    recall_withdrawal: false,
                };
                jobs.push(Outgoing {
                    mandatory: true,
                    exchange: self.topology.push_exchange(),
                    routing_key: vendor::name(vendor).to_owned(),
                    body: job.encode_to_vec(),
                    properties: protobuf_properties("PushJob")
                        .with_message_id(message.msg_id.as_str().into()),
                });
            }
        }
        jobs
    }
}

/// Skipped devices of one chunk, counted per reason and recorded once: a group's offline
/// check skips hundreds of devices, and each metrics call looks its labels up.
#[derive(Default)]
struct Skips(Vec<(&'static str, u64)>);

impl Skips {
    fn add(&mut self, reason: &'static str) {
        match self.0.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => self.0.push((reason, 1)),
        }
    }

    fn record(self) {
        for (reason, n) in self.0 {
            metrics::counter!("impush_skips_total", "reason" => reason).increment(n);
        }
    }
}

/// The users to consider: the C2C receiver, or the group's members once each.
fn recipients(message: &OfflineMessage) -> Result<Vec<String>, Failure> {
    if message.msg_id.is_empty() {
        return Err(Failure::Bad("missing_field", "msg_id is empty".into()));
    }
    if message.group_id.is_empty() {
        if message.receiver_id.is_empty() {
            return Err(Failure::Bad(
                "missing_field",
                "a C2C message needs receiver_id (or group_id for a group)".into(),
            ));
        }
        return Ok(vec![message.receiver_id.clone()]);
    }
    let mut seen = HashSet::with_capacity(message.member_ids.len());
    Ok(message
        .member_ids
        .iter()
        // The sender is not notified of their own message.
        .filter(|m| !m.is_empty() && **m != message.sender_id && seen.insert(m.as_str()))
        .cloned()
        .collect())
}
