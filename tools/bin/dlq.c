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

/* The command line, as parsed. */
typedef struct {
    const char *cmd, *allowed, *config;
    bool check_config;
    ts_dlqtool_opts_t o;
} args_t;

static int bad_reason(const char *v) {
    fprintf(stderr, "tillstream-dlq: --reason %s: unknown reason; valid reasons:", v);
    for (int r = TS_REASON_NONE + 1; r < TS_REASON__COUNT; r++)
        fprintf(stderr, " %s", ts_reason_name((ts_reason_t)r));
    fputc('\n', stderr);
    return 2;
}

/* The value of option c: 0, or 2 after saying what is wrong with it. */
static int take_option(args_t *a, int c, const char *v) {
    ts_dlqtool_opts_t *o = &a->o;
    char err[256];
    long n;
    switch (c) {
    case 'c': a->config = v; break;
    case 'j': o->json = true; break;
    case 'r':
        if (ts_reason_parse(v) == TS_REASON_NONE) return bad_reason(v);
        o->reason = v;
        break;
    case 'o': o->outlet = v; break;
    case 's':
    case 'u':
        if (ts_time_parse_iso8601(v, strlen(v), c == 's' ? &o->since_ms : &o->until_ms, err,
                                  sizeof err)) {
            fprintf(stderr, "tillstream-dlq: --%s: %s\n", c == 's' ? "since" : "until", err);
            return 2;
        }
        break;
    case 'l':
        if (!positive(v, &o->limit)) {
            fprintf(stderr, "tillstream-dlq: --limit %s: expected a positive integer\n", v);
            return 2;
        }
        break;
    case 'b': o->from_beginning = true; break;
    case 'd': o->dry_run = true; break;
    case 'm':
        if (!positive(v, &n) || n > 1000000) {
            fprintf(stderr, "tillstream-dlq: --max-redrives %s: expected a positive integer\n", v);
            return 2;
        }
        o->max_redrives = (int)n;
        break;
    case 'g': o->group = v; break;
    case 't': o->state_topic = v; break;
    case 'C': a->check_config = true; break;
    }
    return 0;
}

/* The command and its options: -1 to go on, else the exit code. */
static int parse_args(args_t *a, int argc, char **argv) {
    static const struct option opts[] = {
        {"config", 1, NULL, 'c'},  {"json", 0, NULL, 'j'},
        {"reason", 1, NULL, 'r'},  {"outlet", 1, NULL, 'o'},
        {"since", 1, NULL, 's'},   {"until", 1, NULL, 'u'},
        {"limit", 1, NULL, 'l'},   {"from-beginning", 0, NULL, 'b'},
        {"dry-run", 0, NULL, 'd'}, {"max-redrives", 1, NULL, 'm'},
        {"group", 1, NULL, 'g'},   {"state-topic", 1, NULL, 't'},
        {"help", 0, NULL, 'h'},    {"check-config", 0, NULL, 'C'},
        {NULL, 0, NULL, 0}};
    int c, idx, rc;
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
        if (!strchr(a->allowed, c)) {
            fprintf(stderr, "tillstream-dlq: %s does not take --%s\n", a->cmd, opts[idx].name);
            return 2;
        }
        if ((rc = take_option(a, c, optarg))) return rc;
    }
    if (optind < argc) {
        fprintf(stderr, "tillstream-dlq: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (a->o.since_ms && a->o.until_ms && a->o.until_ms <= a->o.since_ms) {
        fprintf(stderr, "tillstream-dlq: --until must be later than --since\n");
        return 2;
    }
    if (!a->config) {
        fprintf(stderr, "tillstream-dlq: --config FILE is required\n");
        return 2;
    }
    return -1;
}

/* The first argument: -1 for a known command (a->allowed set), else the
 * exit code (--help, --version, an unknown command). */
static int parse_command(args_t *a, int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    a->cmd = argv[1];
    if (!strcmp(a->cmd, "--help") || !strcmp(a->cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(a->cmd, "--version") || !strcmp(a->cmd, "-V")) {
        printf("tillstream-dlq %s\n", TS_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof takes / sizeof takes[0]; i++)
        if (!strcmp(takes[i].cmd, a->cmd)) a->allowed = takes[i].opts;
    if (!a->allowed) {
        fprintf(stderr, "tillstream-dlq: unknown command '%s'\n", a->cmd);
        usage(stderr);
        return 2;
    }
    a->check_config = !strcmp(a->cmd, "--check-config"); /* alone or with a command */
    return -1;
}

/* --check-config: no API keys (the tool never calls Klaviyo) and no admin
 * listener. */
static int check_config_mode(const ts_config_t *cfg, const char *config) {
    char err[256];
    if (ts_checkconfig_run(cfg, TS_KIND_ORDER, 0, err, sizeof err) != TS_OK) {
        fprintf(stderr, "tillstream-dlq: %s\n", err);
        return 2;
    }
    printf("tillstream-dlq: config %s: ok\n", config);
    return 0;
}

static int run_command(const ts_config_t *cfg, args_t *a) {
    if (!strcmp(a->cmd, "stats")) return ts_dlqtool_stats(cfg, a->o.json, stdout);
    if (!strcmp(a->cmd, "show")) return ts_dlqtool_show(cfg, &a->o, stdout);
    if (!strcmp(a->cmd, "tail")) {
        a->o.follow = true;
        return ts_dlqtool_show(cfg, &a->o, stdout);
    }
    if (!strcmp(a->cmd, "redrive")) return ts_dlqtool_redrive(cfg, &a->o, stdout);
    return ts_dlqtool_audit(cfg, a->o.json, stdout);
}

int main(int argc, char **argv) {
    args_t a = {.o = {.max_redrives = 3, .notes = stderr}};
    int rc = parse_command(&a, argc, argv);
    if (rc < 0) rc = parse_args(&a, argc, argv);
    if (rc >= 0) return rc;
    char err[256];
    ts_config_t *cfg;
    if (ts_config_load(a.config, &cfg, err, sizeof err) != TS_OK) {
        fprintf(stderr, "tillstream-dlq: config %s: %s\n", a.config, err);
        return 2;
    }
    ts_log_set_sink(stderr); /* stdout is the report */
    ts_log_set_level(TS_LOG_WARN);
    rc = a.check_config ? check_config_mode(cfg, a.config) : run_command(cfg, &a);
    ts_config_destroy(cfg);
    return rc;
}
