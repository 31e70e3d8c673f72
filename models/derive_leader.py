#!/usr/bin/env python3
"""Derive LEADER-fused.onnx from LEADER.onnx: the same network with fused element-wise ops.

Usage: python3 models/derive_leader.py SRC.onnx DST.onnx

LEADER.onnx is a tf2onnx conversion of a Keras model. Every Keras LayerNormalization is
decomposed into ReduceMean / Sub / Mul / ReduceMean / Add / Sqrt / Reciprocal / Mul / Mul /
Add / Add over the channel axis (1) of an NCHW tensor, and every tanh-GELU into
Mul / Pow / Mul / Add / Mul / Tanh / Add / Mul (the cube computed between a stray pair of
Transposes). ONNX Runtime's fusions do not match either form, so most of the inference is
memory-bound element-wise passes. This script rewrites

- each channel-axis LayerNorm into Transpose(NCHW→NHWC) → LayerNormalization(axis=-1,
  same epsilon, gamma, beta) → Transpose(NHWC→NCHW); ORT cancels or folds the Transposes
  into the NCHWc reorders around the convolutions;
- each tanh-GELU 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) into com.microsoft FastGelu
  (the same tanh approximation, one pass), dropping the Transposes around the cube;
- where a GELU directly follows a LayerNorm, the FastGelu runs before the Transpose back
  to NCHW (element-wise, so the same values), which lets ORT fold that Transpose into the
  next NCHWc reorder (kernel time 1385 → 1155 ms in one ORT profile, 288x512, 2 threads);
- each Keras dilated convolution ('same' padding), which tf2onnx lowers to SpaceToBatch
  form (Pad to a multiple of the rate → Transpose → SpaceToDepth → to batch → Conv without
  padding → Transpose → DepthToSpace → Slice (crop) → bias Add, with Shape / Slice / Concat
  / Cast arithmetic computing the paddings and crops at run time), into one Conv with
  `dilations` = the rate and TF's 'same' pads ((k-1)·d split floor/ceil), bias folded in:
  the same products summed per output pixel (the extra padding to a multiple of the rate
  is exactly what the crop removed). 3 SpaceToBatch patterns feed 4 convolutions (the
  stem's feeds two). The two in the attention block kept their [C, N, H, W] result for a
  Concat on axis 0 between Transposes; that Concat becomes a Concat on axis 1 of the NCHW
  values (FastGelu moved before the Transpose it followed), and the Transposes go
  (ORT profile, 480x640, 2 threads, two alternated runs under load: kernel time 2719 /
  2938 → 2029 / 2258 ms; DepthToSpace, SpaceToDepth and Pad gone, Transpose 132 → 51 ms);

and removes the nodes and initializers nothing uses any more (including the shape
arithmetic that computed the SpaceToBatch paddings and crops). Each pattern is matched
exactly (op types, wiring, constant values, and that no intermediate value escapes the
pattern); anything else is left as it is, and the script fails if it finds a different
number of patterns than LEADER has (24 LayerNorms, 27 GELUs, 3 SpaceToBatch with 4 dilated
convolutions, 1 batch-axis Concat). The output is a pure
function of the input bytes (node order and names are derived from the source graph), so
`models/fetch.py` can pin its sha256.

Needs the `onnx` package (pinned in scripts/install-deps.sh).
"""
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper

EXPECTED_LAYERNORMS = 24
EXPECTED_GELUS = 27
EXPECTED_SPACE_TO_BATCH = 3  # feeding 4 dilated convolutions (the stem's SpaceToBatch feeds two)
EXPECTED_DILATED_CONVS = 4
EXPECTED_BATCH_CONCATS = 1
# SpaceToBatch → Conv input for the network input (NHWC, one channel)
S2B_NHWC_CHAIN = [("Unsqueeze", [1]), ("Reshape", [1, 1, 0, 0, 0, 1]), ("Squeeze", [0]), ("Reshape", [-1, 1, 0, 0])]
# (op, constant second input) chains from a LayerNorm's mean to its Sub
MEAN_CHAINS = (
    [("Reshape", [-1, 1, 0, 0])],
    [("Unsqueeze", [0]), ("Reshape", [1, 1, -1, 0, 0, 1]), ("Squeeze", [0]), ("Reshape", [-1, 1, 0, 0])],
)


