// The tokenizer of a compiled model (include/tfc_tokenizer.h): byte-level BPE over the side file
// tfc compile writes (Sources/TFTokenizer/CompiledTokenizerFile.swift; layout in docs/compile.md).
// A port of the Swift tokenizer (Sources/TFTokenizer) step by step, so both give HF's ids:
// added tokens not normalised split out first, then NFC, then the normalised added tokens, the
// GPT-2 pre-tokenizer and BPE by merge rank (a min-heap, linear-logarithmic in a word's length).
#define _GNU_SOURCE
#include "tfc_tokenizer.h"
#include "error_text.h"
#include "tfc_utf8.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ERROR_BYTES 1024
#define HEADER_BYTES 64
#define SECTIONS 13
#define FORMAT_VERSION 1

enum { LETTER, NUMBER, SPACE, OTHER };  // PreTokenizer.CharacterClass

typedef struct { const uint32_t *v; size_t n; } table;  // n: elements of the row size in use

struct tfc_tokenizer {
    uint8_t *data;
    size_t size;
    uint32_t flags;            // 1: NFC, 2: ignore_merges
    int64_t vocab;
    int32_t end_of_text;
    const int32_t *byte_ids;   // [256]
    const uint32_t *offsets;   // [vocab + 1] into blob
    const uint8_t *kinds;      // [vocab]: 0 none, 1 vocabulary entry in the byte alphabet, 2 other
    const uint8_t *blob;
    table merges, raw_added, normalized_added, classes, unstable, combining, decomposition, pool, composition;
    uint8_t ascii_class[128];
    uint8_t raw_starts[256], normalized_starts[256];
    // Merges: (left, right) -> rank, merged; open addressing.
    uint64_t *merge_keys;
    int32_t *merge_rank, *merge_id;
    size_t merge_mask;
    // Whole words (ignore_merges): token ids by their bytes; -1 empty.
    int32_t *word_slots;
    size_t word_mask;
    // Scratch.
    int32_t *out; size_t out_len, out_cap;
    uint8_t *normalized; size_t normalized_cap;
    uint32_t *scalars, *decomposed; size_t scalars_cap, decomposed_cap;
    int32_t *ids, *prev, *next; uint8_t *alive; size_t word_cap;
    uint64_t *heap; size_t heap_len, heap_cap;
    int failed;  // out of memory during an encode
    char error[ERROR_BYTES];
};

static __thread char t_open_error[ERROR_BYTES];

#define set_error(buf, ...) (void)tfc_error_text(0, buf, ERROR_BYTES, __VA_ARGS__)

static uint32_t u32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t u64(const uint8_t *p) { return (uint64_t)u32(p) | (uint64_t)u32(p + 4) << 32; }

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 64;
    while (n < need) n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q) return -1;
    *p = q;
    *cap = n;
    return 0;
}

// ---- Loading ------------------------------------------------------------------------------

static uint64_t merge_hash(uint64_t key) {
    uint64_t x = key * 0x9E3779B97F4A7C15ull;
    x ^= x >> 29;
    return x;
}

static uint64_t bytes_hash(const uint8_t *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}

static const uint8_t *token(const tfc_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->vocab || !t->kinds[id]) return NULL;
    *len = t->offsets[id + 1] - t->offsets[id];
    return t->blob + t->offsets[id];
}

void tfc_tokenizer_close(tfc_tokenizer *t) {
    if (!t) return;
    free(t->data); free(t->merge_keys); free(t->merge_rank); free(t->merge_id); free(t->word_slots);
    free(t->out); free(t->normalized); free(t->scalars); free(t->decomposed);
    free(t->ids); free(t->prev); free(t->next); free(t->alive); free(t->heap);
    free(t);
}

static tfc_tokenizer *refuse(tfc_tokenizer *t, const char *path, const char *what) {
    set_error(t_open_error, "%s: error: %s", path, what);
    tfc_tokenizer_close(t);
    return NULL;
}

