#!/usr/bin/env bash
# The fleet as make bench and make soak run it, sourced by scripts/bench.sh and
# scripts/soak.sh: release binaries, impush-sim counting deliveries instead of keeping them,
# one router and the senders, all under a queue and key prefix of their own (the broker and
# Redis are shared with others), and everything removed again on exit.
#
# FLEET_SENDERS: `one` (the default, the recommended small deployment) runs a single
# `impush-sender --vendor all` serving every vendor queue; `per-vendor` runs one sender
# process per vendor, as a large deployment scales them.
#
# Sets FLEET_DIR, CONFIG, SIM_URL, LOADGEN and the pids in FLEET_PIDS (name=pid).

BIN=${IMPUSH_BIN_DIR:-target/release}
LOADGEN="$BIN/impush-loadgen"
FLEET_DIR=$(mktemp -d -t impush-fleet.XXXXXX)
FLEET_PIDS=()
RUN_ID=${RUN_ID:-b$(date +%s)$$}
export IMPUSH__AMQP__PREFIX=impush-$RUN_ID
export IMPUSH__REDIS__PREFIX=impush-$RUN_ID
export IMPUSH__AMQP__QUEUE_TYPE=${QUEUE_TYPE:-quorum}
# Dedupe and badge records of a bench are worthless after it; let them expire soon.
export IMPUSH__REDIS__DEDUPE_TTL_S=3600
# Deliveries in flight per router and per sender (the config's `amqp.prefetch` and
# `sender.concurrency`); nothing saturates a core at the defaults, so these bound the rate.
export IMPUSH__AMQP__PREFETCH=${FLEET_PREFETCH:-64}
export IMPUSH__SENDER__CONCURRENCY=${FLEET_CONCURRENCY:-64}
export RUST_LOG=${RUST_LOG:-warn}
FLEET_SENDERS=${FLEET_SENDERS:-one}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_url() {
  for _ in $(seq 1 300); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "$1 did not come up; logs in $FLEET_DIR" >&2; return 1
}

fleet_stop() {
  local entry
  for entry in "${FLEET_PIDS[@]}"; do kill -TERM "${entry#*=}" 2>/dev/null || true; done
  for entry in "${FLEET_PIDS[@]}"; do wait "${entry#*=}" 2>/dev/null || true; done
  FLEET_PIDS=()
  if [ -n "${CONFIG:-}" ] && [ -x "$LOADGEN" ]; then
    "$LOADGEN" cleanup --config "$CONFIG" || echo "cleanup of $IMPUSH__AMQP__PREFIX failed" >&2
  fi
}

fleet_start() {
  local sim_port keys
  sim_port=$(free_port)
  SIM_URL="http://127.0.0.1:$sim_port"
  keys="$PWD/deploy/local/keys"
  CONFIG="$FLEET_DIR/impush.toml"
  # The local stack's config, pointed at this run's simulator, with the credentials' rate
  # limits lifted: the bench measures impush, not the vendors' quotas.
  sed -e "s#127.0.0.1:8700#127.0.0.1:$sim_port#g" \
      -e "s#\"keys/#\"$keys/#g" \
      -e '/^vendor = "/a rate_per_s = 1000000' \
      deploy/local/impush.toml >"$CONFIG"

  "$BIN/impush-sim" --config "$CONFIG" --no-record >"$FLEET_DIR/sim.log" 2>&1 &
  FLEET_PIDS+=("sim=$!")
  wait_url "$SIM_URL/readyz"
  local port ports=()
  port=$(free_port)
  "$BIN/impush-router" --config "$CONFIG" --metrics-addr "127.0.0.1:$port" >"$FLEET_DIR/router.log" 2>&1 &
  FLEET_PIDS+=("router=$!"); ports+=("$port")
  local vendors=(all)
  if [ "$FLEET_SENDERS" = per-vendor ]; then
    vendors=(apns fcm huawei xiaomi oppo vivo meizu tpns honor harmony)
  fi
  for vendor in "${vendors[@]}"; do
    port=$(free_port)
    "$BIN/impush-sender" --vendor "$vendor" --config "$CONFIG" --metrics-addr "127.0.0.1:$port" >"$FLEET_DIR/sender-$vendor.log" 2>&1 &
    FLEET_PIDS+=("sender-$vendor=$!"); ports+=("$port")
  done
  for port in "${ports[@]}"; do wait_url "http://127.0.0.1:$port/readyz"; done
}