class Graph:
    def __init__(self, graph):
        self.g = graph
        self.init = {i.name: i for i in graph.initializer}
        self.producer = {}
        self.consumers = {}
        for n in graph.node:
            for o in n.output:
                self.producer[o] = n
            for i in dict.fromkeys(n.input):  # a node reading a value twice counts once
                self.consumers.setdefault(i, []).append(n)
        self.outputs = {o.name for o in graph.output}

    def const(self, name):
        t = self.init.get(name)
        return None if t is None else numpy_helper.to_array(t)

    def is_scalar(self, name, value, rtol=1e-6):
        v = self.const(name)
        return v is not None and v.size == 1 and np.allclose(v.ravel()[0], value, rtol=rtol, atol=0)

    def only(self, name):
        """The single consumer of `name`, or None (also None if `name` is a graph output)."""
        c = self.consumers.get(name, [])
        return c[0] if len(c) == 1 and name not in self.outputs else None

    def uses(self, name):
        return [] if name in self.outputs else self.consumers.get(name, [])


def attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def other(node, name):
    """The other input of a binary node, given one of them."""
    a, b = node.input
    return b if a == name else a if b == name else None


def match_layernorm(G, mean):
    """Channel-axis LayerNorm starting at its first ReduceMean. Returns (x, y, eps, gamma,
    beta, nodes) or None."""
    if mean.op_type != "ReduceMean" or attr(mean, "axes") != [1] or attr(mean, "keepdims", 1) != 1:
        return None
    x, m = mean.input[0], mean.output[0]
    uses = G.uses(m)
    if len(uses) != 2:
        return None
    neg = next((n for n in uses if n.op_type == "Neg"), None)
    rs = next((n for n in uses if n.op_type != "Neg"), None)
    if neg is None or rs is None:
        return None
    # the mean reaches the Sub through one of two reshape chains that keep [N,1,H,W]
    # (tf2onnx's leftovers of a Transpose of a tensor with one channel)
    reshapes = []
    chain = MEAN_CHAINS[0] if rs.op_type == "Reshape" else MEAN_CHAINS[1]
    for k, (op, const) in enumerate(chain):
        if rs is None or rs.op_type != op or not np.array_equal(G.const(rs.input[1]), const):
            return None
        reshapes.append(rs)
        if k + 1 < len(chain):
            rs = G.only(rs.output[0])
    sub = G.only(rs.output[0])
    if sub is None or sub.op_type != "Sub" or list(sub.input) != [x, rs.output[0]]:
        return None
    d = sub.output[0]
    sq = G.only(d)
    if sq is None or sq.op_type != "Mul" or list(sq.input) != [d, d]:
        return None
    var = G.only(sq.output[0])
    if var is None or var.op_type != "ReduceMean" or attr(var, "axes") != [1] or attr(var, "keepdims", 1) != 1:
        return None
    add_eps = G.only(var.output[0])
    if add_eps is None or add_eps.op_type != "Add":
        return None
    eps = G.const(other(add_eps, var.output[0]))
    if eps is None or eps.size != 1:
        return None
    sqrt = G.only(add_eps.output[0])
    if sqrt is None or sqrt.op_type != "Sqrt":
        return None
    rec = G.only(sqrt.output[0])
    if rec is None or rec.op_type != "Reciprocal":
        return None
    mul = G.only(rec.output[0])
    if mul is None or mul.op_type != "Mul":
        return None
    gamma = G.const(other(mul, rec.output[0]))
    if gamma is None or gamma.ndim != 4 or gamma.shape[0] != 1 or gamma.shape[2:] != (1, 1):
        return None
    c = gamma.shape[1]
    mu = G.uses(mul.output[0])
    if len(mu) != 2:
        return None
    mul2 = next((n for n in mu if n.op_type == "Mul" and set(n.input) == {x, mul.output[0]}), None)
    mul1 = next((n for n in mu if n.op_type == "Mul" and set(n.input) == {neg.output[0], mul.output[0]}), None)
    if mul2 is None or mul1 is None or G.uses(neg.output[0]) != [mul1]:
        return None
    add1 = G.only(mul1.output[0])
    if add1 is None or add1.op_type != "Add":
        return None
    beta = G.const(other(add1, mul1.output[0]))
    if beta is None or beta.shape != (1, c, 1, 1):
        return None
    add2 = G.only(mul2.output[0])
    if add2 is None or add2.op_type != "Add" or set(add2.input) != {mul2.output[0], add1.output[0]}:
        return None
    if G.uses(add1.output[0]) != [add2]:
        return None
    nodes = [mean, neg, *reshapes, sub, sq, var, add_eps, sqrt, rec, mul, mul2, mul1, add1, add2]
    return x, add2.output[0], float(eps.ravel()[0]), gamma.reshape(c), beta.reshape(c), nodes


