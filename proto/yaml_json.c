#include "proto/yaml_json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

typedef struct {
    yaml_parser_t parser;
    size_t nodes;
    char *err;
    size_t errlen;
    const char *text; /* the input, to turn a reader error's byte offset into a line */
    size_t len;
} yaml_reader;

static void reader_error(yaml_reader *r, const yaml_event_t *ev, const char *what)
{
    if (ev)
        snprintf(r->err, r->errlen, "line %zu, column %zu: %s", ev->start_mark.line + 1,
                 ev->start_mark.column + 1, what);
    else if (r->parser.error == YAML_READER_ERROR) { /* bad bytes: libyaml gives an offset */
        size_t line = 1,
               off = r->parser.problem_offset < r->len ? r->parser.problem_offset : r->len;
        for (size_t i = 0; i < off; i++)
            line += r->text[i] == '\n';
        snprintf(r->err, r->errlen, "line %zu (byte %zu): %s", line, off,
                 r->parser.problem ? r->parser.problem : what);
    } else
        snprintf(r->err, r->errlen, "line %zu, column %zu: %s", r->parser.problem_mark.line + 1,
                 r->parser.problem_mark.column + 1, r->parser.problem ? r->parser.problem : what);
}

static int is_int(const char *s, long long *out)
{
    if (!*s)
        return 0;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno)
        return 0;
    /* "0x10", "+1", "007" stay strings: YAML 1.2 core integers are plain decimal. */
    const char *d = s + (*s == '-');
    if (!*d || (d[0] == '0' && d[1]))
        return 0;
    *out = v;
    return 1;
}

static int is_float(const char *s, double *out)
{
    if (!*s || !strpbrk(s, ".eE"))
        return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno || !isfinite(v))
        return 0;
    *out = v;
    return 1;
}

static json_t *plain_scalar(const char *s)
{
    long long i;
    double d;
    if (!strcmp(s, "") || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
        !strcmp(s, "NULL"))
        return json_null();
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
        return json_true();
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
        return json_false();
    if (is_int(s, &i))
        return json_integer(i);
    if (is_float(s, &d))
        return json_real(d);
    return json_string(s);
}

static json_t *read_node(yaml_reader *r, yaml_event_t *ev, int depth);

/* Reads events up to the end of the collection that ev started. */
static json_t *read_collection(yaml_reader *r, yaml_event_t *start, int depth)
{
    int is_map = start->type == YAML_MAPPING_START_EVENT;
    json_t *out = is_map ? json_object() : json_array();
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&r->parser, &ev)) {
            reader_error(r, NULL, "malformed YAML");
            json_decref(out);
            return NULL;
        }
        if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return out;
        }
        if (!is_map) {
            json_t *v = read_node(r, &ev, depth + 1);
            yaml_event_delete(&ev);
            if (!v) {
                json_decref(out);
                return NULL;
            }
            json_array_append_new(out, v);
            continue;
        }
        if (ev.type != YAML_SCALAR_EVENT) {
            reader_error(r, &ev, "mapping keys must be plain strings");
            yaml_event_delete(&ev);
            json_decref(out);
            return NULL;
        }
        char *key = strdup((const char *)ev.data.scalar.value);
        yaml_event_t vev;
        yaml_event_delete(&ev);
        if (!yaml_parser_parse(&r->parser, &vev)) {
            reader_error(r, NULL, "malformed YAML");
            free(key);
            json_decref(out);
            return NULL;
        }
        json_t *v = read_node(r, &vev, depth + 1);
        if (v && json_object_get(out, key)) {
            reader_error(r, &vev, "duplicate key");
            json_decref(v);
            v = NULL;
        }
        yaml_event_delete(&vev);
        if (!v) {
            free(key);
            json_decref(out);
            return NULL;
        }
        json_object_set_new(out, key, v);
        free(key);
    }
}

static json_t *read_node(yaml_reader *r, yaml_event_t *ev, int depth)
{
    if (++r->nodes > SL_YAML_MAX_NODES) {
        reader_error(r, ev, "document too large");
        return NULL;
    }
    if (depth > SL_YAML_MAX_DEPTH) {
        reader_error(r, ev, "nested too deeply");
        return NULL;
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT: {
        const char *s = (const char *)ev->data.scalar.value;
        json_t *str = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev->data.scalar.tag
                          ? plain_scalar(s)
                          : json_stringn(s, ev->data.scalar.length);
        if (!str)
            reader_error(r, ev, "strings must be UTF-8");
        return str;
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        return read_collection(r, ev, depth);
    case YAML_ALIAS_EVENT:
        reader_error(r, ev, "aliases are not supported");
        return NULL;
    default:
        reader_error(r, ev, "unexpected YAML event");
        return NULL;
    }
}

json_t *sl_yaml_parse(const char *text, size_t len, char *err, size_t errlen)
{
    yaml_reader r = {.err = err, .errlen = errlen, .text = text, .len = len};
    yaml_parser_initialize(&r.parser);
    yaml_parser_set_input_string(&r.parser, (const unsigned char *)text, len);
    json_t *doc = NULL;
    int done = 0;
    while (!done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&r.parser, &ev)) {
            reader_error(&r, NULL, "malformed YAML");
            json_decref(doc);
            doc = NULL;
            break;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
            break;
        default:
            if (doc) {
                reader_error(&r, &ev, "only one YAML document is allowed");
                json_decref(doc);
                doc = NULL;
                done = 2;
                break;
            }
            doc = read_node(&r, &ev, 0);
            if (!doc)
                done = 2;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&r.parser);
    if (done == 1 && !doc) {
        snprintf(err, errlen, "the document is empty");
        return NULL;
    }
    return done == 1 ? doc : NULL;
}

