#ifndef CP_SERVE_H
#define CP_SERVE_H

#include "proto/settings.h"

/* `sluice-cp serve`: checks the database and its schema, then runs the Admin API (and the
 * cluster listener) on one event loop until SIGTERM/SIGINT. Returns the exit status. */
int cp_serve(const sl_settings *s);

/* `sluice-cp health`: asks the local Admin API for /status; 0 when it answers and the
 * database is reachable, else 1 with a one-line reason on stderr. */
int cp_health(const sl_settings *s);

#endif
