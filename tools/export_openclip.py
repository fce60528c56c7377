#!/usr/bin/env python3
"""Exports an open_clip model as an mll model: a TorchScript file plus its JSON sidecar.

    python3 tools/export_openclip.py --model ViT-B-32 --pretrained laion2b_s34b_b79k --out DIR
    python3 tools/export_openclip.py --model ViT-B-32 --pretrained ckpt.pt --config-of openai \
        --out DIR
      [--id ID] [--mean R,G,B] [--std R,G,B] [--interpolation bicubic|bilinear]
      [--resize-mode shortest|squash] [--quick-gelu | --no-quick-gelu] [--script]
      [--device cpu] [--profile-csv model_profile.csv] [--imagenet-top1 X]
      [--reference-set parity-1.json | --no-reference] [--mll PATH | --no-verify] [--force]

--pretrained takes one of open_clip's tags for the architecture (its weights are read from
open_clip's cache or downloaded) or the path of a local checkpoint (a state_dict file).

Model id. Default: MODEL:TAG, or MODEL:<checkpoint file name without extension> with characters
an id may not hold replaced by '_'. An id is 1..200 bytes of printable ASCII (0x21..0x7E) without
'/', '\\' or ',' and not starting with '.'. Files are named by the id's safe stem (every byte
outside [A-Za-z0-9._-] written as %XX, upper-case hex; at most 200 bytes): ViT-B-32:openai is
written as ViT-B-32%3Aopenai.pt, ViT-B-32%3Aopenai.json and, for tokenizers with a vocabulary
file, ViT-B-32%3Aopenai.<vocabulary file name>. The sidecar's "id" is the id itself.

Settings. A tag brings its own preprocessing (mean, std, interpolation, resize mode), activation
(QuickGELU) and context length where its pretrained config defines them; the exporter builds the
model and open_clip's preprocess transform with exactly these (open_clip itself only warns when a
QuickGELU tag is loaded into a GELU architecture such as ViT-B-32 + openai). A checkpoint file has
no settings of its own: --config-of TAG takes them from a tag of the same architecture, and
--mean, --std, --interpolation, --resize-mode, --quick-gelu/--no-quick-gelu override single
values. With neither, open_clip's architecture defaults are used and a warning says so. The
sidecar's preprocessing is read back from the transform open_clip returns, and the settings used
are recorded in the sidecar's "openclip" field.

The module exposes encode_image(Tensor[B,3,H,W] float32) and encode_text(Tensor[B,L] int64), each
returning the model's raw (unnormalised) [B,d] features; mll's runner normalises. The module is
traced (--script: compiled with torch.jit.script), reloaded and compared with the eager model on a
batch of another size, so a trace that baked in a shape is caught here. The sidecar also records
the tokenizer kind and context length, exp(logit_scale), the parameter count and the image tower's
GFLOPs (2 x multiply-adds, from open_clip's model_profile.csv when given, else torch.profiler).

Reference. The sidecar gets a "reference" field: the L2-normalised float32 embeddings of the
parity set (data/reference/parity-1.json: 3 photos, 5 captions, their files checked against the
manifest's SHA-256), computed on the CPU with open_clip's own preprocess transform, tokenizer and
the eager model. mll recomputes them through its own decoder, preprocessing, tokenizer and runner
and refuses a model that does not match. --no-reference leaves the field out.

Verification. The export is written into a hidden folder in DIR first and checked with mll itself
(mll zoo add into a temporary manifest, then mll zoo check); only an export that passes is moved
into DIR, so a failed check leaves DIR as it was. mll is --mll PATH, else $MLL, else mll on PATH,
else <repo>/build/src/app/mll ($MLL_BUILD_DIR/src/app/mll) or <repo>/build-nompi/src/app/mll.
Without one the export is written unverified (a note says how to verify it); --no-verify skips.
Existing files of the same id are not replaced unless --force is given.

--stand-in exports a tiny local module shaped like an open_clip model instead (no open_clip
needed; its reference is computed when open_clip is importable): the test suite uses it to check
the export path end to end.

Exit status: 0 exported; 1 failed (missing package, weights not available offline, checkpoint that
does not fit the architecture, verification failed, ...); 2 usage (bad option, unknown
architecture or tag, invalid id, output exists). Every error is one line on stderr; set
MLL_EXPORT_TRACEBACK=1 to see the traceback of an unexpected one. On success one JSON line (id,
files, params, GFLOPs, reference, verified) goes to stdout.

Installing. PyTorch's TorchScript archives load in a libtorch at least as new as the PyTorch that
wrote them: export with a PyTorch no newer than mll's libtorch (Debian 12: 1.13.1), or build mll
against your PyTorch (-DTorch_DIR=<site-packages>/torch/share/cmake/Torch).
  Debian 12: apt-get install python3-torch python3-torchvision python3-regex python3-ftfy
             python3-tqdm, then put open_clip_torch's source (src/ of its release) and, for
             ConvNeXt, EVA, SigLIP and other timm image towers, timm's on PYTHONPATH: `pip
             install` is refused in Debian's externally managed environment.
  venv:      python3 -m venv --system-site-packages v && v/bin/pip install open_clip_torch
Text towers and tokenizers from Hugging Face (roberta-ViT-B-32, xlm-roberta-base-ViT-B-32,
nllb-clip-*, SigLIP) also need `transformers` (v/bin/pip install transformers); Debian 12 does not
package it.
"""
import argparse
import csv
import difflib
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings

try:
    import torch
