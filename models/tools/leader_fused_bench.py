#!/usr/bin/env python3
"""Inference time, original vs fused LEADER, sessions alternating image by image (order
swapped every image), ORT_ENABLE_ALL, intra-op spinning off, THREADS intra-op threads,
N images per FVC DB_B set; also the max abs output difference. `prof` as 5th argument
writes ORT profiles to /tmp/leader_prof_*.

Usage: python3 models/tools/leader_fused_bench.py ORIG.onnx FUSED.onnx THREADS N [prof]
Needs onnxruntime==1.31.1, numpy, pillow.
"""
import sys, time, glob, os, json
import numpy as np, onnxruntime as ort
from PIL import Image
orig, fused = sys.argv[1], sys.argv[2]
threads = int(sys.argv[3]); n_per = int(sys.argv[4]); prof = len(sys.argv) > 5 and sys.argv[5] == "prof"
D = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../shared/datasets/fingerprints")
def prep(path, ppi):
    img = np.asarray(Image.open(path))
    if img.ndim == 3: img = img[..., 0]
    img = img.astype(np.float32)
    if ppi != 500:
        s = 500 / ppi; h, w = img.shape
        nh, nw = round(h * s), round(w * s)
        img = img[(np.arange(nh) / s).astype(int)][:, (np.arange(nw) / s).astype(int)]
    h, w = img.shape; H, W = -(-h // 32) * 32, -(-w // 32) * 32
    t, l = (H - h) // 2, (W - w) // 2
    out = np.full((H, W), img[0, 0], np.float32); out[t:t + h, l:l + w] = img
    return out[None, :, :, None]
def sess(p):
    o = ort.SessionOptions(); o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    o.intra_op_num_threads = threads; o.inter_op_num_threads = 1
    o.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if prof: o.enable_profiling = True; o.profile_file_prefix = "/tmp/leader_prof_" + os.path.basename(p)
    return ort.InferenceSession(p, o, providers=["CPUExecutionProvider"])
so, sf = sess(orig), sess(fused)
imgs = []
for sub, ppi in (("fvc2002_db2_b", 569), ("fvc2004_db1_b", 500)):
    fs = sorted(glob.glob(f"{D}/{sub}/*.tif"))
    step = max(1, len(fs) // n_per)
    imgs += [(sub, f, ppi) for f in fs[::step][:n_per]]
# warm up both
x = prep(imgs[0][1], imgs[0][2]); so.run(None, {"input": x}); sf.run(None, {"input": x})
res = {}
maxdiff = np.zeros(4); mism = 0; tot = 0
for k, (sub, f, ppi) in enumerate(imgs):
    x = prep(f, ppi)
    pair = [("orig", so), ("fused", sf)]
    if k % 2: pair.reverse()
    outs = {}
    for name, s in pair:
        t0 = time.perf_counter(); y = s.run(None, {"input": x})[0]; dt = time.perf_counter() - t0
        res.setdefault((sub, name), []).append(dt); outs[name] = y
    a, b = outs["orig"], outs["fused"]
    d = np.abs(a - b).reshape(-1, 4).max(0)
    # channel 1 is an angle in (-pi, pi]: a flip at the wrap is not an error
    d1 = np.abs(a[..., 1] - b[..., 1]); d1 = np.minimum(d1, 2 * np.pi - d1)
    d[1] = d1.max() if d1.size else 0
    maxdiff = np.maximum(maxdiff, d)
    ma, mb = a[..., 3] >= 0.6, b[..., 3] >= 0.6
    mism += int((ma != mb).sum()); tot += int(ma.sum())
    # angle/type diff at detected minutiae
    sel = ma & mb
    print(f"{os.path.basename(f)} {sub} {x.shape[1]}x{x.shape[2]} orig {res[(sub,'orig')][-1]*1000:.0f} ms fused {res[(sub,'fused')][-1]*1000:.0f} ms maxdiff {np.round(d,6).tolist()} minutiae {int(ma.sum())} vs {int(mb.sum())} angle@min {float(d1[sel].max()) if sel.any() else 0:.2e}", flush=True)
print("threads", threads, "load", os.getloadavg())
for sub in ("fvc2002_db2_b", "fvc2004_db1_b"):
    o, fz = np.median(res[(sub, "orig")]) * 1000, np.median(res[(sub, "fused")]) * 1000
    print(f"{sub}: median orig {o:.0f} ms fused {fz:.0f} ms speedup {o/fz:.2f}x (n={len(res[(sub,'orig')])}; mean {np.mean(res[(sub,'orig')])*1000:.0f} / {np.mean(res[(sub,'fused')])*1000:.0f})")
print("max abs diff per channel (heat, angle(wrapped), type, nms-quality):", maxdiff.tolist())
print("minutia-pixel (ch3>=0.6) mismatches:", mism, "of", tot)
if prof:
    print(so.end_profiling(), sf.end_profiling())
