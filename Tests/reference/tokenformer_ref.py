#!/usr/bin/env python3
"""Independent NumPy reference implementation of TokenFormer (test oracle for tfc).

Written only from docs/tokenformer-semantics.md. Uses numpy and the standard
library only; all arithmetic is float64, the CLI writes float32 logits.

CLI:
    python3 tokenformer_ref.py --config CFG.json --weights W.safetensors \
        --tokens 1,2,3 --out LOGITS.npy [--block tokenformer|parallel]

Library:
    load_safetensors(path) -> dict[str, np.ndarray]
    pattention(x, K, V, variant, tau) -> np.ndarray
    forward(cfg, weights, tokens, block="tokenformer") -> np.ndarray  # [T, vocab] float64
"""

from __future__ import annotations

import argparse
import json
import math
import struct
import sys

import numpy as np

__all__ = [
    "ReferenceError",
    "load_safetensors",
    "gelu",
    "layer_norm",
    "pattention",
    "rotary",
    "causal_attention",
    "site_params",
    "forward",
    "main",
]

VARIANTS = ("l2_norm_gelu", "gelu_l2_norm", "softmax")
BLOCKS = ("tokenformer", "parallel")
SITES = ("attention.query", "attention.key", "attention.value", "attention.proj", "mlp")


class ReferenceError(Exception):
    """Any user-facing error (bad config, missing tensor, bad shape, bad token)."""


# --------------------------------------------------------------------------- safetensors

_DTYPES = {
    "F64": ("<f8", 8),
    "F32": ("<f4", 4),
    "F16": ("<f2", 2),
    "BF16": ("<u2", 2),  # decoded below
}


