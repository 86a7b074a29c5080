/* acl (Kong's PRIORITY 950): lets consumers through by their groups (allow or deny), after
 * an auth plugin identified them, and tells the upstream their groups in X-Consumer-Groups. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_plane/plugins/plugin.h"

typedef struct {
    char **groups;
    size_t n;
    int deny; /* the list is a deny list */
    int hide;
} acl_conf;

static void acl_free(void *state)
{
    acl_conf *c = state;
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->groups[i]);
    free(c->groups);
    free(c);
}

static int acl_init(const json_t *config, const char *id, void *shared, void **state, char *err,
                    size_t errlen)
{
    acl_conf *c = calloc(1, sizeof(*c));
    if (!c)
        return -1;
    *state = c;
    const json_t *list = json_object_get(config, "allow");
    if (!json_is_array(list) || !json_array_size(list)) {
        list = json_object_get(config, "deny");
        c->deny = 1;
    }
    size_t n = json_is_array(list) ? json_array_size(list) : 0;
    c->groups = calloc(n + 1, sizeof(char *));
    if (!c->groups)
        return -1;
    size_t i;
    const json_t *g;
    json_array_foreach(list, i, g)
    {
        if (json_string_value(g) && !(c->groups[c->n++] = strdup(json_string_value(g))))
            return -1;
    }
    c->hide = json_is_true(json_object_get(config, "hide_groups_header"));
    return 0;
}

static int listed(const acl_conf *c, const char *group)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->groups[i], group) == 0)
            return 1;
    return 0;
}

static dp_plugin_result acl_access(void *state, dp_plugin_req *req, void **ctx)
{
    acl_conf *c = state;
    const dp_consumer *con = req->consumer;
    if (!con)
        return dp_plugin_respond(req, 401, "Unauthorized");
    int match = 0;
    for (size_t i = 0; i < con->ngroups && !match; i++)
        match = listed(c, con->groups[i]);
    if (c->deny ? match : !match)
        return dp_plugin_respond(req, 403, "You cannot consume this service");
    if (c->hide || !con->ngroups) {
        dp_plugin_up_header_remove(req, "X-Consumer-Groups"); /* never the client's */
        return DP_PLUGIN_CONTINUE;
    }
    size_t len = 0;
    for (size_t i = 0; i < con->ngroups; i++)
        len += strlen(con->groups[i]) + 2;
    char *v = dp_arena_alloc(req->arena, len + 1);
    if (!v)
        return dp_plugin_respond(req, 500, "An unexpected error occurred");
    size_t n = 0;
    for (size_t i = 0; i < con->ngroups; i++) {
        size_t l = strlen(con->groups[i]);
        if (i) {
            memcpy(v + n, ", ", 2);
            n += 2;
        }
        memcpy(v + n, con->groups[i], l);
        n += l;
    }
    dp_plugin_up_header_set(req, "X-Consumer-Groups", (dp_slice){v, n});
    return DP_PLUGIN_CONTINUE;
}

const dp_plugin dp_plugin_acl = {
    .name = "acl",
    .init = acl_init,
    .free_state = acl_free,
    .access = acl_access,
};
