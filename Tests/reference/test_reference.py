"""Tests of the NumPy TokenFormer reference itself, against hand-derivable facts.

Run: cd /work/main && python3 -m pytest Tests/reference -q
"""

import json
import math
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokenformer_ref as ref  # noqa: E402

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tokenformer_ref.py")

# Standard normal CDF values Phi(x) (textbook table, 16 digits); gelu(x) = x * Phi(x).
PHI = {1.0: 0.8413447460685429, 2.0: 0.9772498680518208, -1.0: 0.15865525393145707, 0.5: 0.6914624612740131}
ERF = {0.5: 0.5204998778130465, 1.0: 0.8427007929497149, 2.0: 0.9953222650189527}


# --------------------------------------------------------------------------- helpers


def write_safetensors(path, tensors, metadata=None):
    """Tiny independent writer: tensors = {name: (dtype_str, np.ndarray)}."""
    header, blobs, off = {}, [], 0
    for name, (dt, arr) in tensors.items():
        arr = np.asarray(arr)
        if dt == "F32":
            b = arr.astype("<f4").tobytes()
        elif dt == "F16":
            b = arr.astype("<f2").tobytes()
        elif dt == "BF16":
            b = (arr.astype("<f4").view("<u4") >> 16).astype("<u2").tobytes()  # truncation
        elif dt == "F64":
            b = arr.astype("<f8").tobytes()
        else:
            raise ValueError(dt)
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata is not None:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def make_model(rng, vocab=11, D=8, H=2, L=2, qkv=5, proj=6, ffn=7, variant="l2_norm_gelu",
               rotary_fraction=0.5, tied=True, affine=False, vscale=0.3):
    cfg = {
        "name": "tiny", "vocab": vocab, "hidden": D, "heads": H, "layers": L, "context": 16,
        "tie_embeddings": tied, "final_norm_affine": affine, "norm_eps": 1e-5,
        "pattention_norm": variant, "rotary_fraction": rotary_fraction, "rotary_base": 10000.0,
        "parameters": 0, "some_unknown_field": [1, 2],
        "sites": {
            "attention.query": {"tokens": qkv, "in": D, "out": D, "scale": None, "norm": None},
            "attention.key": {"tokens": qkv, "in": D, "out": D, "scale": None, "norm": None},
            "attention.value": {"tokens": qkv, "in": D, "out": D, "scale": None, "norm": None},
            "attention.proj": {"tokens": proj, "in": D, "out": D, "scale": None, "norm": None},
            "mlp": {"tokens": ffn, "in": D, "out": D, "scale": None, "norm": None},
        },
    }
    w = {"embed.weight": rng.normal(0, 1.0, (vocab, D)).astype(np.float32)}
    for i in range(L):
        for site, s in cfg["sites"].items():
            w[f"layers.{i}.{site}.key_param_tokens"] = rng.normal(0, 1.0, (s["tokens"], D)).astype(np.float32)
            w[f"layers.{i}.{site}.value_param_tokens"] = rng.normal(0, vscale, (s["tokens"], D)).astype(np.float32)
    if affine:
        w["final_norm.weight"] = rng.normal(1, 0.2, (D,)).astype(np.float32)
        w["final_norm.bias"] = rng.normal(0, 0.2, (D,)).astype(np.float32)
    if not tied:
        w["lm_head.weight"] = rng.normal(0, 1.0, (vocab, D)).astype(np.float32)
    return cfg, w


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# --------------------------------------------------------------------------- gelu / erf


def test_gelu_zero_and_known_values():
    assert ref.gelu(0.0) == 0.0
    for x, phi in PHI.items():
        assert abs(float(ref.gelu(x)) - x * phi) < 1e-15
    for x, e in ERF.items():  # gelu(sqrt2 * x) = 0.5 sqrt2 x (1 + erf(x))
        y = math.sqrt(2) * x
        assert abs(float(ref.gelu(y)) - 0.5 * y * (1 + e)) < 1e-15
    # Not the tanh approximation (which gives 0.8411919906082768 at 1).
    assert abs(float(ref.gelu(1.0)) - 0.8411919906082768) > 1e-4


