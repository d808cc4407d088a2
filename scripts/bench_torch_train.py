#!/usr/bin/env python3
"""PyTorch eager training of a tfc spec's TokenFormer, for the comparison in docs/training.md.

Not a test and not a dependency of tfc: run it by hand with a PyTorch installed outside the repo.
The model is built from `tfc check SPEC --json` (pre-norm tokenformer block, rotary, causal
attention, per-site Pattention norm and pinned tau, tied or untied head, plain or affine final
norm), float32; a step is the mean next-token cross-entropy of --batch windows of --seq random
tokens (one batched forward and backward), global-norm clipping to 1 and one AdamW step
(beta 0.9/0.95, eps 1e-8, weight decay 0.1), like `tfc train`. Prints the median step time and
tokens/s over --repeat steps after --warmup steps.

    tfc check specs/tiny.tfs --json > tiny.json
    /work/torchenv/bin/python scripts/bench_torch_train.py tiny.json --seq 128 --batch 4 --threads 1
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn.functional as F


class Pattention(torch.nn.Module):
    def __init__(self, n, d_in, d_out, norm, scale):
        super().__init__()
        self.key = torch.nn.Parameter(torch.randn(n, d_in) * 0.02)
        self.value = torch.nn.Parameter(torch.randn(n, d_out) * 0.02)
        self.norm, self.n = norm, n
        self.tau = math.sqrt(n) if scale is None else float(scale)

    def forward(self, x):
        s = x @ self.key.t()
        if self.norm == "l2_norm_gelu":
            a = F.gelu(s / s.norm(dim=-1, keepdim=True).clamp_min(1e-30) * self.tau)
        elif self.norm == "gelu_l2_norm":
            g = F.gelu(s)
            a = g / g.norm(dim=-1, keepdim=True).clamp_min(1e-30) * self.tau
        else:
            a = torch.softmax(s, dim=-1) * self.n
        return a @ self.value


def rotary(x, heads, fraction, base, start=0):
    """GPT-NeoX rotate-half rotary on the first dims of each head; row i is at position start + i."""
    b, t, width = x.shape
    hd = width // heads
    rd = int(hd * fraction)
    if rd == 0:
        return x
    inv = 1.0 / (base ** (torch.arange(0, rd, 2, dtype=torch.float32) / rd))
    theta = torch.arange(start, start + t, dtype=torch.float32)[:, None] * inv[None, :]
    emb = torch.cat([theta, theta], dim=-1)
    # Angles in float32 whatever x's type; cos and sin in x's type so a bf16 model stays bf16.
    cos, sin = emb.cos().to(x.dtype)[None, :, None, :], emb.sin().to(x.dtype)[None, :, None, :]
    xh = x.view(b, t, heads, hd)
    xr, rest = xh[..., :rd], xh[..., rd:]
    x1, x2 = xr[..., : rd // 2], xr[..., rd // 2:]
    rotated = xr * cos + torch.cat([-x2, x1], dim=-1) * sin
    return torch.cat([rotated, rest], dim=-1).view(b, t, width)


class Model(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        d, v = cfg["hidden"], cfg["vocab"]
        self.embed = torch.nn.Parameter(torch.randn(v, d) * 0.02)
        self.head = None if cfg["tie_embeddings"] else torch.nn.Parameter(torch.randn(v, d) * 0.02)
        sites = cfg["sites"]

        def site(name):
            s = sites[name]
            return Pattention(s["tokens"], s["in"], s["out"], s["norm"], s["scale"])
        self.layers = torch.nn.ModuleList(torch.nn.ModuleDict({n.replace(".", "_"): site(n) for n in sites}) for _ in range(cfg["layers"]))
        self.final = torch.nn.LayerNorm(d, eps=cfg["norm_eps"], elementwise_affine=cfg["final_norm_affine"])

    def forward(self, tokens):
        cfg = self.cfg
        heads, eps = cfg["heads"], cfg["norm_eps"]
        x = self.embed[tokens]
        b, t, d = x.shape
        for layer in self.layers:
            h = F.layer_norm(x, (d,), eps=eps)
            q = rotary(layer["attention_query"](h), heads, cfg["rotary_fraction"], cfg["rotary_base"])
            k = rotary(layer["attention_key"](h), heads, cfg["rotary_fraction"], cfg["rotary_base"])
            v = layer["attention_value"](h)
            split = lambda z: z.view(b, t, heads, -1).transpose(1, 2)
            a = F.scaled_dot_product_attention(split(q), split(k), split(v), is_causal=True).transpose(1, 2).reshape(b, t, -1)
            x = x + layer["attention_proj"](a)
            x = x + layer["mlp"](F.layer_norm(x, (d,), eps=eps))
        x = self.final(x)
        return x @ (self.embed if self.head is None else self.head).t()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("config", help="the output of tfc check SPEC --json")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    cfg = json.load(open(args.config))
    model = Model(cfg)
    decay = [p for p in model.parameters() if p.dim() > 1]
    plain = [p for p in model.parameters() if p.dim() <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": plain, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    data = torch.randint(0, cfg["vocab"], (4096 + args.seq,))
    times = []
    for i in range(args.warmup + args.repeat):
        starts = torch.randint(0, 4096, (args.batch,))
        batch = torch.stack([data[s:s + args.seq] for s in starts])
        start = time.perf_counter()
        logits = model(batch)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, cfg["vocab"]), batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(f"pytorch {torch.__version__} eager, {args.threads} thread(s): {cfg['name']}, steps of {args.batch} x {args.seq} tokens: "
          f"median {median * 1e3:.3f} ms (min {min(times) * 1e3:.3f}, max {max(times) * 1e3:.3f}), "
          f"{args.batch * args.seq / median:.0f} tokens/s, loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
