#!/usr/bin/env python3
"""Writes the Python references of the shrink-on-load versions:
- fixtures/golden_codes_shrink.json, the `.shrink` versions (`[pipeline.decode]
  shrink_on_load = true`): the reference pipeline with the JPEG decoded by Pillow's
  `draft("RGB", (300, 300))`, boxes and the main object in the original's pixels and
  the crop taken from the drafted pixels that cover it, exactly as
  loadtest/python-baseline/worker.py --shrink computes it;
- fixtures/golden_codes_shrink_region.json, the `.shrink.region` versions (also
  `crop_at_extractor_scale = true`): the same, except that where the drafted pixels
  cover the main object with fewer than 224 x 224, the crop comes from the photo drafted
  anew at the scale that covers that (worker.py --shrink --region).
Run on the 13 photos and on fixtures/imaging/draft/large.jpg (1/8).

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


def run(paths, shrink, again=False):
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
        pixels, region = common.crop_source(p, im, s, box, (bb_m.width, bb_m.height), again)
        crop = common.to_tensor(pixels, bb_m.width, bb_m.height, region)[None]
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
    corpus = photos + [os.path.join(ROOT, "fixtures", "imaging", "draft", "large.jpg")]
    shrunk = run(corpus, shrink=True)
    for k, v in shrunk.items():
        print(k, v)
    note = ("The reference pipeline with shrink-on-load (Pillow draft to the detector's 300x300), "
            "made by scripts/make_shrink_golden.py; the expected boxes and 64-bit codes of the .shrink versions.")
    write("golden_codes_shrink.json", note, shrunk)
    again = run(corpus, shrink=True, again=True)
    for k, v in again.items():
        print("region", k, v)
    note = ("The reference pipeline with shrink-on-load and the crop read again at the extractor's scale "
            "(Pillow draft to 300x300 for the detector; where the main object then covers fewer than 224x224 "
            "pixels, the photo drafted anew at the scale that covers them), made by scripts/make_shrink_golden.py; "
            "the expected boxes and 64-bit codes of the .shrink.region versions.")
    write("golden_codes_shrink_region.json", note, again)


def write(name, note, photos):
    with open(os.path.join(ROOT, "fixtures", name), "w") as fh:
        json.dump({"note": note, "photos": photos}, fh, indent=1, sort_keys=True)
        fh.write("\n")


if __name__ == "__main__":
    main()
