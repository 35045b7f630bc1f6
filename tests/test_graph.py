"""The integer Graph: every op against loop computations, validation errors, files."""

from __future__ import annotations

import io
import itertools
import json
import zipfile

import numpy as np
import pytest
from networks import all_ops_graph

from mixq_hw.graph import Graph, GraphError, Node, ops

RNG = np.random.default_rng(1234)


# ---- ops against plain loops ------------------------------------------------------------

def loop_conv(x, w, stride, pad, groups):
    n, c, h, wd = x.shape
    o, cg, k, _ = w.shape
    ho, wo = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    out = np.zeros((n, o, ho, wo), dtype=object)
    per_group = o // groups
    for b, oc, i, j in itertools.product(range(n), range(o), range(ho), range(wo)):
        g = oc // per_group
        s = 0
        for ci, dy, dx in itertools.product(range(cg), range(k), range(k)):
            y, xx = i * stride + dy - pad, j * stride + dx - pad
            if 0 <= y < h and 0 <= xx < wd:
                s += int(x[b, g * cg + ci, y, xx]) * int(w[oc, ci, dy, dx])
        out[b, oc, i, j] = s
    return out.astype(np.int64)


@pytest.mark.parametrize("k,stride,pad,groups,cin,cout", [
    (3, 1, 1, 1, 3, 4), (3, 2, 1, 1, 2, 3), (1, 1, 0, 1, 5, 2), (3, 1, 0, 2, 4, 6),
    (3, 1, 1, 4, 4, 4), (5, 1, 2, 3, 3, 3), (5, 2, 2, 1, 2, 2), (2, 2, 0, 1, 2, 3),
    # dense with fan-in > 64 (the per-offset matmul path) and depthwise with stride 2
    (3, 1, 1, 1, 8, 3), (3, 2, 1, 1, 9, 2), (3, 2, 1, 5, 5, 5), (1, 1, 0, 1, 70, 2)])
