"""Installs the chosen candidate pair into models/ and pins it in the INT8 manifests.

    install.py CANDIDATE_DIR ACCURACY_JSON... [--method M] [--as int8|int8_vnni]

--as names the pair: models/{stem}_{AS}.onnx and the manifest {stem}_{AS}.toml beside it
(which must exist: a new pair's manifest is written by hand, with its own name/version).

Chooses, unless told, the method with the most main objects agreeing with fp32, then the
smallest p95 and median code distance (speed is not a criterion: the methods only move
the activation ranges, not the kernels).
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import sys

import common

STEMS = ("ssd_mobilenetv2_oidv4_24cls", "efficientnet_lite0_imagenet")


def choose(report):
    def key(item):
        _, r = item
        h = r["code_hamming_e2e"]
        return (-r["main_object_agree"], h["p95"], h["median"])

    return sorted(report["candidates"].items(), key=key)[0][0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("candidates")
    ap.add_argument("accuracy", nargs="+", help="evaluate.py reports (their candidates merged)")
    ap.add_argument("--method", help="the candidate tag to install (default: the best)")
    ap.add_argument("--as", dest="as_", default="int8", help="int8 (7-bit weights, any x86-64) or int8_vnni (8-bit, VNNI/AMX)")
    a = ap.parse_args()
    report = {"candidates": {}}
    for path in a.accuracy:
        with open(path) as f:
            report["candidates"].update(json.load(f)["candidates"])
    method = a.method or choose(report)
    print(f"installing the {method} pair as *_{a.as_}")
    for stem in STEMS:
        src = os.path.join(a.candidates, f"{stem}_int8_{method}.onnx")
        dst = os.path.join(common.MODELS, f"{stem}_{a.as_}.onnx")
        manifest = f"{stem}_{a.as_}.toml"
        shutil.copyfile(src, dst)
        digest = hashlib.sha256(open(dst, "rb").read()).hexdigest()
        path = os.path.join(common.MODELS, manifest)
        text = open(path).read()
        text = re.sub(r'(?m)^sha256 = ".*"$', f'sha256 = "{digest}"', text)
        text = re.sub(r"calibrated with \w+", f"calibrated with {method}", text)
        with open(path, "w") as f:
            f.write(text)
        print(f"  {dst} sha256 {digest}")


if __name__ == "__main__":
    sys.exit(main())
