// One-line error messages written into a caller's buffer: the runtime's C entry points report
// failures as text (the caller prints it with its own prefix), never by printing themselves.
#ifndef TFC_ERROR_TEXT_H
#define TFC_ERROR_TEXT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

// Formats into buf (at most cap bytes, always terminated; a NULL buf or cap 0 drops the message)
// and gives back `failure`, the caller's failure return, so that it can `return` the call.
static inline int tfc_error_text(int failure, char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static inline int tfc_error_text(int failure, char *buf, size_t cap, const char *fmt, ...) {
    if (buf && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, cap, fmt, ap);
        va_end(ap);
    }
    return failure;
}

#endif
