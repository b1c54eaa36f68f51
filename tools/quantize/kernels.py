"""Which kernels ran: ONNX Runtime's profiler on each model at one thread, batch 8.

    kernels.py MODEL.onnx [MODEL.onnx ...]

Prints the CPU's int8 dot-product features (the x86 flags MLAS picks its int8 GEMM by:
avx512_vnni / avx_vnni / amx_int8, else the AVX2 u8s8 path), then per model the time per
operator type and the nodes that stayed fp32 (Conv/Gemm not turned into QLinearConv /
QGemm), from the profile's per-node records.
"""

import collections
import json
import os
import sys
import tempfile

import numpy as np
import onnxruntime as ort


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        flags = next(line for line in f if line.startswith("flags")).split(":")[1].split()
    wanted = ["avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_int8", "amx_bf16"]
    return {w: (w in flags) for w in wanted}


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
