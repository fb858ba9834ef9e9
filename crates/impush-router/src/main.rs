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

use clap::Parser;
use impush_runtime::catalog::Role;
use impush_runtime::{Boot, CommonArgs, Consume, SHUTDOWN_GRACE};

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
    // The router reads credentials' public profiles only; they were validated with the config.
    let serving = Boot::load(&args.common)?.serve(Role::Router).await?;
    serving
        .run(|parts| {
            let topology = parts.topology;
            let router = Arc::new(
                route::Router::new(
                    parts.store,
                    Arc::clone(&parts.config),
                    topology.clone(),
                    parts.redis_ready,
                )
                .with_outcomes(parts.outcomes),
            );
            let reloading = Arc::clone(&router);
            let handler =
                impush_runtime::handler(router, |router, delivery, publisher| async move {
                    router.handle(delivery, publisher).await
                });
            Consume {
                queues: vec![(topology.messages_queue(), handler)],
                prefetch: parts.config.amqp.prefetch,
                shutdown_grace: SHUTDOWN_GRACE,
                // Every queue, not only its own: a sender pool that is gone reports nothing.
                watched_queues: topology.all_queues(),
                reload: Some(Box::new(move |new_config| {
                    reloading.reload(new_config);
                    Ok(())
                })),
            }
        })
        .await
}
