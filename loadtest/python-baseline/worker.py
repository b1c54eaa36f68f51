"""A plain Python worker, the baseline `imgfeat index` is measured against: Pillow decode
and bilinear resize, onnxruntime (one intra-op thread), the same two models, main-object
rule and SimHash head as the pipeline, batches of 8, results into SQLite.

    worker.py index DIR DB [--procs 2] [--detector M.toml] [--backbone M.toml] [--crops]
    worker.py ceiling DIR [--procs 2] [--seconds 10] [...]

`index` splits DIR's images (sorted) between --procs processes, each decoding, detecting,
cropping, embedding and storing its share; prints images/s over the whole run (from the
first process start to the last one's end, model loading included as for `imgfeat index`).
`--crops` makes it do the rest of what `imgfeat index` does per image: encode the main
object's crop of the original as JPEG q90 (the store's crop) and store it with every box,
so the two are compared doing the same work; without it the worker stores only the main
box and the code, as the baseline was first specified.
`--runtime openvino-f32|openvino-bf16` runs the same ONNX files on OpenVINO, as imgfeat's
`[pipeline.runtime]` does, so each imgfeat row has a Python row on the same runtime.
`--shrink` decodes JPEGs with Pillow's `draft("RGB", detector input)` (a 1/2, 1/4 or 1/8
scaled decode), as `imgfeat index` does with `[pipeline.decode] shrink_on_load`: boxes and
the main object in the original's pixels, the crop (and the crop JPEG) taken from the
drafted image's pixels that cover it. `--region` (with `--shrink`) reads a main object
that the drafted pixels cover with fewer than the backbone's input again, from the photo
drafted at the scale that covers it, as `crop_at_extractor_scale` does.
`ceiling` runs only the two models, alternating, on pre-decoded tensors of DIR's first
64 images, in --procs processes of one thread: what the models alone allow.
"""

import argparse
import io
import json
import multiprocessing as mp
import os
import sqlite3
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "quantize"))
import common  # noqa: E402

BATCH = 8


def images(folder):
    exts = (".jpg", ".jpeg", ".png")
    return sorted((os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(exts)), key=lambda p: (len(p), p))


def load(det_name, bb_name, runtime):
    det_m, bb_m = common.Manifest(det_name), common.Manifest(bb_name)
    return det_m, bb_m, common.runtime_session(det_m.onnx, runtime), common.runtime_session(bb_m.onnx, runtime), common.SimHash()


def crop_jpeg(im, box):
    out = io.BytesIO()
    im.crop(box).save(out, "JPEG", quality=90)
    return out.getvalue()


def index_part(args):
    files, db, det_name, bb_name, crops_too, runtime, shrink, again = args
    det_m, bb_m, det, bb, head = load(det_name, bb_name, runtime)
    con = sqlite3.connect(db, timeout=30)
    done = 0
    for i in range(0, len(files), BATCH):
        chunk = files[i : i + BATCH]
        if shrink:
            loaded = [common.load_drafted(p, (det_m.width, det_m.height)) for p in chunk]
        else:
            loaded = [(im, im.size, 1) for im in map(common.load_rgb, chunk)]
        imgs = [im for im, _, _ in loaded]
        x = np.stack([common.to_tensor(im, det_m.width, det_m.height) for im in imgs])
        boxes, scores = det.run(["boxes", "scores"], {"images": x})
        dets = [common.decode(boxes[j], scores[j], det_m, *full) for j, (_, full, _) in enumerate(loaded)]
        mains = [common.main_object(d, *full) for d, (_, full, _) in zip(dets, loaded)]
        at = (bb_m.width, bb_m.height)
        sources = [common.crop_source(p, im, s, box, at, again) for p, (im, _, s), (_, box) in zip(chunk, loaded, mains)]
        imgs = [px for px, _ in sources]
        regions = [r for _, r in sources]
        crops = np.stack([common.to_tensor(im, bb_m.width, bb_m.height, r) for im, r in zip(imgs, regions)])
        codes = head.codes(bb.run(["embedding"], {"images": crops})[0])
        if crops_too:
            extra = [(json.dumps(d, default=float), crop_jpeg(im, r)) for d, im, r in zip(dets, imgs, regions)]
        else:
            extra = [(None, None)] * len(chunk)
        rows = [(p, label, json.dumps(box), code.tobytes(), *more) for p, (label, box), code, more in zip(chunk, mains, codes, extra)]
        with con:
            con.executemany("INSERT OR REPLACE INTO codes VALUES (?, ?, ?, ?, ?, ?)", rows)
        done += len(chunk)
    con.close()
    return done


