#!/usr/bin/env python3
"""The PyTorch peer of a whole nst run: torch.optim.LBFGS on nst's objective.

usage: torch_lbfgs.py --weights FILE.safetensors --content PHOTO.png
                      --style PAINTING.png [-n N] [--history H] [--device cpu|cuda]
                      [--threads T] [-o OUT.png] [--json]

The objective is nst's (DESIGN.md, src/loss.c, src/transfer.c) with its
default weights: VGG-19 features of the image normalised with the ImageNet
mean and deviation; content relu4_2, ||F - P||^2 / ||P||^2, weight 1; style
relu1_1..relu5_1, G = F F' / (C M), ||G - A||^2 / ||A||^2, weight 10 shared
equally by the layers; total variation, the mean over pixels and channels of
the squared differences to the next pixel down and right, weight 1. The
image starts as the photo. Images are used at the size they have (give
the files nst's run uses, e.g. those `nst bench --run N --keep` writes: nst
then resizes nothing either). The weights are nst's safetensors file
(torchvision names features.N.weight and .bias, F32, F16 or BF16), read
here by a few lines of numpy; the layer widths come from the file, so a
generated narrow network works too.

The optimiser is torch.optim.LBFGS(lr=1, history_size=H, max_iter=N,
tolerance_grad=-1, tolerance_change=-1): N iterations, no line search, as
`nst -n N --lbfgs-history H` (max_eval is raised to N + 1 when N < 4, where
PyTorch's default would stop early). PyTorch does not evaluate after its last move;
the final loss printed is evaluated at the final image (that evaluation is
timed, as nst's run pays for it too).

Prints the wall time from the start of this script (imports included) to the
written image (or the final loss without -o), the time to the end of the
first iteration, the time per iteration after it, and the final loss. Needs
only torch and numpy.
"""
import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import struct  # noqa: E402
import sys  # noqa: E402
import zlib  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

T_IMPORTED = time.perf_counter()

# torchvision's vgg19().features: convolutions at these indices (ReLU right
# after each), max pools at 4, 9, 18, 27, 36.
CONV_INDEX = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
POOL_AFTER = {2, 4, 8, 12}  # pool after these convolutions (counted from 1)
NAMES = ["1_1", "1_2", "2_1", "2_2", "3_1", "3_2", "3_3", "3_4",
         "4_1", "4_2", "4_3", "4_4", "5_1", "5_2", "5_3", "5_4"]
CONTENT_LAYERS = ["relu4_2"]
STYLE_LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        raw = data[a:b]
        if t["dtype"] == "F32":
            arr = np.frombuffer(raw, dtype="<f4")
        elif t["dtype"] == "F16":
            arr = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif t["dtype"] == "BF16":
            arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            sys.exit(f"torch_lbfgs: {path}: tensor {name} has dtype {t['dtype']}")
        out[name] = arr.reshape(t["shape"]).copy()
    return out


