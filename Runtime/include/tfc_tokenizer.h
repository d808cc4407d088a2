// The tokenizer of a compiled model: byte-level BPE (GPT-2 / GPT-NeoX / Pythia) over the side file
// `tfc compile` writes beside the model (NAME.tokenizer, from the spec's tokenizer.json). It gives
// the ids tfc's Swift tokenizer and Hugging Face `tokenizers` give: NFC, the GPT-2 pre-tokenizer,
// merges by rank, added tokens. Only libc; the Unicode tables come from the side file.
//
//     tfc_tokenizer *t = tfc_model_tokenizer_open(NULL);   // NULL: NAME.tokenizer next to the library
//     if (!t) { fprintf(stderr, "%s\n", tfc_tokenizer_error(NULL)); exit(1); }
//     int64_t n = tfc_tokenizer_encode(t, text, strlen(text), ids, capacity);  // n > capacity: call again with more
//     int64_t bytes = tfc_tokenizer_decode(t, ids, n, out, out_capacity);       // UTF-8, NUL-terminated if it fits
//     tfc_tokenizer_close(t);
//
// Functions returning int64_t return -1 on failure; tfc_tokenizer_error(t) then says why in one
// line. A tokenizer must not be used by two threads at once (it keeps scratch space).
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tfc_tokenizer tfc_tokenizer;  // opaque

// Reads a tokenizer side file. NULL on failure, with the reason in tfc_tokenizer_error(NULL) (per thread).
tfc_tokenizer *tfc_tokenizer_open(const char *path);

// The same, for a compiled model: NULL opens NAME.tokenizer next to the library (or executable).
tfc_tokenizer *tfc_model_tokenizer_open(const char *path);

void tfc_tokenizer_close(tfc_tokenizer *tokenizer);

// The ids of `length` bytes of UTF-8 text (not valid UTF-8: -1). Writes at most `capacity` ids and
// returns how many the text has (more than capacity: nothing lost but the tail; call again).
int64_t tfc_tokenizer_encode(tfc_tokenizer *tokenizer, const char *text, size_t length, int32_t *ids, int64_t capacity);

// The text of `count` ids as UTF-8, each byte sequence that is not UTF-8 replaced by U+FFFD (as HF
// decodes). Writes at most `capacity` bytes (and a NUL when there is room) and returns the text's
// length in bytes. An id no token has: -1.
int64_t tfc_tokenizer_decode(tfc_tokenizer *tokenizer, const int32_t *ids, int64_t count, char *out, size_t capacity);

// The raw bytes of one token (not necessarily whole characters), or NULL when no token has the id.
const uint8_t *tfc_tokenizer_token_bytes(const tfc_tokenizer *tokenizer, int32_t id, size_t *length);

// One more than the largest id; the id of "<|endoftext|>" or -1.
int64_t tfc_tokenizer_vocab(const tfc_tokenizer *tokenizer);
int32_t tfc_tokenizer_end_of_text(const tfc_tokenizer *tokenizer);

// The last failure on `tokenizer` as one line; with NULL, the calling thread's last open failure.
const char *tfc_tokenizer_error(const tfc_tokenizer *tokenizer);

#ifdef __cplusplus
}
#endif