def test_gelu_vectorised_shape_and_odd_symmetry():
    x = np.linspace(-6, 6, 49).reshape(7, 7)
    g = ref.gelu(x)
    assert g.shape == x.shape and g.dtype == np.float64
    np.testing.assert_allclose(g - ref.gelu(-x), x, rtol=0, atol=1e-14)  # gelu(x) - gelu(-x) = x


# --------------------------------------------------------------------------- pattention


def test_pattention_l2_norm_gelu_hand_example():
    # s = [1, 1], ||s|| = sqrt2, tau = sqrt(n) = sqrt2 -> scaled [1, 1] -> gelu = Phi(1).
    V = np.array([[1.0, 2.0], [3.0, 4.0]])
    out = ref.pattention(np.array([[1.0, 1.0]]), np.eye(2), V, "l2_norm_gelu", None)
    np.testing.assert_allclose(out, [[4 * PHI[1.0], 6 * PHI[1.0]]], rtol=1e-15)
    # s = [2, -1], ||s|| = sqrt5, tau pinned sqrt5 -> [2, -1] -> [2 Phi(2), -Phi(-1)].
    out = ref.pattention(np.array([[2.0, -1.0]]), np.eye(2), np.eye(2), "l2_norm_gelu", math.sqrt(5))
    np.testing.assert_allclose(out, [[2 * PHI[2.0], -PHI[-1.0]]], rtol=1e-14)
    # Scale-invariance of the input (l2 normalisation): 7x gives the same output.
    out7 = ref.pattention(np.array([[14.0, -7.0]]), np.eye(2), np.eye(2), "l2_norm_gelu", math.sqrt(5))
    np.testing.assert_allclose(out7, out, rtol=1e-14)


def test_pattention_gelu_l2_norm_hand_example():
    # s = [1, 0] -> g = [Phi(1), 0] -> g/||g|| = [1, 0] -> * sqrt2.
    V = np.array([[1.0, 2.0, 3.0], [5.0, 7.0, 11.0]])
    out = ref.pattention(np.array([[1.0, 0.0]]), np.eye(2), V, "gelu_l2_norm", None)
    np.testing.assert_allclose(out, [math.sqrt(2) * V[0]], rtol=1e-15)
    # s = [2, -1] -> g = [2 Phi(2), -Phi(-1)], tau = sqrt2.
    g = np.array([2 * PHI[2.0], -PHI[-1.0]])
    out = ref.pattention(np.array([[2.0, -1.0]]), np.eye(2), np.eye(2), "gelu_l2_norm", None)
    np.testing.assert_allclose(out, [g / np.linalg.norm(g) * math.sqrt(2)], rtol=1e-14)


def test_pattention_softmax_hand_example():
    # s = [0, ln 3] -> softmax [1/4, 3/4] -> * n=2 -> [1/2, 3/2].
    out = ref.pattention(np.array([[0.0, math.log(3.0)]]), np.eye(2), np.eye(2), "softmax", None)
    np.testing.assert_allclose(out, [[0.5, 1.5]], rtol=1e-14)
    # Large scores do not overflow.
    out = ref.pattention(np.array([[1000.0, 1000.0 + math.log(3.0)]]), np.eye(2), np.eye(2), "softmax", None)
    np.testing.assert_allclose(out, [[0.5, 1.5]], rtol=1e-12)


def test_softmax_rows_sum_to_n(rng):
    n = 9
    x, K = rng.normal(size=(5, 4)), rng.normal(size=(n, 4))
    A = ref.pattention(x, K, np.eye(n), "softmax", None)  # V = I exposes A
    np.testing.assert_allclose(A.sum(axis=1), n, rtol=1e-13)
    assert (A > 0).all()


