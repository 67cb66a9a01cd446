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

With --style-losses it writes tests/data/golden_style.bin instead, which
tests/test_style_losses.c checks its double references of the
Wasserstein-2 and histogram style losses against: on small random feature
maps, the losses of src/objective/term_w2.c and term_hist.c written in
PyTorch (float64), their gradients by autograd (through torch.linalg.eigh
for the matrix square root of W2, the matched target held constant for the
histogram loss). Layout (little-endian):
  char[4] "NSTS", i32 C, M, M1, M2, f64 blend[2]
  f64 f[C*M], s1[C*M1], s2[C*M2]      the image's and two paintings' features
  f64 w[M], mask[M]                    position weights; a 0/1 region
  4 x (f64 value, f64 grad[C*M])       w2, w2 weighted by w, hist, hist in mask
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


W2_RIDGE = 1e-3  # term_w2.c


def sym_pow(a, p):
    e, v = torch.linalg.eigh(a)
    return (v * e.clamp(min=0) ** p) @ v.T


def w2_target(styles, blend):
    """The mixture's mean, S = (Sigma + e_s I)^(1/2), tr S^2, N and e_a."""
    c = styles[0].shape[0]
    mu = sum(b * s.mean(1) for s, b in zip(styles, blend))
    m2 = sum(b * (s @ s.T) / s.shape[1] for s, b in zip(styles, blend))
    sig = m2 - torch.outer(mu, mu)
    t = max(float(torch.trace(sig)), 0.0)
    es = W2_RIDGE * t / c
    s_root = sym_pow(sig + es * torch.eye(c, dtype=torch.float64), 0.5)
    norm = float((mu * mu).sum()) + t
    return mu, s_root, t + c * es, norm if norm > 0 else 1.0, W2_RIDGE * (t / c) ** 2


def w2_loss(f, w, target):
    mus, s_root, trs, norm, ridge = target
    c = f.shape[0]
    wsum = w.sum()
    mu = (f * w).sum(1) / wsum
    sig = (f * w) @ f.T / wsum - torch.outer(mu, mu)
    a = s_root @ sig @ s_root + ridge * torch.eye(c, dtype=torch.float64)
    return (((mu - mus) ** 2).sum() + torch.trace(sig) + trs
            - 2 * torch.trace(sym_pow(a, 0.5))) / norm


def hist_table(styles, blend, k):
    q = 0
    for s, b in zip(styles, blend):
        srt = np.sort(s.numpy(), axis=1)
        m = s.shape[1]
        q = q + b * srt[:, [(2 * i + 1) * m // (2 * k) for i in range(k)]]
    return torch.tensor(q)


def hist_loss(f, mask, q):
    c, m = f.shape
    k = q.shape[1]
    t = f.detach().clone()
    region = [p for p in range(m) if mask is None or mask[p] > 0.5]
    n = len(region)
    e = 0.0
    for ch in range(c):
        vals = f.detach()[ch, region]
        order = torch.sort(vals, stable=True).indices  # ties by position
        for r in range(n):
            v = q[ch, (2 * r + 1) * k // (2 * n)]
            t[ch, region[int(order[r])]] = v
            e += float(v) ** 2
    return ((f - t) ** 2).sum() / e


def style_golden(out):
    rng = np.random.default_rng(20261126)
    c, m, m1, m2 = 6, 40, 50, 30
    blend = [0.3, 0.7]
    f = rng.uniform(0, 2, (c, m))
    s1 = rng.uniform(0, 1.5, (c, m1))
    s2 = rng.uniform(0.5, 3, (c, m2))
    w = rng.uniform(0, 1, m)
    mask = (np.arange(m) % 3 != 0).astype(np.float64)
    styles = [torch.tensor(s1), torch.tensor(s2)]
    target = w2_target(styles, blend)
    q = hist_table(styles, blend, m)
    cases = []
    for kind in range(4):
        x = torch.tensor(f, requires_grad=True)
        if kind < 2:
            loss = w2_loss(x, torch.tensor(w if kind else np.ones(m)), target)
        else:
            loss = hist_loss(x, mask if kind == 3 else None, q)
        loss.backward()
        cases.append((float(loss.detach()), x.grad.numpy().ravel()))
    with open(out, "wb") as fp:
        fp.write(b"NSTS")
        fp.write(struct.pack("<iiii", c, m, m1, m2))
        fp.write(struct.pack("<dd", *blend))
        for a in (f, s1, s2, w, mask):
            fp.write(np.ascontiguousarray(a, dtype="<f8").tobytes())
        for v, g in cases:
            fp.write(struct.pack("<d", v))
            fp.write(np.ascontiguousarray(g, dtype="<f8").tobytes())
    print("wrote %s: values %s" % (out, ", ".join("%.6g" % v for v, _ in cases)),
          file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--network", choices=sorted(NETWORKS), default="vgg19")
    ap.add_argument("--style-losses", action="store_true",
                    help="write tests/data/golden_style.bin (the W2 and histogram losses)")
    ap.add_argument("--out", help="output file (default: the network's golden file)")
    args = ap.parse_args()
    if args.style_losses:
        style_golden(args.out or "tests/data/golden_style.bin")
        return
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
