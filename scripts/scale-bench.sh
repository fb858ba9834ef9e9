#!/usr/bin/env bash
# The scale-out measurement behind docs/scaling.md: runs the ignored `scale_bench` fleet test
# on the release binaries, which times the same load through 1, 2, 4 and 8 routers + senders
# on one queue, three times interleaved, with impush-sim holding each vendor answer for a
# round trip, and prints a table of throughput (median), ratios to one process each, and the
# cores each component used.
# Environment: IMPUSH_BENCH_LATENCY_MS (vendor round trip, default 40),
# IMPUSH_BENCH_IN_FLIGHT (pushes in flight per sender, default 16), IMPUSH_BENCH_PROCESSES
# (default 1,2,4,8), IMPUSH_BENCH_REPETITIONS (default 3), IMPUSH_BENCH_NOTIFICATIONS (a run's
# load, default 6000), IMPUSH_BENCH_REDIS_CLUSTER=1 to run on the local Redis Cluster,
# IMPUSH_BIN_DIR for other binaries (default: the release build, `make release-bins`).
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
export IMPUSH_BIN_DIR=${IMPUSH_BIN_DIR:-${CARGO_TARGET_DIR:-$PWD/target}/release}
exec "$CARGO" test -p impush-tests --test scale_e2e --locked -- --ignored --exact scale_bench --nocapture
