//! Sending one PushJob and acting on each target's outcome. A job whose message was recalled
//! (`MessageRevoked`) is dropped before its push leaves: the recall is looked up with the
//! send claims, in the same round trip. A recall's withdrawal job (`recall_withdrawal`)
//! takes the same steps with the vendor's revoke request in place of the push.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use impush_amqp::{
    DeadLetterReason, Delivery, Handled, Outcomes, Outgoing, Publisher, Topology, dead_letter,
    protobuf_properties,
};
use impush_config::Config;
use impush_core::payload::withdraw::build_withdrawal;
use impush_core::text::short_token;
use impush_core::{BuildError, CredentialProfile, VendorRequest, build_payload, vendor};
use impush_proto::v1::{
    Notification, PushJob, PushJobs, PushOutcome, PushOutcomeKind, PushTarget, TokenInvalidated,
    Vendor,
};
use impush_runtime::now_ms;
use impush_store::{DeviceRef, SendClaim, Store, StoreError};
use impush_vendors::{Outcome, SendResult, VendorClients};
use prost::Message;
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::limits::Limits;

pub struct Sender {
    vendor: Vendor,
    /// Swapped whole on a config reload; a job in flight keeps the one it started with.
    state: ArcSwap<State>,
    store: Store,
    topology: Topology,
    redis_ready: Arc<AtomicBool>,
    /// Jobs being sent at once (`[sender] concurrency`), bundled or not.
    jobs_in_flight: Semaphore,
    /// `feedback.push` outcomes for the apps that opted in.
    outcomes: Outcomes,
}

/// What a config reload replaces: the config, the vendor clients built from its
/// credentials, and the rate limits.
pub struct State {
    pub config: Arc<Config>,
    pub clients: VendorClients,
    pub limits: Limits,
}

impl State {
    /// Everything known about one credential, looked up once; `None` when the config or
    /// the clients do not know it.
    fn credential(&self, business_id: u64) -> Option<Credential<'_>> {
        let profile = self.config.credentials.get(&business_id)?;
        self.clients.has(business_id).then_some(Credential {
            business_id,
            profile,
            state: self,
        })
    }
}

/// One credential of a job: its public profile, its client, its rate limit and quota.
struct Credential<'a> {
    business_id: u64,
    profile: &'a CredentialProfile,
    state: &'a State,
}

impl Credential<'_> {
    /// How long its vendor quota is still used up, if it is.
    fn paused_for(&self) -> Option<std::time::Duration> {
        self.state.limits.paused_for(self.business_id)
    }

    async fn send(&self, request: &VendorRequest, targets: &[PushTarget]) -> SendResult {
        self.state
            .clients
            .send(self.business_id, request, targets)
            .await
    }

    /// Counts `n` delivered pushes against its daily quota.
    async fn used(&self, n: usize) {
        self.state.limits.used(self.business_id, n).await;
    }

    /// Stops sending with it for `for_` (its vendor quota is used up).
    fn pause(&self, for_: std::time::Duration) {
        self.state.limits.pause(self.business_id, for_);
    }
}

/// Targets sorted by what the vendor said.
#[derive(Default)]
struct Sorted {
    delivered: Vec<PushTarget>,
    invalid: Vec<(PushTarget, String)>,
    retry: Vec<PushTarget>,
    retry_after_ms: Option<u64>,
    retry_reason: String,
    /// The vendor's quota is used up for longer than the retry ladder waits.
    quota_paused: Vec<PushTarget>,
    pause_for: Option<std::time::Duration>,
    rejected: Vec<(PushTarget, String)>,
}

impl Sender {
    pub fn new(
        vendor: Vendor,
        store: Store,
        clients: VendorClients,
        config: Arc<Config>,
        topology: Topology,
        redis_ready: Arc<AtomicBool>,
    ) -> Sender {
        let limits = Limits::new(&config, vendor).shared_through(store.clone());
        limits.report_quotas(&config);
        let config_concurrency = config.sender.concurrency.max(1);
        Sender {
            state: ArcSwap::from_pointee(State {
                config,
                clients,
                limits,
            }),
            jobs_in_flight: Semaphore::new(config_concurrency),
            vendor,
            store,
            topology,
            redis_ready,
            outcomes: Outcomes::disabled(),
        }
    }

