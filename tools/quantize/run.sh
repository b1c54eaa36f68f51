#!/usr/bin/env bash
# Re-runs the whole INT8 quantization: pinned venv, calibration and one candidate pair
# per activation calibration method, their accuracy against fp32 on held-out photos,
# the best pair installed as models/*_int8.onnx (manifests' sha256 updated), and the
# golden reference of the installed pair.
#
#   tools/quantize/run.sh [METHOD]     METHOD: install this one instead of the best
#
# Everything but models/ and fixtures/golden_int8.json goes to .local/quantize/.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/tools/quantize
work=$root/.local/quantize
venv=$root/.local/venv-quantize
[ -x "$venv/bin/python" ] || python3.11 -m venv "$venv"
"$venv/bin/pip" install -q -r "$here/requirements.txt"
py="$venv/bin/python"
cd "$here"
$py quantize.py "$work"
$py evaluate.py "$work" --json "$work/accuracy.json"
$py install.py "$work" "$work/accuracy.json" ${1:+--method "$1"}
$py make_golden.py