except ImportError:  # reported by main() as one line with the install notes
    torch = None

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PROG = "export_openclip"
EXIT_FAILED, EXIT_USAGE = 1, 2
SIDECAR_VERSION = 1
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
CLIP_SOT, CLIP_EOT = 49406, 49407
# HF tokenizers whose vocabulary is a SentencePiece model (NLLB, XLM-R, mT5, ...); other HF
# tokenizers used by open_clip (RoBERTa) are GPT-2 byte-level BPE.
SENTENCEPIECE_HINTS = ("xlm-roberta", "nllb", "mt5", "t5", "sentencepiece", "siglip", "bert")
ID_MAX_BYTES = 200
ID_FORBIDDEN = "/\\,"
STEM_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
INSTALL_NOTE = ("Debian 12: apt-get install python3-torch python3-torchvision and put "
                "open_clip_torch's source (and timm's, for ConvNeXt/EVA towers) on PYTHONPATH, "
                "since pip install is refused in Debian's externally managed environment; or a "
                "venv: python3 -m venv --system-site-packages v && v/bin/pip install "
                "open_clip_torch")
DEFAULTS_HINT = ("QuickGELU for openai tags, mean/std 0.5 for SigLIP/nllb-siglip, squash for "
                 "dfn5b ViT-H-14-378")


class ExportError(Exception):
    """A failure reported as one line; `code` is the exit status."""

    def __init__(self, message, code=EXIT_FAILED):
        super().__init__(message)
        self.code = code


def one_line(text, limit=300):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def one_line_warning(message, category, filename, lineno, line=None):
    """Python warnings (torch, timm, open_clip) as one line each, like the script's own."""
    return f"{PROG}: warning: {category.__name__}: {one_line(message)}\n"


