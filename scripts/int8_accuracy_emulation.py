#!/usr/bin/env python3
"""Emulates int8 quantisation schemes on a TokenFormer in NumPy (float64), to choose one before
writing kernels: relative RMS logit error and top-1 agreement against the unquantised forward of
Tests/reference/tokenformer_ref.py.

    tfc check specs/tokenformer-150m.tfs --json > 150m.json
    tfc init specs/tokenformer-150m.tfs -o 150m.safetensors
    python3 scripts/int8_accuracy_emulation.py 150m.json 150m.safetensors --tokens 64 \
        row wk=none,wv=none,we=none,x=none,theta=none,hx=none x=none,theta=none,hx=none g32

A scheme is `name=choice,...` over:
  wk, wv, we   keys, values, embedding/logits table: tok (one scale per parameter token / vocabulary
               row), g32 (groups of 32 along the product's depth), none
  x, theta, hx activations before the key product, Θ(S) before the value product, the final norm's
               output before the logits: row (one scale per row), g32, none
Shorthands: `row` = tfc's first int8 scheme (per token, per row), `g32` = groups everywhere (tfc's).
"""
import argparse, json, os, sys
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'Tests', 'reference'))
import tokenformer_ref as R  # noqa: E402


def q_sym(x, axis):
    s = np.abs(x).max(axis=axis, keepdims=True) / 127
    s = np.where(s == 0, 1, s)
    return np.clip(np.round(x / s), -127, 127) * s


def q_groups(x, g=32):
    """Groups of g along the last axis (the last group shorter)."""
    rows, n = x.shape
    pad = (-n) % g
    xp = np.pad(x, ((0, 0), (0, pad))).reshape(rows, -1, g)
    return q_sym(xp, -1).reshape(rows, -1)[:, :n]


def activations(x, how):
    return {'none': lambda: x, 'row': lambda: q_sym(x, -1), 'g32': lambda: q_groups(x)}[how]()


def weights(w, how, depth_axis):
    """w is [n, d] (K: depth axis 1) or V [n, d_out] (depth axis 0, the parameter tokens)."""
    if how == 'none':
        return w
    if how == 'tok':
        return q_sym(w, 1)
    if how == 'g32':
        return q_groups(w) if depth_axis == 1 else q_groups(w.T.copy()).T
    raise ValueError(how)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('config')
    ap.add_argument('weights')
    ap.add_argument('schemes', nargs='+')
    ap.add_argument('--tokens', type=int, default=64)
    ap.add_argument('--seed', type=int, default=1)
    a = ap.parse_args()
    cfg = json.load(open(a.config))
    W = {k: np.asarray(v, dtype=np.float64) for k, v in R.load_safetensors(a.weights).items()}
    toks = np.random.default_rng(a.seed).integers(0, cfg['vocab'], a.tokens)
    presets = {'row': 'wk=tok,wv=tok,we=tok,x=row,theta=row,hx=row', 'g32': 'wk=g32,wv=g32,we=g32,x=g32,theta=g32,hx=g32'}
    mode = {}

    def site(cfg_, weights_, layer, name, x):
        n, d_in, d_out, tau, variant = R.site_params(cfg_, name)
        p = f"layers.{layer}.{name}"
        K, V = weights_[p + '.key_param_tokens'], weights_[p + '.value_param_tokens']
        if not mode:
            return R.pattention(x, K, V, variant, tau)
        s = activations(x, mode['x']) @ weights(K, mode['wk'], 1).T
        if variant == 'l2_norm_gelu':
            th = R.gelu(R._safe_l2_normalize(s) * tau)
        elif variant == 'gelu_l2_norm':
            th = R._safe_l2_normalize(R.gelu(s)) * tau
        else:
            e = np.exp(s - s.max(axis=-1, keepdims=True))
            th = e / e.sum(axis=-1, keepdims=True) * n
        return activations(th, mode['theta']) @ weights(V, mode['wv'], 0)

    plain_norm = R.layer_norm

    def norm(x, eps=1e-5, weight=None, bias=None):
        y = plain_norm(x, eps, weight, bias)
        last = weight is not None or not cfg.get('final_norm_affine', False)
        return activations(y, mode['hx']) if mode and last and norm.final else y

    R._site = site
    R.layer_norm = norm
    norm.final = False

    def forward():
        Wq = dict(W)
        if mode:
            Wq['embed.weight'] = weights(W['embed.weight'], mode['we'], 1)
        # The final norm is the only one called with the affine weight (or, without affine, the
        # last call): mark it by counting calls per forward.
        calls = 2 * int(cfg['layers'])
        count = [0]

        def counted(x, eps=1e-5, weight=None, bias=None):
            count[0] += 1
            norm.final = count[0] > calls
            return norm(x, eps, weight, bias)
        R.layer_norm = counted
        try:
            return R.forward(cfg, Wq, toks)
        finally:
            R.layer_norm = norm

    ref = forward()
    for spec in a.schemes:
        mode.clear()
        mode.update(dict(kv.split('=') for kv in presets.get(spec, spec).split(',')))
        for key, default in [('wk', 'tok'), ('wv', 'tok'), ('we', 'tok'), ('x', 'row'), ('theta', 'row'), ('hx', 'row')]:
            mode.setdefault(key, default)
        got = forward()
        err = np.linalg.norm(got - ref) / np.linalg.norm(ref)
        top1 = (got.argmax(1) == ref.argmax(1)).mean()
        print(f"{spec:48s} rel RMS {100 * err:6.2f}%  top-1 {100 * top1:5.1f}%", flush=True)


if __name__ == '__main__':
    main()
