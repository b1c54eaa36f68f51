"""Which int8 instructions the CPU actually executed: samples of `perf record` (any
event; cpu-clock works in VMs without hardware counters) in ONNX Runtime's library,
matched to the instructions at the sampled addresses (the library is stripped, so
there are no kernel names; the instructions tell the MLAS path apart).

    perf record -e cpu-clock -F 2000 -o ort.data -- PYTHON kernels.py MODEL.onnx
    hot_instructions.py ort.data

Reports the share of ORT's samples within 96 bytes of AMX tile instructions (tdpbusd and
kin, tileloadd: MLAS's AMX QGEMM), of vpdpbusd/vpdpbusds (AVX512-VNNI or AVX-VNNI u8s8 dot
products), of vpmaddubsw (the AVX2 u8s8 path that saturates), and the most sampled
instructions. On a CPU with AMX, an AMX share of 0 means MLAS took its VNNI kernels. Needs perf and objdump.
"""

import collections
import os
import re
import subprocess
import sys

import onnxruntime


def main():
    data = sys.argv[1]
    capi = os.path.join(os.path.dirname(onnxruntime.__file__), "capi")
    so = next(os.path.join(capi, f) for f in os.listdir(capi) if f.startswith("onnxruntime_pybind11_state"))
    rep = subprocess.run(
        ["perf", "report", "-i", data, "--stdio", "--dsos", os.path.basename(so), "--sort", "sym"],
        capture_output=True, text=True, check=True,
    ).stdout
    rows = [(float(m.group(1)), int(m.group(2), 16)) for m in re.finditer(r"([\d.]+)%\s+\[\.\]\s+0x([0-9a-f]+)", rep)]
    total = sum(p for p, _ in rows)
    at_ip, near = collections.Counter(), collections.Counter()
    for pct, addr in rows:
        out = subprocess.run(
            ["objdump", "-d", "--no-show-raw-insn", f"--start-address={addr - 96}", f"--stop-address={addr + 96}", so],
            capture_output=True, text=True,
        ).stdout
        ins = re.findall(r"^\s*([0-9a-f]+):\s+(\S+)", out, re.M)
        here = [mn for a, mn in ins if int(a, 16) == addr]
        at_ip[here[0] if here else "?"] += pct
        window = {mn for _, mn in ins}
        if any(mn.startswith(("tdpb", "tileload")) for mn in window):
            near["tdpbusd/tileloadd (AMX)"] += pct
        elif any(mn.startswith("vpdpbus") for mn in window):
            near["vpdpbusd/vpdpbusds (VNNI)"] += pct
        elif "vpmaddubsw" in window:
            near["vpmaddubsw (AVX2 u8s8)"] += pct
        else:
            near["neither"] += pct
    print(f"{len(rows)} sampled addresses in {os.path.basename(so)}, {total:.1f} % of all samples")
    for k, v in near.most_common():
        print(f"  within 96 bytes of {k}: {v / total * 100:.1f} % of ORT's samples")
    print("  most sampled instructions: " + ", ".join(f"{k} {v / total * 100:.1f} %" for k, v in at_ip.most_common(10)))


if __name__ == "__main__":
    sys.exit(main())