def read_png(path):
    """8- or 16-bit greyscale, RGB or RGBA, not interlaced -> float [3,H,W] in [0,1]."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit(f"torch_lbfgs: {path}: not a PNG file")
    pos, idat, w = 8, [], None
    while pos < len(data):
        (ln,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + ln]
        pos += 12 + ln
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    chans = {0: 1, 2: 3, 4: 2, 6: 4}.get(ctype)
    if w is None or chans is None or depth not in (8, 16) or interlace:
        sys.exit(f"torch_lbfgs: {path}: only 8/16-bit grey, RGB or RGBA PNGs, not interlaced")
    bpp = chans * depth // 8
    stride = w * bpp
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8).reshape(h, stride + 1)
    img = np.zeros((h, stride), dtype=np.uint8)
    prev = bytearray(stride)
    for y in range(h):
        ft, line = raw[y, 0], raw[y, 1:]
        if ft == 0:
            cur = bytearray(line.tobytes())
        elif ft == 2:
            cur = bytearray(((line.astype(np.int32) + np.frombuffer(bytes(prev), np.uint8))
                             & 255).astype(np.uint8).tobytes())
        elif ft == 1:  # Sub: a running sum per byte of the pixel
            cur = bytearray((line.reshape(w, bpp).astype(np.int64).cumsum(axis=0) & 255)
                            .astype(np.uint8).tobytes())
        else:  # Average or Paeth: byte by byte
            cur = bytearray(line.tobytes())
            for i in range(stride):
                left = cur[i - bpp] if i >= bpp else 0
                up = prev[i]
                if ft == 3:
                    cur[i] = (cur[i] + ((left + up) >> 1)) & 255
                else:
                    ul = prev[i - bpp] if i >= bpp else 0
                    pp = left + up - ul
                    pa, pb, pc = abs(pp - left), abs(pp - up), abs(pp - ul)
                    pred = left if pa <= pb and pa <= pc else (up if pb <= pc else ul)
                    cur[i] = (cur[i] + pred) & 255
        img[y] = np.frombuffer(bytes(cur), np.uint8)
        prev = cur
    if depth == 16:
        px = img.reshape(h, w, chans, 2).astype(np.float32)
        px = (px[..., 0] * 256 + px[..., 1]) / 65535.0
    else:
        px = img.reshape(h, w, chans).astype(np.float32) / 255.0
    if chans in (1, 2):
        px = np.repeat(px[..., :1], 3, axis=2)
    return np.ascontiguousarray(px[..., :3].transpose(2, 0, 1))


def write_png(path, x):
    """[3,H,W] in [0,1] -> 8-bit RGB PNG (rounded, as nst quantises)."""
    c, h, w = x.shape
    px = np.clip(np.floor(x.transpose(1, 2, 0) * 255.0 + 0.5), 0, 255).astype(np.uint8)
    raw = b"".join(b"\x00" + px[y].tobytes() for y in range(h))

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body +
                struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


class VGG:
    """VGG-19 features up to the deepest layer the objective needs."""

    def __init__(self, tensors, device):
        self.convs = []
        for k, idx in enumerate(CONV_INDEX):
            wn, bn = f"features.{idx}.weight", f"features.{idx}.bias"
            if wn not in tensors:
                break
            self.convs.append((torch.from_numpy(tensors[wn]).to(device),
                               torch.from_numpy(tensors[bn]).to(device)))
            if "relu" + NAMES[k] == "relu5_1":
                break
        if len(self.convs) < 13:
            sys.exit("torch_lbfgs: the weights lack convolutions up to conv5_1")

    def taps(self, x, want):
        out = {}
        for k, (w, b) in enumerate(self.convs):
            x = F.relu(F.conv2d(x, w, b, padding=1))
            name = "relu" + NAMES[k]
            if name in want:
                out[name] = x
            if k + 1 in POOL_AFTER:
                x = F.max_pool2d(x, 2, 2)
        return out


def gram(f):
    _, c, h, w = f.shape
    m = f.reshape(c, h * w)
    return m @ m.t() / (c * h * w)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--content", required=True)
    ap.add_argument("--style", required=True)
    ap.add_argument("-n", "--iterations", type=int, default=500)
    ap.add_argument("--history", type=int, default=100)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (default: torch's)")
    ap.add_argument("--content-weight", type=float, default=1.0)
    ap.add_argument("--style-weight", type=float, default=10.0)
    ap.add_argument("--tv-weight", type=float, default=1.0)
    ap.add_argument("-o", "--output")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    dev = torch.device(a.device)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    if dev.type == "cuda":  # fp32 like nst, no TF32
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False

    net = VGG(read_safetensors(a.weights), dev)
    content = torch.from_numpy(read_png(a.content))[None].to(dev)
    style = torch.from_numpy(read_png(a.style))[None].to(dev)
    mean = torch.tensor(MEAN, device=dev).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=dev).view(1, 3, 1, 1)
    norm = lambda x: (x - mean) / std  # noqa: E731
    with torch.no_grad():
        fc = net.taps(norm(content), CONTENT_LAYERS)
        fs = net.taps(norm(style), STYLE_LAYERS)
        p = {n: fc[n] for n in CONTENT_LAYERS}
        pn = {n: float((p[n] ** 2).sum()) or 1.0 for n in CONTENT_LAYERS}
        g = {n: gram(fs[n]) for n in STYLE_LAYERS}
        gn = {n: float((g[n] ** 2).sum()) or 1.0 for n in STYLE_LAYERS}
    sw = a.style_weight / len(STYLE_LAYERS)
    x = content.clone().requires_grad_(True)
    npix = x.numel()

    def objective():
        f = net.taps(norm(x), CONTENT_LAYERS + STYLE_LAYERS)
        loss = 0.0
        for n in CONTENT_LAYERS:
            loss = loss + a.content_weight * ((f[n] - p[n]) ** 2).sum() / pn[n]
        for n in STYLE_LAYERS:
            loss = loss + sw * ((gram(f[n]) - g[n]) ** 2).sum() / gn[n]
        tv = (((x[..., 1:, :] - x[..., :-1, :]) ** 2).sum() +
              ((x[..., :, 1:] - x[..., :, :-1]) ** 2).sum()) / npix
        return loss + a.tv_weight * tv

    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    stamps = []

    def closure():
        opt.zero_grad()
        loss = objective()
        loss.backward()
        sync()
        stamps.append(time.perf_counter())
        return loss

    # max_eval: PyTorch's default 1.25 max_iter, but room for all N
    # evaluations when N < 4 (it would stop early)
    opt = torch.optim.LBFGS([x], lr=1, history_size=a.history, max_iter=a.iterations,
                            max_eval=max(a.iterations * 5 // 4, a.iterations + 1),
                            tolerance_grad=-1, tolerance_change=-1)
    sync()
    t_setup = time.perf_counter()
    opt.step(closure)
    with torch.no_grad():  # the loss at the final image
        final = float(objective())
    sync()
    t_opt = time.perf_counter()
    if a.output:
        write_png(a.output, x.detach().cpu().numpy()[0])
    t_end = time.perf_counter()
    # stamps[0] is the evaluation at the start, stamps[k] the one after move k
    first = (stamps[1] if len(stamps) > 1 else t_opt) - T_START
    iters = len(stamps)
    per = (t_opt - stamps[1]) / (a.iterations - 1) * 1e3 if a.iterations > 1 and iters > 1 else 0
    res = {"peer": "torch.optim.LBFGS", "torch": torch.__version__, "device": str(dev),
           "threads": torch.get_num_threads(), "width": x.shape[3], "height": x.shape[2],
           "iterations": a.iterations, "history": a.history, "evaluations": iters + 1,
           "wall_s": round(t_end - T_START, 4), "import_s": round(T_IMPORTED - T_START, 4),
           "setup_s": round(t_setup - T_START, 4), "first_iteration_s": round(first, 4),
           "per_iteration_ms": round(per, 4), "final_loss": final}
    if a.json:
        print(json.dumps(res))
    else:
        print(f"PyTorch {torch.__version__} {dev} ({res['threads']} threads), "
              f"{res['width']}x{res['height']}, {a.iterations} L-BFGS iterations, history "
              f"{a.history}: {res['wall_s']:.3f} s to the {'written image' if a.output else 'end'}"
              f" (imports {res['import_s']:.3f} s, setup {res['setup_s']:.3f} s), first "
              f"iteration at {first:.3f} s, {per:.3f} ms per iteration, final loss {final:.9g}")


if __name__ == "__main__":
    main()
