//! What every impush worker process shares: the common flags, logging, the admin listener
//! (`/metrics`, `/healthz`, `/readyz`), the metrics catalogue, configuration reloads, the
//! shutdown signal, and the queue worker's whole start-up ([`Boot`]).

pub mod catalog;
mod reload;
mod worker;

pub use reload::{ApplyFn, watch_config};
pub use worker::{Boot, Consume, Parts, SHUTDOWN_GRACE, Serving, handler};

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

/// Flags every worker takes.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// The impush config file.
    #[arg(
        long,
        env = "IMPUSH_CONFIG",
        default_value = "deploy/local/impush.toml"
    )]
    pub config: PathBuf,
    /// Where `/metrics`, `/healthz` and `/readyz` listen (loopback by default, so several
    /// workers can run side by side with different ports).
    #[arg(long, env = "IMPUSH_METRICS_ADDR", default_value = "127.0.0.1:0")]
    pub metrics_addr: SocketAddr,
}

impl CommonArgs {
    /// The config, or the process ends here: a config mistake is printed as one message
    /// naming the file, the field or the environment variable, and the worker exits with
    /// status 2, without a backtrace even under `RUST_BACKTRACE=1` (the mistake is the
    /// operator's to fix, not a bug whose stack matters).
    pub fn load_config(&self) -> impush_config::Config {
        match impush_config::Config::load(&self.config) {
            Ok(config) => config,
            Err(err) => exit_on_config_error(&self.config, &err),
        }
    }
}

/// Prints `err` (about the config file at `path`) on standard error and exits with status 2.
pub fn exit_on_config_error(path: &std::path::Path, err: &dyn std::fmt::Display) -> ! {
    let program = std::env::args()
        .next()
        .and_then(|arg0| {
            std::path::Path::new(&arg0)
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "impush".to_owned());
    // A closed standard error must not turn a config error into a panic.
    let _ = writeln!(
        std::io::stderr(),
        "{program}: loading {}: {err}",
        path.display()
    );
    std::process::exit(2)
}

/// Logs to standard error in the configured format (`[log] format`, or the environment's
/// `IMPUSH__LOG__FORMAT`: `pretty` or `json`, one object a line with the span fields —
/// msg_id, vendor, business_id — on every line about a push); the level from `RUST_LOG`
/// when set, else `[log] level`. Colour only when standard error is a terminal.
///
/// A log line that cannot be written (standard error closed, a full pipe) is dropped: the
/// subscriber's own report of the failure would go to the same broken standard error
/// through `eprintln!`, which panics, and a panic in the signal task left SIGTERM ignored.
pub fn init_logging(config: &impush_config::LogConfig) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .log_internal_errors(false)
        .with_writer(std::io::stderr);
    match config.format {
        impush_config::LogFormat::Json => builder.json().with_current_span(true).init(),
        impush_config::LogFormat::Pretty => builder.init(),
    }
}

/// Readiness: set by the parts of a worker that must be up before it takes work.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Arc<Vec<(&'static str, Arc<AtomicBool>)>>,
}

impl Readiness {
    pub fn new(checks: Vec<(&'static str, Arc<AtomicBool>)>) -> Readiness {
        Readiness {
            checks: Arc::new(checks),
        }
    }

    /// The names of the checks not yet passing.
    pub fn failing(&self) -> Vec<&'static str> {
        self.checks
            .iter()
            .filter(|(_, ok)| !ok.load(Ordering::SeqCst))
            .map(|(name, _)| *name)
            .collect()
    }
}

/// What a queue worker starts with: the shutdown signal, its readiness flags, and the admin
/// endpoints already serving them. `/readyz` answers 200 once all four hold: connected to
/// RabbitMQ and consuming, topology declared, Redis reachable, credentials loaded.
pub struct Worker {
    pub shutdown: CancellationToken,
    pub amqp_ready: Arc<AtomicBool>,
    pub topology_ready: Arc<AtomicBool>,
    pub redis_ready: Arc<AtomicBool>,
    pub credentials_ready: Arc<AtomicBool>,
}

