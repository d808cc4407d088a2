// The C API of a compiled model: what `tfc compile SPEC --weights W -o libNAME.so --emit shared`
// exports (and what a compiled executable's main uses). A copy of this header, with the model's
// constants added, is written next to the library as NAME.h.
//
// One model instance holds the weights (mmap'd read-only from NAME.weights, the packed side
// file tfc compile writes), its activation buffers and its KV cache. Tokens are evaluated at
// the instance's current position (0 after create and reset) and appended to the KV cache, so
//
//     tfc_model *m = tfc_model_create(NULL);                 // NULL: NAME.weights next to the library
//     if (!m) { fprintf(stderr, "%s\n", tfc_model_error(NULL)); exit(1); }
//     float *logits = malloc(sizeof(float) * n * tfc_model_describe()->vocab);
//     tfc_model_eval(m, prompt, n, logits);                  // logits of every prompt row [n, vocab]
//     tfc_model_decode(m, next, logits);                     // one more token: [vocab]
//     tfc_model_reset(m);                                    // forget the cache (position 0)
//     tfc_model_destroy(m);
//
// Functions returning int return 0 on success and -1 on failure; tfc_model_error(m) then
// describes the failure in one line. A failed call leaves the position unchanged.
// An instance must not be used by two threads at once; separate instances are independent
// (the kernels share one process-wide thread pool). The library must not be dlclose'd
// (it is linked with -z nodelete: its worker threads live as long as the process).
// tfc itself does not implement this API (its TFRuntime target compiles model_host.c empty):
// only compiled models do.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TFC_MODEL_API_VERSION 1

typedef struct tfc_model tfc_model;  // opaque

// What the library was compiled from and for. Static: valid without a model instance.
typedef struct {
    int32_t api_version;       // TFC_MODEL_API_VERSION
    const char *name;          // the spec's model name
    int64_t vocab;             // logits per row
    int64_t hidden;
    int64_t context;           // the most tokens an instance holds (prompt + generated)
    int64_t end_token;         // the spec's end_token, or -1
    const char *spec_hash;     // hash of the spec it was compiled from (also in NAME.weights)
    const char *target_cpu;    // e.g. "x86-64-v3", or the build host's CPU name: of the variant this CPU runs (a build may hold an AVX-512 and an AVX2 one)
    const char *cpu_features;  // the CPU features the code needs, comma-separated
    const char *weights_file;  // default weights file name (looked up next to the library)
    const char *tfc_version;   // the tfc that compiled it
    const char *weights_format; // "f32", "bf16" or "int8": the packed weights it reads (tfc compile --weights-format)
    const char *kv_format;      // "f32" or "bf16": the KV cache's element type (tfc compile --kv)
} tfc_model_info;

const tfc_model_info *tfc_model_describe(void);

// Opens a model: checks the CPU has the features the code was built for, maps the weights
// file (NULL: the default weights_file in the library's / executable's directory) and checks
// it was written for this library (same spec hash and layout). Returns NULL on failure, with
// the reason in tfc_model_error(NULL) (per thread).
tfc_model *tfc_model_create(const char *weights_path);

// Evaluates `count` tokens at the current position and writes the logits of every one of them
// into `logits` ([count, vocab] floats, row-major, caller-owned). The position advances by count.
// A model with non-causal attention evaluates whole sequences only: at a position > 0 these
// calls fail (reset it first), since its earlier tokens would see the new ones.
int tfc_model_eval(tfc_model *model, const int32_t *tokens, int64_t count, float *logits);

// The same, but only the last token's logits ([vocab] floats): a prompt's prefill.
int tfc_model_eval_last(tfc_model *model, const int32_t *tokens, int64_t count, float *logits);

// Evaluates one token against the KV cache: the logits of the next token ([vocab] floats).
int tfc_model_decode(tfc_model *model, int32_t token, float *logits);

// Tokens held in the KV cache (the position the next token is evaluated at).
int64_t tfc_model_position(const tfc_model *model);

// Forgets every cached token (position 0). The weights stay mapped.
void tfc_model_reset(tfc_model *model);

// Unmaps the weights and frees the instance. NULL is ignored.
void tfc_model_destroy(tfc_model *model);

// The last failure on `model` as one line ("" if none); with NULL, the calling thread's last
// tfc_model_create failure.
const char *tfc_model_error(const tfc_model *model);

// Threads the kernels use (the caller included); n <= 0: one per online CPU. The default is
// the environment variable TFC_NUM_THREADS, else one per online CPU. Process-wide.
void tfc_model_set_threads(int n);

#ifdef __cplusplus
}
#endif
