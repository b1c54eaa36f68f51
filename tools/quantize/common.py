"""What the quantization, its evaluation and the Python baseline share: the photo split,
the seeded transforms, and the pipeline's pre- and post-processing (Pillow bilinear
stretch-resize to NHWC float32 0..255; normalisation is inside the graphs).

Mirrors shared/model/src/postprocess.rs and shared/imaging: best non-background class
per anchor, score > threshold, class-agnostic NMS, main object = highest
score * sqrt(area fraction) above 0.4, its box floored at x1,y1 and ceiled at x2,y2,
whole image when none or thinner than 8 px.
"""

import hashlib
import io
import os
import tomllib

import numpy as np
from PIL import Image, ImageOps

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS = os.path.join(ROOT, "models")
CATALOG = os.environ.get("IMGFEAT_CATALOG_PHOTOS", os.path.join(ROOT, "..", "shared", "catalog-photos"))


def list_photos(folder=CATALOG):
    exts = (".jpg", ".jpeg", ".png", ".webp")
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(exts))


def split(photos):
    """A fixed split by file name (not by position, so adding photos keeps old ones
    where they were): about a quarter calibrates, the rest is held out."""
    calib, held = [], []
    for p in photos:
        h = hashlib.sha256(os.path.basename(p).encode()).digest()[0]
        (calib if h % 4 == 0 else held).append(p)
    return calib, held


def load_rgb(path_or_bytes):
    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with Image.open(src) as im:
        return ImageOps.exif_transpose(im).convert("RGB")


def transform(img, seed, index):
    """A seeded copy: crop keeping 75-100 % of each side, long side 640-1024 px,
    brightness x0.9-1.1, a flip half of the time, JPEG q85 round trip."""
    return load_rgb(transform_jpeg(img, seed, index))


