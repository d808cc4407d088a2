// Deterministic randomness for sampling and weight initialisation.
// Generator: splitmix64 (Steele, Lea, Flood 2014): state += 0x9E3779B97F4A7C15, then the
// output is the state passed through a 64-bit mixer. One uint64 of state, any seed is fine
// (including 0), and a given seed gives the same stream on every machine and build.
#pragma once
#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// Advances *state and returns the next 64 random bits.
uint64_t tfc_rng_next(uint64_t *state);
// Uniform double in [0, 1) with 53 random bits: (next >> 11) * 2^-53.
double tfc_rng_uniform(uint64_t *state);
// The splitmix64 mixer alone (a good 64-bit hash), e.g. to derive per-tensor seeds.
uint64_t tfc_mix64(uint64_t x);

// Fills dst[0..n) with normal(0, std) samples by Box–Muller in double precision:
// u1 = ((next >> 11) + 1) * 2^-53 in (0, 1], u2 = tfc_rng_uniform in [0, 1),
// r = sqrt(-2 ln u1), and the pair (r cos 2πu2, r sin 2πu2) fills two consecutive slots
// (each pair consumes two draws; an odd n drops the last sine). Filling in chunks of even
// length continues the same stream as one call.
void tfc_fill_normal(float *dst, size_t n, float std, uint64_t *state);

#ifdef __cplusplus
}
#endif
