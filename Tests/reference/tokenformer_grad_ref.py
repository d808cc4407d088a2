#!/usr/bin/env python3
"""Independent check of tfc's gradients: float64 central finite differences of the NumPy
reference forward (tokenformer_ref.py, written from docs/tokenformer-semantics.md).

The loss is the mean next-token cross-entropy over the sequence:
    loss = mean_{t < T-1} -log softmax(logits[t])[tokens[t+1]]

For every weight tensor the script checks, against the gradient file tfc wrote:
  - `--entries` randomly chosen elements plus the element where tfc's gradient is largest,
  - `--directions` random unit directions over the whole tensor (a wrong entry anywhere shows
    up in <g, v>),
each as (L(w + h v) - L(w - h v)) / 2h in float64. It writes the pairs as JSON; the Swift test
(Tests/CLITests/GradientReferenceTests.swift) judges them.

CLI:
    python3 tokenformer_grad_ref.py --config CFG.json --weights W.safetensors --tokens 1,2,3 \
        --grads G.safetensors --out CHECKS.json [--block tokenformer|parallel|two-mlp]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokenformer_ref as ref  # noqa: E402

BLOCKS = ("tokenformer", "parallel", "two-mlp")


def forward_two_mlp(cfg, weights, tokens):
    """specs/examples/two-mlp.tfs: no rotary, and an MLP of two Pattentions (mlp.up, mlp.down)."""
    D, H, L = int(cfg["hidden"]), int(cfg["heads"]), int(cfg["layers"])
    eps = float(cfg.get("norm_eps", 1e-5))
    embed = np.asarray(weights["embed.weight"], dtype=np.float64)
    x = embed[np.asarray(tokens)]
    for i in range(L):
        h = ref.layer_norm(x, eps)
        q, k, v = (ref._site(cfg, weights, i, s, h) for s in ("attention.query", "attention.key", "attention.value"))
        x = x + ref._site(cfg, weights, i, "attention.proj", ref.causal_attention(q, k, v, H))
        up = ref._site(cfg, weights, i, "mlp.up", ref.layer_norm(x, eps))
        x = x + ref._site(cfg, weights, i, "mlp.down", up)
    if cfg.get("final_norm_affine", False):
        x = ref.layer_norm(x, eps, weights["final_norm.weight"], weights["final_norm.bias"])
    else:
        x = ref.layer_norm(x, eps)
    head = embed if cfg.get("tie_embeddings", True) else np.asarray(weights["lm_head.weight"], dtype=np.float64)
    return x @ head.T


def loss(cfg, weights, tokens, block):
    """Mean next-token cross-entropy, float64."""
    if block == "two-mlp":
        logits = forward_two_mlp(cfg, weights, tokens)
    else:
        logits = ref.forward(cfg, weights, tokens, block)
    logits = logits[:-1]
    m = logits.max(axis=-1, keepdims=True)
    logz = np.log(np.exp(logits - m).sum(axis=-1)) + m[:, 0]
    targets = np.asarray(tokens[1:])
    return float(np.mean(logz - logits[np.arange(len(targets)), targets]))


def directional(cfg, weights, tokens, block, name, direction, h):
    base = weights[name]
    weights[name] = base + h * direction
    plus = loss(cfg, weights, tokens, block)
    weights[name] = base - h * direction
    minus = loss(cfg, weights, tokens, block)
    weights[name] = base
    return (plus - minus) / (2 * h)


def main(argv=None):
    ap = argparse.ArgumentParser(description="finite-difference check of tfc gradients")
    ap.add_argument("--config", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--grads", required=True, help="the gradients tfc grad wrote")
    ap.add_argument("--out", required=True)
    ap.add_argument("--block", default="tokenformer", choices=BLOCKS)
    ap.add_argument("--entries", type=int, default=3)
    ap.add_argument("--directions", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    with open(args.config) as f:
        cfg = json.load(f)
    weights = {k: v.astype(np.float64) for k, v in ref.load_safetensors(args.weights).items()}
    grads = ref.load_safetensors(args.grads)
    tokens = [int(t) for t in args.tokens.split(",")]
    rng = np.random.default_rng(args.seed)
    h = 1e-4
    checks = []
    missing = sorted(set(weights) - set(grads))
    for name in sorted(weights):
        if name not in grads:
            continue
        w, g = weights[name], grads[name].astype(np.float64)
        picks = list(rng.choice(w.size, size=min(args.entries, w.size), replace=False))
        picks.append(int(np.argmax(np.abs(g))))
        for flat in picks:
            e = np.zeros(w.size)
            e[flat] = 1.0
            checks.append({"tensor": name, "check": f"element {int(flat)}",
                           "reference": directional(cfg, weights, tokens, args.block, name, e.reshape(w.shape), h),
                           "ours": float(g.reshape(-1)[flat])})
        for i in range(args.directions):
            v = rng.standard_normal(w.shape)
            v /= np.linalg.norm(v)
            checks.append({"tensor": name, "check": f"direction {i}",
                           "reference": directional(cfg, weights, tokens, args.block, name, v, h),
                           "ours": float(np.sum(g * v))})
    report = {"loss": loss(cfg, weights, tokens, args.block), "missing": missing,
              "extra": sorted(set(grads) - set(weights)), "checks": checks,
              "scale": {name: float(np.abs(g).max()) for name, g in grads.items()}}
    with open(args.out, "w") as f:
        json.dump(report, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
