// Generated tokens as text while they come: each token's bytes are written as soon as they complete
// UTF-8 characters, an unfinished character held back until its last byte arrives (the C twin of
// TFTokenizer's StreamingDecoder). Bytes that can never be UTF-8 are written as U+FFFD.
#pragma once
#include "tfc_tokenizer.h"

#include <stdio.h>

typedef struct {
    const tfc_tokenizer *tokenizer;
    FILE *out;
    uint8_t pending[8];
    size_t pending_len;
} tfc_text_stream;

void tfc_text_stream_init(tfc_text_stream *stream, const tfc_tokenizer *tokenizer, FILE *out);

// Writes what the token completes (an id past the tokenizer's, in a padded vocabulary, has no text).
// Returns 0, or -1 when writing failed or memory ran out.
int tfc_text_stream_token(tfc_text_stream *stream, int32_t id);

// Writes what is left (an unfinished character as U+FFFD) and flushes.
int tfc_text_stream_finish(tfc_text_stream *stream);
