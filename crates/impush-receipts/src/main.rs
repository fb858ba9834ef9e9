//! impush-receipts: serves `POST /receipts/<vendor>/<business_id>` on `[receipts] listen`
//! (the vendors' delivery receipts; see the library's docs), and `/metrics`, `/healthz`,
//! `/readyz` on `--metrics-addr`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context;
use clap::Parser;
use impush_amqp::{Outcomes, Topology};
use impush_receipts::formats::{RECEIPT_VENDORS, Rejection, Status};
use impush_receipts::server::{self, FeedbackPublisher, Receipts};
use impush_runtime::CommonArgs;
use impush_store::{Endpoint, Store};

#[derive(Parser)]
#[command(
    name = "impush-receipts",
    version,
    about = "Vendor delivery receipts into push outcomes and pruned tokens"
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main]
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
    let checks = server::checks(&config)?;
    for (business_id, credential) in &config.credentials {
        if RECEIPT_VENDORS.contains(&credential.vendor) && !checks.contains_key(business_id) {
            tracing::warn!(
                business_id,
                "no [credentials.receipt] for this credential: its receipts are taken unchecked"
            );
        }
    }
    credentials_ready.store(true, Ordering::SeqCst);
    start_counters_at_zero();

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

    // The exchange must exist before anything is published to it.
    let topology = Topology::new(&config.amqp);
    let urls = config.amqp.addresses();
    let Some(connection) = impush_runtime::wait_for("RabbitMQ", &shutdown, || {
        impush_amqp::connect_any(&urls, &amqp_tls)
    })
    .await
    else {
        return Ok(());
    };
    amqp_ready.store(true, Ordering::SeqCst);
    let channel = connection.create_channel().await?;
    topology.declare(&channel).await?;
    topology_ready.store(true, Ordering::SeqCst);
    drop(channel);
    drop(connection);

    let receipts = Arc::new(Receipts {
        outcomes: Outcomes::start(
            &config.feedback,
            urls.clone(),
            amqp_tls.clone(),
            &topology,
            shutdown.clone(),
        ),
        feedback: FeedbackPublisher::new(urls, amqp_tls, &topology),
        checks,
        store,
        config: Arc::clone(&config),
    });
    let listener = tokio::net::TcpListener::bind(&config.receipts.listen)
        .await
        .with_context(|| format!("binding [receipts] listen {}", config.receipts.listen))?;
    tracing::info!(listen = %listener.local_addr()?, "taking receipts");
    let stop = shutdown.clone();
    axum::serve(listener, server::router(receipts))
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await?;
    tracing::info!("stopped");
    Ok(())
}

/// Every `impush_receipts_total` series exists from the start, so the first receipt of a
/// kind shows in `increase()`.
fn start_counters_at_zero() {
    let statuses = [
        Status::Arrived,
        Status::Clicked,
        Status::TokenInvalid,
        Status::Other,
    ]
    .map(Status::label)
    .into_iter()
    .chain([
        Rejection::BadSignature.label(),
        Rejection::Malformed(String::new()).label(),
        server::FAILED,
    ]);
    for status in statuses {
        for vendor in RECEIPT_VENDORS {
            let vendor = impush_core::vendor::name(vendor);
            metrics::counter!("impush_receipts_total", "vendor" => vendor, "status" => status)
                .increment(0);
        }
    }
    for result in ["published", "dropped"] {
        metrics::counter!("impush_push_outcomes_total", "result" => result).increment(0);
    }
}
