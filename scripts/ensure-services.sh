#!/usr/bin/env bash
# Makes sure RabbitMQ and Redis answer on loopback, installing them from Debian's packages
# and starting them when they are absent. Safe to run again and again.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && exec 3>&- ; }

apt_updated=""
install() {
  if [ -z "$apt_updated" ]; then
    as_root apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

if ! port_open 6379; then
  have redis-server || install redis-server
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  echo "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 50); do port_open 6379 && break; sleep 0.2; done
fi
port_open 6379 || { echo "Redis did not start on 127.0.0.1:6379" >&2; exit 1; }

if ! port_open 5672; then
  have rabbitmq-server || install rabbitmq-server
  echo "starting RabbitMQ"
  rabbitmq-server -detached
  rabbitmqctl await_startup >/dev/null
fi
for _ in $(seq 1 100); do port_open 5672 && break; sleep 0.3; done
port_open 5672 || { echo "RabbitMQ did not start on 127.0.0.1:5672" >&2; exit 1; }
echo "RabbitMQ and Redis are up"
