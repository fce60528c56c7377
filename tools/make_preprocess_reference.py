#!/usr/bin/python3
"""Writes the preprocessing test inputs and their PIL/torchvision references into tests/data/image/.

Run with Debian's interpreter (python3-pil 9.4, python3-torchvision 0.14, python3-skimage):

    /usr/bin/python3 tools/make_preprocess_reference.py [--out tests/data/image]

Inputs are real photos from python3-skimage's data directory, re-encoded as JPEG (quality 90) at
several sizes (odd ones too), plus small synthetic PNGs/JPEGs covering every colour type the
decoder converts (grayscale, palette with tRNS, 1- and 4-bit, gray+alpha, RGBA, 16-bit, CMYK).

References, all produced from ``Image.open(p).convert("RGB")``:
  * ``reference.json``: per input the size and SHA-256 of the decoded RGB bytes; per crop case the
    transform, the crop file and the SHA-256, sum and sum of squares of the normalised float32 tensor.
  * ``crop_*.png``: the uint8 crops after Resize + CenterCrop (lossless PNG keeps them small).
  * ``decoded_*.png``: the full decoded RGB of the small synthetic inputs (to report pixel diffs).
  * ``normalize_lut_*.f32``: ToTensor + Normalize applied to every uint8 value of each channel
    (3 x 256 float32, little-endian): the float tensor is a pure per-channel function of the crop.

The transforms mirror open_clip's eval transform (open_clip/transform.py, ``image_transform``):
square "shortest" = torchvision Resize(int) + CenterCrop; non-square "shortest" and "longest" use
open_clip's ResizeKeepRatio (sizes from Python round()) followed by CenterCrop, which pads with 0.
"""

import argparse
import hashlib
import json
import os
import struct
import zlib

import numpy as np
import torch
import torchvision
import torchvision.transforms as T
import torchvision.transforms.functional as F
from PIL import Image

SKIMAGE_DATA = "/usr/lib/python3/dist-packages/skimage/data"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
NORMALIZATIONS = {
    "clip": (CLIP_MEAN, CLIP_STD),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "half": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}
INTERP = {"bicubic": T.InterpolationMode.BICUBIC, "bilinear": T.InterpolationMode.BILINEAR}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def skimage_image(name):
    return Image.open(os.path.join(SKIMAGE_DATA, name)).convert("RGB")


# ---------------------------------------------------------------- PNG writer for 16-bit inputs
# PIL 9.4 cannot write 16-bit RGB/RGBA/LA PNGs, so these are encoded here (filter 0, one IDAT).
def write_png(path, array, color_type, bit_depth):
    height, width = array.shape[:2]
    if bit_depth == 16:
        raw = array.astype(">u2").tobytes()
    else:
        raw = array.astype(np.uint8).tobytes()
    stride = len(raw) // height
    scanlines = b"".join(b"\x00" + raw[y * stride:(y + 1) * stride] for y in range(height))

    def chunk(tag, body):
        return (struct.pack(">I", len(body)) + tag + body +
                struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
                chunk(b"IDAT", zlib.compress(scanlines, 9)) + chunk(b"IEND", b""))


