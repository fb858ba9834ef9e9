//! A queue worker's start-up, written once: load the config (or exit 2), log, serve the admin
//! endpoints, start the counters at zero, wait for Redis, declare the topology, watch the
//! config and the queue depths, and consume one queue until shutdown. Each worker's `main`
//! says only what is its own: its role, what it loads before serving (the sender's vendor
//! clients) and the handler it builds from the connected [`Parts`].

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use impush_amqp::{ClientTls, Delivery, Handled, HandlerFn, Publisher, RunOptions, Topology};
use impush_config::Config;
use impush_store::{Endpoint, Store};

use crate::catalog::Role;
use crate::{ApplyFn, CommonArgs, Worker};

/// How long in-flight deliveries may take to finish after a shutdown request, unless the
/// worker says otherwise (the sender waits for its vendor timeout).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// Pause before a `Requeue`d delivery is handed back.
const REQUEUE_DELAY: Duration = Duration::from_millis(500);

/// How often the queue depth gauges are refreshed.
const QUEUE_DEPTH_POLL: Duration = Duration::from_secs(10);

/// The first step: the config is loaded (a mistake ends the process with status 2, see
/// [`CommonArgs::load_config`]), logging is on and the TLS settings are read.
pub struct Boot {
    pub config: Arc<Config>,
    config_path: PathBuf,
    metrics_addr: std::net::SocketAddr,
    amqp_tls: ClientTls,
    redis_tls: ClientTls,
}

impl Boot {
    pub fn load(args: &CommonArgs) -> anyhow::Result<Boot> {
        let config = Arc::new(args.load_config());
        crate::init_logging(&config.log);
        let amqp_tls = config.amqp_tls()?;
        let redis_tls = config.redis_tls()?;
        Ok(Boot {
            config,
            config_path: args.config.clone(),
            metrics_addr: args.metrics_addr,
            amqp_tls,
            redis_tls,
        })
    }

    /// Serves `/metrics`, `/healthz` and `/readyz` (not ready yet) and starts the role's
    /// counters at zero. Metrics recorded before this are lost, so a worker reports what it
    /// loaded (the sender's credential expiries) after it.
    pub async fn serve(self, role: Role) -> anyhow::Result<Serving> {
        let worker = Worker::start(self.metrics_addr).await?;
        crate::catalog::start_counters_at_zero(role, &self.config);
        Ok(Serving { boot: self, worker })
    }
}

/// The admin endpoints are up; nothing is consumed yet.
pub struct Serving {
    boot: Boot,
    worker: Worker,
}

/// What a worker builds its handler from, once Redis answers.
pub struct Parts {
    pub config: Arc<Config>,
    pub store: Store,
    pub topology: Topology,
    /// `/readyz`'s Redis check: the handler clears it while Redis fails and sets it again.
    pub redis_ready: Arc<AtomicBool>,
    /// The push outcomes of `[feedback] push_outcomes` (`feedback.push`): a background task
    /// that publishes batches on a connection of its own, opened at the first batch.
    pub outcomes: impush_amqp::Outcomes,
}

/// The queue(s) a worker consumes and how.
pub struct Consume {
    /// Each queue with its handler; every queue gets its own consumer and connection (a
    /// sender serving several vendors consumes one queue per vendor). The process is ready
    /// for RabbitMQ once every one of them consumes.
    pub queues: Vec<(String, HandlerFn)>,
    pub prefetch: u16,
    /// See [`SHUTDOWN_GRACE`].
    pub shutdown_grace: Duration,
    /// The queues whose depth this worker reports.
    pub watched_queues: Vec<String>,
    /// What to do with a reloaded config; `None`: the worker has nothing to change live.
    pub reload: Option<ApplyFn>,
}

impl Serving {
    /// The config the worker started with.
    pub fn config(&self) -> &Config {
        &self.boot.config
    }

    /// Marks the credentials loaded, waits for Redis, builds the handler with `build`, and
    /// consumes until shutdown. Returns `Ok` once in-flight work has finished (or at once
    /// when shutdown comes before Redis answers).
    pub async fn run(self, build: impl FnOnce(Parts) -> Consume) -> anyhow::Result<()> {
        let Serving { boot, worker } = self;
        let Worker {
            shutdown,
            amqp_ready,
            topology_ready,
            redis_ready,
            credentials_ready,
        } = worker;
        credentials_ready.store(true, Ordering::SeqCst);

        let config = boot.config;
        let redis = &config.redis;
        let redis_endpoint = Endpoint::from_config(redis.cluster, &redis.url, &redis.urls);
        let Some(store) = crate::wait_for("Redis", &shutdown, || {
            Store::connect_to(&redis_endpoint, &boot.redis_tls, &redis.prefix)
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
            boot.amqp_tls.clone(),
            &topology,
            shutdown.clone(),
        );
        let consume = build(Parts {
            config: Arc::clone(&config),
            store,
            topology: topology.clone(),
            redis_ready,
            outcomes,
        });
        if let Some(apply) = consume.reload {
            tokio::spawn(crate::watch_config(
                boot.config_path,
                (*config).clone(),
                apply,
                shutdown.clone(),
            ));
        }
        tokio::spawn(impush_amqp::watch_queue_depths(
            config.amqp.addresses(),
            boot.amqp_tls.clone(),
            topology.clone(),
            consume.watched_queues,
            QUEUE_DEPTH_POLL,
            shutdown.clone(),
        ));
        let consuming: Vec<Arc<AtomicBool>> = if consume.queues.len() == 1 {
            vec![Arc::clone(&amqp_ready)]
        } else {
            let flags: Vec<_> = consume
                .queues
                .iter()
                .map(|_| Arc::new(AtomicBool::new(false)))
                .collect();
            tokio::spawn(all_ready(flags.clone(), amqp_ready, shutdown.clone()));
            flags
        };
        let consumers =
            consume
                .queues
                .into_iter()
                .zip(consuming)
                .map(|((queue, handler), ready)| {
                    impush_amqp::run_consumer(
                        RunOptions {
                            urls: config.amqp.addresses(),
                            tls: boot.amqp_tls.clone(),
                            queue,
                            prefetch: consume.prefetch,
                            topology: topology.clone(),
                            shutdown_grace: consume.shutdown_grace,
                            requeue_delay: REQUEUE_DELAY,
                            ready,
                            topology_ready: Arc::clone(&topology_ready),
                        },
                        handler,
                        shutdown.clone(),
                    )
                });
        futures::future::join_all(consumers).await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Keeps `ready` equal to "every flag is set" until shutdown.
async fn all_ready(
    flags: Vec<Arc<AtomicBool>>,
    ready: Arc<AtomicBool>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut every = tokio::time::interval(READY_POLL);
    while !shutdown.is_cancelled() {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = every.tick() => {}
        }
        let all = flags.iter().all(|f| f.load(Ordering::SeqCst));
        ready.store(all, Ordering::SeqCst);
    }
    ready.store(false, Ordering::SeqCst);
}

/// How often a worker consuming several queues folds their readiness into `/readyz`.
const READY_POLL: Duration = Duration::from_millis(200);

/// The consumer's handler: `handle` called with the worker's shared state for each delivery.
pub fn handler<T, F, Fut>(state: Arc<T>, handle: F) -> HandlerFn
where
    T: Send + Sync + 'static,
    F: Fn(Arc<T>, Delivery, Publisher) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Handled> + Send + 'static,
{
    Arc::new(move |delivery, publisher| Box::pin(handle(Arc::clone(&state), delivery, publisher)))
}