@pytest.mark.parametrize("variant", ref.VARIANTS)
def test_pattention_matches_explicit_loop(rng, variant):
    x, K, V = rng.normal(size=(4, 3)), rng.normal(size=(6, 3)), rng.normal(size=(6, 5))
    tau = 1.7
    got = ref.pattention(x, K, V, variant, tau)
    for t in range(4):
        s = [sum(x[t, d] * K[j, d] for d in range(3)) for j in range(6)]
        gelu = lambda z: 0.5 * z * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
        if variant == "l2_norm_gelu":
            nrm = math.sqrt(sum(v * v for v in s))
            a = [gelu(v / nrm * tau) for v in s]
        elif variant == "gelu_l2_norm":
            g = [gelu(v) for v in s]
            nrm = math.sqrt(sum(v * v for v in g))
            a = [v / nrm * tau for v in g]
        else:
            e = [math.exp(v) for v in s]
            a = [v / sum(e) * 6 for v in e]
        want = [sum(a[j] * V[j, c] for j in range(6)) for c in range(5)]
        np.testing.assert_allclose(got[t], want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("variant", ["l2_norm_gelu", "gelu_l2_norm"])
def test_zero_norm_rows_give_zero_not_nan(rng, variant):
    K, V = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    x = rng.normal(size=(3, 3))
    x[1] = 0.0
    out = ref.pattention(x, K, V, variant, None)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[1], 0.0)
    assert np.abs(out[0]).sum() > 0
    out = ref.pattention(x, np.zeros((4, 3)), V, variant, None)  # all-zero keys
    assert np.isfinite(out).all() and (out == 0).all()


def test_unknown_variant_raises():
    with pytest.raises(ref.ReferenceError, match="unknown pattention variant"):
        ref.pattention(np.ones((1, 2)), np.eye(2), np.eye(2), "relu", None)


# --------------------------------------------------------------------------- growth


def test_zero_token_growth_pinned_tau_preserves_l2_norm_gelu(rng):
    n, m = 6, 4
    x, K, V = rng.normal(size=(5, 8)), rng.normal(size=(n, 8)), rng.normal(size=(n, 8))
    K2 = np.vstack([K, np.zeros((m, 8))])
    V2 = np.vstack([V, rng.normal(size=(m, 8))])  # value of zero-key tokens is irrelevant (gelu(0)=0)
    base = ref.pattention(x, K, V, "l2_norm_gelu", None)
    pinned = ref.pattention(x, K2, V2, "l2_norm_gelu", math.sqrt(n))
    np.testing.assert_allclose(pinned, base, rtol=1e-13, atol=1e-15)
    following = ref.pattention(x, K2, V2, "l2_norm_gelu", None)  # tau = sqrt(n + m)
    assert np.abs(following - base).max() > 1e-3


def test_zero_token_growth_softmax_not_preserved(rng):
    n, m = 6, 4
    x, K, V = rng.normal(size=(5, 8)), rng.normal(size=(n, 8)), rng.normal(size=(n, 8))
    K2, V2 = np.vstack([K, np.zeros((m, 8))]), np.vstack([V, np.zeros((m, 8))])
    base = ref.pattention(x, K, V, "softmax", None)
    grown = ref.pattention(x, K2, V2, "softmax", None)  # exp(0) = 1 takes mass; tau unused
    assert np.abs(grown - base).max() > 1e-3


def test_zero_token_growth_gelu_l2_norm(rng):
    # Math fact (the semantics doc claims otherwise): zero keys give g = gelu(0) = 0 in the new
    # columns, so ||g|| is unchanged; with tau pinned to sqrt(n) the output is preserved exactly,
    # and only tau = sqrt(n + m) changes it.
    n, m = 6, 4
    x, K, V = rng.normal(size=(5, 8)), rng.normal(size=(n, 8)), rng.normal(size=(n, 8))
    K2, V2 = np.vstack([K, np.zeros((m, 8))]), np.vstack([V, rng.normal(size=(m, 8))])
    base = ref.pattention(x, K, V, "gelu_l2_norm", None)
    np.testing.assert_allclose(ref.pattention(x, K2, V2, "gelu_l2_norm", math.sqrt(n)), base,
                               rtol=1e-13, atol=1e-14)
    assert np.abs(ref.pattention(x, K2, V2, "gelu_l2_norm", None) - base).max() > 1e-3


