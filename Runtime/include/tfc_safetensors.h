// Reading safetensors weight files: mmap'd read-only, header validated up front, tensors
// exposed zero-copy. Every failure is one line of text in a caller-provided buffer; a bad
// file never crashes the process (compiled models load user-supplied weights).
#pragma once
#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// Element types tfc can compute with. Integer and other dtypes are rejected at open time.
typedef enum {
    TFC_DTYPE_F32 = 0,
    TFC_DTYPE_F16 = 1,
    TFC_DTYPE_BF16 = 2,
} tfc_dtype;

// One tensor of an open file. All pointers stay valid until tfc_st_close.
typedef struct {
    const char *name;      // NUL-terminated UTF-8
    tfc_dtype dtype;
    int32_t ndim;          // 0 for a scalar
    const int64_t *shape;  // ndim entries, each >= 0
    int64_t numel;         // product of shape (1 for a scalar)
    const void *data;      // into the mapping; 8-byte aligned relative to the file start at best
    size_t nbytes;         // numel * tfc_dtype_size(dtype)
} tfc_tensor;

typedef struct tfc_safetensors tfc_safetensors;  // opaque

// Opens and validates PATH. On failure returns NULL and writes one line (no path prefix,
// no trailing newline) into err[errlen].
tfc_safetensors *tfc_st_open(const char *path, char *err, size_t errlen);
// Same validation over a caller-owned buffer (e.g. weights embedded in an executable);
// the buffer must outlive the handle.
tfc_safetensors *tfc_st_open_memory(const void *bytes, size_t len, char *err, size_t errlen);
// Unmaps the file and frees everything, including converted F32 copies. NULL is ignored.
void tfc_st_close(tfc_safetensors *st);

int32_t tfc_st_count(const tfc_safetensors *st);
// Tensors in header order; NULL if i is out of range.
const tfc_tensor *tfc_st_tensor(const tfc_safetensors *st, int32_t i);
// Index of the tensor called NAME, or -1 (binary search over a sorted index).
int32_t tfc_st_find(const tfc_safetensors *st, const char *name);

// The "__metadata__" string map, in header order.
int32_t tfc_st_metadata_count(const tfc_safetensors *st);
const char *tfc_st_metadata_key(const tfc_safetensors *st, int32_t i);
const char *tfc_st_metadata_value(const tfc_safetensors *st, int32_t i);
// Value for KEY or NULL.
const char *tfc_st_metadata_get(const tfc_safetensors *st, const char *key);

// Tensor i as 4-byte-aligned F32: the mapping itself for aligned F32 data (zero copy),
// otherwise (F16, BF16, misaligned F32) a 64-byte-aligned copy converted on first call and
// owned by the handle. NULL only if i is out of range or memory runs out (message in err).
// Not thread-safe on first call for a tensor; convert up front if several threads load.
const float *tfc_st_f32(tfc_safetensors *st, int32_t i, char *err, size_t errlen);

// "F32", "F16", "BF16".
const char *tfc_dtype_name(tfc_dtype dtype);
// Bytes per element: 4, 2, 2.
size_t tfc_dtype_size(tfc_dtype dtype);

// IEEE binary16 -> binary32, exact for all inputs (subnormals, inf, NaN with payload).
float tfc_f16_to_f32(uint16_t h);
// bfloat16 is the top half of a binary32, so conversion is a shift (exact).
float tfc_bf16_to_f32(uint16_t b);
// Bulk versions; src need not be aligned (elements are read via memcpy).
void tfc_f16_to_f32_n(const void *src, float *dst, size_t n);
void tfc_bf16_to_f32_n(const void *src, float *dst, size_t n);

#ifdef __cplusplus
}
#endif
