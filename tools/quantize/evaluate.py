"""Accuracy of INT8 candidates against the fp32 models, on seeded transformed copies of
the held-out photos (never the calibration quarter).

    evaluate.py CANDIDATE_DIR [--copies 3] [--methods MinMax,...] [--json F]

Per candidate pair (detector, backbone of one calibration method), per image:
- main object: the INT8 detector's main object has the fp32 one's label (or both are the
  whole image) and its crop has IoU >= 0.9 with the fp32 crop;
- code: the full INT8 pipeline's 64-bit code (INT8 detector -> crop -> INT8 backbone)
  against the full fp32 pipeline's, Hamming distance; and the INT8 backbone alone on the
  fp32 crop (what the backbone's quantization costs by itself);
- embedding cosine to fp32 on the same crop;
- near-duplicate recall@1 among the copies, fp32 codes and INT8 codes each on their own;
- speed: ms per image at one thread, batch 8, each model alone.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

import common

EVAL_SEED = 424242


def pipeline(det, bb, det_m, bb_m, img, head):
    x = common.to_tensor(img, det_m.width, det_m.height)
    boxes, scores = det.run(None, {"images": x[None]})
    dets = common.decode(boxes[0], scores[0], det_m, *img.size)
    label, crop = common.main_object(dets, *img.size)
    return label, crop


def embed(bb, bb_m, img, crop):
    emb = bb.run(["embedding"], {"images": common.to_tensor(img, bb_m.width, bb_m.height, crop)[None]})[0]
    return emb


def recall_at_1(codes, groups):
    """Near-duplicate recall@1 over the copies: the nearest other code (Hamming) is a
    copy of the same photo; a tie between a copy and a stranger counts half."""
    bits = np.unpackbits(np.stack(codes), axis=1).astype(np.int32)
    d = (bits[:, None, :] != bits[None, :, :]).sum(2)
    np.fill_diagonal(d, 1 << 20)
    g = np.array(groups)
    hits = 0.0
    for i in range(len(g)):
        same = d[i][g == g[i]].min()
        other = d[i][g != g[i]].min()
        hits += 1.0 if same < other else 0.5 if same == other else 0.0
    return hits / len(g)


def speed(path, w, h, reps=6):
    s = common.session(path, threads=1)
    x = np.random.default_rng(0).uniform(0, 255, (8, h, w, 3)).astype(np.float32)
    s.run(None, {"images": x})
    t0 = time.perf_counter()
    for _ in range(reps):
        s.run(None, {"images": x})
    return (time.perf_counter() - t0) / reps / 8 * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("candidates")
    ap.add_argument("--copies", type=int, default=3)
    ap.add_argument("--methods", default="MinMax")
    ap.add_argument("--json")
    ap.add_argument("--no-speed", action="store_true")
    a = ap.parse_args()
    det_m = common.Manifest("ssd_mobilenetv2_oidv4_24cls.toml")
    bb_m = common.Manifest("efficientnet_lite0_imagenet.toml")
    head = common.SimHash()
    _, held = common.split(common.list_photos())
    fp_det, fp_bb = common.session(det_m.onnx, 2), common.session(bb_m.onnx, 2)
    cands = {}
    for method in a.methods.split(","):
        d = os.path.join(a.candidates, f"ssd_mobilenetv2_oidv4_24cls_int8_{method}.onnx")
        b = os.path.join(a.candidates, f"efficientnet_lite0_imagenet_int8_{method}.onnx")
        if os.path.exists(d) and os.path.exists(b):
            cands[method] = (d, b, common.session(d, 2), common.session(b, 2))
    stats = {m: {"agree": 0, "e2e": [], "bb": [], "cos": [], "codes": []} for m in cands}
    fp_codes, groups = [], []
    n = 0
    for pi, path in enumerate(held):
        src = common.load_rgb(path)
        for c in range(a.copies):
            img = common.transform(src, EVAL_SEED, pi * 100 + c)
            label, crop = pipeline(fp_det, fp_bb, det_m, bb_m, img, head)
            emb = embed(fp_bb, bb_m, img, crop)
            code = head.codes(emb)
            fp_codes.append(code[0])
            groups.append(pi)
            for m, (_, _, qd, qb) in cands.items():
                s = stats[m]
                ql, qc = pipeline(qd, qb, det_m, bb_m, img, head)
                s["agree"] += int(ql == label and common.iou(qc, crop) >= 0.9)
                qcode = head.codes(embed(qb, bb_m, img, qc))
                s["codes"].append(qcode[0])
                s["e2e"].append(common.hamming(qcode, code))
                qemb = embed(qb, bb_m, img, crop)
                s["bb"].append(common.hamming(head.codes(qemb), code))
                s["cos"].append(float((qemb @ emb.T).item() / np.linalg.norm(qemb) / np.linalg.norm(emb)))
            n += 1
    report = {"images": n, "fp32_recall_at_1": recall_at_1(fp_codes, groups), "held_out_photos": len(held), "copies": a.copies, "seed": EVAL_SEED, "candidates": {}}
    if not a.no_speed:
        report["fp32_ms"] = {"detector": speed(det_m.onnx, 300, 300), "backbone": speed(bb_m.onnx, 224, 224)}
    for m, s in stats.items():
        e2e, bb, cos = np.array(s["e2e"]), np.array(s["bb"]), np.array(s["cos"])
        r = {
            "main_object_agree": s["agree"] / n,
            "code_hamming_e2e": {"median": float(np.median(e2e)), "p95": float(np.percentile(e2e, 95)), "max": int(e2e.max()), "zero": float((e2e == 0).mean())},
            "code_hamming_backbone": {"median": float(np.median(bb)), "p95": float(np.percentile(bb, 95)), "max": int(bb.max())},
            "recall_at_1": recall_at_1(s["codes"], groups),
            "embedding_cosine": {"median": float(np.median(cos)), "p5": float(np.percentile(cos, 5)), "min": float(cos.min())},
        }
        if not a.no_speed:
            r["ms"] = {"detector": speed(cands[m][0], 300, 300), "backbone": speed(cands[m][1], 224, 224)}
        report["candidates"][m] = r
    text = json.dumps(report, indent=1)
    print(text)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