def test_model_growth_tokens_and_depth_preserved(rng):
    cfg, w = make_model(rng)
    toks = [1, 4, 2, 9, 0]
    base = ref.forward(cfg, w, toks)
    # Token growth at every site with zero keys/values and tau pinned to sqrt(old n).
    g_cfg = json.loads(json.dumps(cfg))
    g_w = dict(w)
    for site, s in g_cfg["sites"].items():
        n, m = s["tokens"], 3
        s["tokens"], s["scale"] = n + m, math.sqrt(n)
        for i in range(cfg["layers"]):
            for kind in ("key", "value"):
                name = f"layers.{i}.{site}.{kind}_param_tokens"
                g_w[name] = np.vstack([w[name], np.zeros((m, cfg["hidden"]), np.float32)])
    np.testing.assert_allclose(ref.forward(g_cfg, g_w, toks), base, rtol=1e-12, atol=1e-12)
    # Same growth with tau following n (scale null) changes the function.
    for s in g_cfg["sites"].values():
        s["scale"] = None
    assert np.abs(ref.forward(g_cfg, g_w, toks) - base).max() > 1e-4
    # Depth growth: a new last layer with zero proj and mlp value tokens adds nothing.
    d_cfg = json.loads(json.dumps(cfg))
    d_cfg["layers"] = cfg["layers"] + 1
    d_w = dict(w)
    L = cfg["layers"]
    for site, s in cfg["sites"].items():
        d_w[f"layers.{L}.{site}.key_param_tokens"] = rng.normal(size=(s["tokens"], cfg["hidden"]))
        d_w[f"layers.{L}.{site}.value_param_tokens"] = rng.normal(size=(s["tokens"], cfg["hidden"]))
    d_w[f"layers.{L}.attention.proj.value_param_tokens"][:] = 0
    d_w[f"layers.{L}.mlp.value_param_tokens"][:] = 0
    for block in ref.BLOCKS:
        out = ref.forward(d_cfg, d_w, toks, block)
        assert np.isfinite(out).all()
        np.testing.assert_allclose(out, ref.forward(cfg, w, toks, block), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- rotary


def test_rotary_identity_at_position_zero_and_pair_norms(rng):
    H, hd, T = 3, 8, 6
    x = rng.normal(size=(T, H * hd))
    for frac in (0.25, 0.5, 1.0):
        rd = int(hd * frac)
        y = ref.rotary(x, H, frac, 10000.0)
        np.testing.assert_allclose(y[0], x[0], rtol=0, atol=1e-15)
        xh, yh = x.reshape(T, H, hd), y.reshape(T, H, hd)
        half = rd // 2
        nx = xh[..., :half] ** 2 + xh[..., half:rd] ** 2  # pair (j, j + rd/2)
        ny = yh[..., :half] ** 2 + yh[..., half:rd] ** 2
        np.testing.assert_allclose(ny, nx, rtol=1e-12)
        np.testing.assert_array_equal(yh[..., rd:], xh[..., rd:])  # pass-through dims
        if rd < hd or T > 1:
            assert not np.allclose(y[1:], x[1:])
    np.testing.assert_array_equal(ref.rotary(x, H, 0.0, 10000.0), x)  # fraction 0: no rotary


def test_rotary_rotate_half_layout_hand_example():
    # head_dim 4, rd 4: inv_freq = [1, 1/100] for base 10^4; position 1.
    x = np.array([[0.0, 0, 0, 0], [1.0, 0, 0, 0]])
    y = ref.rotary(x, 1, 1.0, 10000.0)
    np.testing.assert_allclose(y[1], [math.cos(1), 0, math.sin(1), 0], atol=1e-15)
    x = np.array([[0.0, 0, 0, 0], [0, 0, 0, 0], [0, 1.0, 0, 0]])  # position 2, second frequency
    y = ref.rotary(x, 1, 1.0, 10000.0)
    np.testing.assert_allclose(y[2], [0, math.cos(0.02), 0, math.sin(0.02)], atol=1e-15)
    x = np.array([[0.0, 0, 0, 0], [0, 0, 1.0, 0]])  # x2 part: rotate_half gives -x2 in the first half
    y = ref.rotary(x, 1, 1.0, 10000.0)
    np.testing.assert_allclose(y[1], [-math.sin(1), 0, math.cos(1), 0], atol=1e-15)


def test_rotary_scores_depend_only_on_relative_position(rng):
    hd = 8
    q, k = rng.normal(size=hd), rng.normal(size=hd)
    T = 10
    Q = ref.rotary(np.tile(q, (T, 1)), 1, 1.0, 10000.0)
    K = ref.rotary(np.tile(k, (T, 1)), 1, 1.0, 10000.0)
    assert abs(Q[5] @ K[3] - Q[7] @ K[5]) < 1e-12
    assert abs(Q[2] @ K[2] - q @ k) < 1e-12


def test_rotary_positions_argument(rng):
    x = rng.normal(size=(3, 8))
    full = ref.rotary(np.vstack([np.zeros((4, 8)), x]), 2, 0.5, 10000.0)[4:]
    np.testing.assert_allclose(ref.rotary(x, 2, 0.5, 10000.0, positions=[4, 5, 6]), full, rtol=1e-15)


# --------------------------------------------------------------------------- attention / LN


def test_causal_attention_matches_loop(rng):
    T, H, hd = 5, 2, 3
    q, k, v = rng.normal(size=(T, H * hd)), rng.normal(size=(T, H * hd)), rng.normal(size=(T, H * hd))
    got = ref.causal_attention(q, k, v, H)
    for h in range(H):
        sl = slice(h * hd, (h + 1) * hd)
        for t in range(T):
            sc = [float(q[t, sl] @ k[u, sl]) / math.sqrt(hd) for u in range(t + 1)]
            e = [math.exp(s - max(sc)) for s in sc]
            want = sum(e[u] / sum(e) * v[u, sl] for u in range(t + 1))
            np.testing.assert_allclose(got[t, sl], want, rtol=1e-12)
    np.testing.assert_allclose(got[0], v[0], rtol=1e-15)  # first token sees only itself


def test_layer_norm_mean_zero_var_one(rng):
    x = rng.normal(3.0, 2.0, size=(7, 64))
    y = ref.layer_norm(x, 1e-5)
    np.testing.assert_allclose(y.mean(axis=-1), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=-1), 1, rtol=1e-5)  # var/(var+eps)
    np.testing.assert_allclose(y.var(axis=-1), x.var(axis=-1) / (x.var(axis=-1) + 1e-5), rtol=1e-12)
    w, b = rng.normal(size=64), rng.normal(size=64)
    np.testing.assert_allclose(ref.layer_norm(x, 1e-5, w, b), y * w + b, rtol=1e-14)
    c = ref.layer_norm(np.full((1, 8), 5.0), 1e-5)  # constant row: 0, no NaN
    assert (c == 0).all()


