#!/usr/bin/env bash
# Installs the ONNX Runtime shared library that `ort` loads at run time (load-dynamic),
# from the pinned PyPI wheel, into a project-local folder. Idempotent: a correct copy is
# kept. The wheel's hash is checked, so a changed upstream file fails loudly.
#
#   scripts/setup-onnxruntime.sh [DEST_DIR]      (default: .local/onnxruntime)
set -euo pipefail

ORT_VERSION=1.31.1
WHEEL=onnxruntime-${ORT_VERSION}-cp311-cp311-manylinux_2_28_x86_64.whl
WHEEL_SHA256=5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f
LIB=libonnxruntime.so.${ORT_VERSION}

root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$root/.local/onnxruntime}
mkdir -p "$dest"

if [ -f "$dest/$LIB" ] && [ -f "$dest/.wheel-sha256" ] && [ "$(cat "$dest/.wheel-sha256")" = "$WHEEL_SHA256" ]; then
  echo "onnxruntime $ORT_VERSION already in $dest"
  exit 0
fi

# shellcheck source=scripts/lib/pinned-wheel.sh
. "$root/scripts/lib/pinned-wheel.sh"
extract_from_wheel onnxruntime "$ORT_VERSION" "$WHEEL" "$WHEEL_SHA256" "$dest" "onnxruntime/capi/$LIB"
echo "$WHEEL_SHA256" > "$dest/.wheel-sha256"
echo "installed onnxruntime $ORT_VERSION into $dest"
