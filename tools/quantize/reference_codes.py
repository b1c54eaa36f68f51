"""The Python reference recipe on a folder, against what `imgfeat index` stored for it.

    reference_codes.py DIR STORE [--detector M.toml] [--backbone M.toml] [--head M.toml]

For every image of DIR (numeric stems are image IDs, as `imgfeat index` reads them), one
at a time as the reference does (batch 1): Pillow decode, 300x300 bilinear stretch, the
SSD, the main object (score * sqrt(area) above 0.4; x1,y1 floored, x2,y2 ceiled), the
crop of the original stretched to 224x224, EfficientNet-Lite0, the 64-bit SimHash.
Then reads STORE (the SQLite file `imgfeat --store STORE index DIR` wrote) and prints
one JSON line: how many main boxes are equal as integers, how many codes are identical,
and the mean Hamming distance, over the images both have.
"""

import argparse
import json
import os
import sqlite3
import sys

import numpy as np

import common


def reference(path, det_m, bb_m, det, bb, head):
    im = common.load_rgb(path)
    x = common.to_tensor(im, det_m.width, det_m.height)[None]
    boxes, scores = det.run(["boxes", "scores"], {"images": x})
    dets = common.decode(boxes[0], scores[0], det_m, *im.size)
    _, box = common.main_object(dets, *im.size)
    crop = common.to_tensor(im, bb_m.width, bb_m.height, box)[None]
    code = head.codes(bb.run(["embedding"], {"images": crop})[0])[0]
    return list(box), code.tobytes()


def stored(store, ids):
    con = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    out = {}
    for image_id, version, x, y, w, h in con.execute(
        "SELECT image_id, model_version, crop_x, crop_y, crop_width, crop_height FROM detections"
    ):
        out.setdefault(image_id, {})["box"] = [x, y, x + w, y + h]
        out[image_id]["detector"] = version
    for image_id, version, code in con.execute("SELECT image_id, model_version, code FROM codes"):
        if image_id in out and version.startswith(out[image_id]["detector"] + "+"):
            out[image_id]["code"] = bytes(code)
            out[image_id]["version"] = version
    return {i: out[i] for i in ids if i in out and "code" in out[i]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("store")
    ap.add_argument("--detector", default="ssd_mobilenetv2_oidv4_24cls.toml")
    ap.add_argument("--backbone", default="efficientnet_lite0_imagenet.toml")
    ap.add_argument("--head", default="simhash64_effnet_lite0.toml")
    a = ap.parse_args()
    det_m, bb_m = common.Manifest(a.detector), common.Manifest(a.backbone)
    det, bb = common.session(det_m.onnx, 1), common.session(bb_m.onnx, 1)
    head = common.SimHash(a.head)
    files = {}
    for name in os.listdir(a.dir):
        stem, ext = os.path.splitext(name)
        if stem.isdigit() and ext.lower() in (".jpg", ".jpeg", ".png"):
            files[int(stem)] = os.path.join(a.dir, name)
    ours = stored(a.store, files)
    boxes_equal, codes_equal, distances, versions = 0, 0, [], set()
    for image_id in sorted(ours):
        box, code = reference(files[image_id], det_m, bb_m, det, bb, head)
        mine = ours[image_id]
        versions.add(mine["version"])
        boxes_equal += box == mine["box"]
        d = common.hamming(np.frombuffer(code, np.uint8), np.frombuffer(mine["code"], np.uint8))
        codes_equal += d == 0
        distances.append(d)
    n = len(distances)
    print(
        json.dumps(
            {
                "images": n,
                "of_files": len(files),
                "versions": sorted(versions),
                "boxes_equal": boxes_equal,
                "codes_identical": codes_equal,
                "codes_identical_share": round(codes_equal / max(n, 1), 4),
                "mean_hamming": round(float(np.mean(distances)) if n else 0.0, 4),
                "max_hamming": int(max(distances, default=0)),
            }
        )
    )
    return 0 if n else 1


if __name__ == "__main__":
    sys.exit(main())
