// A small, strict JSON reader for safetensors headers (private to the runtime).
// It reads what safetensors uses: objects, arrays, strings (with all JSON escapes) and
// integers. Floats, true/false/null are rejected: a safetensors header never needs them,
// and refusing them keeps the reader tiny and its error messages precise.
// Callers drive it (pull style) so they can report schema errors by tensor name.
#pragma once
#include <stdint.h>
#include <stddef.h>

typedef struct {
    const char *s;   // header bytes (not NUL-terminated)
    size_t n;        // header length
    size_t pos;      // current byte offset in the header
    char *err;       // caller's one-line error buffer
    size_t errlen;
    int failed;      // set once; later calls become no-ops
} tfc_json;

// Reports "malformed header JSON at byte POS: WHAT" (first error wins). Returns 0.
__attribute__((visibility("hidden"))) int tfc_json_fail(tfc_json *j, const char *what);
// Skips JSON whitespace; returns the next byte, or -1 at the end of the header.
__attribute__((visibility("hidden"))) int tfc_json_peek(tfc_json *j);
// Consumes `c` (after whitespace) or fails with "expected 'c' CONTEXT". Returns 1 on success.
__attribute__((visibility("hidden"))) int tfc_json_expect(tfc_json *j, char c, const char *context);
// Reads a string into a fresh malloc'ed, NUL-terminated UTF-8 buffer (*out). Strings
// containing U+0000 are rejected because names travel as C strings. Returns 1 on success.
__attribute__((visibility("hidden"))) int tfc_json_string(tfc_json *j, char **out);
// Reads an integer (optional '-', no fraction/exponent, must fit int64). Returns 1 on success.
__attribute__((visibility("hidden"))) int tfc_json_int(tfc_json *j, int64_t *out);
// Reads "[int, int, ...]" into a malloc'ed array (*out, *count). Returns 1 on success.
__attribute__((visibility("hidden"))) int tfc_json_int_array(tfc_json *j, int64_t **out, int32_t *count);
