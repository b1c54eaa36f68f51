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
- with --noise-floor, the fp32 detector's main object against itself on inputs with +-1
  uniform noise: the agreement no quantization can be expected to beat;
- near-duplicate recall@1 among the copies, fp32 codes and INT8 codes each on their own;
- speed: ms per image at one thread, batch 8, each model alone, fp32 and every candidate
  in interleaved rounds (median).

A candidate is a tag (the files *_int8_TAG.onnx) or DETTAG+BBTAG (one candidate's
detector with another's backbone), optionally run on another runtime: RUNTIME:TAG, with
RUNTIME `openvino-f32` or `openvino-bf16` (imgfeat's [pipeline.runtime]) and TAG `fp32`
for the fp32 files themselves (e.g. `openvino-bf16:fp32,openvino-f32:vnni`). The
reference stays the fp32 files on onnxruntime.

With --shrink every candidate decodes the copies with shrink-on-load (Pillow's draft to
the detector's input, as imgfeat's `[pipeline.decode] shrink_on_load`): `--shrink
--methods fp32` measures shrink-on-load alone; `--shrink --region` reads a main object
the drafted pixels cover with fewer than the backbone's input again at the scale that
covers it (imgfeat's `crop_at_extractor_scale`, the `.shrink.region` versions).
"""

import argparse
import json
import os
import sys
import time

import numpy as np

import common

EVAL_SEED = 424242


def pipeline(det, bb, det_m, bb_m, img, head, noise=None):
    x = common.to_tensor(img, det_m.width, det_m.height)
    if noise is not None:
        x = x + noise.uniform(-1.0, 1.0, x.shape).astype(np.float32)
    boxes, scores = det.run(None, {"images": x[None]})
    dets = common.decode(boxes[0], scores[0], det_m, *img.size)
    label, crop = common.main_object(dets, *img.size)
    return label, crop


def pipeline_shrunk(det, det_m, shrunk, noise=None):
    """`pipeline` on a copy decoded by `common.load_drafted`: the main object in the
    original's pixels, and the shrunk pixels that cover it (what is embedded)."""
    img, full, s = shrunk
    x = common.to_tensor(img, det_m.width, det_m.height)
    boxes, scores = det.run(None, {"images": x[None]})
    dets = common.decode(boxes[0], scores[0], det_m, *full)
    label, crop = common.main_object(dets, *full)
    return label, crop, common.covering(crop, s, img.size)


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


def speed(models, rounds=8):
    """ms per image at one thread, batch 8, of every (name, path, width, height), in
    interleaved rounds (each round runs every model once: fp32 and INT8 see the same
    machine state); the median over rounds, and the 1-minute load before and after."""
    rng = np.random.default_rng(0)
    runs = []
    for name, path, w, h, runtime in models:
        s = common.runtime_session(path, runtime, threads=1)
        x = rng.uniform(0, 255, (8, h, w, 3)).astype(np.float32)
        s.run(None, {"images": x})
        runs.append((name, s, x))
    times = {name: [] for name, _, _ in runs}
    load_before = os.getloadavg()[0]
    for _ in range(rounds):
        for name, s, x in runs:
            t0 = time.perf_counter()
            s.run(None, {"images": x})
            times[name].append((time.perf_counter() - t0) / 8 * 1000)
    ms = {name: round(float(np.median(t)), 2) for name, t in times.items()}
    return ms, {"before": load_before, "after": os.getloadavg()[0], "rounds": rounds}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("candidates")
    ap.add_argument("--copies", type=int, default=3)
    ap.add_argument("--methods", default="MinMax", help="candidate tags, comma-separated")
    ap.add_argument("--json")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--speed-rounds", type=int, default=8)
    ap.add_argument("--noise-floor", action="store_true", help="also fp32 vs fp32 on +-1 noisy inputs: the main-object rule's own stability")
    ap.add_argument("--shrink", action="store_true", help="candidates decode with shrink-on-load (Pillow draft)")
    ap.add_argument("--region", action="store_true", help="with --shrink, a small main object is read again at the backbone's scale (crop_at_extractor_scale)")
    ap.add_argument("--speed-only", action="store_true", help="no accuracy, only the interleaved speed")
    a = ap.parse_args()
    det_m = common.Manifest("ssd_mobilenetv2_oidv4_24cls.toml")
    bb_m = common.Manifest("efficientnet_lite0_imagenet.toml")
    head = common.SimHash()
    _, held = common.split(common.list_photos())
    fp_det, fp_bb = common.session(det_m.onnx, 2), common.session(bb_m.onnx, 2)
    cands = {}
    runtimes = {}
    for method in a.methods.split(","):
        runtime, tags = method.split(":", 1) if ":" in method else ("ort", method)
        # DET+BB pairs one candidate's detector with another's backbone.
        dt, bt = tags.split("+") if "+" in tags else (tags, tags)
        file = lambda model, m, tag: m.onnx if tag == "fp32" else os.path.join(a.candidates, f"{model}_int8_{tag}.onnx")
        d = file("ssd_mobilenetv2_oidv4_24cls", det_m, dt)
        b = file("efficientnet_lite0_imagenet", bb_m, bt)
        if os.path.exists(d) and os.path.exists(b):
            cands[method] = (d, b, common.runtime_session(d, runtime, 2), common.runtime_session(b, runtime, 2))
            runtimes[method] = runtime
    stats = {m: {"agree": 0, "disagree": {}, "e2e": [], "bb": [], "cos": [], "codes": []} for m in cands}
    fp_codes, groups = [], []
    n = noise_agree = 0
    for pi, path in enumerate([] if a.speed_only else held):
        src = common.load_rgb(path)
        for c in range(a.copies):
            jpeg = common.transform_jpeg(src, EVAL_SEED, pi * 100 + c)
            img = common.load_rgb(jpeg)
            shrunk = common.load_drafted(jpeg, (det_m.width, det_m.height)) if a.shrink else None
            label, crop = pipeline(fp_det, fp_bb, det_m, bb_m, img, head)
            emb = embed(fp_bb, bb_m, img, crop)
            code = head.codes(emb)
            fp_codes.append(code[0])
            groups.append(pi)
            if a.noise_floor:
                # The fp32 detector against itself on inputs moved by +-1: how stable
                # the main-object rule is at all.
                nl, nc = pipeline(fp_det, fp_bb, det_m, bb_m, img, head, np.random.default_rng([EVAL_SEED, pi, c]))
                noise_agree += int(nl == label and common.iou(nc, crop) >= 0.9)
            for m, (_, _, qd, qb) in cands.items():
                s = stats[m]
                if shrunk:
                    ql, qc, region = pipeline_shrunk(qd, det_m, shrunk)
                    qimg = shrunk[0]
                    if a.region:
                        qimg, region = common.crop_source(jpeg, shrunk[0], shrunk[2], qc, (bb_m.width, bb_m.height), True)
                else:
                    ql, qc = pipeline(qd, qb, det_m, bb_m, img, head)
                    qimg, region = img, qc
                ok = ql == label and common.iou(qc, crop) >= 0.9
                s["agree"] += int(ok)
                if not ok:
                    kind = "object_vs_whole" if (ql is None) != (label is None) else "other_label" if ql != label else "same_label_iou_below_0.9"
                    s["disagree"][kind] = s["disagree"].get(kind, 0) + 1
                qcode = head.codes(embed(qb, bb_m, qimg, region))
                s["codes"].append(qcode[0])
                s["e2e"].append(common.hamming(qcode, code))
                qemb = embed(qb, bb_m, img, crop)
                s["bb"].append(common.hamming(head.codes(qemb), code))
                s["cos"].append(float((qemb @ emb.T).item() / np.linalg.norm(qemb) / np.linalg.norm(emb)))
            n += 1
    report = {"images": n, "fp32_recall_at_1": recall_at_1(fp_codes, groups) if n else None, "held_out_photos": len(held), "copies": a.copies, "seed": EVAL_SEED, "candidates": {}}
    if a.noise_floor and n:
        report["fp32_noise_main_object_agree"] = noise_agree / n
    if not a.no_speed:
        models = [("fp32/detector", det_m.onnx, 300, 300, "ort"), ("fp32/backbone", bb_m.onnx, 224, 224, "ort")]
        for m, (d, b, _, _) in cands.items():
            models += [(f"{m}/detector", d, 300, 300, runtimes[m]), (f"{m}/backbone", b, 224, 224, runtimes[m])]
        ms, load = speed(models, a.speed_rounds)
        report["speed_load1"] = load
        report["fp32_ms"] = {"detector": ms["fp32/detector"], "backbone": ms["fp32/backbone"]}
    for m, s in stats.items():
        if not n:
            report["candidates"][m] = r = {}
            r["ms"] = {"detector": ms[f"{m}/detector"], "backbone": ms[f"{m}/backbone"]}
            r["speedup"] = {k: round(report["fp32_ms"][k] / r["ms"][k], 2) for k in ("detector", "backbone")}
            continue
        e2e, bb, cos = np.array(s["e2e"]), np.array(s["bb"]), np.array(s["cos"])
        r = {
            "main_object_agree": s["agree"] / n,
            "main_object_disagree": s["disagree"],
            "code_hamming_e2e": {"median": float(np.median(e2e)), "p95": float(np.percentile(e2e, 95)), "max": int(e2e.max()), "zero": float((e2e == 0).mean())},
            "code_hamming_backbone": {"median": float(np.median(bb)), "p95": float(np.percentile(bb, 95)), "max": int(bb.max())},
            "recall_at_1": recall_at_1(s["codes"], groups),
            "embedding_cosine": {"median": float(np.median(cos)), "p5": float(np.percentile(cos, 5)), "min": float(cos.min())},
        }
        if not a.no_speed:
            r["ms"] = {"detector": ms[f"{m}/detector"], "backbone": ms[f"{m}/backbone"]}
            r["speedup"] = {k: round(report["fp32_ms"][k] / r["ms"][k], 2) for k in ("detector", "backbone")}
        report["candidates"][m] = r
    text = json.dumps(report, indent=1)
    print(text)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