    /// Publishes push outcomes through `outcomes` (`[feedback] push_outcomes`).
    pub fn with_outcomes(mut self, outcomes: Outcomes) -> Sender {
        self.outcomes = outcomes;
        self
    }

    /// One `feedback.push` outcome per target, when the job's app opted in.
    fn outcome(&self, job: &PushJob, targets: &[PushTarget], kind: PushOutcomeKind, reason: &str) {
        if !self.outcomes.wants(job.sdk_app_id) {
            return;
        }
        let at_ms = now_ms();
        for target in targets {
            self.outcomes.record(PushOutcome {
                msg_id: job.msg_id.clone(),
                sdk_app_id: job.sdk_app_id,
                user_id: target.user_id.clone(),
                device_id: target.device_id.clone(),
                vendor: self.vendor as i32,
                outcome: kind as i32,
                reason: reason.to_owned(),
                at_ms,
            });
        }
    }

    /// Swaps in the credentials and settings of a reloaded config. Jobs in flight finish
    /// with the clients they started with; quota pauses carry over.
    pub fn reload(&self, config: Config, clients: VendorClients) {
        let config = Arc::new(config);
        let old = self.state.load_full();
        let limits = Limits::new(&config, self.vendor).shared_through(self.store.clone());
        limits.carry_over(&old.limits);
        self.outcomes.set_apps(&config.feedback);
        limits.report_quotas(&config);
        self.state.store(Arc::new(State {
            config,
            clients,
            limits,
        }));
    }

    /// The vendor whose queue this sender serves.
    pub fn vendor(&self) -> Vendor {
        self.vendor
    }

