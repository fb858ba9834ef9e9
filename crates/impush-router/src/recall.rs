//! Taking in a `MessageRevoked`: the recall is remembered in Redis for as long as a push of
//! the message could still be queued or retried (`Config::recall_memory_s`), so the router
//! (before rendering) and the senders (before a push leaves) find it, whichever of the
//! message and its recall came first. Devices the message already reached get, per vendor
//! ([`recall_action`]): a withdrawal through the vendor's revoke API (HarmonyOS, Xiaomi), a
//! replacement carrying the recall text under the same collapse id or notify id (APNs, FCM,
//! HarmonyOS without a client id), or nothing (the others: counted as `too_late`). Both
//! kinds of job go to the vendor's push queue and its sender, with the push's retries.

use impush_amqp::{Outgoing, Publisher, protobuf_properties};
use impush_config::Config;
use impush_core::payload::max_batch;
use impush_core::payload::withdraw::{RecallAction, max_withdrawal_batch, recall_action};
use impush_core::{recall_notification, vendor};
use impush_proto::v1::{MessageRevoked, PushJob, PushTarget, ShownPush, Vendor};
use impush_store::Applied;
use prost::Message;

use crate::route::{Failure, Router};

/// The msg_id of the job that replaces a recalled message's notification: its own
/// deduplication key, which the recall record of the message does not match.
pub fn replacement_msg_id(msg_id: &str) -> String {
    format!("{msg_id}#recalled")
}

impl Router {
    /// Remembers the recall and publishes the replacements; the metrics outcome of the
    /// event. A repeated recall publishes the replacements again: senders deduplicate them.
    pub(crate) async fn take_recall(
        &self,
        revoked: &MessageRevoked,
        publisher: &Publisher,
    ) -> Result<&'static str, Failure> {
        if revoked.msg_id.is_empty() {
            return Err(Failure::Bad(
                "missing_field",
                "a MessageRevoked needs msg_id".into(),
            ));
        }
        let config = self.config.load_full();
        let taken = self
            .store
            .remember_revoked(
                revoked.sdk_app_id,
                &revoked.msg_id,
                revoked.at_ms,
                config.recall_memory_s(),
            )
            .await?;
        let outcome = match taken.applied {
            Applied::Applied => "taken_in",
            Applied::Stale => "repeated",
        };
        tracing::info!(msg_id = %revoked.msg_id, sdk_app_id = revoked.sdk_app_id, outcome, shown = taken.shown.len(), "recall");
        metrics::counter!("impush_recalls_total", "outcome" => outcome).increment(1);

        let templates = config.templates.for_app(revoked.sdk_app_id);
        let notification = recall_notification(&revoked.msg_id, templates, revoked.at_ms);
        let deadline_ms = revoked.at_ms + (config.router.max_age_s as i64).saturating_mul(1000);
        let (jobs, too_late) =
            self.replacements(&config, revoked, taken.shown, notification, deadline_ms);
        if taken.applied == Applied::Applied && too_late > 0 {
            metrics::counter!("impush_recalls_total", "outcome" => "too_late").increment(too_late);
        }
        publisher
            .publish_all(jobs)
            .await
            .map_err(|e| Failure::Transient(e.to_string()))?;
        Ok(match taken.applied {
            Applied::Applied => "recalled",
            Applied::Stale => "stale",
        })
    }

    /// One replacement or withdrawal job per credential, vendor batch and action, for the
    /// devices a recall can still reach, and how many devices keep the notification.
    fn replacements(
        &self,
        config: &Config,
        revoked: &MessageRevoked,
        shown: Vec<ShownPush>,
        notification: impush_proto::v1::Notification,
        deadline_ms: i64,
    ) -> (Vec<Outgoing>, u64) {
        let mut groups: Vec<((Vendor, u64, RecallAction), Vec<PushTarget>)> = Vec::new();
        let mut too_late = 0;
        for push in shown {
            let vendor = push.vendor();
            let Some(target) = push.target else { continue };
            let action = recall_action(vendor, config.credentials.get(&push.business_id));
            if action == RecallAction::Stays {
                too_late += 1;
                continue;
            }
            let key = (vendor, push.business_id, action);
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, targets)) => targets.push(target),
                None => groups.push((key, vec![target])),
            }
        }
        let msg_id = replacement_msg_id(&revoked.msg_id);
        let mut jobs = Vec::new();
        for ((vendor, business_id, action), targets) in groups {
            let withdrawal = action == RecallAction::Withdraw;
            let batch = if withdrawal {
                max_withdrawal_batch(vendor)
            } else {
                max_batch(vendor)
            };
            for chunk in targets.chunks(batch.max(1)) {
                let job = PushJob {
                    msg_id: msg_id.clone(),
                    sdk_app_id: revoked.sdk_app_id,
                    vendor: vendor as i32,
                    business_id,
                    targets: chunk.to_vec(),
                    notification: Some(notification.clone()),
                    attempt: 0,
                    deadline_ms,
                    recall_replacement: !withdrawal,
                    recall_withdrawal: withdrawal,
                };
                jobs.push(Outgoing {
                    mandatory: true,
                    exchange: self.topology.push_exchange(),
                    routing_key: vendor::name(vendor).to_owned(),
                    body: job.encode_to_vec(),
                    properties: protobuf_properties("PushJob")
                        .with_message_id(msg_id.as_str().into()),
                });
            }
        }
        (jobs, too_late)
    }
}
