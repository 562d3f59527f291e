/*
 * tillstream-dlq: working the dead-letter topic, and the pre-go-live Home
 * Outlet audit of the customers topic (docs/dead-letter.md).
 *
 * Usage errors (an unknown reason, an option the command does not take, a
 * bad number or time) exit 2 before anything is read.
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
        f,
        "Usage: tillstream-dlq COMMAND --config FILE [options]\n\n"
        "  stats     distinct dead letters (source record + reason) by reason, outlet,\n"
        "            account, source topic and day; copies; oldest/newest\n"
        "  show      records with their headers, values pretty-printed\n"
        "  tail      new dead letters as they arrive (--from-beginning: the whole topic first)\n"
        "  redrive   send selected dead letters back to their source topic (unless superseded)\n"
        "  audit     Home Outlet audit of the customers topic (per outlet and overall)\n\n"
        "  --check-config         (alone or with a command) check the config as a start\n"
        "                         would (librdkafka properties, registry settings), exit\n"
        "                         0 valid, 2 with the message\n\n"
        "Options (each only where named):\n"
        "  --json                 JSON output (stats, show, tail, audit)\n"
        "  --reason R             only this reason (show, tail, redrive)\n"
        "  --outlet O             only this outlet (show, tail, redrive)\n"
        "  --since T, --until T   only dead letters written in [T, T) (ISO-8601; show, tail,\n"
        "                         redrive)\n"
        "  --limit N              at most N records (show, tail, redrive)\n"
        "  --from-beginning       tail: read the whole topic, then follow\n"
        "  --dry-run              redrive: say what would happen, send nothing\n"
        "  --max-redrives N       redrive: never re-send a record redriven N times (default 3)\n"
        "  --group G              redrive: bookkeeping namespace (default tillstream-dlq-redrive)\n"
        "  --state-topic T        redrive: compacted bookkeeping topic (default\n"
        "                         tillstream.redrive, created when missing)\n");
}

/* Which command takes which option (by getopt code). */
static const struct {
    const char *cmd, *opts;
} takes[] = {
    {"stats", "cjC"},           {"show", "cjrosulC"}, {"tail", "cjrosulbC"},
    {"redrive", "crosuldmgtC"}, {"audit", "cjC"},     {"--check-config", "cC"},
};

static bool positive(const char *s, long *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v <= 0) return false;
    *out = v;
    return true;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
        printf("tillstream-dlq %s\n", TS_VERSION);
        return 0;
    }
    const char *allowed = NULL;
    for (size_t i = 0; i < sizeof takes / sizeof takes[0]; i++)
        if (!strcmp(takes[i].cmd, cmd)) allowed = takes[i].opts;
    if (!allowed) {
        fprintf(stderr, "tillstream-dlq: unknown command '%s'\n", cmd);
        usage(stderr);
        return 2;
    }
    const char *config = NULL;
    bool check_config = !strcmp(cmd, "--check-config"); /* alone or with a command */
    ts_dlqtool_opts_t o = {.max_redrives = 3, .notes = stderr};
    static const struct option opts[] = {
        {"config", 1, NULL, 'c'},  {"json", 0, NULL, 'j'},
        {"reason", 1, NULL, 'r'},  {"outlet", 1, NULL, 'o'},
        {"since", 1, NULL, 's'},   {"until", 1, NULL, 'u'},
        {"limit", 1, NULL, 'l'},   {"from-beginning", 0, NULL, 'b'},
        {"dry-run", 0, NULL, 'd'}, {"max-redrives", 1, NULL, 'm'},
        {"group", 1, NULL, 'g'},   {"state-topic", 1, NULL, 't'},
        {"help", 0, NULL, 'h'},    {"check-config", 0, NULL, 'C'},
        {NULL, 0, NULL, 0}};
    int c, idx;
    char err[256];
    optind = 2;
    while ((c = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return 0;
        }
        if (c == '?' || c == ':') {
            usage(stderr);
            return 2;
        }
        if (!strchr(allowed, c)) {
            fprintf(stderr, "tillstream-dlq: %s does not take --%s\n", cmd, opts[idx].name);
            return 2;
        }
        long n;
        switch (c) {
        case 'c': config = optarg; break;
        case 'j': o.json = true; break;
        case 'r':
            if (ts_reason_parse(optarg) == TS_REASON_NONE) {
                fprintf(stderr,
                        "tillstream-dlq: --reason %s: unknown reason; valid reasons:", optarg);
                for (int r = TS_REASON_NONE + 1; r < TS_REASON__COUNT; r++)
                    fprintf(stderr, " %s", ts_reason_name((ts_reason_t)r));
                fputc('\n', stderr);
                return 2;
            }
            o.reason = optarg;
            break;
        case 'o': o.outlet = optarg; break;
        case 's':
        case 'u':
            if (ts_time_parse_iso8601(optarg, strlen(optarg), c == 's' ? &o.since_ms : &o.until_ms,
                                      err, sizeof err)) {
                fprintf(stderr, "tillstream-dlq: --%s: %s\n", c == 's' ? "since" : "until", err);
                return 2;
            }
            break;
        case 'l':
            if (!positive(optarg, &o.limit)) {
                fprintf(stderr, "tillstream-dlq: --limit %s: expected a positive integer\n",
                        optarg);
                return 2;
            }
            break;
        case 'b': o.from_beginning = true; break;
        case 'd': o.dry_run = true; break;
        case 'm':
            if (!positive(optarg, &n) || n > 1000000) {
                fprintf(stderr, "tillstream-dlq: --max-redrives %s: expected a positive integer\n",
                        optarg);
                return 2;
            }
            o.max_redrives = (int)n;
            break;
        case 'g': o.group = optarg; break;
        case 't': o.state_topic = optarg; break;
        case 'C': check_config = true; break;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tillstream-dlq: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (o.since_ms && o.until_ms && o.until_ms <= o.since_ms) {
        fprintf(stderr, "tillstream-dlq: --until must be later than --since\n");
        return 2;
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
    ts_log_set_sink(stderr); /* stdout is the report */
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
    else
        rc = ts_dlqtool_audit(cfg, o.json, stdout);
    ts_config_destroy(cfg);
    return rc;
}
