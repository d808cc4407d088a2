// UTF-8 checking, streaming and lossy decoding (include/tfc_utf8.h).
#include "tfc_utf8.h"

#include <string.h>

// The length of the well-formed sequence at s[0..n), or, when it is ill-formed, minus the length
// of its maximal subpart (at least 1): the lead byte and the continuation bytes it accepts.
static long sequence(const uint8_t *s, size_t n) {
    uint8_t b0 = s[0];
    if (b0 < 0x80) return 1;
    size_t need;
    uint8_t lo = 0x80, hi = 0xBF;  // the second byte's range
    if (b0 >= 0xC2 && b0 <= 0xDF) need = 2;
    else if (b0 >= 0xE0 && b0 <= 0xEF) { need = 3; if (b0 == 0xE0) lo = 0xA0; if (b0 == 0xED) hi = 0x9F; }
    else if (b0 >= 0xF0 && b0 <= 0xF4) { need = 4; if (b0 == 0xF0) lo = 0x90; if (b0 == 0xF4) hi = 0x8F; }
    else return -1;
    size_t k = 1;
    while (k < need) {
        if (k >= n) return -(long)k;
        uint8_t b = s[k];
        uint8_t l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
        if (b < l || b > h) return -(long)k;
        k++;
    }
    return (long)need;
}

size_t tfc_utf8_valid_prefix(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) { i++; continue; }
        long len = sequence(s + i, n - i);
        if (len < 0) return i;
        i += (size_t)len;
    }
    return n;
}

size_t tfc_utf8_incomplete_tail(const uint8_t *s, size_t n) {
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        uint8_t lead = s[n - k];
        if ((lead & 0xC0) == 0x80) continue;  // a continuation byte: look further back
        long len = sequence(s + n - k, k);
        // Ill-formed only because it ends early: its maximal subpart is all k bytes, and it needs more.
        size_t need = lead >= 0xF0 && lead <= 0xF4 ? 4 : lead >= 0xE0 && lead < 0xF0 ? 3 : lead >= 0xC2 && lead < 0xE0 ? 2 : 1;
        return need > k && len == -(long)k ? k : 0;
    }
    return 0;
}

size_t tfc_utf8_replace_invalid(const uint8_t *s, size_t n, uint8_t *out) {
    size_t i = 0, o = 0;
    while (i < n) {
        if (s[i] < 0x80) { out[o++] = s[i++]; continue; }
        long len = sequence(s + i, n - i);
        if (len > 0) {
            memcpy(out + o, s + i, (size_t)len);
            o += (size_t)len;
            i += (size_t)len;
        } else {
            out[o++] = 0xEF; out[o++] = 0xBF; out[o++] = 0xBD;
            i += (size_t)(-len);
        }
    }
    return o;
}