def match_gelu(G, tanh):
    """tanh-GELU around its Tanh node. Returns (x, y, nodes) or None."""
    if tanh.op_type != "Tanh":
        return None
    nodes = [tanh]
    mul_c = G.producer.get(tanh.input[0])
    if mul_c is None or mul_c.op_type != "Mul" or G.only(mul_c.output[0]) is not tanh:
        return None
    k = next((i for i in mul_c.input if G.is_scalar(i, np.sqrt(2 / np.pi))), None)
    if k is None:
        return None
    nodes.append(mul_c)
    add_in = G.producer.get(other(mul_c, k))
    if add_in is None or add_in.op_type != "Add" or G.only(add_in.output[0]) is not mul_c:
        return None
    nodes.append(add_in)
    # one input of add_in is x, the other 0.044715·x³ (possibly between Transposes)
    for x, cube in (add_in.input, reversed(add_in.input)):
        chain = []
        n = G.producer.get(cube)
        perm = None
        if n is not None and n.op_type == "Transpose":
            perm = attr(n, "perm")
            chain.append(n)
            n = G.producer.get(n.input[0])
        if n is None or n.op_type != "Mul":
            continue
        c = next((i for i in n.input if G.is_scalar(i, 0.044715)), None)
        if c is None:
            continue
        chain.append(n)
        p = G.producer.get(other(n, c))
        if p is None or p.op_type != "Pow" or not G.is_scalar(p.input[1], 3.0):
            continue
        chain.append(p)
        src = p.input[0]
        t = G.producer.get(src)
        if chain[0].op_type == "Transpose":
            # the Transposes around the cube must cancel
            if t is None or t.op_type != "Transpose" or [attr(t, "perm")[i] for i in perm] != list(range(len(perm))):
                continue
            chain.append(t)
            src = t.input[0]
        if src != x:
            continue
        # every intermediate of the cube chain feeds only the next node
        if any(G.only(a.output[0]) is not b for a, b in zip(reversed(chain[1:]), reversed(chain[:-1]))):
            continue
        if G.only(chain[0].output[0]) is not add_in:
            continue
        nodes += chain
        break
    else:
        return None
    add1 = G.only(tanh.output[0])
    if add1 is None or add1.op_type != "Add" or not G.is_scalar(other(add1, tanh.output[0]), 1.0):
        return None
    nodes.append(add1)
    out = G.only(add1.output[0])
    if out is None or out.op_type != "Mul":
        return None
    half = G.producer.get(other(out, add1.output[0]))
    if half is None or half.op_type != "Mul" or G.only(half.output[0]) is not out:
        return None
    h = next((i for i in half.input if G.is_scalar(i, 0.5)), None)
    if h is None or other(half, h) != x:
        return None
    nodes += [out, half]
    return x, out.output[0], nodes


