#!/usr/bin/env python3
"""Compiled tfc shared libraries against PyTorch eager on the same weights, whole model, one process.

Not a test and not a dependency of tfc: run it by hand with a PyTorch installed outside the repo.
The PyTorch model is scripts/bench_torch_train.py's (built from `tfc check SPEC --json`), loaded
with the weights the libraries were compiled from, in float32 and in bfloat16 (`.to(torch.bfloat16)`),
with a KV cache for decoding. Each library is loaded with ctypes (`--tfc LABEL=libNAME.so`, its
NAME.weights beside it); one must be labelled `f32`: it is the reference for the speed ratios, and
before anything is timed PyTorch float32 must agree with it (relative RMS of the prefill logits and
of a decode step's logits at most --max-error): a wrong model is not a benchmark.

Measured, alternating the contenders in one process (the order rotates every round, with a pause
between runs so no side's spinning worker threads take a core from the next), torch and every
library on --threads threads:
  prefill  --prefill P tokens from position 0, logits of every row (tfc_model_eval);
  decode   --decode D tokens one at a time after an untimed prefill of P tokens, last-row logits
           (tfc_model_decode on the library's KV cache; PyTorch on its own cache).
Reported: median tokens/s over --repeat rounds after --warmup rounds, the ratio to tfc f32, each
contender's relative RMS prefill-logit error against PyTorch float32, and the slowest and fastest
round. Weights: `tfc init` writes random ones for any spec (what the libraries are compiled from).

    tfc check specs/tokenformer-150m.tfs --json > 150m.json
    tfc init specs/tokenformer-150m.tfs -o 150m.safetensors
    tfc compile specs/tokenformer-150m.tfs --weights 150m.safetensors --emit shared -o lib150m.so
    /work/torchenv/bin/python scripts/bench_torch_model.py 150m.json --weights 150m.safetensors \\
        --tfc f32=./lib150m.so --threads 2
"""
import argparse
import copy
import ctypes
import json
import os
import statistics
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_torch_train import Model, rotary  # noqa: E402  (the same model code as the training bench)


# ---------------------------------------------------------------- weights

SAFETENSORS_TYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}


def read_safetensors(path):
    """Every tensor of a safetensors file as a float32 numpy array, by name."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise SystemExit(f"error: {path}: not a safetensors file (shorter than its header length)")
    (header_length,) = struct.unpack("<Q", data[:8])
    try:
        header = json.loads(data[8:8 + header_length])
    except ValueError as e:
        raise SystemExit(f"error: {path}: bad safetensors header: {e}")
    base = 8 + header_length
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype = SAFETENSORS_TYPES.get(entry["dtype"])
        if dtype is None:
            raise SystemExit(f"error: {path}: tensor {name} has dtype {entry['dtype']} (F32, F16 or BF16 expected)")
        begin, end = entry["data_offsets"]
        raw = np.frombuffer(data, dtype=dtype, count=(end - begin) // np.dtype(dtype).itemsize, offset=base + begin)
        if entry["dtype"] == "BF16":
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        tensors[name] = raw.astype(np.float32).reshape(entry["shape"])
    return tensors


def parameter_names(model):
    """tfc's checkpoint name for each parameter of a bench_torch_train Model."""
    names = {"embed.weight": model.embed}
    if model.head is not None:
        names["lm_head.weight"] = model.head
    for i, layer in enumerate(model.layers):
        for site in model.cfg["sites"]:
            module = layer[site.replace(".", "_")]
            names[f"layers.{i}.{site}.key_param_tokens"] = module.key
            names[f"layers.{i}.{site}.value_param_tokens"] = module.value
    if model.cfg["final_norm_affine"]:
        names["final_norm.weight"] = model.final.weight
        names["final_norm.bias"] = model.final.bias
    return names


def load_weights(model, tensors, path):
    """Copies the checkpoint into the model; every parameter must be there with its shape."""
    names = parameter_names(model)
    extra = sorted(set(tensors) - set(names))
    if extra:
        raise SystemExit(f"error: {path}: tensor {extra[0]} is not a parameter of {model.cfg['name']}")
    with torch.no_grad():
        for name, parameter in names.items():
            if name not in tensors:
                raise SystemExit(f"error: {path}: missing tensor {name}")
            if tuple(tensors[name].shape) != tuple(parameter.shape):
                raise SystemExit(f"error: {path}: tensor {name} has shape {list(tensors[name].shape)}, "
                                 f"the spec wants {list(parameter.shape)}")
            parameter.copy_(torch.from_numpy(tensors[name]))


