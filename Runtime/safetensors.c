// safetensors reader: 8-byte little-endian header length, a JSON header mapping tensor
// names to {dtype, shape, data_offsets}, then the data section. See tfc_safetensors.h.
// POSIX: mmap, O_CLOEXEC, posix_memalign, even under a strict -std=c11.
#define _POSIX_C_SOURCE 200809L
#include "tfc_safetensors.h"
#include "tfc_memory.h"
#include "tfc_input_file.h"
#include "json.h"
#include "error_text.h"
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct tfc_safetensors {
    const uint8_t *base;     // start of the file bytes
    size_t size;             // file length
    void *map;               // mmap'd region (NULL for tfc_st_open_memory)
    tfc_tensor *tensors;
    float **converted;       // per tensor: owned F32 copy or NULL
    int32_t *sorted;         // tensor indices sorted by name, for tfc_st_find
    int32_t count, cap;
    char **meta_keys, **meta_values;
    int32_t meta_count, meta_cap;
};

// Writes the message and gives this file's failure return (0).
#define failf(err, errlen, ...) tfc_error_text(0, err, errlen, __VA_ARGS__)

const char *tfc_dtype_name(tfc_dtype dtype) {
    switch (dtype) {
    case TFC_DTYPE_F32: return "F32";
    case TFC_DTYPE_F16: return "F16";
    case TFC_DTYPE_BF16: return "BF16";
    }
    return "?";
}

size_t tfc_dtype_size(tfc_dtype dtype) { return dtype == TFC_DTYPE_F32 ? 4 : 2; }

