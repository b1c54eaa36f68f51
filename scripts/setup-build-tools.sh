#!/usr/bin/env bash
# Installs the build tools that libjpeg-turbo (bundled by the turbojpeg crate, compiled
# into our binaries) needs: cmake to configure it, nasm for its SIMD code. Pinned to
# Debian 12's versions; idempotent: tools already on PATH are kept.
set -euo pipefail

CMAKE_VERSION=3.25.1-1
NASM_VERSION=2.16.01-1

missing=()
command -v cmake >/dev/null || missing+=("cmake=$CMAKE_VERSION")
command -v nasm >/dev/null || missing+=("nasm=$NASM_VERSION")
if [ ${#missing[@]} -eq 0 ]; then
  echo "build tools present: $(cmake --version | head -1), $(nasm -v)"
  exit 0
fi

if ! command -v apt-get >/dev/null; then
  echo "error: missing ${missing[*]}; install cmake (>= 3.10) and nasm (>= 2.13) with your package manager" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" != 0 ]; then
  sudo=(sudo)
fi
# The package lists may be stale or absent on a fresh machine: refresh once and retry.
if ! "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; then
  "${sudo[@]}" apt-get update
  "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi
echo "installed ${missing[*]}"
