#ifndef SL_CLUSTER_MSG_H
#define SL_CLUSTER_MSG_H

/* The small cluster messages exchanged over /v1/outlet besides the snapshot itself: msgpack
 * maps with a "type" (see control_plane/cluster/cluster.h for who sends what).
 *
 *   hello    {node_id, hostname, version, plugins[], config_version, config_hash}   DP -> CP
 *   ack      {version, hash}                                                       DP -> CP
 *   error    {version, hash, message, errors[]}                                    DP -> CP
 *   ping     {config_version, config_hash}                                         DP -> CP
 *   refused  {reason, message}                                                     CP -> DP
 *   snapshot (proto/snapshot.h), delta (proto/snapshot_delta.h)                     CP -> DP
 *
 * Encoding and decoding are pure functions over bytes. The decoder is strict about the types
 * and sizes of the fields it knows, requires the fields each type needs, and skips fields it
 * does not know (a newer peer may add some). Every size is bounded below. */

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define SL_CMSG_MAX_LEN (1024u * 1024) /* largest hello/ack/error/ping/refused accepted */
#define SL_CMSG_MAX_PLUGINS 512        /* entries in a hello's plugin list */
#define SL_CMSG_MAX_PLUGIN_NAME 128    /* bytes of one plugin name */
#define SL_CMSG_MAX_HOSTNAME 255       /* bytes of a hostname */
#define SL_CMSG_MAX_SW_VERSION 31      /* bytes of a software version ("0.1.0") */
#define SL_CMSG_MAX_MESSAGE 4096       /* bytes of an error/refused message */
#define SL_CMSG_MAX_REASON 63          /* bytes of a refused reason */

typedef enum {
    SL_CMSG_UNKNOWN,  /* a type this build does not know: ignore it */
    SL_CMSG_HELLO,    /* DP introduces itself */
    SL_CMSG_ACK,      /* DP applied (or already had) a snapshot */
    SL_CMSG_ERROR,    /* DP refused a snapshot */
    SL_CMSG_PING,     /* DP is alive and serves this version */
    SL_CMSG_REFUSED,  /* CP will not serve this DP; the connection closes */
    SL_CMSG_SNAPSHOT, /* CP sends a config (proto/snapshot.h envelope) */
    SL_CMSG_DELTA,    /* CP sends the changes since the DP's version (proto/snapshot_delta.h) */
} sl_cmsg_type;

typedef struct {
    sl_cmsg_type type;
    char node_id[37];                            /* hello: uuid */
    char hostname[SL_CMSG_MAX_HOSTNAME + 1];     /* hello */
    char sw_version[SL_CMSG_MAX_SW_VERSION + 1]; /* hello: "version" */
    json_t *plugins;                             /* hello: array of strings (owned) */
    int64_t config_version;                /* hello/ping: config_version; ack/error: version */
    char config_hash[65];                  /* same pairing; "" or 64 lower-case hex */
    char message[SL_CMSG_MAX_MESSAGE + 1]; /* error, refused */
    char reason[SL_CMSG_MAX_REASON + 1];   /* refused */
    json_t *errors;                        /* error: array of per-entity reasons or NULL (owned) */
} sl_cluster_msg;

/* Name of a type as it appears on the wire ("hello"...; "unknown" for SL_CMSG_UNKNOWN). */
const char *sl_cmsg_type_name(sl_cmsg_type t);

/* Reads only the "type" of a message map. Returns 0 and *t (SL_CMSG_UNKNOWN for a type this
 * build does not know), or -1 with err when bytes is not a map with a string "type". */
int sl_cmsg_peek_type(const unsigned char *bytes, size_t len, sl_cmsg_type *t, char *err,
                      size_t errlen);

/* Reads "version" and "hash" from the start of a snapshot envelope (proto/snapshot.h), before
 * its payload: works on the first bytes of a snapshot too large to keep. Returns 0 when both
 * were found (hash may be "" if the envelope has none before its payload), else -1. */
int sl_cmsg_peek_snapshot(const unsigned char *bytes, size_t len, int64_t *version, char hash[65]);

/* Decodes one message of at most SL_CMSG_MAX_LEN bytes into m (zeroed first). Snapshots are
 * not decoded here (proto/snapshot.h does that); an unknown type decodes to SL_CMSG_UNKNOWN
 * with no fields. Returns 0, or -1 with err (m then holds nothing to free). On success the
 * caller releases m with sl_cmsg_free. */
int sl_cmsg_decode(const unsigned char *bytes, size_t len, sl_cluster_msg *m, char *err,
                   size_t errlen);

/* Encodes m (type HELLO..REFUSED) with the fields its type uses. Strings longer than their
 * bound are refused, except message, which is cut at a UTF-8 character boundary to fit.
 * *out is malloc'd (caller frees). Returns 0, or -1 with err. */
int sl_cmsg_encode(const sl_cluster_msg *m, unsigned char **out, size_t *outlen, char *err,
                   size_t errlen);

/* Copies at most cap-1 bytes of s into dst, cutting at a UTF-8 character boundary; NUL ends. */
void sl_cmsg_copy_text(char *dst, size_t cap, const char *s);

/* Releases the JSON values m owns and clears them. */
void sl_cmsg_free(sl_cluster_msg *m);

/* Compares "major.minor.patch" versions for cluster compatibility: 0 when a data plane at dp
 * may talk to a control plane at cp (same major, dp minor not newer), else -1 with a reason
 * in err (also for an unparsable version). */
int sl_cmsg_version_compatible(const char *cp, const char *dp, char *err, size_t errlen);

#endif
