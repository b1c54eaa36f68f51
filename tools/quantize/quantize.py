"""Static QDQ INT8 quantization of the detector and the backbone.

    quantize.py OUT_DIR [--methods MinMax[,Entropy,Percentile]] [--calib-copies 2]
                [--full-range] [--fold-normalisation] [--tag T] [--only detector|backbone]
                [--det-leading N] [--bb-leading N] [--det-keep-head-feeders]
                [--det-keep-depthwise] [--det-keep-regex RE] [--per-tensor] [--percentile P]

Calibrates on seeded transformed copies of the calibration quarter of the catalog photos
(common.split), fed exactly as the pipeline feeds the models: the detector sees whole
images, the backbone the fp32 pipeline's main-object crops. Weights per channel (int8,
symmetric; 7 bits unless --full-range: see REDUCE_RANGE), activations uint8, QDQ format,
one model per activation calibration method, written as *_int8_{TAG or METHOD}.onnx.

The two shipped pairs (models/README.md): `*_int8` is the default here (7-bit weights,
exact on any x86-64); `*_int8_vnni` is `--full-range --fold-normalisation` (8-bit weights,
for CPUs with VNNI/AMX). The other options are the candidates tried against them.

Kept in fp32 because they are sensitive: the first conv(s) (FP32_LEADING_CONVS; the
first sees the raw 0..255 pixels through the in-graph normalisation), the detector's
box/class heads and its anchor decode, and the backbone's pooling and classifier (the
embedding the codes come from must not be quantized again after the last conv).
"""

import argparse
import os
import re
import sys
import time

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

import common

CALIB_SEED = 20261130
QUANTIZED_OPS = {"Conv", "Add", "Clip"}
# Convs kept in fp32 from the input on. Backbone, 48 held-out images, embedding cosine
# to fp32 (median / min): first conv only 0.978 / 0.936, first 2 0.986 / 0.965, first 3
# 0.987 / 0.964, first 6 0.991 / 0.978, first 8 0.992 / 0.985 (the stem and the first
# blocks at 112x112, where a quantization step is large against the signal), at about
# the same speed. Detector, 120 held-out images, main object as fp32's: first conv 0.925,
# 4: 0.917, 8: 0.933, 12: 0.942, also the layers feeding the heads in fp32: 0.925-0.933;
# its error is spread over the whole network, so only the first conv stays.
# With 8-bit weights on VNNI (657 held-out images; models/README.md): detector leading 4
# 95.1 % vs 95.6 % with 1, head feeders in fp32 95.3 %, depthwise convs in fp32 92.7 %;
# backbone leading 1 / 2 / 4 / 8: embedding cosine min 0.837 / 0.934 / 0.967 / 0.981,
# backbone 2.9x / 2.4x / 1.9x / 1.8x faster than fp32, so 8 stayed. Measured again with
# codes (2026-11-30, 657 images, model-only at one thread): leading 2 / 3 / 4 / 8 run
# the backbone 2.21x / 2.32x / 1.68x / 1.72x fp32 with code distance to fp32 median 2 /
# p95 7 (8: 2 / 6) and recall@1 96.65 % (8: 96.42 %, fp32 96.35 %); cosine min 0.934 /
# 0.916 / 0.967 / 0.981. The int8_vnni pair now keeps 2 (run.sh --bb-leading 2); the
# 7-bit int8 pair keeps the default 8 it shipped with.
FP32_LEADING_CONVS = {"detector": 1, "backbone": 8}
# REDUCE_RANGE: 7-bit weights. Without VNNI (this project's 2-core AMD EPYC has AVX2
# only) MLAS multiplies uint8 activations by int8 weights with vpmaddubsw, whose int16
# pair sums saturate at 8-bit weights (255 * 127 * 2 > 32767). Measured on the backbone,
# 48 held-out crops, MinMax: embedding cosine to fp32 median 0.972 / min 0.819 with 8-bit
# weights, 0.978 / 0.936 with 7-bit ones; uint8 weights (no saturation) reach 0.994 /
# 0.971 but run 6x slower than fp32 (no fused kernel). With AVX512-VNNI (vpdpbusd adds
# the products in int32) 8-bit weights do not saturate: --full-range. On a VNNI machine,
# 657 held-out images (models/README.md): embedding cosine median 0.9975 / min 0.983
# against 0.992 / 0.939 with 7 bits, main object as fp32's 95.6 % against 91.9 %.


