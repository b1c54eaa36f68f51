#!/usr/bin/env bash
# Re-runs the whole INT8 quantization for one or both pairs: calibration and one
# candidate pair per activation calibration method, their accuracy against fp32 on
# held-out photos, the best pair installed as models/*_{PAIR}.onnx (manifests' sha256
# updated), and the golden reference of the installed pair.
#
#   tools/quantize/run.sh [int8|int8_vnni|both]     METHODS=MinMax[,Entropy,...]  METHOD=install this one
#
# The pairs (models/README.md):
#   int8       7-bit weights (reduce_range): the same integers on every x86-64, AVX2 included.
#   int8_vnni  8-bit weights, the input normalisation folded into the first conv and only the
#              backbone's first 2 convs in fp32: only for
#              CPUs whose int8 dot products accumulate in int32 (AVX512-VNNI, AVX-VNNI, AMX);
#              MLAS's AVX2 kernels saturate with 8-bit weights, so it is evaluated and its
#              golden reference written only on such a CPU (kernels.py's probe decides).
#
# Everything but models/ and fixtures/golden_*.json goes to .local/quantize/.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/tools/quantize
venv=$root/.local/venv-quantize
[ -x "$venv/bin/python" ] || python3.11 -m venv "$venv"
"$venv/bin/pip" install -q -r "$here/requirements.txt"
py="$venv/bin/python"
cd "$here"
methods=${METHODS:-MinMax}
pairs=${1:-both}
[ "$pairs" = both ] && pairs="int8 int8_vnni"
for pair in $pairs; do
  work=$root/.local/quantize/$pair
  case $pair in
    int8) flags=() ;;
    int8_vnni)
      # 2 backbone convs in fp32, not 8: 1.29x faster, recall as good (models/README.md).
      flags=(--full-range --fold-normalisation --bb-leading 2)
      if ! $py -c 'import sys, kernels; sys.exit(abs(kernels.saturation_probe() - 1) > 0.01)'; then
        echo "int8_vnni: this CPU's int8 convolutions saturate (no VNNI/AMX): not evaluated here" >&2
        continue
      fi ;;
    *) echo "unknown pair $pair (int8, int8_vnni, both)" >&2; exit 2 ;;
  esac
  $py quantize.py "$work" --methods "$methods" "${flags[@]}"
  $py evaluate.py "$work" --methods "$methods" --json "$work/accuracy.json"
  $py install.py "$work" "$work/accuracy.json" --as "$pair" ${METHOD:+--method "$METHOD"}
  $py make_golden.py --variant "$pair"
done
