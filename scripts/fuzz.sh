#!/usr/bin/env bash
# Fuzzes the input parsers: scripts/fuzz.sh [TARGET...] [--seconds N] (default: every
# target, 300 s each). Targets: decode_image, decode_message, parse_settings,
# ingest_request (fuzz/src: what each checks).
#
# Runs on the stable toolchain: cargo-fuzz (pinned, installed into .local/) with
# libFuzzer's coverage guidance and `--sanitizer none`, since AddressSanitizer needs a
# nightly compiler; our code forbids `unsafe`, so the findings that matter here are
# panics, aborts, hangs and allocations past `-rss_limit_mb`, all of which it reports.
# The grown corpus is minimised back into fuzz/targets/corpus/TARGET (commit it); a
# crash is copied to fuzz/targets/regressions/TARGET, which `cargo test -p imgfeat-fuzz`
# replays from then on, and the script exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
seconds=300
targets=()
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(decode_image decode_message parse_settings ingest_request)

tools=$PWD/.local/cargo-fuzz
if ! "$tools/bin/cargo-fuzz" --version 2>/dev/null | grep -q " $CARGO_FUZZ_VERSION"; then
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --root "$tools" \
    --target-dir "${CARGO_TARGET_DIR:-$HOME/.cache/imgfeat/target}/cargo-fuzz-install"
fi
export PATH=$tools/bin:$PATH
# Instrumented builds differ from the workspace's: a directory of their own.
fuzz_target_dir=${IMGFEAT_FUZZ_TARGET_DIR:-$HOME/.cache/imgfeat/fuzz-target}
fuzz=(cargo fuzz)
build=(--fuzz-dir fuzz/targets --sanitizer none --target-dir "$fuzz_target_dir")

status=0
for t in "${targets[@]}"; do
  features=()
  case $t in
    parse_settings | ingest_request) features=(--features services) ;;
  esac
  corpus=fuzz/targets/corpus/$t
  grown=$(mktemp -d)
  cp "$corpus"/* "$grown"/
  echo "== $t: ${seconds}s"
  if ! "${fuzz[@]}" run "${build[@]}" "${features[@]}" "$t" "$grown" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1; then
    status=1
    mkdir -p "fuzz/targets/regressions/$t"
    for crash in fuzz/targets/artifacts/"$t"/*; do
      [ -f "$crash" ] && cp "$crash" "fuzz/targets/regressions/$t/" && echo "kept $crash as a regression input"
    done
  fi
  # Keep the smallest set of inputs that covers what the run reached.
  kept=$(mktemp -d)
  "${fuzz[@]}" run "${build[@]}" "${features[@]}" "$t" "$kept" "$grown" -- -merge=1 >/dev/null 2>&1 || true
  if [ -n "$(ls -A "$kept")" ]; then
    rm -f "$corpus"/*
    cp "$kept"/* "$corpus"/
  fi
  echo "== $t: corpus $(ls "$corpus" | wc -l) inputs"
  rm -rf "$grown" "$kept"
done
exit $status
