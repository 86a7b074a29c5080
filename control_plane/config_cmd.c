#include "control_plane/config_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control_plane/store/store.h"
#include "proto/declarative.h"
#include "proto/password.h"
#include "proto/schema.h"
#include "proto/yaml_json.h"

#define CP_IMPORT_MAX_FILE (256u * 1024 * 1024)

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) || (size_t)st.st_size > CP_IMPORT_MAX_FILE) {
        snprintf(err, errlen, "%s is larger than %u MiB", path, CP_IMPORT_MAX_FILE >> 20);
        fclose(f);
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    *len = fread(buf, 1, (size_t)st.st_size, f);
    buf[*len] = 0;
    fclose(f);
    return buf;
}

/* Equal apart from the timestamps the store sets. */
static int same_row(const json_t *a, const json_t *b)
{
    json_t *x = json_deep_copy(a), *y = json_deep_copy(b);
    const char *const stamps[] = {"created_at", "updated_at"};
    for (int i = 0; i < 2; i++) {
        json_object_del(x, stamps[i]);
        json_object_del(y, stamps[i]);
    }
    int eq = json_equal(x, y);
    json_decref(x);
    json_decref(y);
    return eq;
}

/* Basic-auth passwords as the file gives them, by credential username. Validation replaces a
 * plain password with a hash salted afresh each time, so without the plain text an unchanged
 * credential would look changed on every import. */
static void collect_passwords(const json_t *list, json_t *out)
{
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c)
    {
        const char *user = json_string_value(json_object_get(c, "username"));
        json_t *pw = json_object_get(c, "password");
        if (user && json_is_string(pw))
            json_object_set(out, user, pw);
    }
}

static json_t *plain_passwords(const json_t *doc)
{
    json_t *out = json_object();
    collect_passwords(json_object_get(doc, "basicauth_credentials"), out);
    size_t i;
    json_t *consumer;
    json_array_foreach(json_object_get(doc, "consumers"), i, consumer)
        collect_passwords(json_object_get(consumer, "basicauth_credentials"), out);
    return out;
}

/* When the stored hash already matches the file's plain password, the row keeps the stored
 * hash, so that re-importing the same file finds it identical. */
static void keep_matching_hash(const sl_entity *e, json_t *row, const json_t *existing,
                               const json_t *plain)
{
    if (!existing || !plain || strcmp(e->name, "basicauth_credentials") != 0)
        return;
    const char *stored = json_string_value(json_object_get(existing, "password"));
    const char *pw = json_string_value(
        json_object_get(plain, json_string_value(json_object_get(row, "username"))));
    if (stored && pw && !sl_password_is_hash(pw) && sl_password_verify(pw, stored))
        json_object_set_new(row, "password", json_string(stored));
}

static void describe(char *out, size_t outlen, const sl_entity *e, const json_t *row)
{
    const char *key =
        e->endpoint_key ? json_string_value(json_object_get(row, e->endpoint_key)) : NULL;
    if (key)
        snprintf(out, outlen, "%s '%s'", e->singular, key);
    else
        snprintf(out, outlen, "%s %s", e->singular, json_string_value(json_object_get(row, "id")));
}

static int import_config(cp_store *st, const json_t *config, const json_t *plain, int *written,
                         int *unchanged)
{
    cp_store_error serr = {0};
    if (cp_store_begin(st, &serr)) {
        fprintf(stderr, "Error: %s\n", serr.message);
        cp_store_error_clear(&serr);
        return -1;
    }
    for (size_t i = 0; i < sl_entity_count; i++) {
        const sl_entity *e = sl_entities[i];
        size_t r;
        json_t *row;
        json_array_foreach(json_object_get(config, e->name), r, row)
        {
            json_t *existing = NULL;
            const char *id = json_string_value(json_object_get(row, "id"));
            if (cp_store_get(st, e, id, &existing, &serr) == CP_STORE_OK)
                keep_matching_hash(e, row, existing, plain);
            if (existing && same_row(existing, row)) {
                json_decref(existing);
                (*unchanged)++;
                continue;
            }
            json_decref(existing);
            cp_store_error_clear(&serr);
            int created;
            if (cp_store_upsert(st, e, row, NULL, &created, &serr)) {
                char what[300];
                describe(what, sizeof(what), e, row);
                char *fields = serr.fields ? json_dumps(serr.fields, JSON_COMPACT) : NULL;
                fprintf(stderr, "Error: import failed at %s: %s%s%s\nNothing was imported.\n", what,
                        serr.message, fields ? " " : "", fields ? fields : "");
                free(fields);
                cp_store_error_clear(&serr);
                cp_store_rollback(st);
                return -1;
            }
            (*written)++;
        }
    }
    if (cp_store_commit(st, &serr)) {
        fprintf(stderr, "Error: import failed at commit: %s\nNothing was imported.\n",
                serr.message);
        cp_store_error_clear(&serr);
        return -1;
    }
    return 0;
}