def fold_normalisation(src, dst):
    """Folds the in-graph input normalisation into the first conv (which stays fp32).

    Both graphs start images [B,H,W,3] 0..255 -> Transpose to NCHW and (x - mean) * a
    (Sub then Mul or Div, per channel, before or after the Transpose) -> Conv. With the
    same mean on every channel that is exactly Transpose -> Pad(raw value mean, the conv's
    own padding: a normalised 0 is a raw mean) -> Conv(W * a, b - sum(W * a * mean)), which
    saves two broadcasting passes over the input (Sub and Mul cost the INT8 detector ~20 %
    of its time at one thread).
    """
    m = onnx.load(src)
    g = m.graph
    init = {i.name: i for i in g.initializer}
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    chain, t = [], g.input[0].name
    while True:
        (n,) = consumers[t]
        chain.append(n)
        if n.op_type == "Conv":
            break
        assert n.op_type in ("Transpose", "Sub", "Mul", "Div"), n.op_type
        t = n.output[0]
    conv, prep = chain[-1], chain[:-1]
    mean, a = np.zeros(3), np.ones(3)
    for n in prep:
        if n.op_type == "Transpose":
            assert list(n.attribute[0].ints) == [0, 3, 1, 2]
            continue
        v = numpy_helper.to_array(init[n.input[1]]).astype(np.float64).reshape(-1)
        v = np.broadcast_to(v, (3,))
        if n.op_type == "Sub":
            mean = mean + v / a
        elif n.op_type == "Mul":
            a = a * v
        else:
            a = a / v
    # x_norm = a * (x - mean) per channel; a Pad takes one value, so the means must agree.
    assert np.allclose(mean, mean[0]), mean
    assert sum(n.op_type == "Transpose" for n in prep) == 1
    w = numpy_helper.to_array(init[conv.input[1]]).astype(np.float64)
    b = numpy_helper.to_array(init[conv.input[2]]).astype(np.float64) if len(conv.input) > 2 else np.zeros(w.shape[0])
    w2 = w * a[None, :, None, None]
    b2 = b - (w2 * mean[None, :, None, None]).sum(axis=(1, 2, 3))
    attrs = {x.name: helper.get_attribute_value(x) for x in conv.attribute}
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    assert attrs.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET") and attrs.get("group", 1) == 1
    x_nchw = "images_nchw_raw"
    names = ("fold_w", "fold_b", "fold_pads", "fold_pad_value")
    g.initializer.extend([
        numpy_helper.from_array(w2.astype(np.float32), names[0]),
        numpy_helper.from_array(b2.astype(np.float32), names[1]),
        numpy_helper.from_array(np.array([0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3]], np.int64), names[2]),
        numpy_helper.from_array(np.array(mean[0], np.float32), names[3]),
    ])
    new = [
        helper.make_node("Transpose", [g.input[0].name], [x_nchw], name="fold/Transpose", perm=[0, 3, 1, 2]),
        helper.make_node("Pad", [x_nchw, names[2], names[3]], ["images_padded"], name="fold/Pad", mode="constant"),
    ]
    del conv.input[:]
    conv.input.extend(["images_padded", names[0], names[1]])
    for x in conv.attribute:
        if x.name == "pads":
            del x.ints[:]
            x.ints.extend([0, 0, 0, 0])
    nodes = new + [n for n in g.node if n not in prep]
    del g.node[:]
    g.node.extend(nodes)
    used = {i for n in g.node for i in n.input}
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    onnx.checker.check_model(m)
    onnx.save(m, dst)


class Reader(CalibrationDataReader):
    def __init__(self, tensors, batch=8):
        # Full batches only: the histogram calibrators stack every batch's outputs.
        full = len(tensors) - len(tensors) % batch
        self.batches = [np.stack(tensors[i : i + batch]) for i in range(0, full, batch)]
        self.i = 0

    def get_next(self):
        if self.i >= len(self.batches):
            return None
        self.i += 1
        return {"images": self.batches[self.i - 1]}

    def rewind(self):
        self.i = 0


def head_feeders(g):
    """The detector's convs whose outputs (through their Relu6) feed the box/class heads,
    the last conv of each feature map, with the nodes between them and the heads."""
    producer = {o: n for n in g.node for o in n.output}
    out = set()
    for n in g.node:
        if n.op_type == "Conv" and n.name.startswith("BoxPredictor"):
            # The conv and what lies between it and the head (its Relu6), so the head
            # reads the fp32 activation and not a quantize-dequantize of it.
            path, p = [], producer.get(n.input[0])
            while p is not None and p.op_type != "Conv":
                path.append(p.name)
                p = producer.get(p.input[0])
            if p is not None and not p.name.startswith("BoxPredictor"):
                out |= {p.name, *path}
    return out


def eligible_nodes(model_path, kind, leading_convs=None, keep_head_feeders=False, keep_regex=None, keep_depthwise=False):
    """Names of the nodes to quantize: the feature extractor minus its leading convs (and,
    when asked, minus the detector's head-feeding convs and any name matching keep_regex)."""
    g = onnx.load(model_path).graph
    convs = [n.name for n in g.node if n.op_type == "Conv"]
    n_lead = FP32_LEADING_CONVS[kind] if leading_convs is None else leading_convs
    keep = set(convs[:n_lead])
    if kind == "detector" and keep_head_feeders:
        keep |= head_feeders(g)
    if keep_depthwise:
        group = lambda n: next((x.i for x in n.attribute if x.name == "group"), 1)
        keep |= {n.name for n in g.node if n.op_type == "Conv" and group(n) > 1}
    out = []
    for n in g.node:
        if n.op_type not in QUANTIZED_OPS or n.name in keep or not n.name:
            continue
        if kind == "detector" and n.name.startswith("BoxPredictor"):
            continue  # the box and class heads (the anchor decode is unnamed Mul/Exp/...)
        if keep_regex and re.search(keep_regex, n.name):
            continue
        out.append(n.name)
    return out