def test_conv2d_int_matches_loops(k, stride, pad, groups, cin, cout):
    x = RNG.integers(0, 16, (2, cin, 7, 6))
    w = RNG.integers(-7, 8, (cout, cin // groups, k, k))
    np.testing.assert_array_equal(ops.conv2d_int(x, w, stride, pad, groups),
                                  loop_conv(x, w, stride, pad, groups))


@pytest.mark.parametrize("cin,groups", [(4, 1), (8, 1), (4, 4)])
def test_conv2d_int_exact_beyond_float64(cin, groups):
    # Products near 2**40 summed: float64 would round, the int64 path must not.
    x = np.full((1, cin, 3, 3), 2 ** 20 + 1, dtype=np.int64)
    w = np.full((groups if groups > 1 else 1, cin // groups, 3, 3), 2 ** 20 - 3, dtype=np.int64)
    w[0, 0, 0, 0] = -(2 ** 20) + 7
    got = ops.conv2d_int(x, w, 1, 0, groups)
    assert int(got[0, 0, 0, 0]) == sum(int(v) * (2 ** 20 + 1) for v in w[0].ravel())
    np.testing.assert_array_equal(got, loop_conv(x, w, 1, 0, groups))


def test_linear_int_uses_hwc_order():
    x = RNG.integers(0, 8, (3, 2, 3, 4))
    w = RNG.integers(-3, 4, (5, 24))
    got = ops.linear_int(x, w)
    assert got.shape == (3, 5, 1, 1)
    for b, o in itertools.product(range(3), range(5)):
        s = 0
        for h, ww, c in itertools.product(range(3), range(4), range(2)):
            s += int(x[b, c, h, ww]) * int(w[o, (h * 4 + ww) * 2 + c])
        assert got[b, o, 0, 0] == s


def loop_requant(a, inc, bias, t, bits):
    v = (a * inc + bias + 2 ** (t - 1)) // 2 ** t  # Python floor division: exact
    return min(max(v, 0), 2 ** bits - 1)


@pytest.mark.parametrize("shift,out_bits", [(1, 1), (2, 2), (3, 4), (5, 3), (8, 8)])
def test_requant_exhaustive_small(shift, out_bits):
    accs = np.arange(-300, 301)
    incs = np.array([-5, -1, 0, 1, 3, 7, 13])
    biases = np.array([-40, -7, -1, 0, 1, 6, 33])
    combos = list(itertools.product(incs, biases))
    inc = np.array([c[0] for c in combos])
    bias = np.array([c[1] for c in combos])
    acc = np.broadcast_to(accs.reshape(1, 1, -1, 1), (1, len(combos), accs.size, 1))
    got = ops.requant(acc, inc, bias, shift, out_bits)
    for ch, (i, b) in enumerate(combos):
        want = [loop_requant(int(a), int(i), int(b), shift, out_bits) for a in accs]
        assert got[0, ch, :, 0].tolist() == want


def test_requant_rounds_half_up():
    # (acc*inc + bias) / 2**T exactly k + 1/2 rounds up, also for negatives.
    acc = np.array([1, 3, -1, 5]).reshape(1, 1, 4, 1)
    y = ops.requant(acc, np.array([1]), np.array([8]), 1, 8)  # (acc + 8 + 1) >> 1
    assert y.ravel().tolist() == [5, 6, 4, 7]


def test_requant_large_values_exact():
    acc = np.array([2 ** 26 - 1, -(2 ** 26), 123456789 % 2 ** 26]).reshape(1, 1, 3, 1)
    inc, bias, t = 2 ** 17 - 1, -(2 ** 40) + 12345, 30
    got = ops.requant(acc, np.array([inc]), np.array([bias]), t, 16)
    assert got.ravel().tolist() == [loop_requant(int(a), inc, bias, t, 16) for a in acc.ravel()]


def test_input_codes_maxpool_reorg_concat_output():
    px = np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16)
    for bits in range(1, 9):
        assert (ops.input_codes(px, bits) == np.arange(256).reshape(1, 1, 16, 16) // 2 ** (8 - bits)).all()
    x = RNG.integers(0, 100, (2, 3, 4, 6))
    mp = ops.maxpool2x2(x)
    ro = ops.reorg(x)
    for b, c, i, j in itertools.product(range(2), range(3), range(2), range(3)):
        assert mp[b, c, i, j] == max(x[b, c, 2 * i + dy, 2 * j + dx] for dy in (0, 1) for dx in (0, 1))
        for dy, dx in itertools.product((0, 1), (0, 1)):
            assert ro[b, c * 4 + dy * 2 + dx, i, j] == x[b, c, 2 * i + dy, 2 * j + dx]
    y = RNG.integers(0, 9, (2, 2, 4, 6))
    cat = ops.concat([x, y])
    assert cat.shape == (2, 5, 4, 6) and (cat[:, :3] == x).all() and (cat[:, 3:] == y).all()
    out = ops.output_int(x, np.array([-5, 0, 7]))
    assert (out == x + np.array([-5, 0, 7]).reshape(1, 3, 1, 1)).all()


def test_reorg_equals_pixel_unshuffle_definition():
    # torch.pixel_unshuffle(x, 2)[c*4 + dy*2 + dx] == x[c, dy::2, dx::2]
    x = RNG.integers(0, 50, (1, 2, 4, 4))
    ro = ops.reorg(x)
    for c, dy, dx in itertools.product(range(2), (0, 1), (0, 1)):
        assert (ro[0, c * 4 + dy * 2 + dx] == x[0, c, dy::2, dx::2]).all()


@pytest.mark.parametrize("call,match", [
    (lambda: ops.input_codes(np.array([[[[256]]]]), 8), "0..255"),
    (lambda: ops.input_codes(np.zeros((1, 1, 2, 2)), 8), "integer array"),
    (lambda: ops.input_codes(np.zeros((1, 1, 2, 2), int), 9), "bits"),
    (lambda: ops.conv2d_int(np.zeros((1, 3, 4, 4), int), np.zeros((2, 2, 3, 3), int)), "groups"),
    (lambda: ops.conv2d_int(np.zeros((1, 3, 2, 2), int), np.zeros((2, 3, 5, 5), int)), "smaller"),
    (lambda: ops.maxpool2x2(np.zeros((1, 1, 3, 4), int)), "even"),
    (lambda: ops.reorg(np.zeros((1, 1, 4, 5), int)), "even"),
    (lambda: ops.requant(np.zeros((1, 2, 1, 1), int), [1], [0, 0], 3, 4), "2 per-channel"),
    (lambda: ops.requant(np.zeros((1, 1, 1, 1), int), [1], [0], 0, 4), "shift"),
    (lambda: ops.requant(np.full((1, 1, 1, 1), 2 ** 40), [2 ** 30], [0], 4, 4), "overflows"),
    (lambda: ops.output_int(np.full((1, 1, 1, 1), 2 ** 31 - 1), [1]), "int32"),
    (lambda: ops.concat([np.zeros((1, 1, 2, 2), int), np.zeros((1, 1, 2, 4), int)]), "input 1"),
])
def test_ops_reject_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_widths():
    assert ops.signed_width(-1, 0) == 1 and ops.signed_width(0, 1) == 2
    assert ops.signed_width(-128, 127) == 8 and ops.signed_width(-129, 0) == 9
    assert ops.signed_width(0, 128) == 9
    # 3x3x64 w4a4: 576 * 7 * 15 = 60480 -> 17 bits
    assert ops.acc_bound(576, 4, 4) == 60480 and ops.acc_width(576, 4, 4) == 17


# ---- a small graph with every op ---------------------------------------------------------

def loop_reference(g: Graph, px: np.ndarray) -> dict:
    """Independent executor: the loop/Python-int versions of every op."""
    vals = {}
    for n in g.nodes:
        a, t = n.attrs, n.tensors
        xs = [vals[s] for s in n.inputs]
        if n.op == "input":
            v = px.astype(np.int64) // 2 ** (8 - a["bits"])
        elif n.op == "conv":
            v = loop_conv(xs[0], t["weight"], a["stride"], a["pad"], a["groups"])
        elif n.op == "linear":
            x = xs[0]
            v = np.zeros((x.shape[0], a["out_features"], 1, 1), dtype=np.int64)
            c, h, w = x.shape[1:]
            for b, o in itertools.product(range(x.shape[0]), range(a["out_features"])):
                v[b, o] = sum(int(x[b, ci, hi, wi]) * int(t["weight"][o, (hi * w + wi) * c + ci])
                              for hi in range(h) for wi in range(w) for ci in range(c))
        elif n.op == "requant":
            x = xs[0]
            v = np.zeros_like(x)
            for idx in np.ndindex(*x.shape):
                v[idx] = loop_requant(int(x[idx]), int(t["inc"][idx[1]]), int(t["bias"][idx[1]]),
                                      a["shift"], a["out_bits"])
        elif n.op == "maxpool":
            x = xs[0]
            v = np.maximum.reduce([x[:, :, dy::2, dx::2] for dy in (0, 1) for dx in (0, 1)])
        elif n.op == "reorg":
            x = xs[0]
            v = np.stack([x[:, :, dy::2, dx::2] for dy in (0, 1) for dx in (0, 1)], axis=2)
            v = v.reshape(x.shape[0], -1, x.shape[2] // 2, x.shape[3] // 2)
        elif n.op == "concat":
            v = np.concatenate(xs, axis=1)
        else:
            v = xs[0] + t["bias"].reshape(1, -1, 1, 1)
        vals[n.name] = v
    return vals


def test_reference_matches_loops_and_value_info():
    g = all_ops_graph()
    g.validate()
    px = RNG.integers(0, 256, (2, 3, 8, 8), dtype=np.uint8)
    got = g.reference(px, keep=True)
    want = loop_reference(g, px)
    infos = g.value_infos()
    for n in g.nodes:
        np.testing.assert_array_equal(got[n.name], want[n.name], err_msg=n.name)
        info = infos[n.name]
        assert got[n.name].shape[1:] == info.shape
        assert info.lo <= got[n.name].min() and got[n.name].max() <= info.hi, n.name
    np.testing.assert_array_equal(g.reference(px), want["out"])
    # the codes actually vary (the test would catch a constant output)
    assert len(np.unique(got["r1"])) > 4 and len(np.unique(got["out"])) > 5


def test_value_info_macs_summary():
    g = all_ops_graph()
    assert g.value_info("c1").signed and g.value_info("c1").bits == ops.acc_width(27, 4, 6)
    assert g.value_info("b1").shape == (32, 4, 4)
    assert g.value_info("cat2").shape == (12, 2, 2)
    assert g.value_info("out").bits == 32
    assert g.node("r1").attrs["acc_bits"] == g.value_info("c1").bits
    want = 8 * 64 * 27 + 8 * 16 * 9 + 4 * 4 * 72 + 4 * 16 * 40 + 5 * 48
    assert g.macs() == want
    s = g.summary()
    assert f"{want:,}" in s and "dw" in s and all(n.name in s for n in g.nodes)


def test_requant_dsp_fit_flag():
    g = all_ops_graph()
    assert g.node("r1").attrs["fits_dsp48"] is True
    g2 = Graph("wide", (256, 4, 4))
    x = g2.add_input(8)
    big = np.full((2, 256, 4, 4), 127)  # 4096 * 127 * 255 needs 28 bits
    c = g2.add_conv("c", x, big, w_bits=8, pad=0)
    r = g2.add_requant("r", c, [3, 1], [0, 0], shift=20, out_bits=8)
    assert g2.node("r").attrs["acc_bits"] == 28 and g2.node("r").attrs["fits_dsp48"] is False
    assert g2.node("r").attrs["inc_bits"] == 3
    del r


# ---- validation errors -------------------------------------------------------------------

def mutate(fn):
    g = all_ops_graph()
    fn(g)
    return g


@pytest.mark.parametrize("fn,match", [
    (lambda g: g.node("c1").tensors.__setitem__("weight", g.node("c1").tensors["weight"] * 2),
     r"'c1'.*weight value .* outside the 4-bit"),
    (lambda g: g.node("c1").attrs.__setitem__("a_bits", 5), r"'c1'.*a_bits=5"),
    (lambda g: g.node("c1").attrs.__setitem__("in_ch", 4), r"'c1'.*in_ch=4"),
    (lambda g: g.node("c1").attrs.__setitem__("stride", 3), r"'c1'.*stride=3"),
    (lambda g: g.node("dw").attrs.__setitem__("groups", 3), r"'dw'.*groups=3"),
    (lambda g: g.node("c1").tensors.__setitem__("weight", g.node("c1").tensors["weight"][:, :2]),
     r"'c1'.*tensor 'weight' has shape"),
    (lambda g: g.node("c1").tensors.__setitem__("weight", g.node("c1").tensors["weight"].astype(float)),
     r"'c1'.*int64"),
    (lambda g: g.node("r1").attrs.__setitem__("acc_bits", 40), r"'r1'.*acc_bits=40"),
    (lambda g: g.node("r1").attrs.__setitem__("inc_bits", 30), r"'r1'.*inc_bits=30"),
    (lambda g: g.node("r1").attrs.__setitem__("fits_dsp48", False), r"'r1'.*fits_dsp48"),
    (lambda g: g.node("r1").attrs.__setitem__("shift", 0), r"'r1'.*shift=0"),
    (lambda g: g.node("r1").attrs.pop("out_bits"), r"'r1'.*missing attribute 'out_bits'"),
    (lambda g: g.node("r1").tensors.__setitem__("inc", np.ones(3, np.int64)), r"'r1'.*'inc'.*shape"),
    (lambda g: g.node("r3b").attrs.__setitem__("out_bits", 5), r"'cat2'.*5-bit codes.*equal bits"),
    (lambda g: g.node("cat").inputs.reverse(), None),  # still valid: order just changes channels
    (lambda g: g.node("p1").inputs.__setitem__(0, "c1"), r"'p1'.*signed accumulator"),
    (lambda g: g.node("r1").inputs.__setitem__(0, "p1"), r"'r1'.*input 'p1' is not an earlier node"),
    (lambda g: g.node("r2").inputs.__setitem__(0, "r1"), r"'r2'.*unsigned codes"),
    (lambda g: g.node("fc").attrs.__setitem__("in_features", 47), r"'fc'.*in_features=47"),
    (lambda g: g.node("out").tensors.__setitem__("bias", np.full(5, 2 ** 31, np.int64)), r"'out'.*int32"),
    (lambda g: g.node("out").tensors.__setitem__("scale", np.full(5, np.nan)), r"'out'.*non-finite"),
    (lambda g: g.node("c1").__setattr__("op", "conv3d"), r"'c1'.*unknown op"),
    (lambda g: g.node("c1").attrs.__setitem__("note", object()), r"'c1'.*JSON"),
    (lambda g: g.node("r4").__setattr__("name", "r1"), r"duplicate node name 'r1'"),
    (lambda g: g.nodes.insert(3, g.nodes.pop(0)), r"'c1'.*not an earlier node"),
    (lambda g: g.nodes.pop(), r"exactly one 'output'"),
    (lambda g: g.nodes.insert(5, Node("extra", "maxpool", ["p1"], {}, {})), r"'extra'.*never used"),
    (lambda g: g.nodes.insert(1, Node("in2", "input", [], {"bits": 8}, {})), r"exactly one 'input'"),
    (lambda g: g.node("input").attrs.__setitem__("bits", 9), r"'input'.*bits=9"),
])
def test_validate_errors(fn, match):
    g = mutate(fn)
    if match is None:
        g.validate()
        return
    with pytest.raises(GraphError, match=match):
        g.validate()


def test_requant_must_read_conv_not_output():
    g = Graph("x", (1, 2, 2))
    x = g.add_input(8)
    c = g.add_conv("c", x, np.ones((1, 1, 1, 1), int), w_bits=2)
    o = g.add_output("o", c, [0], [1.0])
    with pytest.raises(GraphError, match=r"'r'.*'o' is an 'output' node"):
        g.add_requant("r", o, [1], [0], shift=2, out_bits=2)
    assert [n.name for n in g.nodes] == ["input", "c", "o"]  # failed add leaves no trace


def test_odd_pool_and_bad_builder_inputs():
    g = Graph("odd", (1, 1, 3))
    x = g.add_input(8)
    with pytest.raises(GraphError, match=r"'p'.*1x3; an unpadded 2x2 pool needs at least 2x2"):
        g.add_maxpool("p", x)
    with pytest.raises(GraphError, match=r"duplicate node name 'input'"):
        g.add_input(4)
    with pytest.raises(GraphError, match=r"conv 'c' weight.*integers"):
        g.add_conv("c", x, np.ones((1, 1, 3, 3)) * 0.5, w_bits=2)
    with pytest.raises(GraphError, match=r"no node 'nope'"):
        g.value_info("nope")
    with pytest.raises(GraphError, match="input_shape"):
        Graph("bad", (3, 8))


def test_reference_rejects_bad_images():
    g = all_ops_graph()
    with pytest.raises(GraphError, match=r"uint8.*float64"):
        g.reference(np.zeros((1, 3, 8, 8)))
    with pytest.raises(GraphError, match=r"\(N, 3, 8, 8\).*\(1, 3, 8, 9\)"):
        g.reference(np.zeros((1, 3, 8, 9), np.uint8))
    with pytest.raises(ValueError, match="0..255"):
        g.reference(np.full((1, 3, 8, 8), 300))


# ---- files -------------------------------------------------------------------------------

def test_save_load_round_trip(tmp_path):
    g = all_ops_graph()
    path = tmp_path / "model.bin"  # a name without .npz must be used as given
    g.save(path)
    assert path.exists() and not (tmp_path / "model.bin.npz").exists()
    h = Graph.load(path)
    assert (h.name, h.input_shape) == (g.name, g.input_shape)
    for a, b in zip(g.nodes, h.nodes):
        assert (a.name, a.op, a.inputs, a.attrs) == (b.name, b.op, b.inputs, b.attrs)
        assert a.tensors.keys() == b.tensors.keys()
        for k in a.tensors:
            assert a.tensors[k].dtype == b.tensors[k].dtype
            np.testing.assert_array_equal(a.tensors[k], b.tensors[k])
    px = RNG.integers(0, 256, (2, 3, 8, 8), dtype=np.uint8)
    np.testing.assert_array_equal(g.reference(px), h.reference(px))
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(z["__graph__"].tobytes())
    assert meta["format"] == "mixq-graph" and meta["version"] == 1


def test_save_refuses_invalid_graph(tmp_path):
    g = mutate(lambda g: g.node("c1").attrs.__setitem__("a_bits", 5))
    with pytest.raises(GraphError, match="a_bits"):
        g.save(tmp_path / "bad.npz")


def _npy_bytes(array):
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _savez(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _rewrite_meta(src, dst, edit):
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays["__graph__"].tobytes())
    edit(meta, arrays)
    arrays["__graph__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    _savez(dst, **arrays)


@pytest.mark.parametrize("make,match", [
    (lambda p, src: None, "does not exist"),
    (lambda p, src: p.write_bytes(b""), "corrupt"),
    (lambda p, src: p.write_bytes(src.read_bytes()[: len(src.read_bytes()) // 2]), "corrupt"),
    (lambda p, src: p.write_bytes(b"PK\x03\x04" + b"\x00" * 100), "corrupt"),
    (lambda p, src: p.write_bytes(_npy_bytes(np.arange(3))), "single .npy"),
    (lambda p, src: _savez(p, a=np.arange(3)), "no '__graph__'"),
    (lambda p, src: _savez(p, __graph__=np.frombuffer(b"{not json", np.uint8)), "corrupt"),
    (lambda p, src: _rewrite_meta(src, p, lambda m, a: m.__setitem__("format", "onnx")), "format is 'onnx'"),
    (lambda p, src: _rewrite_meta(src, p, lambda m, a: m.__setitem__("version", 99)), "version 99"),
    (lambda p, src: _rewrite_meta(src, p, lambda m, a: a.pop("n1.weight")), "'c1' tensor 'weight'.*missing"),
    (lambda p, src: _rewrite_meta(src, p, lambda m, a: m["nodes"][1]["attrs"].__setitem__("k", 5)),
     r"invalid graph: node 'c1'"),
    (lambda p, src: _rewrite_meta(src, p, lambda m, a: m["nodes"].__setitem__(0, 7)), "malformed"),
])
def test_load_errors_name_the_file(tmp_path, make, match):
    src = tmp_path / "good.npz"
    all_ops_graph().save(src)
    p = tmp_path / "broken.npz"
    make(p, src)
    with pytest.raises(GraphError, match=match) as info:
        Graph.load(p)
    assert "broken.npz" in str(info.value)


def test_load_object_array_refused(tmp_path):
    p = tmp_path / "pickled.npz"
    _savez(p, __graph__=np.array([{"a": 1}], dtype=object))
    with pytest.raises(GraphError, match="pickled.npz"):
        Graph.load(p)


def test_corrupt_member_crc(tmp_path):
    src = tmp_path / "good.npz"
    all_ops_graph().save(src)
    data = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as z:
        info = z.getinfo("n1.weight.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 200
    data[start] ^= 0xFF  # flip bits inside the stored weight array
    p = tmp_path / "crc.npz"
    p.write_bytes(bytes(data))
    with pytest.raises(GraphError, match="crc.npz"):
        Graph.load(p)
