# Sourced by the setup scripts that take a shared library out of a pinned PyPI wheel
# (ONNX Runtime's, OpenVINO's): one place for the download, the hash check and the
# atomic copy, so the two cannot drift apart.

# extract_from_wheel PACKAGE VERSION WHEEL SHA256 DEST MEMBER...
# Downloads PACKAGE==VERSION's linux x86-64 CPython 3.11 wheel (the tags are explicit
# so the same file is chosen whatever Python runs pip), checks that it is WHEEL with
# SHA256, and copies each MEMBER (a path inside the wheel) into DEST under its base
# name, each through a .part file so an interrupted copy is never taken for a library.
extract_from_wheel() {
  local package=$1 version=$2 wheel=$3 sha256=$4 dest=$5
  shift 5
  if [ "$(uname -m)" != "x86_64" ] || [ "$(uname -s)" != "Linux" ]; then
    echo "error: this installs the linux x86_64 wheel of $package; on $(uname -s)/$(uname -m) install $package $version yourself and point imgfeat at it (docs/getting-started.md)" >&2
    return 1
  fi
  local tmp
  tmp=$(mktemp -d)
  # shellcheck disable=SC2064 # expand now: $tmp is local
  trap "rm -rf '$tmp'" RETURN
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp \
    -d "$tmp" "${package}==${version}"
  local got
  got=$(sha256sum "$tmp/$wheel" | cut -d' ' -f1)
  if [ "$got" != "$sha256" ]; then
    echo "error: $wheel has sha256 $got, expected $sha256" >&2
    return 1
  fi
  mkdir -p "$dest"
  python3 - "$tmp/$wheel" "$dest" "$@" <<'PY'
import os, shutil, sys, zipfile
wheel, dest, *members = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    for member in members:
        target = os.path.join(dest, os.path.basename(member))
        with z.open(member) as src, open(target + ".part", "wb") as out:
            shutil.copyfileobj(src, out)
        os.chmod(target + ".part", 0o755)
        os.replace(target + ".part", target)
PY
}
