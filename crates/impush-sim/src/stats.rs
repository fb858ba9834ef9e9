//! Delivery counters for benchmarks and soak runs: per vendor, how many tokens were accepted,
//! when the first and last arrived, and a latency histogram from the message's send time to
//! the simulator's receipt. Unlike the delivery records they stay the same size however long
//! a run lasts, and reading them costs nothing like listing a million deliveries.
//!
//! The simulator learns a message's send time only when the sender wrote it into the push's
//! `ext` as [`SENT_MS_MARKER`] followed by the Unix milliseconds (what `impush-loadgen`
//! does): `ext` reaches every vendor's payload unchanged, and the marker is letters, digits and
//! underscores only, so it survives JSON and form encoding alike. Pushes without it are
//! counted but not timed.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// What precedes the send time (Unix milliseconds) in a timed push's `ext`.
pub const SENT_MS_MARKER: &str = "impush_sent_ms_";

/// Latencies above an hour are clamped: a push that late is a failure whatever its figure.
const MAX_LATENCY_MS: u64 = 3_600_000;

/// Counters of one vendor since the last reset.
struct VendorStats {
    count: u64,
    first_at_ms: u64,
    last_at_ms: u64,
    latency_ms: Histogram<u64>,
}

impl VendorStats {
    fn new() -> Option<VendorStats> {
        Some(VendorStats {
            count: 0,
            first_at_ms: 0,
            last_at_ms: 0,
            latency_ms: Histogram::new_with_bounds(1, MAX_LATENCY_MS, 3).ok()?,
        })
    }
}

#[derive(Default)]
pub(crate) struct Stats {
    vendors: BTreeMap<&'static str, VendorStats>,
}

/// `GET /sim/stats`: per vendor and in total.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsReport {
    pub vendors: BTreeMap<String, VendorReport>,
    pub total: VendorReport,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VendorReport {
    /// Tokens accepted.
    pub count: u64,
    /// Of those, the ones whose send time was known.
    pub timed: u64,
    /// Receipt of the first and the last, Unix milliseconds (0 when none).
    pub first_at_ms: u64,
    pub last_at_ms: u64,
    pub latency_ms: Option<Percentiles>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
    pub mean: f64,
}

impl Stats {
    /// Counts one accepted token; `payload` is searched for the send-time marker.
    pub fn count(&mut self, vendor: &'static str, payload: &str, received_at_ms: u64) {
        let entry = match self.vendors.entry(vendor) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => match VendorStats::new() {
                Some(stats) => e.insert(stats),
                None => return,
            },
        };
        entry.count += 1;
        if entry.first_at_ms == 0 {
            entry.first_at_ms = received_at_ms;
        }
        entry.last_at_ms = entry.last_at_ms.max(received_at_ms);
        if let Some(sent_ms) = sent_ms(payload) {
            let latency = received_at_ms.saturating_sub(sent_ms).max(1);
            entry
                .latency_ms
                .saturating_record(latency.min(MAX_LATENCY_MS));
        }
    }

    pub fn reset(&mut self) {
        self.vendors.clear();
    }

    pub fn report(&self) -> StatsReport {
        let mut all: Option<Histogram<u64>> = None;
        let mut total = VendorReport::default();
        let mut vendors = BTreeMap::new();
        for (name, stats) in &self.vendors {
            vendors.insert((*name).to_owned(), report_of(stats));
            total.count += stats.count;
            total.timed += stats.latency_ms.len();
            if stats.first_at_ms > 0
                && (total.first_at_ms == 0 || stats.first_at_ms < total.first_at_ms)
            {
                total.first_at_ms = stats.first_at_ms;
            }
            total.last_at_ms = total.last_at_ms.max(stats.last_at_ms);
            match &mut all {
                Some(h) => {
                    // Same bounds for every vendor, so adding cannot fail.
                    let _ = h.add(&stats.latency_ms);
                }
                None => all = Some(stats.latency_ms.clone()),
            }
        }
        total.latency_ms = all.as_ref().and_then(percentiles);
        StatsReport { vendors, total }
    }
}

fn report_of(stats: &VendorStats) -> VendorReport {
    VendorReport {
        count: stats.count,
        timed: stats.latency_ms.len(),
        first_at_ms: stats.first_at_ms,
        last_at_ms: stats.last_at_ms,
        latency_ms: percentiles(&stats.latency_ms),
    }
}

fn percentiles(h: &Histogram<u64>) -> Option<Percentiles> {
    (!h.is_empty()).then(|| Percentiles {
        p50: h.value_at_quantile(0.50),
        p90: h.value_at_quantile(0.90),
        p99: h.value_at_quantile(0.99),
        max: h.max(),
        mean: h.mean(),
    })
}

/// The send time written after the marker, if the payload carries one.
fn sent_ms(payload: &str) -> Option<u64> {
    let start = payload.find(SENT_MS_MARKER)? + SENT_MS_MARKER.len();
    let digits = payload[start..]
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    payload[start..start + digits].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_send_time_is_read_from_a_marker_anywhere_in_the_payload() {
        assert_eq!(
            sent_ms(r#"{"aps":{"alert":"x"},"ext":"chat/1 impush_sent_ms_1700000000123"}"#),
            Some(1_700_000_000_123)
        );
        assert_eq!(
            sent_ms("extra.ext=impush_sent_ms_42&title=x"),
            Some(42),
            "a form body"
        );
        assert_eq!(sent_ms(r#"{"ext":"no marker"}"#), None);
        assert_eq!(sent_ms(r#"{"ext":"impush_sent_ms_"}"#), None);
    }

    #[test]
    fn stats_count_every_push_and_time_only_the_marked_ones() {
        let mut stats = Stats::default();
        stats.count("apns", "impush_sent_ms_1000", 1_010);
        stats.count("apns", "impush_sent_ms_1000", 1_030);
        stats.count("fcm", "untimed", 2_000);
        let report = stats.report();
        let apns = &report.vendors["apns"];
        assert_eq!((apns.count, apns.timed), (2, 2));
        assert_eq!((apns.first_at_ms, apns.last_at_ms), (1_010, 1_030));
        let latency = apns.latency_ms.as_ref().unwrap();
        assert_eq!((latency.p50, latency.max), (10, 30));
        assert_eq!(report.vendors["fcm"].latency_ms, None);
        assert_eq!((report.total.count, report.total.timed), (3, 2));
        assert_eq!(
            (report.total.first_at_ms, report.total.last_at_ms),
            (1_010, 2_000)
        );
        stats.reset();
        assert_eq!(stats.report().total.count, 0);
    }
}