# ---------------------------------------------------------------- PyTorch with a KV cache

class KVCache:
    """Keys and values of every layer for positions 0 ..< capacity, [1, heads, capacity, head_dim]."""

    def __init__(self, cfg, capacity, dtype):
        shape = (1, cfg["heads"], capacity, cfg["hidden"] // cfg["heads"])
        self.keys = [torch.zeros(shape, dtype=dtype) for _ in range(cfg["layers"])]
        self.values = [torch.zeros(shape, dtype=dtype) for _ in range(cfg["layers"])]
        self.position = 0


def attention_mask(t, start):
    """None when SDPA's own flags say it (one query sees every cached key; from 0: plain causal)."""
    if t == 1 or start == 0:
        return None
    rows = torch.arange(start, start + t)[:, None]
    return torch.arange(start + t)[None, :] <= rows


@torch.inference_mode()
def forward_cached(model, tokens, cache, all_logits):
    """Model.forward for the tokens at the cache's position, appending their keys and values.

    Returns the logits of every row ([t, vocab]) or of the last ([vocab])."""
    cfg = model.cfg
    heads, eps = cfg["heads"], cfg["norm_eps"]
    start, t = cache.position, tokens.shape[0]
    x = model.embed[tokens][None]
    d = x.shape[-1]
    split = lambda z: z.view(1, t, heads, -1).transpose(1, 2)
    mask = attention_mask(t, start)
    for i, layer in enumerate(model.layers):
        h = F.layer_norm(x, (d,), eps=eps)
        q = rotary(layer["attention_query"](h), heads, cfg["rotary_fraction"], cfg["rotary_base"], start)
        k = rotary(layer["attention_key"](h), heads, cfg["rotary_fraction"], cfg["rotary_base"], start)
        cache.keys[i][:, :, start:start + t] = split(k)
        cache.values[i][:, :, start:start + t] = split(layer["attention_value"](h))
        keys, values = cache.keys[i][:, :, :start + t], cache.values[i][:, :, :start + t]
        a = F.scaled_dot_product_attention(split(q), keys, values, attn_mask=mask,
                                           is_causal=(t > 1 and start == 0))
        x = x + layer["attention_proj"](a.transpose(1, 2).reshape(1, t, -1))
        x = x + layer["mlp"](F.layer_norm(x, (d,), eps=eps))
    cache.position += t
    if not all_logits:
        x = x[:, -1:]
    logits = model.final(x) @ (model.embed if model.head is None else model.head).t()
    return logits[0] if all_logits else logits[0, 0]


class TorchContender:
    """A PyTorch eager model in one dtype."""

    def __init__(self, label, model, capacity):
        self.label, self.model, self.capacity = label, model, capacity
        self.cache = KVCache(model.cfg, capacity, next(model.parameters()).dtype)

    def prefill(self, tokens):
        self.cache.position = 0
        return forward_cached(self.model, torch.from_numpy(tokens).long(), self.cache, all_logits=True).float().numpy()

    def start(self, tokens):
        self.cache.position = 0
        forward_cached(self.model, torch.from_numpy(tokens).long(), self.cache, all_logits=False)

    def decode(self, token):
        return forward_cached(self.model, torch.tensor([int(token)]), self.cache, all_logits=False).float().numpy()


# ---------------------------------------------------------------- tfc through ctypes

INT32_P, FLOAT_P = ctypes.POINTER(ctypes.c_int32), ctypes.POINTER(ctypes.c_float)


class TfcContender:
    """A `tfc compile --emit shared` library and one model instance (its NAME.weights beside it)."""

    def __init__(self, label, path, vocab, threads):
        self.label, self.vocab = label, vocab
        try:
            lib = ctypes.CDLL(os.path.abspath(path))
        except OSError as e:
            raise SystemExit(f"error: --tfc {label}={path}: {e}")
        lib.tfc_model_create.restype = ctypes.c_void_p
        lib.tfc_model_create.argtypes = [ctypes.c_char_p]
        for name in ("tfc_model_eval", "tfc_model_eval_last"):
            getattr(lib, name).argtypes = [ctypes.c_void_p, INT32_P, ctypes.c_int64, FLOAT_P]
        lib.tfc_model_decode.argtypes = [ctypes.c_void_p, ctypes.c_int32, FLOAT_P]
        lib.tfc_model_reset.argtypes = [ctypes.c_void_p]
        lib.tfc_model_destroy.argtypes = [ctypes.c_void_p]
        lib.tfc_model_error.restype = ctypes.c_char_p
        lib.tfc_model_error.argtypes = [ctypes.c_void_p]
        lib.tfc_model_set_threads.argtypes = [ctypes.c_int]
        lib.tfc_model_set_threads(threads)
        self.lib = lib
        self.model = lib.tfc_model_create(None)
        if not self.model:
            raise SystemExit(f"error: --tfc {label}={path}: {lib.tfc_model_error(None).decode()}")
        self.last = np.zeros(vocab, dtype=np.float32)
        self.all = None

    def check(self, status, what):
        if status != 0:
            raise SystemExit(f"error: tfc {self.label}: {what}: {self.lib.tfc_model_error(self.model).decode()}")

    def prefill(self, tokens):
        if self.all is None or self.all.shape[0] != len(tokens):
            self.all = np.zeros((len(tokens), self.vocab), dtype=np.float32)
        self.lib.tfc_model_reset(self.model)
        self.check(self.lib.tfc_model_eval(self.model, tokens.ctypes.data_as(INT32_P), len(tokens),
                                           self.all.ctypes.data_as(FLOAT_P)), "eval")
        return self.all

    def start(self, tokens):
        self.lib.tfc_model_reset(self.model)
        self.check(self.lib.tfc_model_eval_last(self.model, tokens.ctypes.data_as(INT32_P), len(tokens),
                                                self.last.ctypes.data_as(FLOAT_P)), "eval_last")

    def decode(self, token):
        self.check(self.lib.tfc_model_decode(self.model, int(token), self.last.ctypes.data_as(FLOAT_P)), "decode")
        return self.last


# ---------------------------------------------------------------- measuring

def relative_rms(x, reference):
    """RMS of x - reference over the RMS of reference, in float64."""
    x, reference = np.asarray(x, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    return float(np.sqrt(np.mean((x - reference) ** 2) / np.mean(reference ** 2)))


def decode_logits(contender, prompt, continuation):
    """The logits after the last token of `continuation`, decoded one at a time after `prompt`."""
    contender.start(prompt)
    for token in continuation:
        logits = contender.decode(token)
    return np.array(logits, copy=True)


def time_prefill(contender, prompt):
    start = time.perf_counter()
    contender.prefill(prompt)
    return time.perf_counter() - start


def time_decode(contender, prompt, continuation):
    contender.start(prompt)
    start = time.perf_counter()
    for token in continuation:
        contender.decode(token)
    return time.perf_counter() - start


def measure(contenders, prompt, continuation, warmup, repeat, pause):
    """Prefill and decode seconds of every timed round per contender, rounds alternating, order rotating."""
    times = {c.label: ([], []) for c in contenders}
    for round_index in range(warmup + repeat):
        shift = round_index % len(contenders)
        for c in contenders[shift:] + contenders[:shift]:
            time.sleep(pause)
            prefill = time_prefill(c, prompt)
            time.sleep(pause)
            decode = time_decode(c, prompt, continuation)
            if round_index >= warmup:
                times[c.label][0].append(prefill)
                times[c.label][1].append(decode)
    return times


def parse_library(text):
    label, sep, path = text.partition("=")
    return (label, path) if sep else ("f32", text)


def machine():
    name, flags = "unknown CPU", []
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name") and name == "unknown CPU":
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = [f for f in line.split(":", 1)[1].split() if f.startswith(("avx512", "avx2", "fma", "amx"))]
    except OSError:
        pass
    return f"{name} ({' '.join(sorted(flags))})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("config", help="the output of tfc check SPEC --json")
    ap.add_argument("--weights", required=True, help="the safetensors the libraries were compiled from")
    ap.add_argument("--tfc", action="append", default=[], metavar="LABEL=LIB",
                    help="a tfc shared library (repeatable; one labelled f32; a bare path is f32)")
    ap.add_argument("--no-torch-bf16", action="store_true", help="leave PyTorch bfloat16 out")
    ap.add_argument("--prefill", type=int, default=512, help="prompt tokens (default 512)")
    ap.add_argument("--decode", type=int, default=32, help="tokens decoded after the prompt (default 32)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--pause", type=float, default=0.05, help="seconds between runs (default 0.05)")
    ap.add_argument("--max-error", type=float, default=1e-3,
                    help="largest relative RMS logit error of PyTorch float32 against tfc f32 (default 1e-3)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random tokens")
    args = ap.parse_args()

    libraries = [parse_library(t) for t in args.tfc]
    labels = [label for label, _ in libraries]
    if "f32" not in labels:
        raise SystemExit("error: --tfc: no library labelled f32 (the reference: --tfc f32=libNAME.so)")
    if len(set(labels)) != len(labels):
        raise SystemExit(f"error: --tfc: a label is given twice ({', '.join(labels)})")
    cfg = json.load(open(args.config))
    if args.prefill < 1 or args.decode < 1 or args.prefill + args.decode > cfg["context"]:
        raise SystemExit(f"error: --prefill {args.prefill} + --decode {args.decode}: each at least 1, "
                         f"together at most the context ({cfg['context']})")

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = Model(cfg).eval()
    load_weights(model, read_safetensors(args.weights), args.weights)
    capacity = args.prefill + args.decode
    torch_f32 = TorchContender("pytorch f32", model, capacity)
    contenders = [TfcContender(f"tfc {label}", path, cfg["vocab"], args.threads) for label, path in libraries]
    reference = contenders[labels.index("f32")]
    contenders.append(torch_f32)
    if not args.no_torch_bf16:
        contenders.append(TorchContender("pytorch bf16", copy.deepcopy(model).to(torch.bfloat16), capacity))

    rng = np.random.default_rng(args.seed)
    prompt = rng.integers(0, cfg["vocab"], args.prefill, dtype=np.int32)
    continuation = rng.integers(0, cfg["vocab"], args.decode, dtype=np.int32)

    # Correctness first: PyTorch float32 against tfc f32, the prefill and the last decode step.
    truth = torch_f32.prefill(prompt).copy()
    errors = {c.label: relative_rms(c.prefill(prompt), truth) for c in contenders}
    decode_error = relative_rms(decode_logits(reference, prompt, continuation),
                                decode_logits(torch_f32, prompt, continuation))
    print(f"{cfg['name']}: {machine()}, {args.threads} thread(s), pytorch {torch.__version__} eager")
    print(f"pytorch f32 against tfc f32, relative RMS logit error: prefill of {args.prefill} "
          f"{errors[reference.label]:.2e}, decode step {args.decode} after it {decode_error:.2e}")
    if max(errors[reference.label], decode_error) > args.max_error:
        raise SystemExit(f"error: pytorch f32 and tfc f32 disagree (relative RMS above {args.max_error:g}): "
                         "not the same model, no speed reported")

    times = measure(contenders, prompt, continuation, args.warmup, args.repeat, args.pause)
    medians = {label: (statistics.median(p), statistics.median(d)) for label, (p, d) in times.items()}
    base_prefill, base_decode = medians[reference.label]
    print(f"median of {args.repeat} alternating rounds ({args.warmup} warm-up): prefill {args.prefill} tokens "
          f"(all logits), decode {args.decode} tokens after {args.prefill}")
    header = ("contender", "prefill tok/s", "÷ tfc f32", "decode tok/s", "÷ tfc f32", "logit error vs pytorch f32")
    rows = []
    for c in contenders:
        prefill, decode = medians[c.label]
        rows.append((c.label, f"{args.prefill / prefill:.1f}", f"{base_prefill / prefill:.2f}",
                     f"{args.decode / decode:.2f}", f"{base_decode / decode:.2f}",
                     "reference" if c is torch_f32 else f"{errors[c.label]:.2e}"))
    print("| " + " | ".join(header) + " |")
    print("| " + " | ".join("---" for _ in header) + " |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print("spread (tok/s, slowest–fastest round): " + "; ".join(
        f"{label} prefill {args.prefill / max(p):.1f}–{args.prefill / min(p):.1f}, "
        f"decode {args.decode / max(d):.2f}–{args.decode / min(d):.2f}" for label, (p, d) in times.items()))


if __name__ == "__main__":
    main()
