#!/usr/bin/env bash
# make bench, the end-to-end part: on the shared RabbitMQ and Redis, in one run, repeated
# BENCH_REPS times (default 2), interleaved so that load from others hits every figure alike:
#   relay   the bare broker relay with the fleet's message size and queue type (the reference)
#   c2c     C2C messages to offline iOS devices (APNs, with badges)
#   group   group messages to 1,000 members across the eight vendors, half of them offline
#   mixed   C2C messages to offline devices of all eight vendors
# each stream first as fast as possible, then at half that rate for latency. Each flat-out
# run also reads the CPU time (user + system, /proc/<pid>/stat) of every worker, the broker
# (beam.smp), Redis, the simulator and the load generator before and after, divided by the
# notifications delivered. Writes benches/results/<date>.csv, .md (the rate table and the CPU
# table) and .png, and `top` samples of the fastest runs (<date>-top.txt). Needs the release
# binaries (make bench builds them). FLEET_SENDERS picks the sender layout (scripts/fleet.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

REPS=${BENCH_REPS:-2}
USERS=${BENCH_USERS:-20000}
C2C_MESSAGES=${BENCH_C2C_MESSAGES:-30000}
GROUP_MESSAGES=${BENCH_GROUP_MESSAGES:-60}
RELAY_MESSAGES=${BENCH_RELAY_MESSAGES:-60000}
# Seconds each latency run lasts at its offered rate.
RATE_SECONDS=${BENCH_RATE_SECONDS:-15}
QUEUE_TYPE=${QUEUE_TYPE:-quorum}
export QUEUE_TYPE

source scripts/fleet.sh
trap 'fleet_stop; rm -rf "$FLEET_DIR"' EXIT

DATE=$(date -u +%Y-%m-%dT%H%M)
OUT=${BENCH_OUT:-benches/results}
mkdir -p "$OUT"
RESULTS="$FLEET_DIR/results.jsonl"
TOP="$OUT/$DATE-top.txt"
: >"$TOP"

fleet_start
echo "fleet up (prefix $IMPUSH__AMQP__PREFIX, $QUEUE_TYPE queues, simulator $SIM_URL)"
"$LOADGEN" register --config "$CONFIG" --users "$USERS"

# The processes whose CPU time each flat-out run reports, as `--cpu name=pid`: the fleet's,
# and the broker and Redis found by the port they listen on (other brokers may run here).
listener_pid() { ss -Hltnp "sport = :$1" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2; }
cpu_args() {
  CPU_ARGS=(--cpu loadgen=self)
  local entry service pid
  for entry in "${FLEET_PIDS[@]}"; do CPU_ARGS+=(--cpu "$entry"); done
  for service in rabbitmq=5672 redis=6379; do
    pid=$(listener_pid "${service#*=}" || true)
    if [ -n "$pid" ]; then CPU_ARGS+=(--cpu "${service%=*}=$pid"); else echo "no process listens on ${service#*=}; its CPU is left out" >&2; fi
  done
}
cpu_args

# CPU of every process, sampled over 3 s while the fleet runs flat out.
sample_top() {
  { echo "== $1"; top -b -n 2 -d 3 -w 200 | awk '/^top -/{n++} n==2' | head -25; } >>"$TOP" 2>&1 &
  TOP_PID=$!
}

# run NAME REP KIND MESSAGES [loadgen args...]: as fast as possible, then at half that rate.
run() {
  local name=$1 rep=$2 kind=$3 messages=$4; shift 4
  sample_top "$name rep $rep, as fast as possible"
  local line rate count
  line=$("$LOADGEN" run --config "$CONFIG" --users "$USERS" --sim "$SIM_URL" --name "$name" \
    --kind "$kind" --messages "$messages" --rep "$rep" --out "$RESULTS" "${CPU_ARGS[@]}" "$@")
  wait "$TOP_PID" || true
  rate=$(python3 -c 'import json,sys; print(max(1.0, json.loads(sys.argv[1])["messages_per_s"] / 2))' "$line")
  count=$(python3 -c "import sys; print(max(10, int(float(sys.argv[1]) * $RATE_SECONDS)))" "$rate")
  "$LOADGEN" run --config "$CONFIG" --users "$USERS" --sim "$SIM_URL" --name "$name" \
    --kind "$kind" --messages "$count" --rate "$rate" --rep "$rep" --out "$RESULTS" "$@" >/dev/null
}

for rep in $(seq 1 "$REPS"); do
  echo "== repetition $rep of $REPS"
  "$LOADGEN" relay --config "$CONFIG" --messages "$RELAY_MESSAGES" --rep "$rep" --out "$RESULTS" \
    --cpu loadgen=self --cpu "rabbitmq=$(listener_pid 5672)" >/dev/null
  run c2c "$rep" c2c "$C2C_MESSAGES" --to apns
  run group "$rep" group "$GROUP_MESSAGES" --group-size 1000
  run mixed "$rep" c2c "$C2C_MESSAGES"
done

# c2c-outcomes: the c2c stream again with push outcomes (`feedback.push`) switched on for
# the load generator's app, in a fleet of its own; beside the c2c row it shows what the
# outcome batches cost in the workers (BENCH_OUTCOMES=0 leaves it out). No queue is bound
# to `feedback.push` here, so the broker drops the batches: its cost of keeping them (one
# message per batch of up to `feedback.batch_max` outcomes) is not in the figure.
if [ "${BENCH_OUTCOMES:-1}" != 0 ]; then
  fleet_stop
  export IMPUSH__FEEDBACK__PUSH_OUTCOMES="[1400000900]"
  fleet_start
  "$LOADGEN" register --config "$CONFIG" --users "$USERS"
  cpu_args
  for rep in $(seq 1 "$REPS"); do
    echo "== c2c with push outcomes, repetition $rep of $REPS"
    run c2c-outcomes "$rep" c2c "$C2C_MESSAGES" --to apns
  done
fi

rabbitmq=$(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null || echo unknown)
"$LOADGEN" report --results "$RESULTS" --csv "$OUT/$DATE.csv" --png "$OUT/$DATE.png" \
  --title "impush end to end, $DATE UTC: $(nproc) cores, RabbitMQ ${rabbitmq%%-*}, $QUEUE_TYPE queues, $REPS repetitions" \
  --context "date=$DATE" --context "cores=$(nproc)" --context "rabbitmq=${rabbitmq%%-*}" \
  --context "queue_type=$QUEUE_TYPE" --context "senders=$FLEET_SENDERS" \
  --context "commit=$(git rev-parse --short HEAD)" | tee "$OUT/$DATE.md"
echo "wrote $OUT/$DATE.csv, $OUT/$DATE.md, $OUT/$DATE.png and $TOP"
