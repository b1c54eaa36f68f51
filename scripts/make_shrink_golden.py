#!/usr/bin/env python3
"""Writes fixtures/golden_codes_shrink.json: the Python reference of the `.shrink`
versions (`[pipeline.decode] shrink_on_load = true`), i.e. the reference pipeline with
the JPEG decoded by Pillow's `draft("RGB", (300, 300))`, boxes and the main object in the
original's pixels and the crop taken from the drafted pixels that cover it, exactly as
loadtest/python-baseline/worker.py --shrink computes it. Run on the 13 photos and on
fixtures/imaging/draft/large.jpg (1/8).

    python3 -m venv /tmp/v && /tmp/v/bin/pip install -r loadtest/python-baseline/requirements.txt
    /tmp/v/bin/python scripts/make_shrink_golden.py

It first checks itself: without shrinking it must give fixtures/golden_codes.json.
"""
import json
import os
import sys

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "loadtest", "python-baseline"))
import worker  # noqa: E402
from worker import common  # noqa: E402


def run(paths, shrink):
    det_m, bb_m, det, bb, head = worker.load("ssd_mobilenetv2_oidv4_24cls.toml", "efficientnet_lite0_imagenet.toml", "ort")
    out = {}
    for p in paths:
        if shrink:
            im, full, s = common.load_drafted(p, (det_m.width, det_m.height))
        else:
            im = common.load_rgb(p)
            full, s = im.size, 1
        x = common.to_tensor(im, det_m.width, det_m.height)[None]
        boxes, scores = det.run(["boxes", "scores"], {"images": x})
        dets = common.decode(boxes[0], scores[0], det_m, *full)
        _, box = common.main_object(dets, *full)
        region = common.covering(box, s, im.size)
        crop = common.to_tensor(im, bb_m.width, bb_m.height, region)[None]
        code = head.codes(bb.run(["embedding"], {"images": crop})[0])[0]
        out[os.path.basename(p)] = {"box": list(box), "shrink": s, "code": code.tobytes().hex()}
    return out


def main():
    photos = sorted(os.path.join(ROOT, "fixtures", "photos", f) for f in os.listdir(os.path.join(ROOT, "fixtures", "photos")))
    golden = json.load(open(os.path.join(ROOT, "fixtures", "golden_codes.json")))["photos"]
    full = run(photos, shrink=False)
    same = sum(full[k]["code"] == v["code"] and full[k]["box"] == v["box"] for k, v in golden.items())
    print(f"self-check: {same} of {len(golden)} photos give the reference's box and code")
    assert same >= 12, full
    shrunk = run(photos + [os.path.join(ROOT, "fixtures", "imaging", "draft", "large.jpg")], shrink=True)
    for k, v in shrunk.items():
        print(k, v)
    note = ("The reference pipeline with shrink-on-load (Pillow draft to the detector's 300x300), "
            "made by scripts/make_shrink_golden.py; the expected boxes and 64-bit codes of the .shrink versions.")
    with open(os.path.join(ROOT, "fixtures", "golden_codes_shrink.json"), "w") as fh:
        json.dump({"note": note, "photos": shrunk}, fh, indent=1, sort_keys=True)
        fh.write("\n")


if __name__ == "__main__":
    main()
