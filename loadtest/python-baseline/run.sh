#!/usr/bin/env bash
# The speed table in ONE run, interleaved and like with like: per round, for each runtime
# (ONNX Runtime, OpenVINO f32, OpenVINO bf16 where the CPU has it) and each model pair
# (fp32, INT8), the model-only ceiling, `imgfeat index`, and the two-process Python
# worker on the SAME runtime and model files, without and with the crop JPEG and boxes
# that `index` also stores (worker.py --crops). All over the same generated corpus
# (imgfeat bench's seeded JPEG q85 copies, 640-1024 px). The machine is shared and
# drifts, so every figure is noted with the 1-minute load before it and the ratios are
# taken within a round.
#
#   loadtest/python-baseline/run.sh            IMAGES=1000 ROUNDS=3 PROFILE=debug|release INT8=int8|int8_vnni
#                                              RUNTIMES="ort openvino-bf16" MODELS="fp32 int8" SHRINK=1
#
# SHRINK=1 adds, per runtime and models, `index` with `[pipeline.decode] shrink_on_load`
# and the Python worker with --shrink --crops (Pillow's draft: the same decode). REGION=1
# adds the same with `crop_at_extractor_scale` (the Python worker with --region too).
#
# The ceiling is the two models alone on pre-decoded tensors, alternating, batch 8, in two
# processes of one thread (the Python pair's shape). imgfeat is taken from
# $CARGO_TARGET_DIR/$PROFILE; build it first (`cargo build [--release] -p imgfeat-cli`).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
images=${IMAGES:-1000}
rounds=${ROUNDS:-3}
profile=${PROFILE:-debug}
imgfeat=${IMGFEAT:-${CARGO_TARGET_DIR:-$root/target}/$profile/imgfeat}
out=${OUT:-$root/.local/speed/$(date -u +%Y%m%dT%H%M%SZ)}
# INT8=int8_vnni measures the 8-bit pair (CPUs with VNNI/AMX only; models/README.md).
det_int8=ssd_mobilenetv2_oidv4_24cls_${INT8:-int8}.toml
bb_int8=efficientnet_lite0_imagenet_${INT8:-int8}.toml

[ -x "$imgfeat" ] || { echo "error: no $imgfeat; build imgfeat-cli ($profile) first" >&2; exit 1; }
scripts/setup-onnxruntime.sh >/dev/null
venv=$root/.local/venv-baseline
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q -r loadtest/python-baseline/requirements.txt
py="$venv/bin/python loadtest/python-baseline/worker.py"

corpus=$root/.local/bench-corpus/s1-n$images
# Generates (or reuses) the corpus; the one end-to-end run it also makes is a warm-up.
"$imgfeat" bench --images "$images" --seed 1 --corpus "$corpus" --e2e-only >/dev/null
mkdir -p "$out"
results=$out/results.tsv
printf 'round\twhat\timages_per_second\tload1_before\n' > "$results"

load1() { cut -d' ' -f1 /proc/loadavg; }
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" | tee -a "$results"; }
index_rate() { sed -n 's/.*throughput \([0-9.]*\) images\/s.*/\1/p'; }
json_rate() { sed -n 's/.*"images_per_second": \([0-9.]*\).*/\1/p'; }

