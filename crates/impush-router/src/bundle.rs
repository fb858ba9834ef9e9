//! Group commit of PushJobs. Each vendor has a lane; the first job to arrive on an idle lane
//! is published at once, and the jobs that arrive while that publish waits for its confirm
//! go out together, as one `PushJobs` message, when it is confirmed. At a low rate every job
//! goes out alone and waits for nothing; under load a C2C push costs a fraction of a broker
//! message instead of one each, and the broker (the bottleneck of a C2C stream) does half
//! the work per notification.
//!
//! A handler's jobs count as published only when the message holding each of them is
//! confirmed; a failed publish fails every job in it, and their events are retried whole.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use impush_amqp::{Outgoing, Publisher, protobuf_properties};
use tokio::sync::oneshot;

use impush_proto::PUSH_JOBS_TYPE as BUNDLE_TYPE;

/// A bundle's body stays under this size however many jobs are waiting: a group's jobs of
/// 1,000 tokens each are already large and gain nothing from sharing a message.
const MAX_BUNDLE_BYTES: usize = 256 * 1024;

pub struct Bundler {
    lanes: Mutex<HashMap<String, Lane>>,
    max_jobs: AtomicUsize,
}

#[derive(Default)]
struct Lane {
    waiting: Vec<Waiting>,
    /// A flush task is publishing this lane's jobs.
    flushing: bool,
    /// The publisher of the latest jobs: after a reconnect, the new connection's.
    publisher: Option<Publisher>,
}

struct Waiting {
    job: Outgoing,
    done: oneshot::Sender<Result<(), String>>,
}

impl Bundler {
    pub fn new(max_jobs: usize) -> Arc<Bundler> {
        Arc::new(Bundler {
            lanes: Mutex::default(),
            max_jobs: AtomicUsize::new(max_jobs.max(1)),
        })
    }

    /// Takes a reloaded `[router] bundle_max_jobs`; bundles being built keep the old one.
    pub fn set_max_jobs(&self, max_jobs: usize) {
        self.max_jobs.store(max_jobs.max(1), Ordering::Relaxed);
    }

    /// Publishes the jobs, alone or in bundles with other handlers' jobs for the same
    /// vendor, and returns once every one is confirmed (or the first error). Jobs of one
    /// call keep their order within their vendor's lane.
    pub async fn publish(
        self: &Arc<Self>,
        publisher: &Publisher,
        jobs: Vec<Outgoing>,
    ) -> Result<(), String> {
        if self.max_jobs.load(Ordering::Relaxed) == 1 {
            // Bundling off: every job its own message, all confirms awaited together.
            for job in &jobs {
                count_published(&job.routing_key, 1);
            }
            return publisher.publish_all(jobs).await.map_err(|e| e.to_string());
        }
        let mut confirms = Vec::with_capacity(jobs.len());
        {
            let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
            for job in jobs {
                let (done, confirmed) = oneshot::channel();
                let lane = lanes.entry(job.routing_key.clone()).or_default();
                lane.publisher = Some(publisher.clone());
                if !lane.flushing {
                    lane.flushing = true;
                    tokio::spawn(Arc::clone(self).flush(job.routing_key.clone()));
                }
                lane.waiting.push(Waiting { job, done });
                confirms.push(confirmed);
            }
        }
        for confirmed in confirms {
            match confirmed.await {
                Ok(result) => result?,
                Err(_) => return Err("the publishing task ended before the confirm".into()),
            }
        }
        Ok(())
    }

    /// Publishes the lane's waiting jobs until none are left: everything waiting goes out at
    /// once (in bundles of at most `max_jobs`, confirms awaited together), and what arrives
    /// meanwhile waits for the next round.
    async fn flush(self: Arc<Self>, routing_key: String) {
        loop {
            let (publisher, bundles) = {
                let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
                let Some(lane) = lanes.get_mut(&routing_key) else {
                    return;
                };
                let publisher = match &lane.publisher {
                    Some(publisher) if !lane.waiting.is_empty() => publisher.clone(),
                    _ => {
                        lane.flushing = false;
                        return;
                    }
                };
                let max_jobs = self.max_jobs.load(Ordering::Relaxed);
                let mut bundles = Vec::new();
                while !lane.waiting.is_empty() {
                    let take = bundle_len(&lane.waiting, max_jobs);
                    bundles.push(bundle(lane.waiting.drain(..take).collect()));
                }
                (publisher, bundles)
            };
            // Polled in order, so the bundles are published in order; each handler hears
            // the outcome of the message its job was in.
            futures::future::join_all(bundles.into_iter().map(|(message, dones)| {
                let publisher = &publisher;
                async move {
                    count_published(&message.routing_key, dones.len());
                    let result = publisher.publish(message).await.map_err(|e| e.to_string());
                    for done in dones {
                        // A handler that stopped waiting (shutdown) does not need the answer.
                        let _ = done.send(result.clone());
                    }
                }
            }))
            .await;
        }
    }
}

/// One broker message to `vendor` (the routing key) holding `jobs` PushJobs.
fn count_published(vendor: &str, jobs: usize) {
    metrics::counter!("impush_push_messages_total", "vendor" => vendor.to_owned()).increment(1);
    metrics::counter!("impush_push_jobs_total", "vendor" => vendor.to_owned())
        .increment(jobs as u64);
}