def warn(kind, message):
    print(f"{PROG}: {kind}: {message}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# Model ids and file names

def id_problem(model_id):
    """What is wrong with `model_id` under mll's id rule, or None."""
    raw = model_id.encode("utf-8", "surrogateescape")
    if not 1 <= len(raw) <= ID_MAX_BYTES:
        return f"is {len(raw)} bytes long (1..{ID_MAX_BYTES})"
    for b in raw:
        if not 0x21 <= b <= 0x7E:
            return (f"holds byte 0x{b:02X} (only printable ASCII 0x21..0x7E: no spaces, controls "
                    f"or non-ASCII characters)")
        if chr(b) in ID_FORBIDDEN:
            return f"holds '{chr(b)}' (an id may not hold '/', '\\' or ',')"
    if raw.startswith(b"."):
        return "starts with '.'"
    stem = safe_stem(model_id)
    if len(stem) > ID_MAX_BYTES:
        return f"has a file stem of {len(stem)} bytes (at most {ID_MAX_BYTES}; %XX counts 3)"
    return None


def safe_stem(model_id):
    """The id's file stem: bytes outside [A-Za-z0-9._-] as %XX (upper-case hex)."""
    return "".join(chr(b) if chr(b) in STEM_SAFE else "%{:02X}".format(b)
                   for b in model_id.encode("utf-8", "surrogateescape"))


def default_file_id(arch, path):
    """MODEL:<file name without extension>, characters an id may not hold replaced by '_'."""
    name = os.path.splitext(os.path.basename(path))[0]
    clean = "".join(c if 0x21 <= ord(c) <= 0x7E and c not in ID_FORBIDDEN else "_" for c in name)
    return f"{arch}:{clean}"


# ---------------------------------------------------------------------------------------------
# The modules

# Without torch the module still loads, so main() can say what is missing in one line.
_Module = torch.nn.Module if torch is not None else object
_export = torch.jit.export if torch is not None else (lambda f: f)


class TowerWrapper(_Module):
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


class ScriptableTowerWrapper(TowerWrapper):
    """TowerWrapper for torch.jit.script, which compiles only forward and what it calls unless
    methods are exported (tracing refuses exported methods, hence two classes)."""

    @_export
    def encode_image(self, image):
        return self.model.encode_image(image, normalize=False)

    @_export
    def encode_text(self, text):
        return self.model.encode_text(text, normalize=False)


class StandInOpenClip(_Module):
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


# ---------------------------------------------------------------------------------------------
# open_clip: import, architecture, weights, settings

def import_open_clip():
    try:
        import open_clip
    except ImportError as e:
        missing = getattr(e, "name", None) or "open_clip"
        if missing.split(".")[0] == "open_clip":
            raise ExportError(f"open_clip is not importable by {sys.executable}: {INSTALL_NOTE}")
        raise ExportError(f"open_clip needs the Python package '{missing}', which "
                          f"{sys.executable} cannot import (Debian 12: apt-get install "
                          f"python3-{missing.lower()}; venv: v/bin/pip install {missing})")
    except Exception as e:  # e.g. an open_clip too new for this torch
        raise ExportError(f"open_clip failed to import: {type(e).__name__}: {one_line(e)}")
    return open_clip


def require_package(name, why):
    try:
        __import__(name)
    except ImportError:
        if name == "transformers":
            how = "Debian 12 does not package it: v/bin/pip install transformers in a venv"
        else:
            how = f"put {name}'s source on PYTHONPATH or v/bin/pip install {name} in a venv"
        raise ExportError(f"{why}: it needs the Python package '{name}', which {sys.executable} "
                          f"cannot import ({how})")


def check_architecture(open_clip, arch):
    if arch.startswith(("hf-hub:", "local-dir:")):
        raise ExportError(f"--model {arch}: hf-hub: and local-dir: models are not supported; pass "
                          f"the built-in architecture name and --pretrained FILE", EXIT_USAGE)
    cfg = open_clip.get_model_config(arch)
    if cfg is None:
        close = difflib.get_close_matches(arch, open_clip.list_models(), n=5, cutoff=0.6)
        hint = f"; close: {', '.join(close)}" if close else ""
        raise ExportError(f"--model {arch}: unknown architecture for open_clip "
                          f"{open_clip.__version__}{hint} (open_clip.list_models() has all "
                          f"{len(open_clip.list_models())})", EXIT_USAGE)
    vision, text = cfg.get("vision_cfg", {}), cfg.get("text_cfg", {})
    if vision.get("timm_model_name"):
        require_package("timm", f"{arch}'s image tower is timm's {vision['timm_model_name']}")
    if text.get("hf_model_name"):
        require_package("transformers",
                        f"{arch}'s text tower is Hugging Face's {text['hf_model_name']}")
    elif text.get("hf_tokenizer_name"):
        require_package("transformers",
                        f"{arch}'s tokenizer is Hugging Face's {text['hf_tokenizer_name']}")
    return cfg


def find_tag(open_clip, arch, value, flag):
    """(canonical tag, pretrained cfg) when `value` is a tag of `arch`, else (None, None)."""
    cfg = open_clip.get_pretrained_cfg(arch, value)
    if not cfg:
        return None, None
    for tag in open_clip.list_pretrained_tags_by_model(arch):
        if open_clip.get_pretrained_cfg(arch, tag) is cfg:
            return tag, cfg
    return value, cfg


def unknown_tag(open_clip, arch, value, flag, file_too):
    tags = open_clip.list_pretrained_tags_by_model(arch)
    what = (f"neither a tag of {arch} nor a checkpoint file" if file_too
            else f"not a tag of {arch}")
    if not tags:
        return ExportError(f"{flag} {value}: {what} ({arch} has no pretrained tags in open_clip "
                           f"{open_clip.__version__})", EXIT_USAGE)
    shown = ", ".join(tags[:6]) + (", ..." if len(tags) > 6 else "")
    return ExportError(f"{flag} {value}: {what}; its tags: {shown} ({len(tags)} in all)",
                       EXIT_USAGE)


def fetch_weights(open_clip, arch, tag, cfg):
    """The tag's checkpoint from open_clip's cache or the network, as one-line errors."""
    from open_clip import pretrained as oc_pretrained
    try:
        return oc_pretrained.download_pretrained(cfg)
    except Exception as e:
        text = str(e)
        if "huggingface_hub" in text or "package not installed" in text:
            raise ExportError(f"weights for {arch}:{tag} are on the Hugging Face hub and "
                              f"huggingface_hub is not installed (venv: v/bin/pip install "
                              f"huggingface_hub); or pass --pretrained FILE --config-of {tag}")
        raise ExportError(f"weights for {tag} ({arch}) not in the cache and no network: pass "
                          f"--pretrained FILE (a local checkpoint) with --config-of {tag} "
                          f"({type(e).__name__}: {one_line(e, 120)})")


def architecture_defaults(open_clip, model_cfg):
    from open_clip.transform import PreprocessCfg
    p = PreprocessCfg()
    return {"mean": tuple(p.mean), "std": tuple(p.std), "interpolation": p.interpolation,
            "resize_mode": p.resize_mode, "quick_gelu": bool(model_cfg.get("quick_gelu", False)),
            "context_length": int(model_cfg.get("text_cfg", {}).get("context_length", 77))}


def settings_of_tag(tag_cfg, defaults):
    s = dict(defaults)
    for key in ("mean", "std", "interpolation", "resize_mode"):
        if tag_cfg.get(key) is not None:
            s[key] = tag_cfg[key]
    if "quick_gelu" in tag_cfg:
        s["quick_gelu"] = bool(tag_cfg["quick_gelu"])
    if tag_cfg.get("context_length"):
        s["context_length"] = int(tag_cfg["context_length"])
    return s


def differing_tags(open_clip, arch, defaults):
    """Tags of `arch` whose settings differ from the architecture defaults."""
    out = []
    for tag in open_clip.list_pretrained_tags_by_model(arch):
        s = settings_of_tag(open_clip.get_pretrained_cfg(arch, tag), defaults)
        if any(_differs(s[k], defaults[k]) for k in s):
            out.append(tag)
    return out


def _differs(a, b):
    if isinstance(a, (tuple, list)) or isinstance(b, (tuple, list)):
        return [float(v) for v in a] != [float(v) for v in b]
    return a != b


def build_open_clip(open_clip, arch, model_cfg, pretrained, settings, defaults, device):
    """create_model_and_transforms with the resolved settings; returns (model, preprocess)."""
    kwargs = {}
    if settings["quick_gelu"] and not defaults["quick_gelu"]:
        kwargs["force_quick_gelu"] = True
    elif not settings["quick_gelu"] and defaults["quick_gelu"]:
        kwargs["quick_gelu"] = False  # a model kwarg: overrides the architecture config
    if settings["context_length"] != defaults["context_length"]:
        kwargs["force_context_length"] = settings["context_length"]
    for key, name in (("mean", "image_mean"), ("std", "image_std"),
                      ("interpolation", "image_interpolation"),
                      ("resize_mode", "image_resize_mode")):
        if _differs(settings[key], defaults[key]):
            kwargs[name] = tuple(settings[key]) if key in ("mean", "std") else settings[key]
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            arch, pretrained=pretrained, device=device, **kwargs)
    except ImportError as e:
        raise ExportError(f"building {arch} needs the Python package '{e.name}', which "
                          f"{sys.executable} cannot import ({one_line(e, 120)})")
    except (RuntimeError, ValueError, KeyError, OSError, EOFError) as e:
        if os.path.isfile(pretrained):
            raise ExportError(f"{pretrained}: not a checkpoint of {arch} ({type(e).__name__}: "
                              f"{one_line(e, 200)})")
        raise
    return model.eval(), preprocess