def make_inputs(out):
    """Writes the test inputs; returns their file names, the photos first."""
    rng = np.random.default_rng(20240611)
    photos = []

    def save_jpeg(im, name, **kw):
        im.save(os.path.join(out, name), quality=kw.pop("quality", 90), **kw)
        photos.append(name)

    save_jpeg(skimage_image("astronaut.png"), "astronaut.jpg")  # 512x512
    save_jpeg(skimage_image("chelsea.png"), "chelsea.jpg")  # 451x300, odd width
    save_jpeg(skimage_image("coffee.png"), "coffee.jpg")  # 600x400
    save_jpeg(skimage_image("rocket.jpg"), "rocket.jpg")  # 427x640, portrait
    save_jpeg(skimage_image("motorcycle_left.png"), "motorcycle.jpg")  # 741x500, odd
    save_jpeg(skimage_image("hubble_deep_field.jpg").crop((150, 100, 851, 711)),
              "hubble.jpg")  # 701x611, both odd
    save_jpeg(Image.open(os.path.join(SKIMAGE_DATA, "camera.png")).convert("L"),
              "camera_gray.jpg")
    # PIL writes CMYK JPEGs inverted with an Adobe marker, the convention its reader assumes.
    save_jpeg(skimage_image("chelsea.png").convert("CMYK"), "chelsea_cmyk.jpg")
    save_jpeg(skimage_image("coffee.png").resize((301, 201), Image.BICUBIC),
              "coffee_progressive_444.jpg", progressive=True, subsampling=0)
    save_jpeg(skimage_image("astronaut.png").resize((257, 193), Image.BICUBIC),
              "astronaut_422.jpg", subsampling=1)

    small = []
    chelsea_small = skimage_image("chelsea.png").resize((151, 101), Image.BICUBIC)
    pal = chelsea_small.quantize(colors=64)
    pal.info["transparency"] = 3
    pal.save(os.path.join(out, "palette_trns.png"), transparency=3)
    small.append("palette_trns.png")
    chelsea_small.quantize(colors=16).save(os.path.join(out, "palette_4bit.png"), bits=4)
    small.append("palette_4bit.png")
    chelsea_small.convert("L").point(lambda v: 255 if v > 110 else 0).convert("1").save(
        os.path.join(out, "bilevel.png"))
    small.append("bilevel.png")

    coffee_small = np.asarray(skimage_image("coffee.png").resize((160, 107), Image.BICUBIC))
    alpha = np.tile(np.linspace(0, 255, 160).astype(np.uint8), (107, 1))
    Image.fromarray(np.dstack([coffee_small, alpha]), "RGBA").save(os.path.join(out, "rgba.png"))
    small.append("rgba.png")
    gray_small = np.asarray(chelsea_small.convert("L"))
    Image.fromarray(np.dstack([gray_small, alpha[:101, :151]]), "LA").save(
        os.path.join(out, "gray_alpha.png"))
    small.append("gray_alpha.png")
    Image.fromarray(gray_small, "L").save(os.path.join(out, "gray.png"))
    small.append("gray.png")

    # 16-bit: the low byte is noise so that truncation versus rounding would show.
    rgb16 = coffee_small[:43, :61].astype(np.uint16) * 256 + rng.integers(0, 256, (43, 61, 3))
    write_png(os.path.join(out, "rgb16.png"), rgb16, color_type=2, bit_depth=16)
    small.append("rgb16.png")
    rgba16 = np.dstack([rgb16, rng.integers(0, 65536, (43, 61))])
    write_png(os.path.join(out, "rgba16.png"), rgba16, color_type=6, bit_depth=16)
    small.append("rgba16.png")
    la16 = np.dstack([gray_small[:61, :83].astype(np.uint16) * 257,
                      rng.integers(0, 65536, (61, 83))])
    write_png(os.path.join(out, "gray_alpha16.png"), la16, color_type=4, bit_depth=16)
    small.append("gray_alpha16.png")
    # PIL opens 16-bit gray as mode "I" and convert("RGB") clips to 0..255 instead of scaling:
    # values straddle 255 so that both the clip and the pass-through show.
    gray16 = (gray_small[:61, :83].astype(np.uint16) * 2).astype(np.uint16)
    write_png(os.path.join(out, "gray16.png"), gray16, color_type=0, bit_depth=16)
    small.append("gray16.png")
    return photos, small


def keep_ratio_size(img, target_hw, longest):
    # open_clip's ResizeKeepRatio.get_params without the random parts.
    h, w = img.size[1], img.size[0]
    ratio_h, ratio_w = h / target_hw[0], w / target_hw[1]
    ratio = max(ratio_h, ratio_w) * longest + min(ratio_h, ratio_w) * (1.0 - longest)
    return [round(h / ratio), round(w / ratio)]


