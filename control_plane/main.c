/* sluice-cp: the control plane's command line. Each command loads the settings the same way
 * (--conf FILE, then SLUICE_* variables) so a bad setting is refused before anything runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/malloc_tune.h"
#include "control_plane/cluster/certs.h"
#include "control_plane/config_cmd.h"
#include "control_plane/serve.h"
#include "control_plane/store/migrate.h"
#include "proto/log.h"
#include "proto/settings.h"
#include "proto/version.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: sluice-cp [--conf FILE] COMMAND [ARGS]\n"
            "\n"
            "Sluice control plane " SL_VERSION ": Admin API, PostgreSQL store, cluster sync.\n"
            "\n"
            "Commands:\n"
            "  serve                              run the control plane in the foreground\n"
            "  migrations bootstrap|up|list|reset [--yes]\n"
            "                                     schema management (list exits 0 up to date,\n"
            "                                     3 needs bootstrap, 4 pending)\n"
            "  certs generate --out DIR           write cluster.crt and cluster.key for mTLS\n"
            "  config db_import FILE              load a Kong declarative file (YAML or JSON)\n"
            "  config db_export FILE              write the config as a declarative file\n"
            "  health                             exit 0 when this node is up and healthy\n"
            "  version                            print the version\n"
            "\n"
            "Every command accepts --help.\n\n");
    if (out == stdout)
        sl_settings_print_help(SL_FOR_CP);
}

/* Removes "--conf FILE" / "-c FILE" from argv wherever it is; returns the file or NULL. */
static const char *take_conf(int *argc, char **argv)
{
    const char *conf = NULL;
    int out = 0;
    for (int i = 0; i < *argc; i++) {
        if ((strcmp(argv[i], "--conf") == 0 || strcmp(argv[i], "-c") == 0) && i + 1 < *argc) {
            conf = argv[++i];
            continue;
        }
        if (strncmp(argv[i], "--conf=", 7) == 0) {
            conf = argv[i] + 7;
            continue;
        }
        argv[out++] = argv[i];
    }
    *argc = out;
    argv[out] = NULL;
    return conf;
}

static int has_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    sl_malloc_tune();
    const char *conf = take_conf(&argc, argv);
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("sluice-cp %s\n", SL_VERSION);
        return 0;
    }
    if (strcmp(cmd, "certs") == 0)
        return cp_certs_main(argc - 1, argv + 1);

    sl_settings settings;
    char err[1024];
    if (strcmp(cmd, "serve") != 0 && strcmp(cmd, "migrations") != 0 && strcmp(cmd, "health") != 0 &&
        strcmp(cmd, "config") != 0) {
        fprintf(stderr, "Error: unknown command '%s'\n\n", cmd);
        usage(stderr);
        return 1;
    }
    if (has_help(argc - 1, argv + 1)) {
        usage(stdout);
        return 0;
    }
    if (sl_settings_load(&settings, conf, err, sizeof(err))) {
        fprintf(stderr, "Error: %s\n", err);
        return 1;
    }
    sl_log_set_level((sl_log_level)sl_log_level_parse(sl_settings_get(&settings, "log_level")));
    int rc;
    if (strcmp(cmd, "serve") == 0)
        rc = cp_serve(&settings);
    else if (strcmp(cmd, "migrations") == 0)
        rc = cp_migrations_main(argc - 1, argv + 1, &settings);
    else if (strcmp(cmd, "config") == 0)
        rc = cp_config_main(argc - 1, argv + 1, &settings);
    else
        rc = cp_health(&settings);
    sl_settings_free(&settings);
    return rc;
}
