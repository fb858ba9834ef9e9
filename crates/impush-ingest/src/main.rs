//! impush-ingest: consumes `impush.state` and keeps each device's registration and presence
//! and each user's push settings (quiet hours included) and per-conversation receive
//! options in Redis, last write wins by `at_ms`. Bad events go to
//! `impush.dlq.events` with their reason; the worker keeps going.

mod state;

use std::sync::Arc;

use clap::Parser;
use impush_runtime::catalog::Role;
use impush_runtime::{Boot, CommonArgs, Consume, SHUTDOWN_GRACE};

#[derive(Parser)]
#[command(name = "impush-ingest", version, about = "State events into Redis")]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

/// mimalloc instead of the system allocator: a worker allocates and frees small buffers for
/// every message, and glibc's malloc/free took about a sixth of its CPU in profiles.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Ingest sends nothing: it needs no credentials.
    let serving = Boot::load(&args.common)?.serve(Role::Ingest).await?;
    serving
        .run(|parts| {
            let topology = parts.topology;
            let ingest = Arc::new(state::Ingest {
                store: parts.store,
                queue: topology.state_queue(),
                events_dlq: topology.events_dlq(),
                max_event_bytes: parts.config.amqp.max_event_bytes,
                redis_ready: parts.redis_ready,
            });
            let handler =
                impush_runtime::handler(ingest, |ingest, delivery, publisher| async move {
                    ingest.handle(delivery, publisher).await
                });
            Consume {
                queues: vec![(topology.state_queue(), handler)],
                prefetch: parts.config.amqp.prefetch,
                shutdown_grace: SHUTDOWN_GRACE,
                watched_queues: vec![topology.state_queue(), topology.events_dlq()],
                reload: None,
            }
        })
        .await
}
