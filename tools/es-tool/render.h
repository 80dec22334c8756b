/* How replay shows an event: one JSON object a line (jsonl), a readable
 * block (pretty), or the payload bytes alone (raw). docs/es-tool.md has the
 * JSON fields. */
#ifndef ESTOOL_RENDER_H
#define ESTOOL_RENDER_H

#include <stdbool.h>

#include <es/buf.h>
#include <es/es.h>

typedef enum tool_format { FORMAT_JSONL, FORMAT_PRETTY, FORMAT_RAW } tool_format;

/* "jsonl", "pretty" or "raw"; false for anything else. */
bool tool_format_parse(const char *text, tool_format *out);

typedef struct tool_renderer tool_renderer;

/* colour: ANSI colours in the pretty format. The caller owns *out. */
es_status tool_renderer_create(tool_format format, bool colour, tool_renderer **out);
void tool_renderer_destroy(tool_renderer *r);

/* Writes one event to stdout. ES_ERR_IO once stdout is closed (the reader
 * left); a payload that cannot be decoded is shown as a status, never as an
 * error of the call. */
es_status tool_render(tool_renderer *r, const es_event *ev);

/* Appends `s` as a JSON string, or as {"$bytes": base64} when it is not
 * valid UTF-8 (ids and header values are bytes: nothing may be mangled). */
es_status tool_json_append_text(es_buf *out, const char *s, size_t len);

/* Appends `json` (compact JSON text) indented by two spaces a level, every
 * line after the first starting with `margin` spaces; keys coloured when
 * `colour`. */
es_status tool_json_indent(const char *json, size_t len, int margin, bool colour, es_buf *out);

#endif