tfc_tokenizer *tfc_tokenizer_open(const char *path) {
    t_open_error[0] = 0;
    char why[512];
    if (!path || !path[0]) { set_error(t_open_error, "error: tfc_tokenizer_open needs the path of a tokenizer file"); return NULL; }
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) return refuse(NULL, path, "no such tokenizer file (tfc compile writes NAME.tokenizer beside the model when the spec names a tokenizer or --tokenizer is given)");
        snprintf(why, sizeof why, "cannot read the tokenizer file: %s", strerror(errno));
        return refuse(NULL, path, why);
    }
    tfc_tokenizer *t = calloc(1, sizeof *t);
    if (!t) { fclose(f); return refuse(NULL, path, "out of memory"); }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) { fclose(f); return refuse(t, path, "cannot read the tokenizer file (not a regular file)"); }
    long size = (long)st.st_size;
    t->size = (size_t)size;
    t->data = malloc(t->size ? t->size : 1);
    if (!t->data) { fclose(f); return refuse(t, path, "out of memory"); }
    size_t got = fread(t->data, 1, t->size, f);
    fclose(f);
    if (got != t->size) return refuse(t, path, "cannot read the tokenizer file");
    const uint8_t *d = t->data;
    if (t->size < 8 || memcmp(d, "TFCTOKN1", 8) != 0) {
        return refuse(t, path, "not a tfc tokenizer file (expected the NAME.tokenizer that tfc compile wrote; a tokenizer.json must go through tfc compile --tokenizer)");
    }
    if (t->size < HEADER_BYTES + SECTIONS * 8) return refuse(t, path, "the tokenizer file is truncated");
    if (u32(d + 8) != FORMAT_VERSION) {
        snprintf(why, sizeof why, "tokenizer file format version %u, this program reads %d (recompile with this tfc)", u32(d + 8), FORMAT_VERSION);
        return refuse(t, path, why);
    }
    uint64_t stored = u64(d + 16);
    if (stored != t->size) {
        snprintf(why, sizeof why, "the tokenizer file is %s (%zu bytes, its header says %llu)", stored > t->size ? "truncated" : "damaged",
                 t->size, (unsigned long long)stored);
        return refuse(t, path, why);
    }
    if (bytes_hash(d + HEADER_BYTES, t->size - HEADER_BYTES) != u64(d + 24)) return refuse(t, path, "the tokenizer file is damaged (checksum mismatch)");
    t->flags = u32(d + 12);
    t->vocab = u32(d + 32);
    t->end_of_text = (int32_t)u32(d + 36);
    if (u32(d + 40) != SECTIONS || t->vocab < 1 || t->vocab > 10000000) return refuse(t, path, "the tokenizer file is damaged (bad header)");

    // Sections: offset and byte length, each in bounds and a whole number of rows.
    const uint8_t *sec[SECTIONS];
    size_t len[SECTIONS];
    static const size_t row[SECTIONS] = {4, 4, 1, 1, 12, 12, 12, 8, 8, 12, 12, 4, 12};
    for (int s = 0; s < SECTIONS; s++) {
        uint32_t off = u32(d + HEADER_BYTES + 8 * s), n = u32(d + HEADER_BYTES + 8 * s + 4);
        if (off % 4 || off > t->size || n > t->size - off || n % row[s]) return refuse(t, path, "the tokenizer file is damaged (bad section table)");
        sec[s] = d + off;
        len[s] = n / row[s];
    }
    if (len[0] != 256 || len[1] != (size_t)t->vocab + 1 || len[2] != (size_t)t->vocab) return refuse(t, path, "the tokenizer file is damaged (table sizes)");
    t->byte_ids = (const int32_t *)sec[0];
    t->offsets = (const uint32_t *)sec[1];
    t->kinds = sec[2];
    t->blob = sec[3];
    table *tables[] = {&t->merges, &t->raw_added, &t->normalized_added, &t->classes, &t->unstable, &t->combining, &t->decomposition, &t->pool, &t->composition};
    for (int s = 4; s < SECTIONS; s++) { tables[s - 4]->v = (const uint32_t *)sec[s]; tables[s - 4]->n = len[s]; }

    // Every offset and id the encoder follows is checked once here.
    size_t blob_len = len[3];
    for (int64_t i = 0; i < t->vocab; i++) {
        if (t->offsets[i] > t->offsets[i + 1] || t->offsets[i + 1] > blob_len || t->kinds[i] > 2) return refuse(t, path, "the tokenizer file is damaged (token table)");
    }
    for (int b = 0; b < 256; b++) if (t->byte_ids[b] < -1 || t->byte_ids[b] >= t->vocab) return refuse(t, path, "the tokenizer file is damaged (byte ids)");
    for (size_t i = 0; i < 3 * t->merges.n; i++) if (t->merges.v[i] >= (uint64_t)t->vocab) return refuse(t, path, "the tokenizer file is damaged (merges)");
    table *added[2] = {&t->raw_added, &t->normalized_added};
    for (int a = 0; a < 2; a++) {
        for (size_t i = 0; i < added[a]->n; i++) {
            const uint32_t *e = added[a]->v + 3 * i;
            if (e[0] >= t->vocab || e[2] == 0 || e[1] > blob_len || e[2] > blob_len - e[1]) return refuse(t, path, "the tokenizer file is damaged (added tokens)");
            (a ? t->normalized_starts : t->raw_starts)[t->blob[e[1]]] = 1;
        }
    }
    if (t->classes.n == 0 || t->classes.v[0] != 0) return refuse(t, path, "the tokenizer file is damaged (character classes)");
    for (size_t i = 0; i < t->decomposition.n; i++) {
        const uint32_t *e = t->decomposition.v + 3 * i;
        if (e[1] > t->pool.n || e[2] > t->pool.n - e[1] || e[2] > 32) return refuse(t, path, "the tokenizer file is damaged (decompositions)");
    }
    for (int c = 0; c < 128; c++) {
        size_t lo = 0, hi = t->classes.n;  // the last run starting at or before c
        while (hi - lo > 1) { size_t mid = (lo + hi) / 2; if (t->classes.v[2 * mid] <= (uint32_t)c) lo = mid; else hi = mid; }
        t->ascii_class[c] = (uint8_t)t->classes.v[2 * lo + 1];
    }

    size_t cap = 16;
    while (cap < t->merges.n * 2) cap <<= 1;
    t->merge_mask = cap - 1;
    t->merge_keys = malloc(cap * sizeof(uint64_t));
    t->merge_rank = malloc(cap * sizeof(int32_t));
    t->merge_id = malloc(cap * sizeof(int32_t));
    if (!t->merge_keys || !t->merge_rank || !t->merge_id) return refuse(t, path, "out of memory");
    memset(t->merge_keys, 0xFF, cap * sizeof(uint64_t));
    for (size_t r = 0; r < t->merges.n; r++) {
        const uint32_t *m = t->merges.v + 3 * r;
        uint64_t key = (uint64_t)m[0] << 32 | m[1];
        size_t slot = merge_hash(key) & t->merge_mask;
        while (t->merge_keys[slot] != UINT64_MAX && t->merge_keys[slot] != key) slot = (slot + 1) & t->merge_mask;
        t->merge_keys[slot] = key;  // a pair listed twice keeps its last rank, as HF's map does
        t->merge_rank[slot] = (int32_t)r;
        t->merge_id[slot] = (int32_t)m[2];
    }
    if (t->flags & 2) {
        size_t wcap = 16;
        while (wcap < (size_t)t->vocab * 2) wcap <<= 1;
        t->word_mask = wcap - 1;
        t->word_slots = malloc(wcap * sizeof(int32_t));
        if (!t->word_slots) return refuse(t, path, "out of memory");
        memset(t->word_slots, 0xFF, wcap * sizeof(int32_t));
        for (int32_t id = 0; id < t->vocab; id++) {
            size_t n;
            const uint8_t *s = token(t, id, &n);
            if (!s || t->kinds[id] != 1) continue;
            size_t slot = bytes_hash(s, n) & t->word_mask;
            int dup = 0;
            while (t->word_slots[slot] >= 0) {
                size_t m;
                const uint8_t *o = token(t, t->word_slots[slot], &m);
                if (m == n && !memcmp(o, s, n)) { dup = 1; break; }
                slot = (slot + 1) & t->word_mask;
            }
            if (!dup) t->word_slots[slot] = id;
        }
    }
    return t;
}

