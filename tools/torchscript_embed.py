#!/usr/bin/env python3
"""Runs a TorchScript model's two towers in PyTorch on raw input arrays.

The cross-check of the C++ runner against PyTorch: the test suite writes a model (authored in
C++) and its inputs, this script embeds them with torch.jit.load, and the test compares.

    /usr/bin/python3 tools/torchscript_embed.py --model M.pt --images X.f32 --image-shape B,3,H,W \
        --ids T.i64 --ids-shape B,L --out DIR

Writes DIR/image_embeddings.f32 and DIR/text_embeddings.f32: L2-normalised float32, row-major,
little-endian.
"""
import argparse
import os
import sys

import numpy as np
import torch


def shape(text):
    return [int(v) for v in text.split(",")]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--images", required=True)
    parser.add_argument("--image-shape", type=shape, required=True)
    parser.add_argument("--ids", required=True)
    parser.add_argument("--ids-shape", type=shape, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    module = torch.jit.load(args.model, map_location="cpu").eval()
    images = torch.from_numpy(np.fromfile(args.images, dtype="<f4").reshape(args.image_shape))
    ids = torch.from_numpy(np.fromfile(args.ids, dtype="<i8").reshape(args.ids_shape))
    with torch.no_grad():
        for name, out in (("image_embeddings", module.encode_image(images)),
                          ("text_embeddings", module.encode_text(ids))):
            out = out.float()
            out = out / out.norm(2, -1, True)
            out.contiguous().numpy().astype("<f4").tofile(os.path.join(args.out, name + ".f32"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
