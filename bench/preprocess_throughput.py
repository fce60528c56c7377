#!/usr/bin/python3
"""Decode + preprocess throughput on one core: mll (C++) against PIL + torchvision, same files.

    /usr/bin/python3 bench/preprocess_throughput.py [--build-dir build] [--repeats 7] [--core 0]

Writes ~500x375 JPEGs (quality 90, the typical ImageNet photo) cut from python3-skimage's photos
into a temporary directory, then on one pinned core measures images/s of
  * PIL + torchvision: Image.open(...).convert("RGB"), Resize(224, bicubic), CenterCrop(224),
    ToTensor, Normalize(CLIP mean/std), torch limited to one thread;
  * mll_preprocess_bench: decode_memory + resize_and_crop_u8 + to_normalized_chw (exact mode),
and, on larger photos (~1400 px), the same plus mll's fast mode (DCT-domain JPEG downscaling).
Both sides read the file bytes from memory. Reports the median over the repeats and the ratio.
"""

import argparse
import io
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import torch
import torchvision.transforms as T
from PIL import Image

SKIMAGE = "/usr/lib/python3/dist-packages/skimage/data"
PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
          "hubble_deep_field.jpg", "retina.jpg", "color.png"]


def make_set(out_dir, size, count):
    """`count` JPEGs of `size` (w, h), cut and scaled from the photos at varying offsets."""
    paths = []
    for i in range(count):
        src = Image.open(os.path.join(SKIMAGE, PHOTOS[i % len(PHOTOS)])).convert("RGB")
        w, h = size if i % 4 else size[::-1]  # every fourth portrait
        scale = max(w / src.size[0], h / src.size[1]) * (1.0 + 0.05 * (i % 5))
        big = src.resize((max(w, round(src.size[0] * scale)), max(h, round(src.size[1] * scale))),
                         Image.BICUBIC)
        left = (big.size[0] - w) * (i % 3) // 2
        top = (big.size[1] - h) * (i % 2)
        path = os.path.join(out_dir, f"img{i:03d}_{w}x{h}.jpg")
        big.crop((left, top, left + w, top + h)).save(path, quality=90)
        paths.append(path)
    return paths


def pil_rate(blobs, repeats, size):
    torch.set_num_threads(1)
    tf = T.Compose([T.Resize(size, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(size),
                    T.ToTensor(), T.Normalize((0.48145466, 0.4578275, 0.40821073),
                                              (0.26862954, 0.26130258, 0.27577711))])
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for b in blobs:
            tf(Image.open(io.BytesIO(b)).convert("RGB"))
        rates.append(len(blobs) / (time.perf_counter() - start))
    return statistics.median(rates)


def mll_rate(exe, paths, repeats, size, core, fast):
    cmd = ["taskset", "-c", str(core), exe, "--size", str(size), "--repeats", str(repeats)]
    cmd += ["--fast"] if fast else []
    out = subprocess.run(cmd + paths, check=True, capture_output=True, text=True).stdout
    return float(next(l.split()[1] for l in out.splitlines() if l.startswith("median")))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--images", type=int, default=48)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--core", type=int, default=0)
    args = ap.parse_args()
    exe = os.path.join(args.build_dir, "src", "image", "mll_preprocess_bench")
    if not os.access(exe, os.X_OK):
        sys.exit(f"{exe} not found: build the mll_preprocess_bench target first")
    os.sched_setaffinity(0, {args.core})  # this process (PIL side) on the same single core

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), platform.processor())
    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {cpu}, core {args.core}, "
          f"PIL {Image.__version__}, torch {torch.__version__}, {args.repeats} repeats (median)")
    print(f"{'set':<22}{'PIL+torchvision':>17}{'mll exact':>12}{'ratio':>8}"
          f"{'mll fast':>11}{'ratio':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for label, size, count in [("500x375 JPEG", (500, 375), args.images),
                                   ("1400x1050 JPEG", (1400, 1050), max(8, args.images // 4))]:
            d = os.path.join(tmp, label.split()[0])
            os.makedirs(d)
            paths = make_set(d, size, count)
            blobs = [open(p, "rb").read() for p in paths]
            pil = pil_rate(blobs, args.repeats, args.size)
            exact = mll_rate(exe, paths, args.repeats, args.size, args.core, fast=False)
            fast = mll_rate(exe, paths, args.repeats, args.size, args.core, fast=True)
            print(f"{label + f' x{count}':<22}{pil:>13.1f} i/s{exact:>8.1f} i/s{exact / pil:>7.2f}x"
                  f"{fast:>7.1f} i/s{fast / pil:>7.2f}x")
            loss = subprocess.run([exe, "--size", str(args.size), "--fast-loss"] + paths,
                                  check=True, capture_output=True, text=True).stdout.strip()
            print(f"{'':<22}fast mode against exact (uint8): {loss}")


if __name__ == "__main__":
    main()
