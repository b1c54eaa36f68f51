#!/usr/bin/env bash
# Everything CI checks, runnable on a fresh machine: installs the pinned ONNX Runtime
# library and the build tools libjpeg-turbo needs, makes sure the local RabbitMQ broker
# is up (the fleet tests use the real one at 127.0.0.1:5672), then format, lints and
# the whole test suite.
#
# CQL store tests run against a real Cassandra/ScyllaDB when IMGFEAT_TEST_CQL=host:port
# is set; otherwise they print SKIPPED lines.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

scripts/setup-onnxruntime.sh
scripts/setup-build-tools.sh
scripts/ensure-rabbitmq.sh
scripts/check-deploy.sh

cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo test --locked --workspace --no-fail-fast
