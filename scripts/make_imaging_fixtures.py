#!/usr/bin/env python3
"""Writes the fixtures of the imgfeat-imaging tests (fixtures/imaging/), so that
`cargo test -p imgfeat-imaging` needs no Python.

pil/   Pillow's BILINEAR resizes of real photos (whole image to 300x300 and 224x224, and a
       centre region cropped then resized to 224x224, as the reference pipeline slices
       then resizes), saved as lossless PNGs, plus manifest.txt describing each.
draft/ Pillow's shrink-on-load decodes (`draft("RGB", (300, 300))`, 1/2 and 1/8 scaled
       JPEG decodes) of a photo and of a large JPEG made from it, as lossless PNGs, plus
       manifest.txt describing each.
odd/   Small images in forms our own encoders cannot make (CMYK JPEG, EXIF-rotated JPEG,
       16-bit PNG, ...), each with `<name>.expected.png`: what the reference decoder
       gives for it (PIL `.convert("RGB")`, after `exif_transpose` for orientation).

Run in a throwaway venv, with the pinned versions the fixtures were made with:
    python3 -m venv /tmp/pilvenv
    /tmp/pilvenv/bin/pip install pillow==13.0.0 numpy==2.4.6
    /tmp/pilvenv/bin/python scripts/make_imaging_fixtures.py
"""
import io
import os
import struct
import zlib

import numpy as np
import PIL
from PIL import Image, ImageOps

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
PHOTOS = os.path.join(ROOT, "fixtures", "photos")
OUT = os.path.join(ROOT, "fixtures", "imaging")

# A PNG (lossless decode: tests the resize alone), a second PNG, a large JPEG and a
# typical JPEG (these also carry JPEG-decoder differences).
RESIZE_PHOTOS = ["skimage_chelsea.png", "skimage_coffee.png", "darknet_kite.jpg", "darknet_dog.jpg"]
SIZES = [(300, 300), (224, 224)]


def centre_region(w, h):
    """The middle half of the image: x, y, width, height."""
    return w // 4, h // 4, w // 2, h // 2


def save_png(img, path):
    # Through numpy so that no metadata (ICC profile, dpi) rides along: pixels only.
    Image.fromarray(np.asarray(img)).save(path, "PNG", optimize=True)


def write_photo_sizes():
    """Width and height of every photo as PIL sees it upright, for the decode test."""
    lines = ["# photo width height (PIL, after exif_transpose)"]
    for name in sorted(os.listdir(PHOTOS)):
        im = ImageOps.exif_transpose(Image.open(os.path.join(PHOTOS, name)))
        lines.append(f"{name} {im.width} {im.height}")
    with open(os.path.join(OUT, "photo_sizes.txt"), "w") as fh:
        fh.write("\n".join(lines) + "\n")


def make_pil_resizes():
    out = os.path.join(OUT, "pil")
    os.makedirs(out, exist_ok=True)
    lines = ["# output photo x y width height target_width target_height (region in photo pixels)"]
    for name in RESIZE_PHOTOS:
        im = Image.open(os.path.join(PHOTOS, name))
        assert im.getexif().get(0x0112, 1) == 1, f"{name} has an EXIF rotation"
        im = im.convert("RGB")
        W, H = im.size
        stem = os.path.splitext(name)[0]
        for tw, th in SIZES:
            f = f"{stem}_{tw}x{th}.png"
            save_png(im.resize((tw, th), Image.BILINEAR), os.path.join(out, f))
            lines.append(f"{f} {name} 0 0 {W} {H} {tw} {th}")
        x, y, w, h = centre_region(W, H)
        f = f"{stem}_centre_224x224.png"
        save_png(im.crop((x, y, x + w, y + h)).resize((224, 224), Image.BILINEAR), os.path.join(out, f))
        lines.append(f"{f} {name} {x} {y} {w} {h} 224 224")
    with open(os.path.join(out, "manifest.txt"), "w") as fh:
        fh.write("\n".join(lines) + "\n")


