/* Certificates carry their SNIs as a transient `snis` array of names, as in Kong: writing a
 * certificate with `snis` makes the set of SNI entities pointing at it exactly that list, and
 * every certificate the Admin API returns lists its SNI names (sorted). */
#include <stdlib.h>
#include <string.h>

#include "proto/sort.h"
#include "control_plane/admin/api_internal.h"

#define CERT_SNIS_MAX 1000

int cp_api_is_certificates(const sl_entity *e)
{
    return strcmp(e->name, "certificates") == 0;
}

static json_t *list_snis(cp_store *st, const char *cert_id, cp_store_error *err)
{
    const sl_entity *snis = sl_entity_by_name("snis");
    cp_store_list_query q = {
        .size = CERT_SNIS_MAX, .foreign = "certificate", .foreign_id = cert_id};
    json_t *rows = NULL;
    char *next = NULL;
    if (cp_store_list(st, snis, &q, &rows, &next, err) != CP_STORE_OK) {
        json_decref(rows);
        return NULL;
    }
    free(next);
    return rows;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

int cp_api_cert_attach_snis(cp_store *st, json_t *cert, cp_store_error *err)
{
    json_t *rows = list_snis(st, json_string_value(json_object_get(cert, "id")), err);
    if (!rows)
        return -1;
    size_t n = json_array_size(rows);
    json_t **names = calloc(n ? n : 1, sizeof(*names));
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) names[i] = json_object_get(row, "name");
    sl_sort(names, n, sizeof(*names), by_name);
    json_t *list = json_array();
    for (i = 0; i < n; i++)
        json_array_append(list, names[i]);
    free(names);
    json_decref(rows);
    json_object_set_new(cert, "snis", list);
    return 0;
}

int cp_api_cert_sync_snis(cp_store *st, const char *cert_id, const json_t *wanted,
                          cp_store_error *err)
{
    const sl_entity *snis = sl_entity_by_name("snis");
    json_t *rows = list_snis(st, cert_id, err);
    if (!rows)
        return -1;
    size_t i;
    json_t *row;
    /* Drop the SNIs that are no longer listed. */
    json_array_foreach(rows, i, row)
    {
        const char *name = json_string_value(json_object_get(row, "name"));
        int keep = 0;
        size_t j;
        json_t *w;
        json_array_foreach(wanted, j, w) if (name && !strcmp(json_string_value(w), name)) keep = 1;
        if (!keep && cp_store_delete(st, snis, json_string_value(json_object_get(row, "id")),
                                     err) != CP_STORE_OK) {
            json_decref(rows);
            return -1;
        }
    }
    /* Add the new ones; a name another certificate holds fails as a unique violation. */
    json_t *w;
    json_array_foreach(wanted, i, w)
    {
        int have = 0;
        size_t j;
        json_array_foreach(rows, j,
                           row) if (!strcmp(json_string_value(json_object_get(row, "name")),
                                            json_string_value(w))) have = 1;
        if (have)
            continue;
        json_t *sni = json_pack("{s:O, s:{s:s}}", "name", w, "certificate", "id", cert_id);
        json_t *errors = NULL;
        if (sl_schema_validate(snis, sni, SL_VALIDATE_JSON, &errors)) {
            err->status = CP_STORE_SCHEMA;
            err->fields = json_pack("{s:O}", "snis", errors);
            snprintf(err->message, sizeof(err->message), "schema violation (snis: %s)",
                     json_string_value(w));
            json_decref(errors);
            json_decref(sni);
            json_decref(rows);
            return -1;
        }
        int st_ = cp_store_insert(st, snis, sni, NULL, err);
        json_decref(sni);
        if (st_ != CP_STORE_OK) {
            json_decref(rows);
            return -1;
        }
    }
    json_decref(rows);
    return 0;
}