def match_space_to_batch(G, pad):
    """tf2onnx's SpaceToBatch form of a Keras dilated convolution ('same' padding), starting
    at its Pad: Pad (to a multiple of the rate) → Transpose → SpaceToDepth(d) → to batch →
    one or more Convs (no dilation, no padding, no bias) each → Transpose → DepthToSpace(d)
    → Slice (the crop) → Add (bias) [→ Transpose]. Returns (x, layout, d, convs, nodes) or
    None; convs = [(weight, bias, y, nodes)], y the value the pattern ends in, layout
    "NHWC" (the network input, one channel) or "NCHW"."""
    if pad.op_type != "Pad" or attr(pad, "mode", b"constant") not in (b"constant", "constant"):
        return None
    if len(pad.input) > 2 and pad.input[2]:
        return None  # a constant_value other than the default 0
    x = pad.input[0]
    t1 = G.only(pad.output[0])
    if t1 is None or t1.op_type != "Transpose":
        return None
    perm = attr(t1, "perm")
    s2d = G.only(t1.output[0])
    if s2d is None or s2d.op_type != "SpaceToDepth":
        return None
    d = attr(s2d, "blocksize")
    nodes = [pad, t1, s2d]
    n = s2d
    if perm == [3, 0, 1, 2]:
        # NHWC with one channel: [1, N, H, W] → [1, N·d², h, w] → [d²·N, 1, h, w]
        layout, chain = "NHWC", S2B_NHWC_CHAIN
    elif perm == [1, 0, 2, 3]:
        # NCHW: [C, N, H, W] → [C, N·d², h, w] → [N·d², C, h, w]
        layout, chain = "NCHW", [("Transpose", [1, 0, 2, 3])]
    else:
        return None
    for op, const in chain:
        n = G.only(n.output[0])
        if n is None or n.op_type != op:
            return None
        if op == "Transpose":
            if attr(n, "perm") != const:
                return None
        elif not np.array_equal(G.const(n.input[1]), const):
            return None
        nodes.append(n)
    convs = []
    for conv in G.uses(n.output[0]):
        if (conv.op_type != "Conv" or len(conv.input) != 2 or conv.input[0] != n.output[0]
                or attr(conv, "dilations", [1, 1]) != [1, 1] or attr(conv, "strides", [1, 1]) != [1, 1]
                or attr(conv, "group", 1) != 1 or attr(conv, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")
                or any(attr(conv, "pads", [0, 0, 0, 0]))):
            return None
        w = G.const(conv.input[1])
        if w is None or w.ndim != 4 or (layout == "NHWC" and w.shape[1] != 1):
            return None
        cn = [conv]
        t2 = G.only(conv.output[0])
        if t2 is None or t2.op_type != "Transpose" or attr(t2, "perm") != [1, 0, 2, 3]:
            return None
        d2s = G.only(t2.output[0])
        if (d2s is None or d2s.op_type != "DepthToSpace" or attr(d2s, "blocksize") != d
                or attr(d2s, "mode", b"DCR") not in (b"DCR", "DCR")):
            return None
        crop = G.only(d2s.output[0])
        if (crop is None or crop.op_type != "Slice" or len(crop.input) != 4 or crop.input[0] != d2s.output[0]
                or not np.array_equal(G.const(crop.input[3]), [2, 3])):
            return None
        add = G.only(crop.output[0])
        if add is None or add.op_type != "Add" or add.input[0] != crop.output[0]:
            return None
        b = G.const(add.input[1])
        if b is None or b.shape != (w.shape[0], 1, 1, 1):
            return None
        cn += [t2, d2s, crop, add]
        y = add.output[0]
        if layout == "NHWC":
            # [Cout, N, H, W] back to [N, Cout, H, W]
            t3 = G.only(y)
            if t3 is None or t3.op_type != "Transpose" or attr(t3, "perm") != [1, 0, 2, 3]:
                return None
            cn.append(t3)
            y = t3.output[0]
        convs.append((w, b.reshape(-1), y, cn))
    if not convs:
        return None
    return x, layout, d, convs, nodes


def same_pads(k, d):
    """TF 'same' padding of a k-tap filter at dilation rate d: (before, after)."""
    total = (k - 1) * d
    return total // 2, total - total // 2


def derive(model):
    G = Graph(model.graph)
    replace = {}  # id(first node of a pattern in graph order) -> new nodes
    drop = set()
    new_inits = []
    n_ln = n_gelu = n_s2b = n_dil = 0
    order = {id(n): i for i, n in enumerate(model.graph.node)}
    for n in model.graph.node:
        if id(n) in drop:
            continue
        ln = match_layernorm(G, n) if n.op_type == "ReduceMean" else None
        if ln is not None:
            x, y, eps, gamma, beta, nodes = ln
            base = n.name.rsplit("/", 2)[0] if "/moments/" in n.name else n.name
            base = f"{base}/fused_ln{n_ln}"
            g_name, b_name = f"{base}/gamma", f"{base}/beta"
            new_inits += [numpy_helper.from_array(gamma.astype(np.float32), g_name),
                          numpy_helper.from_array(beta.astype(np.float32), b_name)]
            new = [
                helper.make_node("Transpose", [x], [f"{base}/nhwc"], name=f"{base}/to_nhwc", perm=[0, 2, 3, 1]),
                helper.make_node("LayerNormalization", [f"{base}/nhwc", g_name, b_name], [f"{base}/ln"],
                                 name=f"{base}/LayerNormalization", axis=-1, epsilon=eps),
                helper.make_node("Transpose", [f"{base}/ln"], [y], name=f"{base}/to_nchw", perm=[0, 3, 1, 2]),
            ]
            first = min(nodes, key=lambda m: order[id(m)])
            replace[id(first)] = new
            drop.update(id(m) for m in nodes)
            n_ln += 1
            continue
        ge = match_gelu(G, n) if n.op_type == "Tanh" else None
        if ge is not None:
            x, y, nodes = ge
            base = n.name.rsplit("/", 1)[0] + f"/fused_gelu{n_gelu}"
            new = [helper.make_node("FastGelu", [x], [y], name=f"{base}/FastGelu", domain="com.microsoft")]
            first = min(nodes, key=lambda m: order[id(m)])
            replace[id(first)] = new
            drop.update(id(m) for m in nodes)
            n_gelu += 1
            continue
        sb = match_space_to_batch(G, n) if n.op_type == "Pad" else None
        if sb is not None:
            x, layout, d, convs, nodes = sb
            new = []
            if layout == "NHWC":
                xin = f"{n.name}/nchw"
                new.append(helper.make_node("Transpose", [x], [xin], name=f"{n.name}/to_nchw", perm=[0, 3, 1, 2]))
            else:
                xin = x
            for w, b, y, cn in convs:
                conv = cn[0]
                k_h, k_w = w.shape[2:]
                (t, bo), (l, r) = same_pads(k_h, d), same_pads(k_w, d)
                b_name = f"{conv.name}/dilated_bias"
                new_inits.append(numpy_helper.from_array(b.astype(np.float32), b_name))
                base = f"{conv.name}/dilated{n_dil}"
                # NCHW: the pattern ends in [Cout, N, H, W]; keep that for its consumers
                out = y if layout == "NHWC" else f"{base}/nchw"
                new.append(helper.make_node("Conv", [xin, conv.input[1], b_name], [out], name=f"{base}/Conv",
                                            dilations=[d, d], group=1, kernel_shape=[int(k_h), int(k_w)],
                                            pads=[t, l, bo, r], strides=[1, 1]))
                if layout == "NCHW":
                    new.append(helper.make_node("Transpose", [out], [y], name=f"{base}/to_cnhw", perm=[1, 0, 2, 3]))
                nodes = nodes + cn
                n_dil += 1
            first = min(nodes, key=lambda m: order[id(m)])
            replace[id(first)] = new
            drop.update(id(m) for m in nodes)
            n_s2b += 1
    if (n_ln, n_gelu, n_s2b, n_dil) != (EXPECTED_LAYERNORMS, EXPECTED_GELUS, EXPECTED_SPACE_TO_BATCH,
                                        EXPECTED_DILATED_CONVS):
        sys.exit(f"derive_leader: found {n_ln} LayerNorms, {n_gelu} GELUs, {n_s2b} SpaceToBatch patterns with "
                 f"{n_dil} dilated convolutions, expected {EXPECTED_LAYERNORMS}, {EXPECTED_GELUS}, "
                 f"{EXPECTED_SPACE_TO_BATCH} and {EXPECTED_DILATED_CONVS}: not the LEADER.onnx this script was "
                 "written for")
    # A new node takes the place of the first node of its pattern. Inputs of a pattern are
    # produced before every node of it, so this keeps the graph topologically sorted only
    # if the pattern's output is consumed after the pattern's first node; sort to be sure.
    nodes = spliced(model.graph.node, replace, drop)
    nodes = gelu_before_transpose(nodes, model)
    nodes, n_cat = concat_batch_transposes(nodes, model)
    if n_cat != EXPECTED_BATCH_CONCATS:
        sys.exit(f"derive_leader: found {n_cat} batch-axis Concats between Transposes, expected "
                 f"{EXPECTED_BATCH_CONCATS}")
    nodes = toposort(nodes, {i.name for i in model.graph.input} | {i.name for i in model.graph.initializer}
                     | {i.name for i in new_inits})
    nodes = live(nodes, model)
    set_nodes(model.graph, nodes)
    model.graph.initializer.extend(new_inits)
    import leader_rewrites  # imported here: it builds on this module's helpers

    rewritten = leader_rewrites.apply(model)
    drop_unused_initializers(model.graph)
    drop_stale_value_info(model.graph)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    model.producer_name = "epatrol models/derive_leader.py"
    model.producer_version = "1"
    model.doc_string = (f"LEADER.onnx with {n_ln} channel-axis LayerNorms as LayerNormalization(axis=-1) "
                        f"between Transposes, {n_gelu} tanh-GELUs as com.microsoft FastGelu and {n_dil} SpaceToBatch "
                        f"dilated convolutions as Conv with dilations{rewritten}")
    return model


def gelu_before_transpose(nodes, model):
    """LayerNorm → Transpose(NHWC→NCHW) → FastGelu becomes LayerNorm → FastGelu → Transpose,
    so the Transpose can meet (and ORT fold it into) the NCHWc reorder of the next Conv."""
    outputs = {o.name for o in model.graph.output}
    consumers = {}
    for n in nodes:
        for i in dict.fromkeys(n.input):
            consumers.setdefault(i, []).append(n)
    for t in nodes:
        if t.op_type != "Transpose" or not t.name.endswith("/to_nchw") or t.output[0] in outputs:
            continue
        c = consumers.get(t.output[0], [])
        if len(c) != 1 or c[0].op_type != "FastGelu":
            continue
        g = c[0]
        mid = g.output[0] + "/nhwc"
        g.input[0] = t.input[0]
        t.input[0] = g.output[0]
        t.output[0], g.output[0] = g.output[0], mid
        t.input[0] = mid
    return nodes


def concat_batch_transposes(nodes, model):
    """Concat(axis=0) of [C, N, H, W] tensors that are each Transpose([1,0,2,3]) of an NCHW
    value (optionally through a FastGelu), followed by the Transpose back, becomes one
    Concat(axis=1) of the NCHW values (FastGelu applied before the Transpose: element-wise,
    the same values). Returns (nodes, number rewritten)."""
    outputs = {o.name for o in model.graph.output}
    consumers, producer = {}, {}
    for n in nodes:
        for i in dict.fromkeys(n.input):
            consumers.setdefault(i, []).append(n)
        for o in n.output:
            producer[o] = n

    def single(v):
        c = consumers.get(v, [])
        return c[0] if len(c) == 1 and v not in outputs else None

    def batch_t(n):
        return n is not None and n.op_type == "Transpose" and attr(n, "perm") == [1, 0, 2, 3]

    drop, count = set(), 0
    for cat in nodes:
        if cat.op_type != "Concat" or attr(cat, "axis") != 0:
            continue
        back = single(cat.output[0])
        if not batch_t(back):
            continue
        plan = []
        for v in cat.input:
            p = producer.get(v)
            if p is None or single(v) is not cat:
                break
            g = None
            if p.op_type == "FastGelu" and len(p.input) == 1:
                g, p = p, producer.get(p.input[0])
                if p is None or single(p.output[0]) is not g:
                    break
            if not batch_t(p):
                break
            plan.append((p, g))
        else:
            new_in = []
            for t, g in plan:
                if g is None:
                    new_in.append(t.input[0])
                else:
                    # FastGelu(Transpose(a)) → FastGelu(a), no Transpose
                    g.input[0] = t.input[0]
                    g.output[0] = g.output[0] + "/nchw"
                    new_in.append(g.output[0])
                drop.add(id(t))
            cat.input[:] = new_in
            cat.output[0] = back.output[0]
            for a in cat.attribute:
                if a.name == "axis":
                    a.i = 1
            drop.add(id(back))
            count += 1
    return [n for n in nodes if id(n) not in drop], count


def set_nodes(graph, nodes):
    """Replaces the graph's node list."""
    del graph.node[:]
    graph.node.extend(nodes)


def spliced(nodes, replace, drop):
    """`nodes` with each node whose id is a key of `replace` swapped for its list of new
    nodes and the nodes whose id is in `drop` left out."""
    out = []
    for n in nodes:
        if id(n) in replace:
            out += replace[id(n)]
        elif id(n) not in drop:
            out.append(n)
    return out


def drop_unused_initializers(graph):
    """Removes the initializers no node reads any more (rewritten weights, dead shape constants)."""
    used = {i for n in graph.node for i in n.input}
    keep = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)


