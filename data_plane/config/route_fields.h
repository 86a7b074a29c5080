#ifndef DP_ROUTE_FIELDS_H
#define DP_ROUTE_FIELDS_H

/* The members of a Kong route object that the generation, the router and the plugin chains
 * read, found in one walk over the object's members. A decoded snapshot row holds every schema
 * field, and a hash lookup per field (string hash, then a chain of scattered pairs) cost more
 * than the whole rest of a generation build; walking the members in order touches each pair
 * once, and the pairs of one row sit next to each other in memory. */

#include <jansson.h>
#include <stddef.h>

typedef struct {
    const char *id, *name;  /* point into the route object; NULL when absent or not strings */
    const char *service_id; /* service.id */
    /* the member values as given (NULL when absent), for the callers' own type checks */
    const json_t *protocols, *methods, *hosts, *paths, *headers, *snis;
    const json_t *created_at, *regex_priority, *strip_path, *preserve_host;
    const json_t *https_redirect_status_code;
} dp_route_fields;

/* Fills f from the route object row (anything else leaves every field NULL). Reads only; f's
 * pointers live as long as row. */
void dp_route_fields_read(const json_t *row, dp_route_fields *f);

/* dp_router_build (data_plane/router/router.h) one route at a time, so a caller that walks
 * the routes for itself (the generation) hands each one over while its row is still in the
 * cache: a second walk over 100,000 rows costs as much as the first, it is memory bound.
 * Implemented by the router (build.c); declared here, next to the rows it takes.
 *   new:    a builder for at most n routes; NULL with err (kept for later messages) on OOM
 *   add:    route index (its position in the routes array) read into f; -1 with err (a bad
 *           regex names the route), after which only abort is allowed
 *   finish: the router (caller frees with dp_router_free), or NULL with err; frees b
 *   abort:  frees b and everything built so far (NULL accepted)
 * Positions (index) run from 0 to n - 1, each used at most once.
 *
 * The next generation's router, after a config change (data_plane/config/delta.c):
 *   new_next: like new, building on prev (only read; may be NULL). prev must live until finish
 *             or abort; after that the new router holds its own references to what it shares,
 *             and either router may be freed first, on any thread
 *   keep:     route index is the route prev was built with at prev_index, unchanged (the same
 *             row, whose fields are f): its compiled records are taken over instead of read
 *             again. Calls must come in ascending index and prev_index. When prev has no such
 *             route (left out), was too wasteful to build on, or the order is broken, the
 *             route is built from f as by add, so the result is always what a full build of
 *             the same routes gives; with f NULL, keep then returns 1 and changes nothing
 *             (the caller reads the row and calls add)
 *   builds_on: whether new_next would build on prev (1) or build afresh (0: prev is NULL or
 *             holds too much garbage of earlier changes, and every keep would be an add) */
/* A whole build on several threads (no prev):
 *   split:    makes parts of b for `per` positions each (part k for positions k * per to
 *             k * per + per - 1), before any route is given to b, which then takes routes
 *             only through its parts; -1 with err on OOM
 *   part:     part k (k < ceil(n / per)), a builder that takes add only, for its positions,
 *             from one thread at a time; different parts may be used by different threads at
 *             once. After an add fails on a part, that part takes nothing more. finish (on b,
 *             after every part's adds are done) gives the router a serial build of the same
 *             routes gives, or NULL with the error of the first part that failed; abort frees
 *             the parts. */
typedef struct dp_router_builder dp_router_builder;
struct dp_router;
dp_router_builder *dp_router_builder_new(size_t n, char *err, size_t errlen);
dp_router_builder *dp_router_builder_new_next(size_t n, const struct dp_router *prev, char *err,
                                              size_t errlen);
int dp_router_builder_builds_on(const struct dp_router *prev);
int dp_router_builder_add(dp_router_builder *b, size_t index, const dp_route_fields *f);
int dp_router_builder_keep(dp_router_builder *b, size_t index, size_t prev_index,
                           const dp_route_fields *f);
struct dp_router *dp_router_builder_finish(dp_router_builder *b);
void dp_router_builder_abort(dp_router_builder *b);
int dp_router_builder_split(dp_router_builder *b, size_t per);
dp_router_builder *dp_router_builder_part(dp_router_builder *b, size_t k);

/* The value of member "id" of a reference object ({"id": "..."}), or NULL. */
const char *dp_route_fields_ref_id(const json_t *ref);

#endif
