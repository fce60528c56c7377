#!/usr/bin/env python3
"""Writes a small vision-language model scripted by PyTorch, with its sidecar and reference outputs.

The model obeys mll's model contract (docs/models.md): a TorchScript module with
encode_image(Tensor[B,3,H,W] float) and encode_text(Tensor[B,L] int64), each returning raw
(unnormalised) [B,d] features. The test suite loads it through the C++ runner and compares the
runner's embeddings with the reference ones written here, so the two runtimes are checked on the
same archive and the same input.

Run with a Python that has torch (Debian: /usr/bin/python3 with python3-torch):

    /usr/bin/python3 tools/make_python_stand_in.py --out DIR [--dim 16] [--seed 0] [--id ID]

Writes DIR/ID.pt, DIR/ID.json (sidecar) and DIR/reference.json plus the raw little-endian
arrays it names (inputs and L2-normalised float32 embeddings).
"""
import argparse
import json
import os
import sys

import torch

OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_STD = [0.26862954, 0.26130258, 0.27577711]
SOT, EOT = 49406, 49407


class StandInVLM(torch.nn.Module):
    """Pooled pixels -> MLP for images; mean of layer-normed token embeddings -> linear for text."""

    def __init__(self, dim: int = 16, vocab: int = 49408, width: int = 24, grid: int = 4):
        super().__init__()
        self.grid = grid
        self.image_hidden = torch.nn.Linear(3 * grid * grid, 32)
        self.image_out = torch.nn.Linear(32, dim)
        self.token_embedding = torch.nn.Embedding(vocab, width)
        self.text_norm = torch.nn.LayerNorm(width)
        self.text_out = torch.nn.Linear(width, dim)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.encode_image(image)

    @torch.jit.export
    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        pooled = torch.nn.functional.adaptive_avg_pool2d(image, self.grid).flatten(1)
        return self.image_out(torch.nn.functional.gelu(self.image_hidden(pooled)))

    @torch.jit.export
    def encode_text(self, text: torch.Tensor) -> torch.Tensor:
        x = self.text_norm(self.token_embedding(text))
        keep = (text != 0).unsqueeze(-1).to(x.dtype)
        pooled = (x * keep).sum(1) / keep.sum(1).clamp_min(1.0)
        return self.text_out(pooled)


def write_array(path, tensor):
    """Raw little-endian bytes, row-major (what the C++ test reads)."""
    array = tensor.detach().contiguous().cpu().numpy()
    array.astype(array.dtype.newbyteorder("<")).tofile(path)


def reference_inputs(image_size, context_length, seed, batch=3):
    gen = torch.Generator().manual_seed(seed + 1)
    images = torch.randn(batch, 3, image_size, image_size, generator=gen)
    ids = torch.zeros(batch, context_length, dtype=torch.int64)
    for b in range(batch):
        n = 2 + 3 * b
        ids[b, 0] = SOT
        ids[b, 1:n + 1] = torch.randint(1, SOT, (n,), generator=gen)
        ids[b, n + 1] = EOT
    return images, ids


def write_reference(module, images, ids, out_dir):
    """Writes inputs and L2-normalised float32 embeddings plus reference.json naming them."""
    with torch.no_grad():
        image_emb = module.encode_image(images).float()
        text_emb = module.encode_text(ids).float()
    image_emb = image_emb / image_emb.norm(2, -1, True)
    text_emb = text_emb / text_emb.norm(2, -1, True)
    entries = {}
    for name, tensor, dtype in (("images", images, "float32"), ("ids", ids, "int64"),
                                ("image_embeddings", image_emb, "float32"),
                                ("text_embeddings", text_emb, "float32")):
        file = name + (".f32" if dtype == "float32" else ".i64")
        write_array(os.path.join(out_dir, file), tensor)
        entries[name] = {"file": file, "dtype": dtype, "shape": list(tensor.shape)}
    with open(os.path.join(out_dir, "reference.json"), "w") as f:
        json.dump(entries, f, indent=2)
        f.write("\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output directory (created if missing)")
    parser.add_argument("--id", default="py-stand-in")
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--context-length", type=int, default=77)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    module = torch.jit.script(StandInVLM(dim=args.dim).eval())
    model_file = args.id + ".pt"
    module.save(os.path.join(args.out, model_file))
    sidecar = {
        "format_version": 1,
        "id": args.id,
        "model": model_file,
        "image_size": args.image_size,
        "resize_mode": "shortest",
        "crop": "center",
        "interpolation": "bicubic",
        "mean": OPENAI_MEAN,
        "std": OPENAI_STD,
        "tokenizer": {"kind": "clip-bpe", "context_length": args.context_length},
        "logit_scale": 100.0,
        "params": sum(p.numel() for p in module.parameters()),
        "gflops_per_image": 1e-6,
        "embed_dim": args.dim,
    }
    with open(os.path.join(args.out, args.id + ".json"), "w") as f:
        json.dump(sidecar, f, indent=2)
        f.write("\n")
    images, ids = reference_inputs(args.image_size, args.context_length, args.seed)
    write_reference(module, images, ids, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