# --------------------------------------------------------------------------- whole model


def test_causal_mask_in_full_model(rng):
    cfg, w = make_model(rng)
    for block in ref.BLOCKS:
        a = ref.forward(cfg, w, [3, 1, 4, 1, 5], block)
        b = ref.forward(cfg, w, [3, 1, 4, 9, 2], block)
        np.testing.assert_array_equal(a[:3], b[:3])
        assert np.abs(a[3:] - b[3:]).max() > 1e-6
        # Prefix computation equals the prefix of the longer computation.
        np.testing.assert_allclose(ref.forward(cfg, w, [3, 1, 4], block), a[:3], rtol=1e-12, atol=1e-12)


def _manual_forward(cfg, w, toks, block):
    """Straight composition of the primitives, written out separately."""
    eps, H = cfg["norm_eps"], cfg["heads"]

    def site(i, name, x):
        s = cfg["sites"][name]
        tau = math.sqrt(s["tokens"]) if s["scale"] is None else s["scale"]
        return ref.pattention(x, w[f"layers.{i}.{name}.key_param_tokens"],
                              w[f"layers.{i}.{name}.value_param_tokens"],
                              s["norm"] or cfg["pattention_norm"], tau)

    def attn(i, h):
        q = ref.rotary(site(i, "attention.query", h), H, cfg["rotary_fraction"], cfg["rotary_base"])
        k = ref.rotary(site(i, "attention.key", h), H, cfg["rotary_fraction"], cfg["rotary_base"])
        return site(i, "attention.proj", ref.causal_attention(q, k, site(i, "attention.value", h), H))

    x = w["embed.weight"].astype(np.float64)[toks]
    for i in range(cfg["layers"]):
        if block == "tokenformer":
            x = x + attn(i, ref.layer_norm(x, eps))
            x = x + site(i, "mlp", ref.layer_norm(x, eps))
        else:
            h = ref.layer_norm(x, eps)
            x = x + attn(i, h) + site(i, "mlp", h)
    if cfg["final_norm_affine"]:
        x = ref.layer_norm(x, eps, w["final_norm.weight"], w["final_norm.bias"])
    else:
        x = ref.layer_norm(x, eps)
    head = w["embed.weight"] if cfg["tie_embeddings"] else w["lm_head.weight"]
    return x @ head.astype(np.float64).T


