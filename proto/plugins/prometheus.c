/* prometheus (PRIORITY 13): kong/plugins/prometheus/schema.lua. Every optional metric family
 * is off by default, as in Kong 3.x. */
#include "proto/plugins/common.h"

#define METRIC(n)                                                                                  \
    {                                                                                              \
        .name = n, .type = SL_T_BOOLEAN, .dflt = "false"                                           \
    }

static const sl_field fields[] = {
    METRIC("per_consumer"),    METRIC("status_code_metrics"), METRIC("ai_metrics"),
    METRIC("latency_metrics"), METRIC("bandwidth_metrics"),   METRIC("upstream_health_metrics"),
    METRIC("wasm_metrics"),
};

const sl_plugin_schema sl_plugin_prometheus = {
    .name = "prometheus",
    .priority = 13,
    .config_fields = fields,
    .nfields = SL_N(fields),
};
