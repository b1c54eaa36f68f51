#!/usr/bin/env bash
# Starts the local RabbitMQ broker if it is not answering, and waits until it does; then
# makes sure its rabbitmq_prometheus plugin is on (metrics on :15692, which
# services/detector/tests/prometheus_alerts.rs scrapes, as docker/prometheus.yml's
# rabbitmq jobs do). Enabling an enabled plugin changes nothing.
set -euo pipefail
if ! command -v rabbitmqctl >/dev/null; then
  echo "error: RabbitMQ is not installed; on Debian: apt-get install -y rabbitmq-server" >&2
  exit 1
fi
if ! rabbitmqctl -q await_startup --timeout 5 >/dev/null 2>&1; then
  echo "starting RabbitMQ"
  rabbitmq-server -detached >/dev/null 2>&1 || true
  rabbitmqctl -q await_startup --timeout 120
fi
rabbitmq-plugins -q enable rabbitmq_prometheus >/dev/null