@pytest.mark.parametrize("variant", ref.VARIANTS)
@pytest.mark.parametrize("tied,affine", [(True, False), (False, True)])
def test_forward_matches_manual_composition(rng, variant, tied, affine):
    cfg, w = make_model(rng, variant=variant, tied=tied, affine=affine)
    cfg["sites"]["mlp"]["norm"] = "softmax" if variant != "softmax" else "l2_norm_gelu"  # per-site override
    cfg["sites"]["attention.proj"]["scale"] = 1.5  # pinned tau
    toks = [0, 10, 5, 5, 2, 7]
    outs = {}
    for block in ref.BLOCKS:
        got = ref.forward(cfg, w, toks, block)
        assert got.shape == (6, cfg["vocab"]) and got.dtype == np.float64
        np.testing.assert_allclose(got, _manual_forward(cfg, w, toks, block), rtol=1e-12, atol=1e-12)
        outs[block] = got
    assert np.abs(outs["tokenformer"] - outs["parallel"]).max() > 1e-6


def test_zero_layers_is_ln_then_unembed(rng):
    cfg, w = make_model(rng, L=0)
    E = w["embed.weight"].astype(np.float64)
    out = ref.forward(cfg, w, [2, 3])
    np.testing.assert_allclose(out, ref.layer_norm(E[[2, 3]], 1e-5) @ E.T, rtol=1e-13)


def test_forward_errors(rng):
    cfg, w = make_model(rng)
    with pytest.raises(ref.ReferenceError, match="out of range"):
        ref.forward(cfg, w, [1, cfg["vocab"]])
    with pytest.raises(ref.ReferenceError, match="out of range"):
        ref.forward(cfg, w, [-1])
    bad = dict(w)
    del bad["layers.1.mlp.value_param_tokens"]
    with pytest.raises(ref.ReferenceError, match="missing tensor 'layers.1.mlp.value_param_tokens'"):
        ref.forward(cfg, bad, [1])
    bad = dict(w)
    bad["layers.0.attention.key.key_param_tokens"] = np.zeros((4, 8))
    with pytest.raises(ref.ReferenceError, match="has shape"):
        ref.forward(cfg, bad, [1])
    cfg2 = dict(cfg, tie_embeddings=False)
    with pytest.raises(ref.ReferenceError, match="lm_head.weight"):
        ref.forward(cfg2, w, [1])
    with pytest.raises(ref.ReferenceError, match="unknown block"):
        ref.forward(cfg, w, [1], "gptj")


# --------------------------------------------------------------------------- safetensors


def test_safetensors_round_trip(tmp_path, rng):
    a32 = rng.normal(size=(3, 4)).astype(np.float32)
    a16 = rng.normal(size=(5,)).astype(np.float16)
    bf = np.array([[1.0, -2.5, 0.15625], [2.0 ** 127, -0.0, 65536.0]], dtype=np.float32)  # bf16-exact
    scalar = np.array(7.25, dtype=np.float32)
    p = tmp_path / "t.safetensors"
    write_safetensors(p, {"a.f32": ("F32", a32), "b.f16": ("F16", a16), "c.bf16": ("BF16", bf),
                          "d.scalar": ("F32", scalar), "e.empty": ("F32", np.zeros((0, 3)))},
                      metadata={"format": "pt"})
    got = ref.load_safetensors(p)
    assert set(got) == {"a.f32", "b.f16", "c.bf16", "d.scalar", "e.empty"}
    np.testing.assert_array_equal(got["a.f32"], a32)
    np.testing.assert_array_equal(got["b.f16"], a16.astype(np.float32))
    np.testing.assert_array_equal(got["c.bf16"], bf)
    assert got["c.bf16"].shape == (2, 3) and got["d.scalar"].shape == () and float(got["d.scalar"]) == 7.25
    assert got["e.empty"].shape == (0, 3)
    # bf16 truncation of a non-representable value keeps the top 16 bits.
    write_safetensors(p, {"x": ("BF16", np.array([1.0 + 2 ** -10], np.float32))})
    assert float(ref.load_safetensors(p)["x"][0]) == 1.0


