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

if [ "$(uname -m)" != "x86_64" ] || [ "$(uname -s)" != "Linux" ]; then
  echo "error: this script installs the linux x86_64 wheel; on $(uname -s)/$(uname -m) set IMGFEAT_ORT_LIB to your own libonnxruntime $ORT_VERSION" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The platform and Python tags are explicit so the same wheel is chosen whatever Python
# runs pip; only the shared library inside it is used.
python3 -m pip download --quiet --no-deps --only-binary=:all: \
  --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp \
  -d "$tmp" "onnxruntime==${ORT_VERSION}"
got=$(sha256sum "$tmp/$WHEEL" | cut -d' ' -f1)
if [ "$got" != "$WHEEL_SHA256" ]; then
  echo "error: $WHEEL has sha256 $got, expected $WHEEL_SHA256" >&2
  exit 1
fi
python3 - "$tmp/$WHEEL" "$dest" "$LIB" <<'PY'
import sys, zipfile, shutil, os
wheel, dest, lib = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(f"onnxruntime/capi/{lib}") as src, open(os.path.join(dest, lib + ".part"), "wb") as out:
    shutil.copyfileobj(src, out)
os.replace(os.path.join(dest, lib + ".part"), os.path.join(dest, lib))
PY
echo "$WHEEL_SHA256" > "$dest/.wheel-sha256"
echo "installed onnxruntime $ORT_VERSION into $dest"