int64_t tfc_tokenizer_vocab(const tfc_tokenizer *t) { return t ? t->vocab : 0; }
int32_t tfc_tokenizer_end_of_text(const tfc_tokenizer *t) { return t ? t->end_of_text : -1; }
const char *tfc_tokenizer_error(const tfc_tokenizer *t) { return t ? t->error : t_open_error; }
// For the model host, when its own check after opening fails.
void tfc_tokenizer_set_open_error(const char *message);
void tfc_tokenizer_set_open_error(const char *message) { snprintf(t_open_error, ERROR_BYTES, "%s", message); }

const uint8_t *tfc_tokenizer_token_bytes(const tfc_tokenizer *t, int32_t id, size_t *length) {
    size_t n = 0;
    const uint8_t *s = t ? token(t, id, &n) : NULL;
    if (length) *length = n;
    return s;
}

// ---- Unicode over the side file's tables ---------------------------------------------------

static uint32_t decode_scalar(const uint8_t *s, size_t *len) {
    uint8_t b0 = s[0];
    if (b0 < 0x80) { *len = 1; return b0; }
    if (b0 < 0xE0) { *len = 2; return (uint32_t)(b0 & 0x1F) << 6 | (s[1] & 0x3F); }
    if (b0 < 0xF0) { *len = 3; return (uint32_t)(b0 & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F); }
    *len = 4;
    return (uint32_t)(b0 & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 | (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
}

// The row of a (start, end, ...) range table holding v, or -1.
static long in_ranges(const table *r, size_t width, uint32_t v) {
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const uint32_t *e = r->v + width * mid;
        if (v < e[0]) hi = mid;
        else if (v >= e[1]) lo = mid + 1;
        else return (long)mid;
    }
    return -1;
}

static int char_class(const tfc_tokenizer *t, const uint8_t *s, size_t *len) {
    if (s[0] < 0x80) { *len = 1; return t->ascii_class[s[0]]; }
    uint32_t v = decode_scalar(s, len);
    size_t lo = 0, hi = t->classes.n;
    while (hi - lo > 1) { size_t mid = (lo + hi) / 2; if (t->classes.v[2 * mid] <= v) lo = mid; else hi = mid; }
    return (int)t->classes.v[2 * lo + 1];
}

static uint32_t combining_class(const tfc_tokenizer *t, uint32_t v) {
    if (v < 0x300) return 0;
    long i = in_ranges(&t->combining, 3, v);
    return i < 0 ? 0 : t->combining.v[3 * i + 2];
}

static int is_stable(const tfc_tokenizer *t, uint32_t v) { return v < 0x300 || in_ranges(&t->unstable, 2, v) < 0; }

static uint32_t composite(const tfc_tokenizer *t, uint32_t a, uint32_t b) {
    if (a >= 0x1100 && a <= 0x1112 && b >= 0x1161 && b <= 0x1175) return 0xAC00 + ((a - 0x1100) * 21 + (b - 0x1161)) * 28;
    if (a >= 0xAC00 && a <= 0xD7A3 && (a - 0xAC00) % 28 == 0 && b >= 0x11A8 && b <= 0x11C2) return a + (b - 0x11A7);
    if (b < 0x300) return 0;
    size_t lo = 0, hi = t->composition.n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const uint32_t *e = t->composition.v + 3 * mid;
        if (e[0] == a && e[1] == b) return e[2];
        if (e[0] < a || (e[0] == a && e[1] < b)) lo = mid + 1; else hi = mid;
    }
    return 0;
}

