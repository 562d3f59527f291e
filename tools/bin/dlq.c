/*
 * tillstream-dlq: working the dead-letter topic, and the pre-go-live Home
 * Outlet audit of the customers topic (docs/dead-letter.md).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tillstream/checkconfig.h"
#include "tillstream/dlqtool.h"
#include "tillstream/log.h"
#include "tillstream/model.h"

static void usage(FILE *f) {
    fprintf(
        f, "Usage: tillstream-dlq COMMAND --config FILE [options]\n\n"
           "  stats     counts by reason, outlet, account, source topic and day; oldest/newest\n"
           "  show      records with their headers, values pretty-printed\n"
           "  tail      like show, then follow new dead letters\n"
           "  redrive   send selected dead letters back to their source topic\n"
           "  audit     Home Outlet audit of the customers topic (per outlet and overall)\n\n"
           "  --check-config         (alone or with a command) check the config as a start\n"
           "                         would (librdkafka properties, registry settings), exit\n"
           "                         0 valid, 2 with the message\n\n"
           "Options:\n"
           "  --json                 JSON output\n"
           "  --reason R             only this reason (show, tail, redrive)\n"
           "  --outlet O             only this outlet\n"
           "  --since T, --until T   only dead letters written in [T, T) (ISO-8601)\n"
           "  --dry-run              redrive: say what would happen, send nothing\n"
           "  --max-redrives N       redrive: never re-send a record redriven N times (default 3)\n"
           "  --group G              redrive: the group remembering what was redriven\n"
           "                         (default tillstream-dlq-redrive)\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    bool check_config = false;
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
        printf("tillstream-dlq %s\n", TS_VERSION);
        return 0;
    }
    const char *config = NULL;
    ts_dlqtool_opts_t o = {0};
    o.max_redrives = 3;
    static const struct option opts[] = {
        {"config", 1, NULL, 'c'},  {"json", 0, NULL, 'j'},         {"reason", 1, NULL, 'r'},
        {"outlet", 1, NULL, 'o'},  {"since", 1, NULL, 's'},        {"until", 1, NULL, 'u'},
        {"dry-run", 0, NULL, 'd'}, {"max-redrives", 1, NULL, 'm'}, {"group", 1, NULL, 'g'},
        {"help", 0, NULL, 'h'},    {"check-config", 0, NULL, 'C'}, {NULL, 0, NULL, 0}};
    int c;
    char err[256];
    optind = strcmp(cmd, "--check-config") ? 2 : 1; /* `tillstream-dlq --check-config --config F` */
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'j': o.json = true; break;
        case 'r': o.reason = optarg; break;
        case 'o': o.outlet = optarg; break;
        case 's':
        case 'u':
            if (ts_time_parse_iso8601(optarg, strlen(optarg), c == 's' ? &o.since_ms : &o.until_ms,
                                      err, sizeof err)) {
                fprintf(stderr, "tillstream-dlq: --%s: %s\n", c == 's' ? "since" : "until", err);
                return 2;
            }
            break;
        case 'd': o.dry_run = true; break;
        case 'm': o.max_redrives = atoi(optarg); break;
        case 'g': o.group = optarg; break;
        case 'C': check_config = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!config) {
        fprintf(stderr, "tillstream-dlq: --config FILE is required\n");
        return 2;
    }
    ts_config_t *cfg;
    if (ts_config_load(config, &cfg, err, sizeof err) != TS_OK) {
        fprintf(stderr, "tillstream-dlq: config %s: %s\n", config, err);
        return 2;
    }
    ts_log_set_level(TS_LOG_WARN);
    int rc;
    if (check_config) {
        /* no API keys (the tool never calls Klaviyo) and no admin listener */
        if (ts_checkconfig_run(cfg, TS_KIND_ORDER, 0, err, sizeof err) != TS_OK) {
            fprintf(stderr, "tillstream-dlq: %s\n", err);
            rc = 2;
        } else {
            printf("tillstream-dlq: config %s: ok\n", config);
            rc = 0;
        }
        ts_config_destroy(cfg);
        return rc;
    }
    if (!strcmp(cmd, "stats"))
        rc = ts_dlqtool_stats(cfg, o.json, stdout);
    else if (!strcmp(cmd, "show"))
        rc = ts_dlqtool_show(cfg, &o, stdout);
    else if (!strcmp(cmd, "tail")) {
        o.follow = true;
        rc = ts_dlqtool_show(cfg, &o, stdout);
    } else if (!strcmp(cmd, "redrive"))
        rc = ts_dlqtool_redrive(cfg, &o, stdout);
    else if (!strcmp(cmd, "audit"))
        rc = ts_dlqtool_audit(cfg, o.json, stdout);
    else {
        usage(stderr);
        rc = 2;
    }
    ts_config_destroy(cfg);
    return rc;
}
