#!/usr/bin/python3
"""Converts an image folder tree into webdataset tar shards (docs/probe.md "Webdataset shards").

Input: SRC holds one folder per class (a wnid such as n01440764 for probe sets, any class name
for task images) with .jpg/.jpeg/.png images at any depth; hidden entries are skipped, as
`mll probe build --images` does.
Output: OUT/000000.tar, OUT/000001.tar, ... (--per-shard samples each, default 1000), samples in
class order, then path order. A sample is the image, bytes unchanged, as
`<class>/<stem>.<ext>`, plus `<class>/<stem>.cls` holding the class's line number (from 0) in
OUT/classnames.txt, which lists the class folders in sorted order (CLIP_benchmark's layout).
Dots in stems become '_' (webdataset's key ends at the first dot of a name); a sample key that
two images would share is an error. Shards are written under a temporary name and renamed when
complete, with fixed member times and owners, so the same tree gives the same bytes.

Usage: tools/folder_to_shards.py SRC OUT [--per-shard N]
Exit codes: 0 done, 64 bad arguments or OUT not writable, 65 SRC missing or without images."""
import argparse
import io
import os
import sys
import tarfile

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def fail(code, message):
    print("folder_to_shards: error: " + message, file=sys.stderr)
    sys.exit(code)


def list_samples(src):
    """(key, path, extension, class index) for every image, and the sorted class names."""
    classes = sorted(e.name for e in os.scandir(src) if e.is_dir() and not e.name.startswith("."))
    samples, keys = [], {}
    for index, name in enumerate(classes):
        found = []
        for folder, dirs, files in os.walk(os.path.join(src, name)):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for f in files:
                if not f.startswith(".") and os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS:
                    found.append(os.path.join(folder, f))
        for path in sorted(found, key=lambda p: os.path.relpath(p, src).encode()):
            relative = os.path.relpath(path, src).replace(os.sep, "/")
            stem, extension = os.path.splitext(relative)
            head, _, base = stem.rpartition("/")
            key = head + "/" + base.replace(".", "_")
            if key in keys:
                fail(65, "%s and %s would share the sample key %s" % (keys[key], path, key))
            keys[key] = path
            samples.append((key, path, extension, index))
    return samples, classes


def add_member(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def write_shard(path, samples):
    temp = "%s.tmp.%d" % (path, os.getpid())
    try:
        with tarfile.open(temp, "w", format=tarfile.PAX_FORMAT) as tar:
            for key, image, extension, index in samples:
                with open(image, "rb") as f:
                    add_member(tar, key + extension, f.read())
                add_member(tar, key + ".cls", b"%d\n" % index)
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src")
    parser.add_argument("out")
    parser.add_argument("--per-shard", type=int, default=1000)
    args = parser.parse_args()
    if args.per_shard < 1:
        fail(64, "--per-shard must be positive")
    if not os.path.isdir(args.src):
        fail(65, "%s: not a directory" % args.src)
    samples, classes = list_samples(args.src)
    if not samples:
        fail(65, "%s: no .jpg, .jpeg or .png images in any class folder" % args.src)
    try:
        os.makedirs(args.out, exist_ok=True)
        for first in range(0, len(samples), args.per_shard):
            name = os.path.join(args.out, "%06d.tar" % (first // args.per_shard))
            write_shard(name, samples[first:first + args.per_shard])
        with open(os.path.join(args.out, "classnames.txt"), "w") as f:
            f.write("".join(c + "\n" for c in classes))
    except OSError as e:
        fail(64, "%s: %s" % (args.out, e))
    shards = (len(samples) + args.per_shard - 1) // args.per_shard
    print("%d images of %d classes in %d shards under %s" % (len(samples), len(classes), shards,
                                                            args.out))


if __name__ == "__main__":
    main()
