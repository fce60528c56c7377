"""Resizes raw RGB images with Pillow, for tests/unit/image/resample_test.cpp.

usage: pillow_resize.py CASES.json   (each case: input, width, height, out_width, out_height,
box [x0, y0, x1, y1], filter "bicubic"|"bilinear", output). Inputs and outputs are raw RGB bytes.
"""
import json
import sys

from PIL import Image

FILTERS = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}

for case in json.load(open(sys.argv[1])):
    with open(case["input"], "rb") as f:
        image = Image.frombytes("RGB", (case["width"], case["height"]), f.read())
    out = image.resize((case["out_width"], case["out_height"]), FILTERS[case["filter"]],
                       box=tuple(case["box"]))
    with open(case["output"], "wb") as f:
        f.write(out.tobytes())