def uses_quick_gelu(model):
    from open_clip.transformer import QuickGELU
    return any(isinstance(m, QuickGELU) for m in model.modules())


def preprocess_from_transform(preprocess, expected_size):
    """The sidecar's preprocessing read from open_clip's eval transform (what the reference and
    users of open_clip run), so the sidecar cannot drift from it."""
    from torchvision import transforms as T
    steps = list(getattr(preprocess, "transforms", []))
    resize = [s for s in steps if isinstance(s, T.Resize)]
    crop = [s for s in steps if isinstance(s, T.CenterCrop)]
    norm = [s for s in steps if isinstance(s, T.Normalize)]
    known = (T.Resize, T.CenterCrop, T.Normalize)
    other = [type(s).__name__ for s in steps if not isinstance(s, known)
             and type(s).__name__ not in ("MaybeConvertMode", "MaybeToTensor", "ToTensor")]
    if len(resize) != 1 or len(norm) != 1 or len(crop) > 1 or other:
        names = ", ".join(type(s).__name__ for s in steps)
        raise ExportError(f"open_clip's transform ({names}) is not one mll reproduces (resize "
                          f"'shortest' + center crop, or 'squash')")
    size = resize[0].size
    if crop:
        side = crop[0].size
        side = side[0] if isinstance(side, (tuple, list)) else side
        if isinstance(size, (tuple, list)):
            size = size[0] if len(size) == 1 else None
        if size != side:
            raise ExportError(f"open_clip's transform resizes to {resize[0].size} and crops "
                              f"{crop[0].size}: not a square 'shortest' resize")
        mode = "shortest"
    else:
        if not isinstance(size, (tuple, list)) or len(size) != 2 or size[0] != size[1]:
            raise ExportError(f"open_clip's transform resizes to {size} without a crop: mll "
                              f"sidecars need a square input")
        side, mode = size[0], "squash"
    interpolation = {T.InterpolationMode.BICUBIC: "bicubic",
                     T.InterpolationMode.BILINEAR: "bilinear"}.get(resize[0].interpolation)
    if interpolation is None:
        raise ExportError(f"interpolation {resize[0].interpolation} is not supported by mll "
                          f"(bicubic, bilinear)")
    if int(side) != int(expected_size):
        raise ExportError(f"open_clip's transform makes {side} px images but the model takes "
                          f"{expected_size} px")
    mean, std = list(norm[0].mean), list(norm[0].std)
    if len(mean) != 3 or len(std) != 3:
        raise ExportError(f"normalisation mean {mean} / std {std}: mll needs 3 channels")
    return {"image_size": int(side), "mean": [float(v) for v in mean],
            "std": [float(v) for v in std], "interpolation": interpolation, "resize_mode": mode}


def preprocess_config(model, fallback_size=224):
    """The stand-in's preprocessing from model.visual.preprocess_cfg (open_clip's layout)."""
    cfg = dict(getattr(model.visual, "preprocess_cfg", None) or {})
    size = cfg.get("size", getattr(model.visual, "image_size", fallback_size))
    if isinstance(size, (tuple, list)):
        if len(set(size)) != 1:
            raise ExportError(f"non-square input size {size} is not supported by mll sidecars")
        size = size[0]
    return {"image_size": int(size), "mean": [float(v) for v in cfg.get("mean", OPENAI_MEAN)],
            "std": [float(v) for v in cfg.get("std", OPENAI_STD)],
            "interpolation": cfg.get("interpolation", "bicubic"),
            "resize_mode": cfg.get("resize_mode", "shortest")}


def model_image_size(model):
    size = getattr(model.visual, "image_size", None)
    if size is None:
        size = model.visual.preprocess_cfg["size"]
    if isinstance(size, (tuple, list)):
        if len(set(size)) != 1:
            raise ExportError(f"non-square input size {tuple(size)} is not supported by mll "
                              f"sidecars")
        size = size[0]
    return int(size)


def tokenizer_info_for(open_clip, arch, tokenizer, context_length):
    """Tokenizer kind: CLIP BPE for open_clip's SimpleTokenizer, else from the HF name."""
    if isinstance(tokenizer, open_clip.SimpleTokenizer):
        return {"kind": "clip-bpe", "context_length": int(context_length)}
    text_cfg = (open_clip.get_model_config(arch) or {}).get("text_cfg", {})
    hf_name = text_cfg.get("hf_tokenizer_name") or text_cfg.get("hf_model_name") or arch
    info = {"context_length": int(context_length), "hf_name": hf_name}
    lowered = hf_name.lower()
    if "roberta" in lowered and "xlm" not in lowered:
        info["kind"] = "gpt2-bpe"
    elif any(h in lowered for h in SENTENCEPIECE_HINTS):
        info["kind"] = "sentencepiece"
    else:
        info["kind"] = "gpt2-bpe"
    vocab = getattr(getattr(tokenizer, "tokenizer", None), "vocab_file", None)
    if vocab and os.path.exists(vocab):  # copied so the sidecar is self-contained
        info["vocab_source"] = vocab
    else:
        warn("warning", f"could not locate {hf_name}'s vocabulary file: the sidecar names none")
    return info


