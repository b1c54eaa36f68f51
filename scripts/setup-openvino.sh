#!/usr/bin/env bash
# Installs the OpenVINO libraries that `[pipeline.runtime] backend = "openvino"` loads
# at run time (the `openvino` crate's runtime linking), from the pinned PyPI wheel, into
# a project-local folder laid out as the crate's finder expects
# (DEST/runtime/lib/intel64/libopenvino_c.so). Only what the CPU plugin needs to run an
# ONNX file is kept (~100 MB of the wheel's 200). Idempotent; the wheel's hash is
# checked, so a changed upstream file fails loudly. ONNX Runtime stays the default:
# nothing else needs this.
#
#   scripts/setup-openvino.sh [DEST_DIR]      (default: .local/openvino)
set -euo pipefail

OV_VERSION=2026.4.1
WHEEL=openvino-${OV_VERSION}-22982-cp311-cp311-manylinux_2_28_x86_64.whl
WHEEL_SHA256=2d22b1da03f7caf74df30e9f6417d0ab2f637e4a38e08e1dcd294d2c37407aaf
# The C API, the core, the CPU plugin, the ONNX and IR readers, and TBB/hwloc they load.
LIBS="libopenvino_c.so.2641 libopenvino.so.2641 libopenvino_intel_cpu_plugin.so
libopenvino_onnx_frontend.so.2641 libopenvino_ir_frontend.so.2641 libtbb.so.12
libtbbmalloc.so.2 libtbbbind_2_5.so.3 libhwloc.so.15"

root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$root/.local/openvino}
libdir=$dest/runtime/lib/intel64
mkdir -p "$libdir"

if [ -f "$libdir/libopenvino_c.so" ] && [ -f "$dest/.wheel-sha256" ] && [ "$(cat "$dest/.wheel-sha256")" = "$WHEEL_SHA256" ]; then
  echo "openvino $OV_VERSION already in $dest"
  exit 0
fi

# shellcheck source=scripts/lib/pinned-wheel.sh
. "$root/scripts/lib/pinned-wheel.sh"
# shellcheck disable=SC2086 # LIBS is a list of names
extract_from_wheel openvino "$OV_VERSION" "$WHEEL" "$WHEEL_SHA256" "$libdir" $(printf 'openvino/libs/%s ' $LIBS)
# The unversioned name is the one the crate's finder looks for.
ln -sf libopenvino_c.so.2641 "$libdir/libopenvino_c.so"
echo "$WHEEL_SHA256" > "$dest/.wheel-sha256"
echo "installed openvino $OV_VERSION into $dest"
