//! impush-router: consumes `impush.messages`; for each recipient (the C2C receiver or every
//! group member) fetches devices, presence and settings from Redis a chunk of recipients at
//! a time, decides and renders with the core, counts iOS badges, and publishes one PushJob
//! per device, or per vendor batch of devices sharing a credential and an identical
//! notification, to `impush.push`; jobs for one vendor that are ready together share a
//! broker message (bundle.rs). The event is acked only after every job is confirmed.

mod bundle;
mod recall;
mod route;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Parser;
use impush_amqp::{HandlerFn, RunOptions, Topology, run_consumer};
use impush_runtime::CommonArgs;
use impush_store::{Endpoint, Store};

#[derive(Parser)]
#[command(
    name = "impush-router",
    version,
    about = "Offline messages into push jobs"
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
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
    let config = Arc::new(args.common.load_config());
    impush_runtime::init_logging(&config.log);
    let amqp_tls = config.amqp_tls()?;
    let redis_tls = config.redis_tls()?;
    let impush_runtime::Worker {
        shutdown,
        amqp_ready,
        topology_ready,
        redis_ready,
        credentials_ready,
    } = impush_runtime::Worker::start(args.common.metrics_addr).await?;
    impush_runtime::catalog::start_counters_at_zero(impush_runtime::catalog::Role::Router, &config);
    // The router reads credentials' public profiles only; they were validated with the config.
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
    let router = Arc::new(
        route::Router::new(store, Arc::clone(&config), topology.clone(), redis_ready)
            .with_outcomes(outcomes),
    );
    let reloading = Arc::clone(&router);
    let apply: impush_runtime::ApplyFn = Box::new(move |new_config| {
        reloading.reload(new_config);
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
        // Every queue, not only its own: a sender pool that is gone reports nothing.
        topology.all_queues(),
        Duration::from_secs(10),
        shutdown.clone(),
    ));
    let handler: HandlerFn = Arc::new(move |delivery, publisher| {
        let router = Arc::clone(&router);
        Box::pin(async move { router.handle(delivery, publisher).await })
    });
    run_consumer(
        RunOptions {
            urls: config.amqp.addresses(),
            tls: amqp_tls,
            queue: topology.messages_queue(),
            prefetch: config.amqp.prefetch,
            topology,
            shutdown_grace: Duration::from_secs(20),
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
