// Choosing the next token from one row of logits. Deterministic for a given RNG state:
// ties are broken by the lower token id and all arithmetic order is fixed, so a seed
// reproduces a generation exactly. Randomness comes from tfc_random.h (splitmix64).
#pragma once
#include <stdint.h>
#include <stddef.h>
#include "tfc_random.h"

#ifdef __cplusplus
extern "C" {
#endif

// Returns a token id in [0, vocab), or -1 if vocab <= 0 or memory runs out.
//  temperature <= 0 (or NaN): greedy, the argmax (lowest id on ties); the RNG is not advanced.
//  top_k: keep the k highest logits (k <= 0 or k >= vocab: keep all).
//  top_p: then keep the smallest highest-probability prefix whose mass reaches top_p
//         (top_p <= 0 or >= 1: keep all). At least one token always survives.
//  Sampling draws exactly one tfc_rng_uniform from *rng_state.
// NaN logits are never chosen; -inf logits only if every logit is -inf or NaN.
int32_t tfc_sample(const float *logits, int32_t vocab, float temperature, int32_t top_k,
                   float top_p, uint64_t *rng_state);

// Bytes of scratch tfc_sample_with_scratch needs for a vocabulary of this size.
size_t tfc_sample_scratch_size(int32_t vocab);
// The same as tfc_sample without allocating (scratch: tfc_sample_scratch_size(vocab) bytes,
// 8-byte aligned), for generation loops that sample thousands of tokens.
int32_t tfc_sample_with_scratch(const float *logits, int32_t vocab, float temperature,
                                int32_t top_k, float top_p, uint64_t *rng_state, void *scratch);

// Index of the largest logit (lowest id on ties, NaN skipped); -1 if vocab <= 0.
int32_t tfc_argmax(const float *logits, int32_t vocab);

#ifdef __cplusplus
}
#endif