def crop_u8(img, size_hw, mode, interpolation):
    interp = INTERP[interpolation]
    if mode == "squash":
        return F.resize(img, list(size_hw), interp)
    if mode == "shortest" and size_hw[0] == size_hw[1]:
        return T.CenterCrop(size_hw[0])(T.Resize(size_hw[0], interpolation=interp)(img))
    longest = 1.0 if mode == "longest" else 0.0
    resized = F.resize(img, keep_ratio_size(img, size_hw, longest), interp)
    return T.CenterCrop(list(size_hw))(resized)


def normalized(crop, norm):
    mean, std = NORMALIZATIONS[norm]
    return T.Normalize(mean, std)(T.ToTensor()(crop))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests",
                                                      "data", "image"))
    args = parser.parse_args()
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)

    photos, small = make_inputs(out)
    ref = {
        "generator": "tools/make_preprocess_reference.py",
        "versions": {"pillow": Image.__version__, "torch": torch.__version__,
                     "torchvision": torchvision.__version__},
        "decode": {},
        "crops": [],
        "normalize_luts": {},
    }
    for name in photos + small:
        rgb = Image.open(os.path.join(out, name)).convert("RGB")
        data = np.asarray(rgb)
        entry = {"width": rgb.size[0], "height": rgb.size[1], "rgb_sha256": sha256(data.tobytes()),
                 "mode": Image.open(os.path.join(out, name)).mode}
        if name in small:
            entry["decoded_png"] = "decoded_" + os.path.splitext(name)[0] + ".png"
            rgb.save(os.path.join(out, entry["decoded_png"]))
        ref["decode"][name] = entry

    # The JPEG variants (gray, progressive, 4:2:2) are covered by their decode hashes; CMYK also
    # gets a crop because its conversion happens before the resize.
    cases = [(p, (224, 224), "shortest", "bicubic") for p in photos[:6] + ["chelsea_cmyk.jpg"]]
    cases += [
        ("chelsea.jpg", (336, 336), "shortest", "bicubic"),  # crop offset 84.5 rounds to even
        ("motorcycle.jpg", (256, 192), "shortest", "bicubic"),  # non-square target, odd input
        ("coffee.jpg", (224, 224), "squash", "bicubic"),
        ("rocket.jpg", (224, 224), "longest", "bicubic"),  # padded with 0
        ("astronaut.jpg", (224, 224), "shortest", "bilinear"),
        ("palette_trns.png", (224, 224), "shortest", "bicubic"),  # upscaling
        ("rgba.png", (96, 96), "shortest", "bicubic"),
    ]
    for name, size_hw, mode, interpolation in cases:
        img = Image.open(os.path.join(out, name)).convert("RGB")
        crop = crop_u8(img, size_hw, mode, interpolation)
        assert crop.size == (size_hw[1], size_hw[0]), (name, crop.size)
        stem = os.path.splitext(name)[0]
        crop_file = f"crop_{stem}_{size_hw[0]}x{size_hw[1]}_{mode}_{interpolation}.png"
        crop.save(os.path.join(out, crop_file), optimize=True)
        tensor = normalized(crop, "clip")
        ref["crops"].append({
            "input": name, "height": size_hw[0], "width": size_hw[1], "resize_mode": mode,
            "interpolation": interpolation, "crop": crop_file,
            "crop_sha256": sha256(np.asarray(crop).tobytes()),
            "clip_f32_sha256": sha256(tensor.numpy().astype("<f4").tobytes()),
            "clip_sum": float(tensor.double().sum()),
            "clip_sum_sq": float((tensor.double() ** 2).sum()),
        })

    # Every uint8 value in every channel: a 3 x 1 x 256 image through ToTensor + Normalize.
    ramp = Image.fromarray(np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2))
    for norm, (mean, std) in NORMALIZATIONS.items():
        lut = normalized(ramp, norm).numpy().reshape(3, 256).astype("<f4")
        lut_file = f"normalize_lut_{norm}.f32"
        lut.tofile(os.path.join(out, lut_file))
        ref["normalize_luts"][norm] = {"file": lut_file, "mean": mean, "std": std}

    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1, sort_keys=True)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(out, n)) for n in os.listdir(out))
    print(f"wrote {len(os.listdir(out))} files, {total / 1e6:.2f} MB, to {out}")


if __name__ == "__main__":
    main()