# Runtimes to compare: ONNX Runtime, OpenVINO f32, and OpenVINO bf16 where the CPU has
# bf16 kernels (AMX or AVX512-BF16). Each imgfeat row has a Python row on the same
# runtime and the same model files.
runtimes="ort openvino-f32"
grep -qwE 'amx_bf16|avx512_bf16' /proc/cpuinfo && runtimes="$runtimes openvino-bf16"
runtimes=${RUNTIMES:-$runtimes}
scripts/setup-openvino.sh >/dev/null
runtime_env() {
  case $1 in
    ort) echo "IMGFEAT_PIPELINE__RUNTIME__BACKEND=ort" ;;
    openvino-*) echo "IMGFEAT_PIPELINE__RUNTIME__BACKEND=openvino IMGFEAT_PIPELINE__RUNTIME__PRECISION=${1#openvino-}" ;;
  esac
}
for r in $(seq 1 "$rounds"); do
  for rt in $runtimes; do
    for models in ${MODELS:-fp32 int8}; do
      if [ $models = int8 ]; then det=$det_int8; bb=$bb_int8; else det=ssd_mobilenetv2_oidv4_24cls.toml; bb=efficientnet_lite0_imagenet.toml; fi
      rm -f "$out"/*.sqlite3*
      l=$(load1); v=$($py ceiling "$corpus" --runtime "$rt" --detector $det --backbone $bb | json_rate); record "$r" "ceiling_${models}_$rt" "$v" "$l"
      l=$(load1); v=$(env $(runtime_env "$rt") IMGFEAT_PIPELINE__MODELS__DETECTOR=$det IMGFEAT_PIPELINE__MODELS__BACKBONE=$bb \
        "$imgfeat" --store "$out/index.sqlite3" index "$corpus" --quiet | index_rate); record "$r" "index_${models}_$rt" "$v" "$l"
      l=$(load1); v=$($py index "$corpus" "$out/python.sqlite3" --runtime "$rt" --detector $det --backbone $bb | json_rate); record "$r" "python_${models}_$rt" "$v" "$l"
      l=$(load1); v=$($py index "$corpus" "$out/python-crops.sqlite3" --crops --runtime "$rt" --detector $det --backbone $bb | json_rate); record "$r" "python_crops_${models}_$rt" "$v" "$l"
      if [ "${SHRINK:-0}" = 1 ]; then
        l=$(load1); v=$(env $(runtime_env "$rt") IMGFEAT_PIPELINE__MODELS__DETECTOR=$det IMGFEAT_PIPELINE__MODELS__BACKBONE=$bb IMGFEAT_PIPELINE__DECODE__SHRINK_ON_LOAD=true \
          "$imgfeat" --store "$out/index-shrink.sqlite3" index "$corpus" --quiet | index_rate); record "$r" "index_shrink_${models}_$rt" "$v" "$l"
        l=$(load1); v=$($py index "$corpus" "$out/python-shrink.sqlite3" --crops --shrink --runtime "$rt" --detector $det --backbone $bb | json_rate); record "$r" "python_crops_shrink_${models}_$rt" "$v" "$l"
      fi
      if [ "${REGION:-0}" = 1 ]; then
        l=$(load1); v=$(env $(runtime_env "$rt") IMGFEAT_PIPELINE__MODELS__DETECTOR=$det IMGFEAT_PIPELINE__MODELS__BACKBONE=$bb IMGFEAT_PIPELINE__DECODE__SHRINK_ON_LOAD=true IMGFEAT_PIPELINE__DECODE__CROP_AT_EXTRACTOR_SCALE=true \
          "$imgfeat" --store "$out/index-region.sqlite3" index "$corpus" --quiet | index_rate); record "$r" "index_region_${models}_$rt" "$v" "$l"
        l=$(load1); v=$($py index "$corpus" "$out/python-region.sqlite3" --crops --shrink --region --runtime "$rt" --detector $det --backbone $bb | json_rate); record "$r" "python_crops_region_${models}_$rt" "$v" "$l"
      fi
    done
  done
  rm -f "$out"/*.sqlite3*
done
uptime | tee "$out/uptime.txt"
"$venv/bin/python" - "$results" $runtimes <<'PY'
import csv, sys, collections
rows = collections.defaultdict(dict)
for r in csv.DictReader(open(sys.argv[1]), delimiter="\t"):
    rows[r["round"]][r["what"]] = float(r["images_per_second"])
runtimes = sys.argv[2:]
def show(name, a, b):
    if all(a in v and b in v and v[b] > 0 for v in rows.values()):
        print(f"  {name:44s} " + " / ".join(f"{v[a] / v[b]:.2f}" for v in rows.values()))
print("ratios per round: " + ", ".join(rows))
for m in ("fp32", "int8"):
    for rt in runtimes:
        show(f"index {m} {rt} / python {m} {rt}", f"index_{m}_{rt}", f"python_{m}_{rt}")
        show(f"index {m} {rt} / python+crops {m} {rt}", f"index_{m}_{rt}", f"python_crops_{m}_{rt}")
        if rt != "ort":
            show(f"index {m} {rt} / python {m} ort", f"index_{m}_{rt}", f"python_{m}_ort")
        if m != "fp32":
            show(f"index {m} {rt} / python fp32 ort", f"index_{m}_{rt}", "python_fp32_ort")
        show(f"index {m} {rt} / ceiling {m} {rt}", f"index_{m}_{rt}", f"ceiling_{m}_{rt}")
        show(f"index shrink {m} {rt} / index {m} {rt}", f"index_shrink_{m}_{rt}", f"index_{m}_{rt}")
        show(f"index shrink {m} {rt} / python+crops shrink {m} {rt}", f"index_shrink_{m}_{rt}", f"python_crops_shrink_{m}_{rt}")
        show(f"index shrink {m} {rt} / python {m} ort", f"index_shrink_{m}_{rt}", f"python_{m}_ort")
        if m != "fp32":
            show(f"index shrink {m} {rt} / python fp32 ort", f"index_shrink_{m}_{rt}", "python_fp32_ort")
        show(f"index shrink {m} {rt} / ceiling {m} {rt}", f"index_shrink_{m}_{rt}", f"ceiling_{m}_{rt}")
        show(f"index region {m} {rt} / index shrink {m} {rt}", f"index_region_{m}_{rt}", f"index_shrink_{m}_{rt}")
        show(f"index region {m} {rt} / python+crops region {m} {rt}", f"index_region_{m}_{rt}", f"python_crops_region_{m}_{rt}")
        show(f"index region {m} {rt} / python {m} ort", f"index_region_{m}_{rt}", f"python_{m}_ort")
        if rt != "ort":
            show(f"ceiling {m} {rt} / ceiling {m} ort", f"ceiling_{m}_{rt}", f"ceiling_{m}_ort")
PY