static int append_bytes(tfc_tokenizer *t, const uint8_t *s, size_t n, size_t *used) {
    if (grow((void **)&t->normalized, &t->normalized_cap, *used + n, 1)) return -1;
    memcpy(t->normalized + *used, s, n);
    *used += n;
    return 0;
}

static size_t put_utf8(uint32_t v, uint8_t *o) {
    if (v < 0x80) { o[0] = (uint8_t)v; return 1; }
    if (v < 0x800) { o[0] = (uint8_t)(0xC0 | v >> 6); o[1] = (uint8_t)(0x80 | (v & 0x3F)); return 2; }
    if (v < 0x10000) { o[0] = (uint8_t)(0xE0 | v >> 12); o[1] = (uint8_t)(0x80 | (v >> 6 & 0x3F)); o[2] = (uint8_t)(0x80 | (v & 0x3F)); return 3; }
    o[0] = (uint8_t)(0xF0 | v >> 18); o[1] = (uint8_t)(0x80 | (v >> 12 & 0x3F)); o[2] = (uint8_t)(0x80 | (v >> 6 & 0x3F)); o[3] = (uint8_t)(0x80 | (v & 0x3F));
    return 4;
}

// NFC of the UTF-8 characters s[0..n) (one unstable stretch), appended: decomposition, canonical
// ordering, composition (Unicode §3.11), as NFC.normalize([UInt32]) does.
static int normalize_stretch(tfc_tokenizer *t, const uint8_t *s, size_t n, size_t *used) {
    size_t count = 0, i = 0;
    while (i < n) {
        size_t l;
        uint32_t v = decode_scalar(s + i, &l);
        i += l;
        if (grow((void **)&t->decomposed, &t->decomposed_cap, count + 32, sizeof(uint32_t))) return -1;
        if (v >= 0xAC00 && v <= 0xD7A3) {
            uint32_t index = v - 0xAC00, trail = index % 28;
            t->decomposed[count++] = 0x1100 + index / 588;
            t->decomposed[count++] = 0x1161 + (index % 588) / 28;
            if (trail) t->decomposed[count++] = 0x11A7 + trail;
            continue;
        }
        long row = -1;
        if (v >= 0xC0) {
            size_t lo = 0, hi = t->decomposition.n;
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                uint32_t key = t->decomposition.v[3 * mid];
                if (key == v) { row = (long)mid; break; }
                if (key < v) lo = mid + 1; else hi = mid;
            }
        }
        if (row < 0) { t->decomposed[count++] = v; continue; }
        const uint32_t *e = t->decomposition.v + 3 * row;
        memcpy(t->decomposed + count, t->pool.v + e[1], e[2] * sizeof(uint32_t));
        count += e[2];
    }
    uint32_t *d = t->decomposed;
    // Canonical ordering: each run of non-starters, stably sorted by combining class (insertion sort).
    for (size_t k = 1; k < count; k++) {
        uint32_t c = combining_class(t, d[k]);
        if (c == 0) continue;
        uint32_t v = d[k];
        size_t j = k;
        while (j > 0) {
            uint32_t p = combining_class(t, d[j - 1]);
            if (p == 0 || p <= c) break;
            d[j] = d[j - 1];
            j--;
        }
        d[j] = v;
    }
    // Canonical composition, in place: each character joins the last starter unless something between blocks it.
    size_t out = 0;
    long starter = -1;
    uint32_t last_class = 0;
    for (size_t k = 0; k < count; k++) {
        uint32_t c = d[k], cc = combining_class(t, c);
        if (starter >= 0) {
            int adjacent = (long)out - 1 == starter;
            uint32_t p;
            if ((adjacent || last_class < cc) && (p = composite(t, d[starter], c)) != 0) { d[starter] = p; continue; }
        }
        if (cc == 0) starter = (long)out;
        last_class = cc;
        d[out++] = c;
    }
    if (grow((void **)&t->normalized, &t->normalized_cap, *used + out * 4, 1)) return -1;
    for (size_t k = 0; k < out; k++) *used += put_utf8(d[k], t->normalized + *used);
    return 0;
}