/// How many of the waiting jobs the next message takes: at least one, at most `max_jobs`,
/// and no more than fit in `MAX_BUNDLE_BYTES`.
fn bundle_len(waiting: &[Waiting], max_jobs: usize) -> usize {
    let mut bytes = 0;
    let mut take = 0;
    for w in waiting.iter().take(max_jobs) {
        bytes += framed_len(w.job.body.len());
        if take > 0 && bytes > MAX_BUNDLE_BYTES {
            break;
        }
        take += 1;
    }
    take.max(1)
}

/// One job goes out as itself (a `PushJob`); several as a `PushJobs` whose body is each
/// job's encoding framed as field 1 (a repeated message field is exactly that on the wire,
/// so nothing is decoded or encoded again).
fn bundle(mut batch: Vec<Waiting>) -> (Outgoing, Vec<oneshot::Sender<Result<(), String>>>) {
    let mut dones = Vec::with_capacity(batch.len());
    if batch.len() == 1
        && let Some(w) = batch.pop()
    {
        dones.push(w.done);
        return (w.job, dones);
    }
    let size: usize = batch.iter().map(|w| framed_len(w.job.body.len())).sum();
    let mut body = Vec::with_capacity(size);
    let mut first: Option<Outgoing> = None;
    for w in batch {
        body.push(0x0a); // field 1, length-delimited
        prost::encoding::encode_varint(w.job.body.len() as u64, &mut body);
        body.extend_from_slice(&w.job.body);
        dones.push(w.done);
        if first.is_none() {
            first = Some(w.job);
        }
    }
    let (exchange, routing_key, mandatory) = first
        .map(|j| (j.exchange, j.routing_key, j.mandatory))
        .unwrap_or_default();
    let message = Outgoing {
        exchange,
        routing_key,
        body,
        properties: protobuf_properties(BUNDLE_TYPE),
        mandatory,
    };
    (message, dones)
}

fn framed_len(len: usize) -> usize {
    1 + prost::encoding::encoded_len_varint(len as u64) + len
}

#[cfg(test)]
mod tests {
    use super::*;
    use impush_proto::v1::{PushJob, PushJobs};
    use prost::Message;

    fn waiting(
        msg_id: &str,
        body_bytes: usize,
    ) -> (Waiting, oneshot::Receiver<Result<(), String>>) {
        let job = PushJob {
            msg_id: msg_id.into(),
            business_id: body_bytes as u64,
            targets: vec![impush_proto::v1::PushTarget {
                token: "t".repeat(body_bytes),
                ..Default::default()
            }],
            ..Default::default()
        };
        let (done, rx) = oneshot::channel();
        let job = Outgoing {
            exchange: "impush.push".into(),
            routing_key: "apns".into(),
            body: job.encode_to_vec(),
            properties: protobuf_properties("PushJob"),
            mandatory: true,
        };
        (Waiting { job, done }, rx)
    }

    #[test]
    fn a_bundle_decodes_as_the_jobs_in_their_order() {
        let batch: Vec<Waiting> = (0..3)
            .map(|i| waiting(&format!("m{i}"), 10 + i).0)
            .collect();
        let originals: Vec<PushJob> = batch
            .iter()
            .map(|w| PushJob::decode(w.job.body.as_slice()).unwrap())
            .collect();
        let (message, dones) = bundle(batch);
        assert_eq!(dones.len(), 3);
        assert_eq!(
            message.properties.kind().as_ref().map(|k| k.as_str()),
            Some(BUNDLE_TYPE)
        );
        assert_eq!(
            (message.exchange.as_str(), message.routing_key.as_str()),
            ("impush.push", "apns")
        );
        assert!(message.mandatory);
        let decoded = PushJobs::decode(message.body.as_slice()).unwrap();
        assert_eq!(decoded.jobs, originals);
    }

    #[test]
    fn a_single_job_goes_out_as_a_plain_push_job() {
        let (w, _rx) = waiting("only", 5);
        let body = w.job.body.clone();
        let (message, dones) = bundle(vec![w]);
        assert_eq!(dones.len(), 1);
        assert_eq!(
            message.properties.kind().as_ref().map(|k| k.as_str()),
            Some("PushJob")
        );
        assert_eq!(message.body, body);
    }

    #[test]
    fn a_bundle_takes_at_most_max_jobs_and_stays_under_the_size_limit() {
        let small: Vec<Waiting> = (0..10).map(|i| waiting(&format!("s{i}"), 20).0).collect();
        assert_eq!(bundle_len(&small, 4), 4);
        assert_eq!(bundle_len(&small, 64), 10);
        assert_eq!(bundle_len(&small, 1), 1);
        let large: Vec<Waiting> = (0..5)
            .map(|i| waiting(&format!("l{i}"), 100_000).0)
            .collect();
        // Two fit in 256 KiB, a third would not.
        assert_eq!(bundle_len(&large, 64), 2);
        let huge = vec![waiting("h", MAX_BUNDLE_BYTES * 2).0];
        // A job larger than the limit still goes, alone.
        assert_eq!(bundle_len(&huge, 64), 1);
    }
}
