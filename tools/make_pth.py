#!/usr/bin/env python3
"""make_pth.py: writes the PyTorch checkpoints under tests/data (run by hand,
not in CI; needs a python with PyTorch: Debian's python3-torch, or pip).

It reads the generated narrow network that build/tools/nst-genweights writes
(seed 7, width 1/64, all 16 convolutions) with a tiny safetensors reader, adds
a small "classifier.6" layer with exact values, and saves the state_dict as
  tiny-vgg.pth           zip container (torch >= 1.6), float32
  tiny-vgg-legacy.pth    legacy container (like torchvision's vgg19-dcbb9e9d.pth)
  tiny-vgg-half.pth      zip, float16
  tiny-vgg-bf16.pth      legacy, bfloat16
  pth-views.pth          {'state_dict': ..., 'epoch': 3}: two tensors sharing one
                         storage (offset 6), one an nn.Parameter
  pth-v1-legacy.pth      legacy container with torch._utils._rebuild_tensor (the
                         pre-0.4 form of torchvision's 2017 files): a = arange(6)/4
  pth-strided.pth        a transposed (non-contiguous) tensor: must be refused
and hostile files that must be refused without running anything:
  hostile-os-system.pth      zip whose pickle calls os.system (REDUCE)
  hostile-eval-legacy.pth    legacy file whose pickle calls builtins.eval
  hostile-inst.pth           zip whose pickle uses INST (protocol 0 object creation)
  hostile-absurd.pth         legacy file claiming 2^31 x 2^31 x 2^31 elements
  hostile-memo.pth           legacy file with a memo index of 2^32 - 1
Usage (from the repository root, after `make build/tools/nst-genweights`):
  python3 tools/make_pth.py
"""
import collections
import json
import os
import pickle
import struct
import types
import subprocess
import sys
import zipfile

import torch

DATA = "tests/data"
GEN = "build/tools/nst-genweights"


