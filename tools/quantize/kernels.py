"""Which kernels ran: ONNX Runtime's profiler on each model at one thread, batch 8.

    kernels.py MODEL.onnx [MODEL.onnx ...]

Prints the CPU's int8 dot-product features (the x86 flags MLAS picks its int8 GEMM by:
avx512_vnni / avx_vnni / amx_int8, else the AVX2 u8s8 path), then a probe of the int8
convolution that actually runs here, then per model the time per operator type and the
nodes that stayed fp32 (Conv/Gemm not turned into QLinearConv / QGemm), from the
profile's per-node records.

The probe: a QDQ conv (fused by ORT into QLinearConv, as in the models) with uint8
activations at 255 and int8 weights at 127, whose exact output is known. MLAS's AVX2
u8s8 kernels (vpmaddubsw) add pairs of products in int16 and saturate at 32767, so they
return about half of it; VNNI (vpdpbusd) and AMX accumulate in int32 and are exact. Exact
means the full-range (*_int8_vnni) models compute here what they were measured to.
"""

import collections
import json
import os
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        flags = next(line for line in f if line.startswith("flags")).split(":")[1].split()
    wanted = ["avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_int8", "amx_bf16"]
    return {w: (w in flags) for w in wanted}


def saturation_probe(cin=64, k=3, size=16):
    """(output / exact output) at the centre of a k x k conv of cin channels of 255 by 127."""
    cout = 16
    exact = 255 * 127 * cin * k * k
    ys = exact / 200.0  # the exact result quantizes to 200 of 255
    inits = [
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        numpy_helper.from_array(np.array(0, np.uint8), "zu"),
        numpy_helper.from_array(np.full([cout, cin, k, k], 127, np.int8), "wq"),
        numpy_helper.from_array(np.ones(cout, np.float32), "ws"),
        numpy_helper.from_array(np.zeros(cout, np.int8), "wz"),
        numpy_helper.from_array(np.array(ys, np.float32), "ys"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "one", "zu"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "one", "zu"], ["xd"]),
        helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], axis=0),
        helper.make_node("Conv", ["xd", "wd"], ["c"], pads=[k // 2] * 4),
        helper.make_node("QuantizeLinear", ["c", "ys", "zu"], ["cq"]),
        helper.make_node("DequantizeLinear", ["cq", "ys", "zu"], ["y"]),
    ]
    g = helper.make_graph(
        nodes, "probe", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits,
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)], ir_version=9)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    y = s.run(None, {"x": np.full((1, cin, size, size), 255, np.float32)})[0]
    return float(y[0, 0, size // 2, size // 2] / ys / 200.0)


def profile(path, batch=8, runs=4):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.enable_profiling = True
    so.profile_file_prefix = os.path.join(tempfile.mkdtemp(), "ort")
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    shape = [batch] + [d for d in s.get_inputs()[0].shape[1:]]
    x = np.random.default_rng(0).uniform(0, 255, shape).astype(np.float32)
    for _ in range(runs):
        s.run(None, {s.get_inputs()[0].name: x})
    with open(s.end_profiling()) as f:
        events = json.load(f)
    per_op, count, fp32 = collections.defaultdict(float), collections.Counter(), set()
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
            continue
        op = e["args"].get("op_name")
        per_op[op] += e["dur"]
        count[op] += 1
        if op in ("Conv", "Gemm", "FusedConv", "MatMul"):
            fp32.add(e["name"][: -len("_kernel_time")])
    return per_op, count, sorted(fp32), runs * batch


def main():
    print("cpu:", ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in cpu_flags().items()))
    r = saturation_probe()
    verdict = "exact: int32 accumulation (VNNI/AMX), 8-bit weights are safe" if abs(r - 1) < 0.01 else "saturates: AVX2 u8s8 (vpmaddubsw), use 7-bit weights (the *_int8 pair)"
    print(f"int8 conv probe (u8 255 x s8 127, 576 terms): {r:.3f} of the exact sum, {verdict}")
    for path in sys.argv[1:]:
        per_op, count, fp32, images = profile(path)
        total = sum(per_op.values())
        print(f"\n{os.path.basename(path)}: {total / images / 1000:.1f} ms per image (1 thread, batch 8)")
        for op, d in sorted(per_op.items(), key=lambda kv: -kv[1]):
            if d / total >= 0.005:
                print(f"  {op:18s} {d / total * 100:5.1f} %  {count[op] * 8 // images:3d} nodes")
        print(f"  fp32 Conv/Gemm nodes ({len(fp32)}): " + "; ".join(n.split(";")[0][-60:] for n in fp32))


if __name__ == "__main__":
    sys.exit(main())
