#!/usr/bin/env bash
# Starts the local RabbitMQ broker if it is not answering, and waits until it does.
set -euo pipefail
if ! command -v rabbitmqctl >/dev/null; then
  echo "error: RabbitMQ is not installed; on Debian: apt-get install -y rabbitmq-server" >&2
  exit 1
fi
if rabbitmqctl -q await_startup --timeout 5 >/dev/null 2>&1; then
  exit 0
fi
echo "starting RabbitMQ"
rabbitmq-server -detached >/dev/null 2>&1 || true
rabbitmqctl -q await_startup --timeout 120
