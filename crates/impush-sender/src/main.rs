//! impush-sender --vendor V: consumes `impush.push.<vendor>` with bounded concurrency and
//! sends each job through the vendor's client. `--vendor apns,fcm` or `--vendor all` serves
//! several vendors' queues from one process: each keeps its own consumer, concurrency,
//! clients and limits, and they share the process's Redis connection and event loop (the
//! small deployment; one process per vendor scales each on its own). Every answer is classified: delivered
//! (recorded for deduplication), retry (back through the delay ladder, honouring
//! Retry-After), invalid token (registration pruned, `feedback.token` published) or rejected
//! (dead-lettered with its reason). Expired jobs are dropped, never delivered late.

mod limits;
mod send;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use impush_core::vendor;
use impush_runtime::catalog::Role;
use impush_runtime::{Boot, CommonArgs, Consume};
use impush_vendors::VendorClients;

#[derive(Parser)]
#[command(name = "impush-sender", version, about = "Push jobs to vendors")]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// The vendor(s) this process sends to, in lower case: one (`apns`), several
    /// comma-separated (`apns,fcm`) or `all`; an unknown name is an error listing them all.
    #[arg(long, env = "IMPUSH_VENDOR")]
    vendor: String,
}

/// The vendors of `--vendor`: one name, a comma-separated list, or `all`; in the order
/// given, each once.
fn parse_vendors(text: &str) -> anyhow::Result<Vec<impush_core::Vendor>> {
    if text.trim() == "all" {
        return Ok(vendor::ALL.to_vec());
    }
    let mut vendors = Vec::new();
    for name in text.split(',').map(str::trim) {
        let parsed = vendor::parse(name).with_context(|| {
            format!(
                "unknown vendor {name:?}; expected one of {} (comma-separated) or all",
                vendor::ALL.map(vendor::name).join(", ")
            )
        })?;
        if !vendors.contains(&parsed) {
            vendors.push(parsed);
        }
    }
    Ok(vendors)
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
    let vendors = parse_vendors(&args.vendor)?;
    let boot = Boot::load(&args.common)?;
    // A malformed credential stops the start with an error naming it, not a failure per push.
    let clients = load_clients(&boot.config, &vendors)?;
    let mut vendor_roles = vendors.iter().map(|v| Role::Sender(*v));
    let first = vendor_roles.next().context("--vendor names no vendor")?;
    let serving = boot.serve(first).await?;
    for role in vendor_roles {
        impush_runtime::catalog::start_counters_at_zero(role, serving.config());
    }
    for (vendor, clients) in &clients {
        report_expiries(*vendor, clients);
    }
    serving
        .run(|parts| {
            let config = parts.config;
            let topology = parts.topology;
            let senders: Vec<Arc<send::Sender>> = clients
                .into_iter()
                .map(|(vendor, clients)| {
                    Arc::new(
                        send::Sender::new(
                            vendor,
                            parts.store.clone(),
                            clients,
                            Arc::clone(&config),
                            topology.clone(),
                            Arc::clone(&parts.redis_ready),
                        )
                        .with_outcomes(parts.outcomes.clone()),
                    )
                })
                .collect();
            let reloading = senders.clone();
            let prefetch = u16::try_from(config.sender.concurrency.max(1)).unwrap_or(u16::MAX);
            let queues = senders
                .into_iter()
                .map(|sender| {
                    let vendor = sender.vendor();
                    tracing::info!(
                        vendor = vendor::name(vendor),
                        concurrency = prefetch,
                        "sender starting"
                    );
                    let handler =
                        impush_runtime::handler(sender, |sender, delivery, publisher| async move {
                            sender.handle(delivery, publisher).await
                        });
                    (topology.push_queue(vendor), handler)
                })
                .collect();
            Consume {
                queues,
                prefetch,
                shutdown_grace: Duration::from_millis(config.sender.request_timeout_ms + 5_000),
                watched_queues: vendors
                    .iter()
                    .flat_map(|v| topology.vendor_queues(*v))
                    .collect(),
                reload: Some(Box::new(move |new_config| {
                    // A reload that breaks a credential is refused whole: the running clients stay.
                    let vendors: Vec<_> = reloading.iter().map(|s| s.vendor()).collect();
                    let clients =
                        load_clients(&new_config, &vendors).map_err(|e| format!("{e:#}"))?;
                    for (sender, (vendor, clients)) in reloading.iter().zip(clients) {
                        report_expiries(vendor, &clients);
                        sender.reload(new_config.clone(), clients);
                    }
                    Ok(())
                })),
            }
        })
        .await
}

/// The clients of each vendor's credentials; the first vendor whose credentials do not load
/// fails the whole.
fn load_clients(
    config: &impush_config::Config,
    vendors: &[impush_core::Vendor],
) -> anyhow::Result<Vec<(impush_core::Vendor, VendorClients)>> {
    vendors
        .iter()
        .map(|vendor| {
            VendorClients::from_config(config, *vendor)
                .map(|clients| (*vendor, clients))
                .with_context(|| format!("loading the {} credentials", vendor::name(*vendor)))
        })
        .collect()
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use impush_core::Vendor;

    #[test]
    fn one_process_serves_one_vendor_a_list_or_all_of_them() {
        assert_eq!(parse_vendors("apns").unwrap(), vec![Vendor::Apns]);
        assert_eq!(
            parse_vendors("apns, fcm,apns").unwrap(),
            vec![Vendor::Apns, Vendor::Fcm]
        );
        assert_eq!(parse_vendors("all").unwrap(), vendor::ALL.to_vec());
        let err = parse_vendors("apns,nokia").unwrap_err().to_string();
        assert!(
            err.contains("\"nokia\"") && err.contains("harmony"),
            "{err}"
        );
    }
}
