//! `impush-sim --config FILE [--listen ADDR] [--no-record] [--latency-ms N]`: the vendor
//! simulators as a process, for the local stack, the demo and the bench. Listens on `[sim] listen` unless told otherwise and
//! exits 0 on SIGTERM or Ctrl-C.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use impush_sim::SimSettings;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(version, about = "impush vendor simulators: APNs and FCM on loopback")]
struct Args {
    /// The impush config file (its `[sim]` section).
    #[arg(long, env = "IMPUSH_CONFIG")]
    config: PathBuf,
    /// Address to listen on; defaults to `[sim] listen`.
    #[arg(long)]
    listen: Option<String>,
    /// Only count accepted pushes (`GET /sim/stats`) instead of keeping each one for
    /// `GET /sim/deliveries`: memory stays flat on long benchmark and soak runs.
    #[arg(long)]
    no_record: bool,
    /// Hold every vendor answer this many milliseconds, as a vendor's round trip over the
    /// internet would (requests wait side by side); 0 answers at once.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let args = Args::parse();
    let config = impush_config::Config::load(&args.config)?;
    let settings = SimSettings {
        record_deliveries: !args.no_record,
        vendor_latency: std::time::Duration::from_millis(args.latency_ms),
        ..SimSettings::from_config(&config)?
    };
    let listen = args.listen.unwrap_or_else(|| config.sim.listen.clone());
    let listener = TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    impush_sim::serve(listener, settings, stop_signal()).await?;
    tracing::info!("impush-sim stopped");
    Ok(())
}

/// Completes on SIGTERM or Ctrl-C.
async fn stop_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot wait for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot wait for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("stopping");
}