def calibration_tensors(det_m, bb_m, copies):
    calib, _ = common.split(common.list_photos())
    det = common.session(det_m.onnx, threads=2)
    det_in, bb_in = [], []
    for pi, path in enumerate(calib):
        src = common.load_rgb(path)
        for c in range(copies):
            img = common.transform(src, CALIB_SEED, pi * 100 + c)
            x = common.to_tensor(img, det_m.width, det_m.height)
            det_in.append(x)
            boxes, scores = det.run(None, {"images": x[None]})
            dets = common.decode(boxes[0], scores[0], det_m, *img.size)
            _, crop = common.main_object(dets, *img.size)
            bb_in.append(common.to_tensor(img, bb_m.width, bb_m.height, crop))
    return calib, det_in, bb_in


def quantize(src, dst, kind, tensors, method, tmp, reduce_range, a):
    if a.fold_normalisation:
        folded = os.path.join(tmp, os.path.basename(src).replace(".onnx", ".fold.onnx"))
        fold_normalisation(src, folded)
        src = folded
    pre = os.path.join(tmp, os.path.basename(src).replace(".onnx", ".pre.onnx"))
    if not os.path.exists(pre):
        quant_pre_process(src, pre, skip_symbolic_shape=True)
    leading = a.det_leading if kind == "detector" else a.bb_leading
    nodes = eligible_nodes(pre, kind, leading, a.det_keep_head_feeders, a.det_keep_regex if kind == "detector" else None, a.det_keep_depthwise and kind == "detector")
    extra = {"CalibTensorRangeSymmetric": False, "CalibMovingAverage": False}
    if method == "Percentile":
        extra["CalibPercentile"] = a.percentile
    t0 = time.time()
    quantize_static(
        pre,
        dst,
        Reader(tensors),
        quant_format=QuantFormat.QDQ,
        per_channel=not a.per_tensor,
        reduce_range=reduce_range,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=getattr(CalibrationMethod, method),
        nodes_to_quantize=nodes,
        extra_options=extra,
    )
    print(f"{kind} {method}: {len(nodes)} nodes quantized in {time.time() - t0:.0f} s -> {dst}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    # Entropy and Percentile gave the backbone the same accuracy as MinMax (cosine median
    # 0.978 each, 48 crops) and take 20x longer on the detector; pass them to compare.
    ap.add_argument("--methods", default="MinMax")
    ap.add_argument("--calib-copies", type=int, default=2)
    ap.add_argument(
        "--full-range",
        action="store_true",
        help="8-bit weights: only for CPUs with VNNI/AMX int8 dot products (see REDUCE_RANGE)",
    )
    ap.add_argument("--tag", help="name the outputs *_int8_TAG.onnx (default: the method); one method only")
    ap.add_argument("--only", choices=("detector", "backbone"), help="quantize one model only")
    ap.add_argument("--det-leading", type=int, help=f"detector convs kept fp32 from the input (default {FP32_LEADING_CONVS['detector']})")
    ap.add_argument("--bb-leading", type=int, help=f"backbone convs kept fp32 from the input (default {FP32_LEADING_CONVS['backbone']})")
    ap.add_argument("--det-keep-head-feeders", action="store_true", help="keep the detector's convs feeding the heads in fp32")
    ap.add_argument("--det-keep-depthwise", action="store_true", help="keep the detector's depthwise convs in fp32")
    ap.add_argument("--det-keep-regex", help="also keep detector nodes whose name matches in fp32")
    ap.add_argument("--fold-normalisation", action="store_true", help="fold the input normalisation into the first conv (see fold_normalisation)")
    ap.add_argument("--per-tensor", action="store_true", help="per-tensor weights instead of per-channel")
    ap.add_argument("--percentile", type=float, default=99.999, help="CalibPercentile for --methods Percentile")
    ap.add_argument("--detector", default="ssd_mobilenetv2_oidv4_24cls.toml")
    ap.add_argument("--backbone", default="efficientnet_lite0_imagenet.toml")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    det_m, bb_m = common.Manifest(a.detector), common.Manifest(a.backbone)
    calib, det_in, bb_in = calibration_tensors(det_m, bb_m, a.calib_copies)
    print(f"calibration: {len(calib)} photos x {a.calib_copies} copies = {len(det_in)} images", flush=True)
    methods = a.methods.split(",")
    if a.tag and len(methods) != 1:
        ap.error("--tag names one candidate: give one method")
    for method in methods:
        for m, kind, tensors in ((det_m, "detector", det_in), (bb_m, "backbone", bb_in)):
            if a.only and kind != a.only:
                continue
            stem = os.path.basename(m.onnx).replace(".onnx", "")
            dst = os.path.join(a.out, f"{stem}_int8_{a.tag or method}.onnx")
            quantize(m.onnx, dst, kind, tensors, method, a.out, not a.full_range, a)


if __name__ == "__main__":
    sys.exit(main())