// NFC of s[0..n) into t->normalized: stable characters copied, each unstable stretch (from the
// last stable character before it) normalised, as NFC.normalize(_:_:into:) does.
static int normalize(tfc_tokenizer *t, const uint8_t *s, size_t n, size_t *used) {
    size_t emitted = 0, stretch = 0, i = 0;
    int unstable = 0;
    while (i < n) {
        size_t l;
        uint32_t v = decode_scalar(s + i, &l);
        if (is_stable(t, v)) {
            if (unstable) {
                if (append_bytes(t, s + emitted, stretch - emitted, used) || normalize_stretch(t, s + stretch, i - stretch, used)) return -1;
                emitted = i;
                unstable = 0;
            }
            stretch = i;
        } else {
            unstable = 1;
        }
        i += l;
    }
    if (unstable) return append_bytes(t, s + emitted, stretch - emitted, used) || normalize_stretch(t, s + stretch, n - stretch, used) ? -1 : 0;
    return append_bytes(t, s + emitted, n - emitted, used);
}

// ---- Encoding -----------------------------------------------------------------------------

static void emit(tfc_tokenizer *t, int32_t id) {
    if (grow((void **)&t->out, &t->out_cap, t->out_len + 1, sizeof(int32_t))) { t->failed = 1; return; }
    t->out[t->out_len++] = id;
}

