#ifndef DP_H1_H
#define DP_H1_H

/* HTTP/1.1 message parsing for the proxy: llhttp (strict, no lenient flags) plus our own checks
 * for every request-smuggling shape llhttp leaves to its user. Pure: it parses bytes handed to
 * it and keeps slices into them, so the caller must not move those bytes until the head is
 * handled. The same code parses client requests and upstream responses. */

#include <llhttp.h>
#include <stdint.h>

#include "data_plane/util/slice.h"

#define DP_MAX_HEADERS 100            /* more: 431 */
#define DP_MAX_HEAD_BYTES (32 * 1024) /* request line + headers; more: 431 */
#define DP_MAX_URI 8192               /* more: 414 */

typedef enum { DP_H1_REQUEST, DP_H1_RESPONSE } dp_h1_type;

typedef struct {
    dp_slice method; /* requests */
    dp_slice url;    /* requests: as sent */
    dp_slice path;   /* requests: url without query (absolute-form: without scheme://authority) */
    dp_slice query;  /* requests: after '?', without it; empty when none */
    dp_slice authority; /* requests in absolute-form: the host[:port] from the URL */
    int status;         /* responses */
    uint8_t http_major, http_minor;
    uint8_t method_id; /* llhttp_method_t */
    uint16_t nheaders;
    dp_header headers[DP_MAX_HEADERS];
    int64_t content_length; /* -1: no Content-Length */
    unsigned chunked : 1;   /* Transfer-Encoding: chunked */
    unsigned keepalive : 1; /* the peer allows another message on this connection */
    unsigned upgrade : 1;   /* Connection: upgrade + Upgrade (requests) or 101 (responses) */
    unsigned expect_continue : 1;
    int host_index; /* index of the Host header, -1 when absent */
} dp_h1_head;

/* Called with each piece of (de-chunked) body as it is parsed; at points into the parsed
 * buffer. */
typedef void (*dp_h1_body_cb)(void *ud, const char *at, size_t len);

/* Called before each chunk of a chunked body: returning nonzero pauses parsing (execute returns
 * with the bytes consumed so far), so a caller can bound how many pieces it collects. */
typedef int (*dp_h1_chunk_cb)(void *ud);

typedef struct {
    llhttp_t p;
    dp_h1_head head;
    dp_h1_body_cb on_body;
    dp_h1_chunk_cb on_chunk;
    void *ud;
    unsigned head_complete : 1; /* the head of the current message is parsed */
    unsigned msg_complete : 1;  /* the whole current message is parsed */
    unsigned skip_body : 1;     /* responses: the request was HEAD, so no body follows */
    unsigned paused : 1;
    unsigned in_head : 1; /* part of a head was consumed: its bytes must stay where they are */
    int hstate;           /* trailers: 0 before a field, 1 in a name, 2 in a value */
    int cl_count, te_count;
    size_t head_bytes;       /* bytes of the head consumed by earlier calls */
    const char *version_end; /* just past the HTTP version: the header lines follow its line */
    const char *data, *end;  /* the bytes of the current dp_h1_execute call */
    const char *scan_end;    /* where scan_fields found the blank line's end (this call) */
    int error_status;        /* on DP_H1_ERROR: 400, 414, 431 (requests) or 502 (responses) */
    const char *error;       /* on DP_H1_ERROR: what was wrong (static text) */
} dp_h1;

typedef enum {
    DP_H1_OK,      /* consumed bytes up to a pause (head or message complete) or all of them */
    DP_H1_UPGRADE, /* message complete and the connection switches protocols after it */
    DP_H1_ERROR,   /* refuse the message: see error_status and error */
} dp_h1_result;

/* Prepares a parser (no allocation). Callbacks may be NULL. */
void dp_h1_init(dp_h1 *h, dp_h1_type type, dp_h1_body_cb on_body, dp_h1_chunk_cb on_chunk,
                void *ud);

/* Clears the head and flags for the next message on the same connection. */
void dp_h1_next(dp_h1 *h);

/* Parses data[0..len). Stops after the head (head_complete set: handle it, then call again with
 * the remaining bytes to get the body), after the message (msg_complete set), or when on_chunk
 * asks. *consumed says how many bytes were used. A head may come in several calls, but its
 * bytes must be contiguous: each call's data starts where the previous call's consumed bytes
 * ended, and nothing of the head moves until it is handled (in_head says a head is partly
 * consumed). */
dp_h1_result dp_h1_execute(dp_h1 *h, const char *data, size_t len, size_t *consumed);

/* The peer closed: completes a message delimited by the end of the connection. */
dp_h1_result dp_h1_finish(dp_h1 *h);

/* ASCII lower case of every byte. */
extern const unsigned char dp_h1_lower[256];

/* n equals lit (lower case, len bytes) ignoring ASCII case: field names without a libc call. */
static inline int dp_h1_name_eq(dp_slice n, const char *lit, size_t len)
{
    if (n.len != len)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (dp_h1_lower[(unsigned char)n.p[i]] != (unsigned char)lit[i])
            return 0;
    return 1;
}
#define DP_H1_NAME_IS(n, lit) dp_h1_name_eq(n, lit, sizeof(lit) - 1)

/* The first header named name, or NULL. */
const dp_header *dp_h1_find(const dp_h1_head *head, const char *name);

/* True when a comma-separated header value contains token (case-insensitive). */
int dp_h1_has_token(dp_slice value, const char *token);

#endif
