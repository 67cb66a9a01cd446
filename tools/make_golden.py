#!/usr/bin/env python3
"""make_golden.py: writes tests/data/golden_vgg.bin (VGG-19) or, with
--network vgg16, tests/data/golden_vgg16.bin: the PyTorch (float64)
references that tests/test_vgg.c checks the device networks against.

Run by hand from the repository root, not in CI, with a python that has
PyTorch and numpy (Debian's python3-torch, or `pip install torch` in a venv;
torchvision is not needed):
    python3 tools/make_golden.py [--network vgg19|vgg16]

It recreates, bit for bit, the network nst_weights_generate_net(net, seed,
width_mult, all convs) builds in src/weights_gen.c (the same splitmix64
stream, the layers of torchvision's vgg19().features or vgg16().features, as
in src/net.c), a small image of awkward size and fixed random tap weights
r_t, then computes every layer conv1_1 ... pool5 (max pooling) and the
gradient with respect to the [0,1] image of L = sum over all layers t of
<r_t, tap_t>.

File layout (little-endian):
  char[4] "NSTG", u32 version (1)
  u64 weight seed, f64 width_mult, u64 image seed, u64 r seed
  i32 H, i32 W, i32 nlayers (37 for VGG-19, 31 for VGG-16)
  nlayers x (i32 c, i32 h, i32 w)        shape of each layer's output
  f64 weight checksum                     sum of all generated weights and biases
  f32 image[3*H*W]                        RGB in [0,1]
  nlayers x f32 tap[c*h*w]                each layer's output (conv: before ReLU)
  f32 grad[3*H*W]                         dL/dimage
The image and r_t come from splitmix64 too, so the C test regenerates r_t
from the seed (uniform in [-1,1], layer by layer) instead of storing it.
"""
import argparse
import math
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

WEIGHT_SEED = 20240601
WIDTH_MULT = 1.0 / 16
IMAGE_SEED = 7
R_SEED = 11
H, W = 37, 33  # odd sizes; pool5 still has 1x1 pixels
# torchvision's features: convolutions per block, block widths (src/net.c)
NETWORKS = {
    "vgg19": {"out": "tests/data/golden_vgg.bin", "blocks": [2, 2, 4, 4, 4]},
    "vgg16": {"out": "tests/data/golden_vgg16.bin", "blocks": [2, 2, 3, 3, 3]},
}
WIDTHS = [64, 128, 256, 512, 512]
MASK = (1 << 64) - 1


def layout(blocks):
    """Layer kinds ('conv', 'relu', 'pool') and each convolution's width."""
    kinds, widths = [], []
    for b, n in enumerate(blocks):
        for _ in range(n):
            kinds += ["conv", "relu"]
            widths.append(WIDTHS[b])
        kinds.append("pool")
    return kinds, widths


class SplitMix64:
    """The generator of src/weights_gen.c."""

    def __init__(self, seed):
        self.s = seed & MASK

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & MASK
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def uniform(self):
        return (self.next() >> 11) / 9007199254740992.0


def generate_weights(conv_width):
    s = SplitMix64(WEIGHT_SEED)
    ws, bs = [], []
    cin = 3
    for i in range(len(conv_width)):
        cout = max(1, int(math.floor(conv_width[i] * WIDTH_MULT + 0.5)))  # lround, x > 0
        a = math.sqrt(3.0 * 2.0 / (cin * 9.0))
        w = np.array([(2 * s.uniform() - 1) * a for _ in range(cout * cin * 9)], dtype=np.float32)
        b = np.array([(2 * s.uniform() - 1) * 0.05 for _ in range(cout)], dtype=np.float32)
        ws.append(w.reshape(cout, cin, 3, 3))
        bs.append(b)
        cin = cout
    return ws, bs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--network", choices=sorted(NETWORKS), default="vgg19")
    ap.add_argument("--out", help="output file (default: the network's golden file)")
    args = ap.parse_args()
    net = NETWORKS[args.network]
    out = args.out or net["out"]
    kinds, conv_width = layout(net["blocks"])
    ws, bs = generate_weights(conv_width)
    checksum = sum(float(w.astype(np.float64).sum()) + float(b.astype(np.float64).sum())
                   for w, b in zip(ws, bs))
    s = SplitMix64(IMAGE_SEED)
    image = np.array([s.uniform() for _ in range(3 * H * W)], dtype=np.float32)

    x = torch.tensor(image.astype(np.float64).reshape(1, 3, H, W), requires_grad=True)
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)
    h = (x - mean) / std
    taps = []
    conv = 0
    for kind in kinds:
        if kind == "conv":
            h = F.conv2d(h, torch.tensor(ws[conv], dtype=torch.float64),
                         torch.tensor(bs[conv], dtype=torch.float64), padding=1)
            conv += 1
        elif kind == "pool":
            h = F.max_pool2d(h, 2, 2)
        else:
            h = F.relu(h)
        taps.append(h)

    rs = SplitMix64(R_SEED)
    loss = 0
    for t in taps:
        n = t.numel()
        r = np.array([2 * rs.uniform() - 1 for _ in range(n)], dtype=np.float32)
        loss = loss + (torch.tensor(r.astype(np.float64)).view_as(t) * t).sum()
    loss.backward()
    grad = x.grad.detach().numpy().astype(np.float32).ravel()

    with open(out, "wb") as f:
        f.write(b"NSTG")
        f.write(struct.pack("<I", 1))
        f.write(struct.pack("<QdQQ", WEIGHT_SEED, WIDTH_MULT, IMAGE_SEED, R_SEED))
        f.write(struct.pack("<iii", H, W, len(taps)))
        for t in taps:
            f.write(struct.pack("<iii", t.shape[1], t.shape[2], t.shape[3]))
        f.write(struct.pack("<d", checksum))
        f.write(image.tobytes())
        for t in taps:
            f.write(t.detach().numpy().astype(np.float32).tobytes())
        f.write(grad.tobytes())
    print("wrote %s (%s): %dx%d image, %d layers, loss %.6f, |grad|max %.4g"
          % (out, args.network, H, W, len(taps), float(loss.detach()), float(np.abs(grad).max())),
          file=sys.stderr)


if __name__ == "__main__":
    main()