/* --- dump --- */

typedef struct {
    char *buf;
    size_t len, cap;
} strbuf;

static void put(strbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->buf = realloc(b->buf, cap);
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = 0;
}

static void puts_(strbuf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void indent(strbuf *b, int n)
{
    for (int i = 0; i < n; i++)
        put(b, "  ", 2);
}

/* Whether a string must be quoted to read back as the same string. */
static int needs_quotes(const char *s)
{
    if (!*s)
        return 1;
    json_t *as_plain = plain_scalar(s);
    int other_type = !json_is_string(as_plain);
    json_decref(as_plain);
    if (other_type)
        return 1;
    if (strchr("-?:,[]{}#&*!|>'\"%@` ~", s[0]) || s[strlen(s) - 1] == ' ')
        return 1;
    return strstr(s, ": ") || strstr(s, " #") || strchr(s, '\t') || s[strlen(s) - 1] == ':';
}

static void dump_string(strbuf *b, const char *s, int depth)
{
    size_t len = strlen(s);
    /* A literal block keeps PEM text readable; it reads back exactly only when the text ends
     * with a single newline and does not start with a space. */
    if (len > 1 && s[len - 1] == '\n' && s[len - 2] != '\n' && s[0] != ' ' && s[0] != '\n') {
        puts_(b, "|\n");
        const char *line = s;
        while (*line) {
            const char *nl = strchr(line, '\n');
            indent(b, depth + 1);
            put(b, line, (size_t)(nl - line));
            puts_(b, "\n");
            line = nl + 1;
        }
        b->len--; /* the caller ends the line */
        b->buf[b->len] = 0;
        return;
    }
    if (!needs_quotes(s)) {
        puts_(b, s);
        return;
    }
    /* JSON string syntax is valid YAML double-quoted syntax. */
    json_t *tmp = json_string(s);
    char *q = json_dumps(tmp, JSON_ENCODE_ANY);
    json_decref(tmp);
    puts_(b, q);
    free(q);
}

static void dump_value(strbuf *b, const json_t *v, int depth);

static void dump_scalar(strbuf *b, const json_t *v, int depth)
{
    if (json_is_string(v)) {
        dump_string(b, json_string_value(v), depth);
        return;
    }
    char *s = json_dumps(v, JSON_ENCODE_ANY);
    puts_(b, s ? s : "null");
    free(s);
}

static int is_empty_collection(const json_t *v)
{
    return (json_is_object(v) && json_object_size(v) == 0) ||
           (json_is_array(v) && json_array_size(v) == 0);
}

static void dump_value(strbuf *b, const json_t *v, int depth)
{
    if (json_is_object(v) && json_object_size(v)) {
        const char *k;
        json_t *x;
        int first = 1;
        json_object_foreach((json_t *)v, k, x)
        {
            if (!first)
                indent(b, depth);
            first = 0;
            dump_string(b, k, depth);
            puts_(b, ":");
            if ((json_is_object(x) || json_is_array(x)) && !is_empty_collection(x)) {
                puts_(b, "\n");
                indent(b, depth + 1);
                dump_value(b, x, depth + 1);
            } else {
                puts_(b, " ");
                if (is_empty_collection(x))
                    puts_(b, json_is_object(x) ? "{}" : "[]");
                else
                    dump_scalar(b, x, depth);
                puts_(b, "\n");
            }
        }
        return;
    }
    if (json_is_array(v) && json_array_size(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            if (i)
                indent(b, depth);
            puts_(b, "- ");
            if ((json_is_object(x) || json_is_array(x)) && !is_empty_collection(x)) {
                dump_value(b, x, depth + 1);
            } else {
                if (is_empty_collection(x))
                    puts_(b, json_is_object(x) ? "{}" : "[]");
                else
                    dump_scalar(b, x, depth);
                puts_(b, "\n");
            }
        }
        return;
    }
    if (is_empty_collection(v))
        puts_(b, json_is_object(v) ? "{}" : "[]");
    else
        dump_scalar(b, v, depth);
    puts_(b, "\n");
}

char *sl_yaml_dump(const json_t *value)
{
    strbuf b = {0};
    dump_value(&b, value, 0);
    return b.buf;
}
