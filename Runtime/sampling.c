// Next-token sampling; see tfc_sampling.h.
// Strategy: candidates are token ids. top-k keeps the k best with a size-k min-heap
// (O(V log k)); top-p pops a max-heap until the mass is reached (O(V + m log V) for a
// prefix of m tokens), so neither sorts the whole vocabulary per token.
#include "tfc_sampling.h"
#include <math.h>
#include <stdlib.h>

int32_t tfc_argmax(const float *logits, int32_t vocab) {
    int32_t best = -1;
    for (int32_t i = 0; i < vocab; i++) {
        float x = logits[i];
        if (x != x) continue;
        if (best < 0 || x > logits[best]) best = i;
    }
    return vocab > 0 && best < 0 ? 0 : best;  // all NaN: token 0 rather than an invalid id
}

// a ranks before b: higher logit, then lower id.
static inline int better(const float *l, int32_t a, int32_t b) {
    return l[a] > l[b] || (l[a] == l[b] && a < b);
}

// Restores the heap property below position i. `max` selects a max-heap (best at the top)
// or a min-heap (worst at the top).
static void sift_down(int32_t *h, int32_t n, int32_t i, const float *l, int max) {
    for (;;) {
        int32_t c = 2 * i + 1;
        if (c >= n) return;
        if (c + 1 < n && (max ? better(l, h[c + 1], h[c]) : better(l, h[c], h[c + 1]))) c++;
        if (max ? better(l, h[c], h[i]) : better(l, h[i], h[c])) {
            int32_t t = h[c]; h[c] = h[i]; h[i] = t;
            i = c;
        } else {
            return;
        }
    }
}

size_t tfc_sample_scratch_size(int32_t vocab) {
    return vocab > 0 ? (size_t)vocab * (sizeof(int32_t) * 2 + sizeof(double)) : 8;
}

int32_t tfc_sample_with_scratch(const float *logits, int32_t vocab, float temperature,
                                int32_t top_k, float top_p, uint64_t *rng_state, void *scratch) {
    if (vocab <= 0) return -1;
    if (!(temperature > 0)) return tfc_argmax(logits, vocab);
    int32_t best = tfc_argmax(logits, vocab);
    float lmax = logits[best];
    if (lmax != lmax || (isinf(lmax) && lmax < 0)) return best;  // nothing has positive mass

    double *w = scratch;                          // weights, parallel to cand
    int32_t *cand = (int32_t *)(w + vocab);       // candidate ids
    int32_t *kept = cand + vocab;                 // top-p survivors, best first
    int32_t n = 0;

    if (top_k > 0 && top_k < vocab) {
        // Min-heap of the k best seen so far; its top is the worst of them.
        for (int32_t i = 0; i < vocab; i++) {
            if (logits[i] != logits[i]) continue;
            if (n < top_k) {
                cand[n] = i;
                for (int32_t j = n++; j > 0;) {  // sift up
                    int32_t p = (j - 1) / 2;
                    if (!better(logits, cand[p], cand[j])) break;
                    int32_t t = cand[p]; cand[p] = cand[j]; cand[j] = t;
                    j = p;
                }
            } else if (better(logits, i, cand[0])) {
                cand[0] = i;
                sift_down(cand, n, 0, logits, 0);
            }
        }
    } else {
        for (int32_t i = 0; i < vocab; i++) if (logits[i] == logits[i]) cand[n++] = i;
    }

    // exp((l - max) / T): the best token gets weight 1, so the sum never overflows.
    const double inv_t = 1.0 / (double)temperature;
    double total = 0;
    for (int32_t i = 0; i < n; i++) {
        w[i] = exp(((double)logits[cand[i]] - (double)lmax) * inv_t);
        total += w[i];
    }

    if (top_p > 0 && top_p < 1) {
        // Pop the candidates best-first until their mass reaches top_p of the total.
        int32_t *h = kept;  // reuse: build the heap in `kept`, then move survivors to the front
        for (int32_t i = 0; i < n; i++) h[i] = cand[i];
        for (int32_t i = n / 2 - 1; i >= 0; i--) sift_down(h, n, i, logits, 1);
        const double target = (double)top_p * total;
        double mass = 0;
        int32_t m = 0, hn = n;
        while (hn > 0) {
            int32_t id = h[0];
            h[0] = h[--hn];
            sift_down(h, hn, 0, logits, 1);
            cand[m] = id;   // cand is free to overwrite: we recompute weights for survivors
            w[m] = exp(((double)logits[id] - (double)lmax) * inv_t);
            mass += w[m++];
            if (mass >= target) break;
        }
        n = m;
        total = mass;
    }

    double u = tfc_rng_uniform(rng_state) * total;
    for (int32_t i = 0; i < n; i++) {
        if (u < w[i]) return cand[i];
        u -= w[i];
    }
    // Rounding left u just above the last weight: the last positive-weight candidate.
    for (int32_t i = n - 1; i >= 0; i--) if (w[i] > 0) return cand[i];
    return best;
}

int32_t tfc_sample(const float *logits, int32_t vocab, float temperature, int32_t top_k,
                   float top_p, uint64_t *rng_state) {
    if (vocab <= 0) return -1;
    if (!(temperature > 0)) return tfc_argmax(logits, vocab);
    void *scratch = malloc(tfc_sample_scratch_size(vocab));
    if (!scratch) return -1;
    int32_t id = tfc_sample_with_scratch(logits, vocab, temperature, top_k, top_p, rng_state, scratch);
    free(scratch);
    return id;
}