    fn vendor_name(&self) -> &'static str {
        vendor::name(self.vendor)
    }

    fn count(&self, outcome: &'static str, business_id: u64, n: usize) {
        metrics::counter!("impush_pushes_total", "vendor" => self.vendor_name(), "business_id" => business_id.to_string(), "outcome" => outcome).increment(n as u64);
    }

    pub async fn handle(&self, delivery: Delivery, publisher: Publisher) -> Handled {
        let bundled = delivery.properties.kind().as_ref().map(|t| t.as_str())
            == Some(impush_proto::PUSH_JOBS_TYPE);
        let jobs = if bundled {
            PushJobs::decode(delivery.data.as_slice()).map(|bundle| bundle.jobs)
        } else {
            PushJob::decode(delivery.data.as_slice()).map(|job| vec![job])
        };
        let jobs = match jobs {
            Ok(jobs) => jobs,
            Err(err) => {
                return self
                    .dead_letter_raw(&delivery, &publisher, "undecodable", &err.to_string())
                    .await;
            }
        };
        self.take_rate(&jobs).await;
        // The jobs of a bundle run side by side, within the process's concurrency.
        let results = futures::future::join_all(jobs.into_iter().map(|job| {
            let publisher = &publisher;
            async move {
                let _permit = self.jobs_in_flight.acquire().await;
                let span = tracing::info_span!("send", msg_id = %job.msg_id, vendor = self.vendor_name(), business_id = job.business_id, attempt = job.attempt);
                self.send(publisher, job).instrument(span).await
            }
        }))
        .await;
        let failed: Vec<String> = results.into_iter().filter_map(Result::err).collect();
        if failed.is_empty() {
            self.redis_ready.store(true, Ordering::SeqCst);
            return Handled::Ack;
        }
        // The delivery goes back whole: jobs of a bundle that did get through are found
        // delivered by their deduplication records next time and not sent again.
        for detail in &failed {
            tracing::warn!(detail, "job failed for now; it will be retried");
        }
        metrics::counter!("impush_jobs_requeued_total", "vendor" => self.vendor_name())
            .increment(failed.len() as u64);
        Handled::Requeue
    }

    /// Waits until the bundle's device tokens may be sent within each credential's rate:
    /// one fleet-wide rate call per credential for the whole bundle, not one per job (a
    /// Redis script each). Jobs that turn out to need no request (delivered before,
    /// recalled, expired) have then used their share, which only errs on the slow side.
    async fn take_rate(&self, jobs: &[PushJob]) {
        let state = self.state.load_full();
        let mut tokens: Vec<(u64, usize)> = Vec::new();
        for job in jobs {
            let sendable = state
                .credential(job.business_id)
                .is_some_and(|credential| credential.paused_for().is_none());
            if !sendable {
                continue;
            }
            match tokens.iter_mut().find(|(id, _)| *id == job.business_id) {
                Some((_, n)) => *n += job.targets.len(),
                None => tokens.push((job.business_id, job.targets.len())),
            }
        }
        for (business_id, n) in tokens {
            state.limits.acquire(business_id, n).await;
        }
    }

    /// Ok: every consequence is durable and the delivery may be acked. Err: a dependency
    /// failed; the job is given back whole (targets already delivered are skipped next time
    /// thanks to the deduplication records).
    async fn send(&self, publisher: &Publisher, job: PushJob) -> Result<(), String> {
        let state = self.state.load_full();
        let notification = job.notification.clone().unwrap_or_default();
        if self.drop_if_expired(&job, &notification) {
            return Ok(());
        }
        let Some(credential) = state.credential(job.business_id) else {
            let detail = format!(
                "no {} credential with business_id {}",
                self.vendor_name(),
                job.business_id
            );
            return self
                .dead_letter_job(
                    publisher,
                    &job,
                    &job.targets,
                    "unknown_business_id",
                    &detail,
                    None,
                )
                .await;
        };
        if let Some(left) = credential.paused_for() {
            // The credential's quota is used up: the job waits, without using an attempt.
            let wait = self.requeue_later(&job, job.targets.clone(), Some(left), "quota_paused");
            return publisher.publish(wait).await.map_err(|e| e.to_string());
        }
        let (targets, mut outgoing) = self.claim_targets(&job).await?;
        if targets.is_empty() {
            return publisher
                .publish_all(outgoing)
                .await
                .map_err(|e| e.to_string());
        }
        // Time to live is what is left when the request leaves, not when it was rendered:
        // the rate limit (taken for the bundle in `take_rate`, and the retry ladder before
        // it) may have used up the rest.
        let mut notification = notification;
        notification.request_at_ms = now_ms();
        if credential.profile.wants_receipts() {
            notification.receipt_param =
                impush_core::payload::receipt::param(job.sdk_app_id, &job.msg_id)
                    .unwrap_or_default();
        }
        if expired_at(&job, &notification, notification.request_at_ms) {
            tracing::info!(
                targets = targets.len(),
                "expired while waiting to be sent; dropped"
            );
            self.count("expired", job.business_id, targets.len());
            self.outcome(&job, &targets, PushOutcomeKind::Expired, "");
            self.release(&job, &targets).await;
            return publisher
                .publish_all(outgoing)
                .await
                .map_err(|e| e.to_string());
        }
        let request = match build_request(&job, &notification, credential.profile, &targets) {
            Ok(request) => request,
            Err((reason, detail)) => {
                return self
                    .dead_letter_job(publisher, &job, &targets, reason, &detail, None)
                    .await;
            }
        };
        let (result, answered_ms) = self.call_vendor(&credential, &request, &targets).await;
        let sorted = self.sort_outcomes(targets, result.outcomes);
        self.act_on_outcomes(
            &job,
            &credential,
            sorted,
            result.status,
            answered_ms,
            &mut outgoing,
        )
        .await?;
        publisher
            .publish_all(outgoing)
            .await
            .map_err(|e| e.to_string())
    }

    /// A job whose deadline or notification expiry has passed is dropped and counted.
    fn drop_if_expired(&self, job: &PushJob, notification: &Notification) -> bool {
        let expired = expired_at(job, notification, now_ms());
        if expired {
            tracing::info!(
                targets = job.targets.len(),
                "expired before delivery; dropped"
            );
            self.count("expired", job.business_id, job.targets.len());
            self.outcome(job, &job.targets, PushOutcomeKind::Expired, "");
        }
        expired
    }

    /// Claims the job's targets for this send: the ones claimed, and the job's own requeue
    /// of those another sender holds right now. Already delivered ones are counted and left;
    /// a recalled message claims none.
    async fn claim_targets(
        &self,
        job: &PushJob,
    ) -> Result<(Vec<PushTarget>, Vec<Outgoing>), String> {
        let refs: Vec<DeviceRef<'_>> = job.targets.iter().map(device_ref).collect();
        let Some(claims) = self
            .store
            .claim_unless_revoked(job.sdk_app_id, &job.msg_id, &refs, self.claim_ttl_s())
            .await
            .map_err(|e| self.store_failed(e))?
        else {
            // Recalled while queued or waiting in the retry ladder: it never leaves.
            tracing::info!(
                targets = job.targets.len(),
                "recalled before delivery; dropped"
            );
            self.count("revoked", job.business_id, job.targets.len());
            self.outcome(job, &job.targets, PushOutcomeKind::Skipped, "revoked");
            return Ok((Vec::new(), Vec::new()));
        };
        let mut targets = Vec::with_capacity(job.targets.len());
        let mut busy = Vec::new();
        let mut duplicates = 0;
        for (target, claim) in job.targets.iter().zip(claims) {
            match claim {
                SendClaim::Claimed => targets.push(target.clone()),
                SendClaim::AlreadySent => duplicates += 1,
                // Another sender holds it right now (the same message twice in the queue):
                // come back later, when it has been delivered or its claim released.
                SendClaim::InProgress => busy.push(target.clone()),
            }
        }
        if duplicates > 0 {
            self.count("duplicate", job.business_id, duplicates);
        }
        let mut outgoing = Vec::new();
        if !busy.is_empty() {
            outgoing.push(self.requeue_later(job, busy, None, "claimed_elsewhere"));
        }
        Ok((targets, outgoing))
    }

    /// Sends the request (its rate already acquired): the vendor's answer and when it came.
    async fn call_vendor(
        &self,
        credential: &Credential<'_>,
        request: &VendorRequest,
        targets: &[PushTarget],
    ) -> (SendResult, i64) {
        let started = std::time::Instant::now();
        let result = credential.send(request, targets).await;
        let answered_ms = now_ms();
        metrics::histogram!("impush_vendor_request_duration_seconds", "vendor" => self.vendor_name()).record(started.elapsed().as_secs_f64());
        (result, answered_ms)
    }

    /// Sorts the targets by what the vendor said about each, counting the answers.
    fn sort_outcomes(&self, targets: Vec<PushTarget>, outcomes: Vec<Outcome>) -> Sorted {
        let mut sorted = Sorted::default();
        // Counted per reason, then recorded once each: a batch answers for up to 1,000
        // tokens, and each metrics call looks its labels up.
        let mut answers: Vec<(String, u64)> = Vec::new();
        for (target, outcome) in targets.into_iter().zip(outcomes) {
            let reason_label = match &outcome {
                Outcome::Delivered => "ok".into(),
                Outcome::Retry { reason, .. }
                | Outcome::InvalidToken { reason }
                | Outcome::Rejected { reason } => impush_core::reason::label(reason),
            };
            match answers.iter_mut().find(|(r, _)| *r == *reason_label) {
                Some((_, n)) => *n += 1,
                None => answers.push((reason_label.into_owned(), 1)),
            }
            match outcome {
                Outcome::Delivered => sorted.delivered.push(target),
                Outcome::InvalidToken { reason } => sorted.invalid.push((target, reason)),
                Outcome::Retry {
                    after: Some(after),
                    reason,
                } if after.as_millis() as u64 > self.longest_retry_delay_ms() => {
                    sorted.pause_for = sorted.pause_for.max(Some(after));
                    sorted.retry_reason = reason;
                    sorted.quota_paused.push(target);
                }
                Outcome::Retry { after, reason } => {
                    let after_ms = after.map(|d| d.as_millis() as u64);
                    sorted.retry_after_ms = sorted.retry_after_ms.max(after_ms);
                    sorted.retry_reason = reason;
                    sorted.retry.push(target);
                }
                Outcome::Rejected { reason } => sorted.rejected.push((target, reason)),
            }
        }
        for (reason, n) in answers {
            metrics::counter!("impush_vendor_responses_total", "vendor" => self.vendor_name(), "reason" => reason).increment(n);
        }
        sorted
    }

    /// Records deliveries, releases the claims of the rest, prunes invalid tokens, and adds
    /// the retries, quota pauses and dead letters to `outgoing`.
    async fn act_on_outcomes(
        &self,
        job: &PushJob,
        credential: &Credential<'_>,
        mut sorted: Sorted,
        status: u16,
        answered_ms: i64,
        outgoing: &mut Vec<Outgoing>,
    ) -> Result<(), String> {
        if !sorted.delivered.is_empty() {
            credential.used(sorted.delivered.len()).await;
            self.record_delivered(job, &sorted.delivered, answered_ms)
                .await;
        }
        let undelivered: Vec<PushTarget> = sorted
            .invalid
            .iter()
            .map(|(t, _)| t.clone())
            .chain(sorted.retry.iter().cloned())
            .chain(sorted.quota_paused.iter().cloned())
            .chain(sorted.rejected.iter().map(|(t, _)| t.clone()))
            .collect();
        self.release(job, &undelivered).await;
        for (target, reason) in &sorted.invalid {
            self.prune(job, target, reason).await?;
            outgoing.push(self.token_invalidated(job, target, reason));
        }
        if !sorted.retry.is_empty() {
            outgoing.push(self.retry_or_dead_letter(job, &sorted, status));
        }
        if let Some(pause) = sorted.pause_for {
            tracing::warn!(pause_s = pause.as_secs(), reason = %sorted.retry_reason, "vendor quota used up; credential paused");
            credential.pause(pause);
            let parked = std::mem::take(&mut sorted.quota_paused);
            outgoing.push(self.requeue_later(job, parked, Some(pause), "quota_paused"));
        }
        let mut rejected_by_reason: Vec<(String, Vec<PushTarget>)> = Vec::new();
        // Dead letters by bounded reason; the vendor's full text goes to their detail.
        for (target, reason) in sorted.rejected {
            match rejected_by_reason.iter_mut().find(|(r, _)| *r == reason) {
                Some((_, targets)) => targets.push(target),
                None => rejected_by_reason.push((reason, vec![target])),
            }
        }
        for (reason, targets) in &rejected_by_reason {
            self.count("rejected", job.business_id, targets.len());
            outgoing.push(self.dead_letter_message(
                job,
                targets,
                &impush_core::reason::label(reason),
                &format!("the vendor rejected the push: {reason}"),
                Some(status),
            ));
        }
        Ok(())
    }

    /// How long a send claim holds: longer than one vendor request can take.
    fn claim_ttl_s(&self) -> u64 {
        (self.state.load().config.sender.request_timeout_ms / 1000).max(1) * 2 + 5
    }

    /// Gives back the claims of undelivered targets; if that fails they expire by
    /// themselves, which only delays their retry.
    async fn release(&self, job: &PushJob, targets: &[PushTarget]) {
        if targets.is_empty() {
            return;
        }
        let refs: Vec<DeviceRef<'_>> = targets.iter().map(device_ref).collect();
        if let Err(err) = self
            .store
            .release_claims(job.sdk_app_id, &job.msg_id, &refs)
            .await
        {
            tracing::warn!(error = %err, "could not release send claims; they will expire");
        }
    }

    async fn record_delivered(&self, job: &PushJob, delivered: &[PushTarget], now: i64) {
        self.count("delivered", job.business_id, delivered.len());
        self.outcome(job, delivered, PushOutcomeKind::Delivered, "");
        if let Some(sent_ms) = job
            .notification
            .as_ref()
            .map(|n| n.send_time_ms)
            .filter(|t| *t > 0)
        {
            let latency = (now - sent_ms).max(0) as f64 / 1000.0;
            metrics::histogram!("impush_end_to_end_latency_seconds", "vendor" => self.vendor_name()).record(latency);
        }
        let config = &self.state.load().config;
        let ttl_s = config.redis.dedupe_ttl_s;
        // Kept for a recall to reach; a replacement or withdrawal itself is not.
        let recall_outcome = if job.recall_withdrawal {
            Some("withdrawn")
        } else if job.recall_replacement {
            Some("replaced")
        } else {
            None
        };
        let shown_ttl_s = if let Some(outcome) = recall_outcome {
            metrics::counter!("impush_recalls_total", "outcome" => outcome)
                .increment(delivered.len() as u64);
            None
        } else {
            Some(config.recall_memory_s())
        };
        // The vendor has the push: if the record cannot be written, acking is still right;
        // only a redelivery of this very job could then notify twice.
        if let Err(err) = self
            .store
            .mark_sent_and_shown(
                job.sdk_app_id,
                &job.msg_id,
                self.vendor,
                job.business_id,
                delivered,
                ttl_s,
                shown_ttl_s,
            )
            .await
        {
            tracing::warn!(error = %err, "delivered, but the deduplication record was not written");
            metrics::counter!("impush_dedupe_record_failures_total", "vendor" => self.vendor_name()).increment(1);
        }
    }

    async fn prune(&self, job: &PushJob, target: &PushTarget, reason: &str) -> Result<(), String> {
        let removed = self
            .store
            .remove_device_if_token(
                job.sdk_app_id,
                &target.user_id,
                &target.device_id,
                &target.token,
            )
            .await
            .map_err(|e| self.store_failed(e))?;
        tracing::info!(device_id = %target.device_id, token = short_token(&target.token), reason, removed, "token invalid");
        self.count("invalid_token", job.business_id, 1);
        self.outcome(
            job,
            std::slice::from_ref(target),
            PushOutcomeKind::InvalidToken,
            &impush_core::reason::label(reason),
        );
        if removed {
            metrics::counter!("impush_tokens_pruned_total", "vendor" => self.vendor_name())
                .increment(1);
        }
        Ok(())
    }

    fn token_invalidated(&self, job: &PushJob, target: &PushTarget, reason: &str) -> Outgoing {
        let event = TokenInvalidated {
            sdk_app_id: job.sdk_app_id,
            user_id: target.user_id.clone(),
            device_id: target.device_id.clone(),
            vendor: self.vendor as i32,
            business_id: job.business_id,
            token: target.token.clone(),
            reason: reason.to_owned(),
            at_ms: now_ms(),
        };
        Outgoing {
            // IM core binds its own queue to `feedback.token`; with none bound there is
            // nobody to tell, which is no reason to fail the push.
            mandatory: false,
            exchange: self.topology.events_exchange(),
            routing_key: "feedback.token".into(),
            body: event.encode_to_vec(),
            properties: protobuf_properties("TokenInvalidated"),
        }
    }

    /// The longest step of the retry ladder: a vendor asking to wait longer is saying its
    /// quota is used up, which pauses the credential instead of using up attempts.
    fn longest_retry_delay_ms(&self) -> u64 {
        self.topology
            .retry_delay_ms(self.topology.retry_steps().saturating_sub(1))
    }

    /// Targets that must wait without it counting as an attempt: another sender is busy with
    /// them (it delivers them or its claim expires), or the credential is paused for its
    /// quota (`wait`: the ladder step at least that long, capped at the longest).
    fn requeue_later(
        &self,
        job: &PushJob,
        targets: Vec<PushTarget>,
        wait: Option<std::time::Duration>,
        outcome: &'static str,
    ) -> Outgoing {
        metrics::counter!("impush_pushes_total", "vendor" => self.vendor_name(), "business_id" => job.business_id.to_string(), "outcome" => outcome).increment(targets.len() as u64);
        let step = wait.map_or(0, |w| {
            self.topology.retry_step(1, Some(w.as_millis() as u64))
        });
        let later = PushJob {
            targets,
            ..job.clone()
        };
        Outgoing {
            mandatory: true,
            exchange: String::new(),
            routing_key: self.topology.retry_queue(self.vendor, step),
            body: later.encode_to_vec(),
            properties: protobuf_properties("PushJob").with_message_id(job.msg_id.as_str().into()),
        }
    }

    /// The retry job (only the targets that need it) into the delay ladder, or the dead
    /// letter queue once out of attempts.
    fn retry_or_dead_letter(&self, job: &PushJob, sorted: &Sorted, status: u16) -> Outgoing {
        let attempts = job.attempt + 1;
        if attempts >= self.state.load().config.amqp.max_attempts {
            self.count("dead_lettered", job.business_id, sorted.retry.len());
            let detail = format!("out of attempts; last answer: {}", sorted.retry_reason);
            return self.dead_letter_message_with(
                job,
                &sorted.retry,
                "retries_exhausted",
                &detail,
                Some(status),
                attempts,
            );
        }
        self.count("retried", job.business_id, sorted.retry.len());
        metrics::counter!("impush_retries_total", "vendor" => self.vendor_name(), "attempt" => attempts.to_string()).increment(1);
        let step = self.topology.retry_step(attempts, sorted.retry_after_ms);
        let delay = self.topology.retry_delay_ms(step);
        // Jitter spreads retries of one outage; a message may only expire earlier than the
        // queue's TTL, so the jitter takes up to a fifth off the step's delay.
        let jittered = delay - rand::random_range(0..=delay / 5);
        let retry = PushJob {
            targets: sorted.retry.clone(),
            attempt: attempts,
            ..job.clone()
        };
        tracing::info!(targets = sorted.retry.len(), delay_ms = jittered, reason = %sorted.retry_reason, "retrying later");
        Outgoing {
            mandatory: true,
            exchange: String::new(),
            routing_key: self.topology.retry_queue(self.vendor, step),
            body: retry.encode_to_vec(),
            properties: protobuf_properties("PushJob")
                .with_message_id(job.msg_id.as_str().into())
                .with_expiration(jittered.to_string().into()),
        }
    }

    fn dead_letter_message(
        &self,
        job: &PushJob,
        targets: &[PushTarget],
        reason: &str,
        detail: &str,
        status: Option<u16>,
    ) -> Outgoing {
        self.dead_letter_message_with(job, targets, reason, detail, status, job.attempt + 1)
    }

    #[allow(clippy::too_many_arguments)]
    fn dead_letter_message_with(
        &self,
        job: &PushJob,
        targets: &[PushTarget],
        reason: &str,
        detail: &str,
        status: Option<u16>,
        attempts: u32,
    ) -> Outgoing {
        let dead = PushJob {
            targets: targets.to_vec(),
            attempt: attempts,
            ..job.clone()
        };
        tracing::warn!(targets = targets.len(), reason, detail, "dead-lettered");
        self.outcome(job, targets, PushOutcomeKind::DeadLettered, reason);
        metrics::counter!("impush_dead_letters_total", "queue" => self.vendor_name(), "reason" => reason.to_owned()).increment(1);
        // Fresh properties: the dead letter must not inherit a retry's expiration.
        let properties = protobuf_properties("PushJob").with_message_id(job.msg_id.as_str().into());
        dead_letter(
            &self.topology.dlq(self.vendor),
            dead.encode_to_vec(),
            &properties,
            &self.topology.push_queue(self.vendor),
            DeadLetterReason {
                reason,
                detail,
                status,
                attempts: Some(attempts),
            },
            now_ms(),
        )
    }

    #[allow(clippy::too_many_arguments)]
    async fn dead_letter_job(
        &self,
        publisher: &Publisher,
        job: &PushJob,
        targets: &[PushTarget],
        reason: &str,
        detail: &str,
        status: Option<u16>,
    ) -> Result<(), String> {
        self.count("dead_lettered", job.business_id, targets.len());
        let message = self.dead_letter_message(job, targets, reason, detail, status);
        publisher.publish(message).await.map_err(|e| e.to_string())
    }

    async fn dead_letter_raw(
        &self,
        delivery: &Delivery,
        publisher: &Publisher,
        reason: &str,
        detail: &str,
    ) -> Handled {
        let message = dead_letter(
            &self.topology.dlq(self.vendor),
            delivery.data.clone(),
            &delivery.properties,
            &self.topology.push_queue(self.vendor),
            DeadLetterReason {
                reason,
                detail,
                ..DeadLetterReason::default()
            },
            now_ms(),
        );
        match publisher.publish(message).await {
            Ok(()) => {
                metrics::counter!("impush_dead_letters_total", "queue" => self.vendor_name(), "reason" => reason.to_owned()).increment(1);
                Handled::Ack
            }
            Err(_) => Handled::Requeue,
        }
    }

    fn store_failed(&self, err: StoreError) -> String {
        self.redis_ready
            .store(!err.is_transient(), Ordering::SeqCst);
        err.to_string()
    }
}

