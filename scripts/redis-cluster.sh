#!/usr/bin/env bash
# A throwaway 3-primary Redis Cluster on loopback for impush's cluster tests and the scale
# benchmark: `start` reuses a healthy cluster or builds one, `stop` shuts it down and
# forgets it. Safe to call from many tests at once (one lock file); never touches the
# shared Redis on 6379. Ports: IMPUSH_REDIS_CLUSTER_PORTS (default "7101 7102 7103");
# IMPUSH_REDIS_CLUSTER_REPLICAS replicas per primary (default 0; the failover tests'
# private clusters have 1); IMPUSH_REDIS_CLUSTER_NODE_TIMEOUT the cluster-node-timeout in
# ms (Redis's default 15000), after which a silent primary's replica takes over.
# `node PORT` starts one node of the cluster again after it died; it rejoins from its
# nodes file (a former primary as a replica of the node that took over).
set -euo pipefail

PORTS=(${IMPUSH_REDIS_CLUSTER_PORTS:-7101 7102 7103})
REPLICAS=${IMPUSH_REDIS_CLUSTER_REPLICAS:-0}
NODE_TIMEOUT=${IMPUSH_REDIS_CLUSTER_NODE_TIMEOUT:-15000}
DIR=${IMPUSH_REDIS_CLUSTER_DIR:-/tmp/impush-redis-cluster}
LOCK="$DIR.lock"

for tool in redis-server redis-cli flock; do
    command -v "$tool" >/dev/null || { echo "redis-cluster.sh: $tool is not installed" >&2; exit 1; }
done

cli() { redis-cli -h 127.0.0.1 -p "$1" "${@:2}"; }

# Healthy: every node answers, sees the cluster as ok, and all 16384 slots are served.
healthy() {
    local port
    for port in "${PORTS[@]}"; do
        local info
        info=$(cli "$port" cluster info 2>/dev/null) || return 1
        grep -q '^cluster_state:ok' <<<"$info" || return 1
        grep -q '^cluster_slots_assigned:16384' <<<"$info" || return 1
        grep -q "^cluster_known_nodes:${#PORTS[@]}" <<<"$info" || return 1
    done
}

start_node() {
    local port=$1
    cli "$port" ping >/dev/null 2>&1 && return 0
    # 9>&-: the daemon must not inherit the lock, or it would hold it for ever.
    redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
        --cluster-config-file "$DIR/nodes-$port.conf" --dir "$DIR" \
        --cluster-node-timeout "$NODE_TIMEOUT" \
        --save "" --appendonly no --daemonize yes \
        --logfile "$DIR/redis-$port.log" --pidfile "$DIR/redis-$port.pid" 9>&-
}

wait_until() {
    local what=$1 check=$2
    for _ in $(seq 1 150); do
        if $check; then return 0; fi
        sleep 0.2
    done
    echo "redis-cluster.sh: $what did not happen; logs in $DIR" >&2
    return 1
}

all_answer() {
    local port
    for port in "${PORTS[@]}"; do cli "$port" ping >/dev/null 2>&1 || return 1; done
}

stop_nodes() {
    local port
    for port in "${PORTS[@]}"; do
        cli "$port" shutdown nosave >/dev/null 2>&1 || true
    done
    rm -rf "$DIR"
}

start() {
    healthy && return 0
    mkdir -p "$DIR"
    local port
    for port in "${PORTS[@]}"; do start_node "$port"; done
    wait_until "all nodes answering" all_answer
    # A cluster left over from an earlier run re-forms by itself from its nodes files.
    if ! wait_until_quiet healthy; then
        # Not formed (fresh nodes) or broken (a node lost its config): build it anew.
        stop_nodes
        mkdir -p "$DIR"
        for port in "${PORTS[@]}"; do start_node "$port"; done
        wait_until "all nodes answering" all_answer
        local nodes=()
        for port in "${PORTS[@]}"; do nodes+=("127.0.0.1:$port"); done
        redis-cli --cluster create "${nodes[@]}" --cluster-replicas "$REPLICAS" --cluster-yes >"$DIR/create.log"
        wait_until "cluster_state:ok on every node" healthy
    fi
}

# Like wait_until, but shorter and silent: used to give a re-forming cluster a moment.
wait_until_quiet() {
    for _ in $(seq 1 15); do
        if "$@"; then return 0; fi
        sleep 0.2
    done
    return 1
}

case "${1:-}" in
    start)
        exec 9>"$LOCK"
        flock 9
        start
        ;;
    stop)
        exec 9>"$LOCK"
        flock 9
        stop_nodes
        ;;
    node)
        [[ -n "${2:-}" ]] || { echo "usage: $0 node PORT" >&2; exit 2; }
        start_node "$2"
        for _ in $(seq 1 150); do cli "$2" ping >/dev/null 2>&1 && exit 0; sleep 0.2; done
        echo "redis-cluster.sh: node $2 did not start; logs in $DIR" >&2
        exit 1
        ;;
    status)
        healthy && echo "ok: ${PORTS[*]}" || { echo "not running"; exit 1; }
        ;;
    *)
        echo "usage: $0 start|stop|status|node PORT" >&2
        exit 2
        ;;
esac
