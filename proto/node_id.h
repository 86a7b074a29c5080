#ifndef SL_NODE_ID_H
#define SL_NODE_ID_H

#include <stddef.h>

/* Creates the prefix folder (and parents) when missing, mode 0700. */
int sl_prefix_ensure(const char *prefix, char *err, size_t errlen);

/* The node's id: read from <prefix>/node_id, or generated once (uuid v4) and written there
 * (0600, temp file + rename), so a restarted node keeps its identity in the cluster. */
int sl_node_id_load(const char *prefix, char out[37], char *err, size_t errlen);

#endif