def make_drafts():
    out = os.path.join(OUT, "draft")
    os.makedirs(out, exist_ok=True)
    # A large JPEG (2400 x 2400: 1/8 at 300 x 300), from the kite stretched: smooth, so
    # the file stays small.
    kite = Image.open(os.path.join(PHOTOS, "darknet_kite.jpg")).convert("RGB")
    kite.resize((2400, 2400), Image.BILINEAR).save(os.path.join(out, "large.jpg"), "JPEG", quality=60)
    lines = ["# output jpeg target_width target_height shrink (Pillow draft, then convert RGB)"]
    for path, stem in [(os.path.join(PHOTOS, "darknet_kite.jpg"), "darknet_kite"), (os.path.join(out, "large.jpg"), "large")]:
        im = Image.open(path)
        full = im.size
        im.draft("RGB", (300, 300))
        shrink = full[0] // im.size[0] if full[0] % im.size[0] == 0 else round(full[0] / im.size[0])
        f = f"{stem}_draft300.png"
        save_png(im.convert("RGB"), os.path.join(out, f))
        rel = os.path.relpath(path, os.path.join(ROOT, "fixtures"))
        lines.append(f"{f} {rel} 300 300 {shrink}")
    with open(os.path.join(out, "manifest.txt"), "w") as fh:
        fh.write("\n".join(lines) + "\n")


def png16_rgb(arr16):
    """A 16-bit RGB PNG written by hand: PIL cannot save 16-bit colour PNGs."""
    h, w, _ = arr16.shape
    raw = b"".join(b"\x00" + arr16[r].astype(">u2").tobytes() for r in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def make_odd():
    out = os.path.join(OUT, "odd")
    os.makedirs(out, exist_ok=True)
    small = Image.open(os.path.join(PHOTOS, "skimage_chelsea.png")).convert("RGB").resize((64, 48), Image.BILINEAR)
    arr = np.asarray(small)
    base = Image.fromarray(arr)  # drops the photo's ICC profile

    def write(name, data, expected):
        with open(os.path.join(out, name), "wb") as fh:
            fh.write(data)
        save_png(expected, os.path.join(out, name + ".expected.png"))

    def encoded(img, fmt, **kw):
        b = io.BytesIO()
        img.save(b, fmt, **kw)
        return b.getvalue()

    def pil_decode(data):
        return ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")

    for name, img, fmt, kw in [
        ("cmyk.jpg", base.convert("CMYK"), "JPEG", {"quality": 95}),
        ("gray.jpg", base.convert("L"), "JPEG", {"quality": 95}),
        ("plain.bmp", base, "BMP", {}),
        ("plain.tiff", base, "TIFF", {"compression": "tiff_lzw"}),
        ("lossy.webp", base, "WEBP", {"quality": 90}),
        ("lossless.webp", base, "WEBP", {"lossless": True}),
        ("palette.png", base.quantize(64), "PNG", {}),
        ("gray_alpha.png", Image.merge("LA", [base.convert("L"), Image.linear_gradient("L").resize((64, 48))]), "PNG", {}),
    ]:
        data = encoded(img, fmt, **kw)
        write(name, data, pil_decode(data))

    # RGBA with alpha from 0 to 255: alpha is dropped, not composited (PIL convert("RGB")).
    alpha = Image.linear_gradient("L").resize((64, 48))
    rgba = base.copy()
    rgba.putalpha(alpha)
    data = encoded(rgba, "PNG")
    write("rgba.png", data, pil_decode(data))

    # Stored 64x48, EXIF orientation 6 (rotate 90 clockwise to display): decodes to 48x64.
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encoded(base, "JPEG", quality=95, exif=exif.tobytes())
    expected = pil_decode(data)
    assert expected.size == (48, 64), expected.size
    write("exif_orientation_6.jpg", data, expected)

    # 16-bit RGB: distinct low bytes, so truncating instead of scaling would show.
    rng = np.random.default_rng(0)
    arr16 = np.clip(arr.astype(np.int32) * 257 + rng.integers(-128, 128, arr.shape), 0, 65535).astype(np.uint16)
    write("rgb16.png", png16_rgb(arr16), Image.fromarray(np.round(arr16 / 257.0).astype(np.uint8)))

    # Animated GIF whose frames differ everywhere: only the first frame is the answer.
    frames = [base, ImageOps.invert(base), ImageOps.mirror(base)]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    write("animated.gif", data, pil_decode(data))


if __name__ == "__main__":
    print("Pillow", PIL.__version__, "numpy", np.__version__)
    os.makedirs(OUT, exist_ok=True)
    write_photo_sizes()
    make_pil_resizes()
    make_drafts()
    make_odd()
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    print(f"wrote {OUT}: {total / 1e6:.2f} MB")
