#!/usr/bin/env python3
"""Writes data/zoo/openclip49.json: the paper's 49 open_clip models as a zoo description for
`mll plan` (cost figures and preprocessing, no weights).

Inputs (real data copied from public repositories; see their README.md):
  mll49_openclip_zeroshot_acc1.csv            the 49 models in MLL's order (model, pretrained)
  open_clip/openclip_classification_results.csv  params (M), FLOPs (B) per (model, pretrained)
  open_clip/model_profile.csv                 image_size, image_gflops, text_gflops per architecture

Cost per image: `gflops_per_image` is model_profile.csv's `image_gflops` (the image tower for one
image, 2 FLOPs per multiply-add; ViT-B-32: 8.82). The results table's `FLOPs (B)` (ViT-B-32:
14.78 = 8.82 image + 5.96 text) is the cost of one image *and* one caption; labeling encodes each
caption once per model (a few thousand graph nodes) but every probe image once per model, so
the text tower is a negligible share of a 150k-image run and the image tower is what a shard
costs. `gflops_pair` keeps the table's figure for reference.

Preprocessing: open_clip's src/open_clip/pretrained.py gives every one of the 49 models the
default config (OpenAI mean/std, bicubic, resize shortest side + center crop) except
ViT-H-14-378-quickgelu dfn5b (bicubic, resize_mode "squash") and nllb-clip-base-siglip
(SigLIP config: mean = std = 0.5, bicubic, squash). With the image size from model_profile.csv,
these fields are what `mll label` groups models by ("decode once" per group).

Usage: /usr/bin/python3 tools/make_openclip49_zoo.py [--external DIR] [-o data/zoo/openclip49.json]
"""
import argparse
import csv
import json
import os
import sys

OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_STD = [0.26862954, 0.26130258, 0.27577711]
INCEPTION_MEAN = [0.5, 0.5, 0.5]
INCEPTION_STD = [0.5, 0.5, 0.5]

# (model, pretrained) -> preprocessing that differs from open_clip's default _pcfg.
SPECIAL = {
    ("ViT-H-14-378-quickgelu", "dfn5b"): dict(resize_mode="squash", mean=OPENAI_MEAN,
                                               std=OPENAI_STD, norm="openai"),
    ("nllb-clip-base-siglip", "v1"): dict(resize_mode="squash", mean=INCEPTION_MEAN,
                                          std=INCEPTION_STD, norm="inception"),
}

OPEN_CLIP_COMMIT = "89fb801f1e6087880e951fc8354b8a2077b79c6d"


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--external", default=os.path.join(here, "..", "..", "shared", "data",
                                                           "external"))
    parser.add_argument("-o", "--output", default=os.path.join(here, "..", "data", "zoo",
                                                               "openclip49.json"))
    args = parser.parse_args()

    mll49 = read_csv(os.path.join(args.external, "mll49_openclip_zeroshot_acc1.csv"))
    results = {(r["name"], r["pretrained"]): r for r in read_csv(
        os.path.join(args.external, "open_clip", "openclip_classification_results.csv"))}
    profile = {r["model"]: r for r in read_csv(
        os.path.join(args.external, "open_clip", "model_profile.csv"))}

    models = []
    for row in mll49:
        arch, pretrained = row["model"], row["pretrained"]
        res = results.get((arch, pretrained))
        prof = profile.get(arch)
        if res is None or prof is None:
            sys.exit(f"{arch} {pretrained}: not in open_clip's tables")
        size = int(prof["image_size"])
        pre = SPECIAL.get((arch, pretrained),
                          dict(resize_mode="shortest", mean=OPENAI_MEAN, std=OPENAI_STD,
                               norm="openai"))
        models.append({
            "id": f"{arch}_{pretrained}",
            "architecture": arch,
            "pretrained": pretrained,
            "params": int(round(float(res["params (M)"]) * 1e6)),
            "gflops_per_image": float(prof["image_gflops"]),
            "gflops_pair": float(res["FLOPs (B)"]),
            "image_size": size,
            "resize_mode": pre["resize_mode"],
            "interpolation": "bicubic",
            "mean": pre["mean"],
            "std": pre["std"],
            "preprocess": f"{size} {pre['resize_mode']} bicubic {pre['norm']}",
            "imagenet_top1": float(row["ImageNet 1k"]),
        })
    if len(models) != 49 or len({m["id"] for m in models}) != 49:
        sys.exit(f"expected 49 distinct models, got {len(models)}")

    out = {
        "format": "mll-zoo-description",
        "version": 1,
        "name": "openclip49",
        "description": "The 49 open_clip models of the MLL paper (MLL's model_hub_info order): "
                       "cost figures and preprocessing for `mll plan`; no weights.",
        "source": f"mlfoundations/open_clip commit {OPEN_CLIP_COMMIT}: "
                  "docs/openclip_classification_results.csv (params (M), FLOPs (B)) and "
                  "docs/model_profile.csv (image_size, image_gflops); model list and order from "
                  "MLL's model_hub_info.csv; preprocessing from open_clip "
                  "src/open_clip/pretrained.py. Generated by tools/make_openclip49_zoo.py.",
        "gflops_per_image": "image tower, one image, 2 FLOPs per multiply-add "
                            "(model_profile.csv image_gflops)",
        "gflops_pair": "image + text tower for one (image, caption) pair "
                       "(openclip_classification_results.csv FLOPs (B))",
        "models": models,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    total = sum(m["gflops_per_image"] for m in models)
    total_pair = sum(m["gflops_pair"] for m in models)
    big = max(models, key=lambda m: m["gflops_per_image"])
    families = sorted({m["preprocess"] for m in models})
    print(f"wrote {args.output}: {len(models)} models, {len(families)} preprocessing families, "
          f"image GFLOPs sum {total:.1f} (largest {big['id']} {big['gflops_per_image']}, "
          f"{big['gflops_per_image'] / total:.1%}); pair GFLOPs sum {total_pair:.1f} "
          f"({big['gflops_pair'] / total_pair:.1%})")


if __name__ == "__main__":
    main()
