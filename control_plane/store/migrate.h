#ifndef CP_MIGRATE_H
#define CP_MIGRATE_H

#include "control_plane/store/store.h"

/* Schema state, as `sluice-cp migrations list` reports it with Kong's exit codes. */
typedef enum {
    CP_SCHEMA_UP_TO_DATE = 0,
    CP_SCHEMA_NEEDS_BOOTSTRAP = 3,
    CP_SCHEMA_PENDING = 4,
} cp_schema_state;

/* Reads which migrations are applied. Returns the state, or -1 with err on a database error. */
int cp_migrations_state(cp_store *st, char *err, size_t errlen);

/* `sluice-cp migrations bootstrap|up|list|reset [--yes]`: prints what it did and returns the
 * process exit status. All of them take a PostgreSQL advisory lock; when another node holds it,
 * they stop with "another node is performing database changes". */
int cp_migrations_main(int argc, char **argv, const sl_settings *s);

#endif
