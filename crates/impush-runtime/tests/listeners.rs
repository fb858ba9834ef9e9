//! The admin listener (`/metrics`, `/healthz`, `/readyz`) is private unless an operator
//! says otherwise: with no flag, every worker binds it to loopback.

use clap::Parser;
use impush_runtime::CommonArgs;

#[derive(Parser)]
struct Worker {
    #[command(flatten)]
    common: CommonArgs,
}

#[test]
fn the_admin_listener_binds_to_loopback_by_default() {
    let worker = Worker::try_parse_from(["impush-worker"]).unwrap();
    assert!(
        worker.common.metrics_addr.ip().is_loopback(),
        "{}",
        worker.common.metrics_addr
    );
}
