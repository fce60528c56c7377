#!/usr/bin/python3
"""The labeling forward pass as the paper's code does it, for a side-by-side with `mll label`:
PIL + torchvision transforms in a DataLoader, a TorchScript model's encode_image, batch 32.
Prints the wall time in seconds (model load included, as in mll label)."""
import argparse
import glob
import os
import time

start = time.time()
import torch
from PIL import Image
from torchvision import transforms

parser = argparse.ArgumentParser()
parser.add_argument("--model", required=True)
parser.add_argument("--images", required=True)
parser.add_argument("--size", type=int, default=224)
parser.add_argument("--batch", type=int, default=32)
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--workers", type=int, default=2)
args = parser.parse_args()
torch.set_num_threads(args.threads)
preprocess = transforms.Compose([
    transforms.Resize(args.size, interpolation=transforms.InterpolationMode.BICUBIC),
    transforms.CenterCrop(args.size),
    transforms.ToTensor(),
    transforms.Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
])


class Images(torch.utils.data.Dataset):
    def __init__(self, root):
        self.paths = sorted(glob.glob(os.path.join(root, "*", "*")))

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return preprocess(Image.open(self.paths[i]).convert("RGB"))


model = torch.jit.load(args.model)
loader = torch.utils.data.DataLoader(Images(args.images), batch_size=args.batch,
                                     num_workers=args.workers)
rows = 0
with torch.inference_mode():
    for batch in loader:
        e = model.encode_image(batch)
        rows += e.shape[0]
print(f"{time.time() - start:.3f}")
