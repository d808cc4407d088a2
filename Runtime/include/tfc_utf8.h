// UTF-8 as the tokenizer and a compiled model's text output need it: checking input, holding back
// an unfinished character while streaming, and HF's lossy decoding of bytes that are not UTF-8.
#pragma once
#include <stddef.h>
#include <stdint.h>

// The length of the longest prefix of `s` that is valid UTF-8 (n when all of it is).
size_t tfc_utf8_valid_prefix(const uint8_t *s, size_t n);

// How many bytes at the end of `s` are a proper prefix of a valid UTF-8 sequence (0..3): bytes
// that more bytes could complete, to hold back while streaming.
size_t tfc_utf8_incomplete_tail(const uint8_t *s, size_t n);

// Copies `s` to `out`, each maximal subpart of an ill-formed sequence replaced by U+FFFD (the
// Unicode practice HF and Swift follow). `out` needs room for 3 * n bytes; returns the bytes written.
size_t tfc_utf8_replace_invalid(const uint8_t *s, size_t n, uint8_t *out);
