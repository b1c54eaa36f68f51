#!/usr/bin/env bash
# The main job on the embedded default (no broker, no database server): installs the
# pinned ONNX Runtime library and build tools, builds imgfeat, indexes the photos shipped in the repo
# into a local SQLite file, then shows one result and its nearest neighbours.
#
#   scripts/demo.sh [DIR]      (default: fixtures/photos)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
dir=${1:-fixtures/photos}
# The CLI's default store, so that the commands printed at the end (and any `imgfeat`
# command run from this folder) read what the demo indexed.
store=${IMGFEAT_DEMO_STORE:-imgfeat-data/imgfeat.sqlite3}

command -v cargo >/dev/null || { echo "error: cargo (Rust >= 1.92) is needed: https://rustup.rs" >&2; exit 1; }
scripts/setup-onnxruntime.sh
scripts/setup-build-tools.sh
# Only what the main job needs (no training, evaluation, benchmark or service-settings
# code): the first build on a fresh machine compiles about half as much.
cargo build --locked -p imgfeat-cli --bin imgfeat --no-default-features
bin=${CARGO_TARGET_DIR:-target}/debug/imgfeat

"$bin" --store "$store" index "$dir"
# One photo's stored result and its nearest neighbours, named by its path.
first=$(ls "$dir" | head -n 1)
"$bin" --store "$store" show "$dir/$first"
"$bin" --store "$store" similar "$dir/$first" --k 5

opt=""
[ "$store" = imgfeat-data/imgfeat.sqlite3 ] || opt=" --store $store"
cat <<EOF

The binary is $bin; the results are in $store. Next:
  $bin$opt show $dir/$first
  $bin$opt similar $dir/$first --k 5
  $bin$opt dedup
  $bin config defaults            # every setting, with its default
EOF
