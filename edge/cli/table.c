/* SPDX-License-Identifier: MIT */
/*
 * Aligned text tables (see table.h). Cells are sanitized when they are added, so widths are
 * computed once over text that prints as one column per code point (wide East Asian
 * characters aside, which are rare in host names and ids and merely misalign a row).
 */
#include "edge/cli/table.h"

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

#define TABLE_MAX_COLS 32

struct ptc_table {
    size_t cols;
    bool has_header;
    char **cells; /* (rows + has_header) * cols strings, row-major, header first */
    size_t rows;  /* data rows */
    size_t cap;   /* rows allocated, header included */
};

/* ---- sanitizing ---- */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not valid UTF-8; the code
 * point goes to *cp. Overlong forms, surrogates and values past U+10FFFF are invalid. */
static size_t utf8_seq(const unsigned char *s, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t v;
    uint32_t min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        v = c & 0x1fu;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        v = c & 0x0fu;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        v = c & 0x07u;
        min = 0x10000;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0; /* also stops at the NUL terminator */
        }
        v = (v << 6) | (s[i] & 0x3fu);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) {
        return 0;
    }
    *cp = v;
    return n;
}

char *ptc_table_sanitize(const char *s)
{
    if (s == NULL) {
        return ptc_xstrdup("-");
    }
    size_t len = strlen(s);
    char *out = ptc_xmalloc(len + 1);
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    while (*p != '\0') {
        uint32_t cp = 0;
        size_t n = utf8_seq(p, &cp);
        if (n == 0) {
            out[o++] = '?';
            p++;
            continue;
        }
        /* C0 controls, DEL and C1 controls can move the cursor or start escape sequences. */
        if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f)) {
            out[o++] = '?';
        } else {
            memcpy(out + o, p, n);
            o += n;
        }
        p += n;
    }
    out[o] = '\0';
    return out;
}

size_t ptc_table_width(const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if ((*p & 0xc0) != 0x80) {
            w++;
        }
    }
    return w;
}

/* ---- table ---- */

static void add_row(ptc_table_t *t, const char *const *cells)
{
    size_t used = t->rows + (t->has_header ? 1 : 0);
    if (used == t->cap) {
        t->cap = t->cap == 0 ? 8 : t->cap * 2;
        t->cells = ptc_xrealloc(t->cells, t->cap * t->cols * sizeof(char *));
    }
    for (size_t c = 0; c < t->cols; c++) {
        t->cells[used * t->cols + c] = ptc_table_sanitize(cells[c]);
    }
}

ptc_table_t *ptc_table_new(const char *const *headers, size_t cols)
{
    assert(cols >= 1 && cols <= TABLE_MAX_COLS);
    ptc_table_t *t = ptc_xcalloc(1, sizeof(*t));
    t->cols = cols;
    if (headers != NULL) {
        add_row(t, headers);
        t->has_header = true;
    }
    return t;
}

void ptc_table_free(ptc_table_t *t)
{
    if (t == NULL) {
        return;
    }
    size_t n = (t->rows + (t->has_header ? 1 : 0)) * t->cols;
    for (size_t i = 0; i < n; i++) {
        free(t->cells[i]);
    }
    free(t->cells);
    free(t);
}

void ptc_table_add_row(ptc_table_t *t, const char *const *cells)
{
    add_row(t, cells);
    t->rows++;
}

size_t ptc_table_rows(const ptc_table_t *t)
{
    return t->rows;
}

void ptc_table_print(const ptc_table_t *t, FILE *out)
{
    size_t width[TABLE_MAX_COLS] = {0};
    size_t lines = t->rows + (t->has_header ? 1 : 0);
    for (size_t r = 0; r < lines; r++) {
        for (size_t c = 0; c < t->cols; c++) {
            size_t w = ptc_table_width(t->cells[r * t->cols + c]);
            if (w > width[c]) {
                width[c] = w;
            }
        }
    }
    for (size_t r = 0; r < lines; r++) {
        for (size_t c = 0; c < t->cols; c++) {
            const char *cell = t->cells[r * t->cols + c];
            fputs(cell, out);
            if (c + 1 < t->cols) {
                size_t pad = width[c] - ptc_table_width(cell) + 2;
                fprintf(out, "%*s", (int)pad, "");
            }
        }
        fputc('\n', out);
    }
}
