//! What every impush worker process shares: the common flags, logging, the admin listener
//! (`/metrics`, `/healthz`, `/readyz`) and the shutdown signal.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
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
    pub fn load_config(&self) -> anyhow::Result<impush_config::Config> {
        impush_config::Config::load(&self.config)
            .with_context(|| format!("loading {}", self.config.display()))
    }
}

/// Logs as JSON lines when `IMPUSH_LOG_FORMAT=json`, human-readable otherwise; the level
/// from `RUST_LOG` (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = std::env::var("IMPUSH_LOG_FORMAT").is_ok_and(|f| f == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
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

/// What a queue worker (needing RabbitMQ and Redis) starts with: the shutdown signal, its
/// two readiness flags, and the admin endpoints already serving them.
pub struct Worker {
    pub shutdown: CancellationToken,
    pub amqp_ready: Arc<AtomicBool>,
    pub redis_ready: Arc<AtomicBool>,
}

impl Worker {
    pub async fn start(metrics_addr: SocketAddr) -> anyhow::Result<Worker> {
        let shutdown = shutdown_on_signal();
        let amqp_ready = Arc::new(AtomicBool::new(false));
        let redis_ready = Arc::new(AtomicBool::new(false));
        let readiness = Readiness::new(vec![
            ("rabbitmq", Arc::clone(&amqp_ready)),
            ("redis", Arc::clone(&redis_ready)),
        ]);
        serve_admin(metrics_addr, readiness, shutdown.clone()).await?;
        Ok(Worker {
            shutdown,
            amqp_ready,
            redis_ready,
        })
    }
}

/// Installs the Prometheus recorder and serves the admin endpoints; returns the bound
/// address (useful with port 0).
pub async fn serve_admin(
    addr: SocketAddr,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the admin listener on {addr}"))?;
    let bound = listener.local_addr()?;
    let app = admin_router(handle, readiness);
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

fn admin_router(handle: PrometheusHandle, readiness: Readiness) -> Router {
    Router::new()
        .route("/metrics", get(move || std::future::ready(handle.render())))
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

/// Cancelled on SIGTERM or SIGINT.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested: finishing in-flight work");
        trigger.cancel();
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