def transform_jpeg(img, seed, index):
    """The JPEG bytes of `transform`'s copy."""
    rng = np.random.default_rng([seed, index])
    w, h = img.size
    cw = max(1, min(w, round(w * rng.uniform(0.75, 1.0))))
    ch = max(1, min(h, round(h * rng.uniform(0.75, 1.0))))
    x = round((w - cw) * rng.uniform())
    y = round((h - ch) * rng.uniform())
    out = img.crop((x, y, x + cw, y + ch))
    long = int(rng.uniform(640, 1025))
    s = long / max(cw, ch)
    out = out.resize((max(1, round(cw * s)), max(1, round(ch * s))), Image.BILINEAR)
    out = Image.eval(out, lambda v, b=rng.uniform(0.9, 1.1): min(255, int(v * b)))
    if rng.uniform() < 0.5:
        out = out.transpose(Image.FLIP_LEFT_RIGHT)
    buf = io.BytesIO()
    out.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def load_drafted(path_or_bytes, size):
    """Shrink-on-load, as imgfeat's `[pipeline.decode] shrink_on_load`: (the RGB image
    decoded at 1/s of its size by Pillow's draft, its upright full size, s)."""
    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with Image.open(src) as im:
        full = im.size
        drafted = im.draft("RGB", size)
        shrink = round(full[0] / drafted[1][2]) if drafted else 1
        rgb = ImageOps.exif_transpose(im).convert("RGB")
    if shrink > 1 and rgb.size != tuple(-(-v // shrink) for v in full):
        full = full[::-1]  # EXIF turned it a quarter
    return rgb, (full if shrink > 1 else rgb.size), shrink


def covering(box, shrink, size):
    """The drafted image's pixels that cover `box` (x1, y1, x2, y2 in the original's)."""
    if shrink == 1:
        return box
    w, h = size
    x0, y0 = min(box[0] // shrink, w - 1), min(box[1] // shrink, h - 1)
    x1 = max(x0 + 1, min(-(-box[2] // shrink), w))
    y1 = max(y0 + 1, min(-(-box[3] // shrink), h))
    return (x0, y0, x1, y1)


def draft_factor(size, at_least):
    """Pillow's draft rule: the largest of 8, 4, 2, 1 not above the smaller of
    width // at_least[0] and height // at_least[1]."""
    ratio = min(size[0] // at_least[0], size[1] // at_least[1])
    return next((s for s in (8, 4, 2) if ratio >= s), 1)


def crop_source(path_or_bytes, drafted, shrink, box, at_least, again):
    """(pixels, region) the main object's crop is taken from: the region of the drafted
    image that covers `box`; or, with `again` (imgfeat's `crop_at_extractor_scale`, the
    `.shrink.region` versions) and where the drafted pixels hold fewer than `at_least`,
    the photo decoded anew at the scale that covers `at_least` (Pillow's draft to it)
    and the region there."""
    crop_size = (box[2] - box[0], box[3] - box[1])
    finer = min(shrink, draft_factor(crop_size, at_least)) if again else shrink
    if finer == shrink:
        return drafted, covering(box, shrink, drafted.size)
    if finer == 1:
        return load_rgb(path_or_bytes), box
    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with Image.open(src) as im:
        w, h = im.size
    pixels, _, got = load_drafted(path_or_bytes, (w // finer, h // finer))
    assert got == finer, (got, finer)
    return pixels, covering(box, finer, pixels.size)


def to_tensor(img, w, h, box=None):
    """NHWC float32 0..255 of one image (or of its box x1,y1,x2,y2 in pixels)."""
    if box is not None:
        img = img.crop(box)
    return np.asarray(img.resize((w, h), Image.BILINEAR), dtype=np.float32)


class Manifest:
    def __init__(self, name):
        path = os.path.join(MODELS, name)
        with open(path, "rb") as f:
            self.toml = tomllib.load(f)
        self.dir = os.path.dirname(path)
        self.onnx = os.path.join(self.dir, self.toml["file"])
        self.width = self.toml["input"]["width"]
        self.height = self.toml["input"]["height"]
        labels = self.toml.get("labels", {}).get("file")
        self.labels = open(os.path.join(self.dir, labels)).read().splitlines() if labels else []
        self.background = self.toml.get("labels", {}).get("background")
        t = self.toml.get("thresholds", {})
        self.score = t.get("score", 0.3)
        self.nms_iou = t.get("nms_iou", 0.45)


def nms(boxes, iou_thr, keep_max):
    kept = []
    for i, b in enumerate(boxes):
        if len(kept) >= keep_max:
            break
        if all(iou(boxes[k], b) <= iou_thr for k in kept):
            kept.append(i)
    return kept


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = lambda r: max(0.0, r[2] - r[0]) * max(0.0, r[3] - r[1])
    union = area(a) + area(b) - inter
    return inter / union if union > 0 else 0.0


def decode(boxes, scores, m, width, height, keep_max=20):
    """One image's detections [(label, score, [x1,y1,x2,y2] px)], best first."""
    s = scores.copy()
    if m.background is not None:
        s[:, m.background] = -np.inf
    cls = s.argmax(1)
    best = s[np.arange(len(s)), cls]
    idx = np.nonzero(best > m.score)[0]
    idx = idx[np.argsort(-best[idx], kind="stable")]
    cand = [boxes[i].tolist() for i in idx]
    kept = nms(cand, m.nms_iou, keep_max)
    out = []
    for k in kept:
        i = idx[k]
        b = boxes[i]
        out.append((m.labels[cls[i]], float(best[i]), [float(b[0]) * width, float(b[1]) * height, float(b[2]) * width, float(b[3]) * height]))
    return out


def main_object(dets, width, height, floor=0.4, min_side=8):
    """(label or None, crop box x1,y1,x2,y2 in whole pixels)."""
    whole = (None, (0, 0, width, height))
    area = float(width * height)
    best, best_v = None, -1.0
    for d in dets:
        if d[1] <= floor:
            continue
        x1, y1, x2, y2 = (min(max(v, 0.0), lim) for v, lim in zip(d[2], (width, height, width, height)))
        v = d[1] * np.sqrt(min(max((x2 - x1) * (y2 - y1) / area, 0.0), 1.0))
        if v > best_v:
            # The reference's main_box: near edges floored, far edges ceiled.
            best, best_v = (d[0], (int(np.floor(x1)), int(np.floor(y1)), int(np.ceil(x2)), int(np.ceil(y2)))), v
    if best is None:
        return whole
    _, (x1, y1, x2, y2) = best
    if x2 - x1 < min_side or y2 - y1 < min_side:
        return whole
    return best


class SimHash:
    def __init__(self, name="simhash64_effnet_lite0.toml"):
        with open(os.path.join(MODELS, name), "rb") as f:
            t = tomllib.load(f)
        self.r = np.fromfile(os.path.join(MODELS, t["projection"]), "<f4").reshape(t["dim"], t["bits"])
        self.mean = np.fromfile(os.path.join(MODELS, t["mean"]), "<f4")

    def codes(self, embeddings):
        """Sign bits packed as numpy packbits (big-endian within a byte), one row each."""
        return np.packbits((embeddings - self.mean) @ self.r > 0, axis=1)


def hamming(a, b):
    return int(np.unpackbits(np.bitwise_xor(a, b)).sum())


def session(path, threads=1, **extra):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    for k, v in extra.items():
        setattr(so, k, v)
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


class OpenVinoSession:
    """An ONNX file on OpenVINO's CPU plugin, one stream of `threads` threads (imgfeat's
    `[pipeline.runtime] backend = "openvino"` layout), answering onnxruntime's
    `run(names, feeds)`."""

    def __init__(self, path, precision, threads=1):
        import openvino as ov

        config = {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1, "INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY", "ENABLE_CPU_PINNING": False}
        self.model = ov.Core().compile_model(path, "CPU", config)
        self.request = self.model.create_infer_request()
        self.names = [o.get_any_name() for o in self.model.outputs]

    def run(self, names, feeds):
        out = self.request.infer({0: next(iter(feeds.values()))})
        by_name = {o.get_any_name(): out[o] for o in self.model.outputs}
        return [by_name[n] for n in (names or self.names)]


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def check_cpu(path, runtime):
    """Refuse, as imgfeat does, what this CPU cannot run as promised: a model whose
    manifest (the .toml beside the .onnx) lists `requires_cpu`, and bf16 without
    AMX or AVX512-BF16. The runtimes themselves fall back silently (OpenVINO computes
    f32 instead of bf16; ONNX Runtime's u8s8 kernels saturate without VNNI), which
    would make a baseline measure something else than its name says."""
    flags = cpu_flags()
    toml_path = os.path.splitext(path)[0] + ".toml"
    if os.path.exists(toml_path):
        with open(toml_path, "rb") as f:
            need = tomllib.load(f).get("requires_cpu", [])
        if need and not flags & set(need):
            raise SystemExit(f"{os.path.basename(path)} needs one of the CPU features {need}; this CPU has none")
    if runtime == "openvino-bf16" and not flags & {"amx_bf16", "avx512_bf16"}:
        raise SystemExit("openvino-bf16 needs one of the CPU features ['amx_bf16', 'avx512_bf16']; this CPU has none")


def runtime_session(path, runtime, threads=1):
    """`ort`, `openvino-f32` or `openvino-bf16`, as imgfeat's [pipeline.runtime]."""
    check_cpu(path, runtime)
    if runtime == "ort":
        return session(path, threads)
    return OpenVinoSession(path, runtime.split("-", 1)[1], threads)
