#!/usr/bin/env python3
"""torch_gatys.py: the PyTorch peer of `nst bench` (BENCHMARKS.md).

Times one optimiser evaluation of nst's objective in PyTorch, the work
`nst bench` times: VGG-19 forward to relu5_1 on a SIZE x SIZE image, the
losses, and the backward pass to the image. The objective is nst's own
(README.md, "The loss weights"), with nst's defaults:

  input      RGB in [0,1], normalised with the ImageNet mean and deviation
  content    relu4_2: ||F(x) - P||^2 / ||P||^2
  Gram       G = F F^T / (C*M) for a C x M feature map
  style      relu1_1 ... relu5_1, equal layer weights summing to 1:
             ||G(x) - A||^2 / ||A||^2 each
  TV         mean over pixels and channels of the squared differences of
             vertical and horizontal neighbours
  total      1 * content + 10 * style + 1 * TV, max pooling

Like `nst bench` without --weights it uses random weights of the real
VGG-19 widths (He-scaled, as nst-genweights makes them, so the activations
keep their scale) and random content and style images: the time does not
depend on their values. --weights reads torchvision's vgg19 .pth instead.
It runs --warmup evaluations, then times each of --evals evaluations
(synchronising the GPU around each) and prints the median, min and max,
and the peak memory: the device's for CUDA, the process's resident set for
the CPU.

  tools/torch_gatys.py --device cpu --size 256 --evals 3 --threads 2
  tools/torch_gatys.py --device cuda --size 512 --evals 20 --tf32
  make bench PYTHON=/path/to/python   # nst, then this script, on the CPU

Needs PyTorch (pip install torch); nothing else.
"""
import argparse
import json
import math
import resource
import statistics
import sys
import time

# VGG-19's convolutions up to conv5_1: (name, torchvision features index, width).
CONVS = [("conv1_1", 0, 64), ("conv1_2", 2, 64),
         ("conv2_1", 5, 128), ("conv2_2", 7, 128),
         ("conv3_1", 10, 256), ("conv3_2", 12, 256), ("conv3_3", 14, 256), ("conv3_4", 16, 256),
         ("conv4_1", 19, 512), ("conv4_2", 21, 512), ("conv4_3", 23, 512), ("conv4_4", 25, 512),
         ("conv5_1", 28, 512)]
POOL_AFTER = {"conv1_2", "conv2_2", "conv3_4", "conv4_4"}
CONTENT_LAYERS = ["relu4_2"]
STYLE_LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
CONTENT_WEIGHT, STYLE_WEIGHT, TV_WEIGHT = 1.0, 10.0, 1.0
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="Time one evaluation of nst's style-transfer objective (VGG-19 forward to "
                    "relu5_1, content, style and TV losses, backward to the image) in PyTorch: "
                    "the peer of `nst bench`.")
    ap.add_argument("--device", default="cpu",
                    help="cpu, cuda or cuda:N (default cpu)")
    ap.add_argument("--size", type=int, default=256,
                    help="side of the square image in pixels, 16..16384 (default 256)")
    ap.add_argument("--evals", type=int, default=10,
                    help="timed evaluations, 1..10000 (default 10)")
    ap.add_argument("--warmup", type=int, default=2,
                    help="untimed evaluations first (default 2, as nst bench)")
    ap.add_argument("--threads", type=int, default=0,
                    help="CPU threads (default: PyTorch's choice)")
    ap.add_argument("--tf32", action="store_true",
                    help="CUDA: let cuDNN and cuBLAS use TF32 (default: full fp32)")
    ap.add_argument("--no-autotune", action="store_true",
                    help="CUDA: no cuDNN algorithm search (torch.backends.cudnn.benchmark off)")
    ap.add_argument("--weights", metavar="FILE",
                    help="torchvision's vgg19 .pth (e.g. vgg19-dcbb9e9d.pth) instead of "
                         "random weights")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random weights and images")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    a = ap.parse_args(argv)
    if not (a.device == "cpu" or a.device == "cuda" or
            (a.device.startswith("cuda:") and a.device[5:].isdigit())):
        ap.error(f"--device '{a.device}': give cpu, cuda or cuda:N")
    if not 16 <= a.size <= 16384:
        ap.error(f"--size {a.size}: give a size in 16..16384")
    if not 1 <= a.evals <= 10000:
        ap.error(f"--evals {a.evals}: give a whole number in 1..10000")
    if a.warmup < 0:
        ap.error(f"--warmup {a.warmup}: give 0 or more")
    if a.threads < 0:
        ap.error(f"--threads {a.threads}: give 1 or more (0: PyTorch's choice)")
    if (a.tf32 or a.no_autotune) and a.device == "cpu":
        ap.error("--tf32 and --no-autotune apply to --device cuda only")
    return a