# ---------------------------------------------------------------------------------------------
# Tracing, checking, measuring

def example_text(batch, context_length, kind):
    text = torch.zeros(batch, context_length, dtype=torch.int64)
    for b in range(batch):
        n = min(3 + b, context_length - 2)
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
    if not csv_path:
        return None
    if not os.path.isfile(csv_path):
        raise ExportError(f"--profile-csv {csv_path}: no such file", EXIT_USAGE)
    with open(csv_path) as f:
        for row in csv.DictReader(f):
            if row.get("model") == arch and row.get("image_gflops"):
                return float(row["image_gflops"])
    return None


def to_torchscript(wrapper, image, text, script, name):
    if script:
        try:
            return torch.jit.script(ScriptableTowerWrapper(wrapper.model).eval())
        except Exception as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ExportError(f"torch.jit.script cannot compile {name} ({one_line(first, 160)}): "
                              f"export without --script (tracing, the default)")
    with warnings.catch_warnings():
        # Shape-dependent Python branches are what the batch-of-3 check below catches.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        return torch.jit.trace_module(wrapper, {"encode_image": image, "encode_text": text},
                                      check_trace=False)


def check_against_eager(module_path, wrapper, size, ctx, kind, device, gen, script):
    """Reloads the archive and compares both towers with the eager model on a batch of 3."""
    check_image = torch.randn(3, 3, size, size, generator=gen).to(device)
    check_text = example_text(3, ctx, kind).to(device)
    reloaded = torch.jit.load(module_path, map_location=device)
    with torch.no_grad():
        for name, a, b in (
                ("encode_image", reloaded.encode_image(check_image),
                 wrapper.encode_image(check_image)),
                ("encode_text", reloaded.encode_text(check_text),
                 wrapper.encode_text(check_text))):
            if a.shape != b.shape or not torch.allclose(a.float(), b.float(), rtol=1e-4,
                                                       atol=1e-4):
                hint = "" if script else " (try --script)"
                raise ExportError(f"{name}: the exported module disagrees with the eager model "
                                  f"on a batch of 3{hint}")
    return reloaded, check_image, check_text


# ---------------------------------------------------------------------------------------------
# The parity reference

def load_parity_set(path):
    """(name, image paths, captions) of a parity set manifest, its images' SHA-256 checked."""
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
        name = manifest["name"]
        entries = [(e["file"], e["sha256"]) for e in manifest["images"]]
        captions = [str(c) for c in manifest["captions"]]
    except OSError as e:
        raise ExportError(f"{path}: cannot read the parity set ({e.strerror}); pass "
                          f"--reference-set FILE or --no-reference")
    except (ValueError, KeyError, TypeError) as e:
        raise ExportError(f"{path}: not a parity set manifest ({type(e).__name__}: "
                          f"{one_line(e, 120)})")
    if not entries or not captions:
        raise ExportError(f"{path}: the parity set has no images or no captions")
    base = os.path.dirname(os.path.abspath(path))
    images = []
    for file, expected in entries:
        full = os.path.join(base, file)
        try:
            with open(full, "rb") as f:
                got = hashlib.sha256(f.read()).hexdigest()
        except OSError as e:
            raise ExportError(f"{full}: cannot read the parity set's image ({e.strerror})")
        if got != expected.lower():
            raise ExportError(f"{full}: sha256 {got} differs from {expected} in {path} (a named "
                              f"parity set's files never change)")
        images.append(full)
    return name, images, captions


def compute_reference(model, transform, tokenizer, parity, made_with):
    """Normalised float32 embeddings of the parity set by the eager model on the CPU."""
    from PIL import Image
    name, images, captions = parity
    pixels = []
    for path in images:
        with Image.open(path) as im:
            pixels.append(transform(im))
    with torch.no_grad():
        x = torch.stack(pixels).float()
        image_emb = model.encode_image(x, normalize=True).float()
        text_emb = model.encode_text(tokenizer(captions), normalize=True).float()
    return {"set": name, "image_embeddings": image_emb.tolist(),
            "text_embeddings": text_emb.tolist(), "made_with": made_with}


# ---------------------------------------------------------------------------------------------
# Verification with mll

def find_mll(args):
    """mll's path (--mll, $MLL, PATH, the repo's build folders) or None."""
    for flag, value in (("--mll", args.mll), ("$MLL", os.environ.get("MLL"))):
        if value:
            if not (os.path.isfile(value) and os.access(value, os.X_OK)):
                raise ExportError(f"{flag} {value}: not an executable file", EXIT_USAGE)
            return value
    found = shutil.which("mll")
    if found:
        return found
    candidates = []
    if os.environ.get("MLL_BUILD_DIR"):
        candidates.append(os.path.join(os.environ["MLL_BUILD_DIR"], "src", "app", "mll"))
    candidates += [os.path.join(REPO, "build", "src", "app", "mll"),
                   os.path.join(REPO, "build-nompi", "src", "app", "mll")]
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def last_message(result):
    """The line of mll's output that says what failed."""
    for line in result.stdout.splitlines():
        if "FAILED" in line:
            return line.split("FAILED", 1)[1].lstrip(": ").strip()
    lines = [l for l in (result.stderr + "\n" + result.stdout).splitlines() if l.strip()]
    return lines[-1].strip() if lines else "no output"


