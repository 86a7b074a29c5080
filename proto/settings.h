#ifndef SL_SETTINGS_H
#define SL_SETTINGS_H

#include <stddef.h>

/* Which binary reads a setting. Both accept every known name, so one file can serve both. */
enum { SL_FOR_CP = 1, SL_FOR_DP = 2, SL_FOR_BOTH = 3 };

/* How a value is checked at start; a bad value is refused with the setting's name. */
typedef enum {
    SL_SET_STRING,    /* any text */
    SL_SET_PORT,      /* 1..65535 */
    SL_SET_INT,       /* integer within [min, max] */
    SL_SET_BOOL,      /* on/off, true/false, yes/no, 1/0 */
    SL_SET_ENUM,      /* one of choices */
    SL_SET_LISTEN,    /* comma-separated "host:port [ssl]" entries */
    SL_SET_HOSTPORT,  /* one "host:port" */
    SL_SET_LOG_LEVEL, /* debug..alert */
} sl_setting_kind;

typedef struct {
    const char *name;
    const char *dflt; /* NULL: unset */
    sl_setting_kind kind;
    int used_by;
    long long min, max;         /* SL_SET_INT */
    const char *const *choices; /* SL_SET_ENUM, NULL-terminated */
    const char *help;
} sl_setting_def;

/* The table of every setting, shared by both binaries (ARCHITECTURE.md lists the contract). */
extern const sl_setting_def sl_setting_defs[];
extern const size_t sl_setting_count;

typedef struct {
    char *values[64]; /* indexed like sl_setting_defs; NULL when unset */
} sl_settings;

/* Loads defaults, then FILE (may be NULL), then SLUICE_<NAME> environment variables.
 * On error returns -1 with a message naming the setting (and file line) in err. */
int sl_settings_load(sl_settings *s, const char *conf_path, char *err, size_t errlen);

/* Sets one value after checking it; -1 and err on a bad value or unknown name. */
int sl_settings_set(sl_settings *s, const char *name, const char *value, char *err, size_t errlen);

/* The value (never NULL for settings with a default; NULL when unset). Owned by s. */
const char *sl_settings_get(const sl_settings *s, const char *name);
long long sl_settings_int(const sl_settings *s, const char *name);
int sl_settings_bool(const sl_settings *s, const char *name);

void sl_settings_free(sl_settings *s);

/* Prints "name = default   help" lines for the settings used_by mask, for --help. */
void sl_settings_print_help(int used_by);

/* One "host:port [ssl]" entry of a listen setting. */
typedef struct {
    char host[256];
    int port;
    int ssl;
} sl_listen_addr;

/* Splits a listen value into at most max entries; returns the count or -1 with err. */
int sl_listen_parse(const char *value, sl_listen_addr *out, int max, char *err, size_t errlen);

#endif
