//! impush-sender --vendor V: consumes `impush.push.<vendor>` with bounded concurrency and
//! sends each job through the vendor's client. Every answer is classified: delivered
//! (recorded for deduplication), retry (back through the delay ladder, honouring
//! Retry-After), invalid token (registration pruned, `feedback.token` published) or rejected
//! (dead-lettered with its reason). Expired jobs are dropped, never delivered late.

mod limits;
mod send;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use impush_amqp::{HandlerFn, RunOptions, Topology, run_consumer};
use impush_core::vendor;
use impush_runtime::CommonArgs;
use impush_store::{Endpoint, Store};
use impush_vendors::VendorClients;

#[derive(Parser)]
#[command(name = "impush-sender", version, about = "Push jobs to one vendor")]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// The vendor this pool sends to, in lower case (`apns`, `fcm`, …; an unknown name is an
    /// error listing them all).
    #[arg(long, env = "IMPUSH_VENDOR")]
    vendor: String,
}

/// mimalloc instead of the system allocator: a worker allocates and frees small buffers for
/// every message, and glibc's malloc/free took about a sixth of its CPU in profiles.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// One thread: the work per message is a few short steps between I/O waits, and on a
// multi-threaded runtime waking tasks across threads cost more CPU than the work itself
// (profiles: futex wake-ups and task switches; per notification about 150-200 µs of CPU
// against 60-110 µs on one thread). A process uses at most one core; scale out with
// processes (docs/scaling.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let vendor = vendor::parse(&args.vendor).with_context(|| {
        format!(
            "unknown vendor {:?}; expected one of {}",
            args.vendor,
            vendor::ALL.map(vendor::name).join(", ")
        )
    })?;
    let config = Arc::new(args.common.load_config());
    impush_runtime::init_logging(&config.log);
    let amqp_tls = config.amqp_tls()?;
    let redis_tls = config.redis_tls()?;
    // A malformed credential stops the start with an error naming it, not a failure per push.
    let clients = VendorClients::from_config(&config, vendor)
        .with_context(|| format!("loading the {} credentials", vendor::name(vendor)))?;
    let impush_runtime::Worker {
        shutdown,
        amqp_ready,
        topology_ready,
        redis_ready,
        credentials_ready,
    } = impush_runtime::Worker::start(args.common.metrics_addr).await?;
    impush_runtime::catalog::start_counters_at_zero(
        impush_runtime::catalog::Role::Sender(vendor),
        &config,
    );
    report_expiries(vendor, &clients);
    credentials_ready.store(true, Ordering::SeqCst);

    let redis = &config.redis;
    let redis_endpoint = Endpoint::from_config(redis.cluster, &redis.url, &redis.urls);
    let Some(store) = impush_runtime::wait_for("Redis", &shutdown, || {
        Store::connect_to(&redis_endpoint, &redis_tls, &redis.prefix)
    })
    .await
    else {
        return Ok(());
    };
    redis_ready.store(true, Ordering::SeqCst);

    let topology = Topology::new(&config.amqp);
    let outcomes = impush_amqp::Outcomes::start(
        &config.feedback,
        config.amqp.addresses(),
        amqp_tls.clone(),
        &topology,
        shutdown.clone(),
    );
    let sender = Arc::new(
        send::Sender::new(
            vendor,
            store,
            clients,
            Arc::clone(&config),
            topology.clone(),
            redis_ready,
        )
        .with_outcomes(outcomes),
    );
    let reloading = Arc::clone(&sender);
    let apply: impush_runtime::ApplyFn = Box::new(move |new_config| {
        // A reload that breaks a credential is refused whole: the running clients stay.
        let clients = VendorClients::from_config(&new_config, vendor).map_err(|e| e.to_string())?;
        report_expiries(vendor, &clients);
        reloading.reload(new_config, clients);
        Ok(())
    });
    tokio::spawn(impush_runtime::watch_config(
        args.common.config.clone(),
        (*config).clone(),
        apply,
        shutdown.clone(),
    ));
    tokio::spawn(impush_amqp::watch_queue_depths(
        config.amqp.addresses(),
        amqp_tls.clone(),
        topology.clone(),
        topology.vendor_queues(vendor),
        QUEUE_DEPTH_POLL,
        shutdown.clone(),
    ));
    let handler: HandlerFn = Arc::new(move |delivery, publisher| {
        let sender = Arc::clone(&sender);
        Box::pin(async move { sender.handle(delivery, publisher).await })
    });
    let prefetch = u16::try_from(config.sender.concurrency.max(1)).unwrap_or(u16::MAX);
    tracing::info!(
        vendor = vendor::name(vendor),
        concurrency = prefetch,
        "sender starting"
    );
    run_consumer(
        RunOptions {
            urls: config.amqp.addresses(),
            tls: amqp_tls,
            queue: topology.push_queue(vendor),
            prefetch,
            topology,
            shutdown_grace: Duration::from_millis(config.sender.request_timeout_ms + 5_000),
            requeue_delay: Duration::from_millis(500),
            ready: amqp_ready,
            topology_ready,
        },
        handler,
        shutdown,
    )
    .await;
    tracing::info!("stopped");
    Ok(())
}

/// How often the queue depth gauges are refreshed.
const QUEUE_DEPTH_POLL: Duration = Duration::from_secs(10);

/// Sets the expiry gauge of every credential that expires (APNs p12 certificates).
fn report_expiries(vendor: impush_core::Vendor, clients: &VendorClients) {
    for (business_id, kind, expires_at_s) in clients.expiries() {
        metrics::gauge!(
            "impush_credential_expiry_timestamp_seconds",
            "vendor" => vendor::name(vendor),
            "business_id" => business_id.to_string(),
            "kind" => kind
        )
        .set(expires_at_s as f64);
    }
}
