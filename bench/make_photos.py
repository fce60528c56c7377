#!/usr/bin/python3
"""Distinct 500x375 JPEG photos for the decode-bound benchmark (bench/label_pipeline.sh section 7):
random crops (60-100% of each side), mirror and brightness of the six test photos, resized with
bicubic and saved at quality 90, PER_SEED per folder of SEEDS_FILE. Deterministic (seed 7).
Usage: make_photos.py SOURCE_DIR OUT_DIR PER_SEED SEEDS_FILE"""
import os, random, sys
from PIL import Image, ImageEnhance
src, out, per_seed, seeds_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
photos = [Image.open(os.path.join(src, n + ".jpg")).convert("RGB") for n in
          ["astronaut", "chelsea", "coffee", "hubble", "motorcycle", "rocket"]]
rng = random.Random(7)
seeds = [l.strip() for l in open(seeds_file) if l.strip()]
for s, wnid in enumerate(seeds):
    os.makedirs(os.path.join(out, wnid), exist_ok=True)
    for k in range(per_seed):
        p = photos[(s + k) % len(photos)]
        w, h = p.size
        cw, ch = int(w * rng.uniform(0.6, 1.0)), int(h * rng.uniform(0.6, 1.0))
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        img = p.crop((x, y, x + cw, y + ch)).resize((500, 375), Image.BICUBIC)
        if rng.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.8, 1.2))
        img.save(os.path.join(out, wnid, "%d.jpg" % k), quality=90)