/// Whether the job is worthless at `now_ms`: past its deadline, or its notification's
/// expiry (a call's ring time, a message's TTL).
fn expired_at(job: &PushJob, notification: &Notification, now_ms: i64) -> bool {
    (job.deadline_ms > 0 && now_ms >= job.deadline_ms)
        || (notification.expires_at_ms > 0 && now_ms >= notification.expires_at_ms)
}

fn device_ref(target: &PushTarget) -> DeviceRef<'_> {
    DeviceRef {
        user_id: &target.user_id,
        device_id: &target.device_id,
    }
}

/// The job's request: the push, or for a recall's withdrawal the vendor's revoke request;
/// why not (dead-letter reason and detail) when it cannot be built.
fn build_request(
    job: &PushJob,
    notification: &Notification,
    profile: &CredentialProfile,
    targets: &[PushTarget],
) -> Result<VendorRequest, (&'static str, String)> {
    let built = if job.recall_withdrawal {
        match build_withdrawal(notification, profile, targets) {
            Some(built) => built,
            None => {
                return Err((
                    "no_withdrawal_api",
                    format!(
                        "{} has no withdrawal API impush uses",
                        vendor::name(profile.vendor)
                    ),
                ));
            }
        }
    } else {
        build_payload(notification, profile, targets)
    };
    built.map_err(|err| (build_error_reason(&err), err.to_string()))
}