static int lookup_merge(const tfc_tokenizer *t, int32_t a, int32_t b, int32_t *rank, int32_t *merged) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t slot = merge_hash(key) & t->merge_mask;
    for (;;) {
        uint64_t k = t->merge_keys[slot];
        if (k == key) { *rank = t->merge_rank[slot]; *merged = t->merge_id[slot]; return 1; }
        if (k == UINT64_MAX) return 0;
        slot = (slot + 1) & t->merge_mask;
    }
}

static void heap_push(tfc_tokenizer *t, int32_t rank, size_t pos) {
    if (grow((void **)&t->heap, &t->heap_cap, t->heap_len + 1, sizeof(uint64_t))) { t->failed = 1; return; }
    uint64_t *h = t->heap;
    size_t c = t->heap_len++;
    h[c] = (uint64_t)(uint32_t)rank << 32 | pos;
    while (c > 0) {
        size_t p = (c - 1) / 2;
        if (h[p] <= h[c]) break;
        uint64_t x = h[p]; h[p] = h[c]; h[c] = x;
        c = p;
    }
}

static uint64_t heap_pop(tfc_tokenizer *t) {
    uint64_t *h = t->heap;
    uint64_t top = h[0];
    h[0] = h[--t->heap_len];
    size_t p = 0, n = t->heap_len;
    for (;;) {
        size_t l = 2 * p + 1, s;
        if (l >= n) break;
        s = l + 1 < n && h[l + 1] < h[l] ? l + 1 : l;
        if (h[p] <= h[s]) break;
        uint64_t x = h[p]; h[p] = h[s]; h[s] = x;
        p = s;
    }
    return top;
}

