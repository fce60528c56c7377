#!/usr/bin/python3
"""Independent re-implementation of selection (method.md section 4) from the store's files.

Usage: select_reference.py STORE SELECTION_JSON

Reads only HDF5 (h5py) and the matched nodes / weights and options recorded in the selection
file; recomputes restricted predictions, per-node TP/FP/FN, per-node precision/recall/F1, per-class
scores, the alpha mix and top-k; prints JSON: {"classes": [{"name", "chosen": [{"model", "score"}]}]}.
"""
import json
import sys

import h5py
import numpy as np


def main():
    store_path, selection_path = sys.argv[1], sys.argv[2]
    sel = json.load(open(selection_path))
    f = h5py.File(store_path, "r")
    wnids = [w.decode() if isinstance(w, bytes) else w for w in f["graph/wnid"][:]]
    index = {w: i for i, w in enumerate(wnids)}
    offsets = f["probe/node_offsets"][:]
    node_images = f["probe/node_images"][:]
    node_caption = f["captions/node_caption"][:]

    classes = sel["classes"]
    class_nodes = [[index[n["wnid"]] for n in c["matched_nodes"]] for c in classes]
    class_weights = [[float(n["weight"]) for n in c["matched_nodes"]] for c in classes]
    task_nodes = sorted({v for nodes in class_nodes for v in nodes})
    pos = {v: j for j, v in enumerate(task_nodes)}
    members = [node_images[offsets[v]:offsets[v + 1]] for v in task_nodes]

    alpha, k, metric, mix = sel["alpha"], sel["k"], sel["metric"], sel["mix"]
    r_all = []
    for model in sel["models"]:
        g = f["models/" + model]
        scale = np.float32(g.attrs["logit_scale"])
        T = g["text_embeddings"][:].astype(np.float32)
        E = g["image_embeddings"]
        Tv = scale * T[node_caption[task_nodes]]
        K = len(task_nodes)
        tp = np.zeros(K, np.int64)
        fp = np.zeros(K, np.int64)
        fn = np.zeros(K, np.int64)
        for j, imgs in enumerate(members):
            if len(imgs) == 0:
                continue
            order = np.argsort(imgs)
            rows = E[np.sort(imgs)].astype(np.float32)  # h5py needs increasing indices
            pred = np.empty(len(imgs), np.int64)
            pred[order] = np.argmax(rows @ Tv.T, axis=1)  # first maximum on ties
            for p in pred:
                if p == j:
                    tp[j] += 1
                else:
                    fp[p] += 1
                    fn[j] += 1
        with np.errstate(divide="ignore", invalid="ignore"):
            if metric == "precision":
                num, den = tp, tp + fp
            elif metric == "recall":
                num, den = tp, tp + fn
            else:
                num, den = 2 * tp, 2 * tp + fp + fn
            p_node = np.where(den > 0, num / np.maximum(den, 1), 0.0)
        p_class = np.array([sum(w * p_node[pos[v]] for v, w in zip(nodes, weights))
                            for nodes, weights in zip(class_nodes, class_weights)], dtype=np.float64)
        C = len(p_class)
        if mix == "all":
            mean = np.full(C, p_class.mean())
        else:
            mean = (p_class.sum() - p_class) / (C - 1) if C > 1 else p_class.copy()
        r_all.append(alpha * p_class + (1 - alpha) * mean)
    r = np.array(r_all)  # models x classes
    out = {"classes": []}
    for y, c in enumerate(classes):
        order = sorted(range(len(sel["models"])), key=lambda m: (-r[m, y], m))[:k]
        out["classes"].append({"name": c["name"],
                               "chosen": [{"model": sel["models"][m], "score": float(r[m, y])}
                                          for m in order]})
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
