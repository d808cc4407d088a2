"""NumPy reference for `tfc eval`: strided perplexity the way the Hugging Face guide computes it.

    python3 eval_ref.py --config C.json --weights W.safetensors --tokenizer T.json --text F \
        --context N --stride S

Tokens come from HF `tokenizers`, logits from tokenformer_ref.forward. Each window feeds
ids[begin:end] (end = min(begin + context, len - 1)), its rows predict ids[begin+1:end+1], and
the last `end - prev_end` of those targets (the ones the previous window did not score) count.
Prints one JSON object: nll_sum, scored_tokens, windows, perplexity, bits_per_byte, bytes.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
from tokenizers import Tokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokenformer_ref  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    for name in ("--config", "--weights", "--tokenizer", "--text"):
        ap.add_argument(name, required=True)
    ap.add_argument("--context", type=int, required=True)
    ap.add_argument("--stride", type=int, required=True)
    args = ap.parse_args()
    with open(args.config) as f:
        cfg = json.load(f)
    weights = tokenformer_ref.load_safetensors(args.weights)
    tokenizer = Tokenizer.from_file(args.tokenizer)
    with open(args.text, encoding="utf-8", newline="") as f:
        text = f.read()
    ids = tokenizer.encode(text).ids

    nll, scored, windows, prev_end = 0.0, 0, 0, 0
    for begin in range(0, len(ids) - 1, args.stride):
        end = min(begin + args.context, len(ids) - 1)
        logits = tokenformer_ref.forward(cfg, weights, ids[begin:end]).astype(np.float64)
        targets = np.asarray(ids[begin + 1:end + 1])
        peak = logits.max(axis=1, keepdims=True)
        log_probs = logits - peak - np.log(np.exp(logits - peak).sum(axis=1, keepdims=True))
        new = end - prev_end
        nll -= log_probs[np.arange(len(targets)), targets][-new:].sum()
        scored += new
        windows += 1
        prev_end = end
        if end == len(ids) - 1:
            break
    normalized = tokenizer.normalizer.normalize_str(text) if tokenizer.normalizer else text
    # The bytes of every token but the first (which no window predicts).
    n_bytes = len(normalized.encode("utf-8")) - len(tokenizer.decode(ids[:1]).encode("utf-8"))
    print(json.dumps({"nll_sum": nll, "scored_tokens": scored, "windows": windows, "perplexity": math.exp(nll / scored),
                      "bits_per_byte": nll / math.log(2) / n_bytes, "bytes": n_bytes, "tokens": len(ids)}))


if __name__ == "__main__":
    main()