def load_safetensors(path) -> dict:
    """Read a .safetensors file with numpy + json only.

    Layout: u64 little-endian header length N, N bytes of JSON header
    ({name: {dtype, shape, data_offsets: [begin, end]}, optional "__metadata__"}),
    then the data section (offsets are relative to its start).
    F32 / F16 / BF16 (and F64) are supported; everything is returned as float32
    (float64 for F64) numpy arrays.
    """
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ReferenceError(f"{path}: too short to be a safetensors file")
    (hlen,) = struct.unpack("<Q", raw[:8])
    if 8 + hlen > len(raw):
        raise ReferenceError(f"{path}: header length {hlen} exceeds file size {len(raw)}")
    try:
        header = json.loads(raw[8 : 8 + hlen].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ReferenceError(f"{path}: invalid safetensors JSON header: {e}") from None
    if not isinstance(header, dict):
        raise ReferenceError(f"{path}: safetensors header is not a JSON object")
    data = memoryview(raw)[8 + hlen :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = info["dtype"]
            shape = tuple(int(s) for s in info["shape"])
            begin, end = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise ReferenceError(f"{path}: malformed header entry for tensor '{name}'") from None
        if dtype not in _DTYPES:
            raise ReferenceError(f"{path}: tensor '{name}' has unsupported dtype {dtype}")
        np_dtype, size = _DTYPES[dtype]
        count = math.prod(shape)
        if end - begin != count * size or begin < 0 or end > len(data):
            raise ReferenceError(
                f"{path}: tensor '{name}' data_offsets [{begin}, {end}] do not match "
                f"dtype {dtype} shape {list(shape)} (data section {len(data)} bytes)"
            )
        arr = np.frombuffer(data[begin:end], dtype=np_dtype, count=count)
        if dtype == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        elif dtype == "F16":
            arr = arr.astype(np.float32)
        else:
            arr = arr.copy()
        out[name] = arr.reshape(shape)
    return out


# --------------------------------------------------------------------------- primitives

_erf = np.frompyfunc(math.erf, 1, 1)


def gelu(x):
    """Exact gelu: 0.5 x (1 + erf(x / sqrt 2)), erf from math.erf (float64)."""
    x = np.asarray(x, dtype=np.float64)
    e = np.asarray(_erf(x / math.sqrt(2.0)), dtype=np.float64)
    return 0.5 * x * (1.0 + e)


def _safe_l2_normalize(s):
    """s / ||s||_2 row-wise; rows with norm 0 give 0 (documented choice, no NaN)."""
    norm = np.sqrt(np.sum(s * s, axis=-1, keepdims=True))
    safe = np.where(norm == 0.0, 1.0, norm)
    return np.where(norm == 0.0, 0.0, s / safe)


def layer_norm(x, eps=1e-5, weight=None, bias=None):
    """LayerNorm over the last axis, biased variance; optional affine weight/bias."""
    x = np.asarray(x, dtype=np.float64)
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    y = (x - mu) / np.sqrt(var + eps)
    if weight is not None:
        y = y * np.asarray(weight, dtype=np.float64)
    if bias is not None:
        y = y + np.asarray(bias, dtype=np.float64)
    return y


def pattention(x, K, V, variant="l2_norm_gelu", tau=None):
    """Token-parameter attention: Theta(x K^T) V.

    x [T, d_in], K [n, d_in], V [n, d_out]; tau None means sqrt(n).
    variant: l2_norm_gelu  gelu(s/||s|| * tau)
             gelu_l2_norm  g/||g|| * tau, g = gelu(s)
             softmax       softmax(s) * n
    """
    x = np.asarray(x, dtype=np.float64)
    K = np.asarray(K, dtype=np.float64)
    V = np.asarray(V, dtype=np.float64)
    if K.ndim != 2 or V.ndim != 2 or K.shape[0] != V.shape[0]:
        raise ReferenceError(f"pattention: K {K.shape} and V {V.shape} must be [n, d_in] and [n, d_out]")
    if x.shape[-1] != K.shape[1]:
        raise ReferenceError(f"pattention: input width {x.shape[-1]} != key width {K.shape[1]}")
    n = K.shape[0]
    if tau is None:
        tau = math.sqrt(n)
    s = x @ K.T
    if variant == "l2_norm_gelu":
        a = gelu(_safe_l2_normalize(s) * tau)
    elif variant == "gelu_l2_norm":
        a = _safe_l2_normalize(gelu(s)) * tau
    elif variant == "softmax":
        m = s.max(axis=-1, keepdims=True)
        e = np.exp(s - m)
        a = e / e.sum(axis=-1, keepdims=True) * n
    else:
        raise ReferenceError(f"unknown pattention variant '{variant}' (expected one of {', '.join(VARIANTS)})")
    return a @ V


def rotary(x, heads, rotary_fraction=0.25, base=10000.0, positions=None):
    """GPT-NeoX rotate-half rotary on x [T, heads*head_dim], per head, partial.

    rd = int(head_dim * rotary_fraction); only the first rd dims of each head rotate.
    positions default to 0..T-1.
    """
    x = np.asarray(x, dtype=np.float64)
    T, width = x.shape
    if width % heads:
        raise ReferenceError(f"rotary: width {width} not divisible by heads {heads}")
    hd = width // heads
    rd = int(hd * rotary_fraction)
    if rd == 0:
        return x.copy()
    if rd % 2:
        raise ReferenceError(f"rotary: rotary dims {rd} (head_dim {hd} * {rotary_fraction}) must be even")
    if positions is None:
        positions = np.arange(T)
    positions = np.asarray(positions, dtype=np.float64)
    inv_freq = 1.0 / (float(base) ** (np.arange(0, rd, 2, dtype=np.float64) / rd))  # 2j/rd
    theta = positions[:, None] * inv_freq[None, :]  # [T, rd/2]
    emb = np.concatenate([theta, theta], axis=-1)  # [T, rd]
    cos, sin = np.cos(emb)[:, None, :], np.sin(emb)[:, None, :]
    xh = x.reshape(T, heads, hd)
    xr = xh[..., :rd]
    x1, x2 = xr[..., : rd // 2], xr[..., rd // 2 :]
    rot_half = np.concatenate([-x2, x1], axis=-1)
    out = xh.copy()
    out[..., :rd] = xr * cos + rot_half * sin
    return out.reshape(T, width)


def causal_attention(q, k, v, heads):
    """Multi-head causal softmax attention; heads are contiguous column slices."""
    T, dq = q.shape
    dv = v.shape[1]
    if dq % heads or dv % heads or k.shape != q.shape:
        raise ReferenceError(f"attention: q {q.shape}, k {k.shape}, v {v.shape} incompatible with {heads} heads")
    hd, hv = dq // heads, dv // heads
    qh = q.reshape(T, heads, hd).transpose(1, 0, 2)
    kh = k.reshape(T, heads, hd).transpose(1, 0, 2)
    vh = v.reshape(T, heads, hv).transpose(1, 0, 2)
    scores = qh @ kh.transpose(0, 2, 1) / math.sqrt(hd)  # [H, T, T]
    mask = np.triu(np.ones((T, T), dtype=bool), k=1)
    scores = np.where(mask[None], -np.inf, scores)
    scores = scores - scores.max(axis=-1, keepdims=True)
    p = np.exp(scores)
    p = p / p.sum(axis=-1, keepdims=True)
    return (p @ vh).transpose(1, 0, 2).reshape(T, dv)


# --------------------------------------------------------------------------- model


def _cfg_get(cfg, key):
    if key not in cfg:
        raise ReferenceError(f"config is missing field '{key}'")
    return cfg[key]


def _tensor(weights, name, shape):
    if name not in weights:
        raise ReferenceError(f"missing tensor '{name}' (expected shape {list(shape)})")
    t = np.asarray(weights[name])
    if tuple(t.shape) != tuple(shape):
        raise ReferenceError(f"tensor '{name}' has shape {list(t.shape)}, expected {list(shape)}")
    return t.astype(np.float64)


def site_params(cfg, site):
    """(n, d_in, d_out, tau, variant) for a site from the config's `sites` object."""
    sites = _cfg_get(cfg, "sites")
    if site not in sites:
        raise ReferenceError(f"config 'sites' has no entry for '{site}'")
    s = sites[site]
    try:
        n, d_in, d_out = int(s["tokens"]), int(s["in"]), int(s["out"])
    except (KeyError, TypeError, ValueError):
        raise ReferenceError(f"config site '{site}' needs integer 'tokens', 'in', 'out'") from None
    scale = s.get("scale")
    tau = math.sqrt(n) if scale is None else float(scale)
    variant = s.get("norm") or _cfg_get(cfg, "pattention_norm")
    if variant not in VARIANTS:
        raise ReferenceError(f"site '{site}': unknown pattention norm '{variant}'")
    return n, d_in, d_out, tau, variant


def _site(cfg, weights, layer, site, x):
    n, d_in, d_out, tau, variant = site_params(cfg, site)
    prefix = f"layers.{layer}.{site}"
    K = _tensor(weights, f"{prefix}.key_param_tokens", (n, d_in))
    V = _tensor(weights, f"{prefix}.value_param_tokens", (n, d_out))
    return pattention(x, K, V, variant, tau)


def forward(cfg, weights, tokens, block="tokenformer"):
    """Full forward pass; returns float64 logits [T, vocab]."""
    if block not in BLOCKS:
        raise ReferenceError(f"unknown block '{block}' (expected one of {', '.join(BLOCKS)})")
    vocab = int(_cfg_get(cfg, "vocab"))
    D = int(_cfg_get(cfg, "hidden"))
    H = int(_cfg_get(cfg, "heads"))
    L = int(_cfg_get(cfg, "layers"))
    eps = float(cfg.get("norm_eps", 1e-5))
    rfrac = float(cfg.get("rotary_fraction", 0.25))
    rbase = float(cfg.get("rotary_base", 10000.0))
    tied = bool(cfg.get("tie_embeddings", True))
    affine = bool(cfg.get("final_norm_affine", False))
    if H <= 0 or D % H:
        raise ReferenceError(f"hidden {D} is not divisible by heads {H}")

    toks = [int(t) for t in tokens]
    if not toks:
        raise ReferenceError("no tokens given")
    for i, t in enumerate(toks):
        if not 0 <= t < vocab:
            raise ReferenceError(f"token {t} at index {i} is out of range [0, {vocab})")

    embed = _tensor(weights, "embed.weight", (vocab, D))
    x = embed[np.asarray(toks)]

    def attn(h, layer):
        q = _site(cfg, weights, layer, "attention.query", h)
        k = _site(cfg, weights, layer, "attention.key", h)
        v = _site(cfg, weights, layer, "attention.value", h)
        q = rotary(q, H, rfrac, rbase)
        k = rotary(k, H, rfrac, rbase)
        a = causal_attention(q, k, v, H)
        return _site(cfg, weights, layer, "attention.proj", a)

    for i in range(L):
        if block == "tokenformer":
            x = x + attn(layer_norm(x, eps), i)
            x = x + _site(cfg, weights, i, "mlp", layer_norm(x, eps))
        else:  # parallel (GPT-J style): one shared LayerNorm
            h = layer_norm(x, eps)
            x = x + attn(h, i) + _site(cfg, weights, i, "mlp", h)

    if affine:
        w = _tensor(weights, "final_norm.weight", (D,))
        b = _tensor(weights, "final_norm.bias", (D,))
        x = layer_norm(x, eps, w, b)
    else:
        x = layer_norm(x, eps)

    head = embed if tied else _tensor(weights, "lm_head.weight", (vocab, D))
    return x @ head.T


# --------------------------------------------------------------------------- CLI


def _parse_tokens(s):
    try:
        return [int(t) for t in s.replace(" ", "").split(",") if t != ""]
    except ValueError:
        raise ReferenceError(f"--tokens must be comma-separated integers, got '{s}'") from None


def main(argv=None):
    ap = argparse.ArgumentParser(description="NumPy reference TokenFormer forward pass")
    ap.add_argument("--config", required=True, help="JSON from `tfc check --json`")
    ap.add_argument("--weights", required=True, help=".safetensors checkpoint")
    ap.add_argument("--tokens", required=True, help="comma-separated token ids, e.g. 1,2,3")
    ap.add_argument("--out", required=True, help="output .npy (float32 [T, vocab])")
    ap.add_argument("--block", default="tokenformer", choices=BLOCKS)
    args = ap.parse_args(argv)
    try:
        try:
            with open(args.config) as f:
                cfg = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise ReferenceError(f"cannot read config {args.config}: {e}") from None
        if not isinstance(cfg, dict):
            raise ReferenceError(f"config {args.config} is not a JSON object")
        try:
            weights = load_safetensors(args.weights)
        except OSError as e:
            raise ReferenceError(f"cannot read weights {args.weights}: {e}") from None
        tokens = _parse_tokens(args.tokens)
        logits = forward(cfg, weights, tokens, args.block)
        try:
            with open(args.out, "wb") as f:  # exact path (np.save(str) would append .npy)
                np.save(f, logits.astype(np.float32))
        except OSError as e:
            raise ReferenceError(f"cannot write {args.out}: {e}") from None
    except ReferenceError as e:
        print(f"tokenformer_ref: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
