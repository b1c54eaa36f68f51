#!/usr/bin/env bash
# Everything CI checks, runnable on a fresh machine: installs the pinned ONNX Runtime
# library and the build tools libjpeg-turbo needs, makes sure the local RabbitMQ broker
# is up (the fleet tests use the real one at 127.0.0.1:5672, its Prometheus plugin at
# :15692), checks the deployment files, then format, lints and the whole test suite.
#
# CQL store tests run against a real Cassandra/ScyllaDB when IMGFEAT_TEST_CQL=host:port
# is set; otherwise they print SKIPPED lines.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

scripts/setup-onnxruntime.sh
scripts/setup-openvino.sh
scripts/setup-build-tools.sh
scripts/ensure-rabbitmq.sh
scripts/check-deploy.sh

# The Prometheus server of the package check-deploy.sh unpacked for promtool: the test
# services/detector/tests/prometheus_alerts.rs runs it against a fleet, and with this
# set it fails rather than skips when it cannot.
prometheus=$root/.local/prometheus-deb/usr/bin/prometheus
[ -x "$prometheus" ] || prometheus=$(command -v prometheus || true)
if [ -n "$prometheus" ]; then
  export IMGFEAT_TEST_PROMETHEUS=$prometheus
else
  echo "note: no Prometheus server: services/detector/tests/prometheus_alerts.rs will skip" >&2
fi

cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings
# What scripts/demo.sh builds: the main job alone, without training, evaluation,
# benchmark and service-settings code.
cargo clippy --locked -p imgfeat-cli --bin imgfeat --no-default-features -- -D warnings
cargo test --locked --workspace --no-fail-fast
