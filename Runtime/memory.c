// Aligned allocation and the bump arena; see tfc_memory.h.
// POSIX: mmap, O_CLOEXEC, posix_memalign, even under a strict -std=c11.
#define _POSIX_C_SOURCE 200809L
#include "tfc_memory.h"
#include <stdlib.h>

void *tfc_aligned_alloc(size_t size) {
    void *p = NULL;
    // posix_memalign(…, 0) may return NULL; round up so callers can treat NULL as failure.
    if (posix_memalign(&p, TFC_ALIGNMENT, size ? size : TFC_ALIGNMENT) != 0) return NULL;
    return p;
}

void tfc_aligned_free(void *p) { free(p); }

tfc_arena *tfc_arena_create(size_t capacity) {
    tfc_arena *a = malloc(sizeof *a);
    if (!a) return NULL;
    a->base = tfc_aligned_alloc(capacity);
    if (!a->base) { free(a); return NULL; }
    a->capacity = capacity;
    a->used = 0;
    a->high_water = 0;
    return a;
}

void *tfc_arena_alloc(tfc_arena *a, size_t size, size_t alignment) {
    if (!a) return NULL;
    if (alignment == 0) alignment = TFC_ALIGNMENT;
    if (alignment & (alignment - 1)) return NULL;
    // base is 64-byte aligned, so aligning the offset aligns the address for alignment <= 64;
    // larger alignments are handled by aligning the absolute address.
    uintptr_t addr = (uintptr_t)a->base + a->used;
    uintptr_t aligned = (addr + (alignment - 1)) & ~(uintptr_t)(alignment - 1);
    size_t offset = (size_t)(aligned - (uintptr_t)a->base);
    if (offset > a->capacity || size > a->capacity - offset) return NULL;
    a->used = offset + size;
    if (a->used > a->high_water) a->high_water = a->used;
    return a->base + offset;
}

void tfc_arena_reset(tfc_arena *a) { if (a) a->used = 0; }

void tfc_arena_destroy(tfc_arena *a) {
    if (!a) return;
    tfc_aligned_free(a->base);
    free(a);
}