def build_vgg(torch, device, weights, gen):
    """The convolutions to conv5_1 as (name, weight, bias), He-scaled random
    weights (uniform, variance 2 / fan_in) or torchvision's."""
    state = None
    if weights:
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as e:  # a missing, truncated or foreign file
            sys.exit(f"torch_gatys.py: cannot read --weights {weights}: {e}")
    layers, cin = [], 3
    for name, index, width in CONVS:
        if state is not None:
            key = f"features.{index}"
            try:
                w, b = state[key + ".weight"], state[key + ".bias"]
            except KeyError:
                sys.exit(f"torch_gatys.py: {weights} has no {key}.weight/bias: "
                         "give torchvision's vgg19 state dict")
            if tuple(w.shape) != (width, cin, 3, 3):
                sys.exit(f"torch_gatys.py: {weights}: {key}.weight is {tuple(w.shape)}, "
                         f"VGG-19 has {(width, cin, 3, 3)}")
            w, b = w.float(), b.float()
        else:
            a = math.sqrt(3.0 * 2.0 / (cin * 9))
            w = (torch.rand(width, cin, 3, 3, generator=gen) * 2 - 1) * a
            b = (torch.rand(width, generator=gen) * 2 - 1) * 0.05
        layers.append((name, w.to(device), b.to(device)))
        cin = width
    return layers


def features(torch, layers, x, wanted):
    """The ReLU outputs named in wanted, from an image in [0,1]."""
    F = torch.nn.functional
    mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    h, out = (x - mean) / std, {}
    for name, w, b in layers:
        h = F.relu(F.conv2d(h, w, b, padding=1))
        relu = "relu" + name[4:]
        if relu in wanted:
            out[relu] = h
        if len(out) == len(wanted):
            break
        if name in POOL_AFTER:
            h = F.max_pool2d(h, 2, 2)
    return out


def gram(f):
    _, c, h, w = f.shape
    f = f.reshape(c, h * w)
    return (f @ f.t()) / (c * h * w)


def targets(torch, layers, content, style):
    """The content features P and the style Grams A, each with its squared
    norm (the term's normaliser)."""
    wanted = set(CONTENT_LAYERS) | set(STYLE_LAYERS)
    with torch.no_grad():
        fc, fs = features(torch, layers, content, wanted), features(torch, layers, style, wanted)
        tc = {n: (fc[n], fc[n].square().sum()) for n in CONTENT_LAYERS}
        ts = {n: (gram(fs[n]), gram(fs[n]).square().sum()) for n in STYLE_LAYERS}
    return tc, ts


def objective(torch, layers, x, tc, ts):
    """nst's weighted loss terms (content, style, TV) at the image x."""
    f = features(torch, layers, x, set(tc) | set(ts))
    lc = sum((f[n] - p).square().sum() / pn for n, (p, pn) in tc.items())
    ls = sum((gram(f[n]) - a).square().sum() / an for n, (a, an) in ts.items()) / len(ts)
    dy = x[..., 1:, :] - x[..., :-1, :]
    dx = x[..., :, 1:] - x[..., :, :-1]
    ltv = (dy.square().sum() + dx.square().sum()) / x.numel()
    return CONTENT_WEIGHT * lc, STYLE_WEIGHT * ls, TV_WEIGHT * ltv


def main(argv):
    a = parse_args(argv)
    try:
        import torch
    except ImportError:
        sys.exit("torch_gatys.py: PyTorch is not installed for " + sys.executable +
                 ": pip install torch, or run it with a python that has it")
    cuda = a.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        sys.exit(f"torch_gatys.py: --device {a.device}, but this PyTorch "
                 f"({torch.__version__}) sees no CUDA device")
    if cuda:
        torch.backends.cudnn.allow_tf32 = a.tf32
        torch.backends.cuda.matmul.allow_tf32 = a.tf32
        torch.backends.cudnn.benchmark = not a.no_autotune
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)

    gen = torch.Generator().manual_seed(a.seed)
    layers = build_vgg(torch, dev, a.weights, gen)
    content = torch.rand(1, 3, a.size, a.size, generator=gen).to(dev)
    style = torch.rand(1, 3, a.size, a.size, generator=gen).to(dev)
    tc, ts = targets(torch, layers, content, style)
    img = content.clone().requires_grad_(True)

    def evaluate():
        loss = sum(objective(torch, layers, img, tc, ts))
        img.grad = None
        loss.backward()
        return loss

    sync = torch.cuda.synchronize if cuda else (lambda: None)
    for _ in range(a.warmup):
        loss = evaluate()
    if not torch.isfinite(evaluate().detach()).item():
        sys.exit("torch_gatys.py: the loss is not finite: the timing would not be meaningful")
    if cuda:
        torch.cuda.reset_peak_memory_stats(dev)
    times = []
    for _ in range(a.evals):
        sync()
        t0 = time.perf_counter()
        loss = evaluate()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    if cuda:
        peak, peak_what = torch.cuda.max_memory_allocated(dev) / 2**20, "device"
    else:  # ru_maxrss is in KiB on Linux
        peak, peak_what = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "RSS"
    name = torch.cuda.get_device_name(dev) if cuda else "cpu"
    r = {"torch": torch.__version__, "device": name, "size": a.size, "evals": a.evals,
         "median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times),
         "threads": torch.get_num_threads(), "tf32": a.tf32,
         "autotune": cuda and not a.no_autotune, "peak_mib": peak, "peak_of": peak_what,
         "weights": a.weights or "random", "loss": loss.item()}
    if a.json:
        print(json.dumps(r))
    else:
        extra = (f", tf32 {'on' if a.tf32 else 'off'}, cuDNN autotune "
                 f"{'on' if r['autotune'] else 'off'}") if cuda else f", {r['threads']} threads"
        print(f"PyTorch {r['torch']} {name}{extra}, {a.size}x{a.size}, {a.evals} evaluations: "
              f"median {r['median_ms']:.2f} ms (min {r['min_ms']:.2f}, max {r['max_ms']:.2f}), "
              f"peak {peak_what} {peak:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