def test_safetensors_corrupt_file_raises(tmp_path):
    p = tmp_path / "bad.safetensors"
    h = json.dumps({"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    p.write_bytes(struct.pack("<Q", len(h)) + h + b"\0" * 8)  # data too short
    with pytest.raises(ref.ReferenceError, match="data_offsets"):
        ref.load_safetensors(p)
    h = json.dumps({"x": {"dtype": "I8", "shape": [1], "data_offsets": [0, 1]}}).encode()
    p.write_bytes(struct.pack("<Q", len(h)) + h + b"\0")
    with pytest.raises(ref.ReferenceError, match="unsupported dtype"):
        ref.load_safetensors(p)


# --------------------------------------------------------------------------- CLI


def _write_model(tmp_path, cfg, w, dtype="F32"):
    cp, wp = tmp_path / "cfg.json", tmp_path / "w.safetensors"
    cp.write_text(json.dumps(cfg))
    write_safetensors(wp, {k: (dtype, v) for k, v in w.items()})
    return cp, wp


def _run(*args):
    return subprocess.run([sys.executable, SCRIPT, *map(str, args)], capture_output=True, text=True)


@pytest.mark.parametrize("block", ["tokenformer", "parallel"])
def test_cli_end_to_end(tmp_path, rng, block):
    cfg, w = make_model(rng, tied=False, affine=True)
    cp, wp = _write_model(tmp_path, cfg, w)
    out = tmp_path / "logits.bin"  # no .npy suffix: the exact path must be written
    r = _run("--config", cp, "--weights", wp, "--tokens", "1,2,3,10", "--out", out, "--block", block)
    assert r.returncode == 0, r.stderr
    got = np.load(out)
    assert got.dtype == np.float32 and got.shape == (4, cfg["vocab"])
    want = ref.forward(cfg, w, [1, 2, 3, 10], block)
    np.testing.assert_allclose(got, want.astype(np.float32), rtol=1e-6, atol=1e-6)


def test_cli_bf16_weights(tmp_path, rng):
    cfg, w = make_model(rng)
    cp, wp = _write_model(tmp_path, cfg, w, dtype="BF16")
    out = tmp_path / "l.npy"
    r = _run("--config", cp, "--weights", wp, "--tokens", "0,1", "--out", out)
    assert r.returncode == 0, r.stderr
    w_bf = ref.load_safetensors(wp)
    np.testing.assert_allclose(np.load(out), ref.forward(cfg, w_bf, [0, 1]).astype(np.float32), rtol=1e-6, atol=1e-6)


def test_cli_errors_exit_1(tmp_path, rng):
    cfg, w = make_model(rng)
    cp, wp = _write_model(tmp_path, cfg, w)
    out = tmp_path / "l.npy"
    r = _run("--config", cp, "--weights", wp, "--tokens", "1,99", "--out", out)
    assert r.returncode == 1 and "token 99 at index 1 is out of range" in r.stderr
    del w["layers.0.mlp.key_param_tokens"]
    cp, wp = _write_model(tmp_path, cfg, w)
    r = _run("--config", cp, "--weights", wp, "--tokens", "1", "--out", out)
    assert r.returncode == 1 and "missing tensor 'layers.0.mlp.key_param_tokens'" in r.stderr
    cfg["sites"]["mlp"]["tokens"] = 3
    w["layers.0.mlp.key_param_tokens"] = np.zeros((7, 8), np.float32)
    cp, wp = _write_model(tmp_path, cfg, w)
    r = _run("--config", cp, "--weights", wp, "--tokens", "1", "--out", out)
    assert r.returncode == 1 and "has shape [7, 8], expected [3, 8]" in r.stderr
    r = _run("--config", cp, "--weights", tmp_path / "nope.safetensors", "--tokens", "1", "--out", out)
    assert r.returncode == 1 and "cannot read weights" in r.stderr
    r = _run("--config", cp, "--weights", wp, "--tokens", "1,x", "--out", out)
    assert r.returncode == 1 and "--tokens" in r.stderr
    assert not out.exists()
