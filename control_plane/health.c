#include <jansson.h>
#include <stdio.h>

#include "control_plane/serve.h"
#include "proto/local_http.h"

int cp_health(const sl_settings *s)
{
    sl_listen_addr addrs[16];
    char err[512], body[8192];
    int n = sl_listen_parse(sl_settings_get(s, "admin_listen"), addrs, 16, err, sizeof(err));
    int plain = -1;
    for (int i = 0; i < n; i++)
        if (!addrs[i].ssl) {
            plain = i;
            break;
        }
    if (plain < 0) {
        fprintf(stderr, "sluice-cp is not healthy: no plain-HTTP admin_listen entry to ask\n");
        return 1;
    }
    int status = sl_local_http_get(addrs[plain].host, addrs[plain].port, "/status",
                                   sl_settings_get(s, "admin_token"), 3000, body, sizeof(body), err,
                                   sizeof(err));
    if (status < 0) {
        fprintf(stderr, "sluice-cp is not running: %s\n", err);
        return 1;
    }
    if (status != 200) {
        fprintf(stderr, "sluice-cp is not healthy: /status answered %d%s\n", status,
                status == 401 ? " (admin_token not accepted)" : "");
        return 1;
    }
    json_t *j = json_loads(body, 0, NULL);
    int reachable = json_is_true(json_object_get(json_object_get(j, "database"), "reachable"));
    json_decref(j);
    if (!reachable) {
        fprintf(stderr, "sluice-cp is not healthy: database not reachable\n");
        return 1;
    }
    printf("sluice-cp is healthy at %s:%d\n", addrs[plain].host, addrs[plain].port);
    return 0;
}
