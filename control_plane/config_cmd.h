#ifndef CP_CONFIG_CMD_H
#define CP_CONFIG_CMD_H

#include "proto/settings.h"

/* `sluice-cp config db_import FILE` and `sluice-cp config db_export FILE`: Kong's declarative
 * format in and out of the database. Import is one transaction (all or nothing) and skips rows
 * that are already identical, so importing an export changes nothing; export refuses to
 * overwrite a file. argv[0] is "config". Returns the exit status. */
int cp_config_main(int argc, char **argv, const sl_settings *s);

#endif