def drop_stale_value_info(graph):
    """Removes the value_info of values no node produces any more (it would only be noise)."""
    names = {o for n in graph.node for o in n.output}
    vi = [v for v in graph.value_info if v.name in names]
    del graph.value_info[:]
    graph.value_info.extend(vi)


def live(nodes, model):
    """The nodes a graph output depends on (in the given, topological order): the shape arithmetic that
    computed the SpaceToBatch paddings and crops is left without a consumer."""
    need = {o.name for o in model.graph.output}
    keep = []
    for n in reversed(nodes):
        if any(o in need for o in n.output):
            keep.append(n)
            need.update(n.input)
    return keep[::-1]


def toposort(nodes, available):
    """Stable topological sort (keeps the given order wherever it is already valid)."""
    avail = set(available) | {""}
    out, pending = [], list(nodes)
    while pending:
        rest = []
        progressed = False
        for n in pending:
            if all(i in avail for i in n.input):
                out.append(n)
                avail.update(n.output)
                progressed = True
            else:
                rest.append(n)
        if not progressed:
            sys.exit("derive_leader: graph has a cycle or a missing input after the rewrite: "
                     + ", ".join(sorted({i for n in rest for i in n.input if i not in avail})[:5]))
        pending = rest
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    model = onnx.load(sys.argv[1])
    model = derive(model)
    onnx.checker.check_model(model)
    with open(sys.argv[2], "wb") as f:
        f.write(model.SerializeToString(deterministic=True))


if __name__ == "__main__":
    main()