static int db_import(const char *path, const sl_settings *s)
{
    char err[2048];
    size_t len;
    char *text = read_file(path, &len, err, sizeof(err));
    if (!text) {
        fprintf(stderr, "Error: %s\n", err);
        return 1;
    }
    json_t *errors = NULL, *config = NULL, *plain = NULL;
    char perr[512];
    json_t *doc = sl_yaml_parse(text, len, perr, sizeof(perr));
    free(text);
    if (doc) {
        config = sl_declarative_flatten(doc, &errors, err, sizeof(err));
        plain = plain_passwords(doc);
        json_decref(doc);
    } else {
        snprintf(err, sizeof(err), "cannot parse the declarative config: %s", perr);
    }
    if (!config) {
        json_decref(plain);
        fprintf(stderr, "Error: %s is not a valid declarative config: %s\n", path, err);
        size_t i;
        json_t *e;
        json_array_foreach(errors, i, e)
        {
            if (i == 50) {
                fprintf(stderr, "  ... and %zu more\n", json_array_size(errors) - 50);
                break;
            }
            char *fields = json_dumps(json_object_get(e, "errors"), JSON_COMPACT);
            fprintf(stderr, "  %s: %s\n", json_string_value(json_object_get(e, "where")), fields);
            free(fields);
        }
        json_decref(errors);
        return 1;
    }
    printf("parse successful, beginning import\n");
    cp_store *st = cp_store_connect(s, err, sizeof(err));
    if (!st) {
        fprintf(stderr, "Error: %s\n", err);
        json_decref(config);
        json_decref(plain);
        return 1;
    }
    int written = 0, unchanged = 0;
    int rc = import_config(st, config, plain, &written, &unchanged);
    cp_store_close(st);
    json_decref(config);
    json_decref(plain);
    if (rc)
        return 1;
    printf("import successful: %d entities written, %d already up to date\n", written, unchanged);
    return 0;
}

static int db_export(const char *path, const sl_settings *s)
{
    char err[2048];
    /* O_EXCL: an existing file is never overwritten; 0600: the file holds keys and secrets. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        fprintf(stderr, "Error: cannot write %s: %s%s\n", path, strerror(errno),
                errno == EEXIST ? " (export never overwrites a file)" : "");
        return 1;
    }
    cp_store *st = cp_store_connect(s, err, sizeof(err));
    if (!st) {
        fprintf(stderr, "Error: %s\n", err);
        close(fd);
        unlink(path);
        return 1;
    }
    json_t *config = NULL;
    int64_t version = 0;
    cp_store_error serr = {0};
    int rc = cp_store_read_config(st, &config, &version, &serr);
    cp_store_close(st);
    if (rc) {
        fprintf(stderr, "Error: cannot read the config: %s\n", serr.message);
        cp_store_error_clear(&serr);
        close(fd);
        unlink(path);
        return 1;
    }
    json_t *doc = sl_declarative_nest(config);
    size_t plen = strlen(path);
    char *text = plen > 5 && strcmp(path + plen - 5, ".json") == 0
                     ? json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER)
                     : sl_yaml_dump(doc);
    json_decref(doc);
    json_decref(config);
    size_t len = strlen(text);
    int ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    free(text);
    close(fd);
    if (!ok) {
        fprintf(stderr, "Error: cannot write %s: %s\n", path, strerror(errno));
        unlink(path);
        return 1;
    }
    printf("exported config version %lld to %s\n", (long long)version, path);
    return 0;
}

int cp_config_main(int argc, char **argv, const sl_settings *s)
{
    if (argc != 3 || (strcmp(argv[1], "db_import") && strcmp(argv[1], "db_export"))) {
        fprintf(stderr, "Usage: sluice-cp config db_import FILE | db_export FILE\n");
        return 1;
    }
    return strcmp(argv[1], "db_import") == 0 ? db_import(argv[2], s) : db_export(argv[2], s);
}