def verify_with_mll(mll, sidecar_path, model_id):
    tmp = tempfile.mkdtemp(prefix="mll-export-verify-")
    try:
        zoo = os.path.join(tmp, "zoo.json")
        for step in (["zoo", "add", sidecar_path, "--zoo", zoo],
                     ["zoo", "check", "--zoo", zoo, "--device", "cpu"]):
            try:
                r = subprocess.run([mll] + step, capture_output=True, text=True)
            except OSError as e:
                raise ExportError(f"{mll}: cannot run ({e.strerror})")
            if r.returncode != 0:
                raise ExportError(f"mll {' '.join(step[:2])} refused {model_id} (exit "
                                  f"{r.returncode}): {one_line(last_message(r), 240)}; the export "
                                  f"was removed")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Writing

def write_json_atomic(path, value):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def export_module(model, preprocess_cfg, tokenizer_info, stage, model_id, *, device="cpu",
                  gflops=None, imagenet_top1=None, script=False, reference_fn=None, extra=None,
                  name="the model"):
    """Writes <stage>/<stem>.pt, the vocabulary and <stem>.json; returns (sidecar, file names,
    (reloaded module, check inputs)).

    preprocess_cfg: image_size, mean, std, interpolation, resize_mode.
    tokenizer_info: kind, context_length, optional vocab_source (a file copied next to the model).
    reference_fn: called with the eager model after the export, returns the "reference" field.
    """
    model = model.to(device).eval()
    stem = safe_stem(model_id)
    size = preprocess_cfg["image_size"]
    ctx = tokenizer_info["context_length"]
    kind = tokenizer_info["kind"]
    gen = torch.Generator().manual_seed(0)
    image = torch.randn(2, 3, size, size, generator=gen).to(device)
    text = example_text(2, ctx, kind).to(device)
    wrapper = TowerWrapper(model).eval()
    with torch.no_grad():
        module = to_torchscript(wrapper, image, text, script, name)

    model_file = stem + ".pt"
    model_path = os.path.join(stage, model_file)
    module.save(model_path)
    checked = check_against_eager(model_path, wrapper, size, ctx, kind, device, gen, script)

    if gflops is None:
        gflops = image_gflops(wrapper, size, device)
    files = [model_file]
    tokenizer = {"kind": kind, "context_length": int(ctx)}
    if tokenizer_info.get("vocab_source"):
        vocab_name = stem + "." + os.path.basename(tokenizer_info["vocab_source"])
        shutil.copyfile(tokenizer_info["vocab_source"], os.path.join(stage, vocab_name))
        tokenizer["vocab"] = vocab_name
        files.append(vocab_name)
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
    if extra:
        sidecar.update(extra)
    if reference_fn is not None:
        # The reference comes from the eager model in float32 on the CPU, not from the archive.
        sidecar["reference"] = reference_fn(model.to("cpu").float())
    files.append(stem + ".json")
    write_json_atomic(os.path.join(stage, stem + ".json"), sidecar)
    return sidecar, files, checked


def write_test_vectors(module, images, ids, out_dir):
    """Inputs and normalised embeddings in make_python_stand_in.py's reference format."""
    sys.path.insert(0, HERE)
    from make_python_stand_in import write_reference
    write_reference(module, images, ids, out_dir)


def publish(stage, out, files, force):
    """Moves the staged files into `out`, the sidecar last (it is what points at the others)."""
    for name in files:
        if os.path.lexists(os.path.join(out, name)) and not force:
            raise ExportError(f"{os.path.join(out, name)} exists (--force replaces it)",
                              EXIT_USAGE)
    for name in files:
        os.replace(os.path.join(stage, name), os.path.join(out, name))


# ---------------------------------------------------------------------------------------------
# Command line

class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ExportError(f"{message} (see --help)", EXIT_USAGE)


def triple(text):
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"'{text}' is not three comma-separated numbers")
    return values


