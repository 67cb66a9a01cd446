#!/usr/bin/env python3
"""Generates the hostile image corpus (tests/bad/) and the fuzzing seeds
(tests/fuzz/corpus_image/). Deterministic; the outputs are committed, so this
only needs to run when the corpus changes. PNGs are built here with zlib; the
JPEGs come from cjpeg (Debian: libjpeg-turbo-progs).

usage: tools/make_bad_images.py   (from the repository root)
"""
import os
import random
import struct
import subprocess
import tempfile
import zlib

BAD = "tests/bad"
SEEDS = "tests/fuzz/corpus_image"


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def pack_row(samples, depth):
    """Samples of one row -> bytes (big-endian 16-bit, MSB-first sub-byte)."""
    if depth == 16:
        return b"".join(struct.pack(">H", s) for s in samples)
    if depth == 8:
        return bytes(samples)
    per = 8 // depth
    out = bytearray()
    for i in range(0, len(samples), per):
        v = 0
        group = samples[i:i + per]
        for j, s in enumerate(group):
            v |= s << (8 - depth * (j + 1))
        out.append(v)
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]


def png(w, h, ctype, depth, pixels, plte=None, trns=None, interlace=0):
    """pixels[y][x] is a tuple of samples for the colour type."""
    raw = bytearray()
    if interlace:
        for x0, y0, dx, dy in ADAM7:
            xs, ys = range(x0, w, dx), range(y0, h, dy)
            if not xs or not ys:
                continue
            for y in ys:
                raw += b"\0" + pack_row([s for x in xs for s in pixels[y][x]], depth)
    else:
        for y in range(h):
            raw += b"\0" + pack_row([s for x in range(w) for s in pixels[y][x]], depth)
    out = b"\x89PNG\r\n\x1a\n"
    out += chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, interlace))
    if plte:
        out += chunk(b"PLTE", bytes(plte))
    if trns:
        out += chunk(b"tRNS", bytes(trns))
    out += chunk(b"IDAT", zlib.compress(bytes(raw), 9))
    out += chunk(b"IEND", b"")
    return out


def cjpeg(w, h, rgb, *args):
    """Encodes w x h (r,g,b) pixels with cjpeg and returns the bytes."""
    ppm = b"P6 %d %d 255\n" % (w, h) + bytes(v for p in rgb for v in p)
    with tempfile.NamedTemporaryFile(suffix=".ppm") as f:
        f.write(ppm)
        f.flush()
        return subprocess.run(["cjpeg", *args, f.name], check=True, capture_output=True).stdout


def set_jpeg_size(data, w, h):
    """Rewrites the size in the SOFn marker of a JPEG."""
    i = 2
    while i < len(data):
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            return data[:i + 5] + struct.pack(">HH", h, w) + data[i + 9:]
        i += 2 + length
    raise ValueError("no SOF marker")


def write(folder, name, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def main():
    rnd = random.Random(20240611)
    rgb16 = [[(rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)) for _ in range(16)]
             for _ in range(16)]
    good_png = png(16, 16, 2, 8, rgb16)
    flat = [p for row in rgb16 for p in row]
    good_jpg = cjpeg(16, 16, flat, "-quality", "90")

    # ---- hostile corpus -------------------------------------------------
    write(BAD, "empty.png", b"")
    write(BAD, "text.png", b"this is a text file, not a picture\n")
    write(BAD, "random.bin", bytes([0x42]) + bytes(rnd.randrange(256) for _ in range(255)))
    write(BAD, "gif.png", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")
    write(BAD, "signature_only.png", good_png[:8])
    write(BAD, "truncated.png", good_png[:len(good_png) * 2 // 3])
    crc = bytearray(good_png)
    crc[29] ^= 0xFF  # the IHDR CRC (8 signature + 4 length + 4 type + 13 data)
    write(BAD, "bad_crc.png", bytes(crc))
    ihdr0 = struct.pack(">IIBBBBB", 0, 16, 8, 2, 0, 0, 0)
    write(BAD, "zero_width.png", good_png[:8] + chunk(b"IHDR", ihdr0) + good_png[33:])
    write(BAD, "bad_zlib.png", good_png[:33] + chunk(b"IDAT", b"\x78\x9c\xff\xff\xff\xff") +
          chunk(b"IEND", b""))
    # 100000 x 100000 RGB: 30 GB of pixels behind a few bytes of IDAT
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2,
                                                             0, 0, 0))
    bomb += chunk(b"IDAT", zlib.compress(b"\0" * 300001, 9)) + chunk(b"IEND", b"")
    write(BAD, "bomb.png", bomb)
    write(BAD, "truncated.jpg", good_jpg[:len(good_jpg) * 2 // 3])
    write(BAD, "soi_only.jpg", good_jpg[:4])
    write(BAD, "bomb.jpg", set_jpeg_size(good_jpg, 65000, 65000))
    write(BAD, "zero_height.jpg", set_jpeg_size(good_jpg, 16, 0))
    write(BAD, "no_image.jpg", b"\xff\xd8\xff\xd9")

    # ---- fuzzing seeds --------------------------------------------------
    write(SEEDS, "rgb8.png", good_png)
    grey1 = [[(((x ^ y) & 1),) for x in range(11)] for y in range(5)]
    write(SEEDS, "grey1.png", png(11, 5, 0, 1, grey1))
    ga = [[(x * 30, y * 40) for x in range(6)] for y in range(6)]
    write(SEEDS, "grey_alpha8.png", png(6, 6, 4, 8, ga))
    pal = [[((x + y) % 5,) for x in range(9)] for y in range(4)]
    write(SEEDS, "palette4_trns.png", png(9, 4, 3, 4, pal, plte=list(range(15)),
                                          trns=[0, 128, 255]))
    rgba16 = [[(x * 4000, y * 9000, 65535 - x * 100, 30000) for x in range(5)] for y in range(3)]
    write(SEEDS, "rgba16.png", png(5, 3, 6, 16, rgba16))
    write(SEEDS, "interlaced.png", png(9, 7, 2, 8, [row[:9] for row in rgb16[:7]], interlace=1))
    write(SEEDS, "baseline.jpg", good_jpg)
    write(SEEDS, "progressive.jpg", cjpeg(16, 16, flat, "-progressive"))
    write(SEEDS, "grey.jpg", cjpeg(16, 16, flat, "-grayscale"))
    write(SEEDS, "subsampled.jpg", cjpeg(16, 16, flat, "-sample", "2x2"))


if __name__ == "__main__":
    main()
