#!/usr/bin/env python3
"""Exports an open_clip model as an mll model: a TorchScript file plus its JSON sidecar.

    python3 tools/export_openclip.py --model ViT-B-32 --pretrained laion2b_s34b_b79k --out DIR \
        [--id ID] [--device cpu] [--profile-csv model_profile.csv] [--script] [--imagenet-top1 X]

Run it where open_clip and torch are installed (the model's weights are downloaded or read from
open_clip's cache). The TorchScript archive is readable by a libtorch at least as new as the
PyTorch that wrote it, so export with a PyTorch no newer than the libtorch mll is built against,
or build mll against your PyTorch's libtorch (-DTorch_DIR=<site-packages>/torch/share/cmake/Torch).

The module exposes encode_image(Tensor[B,3,H,W] float32) and encode_text(Tensor[B,L] int64), each
returning the model's raw (unnormalised) [B,d] features; mll's runner normalises. The sidecar
records the preprocessing (image size, resize mode, interpolation, mean/std), the tokenizer kind and
context length, exp(logit_scale), the parameter count and the image tower's GFLOPs (2 x
multiply-adds, taken from open_clip's model_profile.csv when given, else measured with
torch.profiler). Before writing, the exported module is reloaded and compared with the eager model
on a batch of another size, so a trace that baked in a shape is caught here, not in a labeling run.

--stand-in exports a tiny local module shaped like an open_clip model instead (no open_clip
needed): the test suite uses it to check the export path end to end.
"""
import argparse
import csv
import json
import os
import shutil
import sys
import tempfile

import torch

SIDECAR_VERSION = 1
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
CLIP_SOT, CLIP_EOT = 49406, 49407
# HF tokenizers whose vocabulary is a SentencePiece model (NLLB, XLM-R, mT5, ...); other HF
# tokenizers used by open_clip (RoBERTa) are GPT-2 byte-level BPE.
SENTENCEPIECE_HINTS = ("xlm-roberta", "nllb", "mt5", "t5", "sentencepiece", "siglip", "bert")


class TowerWrapper(torch.nn.Module):
    """The mll contract around an open_clip-like model: raw features, no normalisation."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, image):
        return self.encode_image(image)

    def encode_image(self, image):
        return self.model.encode_image(image, normalize=False)

    def encode_text(self, text):
        return self.model.encode_text(text, normalize=False)


class StandInOpenClip(torch.nn.Module):
    """A tiny model with open_clip's interface (encode_* with normalize=, logit_scale, visual)."""

    def __init__(self, dim=16, vocab=49408, width=32, context_length=77, image_size=32):
        super().__init__()
        self.visual = torch.nn.Module()
        self.visual.image_size = (image_size, image_size)
        self.visual.preprocess_cfg = {
            "size": (image_size, image_size), "mode": "RGB", "mean": OPENAI_MEAN,
            "std": OPENAI_STD, "interpolation": "bicubic", "resize_mode": "shortest",
        }
        self.visual.conv = torch.nn.Conv2d(3, width, kernel_size=8, stride=8)
        self.visual.proj = torch.nn.Linear(width, dim)
        self.token_embedding = torch.nn.Embedding(vocab, width)
        self.positional_embedding = torch.nn.Parameter(torch.randn(context_length, width) * 0.01)
        self.ln_final = torch.nn.LayerNorm(width)
        self.text_projection = torch.nn.Parameter(torch.randn(width, dim) / width ** 0.5)
        self.logit_scale = torch.nn.Parameter(torch.ones([]) * torch.log(torch.tensor(1 / 0.07)))
        self.context_length = context_length

    def encode_image(self, image, normalize: bool = False):
        x = self.visual.conv(image).flatten(2).mean(-1)
        x = self.visual.proj(torch.nn.functional.gelu(x))
        return torch.nn.functional.normalize(x, dim=-1) if normalize else x

    def encode_text(self, text, normalize: bool = False):
        x = self.ln_final(self.token_embedding(text) + self.positional_embedding[: text.shape[1]])
        x = x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ self.text_projection
        return torch.nn.functional.normalize(x, dim=-1) if normalize else x


def preprocess_config(model, fallback_size=224):
    """open_clip >= 2.20 keeps it in model.visual.preprocess_cfg; older ones in attributes."""
    cfg = dict(getattr(model.visual, "preprocess_cfg", None) or {})
    size = cfg.get("size", getattr(model.visual, "image_size", fallback_size))
    if isinstance(size, (tuple, list)):
        if len(set(size)) != 1:
            raise SystemExit(f"non-square input size {size} is not supported by mll sidecars")
        size = size[0]
    mean = cfg.get("mean") or getattr(model.visual, "image_mean", None) or OPENAI_MEAN
    std = cfg.get("std") or getattr(model.visual, "image_std", None) or OPENAI_STD
    interpolation = cfg.get("interpolation") or "bicubic"
    resize_mode = cfg.get("resize_mode") or "shortest"
    if interpolation not in ("bicubic", "bilinear"):
        raise SystemExit(f"interpolation '{interpolation}' is not supported (bicubic, bilinear)")
    if resize_mode not in ("shortest", "squash"):
        raise SystemExit(f"resize_mode '{resize_mode}' is not supported (shortest, squash)")
    return {"image_size": int(size), "mean": [float(v) for v in mean],
            "std": [float(v) for v in std], "interpolation": interpolation,
            "resize_mode": resize_mode}