impl Worker {
    pub async fn start(metrics_addr: SocketAddr) -> anyhow::Result<Worker> {
        let shutdown = shutdown_on_signal();
        let flag = || Arc::new(AtomicBool::new(false));
        let (amqp_ready, topology_ready, redis_ready, credentials_ready) =
            (flag(), flag(), flag(), flag());
        let readiness = Readiness::new(vec![
            ("rabbitmq", Arc::clone(&amqp_ready)),
            ("topology", Arc::clone(&topology_ready)),
            ("redis", Arc::clone(&redis_ready)),
            ("credentials", Arc::clone(&credentials_ready)),
        ]);
        serve_admin(metrics_addr, readiness, shutdown.clone()).await?;
        Ok(Worker {
            shutdown,
            amqp_ready,
            topology_ready,
            redis_ready,
            credentials_ready,
        })
    }
}

/// Histogram buckets of the `_seconds` metrics: from a fast vendor answer (a few ms) to a
/// push that waited in the retry ladder (minutes).
const SECONDS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
];

/// How often the recorder folds the histogram samples recorded since the last pass into
/// its buckets (the exporter's own default upkeep period).
pub const METRICS_UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The Prometheus recorder every worker installs, its `_seconds` histograms bucketed from a
/// few milliseconds to half an hour.
pub fn metrics_builder() -> anyhow::Result<PrometheusBuilder> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .context("histogram buckets")
}

/// Runs the recorder's upkeep every [`METRICS_UPKEEP_EVERY`] until shutdown. A histogram
/// keeps each recorded sample until upkeep or a scrape folds it into the buckets, so a
/// worker nobody scrapes would otherwise grow by every sample it ever recorded.
pub async fn run_metrics_upkeep(handle: PrometheusHandle, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(METRICS_UPKEEP_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => handle.run_upkeep(),
        }
    }
}

/// Installs the Prometheus recorder with its upkeep and serves the admin endpoints; returns
/// the bound address (useful with port 0).
pub async fn serve_admin(
    addr: SocketAddr,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let handle = metrics_builder()?
        .install_recorder()
        .context("installing the metrics recorder")?;
    tokio::spawn(run_metrics_upkeep(handle.clone(), shutdown.clone()));
    catalog::describe_all();
    let process = metrics_process::Collector::default();
    process.describe();
    metrics::gauge!("impush_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the admin listener on {addr}"))?;
    let bound = listener.local_addr()?;
    let app = admin_router(handle, process, readiness);
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "admin listener failed");
        }
    });
    tracing::info!(addr = %bound, "admin endpoints: /metrics /healthz /readyz");
    Ok(bound)
}

fn admin_router(
    handle: PrometheusHandle,
    process: metrics_process::Collector,
    readiness: Readiness,
) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || {
                process.collect();
                std::future::ready(handle.render())
            }),
        )
        .route("/healthz", get(|| std::future::ready("ok\n")))
        .route(
            "/readyz",
            get(move || {
                let failing = readiness.failing();
                std::future::ready(if failing.is_empty() {
                    (StatusCode::OK, "ready\n".to_owned())
                } else {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("not ready: {}\n", failing.join(", ")),
                    )
                })
            }),
        )
}

/// Cancelled on SIGTERM or SIGINT. The token is cancelled before anything is logged, so
/// nothing the log writer does can keep the worker from stopping.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        trigger.cancel();
        tracing::info!("shutdown requested: finishing in-flight work");
    });
    token
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

/// Calls `attempt` until it succeeds, with backoff (200 ms doubling to 10 s), logging each
/// failure: a worker started before RabbitMQ or Redis waits for it instead of crash-looping.
/// `None` when shutdown was requested first.
pub async fn wait_for<T, E, F, Fut>(
    what: &str,
    shutdown: &CancellationToken,
    mut attempt: F,
) -> Option<T>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut pause = std::time::Duration::from_millis(200);
    loop {
        match attempt().await {
            Ok(value) => return Some(value),
            Err(err) => {
                tracing::warn!(error = %err, retry_in_ms = pause.as_millis() as u64, "{what} unavailable");
                tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(std::time::Duration::from_secs(10));
            }
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
