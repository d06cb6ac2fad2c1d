/* SPDX-License-Identifier: MIT */
/*
 * Aligned text tables for the `portico` CLI: a header row and data rows of strings, printed
 * with columns padded to their widest cell (in characters, not bytes) and two spaces between
 * columns. Every cell is made safe for a terminal first: control characters (C0, DEL, C1)
 * and invalid UTF-8 become '?', so a peer-supplied value (a connector's host name) can never
 * inject escape sequences. Depends on libc only.
 */
#ifndef PTC_EDGE_CLI_TABLE_H
#define PTC_EDGE_CLI_TABLE_H

#include <stddef.h>
#include <stdio.h>

typedef struct ptc_table ptc_table_t;

/**
 * Creates a table of `cols` columns (1..32). `headers` holds `cols` column titles (copied),
 * or is NULL for a table without a header row (e.g. "key  value" listings). Aborts if
 * memory runs out. Free with ptc_table_free().
 */
ptc_table_t *ptc_table_new(const char *const *headers, size_t cols);

/** Frees the table and every cell (NULL is ignored). */
void ptc_table_free(ptc_table_t *t);

/**
 * Appends a row of `cols` cells (as given to ptc_table_new). Each cell is copied after
 * sanitizing; a NULL cell is shown as "-". Aborts if memory runs out.
 */
void ptc_table_add_row(ptc_table_t *t, const char *const *cells);

/** The number of data rows (the header is not counted). */
size_t ptc_table_rows(const ptc_table_t *t);

/**
 * Prints the header (if any) and the rows: each cell but the last padded with spaces to the
 * width of its column, columns separated by two spaces, no trailing spaces, one row a line.
 */
void ptc_table_print(const ptc_table_t *t, FILE *out);

/**
 * Returns a heap copy of `s` that is safe to print on a terminal (see the file comment);
 * the caller frees it with free(). NULL gives "-". Aborts if memory runs out.
 */
char *ptc_table_sanitize(const char *s);

/** The display width of a sanitized string: its number of UTF-8 code points. */
size_t ptc_table_width(const char *s);

#endif
