#ifndef SL_YAML_JSON_H
#define SL_YAML_JSON_H

/* YAML (and therefore JSON) text to jansson values and back, for declarative config files.
 * Pure functions over bytes, bounded: nesting depth, node count, scalar size. */

#include <jansson.h>
#include <stddef.h>

#define SL_YAML_MAX_DEPTH 64
#define SL_YAML_MAX_NODES 5000000

/* Parses one YAML document. Plain scalars get YAML 1.2 core types (null, true/false,
 * integers, floats); quoted and block scalars stay strings. Anchors and aliases are refused
 * (they can blow a small file up into a huge one). NULL with err naming line and column. */
json_t *sl_yaml_parse(const char *text, size_t len, char *err, size_t errlen);

/* Writes value as block-style YAML (strings quoted when they would read back as another type,
 * multi-line strings as literal blocks). Returns a malloc'd string, or NULL. */
char *sl_yaml_dump(const json_t *value);

#endif