// BPE of one pre-token (BPEWord.encode): single-byte symbols in a linked list, merges popped by (rank, position).
static void encode_word(tfc_tokenizer *t, const uint8_t *s, size_t n) {
    if (n == 1) { if (t->byte_ids[s[0]] >= 0) emit(t, t->byte_ids[s[0]]); return; }
    if (t->word_slots) {
        size_t slot = bytes_hash(s, n) & t->word_mask;
        while (t->word_slots[slot] >= 0) {
            size_t m;
            const uint8_t *o = token(t, t->word_slots[slot], &m);
            if (m == n && !memcmp(o, s, n)) { emit(t, t->word_slots[slot]); return; }
            slot = (slot + 1) & t->word_mask;
        }
    }
    if (n > t->word_cap) {
        size_t cap = n < 64 ? 64 : n;
        int32_t *ids = realloc(t->ids, cap * 4), *prev = ids ? realloc(t->prev, cap * 4) : NULL, *next = prev ? realloc(t->next, cap * 4) : NULL;
        if (ids) t->ids = ids;
        if (prev) t->prev = prev;
        if (next) t->next = next;
        uint8_t *alive = next ? realloc(t->alive, cap) : NULL;
        if (!alive) { t->failed = 1; return; }
        t->alive = alive;
        t->word_cap = cap;
    }
    int32_t *ids = t->ids, *prev = t->prev, *next = t->next;
    uint8_t *alive = t->alive;
    size_t count = 0;
    for (size_t i = 0; i < n; i++) if (t->byte_ids[s[i]] >= 0) ids[count++] = t->byte_ids[s[i]];  // bytes without a token are dropped
    if (count == 0) return;
    for (size_t i = 0; i < count; i++) { prev[i] = (int32_t)i - 1; next[i] = i + 1 < count ? (int32_t)i + 1 : -1; alive[i] = 1; }
    t->heap_len = 0;
    int32_t rank, merged;
    for (size_t i = 0; i + 1 < count; i++) if (lookup_merge(t, ids[i], ids[i + 1], &rank, &merged)) heap_push(t, rank, i);
    while (t->heap_len) {
        uint64_t top = heap_pop(t);
        int32_t want = (int32_t)(top >> 32);
        size_t pos = (uint32_t)top;
        if (!alive[pos] || next[pos] < 0) continue;
        size_t right = (size_t)next[pos];
        // Stale when either side has changed since it was pushed.
        if (!lookup_merge(t, ids[pos], ids[right], &rank, &merged) || rank != want) continue;
        ids[pos] = merged;
        alive[right] = 0;
        int32_t after = next[right];
        next[pos] = after;
        if (after >= 0) prev[after] = (int32_t)pos;
        int32_t before = prev[pos];
        if (before >= 0 && lookup_merge(t, ids[before], ids[pos], &rank, &merged)) heap_push(t, rank, (size_t)before);
        if (after >= 0 && lookup_merge(t, ids[pos], ids[after], &rank, &merged)) heap_push(t, rank, pos);
    }
    for (int32_t i = 0; i >= 0; i = next[i]) emit(t, ids[i]);
}

// The GPT-2 pattern 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ (PreTokenizer.split).
static void pre_tokenize(tfc_tokenizer *t, const uint8_t *s, size_t end) {
    size_t i = 0;
    while (i < end) {
        size_t start = i, length;
        int cls = char_class(t, s + i, &length);
        if (s[i] == '\'' && i + 1 < end) {
            uint8_t c1 = s[i + 1];
            if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') { encode_word(t, s + i, 2); i += 2; continue; }
            if (i + 2 < end) {
                uint8_t c2 = s[i + 2];
                if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) { encode_word(t, s + i, 3); i += 3; continue; }
            }
        }
        int run = cls;
        size_t run_start = i;
        if (s[i] == ' ' && i + 1 < end) {
            size_t l;
            int next = char_class(t, s + i + 1, &l);
            if (next != SPACE) { run = next; run_start = i + 1; }
        }
        if (run != SPACE) {
            size_t j = run_start;
            while (j < end) {
                size_t l;
                if (char_class(t, s + j, &l) != run) break;
                j += l;
            }
            encode_word(t, s + start, j - start);
            i = j;
            continue;
        }
        size_t j = i + length, last = i;
        while (j < end) {
            size_t l;
            if (char_class(t, s + j, &l) != SPACE) break;
            last = j;
            j += l;
        }
        if (j < end && last > start) j = last;
        encode_word(t, s + start, j - start);
        i = j;
    }
}

