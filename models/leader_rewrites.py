"""Second stage of models/derive_leader.py: the fused LEADER graph rewritten so ONNX Runtime
does less work for the same function (measured 2026-12-03: 1.2-1.3x on top of the fusions;
docs/fingerprint.md). Called by `derive_leader.derive`; each pattern is matched exactly and
the script fails when the graph does not have the expected number of each.

- **Upsampling as Resize** (exact): Keras' 2x nearest `UpSampling2D` became a tf2onnx
  "Repeat" chain per axis (Unsqueeze → Tile → Transpose → Reshape, twice, with Shape /
  Slice / Concat arithmetic for the target shapes, then a Transpose back to NCHW). Each of
  the 11 chains becomes one `Resize(nearest, asymmetric, floor, scales 1,1,2,2)` on the NCHW
  source, which ORT runs as one blocked pass; the same values.
- **The three output heads at half resolution**: each head upsamples the 6-channel output
  of a 1x1 `conv_adj`, then runs a 1x1 conv (6 → 4), a LayerNorm over the 4 channels, a 1x1
  conv, a GELU and a 5x5 conv at full resolution. Per-pixel operations commute with nearest
  upsampling, so the two 1x1 convs fuse into one (52 → 4) and the LayerNorm, conv and GELU
  run at half resolution (a quarter of the pixels), and the 5x5 conv of the upsampled map
  is, per output phase (a, b) ∈ {0,1}², a 3x3 conv of the half-resolution map with summed
  taps: one 3x3 conv to 4x the channels, then `DepthToSpace(2, DCR)`. The same function; the
  float sums are taken in another order (heat-map within ~1e-6).
- **Depthwise convolutions padded to 8 channels** (exact): ORT's blocked (NCHWc) depthwise
  kernel needs a channel count it can block; 106, 219 and 59 channels fell back to the slow
  NCHW path. Zero channels are padded on (`Pad`), convolved with zero kernels and sliced
  off (`Slice`).
- **The direction head's Atan2 on channel slices** (exact): tf2onnx computes it on operands
  reshaped to 3-D, where ORT broadcasts its scalar Sub / Mul ~60x slower than on
  [1,1,H,W]; the same ops in the same order on the two channel slices give the same bits.

Weights are combined in float64 with elementwise numpy operations in a fixed order (no
BLAS), so the output bytes do not depend on the machine (`models/fetch.py` pins them).
"""
import sys

import numpy as np
from onnx import helper, numpy_helper

import derive_leader
from derive_leader import Graph, attr, set_nodes

EXPECTED_UPSAMPLINGS = 11  # 8 in the decoder, 1 in each of the 3 heads
EXPECTED_HEADS = 3
EXPECTED_PADDED_DEPTHWISE = 3
# op types of tf2onnx's Atan2 (sign juggling around Atan(y / x)) with its reshapes
ATAN2_OPS = {"Slice": 2, "Reshape": 5, "Squeeze": 3, "Unsqueeze": 2, "Sign": 2, "Cast": 2, "Mul": 6, "Sub": 3,
             "Add": 3, "Div": 1, "Atan": 1}
DEPTHWISE_CHANNEL_MULTIPLE = 8
UP2_SCALES = "epatrol/up2_scales"


def const_is(G, name, value):
    v = G.const(name)
    return v is not None and np.array_equal(v, value)


def match_repeat(G, u):
    """One axis of a tf2onnx Repeat: Unsqueeze(axis 3) → Tile(1,1,1,2,1) → (Transpose) → Reshape.
    Returns the nodes or None."""
    if u.op_type != "Unsqueeze" or not const_is(G, u.input[1], [3]):
        return None
    tile = G.only(u.output[0])
    if tile is None or tile.op_type != "Tile" or not const_is(G, tile.input[1], [1, 1, 1, 2, 1]):
        return None
    nxt = G.only(tile.output[0])
    nodes = [u, tile]
    if nxt is not None and nxt.op_type == "Transpose" and attr(nxt, "perm") == [0, 2, 3, 4, 1]:
        nodes.append(nxt)
        nxt = G.only(nxt.output[0])
    if nxt is None or nxt.op_type != "Reshape":
        return None
    return nodes + [nxt]


def match_upsampling(G, u):
    """NCHW x → Repeat along H (ends NHWC) → Repeat along W → Transpose to NCHW, i.e. nearest 2x.
    Returns (x, y, nodes) or None."""
    first = match_repeat(G, u)
    if first is None or len(first) != 4:
        return None
    # the first Reshape's output also feeds the second Repeat's shape arithmetic
    uses = G.uses(first[-1].output[0])
    u2 = [n for n in uses if n.op_type == "Unsqueeze"]
    if len(u2) != 1 or any(n.op_type != "Shape" for n in uses if n is not u2[0]):
        return None
    second = match_repeat(G, u2[0])
    if second is None or len(second) != 3:
        return None
    back = G.only(second[-1].output[0])
    if back is None or back.op_type != "Transpose" or attr(back, "perm") != [0, 3, 1, 2]:
        return None
    x = u.input[0]
    if any(n.op_type != "Shape" for n in G.uses(x) if n is not u):
        return None
    return x, back.output[0], first + second + [back]


