#!/usr/bin/env bash
# Makes sure PostgreSQL, Redis and RabbitMQ answer on their standard local ports, starting any that is
# installed but stopped, and saying exactly how to get any that is missing. Sourced by scripts/up and
# scripts/test; safe to run on its own.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port seconds name
  for _ in $(seq 1 "$2"); do port_open "$1" && return 0; sleep 1; done
  echo "$3 did not come up on 127.0.0.1:$1" >&2
  return 1
}

missing() {
  cat >&2 <<MSG
$1 is not running on 127.0.0.1:$2 and is not installed here. Either install it:
    sudo apt-get install -y postgresql redis-server rabbitmq-server
or run the infrastructure in containers:
    docker compose up -d postgres redis rabbitmq
MSG
  exit 1
}

ensure_postgres() {
  port_open 5432 && return
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL…"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
    wait_port 5432 30 PostgreSQL
  else
    missing PostgreSQL 5432
  fi
}

ensure_redis() {
  port_open 6379 && return
  if command -v redis-server >/dev/null; then
    echo "starting Redis…"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir "$( [ -w /var/lib/redis ] && echo /var/lib/redis || echo /tmp )" --logfile ""
    wait_port 6379 15 Redis
  else
    missing Redis 6379
  fi
}

ensure_rabbitmq() {
  port_open 5672 && return
  if command -v rabbitmq-server >/dev/null; then
    echo "starting RabbitMQ (this takes a few seconds)…"
    rabbitmq-server -detached
    wait_port 5672 90 RabbitMQ
  else
    missing RabbitMQ 5672
  fi
}

# The management API provisions each subgraph's broker user (topic permissions); it ships with RabbitMQ.
ensure_rabbitmq_management() {
  port_open 15672 && return
  if command -v rabbitmq-plugins >/dev/null; then
    echo "enabling RabbitMQ's management plugin…"
    rabbitmq-plugins enable --quiet rabbitmq_management >/dev/null
    wait_port 15672 60 "RabbitMQ management"
  else
    echo "RabbitMQ's management API (15672) is not reachable: subgraphs will share the broker's admin user, on the default vhost the tests use too" >&2
  fi
}

ensure_postgres
ensure_redis
ensure_rabbitmq
ensure_rabbitmq_management
echo "PostgreSQL, Redis and RabbitMQ are up."
