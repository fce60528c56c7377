#!/usr/bin/python3
"""open_clip's side of tests/integration/openclip_export_test.cpp: random checkpoints of real
architectures and what open_clip itself computes from them, independently of the exporter's
settings logic (so a wrong setting in the exporter shows up as a mismatch).

Needs open_clip (and timm, ftfy) on PYTHONPATH; the test unpacks them from ../shared/deps.

  checkpoint --model ARCH --seed S --out FILE
      torch.manual_seed(S), open_clip.create_model(ARCH, pretrained=None), save its state_dict.
  embed --model ARCH --checkpoint FILE --images LIST [--captions JSONL] --out FILE [settings]
      L2-normalised float32 embeddings by open_clip's preprocess transform and tokenizer and the
      eager model: one line per image ("image v1 v2 ..."), then one per caption ("text ...").
  trace --model ARCH --checkpoint FILE --out FILE.pt [settings]
      the model traced in mll's contract (the exporter's TowerWrapper), e.g. built with another
      activation than the sidecar next to it was exported from.
  shifted-reference --model ARCH --checkpoint FILE --sidecar FILE [settings]
      replaces the sidecar's reference by the parity set embedded with the center crop moved one
      pixel to the right (what a preprocessing off by one pixel computes).
settings: --quick-gelu, --mean R,G,B, --std R,G,B, --interpolation, --resize-mode
"""
import argparse
import json
import logging
import os
import sys
import warnings

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(HERE, "..", "..", "tools")


def floats(text):
    return tuple(float(v) for v in text.split(","))


def build(args):
    import open_clip
    kwargs = {}
    if args.quick_gelu:
        kwargs["force_quick_gelu"] = True
    for key in ("mean", "std", "interpolation", "resize_mode"):
        if getattr(args, key) is not None:
            kwargs["image_" + key] = getattr(args, key)
    model, _, preprocess = open_clip.create_model_and_transforms(
        args.model, pretrained=args.checkpoint, **kwargs)
    return open_clip, model.eval(), preprocess


def image_embeddings(model, preprocess, paths):
    from PIL import Image
    pixels = []
    for path in paths:
        with Image.open(path) as im:
            pixels.append(preprocess(im))
    with torch.no_grad():
        return model.encode_image(torch.stack(pixels), normalize=True).float()


def cmd_checkpoint(args):
    import open_clip
    torch.manual_seed(args.seed)
    model = open_clip.create_model(args.model, pretrained=None)
    calibrate_batch_norms(model)
    torch.save(model.state_dict(), args.out)


def calibrate_batch_norms(model):
    """At its initialisation a ResNet tower (RN50: zero-initialised residual scales, running
    statistics of 0 and 1) gives every photo nearly the same embedding (cosine 0.9998 between
    different photos, 1.0 against a one-pixel shift), so a parity test would prove nothing. The
    zero scales are drawn instead and the statistics are those of smooth noise images."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    if not norms:
        return
    for m in norms:
        m.momentum = None  # a cumulative average over the calibration batch
        m.reset_running_stats()
        if not m.weight.detach().any():
            m.weight.data.uniform_(0.5, 1.5)
    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    noise = torch.randn(8, 3, size + 8, size + 8)
    model.train()
    with torch.no_grad():
        model.visual(torch.nn.functional.avg_pool2d(noise, 9, stride=1) * 3)
    model.eval()
    for m in norms:
        m.momentum = 0.1


def cmd_embed(args):
    open_clip, model, preprocess = build(args)
    with open(args.images) as f:
        paths = [line.rstrip("\n") for line in f if line.strip()]
    rows = [("image", r) for r in image_embeddings(model, preprocess, paths).tolist()]
    if args.captions:
        with open(args.captions, encoding="utf-8") as f:
            captions = [json.loads(line) for line in f if line.strip()]
        tokenizer = open_clip.get_tokenizer(args.model)
        with torch.no_grad():
            text = model.encode_text(tokenizer(captions), normalize=True).float()
        rows += [("text", r) for r in text.tolist()]
    with open(args.out, "w") as f:
        for kind, row in rows:
            f.write(kind + " " + " ".join(repr(v) for v in row) + "\n")


def cmd_trace(args):
    sys.path.insert(0, TOOLS)
    import export_openclip
    _, model, preprocess = build(args)
    size = model.visual.preprocess_cfg["size"]
    size = size[0] if isinstance(size, (tuple, list)) else size
    ctx = model.context_length
    image = torch.randn(2, 3, size, size)
    text = export_openclip.example_text(2, ctx, "clip-bpe")
    wrapper = export_openclip.TowerWrapper(model).eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = torch.jit.trace_module(wrapper, {"encode_image": image, "encode_text": text},
                                        check_trace=False)
    module.save(args.out)


def cmd_shifted_reference(args):
    import torchvision.transforms.functional as F
    from torchvision import transforms as T
    open_clip, model, preprocess = build(args)
    with open(args.sidecar) as f:
        sidecar = json.load(f)
    manifest_path = os.path.join(HERE, "..", "..", "data", "reference", "parity-1.json")
    with open(manifest_path) as f:
        manifest = json.load(f)
    steps = list(preprocess.transforms)
    crop = next(i for i, s in enumerate(steps) if isinstance(s, T.CenterCrop))
    side = steps[crop].size
    side = side[0] if isinstance(side, (tuple, list)) else side

    def shifted_crop(img):  # torchvision's center crop box, one pixel to the right
        top = int(round((img.height - side) / 2.0))
        left = int(round((img.width - side) / 2.0)) + 1
        return F.crop(img, top, left, side, side)

    shifted = T.Compose(steps[:crop] + [shifted_crop] + steps[crop + 1:])
    base = os.path.dirname(manifest_path)
    paths = [os.path.join(base, e["file"]) for e in manifest["images"]]
    sidecar["reference"]["image_embeddings"] = image_embeddings(model, shifted, paths).tolist()
    with open(args.sidecar, "w") as f:
        json.dump(sidecar, f, indent=2)


def main():
    logging.basicConfig(level=logging.ERROR)
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("checkpoint")
    c.add_argument("--model", required=True)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", required=True)
    for name in ("embed", "trace", "shifted-reference"):
        c = sub.add_parser(name)
        c.add_argument("--model", required=True)
        c.add_argument("--checkpoint", required=True)
        c.add_argument("--quick-gelu", action="store_true")
        c.add_argument("--mean", type=floats)
        c.add_argument("--std", type=floats)
        c.add_argument("--interpolation")
        c.add_argument("--resize-mode")
        if name == "embed":
            c.add_argument("--images", required=True)
            c.add_argument("--captions")
        if name in ("embed", "trace"):
            c.add_argument("--out", required=True)
        if name == "shifted-reference":
            c.add_argument("--sidecar", required=True)
    args = p.parse_args()
    {"checkpoint": cmd_checkpoint, "embed": cmd_embed, "trace": cmd_trace,
     "shifted-reference": cmd_shifted_reference}[args.command](args)


if __name__ == "__main__":
    main()
