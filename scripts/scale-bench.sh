#!/usr/bin/env bash
# The scale-out measurement behind docs/scaling.md: runs the ignored `scale_bench` fleet test,
# which times the same load through 1, 2 and 4 routers + senders on one queue and prints a
# table of throughput, ratios to one process each, and the cores each component used.
# Environment: IMPUSH_BENCH_NOTIFICATIONS (default 6000), IMPUSH_BENCH_REDIS_CLUSTER=1 to run
# on the local Redis Cluster, IMPUSH_BIN_DIR for release binaries (target/release).
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
exec "$CARGO" test -p impush-tests --test scale_e2e --locked -- --ignored --exact scale_bench --nocapture