def tokenizer_info_for(arch, context_length):
    """Tokenizer kind from open_clip's model config: CLIP BPE unless it names an HF tokenizer."""
    import open_clip
    text_cfg = (open_clip.get_model_config(arch) or {}).get("text_cfg", {})
    context_length = text_cfg.get("context_length", context_length)
    hf_name = text_cfg.get("hf_tokenizer_name") or ""
    if not hf_name:
        return {"kind": "clip-bpe", "context_length": int(context_length)}
    info = {"context_length": int(context_length), "hf_name": hf_name}
    lowered = hf_name.lower()
    if "roberta" in lowered and "xlm" not in lowered:
        info["kind"] = "gpt2-bpe"
    elif any(h in lowered for h in SENTENCEPIECE_HINTS):
        info["kind"] = "sentencepiece"
    else:
        info["kind"] = "gpt2-bpe"
    try:  # copy the vocabulary file so the sidecar is self-contained
        tok = open_clip.get_tokenizer(arch)
        vocab = getattr(getattr(tok, "tokenizer", None), "vocab_file", None)
        if vocab and os.path.exists(vocab):
            info["vocab_source"] = vocab
    except Exception as e:  # the sidecar is still valid without it; the tokenizer needs one
        print(f"warning: could not locate the tokenizer's vocabulary file: {e}", file=sys.stderr)
    return info


def example_text(batch, context_length, kind):
    text = torch.zeros(batch, context_length, dtype=torch.int64)
    for b in range(batch):
        n = 3 + b
        if kind == "clip-bpe":
            text[b, 0] = CLIP_SOT
            text[b, 1:n + 1] = torch.arange(1, n + 1) * 97 % CLIP_SOT
            text[b, n + 1] = CLIP_EOT
        else:
            text[b, 0] = 0
            text[b, 1:n + 1] = torch.arange(5, n + 5)
            text[b, n + 1] = 2
    return text


def image_gflops(wrapper, image_size, device):
    """2 x multiply-adds of one image through encode_image, as torch.profiler counts them."""
    from torch.profiler import ProfilerActivity, profile
    x = torch.randn(1, 3, image_size, image_size, device=device)
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        wrapper.encode_image(x)
    flops = sum(e.flops for e in prof.key_averages() if e.flops)
    return flops / 1e9


def profile_gflops(csv_path, arch):
    if not csv_path or not os.path.exists(csv_path):
        return None
    with open(csv_path) as f:
        for row in csv.DictReader(f):
            if row.get("model") == arch and row.get("image_gflops"):
                return float(row["image_gflops"])
    return None


def to_torchscript(wrapper, image, text, script):
    if script:
        return torch.jit.script(wrapper)
    return torch.jit.trace_module(wrapper, {"encode_image": image, "encode_text": text},
                                  check_trace=False)


