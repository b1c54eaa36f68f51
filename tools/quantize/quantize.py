"""Static QDQ INT8 quantization of the detector and the backbone.

    quantize.py OUT_DIR [--methods MinMax[,Entropy,Percentile]] [--calib-copies 2] [--full-range]

Calibrates on seeded transformed copies of the calibration quarter of the catalog photos
(common.split), fed exactly as the pipeline feeds the models: the detector sees whole
images, the backbone the fp32 pipeline's main-object crops. Weights per channel (int8,
symmetric, 7 bits: see REDUCE_RANGE), activations uint8, QDQ format, one model per
activation calibration method.

Kept in fp32 because they are sensitive: the first conv(s) (FP32_LEADING_CONVS; the
first sees the raw 0..255 pixels through the in-graph normalisation), the detector's
box/class heads and its anchor decode, and the backbone's pooling and classifier (the
embedding the codes come from must not be quantized again after the last conv).
"""

import argparse
import os
import sys
import time

import numpy as np
import onnx
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
FP32_LEADING_CONVS = {"detector": 1, "backbone": 8}
# REDUCE_RANGE: 7-bit weights. Without VNNI (this project's 2-core AMD EPYC has AVX2
# only) MLAS multiplies uint8 activations by int8 weights with vpmaddubsw, whose int16
# pair sums saturate at 8-bit weights (255 * 127 * 2 > 32767). Measured on the backbone,
# 48 held-out crops, MinMax: embedding cosine to fp32 median 0.972 / min 0.819 with 8-bit
# weights, 0.978 / 0.936 with 7-bit ones; uint8 weights (no saturation) reach 0.994 /
# 0.971 but run 6x slower than fp32 (no fused kernel).


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


def eligible_nodes(model_path, kind):
    """Names of the nodes to quantize: the feature extractor minus its leading convs."""
    g = onnx.load(model_path).graph
    convs = [n.name for n in g.node if n.op_type == "Conv"]
    leading = set(convs[: FP32_LEADING_CONVS[kind]])
    out = []
    for n in g.node:
        if n.op_type not in QUANTIZED_OPS or n.name in leading or not n.name:
            continue
        if kind == "detector" and n.name.startswith("BoxPredictor"):
            continue  # the box and class heads (the anchor decode is unnamed Mul/Exp/...)
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


def quantize(src, dst, kind, tensors, method, tmp, reduce_range):
    pre = os.path.join(tmp, os.path.basename(src).replace(".onnx", ".pre.onnx"))
    if not os.path.exists(pre):
        quant_pre_process(src, pre, skip_symbolic_shape=True)
    nodes = eligible_nodes(pre, kind)
    t0 = time.time()
    quantize_static(
        pre,
        dst,
        Reader(tensors),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        reduce_range=reduce_range,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=getattr(CalibrationMethod, method),
        nodes_to_quantize=nodes,
        extra_options={"CalibTensorRangeSymmetric": False, "CalibMovingAverage": False},
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
    ap.add_argument("--detector", default="ssd_mobilenetv2_oidv4_24cls.toml")
    ap.add_argument("--backbone", default="efficientnet_lite0_imagenet.toml")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    det_m, bb_m = common.Manifest(a.detector), common.Manifest(a.backbone)
    calib, det_in, bb_in = calibration_tensors(det_m, bb_m, a.calib_copies)
    print(f"calibration: {len(calib)} photos x {a.calib_copies} copies = {len(det_in)} images", flush=True)
    for method in a.methods.split(","):
        for m, kind, tensors in ((det_m, "detector", det_in), (bb_m, "backbone", bb_in)):
            stem = os.path.basename(m.onnx).replace(".onnx", "")
            quantize(m.onnx, os.path.join(a.out, f"{stem}_int8_{method}.onnx"), kind, tensors, method, a.out, not a.full_range)


if __name__ == "__main__":
    sys.exit(main())
