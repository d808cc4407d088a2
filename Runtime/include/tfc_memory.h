// Memory for weights and activations: 64-byte alignment (one cache line, and the widest
// vector load the code generator emits) and a bump arena so a forward pass allocates its
// intermediates once and frees them all with one reset.
#pragma once
#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TFC_ALIGNMENT 64

// 64-byte aligned allocation; NULL on failure. size 0 returns a valid, freeable pointer.
void *tfc_aligned_alloc(size_t size);
// Frees a tfc_aligned_alloc pointer; NULL is ignored.
void tfc_aligned_free(void *p);

// A bump allocator over one 64-byte aligned block. Not thread-safe: give each thread its own
// or allocate before fanning out.
typedef struct tfc_arena {
    uint8_t *base;
    size_t capacity;
    size_t used;
    size_t high_water;  // the most ever used, to size the next arena exactly
} tfc_arena;

// NULL if the block cannot be allocated.
tfc_arena *tfc_arena_create(size_t capacity);
// `alignment` must be a power of two (0 means TFC_ALIGNMENT). NULL when the arena is full:
// the arena never grows, because pointers into it must stay valid.
void *tfc_arena_alloc(tfc_arena *arena, size_t size, size_t alignment);
// Forgets every allocation (the memory is reused by the next ones).
void tfc_arena_reset(tfc_arena *arena);
void tfc_arena_destroy(tfc_arena *arena);

#ifdef __cplusplus
}
#endif
