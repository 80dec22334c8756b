/* Entity ids as people see and type them. An id is bytes; es-tool takes it
 * raw (--id, append's ID) and prints it raw, quoted for a shell when it has
 * to be, so that what is printed can be pasted back:
 *
 *   acc-42            as it is: only [A-Za-z0-9] and _-+=.,:/@%^
 *   'acc 43.x'        printable UTF-8: single quotes ('\'' for a quote)
 *   $'x\x01y'         control bytes or bytes that are not UTF-8: the
 *                     $'...' quoting of bash, zsh and ksh (\xHH, \n, \t,
 *                     \r, \\, \'), which gives back exactly those bytes
 *
 * The escaped token of a subject (acc%2043%2Ex) is what the library stores;
 * it is never what a command takes, so an id that looks like one is
 * probably a paste from a subject: reads warn, writes refuse (--raw-id). */
#ifndef ESTOOL_IDTEXT_H
#define ESTOOL_IDTEXT_H

#include <stdbool.h>
#include <stddef.h>

#include <es/buf.h>

/* Appends the id in the form above. */
void tool_append_display_id(es_buf *out, const char *id, size_t len);

/* The number of characters (not bytes) of out[from..) as a terminal shows
 * them: UTF-8 continuation bytes take no column. For table padding. */
size_t tool_display_width(const es_buf *out, size_t from);

/* True when `id` holds a %XX that the library's escaping produces (upper-case
 * hex of '%', '.', '*', '>', a byte <= 0x20 or >= 0x7F). */
bool tool_id_looks_escaped(const char *id);

/* Checks an id given on the command line (`option`: "--id", "ID"). One
 * that looks escaped is refused when `refuse` (writes), else warned about
 * on stderr; `raw_id` (--raw-id) accepts it silently. ES_EXIT_OK or
 * ES_EXIT_USAGE (reported). */
int tool_id_check(const char *id, const char *option, bool raw_id, bool refuse);

#endif