def export_module(model, preprocess_cfg, tokenizer_info, out_dir, model_id, *, device="cpu",
                  gflops=None, imagenet_top1=None, script=False, write_reference=False):
    """Writes <out_dir>/<model_id>.pt and .json for an open_clip-like `model`; returns the sidecar.

    preprocess_cfg: image_size, mean, std, interpolation, resize_mode (see preprocess_config).
    tokenizer_info: kind, context_length, optional vocab_source (a file copied next to the model).
    """
    model = model.to(device).eval()
    os.makedirs(out_dir, exist_ok=True)
    size = preprocess_cfg["image_size"]
    ctx = tokenizer_info["context_length"]
    gen = torch.Generator().manual_seed(0)
    image = torch.randn(2, 3, size, size, generator=gen).to(device)
    text = example_text(2, ctx, tokenizer_info["kind"]).to(device)
    wrapper = TowerWrapper(model).eval()
    with torch.no_grad():
        module = to_torchscript(wrapper, image, text, script)

    model_file = model_id + ".pt"
    final = os.path.join(out_dir, model_file)
    # Written under a temporary name and renamed, so an interrupted export leaves no partial file.
    fd, tmp = tempfile.mkstemp(prefix=model_file + ".", dir=out_dir)
    os.close(fd)
    try:
        module.save(tmp)
        check_image = torch.randn(3, 3, size, size, generator=gen).to(device)
        check_text = example_text(3, ctx, tokenizer_info["kind"]).to(device)
        reloaded = torch.jit.load(tmp, map_location=device)
        with torch.no_grad():
            for name, a, b in (
                    ("encode_image", reloaded.encode_image(check_image),
                     wrapper.encode_image(check_image)),
                    ("encode_text", reloaded.encode_text(check_text),
                     wrapper.encode_text(check_text))):
                if a.shape != b.shape or not torch.allclose(a.float(), b.float(), rtol=1e-4,
                                                           atol=1e-4):
                    raise SystemExit(f"{name}: the exported module disagrees with the eager model "
                                     f"on a batch of 3 (try --script)")
        os.replace(tmp, final)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)

    if gflops is None:
        gflops = image_gflops(wrapper, size, device)
    tokenizer = {"kind": tokenizer_info["kind"], "context_length": int(ctx)}
    if tokenizer_info.get("vocab_source"):
        vocab_name = model_id + "." + os.path.basename(tokenizer_info["vocab_source"])
        shutil.copyfile(tokenizer_info["vocab_source"], os.path.join(out_dir, vocab_name))
        tokenizer["vocab"] = vocab_name
    with torch.no_grad():
        dim = int(wrapper.encode_image(image[:1]).shape[-1])
    sidecar = {
        "format_version": SIDECAR_VERSION,
        "id": model_id,
        "model": model_file,
        "image_size": int(size),
        "resize_mode": preprocess_cfg["resize_mode"],
        "crop": "center",
        "interpolation": preprocess_cfg["interpolation"],
        "mean": list(preprocess_cfg["mean"]),
        "std": list(preprocess_cfg["std"]),
        "tokenizer": tokenizer,
        "logit_scale": float(model.logit_scale.exp().item()),
        "params": int(sum(p.numel() for p in module.parameters())),
        "gflops_per_image": float(gflops),
        "embed_dim": dim,
    }
    if imagenet_top1 is not None:
        sidecar["imagenet_top1"] = float(imagenet_top1)
    sidecar_path = os.path.join(out_dir, model_id + ".json")
    with open(sidecar_path + ".tmp", "w") as f:
        json.dump(sidecar, f, indent=2)
        f.write("\n")
    os.replace(sidecar_path + ".tmp", sidecar_path)
    if write_reference:
        write_reference_files(reloaded, check_image.cpu(), check_text.cpu(), out_dir)
    return sidecar


def write_reference_files(module, images, ids, out_dir):
    """Inputs and normalised embeddings in make_python_stand_in.py's reference format."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    from make_python_stand_in import write_reference
    write_reference(module, images, ids, out_dir)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="open_clip architecture, e.g. ViT-B-32")
    parser.add_argument("--pretrained", help="open_clip pretrained tag, e.g. laion2b_s34b_b79k")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--id", help="model id (default: MODEL:PRETRAINED)")
    parser.add_argument("--device", default="cpu", help="device used for export (cpu, cuda)")
    parser.add_argument("--profile-csv", help="open_clip's model_profile.csv for GFLOPs")
    parser.add_argument("--imagenet-top1", type=float, help="zero-shot ImageNet top-1 in [0, 1]")
    parser.add_argument("--script", action="store_true", help="torch.jit.script instead of trace")
    parser.add_argument("--stand-in", action="store_true",
                        help="export a tiny local open_clip-like model (no open_clip needed)")
    parser.add_argument("--write-reference", action="store_true",
                        help="also write inputs and reference embeddings (reference.json)")
    args = parser.parse_args(argv)

    if args.stand_in:
        torch.manual_seed(0)
        model = StandInOpenClip()
        model_id = args.id or "stand-in-openclip"
        cfg = preprocess_config(model)
        tok = {"kind": "clip-bpe", "context_length": model.context_length}
        gflops = None
    else:
        if not args.model or not args.pretrained:
            parser.error("--model and --pretrained are required (or --stand-in)")
        try:
            import open_clip
        except ImportError:
            raise SystemExit("open_clip is not installed here (pip install open_clip_torch); "
                             "use --stand-in to test the export path without it")
        model, _, _ = open_clip.create_model_and_transforms(
            args.model, pretrained=args.pretrained, device=args.device)
        model_id = args.id or f"{args.model}:{args.pretrained}"
        cfg = preprocess_config(model)
        tok = tokenizer_info_for(args.model, getattr(model, "context_length", 77))
        gflops = profile_gflops(args.profile_csv, args.model)
    sidecar = export_module(model, cfg, tok, args.out, model_id, device=args.device,
                            gflops=gflops, imagenet_top1=args.imagenet_top1, script=args.script,
                            write_reference=args.write_reference)
    print(json.dumps({"id": sidecar["id"], "model": os.path.join(args.out, sidecar["model"]),
                      "params": sidecar["params"],
                      "gflops_per_image": sidecar["gflops_per_image"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
