// splitmix64 and Box–Muller; see tfc_random.h.
// log, sin and cos are evaluated by the fixed polynomials below rather than libm: they are
// faster (weight init draws 10^8+ samples) and give bit-identical streams on every libc.
#include "tfc_random.h"
#include <math.h>
#include <string.h>

// No fused multiply-adds: the same source must round the same way on every target.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

// sqrt is exactly rounded either way; the builtin just lets clang vectorise the block loop
// (libm's sqrt may set errno, which blocks vectorisation without -fno-math-errno).
#if defined(__has_builtin)
#if __has_builtin(__builtin_elementwise_sqrt)
#define TFC_SQRT(x) __builtin_elementwise_sqrt(x)
#endif
#endif
#ifndef TFC_SQRT
#define TFC_SQRT(x) sqrt(x)
#endif

uint64_t tfc_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

uint64_t tfc_rng_next(uint64_t *state) {
    *state += UINT64_C(0x9E3779B97F4A7C15);
    return tfc_mix64(*state);
}

double tfc_rng_uniform(uint64_t *state) {
    return (double)(tfc_rng_next(state) >> 11) * 0x1.0p-53;
}

// ln x for x in [2^-53, 1]: x = m·2^e with m in [√½, √2), ln m = 2·atanh(s), s = (m-1)/(m+1),
// |s| <= 0.1716, series to s^23 (truncation < 1e-18). Accurate to about 1 ulp.
static inline double log_unit(double x) {
    uint64_t bits;
    memcpy(&bits, &x, 8);
    int e = (int)((bits >> 52) & 0x7FF) - 1023;
    bits = (bits & UINT64_C(0x000FFFFFFFFFFFFF)) | UINT64_C(0x3FF0000000000000);
    double m;
    memcpy(&m, &bits, 8);
    if (m > 1.4142135623730951) { m *= 0.5; e += 1; }
    double s = (m - 1.0) / (m + 1.0), z = s * s;
    double p = 0.043478260869565216;
    p = p * z + 0.047619047619047616; p = p * z + 0.05263157894736842;
    p = p * z + 0.058823529411764705; p = p * z + 0.06666666666666667;
    p = p * z + 0.07692307692307693;  p = p * z + 0.09090909090909091;
    p = p * z + 0.1111111111111111;   p = p * z + 0.14285714285714285;
    p = p * z + 0.2;                  p = p * z + 0.3333333333333333;
    double lnm = 2.0 * s + 2.0 * s * (z * p);
    // ln 2 split so that e·ln2_hi is exact (fdlibm's constants).
    return (double)e * 6.93147180369123816490e-01 + ((double)e * 1.90821492927058770002e-10 + lnm);
}

// sin and cos of 2π·u for u in [0, 1): quadrant k = round(4u), r = (4u - k)·π/2 in [-π/4, π/4]
// (4u - k is exact), Taylor series to r^19 / r^18 (truncation < 1e-17).
static inline void sincos_turn(double u, double *sn, double *cs) {
    double a = 4.0 * u;
    double k = floor(a + 0.5);
    double r = (a - k) * 1.5707963267948966, z = r * r;
    double s = -8.22063524662433e-18;
    s = s * z + 2.8114572543455206e-15; s = s * z - 7.647163731819816e-13;
    s = s * z + 1.6059043836821613e-10; s = s * z - 2.505210838544172e-08;
    s = s * z + 2.7557319223985893e-06; s = s * z - 0.0001984126984126984;
    s = s * z + 0.008333333333333333;   s = s * z - 0.16666666666666666;
    s = r + r * (z * s);
    double c = -1.5619206968586225e-16;
    c = c * z + 4.779477332387385e-14;  c = c * z - 1.1470745597729725e-11;
    c = c * z + 2.08767569878681e-09;   c = c * z - 2.755731922398589e-07;
    c = c * z + 2.48015873015873e-05;   c = c * z - 0.001388888888888889;
    c = c * z + 0.041666666666666664;   c = c * z - 0.5;
    c = 1.0 + z * c;
    // Rotate by k quarter turns without branches (so blocks of samples vectorise):
    // odd k swaps sine and cosine, k = 2, 3 negates both.
    int q = (int)k;
    double odd_s = (q & 1) ? c : s, odd_c = (q & 1) ? -s : c;
    double sign = (q & 2) ? -1.0 : 1.0;
    *sn = odd_s * sign;
    *cs = odd_c * sign;
}

void tfc_fill_normal(float *dst, size_t n, float std, uint64_t *state) {
    enum { BLOCK = 256 };  // pairs per block: draw the uniforms, then transform them together
    double u1[BLOCK], u2[BLOCK];
    const double sd = std;
    uint64_t st = *state;
    for (size_t i = 0; i < n; i += 2 * BLOCK) {
        size_t pairs = (n - i + 1) / 2;
        if (pairs > BLOCK) pairs = BLOCK;
        for (size_t p = 0; p < pairs; p++) {
            u1[p] = (double)((tfc_rng_next(&st) >> 11) + 1) * 0x1.0p-53;  // (0, 1]: log is finite
            u2[p] = tfc_rng_uniform(&st);
        }
        float *out = dst + i;
        size_t full = (n - i) / 2 < pairs ? (n - i) / 2 : pairs;  // pairs with both slots in range
        for (size_t p = 0; p < full; p++) {
            double r = TFC_SQRT(-2.0 * log_unit(u1[p])) * sd, sn, cs;
            sincos_turn(u2[p], &sn, &cs);
            out[2 * p] = (float)(r * cs);
            out[2 * p + 1] = (float)(r * sn);
        }
        if (full < pairs) {  // odd n: the last pair keeps only its cosine
            double r = TFC_SQRT(-2.0 * log_unit(u1[full])) * sd, sn, cs;
            sincos_turn(u2[full], &sn, &cs);
            out[2 * full] = (float)(r * cs);
        }
    }
    *state = st;
}

// Exposed for the runtime's own tests of the polynomials against libm (not in the header).
double tfc_internal_log_unit(double x) { return log_unit(x); }
void tfc_internal_sincos_turn(double u, double *s, double *c) { sincos_turn(u, s, c); }