// Cuts s[0..n) at the added tokens of `list` (leftmost, then longest; the first listed among
// equals), calling `text` for what lies between and emitting the tokens.
static void split_added(tfc_tokenizer *t, const table *list, const uint8_t *starts, const uint8_t *s, size_t n,
                        void (*text)(tfc_tokenizer *, const uint8_t *, size_t)) {
    size_t text_start = 0, i = 0;
    while (i < n && list->n) {
        if (!starts[s[i]]) { i++; continue; }
        size_t best = 0;
        int32_t best_id = -1;
        for (size_t k = 0; k < list->n; k++) {
            const uint32_t *e = list->v + 3 * k;
            if (e[2] > best && e[2] <= n - i && !memcmp(t->blob + e[1], s + i, e[2])) { best = e[2]; best_id = (int32_t)e[0]; }
        }
        if (!best) { i++; continue; }
        if (text_start < i) text(t, s + text_start, i - text_start);
        emit(t, best_id);
        i += best;
        text_start = i;
    }
    if (text_start < n) text(t, s + text_start, n - text_start);
}

static void encode_normalized(tfc_tokenizer *t, const uint8_t *s, size_t n) {
    split_added(t, &t->normalized_added, t->normalized_starts, s, n, pre_tokenize);
}

static void encode_normalizable(tfc_tokenizer *t, const uint8_t *s, size_t n) {
    int needs = 0;  // below U+0300 (lead bytes under 0xCC) every character is NFC and stays so
    if (t->flags & 1) for (size_t i = 0; i < n && !needs; i++) needs = s[i] >= 0xCC;
    if (!needs) { encode_normalized(t, s, n); return; }
    size_t used = 0;
    if (normalize(t, s, n, &used)) { t->failed = 1; return; }
    // The normalised text is consumed before the next piece reuses the buffer.
    encode_normalized(t, t->normalized, used);
}

int64_t tfc_tokenizer_encode(tfc_tokenizer *t, const char *text, size_t length, int32_t *ids, int64_t capacity) {
    if (!t) return -1;
    t->error[0] = 0;
    if (!text && length) { set_error(t->error, "the text is NULL"); return -1; }
    if (!ids) capacity = 0;
    const uint8_t *s = (const uint8_t *)text;
    size_t valid = tfc_utf8_valid_prefix(s, length);
    if (valid != length) {
        set_error(t->error, "the text is not valid UTF-8 (byte %zu of %zu)", valid + 1, length);
        return -1;
    }
    t->out_len = 0;
    t->failed = 0;
    split_added(t, &t->raw_added, t->raw_starts, s, length, encode_normalizable);
    if (t->failed) { set_error(t->error, "out of memory while tokenizing %zu bytes", length); return -1; }
    size_t copy = capacity < 0 ? 0 : (size_t)capacity < t->out_len ? (size_t)capacity : t->out_len;
    if (copy) memcpy(ids, t->out, copy * sizeof(int32_t));
    return (int64_t)t->out_len;
}

int64_t tfc_tokenizer_decode(tfc_tokenizer *t, const int32_t *ids, int64_t count, char *out, size_t capacity) {
    if (!t) return -1;
    t->error[0] = 0;
    if (!ids && count > 0) { set_error(t->error, "the ids are NULL"); return -1; }
    size_t total = 0;
    for (int64_t i = 0; i < count; i++) {
        size_t n;
        if (!token(t, ids[i], &n)) {
            set_error(t->error, "token id %d (item %lld) is not in the tokenizer (ids 0..<%lld)", ids[i], (long long)i + 1, (long long)t->vocab);
            return -1;
        }
        total += n;
    }
    uint8_t *raw = malloc(total ? total : 1), *text = malloc(3 * total + 1);
    if (!raw || !text) { free(raw); free(text); set_error(t->error, "out of memory"); return -1; }
    size_t at = 0;
    for (int64_t i = 0; i < count; i++) {
        size_t n;
        const uint8_t *b = token(t, ids[i], &n);
        memcpy(raw + at, b, n);
        at += n;
    }
    size_t len = tfc_utf8_replace_invalid(raw, total, text);
    if (out && capacity) {
        size_t copy = len < capacity ? len : capacity;
        memcpy(out, text, copy);
        if (len < capacity) out[len] = 0;
    }
    free(raw);
    free(text);
    return (int64_t)len;
}