def resize_upsampling(model):
    G = Graph(model.graph)
    replace, drop = {}, set()
    for n in model.graph.node:
        m = match_upsampling(G, n) if n.op_type == "Unsqueeze" else None
        if m is None:
            continue
        x, y, nodes = m
        name = n.name.rsplit("/Repeat/", 1)[0] + "/resize"
        replace[id(n)] = [helper.make_node("Resize", [x, "", UP2_SCALES], [y], name=name, mode="nearest",
                                           coordinate_transformation_mode="asymmetric", nearest_mode="floor")]
        drop.update(id(m) for m in nodes)
    if len(replace) != EXPECTED_UPSAMPLINGS:
        sys.exit(f"derive_leader: found {len(replace)} Repeat upsamplings, expected {EXPECTED_UPSAMPLINGS}")
    model.graph.initializer.append(numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), UP2_SCALES))
    set_nodes(model.graph, derive_leader.live(derive_leader.spliced(model.graph.node, replace, drop), model))


def is_conv(G, n, k, group=1):
    if n is None or n.op_type != "Conv" or len(n.input) != 3 or G.const(n.input[1]) is None:
        return False
    w = G.const(n.input[1])
    same = attr(n, "auto_pad", b"NOTSET") in (b"SAME_UPPER", b"SAME_LOWER") or attr(n, "pads") == [k // 2] * 4
    return (w.shape[2:] == (k, k) and attr(n, "group", 1) == group and attr(n, "strides", [1, 1]) == [1, 1]
            and attr(n, "dilations", [1, 1]) == [1, 1] and same and G.const(n.input[2]) is not None)


def match_head(G, rs):
    """conv_adj (1x1) → Resize 2x → conv1 (1x1) → Transpose → LayerNormalization → Transpose →
    conv2 (1x1) → FastGelu → 5x5 conv. Returns the nodes or None."""
    adj = G.producer.get(rs.input[0])
    if not is_conv(G, adj, 1) or G.only(adj.output[0]) is not rs:
        return None
    chain = [adj, rs]
    for op in ("Conv", "Transpose", "LayerNormalization", "Transpose", "Conv", "FastGelu", "Conv"):
        n = G.only(chain[-1].output[0])
        if n is None or n.op_type != op:
            return None
        chain.append(n)
    _, _, c1, to_nhwc, _, to_nchw, c2, _, out = chain
    if not (is_conv(G, c1, 1) and is_conv(G, c2, 1) and is_conv(G, out, 5) and attr(to_nhwc, "perm") == [0, 2, 3, 1]
            and attr(to_nchw, "perm") == [0, 3, 1, 2]):
        return None
    return chain


def fused_pointwise(wa, ba, w1, b1):
    """conv1 ∘ conv_adj as one 1x1 conv: W = W1·Wa, b = W1·ba + b1, summed over k in order."""
    wa, ba, w1, b1 = (a.astype(np.float64) for a in (wa[:, :, 0, 0], ba, w1[:, :, 0, 0], b1))
    w, b = np.zeros((w1.shape[0], wa.shape[1])), b1.copy()
    for k in range(wa.shape[0]):
        w += w1[:, k:k + 1] * wa[k:k + 1, :]
        b += w1[:, k] * ba[k]
    return w.astype(np.float32)[:, :, None, None], b.astype(np.float32)


def polyphase_3x3(w):
    """A 5x5 'same' conv of a nearest-2x-upsampled map as one 3x3 conv of the map with 4x the
    output channels, channel (2a + b)·Co + c holding output phase (a, b) (DepthToSpace DCR)."""
    co, ci = w.shape[:2]
    w2 = np.zeros((4 * co, ci, 3, 3))
    for a in range(2):
        for b in range(2):
            for dy in range(-2, 3):
                for dx in range(-2, 3):
                    # upsampled row 2i + a + dy reads source row i + (a + dy) // 2
                    oy, ox = (a + dy) // 2, (b + dx) // 2
                    w2[(2 * a + b) * co:(2 * a + b + 1) * co, :, oy + 1, ox + 1] += w[:, :, dy + 2, dx + 2]
    return w2.astype(np.float32)


def heads_at_half_resolution(model):
    G = Graph(model.graph)
    heads = [m for n in model.graph.node if n.op_type == "Resize" for m in [match_head(G, n)] if m]
    if len(heads) != EXPECTED_HEADS:
        sys.exit(f"derive_leader: found {len(heads)} output heads to move to half resolution, expected {EXPECTED_HEADS}")
    replace, drop, inits = {}, set(), []
    for adj, rs, c1, _, _, _, _, gelu, out in heads:
        base = c1.name.rsplit("/", 1)[0] + "/half_res"
        w, b = fused_pointwise(G.const(adj.input[1]), G.const(adj.input[2]), G.const(c1.input[1]), G.const(c1.input[2]))
        inits += [numpy_helper.from_array(w, base + "/W"), numpy_helper.from_array(b, base + "/b")]
        replace[id(adj)] = [helper.make_node("Conv", [adj.input[0], base + "/W", base + "/b"], [c1.output[0]],
                                             name=base + "/conv_adj_conv1", kernel_shape=[1, 1])]
        drop.update((id(rs), id(c1)))
        pbase = out.name + "/polyphase"
        w2 = polyphase_3x3(G.const(out.input[1]).astype(np.float64))
        b2 = np.tile(G.const(out.input[2]).astype(np.float32), 4)
        inits += [numpy_helper.from_array(w2, pbase + "/W"), numpy_helper.from_array(b2, pbase + "/b")]
        replace[id(out)] = [
            helper.make_node("Conv", [gelu.output[0], pbase + "/W", pbase + "/b"], [pbase + "/phases"],
                             name=pbase + "/Conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
            helper.make_node("DepthToSpace", [pbase + "/phases"], [out.output[0]], name=pbase + "/DepthToSpace",
                             blocksize=2, mode="DCR"),
        ]
    model.graph.initializer.extend(inits)
    set_nodes(model.graph, derive_leader.spliced(model.graph.node, replace, drop))


def pad_depthwise(model):
    G = Graph(model.graph)
    nodes, inits, count = [], [], 0
    for n in model.graph.node:
        w = G.const(n.input[1]) if n.op_type == "Conv" else None
        c = None if w is None else w.shape[0]
        # ORT blocks channel counts that are multiples of 4 itself
        if w is None or w.shape[1] != 1 or c == 1 or attr(n, "group", 1) != c or c % 4 == 0:
            nodes.append(n)
            continue
        p = -(-c // DEPTHWISE_CHANNEL_MULTIPLE) * DEPTHWISE_CHANNEL_MULTIPLE
        base = n.name + "/channel_pad"
        wp = np.zeros((p,) + w.shape[1:], w.dtype)
        wp[:c] = w
        inits += [numpy_helper.from_array(wp, base + "/W"),
                  numpy_helper.from_array(np.array([0, 0, 0, 0, 0, p - c, 0, 0], np.int64), base + "/pads"),
                  numpy_helper.from_array(np.array([0], np.int64), base + "/start"),
                  numpy_helper.from_array(np.array([c], np.int64), base + "/end"),
                  numpy_helper.from_array(np.array([1], np.int64), base + "/axis")]
        ins = [base + "/in", base + "/W"]
        if len(n.input) > 2:
            bias = G.const(n.input[2])
            bp = np.zeros(p, bias.dtype)
            bp[:c] = bias
            inits.append(numpy_helper.from_array(bp, base + "/b"))
            ins.append(base + "/b")
        conv = helper.make_node("Conv", ins, [base + "/out"], name=n.name)
        conv.attribute.extend(a for a in n.attribute if a.name != "group")
        conv.attribute.append(helper.make_attribute("group", p))
        nodes += [helper.make_node("Pad", [n.input[0], base + "/pads"], [base + "/in"], name=base + "/Pad",
                                   mode="constant"),
                  conv,
                  helper.make_node("Slice", [base + "/out", base + "/start", base + "/end", base + "/axis"],
                                   [n.output[0]], name=base + "/Slice")]
        count += 1
    if count != EXPECTED_PADDED_DEPTHWISE:
        sys.exit(f"derive_leader: found {count} depthwise convolutions to pad, expected {EXPECTED_PADDED_DEPTHWISE}")
    model.graph.initializer.extend(inits)
    set_nodes(model.graph, nodes)


def atan2_subgraph(G, out):
    """The nodes computing `out` from two channel Slices of one tensor, if they are tf2onnx's
    Atan2 (op types, constants 1 and -π/2, nothing used outside). Returns the sliced tensor or None."""
    nodes, stack = {}, [out]
    while stack:
        n = G.producer.get(stack.pop())
        if n is None or id(n) in nodes:
            continue
        nodes[id(n)] = n
        if n.op_type != "Slice":
            stack += [i for i in n.input if i not in G.init]
    ops = {}
    for n in nodes.values():
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    if ops != ATAN2_OPS:
        return None
    slices = [n for n in nodes.values() if n.op_type == "Slice"]
    src = slices[0].input[0]
    channels = sorted((int(G.const(n.input[1])[0]), int(G.const(n.input[2])[0])) for n in slices)
    if slices[1].input[0] != src or channels != [(0, 1), (1, 2)] or any(
            not const_is(G, n.input[3], [1]) or len(n.input) != 4 for n in slices):
        return None
    floats = {float(G.const(i).ravel()[0]) for n in nodes.values() for i in n.input
              if G.const(i) is not None and G.const(i).dtype.kind == "f"}
    if floats != {1.0, float(np.float32(-np.pi / 2))}:
        return None
    inside = {o for n in nodes.values() for o in n.output}
    if any(u not in nodes.values() for o in inside - {out} for u in G.uses(o)):
        return None
    return src


def atan2_on_channels(model):
    """tf2onnx's Atan2 of the direction head reshapes its [1,1,H,W] operands to 3-D and back,
    and ORT's broadcasting of the scalar Sub / Mul on those shapes is ~60x slower than on
    [1,1,H,W]. The same formula, op for op and in the same order, on the two channel
    slices: sx = sign(x), sy = sign(y),
    atan2 = sx²·atan(y / (x + sx² − 1)) + (sy + sx·(sy² − 1))·(sx − 1)·(−π/2). Exact."""
    G = Graph(model.graph)
    concats = [n for n in model.graph.node if n.op_type == "Concat" and n.name.endswith("head_conc_1/concat")]
    found = [(c, i, m) for c in concats for i, t in enumerate(c.input) for m in [atan2_subgraph(G, t)] if m]
    if len(found) != 1:
        sys.exit(f"derive_leader: found {len(found)} tf2onnx Atan2 subgraphs feeding the output, expected 1")
    concat, k, src = found[0]
    p = "epatrol/atan2/"
    inits = {"one": np.array([1.0], np.float32), "minus_half_pi": np.array(-np.pi / 2, np.float32),
             "c0": np.array([0], np.int64), "c1": np.array([1], np.int64), "c2": np.array([2], np.int64)}
    model.graph.initializer.extend(numpy_helper.from_array(v, p + k_) for k_, v in inits.items())

    def node(op, ins, out):
        return helper.make_node(op, [i if i == src else p + i for i in ins], [p + out], name=p + out)

    new = [node("Slice", [src, "c0", "c1", "c1"], "x"), node("Slice", [src, "c1", "c2", "c1"], "y"),
           node("Sign", ["x"], "sx"), node("Sign", ["y"], "sy"),
           node("Sub", ["sx", "one"], "sxm1"), node("Mul", ["sx", "sx"], "sx2"), node("Sub", ["sx2", "one"], "sx2m1"),
           node("Mul", ["sy", "sy"], "sy2"), node("Sub", ["sy2", "one"], "sy2m1"),
           node("Mul", ["sx", "sy2m1"], "sxsy2m1"), node("Add", ["sy", "sxsy2m1"], "sysxsy2m1"),
           node("Add", ["x", "sx2m1"], "xsx2m1"), node("Mul", ["sysxsy2m1", "sxm1"], "m1"),
           node("Mul", ["m1", "minus_half_pi"], "pip"), node("Div", ["y", "xsx2m1"], "div"),
           node("Atan", ["div"], "atan0"), node("Mul", ["sx2", "atan0"], "atan"), node("Add", ["atan", "pip"], "out")]
    concat.input[k] = p + "out"
    nodes = list(model.graph.node)
    at = nodes.index(concat)
    # the old subgraph is left without a consumer; live() drops it
    set_nodes(model.graph, derive_leader.live(nodes[:at] + new + nodes[at:], model))


def apply(model):
    """All rewrites, in order; returns a short description for the model's doc string."""
    resize_upsampling(model)
    heads_at_half_resolution(model)
    pad_depthwise(model)
    atan2_on_channels(model)
    available = {i.name for i in model.graph.input} | {i.name for i in model.graph.initializer}
    set_nodes(model.graph, derive_leader.toposort(list(model.graph.node), available))
    derive_leader.drop_unused_initializers(model.graph)
    return (f"; {EXPECTED_UPSAMPLINGS} Repeat upsamplings as Resize, the {EXPECTED_HEADS} output heads at half "
            f"resolution (polyphase 3x3 convs + DepthToSpace), {EXPECTED_PADDED_DEPTHWISE} depthwise convolutions "
            f"padded to {DEPTHWISE_CHANNEL_MULTIPLE} channels, the direction head's Atan2 on NCHW channel slices")
