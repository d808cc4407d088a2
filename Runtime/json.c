// Strict pull-style JSON reader for safetensors headers; see json.h.
#include "json.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tfc_json_fail(tfc_json *j, const char *what) {
    if (!j->failed) {
        j->failed = 1;
        if (j->err && j->errlen)
            snprintf(j->err, j->errlen, "malformed header JSON at byte %zu: %s", j->pos, what);
    }
    return 0;
}

int tfc_json_peek(tfc_json *j) {
    while (j->pos < j->n) {
        char c = j->s[j->pos];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') j->pos++;
        else return (unsigned char)c;
    }
    return -1;
}

int tfc_json_expect(tfc_json *j, char c, const char *context) {
    if (j->failed) return 0;
    if (tfc_json_peek(j) != (unsigned char)c) {
        char msg[160];
        if (j->pos >= j->n) snprintf(msg, sizeof msg, "expected '%c' %s, found the end of the header", c, context);
        else snprintf(msg, sizeof msg, "expected '%c' %s", c, context);
        return tfc_json_fail(j, msg);
    }
    j->pos++;
    return 1;
}

static int hex4(tfc_json *j, uint32_t *out) {
    if (j->pos + 4 > j->n) return tfc_json_fail(j, "truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = j->s[j->pos];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return tfc_json_fail(j, "invalid hex digit in \\u escape");
        j->pos++;
    }
    *out = v;
    return 1;
}

static size_t put_utf8(char *d, uint32_t cp) {
    if (cp < 0x80) { d[0] = (char)cp; return 1; }
    if (cp < 0x800) { d[0] = (char)(0xC0 | (cp >> 6)); d[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        d[0] = (char)(0xE0 | (cp >> 12)); d[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        d[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    d[0] = (char)(0xF0 | (cp >> 18)); d[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    d[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); d[3] = (char)(0x80 | (cp & 0x3F)); return 4;
}

int tfc_json_string(tfc_json *j, char **out) {
    *out = NULL;
    if (!tfc_json_expect(j, '"', "to start a string")) return 0;
    // Decoded text is never longer than the encoded text (an escape of 6 bytes yields at most 3,
    // a surrogate pair of 12 bytes yields 4), so the remaining header length bounds the buffer.
    size_t start = j->pos, end = start;
    while (end < j->n && j->s[end] != '"') end += (j->s[end] == '\\') ? 2 : 1;
    char *buf = malloc(end - start + 1);
    if (!buf) return tfc_json_fail(j, "out of memory");
    size_t k = 0;
    for (;;) {
        if (j->pos >= j->n) { free(buf); return tfc_json_fail(j, "unterminated string"); }
        unsigned char c = (unsigned char)j->s[j->pos];
        if (c == '"') { j->pos++; break; }
        if (c < 0x20) { free(buf); return tfc_json_fail(j, "control character in string (must be escaped)"); }
        if (c != '\\') { buf[k++] = (char)c; j->pos++; continue; }
        size_t escape_at = j->pos++;  // errors in an escape point at its backslash
        if (j->pos >= j->n) { free(buf); return tfc_json_fail(j, "unterminated escape"); }
        char e = j->s[j->pos++];
        switch (e) {
        case '"': buf[k++] = '"'; break;
        case '\\': buf[k++] = '\\'; break;
        case '/': buf[k++] = '/'; break;
        case 'b': buf[k++] = '\b'; break;
        case 'f': buf[k++] = '\f'; break;
        case 'n': buf[k++] = '\n'; break;
        case 'r': buf[k++] = '\r'; break;
        case 't': buf[k++] = '\t'; break;
        case 'u': {
            uint32_t cp;
            if (!hex4(j, &cp)) { free(buf); return 0; }
            if (cp >= 0xDC00 && cp <= 0xDFFF) { free(buf); return tfc_json_fail(j, "lone low surrogate in \\u escape"); }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (j->pos + 2 > j->n || j->s[j->pos] != '\\' || j->s[j->pos + 1] != 'u') {
                    free(buf); return tfc_json_fail(j, "high surrogate not followed by a low surrogate");
                }
                j->pos += 2;
                if (!hex4(j, &lo)) { free(buf); return 0; }
                if (lo < 0xDC00 || lo > 0xDFFF) { free(buf); return tfc_json_fail(j, "high surrogate not followed by a low surrogate"); }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (cp == 0) { free(buf); return tfc_json_fail(j, "\\u0000 in a string is not supported"); }
            k += put_utf8(buf + k, cp);
            break;
        }
        default: j->pos = escape_at; free(buf); return tfc_json_fail(j, "invalid escape in string");
        }
    }
    buf[k] = 0;
    *out = buf;
    return 1;
}

int tfc_json_int(tfc_json *j, int64_t *out) {
    if (j->failed) return 0;
    int c = tfc_json_peek(j);
    size_t start = j->pos;  // errors about the whole number point at its first byte
    int neg = 0;
    if (c == '-') { neg = 1; j->pos++; c = j->pos < j->n ? (unsigned char)j->s[j->pos] : -1; }
    if (c < '0' || c > '9') return tfc_json_fail(j, "expected an integer");
    if (c == '0' && j->pos + 1 < j->n && j->s[j->pos + 1] >= '0' && j->s[j->pos + 1] <= '9')
        return tfc_json_fail(j, "leading zeros are not allowed in an integer");
    uint64_t v = 0;
    while (j->pos < j->n && j->s[j->pos] >= '0' && j->s[j->pos] <= '9') {
        uint64_t d = (uint64_t)(j->s[j->pos] - '0');
        if (v > (UINT64_C(9223372036854775807) - d) / 10) { j->pos = start; return tfc_json_fail(j, "integer too large"); }
        v = v * 10 + d;
        j->pos++;
    }
    if (j->pos < j->n && (j->s[j->pos] == '.' || j->s[j->pos] == 'e' || j->s[j->pos] == 'E'))
        return tfc_json_fail(j, "expected an integer, found a fractional number");
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 1;
}

int tfc_json_int_array(tfc_json *j, int64_t **out, int32_t *count) {
    *out = NULL; *count = 0;
    if (!tfc_json_expect(j, '[', "to start an array of integers")) return 0;
    int32_t cap = 4, n = 0;
    int64_t *a = malloc(sizeof(int64_t) * (size_t)cap);
    if (!a) return tfc_json_fail(j, "out of memory");
    if (tfc_json_peek(j) == ']') { j->pos++; *out = a; return 1; }
    for (;;) {
        if (n == cap) {
            if (cap >= (1 << 20)) { free(a); return tfc_json_fail(j, "array too long"); }
            cap *= 2;
            int64_t *b = realloc(a, sizeof(int64_t) * (size_t)cap);
            if (!b) { free(a); return tfc_json_fail(j, "out of memory"); }
            a = b;
        }
        if (!tfc_json_int(j, &a[n])) { free(a); return 0; }
        n++;
        int c = tfc_json_peek(j);
        if (c == ',') { j->pos++; continue; }
        if (c == ']') { j->pos++; break; }
        free(a);
        return tfc_json_fail(j, "expected ',' or ']' in an array");
    }
    *out = a; *count = n;
    return 1;
}
