// Streaming text output of generated tokens (include/tfc_text_stream.h).
#include "tfc_text_stream.h"
#include "tfc_utf8.h"

#include <stdlib.h>
#include <string.h>

void tfc_text_stream_init(tfc_text_stream *s, const tfc_tokenizer *tokenizer, FILE *out) {
    s->tokenizer = tokenizer;
    s->out = out;
    s->pending_len = 0;
}

// Writes bytes[0..n) with ill-formed sequences replaced.
static int write_text(FILE *out, const uint8_t *bytes, size_t n) {
    if (n == 0) return 0;
    uint8_t *text = malloc(3 * n);
    if (!text) return -1;
    size_t len = tfc_utf8_replace_invalid(bytes, n, text);
    int ok = fwrite(text, 1, len, out) == len;
    free(text);
    return ok ? 0 : -1;
}

int tfc_text_stream_token(tfc_text_stream *s, int32_t id) {
    size_t n = 0;
    const uint8_t *bytes = tfc_tokenizer_token_bytes(s->tokenizer, id, &n);
    if (!bytes || n == 0) return 0;
    uint8_t *all = malloc(s->pending_len + n);
    if (!all) return -1;
    memcpy(all, s->pending, s->pending_len);
    memcpy(all + s->pending_len, bytes, n);
    size_t total = s->pending_len + n, keep = tfc_utf8_incomplete_tail(all, total);
    int rc = write_text(s->out, all, total - keep);
    memcpy(s->pending, all + total - keep, keep);
    s->pending_len = keep;
    free(all);
    if (rc == 0 && fflush(s->out) != 0) rc = -1;
    return rc;
}

int tfc_text_stream_finish(tfc_text_stream *s) {
    int rc = write_text(s->out, s->pending, s->pending_len);
    s->pending_len = 0;
    if (fputc('\n', s->out) == EOF) rc = -1;
    if (fflush(s->out) != 0) rc = -1;
    return rc;
}