def read_safetensors(path):
    """name -> torch tensor, F32/F16/BF16 only, in file order."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    base = 8 + n
    dt = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
    out = collections.OrderedDict()
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, en = e["data_offsets"]
        raw = bytearray(blob[base + b:base + en])
        out[name] = torch.frombuffer(raw, dtype=dt[e["dtype"]]).reshape(e["shape"]).clone()
    return out


class Evil:
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


def legacy_container(main_pickle, keys_pickle=b"\x80\x02]q\x00.", storages=b""):
    """The legacy torch.save layout around a hand-written object pickle."""
    out = bytearray()
    out += pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2)
    out += pickle.dumps(1001, protocol=2)
    out += pickle.dumps({"protocol_version": 1001, "little_endian": True,
                         "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2)
    return bytes(out) + main_pickle + keys_pickle + storages


def u(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def absurd_pickle():
    # {'features.0.weight': _rebuild_tensor_v2(pid, 0, (2^31,)*3, (1,1,1), False, OrderedDict())}
    big = b"J\xff\xff\xff\x7f"  # BININT 2^31 - 1
    pid = (b"(" + u("storage") + b"ctorch\nFloatStorage\n" + u("0") + u("cpu") +
           b"\x8a\x08" + struct.pack("<q", 1 << 40) + b"tQ")
    return (b"\x80\x02ccollections\nOrderedDict\n)R(" + u("features.0.weight") +
            b"ctorch._utils\n_rebuild_tensor_v2\n(" + pid + b"K\x00" +
            b"(" + big * 3 + b"t" + b"(K\x01K\x01K\x01t" + b"\x89ccollections\nOrderedDict\n)R" +
            b"tRu.")


def as_module(sd):
    """A torchvision-shaped model (features.N convs, classifier.6) holding sd."""
    feats, n, pools = [], 0, {4, 9, 18, 27, 36}
    while f"features.{n}.weight" in sd or n in pools or f"features.{n - 1}.weight" in sd:
        if n in pools:
            feats.append(torch.nn.MaxPool2d(2))
        elif f"features.{n}.weight" in sd:
            o, i = sd[f"features.{n}.weight"].shape[:2]
            feats.append(torch.nn.Conv2d(i, o, 3, padding=1))
        else:
            feats.append(torch.nn.ReLU(inplace=True))
        n += 1
    m = torch.nn.Module()
    m.features = torch.nn.Sequential(*feats)
    m.classifier = torch.nn.Sequential(*[torch.nn.Identity() for _ in range(6)],
                                       torch.nn.Linear(8, 5))
    m.load_state_dict(sd)
    return m


class V1Pickler(pickle.Pickler):
    """Pickles tensors the pre-0.4 way: _rebuild_tensor(storage, offset, size, stride)."""
    def reducer_override(self, obj):
        if isinstance(obj, torch.Tensor):
            return (torch._utils._rebuild_tensor,
                    (obj.storage(), obj.storage_offset(), tuple(obj.size()), obj.stride()))
        return NotImplemented


def main():
    os.makedirs(DATA, exist_ok=True)
    tmp = "build/tmp/make_pth.safetensors"
    os.makedirs("build/tmp", exist_ok=True)
    subprocess.run([GEN, "--out", tmp, "--seed", "7", "--width-mult", "0.015625",
                    "--convs", "16", "--dtype", "F32"], check=True)
    sd = read_safetensors(tmp)
    sd["classifier.6.weight"] = (torch.arange(40, dtype=torch.float32) % 7 - 3).reshape(5, 8) * 0.125
    sd["classifier.6.bias"] = torch.arange(5, dtype=torch.float32) * -0.25
    sd = as_module(sd).state_dict()  # a real state_dict: detached tensors, _metadata
    p = lambda n: os.path.join(DATA, n)
    torch.save(sd, p("tiny-vgg.pth"))
    torch.save(sd, p("tiny-vgg-legacy.pth"), _use_new_zipfile_serialization=False)
    torch.save(collections.OrderedDict((k, v.half()) for k, v in sd.items()), p("tiny-vgg-half.pth"))
    torch.save(collections.OrderedDict((k, v.bfloat16()) for k, v in sd.items()),
               p("tiny-vgg-bf16.pth"), _use_new_zipfile_serialization=False)

    base = torch.arange(10, dtype=torch.float32) * 0.5
    views = collections.OrderedDict()
    views["a"] = torch.nn.Parameter(base[0:6].view(2, 3))
    views["b"] = base[6:10]
    torch.save({"state_dict": views, "epoch": 3}, p("pth-views.pth"))
    v1 = types.SimpleNamespace(Pickler=V1Pickler, __name__="pickle", dump=pickle.dump)
    torch.save(collections.OrderedDict(a=torch.arange(6, dtype=torch.float32).reshape(2, 3) / 4),
               p("pth-v1-legacy.pth"), pickle_module=v1, _use_new_zipfile_serialization=False)
    torch.save({"features.0.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3).t()},
               p("pth-strided.pth"))

    torch.save({"x": Evil(os.system, "echo pwned > build/tmp/pwned")}, p("hostile-os-system.pth"))
    torch.save({"x": Evil(eval, "print('pwned')")}, p("hostile-eval-legacy.pth"),
               _use_new_zipfile_serialization=False)
    with zipfile.ZipFile(p("hostile-inst.pth"), "w", zipfile.ZIP_STORED) as z:
        z.writestr("hostile-inst/data.pkl", b"\x80\x02(" + u("echo pwned") + b"ios\nsystem\n.")
    with open(p("hostile-absurd.pth"), "wb") as f:
        f.write(legacy_container(absurd_pickle()))
    with open(p("hostile-memo.pth"), "wb") as f:
        f.write(legacy_container(b"\x80\x02}r\xff\xff\xff\xff."))
    for n in sorted(os.listdir(DATA)):
        print(f"{os.path.getsize(p(n)):8d}  {p(n)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
