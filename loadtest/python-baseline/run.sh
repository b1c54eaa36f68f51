#!/usr/bin/env bash
# The speed table in ONE run, interleaved: per round, the model-only ceiling (fp32 and
# INT8), `imgfeat index` with the fp32 models, with the INT8 models, and the Python
# worker pair, all over the same generated corpus (imgfeat bench's seeded JPEG q85
# copies, 640-1024 px). The machine is shared and drifts, so every figure is noted with
# the 1-minute load before it and the ratios are taken within a round.
#
#   loadtest/python-baseline/run.sh            IMAGES=1000 ROUNDS=3 PROFILE=debug|release INT8=int8|int8_vnni
#
# `python_pair_fp32_crops` is the same pair doing the rest of `index`'s work: the crop
# JPEG (q90) and every box stored beside the code (worker.py --crops).
#
# `index_fp32_wide` is the other thread layout: one worker per model, the detector's
# session on both cores, the backbone's on one, batches of 8 (the default until
# 2026-11-30), against the default of one one-thread copy of each model per core;
# `index_fp32_shared` runs one copy of each model on one shared intra-op pool of two
# threads (ONNX Runtime's global thread pool).
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

for r in $(seq 1 "$rounds"); do
  l=$(load1); v=$($py ceiling "$corpus" | json_rate); record "$r" ceiling_fp32 "$v" "$l"
  l=$(load1); v=$($py ceiling "$corpus" --detector $det_int8 --backbone $bb_int8 | json_rate); record "$r" ceiling_int8 "$v" "$l"
  rm -f "$out"/*.sqlite3*
  l=$(load1); v=$("$imgfeat" --store "$out/fp32.sqlite3" index "$corpus" --quiet | index_rate); record "$r" index_fp32 "$v" "$l"
  l=$(load1); v=$(IMGFEAT_PIPELINE__MODELS__DETECTOR_WORKERS=1 IMGFEAT_PIPELINE__MODELS__EXTRACTOR_WORKERS=1 \
    IMGFEAT_PIPELINE__MODELS__DETECTOR_SESSION__INTRA_THREADS=2 IMGFEAT_PIPELINE__MODELS__EXTRACTOR_SESSION__INTRA_THREADS=1 \
    IMGFEAT_PIPELINE__MODELS__DETECTOR_SESSION__MEMORY_PATTERN=true IMGFEAT_PIPELINE__MODELS__EXTRACTOR_SESSION__MEMORY_PATTERN=true \
    IMGFEAT_PIPELINE__DETECTOR__BATCH__MAX_BATCH=8 IMGFEAT_PIPELINE__EXTRACTOR__BATCH__MAX_BATCH=8 \
    "$imgfeat" --store "$out/wide.sqlite3" index "$corpus" --quiet | index_rate); record "$r" index_fp32_wide "$v" "$l"
  l=$(load1); v=$(IMGFEAT_PIPELINE__MODELS__SHARED_INTRA_THREADS=2 \
    IMGFEAT_PIPELINE__MODELS__DETECTOR_WORKERS=1 IMGFEAT_PIPELINE__MODELS__EXTRACTOR_WORKERS=1 \
    "$imgfeat" --store "$out/shared.sqlite3" index "$corpus" --quiet | index_rate); record "$r" index_fp32_shared "$v" "$l"
  l=$(load1); v=$(IMGFEAT_PIPELINE__MODELS__DETECTOR=$det_int8 IMGFEAT_PIPELINE__MODELS__BACKBONE=$bb_int8 \
    "$imgfeat" --store "$out/int8.sqlite3" index "$corpus" --quiet | index_rate); record "$r" index_int8 "$v" "$l"
  l=$(load1); v=$($py index "$corpus" "$out/python.sqlite3" | json_rate); record "$r" python_pair_fp32 "$v" "$l"
  l=$(load1); v=$($py index "$corpus" "$out/python-crops.sqlite3" --crops | json_rate); record "$r" python_pair_fp32_crops "$v" "$l"
  rm -f "$out"/*.sqlite3*
done
uptime | tee "$out/uptime.txt"
"$venv/bin/python" - "$results" <<'PY'
import csv, sys, collections
rows = collections.defaultdict(dict)
for r in csv.DictReader(open(sys.argv[1]), delimiter="\t"):
    rows[r["round"]][r["what"]] = float(r["images_per_second"])
ratios = [
    ("index fp32 / python pair", "index_fp32", "python_pair_fp32"),
    ("index fp32 / python + crops", "index_fp32", "python_pair_fp32_crops"),
    ("wide fp32 / index fp32", "index_fp32_wide", "index_fp32"),
    ("shared pool fp32 / index fp32", "index_fp32_shared", "index_fp32"),
    ("index int8 / index fp32", "index_int8", "index_fp32"),
    ("index int8 / python pair", "index_int8", "python_pair_fp32"),
    ("index fp32 / ceiling fp32", "index_fp32", "ceiling_fp32"),
    ("index int8 / ceiling int8", "index_int8", "ceiling_int8"),
]
print("ratios per round: " + ", ".join(rows))
for name, a, b in ratios:
    print(f"  {name:28s} " + " / ".join(f"{v[a] / v[b]:.2f}" for v in rows.values()))
PY