float tfc_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FF, bits;
    if (exp == 0x1F) {
        bits = sign | 0x7F800000u | (mant << 13);              // inf / NaN (payload kept)
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (mant << 13);      // normal: rebias 15 -> 127
    } else if (mant == 0) {
        bits = sign;                                           // signed zero
    } else {
        // Subnormal half: value = mant * 2^-24; normalise into a float32 exponent.
        int e = -1;
        do { mant <<= 1; e++; } while (!(mant & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((mant & 0x3FF) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float tfc_bf16_to_f32(uint16_t b) {
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

void tfc_f16_to_f32_n(const void *src, float *dst, size_t n) {
    const uint8_t *p = src;
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        dst[i] = tfc_f16_to_f32(h);
    }
}

void tfc_bf16_to_f32_n(const void *src, float *dst, size_t n) {
    const uint8_t *p = src;
    for (size_t i = 0; i < n; i++) {
        uint16_t b;
        memcpy(&b, p + 2 * i, 2);
        dst[i] = tfc_bf16_to_f32(b);
    }
}

void tfc_st_close(tfc_safetensors *st) {
    if (!st) return;
    for (int32_t i = 0; i < st->count; i++) {
        free((void *)st->tensors[i].name);
        free((void *)st->tensors[i].shape);
        if (st->converted) tfc_aligned_free(st->converted[i]);
    }
    for (int32_t i = 0; i < st->meta_count; i++) { free(st->meta_keys[i]); free(st->meta_values[i]); }
    free(st->tensors); free(st->converted); free(st->sorted);
    free(st->meta_keys); free(st->meta_values);
    if (st->map) munmap(st->map, st->size);
    free(st);
}

// Formats "[a, b, c]" into buf (truncated with "..." if it does not fit).
static void format_dims(char *buf, size_t len, const int64_t *d, int32_t n) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, len - k, "[");
    for (int32_t i = 0; i < n && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, i ? ", %lld" : "%lld", (long long)d[i]);
    if (k < len) snprintf(buf + k, len - k, "]");
    else if (len > 4) memcpy(buf + len - 4, "...", 4);
}

static int push_tensor(tfc_safetensors *st, char *err, size_t errlen) {
    if (st->count < st->cap) return 1;
    int32_t cap = st->cap ? st->cap * 2 : 64;
    tfc_tensor *t = realloc(st->tensors, sizeof(tfc_tensor) * (size_t)cap);
    if (!t) return failf(err, errlen, "out of memory reading the header");
    st->tensors = t;
    st->cap = cap;
    return 1;
}

// Parses one tensor entry "{dtype, shape, data_offsets}" for NAME and validates it against
// the data section. Takes ownership of name.
static int parse_tensor(tfc_safetensors *st, tfc_json *j, char *name, size_t data_size,
                        char *err, size_t errlen) {
    char *dtype = NULL;
    int64_t *shape = NULL, *offsets = NULL;
    int32_t ndim = -1, noff = -1;
    int ok = 0;
    if (!tfc_json_expect(j, '{', "to start a tensor entry")) goto done;
    if (tfc_json_peek(j) == '}') { j->pos++; }
    else for (;;) {
        char *key = NULL;
        if (!tfc_json_string(j, &key)) goto done;
        if (!tfc_json_expect(j, ':', "after an object key")) { free(key); goto done; }
        if (strcmp(key, "dtype") == 0) {
            if (dtype) { failf(err, errlen, "tensor '%s': duplicate key 'dtype'", name); free(key); goto done; }
            if (tfc_json_peek(j) != '"') { failf(err, errlen, "tensor '%s': 'dtype' must be a string", name); free(key); goto done; }
            if (!tfc_json_string(j, &dtype)) { free(key); goto done; }
        } else if (strcmp(key, "shape") == 0 || strcmp(key, "data_offsets") == 0) {
            int is_shape = key[0] == 's';
            if (is_shape ? shape != NULL : offsets != NULL) {
                failf(err, errlen, "tensor '%s': duplicate key '%s'", name, key); free(key); goto done;
            }
            if (tfc_json_peek(j) != '[') {
                failf(err, errlen, "tensor '%s': '%s' must be an array of integers", name, key); free(key); goto done;
            }
            if (!(is_shape ? tfc_json_int_array(j, &shape, &ndim) : tfc_json_int_array(j, &offsets, &noff))) {
                free(key); goto done;
            }
        } else {
            failf(err, errlen, "tensor '%s': unknown key '%s' (expected dtype, shape, data_offsets)", name, key);
            free(key); goto done;
        }
        free(key);
        int c = tfc_json_peek(j);
        if (c == ',') { j->pos++; continue; }
        if (c == '}') { j->pos++; break; }
        tfc_json_fail(j, "expected ',' or '}' in a tensor entry");
        goto done;
    }
    if (!dtype) { failf(err, errlen, "tensor '%s': missing key 'dtype'", name); goto done; }
    if (!shape) { failf(err, errlen, "tensor '%s': missing key 'shape'", name); goto done; }
    if (!offsets) { failf(err, errlen, "tensor '%s': missing key 'data_offsets'", name); goto done; }

    tfc_dtype dt;
    if (strcmp(dtype, "F32") == 0) dt = TFC_DTYPE_F32;
    else if (strcmp(dtype, "F16") == 0) dt = TFC_DTYPE_F16;
    else if (strcmp(dtype, "BF16") == 0) dt = TFC_DTYPE_BF16;
    else { failf(err, errlen, "tensor '%s': non-float dtype '%s' (tfc reads F32, F16, BF16)", name, dtype); goto done; }

    int64_t numel = 1;
    for (int32_t d = 0; d < ndim; d++) {
        if (shape[d] < 0) { failf(err, errlen, "tensor '%s': negative dimension %lld in shape", name, (long long)shape[d]); goto done; }
        if (__builtin_mul_overflow(numel, shape[d], &numel)) { failf(err, errlen, "tensor '%s': shape is too large", name); goto done; }
    }
    int64_t nbytes;
    if (__builtin_mul_overflow(numel, (int64_t)tfc_dtype_size(dt), &nbytes)) {
        failf(err, errlen, "tensor '%s': shape is too large", name); goto done;
    }
    if (noff != 2) { failf(err, errlen, "tensor '%s': data_offsets must have 2 entries, found %d", name, noff); goto done; }
    int64_t begin = offsets[0], end = offsets[1];
    if (begin < 0 || end < 0) {
        failf(err, errlen, "tensor '%s': data_offsets [%lld, %lld] are negative", name, (long long)begin, (long long)end); goto done;
    }
    if (end < begin) {
        failf(err, errlen, "tensor '%s': data_offsets [%lld, %lld] end before they start", name, (long long)begin, (long long)end); goto done;
    }
    if ((uint64_t)end > data_size) {
        failf(err, errlen, "tensor '%s': data_offsets [%lld, %lld] exceed the data section (%zu bytes)",
              name, (long long)begin, (long long)end, data_size);
        goto done;
    }
    if (end - begin != nbytes) {
        char dims[128];
        format_dims(dims, sizeof dims, shape, ndim);
        failf(err, errlen, "tensor '%s': shape %s of %s needs %lld bytes but data_offsets [%lld, %lld] hold %lld",
              name, dims, dtype, (long long)nbytes, (long long)begin, (long long)end, (long long)(end - begin));
        goto done;
    }
    if (!push_tensor(st, err, errlen)) goto done;
    st->tensors[st->count++] = (tfc_tensor){
        .name = name, .dtype = dt, .ndim = ndim, .shape = shape, .numel = numel,
        .data = NULL /* set once the data section's base is known */, .nbytes = (size_t)nbytes,
    };
    // Stash the begin offset in data for now (the caller rebases it).
    st->tensors[st->count - 1].data = (const void *)(uintptr_t)begin;
    name = NULL; shape = NULL;
    ok = 1;
done:
    free(name); free(dtype); free(shape); free(offsets);
    return ok;
}

static int parse_metadata(tfc_safetensors *st, tfc_json *j, char *err, size_t errlen) {
    if (tfc_json_peek(j) != '{') return failf(err, errlen, "'__metadata__' must be an object of strings");
    j->pos++;
    if (tfc_json_peek(j) == '}') { j->pos++; return 1; }
    for (;;) {
        char *key = NULL, *value = NULL;
        if (!tfc_json_string(j, &key)) return 0;
        if (!tfc_json_expect(j, ':', "after an object key")) { free(key); return 0; }
        if (tfc_json_peek(j) != '"') {
            failf(err, errlen, "'__metadata__': value of '%s' must be a string", key);
            free(key); return 0;
        }
        if (!tfc_json_string(j, &value)) { free(key); return 0; }
        for (int32_t i = 0; i < st->meta_count; i++) if (strcmp(st->meta_keys[i], key) == 0) {
            failf(err, errlen, "'__metadata__': duplicate key '%s'", key);
            free(key); free(value); return 0;
        }
        if (st->meta_count == st->meta_cap) {
            int32_t cap = st->meta_cap ? st->meta_cap * 2 : 8;
            char **k = realloc(st->meta_keys, sizeof(char *) * (size_t)cap);
            if (k) st->meta_keys = k;
            char **v = realloc(st->meta_values, sizeof(char *) * (size_t)cap);
            if (v) st->meta_values = v;
            if (!k || !v) { free(key); free(value); return failf(err, errlen, "out of memory reading the header"); }
            st->meta_cap = cap;
        }
        st->meta_keys[st->meta_count] = key;
        st->meta_values[st->meta_count++] = value;
        int c = tfc_json_peek(j);
        if (c == ',') { j->pos++; continue; }
        if (c == '}') { j->pos++; return 1; }
        return tfc_json_fail(j, "expected ',' or '}' in '__metadata__'");
    }
}

// Sorting (name, index) pairs keeps qsort free of global context, so opens on several
// threads at once are safe.
typedef struct { const char *name; int32_t index; } name_index;
static int by_name(const void *a, const void *b) {
    return strcmp(((const name_index *)a)->name, ((const name_index *)b)->name);
}

// Validates and indexes the whole file image in st->base / st->size.
static int parse(tfc_safetensors *st, char *err, size_t errlen) {
    if (st->size < 8)
        return failf(err, errlen, "truncated file: %zu bytes, too short for the 8-byte header length", st->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | st->base[i];  // little-endian on any host
    if (hlen > st->size - 8)
        return failf(err, errlen, "truncated file: header declares %llu bytes but the file has %zu bytes",
                     (unsigned long long)hlen, st->size);
    size_t data_size = st->size - 8 - (size_t)hlen;
    const uint8_t *data = st->base + 8 + hlen;

    tfc_json j = { .s = (const char *)st->base + 8, .n = (size_t)hlen, .pos = 0, .err = err, .errlen = errlen };
    int seen_metadata = 0;
    if (!tfc_json_expect(&j, '{', "to start the header")) return 0;
    if (tfc_json_peek(&j) == '}') j.pos++;
    else for (;;) {
        char *key = NULL;
        if (!tfc_json_string(&j, &key)) return 0;
        if (!tfc_json_expect(&j, ':', "after an object key")) { free(key); return 0; }
        if (strcmp(key, "__metadata__") == 0) {
            free(key);
            if (seen_metadata) return failf(err, errlen, "duplicate '__metadata__'");
            seen_metadata = 1;
            if (!parse_metadata(st, &j, err, errlen)) return 0;
        } else if (!parse_tensor(st, &j, key, data_size, err, errlen)) {
            return 0;
        }
        int c = tfc_json_peek(&j);
        if (c == ',') { j.pos++; continue; }
        if (c == '}') { j.pos++; break; }
        return tfc_json_fail(&j, "expected ',' or '}' after a header entry");
    }
    if (tfc_json_peek(&j) != -1) return tfc_json_fail(&j, "unexpected data after the header object");

    for (int32_t i = 0; i < st->count; i++)
        st->tensors[i].data = data + (uintptr_t)st->tensors[i].data;
    st->sorted = malloc(sizeof(int32_t) * (size_t)(st->count ? st->count : 1));
    st->converted = calloc((size_t)(st->count ? st->count : 1), sizeof(float *));
    if (!st->sorted || !st->converted) return failf(err, errlen, "out of memory reading the header");
    name_index *pairs = malloc(sizeof(name_index) * (size_t)(st->count ? st->count : 1));
    if (!pairs) return failf(err, errlen, "out of memory reading the header");
    for (int32_t i = 0; i < st->count; i++) pairs[i] = (name_index){ st->tensors[i].name, i };
    qsort(pairs, (size_t)st->count, sizeof(name_index), by_name);
    for (int32_t i = 0; i < st->count; i++) st->sorted[i] = pairs[i].index;
    free(pairs);
    for (int32_t i = 1; i < st->count; i++) {
        const char *a = st->tensors[st->sorted[i - 1]].name, *b = st->tensors[st->sorted[i]].name;
        if (strcmp(a, b) == 0) return failf(err, errlen, "duplicate tensor name '%s'", a);
    }
    return 1;
}

tfc_safetensors *tfc_st_open_memory(const void *bytes, size_t len, char *err, size_t errlen) {
    tfc_safetensors *st = calloc(1, sizeof *st);
    if (!st) { failf(err, errlen, "out of memory"); return NULL; }
    st->base = bytes;
    st->size = len;
    if (!parse(st, err, errlen)) { tfc_st_close(st); return NULL; }
    return st;
}

tfc_safetensors *tfc_st_open(const char *path, char *err, size_t errlen) {
    // Checked before opening: a FIFO or a device would block or never end.
    int fd = tfc_input_open(path, err, errlen);
    if (fd < 0) return NULL;
    struct stat sb;
    if (fstat(fd, &sb) != 0) { failf(err, errlen, "cannot stat: %s", strerror(errno)); close(fd); return NULL; }
    size_t size = (size_t)sb.st_size;
    tfc_safetensors *st = calloc(1, sizeof *st);
    if (!st) { failf(err, errlen, "out of memory"); close(fd); return NULL; }
    if (size >= 8) {  // mmap of 0 bytes fails; parse() reports short files itself
        void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            failf(err, errlen, "cannot mmap: %s", strerror(errno));
            close(fd); free(st); return NULL;
        }
        st->map = map;
        st->base = map;
    } else {
        static const uint8_t empty[8];
        st->base = empty;
    }
    close(fd);  // the mapping keeps the file alive
    st->size = size;
    if (!parse(st, err, errlen)) { tfc_st_close(st); return NULL; }
    return st;
}

int32_t tfc_st_count(const tfc_safetensors *st) { return st ? st->count : 0; }

const tfc_tensor *tfc_st_tensor(const tfc_safetensors *st, int32_t i) {
    return (st && i >= 0 && i < st->count) ? &st->tensors[i] : NULL;
}

int32_t tfc_st_find(const tfc_safetensors *st, const char *name) {
    if (!st || !name) return -1;
    int32_t lo = 0, hi = st->count - 1;
    while (lo <= hi) {
        int32_t mid = lo + (hi - lo) / 2;
        int c = strcmp(st->tensors[st->sorted[mid]].name, name);
        if (c == 0) return st->sorted[mid];
        if (c < 0) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
}

int32_t tfc_st_metadata_count(const tfc_safetensors *st) { return st ? st->meta_count : 0; }
const char *tfc_st_metadata_key(const tfc_safetensors *st, int32_t i) {
    return (st && i >= 0 && i < st->meta_count) ? st->meta_keys[i] : NULL;
}
const char *tfc_st_metadata_value(const tfc_safetensors *st, int32_t i) {
    return (st && i >= 0 && i < st->meta_count) ? st->meta_values[i] : NULL;
}
const char *tfc_st_metadata_get(const tfc_safetensors *st, const char *key) {
    for (int32_t i = 0; st && key && i < st->meta_count; i++)
        if (strcmp(st->meta_keys[i], key) == 0) return st->meta_values[i];
    return NULL;
}

const float *tfc_st_f32(tfc_safetensors *st, int32_t i, char *err, size_t errlen) {
    if (!st || i < 0 || i >= st->count) { failf(err, errlen, "tensor index %d out of range", i); return NULL; }
    const tfc_tensor *t = &st->tensors[i];
    if (t->dtype == TFC_DTYPE_F32 && ((uintptr_t)t->data & 3) == 0) return t->data;
    if (st->converted[i]) return st->converted[i];
    float *dst = tfc_aligned_alloc(t->numel ? (size_t)t->numel * sizeof(float) : 64);
    if (!dst) { failf(err, errlen, "tensor '%s': out of memory converting to F32", t->name); return NULL; }
    switch (t->dtype) {
    case TFC_DTYPE_F32: memcpy(dst, t->data, t->nbytes); break;
    case TFC_DTYPE_F16: tfc_f16_to_f32_n(t->data, dst, (size_t)t->numel); break;
    case TFC_DTYPE_BF16: tfc_bf16_to_f32_n(t->data, dst, (size_t)t->numel); break;
    }
    st->converted[i] = dst;
    return dst;
}
