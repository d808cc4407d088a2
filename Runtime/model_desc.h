// What `tfc compile` puts into a compiled model besides its kernels, and the layout of the
// packed weights side file (NAME.weights). Private to the model host (model_host.c); the
// Swift side that writes both is Sources/TFCodegen/AOTModel.swift: keep the two in step and
// bump TFC_AOT_FORMAT_VERSION when either changes.
#pragma once
#include <stdint.h>

#define TFC_AOT_FORMAT_VERSION 2

// The generated program: `void f(void *const *table, int64_t T, int64_t p0)`, one table entry
// per slot (Sources/TFCodegen/ModelProgram.swift).
void tfc_model_forward(void *const *table, int64_t T, int64_t p0);
void tfc_model_forward_last(void *const *table, int64_t T, int64_t p0);

// tfc_aot_info[]: the model's sizes and layout, indexed by these.
enum {
    TFC_AOT_FORMAT = 0,      // TFC_AOT_FORMAT_VERSION
    TFC_AOT_VOCAB,
    TFC_AOT_HIDDEN,
    TFC_AOT_CONTEXT,
    TFC_AOT_END_TOKEN,       // -1: none
    TFC_AOT_SLOT_COUNT,
    TFC_AOT_ARENA_BYTES,     // activations, scratch and KV caches, one zeroed block
    TFC_AOT_WEIGHTS_BYTES,   // the size of the weights file
    TFC_AOT_WEIGHT_COUNT,    // entries in the weights file
    TFC_AOT_LAYOUT_HASH,     // FNV-1a 64 of the slot and weight layout (also in the file)
    TFC_AOT_LAST_ROW_ONLY,   // 1: tfc_model_forward_last writes one logits row, else T rows
    TFC_AOT_INCREMENTAL,     // 1: continuing from cached tokens computes the model; 0: non-causal, whole sequences only
    TFC_AOT_INFO_COUNT
};

// tfc_aot_slots[]: TFC_AOT_SLOT_FIELDS int64 per table slot: kind, byte offset (into the
// weights file for WEIGHT, into the arena for ARENA), size in floats (int32 for TOKENS),
// weight entry index (or -1).
enum { TFC_SLOT_WEIGHT = 0, TFC_SLOT_ARENA = 1, TFC_SLOT_TOKENS = 2, TFC_SLOT_LOGITS = 3 };
#define TFC_AOT_SLOT_FIELDS 4

extern const int64_t tfc_aot_info[TFC_AOT_INFO_COUNT];
extern const int64_t tfc_aot_slots[];
extern const char tfc_aot_name[];          // model name
extern const char tfc_aot_spec_hash[];     // hex
extern const char tfc_aot_target_cpu[];    // LLVM CPU name, or a level such as x86-64-v3
extern const char tfc_aot_target_label[];  // how to name the target in messages
extern const char tfc_aot_cpu_features[];  // required features, comma-separated (LLVM names)
extern const char tfc_aot_weights_file[];  // default weights file name
extern const char tfc_aot_tfc_version[];

// NAME.weights, little-endian:
//   tfc_weights_header (256 bytes) | entry_count x tfc_weights_entry (48 bytes) | names (NUL-
//   terminated) | padding | tensor data from data_offset (4096-aligned): every tensor starts on a
//   64-byte boundary, tensors of 1 MiB or more on a page (4096) boundary.
#define TFC_WEIGHTS_MAGIC "TFCWGHT1"
#define TFC_WEIGHTS_VERSION 1

typedef struct {
    char magic[8];           // TFC_WEIGHTS_MAGIC (no NUL)
    uint32_t version;        // TFC_WEIGHTS_VERSION
    uint32_t entry_count;
    uint64_t file_bytes;     // the whole file
    uint64_t data_offset;    // first tensor byte
    uint64_t layout_hash;    // = tfc_aot_info[TFC_AOT_LAYOUT_HASH]
    char spec_hash[64];      // = tfc_aot_spec_hash, NUL-padded
    char name[64];           // the model name, NUL-padded (truncated)
    uint8_t reserved[88];
} tfc_weights_header;

enum { TFC_WEIGHT_RAW = 0, TFC_WEIGHT_PACKED_TRANSPOSED = 1, TFC_WEIGHT_PACKED = 2 };

typedef struct {
    uint64_t offset;         // bytes from the file start
    uint64_t floats;
    uint32_t kind;           // TFC_WEIGHT_*
    uint32_t name_offset;    // into the names, which follow the entries
    uint32_t k, n, nr;       // panel layout of packed tensors (0 for raw)
    uint32_t reserved[3];
} tfc_weights_entry;

_Static_assert(sizeof(tfc_weights_header) == 256, "weights header is 256 bytes");
_Static_assert(sizeof(tfc_weights_entry) == 48, "weights entry is 48 bytes");
