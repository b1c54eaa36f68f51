"""The Python reference of the INT8 models on the 13 fixture photos, for the golden test
shared/model/tests/golden_int8.rs: fixtures/golden_int8.json (and golden_int8_vnni.json).

    make_golden.py [--variant int8|int8_vnni] [OUT]

--variant picks the pair (models/*_{VARIANT}.toml) and the default OUT,
fixtures/golden_{VARIANT}.json. Write the int8_vnni reference on a CPU with VNNI or AMX:
elsewhere the AVX2 kernels saturate with its 8-bit weights (tools/quantize/kernels.py).

Per photo (decoded with EXIF orientation applied, as the pipeline does): the INT8
detector's detections; the INT8 backbone's embedding of the whole image (L2 norm and
first 16 values) beside the fp32 backbone's on the same input, so the test can check that
its tolerance separates the two models; and the INT8 pipeline's main box, the embedding of its crop and its 64-bit code.
"""

import argparse
import json
import os
import sys

import numpy as np

import common

PHOTOS = os.path.join(common.ROOT, "fixtures", "photos")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--variant", default="int8")
    ap.add_argument("out", nargs="?")
    a = ap.parse_args()
    out = a.out or os.path.join(common.ROOT, "fixtures", f"golden_{a.variant}.json")
    det_m = common.Manifest(f"ssd_mobilenetv2_oidv4_24cls_{a.variant}.toml")
    bb_m = common.Manifest(f"efficientnet_lite0_imagenet_{a.variant}.toml")
    fp_bb_m = common.Manifest("efficientnet_lite0_imagenet.toml")
    det, bb, fp_bb = common.session(det_m.onnx), common.session(bb_m.onnx), common.session(fp_bb_m.onnx)
    head = common.SimHash()
    photos = {}
    for name in sorted(os.listdir(PHOTOS)):
        img = common.load_rgb(os.path.join(PHOTOS, name))
        boxes, scores = det.run(["boxes", "scores"], {"images": common.to_tensor(img, det_m.width, det_m.height)[None]})
        dets = common.decode(boxes[0], scores[0], det_m, *img.size)
        whole = common.to_tensor(img, bb_m.width, bb_m.height)[None]
        emb = bb.run(["embedding"], {"images": whole})[0][0]
        fp = fp_bb.run(["embedding"], {"images": whole})[0][0]
        label, box = common.main_object(dets, *img.size)
        crop = bb.run(["embedding"], {"images": common.to_tensor(img, bb_m.width, bb_m.height, box)[None]})[0]
        photos[name] = {
            "detections": [{"label": l, "score": round(s, 5), "box_xyxy": [round(v, 2) for v in b]} for l, s, b in dets],
            "embedding_l2norm": float(np.linalg.norm(emb)),
            "embedding_first16": [round(float(v), 6) for v in emb[:16]],
            "fp32_embedding_first16": [round(float(v), 6) for v in fp[:16]],
            "main_label": label,
            "main_box": list(box),
            "crop_embedding_first16": [round(float(v), 6) for v in crop[0][:16]],
            "code": head.codes(crop)[0].tobytes().hex(),
        }
    import onnxruntime
    import PIL

    doc = {
        "note": f"Python reference of the {a.variant} models (tools/quantize/make_golden.py --variant {a.variant}; onnxruntime {onnxruntime.__version__}, Pillow {PIL.__version__}, EXIF orientation applied, batch 1)",
        "detector": os.path.basename(det_m.onnx),
        "backbone": os.path.basename(bb_m.onnx),
        "photos": photos,
    }
    with open(out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