def ceiling_part(args):
    files, seconds, det_name, bb_name, runtime = args
    det_m, bb_m, det, bb, _ = load(det_name, bb_name, runtime)
    imgs = [common.load_rgb(p) for p in files]
    x = np.stack([common.to_tensor(im, det_m.width, det_m.height) for im in imgs])
    c = np.stack([common.to_tensor(im, bb_m.width, bb_m.height) for im in imgs])
    det.run(None, {"images": x[:BATCH]})
    bb.run(None, {"images": c[:BATCH]})
    n, i, t0 = 0, 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        j = (i * BATCH) % (len(imgs) - BATCH + 1)
        det.run(None, {"images": x[j : j + BATCH]})
        bb.run(None, {"images": c[j : j + BATCH]})
        n, i = n + BATCH, i + 1
    return n, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["index", "ceiling"])
    ap.add_argument("dir")
    ap.add_argument("db", nargs="?")
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--detector", default="ssd_mobilenetv2_oidv4_24cls.toml")
    ap.add_argument("--backbone", default="efficientnet_lite0_imagenet.toml")
    ap.add_argument("--crops", action="store_true", help="also store the crop JPEG (q90) and every box")
    ap.add_argument("--shrink", action="store_true", help="decode JPEGs with Pillow's draft, as imgfeat's shrink_on_load")
    ap.add_argument("--region", action="store_true", help="with --shrink, read a small main object again at the scale that covers the backbone's input, as imgfeat's crop_at_extractor_scale")
    ap.add_argument("--runtime", choices=["ort", "openvino-f32", "openvino-bf16"], default="ort", help="the runtime imgfeat's row uses, for like with like")
    a = ap.parse_args()
    files = images(a.dir)
    if a.mode == "index" and a.db:
        # Once, before the workers: two processes switching a new file to WAL at once
        # can fail with "database is locked" (the pragma does not wait).
        con = sqlite3.connect(a.db, timeout=30)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("CREATE TABLE IF NOT EXISTS codes (path TEXT PRIMARY KEY, label TEXT, box TEXT, code BLOB, boxes TEXT, crop BLOB)")
        con.close()
    ctx = mp.get_context("spawn")
    t0 = time.perf_counter()
    with ctx.Pool(a.procs) as pool:
        if a.mode == "index":
            if not a.db:
                ap.error("index needs DB")
            parts = [(files[k :: a.procs], a.db, a.detector, a.backbone, a.crops, a.runtime, a.shrink, a.region) for k in range(a.procs)]
            n = sum(pool.map(index_part, parts))
            secs = time.perf_counter() - t0
            rate = n / secs
        else:
            parts = [(files[:64], a.seconds, a.detector, a.backbone, a.runtime)] * a.procs
            res = pool.map(ceiling_part, parts)
            n, secs = sum(r[0] for r in res), max(r[1] for r in res)
            rate = sum(r[0] / r[1] for r in res)
    print(json.dumps({"mode": a.mode, "runtime": a.runtime, "shrink": a.shrink, "procs": a.procs, "images": n, "seconds": round(secs, 2), "images_per_second": round(rate, 2)}))


if __name__ == "__main__":
    sys.exit(main())