fn build_error_reason(err: &BuildError) -> &'static str {
    match err {
        BuildError::NoTargets | BuildError::TooManyTargets { .. } => "bad_batch",
        BuildError::VendorMismatch { .. } => "credential_vendor_mismatch",
        BuildError::MissingCredentialField { .. } => "credential_incomplete",
        BuildError::InvalidToken { .. } => "invalid_token_format",
        BuildError::PayloadTooLarge { .. } => "payload_too_large",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_whose_time_is_gone_when_the_request_leaves_is_not_sent() {
        let sent = 1_700_000_000_000;
        // (deadline, expiry, ms after the send time the request would leave, expired?)
        let table = [
            (0, 0, 3_600_000, false),
            (0, sent + 30_000, 10_000, false),
            (0, sent + 30_000, 30_000, true),
            (0, sent + 30_000, 45_000, true),
            (sent + 20_000, sent + 30_000, 25_000, true),
            (sent + 60_000, 0, 59_999, false),
        ];
        for (deadline_ms, expires_at_ms, after_ms, expired) in table {
            let job = PushJob {
                deadline_ms,
                ..PushJob::default()
            };
            let notification = Notification {
                send_time_ms: sent,
                expires_at_ms,
                ..Notification::default()
            };
            assert_eq!(
                expired_at(&job, &notification, sent + after_ms),
                expired,
                "{deadline_ms} {expires_at_ms} {after_ms}"
            );
        }
    }
}