def parse_args(argv):
    p = Parser(prog="export_openclip.py", description=__doc__.split("\n")[0])
    p.add_argument("--model", help="open_clip architecture, e.g. ViT-B-32")
    p.add_argument("--pretrained", help="open_clip pretrained tag (e.g. laion2b_s34b_b79k) or a "
                   "checkpoint file")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--id", help="model id (default: MODEL:TAG or MODEL:<file name>)")
    p.add_argument("--config-of", metavar="TAG", help="take preprocessing, activation and "
                   "context length from this pretrained tag of the same architecture")
    p.add_argument("--mean", type=triple, metavar="R,G,B", help="normalisation mean")
    p.add_argument("--std", type=triple, metavar="R,G,B", help="normalisation std (> 0)")
    p.add_argument("--interpolation", choices=("bicubic", "bilinear"))
    p.add_argument("--resize-mode", choices=("shortest", "squash"))
    gelu = p.add_mutually_exclusive_group()
    gelu.add_argument("--quick-gelu", dest="quick_gelu", action="store_true", default=None,
                      help="build the model with QuickGELU")
    gelu.add_argument("--no-quick-gelu", dest="quick_gelu", action="store_false",
                      help="build the model with GELU")
    p.add_argument("--device", default="cpu", help="device used for export (cpu, cuda)")
    p.add_argument("--profile-csv", help="open_clip's model_profile.csv for GFLOPs")
    p.add_argument("--imagenet-top1", type=float, help="zero-shot ImageNet top-1 in [0, 1]")
    p.add_argument("--script", action="store_true", help="torch.jit.script instead of trace")
    p.add_argument("--reference-set", metavar="FILE",
                   help="parity set manifest (default: <repo>/data/reference/parity-1.json)")
    p.add_argument("--no-reference", action="store_true",
                   help="write no parity reference into the sidecar")
    p.add_argument("--mll", metavar="PATH", help="mll binary that verifies the export")
    p.add_argument("--no-verify", action="store_true", help="do not verify with mll")
    p.add_argument("--force", action="store_true", help="replace existing files of the same id")
    p.add_argument("--stand-in", action="store_true",
                   help="export a tiny local open_clip-like model (no open_clip needed)")
    p.add_argument("--write-test-vectors", action="store_true",
                   help="also write random inputs and the archive's normalised embeddings of "
                   "them (reference.json and raw arrays, for the runner's tests)")
    args = p.parse_args(argv)
    if args.std is not None and min(args.std) <= 0:
        raise ExportError(f"--std {','.join(map(str, args.std))}: every value must be > 0",
                          EXIT_USAGE)
    if args.imagenet_top1 is not None and not 0 <= args.imagenet_top1 <= 1:
        raise ExportError(f"--imagenet-top1 {args.imagenet_top1}: not in [0, 1]", EXIT_USAGE)
    if args.stand_in:
        if args.config_of or args.quick_gelu is not None:
            raise ExportError("--config-of and --quick-gelu/--no-quick-gelu apply to open_clip "
                              "models, not --stand-in", EXIT_USAGE)
    elif not args.model or not args.pretrained:
        raise ExportError("--model and --pretrained are required (or --stand-in)", EXIT_USAGE)
    if args.no_reference and args.reference_set:
        raise ExportError("--reference-set and --no-reference exclude each other", EXIT_USAGE)
    return args


def explicit_settings(args):
    out = {}
    for key in ("mean", "std", "interpolation", "resize_mode", "quick_gelu"):
        if getattr(args, key) is not None:
            out[key] = getattr(args, key)
    return out


def parity_set(args):
    if args.no_reference:
        return None
    path = args.reference_set or os.path.join(REPO, "data", "reference", "parity-1.json")
    return load_parity_set(path)


def refuse_existing(args, model_id):
    """Before any work: the files of `model_id` in --out are not replaced without --force."""
    stem = safe_stem(model_id)
    for name in (stem + ".pt", stem + ".json"):
        if os.path.lexists(os.path.join(args.out, name)) and not args.force:
            raise ExportError(f"{os.path.join(args.out, name)} exists (--force replaces it)",
                              EXIT_USAGE)


def stand_in_job(args, parity):
    torch.manual_seed(0)
    model = StandInOpenClip()
    settings = explicit_settings(args)
    for key in ("mean", "std", "interpolation", "resize_mode"):
        if key in settings:
            model.visual.preprocess_cfg[key] = settings[key]
    cfg = preprocess_config(model)
    tok = {"kind": "clip-bpe", "context_length": model.context_length}
    reference_fn = None
    if parity is not None:
        try:
            open_clip = import_open_clip()
        except ExportError as e:
            warn("note", f"the stand-in's sidecar gets no reference: {e}")
        else:
            from open_clip.transform import PreprocessCfg, image_transform_v2
            transform = image_transform_v2(PreprocessCfg(**model.visual.preprocess_cfg),
                                           is_train=False)
            tokenizer = open_clip.SimpleTokenizer(context_length=model.context_length)
            made_with = made_with_text(open_clip)
            reference_fn = lambda m: compute_reference(m, transform, tokenizer, parity, made_with)
    return {"model": model, "id": args.id or "stand-in-openclip", "preprocess": cfg,
            "tokenizer": tok, "gflops": None, "reference_fn": reference_fn, "extra": None,
            "name": "the stand-in"}


def made_with_text(open_clip):
    return f"open_clip {open_clip.__version__}, torch {torch.__version__}, float32 on cpu"


