//! One measured stream: reset the simulator's counters, publish the plan, follow the
//! deliveries at the simulator until every expected push arrived (or none arrived for a
//! while), and read throughput and latency from the simulator's side.

use std::time::{Duration, Instant};

use impush_amqp::Topology;
use impush_sim::StatsReport;
use indicatif::{MultiProgress, ProgressBar};
use serde::{Deserialize, Serialize};

use crate::cpu::{self, ProcessCpu, Watched};
use crate::population::bar_style;
use crate::stream::{self, Audience, PublishError, StreamPlan};

/// One row of a benchmark: a stream (or the relay reference) and what it achieved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// `relay`, `c2c`, `group`, `mixed`, … as the bench names it.
    pub name: String,
    /// `max` (as fast as possible) or `rate` (a fixed offered rate, for latency).
    pub mode: String,
    /// Repetition number within one bench run.
    pub rep: u32,
    pub messages: u64,
    /// Pushes delivered (tokens the simulator accepted); relay: messages relayed.
    pub notifications: u64,
    pub expected: u64,
    pub notifications_per_s: f64,
    pub messages_per_s: f64,
    /// Offered messages per second in `rate` mode.
    pub offered_rate: Option<f64>,
    pub p50_ms: Option<u64>,
    pub p90_ms: Option<u64>,
    pub p99_ms: Option<u64>,
    pub max_ms: Option<u64>,
    /// CPU time per notification of each watched process over this run (`--cpu`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpu: Vec<ProcessCpu>,
}

#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error("simulator at {url}: {source}")]
    Sim { url: String, source: reqwest::Error },
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("publishing task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

pub struct SimClient {
    http: reqwest::Client,
    url: String,
}

impl SimClient {
    pub fn new(url: &str) -> SimClient {
        SimClient {
            http: reqwest::Client::new(),
            url: url.trim_end_matches('/').to_owned(),
        }
    }

    fn failed(&self, source: reqwest::Error) -> MeasureError {
        MeasureError::Sim {
            url: self.url.clone(),
            source,
        }
    }

    pub async fn stats(&self) -> Result<StatsReport, MeasureError> {
        self.http
            .get(format!("{}/sim/stats", self.url))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| self.failed(e))?
            .json()
            .await
            .map_err(|e| self.failed(e))
    }

    pub async fn reset(&self) -> Result<(), MeasureError> {
        self.http
            .delete(format!("{}/sim/stats", self.url))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| self.failed(e))?;
        Ok(())
    }
}

pub struct Run<'a> {
    pub name: String,
    pub rep: u32,
    pub amqp_url: String,
    pub amqp_tls: impush_amqp::ClientTls,
    pub topology: Topology,
    pub audience: Audience,
    pub plan: StreamPlan,
    pub sim: &'a SimClient,
    /// Give up waiting once nothing new arrived for this long after publishing ended.
    pub settle: Duration,
    /// Processes whose CPU time is read before and after the run.
    pub watched: Vec<Watched>,
}

const POLL: Duration = Duration::from_millis(250);

impl Run<'_> {
    pub async fn measure(self) -> Result<Measurement, MeasureError> {
        self.sim.reset().await?;
        let cpu_before = cpu::snapshot(&self.watched);
        let expected = self.audience.expected(&self.plan);
        let bars = MultiProgress::new();
        let published = bars.add(ProgressBar::new(self.plan.messages as u64));
        published.set_style(bar_style());
        published.set_message(format!("{} published", self.name));
        let delivered = bars.add(ProgressBar::new(expected));
        delivered.set_style(bar_style());
        delivered.set_message(format!("{} delivered", self.name));

        let Run {
            name,
            rep,
            amqp_url,
            amqp_tls,
            topology,
            audience,
            plan,
            sim,
            settle,
            watched,
        } = self;
        let offered_rate = plan.rate;
        let messages = plan.messages as u64;
        let publisher_bar = published.clone();
        let publishing = tokio::spawn(async move {
            stream::publish(
                &amqp_url,
                &amqp_tls,
                &topology,
                &audience,
                &plan,
                &publisher_bar,
            )
            .await
        });
        let mut publishing = Some(publishing);
        let mut last_count = 0;
        let mut last_change = Instant::now();
        let report = loop {
            tokio::time::sleep(POLL).await;
            if let Some(task) = publishing.take_if(|task| task.is_finished()) {
                task.await??;
                published.finish();
                last_change = Instant::now();
            }
            let report = sim.stats().await?;
            delivered.set_position(report.total.count);
            if report.total.count != last_count {
                last_count = report.total.count;
                last_change = Instant::now();
            }
            let done = publishing.is_none()
                && (report.total.count >= expected || last_change.elapsed() > settle);
            if done {
                break report;
            }
        };
        let cpu_after = cpu::snapshot(&watched);
        delivered.finish();
        let total = &report.total;
        let span_s =
            (total.last_at_ms.saturating_sub(total.first_at_ms) as f64 / 1000.0).max(0.001);
        let notifications_per_s = total.count.saturating_sub(1) as f64 / span_s;
        let per_message = if messages > 0 {
            expected as f64 / messages as f64
        } else {
            1.0
        };
        let latency = total.latency_ms.as_ref();
        Ok(Measurement {
            name,
            mode: if offered_rate.is_some() {
                "rate"
            } else {
                "max"
            }
            .into(),
            rep,
            messages,
            notifications: total.count,
            expected,
            notifications_per_s,
            messages_per_s: notifications_per_s / per_message.max(f64::MIN_POSITIVE),
            offered_rate,
            p50_ms: latency.map(|l| l.p50),
            p90_ms: latency.map(|l| l.p90),
            p99_ms: latency.map(|l| l.p99),
            max_ms: latency.map(|l| l.max),
            cpu: cpu::per_notification(&watched, &cpu_before, &cpu_after, total.count),
        })
    }
}
