/* tillstream-dlq: working the dead-letter topic (docs/dead-letter.md). */
#include <stdio.h>
#include <string.h>

#include "tillstream/dlqtool.h"
#include "tillstream/log.h"

static void usage(FILE *f) {
    fprintf(f, "Usage: tillstream-dlq stats --config FILE [--json]\n\n"
               "  stats   counts of the dead-letter topic by reason, outlet, account,\n"
               "          source topic and day, with the oldest and newest record\n");
}

int main(int argc, char **argv) {
    const char *config = NULL, *cmd = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc) config = argv[++i];
        else if (!strcmp(argv[i], "--json")) json = true;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { usage(stdout); return 0; }
        else if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-V")) { printf("tillstream-dlq %s\n", TS_VERSION); return 0; }
        else if (!cmd && argv[i][0] != '-') cmd = argv[i];
        else { usage(stderr); return 2; }
    }
    if (!cmd || strcmp(cmd, "stats") || !config) {
        usage(stderr);
        return 2;
    }
    char err[512];
    ts_config_t *cfg;
    if (ts_config_load(config, &cfg, err, sizeof err) != TS_OK) {
        fprintf(stderr, "tillstream-dlq: config %s: %s\n", config, err);
        return 2;
    }
    ts_log_set_level(TS_LOG_WARN);
    int rc = ts_dlqtool_stats(cfg, json, stdout);
    ts_config_destroy(cfg);
    return rc;
}
