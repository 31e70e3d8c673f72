#!/usr/bin/env python3
"""Makes the WSQ test fixtures in this directory (run by hand, never by the tests).

Reference codec: NBIS (NIST Biometric Image Software) as built by the PyPI package
`wsq` 0.9 (a Pillow plugin whose C extension `_wsq` compiles NBIS imgtools/src/lib/wsq).
Its Python `compress` wrapper pins the bitrate at 0.75, so the NBIS entry points
`wsq_encode_mem` / `wsq_decode_mem` exported by that extension are called through ctypes
to choose the bitrate and the resolution written into the NIST comment.

    python3 -m venv /tmp/wsqenv && /tmp/wsqenv/bin/pip install wsq==0.9 numpy
    /tmp/wsqenv/bin/python engine/tests/data/wsq/make_fixtures.py

For each fixture NAME it writes NAME.wsq (NBIS encoding of a synthetic print) and
NAME.png (NBIS's own decoding of NAME.wsq: the pixels our decoder must reproduce).
The synthetic print: curved sinusoidal ridges (a loop-like orientation field around a
core, ridge period about 9 px) under an elliptical finger mask, plus Gaussian noise,
seeded so a rerun gives the same bytes.
"""

import ctypes
import glob
import os
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))

FIXTURES = [
    # name, width, height, bitrate, ppi, seed
    ("ridges_301x257_r075", 301, 257, 0.75, 500, 1),
    ("ridges_301x257_r225", 301, 257, 2.25, 500, 2),
    ("ridges_160x203_r225_1000ppi", 160, 203, 2.25, 1000, 3),
]


def synthetic_print(w, h, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    cx, cy = w * 0.52, h * 0.45
    dx, dy = x - cx, y - cy
    r = np.hypot(dx, dy)
    # ridges: a loop (the angle around a core adds one ridge) on arcs bending from
    # horizontal below the core to circular above it; period ~9 px
    theta = np.arctan2(dy, dx)
    arc = r - 0.6 * (r - np.abs(dy)) * np.clip(dy / 40.0, 0.0, 1.0)
    phase = 2 * np.pi * (arc + 6.0 * np.sin(dx / 37.0)) / 9.0 + theta
    ridges = np.cos(phase)
    mask = ((dx / (w * 0.46)) ** 2 + (dy / (h * 0.48)) ** 2) < 1.0
    img = 200.0 - 80.0 * ridges * mask + rng.normal(0, 5.0, (h, w))
    img[~mask] = 215.0 + rng.normal(0, 4.0, (~mask).sum())
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def nbis():
    so = glob.glob(os.path.join(os.path.dirname(np.__file__), "..", "_wsq*.so"))
    lib = ctypes.CDLL(so[0])
    u8p = ctypes.POINTER(ctypes.c_ubyte)
    lib.wsq_encode_mem.argtypes = [ctypes.POINTER(u8p), ctypes.POINTER(ctypes.c_int), ctypes.c_float,
                                   u8p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_char_p]
    lib.wsq_decode_mem.argtypes = [ctypes.POINTER(u8p)] + [ctypes.POINTER(ctypes.c_int)] * 5 + [u8p, ctypes.c_int]
    return lib, u8p


def encode(lib, u8p, img, bitrate, ppi):
    h, w = img.shape
    buf = (ctypes.c_ubyte * (w * h)).from_buffer_copy(img.tobytes())
    out, olen = u8p(), ctypes.c_int()
    rc = lib.wsq_encode_mem(ctypes.byref(out), ctypes.byref(olen), bitrate, buf, w, h, 8, ppi, None)
    assert rc == 0, rc
    return ctypes.string_at(out, olen.value)


def decode(lib, u8p, data):
    buf = (ctypes.c_ubyte * len(data)).from_buffer_copy(data)
    out = u8p()
    w, h, d, ppi, lossy = (ctypes.c_int() for _ in range(5))
    rc = lib.wsq_decode_mem(ctypes.byref(out), ctypes.byref(w), ctypes.byref(h), ctypes.byref(d),
                            ctypes.byref(ppi), ctypes.byref(lossy), buf, len(data))
    assert rc == 0, rc
    return np.frombuffer(ctypes.string_at(out, w.value * h.value), np.uint8).reshape(h.value, w.value), ppi.value


def main():
    lib, u8p = nbis()
    for name, w, h, bitrate, ppi, seed in FIXTURES:
        img = synthetic_print(w, h, seed)
        wsq = encode(lib, u8p, img, bitrate, ppi)
        pix, dppi = decode(lib, u8p, wsq)
        assert pix.shape == (h, w) and dppi == ppi, (pix.shape, dppi)
        with open(os.path.join(HERE, name + ".wsq"), "wb") as f:
            f.write(wsq)
        # lossless grey PNG (smaller than PGM; the engine's PNG reader loads it)
        Image.fromarray(pix, "L").save(os.path.join(HERE, name + ".png"), optimize=True)
        err = np.abs(pix.astype(int) - img.astype(int))
        print(f"{name}: {len(wsq)} bytes, NBIS decode vs original: mean |d| {err.mean():.2f}, max {err.max()}",
              file=sys.stderr)


if __name__ == "__main__":
    main()
