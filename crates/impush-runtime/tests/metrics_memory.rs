//! A worker nobody scrapes keeps its metrics memory bounded: the recorder keeps every
//! histogram sample until upkeep or a scrape folds it into the buckets, so the worker runs
//! upkeep by itself. Measured on the heap (dhat) with a paused clock: the same stream of
//! samples grows the heap without upkeep and leaves it flat with it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use impush_runtime::{METRICS_UPKEEP_EVERY, metrics_builder, run_metrics_upkeep};
use metrics::{Key, Metadata, Recorder};
use tokio_util::sync::CancellationToken;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Samples recorded between two upkeep passes, and how many such periods a run lasts.
const SAMPLES_PER_PERIOD: usize = 20_000;
const PERIODS: usize = 30;

fn live_heap_bytes() -> usize {
    dhat::HeapStats::get().curr_bytes
}

/// Records the sender's latency histogram for `PERIODS` upkeep periods, never scraping, and
/// returns the live heap after the first period and after the last.
async fn record_unscraped(upkeep: bool) -> (usize, usize) {
    let recorder = metrics_builder().unwrap().build_recorder();
    let shutdown = CancellationToken::new();
    if upkeep {
        tokio::spawn(run_metrics_upkeep(recorder.handle(), shutdown.clone()));
    }
    static METADATA: Metadata<'static> = Metadata::new(module_path!(), metrics::Level::INFO, None);
    let histogram = recorder.register_histogram(
        &Key::from_parts(
            "impush_vendor_request_duration_seconds",
            vec![metrics::Label::new("vendor", "apns")],
        ),
        &METADATA,
    );
    let mut after_first = 0;
    for period in 0..PERIODS {
        for i in 0..SAMPLES_PER_PERIOD {
            histogram.record(0.001 * (i % 500) as f64);
        }
        // Past the next upkeep tick: the paused clock jumps there once the runtime is idle.
        tokio::time::sleep(METRICS_UPKEEP_EVERY + Duration::from_millis(1)).await;
        if period == 0 {
            after_first = live_heap_bytes();
        }
    }
    let after_last = live_heap_bytes();
    shutdown.cancel();
    (after_first, after_last)
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_worker_nobody_scrapes_keeps_its_histogram_memory_bounded() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let later_samples = ((PERIODS - 1) * SAMPLES_PER_PERIOD) as f64;

    // Without upkeep every sample stays on the heap: the measurement sees the leak.
    let (first, last) = record_unscraped(false).await;
    let kept_per_sample = last.saturating_sub(first) as f64 / later_samples;
    assert!(
        kept_per_sample >= 8.0,
        "without upkeep the samples should pile up (8 bytes each at least), heap grew by \
         {kept_per_sample:.2} bytes a sample: {first} -> {last} bytes"
    );

    // With the workers' upkeep the heap is where it was after the first period.
    let (first, last) = record_unscraped(true).await;
    let kept_per_sample = last.saturating_sub(first) as f64 / later_samples;
    assert!(
        kept_per_sample < 0.1,
        "with upkeep the heap should stay flat, it grew by {kept_per_sample:.3} bytes a \
         sample: {first} -> {last} bytes"
    );
}