def open_clip_job(args, parity):
    open_clip = import_open_clip()
    arch = args.model
    model_cfg = check_architecture(open_clip, arch)
    tag, tag_cfg = find_tag(open_clip, arch, args.pretrained, "--pretrained")
    if tag is None:
        if not os.path.isfile(args.pretrained):
            if os.path.lexists(args.pretrained) or os.sep in args.pretrained or re.search(
                    r"\.(pt|pth|bin|ckpt|safetensors|npz|tar)$", args.pretrained):
                raise ExportError(f"--pretrained {args.pretrained}: no such file", EXIT_USAGE)
            raise unknown_tag(open_clip, arch, args.pretrained, "--pretrained", True)
    config_of = None
    if args.config_of:
        config_of, config_cfg = find_tag(open_clip, arch, args.config_of, "--config-of")
        if config_of is None:
            raise unknown_tag(open_clip, arch, args.config_of, "--config-of", False)

    model_id = args.id or (f"{arch}:{tag}" if tag else default_file_id(arch, args.pretrained))
    problem = id_problem(model_id)
    if problem:
        raise ExportError(f"model id '{model_id}' {problem}; pass --id ID", EXIT_USAGE)
    refuse_existing(args, model_id)

    defaults = architecture_defaults(open_clip, model_cfg)
    explicit = explicit_settings(args)
    if config_of:
        settings = settings_of_tag(config_cfg, defaults)
    elif tag:
        settings = settings_of_tag(tag_cfg, defaults)
    else:
        settings = dict(defaults)
        if not explicit:
            others = differing_tags(open_clip, arch, defaults)
            listed = f"; tags of {arch} with other settings: {', '.join(others)}" if others else ""
            warn("warning", f"{args.pretrained} has no --config-of TAG or explicit flags: "
                 f"open_clip's architecture defaults for {arch} are used "
                 f"({'QuickGELU' if defaults['quick_gelu'] else 'GELU'}, mean "
                 f"{fmt(defaults['mean'])}, std {fmt(defaults['std'])}, "
                 f"{defaults['interpolation']}, {defaults['resize_mode']}); a checkpoint trained "
                 f"with a tag's own settings ({DEFAULTS_HINT}) needs --config-of TAG{listed}")
    settings.update(explicit)

    weights = fetch_weights(open_clip, arch, tag, tag_cfg) if tag else args.pretrained
    with warnings.catch_warnings():
        # open_clip warns when a tag's QuickGELU differs from the architecture's; the activation
        # is set explicitly above and recorded in the sidecar.
        warnings.filterwarnings("ignore", message="QuickGELU mismatch")
        model, preprocess = build_open_clip(open_clip, arch, model_cfg, tag or weights,
                                            settings, defaults, args.device)
    quick_gelu = uses_quick_gelu(model)
    swappable = quick_gelu or any(isinstance(m, torch.nn.GELU) for m in model.modules())
    if swappable and quick_gelu != settings["quick_gelu"]:
        raise ExportError(f"{arch} was built with {'QuickGELU' if quick_gelu else 'GELU'} "
                          f"though {'QuickGELU' if settings['quick_gelu'] else 'GELU'} was asked")
    cfg = preprocess_from_transform(preprocess, model_image_size(model))
    ctx = settings["context_length"]
    try:
        tokenizer = open_clip.get_tokenizer(arch, context_length=ctx)
    except ImportError as e:
        raise ExportError(f"{arch}'s tokenizer needs the Python package '{e.name}', which "
                          f"{sys.executable} cannot import")
    tok = tokenizer_info_for(open_clip, arch, tokenizer, ctx)
    reference_fn = None
    if parity is not None:
        made_with = made_with_text(open_clip)
        reference_fn = lambda m: compute_reference(m, preprocess, tokenizer, parity, made_with)
    extra = {"openclip": {"version": open_clip.__version__, "model": arch,
                          "pretrained": tag or os.path.basename(args.pretrained),
                          "config_of": config_of, "quick_gelu": quick_gelu}}
    return {"model": model, "id": model_id, "preprocess": cfg, "tokenizer": tok,
            "gflops": profile_gflops(args.profile_csv, arch), "reference_fn": reference_fn,
            "extra": extra, "name": arch}


def fmt(values):
    return ",".join(f"{float(v):g}" for v in values)


def run(argv):
    args = parse_args(argv)
    if torch is None:
        raise ExportError(f"torch is not importable by {sys.executable}: {INSTALL_NOTE}")
    if args.id is not None:
        problem = id_problem(args.id)
        if problem:
            raise ExportError(f"--id '{args.id}' {problem}", EXIT_USAGE)
    mll = None if args.no_verify else find_mll(args)
    parity = parity_set(args)
    # open_clip logs its progress, and errors it raises anyway, through logging; what matters
    # reaches the user as this script's own one-line messages.
    logging.basicConfig(level=logging.CRITICAL)
    warnings.formatwarning = one_line_warning
    job = stand_in_job(args, parity) if args.stand_in else open_clip_job(args, parity)
    out = args.out
    stem = safe_stem(job["id"])
    refuse_existing(args, job["id"])
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise ExportError(f"--out {out}: cannot create the directory ({e.strerror})")
    # Everything is written into a hidden folder of `out` and moved in only once complete and
    # verified, so a failed export leaves `out` as it was.
    stage = tempfile.mkdtemp(prefix=".export-", dir=out)
    try:
        sidecar, files, checked = export_module(
            job["model"], job["preprocess"], job["tokenizer"], stage, job["id"],
            device=args.device, gflops=job["gflops"], imagenet_top1=args.imagenet_top1,
            script=args.script, reference_fn=job["reference_fn"], extra=job["extra"],
            name=job["name"])
        if mll:
            verify_with_mll(mll, os.path.join(stage, stem + ".json"), job["id"])
        publish(stage, out, files, args.force)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    sidecar_path = os.path.join(out, stem + ".json")
    if not mll and not args.no_verify:
        warn("note", f"no mll binary found (--mll, $MLL, PATH, {REPO}/build/src/app/mll): the "
             f"export is unverified; verify it with: mll zoo add {sidecar_path} --zoo zoo.json "
             f"&& mll zoo check --zoo zoo.json --models '{job['id']}'")
    if args.write_test_vectors:
        reloaded, check_image, check_text = checked
        write_test_vectors(reloaded, check_image.cpu(), check_text.cpu(), out)
    print(json.dumps({"id": sidecar["id"], "model": os.path.join(out, sidecar["model"]),
                      "sidecar": sidecar_path, "params": sidecar["params"],
                      "gflops_per_image": sidecar["gflops_per_image"],
                      "reference": sidecar.get("reference", {}).get("set"),
                      "verified": bool(mll)}))
    return 0


def main(argv=None):
    try:
        return run(argv)
    except ExportError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if os.environ.get("MLL_EXPORT_TRACEBACK"):
            raise
        print(f"{PROG}: error: {type(e).__name__}: {one_line(e)} (MLL_EXPORT_TRACEBACK=1 shows "
              f"the traceback)", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
